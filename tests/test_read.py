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
