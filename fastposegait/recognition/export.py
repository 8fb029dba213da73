"""TorchScript and ONNX export of a model's inference path.

The exported graph is :class:`~fastposegait.recognition.export_pipeline.InferenceGraph`: the
test-time input features (where a batched tensor twin exists), the model's eval-mode forward
and its test-time augmentation, from ``poses [N, T, V, C]`` float32 to ``embeddings
[N, C_emb, P]`` float32 (not flattened; compare them as the evaluators do, mean distance over
the P parts). Batch N and length T are dynamic. What must happen before the call (frame
sampling, NumPy transforms such as ``NormalizeEmpty`` / ``RescaleCenter``) is
:class:`~fastposegait.recognition.export_pipeline.ExportPreprocessor`, and is written, step by
step, into the metadata JSON next to the exported file (docs/inference.md, "Export").

TorchScript files are made with ``torch.jit.trace``: ``torch.jit.script`` would need the
models' forward rewritten (batches as NamedTuples, dict outputs, Python-side shape checks and
error messages) and is deprecated by PyTorch. A trace records the operations of one example,
so every export checks the saved file against the eager model on inputs of other batch sizes
and lengths and refuses to keep a file that differs (:data:`PARITY_TOLERANCE`). ONNX files use
PyTorch's TorchScript-based exporter (``dynamo=False``: it needs neither ``onnxscript`` nor a
``torch.export`` of the models) and are checked with onnxruntime the same way.

Example::

    rec = GaitRecognizer.from_run("output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo")
    export_onnx(rec, "gaitgraph2.onnx")             # + gaitgraph2.onnx.json
    prep = ExportPreprocessor(rec)
    poses = np.stack([prep(seq) for seq in sequences])   # sequences of equal length T
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..config import Config
from ..data.layout import pose_requirement
from ..data.skeleton import get_joint_format
from ..errors import ExportError, OutputDirError
from .export_pipeline import (ExportPreprocessor, InferenceGraph, PipelineSplit, input_shape, preprocess,
                              split_pipeline)

__all__ = ["ExportError", "ExportResult", "ExportPreprocessor", "PARITY_TOLERANCE", "export_onnx",
           "export_torchscript", "preprocess", "metadata_path"]

logger = logging.getLogger(__name__)

#: an exported file is kept only if, on every check input, ``max |exported - eager|`` is at
#: most this times ``max(1, max |eager|)``. TorchScript files reproduce the eager float32
#: results exactly; onnxruntime's kernels differ by up to ~4e-5 of the scale, the size of
#: eager float32's own distance from a float64 run (docs/inference.md, "Export")
PARITY_TOLERANCE = 1e-4
#: ONNX opset by default (opset 17 has every operator the four models need)
DEFAULT_OPSET = 17
#: frames of the example a trace records when the test sampler takes all frames
EXAMPLE_FRAMES = 30
#: name of the metadata member inside a TorchScript file (``torch.jit.load(..., _extra_files=)``)
TORCHSCRIPT_METADATA = "fastposegait.json"
#: key of the metadata in an ONNX file's ``metadata_props``
ONNX_METADATA = "fastposegait"
#: input and output names of the exported graph
INPUT_NAME, OUTPUT_NAME = "poses", "embeddings"
ONNX_INSTALL_HINT = "pip install 'fastposegait[onnx]'"


@dataclass
class ExportResult:
    """What an export wrote and measured.

    Attributes:
        path: the exported file.
        metadata_path: the JSON next to it (also embedded in the file).
        metadata: that JSON's content.
        parity: per check input (``"N x T"``), max absolute difference exported vs eager.
        seconds: wall time of the export (tracing or conversion, saving, checks).
    """

    path: Path
    metadata_path: Path
    metadata: Dict[str, Any]
    parity: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def metadata_path(path: Union[str, Path]) -> Path:
    """The metadata JSON written next to exported file ``path`` (``model.onnx`` ->
    ``model.onnx.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


# ------------------------------------------------------------------------ public entry points


def export_torchscript(source: Any, path: Union[str, Path], config: Optional[Config] = None, *,
                       check: bool = True) -> ExportResult:
    """Trace the inference path of ``source`` and save it as a TorchScript file.

    Args:
        source: a :class:`~fastposegait.recognition.recognizer.GaitRecognizer`, or a model
            (``nn.Module``) together with its ``config``.
        path: the file to write (``.pt``); the metadata goes to ``<path>.json`` and into the
            file (``_extra_files`` member ``fastposegait.json``).
        config: the model's resolved config, when ``source`` is a model.
        check: compare the saved file with the eager model on inputs of other batch sizes and
            lengths (raise :class:`ExportError` beyond :data:`PARITY_TOLERANCE`).

    The file is traced on the model's device: load it with ``map_location`` to that device
    (the feature builders' index tables are recorded as constants there).
    """
    start = time.perf_counter()
    job = _ExportJob(source, config, path, "torchscript")
    with job.eval_mode(), torch.no_grad(), _quiet_tracing():
        traced = torch.jit.trace(job.graph, (job.example,), check_trace=False)
    metadata = job.metadata()
    with _atomic(job.path) as tmp:
        with _quiet_tracing():
            torch.jit.save(traced, str(tmp), _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})
            loaded = torch.jit.load(str(tmp), map_location=job.device) if check else None
        if loaded is not None:
            job.check(lambda x: loaded(x))
    return job.finish(metadata, start)


