"""Walking conditions: normal (``nm``), carrying a bag (``bg``) or wearing a coat (``cl``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .body import SubjectParams


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


# In-the-wild condition mix (chosen, not measured): mostly plain walks, some carrying, a few coats.
WILD_CONDITIONS = ("nm", "bg", "cl")
WILD_CONDITION_PROBS = (0.6, 0.3, 0.1)


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
        return _sample_bag(subject, rng)
    if kind == "cl":
        return _sample_coat(subject, rng)
    raise ValueError(f"unknown condition {kind!r}; valid conditions: bg, cl, nm")


def _sample_bag(subject: SubjectParams, rng: np.random.Generator) -> Condition:
    """A bag in one hand: that arm swings less, its elbow bends and it is held away from the
    body; the trunk leans forward and away from the load."""
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


def _sample_coat(subject: SubjectParams, rng: np.random.Generator) -> Condition:
    """A coat: wider shoulder and hip keypoints, blurrier and less confident detections there."""
    return Condition(
        name="cl",
        shoulder_width_scale=float(subject.coat_shoulder_scale * rng.normal(1.0, 0.01)),
        hip_width_scale=float(subject.coat_hip_scale * rng.normal(1.0, 0.01)),
        blur=float(subject.coat_blur * rng.normal(1.0, 0.1)),
        conf_drop=float(np.clip(subject.coat_conf_drop + rng.normal(0.0, 0.02), 0.0, 0.3)),
    )
