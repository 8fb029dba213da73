"""The model contract (fastposegait/modeling/base_model.py), checked for every registered model.

Parametrised over every canonical name in ``MODELS`` (aliases excluded): a model registered
without an entry in :data:`SPECS` fails here, so a new model must add one (a tiny
``model_cfg``, the config whose losses it trains with, the embedding shape it promises).

For each model:

* it builds from ``model_cfg`` alone: no file is opened, no accelerator is queried, no process
  group exists; the parameters are float32 on the CPU and a fresh model is in training mode;
* in eval mode (float64) the embeddings are deterministic, equal for two builds under the same
  seed, and batch independent: each sequence alone gives exactly its row of the batch;
* ``inference_feat['embeddings']`` is ``[N, C, P]`` with the (C, P) of the table;
  ``visual_summary`` keys are ``image/...`` or ``scalar/...``;
* ``training_feat`` has one entry per ``loss_cfg`` prefix of the model's CASIA-B config, whose
  arguments are exactly those of the loss's ``forward``; the losses log the listed values;
* one optimisation step (the config's solver and learning rate) on a fixed batch, with
  BatchNorm and dropout frozen so both evaluations see one function, lowers the loss;
* one backward in training mode gives every trainable parameter a finite, non-zero gradient
  (except the parameters the table lists, with the reason);
* the state dict round-trips through ``torch.save``/``torch.load``: a differently seeded model
  that loads it has the same tensors and gives bit-identical embeddings.

Model-specific behaviour (reference parameter counts, TTA, packed batches, layer maths) stays
in the per-model files.
"""
from __future__ import annotations

import builtins
import functools
import inspect
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Optional, Set, Tuple

import numpy as np
import pytest
import torch
from torch import nn

from fastposegait.config import load_config
from fastposegait.data.transforms import build_transforms
from fastposegait.modeling import build_model, count_parameters
from fastposegait.modeling.layers.resgcn import ResGCNModule
from fastposegait.modeling.losses import LossAggregator
from fastposegait.registry import LOSSES, MODELS

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Spec:
    """What the contract needs to know about one model."""

    #: a narrow ``model_cfg`` (seconds to build and run on a CPU)
    model_cfg: Dict[str, Any]
    #: the config whose transforms build the inputs and whose ``loss_cfg`` / ``optimizer_cfg``
    #: train the model (the CASIA-B config; the demo config for a model without one)
    config: str
    #: ``(C, P)`` of ``inference_feat['embeddings']`` in eval mode
    embedding: Tuple[int, int]
    #: the values the losses log (``scalar/<prefix>/<name>``); empty for a model without losses
    logged: FrozenSet[str]
    #: the parameters that get a zero gradient from the freshly initialised model, as a
    #: function of the model (default: none); with non-zero BatchNorm scales every trainable
    #: parameter must get one
    zero_gradient_at_init: Callable[[nn.Module], Set[str]] = lambda model: set()
    #: False for a parameter-free model (nothing to train: no losses, no step)
    trainable: bool = True
    #: frames of the raw walks a training batch is built from (None: ``RAW_FRAMES``); a CNN on
    #: rendered maps costs far more per frame than a graph network
    raw_frames: Optional[int] = None


def behind_zero_initialised_bn_up(model: nn.Module) -> Set[str]:
    """ResGCN's ``zero_init_last_bn`` (docs/models.md, Initialisation) zeroes the scale of each Bottleneck's last
    BatchNorm, so a fresh Bottleneck outputs its residual path: the layers before its ``bn_up``
    (and the module's edge importance, used only by the spatial block) get a zero gradient until
    that scale moves. Everything else, ``bn_up`` itself and the residual convolutions included,
    gets one."""
    names = set()
    for module_name, module in model.named_modules():
        if not isinstance(module, ResGCNModule):
            continue
        for block_name in ("scn", "tcn"):
            bn_up = getattr(getattr(module, block_name), "bn_up", None)
            if bn_up is None or bool(bn_up.weight.any()):
                continue
            for name, _ in getattr(module, block_name).named_parameters():
                if name.split(".")[0] not in ("bn_up", "residual"):
                    names.add(f"{module_name}.{block_name}.{name}")
            if block_name == "scn":
                names.add(f"{module_name}.edge")
    return names


