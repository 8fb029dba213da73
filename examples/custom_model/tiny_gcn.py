"""A complete user extension, kept outside the package: a model, a transform and a loss.

``examples/custom_model/tiny_gcn.yaml`` lists this file under ``custom_imports``; importing it
runs the ``register`` decorators, after which the YAML can name ``TinyGCN``,
``CenterOnHips`` and ``CenterLoss`` like any built-in. Nothing in ``fastposegait/`` is edited.
docs/implement_new_models.md and docs/customize_data_transforms.md walk through it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from fastposegait.data.skeleton import get_joint_format
from fastposegait.data.transforms import Transform
from fastposegait.modeling import BaseModel
from fastposegait.modeling.graph import spatial_adjacency
from fastposegait.modeling.losses.base import BaseLoss, LossOutput
from fastposegait.registry import LOSSES, MODELS, TRANSFORMS


@TRANSFORMS.register("CenterOnHips")
class CenterOnHips(Transform):
    """Move every frame so the mid-hip is at the origin and scale the whole sequence so
    the mean shoulder-to-hip distance is 1; confidences are kept.

    Removes where the walker is in the image and how large they appear, which are camera
    properties rather than identity. A new array is returned; the input is never modified.

    Args:
        joint_format: skeleton layout of the input (``coco``; ``openpose`` also works).
    """

    def __init__(self, joint_format: str = "coco") -> None:
        self.joint_format = joint_format
        names = get_joint_format(joint_format).joint_names
        self._hips = [names.index("left_hip"), names.index("right_hip")]
        self._shoulders = [names.index("left_shoulder"), names.index("right_shoulder")]

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        out = np.array(seq, dtype=np.float64, copy=True)
        hip = out[:, self._hips, :2].mean(axis=1, keepdims=True)  # [T, 1, 2]
        shoulder = out[:, self._shoulders, :2].mean(axis=1, keepdims=True)
        torso = float(np.linalg.norm(shoulder - hip, axis=-1).mean())
        out[..., :2] = (out[..., :2] - hip) / max(torso, 1e-6)
        return out


class GraphTemporalBlock(nn.Module):
    """Graph convolution over joints (one weight per hop distance) then a temporal convolution."""

    def __init__(self, in_c: int, out_c: int, num_hops: int) -> None:
        super().__init__()
        self.num_hops = num_hops
        self.spatial = nn.Conv2d(in_c, out_c * num_hops, 1)
        self.temporal = nn.Conv2d(out_c, out_c, (9, 1), padding=(4, 0))
        self.bn = nn.BatchNorm2d(out_c)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        N, _, T, V = x.shape
        y = self.spatial(x).view(N, self.num_hops, -1, T, V)
        y = torch.einsum("nkctv,kvw->nctw", y, A)
        return torch.relu(self.bn(self.temporal(torch.relu(y))))


@MODELS.register("TinyGCN")
class TinyGCN(BaseModel):
    """A two-block spatial-temporal GCN that embeds a pose sequence into one vector.

    Input (after ``SkeletonInput``): ``[N, C, T, V, 1]``. Output embeddings ``[N, D, 1]``
    for the evaluator; in training the same embeddings go to the loss named ``triplet`` and
    to the one named ``center``.

    model_cfg keys:
        joint_format: skeleton layout (builds the graph).
        in_channels: channels per joint of the input (3 for x, y, confidence).
        hidden: width of the first block.
        embedding: size D of the output embedding.
    """

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, joint_format: str = "coco", in_channels: int = 3, hidden: int = 32,
               embedding: int = 64) -> None:
        A = spatial_adjacency(joint_format, max_hop=1)  # [2, V, V]: self and neighbours
        self.register_buffer("A", A, persistent=False)  # moves with .to(device); not saved
        num_joints = A.shape[-1]
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        self.block1 = GraphTemporalBlock(in_channels, hidden, A.shape[0])
        self.block2 = GraphTemporalBlock(hidden, embedding, A.shape[0])
        self.head = nn.Linear(embedding, embedding)

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _types, _views, _seq_lengths = inputs
        x = ipts[0].squeeze(-1)  # [N, C, T, V]
        N, C, T, V = x.shape
        x = self.data_bn(x.permute(0, 1, 3, 2).reshape(N, C * V, T))  # normalise each joint channel
        x = x.view(N, C, V, T).permute(0, 1, 3, 2)
        x = self.block2(self.block1(x, self.A), self.A)
        embed = self.head(x.mean(dim=(2, 3)))  # [N, D]
        embeddings = embed.unsqueeze(-1)  # [N, D, 1]: one part
        return {
            "training_feat": {
                "triplet": {"embeddings": embeddings, "labels": labels},
                "center": {"features": embed, "labels": labels},
            },
            "visual_summary": {"image/pose": ipts[0][:4, :3, :, :, 0].permute(0, 2, 3, 1).detach()},
            "inference_feat": {"embeddings": embeddings},
        }


@LOSSES.register("CenterLoss")
class CenterLoss(BaseLoss):
    """Mean squared distance of each feature to the mean feature of its label in the batch.

    Pulls the sequences of one subject together; meant as a small extra term next to a
    triplet loss. Returns the loss and the values to log (``scalar/<log_prefix>/loss``).
    """

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        classes, index = torch.unique(labels, return_inverse=True)
        sums = torch.zeros(len(classes), features.shape[1], dtype=features.dtype, device=features.device)
        sums.index_add_(0, index, features)
        counts = torch.bincount(index, minlength=len(classes)).to(features.dtype).unsqueeze(1)
        centres = sums / counts
        loss = ((features - centres[index]) ** 2).sum(dim=1).mean()
        return loss, {"loss": loss.detach()}
