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

**Map sequences.** A modality whose pickles are 4-D arrays ``[T, C, H, W]`` (skeleton maps,
see :func:`fastposegait.data.io.as_sequence_array`) is a map modality: every sequence must have
the same ``C, H, W``; a pose transform (one that names a joint format, builds pose features or
reads the confidence, or declares ``input_kind = "pose"``) in its chain is an error, and so is a
map transform (``input_kind = "map"``, e.g. ``BaseSilCuttingTransform``) on pose sequences unless
a transform that renders poses into maps (``output_kind = "map"``, e.g. ``SkeletonMap``) comes
first; when the transforms keep the channels, a model that declares its input channels needs
C of them. A modality that mixes poses and maps names one of the odd files.

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
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

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
class MapLayout:
    """The channels, height and width every map sequence ``[T, C, H, W]`` of one modality has."""

    channels: int
    height: int
    width: int


#: registered transforms that render pose sequences into map sequences when they do not say
#: so themselves (``output_kind``)
POSE_TO_MAP_TRANSFORMS = ("SkeletonMap",)


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
        the layout of each modality (:class:`PoseLayout`, or :class:`MapLayout` for map
        sequences ``[T, C, H, W]``).
    Raises:
        PoseFileError: some sequences differ from the others (the message names one file
            and how many there are).
        DatasetError: the sequences agree with each other but not with the config (a
            joint format of another joint count, too few channels for a transform or model,
            pose transforms on map sequences or map transforms on poses).
    """
    layouts: List[Union[PoseLayout, MapLayout]] = []
    for position in range(dataset.num_modalities):
        entry = _modality_entry(transform_cfg, position)
        key = f"{transform_key}.{position}" if isinstance(transform_cfg, (list, tuple)) else transform_key
        need = _needs(model_cfg if position == 0 else None, entry, key)
        indices, shapes, exhaustive = _shapes(dataset, position)
        if _is_map_modality(dataset, position, indices, shapes, exhaustive):
            layouts.append(_check_map_modality(dataset, position, indices, shapes, exhaustive, need, entry, key))
        else:
            _check_kinds(entry, key, "pose", dataset.records[int(indices[0])].paths[position])
            layouts.append(_check_modality(dataset, position, need, indices, shapes[:, :3], exhaustive))
    dataset.layout = tuple((layout.joints, layout.channels) if isinstance(layout, PoseLayout)
                           else (layout.channels, layout.height, layout.width) for layout in layouts)
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


def _shapes(dataset: PoseDataset, position: int) -> Tuple[np.ndarray, np.ndarray, bool]:
    """The indices and ``[N, 4]`` shapes (``[T, V, C, 0]`` for poses, ``[T, C, H, W]`` for
    maps) of the sequences that have modality ``position``: all of them with a cache, a
    sample without (``exhaustive`` False)."""
    shapes = dataset.cached_shapes(position, width=4)
    exhaustive = shapes is not None
    indices = np.arange(len(dataset))
    if shapes is None:
        indices = np.unique(np.linspace(0, len(dataset) - 1, SAMPLED_WITHOUT_CACHE).round().astype(np.int64))
        shapes = dataset.read_shapes(indices.tolist(), position, width=4)
    present = shapes[:, 0] >= 0
    return indices[present], shapes[present], exhaustive


def _is_map_modality(dataset: PoseDataset, position: int, indices: np.ndarray, shapes: np.ndarray,
                     exhaustive: bool) -> bool:
    """Whether the modality holds map sequences (4-D); a mix of poses and maps is an error."""
    is_map = shapes[:, 3] > 0
    if is_map.all() or not is_map.any():
        return bool(is_map.all())
    minority = is_map if is_map.sum() <= (~is_map).sum() else ~is_map
    odd = np.flatnonzero(minority)
    path = dataset.records[int(indices[int(odd[0])])].paths[position]
    this, other = ("a map sequence [T, C, H, W]", "pose sequences [T, V, C]") if is_map[odd[0]] else \
        ("a pose sequence [T, V, C]", "map sequences [T, C, H, W]")
    counted = "" if exhaustive else " read at start (data_cfg.cache: false)"
    raise PoseFileError(
        f"{path}: {this} where {len(is_map) - odd.size} of the {len(is_map)} {dataset.split_key} sequences"
        f"{counted} are {other}; every sequence of a modality must be of one kind: re-export or remove the "
        f"{odd.size} odd file{'' if odd.size == 1 else 's'}"
    )


def _check_map_modality(dataset: PoseDataset, position: int, indices: np.ndarray, shapes: np.ndarray,
                        exhaustive: bool, need: _Need, entry: Any, key: str) -> MapLayout:
    """Same ``C, H, W`` everywhere, map-compatible transforms, the model's channel count."""
    frames = [tuple(int(v) for v in row) for row in shapes[:, 1:4]]
    expected = Counter(frames).most_common(1)[0][0]
    odd = [i for i, frame in enumerate(frames) if frame != expected]
    example = dataset.records[int(indices[0])].paths[position]
    if odd:
        path = dataset.records[int(indices[odd[0]])].paths[position]
        counted = f"{len(odd)} of the {len(frames)} {dataset.split_key} sequences" + (
            "" if exhaustive else " read at start (data_cfg.cache: false)")
        raise PoseFileError(
            f"{path}: map frames of {_map_frame(frames[odd[0]])} where the others have {_map_frame(expected)}; "
            f"{counted} differ (this is one of them). Every map sequence of a dataset needs the same "
            "[C, H, W]: re-export or remove these files"
        )
    _check_kinds(entry, key, "map", example)
    if need.exact_channels is not None and need.exact_channels[1] != expected[0]:
        model_key, wanted = need.exact_channels
        raise DatasetError(
            f"{model_key}: the model takes {wanted} input channels, and the transforms keep the maps' channels, but "
            f"the map sequences have {expected[0]} (C of [T, C, H, W], e.g. {example}); set it to {expected[0]} or "
            "use maps with that many channels"
        )
    return MapLayout(*expected)


