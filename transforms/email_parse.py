"""Emails (.eml, Outlook .msg) as documents: headers and body text, attachments apart.

An email file is mostly base64: read as plain text it became 170,000 characters of garbage per mail.
Here it is parsed (the standard library's `email` package with `policy.default`; `extract-msg` for
Outlook's OLE format) into the headers a reader cares about and the body's words (text/plain
preferred, else the HTML body turned into text). The document's text is a short header block plus the
body; the attachments are documents of their own (transforms/containers.py expands them), so they are
named here but never inlined.
"""
from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
import re
from collections.abc import Iterator

# Headers kept in the document's metadata (metadata.email) and, the first five, in its text.
HEADER_NAMES = ("from", "to", "cc", "date", "subject", "message-id", "in-reply-to", "references")
TEXT_HEADERS = ("from", "to", "cc", "date", "subject")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class EmailError(Exception):
    """An email that cannot be parsed; the message is the recorded reason."""


@dataclasses.dataclass
class Attachment:
    name: str          # unique within its email (see _unique_names)
    data: bytes


@dataclasses.dataclass
class ParsedEmail:
    headers: dict[str, str]
    body: str
    attachments: list[Attachment]

    def text(self) -> str:
        """The document's text: header block, blank line, body."""
        lines = [f"{name.title()}: {self.headers[name]}" for name in TEXT_HEADERS if self.headers.get(name)]
        if self.attachments:
            lines.append("Attachments: " + ", ".join(a.name for a in self.attachments))
        return "\n".join(lines) + "\n\n" + self.body.replace("\r\n", "\n").strip()


def is_msg(data: bytes, filename: str = "") -> bool:
    """An Outlook .msg: an OLE compound file with the MAPI property streams."""
    if not data.startswith(OLE_MAGIC):
        return False
    if filename.lower().endswith(".msg"):
        return True
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            return any(entry[0].startswith("__substg1.0_") for entry in ole.listdir())
    except Exception:
        return False


def looks_like_email(data: bytes) -> bool:
    """RFC 822 headers at the start: 'From:'/'Received:'/... lines before the first blank line,
    with at least two of the headers every mail carries."""
    head = data[:8192].lstrip()
    if head.startswith(b"From ") and b"\n" in head:  # an mbox "From " separator line
        head = head.split(b"\n", 1)[1]
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    names = {m.group(1).lower() for m in re.finditer(rb"^([A-Za-z][A-Za-z0-9-]*):", block, re.M)}
    if not names or not re.match(rb"^[A-Za-z][A-Za-z0-9-]*:", block):
        return False
    return len(names & {b"from", b"to", b"subject", b"date", b"message-id", b"received",
                        b"mime-version", b"return-path"}) >= 2


def parse(data: bytes, filename: str = "") -> ParsedEmail:
    if is_msg(data, filename):
        return _parse_msg(data)
    return _parse_eml(data)


# -- RFC 822 / MIME -----------------------------------------------------------------------------

def _parse_eml(data: bytes) -> ParsedEmail:
    if data.startswith(b"From ") and b"\n" in data[:1024]:
        data = data.split(b"\n", 1)[1]  # mbox separator line left on a single message
    data = _repair_header_block(data)
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is for truly broken input
        raise EmailError(f"unreadable email: {type(exc).__name__}: {exc}") from exc
    headers = {}
    for name in HEADER_NAMES:
        value = _header(msg, name)
        if "\ufffd" in value:
            # Raw 8-bit header (no RFC 2047 encoding), usually Latin-1 from old mailers: the default
            # policy cannot know the charset; the legacy parser keeps the bytes to decode them here.
            value = _raw_header(data, name) or value
        if value and value not in ("<>", '""'):
            headers[name] = value
    plain, html = [], []
    attachments = []
    _walk(msg, plain, html, attachments)
    if plain:
        body = "\n\n".join(plain)
    elif html:
        body = "\n\n".join(html_to_text(h) for h in html)
    else:
        body = ""
    return ParsedEmail(headers, body, _unique_names(attachments))


def _repair_header_block(data: bytes) -> bytes:
    """A header line that is neither `Name: value` nor indented is a continuation its mailer forgot to
    indent (seen in real list archives); the parser would end the headers there and lose From and
    Subject into the body. Indent such lines."""
    match = re.search(rb"\r?\n\r?\n", data)
    if not match:
        return data
    block = data[:match.start()]
    lines = block.split(b"\n")
    fixed = [line if (i == 0 or line[:1] in (b" ", b"\t") or re.match(rb"^[!-9;-~]+:", line)) else b" " + line
             for i, line in enumerate(lines)]
    if fixed == lines:
        return data
    return b"\n".join(fixed) + data[match.start():]


def _raw_header(data: bytes, name: str) -> str:
    """A header's value read from the bytes: UTF-8, else Windows-1252, then RFC 2047 words decoded."""
    match = re.search(rb"\r?\n\r?\n", data)
    block = data[:match.start()] if match else data[:65536]
    found = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":(.*(?:\r?\n[ \t].*)*)", block)
    if not found:
        return ""
    raw = found.group(1)
    for charset in ("utf-8", "cp1252"):
        try:
            text = raw.decode(charset)
            break
        except UnicodeDecodeError:
            continue
    try:
        from email.header import decode_header, make_header

        text = str(make_header(decode_header(text)))
    except Exception:
        pass
    return " ".join(text.split())


