"""A folder of mails and archives to measure the pipeline on (issue 16), and the hostile archives it
must survive.

    python -m bench.corpus --out /tmp/c --docs 40 --seed 1 --scanned-share 0
    python -m bench.containers_heap --docs /tmp/c/docs --out /tmp/heap [--real ../shared/corpus/labeled]
    python -m pipeline.run --input /tmp/heap/mails-and-archives --data-dir /tmp/heap-data
    python -m pipeline.run --input /tmp/heap/hostile --data-dir /tmp/heap-data

`mails-and-archives/` packs the generated documents into emails (each with one or two of them
attached), an .mbox, .zip files (one nested, one holding a mail), a .tar.gz and a .7z, plus the real
.eml/.msg files of --real. `hostile/` holds one archive per attack; HOSTILE below says what each is.
"""
from __future__ import annotations

import argparse
import email.message
import email.policy
import io
import mailbox
import os
import tarfile
import zipfile

HOSTILE = {
    "ratio-bomb.zip": "one member of 200 MB of zeros (~200 KB compressed) beside a normal one",
    "nested-bomb.zip": "42.zip-like: 4 levels of 16 nested zips, 1 MB of zeros at the bottom (65,536 members)",
    "traversal.zip": "members named ../../etc/passwd and /etc/shadow beside a normal one",
    "too-deep.zip": "zips nested 6 deep around one text file",
    "tar-bomb.tar.gz": "a gzip'd tar of 300 MB of zeros",
    "many-members.zip": "12,000 one-byte members",
    "truncated.zip": "a zip cut in half (no central directory)",
    "encrypted.7z": "a password-protected 7z",
}


def _mail(subject: str, body: str, attachments: list[tuple[str, bytes]]) -> bytes:
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Accounts <accounts@vendor.example>"
    msg["To"] = "inbox@client.example"
    msg["Date"] = "Mon, 04 Mar 2024 09:00:00 +0000"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash(subject)) % 10**12}@vendor.example>"
    msg.set_content(body)
    for name, data in attachments:
        maintype, subtype = ("application", "pdf") if name.endswith(".pdf") else ("application", "octet-stream")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def mails_and_archives(docs: list[str], out: str, real: str | None) -> int:
    """Pack the documents; returns the number of files written."""
    def content(path):
        with open(path, "rb") as fh:
            return os.path.basename(path), fh.read()

    items = [content(p) for p in docs]
    n = len(items)
    quarter = max(1, n // 5)
    written = 0
    # Emails with one or two attachments each.
    for i in range(0, quarter, 2):
        pair = items[i:i + 2]
        _write(os.path.join(out, f"mail-{i:03d}.eml"), _mail(
            f"Documents {i}", f"Hello,\n\nattached: {', '.join(name for name, _ in pair)}.\n\nRegards", pair))
        written += 1
    # A mailbox whose messages carry the next quarter.
    box = mailbox.mbox(os.path.join(out, "inbox.mbox"))
    for name, data in items[quarter:2 * quarter]:
        box.add(_mail(f"Re: {name}", f"Here is {name} as promised.", [(name, data)]))
    box.close()
    written += 1
    # Zips: a plain one, one with a nested zip and a mail inside.
    third = items[2 * quarter:3 * quarter]
    _write(os.path.join(out, "plain.zip"), _zip({f"docs/{name}": data for name, data in third}))
    fourth = items[3 * quarter:4 * quarter]
    half = len(fourth) // 2
    _write(os.path.join(out, "nested.zip"), _zip({
        "inner.zip": _zip({name: data for name, data in fourth[:half]}),
        "mail/forwarded.eml": _mail("Fwd: documents", "See attached.", fourth[half:])}))
    # A tar.gz and a 7z with the rest.
    rest = items[4 * quarter:]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in rest[:len(rest) // 2]:
            info = tarfile.TarInfo(f"folder/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _write(os.path.join(out, "bundle.tar.gz"), buffer.getvalue())
    import py7zr

    with py7zr.SevenZipFile(os.path.join(out, "bundle.7z"), "w") as sz:
        for name, data in rest[len(rest) // 2:]:
            sz.writestr(data, name)
    written += 4
    if real and os.path.isdir(real):
        for name in sorted(os.listdir(real)):
            if name.lower().endswith((".eml", ".msg")):
                with open(os.path.join(real, name), "rb") as fh:
                    _write(os.path.join(out, "real", name), fh.read())
                written += 1
    return written


def hostile(out: str) -> None:
    _write(os.path.join(out, "ratio-bomb.zip"), _zip({"zeros.bin": b"\0" * (200 << 20), "ok.txt": b"A normal note."}))
    level = _zip({"zeros.bin": b"\0" * (1 << 20)})
    for _ in range(4):
        level = _zip({f"copy-{i:02d}.zip": level for i in range(16)}, zipfile.ZIP_STORED)
    _write(os.path.join(out, "nested-bomb.zip"), level)
    _write(os.path.join(out, "traversal.zip"), _zip({"../../etc/passwd": b"root:x:0:0", "/etc/shadow": b"x",
                                                     "readme.txt": b"A harmless readme about wombats."}))
    level = _zip({"bottom.txt": b"The bottom of the well."})
    for depth in range(5):
        level = _zip({f"level-{depth}.zip": level})
    _write(os.path.join(out, "too-deep.zip"), level)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 300 << 20
        tf.addfile(info, io.BytesIO(b"\0" * info.size))
    _write(os.path.join(out, "tar-bomb.tar.gz"), buffer.getvalue())
    _write(os.path.join(out, "many-members.zip"), _zip({f"m/{i:05d}.txt": b"x" for i in range(12_000)}))
    whole = _zip({"a.txt": b"some text " * 1000})
    _write(os.path.join(out, "truncated.zip"), whole[:len(whole) // 2])
    import py7zr

    with py7zr.SevenZipFile(os.path.join(out, "encrypted.7z"), "w", password="secret") as sz:
        sz.writestr(b"hidden words", "secret.txt")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.containers_heap", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", required=True, help="folder of documents to pack (e.g. bench.corpus's docs/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--real", default=None, help="folder whose .eml/.msg files are copied in as they are")
    args = parser.parse_args(argv)
    docs = sorted(os.path.join(root, f) for root, _, files in os.walk(args.docs) for f in files)
    n = mails_and_archives(docs, os.path.join(args.out, "mails-and-archives"), args.real)
    hostile(os.path.join(args.out, "hostile"))
    print(f"{n} files packing {len(docs)} documents in {args.out}/mails-and-archives; "
          f"{len(HOSTILE)} hostile archives in {args.out}/hostile")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
