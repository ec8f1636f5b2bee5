"""Scoring for `bench.evaluate --labeled`: plain functions (no Beam, no database), unit-tested.

Inputs are the labelled folder's `labels.csv` and `<file>.truth.json` files, and one outcome per
labelled file as the store holds it ({status, category, confidence, fields, error_stage,
error_message}, or None when the store has no outcome for the path).

Extraction is scored strictly: a value counts only when it equals the truth after normalising case
and spacing (text), as an ISO date YYYY-MM-DD (dates), to the cent (amounts) or as an ISO 4217 code
(currencies). A value that is missing, empty or in another form ("11/15/2019", "$", "1,536.52")
counts as wrong.
"""
from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from collections import Counter, defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FAILED = "(failed)"    # predicted "category" of a document that failed
MISSING = "(missing)"  # ... of a labelled file the store has no outcome for

# truth.json key -> keys of the pipeline's metadata.fields that may hold it, first found wins.
FIELD_KEYS = {
    "invoice_number": ("number", "invoice_number"),
    "issue_date": ("issue_date",),
    "due_date": ("due_date",),
    "total_amount": ("total_amount",),
    "currency": ("currency",),
    "issuer": ("issuer",),
    "buyer": ("buyer", "recipient", "customer"),
}
# Keys a truth file might use to say that the document is an e-invoice (Factur-X, ZUGFeRD, XRechnung).
E_INVOICE_KEYS = ("e_invoice", "einvoice", "is_e_invoice", "electronic_invoice")


# -- loading ---------------------------------------------------------------------------------------

def load_labels(folder: str) -> list[dict]:
    """Rows of labels.csv (file, category, language, format, ...), in file order."""
    with open(os.path.join(folder, "labels.csv"), encoding="utf-8", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row.get("file")]


def load_truths(folder: str, files) -> dict[str, dict]:
    """file -> its truth.json, for the files that have one."""
    truths = {}
    for name in files:
        path = os.path.join(folder, name + ".truth.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                truths[name] = json.load(fh)
    return truths


# -- normalisation ---------------------------------------------------------------------------------

def norm_text(value) -> str | None:
    """Case and spacing normalised (Unicode NFKC, so a no-break space is a space); nothing else."""
    if value is None or isinstance(value, (bool, dict)):
        return None
    if isinstance(value, list):
        parts = [norm_text(v) for v in value]
        return "; ".join(sorted(p for p in parts if p)) or None
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", str(value))).strip().casefold()
    return text or None


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.+\-Z]*)?")


def norm_date(value) -> str | None:
    """An ISO date YYYY-MM-DD (a timestamp's date part too); any other form is None."""
    if isinstance(value, date):
        return value.isoformat()[:10]
    if not isinstance(value, str):
        return None
    m = _ISO_DATE.fullmatch(value.strip())
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def norm_amount(value) -> Decimal | None:
    """An amount rounded to the cent; numbers, or strings that are plain decimal numbers only."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        raw = repr(value)
    elif isinstance(value, str) and _PLAIN_NUMBER.fullmatch(value.strip()):
        raw = value.strip()
    else:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def norm_currency(value) -> str | None:
    """An ISO 4217 code (three letters, any case); a symbol or a name is None."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if re.fullmatch(r"[A-Z]{3}", code) else None


def field_kind(name: str) -> str:
    if name.endswith("_date") or name == "date":
        return "date"
    if name.endswith("_amount") or name == "amount":
        return "amount"
    if name == "currency":
        return "currency"
    return "text"


NORMALISERS = {"date": norm_date, "amount": norm_amount, "currency": norm_currency, "text": norm_text}


def field_matches(name: str, expected, got) -> bool:
    """Strict match of one field; a missing or unreadable value is wrong."""
    normalise = NORMALISERS[field_kind(name)]
    want = normalise(expected)
    return want is not None and normalise(got) == want


def predicted_value(fields: dict, truth_key: str):
    for key in FIELD_KEYS.get(truth_key, (truth_key,)):
        value = fields.get(key)
        if value not in (None, "", []):
            return value
    return None


