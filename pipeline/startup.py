"""A portable or remote run whose workers cannot start fails within a minute, with the reason.

Without this (Beam 2.77, measured with the local job service and an EXTERNAL worker pool):
- a --job_endpoint where nothing listens: PortableRunner waits --job_server_timeout (300 s) for
  the channel, then fails with a bare FutureTimeoutError traceback;
- a worker pool where nothing listens: fails in ~4 s, but as a 137-line gRPC traceback;
- a worker pool whose workers cannot start (the `python` on its PATH lacks Beam or this project):
  the job waits 5 minutes, then ends in DEADLINE_EXCEEDED tracebacks.

Two checks, for the portable runners (PortableRunner, FlinkRunner, SparkRunner):
- `preflight` (before the run is recorded): a TCP connection to --job_endpoint, and to an EXTERNAL
  worker pool when it runs on this machine (on a cluster an EXTERNAL address is relative to each
  task manager, so it cannot be checked from here). Nothing there: one line, exit 2.
- `StartupWatch` (during the run): the first steps on a worker record `runs.work_started_at`
  (transforms.dofns.mark_work_started). If the job is not accepted within --startup-timeout seconds
  (a job service that takes connections but does not answer), or that is not set within as many
  seconds of the job's submission, the job is cancelled and the run fails with one line naming the
  endpoints and what to check (exit 1).
Dataflow and Dask are not watched: their workers may take minutes to be provisioned, and they report
their own start-up errors.
"""
from __future__ import annotations

import _thread
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

from apache_beam.options.pipeline_options import PortableOptions

from pipeline import launch, store

log = logging.getLogger(__name__)
CONNECT_SECONDS = 5.0
POLL_SECONDS = 1.0
CANCEL_SECONDS = 10.0  # for the waiting thread to see the cancelled job's end
GRACE_SECONDS = 15.0  # for the main thread to stop after it was interrupted, then the process exits


class StartupFailed(Exception):
    """No worker started in time; the message is the one line the user sees."""


def watched(options) -> bool:
    return launch.runner_name(options).rsplit(".", 1)[-1] in launch.PORTABLE_RUNNERS


def _address(value: str) -> tuple[str, int] | None:
    """host:port (or a URL with a port) -> (host, port); None when there is no port to try."""
    parsed = urllib.parse.urlsplit(value if "//" in value else "//" + value)
    try:
        port = parsed.port
    except ValueError:  # not a number
        return None
    return (parsed.hostname, port) if parsed.hostname and port else None


def _refused(address: tuple[str, int]) -> str | None:
    """Why nothing can be reached at the address, or None when a TCP connection opens."""
    try:
        with socket.create_connection(address, timeout=CONNECT_SECONDS):
            return None
    except socket.timeout:
        return f"no answer within {CONNECT_SECONDS:.0f} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def preflight(options) -> None:
    """Refuse at once (launch.LaunchError, exit 2) a job service or local worker pool that is not there."""
    if not watched(options):
        return
    portable = options.view_as(PortableOptions)
    endpoint = portable.job_endpoint
    if endpoint and endpoint != "embed" and (address := _address(endpoint)):
        reason = _refused(address)
        if reason:
            raise launch.LaunchError(
                f"no job service at {endpoint} (--job_endpoint): {reason}. Start it there (Beam's "
                f"`python -m apache_beam.runners.portability.local_job_service_main --port {address[1]}`, "
                "or the Flink/Spark job server), or correct --job_endpoint")
    if ((portable.environment_type or "").upper() == "EXTERNAL" and launch.workers_on_this_machine(options)
            and (address := _address(portable.environment_config or ""))):
        reason = _refused(address)
        if reason:
            raise launch.LaunchError(
                f"no worker pool at {portable.environment_config} (--environment_config, EXTERNAL workers): "
                f"{reason}. Start it (`python -m apache_beam.runners.worker.worker_pool_main --service_port "
                f"{address[1]}` with this project's python first on its PATH), or correct --environment_config")


def describe(options) -> tuple[str, str]:
    """Where the workers should come from, and what to check when they do not, for the one line."""
    portable = options.view_as(PortableOptions)
    runner = launch.runner_name(options).rsplit(".", 1)[-1]
    env = (portable.environment_type or "DOCKER").upper()
    parts = [f"job service {portable.job_endpoint}" if portable.job_endpoint else "the runner's own job server"]
    if env == "EXTERNAL":
        parts.append(f"EXTERNAL worker pool {portable.environment_config}")
        check = ("that the worker pool runs and can start workers: the `python` on its PATH must have Beam and "
                 "this project installed (its log shows the worker's error)")
    elif env == "PROCESS":
        check = "that the PROCESS environment's command starts on every task manager"
    else:
        check = ("that the task managers can run the SDK container image (pulled, and built from "
                 "launch/Dockerfile)")
    return f"{runner} ({', '.join(parts)})", check


