"""Forward kinematics of a walk: periodic joint angles -> 3-D joint positions.

World frame: the walker moves along +X, +Y is the walker's left and +Z is up; metres.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from .body import SequenceVariation, SubjectParams
from .conditions import Condition
from .joints import (L_ANK, L_EAR, L_ELB, L_EYE, L_HIP, L_KNE, L_SHO, L_WRI, NECK, NOSE, NUM_JOINTS,
                     R_ANK, R_EAR, R_ELB, R_EYE, R_HIP, R_KNE, R_SHO, R_WRI)

# Normative sagittal hip flexion over one gait cycle at 0, 5, ..., 95% (degrees; textbook
# adult curves, e.g. Perry & Burnfield, Winter): ~30° at heel strike, extension peak ~-9° at
# 55%, flexion peak ~31° in late swing. Only its shape is used (zero mean, unit range), built
# from its first four Fourier harmonics; each subject scales and shifts it.
_HIP_NORMATIVE_DEG = np.array(
    [30, 29, 26, 22, 17, 12, 8, 3, -1, -5, -8, -9, -5, 2, 10, 18, 24, 29, 31, 31], dtype=np.float64
)
_HIP_HARMONICS = 4
# Loading-response knee bump concentration: full width at half maximum ~15% of the cycle.
_KNEE_STANCE_CONCENTRATION = 6.0
# Cycle fraction where the pelvis drops on the swing side / shifts over the stance leg
# (single support of the right leg is ~10-50% of the cycle, middle at 30%).
_MID_STANCE = 0.3
# Trunk pitch oscillation, twice per stride (degrees).
_TRUNK_BOB_DEG = 1.0
# Head yaw follows this fraction of the shoulder girdle's rotation (gaze stabilisation).
_HEAD_YAW_FOLLOW = 0.3
# Face and ear positions relative to the base of the head (chin level), in units of stature:
# x forward, y left, z up (eyes at ~0.936 H, nose tip ~0.91 H, head breadth ~0.09 H).
_HEAD_OFFSETS = {
    NOSE: (0.060, 0.0, 0.040),
    L_EYE: (0.048, 0.019, 0.062),
    R_EYE: (0.048, -0.019, 0.062),
    L_EAR: (-0.004, 0.045, 0.052),
    R_EAR: (-0.004, -0.045, 0.052),
}
# Joints of each leg and arm: (side, joints, index into the subject's (left, right) pairs).
_LEGS = ((1, (L_HIP, L_KNE, L_ANK), 0), (-1, (R_HIP, R_KNE, R_ANK), 1))
_ARMS = ((1, (L_SHO, L_ELB, L_WRI), 0), (-1, (R_SHO, R_ELB, R_WRI), 1))


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate ``vec`` [T, 3] (or [3]) by ``rot`` [T, 3, 3]."""
    return np.einsum("tij,tj->ti", rot, np.broadcast_to(vec, rot.shape[:-1]))


def _bump(phase: np.ndarray, centre: float, concentration: float) -> np.ndarray:
    """Periodic bump (von Mises shape) equal to 1 at ``centre`` (cycle fraction)."""
    return np.exp(concentration * (np.cos(phase - 2.0 * np.pi * centre) - 1.0))


def _limb_dir(angle: np.ndarray, abduction: float, side: int) -> np.ndarray:
    """Unit vector of a limb hanging down, swung forward by ``angle`` (sagittal, rad) and out to
    the side by ``abduction`` (rad); ``side`` +1 left, -1 right."""
    ca = np.cos(abduction)
    return np.stack(
        [np.sin(angle) * ca, np.full_like(angle, side * np.sin(abduction)), -np.cos(angle) * ca], -1
    )


def _hip_shape_coefficients() -> np.ndarray:
    spectrum = np.fft.rfft(_HIP_NORMATIVE_DEG)[1:_HIP_HARMONICS + 1] * 2.0 / len(_HIP_NORMATIVE_DEG)
    phases = np.linspace(0.0, 2.0 * np.pi, 400, endpoint=False)
    k = np.arange(1, _HIP_HARMONICS + 1)
    curve = (spectrum[None] * np.exp(1j * k[None] * phases[:, None])).real.sum(-1)
    return spectrum / (curve.max() - curve.min())


_HIP_SHAPE = _hip_shape_coefficients()  # complex coefficients of harmonics 1..4


def _hip_shape(phase: np.ndarray) -> np.ndarray:
    """Normative hip curve at ``phase`` (radians, 0 = heel strike), zero mean, unit range."""
    k = np.arange(1, _HIP_HARMONICS + 1)
    return (_HIP_SHAPE[None] * np.exp(1j * k[None] * phase[:, None])).real.sum(-1)


