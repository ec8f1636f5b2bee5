"""python -m bench.evaluate --labeled DIR [options] [-- PIPELINE OPTIONS]: quality on real documents.

Runs `python -m pipeline.run` in a subprocess, as a user does, over the files listed in DIR's
labels.csv (a manifest of exactly those files, so the folder's own labels.csv, SOURCES.md and truth
files are not processed), then joins what the store holds for each path with the labels and the
`<file>.truth.json` field values, and reports classification (accuracy, per category precision /
recall / F1, confusion, per language and format, the misclassified files) and extraction (strict
exact match per field) with the run's timing. Scoring is in bench/real_scoring.py.

Store: a fresh embedded PostgreSQL in a temporary folder (the default), or `--data-dir DIR` (embedded)
or `--pg-dsn DSN` (documents the store already completed are skipped by the run unless the pipeline
options after `--` include --reprocess). `--no-run` only scores what the store already holds.
"""
from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from bench import real_scoring as scoring

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- environment -----------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    """HEAD's short hash, with "+changes" when tracked files differ from it (the run used those)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                                 capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+changes" if changed else "")) or None


# -- running the pipeline --------------------------------------------------------------------------

def write_manifest(folder: str, labels: list[dict], path: str) -> str:
    """A manifest naming exactly the labelled files (absolute paths, as the store records them)."""
    with open(path, "w", encoding="utf-8") as fh:
        for label in labels:
            fh.write(os.path.join(folder, label["file"]) + "\n")
    return path


def run_pipeline(input_spec: str, dsn: str, data_dir: str, run_id: str, extra: list[str],
                 log_path: str) -> dict:
    """`python -m pipeline.run` in a subprocess; its output goes to log_path. Wall time and exit status."""
    cmd = [sys.executable, "-m", "pipeline.run", "--input", input_spec, "--pg-dsn", dsn,
           "--data-dir", data_dir, "--run-id", run_id, *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.monotonic() - started
    shown = [a if a != dsn else "DSN" for a in cmd[1:]]
    return {"command": "python " + " ".join(shown), "exit_status": proc.returncode,
            "wall_seconds": round(wall, 1), "log": log_path}


def log_tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


# -- reading the store -----------------------------------------------------------------------------

def fetch_outcomes(dsn: str, paths: list[str]) -> dict[str, dict]:
    """path -> the stored outcome of the document behind it (paths the store does not know are absent)."""
    from pipeline import store

    with store.session(dsn) as conn:
        rows = conn.execute(
            """
            SELECT i.path, d.status, d.category, d.confidence, d.metadata -> 'fields' AS fields,
                   d.metadata -> 'field_sources' AS field_sources,
                   d.language, d.error_stage, d.error_message, d.run_id
            FROM inputs i JOIN documents d ON d.id = i.document_id
            WHERE i.path = ANY(%s)
            """, (paths,)).fetchall()
    return {r["path"]: dict(r) for r in rows}


def fetch_runs(dsn: str, run_ids) -> list[dict]:
    from pipeline import store

    with store.session(dsn) as conn:
        rows = conn.execute("SELECT id, status, started_at, finished_at, counts FROM runs "
                            "WHERE id = ANY(%s) ORDER BY started_at", (sorted(run_ids),)).fetchall()
    stages = store.stage_stats(dsn, [r["id"] for r in rows])
    return [{"id": r["id"], "status": r["status"],
             "wall_seconds": (r["counts"] or {}).get("wall_seconds"),
             "documents": (r["counts"] or {}).get("documents"),
             "documents_per_second": (r["counts"] or {}).get("documents_per_second"),
             # seconds spent in each stage, summed over documents and workers
             "stage_seconds": {st["stage"]: round(st["ms_sum"] / 1000, 1) for st in stages.get(r["id"], [])}}
            for r in rows]


# -- the report ------------------------------------------------------------------------------------

def evaluate(folder: str, dsn: str, *, run: bool = True, data_dir: str | None = None,
             extra: list[str] = (), work_dir: str | None = None) -> dict:
    """Run the pipeline over the labelled files (unless run=False), then score what the store holds."""
    folder = os.path.abspath(folder)
    labels = scoring.load_labels(folder)
    truths = scoring.load_truths(folder, [label["file"] for label in labels])
    work_dir = work_dir or tempfile.mkdtemp(prefix="docpipe-eval-")
    pipeline_run = None
    if run:
        magic = any(ch in label["file"] for label in labels for ch in "*?[")
        spec = folder if magic else "@" + write_manifest(folder, labels, os.path.join(work_dir, "manifest.txt"))
        run_id = "eval-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        pipeline_run = run_pipeline(spec, dsn, data_dir or work_dir, run_id, list(extra),
                                    os.path.join(work_dir, "pipeline-run.log"))
        pipeline_run["run_id"] = run_id
        pipeline_run["documents_per_second"] = round(len(labels) / pipeline_run["wall_seconds"], 3)
    by_path = fetch_outcomes(dsn, [os.path.join(folder, label["file"]) for label in labels])
    outcomes = {label["file"]: by_path.get(os.path.join(folder, label["file"])) for label in labels}
    runs = fetch_runs(dsn, {o["run_id"] for o in outcomes.values() if o and o.get("run_id")}
                      | ({pipeline_run["run_id"]} if pipeline_run else set()))
    return {
        "folder": folder,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "commit": git_commit(),
        "pipeline_options": list(extra),
        "files": len(labels),
        "outcomes": {s: sum(1 for o in outcomes.values() if scoring.predicted_category(o) == s)
                     for s in (scoring.FAILED, scoring.MISSING)},
        "run": pipeline_run,
        "runs_in_store": runs,
        "classification": scoring.score_classification(labels, outcomes),
        "extraction": scoring.score_extraction(truths, outcomes),
        "language": scoring.score_language(labels, outcomes),
    }


def _pct(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_report(report: dict) -> str:
    c, e = report["classification"], report["extraction"]
    out = [f"Quality on {report['files']} labelled real documents in {report['folder']}",
           f"  measured {report['measured_at']} at commit {report['commit']} on "
           f"{report['machine']['cpu']} ({report['machine']['cores']} cores)",
           f"  pipeline options: {' '.join(report['pipeline_options']) or '(defaults)'}"]
    if report["run"]:
        r = report["run"]
        out.append(f"  run {r['run_id']}: exit status {r['exit_status']}, {r['wall_seconds']} s wall "
                   f"(subprocess, start-up included), {r['documents_per_second']} documents/s")
    for run in report["runs_in_store"]:
        out.append(f"  store run {run['id']} ({run['status']}): {run['documents']} documents in "
                   f"{run['wall_seconds']} s, {run['documents_per_second']} documents/s")
        if run["stage_seconds"]:
            out.append("    seconds per stage (summed over documents and workers): " + ", ".join(
                f"{k} {v}" for k, v in sorted(run["stage_seconds"].items(), key=lambda kv: -kv[1])))
    out += ["", f"Classification accuracy {_pct(c['accuracy'])} ({c['correct']}/{c['n']}; failed or "
                f"missing count as wrong), macro F1 {_pct(c['macro_f1'])}",
            f"  {'category':<18} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8} {'predicted':>9}"]
    for name, s in c["per_category"].items():
        out.append(f"  {name:<18} {_pct(s['precision']):>9} {_pct(s['recall']):>7} {_pct(s['f1']):>6} "
                   f"{s['support']:>8} {s['predicted']:>9}")
    for title, key in (("language group", "by_language_group"), ("language", "by_language"),
                       ("format", "by_format")):
        groups = ", ".join(f"{k} {_pct(v['accuracy'])} ({v['correct']}/{v['n']})" for k, v in c[key].items())
        out.append(f"  by {title}: {groups}")
    columns = sorted({p for row in c["confusion"].values() for p in row} | set(c["confusion"]))
    out += ["", "Confusion (rows = truth, columns = predicted):",
            " " * 18 + " ".join(f"{col[:6]:>6}" for col in columns)]
    for truth, row in c["confusion"].items():
        out.append(f"{truth[:17]:<18}" + " ".join(f"{row.get(col, 0) or '.':>6}" for col in columns))
    out += ["", f"Misclassified ({len(c['misclassified'])}): file, truth -> predicted (confidence)"]
    for m in c["misclassified"]:
        conf = "" if m["confidence"] is None else f" ({m['confidence']:.2f})"
        out.append(f"  {m['file']}: {m['truth']} -> {m['predicted']}{conf}"
                   + (f"  [{m['error']}]" if m["error"] else ""))
    out += ["", f"Extraction field accuracy {_pct(e['field_accuracy'])} ({e['correct']}/{e['values']} "
                f"values of {e['files']} truth files; strict exact match, missing counts as wrong)"]
    for name, f in e["per_field"].items():
        out.append(f"  {name:<16} {_pct(f['accuracy'])}  ({f['correct']}/{f['n']}, found {f['found']})")
    if e["never_found"]:
        out.append(f"  never produced by the pipeline: {', '.join(e['never_found'])}; without them "
                   f"{_pct(e['field_accuracy_found_fields'])}")
    out.append(f"  target fields ({', '.join(e['target_fields'])}): {_pct(e['target_accuracy'])}")
    out.append("  by the source the pipeline named: " + ", ".join(
        f"{k} {_pct(v['accuracy'])} ({v['correct']}/{v['n']})" for k, v in e["per_source"].items()))
    ei = e["e_invoices"]
    out.append(f"  e-invoices: {ei['true']} of {ei['stated']} truth files that say" if ei["stated"]
               else f"  e-invoices: {ei['note']}")
    out.append(f"  read from an e-invoice: {ei['read']} files, {ei['correct']}/{ei['values']} values right")
    out += ["", f"Field misses ({len(e['misses'])}): file [predicted category] field: truth | got"]
    for m in e["misses"]:
        out.append(f"  {m['file']} [{m['category']}] {m['field']}: {m['truth']!r} | {m['got']!r}")
    if "language" in report:  # reports made before it was scored lack it
        lang = report["language"]
        out += ["", f"Language {_pct(lang['accuracy'])} ({lang['right']}/{lang['n']} right, {lang['none']} none "
                    f"recorded, {len(lang['wrong'])} another language)"]
        out += [f"  {w['file']}: {w['truth']} -> {w['got']}" for w in lang["wrong"]]
    return "\n".join(out)


# -- command line ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="python -m bench.evaluate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", required=True, help="folder with labels.csv and <file>.truth.json")
    parser.add_argument("--pg-dsn", default=None, help="score (and run into) this PostgreSQL")
    parser.add_argument("--data-dir", default=None,
                        help="embedded PostgreSQL folder (default: a fresh temporary one; .docpipe with --no-run)")
    parser.add_argument("--no-run", action="store_true", help="only score what the store already holds")
    parser.add_argument("--json", help="also write the full report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and the run's log")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.labeled, "labels.csv")):
        print(f"error: no labels.csv in {args.labeled}", file=sys.stderr)
        return 2
    work_dir = tempfile.mkdtemp(prefix="docpipe-eval-")
    if not args.keep:  # registered before the server starts, so it runs after the server stops
        atexit.register(shutil.rmtree, work_dir, True)
    dsn = args.pg_dsn
    if not dsn and args.no_run and not args.data_dir:
        dsn = os.environ.get("PG_DSN")  # scoring a store: the one pipeline.run would have used
    data_dir = args.data_dir or (".docpipe" if args.no_run else work_dir)
    if not dsn:
        from pipeline import embedded
        dsn = embedded.start(data_dir)
    report = evaluate(args.labeled, dsn, run=not args.no_run, data_dir=data_dir, extra=extra,
                      work_dir=work_dir)
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, default=str)
    run = report["run"]
    if run and run["exit_status"] != 0:
        print(f"\nerror: the pipeline run exited with status {run['exit_status']}; its output ends:\n"
              + log_tail(run["log"]), file=sys.stderr)
        return 1
    if args.keep:
        print(f"\nstore and log kept in {work_dir}")
    return 0
