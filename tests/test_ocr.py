"""OCR of scans with the real rapidocr models (transforms/convert.py: _run_ocr and its settings)."""
import io
import json
import os

import pytest
from PIL import Image, ImageDraw, ImageFont

from bench import corpus
from bench.ocr_speed import _true_text, word_recall
from tests import docs
from tests.docs import convert
from transforms.config import StageConfig
from transforms import convert as cv
from transforms.convert import (OCR_DET_INT8_FILE, OCR_MAX_SIDE, OCR_REC_INT8_FILE, Converter,
                                is_blank, ocr_rec_input_width, resolve_ocr_detector, resolve_ocr_recognizer,
                                resolve_ocr_runtime)

LINES = ["Invoice number 2024-0042 for consulting services rendered",
         "Payment is due within thirty days of the invoice date",
         "Thank you for your business and your prompt payment"]


@pytest.fixture(scope="module")
def converter():
    return Converter(StageConfig(model_threads=1))  # one thread, as each of 2 workers on 2 cores


def png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("index", [197, 293])
def test_generated_scans_read_nearly_every_word(converter, index):
    """Two scans of the generated corpus (seed 7) whose long upright lines the per-line orientation
    classifier used to flip (62 % and 68 % of their words read); orientation is now decided per page."""
    rel, data, row = corpus.generate_document(index, 7)
    assert row["format"] in ("png", "scanned_pdf")
    doc = convert(converter, rel, data)
    truth, _ = _true_text(index, 7)
    found, total = word_recall(truth, doc.text)
    assert found / total >= 0.95, (found, total, doc.text)


class _Widths:
    """Records the input widths a recognizer session is called with (the real session answers)."""

    def __init__(self, session):
        self.session, self.widths = session, []

    def __call__(self, batch):
        self.widths.append(batch.shape[-1])
        return self.session(batch)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_both_ocr_runtimes_read_the_generated_scans(runtime):
    """--ocr-runtime: the recognizer on ONNX Runtime, or on OpenVINO (bfloat16 where the CPU has it,
    float32 elsewhere) from the same ONNX file, each reading two generated scans; OpenVINO's model
    is given lines in width steps (it keeps buffers per input shape)."""
    converter = Converter(StageConfig(model_threads=1, ocr_runtime=runtime))
    recognizer = converter.ocr._load_rec_model()
    if runtime == "openvino":
        assert type(recognizer.session._session).__name__ == "OpenVINOInferSession"
        # not pinned to a core: every process would pin to the same one (two converters, one core)
        compiled = recognizer.session._session.session.get_compiled_model()
        assert compiled.get_property("ENABLE_CPU_PINNING") is False
        recorder = recognizer.session._session = _Widths(recognizer.session._session)
    else:
        assert type(recognizer.session).__name__ == "OrtInferSession"
        recorder = recognizer.session = _Widths(recognizer.session)
    _reads_two_generated_scans(converter, runtime)
    assert recorder.widths
    if runtime == "openvino":
        assert all(w == ocr_rec_input_width(w) for w in recorder.widths), recorder.widths
    else:
        assert any(w != ocr_rec_input_width(w) for w in recorder.widths)  # exact widths, as before


def _reads_two_generated_scans(converter, setting: str) -> None:
    """At least 95 % of the true words of two generated scans (seed 7) in what `converter` reads."""
    for index in (197, 293):
        rel, data, _ = corpus.generate_document(index, 7)
        found, total = word_recall(_true_text(index, 7)[0], convert(converter, rel, data).text)
        assert found / total >= 0.95, (setting, index, found, total)


def test_lines_are_padded_to_a_few_widths():
    """OpenVINO keeps buffers per input width: 64 px steps up to 640 px, 128 up to 1,280, 256 beyond,
    never narrower than the line."""
    assert [ocr_rec_input_width(w) for w in (320, 321, 640, 641, 1280, 1281, 2100)] == \
        [320, 384, 640, 768, 1280, 1536, 2304]
    widths = {ocr_rec_input_width(w) for w in range(320, 2049)}
    assert len(widths) == 14
    assert all(ocr_rec_input_width(w) >= w and ocr_rec_input_width(w) - w < 256 for w in range(1, 5000))


