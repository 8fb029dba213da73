"""Joint formats: joint names, graph edges, left/right flip pairs, bone parents, centre and
the limb groups.

Every piece of code that needs to know a skeleton layout (graph construction, transforms,
feature builders, GPGait's body partitions, synthetic data, preprocessing) reads it from here.
What is defined elsewhere is not a layout but a model's or a transform's own choice made on
top of one: GPGait's partitions combine the limb groups below (``modeling/layers/pagcn.py``),
HOD_MultiInput's angle tuples and RescaleCenter's joint pairs are part of those features'
definitions (``data/transforms.py``), and the synthetic generator has its own 3-D rig, which it
projects to these formats. ``alphapose`` and ``openpose`` are the same 18-joint OpenPose order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class JointFormat:
    """A skeleton layout.

    Attributes:
        name: canonical format name.
        joint_names: one name per joint, in storage order.
        edges: undirected bones between joints (self-loops excluded).
        center: index of the joint used for relative coordinates.
        flip: left/right permutation (``flip[i]`` = joint that ``i`` becomes when mirrored);
            ``None`` when the format has no defined flip.
        parents: bone parent of each joint (``x - x[parents]`` is the bone vector).
        groups: named joint groups (``left_arm``, ``right_arm``, ``left_leg``, ``right_leg``,
            ``head``), each from the body outwards.
    """

    name: str
    joint_names: Tuple[str, ...]
    edges: Tuple[Tuple[int, int], ...]
    center: int
    flip: Tuple[int, ...] | None
    parents: Tuple[int, ...]
    groups: Tuple[Tuple[str, Tuple[int, ...]], ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        """Position of ``joint_name`` in this format's storage order."""
        return self.joint_names.index(joint_name)

    def group(self, name: str) -> Tuple[int, ...]:
        """The joints of group ``name`` (e.g. ``left_arm``)."""
        for key, joints in self.groups:
            if key == name:
                return joints
        raise KeyError(f"joint format {self.name!r} has no joint group {name!r}; "
                       f"groups: {', '.join(k for k, _ in self.groups)}")

    def flip_array(self) -> np.ndarray:
        if self.flip is None:
            raise ValueError(f"joint format {self.name!r} has no left/right flip permutation")
        return np.asarray(self.flip, dtype=np.int64)

    def parents_array(self) -> np.ndarray:
        return np.asarray(self.parents, dtype=np.int64)


COCO = JointFormat(
    name="coco",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    edges=(
        (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6), (5, 7), (7, 9),
        (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    ),
    center=0,
    flip=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    parents=(5, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    groups=(("left_arm", (5, 7, 9)), ("right_arm", (6, 8, 10)), ("left_leg", (11, 13, 15)),
            ("right_leg", (12, 14, 16)), ("head", (0, 1, 2, 3, 4))),
)

# GPGait's angle branch: COCO joints 5..16 (no head) renumbered 0..11.
COCO_NO_HEAD = JointFormat(
    name="coco-no-head",
    joint_names=COCO.joint_names[5:],
    edges=((0, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7), (6, 8), (8, 10), (7, 9), (9, 11)),
    center=0,
    flip=None,
    parents=(3, 1, 0, 2, 4, 0, 6, 8, 10, 7, 9, 11),
    groups=tuple((name, tuple(j - 5 for j in joints)) for name, joints in COCO.groups if name != "head"),
)

OPENPOSE = JointFormat(
    name="openpose",
    joint_names=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "left_hip", "left_knee", "left_ankle",
        "right_eye", "left_eye", "right_ear", "left_ear",
    ),
    edges=(
        (0, 1), (0, 14), (0, 15), (14, 16), (15, 17), (1, 2), (2, 3), (3, 4), (1, 5),
        (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    ),
    center=1,
    flip=(0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16),
    parents=(1, 1, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15),
    groups=(("left_arm", (5, 6, 7)), ("right_arm", (2, 3, 4)), ("left_leg", (11, 12, 13)),
            ("right_leg", (8, 9, 10)), ("head", (0, 15, 14, 17, 16))),
)

_FORMATS: Dict[str, JointFormat] = {
    "coco": COCO,
    "coco-no-head": COCO_NO_HEAD,
    "openpose": OPENPOSE,
    "alphapose": OPENPOSE,
}

# OpenPose-18 -> COCO-17: new joint i takes old joint OPENPOSE_TO_COCO[i] (the neck is dropped).
OPENPOSE_TO_COCO = np.array([0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10], dtype=np.int64)


def get_joint_format(name: str) -> JointFormat:
    """Look up a joint format by its config name (``coco``, ``coco-no-head``,
    ``alphapose``/``openpose``).

    Raises:
        ConfigError: (a ValueError) for an unknown name, listing the valid ones and, when
            the name differs from one only in case or ``_`` for ``-``, suggesting it.
    """
    try:
        return _FORMATS[name]
    except (KeyError, TypeError):
        pass
    hint = ""
    if isinstance(name, str):
        close = name.strip().lower().replace("_", "-")
        if close in _FORMATS:
            hint = f"; did you mean {close!r}?"
    raise ConfigError(f"unknown joint_format {name!r}; valid formats: {', '.join(sorted(_FORMATS))}{hint}")


def openpose_to_coco(seq: np.ndarray) -> np.ndarray:
    """Convert ``[T, 18, C]`` OpenPose/AlphaPose sequences to ``[T, 17, C]`` COCO order
    (all channels copied, neck dropped, dtype unchanged)."""
    if seq.ndim < 2 or seq.shape[-2] != 18:
        raise ValueError(f"expected an 18-joint sequence [..., 18, C], got shape {seq.shape}")
    return seq[..., OPENPOSE_TO_COCO, :]
