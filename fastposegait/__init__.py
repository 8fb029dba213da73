"""FastPoseGait: pose-based gait recognition, config-driven, CPU or GPU, one process or many.

The inference API is importable from here (loaded on first use, so ``import fastposegait``
stays light)::

    from fastposegait import GaitRecognizer, Gallery
    rec = GaitRecognizer.from_run("output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo")
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "GaitRecognizer": "fastposegait.recognition.recognizer",
    "Gallery": "fastposegait.recognition.gallery",
    "read_sequences": "fastposegait.recognition.inputs",
    "export_torchscript": "fastposegait.recognition.export",
    "export_onnx": "fastposegait.recognition.export",
    "ExportPreprocessor": "fastposegait.recognition.export",
}

__all__ = ["__version__", "GaitRecognizer", "Gallery", "read_sequences", "export_torchscript", "export_onnx",
           "ExportPreprocessor"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastposegait' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
