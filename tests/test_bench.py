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
