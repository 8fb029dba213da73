"""KNN imputation of missing joint coordinates, against the worked example and a brute-force loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
from worked_example import L_EAR, R_WRIST, worked_example_poses

from fastposegait.data.skeleton_maps.impute import fill_missing_joints


def brute_force_impute(poses: np.ndarray) -> np.ndarray:
    """Entry-by-entry reference written with plain Python loops."""
    T, V, _ = poses.shape
    F = 2 * V
    rows = [[float(poses[t, j // 2, j % 2]) for j in range(F)] for t in range(T)]
    out = np.array(poses, dtype=np.float64)
    for j in range(F):
        if all(rows[t][j] == 0.0 for t in range(T)):
            return out  # a coordinate never present: nothing is imputed
    for t in range(T):
        for j in range(F):
            if rows[t][j] != 0.0:
                continue
            donors = []
            for s in range(T):
                if rows[s][j] == 0.0:
                    continue
                shared = [k for k in range(F) if rows[t][k] != 0.0 and rows[s][k] != 0.0]
                if shared:
                    total = sum((rows[t][k] - rows[s][k]) ** 2 for k in shared)
                    donors.append((math.sqrt(F / len(shared) * total), s))
            if not donors:
                present = [rows[s][j] for s in range(T) if rows[s][j] != 0.0]
                value = sum(present) / len(present)
            else:
                donors.sort()  # by distance, then frame index
                near = donors[:4]
                if any(d == 0.0 for d, _ in near):
                    weights = [1.0 if d == 0.0 else 0.0 for d, _ in near]
                else:
                    weights = [1.0 / d for d, _ in near]
                value = sum(w * rows[s][j] for w, (_, s) in zip(weights, near)) / sum(weights)
            out[t, j // 2, j % 2] = value
    return out


def test_worked_example_r_wrist():
    poses = worked_example_poses()
    filled = fill_missing_joints(poses)
    d0, d1 = math.sqrt(1700.0), math.sqrt(34 / 32 * 1000.0)  # frame 2 to frame 0; to frames 1 and 3
    assert d0 == pytest.approx(41.231, abs=1e-3) and d1 == pytest.approx(32.596, abs=1e-3)
    expected_x = (265 / d0 + 280 / d1 + 270 / d1) / (1 / d0 + 2 / d1)
    assert filled[2, R_WRIST, 0] == pytest.approx(expected_x, rel=1e-12)
    assert round(filled[2, R_WRIST, 0], 3) == 272.167
    assert filled[2, R_WRIST, 1] == pytest.approx(210.0, rel=1e-14) and filled[2, R_WRIST, 2] == 0.0
    untouched = np.ones(poses.shape[:2], bool)
    untouched[2, R_WRIST] = False
    assert np.array_equal(filled[untouched], poses[untouched])
    assert filled.dtype == np.float64


def test_joint_missing_in_every_frame_disables_imputation():
    poses = worked_example_poses()
    poses[:, L_EAR, :2] = 0.0
    filled = fill_missing_joints(poses)
    assert np.array_equal(filled, poses)
    assert filled[2, R_WRIST].tolist() == [0.0, 0.0, 0.0]


def test_frame_with_every_joint_missing_gets_column_means():
    poses = worked_example_poses()
    poses[1, :, :2] = 0.0
    poses[1, :, 2] = 0.0
    filled = fill_missing_joints(poses)
    assert filled[1, 0, 0] == pytest.approx((300 + 310 + 315) / 3)
    assert filled[1, 0, 1] == pytest.approx(100.0)
    assert np.all(filled[1, :, 2] == 0.0)
    # frame 2's wrist: frame 1 shares nothing, so only frames 0 and 3 vote
    d0, d3 = math.sqrt(1700.0), math.sqrt(34 / 32 * 1000.0)
    assert filled[2, R_WRIST, 0] == pytest.approx((265 / d0 + 270 / d3) / (1 / d0 + 1 / d3), rel=1e-12)
    assert np.allclose(filled, brute_force_impute(poses), rtol=0, atol=1e-9)


def test_zero_distance_donor_takes_all_the_weight():
    poses = worked_example_poses()
    poses[0] = poses[3]          # frames 0 and 3 identical; frame 0 loses its left knee x
    poses[0, 13, 0] = 0.0
    poses[3, 13, 0] = 123.0
    filled = fill_missing_joints(poses)
    assert filled[0, 13, 0] == 123.0


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_on_random_sequences(seed):
    rng = np.random.default_rng(seed)
    T, V = int(rng.integers(2, 25)), int(rng.choice([5, 17]))
    poses = rng.normal(300, 60, (T, V, 3))
    poses[..., 2] = rng.random((T, V))
    if seed % 3 == 0:
        poses[..., :2] = np.round(poses[..., :2] / 20) * 20  # many equal distances
    poses[rng.random((T, V)) < 0.3, :2] = 0.0
    poses[rng.random((T, V, 3)) < 0.05] = 0.0   # x or y alone missing
    if seed % 4 == 0:
        poses[int(rng.integers(T)), :, :2] = 0.0
    poses[0, :, :2] = np.where(poses[0, :, :2] == 0.0, 1.0, poses[0, :, :2])  # every column present once
    filled = fill_missing_joints(poses)
    reference = brute_force_impute(poses)
    assert np.allclose(filled, reference, rtol=0, atol=1e-9)
    assert np.array_equal(filled[..., 2], poses[..., 2])


def test_nothing_missing_and_bad_shape():
    poses = worked_example_poses()[[0, 1, 3]]
    assert np.array_equal(fill_missing_joints(poses), poses)
    with pytest.raises(ValueError, match=r"\[T, V, 3\]"):
        fill_missing_joints(np.zeros((4, 17)))