def walk_3d(
    subject: SubjectParams,
    condition: Condition,
    variation: SequenceVariation,
    times: np.ndarray,
) -> np.ndarray:
    """Joint positions of one walk at ``times`` (seconds), ``[T, 18, 3]`` float64 metres in
    :data:`INTERNAL_JOINTS` order (COCO-17 then neck).

    Forward kinematics: the pelvis moves along the walking line at stride × stride frequency,
    sways sideways and rotates/tilts with the cycle; its height keeps the lower ankle at ankle
    height, which produces the vertical bob. Legs hang from the hip joints (hip flexion, knee
    flexion, constant abduction), the trunk leans and counter-rotates, arms swing opposite to
    the legs, the head sits on the neck. A coat widens the shoulder and hip keypoints after
    the kinematics (the limbs still hang from the true joints).
    """
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    s = subject
    freq = s.cadence_spm / 120.0 * variation.cadence_scale  # strides per second
    speed = s.stride_m * variation.stride_scale * freq
    phase_r = 2.0 * np.pi * (variation.start_phase + freq * t)
    phase_l = phase_r + np.pi + 2.0 * np.pi * s.leg_phase_offset
    out = np.empty((t.shape[0], NUM_JOINTS, 3), dtype=np.float64)

    legs = _legs(s, variation, phase_r, phase_l)
    pelvis = _pelvis_path(s, variation, t, speed, phase_r, legs)
    for side, joints, _ in _LEGS:
        for j, rel in zip(joints, legs[side]):
            out[:, j] = pelvis + rel
    lean = np.deg2rad(s.lean_deg + condition.extra_lean_deg + _TRUNK_BOB_DEG * np.cos(2.0 * phase_r))
    thorax_yaw = -np.deg2rad(s.thorax_rotation_deg) * np.cos(phase_r)
    trunk_rot = _trunk_rotation(s, condition, lean, thorax_yaw)
    shoulder_centre = pelvis + _apply(trunk_rot, np.array([0.0, 0.0, s.torso_m]))
    _arms(out, s, condition, variation, trunk_rot, shoulder_centre, phase_r, phase_l)
    _head(out, s, trunk_rot, shoulder_centre, thorax_yaw, lean)
    _widen_for_coat(out, condition)
    out[:, NECK] = 0.5 * (out[:, L_SHO] + out[:, R_SHO])
    return _turn(out, variation.heading_deg)


def _legs(
    s: SubjectParams, variation: SequenceVariation, phase_r: np.ndarray, phase_l: np.ndarray
) -> Dict[int, List[np.ndarray]]:
    """Hip, knee and ankle of each leg relative to the pelvis centre, ``{side: [hip, knee,
    ankle]}`` (each ``[T, 3]``). The pelvis rotation brings the flexed (forward) hip forward;
    the swing side drops."""
    rad = np.deg2rad
    pelvis_rot = _rot_z(rad(s.pelvis_rotation_deg) * np.cos(phase_r)) @ _rot_x(
        -rad(s.pelvis_obliquity_deg) * np.cos(phase_r - 2.0 * np.pi * _MID_STANCE)
    )
    knee_min = s.knee_min_deg
    legs = {}
    for side, phase, k in ((1, phase_l, 0), (-1, phase_r, 1)):
        hip_range = s.hip_range_deg[k] * variation.stride_scale * variation.leg_amp_scale
        hip = rad(s.hip_mean_deg + hip_range * (
            _hip_shape(phase) + s.hip_harmonic * np.cos(2.0 * phase + s.hip_harmonic_phase)))
        knee = rad(
            knee_min
            + (s.knee_stance_deg - knee_min) * _bump(phase, s.knee_stance_at, _KNEE_STANCE_CONCENTRATION)
            + (s.knee_swing_deg[k] * variation.leg_amp_scale - knee_min)
            * _bump(phase, s.knee_swing_at, s.knee_swing_width)
        )
        abd = rad(s.hip_abduction_deg)
        hip_pos = np.array([0.0, side * s.hip_width_m / 2.0, 0.0])
        knee_pos = hip_pos + s.thigh_m * _limb_dir(hip, abd, side)
        ankle_pos = knee_pos + s.shank_m * _limb_dir(hip - knee, abd, side)
        legs[side] = [_apply(pelvis_rot, v) for v in (hip_pos, knee_pos, ankle_pos)]
    return legs


