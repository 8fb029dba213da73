"""Batched tensor feature builders agree with the per-sample numpy transforms."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastposegait.data import transforms as T
from fastposegait.data.skeleton import get_joint_format
from fastposegait.modeling.features import gaitgraph_multi_input, gaittr_multi_input, hod_multi_input

BUILDERS = {
    "gaitgraph": (gaitgraph_multi_input, T.GaitGraphMultiInput),
    "gaittr": (gaittr_multi_input, T.GaitTRMultiInput),
    "hod": (hod_multi_input, T.HODMultiInput),
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_batch(seed: int, n: int, frames: int, joints: int, scale: float = 1.0) -> np.ndarray:
    """Poses with missing joints (all channels 0), an empty frame, repeated (coincident)
    joints and vertical bones: the cases where angle formulas are ill-conditioned."""
    rng = np.random.default_rng(seed)
    x = np.concatenate((rng.normal(size=(n, frames, joints, 2)) * scale, rng.uniform(0, 1, (n, frames, joints, 1))), -1)
    x[rng.random((n, frames, joints)) < 0.15] = 0
    x[0, frames // 2] = 0
    x[1 % n, :, 3, :2] = x[1 % n, :, 1, :2]
    x[-1, :, 7, 0] = x[-1, :, 5, 0]
    return x


def per_sample(transform_cls, x: np.ndarray, fmt: str) -> np.ndarray:
    transform = transform_cls(fmt)
    return np.stack([transform(sample) for sample in x])


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("fmt", ["coco", "openpose"])
@pytest.mark.parametrize("frames", [1, 2, 3, 9])
@pytest.mark.parametrize("device", DEVICES)
def test_batched_float64_matches_per_sample(name, fmt, frames, device):
    builder, transform_cls = BUILDERS[name]
    joints = get_joint_format(fmt).num_joints
    x = random_batch(frames, n=4, frames=frames, joints=joints, scale=100.0)
    expected = per_sample(transform_cls, x, fmt)
    out = builder(torch.from_numpy(x).to(device), fmt)
    assert out.dtype == torch.float64 and out.device.type == device
    assert tuple(out.shape) == expected.shape
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("device", DEVICES)
def test_batched_float32_close_to_per_sample(name, device):
    builder, transform_cls = BUILDERS[name]
    x = random_batch(7, n=6, frames=20, joints=17).astype(np.float32)
    expected = per_sample(transform_cls, x, "coco")  # float64 math on the same float32 input
    out = builder(torch.from_numpy(x).to(device), "coco")
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=0, atol=1e-5)


def test_output_shapes_and_leading_axes():
    x = torch.rand(2, 3, 5, 17, 3)
    assert gaitgraph_multi_input(x).shape == (2, 3, 5, 17, 3, 5)
    assert gaittr_multi_input(x[..., :2]).shape == (2, 3, 5, 17, 10)
    assert hod_multi_input(x, "coco").shape == (2, 3, 5, 17, 6)
    single = gaitgraph_multi_input(x[0, 0])  # [T, V, C] works too
    torch.testing.assert_close(single, gaitgraph_multi_input(x)[0, 0])


def test_gaitgraph_tta_rebuild_from_branch_zero():
    """GaitGraph2's TTA rebuilds features from branch 0's raw channels: the identity
    rebuild, the time reversal and the left/right flip all match the numpy transform."""
    fmt = get_joint_format("coco")
    x = random_batch(3, n=3, frames=12, joints=17)
    features = torch.from_numpy(per_sample(T.GaitGraphMultiInput, x, "coco"))
    raw = features[..., 0, :3]
    torch.testing.assert_close(gaitgraph_multi_input(raw), features)
    reversed_expected = per_sample(T.GaitGraphMultiInput, x[:, ::-1], "coco")
    torch.testing.assert_close(gaitgraph_multi_input(raw.flip(1)).numpy(), reversed_expected)
    flip = torch.from_numpy(fmt.flip_array())
    flipped_expected = per_sample(T.GaitGraphMultiInput, x[:, :, fmt.flip_array()], "coco")
    torch.testing.assert_close(gaitgraph_multi_input(raw[:, :, flip]).numpy(), flipped_expected)


def test_hod_empty_frame_and_nan_in_tensor_builder():
    x = torch.rand(2, 4, 17, 2, dtype=torch.float64) + 1
    x[0, 1] = 0
    x[1, 2, 4, 0] = float("nan")
    out = hod_multi_input(x)
    assert torch.all(out[0, 1] == 0)
    assert out[1, 2, 4, 0] == 0
    assert torch.isfinite(out).all()
    assert torch.all(out[..., 5] == 0)


def test_openpose_slot_17_is_zero_and_slot_7_uses_the_kept_tuple():
    x = torch.rand(1, 2, 18, 2, dtype=torch.float64)
    out = hod_multi_input(x, "alphapose")
    assert torch.all(out[..., 17, 4] == 0)
    p = x[0, 0]
    u, w = p[3] - p[6], p[8] - p[6]
    inner = torch.arccos((u @ w) / (u.norm() * w.norm()))
    assert out[0, 0, 7, 4].item() == pytest.approx(torch.pi - inner.item(), abs=1e-9)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"V=17"):
        gaittr_multi_input(torch.zeros(1, 4, 18, 2))
    with pytest.raises(ValueError, match=r"C>=3"):
        gaitgraph_multi_input(torch.zeros(1, 4, 17, 2))
    with pytest.raises(TypeError, match="tensor"):
        hod_multi_input(np.zeros((1, 4, 17, 2)))
    with pytest.raises(ValueError, match="no angle tuples"):
        hod_multi_input(torch.zeros(1, 4, 12, 2), "coco-no-head")


def test_integer_input_is_promoted_to_float():
    out = gaittr_multi_input(torch.ones(1, 3, 17, 2, dtype=torch.int64))
    assert out.dtype == torch.get_default_dtype()
