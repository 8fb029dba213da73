"""Map transforms (SkeletonGait's skeleton maps, silhouettes): exact values and distributions.

References are independent of the code under test: hand-computed examples (the identity and
shifted perspective warps, a 2x stretch of a ramp, a 90-degree rotation moving one pixel to a
place worked out by hand, the +10 degree matrix from the published description), and a
brute-force per-pixel warp (a 3x3 or 2x3 system solved for every output pixel, scalar
bilinear sampling with an explicit border test). The device twins are compared with the worker
path on the same draws, and their draws with the worker path's distributions (binomial 5-sigma
bounds for frequencies, ranges and uniformity for corners and angles).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastposegait.data import map_transforms as M
from fastposegait.data import transforms as T
from fastposegait.data.device_transforms import build_device_chain, device_generator, unsupported_device_transform
from fastposegait.errors import ConfigError
from fastposegait.registry import TRANSFORMS

NAMES = ("BaseSilCuttingTransform", "RandomPerspective", "RandomHorizontalFlip", "RandomRotate")


def maps(rng: np.random.Generator, shape=(3, 2, 64, 64), dtype=np.uint8) -> np.ndarray:
    return rng.integers(0, 256, size=shape).astype(dtype)


def binomial_ok(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9


# ----------------------------------------------------------------------------- brute force


def sample(image: np.ndarray, sx: float, sy: float) -> float:
    """Scalar bilinear sample with zeros outside (the reference)."""
    h, w = image.shape
    x0, y0 = math.floor(sx), math.floor(sy)
    total = 0.0
    for xi, yi, weight in ((x0, y0, (x0 + 1 - sx) * (y0 + 1 - sy)), (x0 + 1, y0, (sx - x0) * (y0 + 1 - sy)),
                           (x0, y0 + 1, (x0 + 1 - sx) * (sy - y0)), (x0 + 1, y0 + 1, (sx - x0) * (sy - y0))):
        if 0 <= xi < w and 0 <= yi < h:
            total += weight * float(image[yi, xi])
    return total


def brute_perspective(image: np.ndarray, corners) -> np.ndarray:
    """Each output pixel q: the source p with H p ~ q, H from the four corner pairs (solved
    independently as a 3x3 matrix with h33 = 1 by least squares on the 8 equations)."""
    h, w = image.shape
    a, b, c, d = corners
    src = [(a, 0), (b, 0), (c, h), (d, h)]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coef = np.linalg.lstsq(np.array(rows, float), np.array(rhs, float), rcond=None)[0]
    forward = np.append(coef, 1).reshape(3, 3)
    out = np.zeros((h, w))
    for qy in range(h):
        for qx in range(w):
            p = np.linalg.solve(forward, [qx, qy, 1.0])
            out[qy, qx] = sample(image, p[0] / p[2], p[1] / p[2])
    return out


def brute_affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    h, w = image.shape
    out = np.zeros((h, w))
    for qy in range(h):
        for qx in range(w):
            p = np.linalg.solve(matrix[:, :2], np.array([qx, qy], float) - matrix[:, 2])
            out[qy, qx] = sample(image, p[0], p[1])
    return out


# ----------------------------------------------------------------------------- registry


def test_registered_under_the_upstream_names_and_built_from_configs():
    for name in NAMES:
        assert TRANSFORMS.get(name) is getattr(M, name)
    chain = T.build_transform([{"type": "BaseSilCuttingTransform", "divsor": 255.0},
                               {"type": "RandomHorizontalFlip", "prob": 0.2},
                               {"type": "RandomRotate", "prob": 0.2, "degree": 10},
                               {"type": "RandomPerspective", "prob": 0.2}])
    assert "divsor=255.0" in repr(chain) and "degree=10" in repr(chain)
    assert unsupported_device_transform([{"type": n} for n in NAMES]) is None  # every one has a twin


@pytest.mark.parametrize("cfg", [{"type": "RandomHorizontalFlip", "prob": 1.5},
                                 {"type": "RandomRotate", "degree": -1},
                                 {"type": "RandomPerspective", "prob": "often"},
                                 {"type": "BaseSilCuttingTransform", "divsor": 0},
                                 {"type": "BaseSilCuttingTransform", "cutting": -2}])
def test_bad_arguments_are_a_config_error_naming_the_transform(cfg):
    with pytest.raises(ConfigError, match=cfg["type"]):
        T.build_transform(cfg, "trainer_cfg.transform")


# ----------------------------------------------------------------------------- cutting


def test_cutting_keeps_columns_10_to_53_and_divides_by_255_exactly():
    x = maps(np.random.default_rng(0))
    out = M.BaseSilCuttingTransform()(x)
    assert out.shape == (3, 2, 64, 44) and out.dtype == np.float64
    expected = np.array([[[[x[t, c, r, k] / 255.0 for k in range(10, 54)] for r in range(64)]
                          for c in range(2)] for t in range(3)])
    np.testing.assert_array_equal(out, expected)
    assert out.max() <= 1.0 and out.min() >= 0.0


def test_cutting_widths_silhouettes_explicit_cuts_and_bad_cuts():
    rng = np.random.default_rng(1)
    wide = maps(rng, (2, 1, 128, 128))
    assert M.BaseSilCuttingTransform()(wide).shape == (2, 1, 128, 88)  # 20 columns per side
    sil = maps(rng, (4, 64, 64))
    np.testing.assert_array_equal(M.BaseSilCuttingTransform(divsor=2.0, cutting=3)(sil), sil[..., 3:61] / 2.0)
    np.testing.assert_array_equal(M.BaseSilCuttingTransform(cutting=0)(sil), sil / 255.0)  # keeps every column
    with pytest.raises(ValueError, match="leaves none"):
        M.BaseSilCuttingTransform(cutting=32)(sil)
    with pytest.raises(ValueError, match=r"\[T, C, H, W\]"):
        M.BaseSilCuttingTransform()(np.zeros((5, 64)))


# ----------------------------------------------------------------------------- flip


def test_flip_mirrors_the_width_axis_and_twice_is_the_identity():
    x = np.arange(2 * 2 * 3 * 4, dtype=np.uint8).reshape(2, 2, 3, 4)
    flip = M.RandomHorizontalFlip(prob=1.0)
    once = flip(x, np.random.default_rng(0))
    np.testing.assert_array_equal(once[0, 0, 0], [3, 2, 1, 0])
    np.testing.assert_array_equal(once[1, 1, 2], x[1, 1, 2, ::-1])
    np.testing.assert_array_equal(flip(once, np.random.default_rng(1)), x)
    assert M.RandomHorizontalFlip(prob=0.0)(x, np.random.default_rng(0)) is x


# ----------------------------------------------------------------------------- perspective


def test_perspective_with_the_image_corners_is_the_identity():
    x = maps(np.random.default_rng(2))
    np.testing.assert_array_equal(M.RandomPerspective().apply(x, (0, 64, 64, 0)), x)


def test_perspective_with_shifted_corners_is_a_pure_shift():
    x = maps(np.random.default_rng(3)).astype(np.float64)
    out = M.RandomPerspective().apply(x, (3, 67, 67, 3))  # the rectangle shifted 3 px right
    np.testing.assert_array_equal(out[..., :61], x[..., 3:])
    np.testing.assert_array_equal(out[..., 61:], 0)


def test_perspective_of_half_the_width_stretches_a_ramp_by_two():
    ramp = np.tile(np.arange(64, dtype=np.float64), (1, 1, 64, 1))  # value = column
    out = M.RandomPerspective().apply(ramp, (0, 32, 32, 0))  # source x = output x / 2
    np.testing.assert_allclose(out[0, 0, 5], np.arange(64) / 2, atol=1e-12)


def test_perspective_matrix_maps_the_corners_onto_the_image_rectangle():
    matrix = M.perspective_source_to_target((7, 55, 60, 2), 64, 64)
    for (x, y), (u, v) in zip([(7, 0), (55, 0), (60, 64), (2, 64)], [(0, 0), (64, 0), (64, 64), (0, 64)]):
        p = matrix @ [x, y, 1.0]
        np.testing.assert_allclose(p[:2] / p[2], (u, v), atol=1e-12)
    assert matrix[2, 2] == 1.0


@pytest.mark.parametrize("corners", [(3, 60, 58, 5), (9, 54, 63, 0), (0, 63, 54, 9)])
def test_perspective_equals_a_brute_force_warp(corners):
    x = maps(np.random.default_rng(4), (1, 2, 64, 64)).astype(np.float64)
    out = M.RandomPerspective().apply(x, corners)
    for c in range(2):
        np.testing.assert_allclose(out[0, c], brute_perspective(x[0, c], corners), atol=1e-9)


def test_perspective_on_uint8_rounds_the_float_warp():
    x = maps(np.random.default_rng(5))
    out = M.RandomPerspective().apply(x, (4, 57, 61, 8))
    assert out.dtype == np.uint8
    exact = M.RandomPerspective().apply(x.astype(np.float64), (4, 57, 61, 8))
    np.testing.assert_array_equal(out, np.rint(exact).astype(np.uint8))


def test_perspective_corners_cover_their_ranges_uniformly():
    transform = M.RandomPerspective()
    rng = np.random.default_rng(6)
    draws = np.array([transform.draw_corners(rng, 64) for _ in range(4000)])
    for column, (low, high) in enumerate([(0, 10), (54, 64), (54, 64), (0, 10)]):
        counts = np.bincount(draws[:, column] - low, minlength=high - low)
        assert draws[:, column].min() == low and draws[:, column].max() == high - 1
        assert all(binomial_ok(int(k), len(draws), 0.1) for k in counts), counts
    with pytest.raises(ValueError, match="narrower than 44"):
        transform.draw_corners(rng, 40)


# ----------------------------------------------------------------------------- rotation


def test_rotation_matrix_of_plus_10_degrees_is_the_published_one():
    expected = np.array([[0.9848, 0.1736, -3.3341], [-0.1736, 0.9848, 5.8910]])
    np.testing.assert_allclose(M.rotation_matrix(10, 64, 44), expected, atol=1e-4)


def test_rotation_by_90_degrees_moves_a_pixel_where_the_matrix_says():
    # centre (x 32, y 22); M = [[0, 1, 32 - 22], [-1, 0, 32 + 22]]: (x 5, y 20) -> (x 30, y 49)
    image = np.zeros((1, 1, 64, 44))
    image[0, 0, 20, 5] = 1.0
    out = M.RandomRotate().apply(image, 90.0)
    assert np.argwhere(out > 1e-9).tolist() == [[0, 0, 49, 30]]
    assert out[0, 0, 49, 30] == pytest.approx(1.0, abs=1e-12)


def test_rotation_by_10_degrees_puts_the_brightest_pixel_at_the_rounded_image_of_the_source():
    image = np.zeros((1, 64, 44))  # a silhouette-like [T, H, W] sequence
    image[0, 40, 12] = 255.0
    out = M.RandomRotate().apply(image, 10.0)
    matrix = np.array([[0.98481, 0.17365, -3.33410], [-0.17365, 0.98481, 5.89096]])  # hand: cos, sin of 10 deg
    qx, qy = matrix @ [12.0, 40.0, 1.0]
    assert np.unravel_index(out[0].argmax(), out[0].shape) == (round(qy), round(qx))
    assert out.shape == image.shape


@pytest.mark.parametrize("angle", [10.0, -7.3, 3.0])
def test_rotation_equals_a_brute_force_warp(angle):
    x = maps(np.random.default_rng(7), (1, 2, 64, 44)).astype(np.float64)
    out = M.RandomRotate().apply(x, angle)
    matrix = np.array([[math.cos(math.radians(angle)), math.sin(math.radians(angle)), 0.0],
                       [-math.sin(math.radians(angle)), math.cos(math.radians(angle)), 0.0]])
    centre = np.array([32.0, 22.0])  # (x = H // 2, y = W // 2), the swapped centre
    matrix[:, 2] = centre - matrix[:, :2] @ centre
    for c in range(2):
        np.testing.assert_allclose(out[0, c], brute_affine(x[0, c], matrix), atol=1e-9)


# ----------------------------------------------------------------------------- frequencies


@pytest.mark.parametrize("name", ["RandomHorizontalFlip", "RandomPerspective", "RandomRotate"])
@pytest.mark.parametrize("prob", [0.0, 0.2, 1.0])
def test_worker_frequencies_match_the_probability(name, prob):
    transform = T.build_transform({"type": name, "prob": prob})
    x = maps(np.random.default_rng(8), (1, 1, 8, 44)).astype(np.float64)
    n = 600
    changed = sum(not np.array_equal(transform(x, np.random.default_rng([9, i])), x) for i in range(n))
    assert binomial_ok(changed, n, prob), changed


# ----------------------------------------------------------------------------- device twins


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-3)])
def test_batched_warps_equal_the_worker_path_on_the_same_draws(dtype, tol):
    rng = np.random.default_rng(10)
    x = maps(rng, (3, 4, 2, 64, 64)).astype(np.float64)
    corners = [(3, 60, 58, 5), (0, 54, 63, 9), (9, 63, 54, 0)]
    persp = M.RandomPerspective()
    got = persp.apply_batched(torch.from_numpy(x).to(dtype), torch.tensor(corners)).double().numpy()
    want = np.stack([persp.apply(s, c) for s, c in zip(x, corners)])
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 255)
    cut = x[..., 10:54]
    angles = [9.9, -4.2, 0.5]
    rot = M.RandomRotate()
    got = rot.apply_batched(torch.from_numpy(cut).to(dtype), torch.tensor(angles, dtype=torch.float64))
    want = np.stack([rot.apply(s, a) for s, a in zip(cut, angles)])
    np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol * 255)
    # a mask leaves the other samples untouched
    masked = rot.apply_batched(torch.from_numpy(cut), torch.tensor(angles, dtype=torch.float64),
                               torch.tensor([False, True, False]))
    np.testing.assert_array_equal(masked[0].numpy(), cut[0])


def test_deterministic_twins_equal_the_worker_path():
    x = maps(np.random.default_rng(11), (4, 5, 2, 64, 64)).astype(np.float64)
    for cfg in ({"type": "BaseSilCuttingTransform"}, {"type": "RandomHorizontalFlip", "prob": 1.0},
                {"type": "RandomHorizontalFlip", "prob": 0.0}, {"type": "RandomRotate", "prob": 0.0},
                {"type": "RandomPerspective", "prob": 0.0}):
        chain = build_device_chain([cfg])
        got = chain(torch.from_numpy(x), device_generator(0, 0, 0, torch.device("cpu"))).numpy()
        transform = T.build_transform(cfg)
        want = np.stack([transform(s, np.random.default_rng(i)) for i, s in enumerate(x)])
        np.testing.assert_array_equal(got, want)
    uint8 = torch.from_numpy(maps(np.random.default_rng(12), (2, 3, 2, 64, 64)))
    out = M.BaseSilCuttingTransform().batched(uint8)
    assert out.dtype == torch.float64 and tuple(out.shape) == (2, 3, 2, 64, 44)
    np.testing.assert_array_equal(out.numpy(), uint8.numpy()[..., 10:54] / 255.0)


@pytest.mark.parametrize("name", ["RandomHorizontalFlip", "RandomPerspective", "RandomRotate"])
def test_device_frequencies_match_the_probability(name):
    chain = build_device_chain({"type": name, "prob": 0.3})
    n = 800
    x = torch.from_numpy(maps(np.random.default_rng(13), (1, 1, 1, 8, 44)).astype(np.float32)).expand(n, -1, -1, -1, -1)
    out = chain(x.contiguous(), device_generator(0, 0, 5, torch.device("cpu")))
    changed = (out != x).flatten(1).any(dim=1)
    assert binomial_ok(int(changed.sum()), n, 0.3), int(changed.sum())


def test_device_draws_have_the_worker_distributions(monkeypatch):
    seen = {}

    def capture(key):
        def fake(self, x, values, mask=None):
            seen[key] = values.clone()  # only the selected sequences are warped
            return x
        return fake

    monkeypatch.setattr(M.RandomPerspective, "apply_batched", capture("corners"))
    monkeypatch.setattr(M.RandomRotate, "apply_batched", capture("angles"))
    n = 4000
    x = torch.zeros((n, 1, 1, 4, 64))
    generator = device_generator(3, 0, 1, torch.device("cpu"))
    M.RandomPerspective(prob=1.0).batched(x, generator)
    M.RandomRotate(prob=1.0, degree=10).batched(x, generator)
    corners = seen["corners"]
    assert corners.shape == (n, 4)  # prob 1: every sequence
    for column, (low, high) in enumerate([(0, 10), (54, 64), (54, 64), (0, 10)]):
        counts = torch.bincount(corners[:, column] - low, minlength=high - low)
        assert len(counts) == high - low and all(binomial_ok(int(k), n, 0.1) for k in counts), counts
    angles = seen["angles"]
    assert angles.shape == (n,)
    assert float(angles.min()) >= -10 and float(angles.max()) <= 10
    assert abs(float(angles.mean())) < 5 * (20 / math.sqrt(12)) / math.sqrt(n)
    assert float(angles.std()) == pytest.approx(20 / math.sqrt(12), rel=0.05)


def test_device_twins_reject_pose_batches():
    with pytest.raises(ValueError, match=r"\[B, T, C, H, W\]"):
        M.RandomHorizontalFlip(1.0).batched(torch.zeros(2, 30, 17), torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_twins_on_cuda_equal_the_worker_path():
    rng = np.random.default_rng(14)
    x = maps(rng, (3, 4, 2, 64, 64)).astype(np.float64)
    corners = [(3, 60, 58, 5), (0, 54, 63, 9), (9, 63, 54, 0)]
    cuda = torch.device("cuda")
    persp = M.RandomPerspective()
    got = persp.apply_batched(torch.from_numpy(x).to(cuda), torch.tensor(corners, device=cuda)).cpu().numpy()
    np.testing.assert_allclose(got, np.stack([persp.apply(s, c) for s, c in zip(x, corners)]), atol=1e-9)
    angles = [9.9, -4.2, 0.5]
    rot = M.RandomRotate()
    cut = x[..., 10:54]
    got = rot.apply_batched(torch.from_numpy(cut).to(cuda), torch.tensor(angles, device=cuda)).cpu().numpy()
    np.testing.assert_allclose(got, np.stack([rot.apply(s, a) for s, a in zip(cut, angles)]), atol=1e-9)
    chain = build_device_chain([{"type": "Compose", "trf_cfg": [
        {"type": "RandomPerspective", "prob": 0.5}, {"type": "BaseSilCuttingTransform"},
        {"type": "RandomHorizontalFlip", "prob": 0.5}, {"type": "RandomRotate", "prob": 0.5}]}])
    out = chain(torch.from_numpy(x).float().to(cuda), device_generator(0, 0, 1, cuda))
    assert out.device.type == "cuda" and tuple(out.shape) == (3, 4, 2, 64, 44)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 + 1e-6
