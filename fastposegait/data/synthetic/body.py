"""Who walks and how they walk this time: a subject's body and gait style, and the variation
between two walks of the same person."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np


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


def normal(rng: np.random.Generator, mean: float, std: float, lo: float, hi: float) -> float:
    """One draw of a normal distribution clipped to ``[lo, hi]``."""
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

    The draws are made in a fixed order (body, then gait style, then wardrobe): changing the
    order changes every generated dataset.
    """
    sex = "male" if rng.random() < 0.5 else "female"
    male = sex == "male"
    body = _sample_body(rng, male)
    style = _sample_gait_style(rng, male, body["height_m"])
    return SubjectParams(sex=sex, **body, **style, **_sample_wardrobe(rng))


def _sample_body(rng: np.random.Generator, male: bool) -> Dict[str, float]:
    """Stature, segment lengths, shoulder/hip widths and head size (metres)."""
    height = normal(rng, 1.75 if male else 1.62, 0.07 if male else 0.065, 1.45, 2.02)

    def seg(ratio: float) -> float:
        return height * ratio * normal(rng, 1.0, 0.03, 0.91, 1.09)

    thigh, shank, ankle_h = seg(0.245), seg(0.246), seg(0.039)
    torso, neck = seg(0.288), seg(0.052)
    upper_arm, forearm = seg(0.186), seg(0.146)
    return dict(
        height_m=height,
        thigh_m=thigh,
        shank_m=shank,
        ankle_height_m=ankle_h,
        torso_m=torso,
        neck_m=neck,
        upper_arm_m=upper_arm,
        forearm_m=forearm,
        shoulder_width_m=height * (0.220 if male else 0.205) * normal(rng, 1.0, 0.04, 0.88, 1.12),
        hip_width_m=height * (0.115 if male else 0.125) * normal(rng, 1.0, 0.05, 0.85, 1.15),
        head_scale=normal(rng, 1.0, 0.04, 0.88, 1.12),
    )


def _sample_gait_style(rng: np.random.Generator, male: bool, height: float) -> Dict[str, object]:
    """Cadence, stride, joint-angle curve parameters, trunk and head posture."""
    cadence = normal(rng, 110.0 if male else 116.0, 7.0, 92.0, 132.0)
    stride_ratio = normal(rng, 0.80, 0.05, 0.66, 0.94)
    hip_range = 40.0 * stride_ratio / 0.80 * normal(rng, 1.0, 0.06, 0.82, 1.18)
    hip_asym = (normal(rng, 1.0, 0.04, 0.88, 1.12), normal(rng, 1.0, 0.04, 0.88, 1.12))
    knee_swing = normal(rng, 62.0, 4.0, 50.0, 72.0)
    knee_asym = (normal(rng, 1.0, 0.04, 0.88, 1.12), normal(rng, 1.0, 0.04, 0.88, 1.12))
    arm_swing = normal(rng, 15.0, 5.0, 4.0, 30.0)
    arm_asym = (normal(rng, 1.0, 0.10, 0.7, 1.3), normal(rng, 1.0, 0.10, 0.7, 1.3))
    return dict(
        cadence_spm=cadence,
        stride_m=stride_ratio * height,
        hip_mean_deg=normal(rng, 5.0, 2.5, -1.0, 11.0),
        hip_range_deg=(hip_range * hip_asym[0], hip_range * hip_asym[1]),
        hip_harmonic=normal(rng, 0.0, 0.03, -0.08, 0.08),
        hip_harmonic_phase=float(rng.uniform(-np.pi, np.pi)),
        hip_abduction_deg=normal(rng, 2.0, 1.0, -1.0, 5.0),
        knee_min_deg=normal(rng, 4.0, 2.0, 0.0, 10.0),
        knee_stance_deg=normal(rng, 18.0, 4.0, 8.0, 28.0),
        knee_swing_deg=(knee_swing * knee_asym[0], knee_swing * knee_asym[1]),
        knee_stance_at=normal(rng, 0.14, 0.012, 0.10, 0.18),
        knee_swing_at=normal(rng, 0.71, 0.015, 0.66, 0.76),
        knee_swing_width=normal(rng, 2.0, 0.2, 1.5, 2.6),
        leg_phase_offset=normal(rng, 0.0, 0.012, -0.04, 0.04),
        arm_swing_deg=(arm_swing * arm_asym[0], arm_swing * arm_asym[1]),
        arm_offset_deg=normal(rng, -3.0, 3.0, -12.0, 6.0),
        arm_lag=normal(rng, 0.03, 0.02, -0.03, 0.09),
        arm_abduction_deg=normal(rng, 8.0, 2.0, 3.0, 14.0),
        elbow_min_deg=normal(rng, 15.0, 5.0, 5.0, 30.0),
        elbow_range_deg=normal(rng, 12.0, 4.0, 3.0, 25.0),
        pelvis_rotation_deg=normal(rng, 5.0, 1.5, 1.0, 10.0),
        pelvis_obliquity_deg=normal(rng, 4.0, 1.2, 1.0, 8.0),
        thorax_rotation_deg=normal(rng, 4.0, 1.5, 0.5, 9.0),
        sway_m=normal(rng, 0.025, 0.007, 0.01, 0.045),
        lean_deg=normal(rng, 4.0, 3.0, -3.0, 12.0),
        lateral_lean_deg=normal(rng, 0.0, 1.0, -3.0, 3.0),
        head_pitch_deg=normal(rng, 8.0, 5.0, -5.0, 20.0),
    )


def _sample_wardrobe(rng: np.random.Generator) -> Dict[str, float]:
    """How this person carries a bag and how their coat changes their detections."""
    return dict(
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
        cadence_scale=normal(rng, 1.0, speed_sd, 1 - 3 * speed_sd, 1 + 3 * speed_sd),
        stride_scale=normal(rng, 1.0, speed_sd, 1 - 3 * speed_sd, 1 + 3 * speed_sd),
        leg_amp_scale=normal(rng, 1.0, 0.03, 0.91, 1.09),
        arm_amp_scale=normal(rng, 1.0, 0.08, 0.76, 1.24),
        start_phase=float(rng.random()),
        lateral_offset_m=0.0 if wild else float(rng.uniform(-0.3, 0.3)),
        along_offset_m=0.0 if wild else float(rng.uniform(-0.3, 0.3)),
        heading_deg=float(rng.uniform(0.0, 360.0)) if wild else normal(rng, 0.0, 2.0, -6.0, 6.0),
    )

