"""Classify stage: assign a category and a confidence in [0, 1] to a document.

Default backend (`embedding`): evidence of several kinds, combined by a small learnt model
(transforms/classify_model.py):
- what the start of the text is about: its vector from a multilingual model (USE multilingual v3,
  shipped in a wheel) against each category's descriptions and examples, written in several languages;
- words that name the kind of document near its start ("Invoice", "Rechnung", "Facture") and words
  typical of it further on, listed per language in categories.yaml;
- what the file is: a prior P(category | format) learnt from labelled documents (a .pptx is probably
  a presentation, an .eml an email) that content can still overrule;
- the shape of its text (text per page, digits, table rows, blanks to fill in);
- labelled examples, when there are any (--examples, and the corrections users made): the nearest
  example of each category, counted only as far as it is nearly the same kind of document
  (EXAMPLE_FLOOR), so the classifier gets better with every label a user gives it.
A user changes the categories by editing a YAML file; categories the learnt model does not know get
a neutral prior and are decided by their descriptions, words and examples.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import numpy as np
import yaml

from transforms.classify_model import (CUE_CAP, CUE_WINDOW, EVIDENCE, GROUP_BY_EXTENSION, LATER_TITLE,
                                       SIMILARITY_SCALE, TITLE_WINDOW, ClassifierModel, example_evidence,
                                       format_group, ocr_page_count, shape_features, softmax)
from transforms.records import Document

OTHER = "other"
DEFAULT_CATEGORIES_FILE = os.path.join(os.path.dirname(__file__), "categories.yaml")
CLASSIFY_TEXT_CHARS = 2000  # the start of the text that is embedded: title, parties, headings


def _flatten(words) -> list[str]:
    """Cue lists are written per language ({en: [...], de: [...]}) or as one list."""
    if isinstance(words, dict):
        return [str(w) for listed in words.values() for w in (listed or [])]
    return [str(w) for w in words or []]


def _word_char(ch: str) -> bool:
    """A character that continues a word. Chinese and Japanese write words without spaces ("請求書"
    stands among other characters), so their characters bound nothing."""
    return ch.isalnum() and not ("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff"
                                 or "\uf900" <= ch <= "\ufaff")


# Greek drops its accents in capitals ("ΤΙΜΟΛΟΓΙΟ" is "Τιμολόγιο"), and titles are often in capitals:
# words and text are both compared without them. Only Greek's: elsewhere a capital keeps its accent,
# and dropping accents would make words of two languages one ("levél", a Hungarian letter, "level").
# Romanian's ș and ț are also written with a cedilla (ş, ţ: older fonts and keyboards): one spelling.
_FOLDED = str.maketrans("άέήίόύώϊϋΐΰşţ", "αεηιουωιυιυșț")


def fold(text: str) -> str:
    """`text` as words are looked for in it: lower-cased, Greek without accents, Romanian's
    cedillas as commas."""
    return text.lower().translate(_FOLDED)


class WordList:
    """Words and phrases looked for in lower-cased text, as whole words where they start or end with
    a word character ("rechnung" is not found inside "rechnungsdatum"; "[ ]" has no such edge). A word
    written with a leading "-" ("-bericht") is also found as the last part of a compound
    ("Praktikumsbericht", "Jahresbericht"): German, Dutch and the Nordic languages name a kind of
    document that way, and the last part is the kind ("Rechnungsdatum" is a date, "Hotelrechnung" an
    invoice). str.find per word: ~50x faster than one regular expression of alternatives."""

    def __init__(self, words: list[str]):
        words = {fold(w).strip() for w in words if w.strip()}
        self.heads = {w[1:] for w in words if w.startswith("-") and len(w) > 1}
        self.words = sorted({w.lstrip("-") if w.startswith("-") and len(w) > 1 else w for w in words})

    def __bool__(self) -> bool:
        return bool(self.words)

    def _whole(self, text: str, word: str, at: int) -> bool:
        end = at + len(word)
        starts = word in self.heads or not (_word_char(word[0]) and at > 0 and _word_char(text[at - 1]))
        return starts and not (_word_char(word[-1]) and end < len(text) and _word_char(text[end]))

    def first(self, text: str) -> int | None:
        """Where the earliest of the words starts in `text` (already `fold`ed), or None."""
        best = None
        for word in self.words:
            at = text.find(word)
            while at >= 0 and (best is None or at < best):
                if self._whole(text, word, at):
                    best = at
                    break
                at = text.find(word, at + 1)
        return best

    def found(self, text: str) -> list[str]:
        """The distinct words present in `text` (already `fold`ed)."""
        hits = []
        for word in self.words:
            at = text.find(word)
            while at >= 0:
                if self._whole(text, word, at):
                    hits.append(word)
                    break
                at = text.find(word, at + 1)
        return hits


OPENING_WINDOW = 2000   # characters of the text whose lines may open with a category's `openings`
OPENING_LINE_MAX = 80   # a salutation is a short line ("Dear Ms Smith," / "Sehr geehrte Damen und Herren,")


def opening_lines(text: str) -> list[str]:
    """The short lines of the start of a text, folded, Markdown marks and quotes stripped."""
    lines = (fold(line.strip().lstrip("#*>-_ ")) for line in text[:OPENING_WINDOW].splitlines())
    return [line for line in lines if line and len(line) <= OPENING_LINE_MAX]


def opens_a_line(lines: list[str], words: list[str]) -> bool:
    """One of the lines starts with one of the words, as a whole word ("dear" opens "Dear Sir,",
    not "Dearborn Street")."""
    for line in lines:
        for word in words:
            if line.startswith(word) and not (len(line) > len(word) and _word_char(line[len(word)])
                                              and _word_char(word[-1])):
                return True
    return False


@dataclass
class Category:
    name: str
    description: str
    examples: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)  # older files: formats that suggest this category
    # Words that open a line and there name the kind as a title does: a letter's salutation.
    openings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.title_words = WordList(self.titles)
        self.cue_words = WordList(self.cues)
        # `formats: [pptx]` of older files, as the format groups the model's prior is kept by
        self.format_groups = {GROUP_BY_EXTENSION.get(f.lower().lstrip("."), f) for f in self.formats}
        self.opening_words = sorted({fold(w).strip() for w in self.openings if w.strip()})


def load_categories(path: str | None = None) -> list[Category]:
    """Read categories from YAML or JSON: {name: {description, examples?, titles?, cues?}}."""
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
                                   examples=[str(e) for e in spec.get("examples") or []],
                                   titles=_flatten(spec.get("titles")), cues=_flatten(spec.get("cues")),
                                   formats=[str(f) for f in spec.get("formats") or []],
                                   openings=_flatten(spec.get("openings"))))
    return categories


# Placeholder text ("Lorem ipsum dolor sit amet, consectetuer adipiscing elit ...") says nothing about
# a document, yet it made template samples of different kinds near twins to the embedding model: a
# letter and a journal article of two LaTeX classes, both filled with it, were at cosine 0.91, above
# any pair of one kind, and a labelled example counted for the wrong kind. Its distinctive words
# (common Latin that Romance languages share, "in", "non", "vitae", "nulla", is left out) mark a
# line as filler when they are half of its words; such lines are not embedded.
_FILLER_WORDS = frozenset("""
lorem ipsum dolor amet consectetur consectetuer adipiscing adipisicing elit eiusmod tempor incididunt
labore dolore aliqua veniam nostrud exercitation ullamco laboris aliquip commodo consequat aute irure
reprehenderit voluptate velit cillum fugiat pariatur excepteur occaecat cupidatat proident officia
deserunt mollit laborum purus vestibulum placerat curabitur gravida mauris arcu nonummy eget vulputate
donec vehicula augue pellentesque habitant morbi tristique senectus netus malesuada fames turpis
egestas viverra metus rhoncus lectus fringilla ultrices phasellus tellus tortor quisque nunc etiam
pulvinar rutrum maecenas interdum ultricies aliquet ullamcorper luctus nisl molestie volutpat blandit
scelerisque facilisis feugiat pharetra sapien tincidunt posuere eleifend accumsan lacinia sodales
faucibus dapibus mattis venenatis sollicitudin elementum hendrerit ligula porttitor suscipit lobortis
auctor cursus ornare imperdiet condimentum sagittis semper efficitur convallis euismod iaculis varius
nibh justo odio tellus vivamus fusce praesent aenean nullam integer proin duis nam sed cras
""".split())
_FILLER_SHARE = 0.5
_WORDS = re.compile(r"[^\W\d_]+")


def without_filler(text: str) -> str:
    """`text` without its lines of placeholder Latin (at least 4 words, half of them filler words)."""
    kept = []
    for line in text.splitlines():
        words = _WORDS.findall(line.lower())
        if len(words) >= 4 and sum(w in _FILLER_WORDS for w in words) >= _FILLER_SHARE * len(words):
            continue
        kept.append(line)
    return "\n".join(kept)


# A heading set in spaced letters, as journals set theirs ("a b s t r a c t", "a r t i c l e i n f o"):
# PDF text gives one letter per word. Only a line of nothing else: the letters of a sentence's
# next word must not join it.
_LETTER_SPACED_LINE = re.compile(r"^[ \t]*(?:[^\W\d_] ){3,}[^\W\d_][ \t]*$", re.MULTILINE)


def join_letter_spaced(text: str) -> str:
    """Lines like "a b s t r a c t" -> "abstract"; any other line is left alone."""
    return _LETTER_SPACED_LINE.sub(lambda m: m.group(0).replace(" ", ""), text)


def classification_text(text: str | None) -> str:
    return " ".join(without_filler((text or "")[:CLASSIFY_TEXT_CHARS * 2]).split())[:CLASSIFY_TEXT_CHARS]


# A labelled example at least this close to a document is the same document in all but details (the
# same form filled in again, another week's minutes): its label decides, whatever other evidence
# says. The learnt weight of examples cannot say so: among 226 labelled real documents of 136 sources
# pairs that close are rare and always of one kind (6 pairs above 0.95; with placeholder Latin left
# out, none of two kinds above 0.85), so the fit never sees an example disagree with the rest of the
# evidence and keeps its weight small (0.17). (bench.fit_classifier's "with examples" figures score
# the learnt weight alone, without this rule.)
NEAR_DUPLICATE = 0.95

# Beside its start, a long text is also read at a third and at two thirds of its length: the start of a
# slide deck exported to PDF is a title page (a name, a university: it looks like a resume), of a
# statistical report a heading over numbers; further in, the kind shows. The start counts twice, so
# a title still leads. Leave-one-source-out on the labelled real documents: 0.800 -> 0.817 (and
# 0.808 -> 0.817 with examples); windows of 1,000 characters gave 0.808. Costs up to two more
# embeddings (~28 ms each on one core) for texts over 3,000 characters.
EXTRA_WINDOWS = 2
START_WEIGHT = 2.0
VECTOR_KIND = "start2+2windows-nofiller"   # how a document vector is made: cached example vectors are per kind


def classification_windows(text: str | None) -> list[str]:
    """The texts embedded for one document: its start, then windows spread through the rest."""
    text = text or ""
    windows = [classification_text(text)]
    if len(text) > CLASSIFY_TEXT_CHARS * 1.5:
        for k in range(1, EXTRA_WINDOWS + 1):
            at = len(text) * k // (EXTRA_WINDOWS + 1)
            windows.append(classification_text(text[at:at + CLASSIFY_TEXT_CHARS * 2]))
    return windows


def document_vectors(embedder, texts: list[str | None]) -> np.ndarray:
    """One unit vector per text: the weighted mean of its windows' vectors (one batch for all)."""
    windows = [classification_windows(t) for t in texts]
    flat = embedder.embed([w for ws in windows for w in ws])
    out, at = [], 0
    for ws in windows:
        v = START_WEIGHT * flat[at] + flat[at + 1:at + len(ws)].sum(axis=0)
        out.append(v / (np.linalg.norm(v) or 1.0))
        at += len(ws)
    return np.asarray(out, dtype=np.float32).reshape(len(texts), -1) if out else flat


