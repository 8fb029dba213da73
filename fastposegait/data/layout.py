"""The pose layout of a dataset checked against the config before the first batch.

Every sequence of a split must have the same joints V and channels C (``[T, V, C]``,
channels ``x, y[, confidence]``), and they must be what the config expects:

* **Joints.** When ``model_cfg.joint_format`` or a transform's ``joint_format`` names a
  format, V is that format's joint count (``coco`` 17, ``openpose`` / ``alphapose`` 18).
  ``coco-no-head`` is an internal format (GPGait's angle branch), not a layout of data.
* **Channels.** A transform declares the channels it reads (``Transform.min_channels``):
  ``GaitGraph_MultiInput`` reads the confidence, so it needs C = 3; the other built-in
  transforms use x and y only and take C = 2 or 3. A transform that builds features
  (``Transform.output_channels``: ``GaitTR_MultiInput``, ``GaitGraph_MultiInput``,
  ``HOD_MultiInput``) decides the channels the model sees; when none is in the chain the
  pose's own channels reach the model, and a model that declares the ``model_cfg`` key
  holding how many it takes (``BaseModel.input_channels_key``) needs exactly that C.
  Measured on 2-channel copies of the demo data: the GaitGraph1 demo fails (GaitGraph1 takes
  ``input_branch[0]`` = 3 channels through ``SkeletonInput``; it says so at its first batch
  unless it declares ``input_channels_key = "input_branch"``), the GaitGraph2 demo fails
  (``GaitGraph_MultiInput``), GaitTR, GPGait and RawJointsNN run.

Cost: with the packed cache the shapes come from the cache's index (no pickle is read); with
the memory cache from the arrays already loaded; without a cache three sequences are read at
start (first, middle, last) and :meth:`PoseDataset.load` checks every other sequence when it
is loaded, raising a :class:`PoseFileError` that names the file.

Example::

    dataset = dataset_from_section(config.data, training=True)
    check_pose_layout(dataset, config.model, config.trainer.transform, "trainer_cfg.transform")
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..errors import DatasetError, PoseFileError
from .dataset import PoseDataset
from .skeleton import get_joint_format

logger = logging.getLogger(__name__)

#: joint formats that describe a model's internal graph, not the layout of a dataset
INTERNAL_FORMATS = ("coco-no-head",)
#: sequences read at start to learn the layout of a dataset without a cache
SAMPLED_WITHOUT_CACHE = 3


@dataclass(frozen=True)
class PoseLayout:
    """The joints and channels every sequence of one modality has."""

    joints: int
    channels: int


@dataclass(frozen=True)
class _Need:
    """What the config expects of one modality's poses."""

    formats: Tuple[Tuple[str, str], ...]  # (config key, joint format name)
    min_channels: Tuple[Tuple[str, str, int], ...]  # (config key, transform, channels it reads)
    exact_channels: Optional[Tuple[str, int]]  # (config key, channels the model takes)


def check_pose_layout(
    dataset: PoseDataset,
    model_cfg: Optional[Mapping[str, Any]] = None,
    transform_cfg: Any = None,
    transform_key: str = "trainer_cfg.transform",
) -> List[PoseLayout]:
    """Check that every sequence of ``dataset`` has the same joints and channels, and that
    they fit the joint formats and channels ``model_cfg`` and ``transform_cfg`` (the
    split's ``trainer_cfg.transform`` or ``evaluator_cfg.transform``, one entry per
    modality) need. Sets ``dataset.layout`` so that, without a cache, each sequence is
    checked when it is loaded.

    Returns:
        the layout of each modality.
    Raises:
        PoseFileError: some sequences differ from the others (the message names one file
            and how many there are).
        DatasetError: the sequences agree with each other but not with the config (a
            joint format of another joint count, too few channels for a transform or model).
    """
    layouts = []
    for position in range(dataset.num_modalities):
        need = _needs(model_cfg if position == 0 else None, _modality_entry(transform_cfg, position),
                      f"{transform_key}.{position}" if isinstance(transform_cfg, (list, tuple)) else transform_key)
        layouts.append(_check_modality(dataset, position, need))
    dataset.layout = tuple((layout.joints, layout.channels) for layout in layouts)
    logger.info("%s split layout: %s per sequence (%s)", dataset.split_key, _describe(layouts),
                "every sequence checked" if dataset.cache_mode != "none"
                else f"{SAMPLED_WITHOUT_CACHE} sequences read, the others checked when loaded")
    return layouts


