"""GET /metrics: Prometheus text format, parsed with prometheus_client's own parser, and the numbers
checked against pipeline.status (same store, real embedded PostgreSQL, real HTTP). The per-stage
families are live (run_stage_stats, added to by the real PostgreSQL writer from the timings the real
stage DoFns put on each document), with a real (in-process) Beam pipeline's end-of-run metrics for
the stages that table lacks."""
import json
import urllib.error
import urllib.request

import apache_beam as beam
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import metrics, store
from pipeline import status as status_cli
from tests import docs as testdocs
from tests.webserver import serve
from transforms.config import StageConfig
from transforms.convert import ConversionError
from transforms.dofns import ExtractMetadata, _run_stage, _StageMetrics
from transforms.embed import Embedder
from transforms.records import Document
from transforms.write_postgres import PostgresWriter

DOCS = [("m0", "invoice", "Invoice 1 for espresso machines."), ("m1", "invoice", "Invoice 2 for coffee beans."),
        ("m2", "contract", "Lease agreement for a warehouse."), ("m3", None, "Miscellaneous notes.")]


class _FakeStage(beam.DoFn):
    """A stage that records metrics exactly like the pipeline's DoFns (transforms.dofns._StageMetrics)."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        self.metrics = _StageMetrics(self.stage)

    def process(self, n):
        doc = Document(id=str(n), paths=[str(n)])
        if n % 3 == 0:
            doc.fail("convert", "bad")
        self.metrics.record(doc, 0.010 * n)  # n * 10 ms
        yield n


def _beam_metrics() -> dict:
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    p = beam.Pipeline(runner=FnApiRunner())
    # convert: also in the live table (which wins); index: a stage only Beam's figures have.
    _ = p | beam.Create(list(range(1, 7))) | "Convert" >> beam.ParDo(_FakeStage("convert")) \
        | "Index" >> beam.ParDo(_FakeStage("index"))
    result = p.run()
    result.wait_until_finish()
    return metrics.beam_stage_metrics(result)


def _fail_with(exc):
    def stage(doc):
        raise exc
    return stage


def _extracted(extract: ExtractMetadata, doc: Document) -> Document:
    """The document through the real Extract DoFn (which times it onto doc.timings)."""
    (out,) = list(extract.process(doc))
    return out


def _failed_at(stage: str, doc: Document, exc: Exception) -> Document:
    """The document through the DoFns' own stage wrapper with a stage that raises: failed, and timed."""
    _run_stage(doc, stage, _StageMetrics(stage), _fail_with(exc))
    return doc


@pytest.fixture(scope="module")
def extract_dofn():
    dofn = ExtractMetadata(StageConfig())
    dofn.setup()
    return dofn


@pytest.fixture(scope="module")
def metrics_store(pg_server, embedder, extract_dofn):
    from pipeline.embedded import fresh_database

    dsn = fresh_database(pg_server, "metrics_tests")
    store.migrate(dsn)
    # Run m-r1: four documents (one with a second, duplicate path) and failures at two stages.
    store.start_run(dsn, "m-r1", "/data", {})
    stage = Embedder(embedder, 200, 32, 10)
    docs = []
    for doc_id, category, text in DOCS:
        paths = [f"/data/{doc_id}.txt"] + (["/data/copy/m0.txt"] if doc_id == "m0" else [])
        doc = Document(id=doc_id, paths=paths, filename=f"{doc_id}.txt", text=text, status="pending",
                       category=category, confidence=0.8, metadata={"title": text, "fields": {}})
        stage.chunk(doc)
        docs.append(doc)
    stage.embed_batch(docs)
    docs = [_extracted(extract_dofn, d) for d in docs]
    failed = [_failed_at("convert", Document(id="f1", paths=["/data/f1.pdf"]), ConversionError("encrypted PDF")),
              _failed_at("convert", Document(id="f2", paths=["/data/f2.pdf"]), ConversionError("encrypted PDF")),
              Document(id="f3", paths=["/data/f3.txt"]).fail("read", "file is empty (0 bytes)")]
    writer = PostgresWriter(dsn, "m-r1")
    writer.record_listing(8)
    writer.write_batch(docs + failed)
    writer.close()
    _timings["m-r1"] = docs + failed
    counts = store.run_counts(dsn, "m-r1")
    counts["beam"] = _beam_metrics()
    store.finish_run(dsn, "m-r1", "completed", counts)
    # Run m-r2, still running: listed 4 paths, two done: m2's content again under a new path
    # (skipped as unchanged) and a new failure.
    store.start_run(dsn, "m-r2", "/data", {})
    writer = PostgresWriter(dsn, "m-r2")
    writer.record_listing(4)
    writer.write_batch([Document(id="m2", paths=["/data/again/m2.txt"], status="skipped"),
                        _failed_at("embed", Document(id="f4", paths=["/data/f4.docx"]), RuntimeError("model error"))])
    writer.close()
    return dsn