class StartupWatch:
    """Context manager around a portable run: cancels it if no worker began work in `seconds`."""

    def __init__(self, dsn: str, run_id: str, seconds: float, options, on_abandon=None):
        self.dsn, self.run_id, self.seconds = dsn, run_id, seconds
        self.where, self.check = describe(options)
        self.on_abandon = on_abandon  # records the run failed if the process must exit from here
        self.pipeline = None  # set by the caller once built: its result is cancelled on a time-out
        self.failed: str | None = None
        self._done = threading.Event()
        self._main = threading.main_thread()
        self._runner_thread = None
        self._cancelled = False
        self._previous_hook = None

    def message(self) -> str:
        if self.failed == "submit":
            return (f"the job was not accepted within {self.seconds:g} s (--startup-timeout) by {self.where}; "
                    "check that the job service runs and answers (a Flink/Spark job server started from its jar "
                    "may first download it), or give it longer with --startup-timeout")
        return (f"no worker started within {self.seconds:g} s (--startup-timeout) of the job's submission on "
                f"{self.where}; check {self.check}, and that the workers reach PostgreSQL at "
                f"{store.mask_dsn(self.dsn)} (they record their start there); or give the workers longer with "
                "--startup-timeout")

    def __enter__(self):
        self._runner_thread = threading.current_thread()
        if self.seconds and self.seconds > 0:
            self._previous_hook = threading.excepthook
            threading.excepthook = self._hook
            threading.Thread(target=self._watch, name="startup-watch", daemon=True).start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._done.set()
        if self._previous_hook is not None:
            threading.excepthook = self._previous_hook
        if self.failed is None:
            return False
        raise StartupFailed(self.message()) from None

    def _watch(self) -> None:
        # Two phases of `seconds` each: the job's submission (a job server may be starting), then
        # the first worker's work after it (the limit a user thinks of).
        deadline, submitted = time.monotonic() + self.seconds, False
        while not self._done.wait(POLL_SECONDS):
            if not submitted and getattr(self.pipeline, "result", None) is not None:
                deadline, submitted = time.monotonic() + self.seconds, True
            if submitted:
                try:
                    if store.work_started(self.dsn, self.run_id):
                        return
                except Exception:  # the store being away is the writers' problem, not a start-up failure
                    pass
            if time.monotonic() >= deadline:
                break
        else:
            return
        self.failed = "workers" if submitted else "submit"
        log.info("%s; cancelling the job", self.message())
        # Cancelling the job ends its state stream, which the waiting thread then leaves; a job not
        # submitted yet (or a runner that ignores the cancel) needs the waiting thread interrupted.
        if (self._cancel() and self._done.wait(CANCEL_SECONDS)) or self._runner_thread is not self._main:
            return  # a run in another thread (pipeline.serve) is never ended from here
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            # A signal wakes the main thread from gRPC's long waits (interrupt_main alone does not).
            signal.pthread_kill(self._main.ident, signal.SIGINT)
        else:
            _thread.interrupt_main()
        if not self._done.wait(GRACE_SECONDS):
            self._abandon()

    def _cancel(self) -> bool:
        """Cancel the submitted job (if it was submitted), never waiting long for it; True if sent."""
        result = getattr(self.pipeline, "result", None)
        if self._cancelled or result is None or not hasattr(result, "cancel"):
            return False
        self._cancelled = True
        worker = threading.Thread(target=lambda: _quietly(result.cancel), daemon=True)
        worker.start()
        worker.join(CONNECT_SECONDS * 2)
        return True

    def _hook(self, args) -> None:
        # Beam's threads reading the job's message and state streams fail once the job is cancelled:
        # after a time-out that is expected, and their tracebacks would bury the one line.
        if self.failed and "grpc" in type(args.exc_value).__module__:
            return
        self._previous_hook(args)

    def _abandon(self) -> None:
        try:
            self._cancel()
            if self.on_abandon:
                self.on_abandon(self.message())
        finally:
            print(f"error: {self.message()}", file=sys.stderr, flush=True)
            os._exit(1)


def _quietly(call) -> None:
    try:
        call()
    except Exception as exc:
        log.debug("cancelling the job: %s", exc)
