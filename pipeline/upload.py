"""python -m pipeline.upload DIR --url URL: send a folder's files to a docpipe server (POST /api/documents).

For people who cannot mount their files where the pipeline runs. Each file goes as one streamed
request body (any size up to the server's limit, never held in memory), several at a time
(--workers), with retries on connection errors, 429 and 5xx (exponential backoff, Retry-After
honoured). What was sent is appended to a local state file (JSON lines: path, size, modification
time, document id, arrival), so a stopped upload started again sends only what is left, and a file
changed since is sent again. Answers the server refuses (413 too large, 415 unsupported type, 400
empty) are final and recorded too; other failures are retried by the next start.

Exit status: 0 when every file was sent (stored, duplicate or refused by the server), 1 when some
could not be sent (listed in the summary; run again to retry them), 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import sys
import threading
import time

TOKEN_ENV = "DOCPIPE_API_TOKEN"
RETRY_STATUS = {429, 500, 502, 503, 504}
FINAL_REFUSALS = {400, 413, 415}
DEFAULT_STATE = ".docpipe-upload-state.jsonl"


class SendFailed(Exception):
    """A file that could not be sent after the retries (or an unexpected answer)."""


def list_files(folder: str) -> list[str]:
    """Every file below `folder`, sorted; names starting with a dot (and the state file) left out."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [os.path.join(root, n) for n in sorted(files) if not n.startswith(".")]
    return out


class State:
    """The state file: one JSON line per file sent; the last line for a path wins. Appends are
    flushed at once, so a process killed half way loses at most the files in flight."""

    def __init__(self, path: str):
        self.path = path
        self.done: dict[str, dict] = {}
        self._lock = threading.Lock()
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill
                        continue
                    self.done[entry["path"]] = entry
        self._fh = open(path, "a", encoding="utf-8", errors="surrogateescape")
        if self._fh.tell() and not _ends_with_newline(path):
            self._fh.write("\n")  # after a line cut short, the next entry starts on its own line

    def sent(self, path: str, size: int, mtime: float) -> bool:
        entry = self.done.get(path)
        return entry is not None and entry.get("size") == size and entry.get("mtime") == mtime

    def record(self, entry: dict) -> None:
        with self._lock:
            self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._fh.flush()
            self.done[entry["path"]] = entry

    def close(self) -> None:
        self._fh.close()


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class Uploader:
    def __init__(self, url: str, token: str | None = None, retries: int = 5, timeout: float = 300.0,
                 backoff: float = 0.5):
        import httpx

        self.endpoint = url.rstrip("/") + "/api/documents"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))
        self.retries = retries
        self.backoff = backoff

    def send(self, path: str) -> dict:
        """Send one file; returns the server's entry for it ({document_id, arrival, ...}, or arrival
        'refused' with the reason for a final 4xx). Raises SendFailed."""
        import httpx

        name = os.path.basename(path)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last))
            try:
                with open(path, "rb") as fh:
                    response = self.client.post(self.endpoint, params={"filename": name}, content=_blocks(fh),
                                                headers={"Content-Type": "application/octet-stream"})
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 202:
                entry = response.json()["files"][0]
                return {**entry, "batch_id": response.json()["batch_id"]}
            detail = _detail(response)
            if response.status_code in FINAL_REFUSALS:
                return {"filename": name, "arrival": "refused", "error": f"{response.status_code}: {detail}"}
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}: {detail}"
                self._retry_after = response.headers.get("retry-after")
                continue
            raise SendFailed(f"HTTP {response.status_code}: {detail}")  # 401, 404, ...: retrying will not help
        raise SendFailed(f"gave up after {self.retries + 1} attempts: {last}")

    _retry_after: str | None = None

    def _delay(self, attempt: int, _last: str) -> float:
        if self._retry_after and self._retry_after.isdigit():
            return min(60.0, float(self._retry_after))
        return min(30.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())

    def close(self) -> None:
        self.client.close()


