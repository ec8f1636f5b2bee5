"""Chunks that are not text are not embedded; identical chunks are embedded once (issue 19)."""
import base64
import collections
import glob
import os
import random

import pytest

from transforms.chunk_filter import DIGITS, ENCODED, FILLER, non_text_reason
from transforms.embed import Embedder
from transforms.records import Document

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus")
PROSE = ("The supplier shall deliver the goods within thirty days of the order. Payment is due within "
         "fourteen days of the invoice date; late payments bear interest at the statutory rate. ")


def _base64_lines(n_bytes: int, seed: int = 1) -> str:
    data = random.Random(seed).randbytes(n_bytes)
    encoded = base64.b64encode(data).decode()
    return "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


@pytest.mark.parametrize("text, reason", [
    (_base64_lines(3000), ENCODED),
    (random.Random(2).randbytes(600).hex(" ", 32), ENCODED),                 # hex dump, 64-digit words
    ("Content-Transfer-Encoding: base64\n\n" + _base64_lines(1500), ENCODED),  # a header line does not save it
    (" ".join(str(random.Random(3).randrange(10**6, 10**9)) for _ in range(80)), DIGITS),
    ("(10009001)(979002)(6009001)(428001)(189002)(199002)(55784002)(92566001)(85852003)" * 3, DIGITS),
    ("| | | | |\n|---|---|---|---|\n" * 30, FILLER),
    ("|" + "-" * 150 + "|\n| Kommentar, Bemerkungen: |" + " " * 80 + "|\n|" + "-" * 150 + "|", FILLER),
    ("." * 300 + "\n" + "_" * 200, FILLER),
    ("nan " * 60 + "Unnamed: 1 " * 10, FILLER),
    ("   \n\t  ", FILLER),
])
def test_non_text_is_recognised(text, reason):
    assert non_text_reason(text) == reason


@pytest.mark.parametrize("text", [
    PROSE * 3,
    "Donaudampfschifffahrtsgesellschaftskapitänsmütze und Rechtsschutzversicherungsgesellschaften " * 4,
    # a real table: numbers, but with their words
    "| Item | Qty | Unit price | Total |\n|---|---|---|---|\n" + "".join(
        f"| {item} | {q} | {p:.2f} | {q * p:.2f} |\n" for item, q, p in
        [("Design work", 12, 85.0), ("Printing", 500, 0.4), ("Delivery", 1, 35.0), ("Review", 3, 120.0)] * 3),
    # a few ids and a URL inside prose
    PROSE + "Reference 3f2a9c1e4b7d8a6f5e0c9b8a7d6e5f4c3b2a1908, see https://example.com/a/b?x=1. " + PROSE,
    "Total due: 1,234.56 EUR",                       # short and numeric: too little to judge, kept
    "Rechnung Nr. 2024-774 vom 29.02.2024, fällig am 30.03.2024. Betrag: 55.848,61 USD. " * 3,
    "日本語の文章はスペースで区切られていないが、テキストとして埋め込まれるべきである。" * 5,
    # docling's padded Markdown table: long rules, but a row of real words (from a real HTML file)
    "|" + "-" * 40 + "|" + "-" * 160 + "|\n| Donald Duck       | Cartoon character.          "
    "| [View PNG](https://en.wikipedia.org/wiki/Donald_Duck) |\n|" + "-" * 40 + "|",
])
def test_language_is_kept(text):
    assert non_text_reason(text) is None


def test_skipped_windows_do_not_use_up_the_chunk_cap(embedder):
    """An email's attachment first, its text after: the cap must be spent on the text."""
    text = _base64_lines(20000) + "\n\n" + PROSE * 20
    doc = Document(id="x", paths=["p"], text=text)
    stage = Embedder(embedder, chunk_tokens=200, chunk_overlap=32, max_chunks=4)
    skipped = stage.chunk(doc)
    assert skipped[ENCODED] > 20
    assert 1 <= len(doc.chunks) <= 4
    assert all("supplier" in c.text or "payment" in c.text.lower() for c in doc.chunks)
    assert [c.index for c in doc.chunks] == list(range(len(doc.chunks)))  # no gaps
    assert Embedder(embedder, 200, 32, 4, skip_non_text=False).chunk(doc) == collections.Counter()


