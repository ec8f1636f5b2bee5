"""The Ollama backends against a real Ollama server: every backend on a handful of documents.

Runs only when OLLAMA_HOST is set (skipped otherwise: no Ollama can be installed on the machines
that build this project). The models come from the environment, defaulting to the pipeline's:

    OLLAMA_HOST=127.0.0.1:11434 \\
    OLLAMA_CLASSIFY_MODEL=qwen2.5vl:7b OLLAMA_EXTRACT_MODEL=qwen2.5:7b OLLAMA_EMBED_MODEL=nomic-embed-text \\
    .venv/bin/python -m pytest tests/test_ollama_real.py -m ollama_real -q

Pull the models first (`ollama pull MODEL`). A real model's answers vary, so these tests check
what must hold for any sensible model: answers inside the schema, the obvious documents right.
"""
from __future__ import annotations

import os

import numpy as np
import psycopg
import pytest

from pipeline import store
from tests import docs
from transforms.config import StageConfig
from transforms.records import Document

pytestmark = [
    pytest.mark.ollama_real,
    pytest.mark.skipif(not os.environ.get("OLLAMA_HOST"),
                       reason="needs a real Ollama server: set OLLAMA_HOST (and pull the models, see module docstring)"),
]

LETTER_TEXT = """London, 3 May 2024
Dear Ms Smith,
Thank you for your letter of 28 April. We are pleased to confirm your appointment as of 1 June 2024.
Yours sincerely,
Robert Brown"""


@pytest.fixture(scope="module")
def config() -> StageConfig:
    d = StageConfig()
    return StageConfig(classifier="ollama", extractor="ollama", embedder="ollama",
                       classify_model=os.environ.get("OLLAMA_CLASSIFY_MODEL", d.classify_model),
                       extract_model=os.environ.get("OLLAMA_EXTRACT_MODEL", d.extract_model),
                       embed_model=os.environ.get("OLLAMA_EMBED_MODEL", d.embed_model),
                       ollama_timeout=300, page_image_px=1024)


def test_models_are_present_and_the_dimension_is_read(config):
    from transforms.backends import preflight

    assert preflight(config) > 0


def test_classifier_sees_the_page_and_names_the_obvious_category(config):
    from transforms.backends import load_classifier
    from transforms.convert import Converter

    classifier = load_classifier(config)
    converter = Converter(config)
    for name, data, expected in (("invoice.pdf", docs.pdf_bytes(docs.INVOICE_TEXT), "invoice"),
                                 ("scan.png", docs.png_bytes(docs.INVOICE_TEXT), "invoice"),
                                 ("letter.txt", LETTER_TEXT.encode(), "letter")):
        doc = Document(id=name, paths=[name], filename=name)
        converter.convert(doc, data)
        category, confidence = classifier.classify(doc)
        assert category == expected, (name, category, confidence)
        assert 0 <= confidence <= 1


def test_extractor_answers_inside_the_schema(config):
    from transforms.backends import load_extractor

    extractor = load_extractor(config)
    metadata = extractor.extract(Document(id="i", paths=["i"], text=docs.INVOICE_TEXT, category="invoice"))
    fields = metadata["fields"]
    assert set(fields) == {"number", "issue_date", "due_date", "total_amount", "currency", "issuer"}
    assert metadata["extraction"]["backend"] == "ollama"
    assert fields["currency"] == "EUR" and fields["total_amount"] == 1428.0, metadata["extraction"]
    assert fields["issue_date"] == "2024-03-15"


def test_embedder_and_the_store_follow_the_models_dimension(config, pg_dsn):
    from transforms.backends import load_embedder

    embedder = load_embedder(config)
    vectors = embedder.embed(["invoice total due", "payment of the invoice", "a poem about the sea"])
    assert vectors.shape[1] == embedder.dimension
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    store.migrate(pg_dsn, embedder.dimension)
    with psycopg.connect(pg_dsn) as conn:
        assert store.embedding_dim(conn) == embedder.dimension


def test_pipeline_with_all_three_backends(config, tmp_path, pg_dsn):
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline.graph import build
    from transforms.backends import preflight

    folder = tmp_path / "in"
    docs.write(folder, "invoice.pdf", docs.pdf_bytes(docs.INVOICE_TEXT))
    docs.write(folder, "letter.txt", LETTER_TEXT)
    docs.write(folder, "contract.docx", docs.docx_bytes("Service Agreement", docs.CONTRACT_TEXT.splitlines()[1:]))
    store.migrate(pg_dsn, preflight(config))
    with TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        build(p, str(folder), config, pg_dsn, "ollama-real")
    with psycopg.connect(pg_dsn) as conn:
        rows = dict(conn.execute("SELECT filename, category FROM documents WHERE status = 'completed'").fetchall())
    assert rows == {"invoice.pdf": "invoice", "letter.txt": "letter", "contract.docx": "contract"}
