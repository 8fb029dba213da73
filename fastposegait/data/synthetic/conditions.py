"""Walking conditions: normal (``nm``), carrying a bag (``bg``) or wearing a coat (``cl``); the
CCPG outfits and SUSTech1K covariates are combinations of the same effects."""
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
    if kind.startswith(OUTFIT_KIND):
        return _sample_outfit(kind[len(OUTFIT_KIND):], subject, rng)
    if kind.startswith(COVARIATES_KIND):
        return _sample_covariates(kind[len(COVARIATES_KIND):], subject, rng)
    raise ValueError(f"unknown condition {kind!r}; valid conditions: bg, cl, nm, outfit:<CCPG type>, "
                     "covariates:<SUSTech1K codes>")


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


# --------------------------------------------------------------------------------------------
# CCPG outfits and SUSTech1K covariates, mapped onto the same condition model
# --------------------------------------------------------------------------------------------

#: Prefixes of the condition kinds of the CCPG and SUSTech1K layouts (the rest of the kind is
#: the CCPG type, e.g. ``outfit:U1_D1_BG``, or SUSTech1K's covariate codes, e.g. ``covariates:bg``).
OUTFIT_KIND = "outfit:"
COVARIATES_KIND = "covariates:"
#: SUSTech1K covariate codes the generator models.
SUSTECH1K_CODES = ("nm", "bg", "cl", "cr", "ub", "uf", "oc", "nt")


def outfit_kind(type_name: str) -> str:
    """Condition kind of a CCPG type ``U<u>_D<d>`` or ``U<u>_D<d>_BG`` (u, d in 0-3)."""
    parts = type_name.split("_")
    ok = (len(parts) in (2, 3) and len(parts[0]) == 2 and parts[0][0] == "U" and parts[0][1] in "0123"
          and len(parts[1]) == 2 and parts[1][0] == "D" and parts[1][1] in "0123"
          and (len(parts) == 2 or parts[2] == "BG"))
    if not ok:
        raise ValueError(f"CCPG type {type_name!r} is not U<k>_D<k> or U<k>_D<k>_BG with k in 0-3, e.g. 'U1_D0', "
                         "'U0_D0_BG'")
    return OUTFIT_KIND + type_name


def covariates_kind(type_name: str) -> str:
    """Condition kind of a SUSTech1K type ``<nn>-<code>[-<code>…]`` (``01-bg``, ``03-nt-uf``)."""
    number, _, codes = type_name.partition("-")
    parts = codes.split("-") if codes else []
    bad = [c for c in parts if c not in SUSTECH1K_CODES]
    if not (len(number) == 2 and number.isdigit()) or not parts or bad:
        raise ValueError(f"SUSTech1K type {type_name!r} is not '<2-digit number>-<codes>' with codes among "
                         f"{', '.join(SUSTECH1K_CODES)} (joined by '-'), e.g. '00-nm', '01-bg', '03-nt-uf'")
    return COVARIATES_KIND + "-".join(parts)


def _combine(parts: Tuple[Condition, ...], name: str) -> Condition:
    """Several effects at once: swing and width scales and blur multiply, angles, leans and
    confidence drops add (the drop capped at 0.4)."""
    out = Condition(name=name)
    for c in parts:
        out = Condition(
            name=name,
            arm_swing_scale=(out.arm_swing_scale[0] * c.arm_swing_scale[0],
                             out.arm_swing_scale[1] * c.arm_swing_scale[1]),
            elbow_extra_deg=(out.elbow_extra_deg[0] + c.elbow_extra_deg[0],
                             out.elbow_extra_deg[1] + c.elbow_extra_deg[1]),
            abduction_extra_deg=(out.abduction_extra_deg[0] + c.abduction_extra_deg[0],
                                 out.abduction_extra_deg[1] + c.abduction_extra_deg[1]),
            extra_lean_deg=out.extra_lean_deg + c.extra_lean_deg,
            lateral_lean_deg=out.lateral_lean_deg + c.lateral_lean_deg,
            shoulder_width_scale=out.shoulder_width_scale * c.shoulder_width_scale,
            hip_width_scale=out.hip_width_scale * c.hip_width_scale,
            blur=out.blur * c.blur,
            conf_drop=min(0.4, out.conf_drop + c.conf_drop),
        )
    return out


