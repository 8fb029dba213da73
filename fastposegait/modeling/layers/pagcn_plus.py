"""GPGait++ layers: a per-frame part-aware graph convolution and the GCN + TCN block built on it
(docs/models.md#gpgait).

* :class:`PAGCN_Plus` is GPGait's part-aware adaptive graph convolution with one attention
  map per *frame* (GPGait's :class:`~fastposegait.modeling.layers.pagcn.PAGCN` has one per
  sequence).
* :class:`UnitConv2D` is dropout -> conv -> Mish -> BatchNorm; with a 9-frame kernel it is the
  block's temporal convolution.
* :class:`Part_AGCN_TCN` splits its output channels between a half-width graph convolution
  plus a 1x1 residual, then a temporal convolution, a second 1x1 residual and a 1x1 "down"
  path of the block input, concatenated on channels.

Packed sequences: ``all_ordered`` test batches concatenate b sequences along time as
``[1, C, sum(T_i), V]`` with their lengths ``seqL``. Every operation here is per frame except
the temporal convolution, which is given the :class:`~fastposegait.modeling.layers.pagcn.Segments`
of the batch and zero-pads each sequence on its own: a packed batch gives exactly the features
of its sequences run one by one (the original pads only the two ends of the concatenation, so
its frames near a boundary read the neighbouring sequence; docs/upstream_differences.md,
"GPGait++: one embedding per walk at test time").

Module and attribute names (``asg``, ``tcn``, ``residual``, ``residual_s``, ``down``,
``conv_a``/``conv_b``/``conv_d``, ``PA``, ``conv``, ``bn``) are the original's, so state dicts
load both ways.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...data.skeleton import get_joint_format
from .pagcn import PARTITIONS, Segments, part_mask

__all__ = ["PAGCN_Plus", "UnitConv2D", "Part_AGCN_TCN", "block_widths"]

NUM_SUBSETS = 3  # adjacency slices A[0..2] (max_hop 2)
EMBEDDING_REDUCTION = 4  # attention width inter = out // 4
TEMPORAL_KERNEL = 9  # frames seen by the block's temporal convolution
TEMPORAL_DROPOUT = 0.1
PA_INIT = 1e-6


def _partition_masks(joint_format: str) -> torch.Tensor:
    """``[num_partitions, V, V]``: mask p is 1 where two joints share a part of partition p
    (partition 0, the whole body, is all ones)."""
    name = get_joint_format(joint_format).name
    if name not in PARTITIONS:
        raise ValueError(
            f"GPGait++ has body partitions for joint formats {', '.join(sorted(PARTITIONS))} only, "
            f"got {joint_format!r}"
        )
    num_joints = get_joint_format(name).num_joints
    return torch.stack([part_mask(partition, num_joints) for partition in PARTITIONS[name]])


class PAGCN_Plus(nn.Module):
    """Part-aware adaptive graph convolution with per-frame attention,
    ``[N, in_c, T, V] -> [N, out_c, T, V]``.

    For each subset i of the 3 adjacency slices, with ``inter = out_c // 4`` and for every
    frame separately: ``att = softmax_{dim -2}(a_i(x)^T b_i(x) / inter)`` (``[V, V]``, each
    column sums to 1), ``A1 = att + (A + PA)[i]``, times the part mask when the layer runs on
    a partition, and ``z_i = d_i(x A1)`` (x multiplied on the joint axis).
    ``y = Mish(BN(sum_i z_i))``. ``PA`` is a learnable correction of A, initialised to 1e-6,
    one independent tensor per layer.

    The nine 1x1 convs are separate modules (the original's parameters, keys and
    construction order: a_0, b_0, d_0, a_1, ...) but run as two fused convolutions.

    Args:
        in_c: input channels.
        out_c: output channels (at least 4).
        joint_format: ``coco`` or ``coco-no-head`` (fixes V and the body partitions).
    """

    def __init__(self, in_c: int, out_c: int, joint_format: str) -> None:
        super().__init__()
        masks = _partition_masks(joint_format)
        num_joints = masks.shape[-1]
        self.in_c = in_c
        self.out_c = out_c
        self.inter = out_c // EMBEDDING_REDUCTION
        if self.inter < 1:
            raise ValueError(f"PAGCN_Plus needs at least {EMBEDDING_REDUCTION} output channels, got {out_c}")
        self.PA = nn.Parameter(torch.full((NUM_SUBSETS, num_joints, num_joints), PA_INIT))
        self.conv_a = nn.ModuleList()
        self.conv_b = nn.ModuleList()
        self.conv_d = nn.ModuleList()
        for _ in range(NUM_SUBSETS):  # the original's construction (random number) order
            self.conv_a.append(nn.Conv2d(in_c, self.inter, 1))
            self.conv_b.append(nn.Conv2d(in_c, self.inter, 1))
            self.conv_d.append(nn.Conv2d(in_c, out_c, 1))
        self.bn = nn.BatchNorm2d(out_c)
        self.register_buffer("part_masks", masks, persistent=False)

    @property
    def num_partitions(self) -> int:
        return int(self.part_masks.shape[0])

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The per-frame softmax attention ``[N, 3, T, V, V]`` (softmax over dim -2)."""
        n, _, t, v = x.shape
        convs = [*self.conv_a, *self.conv_b]
        weight = torch.cat([c.weight for c in convs])
        bias = torch.cat([c.bias for c in convs])
        qk = F.conv2d(x, weight, bias).view(n, 2, NUM_SUBSETS, self.inter, t, v)
        scores = torch.einsum("nsctu,nsctw->nstuw", qk[:, 0], qk[:, 1]) / self.inter
        return scores.softmax(dim=-2)

    def forward(self, x: torch.Tensor, A: torch.Tensor, part: Optional[int] = None) -> torch.Tensor:
        """``x [N, in_c, T, V]``, ``A [3, V, V]``; ``part``: a partition index (1.. for the
        joint format) to restrict the graph to, or None / 0 for the whole graph."""
        n, c, t, v = x.shape
        att = self.attention(x)
        adj = att + (A + self.PA).to(att.dtype)[None, :, None]  # [N, 3, T, V, V]
        if part:
            if not 0 < part < self.num_partitions:
                raise ValueError(f"part must be None or a partition index in 1..{self.num_partitions - 1}, got {part!r}")
            adj = adj * self.part_masks[part].to(adj.dtype)
        mixed = torch.einsum("nctu,nstuw->nsctw", x, adj).reshape(n, NUM_SUBSETS * c, t, v)
        # sum_i d_i(x A1_i) as one convolution over the 3 stacked products
        weight = torch.cat([conv.weight for conv in self.conv_d], dim=1)
        bias = torch.stack([conv.bias for conv in self.conv_d]).sum(0)
        return F.mish(self.bn(F.conv2d(mixed, weight, bias)))


