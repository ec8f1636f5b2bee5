"""Containers: archives (.zip, .tar[.gz|.bz2|.xz], .7z), mailboxes (.mbox) and emails (.eml, .msg).

Every member of a container (an archive member, a message of a mailbox, an attachment of an email) is
a document of its own, at a path that names the container and the member:
`/in/archive.zip!/folder/member.pdf`, `/in/mail.eml!/invoice.pdf`, nested as
`/in/a.zip!/mails/b.eml!/cv.docx`. `expand` lists a container's members recursively, hashing each
member's bytes as they stream past, and is called inside the pipeline (ExpandContainers, right after
hashing) so that it runs on whatever worker holds the container, on every runner.

How a member's bytes reach the converter: they are NOT carried through the pipeline. The converter
re-opens the container by the member's path (`read_member`), as it re-reads ordinary files: records
stay small in every shuffle (a member may be 100 MB, an archive has thousands), and a worker never
holds more than the one member it converts. The price is opening the container again per member:
cheap for zip, 7z, mbox and emails (direct access), a sequential scan up to the member for a
compressed tar (which has no index).

Limits against hostile containers (Limits, from --archive-* options): total uncompressed size and
member count over the whole tree, compression ratio, nesting depth, and member names that would
escape a folder (absolute, `..`). A limit of the whole (total size, count, a compressed tar's
ratio) fails the container with the reason and none of its members is emitted; a limit of one member
(its ratio, its size over --max-file-size, an unsafe name, nesting too deep, encryption) fails that
member alone. Nothing is ever written to disk under a member's name; nested containers are copied
into spooled temporary files (memory up to SPOOL_MEMORY, then disk), so memory stays bounded whatever
the archive's size.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

SEP = "!/"
READ_BLOCK = 1 << 20
SPOOL_MEMORY = 16 << 20  # a nested container larger than this is spooled to a temporary file
RATIO_MIN_BYTES = 1 << 20  # the ratio limit applies to members above this size (tiny files compress a lot)
LISTING_MAX = 1000  # member names written into a container's own text

ARCHIVE_EXTENSIONS = ((".tar.gz", "tar"), (".tgz", "tar"), (".tar.bz2", "tar"), (".tbz2", "tar"),
                      (".tar.xz", "tar"), (".txz", "tar"), (".tar", "tar"), (".zip", "zip"), (".7z", "7z"),
                      (".mbox", "mbox"))
EMAIL_EXTENSIONS = (".eml", ".msg")
ARCHIVE_KINDS = {"zip", "tar", "7z", "mbox"}


class LimitError(Exception):
    """The whole container is refused (message = the recorded reason)."""


class MemberError(Exception):
    """One member cannot be used (message = the recorded reason)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    max_total: int = 20 << 30     # uncompressed bytes over the whole container tree
    max_members: int = 10_000     # members over the whole tree
    max_ratio: float = 200.0      # uncompressed / compressed, per member (a compressed tar: overall)
    max_depth: int = 3            # containers inside containers, the top one being depth 1
    max_member: int = 100 << 20   # one member (it is converted in memory): --max-file-size

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(max_total=config.archive_max_total_mb << 20, max_members=config.archive_max_members,
                   max_ratio=config.archive_max_ratio, max_depth=config.archive_max_depth,
                   max_member=config.max_file_size)


@dataclasses.dataclass
class Member:
    """A member found by `expand`: its path, the container's path, its name inside it, and either
    its content id and size or the reason it cannot be used."""
    path: str
    parent: str
    name: str
    id: str | None = None
    size: int = 0
    error: str | None = None
    listing: list[str] | None = None  # for a member that is itself an archive: its members' names


def kind(name: str) -> str | None:
    """'zip' | 'tar' | '7z' | 'mbox' | 'email' | None, from the name (the last path element)."""
    lowered = name.rsplit("/", 1)[-1].lower()
    for ext, k in ARCHIVE_EXTENSIONS:
        if lowered.endswith(ext):
            return k
    if lowered.endswith(EMAIL_EXTENSIONS):
        return "email"
    return None


def is_archive(name: str) -> bool:
    return kind(name) in ARCHIVE_KINDS