def _pelvis_path(
    s: SubjectParams,
    variation: SequenceVariation,
    t: np.ndarray,
    speed: float,
    phase_r: np.ndarray,
    legs: Dict[int, List[np.ndarray]],
) -> np.ndarray:
    """Pelvis centre ``[T, 3]``: along the walking line, swaying over the stance leg, at the
    height that puts the lower ankle at ankle height."""
    lowest = np.minimum(legs[1][2][:, 2], legs[-1][2][:, 2])
    return np.stack(
        [
            np.full(t.shape[0], variation.along_offset_m) + speed * t,
            variation.lateral_offset_m - s.sway_m * np.cos(phase_r - 2.0 * np.pi * _MID_STANCE),
            s.ankle_height_m - lowest,
        ],
        -1,
    )


def _trunk_rotation(
    s: SubjectParams, condition: Condition, lean: np.ndarray, thorax_yaw: np.ndarray
) -> np.ndarray:
    """Trunk orientation ``[T, 3, 3]``: forward lean (``lean``, rad, with a small bob twice per
    stride), sideways lean, counter-rotation (``thorax_yaw``, rad)."""
    lateral = np.deg2rad(np.full(lean.shape[0], s.lateral_lean_deg + condition.lateral_lean_deg))
    return _rot_z(thorax_yaw) @ _rot_y(lean) @ _rot_x(-lateral)


def _arms(
    out: np.ndarray,
    s: SubjectParams,
    condition: Condition,
    variation: SequenceVariation,
    trunk_rot: np.ndarray,
    shoulder_centre: np.ndarray,
    phase_r: np.ndarray,
    phase_l: np.ndarray,
) -> None:
    """Write shoulders, elbows and wrists into ``out``: each arm swings with the opposite leg."""
    rad = np.deg2rad
    for (side, (sho_j, elb_j, wri_j), k), opposite in zip(_ARMS, (phase_r, phase_l)):
        shoulder = shoulder_centre + _apply(trunk_rot, np.array([0.0, side * s.shoulder_width_m / 2.0, 0.0]))
        arm_phase = opposite - 2.0 * np.pi * s.arm_lag
        swing = s.arm_swing_deg[k] * variation.arm_amp_scale * condition.arm_swing_scale[k]
        flex = rad(s.arm_offset_deg + swing * np.cos(arm_phase))
        elbow_swing = s.elbow_range_deg * variation.arm_amp_scale * condition.arm_swing_scale[k]
        elbow_flex = rad(s.elbow_min_deg + condition.elbow_extra_deg[k] + elbow_swing * 0.5 * (1.0 + np.cos(arm_phase)))
        abd = rad(s.arm_abduction_deg + condition.abduction_extra_deg[k])
        elbow = shoulder + _apply(trunk_rot, s.upper_arm_m * _limb_dir(flex, abd, side))
        wrist = elbow + _apply(trunk_rot, s.forearm_m * _limb_dir(flex + elbow_flex, abd, side))
        out[:, sho_j], out[:, elb_j], out[:, wri_j] = shoulder, elbow, wrist


def _head(
    out: np.ndarray,
    s: SubjectParams,
    trunk_rot: np.ndarray,
    shoulder_centre: np.ndarray,
    thorax_yaw: np.ndarray,
    lean: np.ndarray,
) -> None:
    """Write the face and ears into ``out``: the head sits on top of the neck, partly
    stabilised in yaw, pitched down, compensating half the trunk's lean."""
    head_base = shoulder_centre + _apply(trunk_rot, np.array([0.0, 0.0, s.neck_m]))
    head_rot = _rot_z(_HEAD_YAW_FOLLOW * thorax_yaw) @ _rot_y(np.deg2rad(s.head_pitch_deg) - 0.5 * lean)
    for j, offset in _HEAD_OFFSETS.items():
        out[:, j] = head_base + _apply(head_rot, s.height_m * s.head_scale * np.asarray(offset))


def _widen_for_coat(out: np.ndarray, condition: Condition) -> None:
    """A coat's detections of shoulders and hips spread outwards from their midpoints."""
    pairs: Tuple[Tuple[Tuple[int, int], float], ...] = (
        ((L_SHO, R_SHO), condition.shoulder_width_scale),
        ((L_HIP, R_HIP), condition.hip_width_scale),
    )
    for (a, b), scale in pairs:
        if scale != 1.0:
            mid, half = 0.5 * (out[:, a] + out[:, b]), 0.5 * (out[:, a] - out[:, b])
            out[:, a], out[:, b] = mid + scale * half, mid - scale * half


def _turn(out: np.ndarray, heading_deg: float) -> np.ndarray:
    """Rotate the walk about the vertical so that it heads ``heading_deg`` from +X."""
    if heading_deg == 0.0:
        return out
    h = np.deg2rad(heading_deg)
    c, sn = np.cos(h), np.sin(h)
    rot = np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]])
    return out @ rot.T
