"""RawJointsNN: a parameter-free baseline, nearest neighbour on normalised joint positions.

Every frame is moved so the mid-hip is at the origin and scaled so the sequence's mean
shoulder-to-hip distance is 1 (this removes where the walker is in the image and how large
they appear); the embedding is each joint's mean and standard deviation of (x, y) over the
frames, ``[N, 4 * V, 1]``. The evaluator's nearest-neighbour search on these is what a
trained model has to beat: body proportions and the amount of motion per joint, without any
learning. There is nothing to train: use it with ``--phase test --iter 0``
(``configs/demo/raw_joints_nn.yaml``).
"""
from __future__ import annotations

from typing import Any, Dict

import torch

from ...data.skeleton import get_joint_format
from ...registry import MODELS
from ..base_model import BaseModel


@MODELS.register("RawJointsNN")
class RawJointsNN(BaseModel):
    """``model_cfg``: ``joint_format`` (``coco`` or ``openpose``). Input ``[N, C>=2, T, V, 1]``
    (``SkeletonInput``); packed batches (``seqL``) are handled per sequence by the runner."""

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, joint_format: str = "coco") -> None:
        names = get_joint_format(joint_format).joint_names
        self.num_joints = len(names)
        hips = [names.index("left_hip"), names.index("right_hip")]
        shoulders = [names.index("left_shoulder"), names.index("right_shoulder")]
        self.register_buffer("hips", torch.tensor(hips), persistent=False)
        self.register_buffer("shoulders", torch.tensor(shoulders), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, V, 1]`` -> ``[N, 4V]``: per-joint mean and std of normalised (x, y)."""
        xy = x[:, :2, :, :, 0].permute(0, 2, 3, 1).double()  # [N, T, V, 2]
        hip = xy[:, :, self.hips].mean(2, keepdim=True)  # [N, T, 1, 2]
        shoulder = xy[:, :, self.shoulders].mean(2, keepdim=True)
        torso = (shoulder - hip).norm(dim=-1).mean(dim=(1, 2))  # [N]
        norm = (xy - hip) / torso.clamp(min=1e-6)[:, None, None, None]
        feats = torch.cat([norm.mean(1), norm.std(1, unbiased=False)], dim=-1)  # [N, V, 4]
        return feats.reshape(len(x), -1).to(x.dtype)

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, _ = inputs
        x = ipts[0]
        if x.dim() != 5 or x.shape[3] != self.num_joints:
            raise ValueError(f"RawJointsNN expects [N, C, T, V={self.num_joints}, 1] (SkeletonInput), "
                             f"got shape {tuple(x.shape)}")
        embeddings = self.embed(x).unsqueeze(-1)
        return {"training_feat": {}, "visual_summary": {}, "inference_feat": {"embeddings": embeddings}}