@dataclass
class Example:
    """A labelled document as the classifier keeps it: its category and vector."""
    category: str
    vector: np.ndarray
    source: str = "examples"
    key: str = ""


class EmbeddingClassifier:
    """Evidence + learnt model over any embedder with `embed(texts) -> unit vectors`."""

    name = "embedding"

    def __init__(self, embedder, categories: list[Category], threshold: float,
                 model: ClassifierModel | None = None, examples: list[Example] | None = None):
        self.embedder = embedder
        self.categories = categories
        self.names = [c.name for c in categories]
        self.threshold = threshold
        self.model = model or ClassifierModel.load()
        texts, owners = [], []
        for index, cat in enumerate(categories):
            for text in [cat.description, *cat.examples]:
                texts.append(text)
                owners.append(index)
        self.prototypes = embedder.embed(texts)  # (n_prototypes, dim), unit length
        self.owners = np.asarray(owners)
        self.set_examples(examples or [])

    def set_examples(self, examples: list[Example]) -> None:
        known = [e for e in examples if e.category in self.names]
        self.examples = known
        self.example_vectors = np.stack([e.vector for e in known]) if known else None
        self.example_owners = np.asarray([self.names.index(e.category) for e in known])

    def _nearest(self, vector: np.ndarray, vectors: np.ndarray, owners: np.ndarray) -> np.ndarray:
        sims = vectors @ vector
        best = np.full(len(self.categories), -1.0)
        np.maximum.at(best, owners, sims)
        return best

    def evidence(self, vector: np.ndarray, text: str, group: str) -> np.ndarray:
        """(categories, len(EVIDENCE)): the model's inputs for one document."""
        ev = np.zeros((len(self.categories), len(EVIDENCE)))
        ev[:, 0] = SIMILARITY_SCALE * self._nearest(vector, self.prototypes, self.owners)
        lowered = fold(" ".join(join_letter_spaced(text[:CUE_WINDOW * 2]).split()))
        head, window = lowered[:TITLE_WINDOW], lowered[:CUE_WINDOW]
        lines = opening_lines(text)
        # The kind a document names first is its own; one it names later is more often a reference
        # ("RECEIPT NO: REC-1 ... Payment for Invoice INV-1", minutes that mention "the report").
        titled = {i: at for i, cat in enumerate(self.categories) for at in [cat.title_words.first(head)] if at is not None}
        earliest = min(titled.values(), default=None)
        for i, cat in enumerate(self.categories):
            if i in titled:
                ev[i, 1] = 1.0 if titled[i] == earliest else LATER_TITLE
            elif cat.opening_words and opens_a_line(lines, cat.opening_words):
                ev[i, 1] = 1.0
            ev[i, 2] = min(len(cat.cue_words.found(window)), CUE_CAP) / CUE_CAP
        prior = self.model.prior(group, self.names)
        # A user's category that names this format (`formats:`) and that the model does not know is
        # raised as much as the model's likeliest category for the format is above an average one
        # (a .pptx: presentation's odds).
        table = list((self.model.format_prior.get(group) or {}).values())
        lift = max(table) * len(table) if table else 1.0
        for i, cat in enumerate(self.categories):
            if group in cat.format_groups and cat.name not in self.model.categories:
                prior[i] *= lift
        ev[:, 3] = np.log(prior / prior.sum())
        if self.example_vectors is not None:
            nearest = self._nearest(vector, self.example_vectors, self.example_owners)
            ev[:, 4] = example_evidence(nearest, self.model.example_floor)  # a category without examples: 0
        return ev

    def probabilities(self, doc: Document, vector: np.ndarray | None = None) -> np.ndarray:
        if vector is None:
            vector = document_vectors(self.embedder, [doc.text])[0]
        group = format_group(doc.filename or (doc.paths[0] if doc.paths else ""), doc.mime, doc.pages,
                             doc.converter, len(doc.text or ""), doc.landscape, ocr_page_count(doc.text))
        evidence = self.evidence(vector, doc.text or "", group)
        use_examples = self.example_vectors is not None
        scores = self.model.scores(evidence, shape_features(doc.text or "", doc.pages), self.names,
                                   with_examples=use_examples)
        probs = softmax(scores)
        if use_examples:
            sims = self.example_vectors @ vector
            nearest = int(np.argmax(sims))
            if sims[nearest] >= NEAR_DUPLICATE:
                # A labelled example that is the same document in all but details (another week's
                # minutes, a re-export): the user's label decides, at least as sure as the cosine.
                owner = int(self.example_owners[nearest])
                share = max(float(probs[owner]), float(sims[nearest]))
                rest = probs.sum() - probs[owner]
                probs = probs * ((1.0 - share) / rest if rest > 0 else 0.0)
                probs[owner] = share
        return probs

    def classify(self, doc: Document) -> tuple[str, float]:
        probs = self.probabilities(doc)
        best = int(np.argmax(probs))
        confidence = round(float(probs[best]), 4)
        if confidence < self.threshold:
            return OTHER, confidence
        return self.categories[best].name, confidence
