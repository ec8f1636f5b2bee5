"""The Ollama backends and their client, over real HTTP, against bench.ollama_server.

No Ollama server can be installed on these machines, so what answers here is a small loopback
server that speaks Ollama's API (bench/ollama_server.py): /api/tags, /api/show, /api/embed with
real all-MiniLM-L6-v2 vectors, /api/chat and /api/generate with a JSON schema in `format`, answered
by MiniLM similarity (categories) and by the rules extractor (fields). It is not a language model:
these tests check the client's behaviour (retries, timeouts, hosts, in-flight bound, throttling),
the validation of answers, the schemas sent, and the pipeline wiring, not answer quality. The
same code against a real Ollama runs in tests/test_ollama_real.py when OLLAMA_HOST is set.
"""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import psycopg
import pytest

from bench.ollama_server import EMBED_MODEL, TEXT_MODEL, VISION_MODEL, OllamaTestServer
from pipeline import store
from tests import docs
from transforms.backends import ollama
from transforms.classify import load_categories
from transforms.config import StageConfig
from transforms.records import Document

LETTER_TEXT = """London, 3 May 2024
Dear Ms Smith,
Thank you for your letter of 28 April. We are pleased to confirm your appointment.
Yours sincerely,
Robert Brown"""


@pytest.fixture(scope="module")
def server():
    with OllamaTestServer(parallel=8) as srv:
        srv.embed(["warm up"])  # load MiniLM now, not inside a request with a short timeout
        yield srv


@pytest.fixture
def srv(server):
    server.clear_faults()
    server.latency.update(chat=0.0, generate=0.0, embed=0.0)
    yield server
    server.clear_faults()
    for _ in range(100):  # a request the client gave up on may still be sleeping in the server
        if not server._active:
            break
        time.sleep(0.05)


