"""The batched device transforms against the per-sample worker transforms.

* Deterministic transforms (and random ones made deterministic: probability 0 or 1, std 0,
  a zero move, a window with one possible start) give the worker path's values on float64
  batches, to rtol = atol = 1e-12 (the same formulas; only the last bits of pow/atan2 may
  differ between numpy and torch).
* Random transforms draw from the worker path's distributions: frequencies within a binomial
  5-sigma bound of the probability, noise means and standard deviations within 5 standard
  errors, move and window ranges and frequencies.
* Each CASIA-B recipe's whole training chain: same shapes and dtypes as the collated worker
  batch and, with its randomness switched off, the same values (float64: 1e-9; float32 as
  collated: rtol 1e-4, atol 1e-3 on pixel-sized values, since the worker computes in float64
  and rounds at the end while the device computes in float32).
* The config contract: ``trainer_cfg.transform_on`` is checked, and packed sampling or a
  transform without a twin is a ConfigError naming the key.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import yaml

from cli_helpers import REPO
from fastposegait.config import load_config
from fastposegait.data import transforms as T
from fastposegait.data.batch import Batch
from fastposegait.data.collate import BatchCollator
from fastposegait.data.device_transforms import (DeviceTransforms, build_device_chain, device_generator,
                                                 unsupported_device_transform)
from fastposegait.data.frames import FrameSampler
from fastposegait.errors import ConfigError
from fastposegait.registry import TRANSFORMS

RECIPES = {
    "gaitgraph1": REPO / "configs" / "gaitgraph1" / "gaitgraph1_phase1.yaml",
    "gaitgraph2": REPO / "configs" / "gaitgraph2" / "gaitgraph2.yaml",
    "gaittr": REPO / "configs" / "gaittr" / "gaittr.yaml",
    "gpgait": REPO / "configs" / "gpgait" / "gpgait.yaml",
}
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]  # written out, not read from the code
TIGHT = dict(rtol=1e-12, atol=1e-12)


def random_batch(rng: np.random.Generator, batch: int = 5, frames: int = 14, joints: int = 17,
                 missing: float = 0.2) -> np.ndarray:
    """Pixel-like float64 poses ``[B, T, V, 3]`` with missing joints (all channels 0), an
    all-zero frame and a frame with zero height (every y equal)."""
    seq = np.concatenate((rng.uniform(20, 200, size=(batch, frames, joints, 2)),
                          rng.uniform(0.1, 1, size=(batch, frames, joints, 1))), axis=-1)
    seq[rng.random((batch, frames, joints)) < missing] = 0
    seq[:, frames // 2] = 0
    seq[0, 1, :, 1] = 77.0
    return seq


def worker(cfg, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The per-sample transform applied to each sequence, stacked."""
    chain = T.build_transform(cfg)
    return np.stack([np.asarray(chain(s, np.random.default_rng([seed, i]))) for i, s in enumerate(x)])


def device(cfg, x: np.ndarray, key: int = 0) -> np.ndarray:
    chain = build_device_chain(cfg)
    out = chain(torch.from_numpy(x), device_generator(0, 0, key, torch.device("cpu")))
    return out.numpy()


DETERMINISTIC = [
    {"type": "NoOperation"},
    {"type": "NormalizeEmpty"},
    {"type": "RescaleCenter", "center": "neck", "scale": 225},
    {"type": "RescaleCenter", "center": "hip", "scale": 1.5},
    {"type": "RescaleCenter", "center": "head", "scale": 225},
    {"type": "RescaleCenter", "center": None},
    {"type": "Affine"},
    {"type": "Affine", "legacy": True},
    {"type": "SkeletonInput"},
    {"type": "SelectSequenceCenter", "sequence_length": 9},
    {"type": "GaitGraph_MultiInput", "joint_format": "coco"},
    {"type": "GaitTR_MultiInput", "joint_format": "coco"},
    {"type": "HOD_MultiInput", "joint_format": "coco"},
    {"type": "FlipSequence", "probability": 0.0},
    {"type": "FlipSequence", "probability": 1.0},
    {"type": "MirrorPoses", "probability": 0.0},
    {"type": "MirrorPoses", "probability": 1.0},
    {"type": "InversePosesPre", "probability": 0.0},
    {"type": "InversePosesPre", "probability": 1.0},
    {"type": "JointNoise", "std": 0.0},
    {"type": "PointNoise", "std": 0.0},
    {"type": "RandomMove", "random_r": [0, 0]},
    {"type": "RandomSelectSequence", "sequence_length": 13},  # T = 14: the only start is 0
    {"type": "TwoView", "trf_cfg": [{"type": "NormalizeEmpty"}, {"type": "SkeletonInput"}]},
    [{"type": "NormalizeEmpty"}, {"type": "Affine"}, {"type": "RescaleCenter"}, {"type": "HOD_MultiInput"},
     {"type": "SkeletonInput"}],
]


