"""Building blocks of GaitTR (Zhang et al., "Spatial transformer network on skeleton-based gait
recognition"): a temporal convolution unit and a spatial transformer over the joints of each
frame, combined with residuals into :class:`TCNSTBlock` (docs/models.md#gaittr).

Shapes: ``N`` sequences, ``C`` channels, ``T`` frames, ``V`` joints; blocks work on
``[N, C, T, V]``.

Attribute names and their registration order are upstream's, so state dicts (and optimizer
states, which follow the parameter order) move both ways: ``st.bn`` before ``st.data_bn``
and ``st.attention_conv`` (queries/keys/values ``qkv_conv``, output ``attn_out``), and the
spatial shortcut ``residual_s``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Mish", "TemporalUnit", "SpatialSelfAttention", "SpatialTransformer", "TCNSTBlock"]

TEMPORAL_WINDOW = 9
NUM_HEADS = 8
KEY_FRACTION = 0.25  # dk = int(0.25 * out_channels); dv = out_channels


class Mish(nn.Module):
    """``x * tanh(softplus(x))`` (Misra, 2019), GaitTR's activation everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mish(x)


class TemporalUnit(nn.Module):
    """Dropout -> Conv2d ``(kernel, 1)`` over time (same padding) -> Mish -> BatchNorm2d.

    The conv weight is drawn from N(0, 2 / (out * kernel)) at construction, as in the original;
    the model's generic initialisation then overwrites it with Xavier. The order is kept so the
    random stream is consumed as in the original (docs/upstream_differences.md,
    "Initialisation order (kept)").
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = TEMPORAL_WINDOW,
                 dropout: float = 0.1) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.drop = nn.Dropout(dropout)
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0))
        self.act = Mish()
        self.bn = nn.BatchNorm2d(out_channels)
        nn.init.normal_(self.conv.weight, 0.0, math.sqrt(2.0 / (out_channels * kernel_size)))
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.act(self.conv(self.drop(x))))


class SpatialSelfAttention(nn.Module):
    """Multi-head self-attention across the joints of one frame.

    Input ``[B, C, 1, V]`` (every frame a separate sample). A 1x1 conv gives queries and keys
    (``dk`` channels each) and values (``dv``); each is split into ``heads`` contiguous
    channel groups; queries are scaled by ``(dk / heads) ** -0.5``; the attention weights
    are a softmax over the key joints; the heads' outputs are concatenated and mixed by a
    1x1 conv ``dv -> dv``. Output ``[B, dv, 1, V]``.
    """

    def __init__(self, in_channels: int, dk: int, dv: int, heads: int = NUM_HEADS) -> None:
        super().__init__()
        if dk % heads or dv % heads or dk == 0:
            raise ValueError(
                f"spatial attention needs key and value widths divisible by {heads} heads, got dk={dk}, dv={dv} "
                f"(dk = int({KEY_FRACTION} * out_channels), dv = out_channels)"
            )
        self.dk, self.dv, self.heads = dk, dv, heads
        self.qkv_conv = nn.Conv2d(in_channels, 2 * dk + dv, 1)  # queries, keys, values
        self.attn_out = nn.Conv2d(dv, dv, 1)  # mixes the heads' outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, T, V = x.shape
        h = self.heads
        q, k, v = self.qkv_conv(x).split([self.dk, self.dk, self.dv], dim=1)
        q = q.reshape(B, h, self.dk // h, T * V) * (self.dk // h) ** -0.5
        k = k.reshape(B, h, self.dk // h, T * V)
        v = v.reshape(B, h, self.dv // h, T * V)
        weights = torch.softmax(q.transpose(2, 3) @ k, dim=-1)  # [B, h, query joint, key joint]
        out = (weights @ v.transpose(2, 3)).transpose(2, 3)  # [B, h, dv/h, T*V]
        return self.attn_out(out.reshape(B, self.dv, T, V))


class SpatialTransformer(nn.Module):
    """GaitTR's spatial module: per-frame data BatchNorm over ``(C, V)``, joint self-attention
    on every frame separately, then Mish and BatchNorm2d. ``[N, C, T, V] -> [N, out, T, V]``.

    The original hands this module the adjacency and never uses it; the model keeps the
    adjacency as a buffer and nothing here reads it (docs/upstream_differences.md, "GaitTR
    attention ignores the graph (kept)").
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int, heads: int = NUM_HEADS) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(out_channels)  # the output norm; registered first, as upstream
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        self.attention_conv = SpatialSelfAttention(in_channels, int(KEY_FRACTION * out_channels), out_channels, heads)
        self.act = Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, T, V = x.shape
        # data normalisation: one channel per (c, v), statistics over batch and frames
        x = self.data_bn(x.permute(0, 1, 3, 2).reshape(N, C * V, T)).reshape(N, C, V, T)
        x = x.permute(0, 3, 1, 2).reshape(N * T, C, 1, V)  # every frame a sample
        y = self.attention_conv(x)
        y = y.reshape(N, T, -1, V).permute(0, 2, 1, 3)  # [N, out, T, V]
        return self.bn(self.act(y))


def _conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))


class TCNSTBlock(nn.Module):
    """One GaitTR block ``[N, in, T, V] -> [N, out, T, V]``::

        x0 = tcn(x) + x                       # temporal unit, in -> in
        y  = st(x0) + residual_s(x0)          # spatial transformer; identity or 1x1 conv + BN
        y  = y + (x or down(x))               # down: temporal unit with kernel 1, no dropout
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int) -> None:
        super().__init__()
        self.tcn = TemporalUnit(in_channels, in_channels)
        self.st = SpatialTransformer(in_channels, out_channels, num_joints)
        if in_channels == out_channels:
            self.residual_s: nn.Module = nn.Identity()
            self.down: nn.Module = nn.Identity()
        else:
            self.residual_s = _conv_bn(in_channels, out_channels)
            self.down = TemporalUnit(in_channels, out_channels, kernel_size=1, dropout=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.tcn(x) + x
        y = self.st(x0) + self.residual_s(x0)
        return y + self.down(x)
