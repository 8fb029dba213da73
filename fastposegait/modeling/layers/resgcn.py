"""ResGCN: the graph-convolution backbone of GaitGraph1 and GaitGraph2.

Structure and parameter counts are the original's (docs/models.md#resgcn): input branches (one per input
feature group) of ResGCN modules, concatenated into a main stream, global average pooling and
a linear embedding head. Each module multiplies the adjacency ``A`` by its own learnable
``edge`` importance.

State-dict names are upstream's, so checkpoints move both ways (docs/models.md, "State-dict
key names"). The upstream names are terse; what they hold:

* ``head.<i>``: input branch i (data BatchNorm, then its modules in ``layers``), with a
  persistent copy of the adjacency ``A`` (the constant graph, saved in every checkpoint);
* ``backbone.<i>``: module i of the main stream, which uses the non-persistent ``A`` of the
  top-level :class:`ResGCN`;
* ``fcn``: the linear embedding.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from ..graph import spatial_adjacency

TEMPORAL_WINDOW = 9
SPATIAL_KERNEL = 3  # max graph distance 2 -> adjacency slices A[0..2] are used


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=x.dtype, device=x.device)


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _conv_bn(in_c: int, out_c: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=(stride, 1)), nn.BatchNorm2d(out_c))


class SpatialGraphConv(nn.Module):
    """y[n,c,t,w] = sum_k sum_v (W_k x)[n,c,t,v] * A[k,v,w] over the first three slices of A."""

    def __init__(self, in_c: int, out_c: int) -> None:
        super().__init__()
        self.out_c = out_c
        self.gcn = nn.Conv2d(in_c, out_c * SPATIAL_KERNEL, 1)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        N, _, T, V = x.shape
        x = self.gcn(x).view(N, SPATIAL_KERNEL, self.out_c, T, V)
        return torch.einsum("nkctv,kvw->nctw", x, A[:SPATIAL_KERNEL]).contiguous()


class SpatialBasic(nn.Module):
    def __init__(self, in_c: int, out_c: int, residual: bool) -> None:
        super().__init__()
        if not residual:
            self.residual: nn.Module = _Zero()
        elif in_c == out_c:
            self.residual = _Identity()
        else:
            self.residual = _conv_bn(in_c, out_c)
        self.conv = SpatialGraphConv(in_c, out_c)
        self.bn = nn.BatchNorm2d(out_c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        return self.relu(self.bn(self.conv(x, A)) + res)


class SpatialBottleneck(nn.Module):
    def __init__(self, in_c: int, out_c: int, residual: bool, reduction: int) -> None:
        super().__init__()
        inter = out_c // reduction
        if not residual:
            self.residual: nn.Module = _Zero()
        elif in_c == out_c:
            self.residual = _Identity()
        else:
            self.residual = _conv_bn(in_c, out_c)
        self.conv_down = nn.Conv2d(in_c, inter, 1)
        self.bn_down = nn.BatchNorm2d(inter)
        self.conv = SpatialGraphConv(inter, inter)
        self.bn = nn.BatchNorm2d(inter)
        self.conv_up = nn.Conv2d(inter, out_c, 1)
        self.bn_up = nn.BatchNorm2d(out_c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        x = self.relu(self.bn_down(self.conv_down(x)))
        x = self.relu(self.bn(self.conv(x, A)))
        return self.relu(self.bn_up(self.conv_up(x)) + res)


class TemporalBasic(nn.Module):
    def __init__(self, channels: int, residual: bool, stride: int) -> None:
        super().__init__()
        pad = (TEMPORAL_WINDOW - 1) // 2
        self.conv = nn.Conv2d(channels, channels, (TEMPORAL_WINDOW, 1), (stride, 1), (pad, 0))
        self.bn = nn.BatchNorm2d(channels)
        if not residual:
            self.residual: nn.Module = _Zero()
        elif stride == 1:
            self.residual = _Identity()
        else:
            self.residual = _conv_bn(channels, channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, res_module: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        return self.relu(self.bn(self.conv(x)) + res + res_module)


class TemporalBottleneck(nn.Module):
    """Bottleneck temporal block; strides 2 when ``get_res`` or ``stride != 1``. The original
    computes an "is main stream" stride flag and then overrides it; the resulting strides are
    reproduced (docs/upstream_differences.md, "ResGCN temporal stride flag (kept)")."""

    def __init__(self, channels: int, residual: bool, stride: int, reduction: int, get_res: bool) -> None:
        super().__init__()
        inter = channels // reduction
        if get_res:
            stride = 2
            self.residual: nn.Module = _conv_bn(channels, channels, 2)
        elif not residual:
            self.residual = _Zero()
        elif stride == 1:
            self.residual = _Identity()
        else:
            stride = 2
            self.residual = _conv_bn(channels, channels, 2)
        pad = (TEMPORAL_WINDOW - 1) // 2
        self.conv_down = nn.Conv2d(channels, inter, 1)
        self.bn_down = nn.BatchNorm2d(inter)
        self.conv = nn.Conv2d(inter, inter, (TEMPORAL_WINDOW, 1), (stride, 1), (pad, 0))
        self.bn = nn.BatchNorm2d(inter)
        self.conv_up = nn.Conv2d(inter, channels, 1)
        self.bn_up = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, res_module: torch.Tensor) -> torch.Tensor:
        res = self.residual(x)
        x = self.relu(self.bn_down(self.conv_down(x)))
        x = self.relu(self.bn(self.conv(x)))
        return self.relu(self.bn_up(self.conv_up(x)) + res + res_module)


class ResGCNModule(nn.Module):
    """Spatial graph block followed by a temporal block, with optional module residual.

    ``block`` sets the residuals: ``initial`` none, ``Basic`` module residual only,
    ``Bottleneck`` block residuals only.
    """

    def __init__(self, in_c: int, out_c: int, block: str, num_slices: int, num_joints: int,
                 stride: int = 1, reduction: int = 4, get_res: bool = False) -> None:
        super().__init__()
        if block not in ("initial", "Basic", "Bottleneck"):
            raise ValueError(f"ResGCN block must be 'initial', 'Basic' or 'Bottleneck', got {block!r}")
        module_res, block_res = {"initial": (False, False), "Basic": (True, False),
                                 "Bottleneck": (False, True)}[block]
        if not module_res:
            self.residual: nn.Module = _Zero()
        elif stride == 1 and in_c == out_c:
            self.residual = _Identity()
        else:
            self.residual = _conv_bn(in_c, out_c, stride)
        if block == "Bottleneck":
            self.scn: nn.Module = SpatialBottleneck(in_c, out_c, block_res, reduction)
            self.tcn: nn.Module = TemporalBottleneck(out_c, block_res, stride, reduction, get_res)
        else:
            self.scn = SpatialBasic(in_c, out_c, block_res)
            self.tcn = TemporalBasic(out_c, block_res, stride)
        self.edge = nn.Parameter(torch.ones(num_slices, num_joints, num_joints))

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        return self.tcn(self.scn(x, A * self.edge), self.residual(x))


class ResGCNInputBranch(nn.Module):
    """Data BatchNorm on one input feature group, then its stack of modules (all stride 1).

    ``A`` is the graph adjacency, a persistent buffer as in upstream's checkpoints (one copy per
    branch); the branch's modules use it.
    """

    def __init__(self, channels: Sequence[int], block: str, A: torch.Tensor, reduction: int) -> None:
        super().__init__()
        self.register_buffer("A", A.clone())
        num_slices, num_joints = A.shape[0], A.shape[1]
        self.bn = nn.BatchNorm2d(channels[0])
        self.layers = nn.ModuleList(
            ResGCNModule(channels[i], channels[i + 1], "initial" if i == 0 else block,
                         num_slices, num_joints, reduction=reduction)
            for i in range(len(channels) - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(x)
        for layer in self.layers:
            x = layer(x, self.A)
        return x


class ResGCN(nn.Module):
    """Multi-branch ResGCN: ``[N, I, C, T, V] -> [N, num_class]``.

    Args:
        joint_format: skeleton layout of the graph (max_hop 3 -> 4 adjacency slices).
        input_num: I, the number of input branches.
        input_branch: channel widths of each branch, e.g. ``[5, 64, 32]``.
        main_stream: widths of the shared stream, e.g. ``[32, 128, 256]``.
        num_class: embedding size of the linear head.
        block: ``Bottleneck`` or ``Basic``.
        reduction: bottleneck reduction r.
    """

    def __init__(self, joint_format: str, input_num: int, input_branch: Sequence[int],
                 main_stream: Sequence[int], num_class: int, block: str = "Bottleneck",
                 reduction: int = 4) -> None:
        super().__init__()
        A = spatial_adjacency(joint_format, max_hop=3)
        self.register_buffer("A", A, persistent=False)
        num_slices, num_joints = A.shape[0], A.shape[1]
        # upstream's names: ``head`` holds the input branches, ``backbone`` the main stream
        self.head = nn.ModuleList(ResGCNInputBranch(input_branch, block, A, reduction) for _ in range(input_num))
        layers: List[nn.Module] = []
        for i in range(len(main_stream) - 1):
            in_c = main_stream[i] * (input_num if i == 0 else 1)
            out_c = main_stream[i + 1]
            stride = 1 if (i == 0 or main_stream[i] == out_c) else 2
            layers.append(ResGCNModule(in_c, out_c, block, num_slices, num_joints,
                                       stride=stride, reduction=reduction, get_res=(i == 0)))
        self.backbone = nn.ModuleList(layers)
        self.fcn = nn.Linear(main_stream[-1], num_class)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, I, C, T, V = x.shape
        x = torch.cat([branch(x[:, i]) for i, branch in enumerate(self.head)], dim=1)
        for layer in self.backbone:
            x = layer(x, self.A)
        x = x.mean(dim=(2, 3))
        return self.fcn(x)

    def zero_init_last_bn(self) -> None:
        """Zero the ``bn_up`` weights of every Bottleneck block; runs after the generic init
        (docs/models.md#initialisation)."""
        for module in self.modules():
            if isinstance(module, (SpatialBottleneck, TemporalBottleneck)):
                nn.init.zeros_(module.bn_up.weight)