def _conv_per_sequence(conv: nn.Conv2d, x: torch.Tensor, segments: Segments) -> torch.Tensor:
    """``conv`` (kernel k along time, zero padding (k-1)/2) applied to each sequence of a
    packed ``[1, C, sum T_i, V]`` batch on its own: the sequences are laid out with (k-1)/2
    zero frames between them, convolved in one call, and the gaps dropped again."""
    pad = conv.padding[0]
    n, c, t, v = x.shape
    positions = torch.arange(t, device=x.device) + segments.index * pad
    wide = x.new_zeros(n, c, t + (len(segments.lengths) - 1) * pad, v)
    wide[:, :, positions] = x
    return conv(wide)[:, :, positions]


class UnitConv2D(nn.Module):
    """Dropout -> Conv2d (kernel ``(k, 1)``, same length in time, bias) -> Mish -> BatchNorm2d.

    The conv is initialised from normal(0, sqrt(2 / (out_c * k))) at construction, as the
    original does; the model's generic initialisation then replaces it with Xavier.

    Args:
        in_c: input channels.
        out_c: output channels.
        kernel_size: frames the conv spans (odd).
        dropout: dropout probability before the conv.
    """

    def __init__(self, in_c: int, out_c: int, kernel_size: int = TEMPORAL_KERNEL, dropout: float = 0.0) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"UnitConv2D needs an odd kernel size, got {kernel_size}")
        self.dropout = nn.Dropout(dropout)
        self.conv = nn.Conv2d(in_c, out_c, (kernel_size, 1), padding=((kernel_size - 1) // 2, 0))
        self.bn = nn.BatchNorm2d(out_c)
        nn.init.normal_(self.conv.weight, 0.0, math.sqrt(2.0 / (out_c * kernel_size)))
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, segments: Optional[Segments] = None) -> torch.Tensor:
        """``[N, in_c, T, V] -> [N, out_c, T, V]``; ``segments``: the sequences of a packed
        batch, each convolved on its own."""
        x = self.dropout(x)
        if segments is None or self.conv.padding[0] == 0:
            x = self.conv(x)
        else:
            x = _conv_per_sequence(self.conv, x, segments)
        return self.bn(F.mish(x))


def block_widths(out_c: int) -> dict:
    """How :class:`Part_AGCN_TCN` splits ``out_c`` channels (integer division): graph conv
    ``a = out_c // 2`` and residual ``r = out_c - a``; temporal conv ``t = out_c // 3 + 1``,
    second residual ``s = out_c // 3`` and down path ``d = out_c - s - t``."""
    a = out_c // 2
    t = out_c // 3 + 1
    s = out_c // 3
    return {"asg": a, "residual": out_c - a, "tcn": t, "residual_s": s, "down": out_c - s - t}


def _conv_bn(in_c: int, out_c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_c, out_c, 1), nn.BatchNorm2d(out_c))