def _map_frame(frame: Tuple[int, ...]) -> str:
    return "C x H x W = " + " x ".join(str(v) for v in frame)


def _check_kinds(entry: Any, key: str, kind: str, example: str) -> None:
    """Follow the data's kind (``pose`` or ``map``) through a transform chain and raise a
    :class:`DatasetError` at the first transform that needs the other kind."""
    from ..registry import TRANSFORMS

    def walk(item: Any, where: str, current: str) -> str:
        if isinstance(item, (list, tuple)):
            for i, inner in enumerate(item):
                current = walk(inner, f"{where}.{i}", current)
            return current
        if not isinstance(item, Mapping) or "type" not in item:
            return current
        try:
            target = TRANSFORMS.get(item["type"])
        except KeyError:  # reported by the config check and by the loader
            return current
        wanted = _input_kind(item, target)
        if wanted is not None and wanted != current:
            raise DatasetError(_kind_mismatch(f"{where}.type", str(item["type"]), wanted, example))
        if "trf_cfg" in item:
            current = walk(item["trf_cfg"], f"{where}.trf_cfg", current)
        return _output_kind(item, target) or current

    walk(entry, key, kind)


def _input_kind(entry: Mapping[str, Any], target: Any) -> Optional[str]:
    """What a transform reads: its ``input_kind``; else ``pose`` when it names a joint format,
    builds features from poses or reads the confidence; else None (any kind)."""
    declared = getattr(target, "input_kind", None)
    if declared in ("pose", "map"):
        return declared
    wanted = getattr(target, "min_channels", None)
    if (isinstance(entry.get("joint_format"), str) or getattr(target, "output_channels", None) is not None
            or (isinstance(wanted, int) and wanted > 2) or _output_kind(entry, target) == "map"):
        return "pose"
    return None


def _output_kind(entry: Mapping[str, Any], target: Any) -> Optional[str]:
    """What a transform makes when it changes the kind (``map`` for a pose renderer)."""
    declared = getattr(target, "output_kind", None)
    if declared in ("pose", "map"):
        return declared
    return "map" if entry.get("type") in POSE_TO_MAP_TRANSFORMS else None


def _kind_mismatch(key: str, name: str, wanted: str, example: str) -> str:
    if wanted == "map":
        return (f"{key}: {name} works on map sequences [T, C, H, W], but the sequences of this dataset are poses "
                f"[T, V, C] (e.g. {example}); render them into maps first (a SkeletonMap transform before it) "
                "or point data_cfg.dataset_root at map pickles")
    return (f"{key}: {name} works on pose sequences [T, V, C], but the sequences of this dataset are maps "
            f"[T, C, H, W] (e.g. {example}); use map transforms (BaseSilCuttingTransform, RandomHorizontalFlip, "
            "...) or point data_cfg.dataset_root at pose pickles")


def _check_modality(dataset: PoseDataset, position: int, need: _Need, indices: np.ndarray, shapes: np.ndarray,
                    exhaustive: bool) -> PoseLayout:
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
    if getattr(target, "output_channels", None) is not None or _output_kind(entry, target) == "map":
        raw[0] = False  # features or maps replace the pose channels
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


def _describe(layouts: Sequence[Union[PoseLayout, MapLayout]]) -> str:
    """``"17 joints x 3 channels"`` (or ``"maps 2 x 64 x 64"``) per modality, for the log line."""
    return ", ".join(f"{layout.joints} joints x {layout.channels} channels" if isinstance(layout, PoseLayout)
                     else f"maps {layout.channels} x {layout.height} x {layout.width}" for layout in layouts)
