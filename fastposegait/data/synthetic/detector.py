"""The simulated 2-D pose detector: pixel noise, keypoint biases, confidences, left/right
swaps and missing joints, applied to a :class:`~.visibility.ProjectedWalk`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .conditions import Condition
from .joints import (ARM_PAIRS, BODY_PAIRS, L_ELB, L_HIP, L_KNE, L_SHO, LEG_PAIRS, NECK, NUM_JOINTS,
                     R_ELB, R_HIP, R_KNE, R_SHO)
from .visibility import ProjectedWalk

# Per-keypoint localisation spread as a fraction of body height: the COCO keypoint
# challenge's per-keypoint annotator standard deviations (OKS sigmas, relative to object scale
# sqrt(area)) times 0.4, the ratio of sqrt(segmentation area) to stature for a standing adult.
# Faces are located precisely, hips worst. The neck borrows the shoulders' value. (Indexed by
# the generator's 18 internal joints, so kept here rather than in skeleton.py.)
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

# AR(1) jitter is built from this many past innovations (rho**8 < 0.004 for rho = 0.5).
_AR_TAPS = 8
# Mean of |standardised 2-D error| / sqrt(2) for unit Gaussian jitter (E of a chi with 2 dof / sqrt 2).
_MEAN_STD_ERROR = 0.886
# Joints closer than this to the camera (m) cannot be detected.
MIN_DEPTH_M = 0.1


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
WILD_DETECTOR = DetectorParams().scaled(1.4)


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

    The random draws are made in this order (jitter, bias, quality, confidence jitter, misses,
    swaps); changing it changes every generated dataset.
    """
    p = params if params is not None else DetectorParams()
    n, j = view.uv.shape[:2]
    occ = view.occlusion
    xy, err = _noisy_positions(view, condition, rng, p, appearance_bias)
    conf = _confidence(err, occ, condition, rng, p)
    missing = rng.random((n, j)) < p.miss_prob + p.miss_prob_occluded * occ ** 2
    missing |= view.depth < MIN_DEPTH_M
    limb_swap = rng.random((n, 2)) < p.limb_swap_prob
    body_swap = rng.random(n) < p.body_swap_prob * np.clip(-view.facing, 0.0, 1.0)
    out = np.concatenate([xy, conf[..., None]], axis=-1)
    out, missing = _swap_sides(out, missing, limb_swap, body_swap)
    width, height = view.image_size
    x, y = out[..., 0], out[..., 1]
    missing |= (x < 0) | (x >= width) | (y < 0) | (y >= height)
    out[missing] = 0.0
    return out


def _noisy_positions(
    view: ProjectedWalk,
    condition: Condition,
    rng: np.random.Generator,
    p: DetectorParams,
    appearance_bias: Optional[np.ndarray],
) -> Tuple[np.ndarray, np.ndarray]:
    """Detected pixel positions ``[T, J, 2]`` and the standardised jitter ``[T, J, 2]`` that
    went into them."""
    uv = view.uv
    n, j = uv.shape[:2]
    scale = view.scale_px[:, None]
    coat = 1.0 + (condition.blur - 1.0) * _COAT_WEIGHT
    sigma = p.noise_scale * _JOINT_SPREAD[None] * scale * (1.0 + p.occlusion_noise * view.occlusion) * coat[None]
    err = _correlated_noise(rng, (n, j, 2), p.temporal_corr)
    bias = rng.standard_normal((j, 2)) * (p.bias_scale * _JOINT_SPREAD)[:, None]
    if appearance_bias is not None:
        bias = bias + appearance_bias
    bias = bias * coat[:, None]
    return uv + err * sigma[..., None] + bias[None] * scale[..., None], err


def _confidence(
    err: np.ndarray, occ: np.ndarray, condition: Condition, rng: np.random.Generator, p: DetectorParams
) -> np.ndarray:
    """Detector confidence ``[T, J]``: lower when occluded, under a coat or badly located."""
    std_err = np.sqrt(0.5 * np.sum(err ** 2, axis=-1))
    quality = rng.normal(0.0, p.quality_jitter)
    conf = (
        _BASE_CONFIDENCE[None] + quality
        - p.occlusion_conf_drop * occ
        - condition.conf_drop * _COAT_WEIGHT[None]
        - p.conf_error_gain * (std_err - _MEAN_STD_ERROR)
        + p.conf_jitter * rng.standard_normal(occ.shape)
    )
    np.clip(conf, p.min_confidence, 1.0, out=conf)
    return conf


def _swap_sides(
    out: np.ndarray, missing: np.ndarray, limb_swap: np.ndarray, body_swap: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """Exchange left and right joints in the frames where the detector confused them:
    ``limb_swap`` ``[T, 2]`` (arms, legs), ``body_swap`` ``[T]`` (every pair)."""
    if not (limb_swap.any() or body_swap.any()):
        return out, missing
    n, j = missing.shape
    index = np.tile(np.arange(j), (n, 1))
    for pairs, mask in ((ARM_PAIRS, limb_swap[:, 0]), (LEG_PAIRS, limb_swap[:, 1]), (BODY_PAIRS, body_swap)):
        for a, b in pairs:
            index[mask, a], index[mask, b] = index[mask, b], index[mask, a].copy()
    return np.take_along_axis(out, index[..., None], axis=1), np.take_along_axis(missing, index, axis=1)


def sample_appearance_bias(rng: np.random.Generator, params: Optional[DetectorParams] = None) -> np.ndarray:
    """Systematic keypoint offsets ``[18, 2]`` (fractions of stature) of a detector looking at
    one person in one outfit from one camera; reuse it for every sequence sharing those."""
    p = params if params is not None else DetectorParams()
    return rng.standard_normal((NUM_JOINTS, 2)) * (p.appearance_bias_scale * _JOINT_SPREAD)[:, None]
