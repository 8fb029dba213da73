"""DeepGaitV2 (pseudo-3-D mode), the CNN of SkeletonGait (Fan et al., 2024).

SkeletonGait is this model fed with two-channel skeleton maps (limbs, joints) instead of
silhouettes; the original has no separate SkeletonGait class, so the model is registered as
``DeepGaitV2`` with the alias ``SkeletonGait`` (docs/models.md, "SkeletonGait (DeepGaitV2)").

Input ``[n, s, C, H, W]`` maps (values 0..1; SkeletonGait: C = 2, 64 x 44 after the cutting
transform), or ``[n, s, H, W]`` silhouettes (C = 1). Network, with channels
``[c0, c1, c2, c3]`` (SkeletonGait: 64, 128, 256, 512) and ``layers`` blocks per stage:

* layer0: per frame conv3x3(C -> c0) -> BN -> ReLU;
* layer1: per frame BasicBlock2D(c0 -> c0) x layers[0];
* layer2..4: BasicBlockP3D x layers[i], the first block of each going to c1 (spatial stride
  2), c2 (stride 2), c3 (stride 1) with a Conv3d 1x1x1 + BN3d shortcut;
* temporal max pooling per sequence, 16 horizontal strips (mean + max), SeparateFCs
  (c3 -> c2 per strip), SeparateBNNecks (c2, ``class_num``).

Outputs: the FC features ``[n, c2, 16]`` for the triplet loss, the BNNeck cosine logits
``[n, class_num, 16]`` for the cross-entropy loss; test embeddings are the FC features, or
the BNNeck's L2-normalised features with ``use_emb2: true``.

Packed test batches (``seqL``, n = 1) are honoured: each sequence gets its own temporal
convolution padding and its own pooling, so the result equals running the sequences one by one.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import MODELS
from ..base_model import BaseModel
from ..layers import heads
from ..layers.p3d import (BasicBlock2D, BasicBlockP3D, PerFrame, conv3x3, horizontal_pooling, p3d_downsample,
                          temporal_max)

#: horizontal strips of the final feature map (the original's HorizontalPoolingPyramid bins)
NUM_PARTS = 16
#: input widths the network is built for: 64 x 44 maps (or 128 x 88)
INPUT_WIDTHS = (44, 88)
#: spatial strides of layer2, layer3, layer4 (pseudo-3-D mode)
STAGE_STRIDES = (2, 2, 1)
BACKBONE_KEYS = ("in_channels", "mode", "channels", "layers")


def _positive_ints(value: Any, count: int) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == count
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))


@MODELS.register("DeepGaitV2", aliases=("SkeletonGait",))
class DeepGaitV2(BaseModel):
    """DeepGaitV2 in ``p3d`` mode; ``model_cfg``: ``Backbone`` ({``in_channels``, ``mode``,
    ``channels`` (4 widths), ``layers`` (4 block counts)}), ``SeparateBNNecks``
    ({``class_num``: training identities}), ``use_emb2`` (test with the BNNeck features)."""

    accepts_packed_sequences = True

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self._build(**self.cfg_args(self._build, model_cfg))

    def _build(self, Backbone: Mapping[str, Any], SeparateBNNecks: Mapping[str, Any],  # noqa: N803 (upstream keys)
               use_emb2: bool = False) -> None:
        in_channels, channels, layers = _read_backbone(Backbone)
        class_num = _read_class_num(SeparateBNNecks)
        self.in_channels = in_channels
        self.use_emb2 = bool(use_emb2)
        c0 = channels[0]
        self.layer0 = PerFrame(nn.Sequential(conv3x3(in_channels, c0), nn.BatchNorm2d(c0), nn.ReLU(inplace=True)))
        self.layer1 = PerFrame(nn.Sequential(*[BasicBlock2D(c0, c0) for _ in range(layers[0])]))
        self.layer2 = _p3d_stage(c0, channels[1], layers[1], STAGE_STRIDES[0])
        self.layer3 = _p3d_stage(channels[1], channels[2], layers[2], STAGE_STRIDES[1])
        self.layer4 = _p3d_stage(channels[2], channels[3], layers[3], STAGE_STRIDES[2])
        self.FCs = heads.SeparateFCs(NUM_PARTS, channels[3], channels[2])  # upstream's attribute names
        self.BNNecks = heads.SeparateBNNecks(NUM_PARTS, channels[2], class_num)

    def init_parameters(self) -> None:
        """The original's generic initialisation for this model: Xavier-uniform convolutions
        (2-D and 3-D), every affine BatchNorm's scale drawn from N(1, 0.02) and shift 0. The
        part-wise FC and BNNeck matrices keep their Xavier init from construction."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:
        ipts, labels, _, _, seq_lengths = inputs
        maps = self._check_input(ipts[0])  # [n, s, C, H, W]
        lengths = _packed_lengths(seq_lengths, maps)
        x = maps.transpose(1, 2).contiguous()  # [n, C, s, H, W]
        x = self.layer1(self.layer0(x))
        for stage in (self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = block(x, lengths)
        pooled = temporal_max(x, lengths)  # [b, c3, h, w]
        embed = self.FCs(horizontal_pooling(pooled, NUM_PARTS))  # [b, c2, 16]
        features, logits = self.BNNecks(embed)
        return {
            "training_feat": {
                "triplet": {"embeddings": embed, "labels": labels},
                "softmax": {"logits": logits, "labels": labels},
            },
            "visual_summary": _map_summary(maps),
            "inference_feat": {"embeddings": features if self.use_emb2 else embed},
        }

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and self.in_channels == 1:  # silhouettes [n, s, H, W]
            x = x.unsqueeze(2)
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(
                f"DeepGaitV2 expects maps [n, s, {self.in_channels}, H, W] (Backbone.in_channels = "
                f"{self.in_channels}), got shape {tuple(x.shape)}"
            )
        height, width = x.shape[-2:]
        if width not in INPUT_WIDTHS or height % (4 * NUM_PARTS):
            raise ValueError(
                f"DeepGaitV2 takes maps 44 or 88 pixels wide with a height divisible by {4 * NUM_PARTS} "
                f"(64 x 44 skeleton maps), got {height} x {width}: cut the 64 x 64 maps to their central "
                "44 columns with the BaseSilCuttingTransform transform"
            )
        return x


def _read_backbone(backbone: Mapping[str, Any]):
    if not isinstance(backbone, Mapping):
        raise ConfigError(f"model_cfg.Backbone must be a mapping with keys {', '.join(BACKBONE_KEYS)}, "
                          f"got {backbone!r}")
    unknown = [k for k in backbone if k not in BACKBONE_KEYS]
    if unknown:
        raise ConfigError(f"model_cfg.Backbone: unknown key(s) {', '.join(map(str, unknown))} for model DeepGaitV2; "
                          f"accepted keys: {', '.join(BACKBONE_KEYS)}")
    missing = [k for k in ("in_channels", "channels", "layers") if k not in backbone]
    if missing:
        raise ConfigError(f"model_cfg.Backbone needs key(s) {', '.join(missing)}")
    mode = backbone.get("mode", "p3d")
    if mode != "p3d":
        raise ConfigError(
            f"model_cfg.Backbone.mode: {mode!r} is not supported; only 'p3d' (pseudo-3-D blocks, SkeletonGait's "
            "mode) is implemented (the original's '2d' and '3d' modes are not)"
        )
    in_channels = backbone["in_channels"]
    if not (isinstance(in_channels, int) and not isinstance(in_channels, bool) and in_channels > 0):
        raise ConfigError(f"model_cfg.Backbone.in_channels must be a positive integer (2 for skeleton maps), "
                          f"got {in_channels!r}")
    channels, layers = backbone["channels"], backbone["layers"]
    if not _positive_ints(channels, 4):
        raise ConfigError(f"model_cfg.Backbone.channels must be 4 positive integers (e.g. [64, 128, 256, 512]), "
                          f"got {channels!r}")
    if not _positive_ints(layers, 4):
        raise ConfigError(f"model_cfg.Backbone.layers must be 4 positive integers (blocks per stage, e.g. "
                          f"[1, 1, 1, 1]), got {layers!r}")
    return in_channels, list(channels), list(layers)


def _read_class_num(necks: Mapping[str, Any]) -> int:
    if not isinstance(necks, Mapping) or set(necks) != {"class_num"}:
        raise ConfigError(f"model_cfg.SeparateBNNecks must be a mapping with the one key class_num (the number "
                          f"of training identities), got {necks!r}")
    class_num = necks["class_num"]
    if not (isinstance(class_num, int) and not isinstance(class_num, bool) and class_num > 0):
        raise ConfigError(f"model_cfg.SeparateBNNecks.class_num must be a positive integer (training identities), "
                          f"got {class_num!r}")
    return class_num


def _p3d_stage(in_c: int, out_c: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` BasicBlockP3D; the first changes width and stride, with a downsampling
    shortcut when either changes."""
    downsample = p3d_downsample(in_c, out_c, stride) if stride > 1 or in_c != out_c else None
    first = BasicBlockP3D(in_c, out_c, stride, downsample)
    return nn.Sequential(first, *[BasicBlockP3D(out_c, out_c) for _ in range(blocks - 1)])


def _packed_lengths(seq_lengths: Optional[torch.Tensor], x: torch.Tensor) -> Optional[List[int]]:
    """The sequence lengths of a packed batch (n = 1, ``seqL`` summing to its frames), or None
    for a stacked batch or a packed batch of one sequence."""
    if seq_lengths is None:
        return None
    lengths = [int(v) for v in torch.as_tensor(seq_lengths).reshape(-1).tolist()]
    frames = x.shape[1]
    if x.shape[0] != 1 or sum(lengths) != frames or min(lengths, default=0) <= 0:
        raise ValueError(
            f"seqL {lengths} does not describe a packed batch of shape {tuple(x.shape)}: a packed batch has "
            f"batch size 1 and positive lengths that sum to its {frames} frames"
        )
    return lengths if len(lengths) > 1 else None


def _map_summary(maps: torch.Tensor, frames: int = 4) -> Dict[str, torch.Tensor]:
    """A few frames of the first sequence, each channel side by side: ``[k, 1, H, C * W]``."""
    x = maps[0, :frames].detach()  # [k, C, H, W]
    k, c, h, w = x.shape
    return {"image/maps": x.permute(0, 2, 1, 3).reshape(k, 1, h, c * w)}