def split(path: str) -> tuple[str, list[str]] | None:
    """`outer!/a!/b` -> (outer, [a, b]); None for an ordinary path. `!/` separates only after a
    container's name (a folder may well be called `news!`), and not after a local folder that happens
    to be named like one (`backup.zip/`)."""
    start = 0
    while True:
        at = path.find(SEP, start)
        if at < 0:
            return None
        outer = path[:at]
        if kind(outer) is not None and not os.path.isdir(outer):
            names = path[at + len(SEP):].split(SEP)
            return outer, names
        start = at + 1


def is_member_path(path: str) -> bool:
    return SEP in path and split(path) is not None


def member_path(parent: str, name: str) -> str:
    return f"{parent}{SEP}{name}"


def unsafe_name(name: str) -> str | None:
    """Why a member name is refused, or None. We never write members to disk, but a name that
    climbs out of its folder is the mark of a hostile archive, and `!/` would break our paths."""
    if not name or "\x00" in name:
        return "empty or NUL in member name"
    unixish = name.replace("\\", "/")
    if unixish.startswith("/") or re.match(r"^[A-Za-z]:", unixish):
        return f"unsafe member name {name!r}: absolute path (path traversal)"
    if ".." in unixish.split("/"):
        return f"unsafe member name {name!r}: '..' climbs out of the archive (path traversal)"
    if SEP in name:
        return f"unsafe member name {name!r}: contains '!/'"
    return None


# -- opening --------------------------------------------------------------------------------------

def _open_source(path: str):
    from transforms.read import _open_raw

    return _open_raw(path)


@contextlib.contextmanager
def _local_file(path: str, fh):
    """A real file name for libraries that want one (mailbox): the path itself when local, else a copy."""
    from transforms.read import is_local

    if not isinstance(fh, tempfile.SpooledTemporaryFile) and is_local(path) and os.path.isfile(path):
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="docpipe-", suffix=".mbox") as tmp:
        fh.seek(0)
        shutil.copyfileobj(fh, tmp, READ_BLOCK)
        tmp.flush()
        yield tmp.name


# Entries: (name, declared size or None, compressed size or None, open() -> readable stream or bytes,
# error or None). Each kind's reader yields them in order; a stream is read before the next entry.

def _zip_entries(fh, limits: Limits, budget: "_Budget") -> Iterator[tuple]:
    import zipfile

    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LimitError(f"corrupt or unreadable zip archive: {exc}") from exc
    infos = [i for i in zf.infolist() if not i.is_dir()]
    # The central directory's sizes are checked before anything is inflated; zipfile never returns
    # more than the declared size (a lying header fails its CRC), so they are binding.
    budget.add_members(len(infos), limits)
    declared = sum(i.file_size for i in infos)
    if budget.total + declared > limits.max_total:
        raise LimitError(f"archive refused: its members would uncompress to {_mb(declared)}, over the limit "
                         f"of {_mb(limits.max_total)} (--archive-max-total-mb)")
    for info in infos:
        error = "encrypted member: a password is required" if info.flag_bits & 0x1 else None
        yield info.filename, info.file_size, info.compress_size, (lambda i=info: zf.open(i)), error


