"""Prometheus metrics (`GET /metrics` of pipeline.serve), read from the store at each scrape.

The store is the one place every worker of every runner writes to, so the numbers are the same
whether the pipeline ran here or on a cluster, and a server restart loses nothing. Each scrape
runs a few small aggregate queries; values are gauges (they are counts of rows now, not counters
of events since the server started).

Exported (all prefixed `docpipe_`):

    documents{status,category}            documents in the store (one per distinct content)
                                           (completed without a category: other; unclassified: '')
    input_paths{status}                    input paths by their latest outcome
    failed_documents{stage}                failed documents by the stage that failed
    chunks                                 embedded chunks
    corrections{field}                     corrections users made, by field ('category', ...)
    run_info{run,status}                   1 for each of the recent runs (and every running one)
    run_paths{run,outcome}                 paths with an outcome: completed, failed, skipped, duplicate
    run_paths_listed{run}                  paths the run listed (once listing is complete)
    run_progress_ratio{run}                paths done / listed (0..1)
    run_documents_per_second{run}          throughput so far
    run_eta_seconds{run}                   estimated time left (running runs only)
    run_elapsed_seconds{run}               time since the run started (until it finished)
    run_failures{run,stage}                failed documents of the run by stage
    stage_seconds{run,stage}               summary (_count, _sum) of per-document stage latency
                                           (stages write_batch, index_batch: per batch of documents)
    stage_seconds_max{run,stage}           slowest document of the stage
    stage_documents{run,stage,outcome}     documents through each stage, ok or failed

The stage_* families are live. Every document carries its own stage timings (Document.timings);
the PostgreSQL writer adds them, with each stage's ok/failed outcome, to the run_stage_stats table
in each batch's transaction, so the figures of the stages read, convert, embed, classify and
extract grow while the run goes, whichever runner runs it. They count attempts (like Beam's
attempted metrics): a bundle the runner retries after its batch was committed counts twice.

For stages that table does not have (write_batch, index, index_batch), and for runs written before
it existed (schema v2), the figures come from the run's Beam metrics (counters `<stage>_ok`/
`<stage>_failed`, distributions `<stage>_ms`), which pipeline.run records with the run when it
ends: those appear once the run has finished. A (run, stage) takes its figures from one source
only, the live table when it has that stage, so a series never jumps when the run ends.
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily

from pipeline import store

PREFIX = "docpipe"
CONTENT_TYPE = CONTENT_TYPE_LATEST
RECENT_RUNS = 5  # runs with per-run series: bounded, so a long history does not explode cardinality


def beam_stage_metrics(result, namespace: str = "docpipe") -> dict:
    """The run's Beam metrics as plain JSON: {"counters": {name: n}, "distributions": {name:
    {count, sum, min, max}}}, summed over steps. Committed values where the runner reports them,
    else attempted ones (both exist on the local runners)."""
    from apache_beam.metrics.metric import MetricsFilter

    queried = result.metrics().query(MetricsFilter().with_namespace(namespace))

    def value(entry):
        return entry.committed if entry.committed is not None else entry.attempted

    counters: dict[str, int] = {}
    for entry in queried.get("counters", []):
        counters[entry.key.metric.name] = counters.get(entry.key.metric.name, 0) + int(value(entry) or 0)
    distributions: dict[str, dict] = {}
    for entry in queried.get("distributions", []):
        data = value(entry)
        if data is None or not data.count:
            continue
        merged = distributions.setdefault(entry.key.metric.name,
                                          {"count": 0, "sum": 0, "min": data.min, "max": data.max})
        merged["count"] += data.count
        merged["sum"] += data.sum
        merged["min"], merged["max"] = min(merged["min"], data.min), max(merged["max"], data.max)
    return {"counters": counters, "distributions": distributions}


def _store_totals(dsn: str) -> dict:
    with store.session(dsn) as conn:
        documents = conn.execute(
            # Completed but unclassified counts as 'other', as in pipeline.status; unfinished ones as ''.
            """SELECT status, coalesce(category, CASE WHEN status = 'completed' THEN 'other' ELSE '' END)
                      AS category, count(*) AS n FROM documents GROUP BY 1, 2"""
        ).fetchall()
        inputs = conn.execute("SELECT status, count(*) AS n FROM inputs GROUP BY 1").fetchall()
        failed = conn.execute(
            "SELECT coalesce(error_stage, 'unknown') AS stage, count(*) AS n FROM documents "
            "WHERE status = 'failed' GROUP BY 1").fetchall()
        chunks = conn.execute("SELECT count(*) AS n FROM chunks").fetchone()["n"]
        runs = conn.execute(
            """SELECT id FROM runs WHERE status = 'running'
               UNION SELECT id FROM (SELECT id FROM runs ORDER BY started_at DESC LIMIT %s) recent""",
            (RECENT_RUNS,)).fetchall()
    return {"documents": documents, "inputs": inputs, "failed": failed, "chunks": chunks,
            "runs": [r["id"] for r in runs], "corrections": store.correction_counts(dsn)}


class StoreCollector:
    """A prometheus_client collector that asks the store at every scrape."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def describe(self):
        return []  # nothing to check at registration (no database query before the first scrape)

    def collect(self):
        totals = _store_totals(self.dsn)

        docs = GaugeMetricFamily(f"{PREFIX}_documents", "Documents in the store (one per distinct content) "
                                 "by status and category (completed without one: 'other'; not classified: '')", labels=["status", "category"])
        for r in totals["documents"]:
            docs.add_metric([r["status"], r["category"]], r["n"])
        yield docs

        paths = GaugeMetricFamily(f"{PREFIX}_input_paths", "Input paths by their latest outcome",
                                  labels=["status"])
        for r in totals["inputs"]:
            paths.add_metric([r["status"]], r["n"])
        yield paths

        failed = GaugeMetricFamily(f"{PREFIX}_failed_documents", "Failed documents by the stage that failed",
                                   labels=["stage"])
        for r in totals["failed"]:
            failed.add_metric([r["stage"]], r["n"])
        yield failed

        yield GaugeMetricFamily(f"{PREFIX}_chunks", "Embedded chunks in the store", value=totals["chunks"])

        corrections = GaugeMetricFamily(f"{PREFIX}_corrections", "Corrections users made, by field "
                                        "('category'; 'fields.<name>' for extracted fields)", labels=["field"])
        for field, n in sorted({store.CATEGORY_FIELD: 0, **totals["corrections"]}.items()):
            corrections.add_metric([field], n)
        yield corrections
        yield from self._runs(totals["runs"])

    def _runs(self, run_ids: list[str]):
        gauge = lambda name, doc, labels=("run",): GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))  # noqa: E731
        info = gauge("run_info", "1 for each recent or running run, labelled with its status", ("run", "status"))
        outcome = gauge("run_paths", "Paths of the run with an outcome", ("run", "outcome"))
        listed = gauge("run_paths_listed", "Paths the run listed (known once its listing is complete)")
        progress = gauge("run_progress_ratio", "Paths done / paths listed")
        rate = gauge("run_documents_per_second", "Documents per second so far")
        eta = gauge("run_eta_seconds", "Estimated seconds left (running runs)")
        elapsed = gauge("run_elapsed_seconds", "Seconds from the run's start to its last outcome or end")
        failures = gauge("run_failures", "Failed documents of the run by stage", ("run", "stage"))
        latency = SummaryMetricFamily(f"{PREFIX}_stage_seconds", "Per-document latency of each stage "
                                      "(live; write_batch and index_batch per batch, once the run ends)",
                                      labels=["run", "stage"])
        slowest = gauge("stage_seconds_max", "Slowest document of each stage", ("run", "stage"))
        through = gauge("stage_documents", "Documents through each stage by outcome (attempts)",
                        ("run", "stage", "outcome"))
        live = store.stage_stats(self.dsn, run_ids)
        for run_id in run_ids:
            s = store.run_status(self.dsn, run_id)
            if s is None:  # deleted between the two queries
                continue
            run = s["run"]
            info.add_metric([run_id, run["status"]], 1)
            for name in ("completed", "failed", "skipped"):
                outcome.add_metric([run_id, name], s[name])
            outcome.add_metric([run_id, "duplicate"], s["duplicates"])
            if run["paths_total"] is not None:
                listed.add_metric([run_id], run["paths_total"])
            if s["progress_percent"] is not None:
                progress.add_metric([run_id], s["progress_percent"] / 100.0)
            rate.add_metric([run_id], s["documents_per_second"] or 0.0)
            if s["eta_seconds"] is not None:
                eta.add_metric([run_id], s["eta_seconds"])
            elapsed.add_metric([run_id], s["elapsed_seconds"])
            by_stage: dict[str, int] = {}
            for f in s["failures"]:
                by_stage[f["stage"] or "unknown"] = by_stage.get(f["stage"] or "unknown", 0) + f["documents"]
            for stage, n in sorted(by_stage.items()):
                failures.add_metric([run_id, stage], n)
            live_stages = set()
            for r in live.get(run_id, []):
                stage = r["stage"]
                live_stages.add(stage)
                if r["documents_ok"] or r["ms_count"]:  # read: only its failures are recorded
                    through.add_metric([run_id, stage, "ok"], r["documents_ok"])
                through.add_metric([run_id, stage, "failed"], r["documents_failed"])
                if r["ms_count"]:  # a stage seen only through untimed failures (read) has no latency
                    latency.add_metric([run_id, stage], count_value=r["ms_count"], sum_value=r["ms_sum"] / 1000.0)
                    slowest.add_metric([run_id, stage], r["ms_max"] / 1000.0)
            # The end-of-run Beam figures, for the stages the live table does not cover.
            beam = (run.get("counts") or {}).get("beam") or {}
            for name, d in sorted((beam.get("distributions") or {}).items()):
                if name.endswith("_ms") and name[:-3] not in live_stages:
                    stage = name[:-3]
                    latency.add_metric([run_id, stage], count_value=d["count"], sum_value=d["sum"] / 1000.0)
                    slowest.add_metric([run_id, stage], d["max"] / 1000.0)
            for name, n in sorted((beam.get("counters") or {}).items()):
                stage, _, result = name.rpartition("_")
                if stage and stage != "outcome" and result in ("ok", "failed") and stage not in live_stages:
                    through.add_metric([run_id, stage, result], n)
        yield from (info, outcome, listed, progress, rate, eta, elapsed, failures, latency, slowest, through)


def registry_for(dsn: str) -> CollectorRegistry:
    """A registry of its own (not the process-global one), so several apps can live in one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(dsn))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