SPECS: Dict[str, Spec] = {
    "GaitGraph1": Spec(
        model_cfg={"model": "GaitGraph1", "joint_format": "coco", "input_num": 1, "reduction": 4,
                   "block": "Bottleneck", "input_branch": [3, 16, 8], "main_stream": [8, 16, 32], "num_class": 16,
                   "tta": True},
        config="configs/gaitgraph1/gaitgraph1_phase1.yaml",
        embedding=(16, 1),  # mean of the sequence's and its reversal's normalised embeddings
        logged=frozenset({"scalar/SupConLoss/loss"}),
        zero_gradient_at_init=behind_zero_initialised_bn_up,
    ),
    "GaitGraph2": Spec(
        model_cfg={"model": "GaitGraph2", "joint_format": "coco", "input_num": 3, "reduction": 4,
                   "block": "Bottleneck", "input_branch": [5, 16, 8], "main_stream": [8, 16, 32], "num_class": 16,
                   "tta": True},
        config="configs/gaitgraph2/gaitgraph2.yaml",
        embedding=(3 * 16, 1),  # original | reversed | flipped
        logged=frozenset({"scalar/SupConLoss/loss"}),
        zero_gradient_at_init=behind_zero_initialised_bn_up,
    ),
    "GaitTR": Spec(
        model_cfg={"model": "GaitTR", "in_channels": [10, 32, 32], "num_class": 16, "joint_format": "coco"},
        config="configs/gaittr/gaittr.yaml",
        embedding=(16, 1),
        logged=frozenset({"scalar/triplet/hard_loss"}),
    ),
    "gpgait": Spec(
        model_cfg={"model": "gpgait", "in_channels": [2, 8, 8, 16], "num_class": 6, "share_num": 1},
        config="configs/gpgait/gpgait.yaml",
        embedding=(16, 19),  # 8 pose + 8 bone + 3 angle parts
        logged=frozenset({"scalar/triplet/hard_loss", "scalar/softmax/loss", "scalar/softmax/accuracy"}),
    ),
    "DeepGaitV2": Spec(
        model_cfg={"model": "DeepGaitV2", "SeparateBNNecks": {"class_num": 6},
                   "Backbone": {"in_channels": 2, "mode": "p3d", "channels": [8, 8, 16, 16], "layers": [1, 1, 1, 1]}},
        config="configs/skeletongait/skeletongait_CCPG.yaml",
        raw_frames=12,
        embedding=(16, 16),  # FC features (channels[2]) x 16 horizontal strips
        logged=frozenset({"scalar/triplet/loss", "scalar/triplet/hard_loss", "scalar/triplet/loss_num",
                          "scalar/triplet/mean_dist", "scalar/softmax/loss", "scalar/softmax/accuracy"}),
    ),
    "GPGait_PlusPlus": Spec(
        model_cfg={"model": "GPGait_PlusPlus", "in_channels": [2, 8, 8, 8, 16], "num_class": 6, "share_num": 3,
                   "mask": True},
        config="configs/gpgait++/gpgait++.yaml",
        embedding=(16, 19),  # 8 pose + 8 bone + 3 angle parts
        logged=frozenset({"scalar/triplet/hard_loss", "scalar/softmax/loss", "scalar/softmax/accuracy"}),
    ),
    "RawJointsNN": Spec(
        model_cfg={"model": "RawJointsNN", "joint_format": "coco"},
        config="configs/demo/raw_joints_nn.yaml",
        embedding=(4 * 17, 1),  # mean and std of normalised (x, y) per joint
        logged=frozenset(),
        trainable=False,
    ),
}

CANONICAL = sorted({MODELS.canonical(name) for name in MODELS.names()})
N = 8  # batch size: 4 subjects x 2 sequences
LABELS = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
RAW_FRAMES = 64  # enough for every config's training crops (GaitGraph1: two 60-frame views)
EVAL_FRAMES = 24


def spec_of(name: str) -> Spec:
    if name not in SPECS:
        pytest.fail(f"model {name!r} is registered but has no entry in SPECS of {Path(__file__).name}: add a tiny "
                    "model_cfg, its config, its embedding shape and the values its losses log")
    return SPECS[name]


def config_of(spec: Spec) -> Dict[str, Any]:
    return _load(spec.config)


@functools.lru_cache(maxsize=None)
def _load(path: str) -> Dict[str, Any]:
    return load_config(REPO / path)


