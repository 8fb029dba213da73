"""Triplet loss over part embeddings, batch-all or batch-hard (docs/models.md#tripletloss)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...registry import LOSSES
from .base import BaseLoss, LossOutput, require


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``[P, N, C]`` -> ``[P, N, N]`` distances sqrt(relu(|a|^2 + |b|^2 - 2 a.b))."""
    sq = (x * x).sum(-1)
    inner = x @ x.transpose(1, 2)
    return F.relu(sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * inner).sqrt()


def mean_of_nonzero(values: torch.Tensor):
    """Mean over the last axis of the non-zero entries (0 where all are zero), and their count."""
    count = (values != 0).sum(-1).float()
    mean = values.sum(-1) / (count + 1e-9)
    return torch.where(count == 0, torch.zeros_like(mean), mean), count


@LOSSES.register("TripletLoss")
class TripletLoss(BaseLoss):
    """relu(d(anchor, positive) - d(anchor, negative) + margin), per body part.

    Batch-all (default) averages the non-zero terms over every (anchor, positive, negative)
    triple; batch-hard (``is_hard_loss``) keeps each anchor's hardest positive and negative
    and averages the non-zero anchors. Positives include the anchor itself (distance 0), as in
    the original (docs/upstream_differences.md, "Triplet positives include the anchor (kept)").
    Returns a per-part loss ``[P]``.
    """

    def __init__(self, margin: float = 0.2, is_hard_loss: bool = False, loss_term_weight: float = 1.0) -> None:
        super().__init__(loss_term_weight)
        self.margin = require(margin, "margin", lambda v: v >= 0, ">= 0")
        self.is_hard_loss = bool(is_hard_loss)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        x = embeddings.permute(2, 0, 1).float()  # [P, N, C]
        dist = pairwise_euclidean(x)  # [P, N, N]
        same = labels.unsqueeze(0) == labels.unsqueeze(1)  # [N, N]
        if self.is_hard_loss:
            hardest_pos = dist.masked_fill(~same, float("-inf")).max(-1).values
            hardest_neg = dist.masked_fill(same, float("inf")).min(-1).values
            terms = F.relu(hardest_pos - hardest_neg + self.margin)  # [P, N]
            terms = torch.where(torch.isfinite(terms), terms, torch.zeros_like(terms))  # no negative
            loss, _ = mean_of_nonzero(terms)
            return loss, {"hard_loss": loss.detach()}
        valid = same.unsqueeze(2) & ~same.unsqueeze(1)  # [N(anchor), N(pos), N(neg)]
        diff = dist.unsqueeze(3) - dist.unsqueeze(2)  # d(a,p) - d(a,n): [P, N, N, N]
        terms = F.relu(diff + self.margin) * valid
        terms = terms.flatten(1)
        loss, count = mean_of_nonzero(terms)
        return loss, {
            "loss": loss.detach(),
            "hard_loss": terms.max(-1).values.detach(),
            "loss_num": count.detach(),
            "mean_dist": dist.mean((1, 2)).detach(),
        }
