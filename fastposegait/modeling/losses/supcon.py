"""Supervised contrastive losses (Khosla et al., 2020) used by GaitGraph1 (``SupConLoss_Re``)
and GaitGraph2 (``SupConLoss_Lp``)."""
from __future__ import annotations

import torch

from ...registry import LOSSES
from .base import BaseLoss, LossOutput, require


@LOSSES.register("SupConLoss_Lp")
class SupConLossLp(BaseLoss):
    """pytorch_metric_learning's ``SupConLoss`` on L2-normalised embeddings compared with
    ``LpDistance`` (p = 2), as GaitGraph2 trains.

    Args:
        temperature: softmax temperature (GaitGraph2: 0.01).
    """

    def __init__(self, temperature: float = 0.01, loss_term_weight: float = 1.0) -> None:
        super().__init__(loss_term_weight)
        from pytorch_metric_learning import distances, losses

        temperature = require(temperature, "temperature", lambda v: v > 0, "> 0")
        self.temperature = temperature
        self.criterion = losses.SupConLoss(temperature=temperature, distance=distances.LpDistance())

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        loss = self.criterion(features, labels)
        return loss, {"loss": loss.detach()}


BASE_TEMPERATURE = 0.07


@LOSSES.register("SupConLoss_Re")
class SupConLossRe(BaseLoss):
    """Supervised contrastive loss (Khosla et al., 2020) over several views of each sample,
    as GaitGraph1 trains (docs/models.md#supconloss_re).

    With ``features`` ``[N, views, D]`` (already L2-normalised by the model), every one of
    the ``N * views`` rows is an anchor and a contrast. For anchor ``i``::

        logit[i, j] = f_i . f_j / temperature          (minus the row maximum, for stability)
        loss_i = -(temperature / 0.07) * mean_{p in P(i)} [logit[i, p] - log sum_{j != i} exp(logit[i, j])]

    where ``P(i)`` are the rows with the same label as ``i`` other than ``i`` itself (its
    other views included). The loss is the mean of ``loss_i`` over the anchors. An anchor
    with no positive (possible only with one view and a label seen once) has no defined
    term; it is left out of the mean (the original returns NaN: docs/upstream_differences.md,
    "SupConLoss_Re anchors without positives"), and a batch with no positive at all gives 0.

    Args:
        temperature: softmax temperature (GaitGraph1: 0.01); the ``temperature / 0.07``
            factor is the original base-temperature scaling.
    """

    def __init__(self, temperature: float = 0.01, loss_term_weight: float = 1.0) -> None:
        super().__init__(loss_term_weight)
        self.temperature = require(temperature, "temperature", lambda v: v > 0, "> 0")

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if features.dim() != 3:
            raise ValueError(
                f"SupConLoss_Re expects features [N, views, D], got shape {tuple(features.shape)}; "
                "the model's training_feat must stack the views on axis 1"
            )
        N, views, _ = features.shape
        labels = torch.as_tensor(labels, device=features.device).reshape(-1)
        if labels.numel() != N:
            raise ValueError(f"SupConLoss_Re: {labels.numel()} labels for {N} samples")
        rows = features.to(torch.promote_types(features.dtype, torch.float32)).transpose(0, 1).reshape(N * views, -1)  # view-major: row v*N + n
        row_labels = labels.repeat(views)
        logits = rows @ rows.t() / self.temperature
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        not_self = ~torch.eye(N * views, dtype=torch.bool, device=rows.device)
        positive = (row_labels.unsqueeze(0) == row_labels.unsqueeze(1)) & not_self
        log_denominator = torch.logsumexp(logits.masked_fill(~not_self, float("-inf")), dim=1, keepdim=True)
        log_prob = logits - log_denominator
        num_positive = positive.sum(1)
        has_positive = num_positive > 0
        mean_log_prob_pos = (log_prob * positive).sum(1)[has_positive] / num_positive[has_positive]
        if mean_log_prob_pos.numel() == 0:
            loss = rows.sum() * 0.0  # no positive pair: zero, keeping the graph
        else:
            loss = -(self.temperature / BASE_TEMPERATURE) * mean_log_prob_pos.mean()
        return loss, {"loss": loss.detach()}
