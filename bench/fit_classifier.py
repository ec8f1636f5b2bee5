"""python -m bench.fit_classifier [--labeled DIR ...] [--out FILE]: learn the classifier's model from labelled documents.

Converts every file of a labelled folder (labels.csv: file, category, language, format, source_repo, ...)
with the pipeline's own converter, embeds each text as the classifier does
(transforms/classify.py: document_vectors), and fits the weights of the evidence and the format prior (transforms/classify_model.py). It reports
leave-one-source-out accuracy: every document is classified by a model fitted without any document
from the same source repository, which is what to expect on documents from elsewhere; the model it
writes is then fitted on all of them. The same folds, with the other sources' documents as labelled
examples, measure the classifier with --examples; and once more with every other document as an
example, its own source's too (a user labelling documents like the ones they process).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

from transforms.classify import EmbeddingClassifier, document_vectors, load_categories
from transforms.classify_model import (EVIDENCE, EXAMPLE_FLOOR, SHAPE, ClassifierModel, example_evidence, fit,
                                       format_group, ocr_page_count, prior_table, shape_features)

DEFAULT_LABELED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus", "labeled")
ALPHA = 5.0  # strength of the smoothing of the format prior, in documents
NO_EXAMPLES = [k for k in EVIDENCE if k != "examples"]
_converter = None


def _init_converter():
    global _converter
    from transforms.config import StageConfig
    from transforms.convert import Converter

    _converter = Converter(StageConfig(model_threads=1))


def _convert(item):
    path, row = item
    from transforms.records import Document

    doc = Document(id="", paths=[path], filename=os.path.basename(path))
    try:
        with open(path, "rb") as fh:
            _converter.convert(doc, fh.read())
        error = None
    except Exception as exc:  # a document the pipeline fails: scored as wrong, not fitted on
        error = f"{type(exc).__name__}: {exc}"
    return dict(row, path=path, text=doc.text, mime=doc.mime, pages=doc.pages, converter=doc.converter,
                landscape=doc.landscape, error=error)


def convert_folder(folder: str | list[str], cache: str | None) -> list[dict]:
    """The labelled documents of one or more folders, converted. A cache keeps conversions by path:
    only files it does not hold yet are converted (a folder added later costs only its own files)."""
    folders = [folder] if isinstance(folder, str) else list(folder)
    items = []
    for one in folders:
        with open(os.path.join(one, "labels.csv"), encoding="utf-8") as fh:
            items += [(os.path.abspath(os.path.join(one, r["file"])), r) for r in csv.DictReader(fh)]
    cached = {}
    if cache and os.path.exists(cache):
        with open(cache, encoding="utf-8") as fh:
            cached = {os.path.abspath(d["path"]): d for d in map(json.loads, fh)}
    missing = [item for item in items if item[0] not in cached]
    if missing:
        with Pool(2, initializer=_init_converter) as pool:
            cached.update((d["path"], d) for d in pool.map(_convert, missing))
        if cache:
            with open(cache, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(d) + "\n" for d in cached.values())
    # labels as the folder says now (a corrected label is not stale in the cache)
    return [dict(cached[path], **row) for path, row in items]


class _Uniform(ClassifierModel):
    """Evidence is computed before any prior is known: the prior column is filled per fold."""

    def __init__(self, names):
        super().__init__(categories=names, weights={}, format_prior={})


def evidence_of(docs: list[dict], classifier: EmbeddingClassifier, vectors: np.ndarray):
    ev = np.stack([classifier.evidence(v, d["text"] or "", "other") for d, v in zip(docs, vectors)])
    shapes = np.stack([shape_features(d["text"] or "", d["pages"]) for d in docs])
    return ev, shapes


def nearest_examples(vectors, labels, groups, names, rows, pool) -> np.ndarray:
    """For each doc in `rows`: per category, the cosine to its nearest example among `pool` from
    another source (an example is never the document itself nor its sibling)."""
    out = np.zeros((len(rows), len(names)))
    for k, i in enumerate(rows):
        for c, name in enumerate(names):
            cands = [j for j in pool if labels[j] == name and groups[j] != groups[i]]
            out[k, c] = float(np.max(vectors[cands] @ vectors[i])) if cands else 0.0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", action="append",
                        help="labelled folder (labels.csv + files); repeat to fit on several "
                             f"(default: {os.path.normpath(DEFAULT_LABELED)})")
    parser.add_argument("--out", default=None, help="model file to write (default: print figures only)")
    parser.add_argument("--cache", help="JSON-lines file of converted texts, made once and reused")
    parser.add_argument("--show-errors", action="store_true",
                        help="list the documents leave-one-source-out gets wrong (to study kinds of error)")
    args = parser.parse_args(argv)
    args.labeled = args.labeled or [DEFAULT_LABELED]
    started = time.time()
    docs = convert_folder(args.labeled, args.cache)
    categories = load_categories()
    names = [c.name for c in categories]
    # A document labelled `other` (none of the categories) teaches no category: the classifier says
    # `other` below its threshold, which bench.evaluate scores. Not fitted on.
    unfitted = [d for d in docs if d["category"] not in names]
    if unfitted:
        print(f"not fitted on: {len(unfitted)} documents of no category the classifier knows "
              f"({', '.join(sorted({d['category'] for d in unfitted}))})")
        docs = [d for d in docs if d["category"] in names]
    from transforms.backends.use import get_embedder

    embedder = get_embedder(threads=2)
    classifier = EmbeddingClassifier(embedder, categories, 0.0, model=_Uniform(names))
    vectors = document_vectors(embedder, [d["text"] for d in docs])
    ev, shapes = evidence_of(docs, classifier, vectors)
    labels = [d["category"] for d in docs]
    y = np.array([names.index(c) for c in labels])
    sources = [d.get("source_repo") or d["file"].split("__")[1] for d in docs]
    groups = [format_group(d["path"], d["mime"], d["pages"], d["converter"], len(d["text"] or ""), d.get("landscape"),
                           ocr_page_count(d["text"])) for d in docs]
    ok = [d["error"] is None for d in docs]
    cols = [EVIDENCE.index(k) for k in NO_EXAMPLES]

    def design(rows, table, examples=None):
        x = ev[rows].copy()
        x[:, :, EVIDENCE.index("format_prior")] = np.log(np.array(
            [[table[groups[i]][n] for n in names] for i in rows]))
        if examples is not None:
            x[:, :, EVIDENCE.index("examples")] = example_evidence(examples, EXAMPLE_FLOOR)
            return x
        return x[:, :, cols]

    def fit_rows(rows, with_examples):
        train = [i for i in rows if ok[i]]
        table = prior_table([labels[i] for i in train], [groups[i] for i in train], names, ALPHA)
        ex = nearest_examples(vectors, labels, sources, names, train, train) if with_examples else None
        w, W, b = fit(design(train, table, ex), shapes[train], y[train])
        return table, w, W, b

    results = {}
    # with_examples_any_source: the model is still fitted without the file's source, but every other
    # file is an example, its own source's other files too (issue 14's cross-validation, "never its own
    # example"; what a user who labels documents like the ones they process would see).
    for key in ("no_examples", "with_examples", "with_examples_any_source"):
        with_examples = key != "no_examples"
        predicted = np.zeros(len(docs), dtype=int)
        for source in sorted(set(sources)):
            test = [i for i, s in enumerate(sources) if s == source]
            train = [i for i, s in enumerate(sources) if s != source]
            table, w, W, b = fit_rows(train, with_examples)
            pool = [i for i in (train if key == "with_examples" else range(len(docs))) if ok[i]]
            # with any source allowed, only the file itself is excluded (each file its own group)
            ex = nearest_examples(vectors, labels, sources if key == "with_examples" else list(range(len(docs))),
                                  names, test, pool) if with_examples else None
            scores = design(test, table, ex) @ w + shapes[test] @ W.T + b
            predicted[test] = scores.argmax(axis=1)
        right = np.array([ok[i] and predicted[i] == y[i] for i in range(len(docs))])
        if args.show_errors:
            for i in np.flatnonzero(~right):
                print(f"  wrong: {labels[i]:>16} -> {names[predicted[i]] if ok[i] else 'FAILED':<16} "
                      f"{groups[i]:<9} {docs[i].get('language', ''):<3} {docs[i]['file']}")
        english = np.array([d.get("language") == "en" for d in docs])
        results[key] = {"accuracy": round(float(right.mean()), 4),
                        "english": round(float(right[english].mean()), 4),
                        "not_english": round(float(right[~english].mean()), 4),
                        "recall": {n: round(float(right[y == c].mean()), 3) for c, n in enumerate(names)
                                   if (y == c).any()}}
        print(f"leave-one-source-out, {key.replace('_', ' ')}: accuracy {results[key]['accuracy']:.3f} "
              f"(English {results[key]['english']:.3f}, not English {results[key]['not_english']:.3f}); "
              "failed conversions count as wrong")
        print("  recall: " + ", ".join(f"{n} {r:.2f}" for n, r in results[key]["recall"].items()))
    everything = list(range(len(docs)))
    table, w, W, b = fit_rows(everything, False)
    _, w_ex, _, _ = fit_rows(everything, True)
    model = ClassifierModel(
        categories=names, weights={k: round(float(v), 4) for k, v in zip(NO_EXAMPLES, w)},
        weights_with_examples={k: round(float(v), 4) for k, v in zip(EVIDENCE, w_ex)},
        example_floor=EXAMPLE_FLOOR,
        format_prior=table,
        shape_weights={n: [round(float(v), 4) for v in W[c]] for c, n in enumerate(names)},
        bias={n: round(float(b[c]), 4) for c, n in enumerate(names)},
        trained_on={"documents": len(docs), "converted": int(sum(ok)), "sources": len(set(sources)),
                    "folder": "+".join(os.path.basename(os.path.normpath(f)) for f in args.labeled), "alpha": ALPHA,
                    "shape_features": list(SHAPE), "leave_one_source_out": results,
                    "fitted": time.strftime("%Y-%m-%d")})
    if args.out:
        model.save(args.out)
        print(f"wrote {args.out}")
    print(f"{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
