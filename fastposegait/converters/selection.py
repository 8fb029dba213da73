"""Choosing the walker when a frame holds several detected people.

The original FastPoseGait OUMVLP script always keeps ``people[0]``, but detectors list people
in no meaningful order: a bystander may come first and be more confident, and the sequence then
jumps between people. Three ways to choose, in order of preference:

1. :func:`load_selection_index` — OpenGait's per-sequence ``pose_selection_idx.pkl`` (frame
   index -> person index), bit-compatible with OpenGait's fixed pickles;
2. :func:`silhouette_choice` — the candidate whose joints fall on the frame's silhouette
   (OpenGait's criterion, for users who have OUMVLP's silhouette release);
3. :func:`track_walker` — no side information: follow the track with the smallest joint
   displacement from frame to frame, starting from a frame with one person.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from ..data.io import load_pickle
from ..errors import PoseFileError, RawFileError


def _mean_confidence(people: np.ndarray) -> np.ndarray:
    """Mean joint confidence of each person ``[..., V, 3] -> [...]``."""
    return people[..., 2].mean(axis=-1)


def joint_distance(previous: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Mean pixel distance ``[P]`` between a skeleton ``[V, 3]`` and candidates ``[P, V, 3]``
    over the joints confident (> 0) in both; ``inf`` when they share no confident joint."""
    both = (previous[None, :, 2] > 0) & (candidates[:, :, 2] > 0)
    dist = np.sqrt(((candidates[:, :, :2] - previous[None, :, :2]) ** 2).sum(-1))
    shared = both.sum(-1)
    return np.where(shared > 0, (dist * both).sum(-1) / np.maximum(shared, 1), np.inf)


def closest_candidate(previous: np.ndarray, candidates: np.ndarray) -> int:
    """The candidate nearest to ``previous`` (ties: the higher mean confidence)."""
    order = np.lexsort((-_mean_confidence(candidates), joint_distance(previous, candidates)))
    return int(order[0])


def track_walker(frames: Sequence[np.ndarray]) -> List[int]:
    """Per frame, the index of the walker among its detections.

    ``frames[t]`` is ``[P_t, V, 3]`` with ``P_t >= 1`` (frames without anyone are dropped
    before). The track starts at the first frame with exactly one person (or, if every frame
    is crowded, at the most confident candidate of the first frame), then extends forwards and
    backwards, each frame taking the candidate closest to the skeleton chosen in the
    neighbouring frame (:func:`closest_candidate`). Confidence and list position are not
    evidence on their own: a bystander may be listed first and be more confident.
    """
    n = len(frames)
    if n == 0:
        return []
    choice = [0] * n
    singles = [t for t, f in enumerate(frames) if f.shape[0] == 1]
    start = singles[0] if singles else 0
    choice[start] = 0 if singles else int(np.argmax(_mean_confidence(frames[0])))
    for step in (1, -1):
        previous = frames[start][choice[start]]
        t = start + step
        while 0 <= t < n:
            candidates = frames[t]
            choice[t] = 0 if candidates.shape[0] == 1 else closest_candidate(previous, candidates)
            previous = candidates[choice[t]]
            t += step
    return choice


def silhouette_choice(candidates: np.ndarray, silhouette: np.ndarray) -> int:
    """OpenGait's silhouette criterion: the candidate maximising the summed silhouette
    intensity at its joints (pixel coordinates truncated to integers); a candidate with any
    joint outside the image scores −∞. ``silhouette`` is ``[H, W]``."""
    h, w = silhouette.shape[:2]
    xs = np.trunc(candidates[:, :, 0]).astype(np.int64)
    ys = np.trunc(candidates[:, :, 1]).astype(np.int64)
    inside = ((xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)).all(axis=1)
    scores = np.full(candidates.shape[0], -np.inf)
    for p in np.flatnonzero(inside):
        scores[p] = float(silhouette[ys[p], xs[p]].astype(np.float64).sum())
    return int(np.argmax(scores))


def read_silhouette(path: str | Path) -> np.ndarray:
    """A silhouette PNG as a ``[H, W]`` intensity array (needs Pillow)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with torchvision
        raise RawFileError("reading silhouettes needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"))
    except OSError as exc:
        raise RawFileError(f"{path}: unreadable silhouette image ({exc}); delete it or re-extract it") from None


def load_selection_index(path: str | Path) -> Dict[int, int]:
    """OpenGait's ``pose_selection_idx.pkl``: ``{frame index string: person index}`` as
    ``{frame number: person index}`` (read with the restricted unpickler)."""
    try:
        raw = load_pickle(path)
    except PoseFileError as exc:
        raise RawFileError(str(exc)) from None
    if not isinstance(raw, dict):
        raise RawFileError(f"{path}: expected a dict {{frame index: person index}}, got {type(raw).__name__}")
    index: Dict[int, int] = {}
    for key, value in raw.items():
        try:
            index[int(str(key).strip())] = int(value)
        except (TypeError, ValueError):
            shown = " ".join(repr(value).split())[:80]  # one line, short, whatever the value holds
            raise RawFileError(
                f"{path}: entry {str(key)[:40]!r}: {shown} is not frame index -> person index; re-download "
                "or recompute the selection index"
            ) from None
    return index
