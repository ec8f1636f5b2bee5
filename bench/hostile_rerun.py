"""python -m bench.hostile_rerun [--out DIR] [--keep]: is a rerun of hostile inputs cheap (issue 19)?

Builds, in a temporary folder, the hostile inputs the tests use (tests/docs.py write_bad_inputs, as
tests/test_end_to_end.py does, and tests/test_hostile_pdf.py's: empty, garbage, corrupt, truncated and encrypted files, a docx with a .pdf
name, a PNG bomb, a 60-page PDF over --max-pages 50, a 100,000-page PDF, deep HTML, a broken
symlink, a non-UTF-8 name; and bench/containers_heap.py's hostile archives: zip and tar bombs,
nested and too-deep zips, path traversal, 12,000 members, truncated, encrypted 7z) beside one good
document, then runs `python -m pipeline.run` on it twice (same embedded PostgreSQL, default runner)
and prints the first run's and the rerun's seconds, their ratio (target >= 3) and the CPU.
Run it from the project's root (it imports tests.docs).

Not included: a converter that hangs. Its timeout is a transient failure, retried by every plain
rerun by design (transforms/failures.py), so it costs --convert-timeout on each run; the test hook
that makes the converter hang (StageConfig.test_hang_marker) has no command-line option.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# --max-pages as tests/test_end_to_end.py runs it; --max-file-size above the 13 MB of the 100,000-page
# PDF (so that its page count is what refuses it) and below too-big.txt.
LIMITS = ["--max-file-size", "16000000", "--max-pages", "50"]


def build(folder: str) -> int:
    """Write the hostile inputs (and one good document) into folder; returns the number of paths."""
    from bench.containers_heap import hostile
    from tests import docs

    docs.write_bad_inputs(folder, too_big=17_000_000)  # over the 16 MB of LIMITS
    docs.write(folder, "huge.pdf", docs.many_pages_pdf_bytes(100_000))
    hostile(os.path.join(folder, "archives"))
    return sum(len(files) for _, _, files in os.walk(folder))


def run_once(folder: str, data_dir: str, run_id: str) -> dict:
    """One `python -m pipeline.run` in its own process, as a user runs it: wall seconds of the whole
    command (interpreter, embedded PostgreSQL, Beam and workers included) and the run's counts."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.run", "--input", folder, "--data-dir", data_dir,
                           "--run-id", run_id, *LIMITS], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"pipeline.run exited {done.returncode}:\n{done.stderr[-2000:]}")
    counts = {}
    for key, pattern in (("paths", r"paths seen\s+(\d+)"), ("completed", r"completed\s+(\d+)"),
                         ("failed", r"failed\s+(\d+)"), ("failed_before", r"failed before\s+(\d+)"),
                         ("skipped_unchanged", r"skipped, unchanged\s+(\d+)"),
                         ("run_seconds", r"completed in ([\d.]+) s")):
        match = re.search(pattern, done.stdout)
        counts[key] = float(match.group(1)) if key == "run_seconds" and match else int(match.group(1)) if match else 0
    return {"seconds": round(seconds, 2), **counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_rerun", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the figures as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (inputs and database)")
    args = parser.parse_args(argv)
    from transforms.backends.minilm import cpu_info

    work = tempfile.mkdtemp(prefix="hostile-rerun-")
    try:
        folder = os.path.join(work, "in")
        files = build(folder)
        first = run_once(folder, os.path.join(work, "data"), "hostile-first")
        rerun = run_once(folder, os.path.join(work, "data"), "hostile-rerun")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    model, _ = cpu_info()
    result = {"files": files, "first": first, "rerun": rerun,
              "ratio": round(first["seconds"] / rerun["seconds"], 2),
              "machine": {"cpu_model": model, "cpus": os.cpu_count()}}
    print(f"hostile inputs: {files} files ({first['paths']} paths with their archive members)")
    for name in ("first", "rerun"):
        r = result[name]
        print(f"  {name:<6} {r['seconds']:6.1f} s (run {r['run_seconds']:.1f} s): {r['completed']} completed, "
              f"{r['failed']} failed ({r['failed_before']} failed before, not converted again), "
              f"{r['skipped_unchanged']} skipped unchanged")
    print(f"  rerun {result['ratio']:.2f}x faster (target >= 3)")
    print(f"  CPU: {model or '?'} x{os.cpu_count()}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