def raw_walks(n: int, frames: int, seed: int) -> np.ndarray:
    """``[n, T, 17, 3]`` pixel poses (x, y, confidence) around (100, 200), as a pose file holds."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, frames, 17, 3)) * [15, 40, 0.2] + [100, 200, 0.8]


def batch(spec: Spec, training: bool, n: int = N, seed: int = 0) -> torch.Tensor:
    """One modality's batch, built from raw walks by the config's own transform chain
    (``trainer_cfg`` with its augmentations under a seeded generator, or ``evaluator_cfg``);
    built once per argument set (rendering skeleton maps is the slow part), a fresh copy each call."""
    frames = (spec.raw_frames or RAW_FRAMES) if training else EVAL_FRAMES
    return _batch(spec.config, training, n, seed, frames).clone()


@functools.lru_cache(maxsize=None)
def _batch(config: str, training: bool, n: int, seed: int, frames: int) -> torch.Tensor:
    cfg = _load(config)
    section = cfg["trainer_cfg" if training else "evaluator_cfg"]
    (chain,) = build_transforms(section["transform"])
    raw = raw_walks(n, frames, seed)
    out = [chain(walk, np.random.default_rng([seed, i])) for i, walk in enumerate(raw)]
    return torch.from_numpy(np.stack(out)).float()


def run(model: nn.Module, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, Any]:
    return model(([x], labels, None, None, None))


def embeddings(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return run(model, x)["inference_feat"]["embeddings"]


def seeded_model(spec: Spec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(spec.model_cfg)


def freeze_stochastic_layers(model: nn.Module) -> nn.Module:
    """Training mode (the training forward path) with BatchNorm on its running statistics and
    dropout off, so the model is one fixed function of its parameters."""
    model.train()
    for m in model.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)):
            m.eval()
    return model


def randomise_batchnorm(model: nn.Module, seed: int) -> None:
    """Non-zero BatchNorm scales and shifts: ResGCN zero-initialises the last BatchNorm of each
    block on purpose, which would hide whether the layers before it reach the loss."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def losses_of(spec: Spec) -> LossAggregator:
    return LossAggregator(config_of(spec)["loss_cfg"])


# ------------------------------------------------------------------------------------------


def test_every_spec_is_a_registered_canonical_name():
    assert set(SPECS) <= set(CANONICAL), "SPECS lists a model that is not registered (or an alias)"
    assert len(CANONICAL) >= 5


@pytest.mark.parametrize("name", CANONICAL)
def test_builds_from_model_cfg_alone(name, monkeypatch):
    spec = spec_of(name)
    MODELS.get(name)  # the built-in modules are imported before the guards below

    def no_files(*args, **kwargs):
        raise AssertionError(f"building {name} opened a file: {args[:1]}")

    def no_device(*args, **kwargs):
        raise AssertionError(f"building {name} queried an accelerator")

    monkeypatch.setattr(builtins, "open", no_files)
    monkeypatch.setattr(torch.cuda, "is_available", no_device)
    monkeypatch.setattr(torch.cuda, "device_count", no_device)
    model = build_model(dict(spec.model_cfg))
    monkeypatch.undo()
    assert isinstance(model, nn.Module) and model.training
    assert not torch.distributed.is_initialized()
    assert type(model) is MODELS.get(name)
    assert model.model_cfg == spec.model_cfg  # the section, kept as given
    params = list(model.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)
    assert (count_parameters(model) > 0) == spec.trainable
    assert all(b.device.type == "cpu" for b in model.buffers())