def _sample_garments(subject: SubjectParams, rng: np.random.Generator, upper: float, lower: float) -> Condition:
    """Clothes heavier than the reference outfit: ``upper``/``lower`` in [0, 1] scale the
    subject's coat effect on the shoulders/hips (1 = their coat); blur and confidence drop follow
    the heavier of the two."""
    heavier = max(upper, lower)
    return Condition(
        name="cl",
        shoulder_width_scale=float(1.0 + (subject.coat_shoulder_scale * rng.normal(1.0, 0.01) - 1.0) * upper),
        hip_width_scale=float(1.0 + (subject.coat_hip_scale * rng.normal(1.0, 0.01) - 1.0) * lower),
        blur=float(1.0 + (subject.coat_blur * rng.normal(1.0, 0.1) - 1.0) * heavier),
        conf_drop=float(np.clip(subject.coat_conf_drop + rng.normal(0.0, 0.02), 0.0, 0.3) * heavier),
    )


def _sample_outfit(type_name: str, subject: SubjectParams, rng: np.random.Generator) -> Condition:
    """A CCPG outfit: garment level k of 3 for the upper (``U<k>``) and lower (``D<k>``) body,
    ``U0_D0`` the reference clothes; ``_BG`` adds the subject's bag."""
    parts = type_name.split("_")
    upper, lower = int(parts[0][1]) / 3.0, int(parts[1][1]) / 3.0
    effects = []
    if upper or lower:
        effects.append(_sample_garments(subject, rng, upper, lower))
    if len(parts) == 3:
        effects.append(_sample_bag(subject, rng))
    name = "cl" if (upper or lower) else ("bg" if len(parts) == 3 else "nm")
    return _combine(tuple(effects), name)


def _sample_umbrella(subject: SubjectParams, rng: np.random.Generator) -> Condition:
    """An umbrella held up in one hand: that arm hardly swings, its elbow bent about 70-100°."""
    left = subject.bag_side > 0
    damp = float(rng.uniform(0.02, 0.1))
    elbow = float(rng.uniform(70.0, 100.0))
    return Condition(name="bg", arm_swing_scale=(damp, 1.0) if left else (1.0, damp),
                     elbow_extra_deg=(elbow, 0.0) if left else (0.0, elbow))


def _sample_covariate(code: str, subject: SubjectParams, rng: np.random.Generator) -> Condition:
    """One SUSTech1K covariate on the condition model: ``bg`` and ``cr`` (carrying) a load on
    one side, ``ub`` an umbrella, ``cl`` the subject's coat, ``uf`` a uniform (half a coat),
    ``oc`` occlusion and ``nt`` night (noisier, less confident detections, no change of shape)."""
    if code == "nm":
        return Condition()
    if code in ("bg", "cr"):
        return _sample_bag(subject, rng)
    if code == "ub":
        return _sample_umbrella(subject, rng)
    if code == "cl":
        return _sample_coat(subject, rng)
    if code == "uf":
        return _sample_garments(subject, rng, 0.5, 0.5)
    if code == "oc":
        return Condition(name="nm", blur=float(rng.uniform(1.3, 1.8)), conf_drop=float(rng.uniform(0.1, 0.2)))
    if code == "nt":
        return Condition(name="nm", blur=float(rng.uniform(1.8, 2.6)), conf_drop=float(rng.uniform(0.15, 0.3)))
    raise ValueError(f"unknown SUSTech1K covariate {code!r}; valid codes: {', '.join(SUSTECH1K_CODES)}")


def _sample_covariates(codes: str, subject: SubjectParams, rng: np.random.Generator) -> Condition:
    effects = tuple(_sample_covariate(code, subject, rng) for code in codes.split("-"))
    names = [e.name for e in effects]
    name = "cl" if "cl" in names else ("bg" if "bg" in names else "nm")
    return _combine(effects, name)