def client_for(srv, **kwargs) -> ollama.OllamaClient:
    kwargs.setdefault("timeout", 10)
    kwargs.setdefault("retries", 3)
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("throttle_delay", 0.01)
    return ollama.OllamaClient(srv.url if "hosts" not in kwargs else kwargs.pop("hosts"), **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- client -------------------------------------------------------------------------------------

def test_hosts_are_read_like_ollama_host():
    assert ollama.parse_hosts("gpu1:11500, http://gpu2 ,0.0.0.0,https://llm.example.com/ollama") == (
        "http://gpu1:11500", "http://gpu2:80", "http://127.0.0.1:11434", "https://llm.example.com:443/ollama")
    assert ollama.parse_hosts("") == ("http://127.0.0.1:11434",)
    with pytest.raises(ollama.OllamaSetupError, match="not an Ollama host"):
        ollama.parse_hosts("gpu1:notaport")


def test_busy_errors_dropped_connections_and_bad_bodies_are_retried(srv):
    client = client_for(srv, retries=4)
    srv.inject("busy")
    srv.inject("error")
    srv.inject("drop")
    srv.inject("bad_body")
    before = srv.stats["/api/embed"]
    vectors = client.embed(EMBED_MODEL, ["hello world"])
    assert len(vectors[0]) == 384
    assert srv.stats["/api/embed"] - before == 5
    assert client.stats["retries"] == 4 and client.stats["failed_requests"] == 4
    assert client.stats["requests"] == 5 and client.stats["embed_requests"] == 5


def test_gives_up_after_the_configured_retries(srv):
    client = client_for(srv, retries=1)
    srv.inject("busy", 5)
    with pytest.raises(ollama.OllamaError, match=r"failed after 2 attempts.*HTTP 503.*server busy"):
        client.embed(EMBED_MODEL, ["x"])
    assert client.stats["requests"] == 2


def test_a_missing_model_is_final_not_retried(srv):
    client = client_for(srv, retries=3)
    with pytest.raises(ollama.OllamaError, match="HTTP 404.*not found"):
        client.embed("no-such-model", ["x"])
    assert client.stats["requests"] == 1 and client.stats["retries"] == 0


def test_a_request_that_outlives_the_timeout_is_retried(srv):
    client = client_for(srv, timeout=0.5, retries=2)
    srv.slow_seconds = 1.5
    srv.inject("slow")
    assert len(client.embed(EMBED_MODEL, ["x"])) == 1
    assert client.stats["retries"] == 1


def test_requests_spread_round_robin_and_skip_a_dead_host(srv):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with OllamaTestServer() as other:
        client = client_for(srv, hosts=[srv.url, other.url, dead], retries=2)
        before = srv.stats["/api/embed"]
        for _ in range(9):
            client.embed(EMBED_MODEL, ["x"])
        here, there = srv.stats["/api/embed"] - before, other.stats["/api/embed"]
    assert here + there == 9 and here >= 4 and there >= 4
    # The dead host cost one failed attempt, then was skipped for a while.
    assert client.stats["failed_requests"] == 1


def test_in_flight_requests_are_bounded_per_client(srv):
    client = client_for(srv, max_inflight=3)
    srv.latency["embed"] = 0.15
    srv.stats["peak_active"] = 0
    threads = [threading.Thread(target=client.embed, args=(EMBED_MODEL, ["x"])) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 2 <= srv.stats["peak_active"] <= 3  # the server has 8 slots: the client held back


def test_saturated_server_makes_the_client_throttle_itself(srv):
    client = client_for(srv, retries=0, throttle_delay=0.1, throttle_window_ms=1000)
    srv.inject("busy", 20)
    for attempt in range(20):
        with pytest.raises(ollama.OllamaError, match="503"):
            client.embed(EMBED_MODEL, ["x"])
        if client.stats["throttled"]:
            break
    # After a run of 503s the throttler holds requests back before they are sent.
    assert client.stats["throttled"] > 0 and client.stats["requests"] == attempt + 1 < 20
    srv.clear_faults()
    assert len(client.embed(EMBED_MODEL, ["x"])) == 1  # throttling never stops requests for good


# -- checks at start ----------------------------------------------------------------------------

def config_for(srv, **kwargs) -> StageConfig:
    base = dict(classifier="ollama", extractor="ollama", embedder="ollama", classify_model=VISION_MODEL,
                extract_model=TEXT_MODEL, embed_model=EMBED_MODEL, ollama_hosts=(srv.url,), ollama_retries=1,
                ollama_timeout=10, page_image_px=1024)
    return StageConfig(**{**base, **kwargs})


def test_preflight_names_a_missing_model_and_the_pull_command(srv):
    from transforms.backends import preflight

    assert preflight(config_for(srv)) == 384  # the dimension, read from the embedding model
    with pytest.raises(ollama.OllamaSetupError, match=r"'llama9:70b' \(--extract-model\).*ollama pull llama9:70b"):
        preflight(config_for(srv, extract_model="llama9:70b"))
    with pytest.raises(ollama.OllamaSetupError, match="cannot read images"):
        preflight(config_for(srv, classify_model=TEXT_MODEL))


def test_run_stops_before_reading_any_document_when_a_model_is_missing(srv, tmp_path, capsys):
    from pipeline.run import main

    docs.write(tmp_path / "in", "a.txt", LETTER_TEXT)
    code = main(["--input", str(tmp_path / "in"), "--data-dir", str(tmp_path / "pg"), "--embedder", "ollama",
                 "--embed-model", "mxbai-embed-large", "--ollama-host", srv.url])
    assert code == 2
    err = capsys.readouterr().err
    assert "ollama pull mxbai-embed-large" in err and err.count("\n") == 1
    assert not (tmp_path / "pg").exists()  # not even the database was started


def test_unreachable_server_is_a_clear_start_error(tmp_path):
    from transforms.backends import preflight

    config = StageConfig(embedder="ollama", ollama_hosts=(f"http://127.0.0.1:{free_port()}",))
    with pytest.raises(ollama.OllamaSetupError, match="cannot reach the Ollama server"):
        preflight(config)


# -- classifier ---------------------------------------------------------------------------------

def test_classifier_sends_the_first_page_and_the_category_enum(srv):
    from transforms.convert import Converter

    config = config_for(srv)
    doc = Document(id="x", paths=["invoice.pdf"], filename="invoice.pdf")
    Converter(config).convert(doc, docs.pdf_bytes(docs.INVOICE_TEXT))
    assert doc.page_image.startswith(b"\x89PNG")
    classifier = ollama.OllamaClassifier(client_for(srv), VISION_MODEL, load_categories(), 0.3)
    assert "other" in classifier.schema["properties"]["category"]["enum"]
    images_before = len(srv.images)
    category, confidence = classifier.classify(doc)
    assert category == "invoice" and 0.3 <= confidence <= 1
    width, height = srv.images[images_before]
    assert max(width, height) == 1024  # the PNG arrived and decoded, at the configured size


def test_classifier_retries_an_invalid_answer_once_then_fails_the_document(srv):
    classifier = ollama.OllamaClassifier(client_for(srv), VISION_MODEL, load_categories(), 0.3)
    doc = Document(id="x", paths=["l.txt"], text=LETTER_TEXT)
    srv.inject("bad_answer")
    assert classifier.classify(doc)[0] == "letter"
    assert classifier.client.stats["invalid_answers"] == 1
    srv.inject("bad_answer")
    srv.inject("prose")
    with pytest.raises(ollama.InvalidAnswer, match="twice"):
        classifier.classify(doc)


# -- extractor ----------------------------------------------------------------------------------

def test_extractor_fields_are_the_rules_extractors_fields():
    from transforms.extract import CATEGORY_RULES, RulesExtractor

    assert set(ollama.FIELDS) == set(CATEGORY_RULES)
    for category in CATEGORY_RULES:
        # (a text not headed as an invoice: one that is gets the invoice's fields whatever its category)
        rules = RulesExtractor().extract(Document(id="", paths=[""], text=docs.CONTRACT_TEXT, category=category))
        assert set(rules["fields"]) == set(ollama.FIELDS[category]), category
        assert ollama.fields_schema(category)["required"] == list(ollama.FIELDS[category])
    misclassified = RulesExtractor().extract(Document(id="", paths=[""], text=docs.INVOICE_TEXT, category="contract"))
    assert set(misclassified["fields"]) == set(ollama.FIELDS["contract"]) | set(ollama.FIELDS["invoice"])


@pytest.mark.parametrize("kind,value,expected", [
    ("date", "2024-02-29", "2024-02-29"), ("number", 1428, 1428.0), ("number", "1428.50", 1428.5),
    ("currency", "eur", "EUR"), ("email", "Jane@Example.com", "jane@example.com"), ("list", "Acme", ["Acme"]),
    ("text", "  Northwind   Traders ", "Northwind Traders"), ("date", None, None), ("list", None, []),
])
def test_valid_values(kind, value, expected):
    assert ollama.validate_value(kind, value) == expected


@pytest.mark.parametrize("kind,value", [
    ("date", "2024-02-30"), ("date", "15.03.2024"), ("date", "next Tuesday"), ("number", "1,428.00"),
    ("number", True), ("currency", "euros"), ("email", "jane at example"), ("list", [1, 2]), ("text", 42),
])
def test_invalid_values(kind, value):
    with pytest.raises(ollama.InvalidAnswer):
        ollama.validate_value(kind, value)


def invoice_doc() -> Document:
    return Document(id="x", paths=["i.txt"], text=docs.INVOICE_TEXT, category="invoice", language="en")


def test_extractor_fills_the_schema_with_validated_values(srv):
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    metadata = extractor.extract(invoice_doc())
    assert metadata["fields"] == {"number": "INV-2024-0042", "issue_date": "2024-03-15", "due_date": "2024-04-14",
                                  "total_amount": 1428.0, "currency": "EUR", "issuer": "Northwind Traders GmbH",
                                  "buyer": "Contoso Ltd"}
    assert metadata["extraction"] == {"backend": "ollama", "model": TEXT_MODEL, "field_errors": {}, "from_rules": []}
    assert metadata["field_sources"]["number"] == {"source": "model", "confidence": 0.7}
    assert metadata["dates"] and metadata["amounts"]  # the generic metadata is there as with rules


def test_invalid_fields_are_retried_once_then_recorded_per_field(srv):
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    srv.inject("bad_answer")
    assert extractor.extract(invoice_doc())["extraction"]["field_errors"] == {}  # the retry answered well
    srv.inject("bad_answer", 2)
    metadata = extractor.extract(invoice_doc())
    errors = metadata["extraction"]["field_errors"]
    assert set(errors) == {"issue_date", "due_date", "total_amount", "currency"}
    assert "YYYY-MM-DD" in errors["issue_date"] and "number" in errors["total_amount"]
    # Field-level failures: the rules extractor fills the gaps; the document is not failed.
    assert metadata["fields"]["total_amount"] == 1428.0 and metadata["fields"]["due_date"] == "2024-04-14"
    assert set(metadata["extraction"]["from_rules"]) == set(errors)


def test_an_answer_that_is_not_json_twice_leaves_the_fields_to_the_rules(srv):
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    srv.inject("prose", 2)
    metadata = extractor.extract(invoice_doc())
    assert set(metadata["extraction"]["field_errors"]) == set(ollama.FIELDS["invoice"])
    assert metadata["fields"]["number"] == "INV-2024-0042"


def test_the_prompt_carries_the_rules_findings_as_hints(srv):
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    prompt = extractor._prompt(invoice_doc(), "invoice", {"number": "INV-2024-0042", "buyer": None})
    assert "hints; they may be wrong): number: INV-2024-0042\n" in prompt and "buyer:" not in prompt.split("<document>")[0].split("hints")[1]


def test_an_e_invoice_is_not_asked_and_its_values_win(srv):
    """All of an invoice's fields from its XML: no request at all. Some of them: the model is asked,
    and the XML's values stay whatever it answers."""
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    exact = {"number": "RE-1", "issue_date": "2024-03-05", "due_date": "2024-04-04", "total_amount": 1190.0,
             "currency": "EUR", "issuer": "Muster GmbH", "buyer": "Beispiel AG", "syntax": "cii"}
    doc = invoice_doc()
    doc.category, doc.einvoice = "report", exact   # misclassified: the XML says invoice
    metadata = extractor.extract(doc)
    assert metadata["fields"]["number"] == "RE-1" and extractor.client.stats["requests"] == 0
    assert metadata["extraction"]["backend"] == "e-invoice"
    doc.einvoice = dict(exact, number=None, buyer=None)
    metadata = extractor.extract(doc)
    assert extractor.client.stats["requests"] == 1
    assert metadata["fields"]["total_amount"] == 1190.0 and metadata["fields"]["number"] == "INV-2024-0042"
    assert metadata["field_sources"]["total_amount"]["source"] == "e-invoice"
    assert metadata["field_sources"]["number"]["source"] == "model"


def test_an_invoice_classified_otherwise_keeps_the_rules_money_fields(srv):
    """The model fills the category's schema; the invoice's fields the rules found in a document
    headed as an invoice stay beside them."""
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    doc = invoice_doc()
    doc.category = "contract"
    metadata = extractor.extract(doc)
    assert set(ollama.FIELDS["contract"]) <= set(metadata["fields"])
    assert metadata["fields"]["total_amount"] == 1428.0 and metadata["fields"]["number"] == "INV-2024-0042"
    assert metadata["field_sources"]["total_amount"]["source"] == "key-value"


def test_other_category_asks_nothing(srv):
    extractor = ollama.OllamaExtractor(client_for(srv), TEXT_MODEL)
    metadata = extractor.extract(Document(id="x", paths=["n"], text="some notes", category="other"))
    assert metadata["fields"] == {} and extractor.client.stats["requests"] == 0


# -- embedder and the store's dimension ---------------------------------------------------------

def test_embedder_batches_concurrently_and_matches_the_model(srv, embedder):
    client = client_for(srv, max_inflight=3)
    backend = ollama.OllamaEmbedder(client, EMBED_MODEL, batch_size=8)
    assert backend.dimension == 384 and client.stats["embed_requests"] == 1  # the probe
    texts = [f"Invoice number {i} for consulting services" for i in range(70)]
    vectors = backend.embed(texts)
    assert vectors.shape == (70, 384) and client.stats["embed_requests"] == 1 + 9
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # The test server embeds with MiniLM in float32: compare with the same precision (the `embedder`
    # fixture is the machine's default, int8 on CPUs with VNNI).
    from transforms.backends.minilm import get_embedder

    assert float(np.min(np.sum(vectors * get_embedder(precision="fp32").embed(texts), axis=1))) > 0.999
    offsets = backend.token_offsets("Total due: EUR 1,428.00")
    assert offsets[0] == (0, 5) and len(offsets) > 5


def test_store_follows_the_embedding_dimension_and_refuses_a_change(pg_dsn):
    store.migrate(pg_dsn, 768)  # empty store: the column takes the new dimension
    with psycopg.connect(pg_dsn) as conn:
        assert store.embedding_dim(conn) == 768
        conn.execute("INSERT INTO documents (id, paths, status) VALUES ('d', '{p}', 'completed')")
        conn.execute("INSERT INTO chunks (document_id, idx, text, embedding) VALUES ('d', 0, 't', %s::vector)",
                     (str([0.1] * 768),))
    store.migrate(pg_dsn, 768)  # same dimension: nothing to do
    with pytest.raises(store.StoreError, match="holds 768-dimensional embeddings but the embedder makes 384"):
        store.migrate(pg_dsn, 384)
    with pytest.raises(store.StoreError, match="at most 2000"):
        store.migrate(pg_dsn, 4096)


# -- the pipeline -------------------------------------------------------------------------------

def test_pipeline_with_all_three_ollama_backends(srv, tmp_path, pg_dsn):
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline.graph import build

    folder = tmp_path / "in"
    docs.write(folder, "invoice.pdf", docs.pdf_bytes(docs.INVOICE_TEXT))
    docs.write(folder, "letter.txt", LETTER_TEXT)
    docs.write(folder, "contract.docx", docs.docx_bytes("Service Agreement", docs.CONTRACT_TEXT.splitlines()[1:]))
    config = config_for(srv)
    store.migrate(pg_dsn, 384)
    images_before = len(srv.images)
    p = TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    build(p, str(folder), config, pg_dsn, "ollama-run")
    result = p.run()
    result.wait_until_finish()
    with psycopg.connect(pg_dsn) as conn:
        rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT filename, status, category, metadata->'extraction'->>'backend', metadata->'fields', error_message "
            "FROM documents").fetchall()}
        dims = conn.execute("SELECT DISTINCT vector_dims(embedding) FROM chunks").fetchall()
    assert {name: row[:3] for name, row in rows.items()} == {
        "invoice.pdf": ("completed", "invoice", "ollama"), "letter.txt": ("completed", "letter", "ollama"),
        "contract.docx": ("completed", "contract", "ollama")}, rows
    assert rows["invoice.pdf"][3]["number"] == "INV-2024-0042"
    assert dims == [(384,)]
    assert len(srv.images) - images_before == 1  # only the PDF has a page to show
    metrics = {m.key.metric.name: m.committed for m in result.metrics().query(
        MetricsFilter().with_namespace("docpipe"))["counters"]}
    assert metrics["ollama_chat_requests"] == 3 and metrics["ollama_generate_requests"] == 3
    assert metrics["ollama_embed_requests"] >= 2  # the dimension probe, then the chunks

    # Search embeds the query with the embedder the store recorded (here: Ollama's, over HTTP).
    from pipeline import search
    from transforms.backends import embedder_identity

    store.record_embedder(pg_dsn, embedder_identity(config, 384))
    search._query_embedders.pop(pg_dsn, None)
    embeds_before = srv.stats["/api/embed"]
    results = search.run_search(pg_dsn, "Northwind Traders invoice")
    assert results and results[0]["filename"] == "invoice.pdf"
    assert srv.stats["/api/embed"] == embeds_before + 1
    with pytest.raises(store.StoreError, match="keep the embedder that filled this store"):
        store.record_embedder(pg_dsn, {"embedder": "minilm", "model": "all-MiniLM-L6-v2", "dimension": 384})


