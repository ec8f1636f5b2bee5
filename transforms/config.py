"""Stage settings, built once from the pipeline options and shipped to every worker.

Kept apart from `pipeline.options` so the stages never import the pipeline (data flows one way:
pipeline -> transforms) and can be used, and tested, without Beam options.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StageConfig:
    pdf_pipeline: str = "native"          # native (model-free) | standard (needs docling's models)
    docling_artifacts: str | None = None  # folder of docling's models for the standard pipeline (offline)
    vlm_model: str = "granite3.2-vision:2b"  # --pdf-pipeline vlm: vision model on the Ollama hosts
    ocr: str = "auto"                     # auto: OCR images and pages without a text layer | off
    ocr_min_chars_per_page: int = 16      # a PDF page with fewer text characters is OCRed
    ocr_max_pages: int = 20               # OCR at most this many pages of one document
    ocr_runtime: str = "auto"             # the recognizer's: auto (OpenVINO on bfloat16 CPUs, else ONNX Runtime) | onnxruntime | openvino
    ocr_detector: str = "auto"            # the text detector's weights: auto (int8 on CPUs with VNNI, else fp32) | int8 | fp32
    ocr_recognizer: str = "auto"          # the text recognizer's weights: auto | float (rapidocr's) | int8 (OpenVINO, VNNI)
    max_file_size: int = 100 * 1024 * 1024
    max_pages: int = 2000                 # longer PDFs fail clearly (~15 ms/page: 2,000 pages ~ 30 s)
    # Containers (archives, mailboxes, emails; transforms.containers): limits against hostile archives.
    archive_max_total_mb: int = 20480     # uncompressed MB over a container's whole tree
    archive_max_members: int = 10000      # members over a container's whole tree
    archive_max_ratio: float = 200.0      # uncompressed/compressed of a member over 1 MB
    archive_max_depth: int = 3            # containers inside containers, the outermost being 1
    classifier: str = "embedding"
    categories_file: str | None = None    # YAML/JSON; None = the packaged default set
    classify_threshold: float = 0.30      # below this confidence the category is `other`
    examples_dir: str | None = None       # --examples: labelled documents the classifier learns from
    # The prepared examples (transforms.examples.Example: category + vector), from --examples and the
    # store's corrections; filled by pipeline.run before the pipeline starts and shipped to workers.
    examples: tuple = ()
    extractor: str = "rules"
    embedder: str = "minilm"
    chunk_tokens: int = 200
    chunk_overlap: int = 0               # windows end at a line or sentence end instead (transforms.embed)
    max_chunks: int = 512                 # bound per document: a 5,000-page PDF must not stall a worker
    # Chunks per model call; 0 = the backend's own best (MiniLM on ONNX 1, on torch 8, Ollama 32 per request).
    embed_batch_size: int = 0
    embed_precision: str = "auto"         # MiniLM: auto (bf16 on AMX, int8 on VNNI, else fp32) | fp32 | bf16 | int8
    model_threads: int = 0                # torch/onnx threads per worker; 0 = library default
    isolate_convert: bool = True          # convert in a child process (limits below apply)
    convert_timeout: float = 120.0        # seconds per document
    convert_memory_mb: int = 3000         # resident memory of the converter process
    recycle_after: int = 200              # fresh converter process after this many documents
    test_hang_marker: str | None = None   # tests only: the converter hangs on file names containing it
    # Ollama backends (--classifier/--extractor/--embedder ollama); see transforms/backends/ollama.py
    classify_model: str = "qwen2.5vl:7b"  # vision model: sees the first page as an image
    extract_model: str = "qwen2.5:7b"     # fills the per-category JSON schema
    embed_model: str = "nomic-embed-text"
    ollama_hosts: tuple[str, ...] = ()    # base URLs, spread round-robin; () = OLLAMA_HOST or localhost
    ollama_max_inflight: int = 4          # concurrent requests per worker process
    ollama_timeout: float = 120.0         # seconds per request
    ollama_retries: int = 3               # retries on busy/5xx/connection errors, with backoff
    page_image_px: int = 0                # >0: Convert attaches the first page as a PNG (longest side)
