"""Classify stage: assign a category and a confidence in [0, 1] to a document.

Default backend: zero-shot by embedding similarity. The document's vector (mean of its first chunk
vectors, computed once by the Embed stage) is compared with the vectors of each category's
description and examples, embedded by the same model at set-up. No training data is needed; a
user changes the categories by editing a YAML file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import yaml

from transforms.embed import document_vector
from transforms.records import Document

OTHER = "other"
DEFAULT_CATEGORIES_FILE = os.path.join(os.path.dirname(__file__), "categories.yaml")
# Softmax temperature over cosine similarities: MiniLM cosines of related texts differ by a few
# hundredths, so a small temperature turns those gaps into a usable confidence.
TEMPERATURE = 0.02
FORMAT_BONUS = 0.08  # cosine bonus for a category that names the document's format


@dataclass
class Category:
    name: str
    description: str
    examples: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)


def load_categories(path: str | None = None) -> list[Category]:
    """Read categories from YAML or JSON: {name: {description, examples?, formats?}}."""
    path = path or DEFAULT_CATEGORIES_FILE
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh) if path.endswith(".json") else yaml.safe_load(fh)
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: expected a mapping of category name -> description")
    categories = []
    for name, spec in raw.items():
        if name == OTHER:
            raise ValueError(f"{path}: '{OTHER}' is assigned automatically; do not define it")
        if isinstance(spec, str):
            spec = {"description": spec}
        if not isinstance(spec, dict) or not spec.get("description"):
            raise ValueError(f"{path}: category {name!r} needs a description")
        categories.append(Category(name=str(name), description=spec["description"],
                                   examples=list(spec.get("examples") or []),
                                   formats=list(spec.get("formats") or [])))
    return categories


FORMAT_OF_MIME = {
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/csv": "csv",
    "application/pdf": "pdf",
    "text/html": "html",
}


class EmbeddingClassifier:
    """Zero-shot classifier over any embedder with `embed(texts) -> unit vectors`."""

    name = "embedding"

    def __init__(self, embedder, categories: list[Category], threshold: float):
        self.categories = categories
        self.threshold = threshold
        texts, owners = [], []
        for index, cat in enumerate(categories):
            for text in [cat.description, *cat.examples]:
                texts.append(text)
                owners.append(index)
        self.prototypes = embedder.embed(texts)  # (n_prototypes, dim), unit length
        self.owners = np.asarray(owners)

    def scores(self, vector: np.ndarray, fmt: str | None = None) -> np.ndarray:
        """Best cosine similarity of the document to each category's prototypes."""
        sims = self.prototypes @ vector
        best = np.full(len(self.categories), -1.0)
        np.maximum.at(best, self.owners, sims)
        if fmt:
            for i, cat in enumerate(self.categories):
                if fmt in cat.formats:
                    best[i] += FORMAT_BONUS
        return best

    def classify(self, doc: Document) -> tuple[str, float]:
        vector = document_vector(doc)
        if vector is None:
            return OTHER, 0.0
        scores = self.scores(vector, FORMAT_OF_MIME.get(doc.mime or ""))
        probs = np.exp((scores - scores.max()) / TEMPERATURE)
        probs /= probs.sum()
        best = int(np.argmax(probs))
        confidence = round(float(probs[best]), 4)
        if confidence < self.threshold:
            return OTHER, confidence
        return self.categories[best].name, confidence
