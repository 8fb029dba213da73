"""One forward and backward of every demo model on the CPU and on CUDA, with the same weights
and inputs, in float32: the outputs and gradients must agree.

For each demo config (``configs/demo/*.yaml``, globbed) shrunk by the narrow widths of
``cli_helpers.TINY``: the model is built under a fixed seed, its BatchNorm scales and shifts are
randomised (ResGCN zero-initialises some on purpose, which would hide the layers behind them),
dropout is switched off (its random masks differ between devices), and

* a training batch (the config's own training transforms, applied once on the CPU) goes through
  the training forward, the config's losses and ``backward``: the training embeddings, the loss
  and every parameter's gradient are compared;
* an evaluation batch goes through the eval forward (with the model's test-time augmentation):
  the embeddings are compared.

Tolerances (each tensor against the reference, relative to the reference tensor's largest
absolute value): ``FORWARD_TOL`` for outputs and the loss, ``GRADIENT_TOL`` for gradients.
Both devices compute in float32 with TF32 switched off, so the differences come from the order
of summation only (other kernels); gradients pass through more reductions (BatchNorm's batch
statistics, the losses' pairwise distances) and get the looser bound: the supervised
contrastive loss of GaitGraph divides its logits by a temperature of 0.01, which amplifies
rounding, and its float32 gradients differ from float64 by up to 8e-3 (GaitGraph2; GaitTR and
GPGait up to 8e-4), measured on this test's batches; the forward outputs by up to 3.3e-6. A
CPU-vs-CUDA difference is at most the sum of two such float32 errors. The CUDA test is skipped
without CUDA; the comparison itself runs in the fast lane on CPU float32 against CPU float64,
whose differences are of the same nature (float32 rounding), so the helper cannot rot and the
tolerances are known to hold with room (see ``test_cpu_float32_matches_float64``).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from cli_helpers import REPO, TINY
from fastposegait.config import load_config
from fastposegait.data.transforms import build_transforms
from fastposegait.modeling import build_model
from fastposegait.modeling.losses import LossAggregator

#: outputs and the loss: largest difference / largest reference value
FORWARD_TOL = 1e-4
#: gradients: largest difference / largest reference value, per parameter
GRADIENT_TOL = 3e-2
#: a gradient's scale is at least this fraction of the model's largest gradient
GRADIENT_FLOOR = 1e-2

DEMOS = sorted((REPO / "configs" / "demo").glob("*.yaml"))
LABELS = [0, 0, 1, 1, 2, 2, 3, 3]  # 4 subjects x 2 sequences: every loss has positives and negatives
TRAIN_FRAMES = 32
EVAL_FRAMES = 24


def demo_config(path: Path) -> Dict[str, Any]:
    """The demo config with its model's tiny overrides."""
    model = yaml.safe_load(path.read_text())["model_cfg"]["model"]
    return load_config(path, TINY[model]["overrides"])