class Part_AGCN_TCN(nn.Module):
    """GPGait++ block, ``[N, in_c, T, V] -> [N, out_c, T, V]``::

        x0 = cat(asg(x, A, part), residual(x))                  # graph conv | 1x1 residual
        y  = cat(tcn(x0), residual_s(x0), down(x))              # 9-frame conv | 1x1 | 1x1 of x

    with the channel split of :func:`block_widths`; no activation after either
    concatenation, and the residual paths are convolutions even when ``in_c == out_c``.

    Args:
        in_c: input channels.
        out_c: output channels (at least 8: the graph conv needs 4).
        joint_format: ``coco`` or ``coco-no-head``.
        mask: restrict the graph to the parts of the partition given in :meth:`forward`;
            False runs every call on the whole graph.
    """

    def __init__(self, in_c: int, out_c: int, joint_format: str, mask: bool = True) -> None:
        super().__init__()
        if out_c < 2 * EMBEDDING_REDUCTION:
            raise ValueError(f"Part_AGCN_TCN needs at least {2 * EMBEDDING_REDUCTION} output channels, got {out_c}")
        widths = block_widths(out_c)
        self.in_c = in_c
        self.out_c = out_c
        self.mask = bool(mask)
        self.asg = PAGCN_Plus(in_c, widths["asg"], joint_format)
        self.tcn = UnitConv2D(out_c, widths["tcn"], TEMPORAL_KERNEL, dropout=TEMPORAL_DROPOUT)
        self.residual = _conv_bn(in_c, widths["residual"])
        self.residual_s = _conv_bn(out_c, widths["residual_s"])
        self.down = UnitConv2D(in_c, widths["down"], 1, dropout=0.0)

    def forward(self, x: torch.Tensor, A: torch.Tensor, part: Optional[int] = None,
                segments: Optional[Segments] = None) -> torch.Tensor:
        """``x [N, in_c, T, V]``, ``A [3, V, V]``, ``part`` a partition index or None;
        ``segments`` for a packed batch (see the module docstring)."""
        if not self.mask:
            part = None
        x0 = torch.cat([self.asg(x, A, part), self.residual(x)], dim=1)
        return torch.cat([self.tcn(x0, segments), self.residual_s(x0), self.down(x)], dim=1)
