"""Part-wise heads: one linear map per body part, and the BNNeck classifier.

Both take part features ``[N, C, P]`` (C channels for each of P parts) and keep one weight
matrix per part in a ``[P, in, out]`` parameter, Xavier-uniform initialised at construction
(the generic model initialisation does not touch bare parameters, so this init survives).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def _part_weight(parts: int, in_c: int, out_c: int) -> nn.Parameter:
    # torch's fans for a 3-D tensor: fan_in = in * out, fan_out = parts * out, as in the original
    # (docs/upstream_differences.md, "Part-wise head initialisation (kept)")
    return nn.Parameter(nn.init.xavier_uniform_(torch.zeros(parts, in_c, out_c)))


def _check_parts(owner: str, x: torch.Tensor, channels: int, parts: int) -> None:
    if x.dim() != 3 or x.shape[1] != channels or x.shape[2] != parts:
        raise ValueError(f"{owner} expects part features [N, {channels}, {parts}], got shape {tuple(x.shape)}")


class SeparateFCs(nn.Module):
    """``y[n, :, p] = x[n, :, p] @ W[p]``: a separate bias-free linear map per part.

    Args:
        parts: number of parts P.
        in_c: input channels per part.
        out_c: output channels per part.
    """

    def __init__(self, parts: int, in_c: int, out_c: int) -> None:
        super().__init__()
        self.parts = parts
        self.in_c = in_c
        self.fc_bin = _part_weight(parts, in_c, out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_c, P] -> [N, out_c, P]``."""
        _check_parts("SeparateFCs", x, self.in_c, self.parts)
        out = x.permute(2, 0, 1).matmul(self.fc_bin)  # [P, N, out]
        return out.permute(1, 2, 0).contiguous()


class SeparateBNNecks(nn.Module):
    """BNNeck classifier over parts.

    ``BatchNorm1d(C * P)`` on the flattened ``[N, C, P]`` features (channel-major, index
    ``c * P + p``), then per part the L2-normalised feature times the per-part class matrix
    whose columns are L2-normalised over the input dimension: cosine-similarity logits in
    ``[-1, 1]`` (the loss scales them). Returns the normalised features (used as test-time
    embeddings) and the logits.

    Args:
        parts: number of parts P.
        in_c: channels per part C.
        num_class: number of training identities.
    """

    def __init__(self, parts: int, in_c: int, num_class: int) -> None:
        super().__init__()
        self.parts = parts
        self.in_c = in_c
        self.bn1d = nn.BatchNorm1d(in_c * parts)
        self.fc_bin = _part_weight(parts, in_c, num_class)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[N, C, P]`` -> (normalised features ``[N, C, P]``, logits ``[N, num_class, P]``)."""
        _check_parts("SeparateBNNecks", x, self.in_c, self.parts)
        n = x.shape[0]
        x = self.bn1d(x.reshape(n, -1)).view(n, self.in_c, self.parts)
        feature = F.normalize(x.permute(2, 0, 1), dim=-1)  # [P, N, C]
        logits = feature.matmul(F.normalize(self.fc_bin, dim=1))  # [P, N, K]
        return feature.permute(1, 2, 0).contiguous(), logits.permute(1, 2, 0).contiguous()