def export_onnx(source: Any, path: Union[str, Path], config: Optional[Config] = None, *,
                opset: int = DEFAULT_OPSET, check: bool = True) -> ExportResult:
    """Export the inference path of ``source`` to ONNX (input ``poses``, output ``embeddings``;
    dynamic axes ``batch`` and ``frames``). Needs the ``onnx`` package (``pip install
    'fastposegait[onnx]'``); with onnxruntime installed and ``check``, the file is compared
    with the eager model as in :func:`export_torchscript`. Arguments as there, plus ``opset``.
    """
    onnx = _import_onnx()
    start = time.perf_counter()
    job = _ExportJob(source, config, path, "onnx")
    job.extra["opset"] = int(opset)
    metadata = job.metadata()
    with _atomic(job.path) as tmp:
        with job.eval_mode(), torch.no_grad(), _quiet_tracing(), _onnx_symbolics(opset):
            try:
                torch.onnx.export(
                    job.graph, (job.example,), str(tmp), dynamo=False, opset_version=int(opset),
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
                    dynamic_axes={INPUT_NAME: {0: "batch", 1: "frames"}, OUTPUT_NAME: {0: "batch"}},
                )
            except Exception as exc:  # the exporter's own errors are long and deep; keep the reason
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ExportError(f"ONNX export (opset {opset}) of {job.model_name} failed: {first}") from exc
        model_proto = onnx.load(str(tmp))
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA, json.dumps(metadata)
        onnx.checker.check_model(model_proto)
        onnx.save(model_proto, str(tmp))
        if check:
            runner = _onnxruntime_runner(tmp)
            if runner is None:
                logger.warning("onnxruntime is not installed: %s was not compared with the eager model (%s)",
                               job.path, ONNX_INSTALL_HINT)
            else:
                job.check(runner)
    return job.finish(metadata, start)


# ------------------------------------------------------------------------ the work


