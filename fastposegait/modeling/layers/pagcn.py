"""Part-aware graph convolution (PAGCN) and the GPGait branch built from it (docs/models.md#gpgait).

A :class:`BranchPAGCN` embeds one input feature group (joint positions, bone vectors or
joint angles) of a skeleton sequence into part features ``[n, C, parts]``:

* a data BatchNorm over the flattened (joint, channel) axis, per frame;
* ``share_num`` shared :class:`PAGCNBlock` s whose graph is restricted to the five limb/head
  parts (partition 1);
* one stack of blocks per *path* — ``backbone`` on the whole graph, ``part_2``, ``part_2_2``
  and ``part_3_1`` restricted to partitions 2, 3, 4 (the last two for COCO only);
* per path: max over the frames of each sequence (:func:`set_max_pool`, honouring packed
  sequences) and semantic pyramid pooling over that path's parts (mean + max of the joints
  of each part).

The adjacency ``A``, the part masks and the pooling indices are buffers built once, not
rebuilt (and moved to CUDA) on every forward as upstream does (docs/upstream_differences.md,
"Graph and part masks built once").

Packed sequences: ``all``/``unfixed`` test batches concatenate b sequences along time as
``[1, C, sum(T_i), V]`` with their lengths ``seqL``. PAGCN's attention sums over time, so
each sequence gets its own attention matrix (summed over its own frames, scaled by its own
length) and the set pooling takes the max over each sequence's frames: a packed batch gives
exactly the embeddings of its sequences run one by one. (Upstream computes one attention over
the whole concatenation, so its test embeddings depend on which sequences share a batch;
docs/upstream_differences.md, "GPGait on packed batches".)
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...data.skeleton import get_joint_format
from ..graph import spatial_adjacency

__all__ = [
    "PARTITIONS",
    "PATH_PARTITIONS",
    "SHARED_PARTITION",
    "Segments",
    "make_segments",
    "part_mask",
    "PAGCN",
    "PAGCNBlock",
    "SemanticPyramidPooling",
    "set_max_pool",
    "BranchInput",
    "BranchPAGCN",
]

Partition = Tuple[Tuple[int, ...], ...]



def _limb_partitions(joint_format: str) -> Tuple[Partition, ...]:
    """GPGait's body partitions of a joint format, by index, from its limb groups (index 0 is
    the whole body). Joints inside a part keep the listed order: it fixes the order of the
    pooled columns."""
    fmt = get_joint_format(joint_format)
    la, ra, ll, rl = (fmt.group(g) for g in ("left_arm", "right_arm", "left_leg", "right_leg"))
    whole = (tuple(range(fmt.num_joints)),)
    if fmt.name == "coco-no-head":
        return (whole, (la, ra, ll, rl), (la + ra, ll + rl), (la + rl, ra + ll))
    head = fmt.group("head")
    return (whole, (la, ra, ll, rl, head), (la + ra + head, ll + rl), (la + ra, ll + rl + head),
            (la + ra, ll + rl, head), (la + rl, ra + ll, head))


#: Body partitions per joint format, by index. Index 0 is the whole body.
PARTITIONS: Dict[str, Tuple[Partition, ...]] = {name: _limb_partitions(name) for name in ("coco", "coco-no-head")}

#: Partition used by the shared layers.
SHARED_PARTITION = 1

#: The paths of a branch, in output order: name -> partition index (None = whole graph,
#: no mask; pooled as one part, partition 0). They are registered in upstream's order
#: instead, the whole-graph ``backbone`` first (see :class:`BranchPAGCN`).
PATH_PARTITIONS: Dict[str, Tuple[Tuple[str, Optional[int]], ...]] = {
    "coco": (("part_2", 2), ("part_2_2", 3), ("part_3_1", 4), ("backbone", None)),
    "coco-no-head": (("part_2", 2), ("backbone", None)),
}

NUM_SUBSETS = 3  # adjacency slices A[0..2] (max_hop 2)
EMBEDDING_REDUCTION = 4  # attention width inter = out // 4


def _partitions(joint_format: str) -> Tuple[Partition, ...]:
    name = get_joint_format(joint_format).name
    if name not in PARTITIONS:
        raise ValueError(
            f"GPGait has body partitions for joint formats {', '.join(sorted(PARTITIONS))} only, "
            f"got {joint_format!r}"
        )
    return PARTITIONS[name]


def part_mask(partition: Partition, num_joints: int) -> torch.Tensor:
    """``[V, V]`` float mask: 1 where joints i and j belong to a common part."""
    member = torch.zeros(len(partition), num_joints)
    for p, joints in enumerate(partition):
        member[p, list(joints)] = 1
    return (member.t() @ member > 0).float()


class Segments(NamedTuple):
    """Where each sequence of a packed batch ``[1, C, sum(T_i), V]`` lies along time.

    Attributes:
        lengths: T_1, ..., T_b.
        index: ``[sum(T_i)]`` long tensor, the sequence of every frame.
        sizes: ``[b]`` float tensor of the lengths (on the input's device).
    """

    lengths: List[int]
    index: torch.Tensor
    sizes: torch.Tensor


def make_segments(seq_lengths: Optional[torch.Tensor], x: torch.Tensor, time_axis: int = 2) -> Optional[Segments]:
    """The :class:`Segments` of a packed batch, or None for an ordinary batch.

    ``seq_lengths`` is the collated ``seqL`` (``[1, b]``) or None. A packed batch must have
    batch size 1 and lengths that add up to its time axis; one sequence needs no segments.
    """
    if seq_lengths is None:
        return None
    lengths = [int(v) for v in torch.as_tensor(seq_lengths).reshape(-1).tolist()]
    total = x.shape[time_axis]
    if x.shape[0] != 1 or sum(lengths) != total or min(lengths, default=0) <= 0:
        raise ValueError(
            f"seqL {lengths} does not describe a packed batch of shape {tuple(x.shape)}: a packed batch has "
            f"batch size 1 and positive lengths that sum to its {total} frames"
        )
    if len(lengths) == 1:
        return None
    sizes = torch.tensor(lengths, device=x.device)
    index = torch.repeat_interleave(torch.arange(len(lengths), device=x.device), sizes)
    return Segments(lengths, index, sizes.to(x.dtype if x.is_floating_point() else torch.float32))


class PAGCN(nn.Module):
    """Part-aware adaptive graph convolution, ``[N, in_c, T, V] -> [N, out_c, T, V]``.

    For each subset i of the 3 adjacency slices, with ``inter = out_c // 4``:
    ``att = softmax_{dim -2}(a_i(x) . b_i(x) / (inter * T))`` (the dot product runs over the
    inter channels and the frames), ``A1 = att + (A + PA)[i]``, masked to the part graph if
    the layer runs on a partition, and ``z_i = d_i(x A1)`` (x multiplied on the joint axis).
    ``y = Mish(BN(sum_i z_i))``. ``PA`` is a learnable correction of A, initialised to 1e-6.

    The nine 1x1 convs (a, b, d per subset) are kept as separate modules, so that their
    initialisation and parameter count are the reference's, but run as two fused convolutions:
    a and b of all subsets in one, and ``sum_i d_i(x A1_i)`` as one convolution over the three
    stacked products.
    """

    def __init__(self, in_c: int, out_c: int, num_joints: int) -> None:
        super().__init__()
        self.in_c = in_c
        self.out_c = out_c
        self.inter = out_c // EMBEDDING_REDUCTION
        if self.inter < 1:
            raise ValueError(f"PAGCN needs at least {EMBEDDING_REDUCTION} output channels, got {out_c}")
        self.PA = nn.Parameter(torch.full((NUM_SUBSETS, num_joints, num_joints), 1e-6))
        self.conv_a = nn.ModuleList(nn.Conv2d(in_c, self.inter, 1) for _ in range(NUM_SUBSETS))
        self.conv_b = nn.ModuleList(nn.Conv2d(in_c, self.inter, 1) for _ in range(NUM_SUBSETS))
        self.conv_d = nn.ModuleList(nn.Conv2d(in_c, out_c, 1) for _ in range(NUM_SUBSETS))
        self.bn = nn.BatchNorm2d(out_c)

    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """a_i(x) and b_i(x) for all subsets in one convolution: two ``[N, 3, inter, T, V]``."""
        convs = [*self.conv_a, *self.conv_b]
        weight = torch.cat([c.weight for c in convs])
        bias = torch.cat([c.bias for c in convs])
        n, _, t, v = x.shape
        qk = F.conv2d(x, weight, bias).view(n, 2, NUM_SUBSETS, self.inter, t, v)
        return qk[:, 0], qk[:, 1]

    def attention(self, x: torch.Tensor, segments: Optional[Segments] = None) -> torch.Tensor:
        """The softmax attention ``[N, 3, V, V]`` (``[1, 3, b, V, V]`` for packed sequences)."""
        q, k = self._embed(x)
        if segments is None:
            scores = torch.einsum("nsctv,nsctw->nsvw", q, k) / (self.inter * x.shape[2])
        else:
            per_frame = torch.einsum("nsctv,nsctw->nstvw", q, k)  # [1, 3, sum T, V, V]
            shape = (*per_frame.shape[:2], len(segments.lengths), *per_frame.shape[3:])
            scores = per_frame.new_zeros(shape).index_add_(2, segments.index, per_frame)
            scores = scores / (self.inter * segments.sizes.to(scores.dtype)).view(1, 1, -1, 1, 1)
        return scores.softmax(dim=-2)

    def forward(self, x: torch.Tensor, A: torch.Tensor, mask: Optional[torch.Tensor] = None,
                segments: Optional[Segments] = None) -> torch.Tensor:
        """``x [N, in_c, T, V]``, ``A [3, V, V]``, optional part ``mask [V, V]``."""
        n, c, t, v = x.shape
        graph = (A + self.PA).to(x.dtype)
        if segments is None:
            adj = self.attention(x) + graph  # [N, 3, V, V]
            if mask is not None:
                adj = adj * mask
            mixed = torch.matmul(x.reshape(n, 1, c * t, v), adj)  # [N, 3, C*T, V]
        else:
            adj = self.attention(x, segments) + graph.unsqueeze(1)  # [1, 3, b, V, V]
            if mask is not None:
                adj = adj * mask
            per_frame = adj[:, :, segments.index]  # [1, 3, T, V, V]
            mixed = torch.matmul(x.permute(0, 2, 1, 3).unsqueeze(1), per_frame)  # [1, 3, T, C, V]
            mixed = mixed.transpose(2, 3)  # [1, 3, C, T, V]
        mixed = mixed.reshape(n, NUM_SUBSETS * c, t, v)
        # sum_i d_i(x A1_i) as one convolution over the 3 stacked products
        weight = torch.cat([conv.weight for conv in self.conv_d], dim=1)
        bias = torch.stack([conv.bias for conv in self.conv_d]).sum(0)
        y = F.conv2d(mixed, weight, bias)
        return F.mish(self.bn(y))


class PAGCNBlock(nn.Module):
    """``asg(x) + residual_s(x)``: the PAGCN plus a residual that is the identity when the widths
    match, else a 1x1 conv + BatchNorm (upstream's attribute names)."""

    def __init__(self, in_c: int, out_c: int, num_joints: int) -> None:
        super().__init__()
        self.asg = PAGCN(in_c, out_c, num_joints)  # upstream's name for the graph convolution
        if in_c == out_c:
            self.residual_s: nn.Module = nn.Identity()
        else:
            self.residual_s = nn.Sequential(nn.Conv2d(in_c, out_c, 1), nn.BatchNorm2d(out_c))

    def forward(self, x: torch.Tensor, A: torch.Tensor, mask: Optional[torch.Tensor] = None,
                segments: Optional[Segments] = None) -> torch.Tensor:
        return self.asg(x, A, mask, segments) + self.residual_s(x)


def set_max_pool(x: torch.Tensor, segments: Optional[Segments] = None) -> torch.Tensor:
    """Max over time per sequence: ``[N, C, T, V] -> [N, C, V]``, or for a packed batch
    ``[1, C, sum T, V] -> [b, C, V]``."""
    if segments is None:
        return x.amax(dim=2)
    return torch.cat([piece.amax(dim=2) for piece in x.split(segments.lengths, dim=2)])


class SemanticPyramidPooling(nn.Module):
    """``[N, C, V] -> [N, C, parts]``: for each part, the mean plus the max over its joints.

    The joints of all parts are gathered at once through a padded index (buffers built at
    construction); padding is excluded from both the mean and the max.
    """

    def __init__(self, partition: Partition) -> None:
        super().__init__()
        width = max(len(part) for part in partition)
        index = torch.zeros(len(partition), width, dtype=torch.long)
        valid = torch.zeros(len(partition), width, dtype=torch.bool)
        for p, joints in enumerate(partition):
            index[p, : len(joints)] = torch.tensor(joints)
            valid[p, : len(joints)] = True
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self.register_buffer("count", valid.sum(1).float(), persistent=False)

    @property
    def num_parts(self) -> int:
        return int(self.index.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gathered = x[:, :, self.index]  # [N, C, parts, width]
        mean = gathered.masked_fill(~self.valid, 0).sum(-1) / self.count.to(x.dtype)
        peak = gathered.masked_fill(~self.valid, float("-inf")).amax(-1)
        return mean + peak


class BranchInput(nn.Module):
    """The input end GPGait and GPGait++ branches share: the joint format, the graph adjacency
    ``A`` (a constant: a non-persistent buffer, so not in the state dict, as upstream has no
    ``A`` key) and the data BatchNorm ``data_bn`` over the flattened (joint, channel) axis.

    Subclasses build their blocks after calling this ``__init__``, so ``data_bn`` comes first
    in their state dict, as upstream's."""

    def __init__(self, first_c: int, joint_format: str) -> None:
        super().__init__()
        fmt = get_joint_format(joint_format)
        self.joint_format = fmt.name
        self.first_c = first_c
        self.num_joints = fmt.num_joints
        self.register_buffer("A", spatial_adjacency(fmt.name, max_hop=2), persistent=False)
        self.data_bn = nn.BatchNorm1d(first_c * self.num_joints)

    def normalise_input(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``x`` ``[N, first_c, T, V]`` checked (``name`` starts the error) and normalised by
        the data BN per frame over the (joint, channel) axis, joint-major as ST-GCN's (M, V, C)."""
        n, c, t, v = x.shape
        if c != self.first_c or v != self.num_joints:
            raise ValueError(
                f"{name} expects [N, {self.first_c}, T, {self.num_joints}], got shape {tuple(x.shape)}"
            )
        x = self.data_bn(x.permute(0, 3, 1, 2).reshape(n, v * c, t))
        return x.view(n, v, c, t).permute(0, 2, 3, 1).contiguous()


class BranchPAGCN(BranchInput):
    """One GPGait input branch, ``[N, first_c, T, V] -> [n, in_channels[-1], parts]``.

    Args:
        in_channels: widths ``[c_0, c_1, ..., c_L]``; ``c_0`` is ignored (``first_c`` is the
            branch's real input width, as upstream), the first ``share_num`` blocks are
            shared, the remaining ones are repeated in every path.
        share_num: number of shared blocks (``1 <= share_num < len(in_channels) - 1``).
        first_c: input channels of this branch (2 for positions and bones, 1 for angles).
        joint_format: ``coco`` (4 paths, 8 parts) or ``coco-no-head`` (2 paths, 3 parts).

    Attributes are upstream's, so its checkpoints load as they are: ``data_bn``,
    ``layer_share`` (the shared blocks), then one ``ModuleList`` of blocks per path, named after
    the path and registered in upstream's order (``backbone``, ``part_2``, ``part_2_2``,
    ``part_3_1``: the parameter order an optimizer state follows). The paths' outputs are
    concatenated in :data:`PATH_PARTITIONS` order (``part_2`` ... ``backbone``). Part masks
    (``<path>_mask``) and pooling indices (``pooling``) are non-persistent buffers.
    """

    def __init__(self, in_channels: Sequence[int], share_num: int, first_c: int, joint_format: str) -> None:
        partitions = _partitions(joint_format)
        super().__init__(first_c, joint_format)
        widths = [first_c, *in_channels[1:]]
        self.layer_share = nn.ModuleList(
            PAGCNBlock(widths[i], widths[i + 1], self.num_joints) for i in range(share_num)
        )
        self.register_buffer("share_mask", part_mask(partitions[SHARED_PARTITION], self.num_joints),
                             persistent=False)
        #: path names in output order
        self.path_names: Tuple[str, ...] = tuple(name for name, _ in PATH_PARTITIONS[self.joint_format])
        for name in sorted(self.path_names, key=lambda n: n != "backbone"):  # upstream's registration order
            self.add_module(name, nn.ModuleList(
                PAGCNBlock(widths[i], widths[i + 1], self.num_joints) for i in range(share_num, len(widths) - 1)
            ))
        self.pooling = nn.ModuleDict()
        for name, index in PATH_PARTITIONS[self.joint_format]:
            mask = None if index is None else part_mask(partitions[index], self.num_joints)
            self.register_buffer(f"{name}_mask", mask, persistent=False)
            self.pooling[name] = SemanticPyramidPooling(partitions[0] if index is None else partitions[index])

    @property
    def num_parts(self) -> int:
        return sum(pooling.num_parts for pooling in self.pooling.values())

    def path_blocks(self, name: str) -> nn.ModuleList:
        """The blocks of path ``name`` (``backbone``, ``part_2``, ...)."""
        return getattr(self, name)

    def path_mask(self, name: str) -> Optional[torch.Tensor]:
        """The ``[V, V]`` part mask of path ``name``'s blocks (None: the whole graph)."""
        return getattr(self, f"{name}_mask")

    def _path(self, name: str, x: torch.Tensor, segments: Optional[Segments]) -> torch.Tensor:
        mask = self.path_mask(name)
        for block in self.path_blocks(name):
            x = block(x, self.A, mask, segments)
        return self.pooling[name](set_max_pool(x, segments))

    def forward(self, x: torch.Tensor, segments: Optional[Segments] = None) -> torch.Tensor:
        x = self.normalise_input(x, f"BranchPAGCN({self.joint_format})")
        for block in self.layer_share:
            x = block(x, self.A, self.share_mask, segments)
        return torch.cat([self._path(name, x, segments) for name in self.path_names], dim=-1)