def test_the_ocr_runtime_follows_the_cpu(monkeypatch):
    from transforms.backends import minilm

    monkeypatch.setattr(minilm, "cpu_info", lambda: ("some CPU", frozenset({"avx2", "avx512_bf16"})))
    assert resolve_ocr_runtime("auto") == "openvino"
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("Intel Xeon", frozenset({"amx_bf16", "amx_int8"})))
    assert resolve_ocr_runtime("auto") == "openvino"
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("older CPU", frozenset({"avx2", "avx512_vnni"})))
    assert resolve_ocr_runtime("auto") == "onnxruntime"  # float32 on OpenVINO is no faster
    assert resolve_ocr_runtime("auto", "int8") == "openvino"  # the int8 recognizer is OpenVINO's
    assert resolve_ocr_runtime("openvino") == "openvino"  # asked for: also without bfloat16 (then float32)
    with pytest.raises(ValueError, match="unknown OCR runtime"):
        resolve_ocr_runtime("tesseract")
    # Without the openvino package (installed by requirements.txt): auto falls back, a request fails.
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real_find_spec(name, *a))
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("some CPU", frozenset({"avx512_bf16"})))
    assert resolve_ocr_runtime("auto") == "onnxruntime"
    with pytest.raises(ValueError, match="openvino package is not installed"):
        resolve_ocr_runtime("openvino")


@pytest.mark.parametrize("detector", ["int8", "fp32"])
def test_both_ocr_detectors_read_the_generated_scans(detector):
    """--ocr-detector: the int8 copy of rapidocr's detector (bench/quantize_ocr_detector.py, calibrated
    on another seed's scans) or rapidocr's float32 one, each finding the lines of two generated scans."""
    converter = Converter(StageConfig(model_threads=1, ocr_detector=detector))
    session = converter.ocr._load_det_model().session.session  # the ONNX Runtime session rapidocr made
    int8_file = os.path.samefile(session._model_path, OCR_DET_INT8_FILE)
    assert int8_file == (detector == "int8")
    _reads_two_generated_scans(converter, detector)


def test_the_int8_detector_is_the_file_its_provenance_names():
    with open(cv.OCR_DET_INT8_PROVENANCE, encoding="utf-8") as f:
        provenance = json.load(f)
    assert cv.file_sha256(OCR_DET_INT8_FILE) == provenance["sha256"]  # remade: its .json too
    assert cv.file_sha256(cv.ocr_detector_source()) == provenance["source_sha256"]  # rapidocr's, as pinned


def test_the_ocr_detector_follows_the_cpu_and_its_source(monkeypatch, caplog):
    from transforms.backends import minilm

    monkeypatch.setattr(minilm, "cpu_info", lambda: ("AMD EPYC", frozenset({"avx2", "avx512_vnni"})))
    assert resolve_ocr_detector("auto") == "int8"
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("Intel Xeon", frozenset({"amx_bf16", "amx_int8"})))
    assert resolve_ocr_detector("auto") == "int8"
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("older CPU", frozenset({"avx2", "fma"})))
    assert resolve_ocr_detector("auto") == "fp32"  # int8 without VNNI may saturate, and gains less
    assert resolve_ocr_detector("int8") == "int8"  # asked for
    assert resolve_ocr_detector("fp32") == "fp32"
    with pytest.raises(ValueError, match="unknown OCR detector"):
        resolve_ocr_detector("fp16")
    # A rapidocr whose detector is not the one the copy was made from: float32, said once in the log.
    monkeypatch.setattr(cv, "ocr_detector_source", lambda: __file__)
    cv._int8_detector_matches.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="transforms.convert"):
            assert resolve_ocr_detector("int8") == "fp32"
        assert "made from another rapidocr detector" in caplog.text
    finally:
        monkeypatch.undo()
        cv._int8_detector_matches.cache_clear()


@pytest.mark.parametrize("recognizer", ["int8", "float"])
def test_both_ocr_recognizers_read_the_generated_scans(recognizer):
    """--ocr-recognizer: the int8 copy of rapidocr's recognizer (bench/quantize_ocr_recognizer.py,
    calibrated on another seed's scans; OpenVINO runs it) or rapidocr's own, each reading the words
    of two generated scans."""
    converter = Converter(StageConfig(model_threads=1, ocr_runtime="openvino", ocr_recognizer=recognizer))
    model = converter.ocr._load_rec_model().session._session.model  # the OpenVINO model rapidocr read
    assert any(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) == (recognizer == "int8")
    _reads_two_generated_scans(converter, recognizer)


