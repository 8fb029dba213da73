"""Base class of the losses a ``loss_cfg`` entry can name."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Tuple

import torch
from torch import nn

from ...errors import ConfigError

LossOutput = Tuple[torch.Tensor, Dict[str, torch.Tensor]]


class BaseLoss(nn.Module):
    """A loss: ``forward(**training_feat[log_prefix]) -> (loss, info)``.

    ``loss`` may be a scalar or a per-part vector (the aggregator takes its mean); ``info``
    holds detached values to log as ``scalar/<log_prefix>/<name>``.

    Args:
        loss_term_weight: the weight of this term in the total loss.
    """

    def __init__(self, loss_term_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_term_weight = require(loss_term_weight, "loss_term_weight", lambda v: v >= 0, ">= 0")


def require(value: Any, name: str, ok: Callable[[float], bool], what: str) -> float:
    """``value`` as a float if it is a finite number for which ``ok`` holds, else a
    :class:`~fastposegait.errors.ConfigError` naming the argument (a loss's arguments come
    from its ``loss_cfg`` entry; a bad one would only show as a NaN or a constant loss)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {what} (a number), got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or not ok(number):
        raise ConfigError(f"{name} must be {what} (a finite number), got {value!r}")
    return number
