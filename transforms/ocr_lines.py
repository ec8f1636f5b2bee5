"""Text recognition of a page's lines, several short lines per recognizer call.

rapidocr's recognizer reads a line scaled to 48 px high and at least 320 px wide: a shorter line (a
word, an amount, a form label; 70 % of the lines of the real text-less pages) is padded to 320 px,
and the model's cost grows with the width it reads, padding included. Here consecutive short lines
(in the detector's reading order) are laid side by side on one canvas, separated by a gap of their
own background, and read in one call; the recognizer's output has one step per 8 px of width, so
each character it emits is given back to the line under it. Lines at least LONG_LINE wide are read
alone, exactly as rapidocr reads them.

The decoding is rapidocr's CTC decoding (its CTCLabelDecode, rapidocr pinned in requirements.txt):
per step the most likely symbol, repeats collapsed, blanks dropped; a line's score is the mean
probability of its characters, rounded as rapidocr rounds it.
"""

from __future__ import annotations

import math

import numpy as np

HEIGHT = 48           # the recognizer's input height (rapidocr's Rec.rec_img_shape)
LONG_LINE = 320       # rapidocr's minimum width: a line at least this wide fills a call of its own
# Short lines are packed while their canvas stays within this width: the width a short line is read
# at anyway, so a call costs what it did and reads more. 640 px saved no more time on the real pages
# and changed three times as many of their words (more neighbours, more context: dates misread).
CANVAS_WIDTH = 320
GAP = 24              # px of background between two packed lines: three of the recognizer's steps
STRIDE = 8            # px of input width per step of the recognizer's output


def normalized_line(crop: np.ndarray) -> np.ndarray:
    """A line crop (h, w, 3, uint8) as the recognizer reads it: (3, 48, w'), values in [-1, 1],
    scaled as rapidocr scales a line it reads alone."""
    import cv2

    h, w = crop.shape[:2]
    scaled = HEIGHT * w / float(h)
    # rapidocr rounds a line that fits its 320 px up, a longer one (whose width sets the input's) down
    width = max(1, math.ceil(scaled) if math.ceil(scaled) <= LONG_LINE else int(scaled))
    resized = cv2.resize(crop, (width, HEIGHT)).astype(np.float32)
    return (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5


def pack(widths: list[int], long_line: int = LONG_LINE, canvas_width: int = CANVAS_WIDTH,
         gap: int = GAP) -> list[list[int]]:
    """Groups of line indices, in order, each read in one call: a long line alone; consecutive
    short lines together while the canvas (lines and gaps) fits canvas_width."""
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, width in enumerate(widths):
        if width >= long_line:
            if current:
                groups.append(current)
                current, used = [], 0
            groups.append([i])
            continue
        if current and used + gap + width <= canvas_width:
            current.append(i)
            used += gap + width
        else:
            if current:
                groups.append(current)
            current, used = [i], width
    if current:
        groups.append(current)
    return groups


def canvas(lines: list[np.ndarray], gap: int = GAP) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The lines side by side on one (3, 48, W) canvas, W at least LONG_LINE; returns it and each
    line's [start, end) in px. Gaps hold the two neighbours' background (each line's median per
    channel: text covers the smaller part of a line); the right end is padded with zeros, as
    rapidocr pads a short line."""
    width = sum(line.shape[2] for line in lines) + gap * (len(lines) - 1)
    out = np.zeros((3, HEIGHT, max(width, LONG_LINE)), dtype=np.float32)
    spans = []
    x = 0
    # (a line read alone has no gap: most calls, so its median is not computed)
    backgrounds = [np.median(line.reshape(3, -1), axis=1) for line in lines] if len(lines) > 1 else []
    for i, line in enumerate(lines):
        if i:
            fill = (backgrounds[i - 1] + backgrounds[i]) / 2
            out[:, :, x:x + gap] = fill[:, None, None]
            x += gap
        out[:, :, x:x + line.shape[2]] = line
        spans.append((x, x + line.shape[2]))
        x += line.shape[2]
    return out, spans


def decode(preds: np.ndarray, characters: list[str], spans: list[tuple[int, int]],
           stride: int = STRIDE) -> list[tuple[str, float]]:
    """(text, score) of each span from one canvas's recognizer output (steps, symbols): every
    emitted character goes to the span under its step's centre (see _owner); a packed line's text
    is stripped of spaces at its ends."""
    index = preds.argmax(axis=1)
    prob = preds.max(axis=1)
    keep = np.ones(len(index), dtype=bool)
    keep[1:] = index[1:] != index[:-1]
    keep &= index != 0  # CTC blank
    chars: list[list[str]] = [[] for _ in spans]
    confs: list[list[float]] = [[] for _ in spans]
    for step in np.flatnonzero(keep):
        centre = (step + 0.5) * stride
        owner = _owner(centre, spans)
        if owner is None:
            continue
        chars[owner].append(characters[index[step]])
        confs[owner].append(round(float(prob[step]), 5))
    results = []
    for text_chars, conf in zip(chars, confs):
        text = "".join(text_chars)
        results.append((text.strip() if len(spans) > 1 else text,
                        float(np.round(np.mean(conf), 5)) if conf else 0.0))
    return results


def _owner(x: float, spans: list[tuple[int, int]]) -> int | None:
    """The span under x; None in a gap between spans (what is read there is no line's: the gap's
    edges read as a stray '.', ':' or '-'); past the last span (rapidocr's padding), the last."""
    for i, (start, end) in enumerate(spans):
        if x < end:
            return i if x >= start else None
    return len(spans) - 1


def recognize(session, characters: list[str], crops: list[np.ndarray],
              canvas_width: int = CANVAS_WIDTH) -> list[tuple[str, float]]:
    """(text, score) per crop, in the crops' order. `session(batch)` is the recognizer's model
    ((1, 3, 48, W) in, (1, steps, symbols) out); `characters` its symbols, blank first."""
    results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
    # a degenerate (empty) box reads nothing
    readable = [i for i, crop in enumerate(crops) if crop.shape[0] and crop.shape[1]]
    lines = [normalized_line(crops[i]) for i in readable]
    for group in pack([line.shape[2] for line in lines], canvas_width=canvas_width):
        image, spans = canvas([lines[k] for k in group])
        preds = np.asarray(session(image[np.newaxis]))[0]
        for k, result in zip(group, decode(preds, characters, spans)):
            results[readable[k]] = result
    return results
