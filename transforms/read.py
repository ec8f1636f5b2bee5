"""Read stage: turn the user's input into file paths, and each path into a content hash.

Paths with a scheme go through Beam's FileSystems, so any filesystem Beam knows (gs://, s3://,
hdfs:// where its extra is installed) works; local files are read directly. Bytes are not carried
further: the hash is computed while streaming the file, and the converter reads the file again. On
a cluster that is cheaper than moving file contents through a shuffle.
"""
from __future__ import annotations

import glob as _glob
import hashlib
import os
import re
from collections.abc import Iterator

READ_BLOCK = 1 << 20

# What Beam's FileSystems.get_scheme matches: a path with a scheme is read through Beam's
# FileSystems; one without (or file://) is a file of this machine, read with plain open(). The
# converter process reads every document and imports nothing of Beam for local ones: importing
# apache_beam there added ~0.3 s of a core to each converter process's start (2.65 -> 2.4 s; most of
# what Beam imports, pandas among it, docling imports too).
_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][-a-zA-Z0-9+.]*)://")


class ReadError(Exception):
    """A path whose bytes cannot be used; the message is shown to the user as the reason."""


def _scheme(path: str) -> str | None:
    match = _SCHEME.match(path.strip())
    return match.group("scheme") if match else None


def is_local(path: str) -> bool:
    return _scheme(path) in (None, "file")


def _filesystems():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def expand_input(spec: str) -> Iterator[str]:
    """Yield every file path named by `spec`.

    `spec` is a folder (walked recursively), a glob (`**` matches across folders), a single file,
    or `@FILE`: a manifest with one path or glob per line (blank lines and `#` comments ignored).
    """
    if spec.startswith("@"):
        with _filesystems().open(spec[1:]) as fh:  # a gzipped manifest is read gunzipped
            for raw in fh:
                line = raw.decode("utf-8", "surrogateescape").strip()
                if line and not line.startswith("#"):
                    yield from _expand_one(line)
        return
    yield from _expand_one(spec)


def _expand_one(spec: str) -> Iterator[str]:
    if is_local(spec):
        yield from _expand_local(spec)
        return
    if spec.endswith("/"):
        spec += "**"
    for result in _filesystems().match([spec]):
        for meta in result.metadata_list:
            yield meta.path


def _expand_local(spec: str) -> Iterator[str]:
    # Local paths are walked with os/glob rather than FileSystems.match so that broken symlinks,
    # and paths named explicitly that do not exist, are still listed: they must get an outcome.
    spec = _local_path(spec)
    # Absolute paths: a path's outcome must be found again by a rerun started from another folder.
    spec = os.path.abspath(spec)
    if os.path.isdir(spec):
        for root, dirs, files in os.walk(spec, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                yield os.path.join(root, name)
            # A symlink to a folder is listed by os.walk among dirs; treat it as an entry so it
            # gets an outcome instead of silently following (or ignoring) it.
            for name in dirs:
                full = os.path.join(root, name)
                if os.path.islink(full):
                    yield full
    elif _glob.has_magic(spec):
        for path in sorted(_glob.iglob(spec, recursive=True)):
            if not os.path.isdir(path) or os.path.islink(path):
                yield path
    else:
        yield spec  # a single file, or a missing one: hashing reports why it cannot be read


def hash_file(path: str, max_bytes: int, max_ratio: float | None = None) -> tuple[str, int]:
    """Return (sha256 hex of the content, size). Raises ReadError with a clear reason."""
    from transforms import containers

    if containers.is_member_path(path):  # `archive.zip!/member.pdf` (--retry-failed names members)
        try:
            return containers.hash_member(path, max_bytes, max_ratio)
        except (containers.MemberError, containers.LimitError) as exc:
            raise ReadError(str(exc)) from exc
        except Exception as exc:
            raise ReadError(f"cannot read member: {type(exc).__name__}: {exc}") from exc
    if is_local(path):
        _check_local(path)
    digest = hashlib.sha256()
    size = 0
    try:
        with _open_raw(path) as fh:
            while block := fh.read(READ_BLOCK):
                size += len(block)
                if max_bytes and size > max_bytes:
                    raise ReadError(f"file is larger than the limit of {max_bytes} bytes (--max-file-size)")
                digest.update(block)
    except ReadError:
        raise
    except PermissionError as exc:
        raise ReadError(f"permission denied: {exc.strerror or exc}") from exc
    except FileNotFoundError as exc:
        raise ReadError("file does not exist") from exc
    except IsADirectoryError as exc:
        raise ReadError("is a directory, not a file") from exc
    except OSError as exc:
        raise ReadError(f"cannot read file: {exc}") from exc
    except Exception as exc:  # remote filesystems raise their own error types
        raise ReadError(f"cannot read file: {type(exc).__name__}: {exc}") from exc
    if size == 0:
        raise ReadError("file is empty (0 bytes)")
    return digest.hexdigest(), size


def _local_path(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _open_raw(path: str):
    if is_local(path):
        return open(_local_path(path), "rb")
    from apache_beam.io.filesystem import CompressionTypes

    # UNCOMPRESSED: Beam would otherwise transparently gunzip `*.gz` and hash the wrong bytes.
    return _filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _check_local(path: str) -> None:
    path = _local_path(path)
    if os.path.islink(path) and not os.path.exists(path):
        raise ReadError(f"broken symbolic link (points to {os.readlink(path)!r})")
    if os.path.isdir(path):
        raise ReadError("is a directory, not a file")
    if not os.path.exists(path):
        raise ReadError("file does not exist")


def read_bytes(path: str, max_bytes: int = 0) -> bytes:
    """The whole content of `path` (the converter needs it in memory anyway); a member of a container
    (`archive.zip!/member.pdf`) is read out of its container."""
    from transforms import containers

    if containers.is_member_path(path):
        try:
            return containers.read_member(path, max_bytes)
        except (containers.MemberError, containers.LimitError) as exc:
            raise ReadError(str(exc)) from exc
        except Exception as exc:
            raise ReadError(f"cannot read member: {type(exc).__name__}: {exc}") from exc
    try:
        with _open_raw(path) as fh:
            data = fh.read()
    except Exception as exc:
        raise ReadError(f"cannot read file: {exc}") from exc
    if max_bytes and len(data) > max_bytes:
        raise ReadError(f"file is larger than the limit of {max_bytes} bytes (--max-file-size)")
    return data
