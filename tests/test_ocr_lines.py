"""Short OCR lines read several to a recognizer call (transforms/ocr_lines.py): packing, decoding,
and the real rapidocr recognizer reading packed words as it reads them one by one."""
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.test_ocr import _Widths
from transforms import ocr_lines
from transforms.config import StageConfig
from transforms.convert import Converter

CHARACTERS = ["blank", "a", "b", "c", "1", "2", " "]


def test_short_lines_are_packed_in_order_and_long_lines_read_alone():
    widths = [100, 120, 60, 400, 50, 300, 280]
    # 100 + 24 + 120 = 244 fits 320, + 24 + 60 = 328 does not; 400 is long; 50 and 300 do not fit together
    assert ocr_lines.pack(widths, canvas_width=320, gap=24) == [[0, 1], [2], [3], [4], [5], [6]]
    assert ocr_lines.pack([40, 40, 40], canvas_width=320, gap=24) == [[0, 1, 2]]
    assert ocr_lines.pack([]) == []


def _preds(symbols: list[int], confidence: float = 0.9) -> np.ndarray:
    """Recognizer output whose most likely symbol at each step is the given one."""
    out = np.full((len(symbols), len(CHARACTERS)), (1 - confidence) / (len(CHARACTERS) - 1), dtype=np.float32)
    out[np.arange(len(symbols)), symbols] = confidence
    return out


def test_each_character_goes_to_the_line_under_it_and_gaps_read_nothing():
    # steps of 8 px; line one over px 0-40 (steps 0-4), a gap over 40-64 (5-7), line two over 64-112 (8-13)
    spans = [(0, 40), (64, 112)]
    steps = [1, 1, 0, 2, 0,   4, 4, 0,   3, 0, 3, 5, 6, 5,   1]  # last step: past both, rapidocr's padding
    texts = ocr_lines.decode(_preds(steps), CHARACTERS, spans)
    # "a" once (a repeat collapses), "b"; the "1" read in the gap belongs to no line; "c", "c" (a blank
    # between), "2", " ", "2", and the padding's "a" goes to the last line
    assert [t for t, _ in texts] == ["ab", "cc2 2a"]
    assert texts[0][1] == pytest.approx(0.9)


def test_a_line_read_alone_is_decoded_as_rapidocr_decodes_it():
    texts = ocr_lines.decode(_preds([0, 6, 1, 0, 0]), CHARACTERS, [(0, 40)])
    assert texts == [(" a", pytest.approx(0.9))]  # alone: nothing stripped, as rapidocr gives it
    assert ocr_lines.decode(_preds([0, 0, 0]), CHARACTERS, [(0, 24)]) == [("", 0.0)]


def _word_crop(text: str) -> np.ndarray:
    font = ImageFont.load_default(size=30)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 16, bottom - top + 16), "white")
    ImageDraw.Draw(image).text((8 - left, 8 - top), text, fill="black", font=font)
    return np.asarray(image)


def test_the_real_recognizer_reads_packed_words_as_it_reads_them_alone():
    """rapidocr's recognizer (the converter's, one thread) on short words and amounts: packed two or
    three to a call, each reads as rapidocr reads it alone, in fewer calls."""
    engine = Converter(StageConfig(model_threads=1)).ocr
    recognizer = engine._load_rec_model()
    words = ["Total", "42.50", "EUR", "Invoice", "2024-0042", "Date:", "12.03.2025"]
    crops = [_word_crop(w) for w in words]
    alone = list(engine.recognize_txt(crops).txts)
    calls = _Widths(recognizer.session)
    packed = ocr_lines.recognize(calls, recognizer.postprocess_op.character, crops)
    assert [t for t, _ in packed] == alone
    assert alone == words  # the crops are clean: both read every character
    assert len(calls.widths) < len(words)
    assert all(score > 0.8 for _, score in packed)
    # a degenerate (empty) crop among them reads nothing and moves nothing
    with_empty = crops[:2] + [np.zeros((0, 5, 3), dtype=np.uint8)] + crops[2:]
    read = ocr_lines.recognize(recognizer.session, recognizer.postprocess_op.character, with_empty)
    assert [t for t, _ in read] == words[:2] + [""] + words[2:]
