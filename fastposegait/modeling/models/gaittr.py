"""GaitTR (Zhang et al., 2022): temporal convolutions and a spatial transformer over the joints.

Input per sample is ``GaitTR_MultiInput`` + ``SkeletonInput``: ``[C=10, T, V, M=1]`` (joint,
joint relative to the centre, two velocities, bone). The batch ``[N, 10, T, V, M]`` goes
through a data BatchNorm over the flattened ``(M, V, C)`` channels of each frame, a stack of
:class:`~fastposegait.modeling.layers.gaittr_layers.TCNSTBlock` (``in_channels[i] ->
in_channels[i + 1]``), average pooling over joints, persons and frames, and a 1x1 Conv1d head
to ``num_class``. Embeddings are ``[N, num_class, 1]`` in training and evaluation; the
``triplet`` entry of ``training_feat`` feeds ``TripletLoss``.

GaitTR ignores ``seqL``: a packed test batch would be pooled as one walk, so the runner
feeds it one sequence at a time (``accepts_packed_sequences = False``, upstream Q11).
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
from torch import nn

from ...config import ConfigError
from ...registry import MODELS
from ..base_model import BaseModel
from ..graph import spatial_adjacency
from ..layers.gaittr_layers import KEY_FRACTION, NUM_HEADS, TCNSTBlock
from .pose_summary import pose_summary


def _check_in_channels(in_channels: Any) -> None:
    if not (isinstance(in_channels, (list, tuple)) and len(in_channels) >= 2
            and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in in_channels)):
        raise ConfigError(f"model_cfg.in_channels of GaitTR must be a list of at least two positive integers "
                          f"(input channels, then each block's width), got {in_channels!r}")
    for width in in_channels[1:]:
        dk = int(KEY_FRACTION * width)
        if width % NUM_HEADS or dk == 0 or dk % NUM_HEADS:
            raise ConfigError(
                f"model_cfg.in_channels of GaitTR: block width {width} does not split into {NUM_HEADS} attention "
                f"heads (needs width and int({KEY_FRACTION} * width) divisible by {NUM_HEADS}, e.g. 32, 64, 128)"
            )


@MODELS.register("GaitTR")
class GaitTR(BaseModel):
    """See the module docstring. ``model_cfg`` keys: ``in_channels`` (e.g.
    ``[10, 64, 64, 128, 256]``), ``num_class`` (embedding size), ``joint_format``."""

    accepts_packed_sequences = False

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, in_channels: Sequence[int] = (10, 64, 64, 128, 256), num_class: int = 128,
               joint_format: str = "coco") -> None:
        _check_in_channels(in_channels)
        if not (isinstance(num_class, int) and not isinstance(num_class, bool) and num_class > 0):
            raise ConfigError(f"model_cfg.num_class of GaitTR must be a positive integer, got {num_class!r}")
        self.joint_format = joint_format
        self.in_channels = list(in_channels)
        self.num_class = num_class
        # Upstream hands the graph (max_hop 3) to every spatial module, which ignores it; we
        # keep it as a buffer of the model (it moves with .to(device)) and do not compute on it.
        A = spatial_adjacency(joint_format, max_hop=3)
        self.register_buffer("A", A, persistent=False)
        num_joints = A.shape[1]
        self.num_joints = num_joints
        self.data_bn = nn.BatchNorm1d(in_channels[0] * num_joints)
        self.backbone = nn.ModuleList(
            TCNSTBlock(in_channels[i], in_channels[i + 1], num_joints) for i in range(len(in_channels) - 1)
        )
        self.fcn = nn.Conv1d(in_channels[-1], num_class, 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, V, M]`` features -> ``[N, num_class]``."""
        N, C, T, V, M = x.shape
        # data BN: channels are the flattened (M, V, C) of each frame
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T))
        x = x.reshape(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        for block in self.backbone:
            x = block(x)
        x = x.mean(3)  # joints -> [N*M, C', T]
        x = x.reshape(N, M, -1, T).mean(1)  # persons -> [N, C', T]
        x = x.mean(2, keepdim=True)  # frames -> [N, C', 1]
        return self.fcn(x).reshape(N, self.num_class)

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, _ = inputs
        x = ipts[0]
        if x.dim() != 5:
            raise ValueError(f"GaitTR expects a batch [N, C, T, V, M] (GaitTR_MultiInput + SkeletonInput), "
                             f"got shape {tuple(x.shape)}")
        N, C, T, V, M = x.shape
        if C != self.in_channels[0] or V != self.num_joints:
            raise ValueError(
                f"GaitTR was built for C={self.in_channels[0]} channels (model_cfg.in_channels[0]) and "
                f"V={self.num_joints} joints ({self.joint_format}), got a batch of shape {tuple(x.shape)}"
            )
        embed = self.embed(x).unsqueeze(-1)  # [N, num_class, 1]
        return {
            "training_feat": {"triplet": {"embeddings": embed, "labels": labels}},
            "visual_summary": pose_summary(x[:, :2, :, :, 0].permute(0, 2, 3, 1)),
            "inference_feat": {"embeddings": embed},
        }
