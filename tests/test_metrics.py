"""GET /metrics: Prometheus text format, parsed with prometheus_client's own parser, and the numbers
checked against pipeline.status (same store, real embedded PostgreSQL, real HTTP). The per-stage
families come from a real (in-process) Beam pipeline's metrics."""
import json
import urllib.error
import urllib.request

import apache_beam as beam
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import metrics, store
from pipeline import status as status_cli
from tests.webserver import serve
from transforms.dofns import _StageMetrics
from transforms.embed import Embedder
from transforms.records import Document
from transforms.write_postgres import PostgresWriter

DOCS = [("m0", "invoice", "Invoice 1 for espresso machines."), ("m1", "invoice", "Invoice 2 for coffee beans."),
        ("m2", "contract", "Lease agreement for a warehouse."), ("m3", None, "Miscellaneous notes.")]


class _FakeStage(beam.DoFn):
    """A stage that records metrics exactly like the pipeline's DoFns (transforms.dofns._StageMetrics)."""

    def setup(self):
        self.metrics = _StageMetrics("convert")

    def process(self, n):
        doc = Document(id=str(n), paths=[str(n)])
        if n % 3 == 0:
            doc.fail("convert", "bad")
        self.metrics.record(doc, 0.010 * n)  # n * 10 ms
        yield n


def _beam_metrics() -> dict:
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    p = beam.Pipeline(runner=FnApiRunner())
    _ = p | beam.Create(list(range(1, 7))) | beam.ParDo(_FakeStage())
    result = p.run()
    result.wait_until_finish()
    return metrics.beam_stage_metrics(result)


@pytest.fixture(scope="module")
def metrics_store(pg_server, embedder):
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
    failed = [Document(id="f1", paths=["/data/f1.pdf"]).fail("convert", "encrypted PDF"),
              Document(id="f2", paths=["/data/f2.pdf"]).fail("convert", "encrypted PDF"),
              Document(id="f3", paths=["/data/f3.txt"]).fail("read", "file is empty (0 bytes)")]
    writer = PostgresWriter(dsn, "m-r1")
    writer.record_listing(8)
    writer.write_batch(docs + failed)
    writer.close()
    counts = store.run_counts(dsn, "m-r1")
    counts["beam"] = _beam_metrics()
    store.finish_run(dsn, "m-r1", "completed", counts)
    # Run m-r2, still running: listed 4 paths, two done: m2's content again under a new path
    # (skipped as unchanged) and a new failure.
    store.start_run(dsn, "m-r2", "/data", {})
    writer = PostgresWriter(dsn, "m-r2")
    writer.record_listing(4)
    writer.write_batch([Document(id="m2", paths=["/data/again/m2.txt"], status="skipped"),
                        Document(id="f4", paths=["/data/f4.docx"]).fail("embed", "model error")])
    writer.close()
    return dsn


@pytest.fixture(scope="module")
def scraped(metrics_store):
    with serve(metrics_store) as url:
        with urllib.request.urlopen(url + "/metrics", timeout=60) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return families


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


def test_running_run_has_progress_but_no_stage_metrics(scraped):
    assert samples(scraped, "docpipe_run_progress_ratio", run="m-r2") == {(): 0.5}
    assert samples(scraped, "docpipe_run_eta_seconds", run="m-r2")  # running: an ETA is given
    assert not samples(scraped, "docpipe_stage_seconds", run="m-r2")
    assert not samples(scraped, "docpipe_run_eta_seconds", run="m-r1")  # finished: no ETA


def test_stage_metrics_from_the_runs_beam_metrics(scraped):
    # The fake convert stage saw n = 1..6 at n * 10 ms; n = 3 and 6 failed.
    through = {dict(k)["outcome"]: v for k, v in samples(scraped, "docpipe_stage_documents", run="m-r1", stage="convert").items()}
    assert through == {"ok": 4, "failed": 2}
    latency = {s.name: s.value for s in scraped["docpipe_stage_seconds"].samples
               if s.labels == {"run": "m-r1", "stage": "convert"}}
    assert latency["docpipe_stage_seconds_count"] == 6
    assert latency["docpipe_stage_seconds_sum"] == pytest.approx(0.21, abs=0.006)  # 10+20+...+60 ms, truncated
    assert samples(scraped, "docpipe_stage_seconds_max", run="m-r1", stage="convert") == {(): pytest.approx(0.06, abs=0.002)}


def test_metrics_need_the_token_when_one_is_set(metrics_store, monkeypatch):
    monkeypatch.setenv("DOCPIPE_API_TOKEN", "prom-token")
    with serve(metrics_store) as url:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "/metrics", timeout=30)
        assert denied.value.code == 401
        request = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer prom-token"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert "docpipe_documents" in {f.name for f in text_string_to_metric_families(response.read().decode())}
