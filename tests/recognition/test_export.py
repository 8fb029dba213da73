"""TorchScript and ONNX export of the four demo models: the exported files give the eager
model's embeddings for other batch sizes and lengths than the traced example, and
preprocess() + exported file give the test phase's embeddings.

Reference: the config's own NumPy transforms (``evaluator_cfg.transform``, float64) on each
sequence, collated to float32 and fed to the eager model's forward, as the test phase does.
The graph rebuilds the features with the tensor twins in float32 and onnxruntime has its own
kernels, so the comparison allows float32 rounding: ``TOL x max(1, max |reference|)``. The
models' BatchNorms get the statistics of a few walks first (:func:`calibrate`), as a trained
model has them: a freshly built GaitTR multiplies raw pixel coordinates through unit-variance
norms into attention logits of ~1e5, where float32 itself is 2e-4 of the scale away from a
float64 run, for the eager model as for the exported one. TorchScript against the eager
graph it was traced from must be exact.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from cli_helpers import REPO
from fastposegait.cli import run_cli
from fastposegait.commands import command_main
from fastposegait.config import load_typed_config
from fastposegait.data.batch import Batch
from fastposegait.data.collate import BatchCollator
from fastposegait.data.frames import frame_sampler_from_cfg
from fastposegait.data.sampler import batch_rng
from fastposegait.data.transforms import build_transforms
from fastposegait.engine.inference import embed_batch
from fastposegait.errors import FastPoseGaitError, PoseFileError
from fastposegait.modeling import build_model
from fastposegait.recognition.export import (PARITY_TOLERANCE, ExportError, ExportPreprocessor, export_onnx,
                                             export_torchscript, metadata_path, preprocess)
from fastposegait.recognition.export_pipeline import split_pipeline

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

DEMOS = ["gaitgraph1", "gaitgraph2", "gaittr", "gpgait"]
#: float32 features in the graph vs float64 NumPy features cast to float32, onnxruntime's
#: kernels: relative to the embeddings' scale (measured: at most 3e-6)
TOL = 1e-5

#: what the Python part must hold, per demo (the rest is in the graph)
PYTHON_STEPS = {"gaitgraph1": [], "gaitgraph2": ["NormalizeEmpty()"], "gaittr": [],
                "gpgait": ["RescaleCenter(center='neck', scale=225.0)"]}


def demo_config(name):
    return load_typed_config(REPO / "configs" / "demo" / f"{name}_demo.yaml")


@pytest.fixture(scope="module", params=DEMOS)
def demo(request):
    config = demo_config(request.param)
    torch.manual_seed(0)
    model = build_model(config.model)
    calibrate(model, config)
    return request.param, model, config


def calibrate(model, config):
    """Give the BatchNorms the statistics of a few walks, as training would (freshly built,
    they assume zero mean and unit variance, which raw pixel coordinates are far from), then
    switch to eval mode."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # cumulative average: one batch sets the statistics
    chain = build_transforms(config.evaluator.transform)[0]
    features = torch.from_numpy(np.stack([chain(s, None) for s in walks([20] * 8, seed=99)]).astype(np.float32))
    model.train()
    with torch.no_grad():
        model(Batch([features], torch.arange(8), [""] * 8, [""] * 8, None))
    for m in norms:
        m.momentum = 0.1
    model.eval()