def _tar_entries(fh, limits: Limits, budget: "_Budget") -> Iterator[tuple]:
    import tarfile

    counted = _CountingReader(fh)
    try:
        # Stream mode ("r|*"): members in order, never seeking, whatever the compression.
        tf = tarfile.open(fileobj=counted, mode="r|*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LimitError(f"corrupt or unreadable tar archive: {exc}") from exc
    try:
        for info in tf:
            if info.isdir():
                continue
            budget.add_members(1, limits)
            if not info.isfile():
                yield info.name, 0, None, None, "not a regular file (link or device) inside the archive"
                continue
            yield info.name, info.size, None, (lambda i=info: tf.extractfile(i)), None
            # A compressed tar has no per-member compressed size: its ratio is judged as a whole.
            if budget.total > RATIO_MIN_BYTES and counted.count and budget.total / counted.count > limits.max_ratio:
                raise LimitError(f"archive refused: compression ratio over {limits.max_ratio:g} "
                                 "(--archive-max-ratio): a decompression bomb")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise LimitError(f"corrupt or truncated tar archive: {exc}") from exc


def _7z_entries(fh, limits: Limits, budget: "_Budget") -> Iterator[tuple]:
    import py7zr

    try:
        archive = py7zr.SevenZipFile(fh, mode="r")
    except Exception as exc:
        raise LimitError(f"corrupt or unreadable 7z archive: {type(exc).__name__}: {exc}") from exc
    with archive:
        if archive.needs_password():
            raise LimitError("encrypted 7z archive: a password is required")
        infos = [i for i in archive.list() if not i.is_directory]
        budget.add_members(len(infos), limits)
        declared = sum(i.uncompressed or 0 for i in infos)
        if budget.total + declared > limits.max_total:
            raise LimitError(f"archive refused: its members would uncompress to {_mb(declared)}, over the "
                             f"limit of {_mb(limits.max_total)} (--archive-max-total-mb)")
        packed = sum(i.compressed or 0 for i in infos)
        if declared > RATIO_MIN_BYTES and packed and declared / packed > limits.max_ratio:
            raise LimitError(f"archive refused: compression ratio {declared / packed:.0f} over "
                             f"{limits.max_ratio:g} (--archive-max-ratio): a decompression bomb")
        # One pass decompresses everything (7z blocks are solid); each member lands in a spooled file.
        factory = _SpoolFactory(limits.max_member)
        try:
            archive.extractall(factory=factory)
        except Exception as exc:
            raise LimitError(f"7z archive cannot be decompressed: {type(exc).__name__}: {exc}") from exc
        for info in infos:
            spool = factory.products.get(info.filename)
            if spool is None:
                yield info.filename, 0, None, None, "member could not be decompressed"
                continue
            spool.seek(0)
            yield info.filename, spool.size(), None, (lambda s=spool: s), None


def _mbox_entries(path: str, fh, limits: Limits, budget: "_Budget") -> Iterator[tuple]:
    import mailbox

    with _local_file(path, fh) as local:
        box = mailbox.mbox(local, create=False)
        try:
            keys = box.keys()
            budget.add_members(len(keys), limits)
            for number, key in enumerate(keys, 1):
                yield _mbox_name(number), None, None, (lambda k=key: box.get_bytes(k)), None
        finally:
            box.close()


def _mbox_name(number: int) -> str:
    return f"message-{number:05d}.eml"


def _email_entries(path: str, fh, limits: Limits, budget: "_Budget") -> Iterator[tuple]:
    from transforms import email_parse

    data = _read_upto(fh, limits.max_member + 1)
    if len(data) > limits.max_member:
        raise LimitError(f"email larger than the limit of {limits.max_member} bytes (--max-file-size)")
    try:
        parsed = email_parse.parse(data, path)
    except email_parse.EmailError as exc:
        raise LimitError(str(exc)) from exc
    budget.add_members(len(parsed.attachments), limits)
    for att in parsed.attachments:
        yield att.name, len(att.data), None, (lambda a=att: a.data), None


def _entries(k: str, path: str, fh, limits: Limits, budget: "_Budget") -> Iterator[tuple]:
    if k == "zip":
        return _zip_entries(fh, limits, budget)
    if k == "tar":
        return _tar_entries(fh, limits, budget)
    if k == "7z":
        return _7z_entries(fh, limits, budget)
    if k == "mbox":
        return _mbox_entries(path, fh, limits, budget)
    return _email_entries(path, fh, limits, budget)


# -- expanding ------------------------------------------------------------------------------------

class _Budget:
    """Totals over one top-level container's whole tree."""

    def __init__(self):
        self.total = 0
        self.members = 0

    def add_members(self, n: int, limits: Limits) -> None:
        self.members += n
        if self.members > limits.max_members:
            raise LimitError(f"archive refused: more than {limits.max_members} members "
                             "(--archive-max-members)")

    def add_bytes(self, n: int, limits: Limits) -> None:
        self.total += n
        if self.total > limits.max_total:
            raise LimitError(f"archive refused: members uncompress to more than {_mb(limits.max_total)} "
                             "(--archive-max-total-mb)")


def expand(path: str, limits: Limits) -> tuple[list[Member], list[str]]:
    """(every member of the container at `path`, recursively; the names of its direct members).
    Raises LimitError when the container as a whole is refused."""
    budget = _Budget()
    with _open_source(path) as fh:
        return _expand(path, kind(path), fh, limits, budget, depth=1)


def _expand(path: str, k: str, fh, limits: Limits, budget: _Budget, depth: int) -> tuple[list[Member], list[str]]:
    found: list[Member] = []
    names: list[str] = []
    seen: set[str] = set()
    for name, size, packed, opener, error in _entries(k, path, fh, limits, budget):
        names.append(name)
        member = Member(path=member_path(path, name), parent=path, name=name)
        found.append(member)
        if name in seen:  # a zip may hold one name twice; a path must name one member (the first)
            member.error = f"duplicate member name {name!r}: only the first one is read"
            member.path += f" (#{names.count(name)})"
            continue
        seen.add(name)
        member.error = error or unsafe_name(name)
        if member.error:
            continue
        if size is not None and size > limits.max_member:
            member.error = f"member larger than the limit of {limits.max_member} bytes (--max-file-size)"
            continue
        if packed and size and size > RATIO_MIN_BYTES and size / packed > limits.max_ratio:
            member.error = (f"member refused: compression ratio {size / packed:.0f} over {limits.max_ratio:g} "
                            "(--archive-max-ratio): a decompression bomb")
            continue
        inner = kind(name)
        if inner == "email" and depth >= limits.max_depth:
            inner = None  # a mail this deep is still read as a document; its attachments are not opened
        if inner is not None and depth >= limits.max_depth:
            member.error = (f"container nested deeper than {limits.max_depth} levels (--archive-max-depth): "
                            "not opened")
            continue
        try:
            spool = _hash_into(member, opener(), limits, budget, keep=inner is not None)
        except MemberError as exc:
            member.error = str(exc)
            continue
        if inner is None:
            continue
        with spool:
            spool.seek(0)
            try:
                children, child_names = _expand(member.path, inner, spool, limits, budget, depth + 1)
            except LimitError as exc:
                # A nested container that is refused fails alone; its parent's other members stand.
                member.error = str(exc)
                continue
        if inner in ARCHIVE_KINDS:
            member.listing = child_names
        found.extend(children)
    return found, names


def _hash_into(member: Member, source, limits: Limits, budget: _Budget, keep: bool):
    """Stream a member through SHA-256 (and into a spooled file when `keep`), enforcing the limits."""
    digest = hashlib.sha256()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) if keep else None
    size = 0
    try:
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        with contextlib.closing(source) if hasattr(source, "close") else contextlib.nullcontext(source):
            while block := source.read(READ_BLOCK):
                size += len(block)
                if size > limits.max_member:
                    raise MemberError(f"member larger than the limit of {limits.max_member} bytes "
                                      "(--max-file-size)")
                budget.add_bytes(len(block), limits)
                digest.update(block)
                if spool is not None:
                    spool.write(block)
    except (MemberError, LimitError):
        if spool is not None:
            spool.close()
        raise
    except Exception as exc:  # a corrupt member (bad CRC, truncated stream): that member fails
        if spool is not None:
            spool.close()
        raise MemberError(f"member cannot be read: {type(exc).__name__}: {exc}") from exc
    if size == 0:
        if spool is not None:
            spool.close()
        raise MemberError("member is empty (0 bytes)")
    member.id, member.size = digest.hexdigest(), size
    return spool


