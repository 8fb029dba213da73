"""Procedural gait generator that writes pose datasets in the upstream on-disk layouts.

Real gait datasets need an application to their owners, so the demo, the tests and anyone
without data use this generator instead. It builds a recognition problem worth solving:

1. **Who walks** (:func:`sample_subject`): each subject gets a 3-D body (stature, segment
   proportions, shoulder and hip width) and a gait style (cadence, stride, hip/knee/arm
   kinematics, pelvis rotation and obliquity, torso lean, lateral sway, left/right asymmetry,
   phase offsets), all drawn from adult ranges reported in the gait and anthropometry
   literature (the constants below say where each range comes from).
2. **How they walk this time** (:func:`sample_variation`, :func:`sample_condition`): each
   walk has its own speed, start phase and walking-line offset; a bag damps one arm's swing
   and leans the torso; a coat widens the shoulders and hips and blurs their detections.
3. **The 3-D walk** (:func:`walk_3d`): forward kinematics of periodic joint angles gives the
   joints in metres, in a world frame where the walker moves along +X, +Y is the walker's
   left and +Z is up.
4. **The camera** (:class:`Camera`, :func:`observe`): a pinhole projection from a fixed
   camera, so the body translates across the image and changes scale with depth, plus a
   view-dependent self-occlusion score per joint.
5. **The detector** (:func:`apply_detector`): temporally correlated pixel noise scaled by the
   body's size in the image, keypoint biases (one shared by the sequences of a person in
   the same clothes seen by the same camera, one per walk), confidences that fall with
   occlusion and error, missing joints stored as ``(0, 0, 0)``, occasional left/right swaps.
6. **The layout writers** (:func:`generate_casia_b`, :func:`generate_oumvlp`,
   :func:`generate_grew`, :func:`generate_gait3d`, dispatched by :func:`generate_dataset`):
   ``<root>/<subject>/<type>/<view>/<view>.pkl`` holding ``pickle.dump(ndarray [T, V, 3]
   float32)`` (x, y in pixels, confidence in [0, 1]), plus a partition JSON.

Steps 3-5 are separate functions so that other writers (raw OpenPose JSON, GREW/Gait3D text
files, multi-person frames) can reuse the 3-D walk and the projection without the file layout.
:func:`simulate_walk` chains steps 3-5 for one sequence.

Determinism: every random draw comes from a ``numpy.random.Generator`` seeded by a
``SeedSequence`` built from ``(seed, layout, subject index, ...)`` and from CRC32 hashes of the
type/view names, so the same seed writes byte-identical files whatever the number of worker
processes, and a sequence does not change when other subjects, types or views are added.

Command line::

    python -m fastposegait.data.synthetic casia-b --root data/synthetic-casia-b --subjects 124
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import shutil
import string
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from fastposegait.data.partitions import oumvlp_official_partition
from fastposegait.data.skeleton import COCO, OPENPOSE

logger = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "INTERNAL_JOINTS",
    "SubjectParams",
    "SequenceVariation",
    "Condition",
    "Camera",
    "ProjectedWalk",
    "DetectorParams",
    "GenerationSummary",
    "sample_subject",
    "sample_variation",
    "sample_condition",
    "condition_of_type",
    "camera_at_azimuth",
    "walk_3d",
    "observe",
    "apply_detector",
    "sample_appearance_bias",
    "select_joints",
    "simulate_walk",
    "generate_casia_b",
    "generate_oumvlp",
    "oumvlp_partition",
    "generate_grew",
    "generate_gait3d",
    "generate_dataset",
    "main",
]

PathLike = Union[str, "os.PathLike[str]"]

# ----------------------------------------------------------------------------------------------
# Joints. Everything is simulated on 18 joints: COCO-17 order plus the OpenPose neck (midpoint
# of the shoulders) at index 17. COCO output drops the neck, OpenPose output reorders; both come
# from the same random draws, so ``openpose_to_coco(openpose_seq) == coco_seq`` exactly.
# ----------------------------------------------------------------------------------------------
INTERNAL_JOINTS: Tuple[str, ...] = COCO.joint_names + ("neck",)
NUM_JOINTS = len(INTERNAL_JOINTS)
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI,
 L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK, NECK) = range(NUM_JOINTS)

_FORMAT_INDEX: Dict[str, np.ndarray] = {
    "coco": np.arange(17, dtype=np.int64),
    "openpose": np.array([INTERNAL_JOINTS.index(n) for n in OPENPOSE.joint_names], dtype=np.int64),
}
_FORMAT_ALIASES = {"coco": "coco", "openpose": "openpose", "alphapose": "openpose"}

# Left/right pairs, grouped the way a 2-D detector confuses them.
_ARM_PAIRS = ((L_ELB, R_ELB), (L_WRI, R_WRI))
_LEG_PAIRS = ((L_KNE, R_KNE), (L_ANK, R_ANK))
_BODY_PAIRS = ((L_EYE, R_EYE), (L_EAR, R_EAR), (L_SHO, R_SHO), (L_HIP, R_HIP)) + _ARM_PAIRS + _LEG_PAIRS

# Per-keypoint localisation spread as a fraction of body height: the COCO keypoint
# challenge's per-keypoint annotator standard deviations (OKS sigmas, relative to object scale
# sqrt(area)) times 0.4, the ratio of sqrt(segmentation area) to stature for a standing adult.
# Faces are located precisely, hips worst. The neck borrows the shoulders' value.
_COCO_OKS_SIGMAS = np.array(
    [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
     0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079]
)
_JOINT_SPREAD = 0.4 * _COCO_OKS_SIGMAS

# Mean detector confidence of a clearly visible joint (HRNet/OpenPose-like scores: face and
# shoulders most confident, wrists and ankles least).
_BASE_CONFIDENCE = np.array(
    [0.92, 0.91, 0.91, 0.88, 0.88, 0.90, 0.90, 0.85, 0.85, 0.80, 0.80,
     0.84, 0.84, 0.85, 0.85, 0.82, 0.82, 0.92]
)

# Joints a coat covers (its detections are blurred) and how strongly (1 = full coat effect).
_COAT_WEIGHT = np.zeros(NUM_JOINTS)
_COAT_WEIGHT[[L_SHO, R_SHO, L_HIP, R_HIP]] = 1.0
_COAT_WEIGHT[[L_ELB, R_ELB, L_KNE, R_KNE, NECK]] = 0.5

LAYOUTS: Tuple[str, ...] = ("casia-b", "oumvlp", "grew", "gait3d")
_LAYOUT_TAG = {"casia-b": 1, "oumvlp": 2, "grew": 3, "gait3d": 4}

CASIA_B_VIEWS: Tuple[str, ...] = tuple(f"{a:03d}" for a in range(0, 181, 18))
CASIA_B_TYPES: Tuple[str, ...] = tuple(f"nm-{i:02d}" for i in range(1, 7)) + ("bg-01", "bg-02", "cl-01", "cl-02")
OUMVLP_VIEWS: Tuple[str, ...] = ("000", "015", "030", "045", "060", "075", "090",
                                 "180", "195", "210", "225", "240", "255", "270")
OUMVLP_TYPES: Tuple[str, ...] = ("00", "01")

# Video frame rate of CASIA-B and OU-MVLP (25 fps); used for every layout.
DEFAULT_FPS = 25.0
_PICKLE_PROTOCOL = 4  # Python 3.8-3.13 default; fixed so files are byte-identical across versions


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubjectParams:
    """One simulated person: body, gait style and wardrobe.

    Lengths are metres, angles degrees, phases fractions of a gait cycle (stride). Pairs are
    ``(left, right)``. A gait cycle starts at right heel strike.
    """

    sex: str
    height_m: float
    # body (joint-centre distances)
    thigh_m: float
    shank_m: float
    ankle_height_m: float
    torso_m: float           # hip centre -> shoulder centre
    neck_m: float            # shoulder centre -> base of the head (chin level)
    upper_arm_m: float
    forearm_m: float
    shoulder_width_m: float  # between the shoulder keypoints
    hip_width_m: float       # between the hip keypoints
    head_scale: float        # multiplies the face/ear offsets (head size varies with stature)
    # gait style
    cadence_spm: float       # steps per minute (two steps = one stride)
    stride_m: float          # stride length (one full cycle)
    hip_mean_deg: float      # mean thigh angle from the vertical (hip flexion minus pelvic tilt)
    hip_range_deg: Tuple[float, float]
    hip_harmonic: float      # individual second harmonic added to the normative hip curve
    hip_harmonic_phase: float  # radians
    hip_abduction_deg: float   # sets step width
    knee_min_deg: float
    knee_stance_deg: float     # loading-response flexion peak
    knee_swing_deg: Tuple[float, float]  # swing flexion peak
    knee_stance_at: float      # cycle fraction of the loading-response peak
    knee_swing_at: float       # cycle fraction of the swing peak
    knee_swing_width: float    # concentration of the swing bump (larger = narrower)
    leg_phase_offset: float    # left leg lag beyond half a cycle (asymmetry)
    arm_swing_deg: Tuple[float, float]   # half-range of shoulder flexion/extension
    arm_offset_deg: float      # mean shoulder flexion (negative = arm slightly behind)
    arm_lag: float             # arm phase lag behind the opposite leg, cycle fraction
    arm_abduction_deg: float
    elbow_min_deg: float
    elbow_range_deg: float
    pelvis_rotation_deg: float  # transverse-plane amplitude
    pelvis_obliquity_deg: float  # frontal-plane amplitude
    thorax_rotation_deg: float  # counter-rotation of the shoulder girdle
    sway_m: float               # lateral sway amplitude of the pelvis
    lean_deg: float             # forward trunk lean
    lateral_lean_deg: float     # habitual sideways lean (positive = to the left)
    head_pitch_deg: float       # head flexion (positive = looking down)
    # wardrobe: how this person carries a bag and what coat they wear
    bag_side: int               # +1 left hand/shoulder, -1 right
    bag_swing_scale: float
    bag_lean_deg: float
    bag_lateral_deg: float
    bag_elbow_deg: float
    bag_abduction_deg: float
    coat_shoulder_scale: float
    coat_hip_scale: float
    coat_blur: float
    coat_conf_drop: float


@dataclass(frozen=True)
class SequenceVariation:
    """What changes between two walks of the same person in the same condition."""

    cadence_scale: float = 1.0
    stride_scale: float = 1.0
    leg_amp_scale: float = 1.0
    arm_amp_scale: float = 1.0
    start_phase: float = 0.0      # cycle fraction at time 0
    lateral_offset_m: float = 0.0  # walking-line offset along +Y
    along_offset_m: float = 0.0    # position along the line at time 0
    heading_deg: float = 0.0       # walking direction (0 = +X)


@dataclass(frozen=True)
class Condition:
    """Walking condition of one sequence: ``nm`` (normal), ``bg`` (bag) or ``cl`` (coat).

    Pairs are ``(left, right)``. The default is a normal walk with no effect.
    """

    name: str = "nm"
    arm_swing_scale: Tuple[float, float] = (1.0, 1.0)
    elbow_extra_deg: Tuple[float, float] = (0.0, 0.0)
    abduction_extra_deg: Tuple[float, float] = (0.0, 0.0)
    extra_lean_deg: float = 0.0
    lateral_lean_deg: float = 0.0
    shoulder_width_scale: float = 1.0
    hip_width_scale: float = 1.0
    blur: float = 1.0        # noise multiplier on the joints a coat covers
    conf_drop: float = 0.0   # confidence drop on the joints a coat covers


@dataclass(frozen=True)
class Camera:
    """A pinhole camera. ``rotation`` rows are the camera x (image right), y (image down) and
    z (optical axis) axes in world coordinates."""

    position: Tuple[float, float, float]
    rotation: Tuple[Tuple[float, float, float], ...]
    focal_px: float
    width: int
    height: int

    @classmethod
    def look_at(
        cls,
        position: Sequence[float],
        target: Sequence[float],
        focal_px: float,
        image_size: Tuple[int, int],
    ) -> "Camera":
        """Camera at ``position`` aimed at ``target`` with a level horizon; ``image_size`` is
        ``(width, height)`` in pixels, the principal point is the image centre."""
        pos = np.asarray(position, dtype=np.float64)
        forward = np.asarray(target, dtype=np.float64) - pos
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        norm = np.linalg.norm(right)
        if norm < 1e-9:
            raise ValueError("camera must not look straight up or down")
        right /= norm
        down = np.cross(forward, right)
        rot = tuple(tuple(float(v) for v in axis) for axis in (right, down, forward))
        return cls(tuple(float(v) for v in pos), rot, float(focal_px), int(image_size[0]), int(image_size[1]))


@dataclass(frozen=True)
class DetectorParams:
    """How imperfect the simulated 2-D pose detector is. Noise and bias are fractions of the
    per-joint localisation spread ``_JOINT_SPREAD`` (hips ~4% of body height)."""

    noise_scale: float = 0.35       # per-frame jitter: hips ~1.5%, wrists ~0.9% of body height
    # Keypoint biases. A detector's systematic error depends on what it sees: the same person
    # in the same clothes from the same camera gets nearly the same offsets every time
    # (appearance bias, hips ~1.1% of body height); lighting and pose make each walk differ a
    # little on top (per-walk bias, hips ~0.3%).
    appearance_bias_scale: float = 0.25
    bias_scale: float = 0.08
    temporal_corr: float = 0.5      # AR(1) coefficient of the jitter between frames
    occlusion_noise: float = 1.5    # jitter multiplier gain at full occlusion
    occlusion_conf_drop: float = 0.45
    conf_error_gain: float = 0.06   # confidence drop per unit of standardised error
    conf_jitter: float = 0.04
    quality_jitter: float = 0.03    # per-sequence confidence offset (lighting, resolution)
    min_confidence: float = 0.02
    miss_prob: float = 0.004        # per joint and frame, joint not detected at all
    miss_prob_occluded: float = 0.10  # extra, times occlusion squared
    limb_swap_prob: float = 0.01    # per frame, arms or legs labelled the wrong side
    body_swap_prob: float = 0.03    # per frame when seen from behind: whole body mirrored

    def scaled(self, factor: float) -> "DetectorParams":
        """A noisier (``factor`` > 1) or cleaner detector: noise, bias and error rates scaled."""
        return DetectorParams(
            noise_scale=self.noise_scale * factor,
            appearance_bias_scale=self.appearance_bias_scale * factor,
            bias_scale=self.bias_scale * factor,
            temporal_corr=self.temporal_corr,
            occlusion_noise=self.occlusion_noise,
            occlusion_conf_drop=self.occlusion_conf_drop,
            conf_error_gain=self.conf_error_gain,
            conf_jitter=self.conf_jitter,
            quality_jitter=self.quality_jitter,
            min_confidence=self.min_confidence,
            miss_prob=self.miss_prob * factor,
            miss_prob_occluded=self.miss_prob_occluded * factor,
            limb_swap_prob=self.limb_swap_prob * factor,
            body_swap_prob=self.body_swap_prob * factor,
        )


# In-the-wild footage (GREW, Gait3D): low-resolution surveillance, more blur, more misses.
_WILD_DETECTOR = DetectorParams().scaled(1.4)


# ----------------------------------------------------------------------------------------------
# Sampling people, walks and conditions
# ----------------------------------------------------------------------------------------------
def _normal(rng: np.random.Generator, mean: float, std: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, std), lo, hi))


def sample_subject(rng: np.random.Generator) -> SubjectParams:
    """Draw one adult walker.

    Ranges (mean ± SD, clipped to [lo, hi]):
    * stature: men 1.75 ± 0.07 m, women 1.62 ± 0.065 m, clipped 1.45-2.02 (adult survey
      populations); sex 50/50;
    * segments as fractions of stature, Drillis & Contini ratios (as tabulated in Winter,
      *Biomechanics and Motor Control of Human Movement*): thigh 0.245, shank 0.246, ankle height
      0.039, hip-to-shoulder 0.288, shoulder-to-chin 0.052, upper arm 0.186, forearm 0.146, each
      times an individual factor 1 ± 0.03 (clipped ±9%); shoulder keypoint width 0.220 (men) /
      0.205 (women) and hip keypoint width 0.115 / 0.125, ± 4% / 5%;
    * cadence: men 110 ± 7, women 116 ± 7 steps/min, clipped 92-132; stride 0.80 ± 0.05 of
      stature, clipped 0.66-0.94 (self-selected adult walking; speed ~1.1-1.5 m/s);
    * sagittal kinematics after Perry/Winter normative curves: the normative hip curve scaled to
      a range of 40° × stride/0.8 × (1 ± 0.06) plus an individual second harmonic (± 3% of the
      range), around a mean thigh angle of 5 ± 2.5° from the vertical (mean hip flexion ~13°
      minus ~8° anterior pelvic tilt); knee 4 ± 2° minimum, 18 ± 4° loading peak at 14% of
      the cycle, 62 ± 4° swing peak at 71 ± 1.5%; arm swing half-range 15 ± 5° (4-30), elbow 15 ±
      5° flexed plus 12 ± 4° with the swing;
    * pelvis rotation 5 ± 1.5°, obliquity 4 ± 1.2°, thorax counter-rotation 4 ± 1.5°, lateral
      sway 2.5 ± 0.7 cm, trunk lean 4 ± 3° forward, head flexion 8 ± 5°;
    * asymmetry: left/right multipliers 1 ± 0.04 on hip range and knee swing peak, 1 ± 0.10 on
      arm swing (arm swing is the least symmetric); left leg phase 0.5 ± 0.012 cycles after the
      right;
    * wardrobe: bag on the left or right (50/50) damping that arm's swing to 5-45%, leaning the
      trunk 1-5° forward and 1-4° away from the load, bending the elbow 0-40°; a coat widening
      the shoulder keypoints by 5-15% and the hip keypoints by 5-20%, multiplying their noise by
      1.5-2.5 and lowering their confidence by 0.05-0.15.
    """
    sex = "male" if rng.random() < 0.5 else "female"
    male = sex == "male"
    height = _normal(rng, 1.75 if male else 1.62, 0.07 if male else 0.065, 1.45, 2.02)

    def seg(ratio: float) -> float:
        return height * ratio * _normal(rng, 1.0, 0.03, 0.91, 1.09)

    thigh, shank, ankle_h = seg(0.245), seg(0.246), seg(0.039)
    torso, neck = seg(0.288), seg(0.052)
    upper_arm, forearm = seg(0.186), seg(0.146)
    shoulder_w = height * (0.220 if male else 0.205) * _normal(rng, 1.0, 0.04, 0.88, 1.12)
    hip_w = height * (0.115 if male else 0.125) * _normal(rng, 1.0, 0.05, 0.85, 1.15)
    head_scale = _normal(rng, 1.0, 0.04, 0.88, 1.12)

    cadence = _normal(rng, 110.0 if male else 116.0, 7.0, 92.0, 132.0)
    stride_ratio = _normal(rng, 0.80, 0.05, 0.66, 0.94)
    hip_range = 40.0 * stride_ratio / 0.80 * _normal(rng, 1.0, 0.06, 0.82, 1.18)
    hip_asym = (_normal(rng, 1.0, 0.04, 0.88, 1.12), _normal(rng, 1.0, 0.04, 0.88, 1.12))
    knee_swing = _normal(rng, 62.0, 4.0, 50.0, 72.0)
    knee_asym = (_normal(rng, 1.0, 0.04, 0.88, 1.12), _normal(rng, 1.0, 0.04, 0.88, 1.12))
    arm_swing = _normal(rng, 15.0, 5.0, 4.0, 30.0)
    arm_asym = (_normal(rng, 1.0, 0.10, 0.7, 1.3), _normal(rng, 1.0, 0.10, 0.7, 1.3))

    return SubjectParams(
        sex=sex,
        height_m=height,
        thigh_m=thigh,
        shank_m=shank,
        ankle_height_m=ankle_h,
        torso_m=torso,
        neck_m=neck,
        upper_arm_m=upper_arm,
        forearm_m=forearm,
        shoulder_width_m=shoulder_w,
        hip_width_m=hip_w,
        head_scale=head_scale,
        cadence_spm=cadence,
        stride_m=stride_ratio * height,
        hip_mean_deg=_normal(rng, 5.0, 2.5, -1.0, 11.0),
        hip_range_deg=(hip_range * hip_asym[0], hip_range * hip_asym[1]),
        hip_harmonic=_normal(rng, 0.0, 0.03, -0.08, 0.08),
        hip_harmonic_phase=float(rng.uniform(-np.pi, np.pi)),
        hip_abduction_deg=_normal(rng, 2.0, 1.0, -1.0, 5.0),
        knee_min_deg=_normal(rng, 4.0, 2.0, 0.0, 10.0),
        knee_stance_deg=_normal(rng, 18.0, 4.0, 8.0, 28.0),
        knee_swing_deg=(knee_swing * knee_asym[0], knee_swing * knee_asym[1]),
        knee_stance_at=_normal(rng, 0.14, 0.012, 0.10, 0.18),
        knee_swing_at=_normal(rng, 0.71, 0.015, 0.66, 0.76),
        knee_swing_width=_normal(rng, 2.0, 0.2, 1.5, 2.6),
        leg_phase_offset=_normal(rng, 0.0, 0.012, -0.04, 0.04),
        arm_swing_deg=(arm_swing * arm_asym[0], arm_swing * arm_asym[1]),
        arm_offset_deg=_normal(rng, -3.0, 3.0, -12.0, 6.0),
        arm_lag=_normal(rng, 0.03, 0.02, -0.03, 0.09),
        arm_abduction_deg=_normal(rng, 8.0, 2.0, 3.0, 14.0),
        elbow_min_deg=_normal(rng, 15.0, 5.0, 5.0, 30.0),
        elbow_range_deg=_normal(rng, 12.0, 4.0, 3.0, 25.0),
        pelvis_rotation_deg=_normal(rng, 5.0, 1.5, 1.0, 10.0),
        pelvis_obliquity_deg=_normal(rng, 4.0, 1.2, 1.0, 8.0),
        thorax_rotation_deg=_normal(rng, 4.0, 1.5, 0.5, 9.0),
        sway_m=_normal(rng, 0.025, 0.007, 0.01, 0.045),
        lean_deg=_normal(rng, 4.0, 3.0, -3.0, 12.0),
        lateral_lean_deg=_normal(rng, 0.0, 1.0, -3.0, 3.0),
        head_pitch_deg=_normal(rng, 8.0, 5.0, -5.0, 20.0),
        bag_side=1 if rng.random() < 0.5 else -1,
        bag_swing_scale=float(rng.uniform(0.05, 0.45)),
        bag_lean_deg=float(rng.uniform(1.0, 5.0)),
        bag_lateral_deg=float(rng.uniform(1.0, 4.0)),
        bag_elbow_deg=float(rng.uniform(0.0, 40.0)),
        bag_abduction_deg=float(rng.uniform(0.0, 6.0)),
        coat_shoulder_scale=float(rng.uniform(1.05, 1.15)),
        coat_hip_scale=float(rng.uniform(1.05, 1.20)),
        coat_blur=float(rng.uniform(1.5, 2.5)),
        coat_conf_drop=float(rng.uniform(0.05, 0.15)),
    )


def sample_variation(rng: np.random.Generator, wild: bool = False) -> SequenceVariation:
    """Draw the per-walk variation.

    Lab walks (CASIA-B, OU-MVLP): speed within ±2.5% (cadence) and ±2.5% (stride) of the
    person's habit, joint amplitudes ±3% (legs) / ±8% (arms), a random start phase, the walking
    line shifted by up to ±0.3 m sideways and ±0.3 m along itself, heading within ±2° (SD).
    In-the-wild walks (GREW, Gait3D): speed ±5%, any heading (the camera is then placed
    relative to the walk), no offsets.
    """
    speed_sd = 0.05 if wild else 0.025
    return SequenceVariation(
        cadence_scale=_normal(rng, 1.0, speed_sd, 1 - 3 * speed_sd, 1 + 3 * speed_sd),
        stride_scale=_normal(rng, 1.0, speed_sd, 1 - 3 * speed_sd, 1 + 3 * speed_sd),
        leg_amp_scale=_normal(rng, 1.0, 0.03, 0.91, 1.09),
        arm_amp_scale=_normal(rng, 1.0, 0.08, 0.76, 1.24),
        start_phase=float(rng.random()),
        lateral_offset_m=0.0 if wild else float(rng.uniform(-0.3, 0.3)),
        along_offset_m=0.0 if wild else float(rng.uniform(-0.3, 0.3)),
        heading_deg=float(rng.uniform(0.0, 360.0)) if wild else _normal(rng, 0.0, 2.0, -6.0, 6.0),
    )


def condition_of_type(type_name: str) -> str:
    """Condition kind of a CASIA-B-style type name: ``nm-01`` -> ``nm``, ``bg-02`` -> ``bg``."""
    kind = type_name.split("-", 1)[0]
    if kind not in ("nm", "bg", "cl"):
        raise ValueError(
            f"type {type_name!r} does not start with a condition (nm, bg or cl followed by '-'), "
            "e.g. 'nm-01', 'bg-02', 'cl-01'"
        )
    return kind


def sample_condition(kind: str, subject: SubjectParams, rng: np.random.Generator) -> Condition:
    """The condition of one walk. ``bg`` and ``cl`` start from the subject's wardrobe and add a
    per-walk jitter (the bag moves to the other side 15% of the time); ``nm`` draws nothing."""
    if kind == "nm":
        return Condition()
    if kind == "bg":
        side = subject.bag_side if rng.random() < 0.85 else -subject.bag_side
        damp = float(np.clip(subject.bag_swing_scale * rng.normal(1.0, 0.2), 0.02, 0.8))
        elbow = float(np.clip(subject.bag_elbow_deg + rng.normal(0.0, 5.0), 0.0, 50.0))
        abd = float(np.clip(subject.bag_abduction_deg + rng.normal(0.0, 1.0), 0.0, 8.0))
        left = side > 0
        return Condition(
            name="bg",
            arm_swing_scale=(damp, 1.0) if left else (1.0, damp),
            elbow_extra_deg=(elbow, 0.0) if left else (0.0, elbow),
            abduction_extra_deg=(abd, 0.0) if left else (0.0, abd),
            extra_lean_deg=float(subject.bag_lean_deg * rng.normal(1.0, 0.15)),
            # lean away from a one-sided load
            lateral_lean_deg=float(-side * subject.bag_lateral_deg * rng.normal(1.0, 0.15)),
        )
    if kind == "cl":
        return Condition(
            name="cl",
            shoulder_width_scale=float(subject.coat_shoulder_scale * rng.normal(1.0, 0.01)),
            hip_width_scale=float(subject.coat_hip_scale * rng.normal(1.0, 0.01)),
            blur=float(subject.coat_blur * rng.normal(1.0, 0.1)),
            conf_drop=float(np.clip(subject.coat_conf_drop + rng.normal(0.0, 0.02), 0.0, 0.3)),
        )
    raise ValueError(f"unknown condition {kind!r}; valid conditions: bg, cl, nm")


# In-the-wild condition mix (chosen, not measured): mostly plain walks, some carrying, a few coats.
_WILD_CONDITIONS = ("nm", "bg", "cl")
_WILD_CONDITION_PROBS = (0.6, 0.3, 0.1)


# ----------------------------------------------------------------------------------------------
# 3-D walk
# ----------------------------------------------------------------------------------------------
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


# Normative sagittal hip flexion over one gait cycle at 0, 5, ..., 95% (degrees; textbook
# adult curves, e.g. Perry & Burnfield, Winter): ~30° at heel strike, extension peak ~-9° at
# 55%, flexion peak ~31° in late swing. Only its shape is used (zero mean, unit range), built
# from its first four Fourier harmonics; each subject scales and shifts it.
_HIP_NORMATIVE_DEG = np.array(
    [30, 29, 26, 22, 17, 12, 8, 3, -1, -5, -8, -9, -5, 2, 10, 18, 24, 29, 31, 31], dtype=np.float64
)
_HIP_HARMONICS = 4


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
    n = t.shape[0]
    s = subject
    rad = np.deg2rad
    freq = s.cadence_spm / 120.0 * variation.cadence_scale  # strides per second
    speed = s.stride_m * variation.stride_scale * freq
    phase_r = 2.0 * np.pi * (variation.start_phase + freq * t)
    phase_l = phase_r + np.pi + 2.0 * np.pi * s.leg_phase_offset
    out = np.empty((n, NUM_JOINTS, 3), dtype=np.float64)

    # Pelvis: rotation brings the flexed (forward) hip forward; the swing side drops.
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
    lowest = np.minimum(legs[1][2][:, 2], legs[-1][2][:, 2])
    pelvis = np.stack(
        [
            np.full(n, variation.along_offset_m) + speed * t,
            variation.lateral_offset_m - s.sway_m * np.cos(phase_r - 2.0 * np.pi * _MID_STANCE),
            s.ankle_height_m - lowest,
        ],
        -1,
    )
    for side, (hip_j, knee_j, ankle_j) in ((1, (L_HIP, L_KNE, L_ANK)), (-1, (R_HIP, R_KNE, R_ANK))):
        for j, rel in zip((hip_j, knee_j, ankle_j), legs[side]):
            out[:, j] = pelvis + rel

    # Trunk: forward lean (+ a small bob twice per stride), sideways lean, counter-rotation.
    lean = rad(s.lean_deg + condition.extra_lean_deg + _TRUNK_BOB_DEG * np.cos(2.0 * phase_r))
    lateral = rad(np.full(n, s.lateral_lean_deg + condition.lateral_lean_deg))
    thorax_yaw = -rad(s.thorax_rotation_deg) * np.cos(phase_r)
    trunk_rot = _rot_z(thorax_yaw) @ _rot_y(lean) @ _rot_x(-lateral)
    shoulder_centre = pelvis + _apply(trunk_rot, np.array([0.0, 0.0, s.torso_m]))
    for side, sho_j, elb_j, wri_j, k, opposite in (
        (1, L_SHO, L_ELB, L_WRI, 0, phase_r),
        (-1, R_SHO, R_ELB, R_WRI, 1, phase_l),
    ):
        shoulder = shoulder_centre + _apply(trunk_rot, np.array([0.0, side * s.shoulder_width_m / 2.0, 0.0]))
        arm_phase = opposite - 2.0 * np.pi * s.arm_lag  # an arm swings with the opposite leg
        swing = s.arm_swing_deg[k] * variation.arm_amp_scale * condition.arm_swing_scale[k]
        flex = rad(s.arm_offset_deg + swing * np.cos(arm_phase))
        elbow_swing = s.elbow_range_deg * variation.arm_amp_scale * condition.arm_swing_scale[k]
        elbow_flex = rad(s.elbow_min_deg + condition.elbow_extra_deg[k] + elbow_swing * 0.5 * (1.0 + np.cos(arm_phase)))
        abd = rad(s.arm_abduction_deg + condition.abduction_extra_deg[k])
        elbow = shoulder + _apply(trunk_rot, s.upper_arm_m * _limb_dir(flex, abd, side))
        wrist = elbow + _apply(trunk_rot, s.forearm_m * _limb_dir(flex + elbow_flex, abd, side))
        out[:, sho_j], out[:, elb_j], out[:, wri_j] = shoulder, elbow, wrist

    # Head: on top of the neck, partly stabilised in yaw, pitched down, compensating half the lean.
    head_base = shoulder_centre + _apply(trunk_rot, np.array([0.0, 0.0, s.neck_m]))
    head_rot = _rot_z(_HEAD_YAW_FOLLOW * thorax_yaw) @ _rot_y(rad(s.head_pitch_deg) - 0.5 * lean)
    for j, offset in _HEAD_OFFSETS.items():
        out[:, j] = head_base + _apply(head_rot, s.height_m * s.head_scale * np.asarray(offset))

    # Coat: detections of shoulders and hips spread outwards from their midpoints.
    for (a, b), scale in (((L_SHO, R_SHO), condition.shoulder_width_scale), ((L_HIP, R_HIP), condition.hip_width_scale)):
        if scale != 1.0:
            mid, half = 0.5 * (out[:, a] + out[:, b]), 0.5 * (out[:, a] - out[:, b])
            out[:, a], out[:, b] = mid + scale * half, mid - scale * half
    out[:, NECK] = 0.5 * (out[:, L_SHO] + out[:, R_SHO])

    if variation.heading_deg != 0.0:
        h = rad(variation.heading_deg)
        c, sn = np.cos(h), np.sin(h)
        rot = np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]])
        out = out @ rot.T
    return out


# ----------------------------------------------------------------------------------------------
# Camera and self-occlusion
# ----------------------------------------------------------------------------------------------
def camera_at_azimuth(
    azimuth_deg: float,
    distance_m: float,
    height_m: float,
    focal_px: float,
    image_size: Tuple[int, int],
    target_height_m: float = 0.95,
) -> Camera:
    """Camera on a circle around the middle of a walk along +X, aimed at the walk's middle.

    Azimuth 0 faces the walker (they walk towards the camera), 90 sees their left side, 180
    their back, 270 their right side (CASIA-B / OU-MVLP view names read as azimuths).
    """
    a = np.deg2rad(azimuth_deg)
    pos = (distance_m * np.cos(a), distance_m * np.sin(a), height_m)
    return Camera.look_at(pos, (0.0, 0.0, target_height_m), focal_px, image_size)


@dataclass
class ProjectedWalk:
    """A 3-D walk seen by a camera, before the detector.

    Attributes:
        uv: ``[T, J, 2]`` pixel coordinates (x right, y down).
        depth: ``[T, J]`` distance along the optical axis (m); <= 0 means behind the camera.
        occlusion: ``[T, J]`` self-occlusion in [0, 1] (1 = fully hidden).
        facing: ``[T]`` cosine between the walker's front and the direction to the camera.
        scale_px: ``[T]`` the walker's stature in pixels at the pelvis depth.
        image_size: ``(width, height)``.
    """

    uv: np.ndarray
    depth: np.ndarray
    occlusion: np.ndarray
    facing: np.ndarray
    scale_px: np.ndarray
    image_size: Tuple[int, int]


def _project(points: np.ndarray, camera: Camera) -> Tuple[np.ndarray, np.ndarray]:
    rot = np.asarray(camera.rotation)
    cam = (points - np.asarray(camera.position)) @ rot.T
    depth = cam[..., 2]
    safe = np.where(depth > 1e-6, depth, 1e-6)
    uv = camera.focal_px * cam[..., :2] / safe[..., None]
    uv[..., 0] += camera.width / 2.0
    uv[..., 1] += camera.height / 2.0
    return uv, depth


# Self-occlusion model weights (chosen): how much of a far-side joint a side view hides when
# it does not overlap the body (first number) and when it does (first + second).
_OCC_ARM = (0.35, 0.65)
_OCC_LEG = (0.3, 0.7)
_OCC_TRUNK = 0.5     # far shoulder/hip in a pure side view
# Overlap widths in units of stature in pixels: trunk half-width, limb width.
_TRUNK_HALF_WIDTH = 0.12
_LIMB_WIDTH = 0.06


def observe(points: np.ndarray, camera: Camera, height_m: float) -> ProjectedWalk:
    """Project a 3-D walk ``[T, 18, 3]`` and score self-occlusion per joint.

    Occlusion: joints on the side turned away from the camera (far side, from the trunk's left
    axis) are hidden in proportion to how side-on the view is, more when they overlap the trunk
    (arms) or the near leg (legs) in the image; the nose and eyes are hidden when the walker
    faces away, the far ear and eye in side views.
    """
    uv, depth = _project(points, camera)
    left = (points[:, L_HIP] - points[:, R_HIP]) + (points[:, L_SHO] - points[:, R_SHO])
    left[:, 2] = 0.0
    left /= np.maximum(np.sqrt(np.sum(left ** 2, axis=-1, keepdims=True)), 1e-9)
    forward = np.stack([left[:, 1], -left[:, 0], np.zeros(len(left))], -1)  # left x up
    to_cam = np.asarray(camera.position) - 0.5 * (points[:, L_HIP] + points[:, R_HIP])
    to_cam /= np.maximum(np.sqrt(np.sum(to_cam ** 2, axis=-1, keepdims=True)), 1e-9)
    side = np.sum(left * to_cam, axis=-1)       # > 0: camera on the walker's left
    facing = np.sum(forward * to_cam, axis=-1)  # > 0: walker faces the camera
    far_left = np.clip(-side, 0.0, 1.0)[:, None]
    far_right = np.clip(side, 0.0, 1.0)[:, None]
    away = np.clip(-facing, 0.0, 1.0)

    pelvis_depth = 0.5 * (depth[:, L_HIP] + depth[:, R_HIP])
    scale_px = camera.focal_px * height_m / np.maximum(pelvis_depth, 1e-6)
    occ = np.zeros(depth.shape, dtype=np.float64)
    # Arms: distance to the trunk axis (shoulder centre -> hip centre) in the image.
    top = 0.5 * (uv[:, L_SHO] + uv[:, R_SHO])
    axis = 0.5 * (uv[:, L_HIP] + uv[:, R_HIP]) - top
    axis_len2 = np.maximum(np.sum(axis ** 2, axis=-1), 1e-9)
    arms = np.array([L_ELB, L_WRI, R_ELB, R_WRI])
    rel = uv[:, arms] - top[:, None]
    u = np.clip(np.sum(rel * axis[:, None], axis=-1) / axis_len2[:, None], 0.0, 1.0)
    d2 = np.sum((rel - u[..., None] * axis[:, None]) ** 2, axis=-1)
    overlap = np.exp(-d2 / (_TRUNK_HALF_WIDTH * scale_px[:, None]) ** 2)
    far_arm = np.concatenate([np.repeat(far_left, 2, 1), np.repeat(far_right, 2, 1)], axis=1)
    occ[:, arms] = far_arm * (_OCC_ARM[0] + _OCC_ARM[1] * overlap)
    # Legs: overlap of a far knee/ankle with the near one.
    d2 = np.sum((uv[:, [L_KNE, L_ANK]] - uv[:, [R_KNE, R_ANK]]) ** 2, axis=-1)
    overlap = _OCC_LEG[0] + _OCC_LEG[1] * np.exp(-d2 / (_LIMB_WIDTH * scale_px[:, None]) ** 2)
    occ[:, [L_KNE, L_ANK]] = far_left * overlap
    occ[:, [R_KNE, R_ANK]] = far_right * overlap
    occ[:, [L_SHO, L_HIP]] = _OCC_TRUNK * far_left
    occ[:, [R_SHO, R_HIP]] = _OCC_TRUNK * far_right
    occ[:, L_EAR], occ[:, R_EAR] = far_left[:, 0], far_right[:, 0]
    occ[:, L_EYE] = away + 0.5 * far_left[:, 0]
    occ[:, R_EYE] = away + 0.5 * far_right[:, 0]
    occ[:, NOSE] = away
    np.clip(occ, 0.0, 1.0, out=occ)
    return ProjectedWalk(uv, depth, occ, facing, scale_px, (camera.width, camera.height))


# ----------------------------------------------------------------------------------------------
# Detector
# ----------------------------------------------------------------------------------------------
# AR(1) jitter is built from this many past innovations (rho**8 < 0.004 for rho = 0.5).
_AR_TAPS = 8
# Mean of |standardised 2-D error| / sqrt(2) for unit Gaussian jitter (E of a chi with 2 dof / sqrt 2).
_MEAN_STD_ERROR = 0.886
# Joints closer than this to the camera (m) cannot be detected.
_MIN_DEPTH_M = 0.1


def _correlated_noise(rng: np.random.Generator, shape: Tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance noise along axis 0 with lag-1 correlation ``rho`` (truncated AR(1))."""
    n = shape[0]
    w = rng.standard_normal((n + _AR_TAPS,) + tuple(shape[1:]))
    weights = rho ** np.arange(_AR_TAPS + 1)
    out = np.zeros(shape)
    for k, wk in enumerate(weights):
        out += wk * w[_AR_TAPS - k:_AR_TAPS - k + n]
    return out / np.sqrt(np.sum(weights ** 2))