class _ExportJob:
    """Everything one export needs: the graph, an example input, the check inputs, metadata."""

    def __init__(self, source: Any, config: Optional[Config], path: Union[str, Path], fmt: str) -> None:
        model, config, info = _resolve(source, config)
        self.model = model
        self.config = config
        self.info = info
        self.format = fmt
        self.path = Path(path)
        self.model_name = str(config.model["model"])
        self.split: PipelineSplit = split_pipeline(config)
        self.graph = InferenceGraph(model, self.split.graph_steps)
        was_training = model.training
        self.graph.eval()  # the wrapper too: exporters restore the mode they found on it
        model.train(was_training)
        req = pose_requirement(config.model, config.evaluator.transform, "evaluator_cfg.transform", 0)
        self.joint_format = _joint_format(config, self.split)
        joints = req.joints or (get_joint_format(self.joint_format).num_joints if self.joint_format else None)
        if joints is None:
            raise ExportError(f"{self.model_name}: cannot tell the number of joints per frame from the config; "
                              "set model_cfg.joint_format or the feature transform's joint_format")
        self.raw_layout = (joints, req.channels or max(3, req.min_channels))
        frames, v, c = input_shape(self.split, *self.raw_layout, frames=EXAMPLE_FRAMES)
        self.layout = (v, c)
        self.example_frames = frames
        self.device = _device_of(model)
        self.example = _example_poses(2, frames, v, c, seed=0).to(self.device)
        other = frames + 7
        self.check_inputs = [_example_poses(n, t, v, c, seed=i + 1).to(self.device)
                             for i, (n, t) in enumerate(((3, other), (1, 1), (2, 2), (1, frames)))]
        self.parity: Dict[str, float] = {}
        self.extra: Dict[str, Any] = {}

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        was_training = self.model.training
        self.graph.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def check(self, run: Callable[[torch.Tensor], Any]) -> None:
        """Compare ``run`` (the exported file) with the eager graph; raise past the tolerance."""
        with self.eval_mode(), torch.no_grad():
            for x in [self.example, *self.check_inputs]:
                expected = self.graph(x).float().cpu()
                got = torch.as_tensor(np.asarray(_to_numpy(run(x))), dtype=torch.float32)
                label = f"{x.shape[0]} x {x.shape[1]}"
                if got.shape != expected.shape:
                    raise ExportError(f"exported {self.model_name} gives shape {list(got.shape)} for input "
                                      f"{list(x.shape)}, the eager model {list(expected.shape)}")
                diff = float((got - expected).abs().max()) if expected.numel() else 0.0
                scale = max(1.0, float(expected.abs().max()) if expected.numel() else 0.0)
                self.parity[label] = diff
                if not diff <= PARITY_TOLERANCE * scale:
                    raise ExportError(
                        f"exported {self.model_name} differs from the eager model by {diff:.3g} on an input of "
                        f"{x.shape[0]} sequences x {x.shape[1]} frames (tolerance {PARITY_TOLERANCE:g} x {scale:.3g}); "
                        "the file was not written")

    def metadata(self) -> Dict[str, Any]:
        v, c = self.layout
        emb_shape = list(self._embedding_shape())
        fmt = get_joint_format(self.joint_format) if self.joint_format else None
        return {
            "format": self.format,
            "model": self.model_name,
            "config": self.info.get("config"),
            "checkpoint": self.info.get("checkpoint"),
            "iteration": self.info.get("iteration"),
            "dataset_name": self.config.data.dataset_name,
            "metric": self.config.evaluator.metric,
            "input": {
                "name": INPUT_NAME, "layout": "[N, T, V, C]", "dtype": "float32",
                "joints": v, "channels": c, "dynamic_axes": {"0": "batch", "1": "frames"},
                "test_frames": self.example_frames if self.split.frame_sampler.mode == "fixed" else None,
                "raw_pose": {"joints": self.raw_layout[0], "channels": self.raw_layout[1],
                             "channel_names": ["x", "y", "confidence"][: self.raw_layout[1]]},
            },
            "output": {"name": OUTPUT_NAME, "layout": "[N, C, P]", "dtype": "float32", "shape": emb_shape,
                       "compare": f"{self.config.evaluator.metric} distance per part, averaged over the P parts"},
            "joint_format": fmt.name if fmt else None,
            "joint_names": list(fmt.joint_names) if fmt else None,
            "preprocessing": self.split.describe_python(),
            "in_graph": self.split.describe_graph() + ["model forward in eval mode, test-time augmentation included"],
            "seed": self.split.seed,
            "device": str(self.device),
            "torch_version": torch.__version__,
            "fastposegait_version": __version__,
            **self.extra,
        }

    def _embedding_shape(self) -> Tuple[int, ...]:
        with self.eval_mode(), torch.no_grad():
            return tuple(self.graph(self.example[:1]).shape[1:])

    def finish(self, metadata: Dict[str, Any], start: float) -> ExportResult:
        seconds = time.perf_counter() - start
        metadata = dict(metadata, parity_max_abs_diff=dict(self.parity))
        meta_path = metadata_path(self.path)
        with _atomic(meta_path) as tmp:
            tmp.write_text(json.dumps(metadata, indent=2) + "\n")
        logger.info("exported %s to %s (%s) in %.1fs; max |exported - eager| %s", self.model_name, self.path,
                    self.format, seconds, max(self.parity.values(), default=float("nan")))
        return ExportResult(self.path, meta_path, metadata, dict(self.parity), seconds)