# -- reading one member (at convert time) ---------------------------------------------------------

def read_member(path: str, max_bytes: int, max_ratio: float | None = None) -> bytes:
    """The bytes of the member at `path` (`outer!/a!/b`), found by opening each container in turn.
    `max_ratio` refuses a final member compressed more than that (a retried path that expansion never
    judged, --retry-failed); the converter reads members expansion already passed, and gives none."""
    parts = split(path)
    if parts is None:
        raise MemberError(f"not a member path: {path}")
    outer, names = parts
    limits = Limits(max_member=max_bytes or Limits.max_member, max_ratio=max_ratio or float("inf"))
    current_path, current_kind = outer, kind(outer)
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(_open_source(outer))
        for position, name in enumerate(names):
            last = position == len(names) - 1
            if current_kind is None:
                raise MemberError(f"{current_path} is not a container")
            source = _find(current_kind, current_path, fh, name, limits if last else None)
            if last:
                return _read_bounded(source, limits.max_member)
            spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY))
            data = source if isinstance(source, (bytes, bytearray)) else None
            if data is not None:
                spool.write(data)
            else:
                with contextlib.closing(source):
                    shutil.copyfileobj(source, spool, READ_BLOCK)
            spool.seek(0)
            fh = spool
            current_path, current_kind = member_path(current_path, name), kind(name)
    raise MemberError(f"no member in {path}")


