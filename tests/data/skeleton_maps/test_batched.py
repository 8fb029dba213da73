"""Batched torch skeleton-map renderer: the worked example's measured values, hand-computed
Gaussians, equality with the exact NumPy renderer on synthetic walks and edge cases, chunking,
float32 vs float64, and the unquantised variant's bound."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from worked_example import worked_example_poses

import fastposegait.data.synthetic as syn
from fastposegait.data.skeleton_maps.batched import (crop_and_resize, gaussian_canvas, grey_levels,
                                                     render_canvas)
from fastposegait.data.skeleton_maps.exact import as_coco17, render_sequence, to_canvas
from fastposegait.data.skeleton_maps.grey import quantise
from fastposegait.data.skeleton_maps.impute import fill_missing_joints
from fastposegait.data.skeleton_maps.transform import canvas_poses

# Frame 0 of the worked example, measured with the original generator
FRAME_STATS = [  # (sum, non-zero pixels, max) per frame for ch0 (limbs), ch1 (joints)
    ((208651, 2134, 236), (179203, 2115, 241)),
    ((211068, 2197, 236), (180535, 2172, 241)),
    ((203263, 2108, 236), (173528, 2087, 241)),
    ((203360, 2122, 236), (174049, 2099, 241)),
]
ROW32_LIMBS = [0] * 13 + [2, 6, 11, 20, 33, 52, 77, 106, 138, 168, 192, 206, 208, 197, 207, 223, 225, 224, 224, 224,
                          224, 224, 223, 214, 194, 198, 203, 195, 176, 150, 119, 89, 62, 41, 25, 15, 8, 4, 1] + [0] * 12
ROW32_JOINTS = [0] * 13 + [2, 5, 10, 19, 32, 50, 73, 99, 128, 155, 175, 186, 186, 184, 207, 223, 225, 213, 189, 174,
                           200, 218, 223, 214, 193, 178, 183, 177, 161, 138, 111, 84, 59, 39, 24, 14, 7, 3, 1] \
    + [0] * 12
COLUMN32_JOINTS = [9, 18, 31, 50, 75, 106, 140, 176, 205, 225, 235, 241, 234, 213, 183, 147, 111, 102, 107, 105, 98,
                   85, 69, 52, 49, 56, 63, 86, 112, 137, 158, 171, 174, 166, 148, 125, 99, 76, 89, 112, 131, 145, 151,
                   148, 135, 117, 94, 71, 71, 90, 109, 123, 131, 132, 123, 108, 90, 69, 51, 34, 22, 13, 7, 3]
NOSE_ROW22 = [0.877364, 0.897144, 0.918703, 0.940489, 0.947865, 0.940489, 0.918703, 0.906896, 0.886901]


def canvas_of(poses: np.ndarray) -> torch.Tensor:
    """Steps A-C of the exact renderer (COCO-17, imputation, canvas), as a float64 tensor."""
    return torch.from_numpy(to_canvas(fill_missing_joints(as_coco17(poses))))


def synthetic_walks(count: int, seed: int = 0):
    """``count`` detected walks of 12..40 frames: three conditions, eleven views, one in five in
    OpenPose-18 order, with the generator's missing joints and low confidences."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        subject = syn.sample_subject(rng)
        condition = syn.sample_condition(("nm", "bg", "cl")[i % 3], subject, rng)
        camera = syn.CASIA_B_RIG.camera(float(rng.choice(np.arange(0, 181, 18))))
        yield syn.simulate_walk(subject, condition, camera, int(rng.integers(12, 41)), rng,
                                "openpose" if i % 5 == 0 else "coco")


# ------------------------------------------------------------------ the worked example


def test_worked_example_canvas_values():
    values = gaussian_canvas(canvas_of(worked_example_poses()))
    assert values.shape == (4, 2, 128, 128) and values.dtype == torch.float32
    # joint channel at (row 64, column 64): the right hip's blob, 0.89 exp(-(64 - 57.7805)^2 / 128)
    assert values[0, 1, 64, 64].item() == pytest.approx(0.657876, abs=1e-6)
    assert values[0, 0, 64, 64].item() == pytest.approx(0.88, abs=1e-7)  # on the hip-hip limb, peak min(.88, .89)
    assert values[0, 1, 22, 60:69].tolist() == pytest.approx(NOSE_ROW22, abs=1e-6)
    grey = grey_levels(values)
    assert grey[0, 1, 64, 64].item() == 168 and grey[0, 0, 64, 64].item() == 225
    assert grey[0, 1, 22, 60:69].tolist() == [224, 229, 235, 240, 242, 240, 235, 232, 227]


