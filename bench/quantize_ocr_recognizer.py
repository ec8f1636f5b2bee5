"""python -m bench.quantize_ocr_recognizer [--scans 30] [--seed 99] [--corpus DIR]

Makes transforms/models/ocr_rec_int8.xml + .bin, the int8 copy of rapidocr's packaged text
recognizer that OCR runs on OpenVINO (`--ocr-recognizer auto` takes it on CPUs with VNNI;
transforms/convert.py has the figures), and ocr_rec_int8.json beside it (what it was made from and how).

How: a generated corpus (`bench.corpus`, its own seed, so that none of the documents the OCR
figures are measured on is among them) is converted with the float recognizer, and every line the
recognizer reads on the first `--scans` scanned pages is kept as calibration data, as production
feeds it (48 px high, padded to one of a few widths: transforms.convert.ocr_rec_input_width; the
kept model was calibrated when those were every multiple of 64 px). NNCF's post-training
quantisation then makes the OpenVINO model: the "mixed" preset (symmetric int8 weights, asymmetric
activations) with the transformer model type (rapidocr's PP-OCRv6 recogniser ends in SVTR attention
blocks; that type keeps their softmax and normalisation in float). The same inputs give the same
weights (.bin, byte for byte; the .xml's generated layer names differ).

Needs NNCF, only to make the model (the pipeline runs the saved model with OpenVINO alone):
`pip install nncf==3.4.0`. Tried and not kept (docs/benchmarks.md): ONNX Runtime's static QDQ
quantisation, which on OpenVINO was slower than bfloat16 or read worse (spaces dropped between
amounts, digits split), and on ONNX Runtime no faster than OpenVINO's bfloat16; NNCF's default
preset without the transformer type (faster, but 13-26 % of the steps read differently).
"""
from __future__ import annotations

import argparse
import json
import os

from bench import calibration
from transforms import convert as cv
from transforms.config import StageConfig
from transforms.records import Document

NNCF_VERSION = "3.4.0"


def calibration_lines(corpus: str, scans: int) -> list:
    """The float recognizer's input tensors for every line of the first `scans` scanned pages."""
    converter = cv.Converter(StageConfig(model_threads=1, ocr_recognizer="float"))
    recognizer = converter.ocr._load_rec_model()  # private method of the pinned rapidocr
    caught = []
    padded = recognizer.session  # production's _WidthInSteps around the session
    inner = padded._session

    def keep(tensor):
        caught.append(tensor.copy())
        return inner(tensor)

    padded._session = keep
    with open(os.path.join(corpus, "truth.jsonl"), encoding="utf-8") as truth:
        scanned = [row["file"] for row in map(json.loads, truth) if row["format"] in ("png", "scanned_pdf")]
    if len(scanned) < scans:
        raise SystemExit(f"only {len(scanned)} scanned pages in {corpus}; need {scans}")
    for name in scanned[:scans]:
        path = os.path.join(corpus, name)
        with open(path, "rb") as f:
            converter.convert(Document(id=name, paths=[path], filename=os.path.basename(path)), f.read())
    return caught


def quantize(lines: list, out: str) -> None:
    try:
        import nncf
    except ImportError:
        raise SystemExit(f"making the int8 recognizer needs NNCF: pip install nncf=={NNCF_VERSION} "
                         "(the pipeline itself does not)") from None
    import openvino as ov

    model = ov.Core().read_model(cv.ocr_recognizer_source())
    quantized = nncf.quantize(model, nncf.Dataset(lines), subset_size=len(lines),
                              preset=nncf.QuantizationPreset.MIXED, model_type=nncf.ModelType.TRANSFORMER)
    ov.save_model(quantized, out, compress_to_fp16=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    calibration.add_arguments(parser, "scanned pages whose lines calibrate it")
    args = parser.parse_args(argv)
    lines = calibration.collect(args, calibration_lines)
    out = cv.OCR_REC_INT8_FILE
    os.makedirs(os.path.dirname(out), exist_ok=True)
    quantize(lines, out)
    import nncf
    import openvino as ov

    widths = sorted({t.shape[-1] for t in lines})
    provenance = {
        "source": os.path.basename(cv.ocr_recognizer_source()),
        "source_sha256": cv.file_sha256(cv.ocr_recognizer_source()),
        "xml_sha256": cv.file_sha256(out),
        "bin_sha256": cv.file_sha256(out.replace(".xml", ".bin")),
        "made_by": f"python -m bench.quantize_ocr_recognizer --scans {args.scans} --seed {args.seed}",
        "calibration": f"{len(lines)} lines of {args.scans} scanned pages of bench.corpus --docs 300 --seed "
                       f"{args.seed}, 48 px high, {widths[0]}-{widths[-1]} px wide in {len(widths)} widths "
                       f"(steps {cv.OCR_REC_WIDTH_STEPS})",
        "method": f"nncf {nncf.__version__}.quantize on openvino {ov.__version__}: preset mixed, model type "
                  "transformer, subset = every calibration line",
        "license": "derived from PaddleOCR's PP-OCRv6 recognizer as rapidocr ships it (Apache-2.0)",
    }
    with open(cv.OCR_REC_INT8_PROVENANCE, "w", encoding="utf-8") as f:
        json.dump(provenance, f, indent=2)
        f.write("\n")
    size = os.path.getsize(out) + os.path.getsize(out.replace(".xml", ".bin"))
    print(f"wrote {out} (+ .bin, {size / 1e6:.1f} MB) from {len(lines)} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
