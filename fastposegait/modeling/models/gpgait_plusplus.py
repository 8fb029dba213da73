"""GPGait++ (Fu et al., TPAMI 2025): GPGait with per-frame part-aware graph convolutions and a
temporal convolution in every block. Registered as ``GPGait_PlusPlus`` (the original's name).

Same input, branches, pooling and head as GPGait (fastposegait/modeling/models/gpgait.py):
``[N, 6, T, 17, 1]`` from ``RescaleCenter`` -> ``HOD_MultiInput`` -> ``SkeletonInput``; three
branches ``pose`` (channels 0-1, COCO graph, 8 parts), ``bone`` (channels 2-3, COCO, 8 parts)
and ``angle`` (channel 4 of joints 5..16, ``coco-no-head``, 3 parts), built in that order; 19
part features of ``in_channels[-1]`` channels; a separate FC per part (``head``) and the BNNeck
classifier (``BNNecks``). Training feeds the FC output to the triplet loss and the BNNeck
logits to the cross-entropy loss; test embeddings are the BNNeck's L2-normalised features
``[N, C, 19]``.

What differs from GPGait (docs/models.md#gpgait-1):

* blocks are :class:`~fastposegait.modeling.layers.pagcn_plus.Part_AGCN_TCN` (per-frame
  attention, a 9-frame temporal convolution);
* every branch has exactly 3 shared blocks: ``share_num`` is read and, when it is not 3,
  ignored with a warning, as the original ignores it (its checkpoints then load; the OUMVLP
  config says 4);
* ``mask`` (default true) turns the blocks' part masks on or off; the pooling partitions are
  the same either way.

The model honours ``seqL``: a packed ``all_ordered`` test batch ``[1, 6, sum T_i, 17, 1]``
yields one embedding per walk, identical to running the walks separately, whatever the test
batch size (docs/upstream_differences.md, "GPGait++: one embedding per walk at test time").
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import MODELS
from ..layers.heads import SeparateBNNecks, SeparateFCs, _part_weight
from ..layers.pagcn import PARTITIONS, BranchInput, SemanticPyramidPooling, Segments, set_max_pool
from ..layers.pagcn_plus import Part_AGCN_TCN
from .gpgait import GPGait

logger = logging.getLogger(__name__)

SHARE_NUM = 3  # shared blocks per branch, whatever the config says
SHARED_PARTITION = 1  # five limb/head parts (four limbs without the head)

#: paths of a branch in registration (state-dict) order: name -> partition of its block masks
#: and of its pooling (None: whole graph, pooled as one part)
PATHS = {
    "coco": (("backbone", None), ("part_2", 2), ("part_2_2", 3), ("part_3_1", 4)),
    "coco-no-head": (("backbone", None), ("part_2", 2)),
}
#: order of the paths' pooled parts in the output
OUTPUT_ORDER = ("part_2", "part_2_2", "part_3_1", "backbone")


class GPGaitPlusPlusBranch(BranchInput):
    """One input branch (the original's ``NewNet``), ``[N, first_c, T, V] -> [n, C, parts]``.

    Data BatchNorm over the flattened (joint, channel) axis per frame; 3 shared blocks
    ``first_c -> c_1 -> c_2 -> c_3`` on partition 1; then per path the blocks
    ``c_3 -> ... -> c_L`` (none when ``len(in_channels) == 4``); per path, max over each
    sequence's frames and semantic pyramid pooling over that path's parts; the paths' parts
    concatenated as part_2, part_2_2, part_3_1, backbone.

    Args:
        in_channels: widths ``[c_0, c_1, ..., c_L]``; ``c_0`` is ignored (``first_c`` is the
            branch's input width, as in the original).
        first_c: input channels of this branch (2 for positions and bones, 1 for angles).
        joint_format: ``coco`` (4 paths, 8 parts) or ``coco-no-head`` (2 paths, 3 parts).
        mask: part masks in the blocks (see :class:`Part_AGCN_TCN`).
    """

    def __init__(self, in_channels: Sequence[int], first_c: int, joint_format: str, mask: bool = True) -> None:
        super().__init__(first_c, joint_format)
        joint_format = self.joint_format  # the canonical name
        partitions = PARTITIONS[joint_format]
        widths = [first_c, *in_channels[1:]]
        self.layer_share = nn.ModuleList(
            Part_AGCN_TCN(widths[i], widths[i + 1], joint_format, mask) for i in range(SHARE_NUM)
        )
        self.path_parts: Dict[str, Optional[int]] = dict(PATHS[joint_format])
        for name, part in PATHS[joint_format]:
            self.add_module(name, nn.ModuleList(
                Part_AGCN_TCN(widths[i], widths[i + 1], joint_format, mask) for i in range(SHARE_NUM, len(widths) - 1)
            ))
        self.pools = nn.ModuleDict({
            name: SemanticPyramidPooling(partitions[0 if part is None else part]) for name, part in PATHS[joint_format]
        })

    @property
    def num_parts(self) -> int:
        return sum(pool.num_parts for pool in self.pools.values())

    def forward(self, x: torch.Tensor, segments: Optional[Segments] = None) -> torch.Tensor:
        x = self.normalise_input(x, f"GPGait++ branch ({self.joint_format})")
        for block in self.layer_share:
            x = block(x, self.A, SHARED_PARTITION, segments)
        pooled = {}
        for name, part in self.path_parts.items():
            h = x
            for block in getattr(self, name):
                h = block(h, self.A, part, segments)
            pooled[name] = self.pools[name](set_max_pool(h, segments))
        return torch.cat([pooled[name] for name in OUTPUT_ORDER if name in pooled], dim=-1)


class PartBNNecks(SeparateBNNecks):
    """:class:`SeparateBNNecks` with the original GPGait++ parameter order (``fc_bin`` before
    ``bn1d``), so state-dict keys and parameter order match its checkpoints."""

    def __init__(self, parts: int, in_c: int, num_class: int) -> None:
        nn.Module.__init__(self)
        self.parts = parts
        self.in_c = in_c
        self.fc_bin = _part_weight(parts, in_c, num_class)
        self.bn1d = nn.BatchNorm1d(in_c * parts)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@MODELS.register("GPGait_PlusPlus")
class GPGaitPlusPlus(GPGait):
    """GPGait++; ``model_cfg``: ``in_channels`` (e.g. ``[2, 64, 64, 128, 256]``: 3 shared
    blocks, then one path block per further width), ``num_class`` (training identities),
    ``share_num`` (read for compatibility; always 3), ``mask`` (part masks in the blocks).

    Only the network differs from :class:`GPGait`; the forward (input check, branches, head,
    outputs) is GPGait's."""

    input_error_name = "GPGait_PlusPlus"

    def _build(self, in_channels: Sequence[int], num_class: int, share_num: int = SHARE_NUM,
               mask: bool = True) -> None:
        in_channels = list(in_channels)
        if len(in_channels) < SHARE_NUM + 1 or not all(_positive_int(c) for c in in_channels):
            raise ConfigError(
                f"model_cfg.in_channels must be a list of at least {SHARE_NUM + 1} positive integers (3 shared "
                f"blocks, then the path blocks), got {in_channels!r}"
            )
        if any(c < 8 for c in in_channels[1:]):
            raise ConfigError(
                f"model_cfg.in_channels: every block width (entries after the first) must be at least 8, got "
                f"{in_channels!r}"
            )
        if not _positive_int(num_class):
            raise ConfigError(f"model_cfg.num_class must be a positive integer, got {num_class!r}")
        if share_num != SHARE_NUM:
            logger.warning(
                "model_cfg.share_num is %s, but GPGait_PlusPlus always builds %d shared blocks per branch "
                "(the original ignores share_num too, and its checkpoints need 3); using %d",
                share_num, SHARE_NUM, SHARE_NUM,
            )
        self.num_class = num_class
        self.mask = bool(mask)
        self.pose = GPGaitPlusPlusBranch(in_channels, first_c=2, joint_format="coco", mask=mask)
        self.bone = GPGaitPlusPlusBranch(in_channels, first_c=2, joint_format="coco", mask=mask)
        self.angle = GPGaitPlusPlusBranch(in_channels, first_c=1, joint_format="coco-no-head", mask=mask)
        self.num_parts = self.pose.num_parts + self.bone.num_parts + self.angle.num_parts
        width = in_channels[-1]
        self.head = SeparateFCs(self.num_parts, width, width)
        self.BNNecks = PartBNNecks(self.num_parts, width, num_class)