@pytest.mark.parametrize("cfg", DETERMINISTIC, ids=lambda c: c["type"] if isinstance(c, dict) else "chain")
def test_deterministic_twins_equal_the_worker_transforms_in_float64(cfg):
    x = random_batch(np.random.default_rng(1))
    expected, got = worker(cfg, x), device(cfg, x)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, **TIGHT)


def test_openpose_feature_and_swap_twins_equal_the_worker_transforms():
    x = random_batch(np.random.default_rng(2), joints=18)
    for cfg in ({"type": "HOD_MultiInput", "joint_format": "openpose"},
                {"type": "GaitTR_MultiInput", "joint_format": "openpose"},
                {"type": "InversePosesPre", "probability": 1.0, "joint_format": "openpose"}):
        np.testing.assert_allclose(device(cfg, x), worker(cfg, x), **TIGHT)


def test_hand_computed_normalize_empty_and_swap():
    """The documented NormalizeEmpty example frame, and a full left/right swap, by hand."""
    frame = np.array([[0, 0, 0], [2, 4, 1], [0, 5, .5], [4, 8, 1]], dtype=np.float64)
    x = np.tile(frame, (2, 3, 1, 1))  # [B=2, T=3, V=4, 3]
    got = device({"type": "NormalizeEmpty"}, x)
    want = np.array([[1.5, 4.25, 0], [2, 4, 1], [1.875, 5.3125, 0], [4, 8, 1]])
    np.testing.assert_allclose(got, np.broadcast_to(want, x.shape), rtol=0, atol=1e-12)
    pose = np.arange(2 * 17 * 3, dtype=np.float64).reshape(1, 2, 17, 3)
    swapped = device({"type": "InversePosesPre", "probability": 1.0}, pose)
    assert np.array_equal(swapped, pose[:, :, COCO_FLIP])


# ---------------------------------------------------------------------------------- distributions


