"""Model backends, one module per backend, each behind the small interface its stage expects.

    embedder:   .name .dimension .max_tokens  .embed(texts) -> unit vectors  .token_offsets(text)
    classifier: .name  .classify(Document) -> (category, confidence)
    extractor:  .name  .extract(Document) -> metadata dict (schema in transforms.extract)

The factories below pick a backend from the StageConfig; workers call them from DoFn.setup.
`preflight` runs once at start (pipeline.run) to check remote models before any document is read.
"""
from __future__ import annotations

from transforms.config import StageConfig

EMBEDDERS = ("minilm", "ollama")
CLASSIFIERS = ("embedding", "ollama")
EXTRACTORS = ("rules", "ollama")


def load_embedder(config: StageConfig):
    if config.embedder == "minilm":
        from transforms.backends.minilm import get_embedder

        return get_embedder(threads=config.model_threads, batch_size=config.embed_batch_size,
                            precision=config.embed_precision)
    if config.embedder == "ollama":
        from transforms.backends import ollama

        return ollama.get_embedder(config)
    raise ValueError(f"unknown embedder {config.embedder!r}; choose from {EMBEDDERS}")


def load_classifier(config: StageConfig):
    if config.classifier == "embedding":
        from transforms.backends.use import get_embedder
        from transforms.classify import EmbeddingClassifier, load_categories

        # Its own multilingual model, whatever embeds the chunks for search (see backends/use.py).
        return EmbeddingClassifier(get_embedder(max(1, config.model_threads)),
                                   load_categories(config.categories_file), config.classify_threshold,
                                   examples=list(config.examples))
    if config.classifier == "ollama":
        from transforms.backends import ollama
        from transforms.classify import load_categories

        return ollama.OllamaClassifier(ollama.get_client(config), config.classify_model,
                                       load_categories(config.categories_file), config.classify_threshold)
    raise ValueError(f"unknown classifier {config.classifier!r}; choose from {CLASSIFIERS}")


def load_extractor(config: StageConfig):
    if config.extractor == "rules":
        from transforms.extract import RulesExtractor

        return RulesExtractor()
    if config.extractor == "ollama":
        from transforms.backends import ollama

        return ollama.OllamaExtractor(ollama.get_client(config), config.extract_model)
    raise ValueError(f"unknown extractor {config.extractor!r}; choose from {EXTRACTORS}")


def preflight(config: StageConfig) -> int:
    """Checks made once at start, before any document is read: every configured Ollama model is on
    its servers (else OllamaSetupError, a ValueError, naming the `ollama pull` command). Returns the
    embedding dimension, which the stores' schemas follow."""
    if config.embedder not in EMBEDDERS:
        raise ValueError(f"unknown embedder {config.embedder!r}; choose from {EMBEDDERS}")
    from transforms.backends import ollama

    models = ollama.models_in_use(config)
    if models:
        ollama.check_models(config, models)
    if config.embedder == "ollama":
        try:
            return ollama.get_embedder(config).dimension
        except ollama.OllamaError as exc:
            raise ollama.OllamaSetupError(f"the embedding model {config.embed_model!r} does not embed: {exc}") from None
    from transforms.backends.minilm import DIMENSION, resolve_precision

    if config.embedder == "minilm" and resolve_precision(config.embed_precision) == "int8":
        _prepare_int8(config.embed_precision)
    return DIMENSION


def _prepare_int8(precision: str) -> None:
    """Export and quantise the int8 MiniLM once, here, rather than in every worker at its first
    batch (cached: later runs find the file). `auto` falls back to float32 if it cannot be made."""
    import logging

    from transforms.backends import minilm_onnx

    try:
        minilm_onnx.prepare("int8")
    except Exception as exc:
        if precision != "auto":
            raise ValueError(f"--embed-precision int8: cannot prepare the ONNX model: {exc}") from exc
        logging.getLogger(__name__).warning("int8 MiniLM unavailable (%s); workers will embed in float32", exc)


def embedder_identity(config: StageConfig, dimension: int) -> dict:
    """What the store records about the embedder of its vectors (see pipeline.store.record_embedder)."""
    if config.embedder == "ollama":
        from transforms.backends.ollama import config_hosts

        return {"embedder": "ollama", "model": config.embed_model, "dimension": dimension,
                "hosts": list(config_hosts(config))}
    from transforms.backends.minilm import MODEL_NAME

    return {"embedder": config.embedder, "model": MODEL_NAME, "dimension": dimension}


def load_query_embedder(identity: dict | None):
    """The embedder for search queries: the one recorded as having made the store's vectors (MiniLM
    for a store without a record). An Ollama embedder's hosts: OLLAMA_HOST if set, else the run's."""
    import os

    if not identity or identity.get("embedder") == "minilm":
        from transforms.backends.minilm import get_embedder

        return get_embedder()
    hosts = tuple(h for h in (os.environ.get("OLLAMA_HOST") or "").split(",") if h.strip()) \
        or tuple(identity.get("hosts") or ())
    return load_embedder(StageConfig(embedder=identity["embedder"], embed_model=identity["model"],
                                     ollama_hosts=hosts))