def test_the_int8_recognizer_is_the_files_its_provenance_names():
    with open(cv.OCR_REC_INT8_PROVENANCE, encoding="utf-8") as f:
        provenance = json.load(f)
    for path, key in ((OCR_REC_INT8_FILE, "xml_sha256"), (OCR_REC_INT8_FILE.replace(".xml", ".bin"), "bin_sha256")):
        assert cv.file_sha256(path) == provenance[key]  # remade: its .json too
    assert cv.file_sha256(cv.ocr_recognizer_source()) == provenance["source_sha256"]  # rapidocr's, as pinned


def test_the_int8_ocr_recognizer_is_asked_for_and_checked_against_its_source(monkeypatch, caplog):
    from transforms.backends import minilm

    monkeypatch.setattr(minilm, "cpu_info", lambda: ("AMD EPYC", frozenset({"avx512_bf16", "avx512_vnni"})))
    assert resolve_ocr_recognizer("float", "openvino") == "float"
    assert resolve_ocr_recognizer("int8", "openvino") == "int8"
    assert resolve_ocr_recognizer("auto", "openvino") == "int8"  # OpenVINO runs it, VNNI: the default
    assert resolve_ocr_recognizer("auto", "onnxruntime") == "float"  # the copy is an OpenVINO model
    with pytest.raises(ValueError, match="runs on OpenVINO"):
        resolve_ocr_recognizer("int8", "onnxruntime")
    with pytest.raises(ValueError, match="unknown OCR recognizer"):
        resolve_ocr_recognizer("bf16", "openvino")
    # int8 dot products are what the copy is fast with: without VNNI auto keeps float
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("some CPU", frozenset({"avx512_bf16", "avx2"})))
    assert resolve_ocr_recognizer("auto", "openvino") == "float"
    monkeypatch.setattr(minilm, "cpu_info", lambda: ("AMD EPYC", frozenset({"avx512_bf16", "avx512_vnni"})))
    # A rapidocr whose recognizer is not the one the copy was made from: float, said in the log.
    monkeypatch.setattr(cv, "ocr_recognizer_source", lambda: __file__)
    cv.int8_recognizer_matches.cache_clear()
    cv._warn_once.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="transforms.convert"):
            assert resolve_ocr_recognizer("int8", "openvino") == "float"
            assert resolve_ocr_recognizer("auto", "openvino") == "float"
        assert "made from another rapidocr recognizer" in caplog.text
    finally:
        monkeypatch.undo()
        cv.int8_recognizer_matches.cache_clear()
        cv._warn_once.cache_clear()


def test_upside_down_scan_reads_right_and_in_order(converter):
    image = docs.text_image("\n".join(LINES), size=(1240, 400)).rotate(180)
    text = convert(converter, "upside-down.png", png(image)).text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 3
    for got, want in zip(lines, LINES):
        assert got.split() == want.split()


