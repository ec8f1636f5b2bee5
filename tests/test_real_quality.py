"""Quality on real labelled documents: the scoring functions, and the quality gate.

The gate runs `python -m bench.evaluate --labeled` end to end (pipeline.run in a subprocess, into the
real embedded PostgreSQL) over ../shared/corpus/labeled and fails when classification accuracy or
extraction field accuracy drops more than the margin below the figures committed in
bench/quality_baseline.json. A change that moves the figures updates that file in the same commit.
"""
import json
import os
import warnings
from decimal import Decimal

import pytest

from bench import evaluate_real
from bench import real_scoring as s

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELED = os.path.join(PROJECT_ROOT, "..", "shared", "corpus", "labeled")
BASELINE = os.path.join(PROJECT_ROOT, "bench", "quality_baseline.json")


# -- strict normalisation ----------------------------------------------------------------------------

def test_dates_compare_only_as_iso():
    assert s.norm_date("2019-11-15") == "2019-11-15"
    assert s.norm_date(" 2019-11-15T00:00:00 ") == "2019-11-15"
    for other in ("11/15/2019", "15.11.2019", "2019-11-31", "Nov 15, 2019", "20191115", "", None, 20191115):
        assert s.norm_date(other) is None, other
    assert s.field_matches("issue_date", "2019-11-15", "2019-11-15")
    assert not s.field_matches("issue_date", "2019-11-15", "2019-11-16")
    assert not s.field_matches("due_date", "2019-11-15", "15/11/2019")


def test_amounts_compare_to_the_cent():
    assert s.norm_amount(104.9) == s.norm_amount("104.90") == Decimal("104.90")
    assert s.field_matches("total_amount", 110.0, 110)
    assert s.field_matches("total_amount", 1536.52, "1536.52")
    assert s.field_matches("total_amount", 0.3, 0.1 + 0.2)  # float noise below the cent
    assert not s.field_matches("total_amount", 963.11, 963.12)  # one cent off is wrong
    assert not s.field_matches("total_amount", 1536.52, "1,536.52")  # not a plain number: unreadable
    assert not s.field_matches("total_amount", 9.5, "9.50 EUR")
    assert not s.field_matches("total_amount", 1.0, True)
    assert s.norm_amount(float("nan")) is None


def test_currencies_compare_as_iso_codes():
    assert s.field_matches("currency", "EUR", " eur ")
    assert not s.field_matches("currency", "EUR", "€")
    assert not s.field_matches("currency", "USD", "$")
    assert not s.field_matches("currency", "USD", "US Dollar")
    assert not s.field_matches("currency", "GBP", "EUR")


def test_text_fields_normalise_case_and_spacing_only():
    assert s.field_matches("issuer", "CONTOSO LTD.", "Contoso  Ltd.")
    assert s.field_matches("issuer", "Kraxi GmbH", "kraxi\u00a0gmbh\n")
    assert not s.field_matches("issuer", "CONTOSO LTD.", "Contoso Ltd")  # punctuation counts
    assert not s.field_matches("invoice_number", "INV-100", "INV100")
    assert not s.field_matches("issuer", "Contoso", None)
    assert not s.field_matches("issuer", "Contoso", "")


def test_truth_keys_map_to_the_pipelines_field_names():
    assert s.predicted_value({"number": "INV-100"}, "invoice_number") == "INV-100"
    assert s.predicted_value({"number": None, "invoice_number": "X"}, "invoice_number") == "X"
    assert s.predicted_value({"issuer": "A"}, "buyer") is None


# -- classification scores on a hand-made table ------------------------------------------------------

def test_precision_recall_f1_and_confusion():
    pairs = [("invoice", "invoice"), ("invoice", "invoice"), ("invoice", "receipt"), ("invoice", s.FAILED),
             ("receipt", "receipt"), ("receipt", "invoice"),
             ("letter", "letter"), ("letter", "other")]
    scores = s.classification_scores(pairs)
    assert scores["accuracy"] == 0.5 and (scores["correct"], scores["n"]) == (4, 8)
    invoice, receipt, letter = (scores["per_category"][c] for c in ("invoice", "receipt", "letter"))
    assert (invoice["precision"], invoice["recall"], invoice["support"]) == (0.6667, 0.5, 4)
    assert invoice["f1"] == round(2 * (2 / 3) * 0.5 / ((2 / 3) + 0.5), 4)  # 0.5714
    assert (receipt["precision"], receipt["recall"], receipt["f1"]) == (0.5, 0.5, 0.5)
    assert (letter["precision"], letter["recall"]) == (1.0, 0.5)
    other = scores["per_category"]["other"]  # predicted, never true: precision 0, no recall
    assert (other["precision"], other["recall"], other["support"], other["predicted"]) == (0.0, None, 0, 1)
    assert s.FAILED not in scores["per_category"]
    assert scores["confusion"]["invoice"] == {"invoice": 2, "receipt": 1, s.FAILED: 1}
    assert scores["macro_f1"] == round((0.5714 + 0.5 + 0.6667) / 3, 4)


