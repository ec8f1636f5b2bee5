"""The calibration corpus of the int8 OCR models (bench/quantize_ocr_detector.py and
bench/quantize_ocr_recognizer.py): generated documents of a seed of their own (99), so that none of
the documents the OCR figures are measured on (seed 7, the real corpus) is among them."""
from __future__ import annotations

import argparse
import os
import tempfile


def add_arguments(parser: argparse.ArgumentParser, scans_help: str) -> None:
    parser.add_argument("--scans", type=int, default=30, help=scans_help)
    parser.add_argument("--seed", type=int, default=99, help="the calibration corpus's seed")
    parser.add_argument("--corpus", help="an existing bench.corpus folder (default: generate 300 documents)")


def collect(args: argparse.Namespace, from_folder):
    """`from_folder(folder, scans)` on args.corpus, or on 300 documents generated with args.seed in a
    temporary folder (removed afterwards)."""
    from bench import corpus as gen

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.corpus
        if folder is None:
            folder = os.path.join(tmp, "corpus")
            gen.main(["--out", folder, "--docs", "300", "--seed", str(args.seed)])
        return from_folder(folder, args.scans)