def test_worked_example_maps():
    maps = render_canvas(canvas_of(worked_example_poses()))
    assert maps.shape == (4, 2, 64, 64) and maps.dtype == torch.float32
    assert maps.min().item() == 0 and maps.max().item() == 241
    for frame, stats in enumerate(FRAME_STATS):
        for channel, (total, nonzero, peak) in enumerate(stats):
            m = maps[frame, channel]
            assert (m.sum().item(), int((m > 0).sum()), m.max().item()) == (total, nonzero, peak)
    assert maps[0, 0, 32].tolist() == ROW32_LIMBS
    assert maps[0, 1, 32].tolist() == ROW32_JOINTS
    assert maps[0, 1, :, 32].tolist() == COLUMN32_JOINTS
    assert maps[0, 1, 32, 32].item() == 174 and maps[0, 0, 32, 32].item() == 224  # means of 2x2 canvas blocks
    assert not maps[..., :10].any() and not maps[..., 54:].any()


def test_canvas_poses_is_to_canvas():
    poses = fill_missing_joints(worked_example_poses())
    assert torch.equal(canvas_poses(torch.from_numpy(poses)), torch.from_numpy(to_canvas(poses)))


# ------------------------------------------------------------------ hand-computed elements


def single_frame(points) -> torch.Tensor:
    """A canvas frame with only the given joints ``{index: (x, y, c)}`` (the others at confidence 0)."""
    frame = torch.zeros(1, 17, 3, dtype=torch.float64)
    for j, (x, y, c) in points.items():
        frame[0, j] = torch.tensor([x, y, c], dtype=torch.float64)
    return frame


def test_single_joint_blob_and_window():
    values = gaussian_canvas(single_frame({0: (40.5, 50.25, 0.9)}))
    joints = values[0, 1].double()
    for row, col in [(50, 40), (53, 44), (26, 16), (74, 64)]:
        expected = np.float32(0.9 * math.exp(-((col - 40.5) ** 2 + (row - 50.25) ** 2) / 128))
        assert joints[row, col].item() == expected
    # window: columns trunc(16.5) = 16 .. trunc(64.5) = 64, rows 26 .. 74; nothing outside
    inside = torch.zeros(128, 128, dtype=torch.bool)
    inside[26:75, 16:65] = True
    assert joints[inside].min() > 0 and not joints[~inside].any()
    assert not values[0, 0].any()  # no limb: its other end has confidence 0


def test_limb_tube_distances():
    values = gaussian_canvas(single_frame({11: (50.0, 60.0, 0.8), 12: (70.0, 60.0, 0.6)}))
    limbs = values[0, 0].double()
    assert limbs[60, 60].item() == np.float32(0.6)  # on the segment: the lower confidence
    assert limbs[63, 55].item() == np.float32(0.6 * math.exp(-9 / 128))  # 3 px across the middle
    assert limbs[64, 45].item() == np.float32(0.6 * math.exp(-(25 + 16) / 128))  # beyond the start: to the start
    assert limbs[57, 74].item() == np.float32(0.6 * math.exp(-(16 + 9) / 128))  # beyond the end: to the end
    assert not limbs[:, :26].any() and not limbs[:, 95:].any() and not limbs[:36].any() and not limbs[85:].any()


def test_short_limb_is_a_joint_with_the_start_confidence():
    values = gaussian_canvas(single_frame({11: (60.2, 60.0, 0.3), 12: (60.7, 60.5, 0.9)}))  # length^2 = 0.5
    assert torch.equal(values[0, 0], gaussian_canvas(single_frame({0: (60.2, 60.0, 0.3)}))[0, 1])


def test_low_confidence_and_non_finite_draw_nothing():
    values = gaussian_canvas(single_frame({0: (64.0, 64.0, 0.0009), 5: (float("nan"), 64.0, 0.9),
                                           6: (64.0, float("inf"), 0.9)}))
    assert not values.any()
    assert not render_canvas(torch.full((2, 17, 3), float("nan"), dtype=torch.float64)).any()
    assert render_canvas(torch.zeros(0, 17, 3)).shape == (0, 2, 64, 64)


# ------------------------------------------------------------------ against the exact renderer


