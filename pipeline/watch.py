"""Notice when a local worker process dies, instead of waiting for it forever.

Beam's FnApiRunner (the default local runner, multi-processing) starts one SDK worker process per
core. If one of them is killed (the OOM killer, a kill -9, a crash in native code), the runner's
thread that started it raises "Worker subprocess exited with return code N" and dies quietly, while
the main thread keeps waiting for results that will never come: the run hangs. This watch turns
that into a prompt, clear failure: it interrupts the main thread, stops the remaining workers, and
the run ends as `failed` with the reason. Everything already written stays; a rerun skips it.

On Flink/Spark/Dask the engine itself restarts failed tasks; this watch only matters locally.
"""
from __future__ import annotations

import _thread
import logging
import os
import sys
import threading

import psutil

log = logging.getLogger(__name__)

_WORKER_EXIT = "Worker subprocess exited with return code"
GRPC_REPORT_DELAY = 3.0  # seconds a runner thread's gRPC error waits for a worker's death to explain it


class WorkerDied(Exception):
    pass


class WorkerWatch:
    """Context manager around a local pipeline run; `.died` is the reason once a worker died."""

    def __init__(self, on_abandon=None, grace_seconds: float = 10.0, on_death=None):
        """`on_abandon(reason)` records the run as failed if the main thread cannot be stopped in
        `grace_seconds` and the process has to exit from here. `on_death()` is called as soon as a
        worker's death is seen (pipeline.run mutes the other workers' output then)."""
        self.died: str | None = None
        self.stopping = False
        self.on_abandon = on_abandon
        self.on_death = on_death
        self.grace_seconds = grace_seconds
        self._previous = None

    def __enter__(self):
        self._previous = threading.excepthook
        threading.excepthook = self._hook
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stopping = True
        threading.excepthook = self._previous
        if self.died:  # the hook has stopped the surviving workers already
            raise WorkerDied(self.message()) from exc
        return False

    def message(self) -> str:
        return f"a worker process died ({self.died}); documents written so far are kept, run again to finish the rest"

    def _hook(self, args) -> None:
        message = str(args.exc_value)
        if not message.startswith(_WORKER_EXIT):
            if "grpc" in type(args.exc_value).__module__:
                if self.stopping or self.died:
                    return  # the runner's channels to the dead/stopped workers breaking: noise
                # A broken channel is usually the first sign of a worker's death, seen a moment before
                # its exit code: say it only if no death explains it by then.
                timer = threading.Timer(GRPC_REPORT_DELAY, self._report_unless_explained, (args,))
                timer.daemon = True
                timer.start()
                return
            self._previous(args)
            return
        if self.stopping or self.died:
            return  # workers stopping after Ctrl-C or after the first death: expected
        code = message[len(_WORKER_EXIT):].strip()
        if code in ("-2", "130", "-15", "143"):  # SIGINT/SIGTERM sent to the whole process group
            self.stopping = True
            return
        self.died = f"exit code {code}" + (" (killed)" if code in ("-9", "137") else "")
        if self.on_death:
            self.on_death()
        log.error("a worker process died (%s); stopping the run", self.died)
        stop_local_workers()  # the survivors would only wait for work the dead one never hands on
        _thread.interrupt_main()
        # The runner's main thread does not always wake up from its waits (it can sit in a gRPC
        # wait that ignores the interrupt): after a grace period, end the process from here.
        timer = threading.Timer(self.grace_seconds, self._abandon)
        timer.daemon = True
        timer.start()

    def _report_unless_explained(self, args) -> None:
        if not (self.stopping or self.died):
            self._previous(args)

    def _abandon(self) -> None:
        if self.stopping:  # the main thread got there
            return
        try:
            if self.on_abandon:
                self.on_abandon(self.died)
        finally:
            stop_local_workers()
            print(f"error: {self.message()}", file=sys.stderr, flush=True)
            os._exit(1)


def stop_local_workers() -> None:
    """Kill what is left of this process's SDK workers (and their converter children)."""
    me = psutil.Process(os.getpid())
    for child in me.children(recursive=True):
        try:
            if "sdk_worker_main" in " ".join(child.cmdline()):
                for proc in child.children(recursive=True) + [child]:
                    proc.kill()
        except psutil.Error:
            pass
