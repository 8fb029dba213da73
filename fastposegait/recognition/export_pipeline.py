"""The test phase's data pipeline, cut in two for export: what runs in Python before the
exported model, and what runs inside it.

A config's test pipeline for one sequence ``[T, V, C]`` is: frame sampling
(``evaluator_cfg.sampler``), the transform chain (``evaluator_cfg.transform``), collation
into a float32 batch, and the model's forward (test-time augmentation included). The
exported graph takes over the longest tail of the transform chain that has a batched tensor
twin in :mod:`fastposegait.modeling.features` or is a pure layout change:

* ``GaitGraph_MultiInput``, ``GaitTR_MultiInput``, ``HOD_MultiInput`` (feature builders),
* ``SkeletonInput`` (``[T, V, C] -> [C, T, V, 1]``), ``NoOperation``.

Everything before that tail (frame sampling and NumPy transforms such as ``NormalizeEmpty``,
``RescaleCenter`` or ``Affine``) is :class:`ExportPreprocessor`, which runs the real objects of
:mod:`fastposegait.data` with the test phase's random generator, so that
``exported(stack(preprocess(seq)))`` is the test phase's embedding of ``seq``.

For the demo configs the cut falls at:

* GaitGraph1: frame window in Python; ``SkeletonInput`` and the time-reversal TTA in the graph;
* GaitGraph2: frame window + ``NormalizeEmpty`` in Python; the three-branch features and the
  reversed/flipped TTA in the graph;
* GaitTR: nothing but "take every frame" in Python; the 10 feature channels in the graph;
* GPGait / GPGait++: ``RescaleCenter`` (and ``Affine`` where configured) in Python; the HOD
  features in the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..data.batch import Batch
from ..data.frames import FrameSampler, frame_sampler_from_cfg
from ..data.sampler import batch_rng
from ..data.transforms import (Compose, GaitGraphMultiInput, GaitTRMultiInput, HODMultiInput, NoOperation,
                               SkeletonInput, Transform, TwoView, build_transforms)
from ..errors import ConfigError, PoseFileError
from ..modeling.features import gaitgraph_multi_input, gaittr_multi_input, hod_multi_input

__all__ = ["ExportPreprocessor", "InferenceGraph", "PipelineSplit", "split_pipeline"]

#: the test phase's stream of per-sequence generators: ``batch_rng(seed, TEST_PHASE, 0, key)``
TEST_PHASE = 1

#: feature builders with a batched tensor twin: transform class -> tensor function
_FEATURE_TWINS: Dict[type, Callable[..., torch.Tensor]] = {
    GaitGraphMultiInput: gaitgraph_multi_input,
    GaitTRMultiInput: gaittr_multi_input,
    HODMultiInput: hod_multi_input,
}


def _leaves(transform: Transform) -> List[Transform]:
    """The chain as a flat list (nested ``Compose`` opened; ``TwoView`` kept whole)."""
    if isinstance(transform, Compose) and not isinstance(transform, TwoView):
        return [leaf for inner in transform.transforms for leaf in _leaves(inner)]
    return [transform]


def _in_graph(transform: Transform) -> bool:
    return type(transform) in _FEATURE_TWINS or type(transform) in (SkeletonInput, NoOperation)


@dataclass
class PipelineSplit:
    """The test pipeline of one config, cut for export.

    Attributes:
        frame_sampler: the test sampler's frame choice (``evaluator_cfg.sampler``).
        python_steps: transforms run in Python before the exported model (real objects).
        graph_steps: transforms the exported graph reproduces with tensor operations.
        seed: ``evaluator_cfg.seed``, the test phase's random stream.
    """

    frame_sampler: FrameSampler
    python_steps: List[Transform]
    graph_steps: List[Transform]
    seed: int

    def describe_python(self) -> List[str]:
        """One line per step a user of the exported file must run first, in order."""
        return [_describe_frames(self.frame_sampler)] + [repr(t) for t in self.python_steps] + [
            "stack the sequences (same length) into float32 [N, T, V, C]"]

    def describe_graph(self) -> List[str]:
        return [repr(t) for t in self.graph_steps if not isinstance(t, NoOperation)]


def _describe_frames(sampler: FrameSampler) -> str:
    if sampler.mode == "all":
        limit = "" if sampler.frames_all_limit is None else f" (at most the first {sampler.frames_all_limit})"
        return f"frames: all frames of the sequence{limit}, in order ({sampler.sample_type})"
    if sampler.mode == "fixed":
        skip = f" from a window of {sampler.frames_num_fixed + sampler.frames_skip_num}" \
            if sampler.frames_skip_num else ""
        how = "a random window (a sequence shorter than the window is repeated)" if sampler.ordered \
            else "random frames"
        return f"frames: {sampler.frames_num_fixed} frames{skip}, {how} ({sampler.sample_type})"
    return (f"frames: between {sampler.frames_num_min} and {sampler.frames_num_max} frames, drawn per sequence "
            f"({sampler.sample_type})")


def split_pipeline(config: Config) -> PipelineSplit:
    """Cut ``config``'s test pipeline into Python steps and graph steps (module docstring)."""
    evaluator = config.evaluator
    transforms = build_transforms(evaluator.transform, "evaluator_cfg.transform")
    if len(transforms) != 1:
        raise ConfigError(f"evaluator_cfg.transform has {len(transforms)} modalities; export supports configs "
                          "with one input modality (one pose sequence per walk)")
    leaves = _leaves(transforms[0])
    cut = len(leaves)
    while cut > 0 and _in_graph(leaves[cut - 1]):
        cut -= 1
    return PipelineSplit(frame_sampler_from_cfg(evaluator.sampler.as_mapping()), leaves[:cut], leaves[cut:],
                         int(evaluator.seed))