def _resolve(source: Any, config: Optional[Config]) -> Tuple[nn.Module, Config, Dict[str, Any]]:
    """(model, config, info) of a recognizer, or of a model and its config."""
    if isinstance(source, nn.Module):
        if not isinstance(config, Config):
            raise TypeError("export: a model needs its config (fastposegait.config.load_typed_config(path)); "
                            "or pass a GaitRecognizer")
        path = getattr(config, "path", None)
        return source, config, {"config": str(path) if path else None, "checkpoint": None, "iteration": None}
    model, rec_config = getattr(source, "model", None), getattr(source, "config", None)
    if not isinstance(model, nn.Module) or not isinstance(rec_config, Config):
        raise TypeError(f"export: expected a GaitRecognizer or an nn.Module and its Config, got {type(source).__name__}")
    info = dict(getattr(source, "info", None) or {})
    return model, rec_config, info


def _joint_format(config: Config, split: PipelineSplit) -> Optional[str]:
    """The joint format of the poses: the feature builder's, else the model's."""
    for transform in split.graph_steps + split.python_steps:
        name = getattr(transform, "joint_format", None)
        if isinstance(name, str):
            return get_joint_format(name).name
    name = config.model.get("joint_format")
    return get_joint_format(name).name if isinstance(name, str) else None


def _device_of(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _example_poses(n: int, frames: int, joints: int, channels: int, seed: int) -> torch.Tensor:
    """Plausible poses ``[n, frames, joints, channels]`` in pixels (x, y; confidence in
    [0.3, 1]), with one missing joint (zeros), as pose estimators write them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, frames, joints, channels, generator=gen)
    x[..., 0] = 40 + 120 * x[..., 0]
    if channels > 1:
        x[..., 1] = 20 + 300 * x[..., 1]
    if channels > 2:
        x[..., 2] = 0.3 + 0.7 * x[..., 2]
    x[:, 0, min(3, joints - 1)] = 0
    return x


def _to_numpy(value: Any) -> np.ndarray:
    if torch.is_tensor(value):
        return value.detach().float().cpu().numpy()
    return np.asarray(value)


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence the tracer's notes about Python-side shape checks (they are constant for a
    valid input; the parity check covers other shapes) and PyTorch's TorchScript deprecation
    notices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        yield


@contextlib.contextmanager
def _onnx_symbolics(opset: int) -> Iterator[None]:
    """``aten::hypot`` (HOD angles, only tested against 0) as ``sqrt(a*a + b*b)``: ONNX has no
    hypot. Registered for the export only."""
    from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic

    def hypot(g: Any, a: Any, b: Any) -> Any:
        return g.op("Sqrt", g.op("Add", g.op("Mul", a, a), g.op("Mul", b, b)))

    register_custom_op_symbolic("aten::hypot", hypot, opset)
    try:
        yield
    finally:
        unregister_custom_op_symbolic("aten::hypot", opset)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError(f"ONNX export needs the onnx package: {ONNX_INSTALL_HINT}") from None
    return onnx


def _onnxruntime_runner(path: Path) -> Optional[Callable[[torch.Tensor], np.ndarray]]:
    try:
        import onnxruntime
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {INPUT_NAME: x.detach().cpu().numpy()})[0]


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputDirError(f"{path}: is a folder; give a file name for the export (e.g. {path}/model.pt)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise OutputDirError(f"{path}: cannot write there ({exc.strerror or exc}); choose another output path") from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a plain open() would not
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputDirError(f"{path}: cannot write the export ({exc.strerror or exc}); free space or choose "
                             "another output path") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