def _find(k: str, path: str, fh, name: str, limits: Limits | None):
    """The member `name` of a container (bytes or a stream); `limits` only for the final member (a
    container on the way is spooled, whatever its size: expansion judged it already)."""
    budget = _Budget()
    unlimited = Limits(max_total=1 << 62, max_members=1 << 62, max_ratio=float("inf"), max_member=1 << 62)
    if k == "7z":  # only the one member is decompressed (with what precedes it in its solid block)
        import py7zr

        if unsafe_name(name):
            raise MemberError(unsafe_name(name))
        factory = _SpoolFactory(limits.max_member if limits else 1 << 62)
        with py7zr.SevenZipFile(fh, mode="r") as archive:
            archive.extract(targets=[name], factory=factory)
        spool = factory.products.get(name)
        if spool is None:
            raise MemberError(f"no member {name!r} in {os.path.basename(path)}")
        if limits is not None and spool.size() > limits.max_member:
            raise MemberError(f"member larger than the limit of {limits.max_member} bytes (--max-file-size)")
        spool.seek(0)
        return spool
    if k == "mbox":
        import mailbox

        match = re.fullmatch(r"message-(\d+)\.eml", name)
        if not match:
            raise MemberError(f"no message {name!r} in the mailbox")
        with _local_file(path, fh) as local:
            box = mailbox.mbox(local, create=False)
            try:
                keys = box.keys()
                number = int(match.group(1))
                if not 1 <= number <= len(keys):
                    raise MemberError(f"no message {name!r} in the mailbox")
                return box.get_bytes(keys[number - 1])
            finally:
                box.close()
    for entry_name, size, packed, opener, error in _entries(k, path, fh, unlimited, budget):
        if entry_name != name:
            continue
        error = error or unsafe_name(name)
        if error:
            raise MemberError(error)
        if limits is not None and size is not None and size > limits.max_member:
            raise MemberError(f"member larger than the limit of {limits.max_member} bytes (--max-file-size)")
        if limits is not None and packed and size and size > RATIO_MIN_BYTES and size / packed > limits.max_ratio:
            raise MemberError(f"member refused: compression ratio {size / packed:.0f} over {limits.max_ratio:g} "
                              "(--archive-max-ratio): a decompression bomb")
        return opener()
    raise MemberError(f"no member {name!r} in {os.path.basename(path)}")


def _read_upto(fh, limit: int) -> bytes:
    """At most `limit` bytes, read in blocks (a huge limit must not be allocated up front)."""
    parts, size = [], 0
    while size < limit and (block := fh.read(min(READ_BLOCK, limit - size))):
        parts.append(block)
        size += len(block)
    return b"".join(parts)


def _read_bounded(source, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        with contextlib.closing(source):
            data = _read_upto(source, max_bytes + 1)
    if len(data) > max_bytes:
        raise MemberError(f"member larger than the limit of {max_bytes} bytes (--max-file-size)")
    return data


def hash_member(path: str, max_bytes: int, max_ratio: float | None = None) -> tuple[str, int]:
    """(content id, size) of a member path (--retry-failed names members directly)."""
    data = read_member(path, max_bytes, max_ratio)
    if not data:
        raise MemberError("member is empty (0 bytes)")
    return hashlib.sha256(data).hexdigest(), len(data)


def listing_text(path: str, names: list[str]) -> str:
    """The text of an archive's own document: what it holds (its members are documents of their own)."""
    title = os.path.basename(path.rsplit(SEP, 1)[-1]) or path
    what = "Mailbox" if kind(title) == "mbox" else "Archive"
    lines = [f"{what} {title}: {len(names)} {'messages' if what == 'Mailbox' else 'members'}"]
    lines += [f"- {n}" for n in names[:LISTING_MAX]]
    if len(names) > LISTING_MAX:
        lines.append(f"... and {len(names) - LISTING_MAX} more")
    return "\n".join(lines)


# -- helpers --------------------------------------------------------------------------------------

class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes a tar stream consumed (for its compression ratio)."""

    def __init__(self, fh):
        self.fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Spool:
    """py7zr's writer for one member: a spooled file, bounded (over max_bytes only the size counts)."""

    def __init__(self, max_bytes: int):
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        self.max_bytes = max_bytes
        self._size = 0

    def write(self, s) -> int:
        self._size += len(s)
        if self._size <= self.max_bytes:
            self.file.write(s)
        return len(s)

    def read(self, size: int | None = -1) -> bytes:
        return self.file.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def flush(self) -> None:
        self.file.flush()

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        pass  # py7zr closes each member when written; the file is read (and closed) afterwards


class _SpoolFactory:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.products: dict[str, _Spool] = {}

    def create(self, filename: str) -> _Spool:
        product = _Spool(self.max_bytes)
        self.products[filename] = product
        return product


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MB"