_timings: dict[str, list[Document]] = {}  # the documents each fixture run wrote, with their timings


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def scraped(metrics_store):
    with serve(metrics_store) as url:
        return scrape(url)


def samples(families, name, **labels) -> dict:
    """{label tuple of the other labels: value} of family `name`'s samples matching `labels`."""
    out = {}
    for s in families[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            out[tuple(sorted((k, v) for k, v in s.labels.items() if k not in labels))] = s.value
    return out


def status_json(dsn, *args, capsys):
    assert status_cli.main([*args, "--json", "--pg-dsn", dsn]) == 0
    return json.loads(capsys.readouterr().out)


def test_document_counts_match_the_store(scraped, metrics_store, capsys):
    docs = samples(scraped, "docpipe_documents")
    completed = {dict(k)["category"]: v for k, v in docs.items() if dict(k)["status"] == "completed"}
    assert completed == {"invoice": 2, "contract": 1, "other": 1}
    assert sum(v for k, v in docs.items() if dict(k)["status"] == "failed") == 4
    # Run m-r1 wrote every completed document: its status (as `pipeline.status m-r1` reports it) agrees.
    r1 = status_json(metrics_store, "m-r1", capsys=capsys)
    assert r1["by_category"] == {"invoice": 2, "contract": 1, "other": 1}
    assert completed == r1["by_category"] and sum(completed.values()) == r1["completed"]
    failed_by_stage = {dict(k)["stage"]: v for k, v in samples(scraped, "docpipe_failed_documents").items()}
    assert failed_by_stage == {"convert": 2, "read": 1, "embed": 1}
    paths = {dict(k)["status"]: v for k, v in samples(scraped, "docpipe_input_paths").items()}
    assert paths == {"completed": 5, "failed": 4, "skipped": 1}  # m0's copy counts as a completed path
    with store.session(metrics_store) as conn:
        assert scraped["docpipe_chunks"].samples[0].value == conn.execute("SELECT count(*) AS n FROM chunks").fetchone()["n"] > 0


@pytest.mark.parametrize("run_id", ["m-r1", "m-r2"])
def test_run_series_match_pipeline_status(scraped, metrics_store, capsys, run_id):
    s = status_json(metrics_store, run_id, capsys=capsys)
    outcome = {dict(k)["outcome"]: v for k, v in samples(scraped, "docpipe_run_paths", run=run_id).items()}
    assert outcome == {"completed": s["completed"], "failed": s["failed"], "skipped": s["skipped"],
                       "duplicate": s["duplicates"]}
    assert samples(scraped, "docpipe_run_paths_listed", run=run_id) == {(): s["run"]["paths_total"]}
    assert samples(scraped, "docpipe_run_progress_ratio", run=run_id) == {(): pytest.approx(s["progress_percent"] / 100)}
    assert samples(scraped, "docpipe_run_info", run=run_id) == {(("status", s["run"]["status"]),): 1}
    failures: dict[str, int] = {}
    for f in s["failures"]:
        failures[f["stage"]] = failures.get(f["stage"], 0) + f["documents"]
    assert {dict(k)["stage"]: v for k, v in samples(scraped, "docpipe_run_failures", run=run_id).items()} == failures
    eta = samples(scraped, "docpipe_run_eta_seconds", run=run_id)
    assert eta == ({(): s["eta_seconds"]} if s["eta_seconds"] is not None else {})


def latency(families, run, stage) -> dict:
    """{"count", "sum", "max"} of stage_seconds for (run, stage); {} when there is none."""
    out = {s.name.rpartition("_")[2]: s.value for s in families["docpipe_stage_seconds"].samples
           if s.labels == {"run": run, "stage": stage}}
    slowest = samples(families, "docpipe_stage_seconds_max", run=run, stage=stage)
    if slowest:
        out["max"] = slowest[()]
    return out


def through(families, run, stage) -> dict:
    return {dict(k)["outcome"]: v for k, v in samples(families, "docpipe_stage_documents", run=run, stage=stage).items()}


def expected_latency(documents, stage) -> dict:
    ms = [d.timings[stage] for d in documents if stage in d.timings]
    return {"count": len(ms), "sum": pytest.approx(sum(ms) / 1000), "max": pytest.approx(max(ms) / 1000)}


def test_running_run_has_progress_and_live_stage_metrics(scraped):
    assert samples(scraped, "docpipe_run_progress_ratio", run="m-r2") == {(): 0.5}
    assert samples(scraped, "docpipe_run_eta_seconds", run="m-r2")  # running: an ETA is given
    assert not samples(scraped, "docpipe_run_eta_seconds", run="m-r1")  # finished: no ETA
    # m-r2 has no Beam figures (it has not ended); its one embed failure is there already.
    assert through(scraped, "m-r2", "embed") == {"ok": 0, "failed": 1}
    assert latency(scraped, "m-r2", "embed")["count"] == 1
    assert {dict(k)["stage"] for k in samples(scraped, "docpipe_stage_seconds", run="m-r2")} == {"embed"}


def test_stage_metrics_from_the_live_table(scraped):
    written = _timings["m-r1"]
    assert through(scraped, "m-r1", "extract") == {"ok": 4, "failed": 0}
    assert latency(scraped, "m-r1", "extract") == expected_latency(written, "extract")
    # convert: the two documents that failed there (timed), and not the Beam figures of the same stage.
    assert through(scraped, "m-r1", "convert") == {"ok": 0, "failed": 2}
    assert latency(scraped, "m-r1", "convert") == expected_latency(written, "convert")
    # read: failures are counted, but a read failure is not timed.
    assert through(scraped, "m-r1", "read") == {"failed": 1}
    assert latency(scraped, "m-r1", "read") == {}


def test_stage_metrics_from_the_runs_beam_metrics(scraped):
    # The index stage is not in the live table: its figures are the run's Beam metrics. The fake
    # stage saw n = 1..6 at n * 10 ms; n = 3 and 6 failed.
    assert through(scraped, "m-r1", "index") == {"ok": 4, "failed": 2}
    figures = latency(scraped, "m-r1", "index")
    assert figures["count"] == 6
    assert figures["sum"] == pytest.approx(0.21, abs=0.006)  # 10+20+...+60 ms, truncated
    assert figures["max"] == pytest.approx(0.06, abs=0.002)


def test_status_shows_the_stage_figures(metrics_store, capsys):
    s = status_json(metrics_store, "m-r1", capsys=capsys)
    stages = {r["stage"]: r for r in s["stages"]}
    assert set(stages) == {"read", "convert", "extract"}
    assert (stages["extract"]["documents_ok"], stages["extract"]["ms_count"]) == (4, 4)
    assert status_cli.main(["m-r1", "--pg-dsn", metrics_store]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    # Pipeline order, each with its outcome counts.
    assert [line[0] for line in lines if line and line[0] in stages] == ["read", "convert", "extract"]
    assert ["extract"] == [line[0] for line in lines if line[-4:] == ["4", "ok,", "0", "failed"]]
    assert any(line[:2] == ["read", "-"] for line in lines)


def test_stage_figures_grow_while_the_run_goes(pg_dsn, extract_dofn):
    """Two batches written into a running run, /metrics scraped after each: the stage figures are
    there after the first batch and grow with the second, before the run ends; ending it changes
    nothing (the live figures are not replaced by Beam's)."""
    store.start_run(pg_dsn, "live", "/in", {})

    def documents(names):
        return [_extracted(extract_dofn, Document(
            id=name, paths=[f"/in/{name}.txt"], filename=f"{name}.txt",
            text=f"Invoice {name}. Date of issue: 2024-03-0{i + 1}. Total due: EUR {100 + i}.00"))
            for i, name in enumerate(names)]

    writer = PostgresWriter(pg_dsn, "live")
    try:
        with serve(pg_dsn) as url:
            first_batch = documents(["a", "b", "c"])
            writer.write_batch(first_batch)
            first = scrape(url)
            second_batch = documents(["d", "e"]) + [
                _failed_at("convert", Document(id="x", paths=["/in/x.pdf"]), ConversionError("encrypted PDF"))]
            writer.write_batch(second_batch)
            second = scrape(url)
            store.finish_run(pg_dsn, "live", "completed", store.run_counts(pg_dsn, "live"))
            ended = scrape(url)
    finally:
        writer.close()
    assert samples(first, "docpipe_run_info", run="live") == {(("status", "running"),): 1}
    assert samples(second, "docpipe_run_info", run="live") == {(("status", "running"),): 1}
    assert latency(first, "live", "extract") == expected_latency(first_batch, "extract")
    assert latency(first, "live", "extract")["count"] == 3 and not latency(first, "live", "convert")
    assert latency(second, "live", "extract") == expected_latency(first_batch + second_batch, "extract")
    assert latency(second, "live", "extract")["count"] == 5
    assert through(second, "live", "extract") == {"ok": 5, "failed": 0}
    assert through(second, "live", "convert") == {"ok": 0, "failed": 1}
    assert samples(ended, "docpipe_run_info", run="live") == {(("status", "completed"),): 1}
    for stage in ("extract", "convert"):
        assert latency(ended, "live", stage) == latency(second, "live", stage)
        assert through(ended, "live", stage) == through(second, "live", stage)


def test_a_pipeline_run_fills_the_live_table(tmp_path, pg_dsn):
    """The real Beam graph (in-process FnApiRunner): every stage's DoFn times the documents, the
    timings survive Beam's encoding between stages, and the writer adds them up, with the run not
    finished (pipeline.run's end-of-run bookkeeping is not called here)."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline.graph import build

    testdocs.write(tmp_path, "letter.txt", "Dear Sir, thank you for your letter. Yours sincerely, Bob")
    testdocs.write(tmp_path, "report.md", "# Report\n\nRevenue grew by ten percent in the second quarter.")
    testdocs.write(tmp_path, "empty.txt", b"")
    store.start_run(pg_dsn, "graph-live", str(tmp_path), {})
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        build(p, str(tmp_path), StageConfig(), pg_dsn, "graph-live")
    stats = {r["stage"]: r for r in store.stage_stats(pg_dsn, ["graph-live"])["graph-live"]}
    assert set(stats) == {"read", "convert", "embed", "classify", "extract"}
    assert (stats["read"]["documents_failed"], stats["read"]["ms_count"]) == (1, 0)
    for stage in ("convert", "embed", "classify", "extract"):
        r = stats[stage]
        assert (r["documents_ok"], r["documents_failed"], r["ms_count"]) == (2, 0, 2), stage
        assert 0 < r["ms_max"] <= r["ms_sum"], stage
    with serve(pg_dsn) as url:
        families = scrape(url)
    assert samples(families, "docpipe_run_info", run="graph-live") == {(("status", "running"),): 1}
    assert latency(families, "graph-live", "convert")["count"] == 2


def test_metrics_need_the_token_when_one_is_set(metrics_store, monkeypatch):
    monkeypatch.setenv("DOCPIPE_API_TOKEN", "prom-token")
    with serve(metrics_store) as url:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "/metrics", timeout=30)
        assert denied.value.code == 401
        request = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer prom-token"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert "docpipe_documents" in {f.name for f in text_string_to_metric_families(response.read().decode())}
