"""Model backends, one module per backend, each behind the small interface its stage expects.

    embedder:   .name .dimension .max_tokens  .embed(texts) -> unit vectors  .token_offsets(text)
    classifier: .name  .classify(Document) -> (category, confidence)
    extractor:  .name  .extract(Document) -> metadata dict (schema in transforms.extract)

The factories below pick a backend from the StageConfig; workers call them from DoFn.setup.
"""
from __future__ import annotations

from transforms.config import StageConfig

EMBEDDERS = ("minilm",)
CLASSIFIERS = ("embedding",)
EXTRACTORS = ("rules",)


def load_embedder(config: StageConfig):
    if config.embedder == "minilm":
        from transforms.backends.minilm import get_embedder

        return get_embedder(threads=config.model_threads, batch_size=config.embed_batch_size)
    raise ValueError(f"unknown embedder {config.embedder!r}; choose from {EMBEDDERS}")


def load_classifier(config: StageConfig):
    if config.classifier == "embedding":
        from transforms.classify import EmbeddingClassifier, load_categories

        return EmbeddingClassifier(load_embedder(config), load_categories(config.categories_file),
                                   config.classify_threshold)
    raise ValueError(f"unknown classifier {config.classifier!r}; choose from {CLASSIFIERS}")


def load_extractor(config: StageConfig):
    if config.extractor == "rules":
        from transforms.extract import RulesExtractor

        return RulesExtractor()
    raise ValueError(f"unknown extractor {config.extractor!r}; choose from {EXTRACTORS}")
