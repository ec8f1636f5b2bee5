"""pipeline.quiet: local worker processes' start-up noise is kept off the terminal (and in a log file),
their other lines pass, our own messages bypass the filter, and once muted nothing of theirs passes.
Real child processes write to the file descriptor 2 they inherit, as Beam's workers do."""
from __future__ import annotations

import logging
import subprocess
import sys

from pipeline.quiet import WorkerOutputFilter

NOISE = ("WARNING:root:apitools not found, and bigquery client libraries are not available despite the "
         "import not raising an ImportError.")


def child(*lines: str) -> None:
    code = "import sys\n" + "".join(f"sys.stderr.write({line + chr(10)!r})\n" for line in lines)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_noise_is_held_back_and_logged_other_lines_pass(tmp_path, capfd):
    log_path = tmp_path / "logs" / "run-workers.log"
    with WorkerOutputFilter(str(log_path)) as worker_output:
        child(NOISE, "INFO:__main__:Logging handler created.", "converter: a real problem")
        print("our own line", file=sys.stderr)
        logging.getLogger("pipeline.test").error("our own log line")
    err = capfd.readouterr().err
    assert "converter: a real problem" in err and "our own line" in err
    assert "apitools" not in err and "Logging handler created" not in err
    assert worker_output.dropped == 2
    assert log_path.read_text().count("\n") == 2 and "apitools" in log_path.read_text()


def test_muted_workers_say_nothing_but_we_still_do(tmp_path, capfd):
    handler = logging.StreamHandler(sys.stderr)   # as pipeline.run's logging.basicConfig makes
    logging.getLogger().addHandler(handler)
    try:
        with WorkerOutputFilter(str(tmp_path / "w.log")) as worker_output:
            worker_output.mute()
            child("Traceback (most recent call last):", "grpc._channel._MultiThreadedRendezvous: <...>")
            logging.getLogger("pipeline.watch").error("a worker process died (killed); stopping the run")
        assert handler.stream is sys.stderr   # given back
    finally:
        logging.getLogger().removeHandler(handler)
    err = capfd.readouterr().err
    assert "grpc" not in err and "Traceback" not in err
    assert "a worker process died" in err
    assert "grpc" in (tmp_path / "w.log").read_text()


def test_the_traceback_blocks_a_workers_death_sets_off_are_held_back(tmp_path, capfd):
    with WorkerOutputFilter(str(tmp_path / "w.log")):
        child("ERROR:apache_beam.runners.worker.data_plane:Failed to read inputs in the data plane.",
              "Traceback (most recent call last):", '  File "grpc/_server.py", line 542, in __next__',
              "    return self._next()", "grpc.RpcError",
              "Process docpipe-converter:", "Traceback (most recent call last):", "BrokenPipeError: [Errno 32]",
              "", "During handling of the above exception, another exception occurred:",
              "converter: after the block, a line of its own")
    err = capfd.readouterr().err
    assert err.strip() == "converter: after the block, a line of its own"


def test_docling_warnings_from_a_converter_are_one_line_each_and_kept_in_the_log(tmp_path, capfd):
    """A converter process (transforms.converter_log installed, as isolate's child does) warns
    through logging and the warnings module, as docling does about single files: each becomes one
    line naming the document, kept off the terminal, in the log file, and counted."""
    code = ("import logging, warnings\n"
            "from transforms import converter_log\n"
            "converter_log.install()\n"
            "converter_log.converting('/data/report.docx')\n"
            "logging.getLogger('docling.backend.msword_backend').warning("
            "'Warning: image cannot be loaded by Pillow: cannot find loader for this WMF file')\n"
            "warnings.warn('Skipping external image reference: https://example.com/image.png')\n"
            "logging.getLogger('docling').info('not a warning: not said')\n")
    log_path = tmp_path / "w.log"
    with WorkerOutputFilter(str(log_path)) as worker_output:
        subprocess.run([sys.executable, "-c", code], check=True)
    err = capfd.readouterr().err
    assert "WMF" not in err and "Skipping external image" not in err
    assert worker_output.converter_messages == 2
    lines = log_path.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("docpipe-converter: /data/report.docx: warning (") for line in lines)
    assert "(docling.backend.msword_backend): Warning: image cannot be loaded by Pillow" in lines[0]
    assert "(py.warnings)" in lines[1] and "UserWarning: Skipping external image reference" in lines[1]
