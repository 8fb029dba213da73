"""GaitGraph2 (Teepe et al., 2022): a three-branch ResGCN on joint, velocity and bone features.

Input per sample is ``GaitGraph_MultiInput``'s ``[T, V, 3 branches, 5 channels]``. At test
time with ``tta`` the raw pose (branch 0, channels x, y, confidence) is also reversed in time
and left/right-swapped, the features are rebuilt for both (batched on the device, same math
as the transform) and the three embeddings are concatenated: ``[N, 3 * num_class, 1]``.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch

from ...data.skeleton import get_joint_format
from ...registry import MODELS
from ..base_model import BaseModel
from ..features import gaitgraph_multi_input
from ..layers.resgcn import ResGCN
from .pose_summary import pose_summary


@MODELS.register("GaitGraph2")
class GaitGraph2(BaseModel):
    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, joint_format: str = "coco", input_num: int = 3, reduction: int = 8,
               block: str = "Bottleneck", input_branch: Sequence[int] = (5, 64, 32),
               main_stream: Sequence[int] = (32, 128, 256), num_class: int = 128, tta: bool = True) -> None:
        self.joint_format = joint_format
        self.tta = tta
        self.ResGCN = ResGCN(  # upstream's attribute name (state-dict prefix "ResGCN.")
            joint_format, input_num, input_branch, main_stream, num_class, block, reduction)
        self.register_buffer("flip_index", torch.as_tensor(get_joint_format(joint_format).flip_array()),
                             persistent=False)

    def after_init(self) -> None:
        self.ResGCN.zero_init_last_bn()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, T, V, I, C]`` multi-input features -> ``[N, num_class]``."""
        return self.ResGCN(x.permute(0, 3, 4, 1, 2).contiguous())

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, _ = inputs
        x = ipts[0]  # [N, T, V, I, C]
        if self.training or not self.tta:
            embed = self.embed(x)
            embeddings = embed.unsqueeze(-1)
        else:
            pose = x[..., 0, :3]  # x, y, confidence of branch 0
            reversed_pose = pose.flip(1)
            flipped_pose = pose[:, :, self.flip_index]
            extra = gaitgraph_multi_input(torch.cat([reversed_pose, flipped_pose]), self.joint_format)
            embed = self.embed(torch.cat([x, extra.to(x.dtype)]))
            embed = torch.cat(embed.chunk(3), dim=1)  # original | reversed | flipped
            embeddings = embed.unsqueeze(-1)
        return {
            "training_feat": {"SupConLoss": {"features": embed, "labels": labels}},
            "visual_summary": pose_summary(x[..., 0, :3]),
            "inference_feat": {"embeddings": embeddings},
        }
