"""Emails, mailboxes, archives and old Office files (issue 16): parsing, limits against hostile
archives, and the real pipeline over real-shaped inputs made here, into the real embedded PostgreSQL."""
import email.message
import email.policy
import glob
import io
import mailbox
import os
import tarfile
import zipfile

import psycopg
import pytest

from tests import docs
from transforms import containers, email_parse, legacy
from transforms.config import StageConfig
from transforms.convert import ConversionError, Converter
from transforms.records import Document

LABELED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus", "labeled")


def mail_bytes(subject: str, body: str, attachments=(), html: str | None = None, plain: bool = True) -> bytes:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice Accounts <alice@vendor.example>"
    msg["To"] = "Bob Buyer <bob@client.example>"
    msg["Cc"] = "carol@client.example"
    msg["Date"] = "Tue, 05 Mar 2024 10:15:00 +0100"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash(subject))}@vendor.example>"
    msg["In-Reply-To"] = "<earlier@client.example>"
    if plain:
        msg.set_content(body)
        if html:
            msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html, subtype="html")
    for name, data, (maintype, subtype) in attachments:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


PDF = ("application", "pdf")
DOCX = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")


def invoice_mail() -> bytes:
    return mail_bytes(
        "Invoice 2024-118 for March", "Hello Bob,\n\nplease find our invoice attached.\n\nRegards, Alice",
        attachments=[("invoice-2024-118.pdf", docs.pdf_bytes(
            "Invoice\nInvoice no. 2024-118\nDate of issue: 2024-03-05\nQuokka Consulting GmbH\n"
            "Total due: 1,250.00 EUR\nPayment within 30 days"), PDF),
                     ("cv.docx", docs.docx_bytes("Curriculum Vitae", [
                         "Jane Wombat, senior platypus engineer.", "Experience: 10 years of burrow design."]), DOCX)])


def html_mail() -> bytes:
    return mail_bytes("Spring newsletter", "", plain=False,
                      html="<html><head><style>p{color:red}</style></head><body><h1>Spring news</h1>"
                           "<p>Our <b>kangaroo</b> sale starts Monday.</p><script>track()</script></body></html>")


# -- parsing -------------------------------------------------------------------------------------

def test_email_with_attachments_parses_headers_body_and_attachments():
    parsed = email_parse.parse(invoice_mail())
    assert parsed.headers["from"] == "Alice Accounts <alice@vendor.example>"
    assert parsed.headers["subject"] == "Invoice 2024-118 for March"
    assert parsed.headers["in-reply-to"] == "<earlier@client.example>"
    assert parsed.headers["message-id"].endswith("@vendor.example>")
    assert [a.name for a in parsed.attachments] == ["invoice-2024-118.pdf", "cv.docx"]
    assert parsed.attachments[0].data.startswith(b"%PDF")
    text = parsed.text()
    assert text.startswith("From: Alice Accounts <alice@vendor.example>\nTo: Bob Buyer")
    assert "please find our invoice attached" in text and "Attachments: invoice-2024-118.pdf, cv.docx" in text
    assert "JVBERi0" not in text  # never base64


def test_attached_message_is_an_attachment_whatever_its_encoding():
    original = email.message_from_bytes(invoice_mail(), policy=email.policy.default)
    proper = email.message.EmailMessage()
    proper["Subject"], proper["From"] = "Fwd: invoice", "bob@client.example"
    proper.set_content("Forwarding.")
    proper.add_attachment(original)  # message/rfc822, 7bit as RFC 2046 wants
    base64ed = mail_bytes("Fwd: invoice", "Forwarding.", attachments=[("original.eml", invoice_mail(),
                                                                         ("message", "rfc822"))])
    for data in (proper.as_bytes(), base64ed):
        attached = email_parse.parse(data).attachments
        assert len(attached) == 1 and attached[0].name.endswith(".eml")
        inner = email_parse.parse(attached[0].data)
        assert inner.headers["subject"] == "Invoice 2024-118 for March"
        assert [a.name for a in inner.attachments] == ["invoice-2024-118.pdf", "cv.docx"]