def test_a_category_never_predicted_has_no_precision_and_zero_f1():
    scores = s.classification_scores([("form", "invoice"), ("invoice", "invoice")])
    assert scores["per_category"]["form"] == {"precision": None, "recall": 0.0, "f1": 0.0,
                                              "support": 1, "predicted": 0}


def test_labelled_scoring_counts_failed_and_missing_as_wrong_and_groups():
    labels = [{"file": "a.pdf", "category": "invoice", "language": "en", "format": "pdf"},
              {"file": "b.pdf", "category": "invoice", "language": "de", "format": "pdf"},
              {"file": "c.docx", "category": "letter", "language": "fr", "format": "docx"},
              {"file": "d.png", "category": "receipt", "language": "en", "format": "png"}]
    outcomes = {"a.pdf": {"status": "completed", "category": "invoice", "confidence": 0.9},
                "b.pdf": {"status": "completed", "category": "receipt", "confidence": 0.4},
                "c.docx": {"status": "failed", "category": None, "error_stage": "convert",
                           "error_message": "corrupt ZIP"}}
    scores = s.score_classification(labels, outcomes)
    assert scores["accuracy"] == 0.25
    assert scores["by_language_group"] == {"non-English": {"accuracy": 0.0, "correct": 0, "n": 2},
                                           "English": {"accuracy": 0.5, "correct": 1, "n": 2}}
    assert scores["by_format"]["pdf"] == {"accuracy": 0.5, "correct": 1, "n": 2}
    wrong = {m["file"]: m for m in scores["misclassified"]}
    assert set(wrong) == {"b.pdf", "c.docx", "d.png"}
    assert (wrong["b.pdf"]["predicted"], wrong["b.pdf"]["confidence"]) == ("receipt", 0.4)
    assert wrong["c.docx"]["error"] == "convert: corrupt ZIP" and wrong["c.docx"]["predicted"] == s.FAILED
    assert wrong["d.png"]["predicted"] == s.MISSING
    assert [n["file"] for n in scores["not_completed"]] == ["c.docx", "d.png"]


def test_extraction_scores_every_truth_value_strictly():
    truths = {"a.pdf": {"invoice_number": "INV-1", "issue_date": "2020-01-31", "total_amount": 10.5,
                        "currency": "EUR", "buyer": "B"},
              "b.png": {"issue_date": "2020-02-01", "currency": "USD"}}
    outcomes = {"a.pdf": {"status": "completed", "category": "invoice",
                          "fields": {"number": "inv-1", "issue_date": "2020-01-31", "total_amount": 10.5,
                                     "currency": "€"}},
                "b.png": None}
    ex = s.score_extraction(truths, outcomes)
    assert (ex["correct"], ex["values"], ex["field_accuracy"]) == (3, 7, 0.4286)
    assert ex["per_field"]["issue_date"] == {"accuracy": 0.5, "correct": 1, "n": 2, "found": 1}
    assert ex["per_field"]["currency"]["correct"] == 0
    assert ex["never_found"] == ["buyer"] and ex["field_accuracy_found_fields"] == 0.5
    assert ex["e_invoices"]["stated"] == 0 and ex["e_invoices"]["note"]
    assert s.score_extraction({"x": {"e_invoice": True, "currency": "EUR"}}, {})["e_invoices"]["true"] == 1
    # The target fields (number, issue date, total, currency, issuer: 3 of 4 values here right) and the
    # sources the pipeline named.
    assert ex["target_accuracy"] == 0.5   # a.pdf: 3 of 4 right; b.png: 0 of 2
    outcomes["a.pdf"]["field_sources"] = {"number": {"source": "e-invoice"}, "issue_date": {"source": "e-invoice"}}
    ex = s.score_extraction(truths, outcomes)
    assert ex["per_source"]["e-invoice"] == {"accuracy": 1.0, "correct": 2, "n": 2}
    assert ex["per_source"]["none"]["n"] == 5   # the values without a named source
    assert (ex["e_invoices"]["read"], ex["e_invoices"]["correct"], ex["e_invoices"]["values"]) == (1, 2, 2)


