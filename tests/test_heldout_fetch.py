"""bench.heldout_fetch rebuilds a held-out set from its manifest. The package archive is put in the
download cache first, so this runs without a registry: what is tested is finding the file in the
archive, taking an attachment out of a test e-mail, writing truth and labels, and saying why a line
was not rebuilt."""
import csv
import io
import json
import tarfile
from email.message import EmailMessage

from bench import heldout_fetch


def _sdist(path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _mail_with_attachment(name: str, data: bytes) -> bytes:
    message = EmailMessage()
    message["Subject"] = "the report"
    message.set_content("See attached.")
    message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


def test_rebuild_from_a_cached_sdist(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    _sdist(cache / "samplepkg-1.0.tar.gz", {
        "samplepkg-1.0/tests/data/invoice (1).pdf": b"%PDF-1.4 invoice bytes",
        "samplepkg-1.0/tests/mails/mail_1": _mail_with_attachment("Annual report.pdf", b"%PDF-1.4 report"),
        "samplepkg-1.0/tests/nfe.xml": b"<nfe/>",
        "samplepkg-1.0/tests/box.mbox": b"From a@x Mon Jan 1 00:00:00 2024\nSubject: one\n\nfirst\n\n"
                                        b"From b@x Mon Jan 1 00:00:00 2024\nSubject: two\n\nsecond\n",
    })
    common = {"language": "en", "source_repo": "pypi:samplepkg==1.0", "source_commit": "samplepkg-1.0.tar.gz",
              "license": "MIT"}
    truth = {"invoice_number": "7", "issue_date": None, "due_date": None, "total_amount": 10.0,
             "currency": "EUR", "issuer": "A", "buyer": "B"}
    rows = [
        dict(common, file="invoice__samplepkg__one.pdf", category="invoice", format="pdf",
             source_path="samplepkg-1.0/tests/data/invoice (1).pdf", truth=truth),
        # an attachment, with the path written without the archive's top folder
        dict(common, file="report__samplepkg__annual.pdf", category="report", format="pdf",
             source_path='tests/mails/mail_1 (MIME attachment "Annual report.pdf")'),
        dict(common, file="email__samplepkg__two.eml", category="email", format="eml",
             source_path="samplepkg-1.0/tests/box.mbox#message-2"),
        dict(common, file="invoice__samplepkg__nfe.pdf", category="invoice", format="pdf",
             source_path="samplepkg-1.0/tests/nfe.xml (rendered to a DANFE PDF with brazilfiscalreport)"),
        dict(common, file="form__samplepkg__gone.pdf", category="form", format="pdf",
             source_path="samplepkg-1.0/tests/gone.pdf"),
    ]
    manifest = tmp_path / "classification-sample.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    count, missing = heldout_fetch.rebuild(str(manifest), str(tmp_path / "out"), str(cache))

    folder = tmp_path / "out" / "classification-sample"
    assert count == 3
    assert (folder / "invoice__samplepkg__one.pdf").read_bytes() == b"%PDF-1.4 invoice bytes"
    assert (folder / "report__samplepkg__annual.pdf").read_bytes() == b"%PDF-1.4 report"
    assert json.loads((folder / "invoice__samplepkg__one.pdf.truth.json").read_text()) == truth
    assert not (folder / "report__samplepkg__annual.pdf.truth.json").exists()
    two = (folder / "email__samplepkg__two.eml").read_bytes()
    assert b"Subject: two" in two and b"second" in two and b"first" not in two
    with open(folder / "labels.csv", encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))
    assert [r["file"] for r in labels] == ["invoice__samplepkg__one.pdf", "report__samplepkg__annual.pdf",
                                           "email__samplepkg__two.eml"]
    assert labels[1]["category"] == "report" and labels[1]["source_repo"] == "pypi:samplepkg==1.0"
    assert len(missing) == 2
    assert missing[0].startswith("invoice__samplepkg__nfe.pdf: made by a tool")
    assert missing[1] == "form__samplepkg__gone.pdf: samplepkg-1.0/tests/gone.pdf is not in the archive"


def test_every_committed_manifest_names_a_source_the_tool_knows():
    """A new manifest line the tool cannot place would silently shrink the next rebuild."""
    import glob
    import os

    for manifest in glob.glob(os.path.join(heldout_fetch.HELDOUT, "*.jsonl")):
        with open(manifest, encoding="utf-8") as fh:
            for line in fh:
                repo = json.loads(line)["source_repo"].strip()
                known = (repo.startswith(("pypi:", "npm:", "debian:")) or heldout_fetch._GITHUB.match(repo)
                         or heldout_fetch._PYPI_IN_TEXT.search(repo))
                assert known, f"{os.path.basename(manifest)}: {repo}"
