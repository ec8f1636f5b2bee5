"""Which chunks are not worth an embedding: text a reader would never search for.

Embedding is the costliest stage of a CPU run, and real inputs carry a lot of text that is not
language: base64 attachments of emails (a third of all chunks in the real-corpus run of issue 19),
hex dumps, columns of numbers, and empty table cells that docling renders as runs of `|` and `-`.
Their vectors land near each other and near nothing a user types, so they cost time and pollute
the nearest-neighbour results. The document's text (full-text search) keeps them all; only the
chunk is not embedded.

`non_text_reason(text)` is cheap (one pass over the characters, no regex backtracking) and returns
the reason a chunk is skipped, or None to embed it. The thresholds are deliberately conservative:
a chunk is dropped only when it is mostly (not partly) such material.
"""
from __future__ import annotations

ENCODED = "encoded"   # base64 / hex / uuencoded blobs
DIGITS = "digits"     # long runs of digits: serial listings, numeric dumps
FILLER = "filler"     # table filler and repetition: `| | |`, `-----`, `nan nan nan`
REASONS = (ENCODED, DIGITS, FILLER)

_BLOB_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
_MIN_BLOB_WORD = 24        # base64 lines are 64-76 characters; real words this long are rare
_BLOB_SHARE = 0.5          # share of the chunk's visible characters inside blob words
_DIGIT_SHARE = 0.85        # digits among letters + digits
_MIN_ALNUM = 40            # too little to judge below this
_ALNUM_SHARE = 0.25        # letters + digits among visible characters, below this: filler ...
_MAX_FILLER_WORDS = 5      # ... unless it holds this many words (docling pads table cells with
                           # long `-----` rules: a table row of real words among them is kept)
_MIN_WORDS_REPEAT = 40
_DISTINCT_SHARE = 0.12     # distinct words among words, below this: repetition


def _is_blob_word(word: str) -> bool:
    """A long token of the base64/hex alphabet holding both letters and digits (base64 of any
    binary has both in every line; a long natural word has no digits)."""
    if len(word) < _MIN_BLOB_WORD or not _BLOB_CHARS.issuperset(word):
        return False
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def non_text_reason(text: str) -> str | None:
    """ENCODED, DIGITS or FILLER when the chunk is mostly that; None when it should be embedded."""
    words = text.split()
    visible = sum(len(w) for w in words)
    if not visible:
        return FILLER
    if sum(len(w) for w in words if _is_blob_word(w)) >= _BLOB_SHARE * visible:
        return ENCODED
    letters = digits = 0
    for ch in text:
        if ch.isdigit():
            digits += 1
        elif ch.isalpha():
            letters += 1
    alnum = letters + digits
    if alnum >= _MIN_ALNUM and digits >= _DIGIT_SHARE * alnum:
        return DIGITS
    if visible >= _MIN_ALNUM and alnum < _ALNUM_SHARE * visible:
        words_with_letters = sum(1 for w in words if sum(c.isalpha() for c in w) >= 2)
        if words_with_letters < _MAX_FILLER_WORDS:
            return FILLER
    if len(words) >= _MIN_WORDS_REPEAT and len(set(words)) < _DISTINCT_SHARE * len(words):
        return FILLER
    return None
