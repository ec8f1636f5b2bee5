"""A Beam worker process ends as soon as its harness is done (transforms/worker_exit.py): checked in
a stand-in for Beam's sdk_worker_main.py, run as a real process."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = """
import atexit, sys
atexit.register(lambda: open(sys.argv[1], "w").write("the interpreter's own clean-up ran"))
from transforms import worker_exit
worker_exit.install()
worker_exit.install()  # once only
print("output still buffered", end="")
if sys.argv[2] == "fail":
    raise RuntimeError("the harness failed")
"""


def run(tmp_path, name, how):
    script = tmp_path / name
    script.write_text(WORKER)
    marker = tmp_path / "cleanup-ran"
    done = subprocess.run([sys.executable, str(script), str(marker), how], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT})
    return done, marker.exists()


def test_a_worker_ends_at_once_and_keeps_its_output(tmp_path):
    done, cleanup_ran = run(tmp_path, "sdk_worker_main.py", "ok")
    assert done.returncode == 0 and done.stdout == "output still buffered"
    assert not cleanup_ran  # ended before the handlers registered earlier (and the interpreter's clean-up)


def test_a_failed_harness_ends_as_usual_with_its_exit_code(tmp_path):
    done, cleanup_ran = run(tmp_path, "sdk_worker_main.py", "fail")
    assert done.returncode == 1 and "the harness failed" in done.stderr
    assert cleanup_ran


def test_other_processes_are_left_alone(tmp_path):
    done, cleanup_ran = run(tmp_path, "some_other_main.py", "ok")
    assert done.returncode == 0 and cleanup_ran
