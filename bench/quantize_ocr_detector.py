"""python -m bench.quantize_ocr_detector [--scans 30] [--seed 99]

Makes transforms/models/ocr_det_int8.onnx, the int8 copy of rapidocr's packaged text detector that
OCR uses on CPUs with int8 dot products (VNNI; transforms/convert.py, `--ocr-detector auto`), and
ocr_det_int8.json beside it (what it was made from and how).

How: a generated corpus (`bench.corpus`, its own seed, so that none of the documents the OCR
figures are measured on is among them) is converted with the float32 detector, and the detector's
inputs for the first `--scans` scanned pages are kept as calibration data; the model is moved to
ONNX opset 17 (per-channel quantisation needs it) and quantised statically with ONNX Runtime's
tools: QDQ format, weights int8 per channel, activations uint8, ranges by min/max over the
calibration pages. The same inputs give the same file. Percentile calibration held ~24 GB for 30
pages and read no better; quantising only the convolutions kept more float32 work between them and
was slower (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

from bench import calibration
from transforms import convert as cv
from transforms.config import StageConfig
from transforms.records import Document


def calibration_inputs(corpus: str, scans: int) -> list:
    """The float32 detector's input tensors for the first `scans` scanned pages of `corpus`."""
    converter = cv.Converter(StageConfig(model_threads=1, ocr_detector="fp32"))
    detector = converter.ocr._load_det_model()  # private method of the pinned rapidocr
    caught = []
    session = detector.session

    class Keep:
        def __call__(self, tensor):
            caught.append(tensor.copy())
            return session(tensor)

    detector.session = Keep()
    with open(os.path.join(corpus, "truth.jsonl"), encoding="utf-8") as truth:
        scanned = [row["file"] for row in map(json.loads, truth) if row["format"] in ("png", "scanned_pdf")]
    for name in scanned:
        if len(caught) >= scans:
            break
        path = os.path.join(corpus, name)
        with open(path, "rb") as f:
            converter.convert(Document(id=name, paths=[path], filename=os.path.basename(path)), f.read())
    return caught[:scans]


def quantize(inputs: list, out: str) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = cv.ocr_detector_source()
    name = ort.InferenceSession(source, providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Pages(CalibrationDataReader):
        def __init__(self):
            self.left = iter(inputs)

        def get_next(self):
            tensor = next(self.left, None)
            return None if tensor is None else {name: tensor}

    with tempfile.TemporaryDirectory() as tmp:
        opset17 = os.path.join(tmp, "det17.onnx")
        onnx.save(version_converter.convert_version(onnx.load(source), 17), opset17)
        prepared = os.path.join(tmp, "det_prepared.onnx")
        quant_pre_process(opset17, prepared, skip_symbolic_shape=True)
        quantize_static(prepared, out, Pages(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    calibration.add_arguments(parser, "scanned pages to calibrate on")
    args = parser.parse_args(argv)
    inputs = calibration.collect(args, calibration_inputs)
    if len(inputs) < args.scans:
        raise SystemExit(f"only {len(inputs)} scanned pages found; need {args.scans}")
    out = cv.OCR_DET_INT8_FILE
    os.makedirs(os.path.dirname(out), exist_ok=True)
    quantize(inputs, out)
    provenance = {
        "source": os.path.basename(cv.ocr_detector_source()),
        "source_sha256": cv.file_sha256(cv.ocr_detector_source()),
        "sha256": cv.file_sha256(out),
        "made_by": f"python -m bench.quantize_ocr_detector --scans {args.scans} --seed {args.seed}",
        "calibration": f"{len(inputs)} scanned pages of bench.corpus --docs 300 --seed {args.seed}, "
                       f"inputs of shape {sorted({tuple(t.shape) for t in inputs})}",
        "method": "onnxruntime.quantization.quantize_static: opset 17, QDQ, per-channel int8 weights, "
                  "uint8 activations, MinMax",
        "license": "derived from PaddleOCR's PP-OCRv6 detector as rapidocr ships it (Apache-2.0)",
    }
    with open(cv.OCR_DET_INT8_PROVENANCE, "w", encoding="utf-8") as f:
        json.dump(provenance, f, indent=2)
        f.write("\n")
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB) from {len(inputs)} pages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