def binomial_ok(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9


def worker_draws(cfg, x: np.ndarray) -> np.ndarray:
    return worker(cfg, x, seed=12345)


def test_flip_and_mirror_frequencies_match_the_probability():
    n = 4000
    x = np.random.default_rng(3).uniform(1, 2, size=(n, 6, 17, 3))
    for name, p, changed in (("FlipSequence", 0.3, lambda o: ~np.all(o == x, axis=(1, 2, 3))),
                             ("MirrorPoses", 0.7, lambda o: ~np.all(o == x, axis=(1, 2, 3)))):
        cfg = {"type": name, "probability": p}
        for out in (device(cfg, x), worker_draws(cfg, x)):
            assert binomial_ok(int(changed(out).sum()), n, p), (name, int(changed(out).sum()))


def test_left_right_swaps_are_drawn_per_frame_with_the_probability():
    b, t = 200, 50
    x = np.random.default_rng(4).uniform(1, 2, size=(b, t, 17, 3))
    cfg = {"type": "InversePosesPre", "probability": 0.1}
    for out in (device(cfg, x), worker_draws(cfg, x)):
        swapped = np.all(out == x[:, :, COCO_FLIP], axis=(2, 3))
        kept = np.all(out == x, axis=(2, 3))
        assert np.all(swapped ^ kept)  # every frame is either swapped or untouched
        assert binomial_ok(int(swapped.sum()), b * t, 0.1), int(swapped.sum())
        per_sequence = swapped.sum(axis=1)
        assert np.mean((per_sequence > 0) & (per_sequence < t)) > 0.9  # drawn per frame, not per sequence


def noise_stats(out: np.ndarray, x: np.ndarray):
    noise = out - x
    return noise.mean(axis=0), noise.std(axis=0), noise


def test_joint_noise_is_one_normal_offset_per_joint_and_axis():
    n, std = 3000, 0.25
    x = np.random.default_rng(5).uniform(20, 200, size=(n, 4, 17, 3))
    cfg = {"type": "JointNoise", "std": std}
    for out in (device(cfg, x), worker_draws(cfg, x)):
        noise = out - x
        np.testing.assert_allclose(noise, np.broadcast_to(noise[:, :1], noise.shape), atol=1e-9)  # same every frame
        assert np.all(noise[..., 2] == 0)  # confidence untouched
        per_joint = noise[:, 0, :, :2]  # [n, V, 2]
        assert np.all(np.abs(per_joint.mean(axis=0)) <= 5 * std / math.sqrt(n))
        assert np.all(np.abs(per_joint.std(axis=0) - std) <= 5 * std / math.sqrt(2 * n))


def test_point_noise_is_independent_normal_noise_on_every_value():
    n, std = 2000, 0.05
    x = np.random.default_rng(6).uniform(20, 200, size=(n, 3, 17, 3))
    cfg = {"type": "PointNoise", "std": std}
    stats = []
    for out in (device(cfg, x), worker_draws(cfg, x)):
        noise = out - x
        per_joint = noise.reshape(n * 3, 17, 3)
        assert np.all(np.abs(per_joint.mean(axis=0)) <= 5 * std / math.sqrt(n * 3))
        assert np.all(np.abs(per_joint.std(axis=0) - std) <= 5 * std / math.sqrt(2 * n * 3))
        assert abs(np.corrcoef(noise[:, 0, 0, 0], noise[:, 1, 0, 0])[0, 1]) < 5 / math.sqrt(n)  # frames independent
        stats.append(per_joint.std())
    assert abs(stats[0] - stats[1]) <= 10 * std / math.sqrt(2 * per_joint.size)


def test_random_move_shifts_each_sequence_uniformly_within_its_ranges():
    n, (rx, ry) = 4000, (4.0, 1.0)
    x = np.random.default_rng(7).uniform(20, 200, size=(n, 3, 17, 3))
    cfg = {"type": "RandomMove", "random_r": [rx, ry]}
    for out in (device(cfg, x), worker_draws(cfg, x)):
        shift = out - x
        np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1, :1], shift.shape), atol=1e-9)
        assert np.all(shift[..., 2] == 0)
        dx, dy = shift[:, 0, 0, 0], shift[:, 0, 0, 1]
        for d, r in ((dx, rx), (dy, ry)):
            assert d.min() >= -r and d.max() <= r
            assert d.min() < -0.99 * r and d.max() > 0.99 * r  # the whole range is used
            assert abs(d.mean()) <= 5 * (r / math.sqrt(3)) / math.sqrt(n)
            assert abs(d.var() - r * r / 3) <= 5 * r * r * math.sqrt(4 / 45) / math.sqrt(n)  # var of U^2 terms
        assert abs(np.corrcoef(dx, dy)[0, 1]) < 5 / math.sqrt(n)


def test_random_select_sequence_starts_uniformly_and_never_at_the_last_window():
    n, frames, length = 5000, 15, 10
    x = np.broadcast_to(np.arange(frames, dtype=np.float64)[None, :, None, None], (n, frames, 17, 3)).copy()
    cfg = {"type": "RandomSelectSequence", "sequence_length": length}
    starts_of = {}
    for name, out in (("device", device(cfg, x)), ("worker", worker_draws(cfg, x))):
        assert out.shape == (n, length, 17, 3)
        starts = out[:, 0, 0, 0].astype(int)
        assert np.array_equal(out[:, :, 0, 0], starts[:, None] + np.arange(length))  # contiguous windows
        counts = np.bincount(starts, minlength=frames)
        assert counts[frames - length:].sum() == 0  # starts 0 .. T - L - 1 only, as the worker path
        for c in counts[: frames - length]:
            assert binomial_ok(int(c), n, 1 / (frames - length)), counts
        starts_of[name] = counts
    assert set(np.nonzero(starts_of["device"])[0]) == set(np.nonzero(starts_of["worker"])[0])


def test_the_two_views_are_augmented_independently():
    x = np.random.default_rng(8).uniform(1, 2, size=(500, 8, 17, 3))
    cfg = {"type": "TwoView", "trf_cfg": [{"type": "FlipSequence", "probability": 0.5}, {"type": "SkeletonInput"}]}
    out = device(cfg, x)
    assert out.shape == (500, 3, 16, 17, 1)
    flipped = [~np.all(out[:, :, v * 8:(v + 1) * 8, :, 0] == x.transpose(0, 3, 1, 2), axis=(1, 2, 3)) for v in (0, 1)]
    both = int((flipped[0] & flipped[1]).sum())
    assert binomial_ok(both, 500, 0.25), both  # independent halves: P(both) = 0.5 * 0.5


