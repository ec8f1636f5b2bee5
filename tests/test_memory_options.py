"""Memory settings of the converter process and the classifier's model (issue 19's per-worker target)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _freed_block_stays_resident(fix: bool) -> int:
    """MB still resident after freeing a 20 MB block that followed a freed 30 MB one, in a fresh
    process (glibc's dynamic threshold would put the second block in the heap and keep it there)."""
    code = textwrap.dedent(f"""
        import ctypes, os
        from transforms.isolate import fix_mmap_threshold
        if {fix!r}:
            assert fix_mmap_threshold()
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        page = os.sysconf("SC_PAGE_SIZE")
        def resident():
            return int(open("/proc/self/statm").read().split()[1]) * page
        def touched(n):
            p = libc.malloc(n)
            ctypes.memset(p, 1, n)
            return p
        libc.free(touched(30 << 20))
        before = resident()
        libc.free(touched(20 << 20))
        print((resident() - before) >> 20)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_fixed_mmap_threshold_returns_large_freed_blocks_to_the_system():
    assert _freed_block_stays_resident(fix=False) >= 15  # what the converter process had before
    assert _freed_block_stays_resident(fix=True) <= 2


def test_use_embedding_table_is_a_shared_read_only_mapping_with_the_same_vectors(tmp_path, monkeypatch):
    from transforms.backends import use

    monkeypatch.setenv("DOCPIPE_MODEL_CACHE", str(tmp_path))
    mapped = use.UseEmbedder(threads=1)
    table = mapped._model._model.table
    assert isinstance(table, np.memmap) and not table.flags.writeable
    assert os.path.dirname(table.filename) == str(tmp_path)
    again = use.UseEmbedder(threads=1)  # a second worker maps the file written by the first
    assert again._model._model.table.filename == table.filename

    monkeypatch.setattr(use, "_map_embedding_table", lambda model: None)
    in_memory = use.UseEmbedder(threads=1)
    assert not isinstance(in_memory._model._model.table, np.memmap)
    texts = ["Rechnung Nr. 2024-0042, fällig am 30.06.", "Employment contract between ACME and J. Doe", " "]
    assert np.array_equal(mapped.embed(texts), in_memory.embed(texts))


def test_freed_memory_is_trimmed_only_after_the_process_grew_by_the_margin():
    """A trim after every document cost 9 % of the converter's CPU (the next document faults the
    pages in again): it runs only once the process grew by the margin since the last one. Run in a
    fresh interpreter so that no earlier trim of this test process sets the mark."""
    code = textwrap.dedent("""
        from transforms.isolate import release_freed_memory
        MB = 2**20
        print(release_freed_memory(margin=32 * MB))       # first call: trims, sets the mark
        print(release_freed_memory(margin=32 * MB))       # nothing grew since
        kept = bytearray(64 * MB)                         # resident: zero-filled pages touched below
        for i in range(0, len(kept), 4096):
            kept[i] = 1
        print(release_freed_memory(margin=32 * MB))       # grew by 64 MB > 32: trims
        print(release_freed_memory(margin=256 * MB))      # and not again without growth
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "True", "False"]
