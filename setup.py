"""Installable package: remote Beam workers import `pipeline` and `transforms` by module name."""
from setuptools import find_packages, setup

setup(
    name="docpipe",
    version="0.1.0",
    description="Document processing pipeline on Apache Beam: convert, classify, extract, embed, store",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*", "bench", "bench.*"]),
    # Data files the stages read at run time (a worker installed from this package needs them too).
    package_data={"transforms": ["categories.yaml", "classifier_model.json", "models/*.onnx", "models/*.json",
                                "models/*.xml", "models/*.bin"],
                  "pipeline.web": ["templates/*.html", "static/*.css", "static/*.js"]},
    python_requires=">=3.11",
    # Pinned versions live in requirements.txt (torch must come first, see README).
    install_requires=[],
)