def test_html_only_email_becomes_text():
    parsed = email_parse.parse(html_mail())
    assert "Our\nkangaroo\nsale starts Monday." in parsed.body or "kangaroo" in parsed.body
    assert "<" not in parsed.body and "track()" not in parsed.body and "color:red" not in parsed.body


def test_converter_reads_an_email_as_its_words():
    doc = Document(id="x", paths=["/m.eml"], filename="m.eml")
    Converter(StageConfig()).convert(doc, invoice_mail())
    assert doc.converter == "email" and doc.mime == "message/rfc822"
    assert doc.source_meta["subject"] == "Invoice 2024-118 for March"
    assert doc.source_meta["attachments"] == ["invoice-2024-118.pdf", "cv.docx"]
    assert len(doc.text) < 500


def test_a_utf7_email_becomes_valid_text():
    # Python's UTF-7 decoder turns a "+..." run that is not UTF-16 (a PGP signature's base64) into lone
    # surrogates, which UTF-8 cannot encode: PostgreSQL refused the whole batch (a mailman3 test mail).
    raw = (b"From: user@example.com\r\nTo: list@example.com\r\nSubject: Re: wiki +AD4-\r\n"
           b"Content-Type: text/plain; charset=\"UTF-7\"\r\nMime-Version: 1.0\r\n\r\n"
           b"+AD4 Can I have write permissions?\r\nThanks\r\n-----BEGIN PGP SIGNATURE-----\r\n"
           b"iQIzBAEBCgAdFiEECPbAhaBWEfiXj/kxdRlcPb+1fkUFAlx5WHkACgkQdRlcPb+1\r\n"
           b"fkWe/w/+PEhOx7gyMjHdGT8hr3dZ2Hcr1PQPnM3h1BK5jE2NbWH4OaUotaes7Lo5\r\n")
    assert any(0xD800 <= ord(ch) <= 0xDFFF for ch in email_parse.parse(raw).text())   # the case exists
    doc = Document(id="x", paths=["/m.eml"], filename="m.eml")
    Converter(StageConfig()).convert(doc, raw)
    doc.text.encode("utf-8")
    for value in doc.source_meta.values():
        str(value).encode("utf-8")
    assert "> Can I have write permissions?" in doc.text


@pytest.mark.skipif(not os.path.isdir(LABELED), reason="../shared/corpus/labeled is not on this machine")
def test_real_emails_are_their_words():
    """The labelled set's emails: text is the mail's words (a few hundred to a few thousand characters,
    not base64), with its subject and sender."""
    files = sorted(glob.glob(os.path.join(LABELED, "*.eml")) + glob.glob(os.path.join(LABELED, "*.msg")))
    assert len(files) >= 12
    converter = Converter(StageConfig())
    for path in files:
        doc = Document(id="x", paths=[path], filename=os.path.basename(path))
        with open(path, "rb") as fh:
            converter.convert(doc, fh.read())
        assert doc.converter == "email", path
        assert doc.text.startswith("From: "), path
        assert doc.source_meta.get("subject"), path
        assert len(doc.text) < 6000, (path, len(doc.text))
        assert not any(len(word) > 200 for word in doc.text.split()), path  # no base64 runs
    doc = Document(id="x", paths=["m"], filename="email__mailmimeparser__m0001.eml")
    with open(os.path.join(LABELED, "email__mailmimeparser__m0001.eml"), "rb") as fh:
        converter.convert(doc, fh.read())
    assert 'To: "Jürgen Schmürgen"' in doc.text and "Die Hasen klagten einst" in doc.text


@pytest.mark.skipif(not os.path.isdir(LABELED), reason="../shared/corpus/labeled is not on this machine")
def test_real_xls_workbooks_become_tables():
    doc = Document(id="x", paths=["t.xls"], filename="spreadsheet__markitdown__test.xls")
    with open(os.path.join(LABELED, "spreadsheet__markitdown__test.xls"), "rb") as fh:
        Converter(StageConfig()).convert(doc, fh.read())
    assert doc.converter == "xlrd" and doc.mime == "application/vnd.ms-excel"
    assert "| Alpha | Beta | Gamma | Delta |" in doc.text


