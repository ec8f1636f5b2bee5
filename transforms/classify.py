"""Classify stage: assign a category and a confidence in [0, 1] to a document.

Default backend: zero-shot by embedding similarity. The document's vector (mean of its first chunk
vectors, computed once by the Embed stage) is compared with the vectors of each category's
description and examples, embedded by the same model at set-up. Typical words of each kind of
document ("Dear", "Total due", "Abstract") add a small, capped bonus: a sentence embedding sees what
a text is about more than what kind of document it is, and those words carry the kind. No training
data is needed; a user changes the categories by editing a YAML file.
"""
from __future__ import annotations

import json
import os
import re
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
CUE_WEIGHT = 0.04    # cosine bonus per typical word/phrase found...
CUE_CAP = 3          # ...counting at most this many, so a long document cannot win on words alone
CUE_WINDOW = 4000    # characters from the start where cues are looked for


@dataclass
class Category:
    name: str
    description: str
    examples: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)

    def cue_pattern(self) -> re.Pattern | None:
        if not self.cues:
            return None
        # Word boundaries only where the cue starts/ends with a word character ("[ ]" has none).
        parts = [(r"\b" if c[0].isalnum() else "") + re.escape(c.lower()) + (r"\b" if c[-1].isalnum() else "")
                 for c in self.cues]
        return re.compile("|".join(parts))


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
                                   formats=list(spec.get("formats") or []),
                                   cues=[str(c) for c in spec.get("cues") or []]))
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
        self.cue_patterns = [cat.cue_pattern() for cat in categories]

    def scores(self, vector: np.ndarray, text: str = "", fmt: str | None = None) -> np.ndarray:
        """Per category: best cosine similarity to its prototypes, plus cue and format bonuses."""
        sims = self.prototypes @ vector
        best = np.full(len(self.categories), -1.0)
        np.maximum.at(best, self.owners, sims)
        window = text[:CUE_WINDOW].lower()
        for i, cat in enumerate(self.categories):
            pattern = self.cue_patterns[i]
            if pattern is not None and window:
                found = {m.group(0) for m in pattern.finditer(window)}
                best[i] += CUE_WEIGHT * min(len(found), CUE_CAP)
            if fmt and fmt in cat.formats:
                best[i] += FORMAT_BONUS
        return best

    def classify(self, doc: Document) -> tuple[str, float]:
        vector = document_vector(doc)
        if vector is None:
            return OTHER, 0.0
        scores = self.scores(vector, doc.text or "", FORMAT_OF_MIME.get(doc.mime or ""))
        probs = np.exp((scores - scores.max()) / TEMPERATURE)
        probs /= probs.sum()
        best = int(np.argmax(probs))
        confidence = round(float(probs[best]), 4)
        if confidence < self.threshold:
            return OTHER, confidence
        return self.categories[best].name, confidence