def test_draws_are_keyed_by_seed_rank_and_batch():
    x = np.zeros((4, 6, 17, 3))
    cfg = {"type": "PointNoise", "std": 1.0}
    chain = build_device_chain(cfg)
    cpu = torch.device("cpu")

    def draw(seed, rank, key):
        return chain(torch.from_numpy(x), device_generator(seed, rank, key, cpu))

    assert torch.equal(draw(0, 0, 5), draw(0, 0, 5))
    for other in ((1, 0, 5), (0, 1, 5), (0, 0, 6)):
        assert not torch.equal(draw(0, 0, 5), draw(*other)), other


# ---------------------------------------------------------------------------------- whole recipes


def recipe(name: str):
    cfg = yaml.safe_load(RECIPES[name].read_text())["trainer_cfg"]
    return cfg["transform"], cfg["sampler"]


def without_randomness(cfg):
    """The chain with every random draw switched off (RandomSelectSequence is handled by
    giving it one possible start)."""
    if isinstance(cfg, list):
        return [without_randomness(c) for c in cfg]
    cfg = copy.deepcopy(cfg)
    if "probability" in cfg:
        cfg["probability"] = 0.0
    if "std" in cfg:
        cfg["std"] = 0.0
    if "random_r" in cfg:
        cfg["random_r"] = [0, 0]
    if "trf_cfg" in cfg:
        cfg["trf_cfg"] = without_randomness(cfg["trf_cfg"])
    return cfg


def clip_length(transform_cfg, sampler) -> int:
    """The fixed clip length; for a RandomSelectSequence inside, one more than its window (one start)."""
    text = yaml.safe_dump(transform_cfg)
    if "RandomSelectSequence" in text:
        return yaml.safe_load(text)[0]["trf_cfg"][2]["sequence_length"] + 1
    return sampler["frames_num_fixed"]


def collate_both(transform_cfg, sampler, frames, dtype, seed=0):
    """The worker path's collated batch and the device path's (raw collated batch, then the
    batched chain), from the same sequences and frame windows."""
    rng = np.random.default_rng(seed)
    sequences = [[s.astype(dtype)] for s in random_batch(rng, batch=6, frames=frames)]
    frame_sampler = FrameSampler(sampler["sample_type"], frames_num_fixed=frames, frames_skip_num=0)
    labels, types, views = [0] * 6, ["nm-01"] * 6, ["090"] * 6

    def rngs():
        return [np.random.default_rng([seed, i]) for i in range(6)]

    on_worker = BatchCollator(frame_sampler, T.build_transforms(transform_cfg))(sequences, labels, types, views, rngs())
    raw = BatchCollator(frame_sampler, [T.NoOperation()])(sequences, labels, types, views, rngs())
    if dtype == np.float64:  # the collator rounds to float32; redo the raw batch in float64
        frames_of = [frame_sampler(len(s[0]), r) for s, r in zip(sequences, rngs())]
        raw = raw._replace(inputs=[torch.from_numpy(np.stack([s[0][f] for s, f in zip(sequences, frames_of)]))])
        expected = np.stack([np.asarray(T.build_transforms(transform_cfg)[0](s[0][f], r))
                             for s, f, r in zip(sequences, frames_of, _after_frames(frame_sampler, sequences))])
    else:
        expected = on_worker.inputs[0].numpy()
    on_device = DeviceTransforms(transform_cfg, seed=0)(raw, key=1)
    return on_worker, raw, on_device, expected


