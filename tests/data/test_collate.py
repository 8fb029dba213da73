"""Frame sampling modes and batch packing."""
import numpy as np
import pytest
import torch

from fastposegait.data.collate import BatchCollator, FrameSampler
from fastposegait.data.transforms import build_transforms


def rng(seed=0):
    return np.random.default_rng(seed)


def test_fixed_ordered_is_a_contiguous_window():
    fs = FrameSampler("fixed_ordered", frames_num_fixed=5)
    for seed in range(50):
        idx = fs(12, rng(seed))
        assert len(idx) == 5
        assert (np.diff(idx) == 1).all()
        assert 0 <= idx[0] <= 7


def test_fixed_ordered_short_sequence_wraps():
    fs = FrameSampler("fixed_ordered", frames_num_fixed=5)
    seen = {tuple(fs(3, rng(s))) for s in range(60)}
    # L = 3 tiled twice -> 6 positions, windows of 5 start at 0 or 1
    assert seen == {(0, 1, 2, 0, 1), (1, 2, 0, 1, 2)}


def test_fixed_ordered_with_skip_is_sorted_subset_of_window():
    fs = FrameSampler("fixed_ordered", frames_num_fixed=4, frames_skip_num=3)
    for seed in range(50):
        idx = fs(30, rng(seed))
        assert len(idx) == 4 and (np.diff(idx) > 0).all()
        assert idx[-1] - idx[0] <= 6


def test_fixed_unordered_without_then_with_replacement():
    fs = FrameSampler("fixed_unordered", frames_num_fixed=6)
    idx = fs(10, rng(1))
    assert len(set(idx.tolist())) == 6 and idx.max() < 10
    orders = [tuple(fs(10, rng(s))) for s in range(20)]
    assert any(list(o) != sorted(o) for o in orders)  # draw order is kept, not sorted
    short = fs(3, rng(2))
    assert len(short) == 6 and set(short.tolist()) <= {0, 1, 2}


def test_unfixed_length_is_drawn_per_sequence_in_range():
    fs = FrameSampler("unfixed_unordered", frames_num_min=3, frames_num_max=6)
    g = rng(0)
    lengths = {len(fs(50, g)) for _ in range(200)}
    assert lengths == {3, 4, 5, 6}


def test_all_modes_and_limit():
    assert FrameSampler("all_ordered")(7, rng()).tolist() == list(range(7))
    assert FrameSampler("all_unordered")(7, rng()).tolist() == list(range(7))
    assert FrameSampler("all_ordered", frames_all_limit=4)(7, rng()).tolist() == [0, 1, 2, 3]
    assert FrameSampler("all_ordered", frames_all_limit=40)(7, rng()).tolist() == list(range(7))


def test_bad_sample_type():
    with pytest.raises(ValueError, match="sample_type must be"):
        FrameSampler("fixed")
    with pytest.raises(ValueError, match="needs frames_num_fixed"):
        FrameSampler("fixed_ordered")


def seqs(lengths, V=17):
    out = []
    for i, T in enumerate(lengths):
        a = np.zeros((T, V, 3), dtype=np.float64)
        a[:, :, 0] = np.arange(T)[:, None] + 1000 * i  # x encodes (sequence, frame)
        a[:, :, 2] = 1.0
        out.append([a])
    return out


def test_fixed_batch_is_stacked_float32():
    col = BatchCollator(FrameSampler("fixed_ordered", frames_num_fixed=4), build_transforms([{"type": "SkeletonInput"}]))
    ipts, labels, types, views, seql = col(seqs([10, 12]), [3, 5], ["nm-01", "bg-01"], ["000", "090"], [rng(i) for i in range(8)])
    assert ipts[0].shape == (2, 3, 4, 17, 1) and ipts[0].dtype == torch.float32
    assert labels.tolist() == [3, 5] and labels.dtype == torch.int64
    assert types == ["nm-01", "bg-01"] and views == ["000", "090"]
    assert seql is None


def test_all_batch_is_packed_along_time_with_seql():
    col = BatchCollator(FrameSampler("all_ordered"), build_transforms([{"type": "SkeletonInput"}]))
    ipts, labels, _, _, seql = col(seqs([5, 3, 4]), [0, 1, 2], ["a"] * 3, ["v"] * 3, [rng(i) for i in range(8)])
    assert ipts[0].shape == (1, 3, 12, 17, 1)  # SkeletonInput puts time on axis 1
    assert seql.tolist() == [[5, 3, 4]] and seql.dtype == torch.int32
    x = ipts[0][0, 0, :, 0, 0].tolist()
    assert x == [0, 1, 2, 3, 4, 1000, 1001, 1002, 2000, 2001, 2002, 2003]


def test_transforms_apply_per_sequence_before_packing():
    # GaitTR-style velocities must not cross sequence boundaries (upstream lets them)
    col = BatchCollator(FrameSampler("all_ordered"), build_transforms([{"type": "GaitTR_MultiInput"}]))
    ipts, *_, seql = col(seqs([4, 4]), [0, 1], ["a"] * 2, ["v"] * 2, [rng(i) for i in range(8)])
    vel = ipts[0][0, :, 0, 4]  # x(t+1) - x(t)
    assert vel.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]


def test_modality_count_mismatch_is_clear():
    col = BatchCollator(FrameSampler("all_ordered"), build_transforms([{"type": "SkeletonInput"}, None]))
    with pytest.raises(ValueError, match="1 modalities per sequence but the transform list has 2 entries"):
        col(seqs([3]), [0], ["a"], ["v"], [rng(i) for i in range(8)])
