"""Imputation of missing joint coordinates across the frames of one sequence.

The original skeleton-map generator fills missing coordinates with scikit-learn's
``KNNImputer(missing_values=0, n_neighbors=4, weights="distance")`` run on the [T, 2V] matrix of
coordinates. This module gives the same result with NumPy alone:

* an entry is missing iff it is exactly 0.0 (x and y judged separately);
* the distance between frames a and b is the NaN-aware Euclidean distance over the columns
  present in both, scaled up to all columns: ``sqrt(F / F_ab * sum((a_k - b_k)^2))``;
* a missing entry (frame f, column j) takes the distance-weighted mean (weights ``1/d``; donors
  at distance 0 get weight 1 and every other donor 0) of the 4 nearest frames whose column j is
  present; a frame sharing no present column with any such donor gets the column's mean;
* if some column is missing in every frame, the original's reshape fails and it keeps the
  coordinates un-imputed for the whole sequence: so do we.

Differences from scikit-learn that only touch the last bits (docs/upstream_differences.md,
"Skeleton maps"): scikit-learn expands ``|a-b|^2 = |a|^2 + |b|^2 - 2ab`` while we sum the
differences directly, and it picks the nearest donors with ``np.argpartition``, whose order
among equal distances depends on the NumPy build and CPU; we sort donors by distance and break
ties by frame order (earlier frame first), which is also the order the weighted sum uses.
"""
from __future__ import annotations

import numpy as np

#: Number of donor frames averaged for each missing coordinate.
N_NEIGHBOURS = 4
_CHUNK_ELEMENTS = 1 << 22  # receivers x donors x columns per block of the distance computation


def _nan_euclidean(coords: np.ndarray, present: np.ndarray, receivers: np.ndarray) -> np.ndarray:
    """Distances [R, T] from each receiver frame to every frame (NaN where nothing is shared)."""
    n_frames, n_cols = coords.shape
    out = np.empty((receivers.size, n_frames), dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // max(1, n_frames * n_cols))
    for start in range(0, receivers.size, step):
        rows = receivers[start:start + step]
        shared = present[rows][:, None, :] & present[None, :, :]              # [r, T, F]
        diff = np.where(shared, coords[rows][:, None, :] - coords[None, :, :], 0.0)
        sq_sum = np.einsum("rtf,rtf->rt", diff, diff)
        count = shared.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.sqrt(sq_sum * n_cols / count)
        dist[count == 0] = np.nan
        out[start:start + step] = dist
    return out


def _weighted_value(dist: np.ndarray, values: np.ndarray) -> float:
    """Distance-weighted mean of the nearest donors (``dist`` finite or NaN, one per donor)."""
    k = min(N_NEIGHBOURS, dist.size)
    order = np.argsort(np.where(np.isnan(dist), np.inf, dist), kind="stable")[:k]
    near = dist[order]
    with np.errstate(divide="ignore"):
        weights = 1.0 / near
    if np.isinf(weights).any():
        weights = np.isinf(weights).astype(np.float64)
    weights[np.isnan(weights)] = 0.0
    return float(np.sum(values[order] * weights) / np.sum(weights))


def fill_missing_joints(poses: np.ndarray) -> np.ndarray:
    """Impute missing coordinates of a pose sequence the way the original generator does.

    Args:
        poses: [T, V, 3] array of (x, y, confidence); a coordinate equal to 0.0 is missing.

    Returns:
        float64 [T, V, 3]: coordinates imputed (or all left as they were when some coordinate is
        missing in every frame), confidences unchanged, so an imputed joint keeps confidence 0.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[2] != 3:
        raise ValueError(f"fill_missing_joints expects [T, V, 3] (x, y, confidence), got shape {poses.shape}")
    out = poses.copy()
    n_frames, n_joints, _ = poses.shape
    coords = poses[:, :, :2].reshape(n_frames, 2 * n_joints)
    present = coords != 0.0
    if not present.all(axis=0).all() and present.any(axis=0).all():
        filled = coords.copy()
        receivers = np.flatnonzero(~present.all(axis=1))
        dist = _nan_euclidean(coords, present, receivers)
        column_sum = np.ascontiguousarray(np.where(present, coords, 0.0).T).sum(axis=1)
        column_mean = column_sum / present.sum(axis=0)
        for row, frame in enumerate(receivers):
            for col in np.flatnonzero(~present[frame]):
                donors = np.flatnonzero(present[:, col])
                donor_dist = dist[row, donors]
                if np.isnan(donor_dist).all():
                    filled[frame, col] = column_mean[col]
                else:
                    filled[frame, col] = _weighted_value(donor_dist, coords[donors, col])
        out[:, :, :2] = filled.reshape(n_frames, n_joints, 2)
    return out
