"""Transforms against hand-computed values from their published definitions, their random
draws against a twin generator, and the config builder."""
from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pytest

from fastposegait.data import transforms as T
from fastposegait.data.skeleton import get_joint_format
from fastposegait.registry import TRANSFORMS, UnknownNameError

COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
COCO_PARENTS = [5, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14]
OPENPOSE_PARENTS = [1, 1, 1, 2, 3, 1, 5, 6, 2, 8, 9, 5, 11, 12, 0, 0, 14, 15]

UPSTREAM_NAMES = [
    "NoOperation", "NormalizeEmpty", "FlipSequence", "MirrorPoses", "InversePosesPre",
    "JointNoise", "PointNoise", "RandomMove", "RandomSelectSequence", "SelectSequenceCenter",
    "RescaleCenter", "Affine", "SkeletonInput", "GaitTR_MultiInput", "GaitGraph_MultiInput",
    "HOD_MultiInput", "Compose", "TwoView",
]


def random_pose(rng: np.random.Generator, frames: int = 12, joints: int = 17, missing: float = 0.2,
                dtype=np.float64) -> np.ndarray:
    """Pixel-like poses with some joints missing (all channels 0) and one empty frame."""
    seq = np.concatenate(
        (rng.uniform(20, 200, size=(frames, joints, 2)), rng.uniform(0.1, 1, size=(frames, joints, 1))), axis=-1
    )
    seq[rng.random((frames, joints)) < missing] = 0
    seq[frames // 2] = 0
    return seq.astype(dtype)


def twin(seed: int = 0) -> tuple[np.random.Generator, np.random.Generator]:
    return np.random.default_rng(seed), np.random.default_rng(seed)


# --------------------------------------------------------------------------- registry


def test_every_upstream_name_is_registered():
    names = TRANSFORMS.names()
    for name in UPSTREAM_NAMES:
        assert name in names
    assert TRANSFORMS.get("GaitTR_MultiInput") is T.GaitTRMultiInput
    assert TRANSFORMS.get("HOD_MultiInput") is T.HODMultiInput


def test_repr_shows_arguments():
    assert repr(T.FlipSequence(0.3)) == "FlipSequence(probability=0.3)"
    assert repr(T.InversePosesPre(0.1, "openpose")) == "InversePosesPre(probability=0.1, joint_format='openpose')"
    assert repr(T.Affine(legacy=True)) == "Affine(fi=0, legacy=True)"
    assert "JointNoise(std=0.2)" in repr(T.Compose([{"type": "JointNoise", "std": 0.2}]))


# --------------------------------------------------------------------------- NormalizeEmpty


def naive_normalize_empty(seq: np.ndarray) -> np.ndarray:
    out = seq.astype(np.float64).copy()
    for t in range(out.shape[0]):
        for v in range(out.shape[1]):
            if out[t, v, 0] == 0:
                out[t, v, :2] = np.mean(out[t, :, :2], axis=0)
                out[t, v, 2] = 0
    return out


def test_normalize_empty_spec_example():
    frame = np.array([[[0, 0, 0], [2, 4, 1], [0, 5, 0.5], [4, 8, 1]]], dtype=np.float64)
    expected = np.array([[[1.5, 4.25, 0], [2, 4, 1], [1.875, 5.3125, 0], [4, 8, 1]]])
    np.testing.assert_allclose(T.NormalizeEmpty()(frame), expected, atol=1e-12)


def test_normalize_empty_all_zero_frame_stays_zero_and_only_x_is_checked():
    seq = np.zeros((2, 3, 3))
    seq[1] = [[1, 0, 1], [3, 0, 1], [5, 9, 1]]  # y == 0 does not count as missing
    out = T.NormalizeEmpty()(seq)
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_array_equal(out[1], seq[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normalize_empty_matches_sequential_reference(seed):
    rng = np.random.default_rng(seed)
    seq = random_pose(rng, frames=30, missing=0.4)
    seq[3, :, 0] = 0  # every x missing, y present
    np.testing.assert_allclose(T.NormalizeEmpty()(seq), naive_normalize_empty(seq), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- random transforms


@pytest.mark.parametrize("seed", range(4))
def test_flip_sequence_one_draw(seed):
    seq = random_pose(np.random.default_rng(9))
    rng, reference = twin(seed)
    out = T.FlipSequence(0.5)(seq, rng)
    flipped = reference.random() <= 0.5
    np.testing.assert_array_equal(out, seq[::-1] if flipped else seq)
    assert rng.random() == reference.random()  # exactly one draw consumed


def test_flip_sequence_probability_one_and_zero():
    seq = random_pose(np.random.default_rng(1))
    rng = np.random.default_rng(0)
    for _ in range(5):
        np.testing.assert_array_equal(T.FlipSequence(1.0)(seq, rng), seq[::-1])
        np.testing.assert_array_equal(T.FlipSequence(0.0)(seq, rng), seq)


def test_mirror_poses_about_frame_mean():
    seq = np.array([[[1, 2, 0.5], [3, 4, 1], [0, 0, 0]]], dtype=np.float64)  # mean x = 4/3
    out = T.MirrorPoses(1.0)(seq, np.random.default_rng(0))
    np.testing.assert_allclose(out[..., 0], [[8 / 3 - 1, 8 / 3 - 3, 8 / 3]])
    np.testing.assert_array_equal(out[..., 1:], seq[..., 1:])
    np.testing.assert_array_equal(T.MirrorPoses(0.0)(seq, np.random.default_rng(0)), seq)


def test_inverse_poses_pre_swaps_frames_drawn():
    seq = random_pose(np.random.default_rng(3), frames=40)
    rng, reference = twin(5)
    out = T.InversePosesPre(0.3)(seq, rng)
    swapped = reference.random(40) <= 0.3
    assert 0 < swapped.sum() < 40
    np.testing.assert_array_equal(out[swapped], seq[swapped][:, COCO_FLIP])
    np.testing.assert_array_equal(out[~swapped], seq[~swapped])
    # left shoulder of a swapped frame is the former right shoulder
    t = int(np.flatnonzero(swapped)[0])
    np.testing.assert_array_equal(out[t, 5], seq[t, 6])


def test_inverse_poses_pre_openpose_and_bad_formats():
    seq = random_pose(np.random.default_rng(3), joints=18)
    out = T.InversePosesPre(1.0, "alphapose")(seq, np.random.default_rng(0))
    np.testing.assert_array_equal(out[:, 2], seq[:, 5])  # right shoulder <- left shoulder
    np.testing.assert_array_equal(out[:, 1], seq[:, 1])  # neck stays
    with pytest.raises(ValueError, match="no left/right flip"):
        T.InversePosesPre(0.5, "coco-no-head")
    with pytest.raises(ValueError, match="expects 17 joints"):
        T.InversePosesPre(0.5, "coco")(seq, np.random.default_rng(0))


def test_joint_noise_same_offset_every_frame():
    seq = random_pose(np.random.default_rng(4), dtype=np.float32)
    rng, reference = twin(11)
    out = T.JointNoise(0.25)(seq, rng)
    assert out.dtype == np.float32
    offset = (out[..., :2].astype(np.float64) - seq[..., :2])
    np.testing.assert_allclose(offset, np.broadcast_to(offset[0], offset.shape), atol=1e-4)
    np.testing.assert_allclose(offset[0], reference.normal(0, 0.25, size=(17, 2)), atol=1e-4)
    np.testing.assert_array_equal(out[..., 2], seq[..., 2])


def test_point_noise_changes_every_value_including_confidence():
    seq = random_pose(np.random.default_rng(4))
    rng, reference = twin(12)
    out = T.PointNoise(0.05)(seq, rng)
    np.testing.assert_allclose(out - seq, reference.normal(0, 0.05, size=seq.shape), atol=1e-12)
    assert np.all(out[..., 2] != seq[..., 2])


def test_random_move_two_uniform_draws_x_first():
    seq = random_pose(np.random.default_rng(4))
    rng, reference = twin(13)
    out = T.RandomMove([4, 1])(seq, rng)
    dx, dy = reference.uniform(-4, 4), reference.uniform(-1, 1)
    np.testing.assert_allclose(out[..., 0] - seq[..., 0], dx, atol=1e-12)
    np.testing.assert_allclose(out[..., 1] - seq[..., 1], dy, atol=1e-12)
    np.testing.assert_array_equal(out[..., 2], seq[..., 2])
    assert abs(dx) <= 4 and abs(dy) <= 1


def test_random_select_sequence_start_range_and_draw():
    seq = np.arange(8)[:, None, None] * np.ones((8, 2, 3))
    rng, reference = twin(14)
    starts = set()
    for _ in range(300):
        out = T.RandomSelectSequence(5)(seq, rng)
        start = int(out[0, 0, 0])
        assert start == reference.integers(0, 3)
        np.testing.assert_array_equal(out[:, 0, 0], np.arange(start, start + 5))
        starts.add(start)
    assert starts == {0, 1, 2}  # the last window (start 3) is never chosen, as upstream


def test_random_select_sequence_too_short_names_lengths():
    with pytest.raises(ValueError, match=r"5 frames.*more than 5"):
        T.RandomSelectSequence(5)(np.zeros((5, 17, 3)), np.random.default_rng(0))


def test_select_sequence_center():
    seq = np.arange(11)[:, None, None] * np.ones((11, 2, 3))
    out = T.SelectSequenceCenter(4)(seq)
    np.testing.assert_array_equal(out[:, 0, 0], [3, 4, 5, 6])  # start int(5.5 - 2) = 3
    np.testing.assert_array_equal(T.SelectSequenceCenter(11)(seq), seq)
    with pytest.raises(ValueError, match=r"5 frames, fewer than 10"):
        T.SelectSequenceCenter(10)(seq[:5])


def test_random_transform_without_rng_is_a_clear_error():
    with pytest.raises(TypeError, match="needs a numpy Generator"):
        T.JointNoise()(np.zeros((3, 17, 3)))
    with pytest.raises(TypeError, match="needs a numpy Generator"):
        T.FlipSequence()(np.zeros((3, 17, 3)), np.random.RandomState(0))


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="FlipSequence"):
        T.FlipSequence(1.5)
    with pytest.raises(ValueError, match="RandomMove"):
        T.RandomMove([1, 2, 3])
    with pytest.raises(ValueError, match="sequence_length"):
        T.RandomSelectSequence(0)
    with pytest.raises(ValueError, match="joint_format"):
        T.GaitTRMultiInput("nonexistent")


# --------------------------------------------------------------------------- RescaleCenter / Affine


def test_rescale_center_by_hand():
    seq = np.zeros((2, 17, 3))
    seq[0, 5] = (2, 4, 0.9)
    seq[0, 6] = (4, 6, 0.8)
    seq[0, 15] = (1, 10, 0.7)  # h = 10 - 0 (zeros included) -> factor 22.5
    seq[1] = seq[0]
    seq[1, :, 1] = 3.0  # zero height -> zeros, not upstream's NaN
    out = T.RescaleCenter("neck", 225)(seq)
    # scaled: j5 (45, 90), j6 (90, 135), j15 (22.5, 225), others 0; neck (67.5, 112.5)
    np.testing.assert_allclose(out[0, 5, :2], (-22.5, -22.5))
    np.testing.assert_allclose(out[0, 6, :2], (22.5, 22.5))
    np.testing.assert_allclose(out[0, 15, :2], (-45, 112.5))
    np.testing.assert_allclose(out[0, 0, :2], (-67.5, -112.5))
    np.testing.assert_array_equal(out[..., 2], seq[..., 2])
    np.testing.assert_array_equal(out[1, :, :2], 0)
    hip = T.RescaleCenter("hip", 225)(seq)
    np.testing.assert_allclose(hip[0, 5, :2], (45, 90))  # hips are at 0 after scaling
    head = T.RescaleCenter("head", 10)(seq)
    np.testing.assert_allclose(head[0, 6, :2], (4, 6))  # factor 1, head joints at 0


def test_rescale_center_none_and_unknown():
    seq = random_pose(np.random.default_rng(0))
    assert T.RescaleCenter(None)(seq) is seq
    assert T.RescaleCenter("None")(seq) is seq
    with pytest.raises(ValueError, match="unknown center 'waist'"):
        T.RescaleCenter("waist")


def affine_example() -> np.ndarray:
    seq = np.zeros((1, 17, 3))
    seq[0, :, 2] = 1
    seq[0, 5, :2] = (0, 0)
    seq[0, 6, :2] = (2, 0)
    seq[0, 11, :2] = (2, 4)
    seq[0, 12, :2] = (4, 4)
    seq[0, 0, :2] = (1, -2)
    return seq


def test_affine_intended_rotation_spec_example():
    out = T.Affine()(affine_example())
    np.testing.assert_allclose(out[0, [11, 12], :2].mean(axis=0), (1, 4.4721), atol=1e-4)
    np.testing.assert_allclose(out[0, 0, :2], (1.8944, -1.7889), atol=1e-4)
    np.testing.assert_allclose(out[0, [5, 6], :2].mean(axis=0), (1, 0), atol=1e-12)  # neck fixed
    # a rotation keeps lengths
    np.testing.assert_allclose(np.linalg.norm(out[0, 0, :2] - out[0, 5, :2]), math.hypot(1, 2))
    np.testing.assert_array_equal(out[..., 2], 1)


def test_affine_legacy_reproduces_upstream_formula():
    out = T.Affine(legacy=True)(affine_example())
    np.testing.assert_allclose(out[0, [11, 12], :2].mean(axis=0), (1, 3.5777), atol=1e-4)
    np.testing.assert_allclose(out[0, 0, :2], (1.8944, -1.3889), atol=1e-4)


def test_affine_flat_spine_is_unchanged():
    seq = affine_example()
    seq[0, 11:13, 1] = 0  # hips level with the neck: dy = 0 -> theta = 0
    np.testing.assert_allclose(T.Affine()(seq), seq)


# --------------------------------------------------------------------------- feature builders


def tiny_sequence(frames: int = 4) -> np.ndarray:
    """x = 10 t + v, y = 100 t + 2 v, c = 0.5 + 0.01 v."""
    t = np.arange(frames)[:, None]
    v = np.arange(17)[None, :]
    return np.stack(np.broadcast_arrays(10 * t + v, 100 * t + 2 * v, 0.5 + 0.01 * v + 0 * t), axis=-1).astype(np.float32)


def test_skeleton_input_layout():
    seq = random_pose(np.random.default_rng(0), frames=5)
    out = T.SkeletonInput()(seq)
    assert out.shape == (3, 5, 17, 1)
    np.testing.assert_array_equal(out[1, 2, 7, 0], seq[2, 7, 1])


def test_gaittr_multi_input_by_hand():
    out = T.GaitTRMultiInput("coco")(tiny_sequence())
    assert out.shape == (4, 17, 10) and out.dtype == np.float64
    v = np.arange(17)
    d = v - np.array(COCO_PARENTS)
    np.testing.assert_array_equal(out[2, :, 0], 20 + v)
    np.testing.assert_array_equal(out[2, :, 1], 200 + 2 * v)
    np.testing.assert_array_equal(out[1, :, 2], v)  # relative to the nose
    np.testing.assert_array_equal(out[1, :, 3], 2 * v)
    np.testing.assert_array_equal(out[:2, :, 4], 10)
    np.testing.assert_array_equal(out[:2, :, 5], 100)
    np.testing.assert_array_equal(out[:2, :, 6], 20)
    np.testing.assert_array_equal(out[:2, :, 7], 200)
    np.testing.assert_array_equal(out[2:, :, 4:8], 0)  # last two frames
    np.testing.assert_array_equal(out[3, :, 8], d)
    np.testing.assert_array_equal(out[3, :, 9], 2 * d)


def test_gaitgraph_multi_input_by_hand_with_channel_3_quirk():
    seq = tiny_sequence()
    out = T.GaitGraphMultiInput("coco")(seq)
    assert out.shape == (4, 17, 3, 5) and out.dtype == np.float64
    v = np.arange(17)
    conf = seq[0, :, 2].astype(np.float64)
    d = v - np.array(COCO_PARENTS)
    # branch 0: x, y, c, x - x_nose, y - y_nose
    np.testing.assert_array_equal(out[1, :, 0, 0], 10 + v)
    np.testing.assert_array_equal(out[1, :, 0, 2], conf)
    np.testing.assert_array_equal(out[1, :, 0, 3], v)
    np.testing.assert_array_equal(out[1, :, 0, 4], 2 * v)
    # branch 1: vx1, vy1, 0, c (kept quirk: not vx2), vy2; zero on the last two frames except c
    np.testing.assert_array_equal(out[:2, :, 1, 0], 10)
    np.testing.assert_array_equal(out[:2, :, 1, 1], 100)
    np.testing.assert_array_equal(out[:, :, 1, 2], 0)
    np.testing.assert_array_equal(out[:, :, 1, 3], np.broadcast_to(conf, (4, 17)))
    np.testing.assert_array_equal(out[:2, :, 1, 4], 200)
    np.testing.assert_array_equal(out[2:, :, 1, [0, 1, 4]], 0)
    # branch 2: bx, by, 0, c (kept quirk: not the x angle), arccos(by / (|b| + 1e-4))
    np.testing.assert_array_equal(out[3, :, 2, 0], d)
    np.testing.assert_array_equal(out[3, :, 2, 1], 2 * d)
    np.testing.assert_array_equal(out[:, :, 2, 2], 0)
    np.testing.assert_array_equal(out[:, :, 2, 3], np.broadcast_to(conf, (4, 17)))
    expected_angle = np.arccos(2 * d / (np.sqrt(5.0) * np.abs(d) + 1e-4))
    np.testing.assert_allclose(out[3, :, 2, 4], expected_angle, atol=1e-12)
    seq[:, 1, :2] = seq[:, 0, :2]  # left eye on the nose: zero bone -> arccos(0) = pi / 2
    assert T.GaitGraphMultiInput()(seq)[0, 1, 2, 4] == pytest.approx(math.pi / 2, abs=1e-12)


@pytest.mark.parametrize("frames", [1, 2])
def test_velocities_are_zero_for_short_sequences(frames):
    seq = tiny_sequence(frames)
    np.testing.assert_array_equal(T.GaitTRMultiInput()(seq)[..., 4:8], 0)
    np.testing.assert_array_equal(T.GaitGraphMultiInput()(seq)[:, :, 1, [0, 1, 2, 4]], 0)


def hod_frame(**joints) -> np.ndarray:
    seq = np.full((1, 17, 3), 50.0)
    seq[0, :, 0] += np.arange(17)
    for name, value in joints.items():
        seq[0, int(name[1:]), :2] = value
    return seq


@pytest.mark.parametrize(
    "joints, slot, expected",
    [
        (dict(j0=(0, 0), j1=(1, 0), j2=(0, 1)), 0, math.pi / 2),  # inner angle, right angle
        (dict(j0=(0, 0), j1=(1, 0), j2=(-1, 0)), 0, 0.0),  # straight
        (dict(j0=(0, 0), j1=(1, 0), j2=(2, 0)), 0, math.pi),  # folded
        (dict(j3=(0, 0), j1=(1, 1)), 3, 3 * math.pi / 4),  # edge (3, 1)
        (dict(j3=(0, 0), j1=(0, 1)), 3, math.pi),
        (dict(j3=(0, 0), j1=(1, 0)), 3, math.pi),  # auxiliary point = vertex -> pi
        (dict(j7=(5, 5), j5=(5, 5)), 7, math.pi),  # zero side -> pi
    ],
)
def test_hod_angle_examples(joints, slot, expected):
    out = T.HODMultiInput("coco")(hod_frame(**joints))
    assert out[0, slot, 4] == pytest.approx(expected, abs=1e-12)


def reference_angle(p, j, a, b=None):
    """The angle at j by the law of cosines (the original's definition), written independently."""
    second = np.array([p[j, 0], p[a, 1]]) if b is None else p[b]
    s1, s2, s3 = np.linalg.norm(p[j] - p[a]), np.linalg.norm(p[j] - second), np.linalg.norm(p[a] - second)
    if s1 * s2 == 0:
        return math.pi
    return math.pi - math.acos(min(1.0, max(-1.0, (s1**2 + s2**2 - s3**2) / (2 * s1 * s2))))


SPEC_OPENPOSE_TUPLES = [
    (0, 15, 14), (15, 0, 17), (14, 16, 0), (17, 15), (16, 14), (5, 6, 11), (2, 3, 8), (6, 3, 8),
    (3, 4, 2), (7, 6), (4, 3), (11, 5, 12), (8, 2, 9), (12, 11, 13), (9, 8, 10), (13, 12), (10, 9),
]


def test_hod_full_output_coco_and_openpose_slot_order():
    rng = np.random.default_rng(21)
    coco = random_pose(rng, frames=3, missing=0.0)
    out = T.HODMultiInput("coco")(coco)
    xy = coco[..., :2]
    np.testing.assert_array_equal(out[..., :2], xy)
    np.testing.assert_allclose(out[..., 2:4], xy - xy[:, COCO_PARENTS], atol=1e-12)
    np.testing.assert_array_equal(out[..., 5], 0)
    for t in (0, 2):
        for tup in T.HOD_ANGLE_TUPLES["coco"]:
            assert out[t, tup[0], 4] == pytest.approx(reference_angle(xy[t], *tup), abs=1e-9)

    openpose = random_pose(rng, frames=3, joints=18, missing=0.0)
    out = T.HODMultiInput("openpose")(openpose)
    xy = openpose[..., :2]
    np.testing.assert_allclose(out[..., 2:4], xy - xy[:, OPENPOSE_PARENTS], atol=1e-12)
    for slot, tup in enumerate(SPEC_OPENPOSE_TUPLES):  # written in COCO slot order (kept quirk)
        assert out[0, slot, 4] == pytest.approx(reference_angle(xy[0], *tup), abs=1e-9)
    # slot 7 uses (6, 3, 8), not the intended (6, 5, 7)
    assert out[0, 7, 4] != pytest.approx(reference_angle(xy[0], 6, 5, 7), abs=1e-6)
    np.testing.assert_array_equal(out[:, 17, 4], 0)
    assert tuple(SPEC_OPENPOSE_TUPLES) == T.HOD_ANGLE_TUPLES["openpose"]


def test_hod_missing_joints_nan_inf_and_empty_frames():
    seq = hod_frame()
    seq = np.repeat(seq, 3, axis=0)
    seq[0, 1] = 0  # a missing joint: angles that use it still follow the formula
    seq[1, 4, 0] = np.nan
    seq[1, 6, 0] = np.inf
    seq[2] = 0
    out = T.HODMultiInput()(seq)
    xy = seq[0, :, :2]
    assert out[0, 0, 4] == pytest.approx(reference_angle(xy, 0, 1, 2), abs=1e-9)
    assert out[0, 3, 4] == pytest.approx(reference_angle(xy, 3, 1), abs=1e-9)
    assert np.all(np.isfinite(out))
    assert out[1, 4, 0] == 0
    assert out[1, 6, 0] == np.finfo(np.float64).max
    np.testing.assert_array_equal(out[2], 0)


def test_rescale_then_hod_on_empty_frame_gives_zeros():
    seq = random_pose(np.random.default_rng(2), frames=6)
    chain = T.Compose([{"type": "RescaleCenter"}, {"type": "HOD_MultiInput"}])
    out = chain(seq)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[3], 0)  # frame T // 2 is empty
    assert np.abs(out[2]).sum() > 0


def test_multi_input_rejects_wrong_joint_count():
    with pytest.raises(ValueError, match="expects 18 joints"):
        T.GaitGraphMultiInput("openpose")(np.zeros((4, 17, 3)))
    with pytest.raises(ValueError, match="no angle tuples"):
        T.HODMultiInput("coco-no-head")


# --------------------------------------------------------------------------- no mutation

NO_MUTATION_CASES = [
    {"type": "NoOperation"}, {"type": "NormalizeEmpty"}, {"type": "FlipSequence", "probability": 1},
    {"type": "MirrorPoses", "probability": 1}, {"type": "InversePosesPre", "probability": 1},
    {"type": "JointNoise"}, {"type": "PointNoise"}, {"type": "RandomMove"},
    {"type": "RandomSelectSequence", "sequence_length": 5}, {"type": "SelectSequenceCenter", "sequence_length": 5},
    {"type": "RescaleCenter"}, {"type": "Affine"}, {"type": "Affine", "legacy": True}, {"type": "SkeletonInput"},
    {"type": "GaitTR_MultiInput"}, {"type": "GaitGraph_MultiInput"}, {"type": "HOD_MultiInput"},
    {"type": "TwoView", "trf_cfg": [{"type": "NormalizeEmpty"}, {"type": "SkeletonInput"}]},
]


@pytest.mark.parametrize("cfg", NO_MUTATION_CASES, ids=lambda cfg: cfg["type"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_input_is_never_modified(cfg, dtype):
    seq = random_pose(np.random.default_rng(0), dtype=dtype)
    before = seq.copy()
    seq.flags.writeable = False  # a write would raise
    out = T.build_transform(cfg)(seq, np.random.default_rng(1))
    np.testing.assert_array_equal(seq, before)
    if cfg["type"] not in ("GaitTR_MultiInput", "GaitGraph_MultiInput", "HOD_MultiInput"):
        assert out.dtype == dtype  # "same" dtype
    else:
        assert out.dtype == np.float64


# --------------------------------------------------------------------------- wrappers and builders


def test_two_view_shape_and_independent_views_from_the_unmodified_input():
    seq = random_pose(np.random.default_rng(0), frames=10)
    rng, reference = twin(3)
    two_view = T.build_transform(
        {"type": "TwoView", "trf_cfg": [{"type": "InversePosesPre", "probability": 0.5}, {"type": "JointNoise"}, {"type": "SkeletonInput"}]}
    )
    out = two_view(seq, rng)
    assert out.shape == (3, 20, 17, 1)
    single = T.Compose([T.InversePosesPre(0.5), T.JointNoise(), T.SkeletonInput()])
    first, second = single(seq, reference), single(seq, reference)
    np.testing.assert_allclose(out[:, :10], first)
    np.testing.assert_allclose(out[:, 10:], second)  # view 2 starts from the original input (upstream: from view 1's output)
    assert not np.allclose(out[:, :10], out[:, 10:])


def test_two_view_swaps_each_view_from_the_original():
    seq = random_pose(np.random.default_rng(0), frames=4)
    out = T.TwoView([{"type": "InversePosesPre", "probability": 1.0}])(seq, np.random.default_rng(0))
    np.testing.assert_array_equal(out[:, :17], seq[:, COCO_FLIP])
    np.testing.assert_array_equal(out[:, 17:], seq[:, COCO_FLIP])  # upstream: swapped back


def test_compose_order_and_plain_callables():
    seq = np.ones((2, 3, 3))
    chain = T.Compose([lambda s: s + 1, lambda s: s * 3])
    np.testing.assert_array_equal(chain(seq), 6)
    chain = T.Compose([lambda s: s * 3, lambda s: s + 1])
    np.testing.assert_array_equal(chain(seq), 4)
    chain = T.build_transform([{"type": "SelectSequenceCenter", "sequence_length": 1}, {"type": "SkeletonInput"}])
    assert chain(np.zeros((3, 17, 3))).shape == (3, 1, 17, 1)


def test_build_transform_forms():
    assert isinstance(T.build_transform(None), T.NoOperation)
    built = T.build_transform({"type": "JointNoise", "std": 0.3})
    assert isinstance(built, T.JointNoise) and built.std == 0.3
    compose = T.build_transform(
        {"type": "Compose", "trf_cfg": [{"type": "NormalizeEmpty"}, {"type": "GaitGraph_MultiInput", "joint_format": "alphapose"}]}
    )
    assert [type(t) for t in compose.transforms] == [T.NormalizeEmpty, T.GaitGraphMultiInput]
    assert compose.transforms[1].joint_format == "alphapose"
    as_list = T.build_transform([{"type": "NormalizeEmpty"}, None])
    assert isinstance(as_list, T.Compose) and len(as_list.transforms) == 2
    cfg = {"type": "Compose", "trf_cfg": [{"type": "FlipSequence", "probability": 0.2}]}
    original = copy.deepcopy(cfg)
    T.build_transform(cfg)
    assert cfg == original  # the config is not modified


def test_build_transforms_per_modality():
    built = T.build_transforms([{"type": "SkeletonInput"}, None, [{"type": "NormalizeEmpty"}]])
    assert [type(t) for t in built] == [T.SkeletonInput, T.NoOperation, T.Compose]
    single = T.build_transforms({"type": "SkeletonInput"})
    assert len(single) == 1 and isinstance(single[0], T.SkeletonInput)
    assert isinstance(T.build_transforms(None)[0], T.NoOperation)
    with pytest.raises(TypeError, match="one transform entry per modality"):
        T.build_transforms("SkeletonInput")


def test_unknown_argument_warns_and_is_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="fastposegait.data.transforms"):
        built = T.build_transforms([{"type": "Compose", "trf_cfg": [{"type": "FlipSequence", "probabilty": 0.2}]}],
                                   where="trainer_cfg.transform")
    flip = built[0].transforms[0]
    assert flip.probability == 0.5
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert "FlipSequence" in messages[0] and "'probabilty'" in messages[0]
    assert "trainer_cfg.transform[0].trf_cfg[0]" in messages[0]


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as info:
        T.build_transform({"type": "NormaliseEmpty"}, where="evaluator_cfg.transform[0]")
    message = str(info.value)
    assert "evaluator_cfg.transform[0]" in message
    assert "did you mean 'NormalizeEmpty'" in message
    for name in ("NormalizeEmpty", "SkeletonInput", "GaitGraph_MultiInput"):
        assert name in message


@pytest.mark.parametrize("entry, problem", [
    ({"type": "JointNoise", "std": "abc"}, "JointNoise: std must be a finite number >= 0, got 'abc'"),
    ({"type": "PointNoise", "std": float("inf")}, "PointNoise: std must be a finite number >= 0, got inf"),
    ({"type": "JointNoise", "std": -1}, "JointNoise: std must be a finite number >= 0, got -1"),
    ({"type": "FlipSequence", "probability": -2}, "FlipSequence: probability must be a number in [0, 1], got -2"),
    ({"type": "MirrorPoses", "probability": "often"}, "MirrorPoses: probability must be a number in [0, 1], got 'often'"),
    ({"type": "InversePosesPre", "probability": None}, "InversePosesPre: probability must be a number in [0, 1], got None"),
    ({"type": "RandomMove", "random_r": [1]}, "RandomMove: random_r must be two numbers [rx, ry], got [1]"),
    ({"type": "RandomMove", "random_r": [1, "x"]}, "RandomMove: random_r must be a finite number >= 0, got 'x'"),
    ({"type": "RandomSelectSequence", "sequence_length": 0}, "RandomSelectSequence: sequence_length must be a positive"),
    ({"type": "SelectSequenceCenter", "sequence_length": 2.5}, "SelectSequenceCenter: sequence_length must be a positive"),
    ({"type": "RescaleCenter", "scale": 0}, "RescaleCenter: scale must be a finite number > 0, got 0"),
    ({"type": "RescaleCenter", "scale": "big"}, "RescaleCenter: scale must be a finite number > 0, got 'big'"),
    ({"type": "RescaleCenter", "center": ["neck"]}, "RescaleCenter: unknown center ['neck']"),
    ({"type": "Affine", "legacy": "no"}, "Affine: legacy must be true or false, got 'no'"),
    ({"type": "GaitGraph_MultiInput", "joint_format": "COCO"}, "did you mean 'coco'?"),
    ({"type": "HOD_MultiInput", "joint_format": "coco-no-head"}, "HOD_MultiInput has no angle tuples"),
    ({"type": "Compose", "trf_cfg": 5}, "'int' object is not iterable"),
])
def test_bad_transform_arguments_are_config_errors_naming_where(entry, problem):
    # before: plain ValueError/TypeError tracebacks (std=abc, probability=-2, random_r=[1]), or
    # accepted values that fail later (std=inf, scale=0, legacy='no', center=['neck'])
    from fastposegait.errors import ConfigError

    where = "trainer_cfg.transform[0].trf_cfg[2]"
    with pytest.raises(ConfigError) as info:
        T.build_transform(entry, where=where)
    message = str(info.value)
    assert message.startswith(f"{where}: cannot build transform {entry['type']!r}")
    assert problem in message
    with pytest.raises(ConfigError) as info:  # nested: reported once, at the inner entry
        T.build_transforms([{"type": "Compose", "trf_cfg": [{"type": "NormalizeEmpty"}, entry]}], "trainer_cfg.transform")
    nested = str(info.value)
    assert nested.startswith(f"trainer_cfg.transform[0].trf_cfg[1]: cannot build transform {entry['type']!r}")
    assert nested.count("cannot build transform") == 1 and problem in nested


def test_missing_type_and_bad_entries():
    with pytest.raises(ValueError, match="no 'type' key"):
        T.build_transform({"probability": 0.5})
    with pytest.raises(TypeError, match="transform config must be"):
        T.build_transform(42)


@pytest.fixture
def registered_function():
    name = "TestOnly_AddOffset"

    def add_offset(seq, offset=1.0):
        return seq + offset

    TRANSFORMS.add(add_offset, name)
    yield name
    TRANSFORMS._objects.pop(name)  # test-only cleanup of the global registry


def test_registered_plain_function_is_called_with_one_argument(registered_function, caplog):
    chain = T.build_transform([{"type": registered_function, "offset": 2.0}, {"type": "SkeletonInput"}])
    out = chain(np.zeros((2, 17, 3)), np.random.default_rng(0))
    np.testing.assert_array_equal(out, 2.0)
    with caplog.at_level(logging.WARNING):
        T.build_transform({"type": registered_function, "scale": 3})
    assert "'scale'" in caplog.text


def test_hod_angle_index_tables():
    index = T.hod_angle_index("alphapose")
    assert index.num_slots == 17
    assert (index.joint[7], index.first[7], index.second[7]) == (6, 3, 8)
    assert index.is_edge[3] and not index.is_edge[0]
    coco = T.hod_angle_index(get_joint_format("coco"))
    np.testing.assert_array_equal(coco.joint, np.arange(17))


def test_built_chains_pickle_for_worker_processes():
    import pickle

    chain = T.build_transform(
        [{"type": "NormalizeEmpty"}, {"type": "InversePosesPre", "probability": 0.5, "joint_format": "coco"},
         {"type": "HOD_MultiInput"}, {"type": "SkeletonInput"}]
    )
    seq = random_pose(np.random.default_rng(0))
    restored = pickle.loads(pickle.dumps(chain))
    np.testing.assert_array_equal(restored(seq, np.random.default_rng(4)), chain(seq, np.random.default_rng(4)))


def test_time_axis_of_chains():
    assert T.time_axis_of(T.build_transform(None)) == 0
    assert T.time_axis_of(T.build_transform({"type": "GaitGraph_MultiInput"})) == 0
    assert T.time_axis_of(T.build_transform([{"type": "GaitTR_MultiInput"}, {"type": "SkeletonInput"}])) == 1
    two_view = T.build_transform({"type": "TwoView", "trf_cfg": [{"type": "JointNoise"}, {"type": "SkeletonInput"}]})
    assert T.time_axis_of(two_view) == 1
    assert T.time_axis_of(lambda s: s) == 0
