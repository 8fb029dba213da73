"""Base class of the losses a ``loss_cfg`` entry can name."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn

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
        self.loss_term_weight = float(loss_term_weight)
