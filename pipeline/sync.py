"""Continuous mode: `python -m pipeline.run --watch --input DIR [options]` keeps a folder in sync.

Design: repeated small batch runs. Every `--watch-interval` seconds the folder is listed (names
starting with a dot are ignored: temporary files of uploads, editors, rsync), compared with what the
last cycle saw (table `watched_files`: path, size, modification time), and
- new and changed files (once unmodified for `--watch-settle` seconds) go to one ordinary batch run
  of the pipeline over a manifest of just those paths (`--input @manifest`): the same graph, options,
  outcomes and run records as `pipeline.run`; content already completed is skipped by the store's
  SkipCompleted as in any rerun;
- deleted files are marked: their `inputs` row becomes `deleted`, and a document none of whose paths
  is left becomes `deleted` (no longer searchable; processed again if its content comes back).
What was seen is stored in PostgreSQL only after the run for it ended, so a watch that is stopped or
crashes, then restarted, processes exactly what it had not finished, and nothing else.

Why not Beam's streaming file matching (`MatchContinuously`)? It needs a streaming runner, which
neither the default local FnApiRunner nor the Dask runner is, and it only sees new paths, not files
changed in place or deleted. Batch runs work on every runner this project supports, with the same
outcomes and the same failure handling, and each cycle's run is an ordinary run in `pipeline.status`.

Small cycles (at most `--watch-small` files) run in this process (Beam's in-memory FnApiRunner), so
the models stay loaded between cycles (loaded at start: warm_up) and one new file is searchable
within seconds; larger ones use the configured runner (by default one worker process per core), once
the files stop arriving (a burst is gathered into one run, up to GATHER_SECONDS). An explicit
--runner, --direct_running_mode or --profile is always used as given.

The upload API's inbox (pipeline/inbox.py) goes through the same path: `pipeline.serve` starts
`python -m pipeline.run --watch --input INBOX` as a child process (or, with `serve --no-watch`, a
watch is run elsewhere: another machine, a cluster job over the inbox's bucket).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import subprocess
import sys
import time

from pipeline import store

log = logging.getLogger("pipeline.sync")

# The options of continuous mode (pipeline/options.py declares them for --help); removed from the
# arguments each cycle's run gets.
WATCH_FLAGS = {"--watch": 0, "--watch-interval": 1, "--watch-settle": 1, "--watch-small": 1}
MANIFESTS_KEPT = 50
# A burst (more than --watch-small files, and more than at the previous listing: files are still
# arriving) waits for the next listing, up to this many seconds, so that it becomes one run on the
# configured runner rather than several runs each paying the runner's start-up.
GATHER_SECONDS = 15.0


class WatchError(Exception):
    """The watch cannot start (another one holds the folder, a bad folder); shown as one line."""


def ignored(name: str) -> bool:
    return name.startswith(".")


def list_folder(root: str) -> dict[str, tuple[int, float]]:
    """{path: (size, modification time)} of every file below `root`, names starting with a dot (and
    everything below such folders) left out."""
    from transforms.read import is_local

    if is_local(root):
        return _list_local(root)
    from apache_beam.io.filesystems import FileSystems

    pattern = root.rstrip("/") + "/**"
    out = {}
    for meta in FileSystems.match([pattern])[0].metadata_list:
        rel = meta.path[len(root.rstrip("/")) + 1:]
        if any(ignored(part) for part in rel.split("/")):
            continue
        out[meta.path] = (meta.size_in_bytes, float(meta.last_updated_in_seconds or 0))
    return out


def _list_local(root: str) -> dict[str, tuple[int, float]]:
    out = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not ignored(d)]
        # symlinks to folders are listed as entries, as pipeline.run's listing does (they get an outcome)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            if ignored(name):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # deleted while listing: the next cycle marks it
                continue
            out[path] = (st.st_size, st.st_mtime)
    return out


# -- what the watch has seen (table watched_files, schema v5) -------------------------------------

def _db_path(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def load_seen(dsn: str, root: str) -> dict[str, tuple[int, float]]:
    with store.connect(dsn) as conn:
        rows = conn.execute("SELECT path, size, mtime FROM watched_files WHERE root = %s", (root,)).fetchall()
    return {store.path_from_text(p): (size, mtime) for p, size, mtime in rows}


def record_seen(dsn: str, root: str, entries: dict[str, tuple[int, float]], run_id: str | None) -> None:
    if not entries:
        return
    with store.connect(dsn) as conn, conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO watched_files (root, path, size, mtime, run_id) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (root, path) DO UPDATE SET size = EXCLUDED.size, mtime = EXCLUDED.mtime,
                   run_id = EXCLUDED.run_id, seen_at = now()""",
            [(root, _db_path(p), size, mtime, run_id) for p, (size, mtime) in entries.items()])


