"""GaitTR (Zhang et al., 2022): temporal convolutions and a spatial transformer over the joints.

Input per sample is ``GaitTR_MultiInput`` + ``SkeletonInput``: ``[C=10, T, V, M=1]`` (joint,
joint relative to the centre, two velocities, bone). The batch ``[N, 10, T, V, M]`` goes
through a data BatchNorm over the flattened ``(M, V, C)`` channels of each frame, a stack of
:class:`~fastposegait.modeling.layers.gaittr_layers.TCNSTBlock` (``in_channels[i] ->
in_channels[i + 1]``), average pooling over joints, persons and frames, and a 1x1 Conv1d head
to ``num_class``. Embeddings are ``[N, num_class, 1]`` in training and evaluation; the
``triplet`` entry of ``training_feat`` feeds ``TripletLoss``.

Packed batches (``all``/``unfixed`` sampling: sequences concatenated along time, lengths in
``seqL``) are embedded sequence by sequence in one call. In evaluation they are padded to
the longest sequence and run as one batch: every block's input is zeroed on the padded frames
(what the temporal convolution's own zero padding would see) and the frame average covers the
real frames only, so each embedding equals that of its sequence alone (up to float rounding).
In training, where BatchNorm would see the padding, each sequence runs separately. The
original pools a packed batch as one walk (docs/upstream_differences.md, "GaitTR on packed
batches").
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from ...errors import ConfigError
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

    accepts_packed_sequences = True

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
        # The original hands the graph (max_hop 3) to every spatial module, which ignores it; it
        # is kept as a buffer of the model (it moves with .to(device)) and nothing computes on it
        # (docs/upstream_differences.md, "GaitTR attention ignores the graph (kept)").
        A = spatial_adjacency(joint_format, max_hop=3)
        self.register_buffer("A", A, persistent=False)
        num_joints = A.shape[1]
        self.num_joints = num_joints
        self.data_bn = nn.BatchNorm1d(in_channels[0] * num_joints)
        self.backbone = nn.ModuleList(
            TCNSTBlock(in_channels[i], in_channels[i + 1], num_joints) for i in range(len(in_channels) - 1)
        )
        self.fcn = nn.Conv1d(in_channels[-1], num_class, 1)

    def embed(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[N, C, T, V, M]`` features -> ``[N, num_class]``. With ``lengths`` ``[N]``, sample i
        holds ``lengths[i]`` real frames followed by padding that does not affect its result."""
        N, C, T, V, M = x.shape
        # data BN: channels are the flattened (M, V, C) of each frame
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T))
        x = x.reshape(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        valid = None
        if lengths is not None:
            valid = torch.arange(T, device=x.device) < lengths.to(x.device).unsqueeze(1)  # [N, T]
            frame_mask = valid.repeat_interleave(M, dim=0)[:, None, :, None].to(x.dtype)  # [N*M, 1, T, 1]
        for block in self.backbone:
            if valid is not None:
                x = x * frame_mask
            x = block(x)
        x = x.mean(3)  # joints -> [N*M, C', T]
        x = x.reshape(N, M, -1, T).mean(1)  # persons -> [N, C', T]
        if valid is None:
            x = x.mean(2, keepdim=True)  # frames -> [N, C', 1]
        else:
            w = valid.to(x.dtype).unsqueeze(1)  # [N, 1, T]
            x = (x * w).sum(2, keepdim=True) / w.sum(2, keepdim=True)
        return self.fcn(x).reshape(N, self.num_class)

    def embed_packed(self, x: torch.Tensor, seq_lengths: torch.Tensor) -> torch.Tensor:
        """``x`` ``[1, C, sum(T_i), V, M]`` holding ``len(seq_lengths)`` walks -> ``[b, num_class]``."""
        lengths = [int(n) for n in seq_lengths.reshape(-1).tolist()]
        pieces = x[0].split(lengths, dim=1)  # b x [C, T_i, V, M]
        if self.training:  # BatchNorm statistics must not see padding: one walk per call
            return torch.cat([self.embed(p.unsqueeze(0)) for p in pieces])
        padded = pad_sequence([p.transpose(0, 1) for p in pieces], batch_first=True)  # [b, Tmax, C, V, M]
        return self.embed(padded.transpose(1, 2), torch.tensor(lengths, device=x.device))

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, seq_lengths = inputs
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
        if seq_lengths is None:
            embed = self.embed(x).unsqueeze(-1)  # [N, num_class, 1]
        else:
            if N != 1:
                raise ValueError(f"GaitTR: a packed batch (seqL given) must have batch dimension 1, got {N}")
            embed = self.embed_packed(x, seq_lengths).unsqueeze(-1)
        return {
            "training_feat": {"triplet": {"embeddings": embed, "labels": labels}},
            "visual_summary": pose_summary(x[:, :2, :, :, 0].permute(0, 2, 3, 1)),
            "inference_feat": {"embeddings": embed},
        }