@pytest.mark.parametrize("name", CANONICAL)
def test_eval_is_deterministic_and_batch_independent_in_float64(name):
    spec = spec_of(name)
    model = seeded_model(spec).double().eval()
    x = batch(spec, training=False, n=4, seed=1).double()
    first = embeddings(model, x)
    assert first.dtype == torch.float64
    assert torch.equal(first, embeddings(model, x))  # the same call twice
    assert torch.equal(first, embeddings(seeded_model(spec).double().eval(), x))  # the same seed, a new build
    for i in range(len(x)):  # each sequence alone is its row of the batch
        torch.testing.assert_close(embeddings(model, x[i:i + 1]), first[i:i + 1], rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(embeddings(model, x.flip(0)), first.flip(0), rtol=1e-10, atol=1e-13)
    # and the rows are not all the same vector (a constant model would pass the lines above)
    spread = (first - first.mean(0, keepdim=True)).abs().amax()
    assert spread > 1e-6 * first.abs().amax() > 0


@pytest.mark.parametrize("name", CANONICAL)
def test_embeddings_are_n_c_p_and_summaries_are_prefixed(name):
    spec = spec_of(name)
    model = seeded_model(spec)
    for training in (True, False):
        model.train(training)
        x = batch(spec, training=training)
        with torch.no_grad():
            out = run(model, x, LABELS)
        assert set(out) == {"training_feat", "visual_summary", "inference_feat"}
        emb = out["inference_feat"]["embeddings"]
        assert emb.dim() == 3 and emb.shape[0] == N, (training, tuple(emb.shape))
        if not training:
            assert tuple(emb.shape) == (N, *spec.embedding)
        assert torch.isfinite(emb).all()
        assert all(key.startswith(("image/", "scalar/")) for key in out["visual_summary"])


@pytest.mark.parametrize("name", CANONICAL)
def test_training_feat_fits_the_configured_losses(name):
    spec = spec_of(name)
    cfg = config_of(spec)
    model = seeded_model(spec)
    out = run(model, batch(spec, training=True), LABELS)
    feat = out["training_feat"]
    if not spec.trainable:
        assert feat == {} and spec.logged == frozenset()
        return
    entries = {e["log_prefix"]: e for e in cfg["loss_cfg"]}
    assert set(feat) == set(entries)
    for prefix, args in feat.items():
        forward = LOSSES.get(entries[prefix]["type"]).forward
        expected = [p for p in inspect.signature(forward).parameters if p != "self"]
        assert sorted(args) == sorted(expected), (prefix, entries[prefix]["type"])
        assert args["labels"] is LABELS
        for key, value in args.items():
            assert value.shape[0] == N, (prefix, key)
    total, info = losses_of(spec)(feat)
    assert set(info) == spec.logged
    assert total.dim() == 0 and torch.isfinite(total) and total.item() > 0


@pytest.mark.parametrize("name", CANONICAL)
def test_one_step_lowers_the_loss_on_a_fixed_batch(name):
    spec = spec_of(name)
    if not spec.trainable:
        model = seeded_model(spec)
        assert list(model.parameters()) == [] and run(model, batch(spec, training=True), LABELS)["training_feat"] == {}
        return
    cfg = config_of(spec)
    model = freeze_stochastic_layers(seeded_model(spec))
    losses = losses_of(spec)
    x = batch(spec, training=True, seed=3)
    opt_cfg = cfg["optimizer_cfg"]
    solver = getattr(torch.optim, opt_cfg["solver"])
    opt = solver(model.parameters(), lr=opt_cfg["lr"], weight_decay=opt_cfg.get("weight_decay", 0.0))

    def loss_value():
        return losses(run(model, x, LABELS)["training_feat"])[0]

    before = loss_value()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_value()
        again = loss_value()
    assert torch.equal(after, again)  # one fixed function: the decrease is the step's doing
    assert after.item() < before.item() - 1e-3 * max(1.0, abs(before.item())), (before.item(), after.item())


@pytest.mark.parametrize("name", CANONICAL)
@pytest.mark.parametrize("init", ["fresh", "batchnorm_randomised"])
def test_every_trainable_parameter_gets_a_finite_non_zero_gradient(name, init):
    """One backward in training mode: the fresh model's parameters without a gradient are exactly
    the documented ones; with non-zero BatchNorm scales there are none."""
    spec = spec_of(name)
    model = seeded_model(spec).train()
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not spec.trainable:
        assert named == {}
        return
    if init == "fresh":
        expected = spec.zero_gradient_at_init(model)
        assert expected <= set(named), "zero_gradient_at_init names a parameter the model does not have"
    else:
        randomise_batchnorm(model, seed=5)
        expected = set()
    total, _ = losses_of(spec)(run(model, batch(spec, training=True, seed=4), LABELS)["training_feat"])
    total.backward()
    for pname, p in named.items():
        assert p.grad is not None, f"{pname}: no gradient (not used by the training forward?)"
        assert torch.isfinite(p.grad).all(), f"{pname}: non-finite gradient"
    without = sorted(n for n, p in named.items() if not p.grad.abs().sum() > 0)
    assert without == sorted(expected), f"parameters with a zero gradient: {without}"


@pytest.mark.parametrize("name", CANONICAL)
def test_state_dict_round_trips(name):
    spec = spec_of(name)
    source = seeded_model(spec, seed=0)
    randomise_batchnorm(source, seed=6)
    for m in source.modules():  # non-trivial running statistics travel too
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, map_location="cpu", weights_only=True)
    persistent = {n for n, _ in source.named_parameters()} | {
        n for n, _ in source.named_buffers() if n.rsplit(".", 1)[-1] not in getattr(
            _owner(source, n), "_non_persistent_buffers_set", set())}
    assert set(state) == persistent
    target = seeded_model(spec, seed=1).eval()
    x = batch(spec, training=False, n=3, seed=2)
    source.eval()
    if spec.trainable:
        assert not torch.equal(embeddings(target, x), embeddings(source, x))  # different weights before loading
    result = target.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert torch.equal(embeddings(target, x), embeddings(source, x))


def _owner(model: nn.Module, name: str) -> nn.Module:
    module = model
    for part in name.split(".")[:-1]:
        module = getattr(module, part)
    return module