def mark_deleted(dsn: str, root: str, paths: list[str]) -> int:
    """Paths gone from the folder: their input outcome becomes `deleted`, and documents left with no
    path become `deleted` (search shows completed documents only). Returns the documents marked."""
    if not paths:
        return 0
    stored = [_db_path(p) for p in paths]
    # A deleted archive or email takes its members (paths `archive.zip!/member.pdf`) with it.
    members = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "!/%" for p in stored]
    with store.connect(dsn) as conn, conn.transaction():
        ids = [r[0] for r in conn.execute(
            "UPDATE inputs SET status = 'deleted', updated_at = now() WHERE path = ANY(%s) OR path LIKE ANY(%s) "
            "RETURNING document_id", (stored, members)).fetchall()]
        marked = conn.execute(
            """UPDATE documents d SET status = 'deleted', updated_at = now()
               WHERE d.id = ANY(%s) AND NOT EXISTS (
                   SELECT 1 FROM inputs i WHERE i.document_id = d.id AND i.status <> 'deleted')""",
            (ids,)).rowcount if ids else 0
        conn.execute("DELETE FROM watched_files WHERE root = %s AND path = ANY(%s)", (root, stored))
    return marked


def documents_of(dsn: str, paths: list[str]) -> list[str]:
    """The documents these paths hold now (before a run replaces what changed)."""
    with store.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT document_id FROM inputs WHERE path = ANY(%s)",
                                           ([_db_path(p) for p in paths],)).fetchall()]


def retire_orphans(dsn: str, doc_ids: list[str]) -> int:
    """Documents that no path holds any more (a file changed in place: its old content) become
    `deleted`, so search no longer finds the old text. Returns how many."""
    if not doc_ids:
        return 0
    with store.connect(dsn) as conn, conn.transaction():
        return conn.execute(
            """UPDATE documents d SET status = 'deleted', updated_at = now()
               WHERE d.id = ANY(%s) AND d.status <> 'deleted' AND NOT EXISTS (
                   SELECT 1 FROM inputs i WHERE i.document_id = d.id AND i.status <> 'deleted')""",
            (doc_ids,)).rowcount


def changes(listed: dict, seen: dict, now: float, settle: float) -> tuple[dict, list[str], int]:
    """(new or changed paths that settled -> (size, mtime), deleted paths, paths still being written)."""
    changed, waiting = {}, 0
    for path, entry in listed.items():
        if seen.get(path) == entry:
            continue
        if now - entry[1] < settle:
            waiting += 1  # modified a moment ago: perhaps still being written; the next cycle takes it
            continue
        changed[path] = entry
    deleted = sorted(p for p in seen if p not in listed)
    return changed, deleted, waiting


# -- the watch ----------------------------------------------------------------------------------