def test_equal_to_exact_on_synthetic_walks():
    frames = 0
    for poses in synthetic_walks(50):
        expected = render_sequence(poses)
        got = render_canvas(canvas_of(poses))
        assert np.array_equal(got.numpy(), expected.astype(np.float32))
        frames += len(poses)
    assert frames > 1000


@pytest.mark.parametrize("case", ["head_missing", "one_joint", "two_joints_far", "all_missing_frame", "never_seen"])
def test_equal_to_exact_on_edge_cases(case):
    poses = worked_example_poses()
    if case == "head_missing":  # crops of 115 rows: the general area resize
        poses[:, :5, 2] = 0
    elif case == "one_joint":  # one blob: a crop under 64 rows, enlarged
        poses[:, :, 2] = 0
        poses[:, 0, 2] = 0.7
    elif case == "two_joints_far":
        poses[:, :, 2] = 0
        poses[:, [0, 15], 2] = 0.7
    elif case == "all_missing_frame":
        poses[1] = 0
    elif case == "never_seen":  # imputation falls back for the whole sequence
        poses[:, 3] = 0
    expected = render_sequence(poses)
    got = render_canvas(canvas_of(poses))
    assert np.array_equal(got.numpy(), expected.astype(np.float32))


def test_crop_and_resize_matches_exact_on_random_supports():
    """Random canvases whose non-zero rows span 1..128 (every crop size, both resize paths)."""
    from fastposegait.data.skeleton_maps.exact import crop_and_resize as exact_crop

    rng = np.random.default_rng(3)
    values = np.zeros((64, 2, 128, 128), dtype=np.float32)
    for n in range(64):
        for c in range(2):
            top = int(rng.integers(0, 128))
            bottom = int(rng.integers(top, 128))
            block = rng.random((bottom - top + 1, 128)).astype(np.float32) ** 2
            values[n, c, top:bottom + 1] = block * (rng.random(block.shape) < 0.7)
    got = crop_and_resize(torch.from_numpy(values)).numpy()
    expected = np.stack([[exact_crop(quantise(values[n, c])) for c in range(2)] for n in range(64)])
    assert np.array_equal(got, expected.astype(np.float32))


def test_chunk_size_does_not_change_the_maps():
    canvas = torch.cat([canvas_of(p) for p in synthetic_walks(3, seed=5)])
    whole = render_canvas(canvas, chunk_size=len(canvas))
    for chunk in (1, 7, 32):
        assert torch.equal(render_canvas(canvas, chunk_size=chunk), whole)
    with pytest.raises(ValueError, match="chunk_size"):
        render_canvas(canvas, chunk_size=0)


def test_float32_within_one_grey_level_of_float64():
    canvas = torch.cat([canvas_of(p) for p in synthetic_walks(10, seed=7)])
    exact = render_canvas(canvas)
    fast = render_canvas(canvas.float())
    diff = (fast - exact).abs()
    assert diff.max().item() <= 1
    assert (diff > 0).float().mean().item() < 1e-4


def test_unquantised_maps_within_the_quantisation():
    canvas = torch.cat([canvas_of(p) for p in synthetic_walks(10, seed=9)])
    quantised = render_canvas(canvas)
    floats = render_canvas(canvas, quantise=False)
    assert not torch.equal(floats, floats.trunc())  # not rounded
    diff = (floats - quantised).abs()
    # grey level vs 256 v: under 2 (floor, and 24 levels one lower); the crop mean keeps that;
    # the final truncation adds under 1
    assert diff.max().item() < 3
    assert diff.mean().item() < 1


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"\[F, 17, 3\]"):
        render_canvas(torch.zeros(2, 18, 3))
    with pytest.raises(TypeError, match="floating-point"):
        render_canvas(torch.zeros(2, 17, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_canvas(torch.zeros(2, 17, 3), sigma=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_renders_the_cpu_maps():
    """On a GPU (float64, as the device twin runs): the CPU maps, up to the last bit of exp on
    either device moving a pixel by one grey level; float32 within one level."""
    canvas = torch.cat([canvas_of(p) for p in synthetic_walks(10, seed=11)])
    on_cpu = render_canvas(canvas)
    for dtype in (torch.float64, torch.float32):
        on_gpu = render_canvas(canvas.to("cuda", dtype)).cpu()
        diff = (on_gpu - on_cpu).abs()
        assert diff.max().item() <= 1 and (diff > 0).float().mean().item() < 1e-4, dtype
    floats = render_canvas(canvas.cuda(), quantise=False).cpu()
    assert (floats - render_canvas(canvas, quantise=False)).abs().max().item() < 1e-3