def apply_detector(
    view: ProjectedWalk,
    condition: Condition,
    rng: np.random.Generator,
    params: Optional[DetectorParams] = None,
    appearance_bias: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Turn clean projected joints into detector output ``[T, 18, 3]`` float64 (x, y, conf).

    * jitter: AR(1) Gaussian, std = ``noise_scale`` × joint spread × stature in pixels, larger
      when occluded and, for the joints a coat covers, times the coat's blur;
    * bias: ``appearance_bias`` (``[18, 2]`` in fractions of stature, see
      :func:`sample_appearance_bias`; none if omitted) plus one offset per joint drawn here
      (``bias_scale`` × spread), both times the stature in pixels;
    * confidence: base per joint + a per-sequence quality offset, minus occlusion, minus the
      coat's drop, minus a term growing with the actual error, plus jitter, clipped to
      [``min_confidence``, 1];
    * left/right swaps per frame (arms, legs, or the whole body when seen from behind);
    * missing joints (random, more when occluded; off-image; behind the camera) are ``(0, 0, 0)``.
    """
    p = params if params is not None else DetectorParams()
    uv = view.uv
    n, j = uv.shape[:2]
    scale = view.scale_px[:, None]
    occ = view.occlusion
    coat = 1.0 + (condition.blur - 1.0) * _COAT_WEIGHT
    sigma = p.noise_scale * _JOINT_SPREAD[None] * scale * (1.0 + p.occlusion_noise * occ) * coat[None]
    err = _correlated_noise(rng, (n, j, 2), p.temporal_corr)
    bias = rng.standard_normal((j, 2)) * (p.bias_scale * _JOINT_SPREAD)[:, None]
    if appearance_bias is not None:
        bias = bias + appearance_bias
    bias = bias * coat[:, None]
    xy = uv + err * sigma[..., None] + bias[None] * scale[..., None]

    std_err = np.sqrt(0.5 * np.sum(err ** 2, axis=-1))
    quality = rng.normal(0.0, p.quality_jitter)
    conf = (
        _BASE_CONFIDENCE[None] + quality
        - p.occlusion_conf_drop * occ
        - condition.conf_drop * _COAT_WEIGHT[None]
        - p.conf_error_gain * (std_err - _MEAN_STD_ERROR)
        + p.conf_jitter * rng.standard_normal((n, j))
    )
    np.clip(conf, p.min_confidence, 1.0, out=conf)
    missing = rng.random((n, j)) < p.miss_prob + p.miss_prob_occluded * occ ** 2
    missing |= view.depth < _MIN_DEPTH_M

    limb_swap = rng.random((n, 2)) < p.limb_swap_prob
    body_swap = rng.random(n) < p.body_swap_prob * np.clip(-view.facing, 0.0, 1.0)
    out = np.concatenate([xy, conf[..., None]], axis=-1)
    if limb_swap.any() or body_swap.any():
        index = np.tile(np.arange(j), (n, 1))
        for pairs, mask in ((_ARM_PAIRS, limb_swap[:, 0]), (_LEG_PAIRS, limb_swap[:, 1]), (_BODY_PAIRS, body_swap)):
            for a, b in pairs:
                index[mask, a], index[mask, b] = index[mask, b], index[mask, a].copy()
        out = np.take_along_axis(out, index[..., None], axis=1)
        missing = np.take_along_axis(missing, index, axis=1)
    width, height = view.image_size
    x, y = out[..., 0], out[..., 1]
    missing |= (x < 0) | (x >= width) | (y < 0) | (y >= height)
    out[missing] = 0.0
    return out


def sample_appearance_bias(rng: np.random.Generator, params: Optional[DetectorParams] = None) -> np.ndarray:
    """Systematic keypoint offsets ``[18, 2]`` (fractions of stature) of a detector looking at
    one person in one outfit from one camera; reuse it for every sequence sharing those."""
    p = params if params is not None else DetectorParams()
    return rng.standard_normal((NUM_JOINTS, 2)) * (p.appearance_bias_scale * _JOINT_SPREAD)[:, None]


def select_joints(sequence: np.ndarray, joint_format: str) -> np.ndarray:
    """Pick ``coco`` (17 joints) or ``openpose`` (18, OpenPose order; ``alphapose`` is the same)
    from an internal ``[..., 18, C]`` sequence."""
    return sequence[..., _FORMAT_INDEX[_check_joint_format(joint_format)], :]


def _check_joint_format(joint_format: str) -> str:
    try:
        return _FORMAT_ALIASES[joint_format]
    except (KeyError, TypeError):
        raise ValueError(
            f"joint_format {joint_format!r} cannot be generated; use one of: alphapose, coco, openpose"
        ) from None


def simulate_walk(
    subject: SubjectParams,
    condition: Condition,
    camera: Camera,
    num_frames: int,
    rng: np.random.Generator,
    joint_format: str = "coco",
    *,
    variation: Optional[SequenceVariation] = None,
    detector: Optional[DetectorParams] = None,
    fps: float = DEFAULT_FPS,
    time_offset_s: float = 0.0,
    appearance_bias: Optional[np.ndarray] = None,
) -> np.ndarray:
    """One detected pose sequence ``[T, V, 3]`` float32 (V = 17 COCO or 18 OpenPose).

    The walk is centred on time ``time_offset_s`` (the middle frame); ``variation`` defaults to
    a fresh lab-style draw from ``rng``; ``appearance_bias`` (from
    :func:`sample_appearance_bias`) defaults to none.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    joint_format = _check_joint_format(joint_format)
    if variation is None:
        variation = sample_variation(rng)
    times = (np.arange(num_frames) - (num_frames - 1) / 2.0) / fps + time_offset_s
    points = walk_3d(subject, condition, variation, times)
    return _detect(points, subject, condition, camera, rng, detector, joint_format, appearance_bias)


def _detect(
    points: np.ndarray,
    subject: SubjectParams,
    condition: Condition,
    camera: Camera,
    rng: np.random.Generator,
    detector: Optional[DetectorParams],
    joint_format: str,
    appearance_bias: Optional[np.ndarray],
) -> np.ndarray:
    view = observe(points, camera, subject.height_m)
    detected = apply_detector(view, condition, rng, detector, appearance_bias)
    return np.ascontiguousarray(select_joints(detected, joint_format), dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# Layout plans and the subject worker
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _WildCamera:
    """Camera drawn per sequence: placed ``distance`` (range, m) beyond the end of the walk
    path, at ``height_m`` (range), looking at the path's middle."""

    focal_px: Tuple[float, float]
    height_m: Tuple[float, float]
    distance_m: Tuple[float, float]
    image_size: Tuple[int, int]


@dataclass(frozen=True)
class _SeqSpec:
    subject_dir: str
    type_name: str
    view_name: str
    condition: str                 # nm / bg / cl / wild (drawn from the in-the-wild mix)
    walk_key: str                  # specs with the same key share one 3-D walk
    appearance_key: str            # ... and with the same key and clothes, one appearance bias
    camera: Optional[Camera] = None
    wild_camera: Optional[_WildCamera] = None


@dataclass(frozen=True)
class _SubjectTask:
    root: str
    seed: int
    layout_tag: int
    subject_index: int
    specs: Tuple[_SeqSpec, ...]
    frames: Tuple[int, int]
    fps: float
    joint_format: str
    wild: bool
    detector: DetectorParams


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


# Stream ids inside a subject's seed space.
_STREAM_SUBJECT, _STREAM_WALK, _STREAM_SEQUENCE, _STREAM_APPEARANCE = 0, 1, 2, 3
# Seed space of layout planning (split, video ids, cameras), outside any subject index.
_PLAN_KEY = 0xFFFFFFFF


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write via a temp file in the same folder and ``os.replace`` it into place, so an
    interrupted run never leaves a partial file under the final name (temp names end in
    ``.tmp``, which the loader ignores). No fsync: the guarantee is against interruption of the
    process, not against power loss, and syncing 10^4 small files would dominate the run time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _generate_subject(task: _SubjectTask) -> Tuple[int, int]:
    """Simulate and write every sequence of one subject; returns (sequences, frames).

    Sequences sharing a ``walk_key`` are cameras watching the same walk: the 3-D walk is
    computed once on a frame grid, and each camera records its own window of it (own length,
    start shifted by up to ±5 frames) through its own detector draw. A window is moved (and if
    need be shortened, not below the minimum length) to where the walker's pelvis is inside
    the image, as a recording starts when the person is in view; limbs may still leave the
    frame at the ends. Frames in which the detector finds no joint at all are not written,
    like the upstream converters skip frames without a person.
    """
    subject = sample_subject(_rng(task.seed, task.layout_tag, task.subject_index, _STREAM_SUBJECT))
    root = Path(task.root)
    lo, hi = task.frames
    groups: Dict[str, List[_SeqSpec]] = {}
    for spec in task.specs:
        groups.setdefault(spec.walk_key, []).append(spec)
    total_frames = 0
    made_dirs = set()
    for walk_key, specs in groups.items():
        rng_walk = _rng(task.seed, task.layout_tag, task.subject_index, _STREAM_WALK, _crc(walk_key))
        variation = sample_variation(rng_walk, wild=task.wild)
        kind = specs[0].condition
        if kind == "wild":
            kind = str(rng_walk.choice(_WILD_CONDITIONS, p=_WILD_CONDITION_PROBS))
        condition = sample_condition(kind, subject, rng_walk)
        # Grid of frame indices (0 = middle of the walk), wide enough to slide any window.
        grid_start = -hi - _WINDOW_SHIFT
        points = walk_3d(subject, condition, variation, np.arange(grid_start, hi + _WINDOW_SHIFT + 1) / task.fps)
        pelvis = 0.5 * (points[:, L_HIP] + points[:, R_HIP])
        for spec in specs:
            rng_seq = _rng(task.seed, task.layout_tag, task.subject_index, _STREAM_SEQUENCE,
                           _crc(spec.subject_dir), _crc(spec.type_name), _crc(spec.view_name))
            num_frames = int(rng_seq.integers(lo, hi + 1))
            first = -(num_frames // 2) + int(rng_seq.integers(-_WINDOW_SHIFT, _WINDOW_SHIFT + 1)) - grid_start
            camera = spec.camera
            if camera is None:
                assert spec.wild_camera is not None
                camera = _sample_wild_camera(spec.wild_camera, subject, variation, num_frames, task.fps, rng_seq)
            first, num_frames = _fit_window(_pelvis_in_view(pelvis, camera, subject.height_m),
                                            first, num_frames, lo)
            clothes = "coat" if condition.name == "cl" else "plain"
            appearance = sample_appearance_bias(
                _rng(task.seed, task.layout_tag, task.subject_index, _STREAM_APPEARANCE,
                     _crc(clothes), _crc(spec.appearance_key)),
                task.detector,
            )
            seq = _detect(points[first:first + num_frames], subject, condition, camera, rng_seq,
                          task.detector, task.joint_format, appearance)
            seen = seq[..., 2].any(axis=1)
            if not seen.all():
                seq = np.ascontiguousarray(seq[seen])
            folder = root / spec.subject_dir / spec.type_name / spec.view_name
            if folder not in made_dirs:
                os.makedirs(folder, exist_ok=True)
                made_dirs.add(folder)
            _write_atomic(folder / f"{spec.view_name}.pkl", pickle.dumps(seq, protocol=_PICKLE_PROTOCOL))
            total_frames += len(seq)
    return len(task.specs), total_frames


def _pelvis_in_view(pelvis: np.ndarray, camera: Camera, height_m: float) -> np.ndarray:
    """Frames whose pelvis projects inside the image, at least a tenth of a body height from
    the left/right borders."""
    uv, depth = _project(pelvis, camera)
    margin = 0.1 * camera.focal_px * height_m / np.maximum(depth, 1e-6)
    return ((depth > _MIN_DEPTH_M) & (uv[:, 0] >= margin) & (uv[:, 0] < camera.width - margin)
            & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height))


def _fit_window(inside: np.ndarray, first: int, length: int, min_length: int) -> Tuple[int, int]:
    """Move the window ``[first, first + length)`` of a frame grid into the run of ``inside``
    frames it overlaps most, shortening it (not below ``min_length``) if the run is shorter."""
    if inside[first:first + length].all() or not inside.any():
        return first, length
    idx = np.flatnonzero(inside)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    run_starts = np.concatenate([idx[:1], idx[breaks + 1]])
    run_ends = np.concatenate([idx[breaks], idx[-1:]]) + 1
    overlap = np.minimum(run_ends, first + length) - np.maximum(run_starts, first)
    r = int(np.argmax(overlap))
    run_start, run_end = int(run_starts[r]), int(run_ends[r])
    length = min(length, max(run_end - run_start, min_length))
    first = min(max(first, run_start), max(run_start, run_end - length))
    first = min(first, len(inside) - length)
    return first, length


# Largest shift (frames) between the windows that two cameras of one walk record.
_WINDOW_SHIFT = 5


def _sample_wild_camera(
    spec: _WildCamera,
    subject: SubjectParams,
    variation: SequenceVariation,
    num_frames: int,
    fps: float,
    rng: np.random.Generator,
) -> Camera:
    """Camera for an in-the-wild walk: beyond the end of the path (so the walker never reaches
    it), at a random height and focal length within ``spec``, aimed at the path's middle."""
    speed = subject.stride_m * variation.stride_scale * subject.cadence_spm / 120.0 * variation.cadence_scale
    half_path = 0.5 * speed * num_frames / fps + 0.2
    return Camera.look_at(
        (half_path + rng.uniform(*spec.distance_m), 0.0, rng.uniform(*spec.height_m)),
        (0.0, 0.0, 0.9),
        rng.uniform(*spec.focal_px),
        spec.image_size,
    )


# ----------------------------------------------------------------------------------------------
# Writing a dataset
# ----------------------------------------------------------------------------------------------
@dataclass
class GenerationSummary:
    """What a generator wrote.

    ``probe_truth`` (GREW only) maps each probe video id to the test subject who walks in it;
    it is also written to ``probe_truth_path``.
    """

    layout: str
    root: Path
    partition_path: Path
    joint_format: str
    seed: int
    num_subjects: int
    num_train: int
    num_test: int
    num_sequences: int
    num_frames: int
    workers: int
    seconds: float
    probe_truth_path: Optional[Path] = None
    probe_truth: Optional[Dict[str, str]] = field(default=None, repr=False)

    def __str__(self) -> str:
        lines = [
            f"layout:      {self.layout}",
            f"root:        {self.root}",
            f"partition:   {self.partition_path}",
            f"subjects:    {self.num_subjects} ({self.num_train} train / {self.num_test} test)",
            f"sequences:   {self.num_sequences} ({self.num_frames} frames, "
            f"{self.num_frames / max(self.num_sequences, 1):.1f} per sequence)",
            f"joints:      {self.joint_format}",
            f"seed:        {self.seed}",
            f"time:        {self.seconds:.2f} s with {self.workers} worker(s)",
        ]
        if self.probe_truth_path is not None:
            lines.append(f"probe truth: {self.probe_truth_path}")
        return "\n".join(lines)


def _check_common(root: PathLike, seed: int, frames: Tuple[int, int], workers: int, joint_format: str) -> Tuple[Path, str]:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if (len(frames) != 2 or not all(isinstance(f, (int, np.integer)) for f in frames)
            or frames[0] < 2 or frames[0] > frames[1]):
        raise ValueError(
            f"frames must be (min, max) integers with 2 <= min <= max (a one-frame sequence is not "
            f"a walk), got {frames!r}"
        )
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return Path(root), _check_joint_format(joint_format)


def _check_subjects(num_subjects: int, minimum: int = 2) -> None:
    if not isinstance(num_subjects, (int, np.integer)) or num_subjects < minimum:
        raise ValueError(f"num_subjects must be an integer >= {minimum}, got {num_subjects!r}")


def _resolve_num_train(num_subjects: int, num_train: Optional[int], train_fraction: float) -> int:
    if num_train is None:
        # Proportional to the benchmark's split, keeping at least one subject on each side.
        return int(min(max(round(num_subjects * train_fraction), 1), num_subjects - 1))
    if not isinstance(num_train, (int, np.integer)) or not 0 <= num_train <= num_subjects:
        raise ValueError(f"num_train must be an integer in [0, {num_subjects}], got {num_train!r}")
    return int(num_train)


def _prepare_root(root: Path, extra_files: Sequence[Path], subject_dirs: Sequence[str], overwrite: bool) -> None:
    """Refuse to write into a non-empty root (or over an existing partition file) unless
    ``overwrite``; with ``overwrite``, clear the subject folders about to be written so no stale
    sequence survives (other entries of the root are left alone)."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"dataset root {root} exists and is not a directory")
    existing = [f for f in extra_files if f.exists()]
    if not overwrite:
        if root.is_dir() and any(root.iterdir()):
            raise FileExistsError(
                f"dataset root {root} is not empty; choose an empty or new folder, or pass "
                "overwrite=True (--overwrite) to replace the generated subjects in it"
            )
        if existing:
            raise FileExistsError(
                f"{existing[0]} already exists; pass overwrite=True (--overwrite) to replace it"
            )
    root.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in subject_dirs:
            target = root / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()


def _run_tasks(tasks: List[_SubjectTask], workers: int) -> Tuple[int, int]:
    if workers == 1 or len(tasks) <= 1:
        results = [_generate_subject(t) for t in tasks]
    else:
        chunk = max(1, len(tasks) // (workers * 8))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_generate_subject, tasks, chunksize=chunk))
    return sum(r[0] for r in results), sum(r[1] for r in results)


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, (json.dumps(obj, indent=1) + "\n").encode("utf-8"))


def _finish(
    layout: str,
    root: Path,
    tasks: List[_SubjectTask],
    partition: Dict[str, List[str]],
    partition_path: Path,
    joint_format: str,
    seed: int,
    num_train: int,
    num_test: int,
    workers: int,
    start: float,
    probe_truth: Optional[Dict[str, str]] = None,
    probe_truth_path: Optional[Path] = None,
) -> GenerationSummary:
    num_sequences, num_frames = _run_tasks(tasks, workers)
    # The partition is written last: a dataset with a partition file is complete.
    if probe_truth is not None and probe_truth_path is not None:
        _write_json(probe_truth_path, probe_truth)
    _write_json(partition_path, partition)
    summary = GenerationSummary(
        layout=layout,
        root=root,
        partition_path=partition_path,
        joint_format=joint_format,
        seed=int(seed),
        num_subjects=num_train + num_test,
        num_train=num_train,
        num_test=num_test,
        num_sequences=num_sequences,
        num_frames=num_frames,
        workers=workers,
        seconds=time.perf_counter() - start,
        probe_truth_path=probe_truth_path,
        probe_truth=probe_truth,
    )
    logger.info("generated %s dataset: %d sequences in %.2f s", layout, num_sequences, summary.seconds)
    return summary


def _views_as_azimuths(views: Sequence[str]) -> List[float]:
    out = []
    for v in views:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise ValueError(f"view {v!r} is not an azimuth in degrees (e.g. '000', '090')") from None
    if len(set(views)) != len(views):
        raise ValueError(f"views contain duplicates: {list(views)}")
    return out


# Lab camera rigs. CASIA-B: 320x240 video; cameras 6.5 m from the middle of the walk, 1.0 m
# high; focal 330 px gives a walker ~85 px tall side-on and keeps a 110-frame walk (~5.7 m at
# 1.3 m/s) inside the 320-px frame. OU-MVLP: 1280x980 video; 4.5 m and 1100 px give a walker
# ~400 px tall, 40 frames (~2 m) stay in frame.
_CASIA_B_RIG = dict(distance_m=6.5, height_m=1.0, focal_px=330.0, image_size=(320, 240))
_OUMVLP_RIG = dict(distance_m=4.5, height_m=1.0, focal_px=1100.0, image_size=(1280, 980))
# Surveillance cameras for the in-the-wild layouts: full-HD frames, mounted 2.5-5 m high
# (GREW, street) or 2.5-3.5 m (Gait3D, ceiling of a supermarket), 4-14 m beyond the walk.
_GREW_CAMERA = _WildCamera(focal_px=(1000.0, 1700.0), height_m=(2.5, 5.0), distance_m=(4.0, 12.0), image_size=(1920, 1080))
_GAIT3D_NUM_CAMERAS = 39


def generate_casia_b(
    root: PathLike,
    num_subjects: int = 124,
    num_train: Optional[int] = None,
    views: Sequence[str] = CASIA_B_VIEWS,
    types: Sequence[str] = CASIA_B_TYPES,
    frames: Tuple[int, int] = (50, 110),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a CASIA-B-like dataset: ``<root>/<sss>/<type>/<view>/<view>.pkl``.

    Subjects ``001``, ``002``, … (3 digits); the first ``num_train`` are TRAIN_SET, the rest
    TEST_SET (default: 74/124 of the subjects, rounded — the benchmark's 74/50 split, scaled).
    Each type is one walk seen simultaneously by all views (a camera at each azimuth, 0 =
    walking towards it); types must start with ``nm-``, ``bg-`` or ``cl-``. The partition is
    written to ``partition_path`` (default ``<root>/partition.json``).
    """
    start = time.perf_counter()
    _check_subjects(num_subjects)
    root_path, fmt = _check_common(root, seed, frames, workers, joint_format)
    num_train = _resolve_num_train(num_subjects, num_train, 74.0 / 124.0)
    azimuths = _views_as_azimuths(views)
    kinds = [condition_of_type(t) for t in types]
    if len(set(types)) != len(types) or not types:
        raise ValueError(f"types must be a non-empty list without duplicates, got {list(types)}")
    cameras = [camera_at_azimuth(a, **_CASIA_B_RIG) for a in azimuths]
    names = [f"{i + 1:03d}" for i in range(num_subjects)]
    part_path = Path(partition_path) if partition_path is not None else root_path / "partition.json"
    _prepare_root(root_path, [part_path], names, overwrite)
    tasks = []
    for i, name in enumerate(names):
        specs = tuple(
            _SeqSpec(name, t, v, kind, walk_key=t, appearance_key=v, camera=cam)
            for t, kind in zip(types, kinds)
            for v, cam in zip(views, cameras)
        )
        tasks.append(_SubjectTask(str(root_path), int(seed), _LAYOUT_TAG["casia-b"], i, specs,
                                  tuple(frames), DEFAULT_FPS, fmt, False, detector or DetectorParams()))
    partition = {"TRAIN_SET": names[:num_train], "TEST_SET": names[num_train:]}
    return _finish("casia-b", root_path, tasks, partition, part_path, fmt, seed,
                   num_train, num_subjects - num_train, workers, start)


def generate_oumvlp(
    root: PathLike,
    num_subjects: int = 10307,
    views: Sequence[str] = OUMVLP_VIEWS,
    types: Sequence[str] = OUMVLP_TYPES,
    frames: Tuple[int, int] = (20, 40),
    joint_format: str = "openpose",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write an OU-MVLP-Pose-like dataset: ``<root>/<sssss>/<type>/<view>/<view>.pkl``.

    Subjects ``00001``… (5 digits); odd ids TRAIN_SET, even ids TEST_SET, except that with the
    full 10,307 subjects id ``10307`` goes to TEST_SET as in the official partition. Types
    ``00``/``01`` are two normal walks; views ``000``-``090`` see one walking direction and
    ``180``-``270`` the return walk. Default 18 OpenPose joints (the OUMVLP-Pose release).
    Partition default ``<root>/partition.json``.
    """
    start = time.perf_counter()
    _check_subjects(num_subjects)
    root_path, fmt = _check_common(root, seed, frames, workers, joint_format)
    azimuths = _views_as_azimuths(views)
    if len(set(types)) != len(types) or not types:
        raise ValueError(f"types must be a non-empty list without duplicates, got {list(types)}")
    cameras = [camera_at_azimuth(a, **_OUMVLP_RIG) for a in azimuths]
    names = [f"{i + 1:05d}" for i in range(num_subjects)]
    part_path = Path(partition_path) if partition_path is not None else root_path / "partition.json"
    _prepare_root(root_path, [part_path], names, overwrite)
    tasks = []
    for i, name in enumerate(names):
        specs = tuple(
            _SeqSpec(name, t, v, "nm", walk_key=f"{t}/{'out' if a % 360 < 180 else 'back'}",
                     appearance_key=v, camera=cam)
            for t in types
            for v, a, cam in zip(views, azimuths, cameras)
        )
        tasks.append(_SubjectTask(str(root_path), int(seed), _LAYOUT_TAG["oumvlp"], i, specs,
                                  tuple(frames), DEFAULT_FPS, fmt, False, detector or DetectorParams()))
    partition = oumvlp_partition(num_subjects)
    return _finish("oumvlp", root_path, tasks, partition, part_path, fmt, seed,
                   len(partition["TRAIN_SET"]), len(partition["TEST_SET"]), workers, start)


def oumvlp_partition(num_subjects: int) -> Dict[str, List[str]]:
    """OU-MVLP's partition rule applied to ``num_subjects`` synthetic subjects."""
    return oumvlp_official_partition(num_subjects)


_VIDEO_ID_ALPHABET = string.ascii_letters + string.digits


def _video_ids(rng: np.random.Generator, count: int) -> List[str]:
    """``count`` distinct random 8-character video ids (letters and digits), like GREW's."""
    ids: List[str] = []
    seen = set()
    alphabet = np.array(list(_VIDEO_ID_ALPHABET))
    while len(ids) < count:
        for row in rng.integers(0, len(alphabet), size=(count - len(ids), 8)):
            vid = "".join(alphabet[row])
            if vid not in seen:
                seen.add(vid)
                ids.append(vid)
    return ids


def generate_grew(
    root: PathLike,
    num_subjects: int = 26000,
    num_train: Optional[int] = None,
    train_sequences: Tuple[int, int] = (2, 6),
    probes_per_subject: int = 2,
    frames: Tuple[int, int] = (20, 70),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    probe_truth_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a GREW-like (in-the-wild) dataset.

    * training identities ``<id>train`` (``00001train``…), type ``00``, a random number of
      sequences in ``train_sequences`` each under its 8-character video id:
      ``<root>/00001train/00/<vid>/<vid>.pkl``;
    * test identities ``<id>`` (5 digits, numbered after nothing else: ``00001``…, a different
      person from ``00001train``), two gallery walks typed ``01`` and ``02`` in sorted video-id
      order: ``<root>/00001/01/<vid>/<vid>.pkl``;
    * ``probes_per_subject`` further walks of each test identity under the pseudo-subject
      ``probe``: ``<root>/probe/03/<vid>/<vid>.pkl`` — the identity is not in the layout; it is
      returned in ``summary.probe_truth`` ({video id: test subject}) and written to
      ``probe_truth_path`` (default ``<root>/grew_probe_truth.json``).

    TRAIN_SET = the training names, TEST_SET = the test ids followed by ``probe`` (default
    ``<root>/partition.json``). Default split 20,000 / 6,000 of 26,000, scaled. Every sequence has
    its own camera (azimuth, height, distance, focal length), its own condition (60% normal,
    30% bag, 10% coat) and a noisier detector.
    """
    start = time.perf_counter()
    _check_subjects(num_subjects)
    root_path, fmt = _check_common(root, seed, frames, workers, joint_format)
    num_train = _resolve_num_train(num_subjects, num_train, 20000.0 / 26000.0)
    num_test = num_subjects - num_train
    lo, hi = train_sequences
    if not 1 <= lo <= hi:
        raise ValueError(f"train_sequences must be (min, max) with 1 <= min <= max, got {train_sequences!r}")
    if probes_per_subject < 0:
        raise ValueError(f"probes_per_subject must be >= 0, got {probes_per_subject}")
    tag = _LAYOUT_TAG["grew"]
    plan_rng = _rng(seed, tag, _PLAN_KEY, 0)
    counts = plan_rng.integers(lo, hi + 1, size=num_train)
    vids = iter(_video_ids(plan_rng, int(counts.sum()) + num_test * (2 + probes_per_subject)))
    train_names = [f"{i + 1:05d}train" for i in range(num_train)]
    test_names = [f"{i + 1:05d}" for i in range(num_test)]
    part_path = Path(partition_path) if partition_path is not None else root_path / "partition.json"
    truth_path = Path(probe_truth_path) if probe_truth_path is not None else root_path / "grew_probe_truth.json"
    _prepare_root(root_path, [part_path, truth_path], train_names + test_names + ["probe"], overwrite)

    tasks: List[_SubjectTask] = []
    truth: Dict[str, str] = {}

    def task(index: int, specs: List[_SeqSpec]) -> _SubjectTask:
        return _SubjectTask(str(root_path), int(seed), tag, index, tuple(specs), tuple(frames),
                            DEFAULT_FPS, fmt, True, detector or _WILD_DETECTOR)

    for i, name in enumerate(train_names):
        seq_vids = [next(vids) for _ in range(int(counts[i]))]
        tasks.append(task(i, [_SeqSpec(name, "00", v, "wild", v, v, wild_camera=_GREW_CAMERA) for v in seq_vids]))
    for j, name in enumerate(test_names):
        gallery = sorted(next(vids) for _ in range(2))
        probes = [next(vids) for _ in range(probes_per_subject)]
        specs = [_SeqSpec(name, f"{k + 1:02d}", v, "wild", v, v, wild_camera=_GREW_CAMERA) for k, v in enumerate(gallery)]
        specs += [_SeqSpec("probe", "03", v, "wild", v, v, wild_camera=_GREW_CAMERA) for v in probes]
        truth.update({v: name for v in probes})
        tasks.append(task(num_train + j, specs))
    partition = {"TRAIN_SET": train_names, "TEST_SET": test_names + ["probe"]}
    truth = dict(sorted(truth.items()))
    return _finish("grew", root_path, tasks, partition, part_path, fmt, seed, num_train, num_test,
                   workers, start, probe_truth=truth, probe_truth_path=truth_path)


# Gait3D PROBE_SET composition: 872 / 110 / 13 / 5 probes are seq0 / seq1 / seq2 / seq3.
_GAIT3D_PROBE_SEQ_WEIGHTS = np.array([872.0, 110.0, 13.0, 5.0])
# Tracks per (camera, video): P(1, 2, 3, 4 sequences) — most tracks are unbroken (chosen).
_GAIT3D_SEQS_PER_VIDEO = np.array([0.6, 0.25, 0.1, 0.05])
# Videos (cameras) per subject: 1-3, at least two sequences overall (~6 per subject on average
# in Gait3D: 25,309 sequences of 4,000 people).
_GAIT3D_VIDEOS = (1, 3)
_GAIT3D_VIDEO_IDS = 20  # video ids per camera to draw from (chosen)


def generate_gait3d(
    root: PathLike,
    num_subjects: int = 4000,
    num_train: Optional[int] = None,
    num_cameras: int = _GAIT3D_NUM_CAMERAS,
    frames: Tuple[int, int] = (20, 90),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a Gait3D-like (in-the-wild, multi-camera) dataset.

    Subjects ``0000``… (4 digits, contiguous); types ``camid<c>_videoid<v>`` (each subject is
    seen by 1-3 different cameras), views ``seq<k>`` (a track split into 1-4 sequences,
    ``seq0`` first). The split is a seeded random choice of ``num_train`` subjects (default
    3/4, the benchmark's 3,000/1,000), and like Gait3D's official lists the TRAIN_SET and
    TEST_SET are not sorted. PROBE_SET holds exactly one ``<subject>-<type>-<view>`` per test
    subject, ``seq<k>`` drawn with the benchmark's 872:110:13:5 weights over k = 0..3; every
    other test sequence is gallery. Cameras (39 by default) have fixed mounting heights and focal
    lengths; each walk has a random direction. Partition default ``<root>/partition.json``.
    """
    start = time.perf_counter()
    _check_subjects(num_subjects)
    root_path, fmt = _check_common(root, seed, frames, workers, joint_format)
    num_train = _resolve_num_train(num_subjects, num_train, 0.75)
    if not isinstance(num_cameras, (int, np.integer)) or num_cameras < _GAIT3D_VIDEOS[1]:
        raise ValueError(f"num_cameras must be an integer >= {_GAIT3D_VIDEOS[1]}, got {num_cameras!r}")
    tag = _LAYOUT_TAG["gait3d"]
    plan_rng = _rng(seed, tag, _PLAN_KEY, 0)
    cams = [
        _WildCamera(focal_px=(f, f), height_m=(h, h), distance_m=(d, d + 3.0), image_size=(1920, 1080))
        for f, h, d in zip(plan_rng.uniform(1000.0, 1500.0, num_cameras),
                           plan_rng.uniform(2.5, 3.5, num_cameras),
                           plan_rng.uniform(3.0, 8.0, num_cameras))
    ]
    names = [f"{i:04d}" for i in range(num_subjects)]
    order = plan_rng.permutation(num_subjects)
    train = [names[i] for i in order[:num_train]]
    test = [names[i] for i in order[num_train:]]
    test_set = set(test)
    part_path = Path(partition_path) if partition_path is not None else root_path / "partition.json"
    _prepare_root(root_path, [part_path], names, overwrite)

    tasks: List[_SubjectTask] = []
    probe_of: Dict[str, str] = {}
    for i, name in enumerate(names):
        srng = _rng(seed, tag, _PLAN_KEY, 1, i)
        while True:
            n_videos = int(srng.integers(_GAIT3D_VIDEOS[0], _GAIT3D_VIDEOS[1] + 1))
            camids = srng.choice(num_cameras, size=n_videos, replace=False)
            n_seqs = srng.choice(len(_GAIT3D_SEQS_PER_VIDEO), size=n_videos, p=_GAIT3D_SEQS_PER_VIDEO) + 1
            if n_seqs.sum() >= 2:
                break
        specs = []
        videos = []
        for c, n in zip(camids, n_seqs):
            type_name = f"camid{int(c)}_videoid{int(srng.integers(0, _GAIT3D_VIDEO_IDS))}"
            videos.append((type_name, int(n)))
            for k in range(int(n)):
                # one track: the same clothes and camera, so one appearance bias
                specs.append(_SeqSpec(name, type_name, f"seq{k}", "wild", f"{type_name}/seq{k}",
                                      type_name, wild_camera=cams[int(c)]))
        if name in test_set:
            max_k = min(max(n for _, n in videos), len(_GAIT3D_PROBE_SEQ_WEIGHTS))
            w = _GAIT3D_PROBE_SEQ_WEIGHTS[:max_k] / _GAIT3D_PROBE_SEQ_WEIGHTS[:max_k].sum()
            k = int(srng.choice(max_k, p=w))
            candidates = [t for t, n in videos if n > k]
            probe_of[name] = f"{name}-{candidates[int(srng.integers(len(candidates)))]}-seq{k}"
        tasks.append(_SubjectTask(str(root_path), int(seed), tag, i, tuple(specs), tuple(frames),
                                  DEFAULT_FPS, fmt, True, detector or _WILD_DETECTOR))
    partition = {"TRAIN_SET": train, "TEST_SET": test, "PROBE_SET": [probe_of[n] for n in test]}
    return _finish("gait3d", root_path, tasks, partition, part_path, fmt, seed, num_train,
                   num_subjects - num_train, workers, start)


_GENERATORS = {
    "casia-b": generate_casia_b,
    "oumvlp": generate_oumvlp,
    "grew": generate_grew,
    "gait3d": generate_gait3d,
}


def generate_dataset(layout: str, root: PathLike, **kwargs) -> GenerationSummary:
    """Generate a synthetic dataset in one of the benchmark layouts (``casia-b``, ``oumvlp``,
    ``grew``, ``gait3d``); keyword arguments go to the layout's ``generate_*`` function."""
    try:
        fn = _GENERATORS[layout]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}") from None
    return fn(root, **kwargs)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastposegait.data.synthetic",
        description="Write a synthetic pose-based gait dataset in a benchmark layout.",
    )
    parser.add_argument("layout", choices=LAYOUTS)
    parser.add_argument("--root", required=True, help="output dataset root (must be empty or new)")
    parser.add_argument("--subjects", type=int, default=None, help="number of identities (default: the benchmark's)")
    parser.add_argument("--train", type=int, default=None,
                        help="training identities (casia-b, grew, gait3d; default: the benchmark's proportion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint-format", choices=("coco", "openpose"), default=None,
                        help="default: openpose for oumvlp, coco otherwise")
    parser.add_argument("--workers", type=int, default=1, help="processes (results do not depend on it)")
    parser.add_argument("--frames", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="sequence length range")
    parser.add_argument("--views", default=None, help="comma-separated views (casia-b, oumvlp)")
    parser.add_argument("--types", default=None, help="comma-separated types (casia-b, oumvlp)")
    parser.add_argument("--partition", default=None, help="partition JSON path (default: <root>/partition.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace the generated subjects in a non-empty root")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> GenerationSummary:
    """Command-line entry point; prints and returns the summary."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    kwargs: Dict[str, object] = dict(seed=args.seed, workers=args.workers, overwrite=args.overwrite,
                                     partition_path=args.partition)
    if args.subjects is not None:
        kwargs["num_subjects"] = args.subjects
    if args.joint_format is not None:
        kwargs["joint_format"] = args.joint_format
    if args.frames is not None:
        kwargs["frames"] = tuple(args.frames)
    if args.train is not None:
        if args.layout == "oumvlp":
            parser.error("--train does not apply to oumvlp (odd ids train, even ids test)")
        kwargs["num_train"] = args.train
    for opt in ("views", "types"):
        value = getattr(args, opt)
        if value is not None:
            if args.layout not in ("casia-b", "oumvlp"):
                parser.error(f"--{opt} applies to casia-b and oumvlp only")
            kwargs[opt] = [v.strip() for v in value.split(",") if v.strip()]
    try:
        summary = generate_dataset(args.layout, args.root, **kwargs)
    except (ValueError, FileExistsError, NotADirectoryError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(summary)
    return summary


if __name__ == "__main__":
    main()