def _blocks(fh, size: int = 1 << 20):
    while data := fh.read(size):
        yield data


def _detail(response) -> str:
    try:
        detail = response.json().get("detail")
        return detail if isinstance(detail, str) else json.dumps(detail)[:300]
    except Exception:
        return response.text[:300]


def upload(folder: str, url: str, token: str | None = None, workers: int = 4, state_path: str | None = None,
           retries: int = 5, progress: bool = True, limit: int | None = None) -> dict:
    """Send every file of `folder` not sent before; returns the summary. `limit` stops after that many
    files (for trying out a large folder)."""
    from tqdm import tqdm

    state = State(state_path or os.path.join(folder, DEFAULT_STATE))
    files = list_files(folder)
    todo = []
    for path in files:
        st = os.stat(path)
        if not state.sent(path, st.st_size, st.st_mtime):
            todo.append((path, st.st_size, st.st_mtime))
    todo = todo[:limit] if limit is not None else todo
    summary = {"files": len(files), "already_sent": len(files) - len(todo), "stored": 0, "duplicate": 0,
               "refused": 0, "failed": 0, "bytes": 0, "refusals": [], "failures": []}
    uploader = Uploader(url, token, retries=retries)
    started = time.monotonic()
    bar = tqdm(total=len(todo), unit="file", disable=not progress, desc="upload")

    def one(item):
        path, size, mtime = item
        entry = uploader.send(path)
        state.record({"path": path, "size": size, "mtime": mtime, **entry})
        return path, size, entry

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(one, item): item for item in todo}
            for future in concurrent.futures.as_completed(futures):
                path = futures[future][0]
                try:
                    _, size, entry = future.result()
                except Exception as exc:
                    summary["failed"] += 1
                    summary["failures"].append(f"{path}: {exc}")
                else:
                    summary[entry["arrival"]] += 1
                    summary["bytes"] += size if entry["arrival"] != "refused" else 0
                    if entry["arrival"] == "refused":
                        summary["refusals"].append(f"{path}: {entry.get('error')}")
                bar.update(1)
    finally:
        bar.close()
        uploader.close()
        state.close()
    summary["seconds"] = round(time.monotonic() - started, 2)
    summary["files_per_second"] = round(len(todo) / summary["seconds"], 2) if summary["seconds"] else None
    return summary


def format_summary(s: dict) -> str:
    lines = [f"Uploaded from {s['files']} files in {s['seconds']:.1f} s",
             f"  already sent before  {s['already_sent']}",
             f"  stored               {s['stored']}",
             f"  duplicates           {s['duplicate']}  (content the server already had)",
             f"  refused              {s['refused']}",
             f"  failed               {s['failed']}  (run again to retry)",
             f"  sent                 {s['bytes'] / 1e6:.1f} MB, {s['files_per_second'] or 0:.1f} files/s"]
    lines += [f"    refused: {r}" for r in s["refusals"][:20]]
    lines += [f"    failed:  {f}" for f in s["failures"][:20]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.upload", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="folder whose files are sent (recursively; dot-names skipped)")
    parser.add_argument("--url", required=True, help="the server, e.g. http://docpipe-host:8080")
    parser.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                        help=f"bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--workers", type=int, default=4, help="files sent at the same time (default %(default)s)")
    parser.add_argument("--state", default=None,
                        help=f"state file (default: FOLDER/{DEFAULT_STATE}); delete it to send everything again")
    parser.add_argument("--retries", type=int, default=5, help="retries per file (default %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="send at most this many files, then stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.folder):
        print(f"error: not a folder: {args.folder}", file=sys.stderr)
        return 2
    try:
        summary = upload(os.path.abspath(args.folder), args.url, args.token, args.workers, args.state,
                         args.retries, progress=not args.no_progress and sys.stderr.isatty(), limit=args.limit)
    except KeyboardInterrupt:
        print("interrupted: what was sent is in the state file; run again to send the rest", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