class ExportPreprocessor:
    """The Python part of the test pipeline: ``sequence [T, V, C] -> model input [T', V, C']``
    (float32), the input an exported model takes for that sequence (stack several of the same
    length into ``[N, T', V, C']``).

    Uses the test phase's own objects and random stream: frame sampling and transforms draw
    from ``batch_rng(evaluator_cfg.seed, 1, 0, key)``, the generator the test phase gives the
    sequence with sample key ``key`` (its position in the test set).

    Args:
        config: the resolved config (or anything with a ``.config``, such as a
            :class:`~fastposegait.recognition.recognizer.GaitRecognizer`).
    """

    def __init__(self, config: Any) -> None:
        config = getattr(config, "config", config)
        if not isinstance(config, Config):
            raise TypeError(f"ExportPreprocessor needs a Config or a GaitRecognizer, got {type(config).__name__}")
        self.split = split_pipeline(config)

    def __call__(self, sequence: Any, key: int = 0, index: Optional[int] = None) -> np.ndarray:
        """The model input of one sequence; ``index`` (default ``key``) names it in errors."""
        where = f"sequence {key if index is None else index}"
        if torch.is_tensor(sequence):
            sequence = sequence.detach().cpu().numpy()
        array = np.asarray(sequence)
        if array.ndim != 3 or not np.issubdtype(array.dtype, np.number) \
                or np.issubdtype(array.dtype, np.complexfloating):
            raise PoseFileError(f"{where}: expected a real array [frames, joints, channels], got {array.dtype} "
                                f"of shape {list(array.shape)}")
        if array.shape[0] < 1:
            raise PoseFileError(f"{where}: has no frames")
        if not np.isfinite(array).all():
            raise PoseFileError(f"{where}: holds NaN or infinite values; mark missing joints with 0 instead")
        rng = batch_rng(self.split.seed, TEST_PHASE, 0, int(key))
        out = array[self.split.frame_sampler(array.shape[0], rng)]
        for transform in self.split.python_steps:
            out = np.asarray(transform(out, rng))
        return out.astype(np.float32, copy=False)

    def batch(self, sequences: Sequence[Any], keys: Optional[Sequence[int]] = None) -> List[np.ndarray]:
        """:meth:`__call__` for each sequence (``keys`` default ``0..N-1``)."""
        keys = list(range(len(sequences))) if keys is None else list(keys)
        if len(keys) != len(sequences):
            raise ValueError(f"keys: {len(keys)} keys for {len(sequences)} sequences")
        return [self(seq, key, i) for i, (seq, key) in enumerate(zip(sequences, keys))]