def _after_frames(frame_sampler, sequences):
    """Each sequence's generator after the frame sampler's draws (as the collator leaves it)."""
    out = []
    for i, s in enumerate(sequences):
        rng = np.random.default_rng([0, i])
        frame_sampler(len(s[0]), rng)
        out.append(rng)
    return out


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_chain_gives_the_worker_batch_shapes_dtypes_and_values(name):
    transform_cfg, sampler = recipe(name)
    frames = clip_length(transform_cfg, sampler)
    # as the recipe runs (random): shapes and dtypes equal
    on_worker, raw, on_device, _ = collate_both(transform_cfg, sampler, frames, np.float32)
    assert raw.inputs[0].shape == (6, frames, 17, 3) and raw.inputs[0].dtype == torch.float32
    assert on_device.inputs[0].shape == on_worker.inputs[0].shape
    assert on_device.inputs[0].dtype == on_worker.inputs[0].dtype == torch.float32
    assert on_device.inputs[0].is_contiguous()
    assert torch.isfinite(on_device.inputs[0]).all()
    # randomness switched off: values equal (float32 as collated, and float64)
    still = without_randomness(transform_cfg)
    on_worker, _, on_device, expected = collate_both(still, sampler, frames, np.float32)
    np.testing.assert_allclose(on_device.inputs[0].numpy(), expected, rtol=1e-4, atol=1e-3)
    _, _, on_device, expected = collate_both(still, sampler, frames, np.float64)
    assert on_device.inputs[0].dtype == torch.float64
    np.testing.assert_allclose(on_device.inputs[0].numpy(), expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------- config contract


def demo_overrides(tmp_path):
    return [f"data_cfg.dataset_root={tmp_path / 'data'}", f"data_cfg.dataset_partition={tmp_path / 'p.json'}"]


def test_transform_on_defaults_to_worker_and_accepts_device(tmp_path):
    path = RECIPES["gaitgraph2"]
    assert load_config(path, demo_overrides(tmp_path))["trainer_cfg"]["transform_on"] == "worker"
    from fastposegait.config import Config
    cfg = load_config(path, demo_overrides(tmp_path) + ["trainer_cfg.transform_on=device"])
    assert Config.from_dict(cfg).trainer.transform_on == "device"


NESTED_WITHOUT_TWIN = "trainer_cfg.transform=[{type: Compose, trf_cfg: [{type: NormalizeEmpty}, {type: NoTwinForTests}]}]"


@pytest.mark.parametrize("override, key", [
    ("trainer_cfg.transform_on=gpu", "trainer_cfg.transform_on"),
    ("trainer_cfg.sampler.sample_type=all_ordered", "trainer_cfg.sampler.sample_type"),
    (NESTED_WITHOUT_TWIN, "trainer_cfg.transform.0.trf_cfg.1.type"),
])
def test_device_transforms_refuse_what_they_cannot_run(tmp_path, override, key):
    with pytest.raises(ConfigError) as err:
        load_config(RECIPES["gaitgraph2"], demo_overrides(tmp_path) + ["trainer_cfg.transform_on=device", override])
    message = str(err.value)
    assert key in message and str(RECIPES["gaitgraph2"]) in message
    assert "worker" in message


def _no_twin_for_tests(seq):
    return seq


if "NoTwinForTests" not in TRANSFORMS:
    TRANSFORMS.add(_no_twin_for_tests, "NoTwinForTests")


def test_unsupported_transforms_are_found_in_nested_chains():
    assert unsupported_device_transform(recipe("gaitgraph1")[0]) is None
    found = unsupported_device_transform([{"type": "TwoView", "trf_cfg": [{"type": "NoTwinForTests"}]}])
    assert found == ("trainer_cfg.transform.0.trf_cfg.0.type", "NoTwinForTests")
    with pytest.raises(ConfigError, match="NoTwinForTests"):
        build_device_chain({"type": "NoTwinForTests"})


def test_a_user_transform_with_a_batched_method_runs_on_the_device():
    class Double(T.Transform):
        def __call__(self, seq, rng=None):
            return seq * 2

        def batched(self, x, generator):
            return x * 2

    if "DoubleForTests" not in TRANSFORMS:
        TRANSFORMS.add(Double, "DoubleForTests")
    x = random_batch(np.random.default_rng(9))
    np.testing.assert_array_equal(device({"type": "DoubleForTests"}, x), worker({"type": "DoubleForTests"}, x))


def test_packed_batches_are_refused_at_run_time_too():
    chains = DeviceTransforms([{"type": "SkeletonInput"}], seed=0)
    packed = Batch([torch.zeros(1, 12, 17, 3)], torch.zeros(2, dtype=torch.long), ["a", "b"], ["0", "0"],
                   torch.tensor([[5, 7]], dtype=torch.int32))
    with pytest.raises(ConfigError, match="transform_on: worker"):
        chains(packed, key=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_chains_on_cuda_equal_the_cpu_chains(name):
    """On CUDA: the recipe chain with its randomness off gives the CPU values (float64, 1e-9);
    with randomness, the same key gives the same draws and the output is finite."""
    transform_cfg, sampler = recipe(name)
    frames = clip_length(transform_cfg, sampler)
    x = torch.from_numpy(random_batch(np.random.default_rng(10), batch=6, frames=frames))
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    still = build_device_chain(without_randomness(transform_cfg)[0])
    np.testing.assert_allclose(still(x.cuda(), device_generator(0, 0, 1, cuda)).cpu().numpy(),
                               still(x, device_generator(0, 0, 1, cpu)).numpy(), rtol=1e-9, atol=1e-9)
    chain = build_device_chain(transform_cfg[0])
    a = chain(x.float().cuda(), device_generator(0, 0, 1, cuda))
    b = chain(x.float().cuda(), device_generator(0, 0, 1, cuda))
    assert a.is_cuda and torch.equal(a, b) and torch.isfinite(a).all()