def test_identical_chunks_are_embedded_once_and_all_stored(embedder):
    calls = []

    class Counting:
        name, dimension, max_tokens = embedder.name, embedder.dimension, embedder.max_tokens
        token_offsets = staticmethod(embedder.token_offsets)

        def embed(self, texts):
            calls.append(list(texts))
            return embedder.embed(texts)

    a = Document(id="a", paths=["a"], text="Page footer: ACME Corp, confidential.")
    b = Document(id="b", paths=["b"], text=PROSE)
    stage = Embedder(Counting(), 200, 32, 10)
    for d in (a, b):
        stage.chunk(d)
    a.chunks.append(type(a.chunks[0])(index=1, text=a.chunks[0].text, start_token=0))  # the footer twice
    reused = stage.embed_batch([a, b])
    assert reused == 1
    assert len(calls) == 1 and len(calls[0]) == 2
    assert all(c.vector is not None for c in a.chunks + b.chunks)
    assert (a.chunks[0].vector == a.chunks[1].vector).all()


def _real_texts(pattern: str) -> list[str]:
    paths = sorted(glob.glob(os.path.join(CORPUS, pattern)))
    if not paths:
        pytest.skip(f"no real documents at {CORPUS}/{pattern} (the shared corpus is not on this machine)")
    return [open(p, encoding="utf-8", errors="replace").read()[:300000] for p in paths]


def test_real_emails_lose_their_attachments_not_their_text(embedder):
    """The raw .eml files of the labelled corpus: base64 parts are skipped, the messages are kept."""
    stage = Embedder(embedder, 200, 32, 100000)
    skipped, kept = collections.Counter(), 0
    for text in _real_texts("labeled/email__*.eml"):
        doc = Document(id="x", paths=["p"], text=text)
        skipped.update(stage.chunk(doc))
        kept += len(doc.chunks)
        assert all(non_text_reason(c.text) is None for c in doc.chunks)
    assert skipped[ENCODED] >= 20 and kept >= 50


def test_real_prose_is_never_skipped(embedder):
    """Contracts, reports, letters of the labelled corpus in Markdown and plain text (several
    languages): no chunk of them is taken for non-text."""
    stage = Embedder(embedder, 200, 32, 100000)
    texts = _real_texts("labeled/*.md") + _real_texts("labeled/*.txt")
    total, skipped = 0, collections.Counter()
    for text in texts:
        doc = Document(id="x", paths=["p"], text=text)
        skipped.update(stage.chunk(doc))
        total += len(doc.chunks)
    assert total > 100
    assert sum(skipped.values()) == 0, skipped


def test_embed_step_counts_what_it_skipped():
    """The Beam step reports skipped and repeated chunks as metrics, and the run summary shows them."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipeline.metrics import beam_stage_metrics
    from pipeline.run import _chunk_line
    from transforms.config import StageConfig
    from transforms.dofns import EmbedDocuments

    docs = [Document(id="a", paths=["a.eml"], text=PROSE * 5 + "\n\n" + _base64_lines(6000)),
            Document(id="b", paths=["b.txt"], text=PROSE), Document(id="c", paths=["c.txt"], text=PROSE)]
    p = TestPipeline(runner="FnApiRunner")
    _ = (p | beam.Create([docs]) | beam.ParDo(EmbedDocuments(StageConfig(embed_precision="fp32"))))
    result = p.run()
    result.wait_until_finish()
    counters = beam_stage_metrics(result)["counters"]
    assert counters["chunks_skipped_encoded"] >= 10
    assert counters["chunks_deduplicated"] == 1      # c repeats b
    assert counters["chunks_embedded"] >= 3
    line = _chunk_line(counters)[0]
    assert f"{counters['chunks_embedded']} stored" in line and "encoded" in line and "1 repeats" in line