def jpeg(image, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation  # EXIF Orientation
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def test_a_photo_is_read_the_way_its_exif_turns_it(converter):
    """A phone stores a photo as its sensor saw it (here a quarter turned) and says in EXIF
    (Orientation 6: turn 90 degrees clockwise) how to show it: read upright, lines in order."""
    upright = docs.text_image("\n".join(LINES), size=(1240, 400))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    assert cv.load_image_for_ocr(jpeg(stored, orientation=6)).size == upright.size
    lines = [line for line in convert(converter, "photo.jpg", jpeg(stored, orientation=6)).text.splitlines()
             if line.strip()]
    assert [line.split() for line in lines] == [want.split() for want in LINES]


def tiff(pages) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
    return buffer.getvalue()


def test_every_page_of_a_multi_page_tiff_is_read(converter):
    """A fax or a scanner's batch is one TIFF of several pages: each is read, in order, as a PDF's
    text-less pages are (a blank one adds nothing), and the document has that many pages."""
    pages = [docs.text_image(LINES[0], size=(1240, 300)), Image.new("RGB", (1240, 300), "white"),
             docs.text_image(LINES[2], size=(1240, 300))]
    doc = convert(converter, "fax.tif", tiff(pages))
    assert doc.pages == 3 and doc.converter == "ocr"
    assert doc.text.index(LINES[0]) < doc.text.index("page 3 (OCR)") < doc.text.index(LINES[2])
    assert "page 2" not in doc.text


def test_a_multi_page_tiff_is_read_up_to_the_ocr_page_limit():
    pages = [docs.text_image(line, size=(1240, 300)) for line in LINES]
    doc = convert(Converter(StageConfig(model_threads=1, ocr_max_pages=2)), "fax.tif", tiff(pages))
    assert doc.pages == 3
    assert LINES[0] in doc.text and LINES[1] in doc.text and LINES[2] not in doc.text


def test_a_gifs_frames_are_not_pages(converter):
    frames = [docs.text_image(LINES[0], size=(1240, 300)), docs.text_image(LINES[1], size=(1240, 300))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    doc = convert(converter, "animation.gif", buffer.getvalue())
    assert doc.pages == 1 and LINES[0] in doc.text and LINES[1] not in doc.text


@pytest.mark.parametrize("fmt,mime", [("HEIF", "image/heic"), ("AVIF", "image/avif")])
def test_heic_and_avif_photos_are_read(converter, fmt, mime):
    """An iPhone stores its photos as HEIC (read through pillow-heif, registered on the first such
    file); AVIF is Pillow's own."""
    if fmt == "HEIF":
        import pillow_heif  # requirements.txt; registered here only to write the test's file

        pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    docs.text_image("\n".join(LINES), size=(1240, 400)).save(buffer, fmt, quality=90)
    doc = convert(converter, "IMG_0042.photo", buffer.getvalue())
    assert doc.mime == mime and doc.converter == "ocr"
    for want in LINES:
        assert want in doc.text


def test_the_heif_plugin_is_loaded_by_the_first_heif_file_only(tmp_path):
    """In a fresh process (this one may have registered it already): reading a PNG leaves
    pillow-heif unloaded; a HEIC file loads it and opens."""
    import subprocess
    import sys

    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.new("RGB", (64, 32), "white").save(tmp_path / "photo.heic", "HEIF")
    Image.new("RGB", (64, 32), "white").save(tmp_path / "page.png", "PNG")
    script = ("import sys; from transforms.convert import open_image\n"
              f"open_image(open({str(tmp_path / 'page.png')!r}, 'rb').read()).load()\n"
              "assert 'pillow_heif' not in sys.modules\n"
              f"image = open_image(open({str(tmp_path / 'photo.heic')!r}, 'rb').read())\n"
              "print(image.format, image.size)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["HEIF", "(64,", "32)"]


def test_the_page_image_of_a_photo_is_turned_as_its_exif_says():
    """The first-page image a vision classifier looks at (transforms/page_image.py) is upright too."""
    from transforms.page_image import first_page_png

    stored = Image.new("RGB", (300, 800), "white")  # stored portrait, shown landscape
    shown = Image.open(io.BytesIO(first_page_png(jpeg(stored, orientation=6), "image", 1000)))
    assert shown.size == (800, 300)


def test_a_large_jpeg_is_decoded_at_a_reduced_size_and_read(converter):
    """A photo larger than OCR_MAX_SIDE is decoded by the JPEG decoder's own reduction (draft), then
    scaled to OCR_MAX_SIDE: the same size and text as a full decode would give."""
    image = Image.new("RGB", (OCR_MAX_SIDE * 2 + 200, 900), "white")
    draw = ImageDraw.Draw(image)
    for k, line in enumerate(LINES):
        draw.text((80, 120 + 220 * k), line, fill="black", font=ImageFont.load_default(size=96))
    data = jpeg(image)
    decoded = Image.open(io.BytesIO(data))
    decoded.draft(None, (OCR_MAX_SIDE, 430))
    assert decoded.size[0] < image.size[0]  # the decoder does reduce this file
    loaded = cv.load_image_for_ocr(data)
    assert max(loaded.size) == OCR_MAX_SIDE and loaded.size[1] == round(900 * OCR_MAX_SIDE / image.size[0])
    text = convert(converter, "large.jpg", data).text
    for want in LINES:
        assert want in text


@pytest.mark.parametrize("angle", [90, 270])
def test_a_page_turned_a_quarter_reads_its_lines_in_order(converter, angle):
    """A page scanned or photographed sideways: each line stands on end, and read as it is the lines
    came out in the order of the page's columns (1, 3, 2). Turned, they read as the page's lines."""
    image = docs.text_image("\n".join(LINES), size=(1240, 400)).rotate(angle, expand=True)
    lines = [line for line in convert(converter, "sideways.png", png(image)).text.splitlines() if line.strip()]
    assert [line.split() for line in lines] == [want.split() for want in LINES]


def test_a_turned_reading_that_reads_less_does_not_replace_the_pages_own(monkeypatch):
    """A page of vertical writing (Japanese, Chinese) also has its lines on end; turned, it reads
    with little confidence, and its own reading is kept."""
    converter = Converter(StageConfig(model_threads=1))
    image = docs.text_image("\n".join(LINES), size=(1240, 400)).rotate(90, expand=True)
    recognize = converter._recognize
    calls = []

    def turned_reads_badly(lines):
        calls.append(len(lines))
        return [("x?", 0.6)] if len(calls) == 1 else recognize(lines)  # the turned page is read first

    monkeypatch.setattr(converter, "_recognize", turned_reads_badly)
    text = convert(converter, "vertical.png", png(image)).text
    assert len(calls) == 2 and "x?" not in text
    assert all(want.split() in [line.split() for line in text.splitlines()] for want in LINES)


def test_transparent_image_reads_as_black_on_white(converter):
    """A PNG with a transparent background and black text (a figure): transparent is paper. Larger
    than OCR_MAX_SIDE, so it is also downscaled (a resize makes transparent pixels black)."""
    image = Image.new("RGBA", (OCR_MAX_SIDE + 400, 500), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((60, 200), "Positional Encoding of the input tokens",
                               fill=(0, 0, 0, 255), font=ImageFont.load_default(size=48))
    text = convert(converter, "figure.png", png(image)).text
    assert "Positional Encoding" in text


def test_blank_pages_are_recognised_and_text_pages_are_not():
    white = Image.new("L", (1190, 1684), 255)
    assert is_blank(white)
    specks = white.copy()
    for x in range(0, 1000, 100):  # dust: a few dark pixels
        specks.putpixel((x, 500), 0)
    assert is_blank(specks)
    assert is_blank(Image.new("RGB", (800, 600), (200, 200, 190)))  # grey paper
    assert not is_blank(docs.text_image("Page 2"))
    small = white.copy()
    ImageDraw.Draw(small).text((100, 100), "Signed: J. Smith", fill=0, font=ImageFont.load_default(size=14))
    assert not is_blank(small)
    dark = Image.new("L", (800, 600), 20)  # light text on a dark page
    ImageDraw.Draw(dark).text((50, 50), "Negative scan", fill=240, font=ImageFont.load_default(size=34))
    assert not is_blank(dark)


def test_blank_scanned_page_is_skipped_and_the_other_page_read(converter):
    from fpdf import FPDF

    pdf = FPDF()
    for image in (docs.text_image(""), docs.text_image("Annual report 2024\nRevenue grew by 12 percent")):
        pdf.add_page()
        pdf.image(image, x=0, y=0, w=210)
    doc = convert(converter, "two-pages.pdf", bytes(pdf.output()))
    assert "<!-- page 1 (OCR) -->" not in doc.text and "<!-- page 2 (OCR) -->" in doc.text
    assert "Revenue grew by 12 percent" in doc.text


def _docx_of_pictures(*images) -> bytes:
    """A Word file whose only content is pictures (a scanned letter pasted into it)."""
    import docx

    document = docx.Document()
    for image in images:
        document.add_picture(io.BytesIO(png(image)))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_an_office_document_of_pictures_is_read_by_ocr(converter):
    doc = convert(converter, "scanned-letter.docx",
                  _docx_of_pictures(docs.text_image(LINES[0]), docs.text_image(LINES[1])))
    assert doc.converter == "docling+ocr"
    assert "Invoice number 2024-0042" in doc.text and "thirty days" in doc.text
    assert doc.text.index("2024-0042") < doc.text.index("thirty days")  # pictures in their order


def test_an_office_document_with_text_is_not_ocred(converter):
    data = docs.docx_bytes("Minutes", ["The board met on Monday and approved the budget for next year."])
    doc = convert(converter, "minutes.docx", data)
    assert doc.converter == "docling"


def test_an_office_document_of_pictures_is_left_as_docling_gives_it_with_ocr_off():
    off = Converter(StageConfig(model_threads=1, ocr="off"))
    doc = convert(off, "scanned-letter.docx", _docx_of_pictures(docs.text_image(LINES[0])))
    assert doc.converter == "docling" and "2024-0042" not in doc.text