def test_rtf_without_libreoffice_reads_with_striprtf(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SOFFICE", raising=False)
    doc = Document(id="x", paths=["a.rtf"], filename="a.rtf")
    Converter(StageConfig()).convert(doc, rb"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard Wombat "
                                          rb"delivery note number 77.\par}")
    assert doc.converter == "striprtf" and "Wombat delivery note number 77." in doc.text


def test_health_reports_libreoffice_without_failing(monkeypatch, capsys, pg_dsn):
    from pipeline import health, store

    store.migrate(pg_dsn)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SOFFICE", raising=False)
    assert health.main(["--pg-dsn", pg_dsn]) == 0
    out = capsys.readouterr().out
    assert "warn LibreOffice      not installed: .doc and .ppt files are read as text only" in out
    assert "ok   classifier       USE multilingual v3" in out  # and its arithmetic on this CPU


def test_doc_and_ppt_without_libreoffice_are_read_as_text(monkeypatch, tmp_path):
    """Word and PowerPoint 97-2003 files that LibreOffice wrote (from a DOCX and a PPTX made with
    python-docx and python-pptx for this test; gzip-compressed in tests/data/legacy, and read so, to
    keep the deck's thumbnail small): their text from the binary formats, tables as rows of cells,
    slides and speaker notes without the masters' prompts; an encrypted .doc is a clear error."""
    import gzip

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SOFFICE", raising=False)
    with pytest.raises(legacy.LegacyError, match="install LibreOffice to read .doc"):
        legacy.soffice_convert(b"whatever", "doc", "docx")
    folder = os.path.join(os.path.dirname(__file__), "data", "legacy")
    converter = Converter(StageConfig())
    doc = Document(id="x", paths=["vertrag.doc.gz"], filename="vertrag.doc.gz")
    with open(os.path.join(folder, "vertrag.doc.gz"), "rb") as fh:
        converter.convert(doc, fh.read())
    assert doc.converter == "doc-text" and doc.mime == "application/msword"
    assert doc.text.splitlines()[:2] == [
        "Mietvertrag über Wohnräume",
        "Zwischen Anna Łukasiewicz, Kraków, und der Wohnbau Müller GmbH wird folgender Vertrag geschlossen."]
    assert "Kaltmiete | 850,00 €" in doc.text.splitlines()
    deck = Document(id="y", paths=["deck.ppt.gz"], filename="deck.ppt.gz")
    with open(os.path.join(folder, "deck.ppt.gz"), "rb") as fh:
        converter.convert(deck, fh.read())
    assert deck.converter == "ppt-text" and deck.mime == "application/vnd.ms-powerpoint"
    assert deck.text.splitlines() == ["Quarterly results Q3", "Revenue up 12 %", "New office in Zürich", "Next steps",
                                      "Hire two engineers", "東京 launch in spring", "Speaker note: mention the budget"]
    # The same .doc with its File Information Block's "encrypted" flag set (olefile rewrites the stream in place)
    import olefile

    encrypted = tmp_path / "encrypted.doc"
    with open(os.path.join(folder, "vertrag.doc.gz"), "rb") as fh:
        encrypted.write_bytes(gzip.decompress(fh.read()))
    with olefile.OleFileIO(str(encrypted), write_mode=True) as ole:
        word = bytearray(ole.openstream("WordDocument").read())
        word[0x0B] |= 0x01
        ole.write_stream("WordDocument", bytes(word))
    with pytest.raises(ConversionError, match="encrypted .doc"):
        converter.convert(Document(id="z", paths=["e.doc"], filename="e.doc"), encrypted.read_bytes())


@pytest.mark.skipif(legacy.soffice_path() is None, reason="LibreOffice (soffice) is not installed here")
def test_doc_with_libreoffice(tmp_path):
    # A .doc made by LibreOffice itself from a DOCX, then read back through the converter.
    data = legacy.soffice_convert(docs.docx_bytes("Memo", ["The emu budget is approved."]), "docx", "doc")
    doc = Document(id="x", paths=["m.doc"], filename="m.doc")
    Converter(StageConfig()).convert(doc, data)
    assert "emu budget" in doc.text and doc.converter == "libreoffice+docling"
    assert doc.mime == "application/msword"
    doc = Document(id="x", paths=["a.rtf"], filename="a.rtf")
    Converter(StageConfig()).convert(doc, rb"{\rtf1\ansi\pard Wombat delivery note number 77.\par}")
    assert doc.converter == "libreoffice+docling" and "Wombat delivery note number 77." in doc.text


@pytest.mark.skipif(legacy.soffice_path() is None or legacy.missing_component("pptx") is not None,
                    reason="LibreOffice with Impress is not installed here")
def test_ppt_with_libreoffice():
    # A .ppt, made by LibreOffice from a PPTX (python-pptx), read back through LibreOffice and docling.
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly numbat census"
    slide.placeholders[1].text = "Numbats counted: 412"
    buffer = io.BytesIO()
    deck.save(buffer)
    ppt = legacy.soffice_convert(buffer.getvalue(), "pptx", "ppt")
    doc = Document(id="x", paths=["c.ppt"], filename="c.ppt")
    Converter(StageConfig()).convert(doc, ppt)
    assert doc.mime == "application/vnd.ms-powerpoint" and "Numbats counted: 412" in doc.text


@pytest.mark.skipif(legacy.soffice_path() is None or legacy.missing_component("pptx") is None,
                    reason="needs a LibreOffice without Impress (Writer only), as Debian packages it apart")
def test_a_missing_libreoffice_application_is_named():
    """LibreOffice's own words for it are "source file could not be loaded"; the recorded reason names
    the application to install instead, and a rerun retries it (it is no verdict on the file)."""
    from transforms.failures import is_deterministic

    with pytest.raises(legacy.LegacyError) as failure:
        legacy.soffice_convert(b"not read", "ppt", "pptx")
    assert str(failure.value).startswith("LibreOffice's Impress is not installed")
    assert "libreoffice-impress-nogui" in str(failure.value)
    assert not is_deterministic("convert", str(failure.value))


# -- containers and their limits -----------------------------------------------------------------

def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_nested_zip_with_a_mail_expands_recursively_and_members_read_back(tmp_path):
    inner = zip_bytes({"reports/q1.txt": b"First quarter report: revenue grew."})
    path = docs.write(tmp_path, "bundle.zip", zip_bytes({"inner.zip": inner, "mails/invoice.eml": invoice_mail()}))
    found, names = containers.expand(path, containers.Limits())
    by_path = {m.path[len(path):]: m for m in found}
    assert names == ["inner.zip", "mails/invoice.eml"]
    assert set(by_path) == {"!/inner.zip", "!/inner.zip!/reports/q1.txt", "!/mails/invoice.eml",
                            "!/mails/invoice.eml!/invoice-2024-118.pdf", "!/mails/invoice.eml!/cv.docx"}
    assert all(m.error is None and m.id for m in found)
    assert by_path["!/inner.zip"].listing == ["reports/q1.txt"]
    assert containers.read_member(path + "!/inner.zip!/reports/q1.txt", 10_000).startswith(b"First quarter")
    assert containers.read_member(path + "!/mails/invoice.eml!/invoice-2024-118.pdf", 10 << 20).startswith(b"%PDF")


def test_hostile_archives_fail_with_their_reasons(tmp_path):
    limits = containers.Limits()
    # A member inflating 1,000x (100 MB of zeros in ~100 KB): that member is refused, unread.
    bomb = docs.write(tmp_path, "bomb.zip", zip_bytes({"zeros.txt": b"\0" * (100 << 20), "ok.txt": b"fine words"}))
    found = {m.name: m for m in containers.expand(bomb, limits)[0]}
    assert "compression ratio" in found["zeros.txt"].error and "decompression bomb" in found["zeros.txt"].error
    assert found["ok.txt"].error is None
    # Over the total: the whole archive is refused before anything is inflated.
    with pytest.raises(containers.LimitError, match="archive-max-total-mb"):
        containers.expand(bomb, containers.Limits(max_total=50 << 20))
    # Too many members.
    many = docs.write(tmp_path, "many.zip", zip_bytes({f"f{i}.txt": b"x" for i in range(30)}))
    with pytest.raises(containers.LimitError, match="more than 20 members"):
        containers.expand(many, containers.Limits(max_members=20))
    # Path traversal and absolute names: those members fail; the rest stand.
    evil = docs.write(tmp_path, "evil.zip", zip_bytes({"../../etc/passwd": b"x", "/abs.txt": b"y",
                                                       "good.txt": b"good"}))
    found = {m.name: m for m in containers.expand(evil, limits)[0]}
    assert "path traversal" in found["../../etc/passwd"].error and "path traversal" in found["/abs.txt"].error
    assert found["good.txt"].error is None
    # Nesting deeper than the limit: the innermost archive is not opened.
    level = zip_bytes({"deep.txt": b"bottom"})
    for _ in range(3):
        level = zip_bytes({"next.zip": level})
    deep = docs.write(tmp_path, "deep.zip", level)
    found = containers.expand(deep, containers.Limits(max_depth=3))[0]
    assert [m.error is not None for m in found] == [False, False, True]
    assert "--archive-max-depth" in found[-1].error
    # A compressed tar bomb: judged as a whole (no per-member sizes), the archive is refused.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 30 << 20
        tf.addfile(info, io.BytesIO(b"\0" * info.size))
    tarbomb = docs.write(tmp_path, "bomb.tar.gz", buffer.getvalue())
    with pytest.raises(containers.LimitError, match="compression ratio"):
        containers.expand(tarbomb, limits)


def test_tar_gz_and_7z_with_nested_zip_and_attached_message(tmp_path):
    import py7zr

    forwarded = mail_bytes("Fwd: original", "See the original below.",
                           attachments=[("original.eml", invoice_mail(), ("message", "rfc822"))])
    inner = zip_bytes({"fwd.eml": forwarded})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("box/inner.zip")
        info.size = len(inner)
        tf.addfile(info, io.BytesIO(inner))
    tgz = docs.write(tmp_path, "box.tar.gz", buffer.getvalue())
    with py7zr.SevenZipFile(tmp_path / "box.7z", "w") as sz:
        sz.writestr(inner, "inner.zip")
        sz.writestr(b"plain words", "notes.txt")
    for path, prefix in ((tgz, "!/box/inner.zip"), (str(tmp_path / "box.7z"), "!/inner.zip")):
        found = {m.path[len(path):]: m for m in containers.expand(path, containers.Limits(max_depth=4))[0]}
        pdf = f"{prefix}!/fwd.eml!/original.eml!/invoice-2024-118.pdf"
        assert pdf in found and found[pdf].error is None, sorted(found)
        assert containers.read_member(path + pdf, 10 << 20).startswith(b"%PDF")
    assert containers.read_member(str(tmp_path / "box.7z") + "!/notes.txt", 100) == b"plain words"


def test_duplicate_member_names_and_corrupt_members(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.txt", b"first")
        with pytest.warns(UserWarning):
            zf.writestr("a.txt", b"second")
    path = docs.write(tmp_path, "dup.zip", buffer.getvalue())
    found = containers.expand(path, containers.Limits())[0]
    assert [m.error is None for m in found] == [True, False] and "duplicate member name" in found[1].error
    assert found[0].path != found[1].path  # one outcome per path
    assert containers.read_member(path + "!/a.txt", 100) == b"first"


def test_member_paths_only_split_after_a_container_name(tmp_path):
    folder = tmp_path / "news!"
    folder.mkdir()
    assert containers.split(str(folder) + "/a.pdf") is None
    assert containers.split("/in/a.zip!/b/c.eml!/d.pdf") == ("/in/a.zip", ["b/c.eml", "d.pdf"])


# -- the real pipeline ---------------------------------------------------------------------------

def make_heap(folder) -> None:
    docs.write(folder, "invoice-mail.eml", invoice_mail())
    docs.write(folder, "newsletter.eml", html_mail())
    box = mailbox.mbox(str(folder / "archive.mbox"))
    for i, animal in enumerate(("wombat", "echidna", "bilby")):
        box.add(mail_bytes(f"Question {i + 1} about the {animal}", f"Where does the {animal} sleep at night?"))
    box.close()
    inner = zip_bytes({"notes/minutes.txt": b"Minutes of the board meeting: the koala budget was approved."})
    docs.write(folder, "bundle.zip", zip_bytes({"inner.zip": inner, "mails/fwd.eml": mail_bytes(
        "Fwd: delivery", "The delivery note is attached.", attachments=[
            ("delivery-note.txt", b"Delivery note 5531: 12 crates of macadamia nuts.", ("text", "plain"))])}))
    docs.write(folder, "bomb.zip", zip_bytes({"zeros.txt": b"\0" * (100 << 20), "ok.txt": b"A survivor note."}))
    docs.write(folder, "traversal.zip", zip_bytes({"../escape.txt": b"x", "fine.txt": b"The fine print."}))


@pytest.mark.slow
def test_pipeline_records_every_member_links_parents_and_finds_attachments(tmp_path, pg_dsn, capsys):
    from pipeline import run as run_module
    from pipeline import search, status

    folder = tmp_path / "heap"
    make_heap(folder)
    summary = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "c1"])
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute("SELECT i.path, i.status, i.parent_id, i.member_name, d.error_message, d.converter "
                            "FROM inputs i JOIN documents d ON d.id = i.document_id").fetchall()
        ids = dict(conn.execute("SELECT path, document_id FROM inputs").fetchall())
        doc_parents = dict(conn.execute("SELECT id, parent_id FROM documents WHERE parent_id IS NOT NULL").fetchall())
        paths_total = conn.execute("SELECT paths_total FROM runs WHERE id = 'c1'").fetchone()[0]
        category = dict(conn.execute("SELECT i.path, d.category FROM inputs i JOIN documents d "
                                     "ON d.id = i.document_id").fetchall())
    # a mailbox filed as a whole is mail; an archive is a folder, no kind of document
    assert (category[str(folder / "archive.mbox")], category[str(folder / "bundle.zip")]) == ("email", "other")
    outcome = {p[len(str(folder)) + 1:]: (s, parent, name, err, conv) for p, s, parent, name, err, conv in rows}
    expected_completed = {
        "invoice-mail.eml", "invoice-mail.eml!/invoice-2024-118.pdf", "invoice-mail.eml!/cv.docx",
        "newsletter.eml", "archive.mbox", "archive.mbox!/message-00001.eml", "archive.mbox!/message-00002.eml",
        "archive.mbox!/message-00003.eml", "bundle.zip", "bundle.zip!/inner.zip",
        "bundle.zip!/inner.zip!/notes/minutes.txt", "bundle.zip!/mails/fwd.eml",
        "bundle.zip!/mails/fwd.eml!/delivery-note.txt", "bomb.zip", "bomb.zip!/ok.txt", "traversal.zip",
        "traversal.zip!/fine.txt"}
    expected_failed = {"bomb.zip!/zeros.txt", "traversal.zip!/../escape.txt"}
    assert set(outcome) == expected_completed | expected_failed  # one outcome per path and member
    assert {p: o[3] for p, o in outcome.items() if o[0] != "completed"}.keys() == expected_failed
    assert "decompression bomb" in outcome["bomb.zip!/zeros.txt"][3]
    assert "path traversal" in outcome["traversal.zip!/../escape.txt"][3]
    # Parent links: per path and per document.
    pdf = "invoice-mail.eml!/invoice-2024-118.pdf"
    assert outcome[pdf][1:3] == (ids[str(folder / "invoice-mail.eml")], "invoice-2024-118.pdf")
    assert outcome["bundle.zip!/inner.zip!/notes/minutes.txt"][1] == ids[str(folder / "bundle.zip!/inner.zip")]
    assert doc_parents[ids[str(folder / pdf)]] == ids[str(folder / "invoice-mail.eml")]
    assert outcome["invoice-mail.eml"][4] == "email" and outcome["bundle.zip"][4] == "archive"
    assert summary["failed"] == 2
    assert paths_total == len(outcome) == 19  # progress counts members: 6 listed files, 13 members

    # The attached PDF is found by search, and its document says which mail it came with.
    hits = search.run_search(pg_dsn, "Quokka Consulting invoice 2024-118", limit=3)
    assert hits and hits[0]["id"] == ids[str(folder / pdf)]
    from pipeline import store
    info = store.document_status(pg_dsn, ids[str(folder / pdf)])
    assert info["parents"][0]["parent_id"] == ids[str(folder / "invoice-mail.eml")]
    mail = store.document_status(pg_dsn, str(folder / "invoice-mail.eml"))
    assert {c["member_name"] for c in mail["children"]} == {"invoice-2024-118.pdf", "cv.docx"}
    assert mail["metadata"]["email"]["subject"] == "Invoice 2024-118 for March"
    assert mail["metadata"]["title"] == "Invoice 2024-118 for March"
    capsys.readouterr()
    assert status.main(["c1", "--verify", "--pg-dsn", pg_dsn]) == 0
    assert "6 with an outcome, 0 without\n  and 13 members of containers" in capsys.readouterr().out
    # The web page links both ways: the attachment to its mail, the mail to its attachments.
    import urllib.request

    from tests.webserver import serve
    with serve(pg_dsn) as url:
        pdf_page = urllib.request.urlopen(f"{url}/documents/{ids[str(folder / pdf)]}").read().decode()
        mail_page = urllib.request.urlopen(f"{url}/documents/{ids[str(folder / 'invoice-mail.eml')]}").read().decode()
        zip_page = urllib.request.urlopen(f"{url}/documents/{ids[str(folder / 'bomb.zip')]}").read().decode()
        import json
        from urllib.parse import quote
        api = json.load(urllib.request.urlopen(f"{url}/api/status?path={quote(str(folder / pdf))}"))
    assert api["parents"][0]["member_name"] == "invoice-2024-118.pdf"
    assert f'href="/documents/{ids[str(folder / "invoice-mail.eml")]}"' in pdf_page and "Came with" in pdf_page
    assert f'href="/documents/{ids[str(folder / pdf)]}"' in mail_page and "cv.docx" in mail_page
    assert "Invoice 2024-118 for March" in mail_page and "&lt;earlier@client.example&gt;" in mail_page
    assert "decompression bomb" in zip_page and "ok.txt" in zip_page

    # A rerun of the unchanged heap: containers skipped whole, nothing processed again.
    again = run_module.run(["--input", str(folder), "--pg-dsn", pg_dsn, "--run-id", "c2"])
    assert again["completed"] == 0 and again["skipped_unchanged"] == 6
    # --retry-failed takes the failed members by their paths, and they fail again with the same reason.
    retry = run_module.run(["--retry-failed", "--pg-dsn", pg_dsn, "--run-id", "c3"])
    assert retry["failed"] == 2
    bomb = str(folder / "bomb.zip!/zeros.txt")

    def reason(path):
        with psycopg.connect(pg_dsn) as conn:
            return conn.execute("SELECT i.run_id, d.error_stage, d.error_message FROM inputs i "
                                "JOIN documents d ON d.id = i.document_id WHERE i.path = %s", (path,)).fetchone()
    assert reason(bomb)[:2] == ("c3", "read") and "decompression bomb" in reason(bomb)[2]
    # With the ratio limit raised, the retried member is read out of its zip (and is no text).
    run_module.run(["--retry-failed", "--pg-dsn", pg_dsn, "--run-id", "c4", "--archive-max-ratio", "5000"])
    assert reason(bomb) == ("c4", "convert", "binary content that is not a supported document format")
