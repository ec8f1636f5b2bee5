"""A Beam filesystem under the scheme `localtest://`: Beam's own LocalFileSystem, reached through
FileSystems by a URL like a bucket's, so the code paths for non-local inboxes and watched prefixes
(FileSystems.create/rename/match, no os calls) run here without a cloud account. Importing this
module registers the scheme (Beam finds FileSystem subclasses by their scheme)."""
from __future__ import annotations

import os

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "localtest"
PREFIX = SCHEME + "://"


def _local(path: str) -> str:
    return path[len(PREFIX):] if path.startswith(PREFIX) else path  # localtest:///tmp/x -> /tmp/x


class PrefixedLocalFileSystem(LocalFileSystem):
    @classmethod
    def scheme(cls):
        return SCHEME

    def join(self, basepath, *paths):
        return PREFIX + super().join(_local(basepath), *paths)

    def split(self, path):
        head, tail = super().split(_local(path))
        return PREFIX + head, tail

    def mkdirs(self, path):
        return super().mkdirs(_local(path))

    def _url_dirname(self, url_or_path):
        return PREFIX + super()._url_dirname(_local(url_or_path))

    def _list(self, dir_or_prefix):
        root = _local(dir_or_prefix)
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    yield FileMetadata(PREFIX + path, os.path.getsize(path), os.path.getmtime(path))
                except OSError:
                    pass

    def create(self, path, *args, **kwargs):
        return super().create(_local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(_local(path), *args, **kwargs)

    def copy(self, sources, destinations):
        return super().copy([_local(p) for p in sources], [_local(p) for p in destinations])

    def rename(self, sources, destinations):
        return super().rename([_local(p) for p in sources], [_local(p) for p in destinations])

    def exists(self, path):
        return super().exists(_local(path))

    def size(self, path):
        return super().size(_local(path))

    def last_updated(self, path):
        return super().last_updated(_local(path))

    def checksum(self, path):
        return super().checksum(_local(path))

    def metadata(self, path):
        meta = super().metadata(_local(path))
        return FileMetadata(path, meta.size_in_bytes, meta.last_updated_in_seconds)

    def delete(self, paths):
        return super().delete([_local(p) for p in paths])