# -- classification --------------------------------------------------------------------------------

def predicted_category(outcome: dict | None) -> str:
    if outcome is None:
        return MISSING
    if outcome.get("status") == "failed":
        return FAILED
    return outcome.get("category") or "other"


def ratio(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def classification_scores(pairs: list[tuple[str, str]]) -> dict:
    """pairs of (truth, predicted): accuracy, confusion (rows = truth) and per-category precision,
    recall, F1 and support. Precision is None for a category never predicted; F1 is 0 when either is
    0 or undefined (macro F1 is the mean over the truth categories)."""
    confusion: dict[str, Counter] = defaultdict(Counter)
    for truth, predicted in pairs:
        confusion[truth][predicted] += 1
    predicted_count = Counter(p for _, p in pairs)
    per_category = {}
    for category in sorted(set(confusion) | {p for p in predicted_count if p not in (FAILED, MISSING)}):
        tp = confusion[category][category] if category in confusion else 0
        support = sum(confusion[category].values()) if category in confusion else 0
        precision = ratio(tp, predicted_count[category])
        recall = ratio(tp, support)
        f1 = (round(2 * precision * recall / (precision + recall), 4)
              if precision and recall else (0.0 if support else None))
        per_category[category] = {"precision": precision, "recall": recall, "f1": f1,
                                  "support": support, "predicted": predicted_count[category]}
    f1s = [s["f1"] for s in per_category.values() if s["support"]]
    correct = sum(1 for t, p in pairs if t == p)
    return {
        "n": len(pairs),
        "correct": correct,
        "accuracy": ratio(correct, len(pairs)),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "per_category": per_category,
        "confusion": {t: dict(sorted(row.items())) for t, row in sorted(confusion.items())},
    }


def accuracy_by(rows: list[dict], key) -> dict[str, dict]:
    """rows with 'truth' and 'predicted'; accuracy per value of key(row), largest group first."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        g = groups[key(row)]
        g[0] += row["truth"] == row["predicted"]
        g[1] += 1
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return {name: {"accuracy": ratio(hits, n), "correct": hits, "n": n} for name, (hits, n) in ordered}


def score_classification(labels: list[dict], outcomes: dict[str, dict | None]) -> dict:
    rows = []
    for label in labels:
        outcome = outcomes.get(label["file"])
        rows.append({"file": label["file"], "truth": label["category"],
                     "predicted": predicted_category(outcome),
                     "confidence": (outcome or {}).get("confidence"),
                     "language": label.get("language") or "?", "format": label.get("format") or "?",
                     "error": _error(outcome)})
    scores = classification_scores([(r["truth"], r["predicted"]) for r in rows])
    scores["by_language"] = accuracy_by(rows, lambda r: r["language"])
    scores["by_language_group"] = accuracy_by(
        rows, lambda r: "English" if r["language"] == "en" else "non-English")
    scores["by_format"] = accuracy_by(rows, lambda r: r["format"])
    scores["misclassified"] = [
        {k: r[k] for k in ("file", "truth", "predicted", "confidence", "error")}
        for r in rows if r["truth"] != r["predicted"]]
    scores["not_completed"] = [{"file": r["file"], "outcome": r["predicted"], "error": r["error"]}
                               for r in rows if r["predicted"] in (FAILED, MISSING)]
    return scores


def score_language(labels: list[dict], outcomes: dict[str, dict | None]) -> dict:
    """The language the pipeline recorded against labels.csv's: right, none recorded (the detector
    was unsure, or the document failed), or another language (the ones that matter most)."""
    right = none = 0
    wrong = []
    for label in labels:
        truth = label.get("language")
        if not truth:
            continue
        got = (outcome := outcomes.get(label["file"])) and outcome.get("language")
        if got == truth:
            right += 1
        elif not got:
            none += 1
        else:
            wrong.append({"file": label["file"], "truth": truth, "got": got})
    n = right + none + len(wrong)
    return {"accuracy": ratio(right, n), "right": right, "none": none, "wrong": wrong, "n": n}


def _error(outcome: dict | None) -> str | None:
    if outcome is None:
        return "no outcome in the store for this path"
    if outcome.get("status") != "failed":
        return None
    stage = outcome.get("error_stage") or "?"
    return f"{stage}: {outcome.get('error_message') or 'no reason recorded'}"


# -- extraction ------------------------------------------------------------------------------------

def is_e_invoice(truth: dict) -> bool | None:
    """What the truth says about the document being an e-invoice; None when it says nothing."""
    for key in E_INVOICE_KEYS:
        if key in truth:
            return bool(truth[key])
    return None


# The fields the extraction issue sets its targets on (>= 0.85 together, each >= 0.75).
TARGET_FIELDS = ("invoice_number", "issue_date", "total_amount", "currency", "issuer")


def _source_of(outcome: dict, truth_key: str) -> str:
    sources = outcome.get("field_sources") or {}
    for key in FIELD_KEYS.get(truth_key, (truth_key,)):
        if key in sources:
            return (sources[key] or {}).get("source") or "?"
    return "none"


def score_extraction(truths: dict[str, dict], outcomes: dict[str, dict | None]) -> dict:
    """Per field and overall exact-match accuracy over every (file, field) the truth files hold; the
    same over the target fields, per source the pipeline named (e-invoice, key-value, ...), and over
    the files whose fields came from an e-invoice."""
    per_field: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # correct, n, found
    per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    e_invoice_files: dict[str, list[int]] = {}
    misses, stated = [], []
    for name, truth in sorted(truths.items()):
        outcome = outcomes.get(name) or {}
        fields = outcome.get("fields") or {}
        flag = is_e_invoice(truth)
        if flag is not None:
            stated.append(flag)
        for key, expected in truth.items():
            if key in E_INVOICE_KEYS or expected in (None, ""):
                continue
            got = predicted_value(fields, key)
            ok = field_matches(key, expected, got)
            per_field[key][0] += ok
            per_field[key][1] += 1
            per_field[key][2] += got is not None
            source = _source_of(outcome, key)
            per_source[source][0] += ok
            per_source[source][1] += 1
            if source == "e-invoice":
                e_invoice_files.setdefault(name, [0, 0])
                e_invoice_files[name][0] += ok
                e_invoice_files[name][1] += 1
            if not ok:
                misses.append({"file": name, "field": key, "truth": expected, "got": got,
                               "category": predicted_category(outcomes.get(name))})
    hits = sum(v[0] for v in per_field.values())
    total = sum(v[1] for v in per_field.values())
    found_fields = [v for v in per_field.values() if v[2]]
    return {
        "files": len(truths),
        "values": total,
        "correct": hits,
        "field_accuracy": ratio(hits, total),
        # the same over the fields the pipeline produced at least once (a field it never extracts aside)
        "field_accuracy_found_fields": ratio(sum(v[0] for v in found_fields), sum(v[1] for v in found_fields)),
        "per_field": {k: {"accuracy": ratio(h, n), "correct": h, "n": n, "found": found}
                      for k, (h, n, found) in sorted(per_field.items(), key=lambda kv: (-kv[1][1], kv[0]))},
        "never_found": sorted(k for k, v in per_field.items() if not v[2]),
        "target_fields": list(TARGET_FIELDS),
        "target_accuracy": ratio(sum(per_field[k][0] for k in TARGET_FIELDS if k in per_field),
                                 sum(per_field[k][1] for k in TARGET_FIELDS if k in per_field)),
        "per_source": {k: {"accuracy": ratio(h, n), "correct": h, "n": n}
                       for k, (h, n) in sorted(per_source.items(), key=lambda kv: -kv[1][1])},
        "e_invoices": {"stated": len(stated), "true": sum(stated),
                       "note": None if stated else "the truth files do not say which are e-invoices",
                       # files the pipeline read an e-invoice from, and how many of their values are right
                       "read": len(e_invoice_files),
                       "correct": sum(v[0] for v in e_invoice_files.values()),
                       "values": sum(v[1] for v in e_invoice_files.values())},
        "misses": misses,
    }