@dataclass(frozen=True)
class PoseRequirement:
    """What one frame ``[V, C]`` of a modality must be for a config: V joints (None: any),
    at least ``min_channels`` channels, exactly ``channels`` when the model fixes them."""

    joints: Optional[int]
    min_channels: int
    channels: Optional[int]

    def problem(self, joints: int, channels: int) -> Optional[str]:
        """Why a pose of ``joints`` x ``channels`` does not fit, or None."""
        if self.joints is not None and joints != self.joints:
            return f"has {joints} joints per frame, the model's joint format has {self.joints}"
        if channels < max(2, self.min_channels):
            return (f"has {channels} channel(s) per joint, the transforms read {max(2, self.min_channels)} "
                    "(x, y" + (", confidence)" if self.min_channels > 2 else ")"))
        if self.channels is not None and channels != self.channels:
            return f"has {channels} channels per joint, the model takes {self.channels}"
        return None


def pose_requirement(model_cfg: Optional[Mapping[str, Any]], transform_cfg: Any,
                     transform_key: str = "evaluator_cfg.transform", position: int = 0) -> PoseRequirement:
    """The pose layout modality ``position`` must have for ``model_cfg`` and ``transform_cfg``
    (the same rules as :func:`check_pose_layout`, without a dataset)."""
    need = _needs(model_cfg if position == 0 else None, _modality_entry(transform_cfg, position),
                  f"{transform_key}.{position}" if isinstance(transform_cfg, (list, tuple)) else transform_key)
    joints = {get_joint_format(n).num_joints for _, n in need.formats}
    return PoseRequirement(joints.pop() if len(joints) == 1 else None,
                           max([c for *_, c in need.min_channels], default=2),
                           need.exact_channels[1] if need.exact_channels else None)


# ----------------------------------------------------------------------------- the data


def _check_modality(dataset: PoseDataset, position: int, need: _Need) -> PoseLayout:
    shapes = dataset.cached_shapes(position)
    exhaustive = shapes is not None
    indices = np.arange(len(dataset))
    if shapes is None:
        indices = np.unique(np.linspace(0, len(dataset) - 1, SAMPLED_WITHOUT_CACHE).round().astype(np.int64))
        shapes = dataset.read_shapes(indices.tolist(), position)
    present = shapes[:, 0] >= 0
    indices, shapes = indices[present], shapes[present]
    joints = _expected(shapes[:, 1], need)
    _check_uniform(dataset, position, indices, shapes[:, 1], joints, "joints", exhaustive, need)
    channels = int(Counter(shapes[:, 2].tolist()).most_common(1)[0][0])
    _check_uniform(dataset, position, indices, shapes[:, 2], channels, "channels", exhaustive, need)
    example = dataset.records[int(indices[0])].paths[position]
    _check_channels(channels, len(indices), exhaustive, example, need)
    return PoseLayout(joints, channels)


def _expected(joints: np.ndarray, need: _Need) -> int:
    """The joint count the config names, else the most common one."""
    if not need.formats:
        return int(Counter(joints.tolist()).most_common(1)[0][0])
    counts = {get_joint_format(n).num_joints for _, n in need.formats}
    if len(counts) > 1:
        named = ", ".join(f"{k}: {n} ({get_joint_format(n).num_joints} joints)" for k, n in need.formats)
        raise DatasetError(f"the config names joint formats of different joint counts: {named}; name the "
                           "data's format everywhere (coco: 17 joints, openpose/alphapose: 18)")
    return counts.pop()


def _check_uniform(dataset: PoseDataset, position: int, indices: np.ndarray, values: np.ndarray,
                   expected: int, what: str, exhaustive: bool, need: _Need) -> None:
    odd = np.flatnonzero(values != expected)
    if not odd.size:
        return
    total = len(values)
    counted = f"{odd.size} of the {total} {dataset.split_key} sequences" if exhaustive else \
        f"{odd.size} of the {total} {dataset.split_key} sequences read at start (data_cfg.cache: false)"
    first = int(odd[0])
    path = dataset.records[int(indices[first])].paths[position]
    have = int(values[first])
    if odd.size == total and what == "joints":
        key, name = need.formats[0]
        raise DatasetError(_format_mismatch(key, name, expected, have, total, exhaustive, path, dataset))
    others = f"the others have {expected}"
    if what == "joints" and need.formats:
        key, name = need.formats[0]
        others = f"{key}: {name} has {expected}"
    raise PoseFileError(
        f"{path}: {have} {what} where {others}; {counted} differ (this is one of them). Every sequence of a "
        f"dataset needs the same layout [T, V, C]: re-export or remove these files"
    )


