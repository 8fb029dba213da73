"""GPGait (Fu et al., 2023): part-aware GCN branches on joint positions, bones and angles.

Input per sample is ``RescaleCenter`` -> ``HOD_MultiInput`` -> ``SkeletonInput``:
``[6, T, 17, 1]`` with channels 0-1 joint x, y (COCO), 2-3 bone vector, 4 joint angle,
5 unused. Three :class:`~fastposegait.modeling.layers.pagcn.BranchPAGCN` s embed them:

* ``pose`` on channels 0-1 (COCO graph, 8 parts),
* ``bone`` on channels 2-3 (COCO graph, 8 parts),
* ``angle`` on channel 4 of joints 5..16 (``coco-no-head`` graph, 3 parts),

giving 19 part features of ``in_channels[-1]`` channels, then a separate FC per part and the
BNNeck classifier. Training feeds the FC output to the triplet loss and the BNNeck logits to
the cross-entropy loss; test embeddings are the BNNeck's L2-normalised features
``[N, 256, 19]``.

The model honours ``seqL``: a packed ``all_ordered`` test batch ``[1, 6, sum T_i, 17, 1]``
yields one embedding per sequence, identical to running the sequences separately.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch

from ...errors import ConfigError
from ...registry import MODELS
from ..base_model import BaseModel
from ..layers.heads import SeparateBNNecks, SeparateFCs
from ..layers.pagcn import BranchPAGCN, make_segments
from .pose_summary import pose_summary

NUM_JOINTS = 17  # COCO; the angle branch uses joints 5..16
INPUT_CHANNELS = 5  # x, y, bone x, bone y, angle (a sixth, zero channel may follow)
ANGLE_JOINTS = slice(5, 17)


@MODELS.register("gpgait", aliases=("GPGait",))
class GPGait(BaseModel):
    """GPGait; ``model_cfg``: ``in_channels`` (e.g. ``[2, 64, 64, 128, 256]``), ``num_class``
    (training identities), ``share_num`` (number of shared blocks per branch)."""

    accepts_packed_sequences = True
    #: the model's name in the input-shape error (subclasses that share this forward set theirs)
    input_error_name = "GPGait"

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, in_channels: Sequence[int], num_class: int, share_num: int = 3) -> None:
        in_channels = list(in_channels)
        if len(in_channels) < 3 or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0
                                           for c in in_channels):
            raise ConfigError(
                f"model_cfg.in_channels must be a list of at least 3 positive integers, got {in_channels!r}"
            )
        if not (isinstance(share_num, int) and 0 <= share_num <= len(in_channels) - 2):
            raise ConfigError(
                f"model_cfg.share_num must be an integer in [0, {len(in_channels) - 2}] for in_channels "
                f"{in_channels} (each path keeps at least one block), got {share_num!r}"
            )
        if not (isinstance(num_class, int) and num_class > 0):
            raise ConfigError(f"model_cfg.num_class must be a positive integer, got {num_class!r}")
        self.num_class = num_class
        # registered (and so initialised and saved) in upstream's order: bone, pose, angle; the
        # forward concatenates their parts as pose, bone, angle
        self.bone = BranchPAGCN(in_channels, share_num, first_c=2, joint_format="coco")
        self.pose = BranchPAGCN(in_channels, share_num, first_c=2, joint_format="coco")
        self.angle = BranchPAGCN(in_channels, share_num, first_c=1, joint_format="coco-no-head")
        self.num_parts = self.pose.num_parts + self.bone.num_parts + self.angle.num_parts
        width = in_channels[-1]
        self.head = SeparateFCs(self.num_parts, width, width)
        self.BNNecks = SeparateBNNecks(  # upstream's attribute name
            self.num_parts, width, num_class)

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, seq_lengths = inputs
        x = ipts[0]
        if x.dim() != 5 or x.shape[1] < INPUT_CHANNELS or x.shape[3] != NUM_JOINTS or x.shape[4] != 1:
            raise ValueError(
                f"{self.input_error_name} expects HOD_MultiInput + SkeletonInput features [N, 6, T, 17, 1] "
                f"(channels x, y, bone x, bone y, angle, 0; COCO joints), got shape {tuple(x.shape)}"
            )
        x = x[..., 0]  # [N, C, T, V]
        segments = make_segments(seq_lengths, x)
        parts = torch.cat([
            self.pose(x[:, 0:2], segments),
            self.bone(x[:, 2:4], segments),
            self.angle(x[:, 4:5, :, ANGLE_JOINTS], segments),
        ], dim=-1)  # [n, C, 19]
        embed = self.head(parts)
        features, logits = self.BNNecks(embed)
        return {
            "training_feat": {
                "triplet": {"embeddings": embed, "labels": labels},
                "softmax": {"logits": logits, "labels": labels},
            },
            # a few real poses (x, y per joint and frame); the original GPGait++ logs a reshaped view
            # of the input memory that is not a pose image (docs/upstream_differences.md)
            "visual_summary": pose_summary(x[:, 0:2].permute(0, 2, 3, 1)),
            "inference_feat": {"embeddings": features},
        }