def test_language_is_scored_right_none_or_another():
    labels = [{"file": "a", "language": "de"}, {"file": "b", "language": "en"}, {"file": "c", "language": "fr"},
              {"file": "d", "language": "en"}, {"file": "e", "language": ""}]
    outcomes = {"a": {"language": "de"}, "b": {"language": None}, "c": {"language": "it"}, "d": None}
    scores = s.score_language(labels, outcomes)
    assert (scores["right"], scores["none"], scores["n"], scores["accuracy"]) == (1, 2, 4, 0.25)
    assert scores["wrong"] == [{"file": "c", "truth": "fr", "got": "it"}]   # e: no label, not scored
    report = {"folder": "/f", "measured_at": "t", "commit": "abc", "machine": {"cpu": "CPU", "cores": 2},
              "pipeline_options": [], "files": 1, "run": None, "runs_in_store": [],
              "classification": s.score_classification([{"file": "a", "category": "invoice"}], {}),
              "extraction": s.score_extraction({}, {}), "language": scores}
    text = evaluate_real.format_report(report)
    assert "Language 0.250 (1/4 right, 2 none recorded, 1 another language)" in text and "  c: fr -> it" in text


def test_report_formats_without_a_run():
    report = {"folder": "/f", "measured_at": "t", "commit": "abc", "machine": {"cpu": "CPU", "cores": 2},
              "pipeline_options": [], "files": 1, "run": None,
              "runs_in_store": [{"id": "r", "status": "completed", "wall_seconds": 9.0, "documents": 1,
                                 "documents_per_second": 0.1, "stage_seconds": {"convert": 5.0, "embed": 7.5}}],
              "classification": s.score_classification(
                  [{"file": "a", "category": "invoice", "language": "en", "format": "pdf"}], {}),
              "extraction": s.score_extraction({"a": {"currency": "EUR"}}, {})}
    text = evaluate_real.format_report(report)
    assert "Classification accuracy 0.000 (0/1" in text and "a: invoice -> (missing)" in text
    assert "currency         0.000  (0/1, found 0)" in text
    assert "seconds per stage (summed over documents and workers): embed 7.5, convert 5.0" in text


# -- the gate ----------------------------------------------------------------------------------------

class QualityAboveBaseline(Warning):
    """Figures rose beyond the margin: commit them to bench/quality_baseline.json."""


GATED = ("classification_accuracy", "field_accuracy")


def compare(measured: dict, baseline: dict) -> tuple[list[str], list[str]]:
    """(drops below the baseline by more than its margin, rises above it by more than the margin)."""
    margin = baseline["margin"]
    drops = [f"{name} {measured[name]} is more than {margin} below the committed {baseline[name]}"
             for name in GATED if measured[name] is None or measured[name] < baseline[name] - margin]
    rises = [f"{name} {measured[name]} is more than {margin} above the committed {baseline[name]}"
             for name in GATED if measured[name] is not None and measured[name] > baseline[name] + margin]
    return drops, rises


def test_gate_compares_with_the_margin():
    baseline = {"classification_accuracy": 0.8, "field_accuracy": 0.4, "margin": 0.03}
    assert compare({"classification_accuracy": 0.771, "field_accuracy": 0.371}, baseline) == ([], [])
    drops, rises = compare({"classification_accuracy": 0.769, "field_accuracy": 0.5}, baseline)
    assert len(drops) == 1 and drops[0].startswith("classification_accuracy 0.769")
    assert len(rises) == 1 and rises[0].startswith("field_accuracy 0.5")
    assert len(compare({"classification_accuracy": None, "field_accuracy": 0.4}, baseline)[0]) == 1


def test_committed_baseline_is_complete():
    with open(BASELINE, encoding="utf-8") as fh:
        baseline = json.load(fh)
    assert all(0 <= baseline[name] <= 1 for name in GATED)
    assert baseline["margin"] == 0.03 and baseline["measured_on"] and baseline["note"]


@pytest.mark.slow
def test_quality_on_real_documents_does_not_drop(pg_dsn, tmp_path):
    if not os.path.exists(os.path.join(LABELED, "labels.csv")):
        pytest.skip(f"labelled real documents not found at {os.path.normpath(LABELED)} "
                    "(../shared/corpus/labeled next to the project)")
    with open(BASELINE, encoding="utf-8") as fh:
        baseline = json.load(fh)
    report = evaluate_real.evaluate(LABELED, pg_dsn, data_dir=str(tmp_path), work_dir=str(tmp_path))
    with open(tmp_path / "report.json", "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, default=str)
    print("\n" + evaluate_real.format_report(report))
    print(f"(full report: {tmp_path / 'report.json'})")

    run = report["run"]
    assert run["exit_status"] == 0, evaluate_real.log_tail(run["log"])
    measured = {"classification_accuracy": report["classification"]["accuracy"],
                "field_accuracy": report["extraction"]["field_accuracy"]}
    drops, rises = compare(measured, baseline)
    assert not drops, "; ".join(drops) + " (bench/quality_baseline.json: lower it only with a reason)"
    for rise in rises:
        warnings.warn(QualityAboveBaseline(rise + ": commit the new figure to bench/quality_baseline.json"))