def walks(lengths, seed, joints=17):
    """Pose sequences [T, 17, 3] in pixels with missing joints (zeros) and one empty frame."""
    rng = np.random.default_rng(seed)
    out = []
    for t in lengths:
        base = rng.uniform([60, 40], [140, 320], size=(1, joints, 2))
        drift = np.linspace(0, 30, t)[:, None, None] * np.array([1.0, 0.0])
        xy = base + drift + rng.normal(0, 3, size=(t, joints, 2))
        conf = rng.uniform(0.3, 1.0, size=(t, joints, 1))
        seq = np.concatenate([xy, conf], axis=-1).astype(np.float32)
        seq[rng.random((t, joints)) < 0.05] = 0  # missing joints
        seq[t // 2] = 0  # a frame without detections
        out.append(seq)
    return out


def reference(model, config, sequences):
    """The eager model on the config's NumPy transforms of each sequence (every frame used)."""
    chain = build_transforms(config.evaluator.transform)[0]
    features = np.stack([chain(s, None) for s in sequences]).astype(np.float32)
    n = len(sequences)
    with torch.no_grad():
        out = model(Batch([torch.from_numpy(features)], torch.zeros(n, dtype=torch.long), [""] * n, [""] * n, None))
    return out["inference_feat"]["embeddings"].numpy()


def python_part(config, sequences):
    """The Python steps of the cut (no frame sampling: the given frames are the input)."""
    steps = split_pipeline(config).python_steps
    out = []
    for s in sequences:
        for t in steps:
            s = t(s, None)
        out.append(np.asarray(s, np.float32))
    return np.stack(out)


def assert_close(got, want, tol=TOL):
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    diff = float(np.abs(got - want).max())
    print(f"max |diff| {diff:.3g} (scale {scale:.3g})")
    assert diff <= tol * scale, f"max |diff| {diff:.3g} > {tol:g} x {scale:.3g}"


# (batch size, frames): two batch sizes and two lengths, neither the traced example's 2 x 30
SHAPES = [(3, 23), (1, 41)]


def test_torchscript_matches_eager_for_other_sizes_and_lengths(demo, tmp_path):
    name, model, config = demo
    result = export_torchscript(model, tmp_path / f"{name}.pt", config)
    loaded = torch.jit.load(str(tmp_path / f"{name}.pt"))
    for i, (n, t) in enumerate(SHAPES):
        seqs = walks([t] * n, seed=i)
        want = reference(model, config, seqs)
        with torch.no_grad():
            got = loaded(torch.from_numpy(python_part(config, seqs))).numpy()
        assert_close(got, want)
    assert result.parity and max(result.parity.values()) == 0.0  # the trace replays the eager graph exactly
    assert "1 x 1" in result.parity and "3 x 37" in result.parity  # checked far from the example
    assert not model.training


def test_onnx_matches_eager_with_onnxruntime(demo, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    name, model, config = demo
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, path, config)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["poses"]
    assert session.get_inputs()[0].shape[:2] == ["batch", "frames"]
    for i, (n, t) in enumerate(SHAPES):
        seqs = walks([t] * n, seed=10 + i)
        got = session.run(None, {"poses": python_part(config, seqs)})[0]
        assert_close(got, reference(model, config, seqs))


def test_preprocess_and_exported_give_the_test_phase_embeddings(demo, tmp_path):
    """The test phase: frame sampling with each sequence's key, transforms, collation,
    embed_batch. The export side: ExportPreprocessor with the same keys, then the file."""
    name, model, config = demo
    export_torchscript(model, tmp_path / "m.pt", config, check=False)
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    seqs = walks([25, 44, 33], seed=7)  # 25 < the 30-frame window of the GaitGraph configs
    keys = [4, 0, 9]
    evaluator = config.evaluator
    collator = BatchCollator(frame_sampler_from_cfg(evaluator.sampler.as_mapping()),
                             build_transforms(evaluator.transform))
    batch = collator([[s] for s in seqs], np.zeros(3, np.int64), [""] * 3, [""] * 3,
                     [batch_rng(evaluator.seed, 1, 0, k) for k in keys])
    with torch.no_grad():
        want = embed_batch(model, batch, collator.time_axes).numpy()
    prep = ExportPreprocessor(config)
    inputs = prep.batch(seqs, keys)
    with torch.no_grad():
        if len({x.shape for x in inputs}) == 1:  # fixed-length windows: one stacked call
            got = loaded(torch.from_numpy(np.stack(inputs))).numpy()
        else:  # every frame: one call per length
            got = np.concatenate([loaded(torch.from_numpy(x[None])).numpy() for x in inputs])
    assert_close(got, want)
    assert [repr(t) for t in prep.split.python_steps] == PYTHON_STEPS[name]
    np.testing.assert_array_equal(preprocess(seqs[0], config, key=4), inputs[0])


def test_metadata_next_to_the_file_and_inside_it(tmp_path):
    config = demo_config("gaitgraph2")
    torch.manual_seed(0)
    model = build_model(config.model)
    result = export_torchscript(model, tmp_path / "gg2.pt", config)
    meta = json.loads(metadata_path(tmp_path / "gg2.pt").read_text())
    assert meta == result.metadata
    assert meta["model"] == "GaitGraph2" and meta["metric"] == "cos" and meta["joint_format"] == "coco"
    assert meta["input"]["layout"] == "[N, T, V, C]" and meta["input"]["joints"] == 17
    assert meta["input"]["channels"] == 3 and meta["input"]["test_frames"] == 30
    assert meta["output"]["shape"] == [384, 1]  # 3 x 128: original | reversed | flipped
    assert meta["preprocessing"][0].startswith("frames: 30 frames") and meta["preprocessing"][1] == "NormalizeEmpty()"
    assert meta["in_graph"][0] == "GaitGraphMultiInput(joint_format='coco')"
    extra = {"fastposegait.json": ""}
    torch.jit.load(str(tmp_path / "gg2.pt"), _extra_files=extra)
    inside = json.loads(extra["fastposegait.json"])
    assert inside["model"] == "GaitGraph2" and inside["preprocessing"] == meta["preprocessing"]
    assert model.training  # the caller's mode is restored


def test_onnx_metadata_props(tmp_path):
    onnx = pytest.importorskip("onnx")
    config = demo_config("gaittr")
    torch.manual_seed(0)
    result = export_onnx(build_model(config.model), tmp_path / "tr.onnx", config, check=False)
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "tr.onnx")).metadata_props}
    meta = json.loads(props["fastposegait"])
    assert meta["format"] == "onnx" and meta["opset"] == 17 and meta["model"] == "GaitTR"
    assert meta["preprocessing"][0].startswith("frames: all frames")
    assert result.parity == {}


