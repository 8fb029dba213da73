"""Building blocks of DeepGaitV2's pseudo-3-D backbone (SkeletonGait's CNN).

Feature maps of a batch of sequences are ``[n, c, s, h, w]`` (s frames). Spatial layers run
per frame (:class:`PerFrame` folds the frames into the batch); :class:`BasicBlockP3D` adds a
temporal convolution over 3 neighbouring frames as an inner residual. A *packed* batch
(several sequences concatenated along s, n = 1, with their lengths) runs the per-frame layers
on all frames at once and the temporal convolution on each sequence separately, so frames of
different walks never mix (docs/upstream_differences.md, "SkeletonGait: packed test
batches"). Module attribute names (``forward_block``, ``conv1``, ``bn1``, ``shortcut3d``,
``sbn``, ``downsample``) are the original's, so its checkpoints load key for key.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

#: a spatial stride: one int, or (rows, columns)
Stride = Union[int, Tuple[int, int], Sequence[int]]


def conv3x3(in_c: int, out_c: int, stride: Stride = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_c, out_c, kernel_size=3, stride=_pair(stride), padding=1, bias=False)


def _pair(stride: Stride) -> Tuple[int, int]:
    if isinstance(stride, int):
        return (stride, stride)
    rows, cols = stride
    return (int(rows), int(cols))


class PerFrame(nn.Module):
    """Applies a 2-D module to every frame: ``[n, c, s, h, w] -> [n, c', s, h', w']``.

    BatchNorm2d inside it therefore normalises over all frames of all sequences of the batch.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.forward_block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, s, h, w = x.shape
        y = self.forward_block(x.transpose(1, 2).reshape(n * s, c, h, w))
        return y.reshape(n, s, *y.shape[1:]).transpose(1, 2).contiguous()


class BasicBlock2D(nn.Module):
    """ResNet basic block on images ``[b, c, h, w]``: conv3x3 -> BN -> ReLU -> conv3x3 -> BN,
    plus the shortcut (identity, or ``downsample``), then ReLU."""

    def __init__(self, in_c: int, out_c: int, stride: Stride = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_c, out_c, stride)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_c, out_c)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def p3d_downsample(in_c: int, out_c: int, stride: Stride) -> nn.Sequential:
    """The shortcut of a stage's first P3D block when the stride or the width changes:
    Conv3d 1x1x1 with stride (1, sh, sw), no bias, then BatchNorm3d."""
    sh, sw = _pair(stride)
    return nn.Sequential(
        nn.Conv3d(in_c, out_c, kernel_size=1, stride=(1, sh, sw), bias=False),
        nn.BatchNorm3d(out_c),
    )


class BasicBlockP3D(nn.Module):
    """Pseudo-3-D residual block on sequences ``[n, in_c, s, h, w] -> [n, out_c, s, h', w']``.

    1. ``a = ReLU(BN2d(conv3x3(x, stride)))`` per frame;
    2. ``a = ReLU(a + BN3d(Conv3d_{3x1x1}(a)))``: a temporal convolution over each frame and its
       two neighbours, zero-padded at the ends of each sequence;
    3. ``a = BN2d(conv3x3(a))`` per frame;
    4. ``ReLU(a + shortcut)``, shortcut = ``downsample(x)`` if given, else ``x``.

    The stride is spatial only: the number of frames is kept.
    """

    def __init__(self, in_c: int, out_c: int, stride: Stride = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = PerFrame(nn.Sequential(conv3x3(in_c, out_c, stride), nn.BatchNorm2d(out_c), nn.ReLU(inplace=True)))
        self.conv2 = PerFrame(nn.Sequential(conv3x3(out_c, out_c), nn.BatchNorm2d(out_c)))
        self.shortcut3d = nn.Conv3d(out_c, out_c, kernel_size=(3, 1, 1), stride=1, padding=(1, 0, 0), bias=False)
        self.sbn = nn.BatchNorm3d(out_c)
        self.downsample = downsample

    def forward(self, x: torch.Tensor, seq_lengths: Optional[Sequence[int]] = None) -> torch.Tensor:
        """``seq_lengths``: the lengths of the sequences packed along the frame axis of a
        one-item batch (None: each item of the batch is one sequence)."""
        out = self.conv1(x)
        out = self.relu(out + self.sbn(temporal_conv(self.shortcut3d, out, seq_lengths)))
        out = self.conv2(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def temporal_conv(conv: nn.Module, x: torch.Tensor, seq_lengths: Optional[Sequence[int]]) -> torch.Tensor:
    """``conv`` over the frame axis (2) of ``x``, each packed sequence on its own so that its
    zero padding sits at the sequence's own ends."""
    if seq_lengths is None or len(seq_lengths) <= 1:
        return conv(x)
    return torch.cat([conv(piece) for piece in x.split(list(seq_lengths), dim=2)], dim=2)


def temporal_max(x: torch.Tensor, seq_lengths: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Temporal pooling: ``[n, c, s, h, w] -> [n, c, h, w]``, the maximum over frames; for a
    packed batch (n = 1) one result per sequence, ``[len(seq_lengths), c, h, w]``."""
    if seq_lengths is None:
        return x.amax(dim=2)
    return torch.cat([piece.amax(dim=2) for piece in x.split(list(seq_lengths), dim=2)], dim=0)


def horizontal_pooling(x: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """``[n, c, h, w] -> [n, c, bins]``: ``bins`` horizontal strips of ``h / bins`` rows each,
    pooled to mean + max over the strip."""
    n, c = x.shape[:2]
    strips = x.reshape(n, c, bins, -1)
    return strips.mean(-1) + strips.amax(-1)