def _format_mismatch(key: str, name: str, expected: int, have: int, total: int, exhaustive: bool, path: str,
                     dataset: PoseDataset) -> str:
    counted = f"all {total} {dataset.split_key} sequences" if exhaustive else \
        f"the {total} {dataset.split_key} sequences read at start"
    if name in INTERNAL_FORMATS:
        fix = f"{name!r} is an internal format (GPGait's angle branch), not a layout of data; name the data's format"
    else:
        fix = "set the joint format of the data"
    formats = {n: get_joint_format(n).num_joints for n in ("coco", "openpose")}
    match = [n for n, v in formats.items() if v == have]
    suggestion = f" ({match[0]})" if match else ""
    return (f"{key} is {name!r} ({expected} joints) but {counted} have {have} joints (e.g. {path}); {fix}"
            f"{suggestion} everywhere it is named: model_cfg.joint_format and the transforms' joint_format "
            "(coco: 17 joints, openpose/alphapose: 18)")


def _check_channels(channels: int, total: int, exhaustive: bool, path: str, need: _Need) -> None:
    counted = f"the {total} sequences" if exhaustive else f"the {total} sequences read at start"
    for key, transform, wanted in need.min_channels:
        if channels < wanted:
            raise DatasetError(
                f"{key}: {transform} reads {wanted} channels (x, y, confidence) but {counted} have {channels} "
                f"(e.g. {path}); use pose files with a confidence channel, or transforms that use x and y only"
            )
    if need.exact_channels is not None:
        key, wanted = need.exact_channels
        if channels != wanted:
            raise DatasetError(
                f"{key}: the model takes {wanted} channels per joint, and the transforms pass the pose's own "
                f"channels through, but {counted} have {channels} (e.g. {path}); set it to {channels} or use "
                f"pose files with {wanted} channels"
            )


# ----------------------------------------------------------------------------- the config


def _modality_entry(transform_cfg: Any, position: int) -> Any:
    if isinstance(transform_cfg, (list, tuple)):
        return transform_cfg[position] if position < len(transform_cfg) else None
    return transform_cfg if position == 0 else None


def _needs(model_cfg: Optional[Mapping[str, Any]], entry: Any, key: str) -> _Need:
    formats: List[Tuple[str, str]] = []
    min_channels: List[Tuple[str, str, int]] = []
    model_name = (model_cfg or {}).get("model")
    if model_cfg is not None and isinstance(model_cfg.get("joint_format"), str):
        formats.append(("model_cfg.joint_format", model_cfg["joint_format"]))
    passes_through = _walk(entry, key, formats, min_channels, [True])
    formats = [(k, n) for k, n in formats if _known_format(n)]
    exact = None
    model_cls = _model_class(model_name)
    if passes_through and model_cls is not None and model_cfg is not None:
        wanted = model_cls.input_channels(model_cfg)
        if wanted is not None:
            exact = (f"model_cfg.{model_cls.input_channels_key}", wanted)
    return _Need(tuple(formats), tuple(min_channels), exact)


def _walk(entry: Any, key: str, formats: List[Tuple[str, str]], min_channels: List[Tuple[str, str, int]],
          raw: List[bool]) -> bool:
    """Collect the joint formats named in a transform entry (nested ``trf_cfg`` included) and
    the channels its transforms read from the pose; ``raw[0]`` stays True while no transform
    has replaced the pose channels with features. Returns ``raw[0]``."""
    from ..registry import TRANSFORMS

    if isinstance(entry, (list, tuple)):
        for i, item in enumerate(entry):
            _walk(item, f"{key}.{i}", formats, min_channels, raw)
        return raw[0]
    if not isinstance(entry, Mapping) or "type" not in entry:
        return raw[0]
    if isinstance(entry.get("joint_format"), str):
        formats.append((f"{key}.joint_format", entry["joint_format"]))
    try:
        target = TRANSFORMS.get(entry["type"])
    except KeyError:  # reported by the config check and by the loader
        return raw[0]
    if raw[0]:
        wanted = getattr(target, "min_channels", None)
        if isinstance(wanted, int) and wanted > 2:
            min_channels.append((f"{key}.type", str(entry["type"]), wanted))
    if "trf_cfg" in entry:
        _walk(entry["trf_cfg"], f"{key}.trf_cfg", formats, min_channels, raw)
    if getattr(target, "output_channels", None) is not None:
        raw[0] = False
    return raw[0]


def _known_format(name: str) -> bool:
    try:
        get_joint_format(name)
    except (KeyError, ValueError):  # an unknown name fails where the model or transform is built
        return False
    return True


def _model_class(name: Any) -> Optional[Any]:
    if not isinstance(name, str):
        return None
    from ..registry import MODELS

    try:
        cls = MODELS.get(name)
    except KeyError:
        return None
    return cls if hasattr(cls, "input_channels") else None


def _describe(layouts: Sequence[PoseLayout]) -> str:
    """``"17 joints x 3 channels"`` per modality, for the log line."""
    return ", ".join(f"{layout.joints} joints x {layout.channels} channels" for layout in layouts)
