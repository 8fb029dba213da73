"""GaitGraph1 (Teepe et al., 2021): a single-branch ResGCN on raw keypoints, trained with a
supervised contrastive loss on two views of each walk.

Input per sample is ``SkeletonInput``'s ``[C=3, T, V, 1]`` (x, y, confidence); the batch is
``[N, 3, T, V, 1]``. In training the ``TwoView`` transform has stacked two independently
augmented crops of each sequence along time, so the model splits time in halves and embeds
both halves as separate samples: ``training_feat`` holds the two L2-normalised embeddings
of each sequence, ``[N, 2, num_class]``, for ``SupConLoss_Re``. At test time with ``tta``
the time-reversed sequence is embedded too and the embedding is the mean of the two
normalised embeddings, ``[N, num_class, 1]``. (In eval mode ``training_feat`` holds the
sequence and its reversal as the two views, or the single view without ``tta``, so a
validation loss can be computed.)
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ...registry import MODELS
from ..base_model import BaseModel
from ..layers.resgcn import ResGCN
from .pose_summary import pose_summary


def check_resgcn_cfg(model: str, input_num: Any, block: Any, input_branch: Any, main_stream: Any,
                     num_class: Any) -> None:
    """Raise a :class:`ConfigError` naming the ``model_cfg`` key of a malformed ResGCN setting."""
    def positive_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if block not in ("Bottleneck", "Basic"):
        raise ConfigError(f"model_cfg.block of {model} must be 'Bottleneck' or 'Basic', got {block!r}")
    if not positive_int(input_num):
        raise ConfigError(f"model_cfg.input_num of {model} must be a positive integer, got {input_num!r}")
    if not positive_int(num_class):
        raise ConfigError(f"model_cfg.num_class of {model} must be a positive integer, got {num_class!r}")
    for key, widths in (("input_branch", input_branch), ("main_stream", main_stream)):
        if not (isinstance(widths, (list, tuple)) and len(widths) >= 2 and all(positive_int(w) for w in widths)):
            raise ConfigError(f"model_cfg.{key} of {model} must be a list of at least two positive "
                              f"integers (channel widths), got {widths!r}")


@MODELS.register("GaitGraph1")
class GaitGraph1(BaseModel):
    """ResGCN embedding of raw poses; see the module docstring.

    ``model_cfg`` keys (docs/models.md#gaitgraph1): ``joint_format``, ``input_num`` (1), ``reduction``,
    ``block``, ``input_branch`` (e.g. ``[3, 64, 64, 32]``), ``main_stream`` (e.g.
    ``[32, 128, 128, 256, 256]``), ``num_class`` (embedding size), ``tta``.
    """

    #: ``input_branch[0]`` is the channels per joint the raw poses must have (3: x, y, confidence)
    input_channels_key = "input_branch"

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, joint_format: str = "coco", input_num: int = 1, reduction: int = 8,
               block: str = "Bottleneck", input_branch: Sequence[int] = (3, 64, 64, 32),
               main_stream: Sequence[int] = (32, 128, 128, 256, 256), num_class: int = 128,
               tta: bool = True) -> None:
        check_resgcn_cfg("GaitGraph1", input_num, block, input_branch, main_stream, num_class)
        self.joint_format = joint_format
        self.input_num = int(input_num)
        self.in_channels = int(input_branch[0])
        self.tta = bool(tta)
        self.ResGCN = ResGCN(  # upstream's attribute name (state-dict prefix "ResGCN.")
            joint_format, input_num, input_branch, main_stream, num_class, block, reduction)

    def after_init(self) -> None:
        self.ResGCN.zero_init_last_bn()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, T, V, I, C]`` poses -> L2-normalised embeddings ``[N, num_class]``."""
        return F.normalize(self.ResGCN(x.permute(0, 3, 4, 1, 2).contiguous()), p=2, dim=1)

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, _ = inputs
        x = ipts[0]
        if x.dim() != 5:
            raise ValueError(f"GaitGraph1 expects a batch [N, C, T, V, M] (SkeletonInput), got shape {tuple(x.shape)}")
        N, C, T, V, M = x.shape
        if M != self.input_num:
            raise ValueError(f"GaitGraph1 was built with input_num={self.input_num} but the batch has "
                             f"{M} inputs on its last axis (shape {tuple(x.shape)})")
        if C != self.in_channels:
            raise ValueError(f"GaitGraph1 was built for {self.in_channels} input channels "
                             f"(model_cfg.input_branch[0]) but the batch has C={C} (shape {tuple(x.shape)})")
        x = x.permute(0, 2, 3, 4, 1)  # [N, T, V, I, C]
        summary = pose_summary(x[:, :, :, 0])
        if self.training:
            if T % 2:
                raise ValueError(
                    f"GaitGraph1 trains on two views stacked along time (the TwoView transform), so T "
                    f"must be even; got T={T} (shape {tuple(ipts[0].shape)})"
                )
            views = list(x.chunk(2, dim=1))  # the two augmented crops
        elif self.tta:
            views = [x, x.flip(1)]  # the sequence and its time reversal
        else:
            views = [x]
        embed = self.embed(torch.cat(views))
        features = torch.stack(embed.chunk(len(views)), dim=1)  # [N, views, num_class]; chunk: traceable for any N
        return {
            "training_feat": {"SupConLoss": {"features": features, "labels": labels}},
            "visual_summary": summary,
            "inference_feat": {"embeddings": features.mean(1).unsqueeze(-1)},
        }