def _batch(cfg: Dict[str, Any], section: str, frames: int, seed: int) -> torch.Tensor:
    """``len(LABELS)`` raw walks (pixel x, y and a confidence) through the section's transforms,
    with a seeded generator per sequence, as float64 (cast by the caller)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(len(LABELS), frames, 17, 3)) * [15, 40, 0.2] + [100, 200, 0.8]
    (chain,) = build_transforms(cfg[section]["transform"])
    return torch.from_numpy(np.stack([chain(walk, np.random.default_rng([seed, i])) for i, walk in enumerate(raw)]))


def reference_model(cfg: Dict[str, Any], seed: int = 0) -> nn.Module:
    """The demo model under a fixed seed, with randomised BatchNorm affine parameters."""
    torch.manual_seed(seed)
    model = build_model(dict(cfg["model_cfg"]))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


@contextmanager
def no_tf32() -> Iterator[None]:
    """Full float32 matmuls and convolutions on CUDA (cuDNN allows TF32 by default)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def forward_backward(cfg: Dict[str, Any], model: nn.Module, device: str, dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    """A copy of ``model`` on ``device``/``dtype``: training forward + losses + backward, then an
    eval forward. Returns every compared tensor, on the CPU in float64, by name."""
    net = copy.deepcopy(model).to(device=device, dtype=dtype)
    net.train()
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    labels = torch.tensor(LABELS, device=device)
    x = _batch(cfg, "trainer_cfg", TRAIN_FRAMES, seed=3).to(device=device, dtype=dtype)
    out = net(([x], labels, None, None, None))
    result: Dict[str, torch.Tensor] = {"train/embeddings": out["inference_feat"]["embeddings"]}
    if out["training_feat"]:
        losses = LossAggregator(cfg["loss_cfg"]).to(device=device, dtype=dtype)
        loss, _ = losses(out["training_feat"])
        loss.backward()
        result["train/loss"] = loss
        for name, p in net.named_parameters():
            if p.grad is not None:
                result[f"grad/{name}"] = p.grad
    net.eval()
    with torch.no_grad():
        x = _batch(cfg, "evaluator_cfg", EVAL_FRAMES, seed=4).to(device=device, dtype=dtype)
        result["eval/embeddings"] = net(([x], None, None, None, None))["inference_feat"]["embeddings"]
    return {k: v.detach().to("cpu", torch.float64) for k, v in result.items()}


def relative_differences(got: Dict[str, torch.Tensor], ref: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Per tensor: largest absolute difference / largest absolute reference value. A gradient is
    measured against at least ``GRADIENT_FLOOR`` times the model's largest gradient: a
    parameter whose true gradient is zero (a convolution bias followed by BatchNorm) gets pure
    rounding noise, of the size of the other gradients' rounding."""
    if got.keys() != ref.keys():
        raise AssertionError(f"different tensors: only in one {sorted(got.keys() ^ ref.keys())}")
    grads = [r.abs().max() for k, r in ref.items() if k.startswith("grad/") and r.numel()]
    grad_floor = GRADIENT_FLOOR * float(max(grads)) if grads else 0.0
    out = {}
    for name, r in ref.items():
        g = got[name]
        if g.shape != r.shape:
            raise AssertionError(f"{name}: shape {tuple(g.shape)} vs {tuple(r.shape)}")
        if not torch.isfinite(g).all() or not torch.isfinite(r).all():
            raise AssertionError(f"{name}: non-finite values")
        if not r.numel():
            out[name] = 0.0
            continue
        scale = max(float(r.abs().max()), grad_floor if name.startswith("grad/") else 0.0)
        diff = float((g - r).abs().max())
        out[name] = diff / scale if scale > 0 else diff
    return out


def check_equal(got: Dict[str, torch.Tensor], ref: Dict[str, torch.Tensor],
                forward_tol: float = FORWARD_TOL, gradient_tol: float = GRADIENT_TOL) -> Dict[str, float]:
    """Raise naming every tensor past its tolerance; return the relative differences."""
    diffs = relative_differences(got, ref)
    bad = [f"{k}: {v:.2e} > {gradient_tol if k.startswith('grad/') else forward_tol:.0e}" for k, v in diffs.items()
           if v > (gradient_tol if k.startswith("grad/") else forward_tol)]
    if bad:
        raise AssertionError("; ".join(bad))
    return diffs


def _ids(paths: List[Path]) -> List[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("config", DEMOS, ids=_ids(DEMOS))
def test_cpu_float32_matches_float64(config):
    cfg = demo_config(config)
    model = reference_model(cfg)
    ref = forward_backward(cfg, model, "cpu", torch.float64)
    got = forward_backward(cfg, model, "cpu", torch.float32)
    diffs = check_equal(got, ref)
    assert "eval/embeddings" in diffs and "train/embeddings" in diffs
    if any(p.requires_grad for p in model.parameters()):
        assert "train/loss" in diffs and any(k.startswith("grad/") for k in diffs)
        assert any(ref[k].abs().max() > 0 for k in diffs if k.startswith("grad/"))
    # the comparison is sharp: the largest gradient off by 10% of its scale, or the embeddings
    # off by 1e-3 of theirs, is caught
    grads = [k for k in ref if k.startswith("grad/")]
    cases = [("eval/embeddings", 1e-3)]
    if grads:
        cases.append((max(grads, key=lambda k: float(ref[k].abs().max())), 0.1))
    for name, size in cases:
        broken = dict(got, **{name: got[name] + size * ref[name].abs().max()})
        with pytest.raises(AssertionError, match=name.replace(".", r"\.")):
            check_equal(broken, ref)


def test_check_equal_rejects_mismatched_tensors():
    ref = {"eval/embeddings": torch.ones(2, 3), "grad/w": torch.zeros(4)}
    assert check_equal(dict(ref), ref) == {"eval/embeddings": 0.0, "grad/w": 0.0}
    with pytest.raises(AssertionError, match="shape"):
        check_equal({"eval/embeddings": torch.ones(3, 2), "grad/w": torch.zeros(4)}, ref)
    with pytest.raises(AssertionError, match="only in one"):
        check_equal({"eval/embeddings": torch.ones(2, 3)}, ref)
    with pytest.raises(AssertionError, match="grad/w"):  # a zero reference needs zeros
        check_equal({"eval/embeddings": torch.ones(2, 3), "grad/w": torch.full((4,), 0.1)}, ref)
    with pytest.raises(AssertionError, match="non-finite"):
        check_equal({"eval/embeddings": torch.full((2, 3), float("nan")), "grad/w": torch.zeros(4)}, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("config", DEMOS, ids=_ids(DEMOS))
def test_cuda_matches_cpu(config):
    cfg = demo_config(config)
    model = reference_model(cfg)
    with no_tf32():
        ref = forward_backward(cfg, model, "cpu", torch.float32)
        got = forward_backward(cfg, model, "cuda", torch.float32)
    check_equal(got, ref)

