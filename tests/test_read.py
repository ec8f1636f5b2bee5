import os

import pytest

from tests import docs
from transforms import read


def test_expand_folder_is_recursive_and_sorted(tmp_path):
    docs.write(tmp_path, "b.txt", "b")
    docs.write(tmp_path, "a/c.txt", "c")
    assert list(read.expand_input(str(tmp_path))) == [str(tmp_path / "b.txt"), str(tmp_path / "a/c.txt")]


def test_expand_glob_and_manifest(tmp_path):
    docs.write(tmp_path, "x/one.pdf", "1")
    docs.write(tmp_path, "x/y/two.pdf", "2")
    docs.write(tmp_path, "x/three.txt", "3")
    assert sorted(read.expand_input(str(tmp_path / "x/**/*.pdf"))) == [
        str(tmp_path / "x/one.pdf"), str(tmp_path / "x/y/two.pdf")]
    manifest = docs.write(tmp_path, "list.txt", f"# inputs\n{tmp_path}/x/three.txt\n\n{tmp_path}/missing.pdf\n")
    assert list(read.expand_input("@" + manifest)) == [str(tmp_path / "x/three.txt"), str(tmp_path / "missing.pdf")]


def test_broken_symlink_is_listed_then_refused_with_a_reason(tmp_path):
    os.symlink(tmp_path / "nowhere.pdf", tmp_path / "link.pdf")
    assert list(read.expand_input(str(tmp_path))) == [str(tmp_path / "link.pdf")]
    with pytest.raises(read.ReadError, match="broken symbolic link"):
        read.hash_file(str(tmp_path / "link.pdf"), 0)


def test_hash_is_content_based(tmp_path):
    a = docs.write(tmp_path, "a.txt", "same content")
    b = docs.write(tmp_path, "b.bin", "same content")
    assert read.hash_file(a, 0) == read.hash_file(b, 0)
    assert read.hash_file(a, 0)[1] == len("same content")


@pytest.mark.parametrize("make, reason", [
    (lambda p: docs.write(p, "empty.pdf", b""), "empty"),
    (lambda p: str(p / "missing.pdf"), "does not exist"),
    (lambda p: str(p), "directory"),
    (lambda p: docs.write(p, "big.txt", "x" * 100), "larger than the limit"),
])
def test_unreadable_inputs_get_clear_reasons(tmp_path, make, reason):
    with pytest.raises(read.ReadError, match=reason):
        read.hash_file(make(tmp_path), 50)


def test_local_files_are_read_without_importing_beam(tmp_path):
    """The converter process reads every document: for a local one it must not pay Beam's import
    (~0.3 s of a core per converter process started). Checked in a fresh interpreter."""
    import subprocess
    import sys

    path = tmp_path / "a.txt"
    path.write_text("hello")
    code = ("import sys; from transforms import read; "
            f"assert read.read_bytes({str(path)!r}) == b'hello'; "
            f"assert read.hash_file('file://' + {str(path)!r}, 0)[1] == 5; "
            "assert read.is_local('/x') and read.is_local('file:///x') and not read.is_local('gs://b/x'); "
            "assert 'apache_beam' not in sys.modules, 'Beam was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
