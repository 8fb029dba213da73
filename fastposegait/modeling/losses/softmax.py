"""Scaled cross-entropy over part logits, GPGait's identity loss (docs/models.md#crossentropyloss)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...registry import LOSSES
from .base import BaseLoss, LossOutput, require


@LOSSES.register("CrossEntropyLoss")
class CrossEntropyLoss(BaseLoss):
    """Cross-entropy of ``scale * logits`` per part, optionally label-smoothed.

    ``logits`` ``[N, K, P]`` (K classes, P parts; GPGait's BNNeck cosine logits, which lie in
    [-1, 1] and need the ``scale`` to form a peaked softmax) and ``labels`` ``[N]``. Per part:
    ``nll = mean_n(-log_softmax(scale * logits)[n, label_n])``; with ``label_smooth`` the loss
    is ``(1 - eps) * nll + eps * mean_n mean_k(-log_softmax[n, k])``. Returns the per-part
    vector ``[P]`` (the aggregator averages it).

    Logged: ``loss`` (per part) and, with ``log_accuracy``, ``accuracy``: the fraction of
    (sample, part) pairs whose arg-max class is the label.

    Args:
        scale: multiplier of the logits before the softmax.
        label_smooth: whether to smooth the target distribution.
        eps: smoothing weight.
        log_accuracy: also log the training accuracy.
        loss_term_weight: weight in the total loss.
    """

    def __init__(self, scale: float = 16, label_smooth: bool = True, eps: float = 0.1,
                 log_accuracy: bool = False, loss_term_weight: float = 1.0) -> None:
        super().__init__(loss_term_weight)
        self.scale = require(scale, "scale", lambda v: v > 0, "> 0")
        self.label_smooth = bool(label_smooth)
        self.eps = require(eps, "eps", lambda v: 0 <= v <= 1, "in [0, 1]")
        self.log_accuracy = bool(log_accuracy)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if logits.dim() != 3 or labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
            raise ValueError(
                f"CrossEntropyLoss expects logits [N, K, P] and labels [N], got {tuple(logits.shape)} "
                f"and {tuple(labels.shape)}"
            )
        num_class = logits.shape[1]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_class):
            raise ValueError(
                f"CrossEntropyLoss: labels must lie in [0, {num_class}) (model_cfg.num_class = number of "
                f"training subjects), got labels in [{int(labels.min())}, {int(labels.max())}]"
            )
        log_prob = F.log_softmax(self.scale * logits.float(), dim=1)  # [N, K, P]
        index = labels.long().view(-1, 1, 1).expand(-1, 1, logits.shape[2])
        nll = -log_prob.gather(1, index).squeeze(1).mean(0)  # [P]
        if self.label_smooth:
            loss = (1 - self.eps) * nll - self.eps * log_prob.mean(1).mean(0)
        else:
            loss = nll
        info = {"loss": loss.detach()}
        if self.log_accuracy:
            correct = logits.argmax(dim=1) == labels.view(-1, 1)
            info["accuracy"] = correct.float().mean().detach()
        return loss, info
