"""Progress of a running run, read from the store while the pipeline works.

The store is the one place every worker writes to, whatever the runner, so polling it gives the
same numbers locally and on a cluster: paths with an outcome, of how many listed, documents per
second and an ETA. On a terminal it is a progress bar; otherwise (logs, CI) a line every 30 s.
"""
from __future__ import annotations

import collections
import sys
import threading
import time

from pipeline import store

RATE_WINDOW_SECONDS = 60.0


class RateMeter:
    """Paths per second over the last RATE_WINDOW_SECONDS, counted from the first outcome: the
    start-up before it (processes, models, listing and hashing) is not part of the pace the rest
    of the run will go at. Counting it made the first ETA of a 70 s run about twice too long."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS):
        self.window = window
        self.samples: collections.deque = collections.deque()  # (time, done), from the first outcome on

    def add(self, now: float, done: int) -> None:
        if done <= 0:
            return
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def rate(self, now: float, started: float) -> float:
        """Paths per second; since `started` while the outcomes so far span too little time."""
        if len(self.samples) >= 2:
            (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
            if t1 - t0 >= 5.0 and d1 > d0:
                return (d1 - d0) / (t1 - t0)
        done = self.samples[-1][1] if self.samples else 0
        return done / (now - started) if now > started else 0.0


class ProgressReporter:
    def __init__(self, dsn: str, run_id: str, interval: float = 2.0, log_every: float = 30.0,
                 stream=None):
        self.dsn = dsn
        self.run_id = run_id
        self.interval = interval
        self.log_every = log_every
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _poll(self) -> tuple[int, int | None, int]:
        with store.connect(self.dsn) as conn:
            store.heartbeat(conn, self.run_id)   # this process is alive (store.HEARTBEAT_STALE_SECONDS)
            done, failed = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM inputs WHERE run_id = %s",
                (self.run_id,)).fetchone()
            total = conn.execute("SELECT paths_total FROM runs WHERE id = %s", (self.run_id,)).fetchone()[0]
        return done, total, failed

    def _loop(self) -> None:
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        bar = None
        started = time.monotonic()
        last_log = started
        meter = RateMeter()
        while not self._stop.wait(self.interval):
            try:
                done, total, failed = self._poll()
            except Exception:  # progress is best effort: never disturb the run
                continue
            now = time.monotonic()
            meter.add(now, done)
            if tty:
                if bar is None:
                    from tqdm import tqdm

                    bar = tqdm(total=total, unit="doc", file=self.stream, dynamic_ncols=True,
                               desc="processing")
                if total is not None and bar.total != total:
                    bar.total = total
                bar.set_postfix(failed=failed, refresh=False)
                bar.update(done - bar.n)
            elif now - last_log >= self.log_every:
                last_log = now
                print(format_line(done, total, failed, meter.rate(now, started)), file=self.stream, flush=True)
        if bar is not None:
            bar.close()


def format_line(done: int, total: int | None, failed: int, rate: float) -> str:
    if total:
        eta = (total - done) / rate if rate > 0 else None
        eta_text = f", ETA {int(eta // 60)}m{int(eta % 60):02d}s" if eta is not None else ""
        return (f"progress: {done}/{total} paths ({100 * done / total:.0f}%), {failed} failed, "
                f"{rate:.2f} paths/s{eta_text}")
    return f"progress: {done} paths, {failed} failed, {rate:.2f} paths/s (still listing inputs)"
