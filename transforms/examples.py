"""Labelled examples for the classifier: an --examples folder and the corrections users made.

Prepared once per run, in the launching process, before any document is read: each example file is
converted with the pipeline's converter and the start of its text embedded with the classifier's
model; the vectors are cached in the store (example_vectors, by content hash and model), so a later
run embeds only new examples. The vectors then travel inside the stage configuration to every worker,
whatever the runner (a few KB per example; no shared file system needed).

An examples folder is either `labels.csv` (columns `file` and `category`, paths relative to the
folder) or one sub-folder per category (`examples/invoice/a.pdf`).
"""
from __future__ import annotations

import csv
import hashlib
import os

import numpy as np

from transforms.classify import OTHER, VECTOR_KIND, Example, document_vectors


class ExamplesError(ValueError):
    """The examples folder cannot be used; shown to the user as is."""


def list_examples(folder: str) -> list[tuple[str, str]]:
    """(path, category) of every labelled file of the folder."""
    if not os.path.isdir(folder):
        raise ExamplesError(f"--examples: not a folder: {folder}")
    labels = os.path.join(folder, "labels.csv")
    if os.path.exists(labels):
        with open(labels, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not {"file", "category"} <= set(reader.fieldnames or []):
                raise ExamplesError(f"{labels}: needs the columns 'file' and 'category'")
            pairs = [(os.path.join(folder, row["file"]), row["category"].strip()) for row in reader]
        missing = [p for p, _ in pairs if not os.path.isfile(p)]
        if missing:
            raise ExamplesError(f"{labels}: {len(missing)} listed file(s) not found, first {missing[0]}")
        return [(p, c) for p, c in pairs if c]
    pairs = []
    for category in sorted(os.listdir(folder)):
        sub = os.path.join(folder, category)
        if os.path.isdir(sub) and not category.startswith("."):
            for root, _dirs, files in os.walk(sub):
                pairs.extend((os.path.join(root, f), category) for f in sorted(files) if not f.startswith("."))
    if not pairs:
        raise ExamplesError(f"--examples {folder}: no labels.csv and no sub-folder per category with files")
    return pairs


def prepare_examples(folder: str | None, dsn: str | None, categories: list[str], config) -> tuple[list[Example], dict]:
    """Examples from the folder and from the store's corrections, with the counts of each kind."""
    from transforms.backends.use import MODEL_NAME, get_embedder
    from transforms.backends.use_int8 import resolve_precision

    def vector_of(text: str) -> np.ndarray:
        # The model is loaded only when a vector is missing from the cache: most runs have no
        # examples, or only cached ones, and loading it costs ~2 s before the run can start.
        return document_vectors(get_embedder(), [text])[0]

    # vectors are cached per model, its arithmetic and the way of making them (a change of windows
    # or of precision re-embeds)
    precision = resolve_precision()
    kind = f"{MODEL_NAME}{'' if precision == 'fp32' else '-' + precision}/{VECTOR_KIND}"
    cached = _cached_vectors(dsn, kind)
    examples: list[Example] = []
    counts = {"folder": 0, "corrections": 0, "embedded": 0, "unknown_category": 0, "unreadable": 0}
    new_rows = []
    if folder:
        from transforms.convert import Converter
        from transforms.records import Document

        converter = None
        for path, category in list_examples(folder):
            if category not in categories or category == OTHER:
                counts["unknown_category"] += 1
                continue
            with open(path, "rb") as fh:
                data = fh.read()
            key = hashlib.sha256(data).hexdigest()
            vector = cached.get(key)
            if vector is None:
                converter = converter or Converter(config)
                doc = Document(id=key, paths=[path], filename=os.path.basename(path))
                try:
                    converter.convert(doc, data)
                except Exception:  # an example that cannot be read teaches nothing; counted, not fatal
                    counts["unreadable"] += 1
                    continue
                vector = vector_of(doc.text)
                new_rows.append((key, category, "examples", path, vector))
                counts["embedded"] += 1
            examples.append(Example(category=category, vector=vector, source="examples", key=key))
            counts["folder"] += 1
    if dsn:
        from pipeline import store

        for row in store.corrected_categories(dsn):
            if row["category"] not in categories or row["category"] == OTHER:
                continue
            vector = cached.get(row["document_id"])
            if vector is None:
                vector = vector_of(row["text"])
                new_rows.append((row["document_id"], row["category"], "correction", None, vector))
                counts["embedded"] += 1
            examples.append(Example(category=row["category"], vector=vector, source="correction",
                                    key=row["document_id"]))
            counts["corrections"] += 1
    if dsn and new_rows:
        _cache_vectors(dsn, kind, new_rows)
    return examples, counts


def _cached_vectors(dsn: str | None, model: str) -> dict[str, np.ndarray]:
    if not dsn:
        return {}
    from pipeline import store

    with store.session(dsn) as conn:
        rows = conn.execute("SELECT content_id, vector FROM example_vectors WHERE embedder = %s",
                            (model,)).fetchall()
    return {r["content_id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}


def _cache_vectors(dsn: str, model: str, rows) -> None:
    from pipeline import store

    with store.connect(dsn) as conn, conn.transaction():
        for key, category, source, path, vector in rows:
            conn.execute(
                "INSERT INTO example_vectors (content_id, embedder, category, source, path, vector) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (content_id, embedder) DO UPDATE SET "
                "category = EXCLUDED.category, source = EXCLUDED.source, path = EXCLUDED.path",
                (key, model, category, source, path, [float(x) for x in vector]))