def _header(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a malformed header the default policy cannot fold: take the raw value
        value = msg.get_all(name, failobj=[None])[0] if hasattr(msg, "get_all") else None
    if value is None:
        return ""
    return " ".join(str(value).split())


def _walk(part, plain: list[str], html: list[str], attachments: list[tuple[str, bytes]]) -> None:
    """Body texts and attachments of a MIME tree. A part is an attachment when it says so, has a
    file name, or is not text; an attached email (message/rfc822) is one attachment, kept whole."""
    ctype = part.get_content_type()
    filename = _safe_filename(part)
    disposition = part.get_content_disposition()
    if ctype == "message/rfc822":  # before multipart: its payload is a whole message (a forward)
        try:
            inner = part.get_content()
            data = inner.as_bytes(policy=email.policy.default.clone(linesep="\r\n"))
        except Exception:
            payload = part.get_payload()
            data = payload[0].as_bytes() if isinstance(payload, list) and payload else None
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if data and encoding in ("base64", "quoted-printable"):
            # Not allowed for message/rfc822 (RFC 2046), yet some mailers do it: the parser then sees
            # the encoded text as the inner message's body. Decode it back into the message.
            import base64
            import quopri

            # The "message" the parser made has no headers, only the encoded text as its body.
            body = data if data.lstrip(b"\r\n") != data else data.split(b"\r\n\r\n", 1)[-1]
            try:
                data = base64.b64decode(body, validate=False) if encoding == "base64" else quopri.decodestring(body)
            except Exception:
                data = None
        if data:
            name = filename or "attached-message.eml"
            attachments.append((name if name.lower().endswith(".eml") else name + ".eml", data))
        return
    if part.is_multipart():
        for sub in part.iter_parts():
            _walk(sub, plain, html, attachments)
        return
    if disposition != "attachment" and ctype.startswith("image/") and part.get("content-id"):
        return  # a picture shown inside the HTML body (logo, signature), not a file the sender attached
    if disposition == "attachment" or filename or ctype not in ("text/plain", "text/html"):
        data = part.get_payload(decode=True)
        if data:
            attachments.append((filename or f"attachment{_extension(ctype)}", data))
        return
    try:
        text = part.get_content()
    except Exception:  # an unknown charset: decode as Latin-1 rather than lose the words
        text = (part.get_payload(decode=True) or b"").decode("latin-1", errors="replace")
    if not isinstance(text, str) or not text.strip():
        return
    (html if ctype == "text/html" else plain).append(text)


def _safe_filename(part) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    # A name is only a label inside the mail: no folders, no control characters, and never `!/`,
    # which separates container and member in our paths.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).replace("!", "_").strip().strip(".")
    return name[:200]


_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "text/html": ".html", "text/csv": ".csv",
               "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/tiff": ".tif",
               "application/zip": ".zip", "application/msword": ".doc", "application/vnd.ms-excel": ".xls",
               "application/rtf": ".rtf", "message/rfc822": ".eml",
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
               "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
               "application/vnd.ms-powerpoint": ".ppt",
               "application/vnd.oasis.opendocument.text": ".odt",
               "application/vnd.oasis.opendocument.spreadsheet": ".ods",
               "application/vnd.oasis.opendocument.presentation": ".odp"}


def _extension(ctype: str) -> str:
    return _EXTENSIONS.get(ctype, ".bin")


def _unique_names(items: list[tuple[str, bytes]]) -> list[Attachment]:
    """Attachment names unique within the mail (two 'image001.png' become 'image001 (2).png'): a
    member path must name one attachment."""
    seen: dict[str, int] = {}
    out = []
    for name, data in items:
        key = name.lower()
        if key in seen:
            seen[key] += 1
            stem, dot, ext = name.rpartition(".")
            name = f"{stem} ({seen[key]}).{ext}" if dot and stem else f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        out.append(Attachment(name, data))
    return out


def html_to_text(html: str) -> str:
    """Words of an HTML body, one block per line; scripts, styles and comments dropped."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title", "meta"]):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    text = soup.get_text("\n")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- Outlook .msg -------------------------------------------------------------------------------

def _parse_msg(data: bytes) -> ParsedEmail:
    import extract_msg

    try:
        msg = extract_msg.openMsg(data)
    except Exception as exc:
        raise EmailError(f"unreadable Outlook .msg file: {type(exc).__name__}: {exc}") from exc
    try:
        headers = {}
        values = {"from": msg.sender, "to": msg.to, "cc": msg.cc, "date": msg.date, "subject": msg.subject,
                  "message-id": getattr(msg, "messageId", None), "in-reply-to": getattr(msg, "inReplyTo", None)}
        header = getattr(msg, "header", None)
        if header is not None:
            values["references"] = header.get("references")
            values.setdefault("in-reply-to", header.get("in-reply-to"))
        for name in HEADER_NAMES:
            value = values.get(name)
            value = " ".join(str(value).split()) if value else ""
            if value and value not in ("<>", '""'):
                headers[name] = value
        body = msg.body or ""
        if not body.strip() and msg.htmlBody:
            raw = msg.htmlBody
            body = html_to_text(raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw)
        items = []
        for att in msg.attachments:
            payload = att.data
            if hasattr(payload, "exportBytes"):  # an attached .msg: exported as a .msg of its own
                payload = payload.exportBytes()
            if not isinstance(payload, bytes) or not payload:
                continue
            name = att.longFilename or att.shortFilename or "attachment.bin"
            items.append((name.replace("\\", "/").rsplit("/", 1)[-1].replace("!", "_").strip() or "attachment.bin",
                          payload))
        return ParsedEmail(headers, body.replace("\r\n", "\n"), _unique_names(items))
    finally:
        msg.close()


def attachment(data: bytes, filename: str, name: str) -> bytes:
    """The bytes of one attachment, by its unique name."""
    for att in parse(data, filename).attachments:
        if att.name == name:
            return att.data
    raise EmailError(f"no attachment named {name!r} in the email")


def iter_attachments(data: bytes, filename: str) -> Iterator[Attachment]:
    yield from parse(data, filename).attachments
