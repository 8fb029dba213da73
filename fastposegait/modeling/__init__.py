"""Models, layers, losses and the model-building entry point."""
from __future__ import annotations

from typing import Any, Mapping

from ..registry import MODELS
from .base_model import BaseModel, count_parameters


def build_model(model_cfg: Mapping[str, Any]) -> BaseModel:
    """Build the model named by ``model_cfg['model']`` from its config section alone.

    Needs no data, device or process group, so it works for tests, parameter counts and
    export::

        model = build_model({"model": "GaitGraph2", "joint_format": "coco", ...})
    """
    if not isinstance(model_cfg, Mapping) or "model" not in model_cfg:
        raise ValueError("model_cfg must be a mapping with a 'model' key naming a registered model")
    cls = MODELS.get(model_cfg["model"], where="model_cfg.model")
    return cls(model_cfg)


__all__ = ["BaseModel", "build_model", "count_parameters"]