class LengthBakingModel(torch.nn.Module):
    """A model whose trace is wrong for other lengths: it turns T into a Python number."""

    def forward(self, inputs):
        x = inputs[0][0]  # [N, C, T, V, 1]
        frames = float(x.shape[2])
        return {"inference_feat": {"embeddings": x.mean(dim=(2, 3, 4)).unsqueeze(-1) * frames}}


def test_a_trace_that_is_wrong_for_other_lengths_is_refused(tmp_path):
    config = demo_config("gaittr")
    with pytest.raises(ExportError, match="differs from the eager model"):
        export_torchscript(LengthBakingModel(), tmp_path / "bad.pt", config)
    assert not (tmp_path / "bad.pt").exists() and not metadata_path(tmp_path / "bad.pt").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_onnx_without_the_package_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    config = demo_config("gaitgraph1")
    with pytest.raises(ExportError, match=r"pip install 'fastposegait\[onnx\]'"):
        export_onnx(build_model(config.model), tmp_path / "x.onnx", config)
    argv = ["--cfgs", str(REPO / "configs/demo/gaitgraph1_demo.yaml"), "--iter", "0", "--format", "onnx",
            "-o", str(tmp_path / "x.onnx")]
    assert run_cli(command_main("export"), argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: ONNX export needs the onnx package: pip install 'fastposegait[onnx]'"]


def test_cli_writes_the_file_and_its_metadata(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["--cfgs", str(REPO / "configs/demo/gaittr_demo.yaml"), "--iter", "0", "--format", "torchscript",
            "-o", str(tmp_path)]
    assert run_cli(command_main("export"), argv) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'GaitTR-demo.pt'}" in out
    meta = json.loads((tmp_path / "GaitTR-demo.pt.json").read_text())
    assert meta["model"] == "GaitTR" and meta["checkpoint"] is None and meta["iteration"] == 0
    assert meta["config"].endswith("gaittr_demo.yaml")
    loaded = torch.jit.load(str(tmp_path / "GaitTR-demo.pt"))
    assert tuple(loaded(torch.rand(2, 9, 17, 3) * 100).shape) == (2, 128, 1)


@pytest.mark.parametrize("argv, message", [
    (["--run", "nowhere", "--format", "torchscript", "-o", "x.pt"], "nowhere: does not exist"),
    (["--run", "r", "--checkpoint", "c.pt", "--format", "onnx", "-o", "x.onnx"], "--checkpoint goes with --cfgs"),
    (["--cfgs", "c.yaml", "--checkpoint", "c.pt", "--iter", "3", "--format", "onnx", "-o", "x"], "not both"),
    (["--cfgs", "c.yaml", "--format", "torchscript", "--opset", "18", "-o", "x"], "--opset applies to"),
])
def test_cli_errors_are_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(command_main("export"), argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 17, 3)), "sequence 2: has no frames"),
    (np.full((5, 17, 3), np.nan), "sequence 2: holds NaN"),
    (np.zeros((5, 17)), "sequence 2: expected a real array"),
])
def test_preprocess_rejects_bad_sequences(bad, message):
    prep = ExportPreprocessor(demo_config("gpgait"))
    with pytest.raises(PoseFileError, match=message):
        prep.batch([np.ones((4, 17, 3)), np.ones((4, 17, 3)), bad])
    assert issubclass(PoseFileError, FastPoseGaitError)


def test_tolerance_is_what_the_docs_state():
    assert PARITY_TOLERANCE == 1e-4
