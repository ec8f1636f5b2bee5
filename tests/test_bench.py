"""The benchmark itself, at a few dozen documents, so it cannot rot (figures come from bench/results)."""
import json

import pytest

from bench import corpus, run

pytestmark = pytest.mark.slow


def test_quick_benchmark_produces_every_figure(tmp_path):
    corpus.write_corpus(str(tmp_path / "corpus"), 24, seed=3, scanned_share=0.05, log=None)
    out = tmp_path / "result.json"
    result = run.main(["--corpus", str(tmp_path / "corpus"), "--scaling-docs", "8", "--sink-docs", "200", "--search-docs", "300",
                       "--opensearch-docs", "50", "--ollama-docs", "8", "--out", str(out), "--data-dir", str(tmp_path / "data")])
    saved = json.loads(out.read_text())
    assert saved["corpus"]["documents"] == 24
    assert saved["pipeline"]["documents"] == 24 and saved["pipeline"]["completed"] == 24
    assert saved["rerun"]["skipped_unchanged"] == 24 and saved["rerun"]["completed"] == 0
    assert saved["ceiling"]["documents_per_second"] > 0 and 0 < saved["efficiency"]
    assert set(saved["ceiling"]["stage_seconds"]) == set(run.STAGES)
    assert saved["scaling"]["documents"] == 8 and "speedup" in saved["scaling"]
    assert saved["sink"]["batched"]["documents"] == 200
    assert saved["search"]["documents"] == 300 and saved["search"]["store_only"]["n"] > 0
    assert [r["in_index"] for r in saved["opensearch"]["runs"]] == [50, 50, 50]
    assert saved["ollama"]["documents"] == 8 and saved["ollama"]["requests_per_document_total"] > 0
    assert saved["pipeline"]["memory"]["peak_mb_max"] > 100  # worker processes were sampled
    quality = saved["quality"]
    assert quality["documents"] == 24 and quality["statuses"] == {"completed": 24}
    assert 0 <= quality["classification_accuracy"] <= 1 and quality["fields"]
    assert result["results_file"] == str(out)


def test_benchmark_on_any_folder(tmp_path):
    """--input DIR: any folder (real documents, say), speed only: documents/s, pages/s, chunks/s,
    seconds per stage, the CPU model and its vector extensions."""
    from tests import docs

    folder = tmp_path / "docs"
    docs.write(folder, "invoice.pdf", docs.pdf_bytes(docs.INVOICE_TEXT))
    docs.write(folder, "contract.docx", docs.docx_bytes("Service Agreement", docs.CONTRACT_TEXT.splitlines()[1:]))
    docs.write(folder, "notes/report.txt",
               " ".join(f"Quarterly report {i}: revenue in region {i} grew by {i} percent." for i in range(80)))
    docs.write(folder, "corrupt.pdf", b"%PDF-1.4 not really")
    out = tmp_path / "result.json"
    run.main(["--input", str(folder), "--workers", "1", "--skip", "ceiling", "scaling", "sink", "search",
              "opensearch", "ollama", "--out", str(out), "--data-dir", str(tmp_path / "data")])
    saved = json.loads(out.read_text())
    assert saved["corpus"] == {"path": str(folder), "generated": False, "documents": 4}
    p = saved["pipeline"]
    assert (p["documents"], p["completed"], p["failed"]) == (4, 3, 1)
    assert p["chunks"] >= 3 and p["chunks_per_second"] > 0
    assert p["pages"] == 1 and p["pages_per_second"] > 0  # the invoice PDF's one page; the others have none
    assert {"convert", "embed", "classify", "extract"} <= set(p["stage_seconds"])
    assert saved["rerun"]["skipped_unchanged"] == 3  # the corrupt file is "failed before", not converted again
    assert saved["machine"]["embed_precision_auto"] in ("fp32", "bf16", "int8")
    assert saved["machine"]["classifier_model_precision_auto"] in ("fp32", "int8")
    assert "cpu_model" in saved["machine"] and "quality" not in saved


def test_search_quality_queries_and_ranking():
    """bench.search_quality: queries come from the documents, deterministically, and a document is
    ranked by its best chunk."""
    import numpy as np

    from bench import search_quality as sq

    docs = [{"text": "# Annual report of the water board\n"
                     "The board met eleven times this year and approved the new treatment plant budget.\n"
                     "| a | b |\n"},
            {"text": "short line\nno heading here"}]
    queries = sq.make_queries(docs)
    assert queries == sq.make_queries(docs)
    assert ("heading", 0, "Annual report of the water board") in queries
    passage = [q for q in queries if q[0] == "passage"]
    assert len(passage) == 1 and passage[0][1] == 0 and 6 <= len(passage[0][2].split()) <= 12
    assert passage[0][2] in docs[0]["text"]
    # three chunks: doc 0 owns chunks 0 and 2, doc 1 chunk 1; query 0 is nearest chunk 2 (doc 0)
    chunks = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    owner = np.array([0, 1, 0])
    queries_v = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    figures = sq.score(owner, chunks, queries_v, [0, 1], n_docs=2)
    assert figures["recall_at_1"] == 0.5 and figures["recall_at_5"] == 1.0 and figures["mrr"] == 0.75