def split_args(argv: list[str]) -> tuple[dict, list[str]]:
    """(watch settings, the other arguments) from pipeline.run's arguments."""
    settings = {"interval": 2.0, "settle": 1.0, "small": 20}
    rest, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in WATCH_FLAGS:
            if WATCH_FLAGS[name]:
                if not eq:
                    i += 1
                    value = argv[i] if i < len(argv) else ""
                key = name[len("--watch-"):]
                try:
                    settings[key] = type(settings[key])(value)
                except ValueError:
                    raise WatchError(f"{name} needs a number, got {value!r}") from None
            i += 1
            continue
        rest.append(arg)
        i += 1
    return settings, rest


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _without(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if not arg.startswith(name + "="):
            out.append(arg)
    return out


class FolderWatch:
    """One folder kept in sync with the store by repeated small batch runs (see the module's doc)."""

    def __init__(self, argv: list[str], run_fn=None):
        self.settings, argv = split_args(argv)
        root = _option(argv, "--input")
        if not root or root.startswith("@"):
            raise WatchError("--watch needs --input FOLDER (a folder or a bucket prefix, not a manifest or a file)")
        from transforms.read import is_local

        self.local = is_local(root)
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")
        if self.local and not os.path.isdir(self.root):
            raise WatchError(f"--watch --input must be a folder: {self.root}")
        if _option(argv, "--run-id") or "--retry-failed" in argv:
            raise WatchError("--watch names its runs itself (watch-...) and takes no --run-id or --retry-failed")
        from pipeline.options import check_flags

        check_flags(argv)  # a mistyped option fails the watch at start, not every cycle's run
        from apache_beam.options.pipeline_options import PipelineOptions

        from pipeline.options import DocPipelineOptions
        from pipeline.run import UsageError, validate

        try:  # the checks pipeline.run makes of its options (files named, chunk sizes), once, here
            validate(PipelineOptions(argv).view_as(DocPipelineOptions))
        except UsageError as exc:
            raise WatchError(str(exc)) from None
        self.base_argv = _without(argv, "--input")
        self.user_chose_runner = any(a.split("=")[0] in ("--runner", "--direct_running_mode", "--profile")
                                     for a in argv)
        self.data_dir = _option(argv, "--data-dir") or ".docpipe"
        self.dsn = _option(argv, "--pg-dsn") or os.environ.get("PG_DSN")
        if run_fn is None:
            from pipeline.run import run as run_fn
        self.run_fn = run_fn
        self.seen: dict[str, tuple[int, float]] | None = None
        self.lock_conn = None
        self.failures = 0
        self.gathering = None  # (files seen changed at the previous listing, since when) during a burst

    # Manifests of the cycles' runs: in the data folder for a local watch; beside the files (in a
    # dot-folder the listing ignores) for a bucket, where remote workers can read them.
    def _manifest_dir(self) -> str:
        if self.local:
            return os.path.join(os.path.abspath(self.data_dir), "watch")
        return self.root + "/.docpipe-watch"

    def start(self) -> None:
        """Connect (starting the embedded PostgreSQL if no DSN), migrate, and take the folder's lock."""
        if not self.dsn:
            from pipeline import embedded

            self.dsn = embedded.start(self.data_dir)
        store.migrate(self.dsn)
        if _option(self.base_argv, "--pg-dsn") is None:  # each cycle's run uses the server started here
            self.base_argv += ["--pg-dsn", self.dsn]
        self.lock_conn = store.connect(self.dsn, autocommit=True)
        got = self.lock_conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", ("docpipe-watch:" + self.root,)
                                     ).fetchone()[0]
        if not got:
            self.lock_conn.close()
            raise WatchError(f"another watch is keeping {self.root} in sync with this store; stop it first")
        self.seen = load_seen(self.dsn, self.root)
        print(f"Watching {self.root} every {self.settings['interval']:g} s ({len(self.seen)} files seen before)",
              flush=True)

    def close(self) -> None:
        if self.lock_conn is not None:
            self.lock_conn.close()
            self.lock_conn = None

    def cycle(self) -> dict:
        """List, compare, mark deletions, run over what changed. Returns what it did."""
        listed = list_folder(self.root)
        changed, deleted, waiting = changes(listed, self.seen, time.time(), self.settings["settle"])
        report = {"changed": len(changed), "deleted": len(deleted), "waiting": waiting, "run": None}
        if deleted:
            report["documents_deleted"] = mark_deleted(self.dsn, self.root, deleted)
            for path in deleted:
                self.seen.pop(path, None)
            print(f"watch: {len(deleted)} deleted file(s) marked ({report['documents_deleted']} document(s) "
                  "no longer searchable)", flush=True)
        if changed and self._still_arriving(len(changed)):
            report["gathering"] = True
            return report
        self.gathering = None
        if changed:
            report["run"] = self._run(changed)
        return report

    def _still_arriving(self, count: int) -> bool:
        if count <= self.settings["small"]:
            return False
        previous, since = self.gathering or (0, time.monotonic())
        if count > previous and time.monotonic() - since < GATHER_SECONDS:
            self.gathering = (count, since)
            return True
        return False

    def _run(self, changed: dict) -> dict | None:
        run_id = "watch-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        manifest = self._write_manifest(run_id, sorted(changed))
        argv = self.base_argv + ["--input", "@" + manifest, "--run-id", run_id]
        if not self.user_chose_runner and len(changed) <= self.settings["small"]:
            argv += ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]
        print(f"watch: {len(changed)} new or changed file(s) -> run {run_id}", flush=True)
        before = documents_of(self.dsn, [p for p in changed if p in self.seen])  # changed in place
        from pipeline.run import UsageError

        try:
            summary = self.run_fn(argv)
        except KeyboardInterrupt:
            raise
        except UsageError as exc:  # the options themselves are wrong: every cycle would fail the same way
            raise WatchError(str(exc)) from None
        except Exception as exc:  # the next cycle tries again (what it saw is not recorded)
            self.failures += 1
            log.error("watch: run %s failed: %s", run_id, exc)
            print(f"watch: run {run_id} failed ({exc}); trying again in the next cycle", file=sys.stderr, flush=True)
            return {"run_id": run_id, "status": "failed", "error": str(exc)}
        self.failures = 0
        retired = retire_orphans(self.dsn, before)
        if retired:
            summary = {**summary, "documents_replaced": retired}
        record_seen(self.dsn, self.root, changed, run_id)
        self.seen.update(changed)
        return summary

    def _write_manifest(self, run_id: str, paths: list[str]) -> str:
        folder = self._manifest_dir()
        body = "".join(p + "\n" for p in paths if "\n" not in p and not p.lstrip().startswith("#"))
        if self.local:
            os.makedirs(folder, exist_ok=True)
            old = sorted(n for n in os.listdir(folder) if n.startswith("watch-"))
            for name in old[:-MANIFESTS_KEPT]:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
            path = os.path.join(folder, run_id + ".txt")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(body)
            return path
        from apache_beam.io.filesystems import FileSystems

        path = f"{folder}/{run_id}.txt"
        with FileSystems.create(path) as fh:
            fh.write(body.encode("utf-8", "surrogateescape"))
        return path

    def run_forever(self, cycles: int | None = None) -> None:
        """Cycle until interrupted (Ctrl-C, SIGTERM) or after `cycles` cycles. A cycle whose run failed
        is retried with a growing pause (up to a minute)."""
        from transforms import isolate

        isolate.KEEP_WARM = True  # in-process cycles hand their converter process on to the next one
        try:
            self.warm_up()
            self._cycles(cycles)
        finally:
            isolate.close_parked()

    def warm_up(self) -> None:
        """Load the models and start the converter process now, as an in-process cycle would, so the
        first small cycle (a single upload, even after a large first cycle ran on worker processes)
        does not pay for them. Never fatal: a cycle loads what it needs anyway."""
        if self.user_chose_runner:
            return
        started = time.monotonic()
        try:
            from apache_beam.options.pipeline_options import PipelineOptions

            from pipeline.options import DocPipelineOptions, stage_config
            from pipeline.run import local_workers, with_local_defaults
            from transforms import backends, isolate

            options = PipelineOptions(with_local_defaults(self.base_argv + ["--runner=FnApiRunner",
                                                                             "--direct_running_mode=in_memory"]))
            opts = options.view_as(DocPipelineOptions)
            threads = opts.model_threads or max(1, (os.cpu_count() or 1) // (local_workers(options) or 1))  # as run()
            config = stage_config(opts, model_threads=threads)
            backends.load_embedder(config)
            backends.load_classifier(config)
            if config.isolate_convert:
                converter = isolate.IsolatedConverter(config)
                converter._start()
                converter.close()  # parked for the first cycle's run (KEEP_WARM)
        except Exception as exc:
            log.warning("watch: warming up failed (%s); the first cycle loads the models itself", exc)
            return
        print(f"watch: models and converter ready in {time.monotonic() - started:.1f} s", flush=True)

    def _cycles(self, cycles: int | None) -> None:
        done = 0
        while cycles is None or done < cycles:
            started = time.monotonic()
            self.cycle()
            done += 1
            if cycles is not None and done >= cycles:
                break
            pause = self.settings["interval"] * (2 ** min(self.failures, 5))
            time.sleep(max(0.0, min(pause, 60.0) - (time.monotonic() - started)))


def main(argv: list[str]) -> int:
    """pipeline.run --watch: exit status 2 for bad options, 130 when stopped (Ctrl-C, SIGTERM)."""
    try:
        watch = FolderWatch(argv)
        watch.start()
    except (WatchError, store.StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        watch.run_forever()
    except WatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("watch stopped: what was processed is recorded; starting it again continues from there",
              file=sys.stderr)
        return 130
    finally:
        watch.close()
    return 0


# -- the server's watch on its inbox ------------------------------------------------------------

def _stop_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the parent dies (even by kill -9), so a server that is
    gone never leaves its watch behind (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@contextlib.contextmanager
def watch_process(inbox: str, dsn: str, extra_args: list[str] = (), interval: float = 1.0,
                  data_dir: str | None = None):
    """`python -m pipeline.run --watch --input INBOX --pg-dsn DSN ...` as a child process for as long as
    the block runs (pipeline.serve uses it on its inbox); stopped with SIGTERM (the watch records
    nothing half done), killed if it does not stop in 30 s."""
    os.makedirs(inbox, exist_ok=True) if not inbox.startswith(("gs://", "s3://", "hdfs://")) else None
    cmd = [sys.executable, "-m", "pipeline.run", "--watch", "--input", inbox, "--pg-dsn", dsn,
           "--watch-interval", str(interval), *(["--data-dir", data_dir] if data_dir else []), *extra_args]
    child = subprocess.Popen(cmd, preexec_fn=_stop_with_parent if sys.platform == "linux" else None)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