# -- docling's VLM pipeline over Ollama --------------------------------------------------------

def test_vlm_pdf_pipeline_sends_each_page_to_the_vision_model(srv):
    """--pdf-pipeline vlm: docling renders each page and a vision model on Ollama (its OpenAI-compatible
    /v1/chat/completions) transcribes it. The test server answers with the page's text read by the
    packaged OCR, standing in for the model: the text must come back through docling's VLM pipeline."""
    from transforms.backends import preflight
    from transforms.convert import Converter

    config = StageConfig(pdf_pipeline="vlm", vlm_model=VISION_MODEL, ollama_hosts=(srv.url,), ollama_timeout=60)
    preflight(config)  # the model is on the server
    with pytest.raises(ollama.OllamaSetupError, match=r"'no-such-vlm' \(--vlm-model\).*ollama pull no-such-vlm"):
        preflight(StageConfig(pdf_pipeline="vlm", vlm_model="no-such-vlm", ollama_hosts=(srv.url,)))

    doc = Document(id="x", paths=["scan.pdf"], filename="scan.pdf")
    before = srv.stats["/v1/chat/completions"]
    Converter(config).convert(doc, docs.scanned_pdf_bytes("Quarterly report\nRevenue grew by ten percent"))
    assert srv.stats["/v1/chat/completions"] == before + 1  # one page, one request
    assert doc.converter == "docling-vlm" and doc.pages == 1
    assert "Quarterly report" in doc.text and "Revenue grew" in doc.text
