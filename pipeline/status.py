"""python -m pipeline.status [RUN_ID] [--doc ID_OR_PATH] [--failed] [--json]

Without arguments: recent runs with counts and progress, and how many corrections users made.
With a run id: its totals by status, progress, throughput, ETA while running, per-stage latency
and outcomes (live), and failures grouped by stage and reason (--failed lists them all). With
--doc: everything about one document (by id, id prefix, or any of its paths), with its corrections.
"""
from __future__ import annotations

import argparse
import sys

from pipeline import cli, store


def _fmt_seconds(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def format_runs(runs: list[dict]) -> str:
    if not runs:
        return "No runs yet: start one with `python -m pipeline.run --input PATH`."
    lines = [f"{'run':<26}{'status':<11}{'started':<21}{'paths':>8}{'done':>8}{'failed':>8}{'skipped':>9}{'progress':>10}"]
    for r in runs:
        total = r["paths_total"]
        progress = f"{100 * r['paths_done'] / total:.0f}%" if total else "-"
        lines.append(f"{r['id']:<26}{r['status']:<11}{r['started_at']:%Y-%m-%d %H:%M:%S}  "
                     f"{total if total is not None else '?':>8}{r['completed']:>8}{r['failed']:>8}"
                     f"{r['skipped']:>9}{progress:>10}")
    return "\n".join(lines)


def format_run(s: dict, all_failures: bool) -> str:
    run = s["run"]
    lines = [
        f"Run {run['id']}  ({run['status']})"
        + (f": its process has not been heard of since {run['last_seen_at']:%Y-%m-%d %H:%M:%S} and ended without "
           "recording an outcome (killed, or the database was unreachable); run it again to finish"
           if run["status"] == "gone" else ""),
        f"  input            {run['input']}",
        f"  started          {run['started_at']:%Y-%m-%d %H:%M:%S}"
        + (f", finished {run['finished_at']:%Y-%m-%d %H:%M:%S}" if run["finished_at"] else ""),
        f"  progress         {s['paths_done']} of {run['paths_total'] if run['paths_total'] is not None else '?'} paths"
        + (f" ({s['progress_percent']}%)" if s["progress_percent"] is not None else ""),
        f"  completed        {s['completed']}",
        f"  failed           {s['failed']}"
        + (f" ({s['failed_before']} failed before, unchanged: not converted again)" if s.get("failed_before") else ""),
        f"  skipped          {s['skipped']} unchanged, {s['duplicates']} duplicate paths",
        *([f"  waiting index    {s['index_pending']} in PostgreSQL, not yet in OpenSearch "
            "(python -m pipeline.reindex)"] if s.get("index_pending") else []),
        f"  throughput       {s['documents_per_second'] or 0:.2f} documents/s over {_fmt_seconds(s['elapsed_seconds'])}"
        + (f", ETA {_fmt_seconds(s['eta_seconds'])}" if s["eta_seconds"] is not None else ""),
        "  by category      " + (", ".join(f"{k} {v}" for k, v in s["by_category"].items()) or "-"),
    ]
    lines += format_stages(s.get("stages") or [])
    if s["failures"]:
        lines.append("  failures by stage and reason:")
        for f in s["failures"] if all_failures else s["failures"][:10]:
            lines.append(f"    {f['documents']:>6}  {f['stage']}: {f['reason']}")
            if all_failures:
                lines += [f"            e.g. {p}" for p in f["examples"]]
        if not all_failures and len(s["failures"]) > 10:
            lines.append(f"    ... {len(s['failures']) - 10} more reasons (--failed lists all)")
    return "\n".join(lines)


STAGE_ORDER = ("read", "convert", "embed", "classify", "extract")


def _fmt_ms(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def format_stages(stages: list[dict]) -> list[str]:
    """Per-stage lines from store.stage_stats (live while the run goes): mean and max latency, and
    documents ok/failed."""
    if not stages:
        return []
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    lines = ["  stages           mean, max per document; documents ok / failed (attempts)"]
    for r in sorted(stages, key=lambda r: (order.get(r["stage"], len(order)), r["stage"])):
        timing = (f"{_fmt_ms(r['ms_sum'] / r['ms_count'])} mean, max {_fmt_ms(r['ms_max'])}"
                  if r["ms_count"] else "-")
        lines.append(f"    {r['stage']:<15}{timing:<28}{r['documents_ok']} ok, {r['documents_failed']} failed")
    return lines


def format_document(d: dict) -> str:
    lines = [f"Document {d['id']}",
             f"  status        {d['status']}" + (f" at {d['error_stage']}: {d['error_message']}" if d["error_stage"] else ""),
             f"  category      {d['category'] or '-'}" + (f" (confidence {d['confidence']:.2f})" if d["confidence"] is not None else ""),
             *[f"  corrected     by {c['corrected_by']} at {c['corrected_at']:%Y-%m-%d %H:%M:%S}"
               + (f" (was {c['previous']})" if c["previous"] is not None else "")
               for c in d.get("corrections") or [] if c["field"] == store.CATEGORY_FIELD],
             f"  file          {d['filename']}, {d['size']} bytes, {d['mime'] or '?'}, {d['pages'] or '-'} pages",
             f"  converted by  {d['converter'] or '-'}, language {d['language'] or '-'}, {d['text_chars'] or 0} characters, {d['chunks']} chunks",
             f"  processed     {d['processed_at']:%Y-%m-%d %H:%M:%S} by run {d['run_id']} (attempts: {d['attempts']})"]
    meta = d["metadata"] or {}
    if meta:
        lines.append(f"  title         {meta.get('title') or '-'}")
        for key, value in (meta.get("fields") or {}).items():
            lines.append(f"  {key:<13} {value}")
    for parent in d.get("parents") or []:
        lines.append(f"  inside        {parent['path'] or parent['parent_id']} as {parent['member_name']}")
    if d.get("children"):
        lines.append(f"  members       {len(d['children'])}:")
        lines += [f"    {c['member_name']}  ({c['status']}" + (f", {c['category']}" if c["category"] else "")
                  + (f": {c['error_message']}" if c["status"] == "failed" and c["error_message"] else "")
                  + f")  id {c['document_id'][:12]}" for c in d["children"]]
    lines.append("  seen as:")
    lines += [f"    {i['path']}  ({i['status']} in run {i['run_id']}"
              + (", duplicate content" if i["duplicate_of"] else "") + ")" for i in d["inputs"]]
    return "\n".join(lines)


def format_corrections(counts: dict[str, int]) -> str:
    """One line on what users corrected, e.g. 'Corrections: 3 categories (...)'."""
    n = counts.get(store.CATEGORY_FIELD, 0)
    line = f"Corrections: {n} {'category' if n == 1 else 'categories'}"
    if n:
        line += " (used as labelled examples by the next run's classifier)"
    fields = sum(v for k, v in counts.items() if k != store.CATEGORY_FIELD)
    return line + (f", {fields} extracted fields" if fields else "")


def verify(dsn: str, run: dict, as_json: bool) -> int:
    """Every path of the run's input must have exactly one outcome (the primary key of inputs makes
    it at most one); list the paths that have none."""
    from transforms import read

    if run["input"] == store.RETRY_FAILED_INPUT:
        return verify_retry(dsn, run, as_json)
    listed = 0

    def listing():
        nonlocal listed
        for path in read.expand_input(run["input"]):
            listed += 1
            yield path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    missing = store.paths_without_outcome(dsn, run["id"], listing())
    # Members of containers (attachments, archive members) are not listed: each got its own outcome
    # when its container was opened; say how many, so a container's members are accounted for too.
    with store.session(dsn) as conn:
        members = conn.execute("SELECT count(*) AS n, count(*) FILTER (WHERE status = 'failed') AS failed "
                               "FROM inputs WHERE run_id = %s AND parent_id IS NOT NULL", (run["id"],)).fetchone()
    if as_json:
        print(cli.to_json({"run": run["id"], "paths_listed": listed, "missing": missing,
                           "members": members["n"], "members_failed": members["failed"]}))
    else:
        print(f"Run {run['id']}: {listed} paths listed now from {run['input']}, "
              f"{listed - len(missing)} with an outcome, {len(missing)} without")
        if members["n"]:
            print(f"  and {members['n']} members of containers (attachments, archive members), each with "
                  f"its outcome ({members['failed']} failed)")
        for path in missing[:100]:
            print(f"  no outcome: {path}")
        if len(missing) > 100:
            print(f"  ... and {len(missing) - 100} more (--json lists all)")
    return 1 if missing else 0


def verify_retry(dsn: str, run: dict, as_json: bool) -> int:
    """A --retry-failed run has no listing to redo: each of the paths it took must have an outcome
    from it (a path's row moves to the latest run that saw it)."""
    with store.session(dsn) as conn:
        total = conn.execute("SELECT paths_total FROM runs WHERE id = %s", (run["id"],)).fetchone()["paths_total"]
        seen = conn.execute("SELECT count(*) AS n FROM inputs WHERE run_id = %s", (run["id"],)).fetchone()["n"]
    total = total or 0
    if as_json:
        print(cli.to_json({"run": run["id"], "paths_listed": total, "missing_count": max(0, total - seen)}))
    else:
        print(f"Run {run['id']}: retried {total} failed paths, {seen} with an outcome from this run, "
              f"{max(0, total - seen)} without")
    return 1 if seen < total else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.status", description=__doc__.splitlines()[0])
    parser.add_argument("run_id", nargs="?", help="a run id (see the list without arguments)")
    parser.add_argument("--doc", help="a document id, id prefix, or path")
    parser.add_argument("--failed", action="store_true", help="list every failure reason with example paths")
    parser.add_argument("--verify", action="store_true",
                        help="list the run's input again and report every path without a recorded outcome "
                             "(exit status 1 if any)")
    parser.add_argument("--limit", type=int, default=20, help="runs to list (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    cli.add_store_args(parser)
    args = parser.parse_args(argv)
    dsn = cli.dsn_from_args(args)
    if args.doc:
        result = store.document_status(dsn, args.doc)
        if result is None:
            print(f"error: no document with id or path {args.doc!r}", file=sys.stderr)
            return 1
        print(cli.to_json(result) if args.json else format_document(result))
    elif args.run_id:
        result = store.run_status(dsn, args.run_id)
        if result is None:
            print(f"error: no run {args.run_id!r} (list runs with `python -m pipeline.status`)", file=sys.stderr)
            return 1
        if args.verify:
            return verify(dsn, result["run"], args.json)
        result["stages"] = store.stage_stats(dsn, [args.run_id]).get(args.run_id, [])
        print(cli.to_json(result) if args.json else format_run(result, args.failed))
    else:
        runs = store.list_runs(dsn, args.limit)
        if args.json:
            print(cli.to_json(runs))
        else:
            print(format_runs(runs))
            print(format_corrections(store.correction_counts(dsn)))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