def preprocess(sequence: Any, config: Any, key: int = 0) -> np.ndarray:
    """One sequence ``[T, V, C]`` -> the float32 input ``[T', V, C']`` of the model exported from
    ``config`` (a :class:`~fastposegait.config.Config` or a recognizer). Builds the transforms on
    every call: for many sequences, build one :class:`ExportPreprocessor` and call it."""
    return ExportPreprocessor(config)(sequence, key)


# ------------------------------------------------------------------------ the graph side


class _FeatureStep(nn.Module):
    """A feature builder's batched twin on ``[N, T, V, C]``."""

    def __init__(self, function: Callable[..., torch.Tensor], joint_format: str) -> None:
        super().__init__()
        self.function = function
        self.joint_format = joint_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x, self.joint_format).to(x.dtype)


class _SkeletonLayout(nn.Module):
    """``SkeletonInput`` on a batch: ``[N, T, V, C] -> [N, C, T, V, 1]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"SkeletonInput in the exported graph expects [N, T, V, C], got {tuple(x.shape)}")
        return x.permute(0, 3, 1, 2).unsqueeze(-1)


def graph_step(transform: Transform) -> Optional[nn.Module]:
    """The tensor module that does ``transform`` on a batch (None for ``NoOperation``)."""
    if isinstance(transform, NoOperation):
        return None
    if isinstance(transform, SkeletonInput):
        return _SkeletonLayout()
    return _FeatureStep(_FEATURE_TWINS[type(transform)], transform.joint_format)


class InferenceGraph(nn.Module):
    """What gets exported: ``poses [N, T, V, C]`` (the :class:`ExportPreprocessor` output,
    stacked) -> embeddings ``[N, C_emb, P]``, the ``inference_feat['embeddings']`` of the
    model's eval-mode forward on the batch the test phase would collate.

    The model is called with an ordinary stacked batch (no ``seqL``), so every sequence of a
    call must have the same T; sequences of other lengths go in separate calls.
    """

    def __init__(self, model: nn.Module, graph_steps: Sequence[Transform]) -> None:
        super().__init__()
        self.model = model
        self.steps = nn.ModuleList(step for step in map(graph_step, graph_steps) if step is not None)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        x = poses
        for step in self.steps:
            x = step(x)
        n = poses.shape[0]
        labels = torch.zeros(n, dtype=torch.long, device=poses.device)  # only the training losses read them
        out = self.model(Batch([x], labels, [], [], None))
        return out["inference_feat"]["embeddings"]


def input_shape(split: PipelineSplit, joints: int, channels: int, frames: int = 30) -> Tuple[int, int, int]:
    """``[T', V', C']`` of the Python steps' output for a sequence of ``frames`` frames."""
    probe = np.ones((frames, joints, channels), np.float32)
    rng = batch_rng(split.seed, TEST_PHASE, 0, 0)
    out = probe[split.frame_sampler(frames, rng)]
    for transform in split.python_steps:
        out = np.asarray(transform(out, rng))
    if out.ndim != 3:
        raise ConfigError(
            f"evaluator_cfg.transform: the steps before the model's feature builders give arrays of shape "
            f"{list(out.shape)}, not [T, V, C]; export needs the pose layout there (put NumPy transforms before "
            "GaitGraph_MultiInput / GaitTR_MultiInput / HOD_MultiInput / SkeletonInput)")
    return tuple(int(s) for s in out.shape)  # type: ignore[return-value]
