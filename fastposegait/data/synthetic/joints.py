"""The generator's 18-joint skeleton and the output joint formats.

Everything is simulated on 18 joints: the COCO-17 order plus the OpenPose neck (the midpoint
of the shoulders) at index 17. COCO output drops the neck, OpenPose output reorders the joints;
both come from the same random draws, so ``openpose_to_coco(openpose_seq) == coco_seq``
exactly. The output layouts (joint names and order, left/right pairs) are read from
:mod:`fastposegait.data.skeleton`; the 18-joint internal order is the generator's own working
layout (no dataset stores it), so it lives here rather than in ``skeleton.py``.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from fastposegait.data.skeleton import COCO, OPENPOSE, JointFormat, get_joint_format

INTERNAL_JOINTS: Tuple[str, ...] = COCO.joint_names + ("neck",)
NUM_JOINTS = len(INTERNAL_JOINTS)
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI,
 L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK, NECK) = range(NUM_JOINTS)

# The formats a generator can write, and where each of their joints sits in the internal order.
_OUTPUT_FORMATS: Tuple[JointFormat, ...] = (COCO, OPENPOSE)
_FORMAT_INDEX: Dict[str, np.ndarray] = {
    fmt.name: np.array([INTERNAL_JOINTS.index(n) for n in fmt.joint_names], dtype=np.int64)
    for fmt in _OUTPUT_FORMATS
}

# Left/right pairs, grouped the way a 2-D detector confuses them: one arm's or one leg's joints
# with the other side's, or the whole body mirrored (every COCO left/right pair; the neck is
# its own mirror image).
ARM_PAIRS = ((L_ELB, R_ELB), (L_WRI, R_WRI))
LEG_PAIRS = ((L_KNE, R_KNE), (L_ANK, R_ANK))
BODY_PAIRS = tuple((i, j) for i, j in enumerate(COCO.flip) if i < j)


def check_joint_format(joint_format: str) -> str:
    """Canonical name (``coco`` or ``openpose``) of a format the generator can write;
    ``alphapose`` is the OpenPose order."""
    try:
        fmt = get_joint_format(joint_format)
    except ValueError:
        fmt = None
    if fmt not in _OUTPUT_FORMATS:
        raise ValueError(
            f"joint_format {joint_format!r} cannot be generated; use one of: alphapose, coco, openpose"
        )
    return fmt.name


def select_joints(sequence: np.ndarray, joint_format: str) -> np.ndarray:
    """Pick ``coco`` (17 joints) or ``openpose`` (18, OpenPose order; ``alphapose`` is the same)
    from an internal ``[..., 18, C]`` sequence."""
    return sequence[..., _FORMAT_INDEX[check_joint_format(joint_format)], :]
