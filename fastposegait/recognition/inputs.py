"""Reading pose sequences to embed, enroll or identify, from what users have on disk.

:func:`read_sequences` takes one path and returns :class:`SequenceInput` items; what the path
is decides how it is read:

* a **dataset folder** in the upstream layout ``root/<subject>/<type>/<view>/*.pkl`` (one
  pickle per modality): indexed by the dataset's own index builder
  (:func:`fastposegait.data.dataset.build_index`: sorted types and views, hidden entries and
  non-files skipped, the same modality count everywhere), optionally restricted to the
  subjects of one split of a partition JSON (``TEST_SET`` by default), in partition order;
  subject, type and view are known;
* a single **pose pickle** ``.pkl`` ``[T, V, C]``, or a **folder of pickles** (each one a
  sequence, natural order): read with the restricted unpickler
  (:func:`fastposegait.data.io.load_pose`), never ``pickle.load``;
* a **keypoint JSON** of one video as pose estimators write it (COCO results list with
  ``image_id``/``keypoints``/``track_id``, or a COCO dataset object, or OpenPose ``people``),
  or a folder holding such files (searched recursively; ``<subject>/<video>.json`` or
  ``<subject>/<type>/<video>.json`` give the subject and type, as for the ``custom``
  converter). Each video is read by the converter's own reader
  (:func:`fastposegait.converters.custom.read_walker`): frames in order, frames without
  anyone dropped, the walker chosen as the given track, else the longest track, else by
  joint continuity. ``json_layout="frame"`` reads a folder of per-frame JSON files as one
  video instead.

A folder holding ``*/*/*/*.pkl`` is a dataset; one holding ``*/*/*.pkl`` is one subject's
folder of a dataset, and ``*/*.pkl`` (but no ``*.pkl``) one type folder of a subject (subject,
type and view are known for both); else one holding ``*.pkl`` is a folder of pickles; else one
holding JSON files is a folder of videos. Every problem is one error line
naming the file (:mod:`fastposegait.errors`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from ..converters.custom import VideoSpec, find_videos, read_walker
from ..converters.parsing import natural_key
from ..data.dataset import sorted_dirs, build_index
from ..data.io import load_pose
from ..data.packed_cache import check_same_length
from ..data.partitions import read_partition
from ..errors import DatasetError, MissingFileError, RawFileError

logger = logging.getLogger(__name__)

JSON_LAYOUTS = ("video", "frame")
SPLITS = ("TEST_SET", "TRAIN_SET", "PROBE_SET")
#: inputs with more files than this get a progress bar (when asked for)
PROGRESS_MIN_FILES = 50


@dataclass
class SequenceInput:
    """One pose sequence to embed.

    Attributes:
        name: a readable unique name: ``subject/type/view`` in a dataset, the file's path
            relative to the folder given (without extension), or the file's name.
        arrays: one ``[T, V, C]`` array per modality (one for pickles and JSON).
        subject, type, view: the dataset layout's folder names (None when unknown; a JSON
            video under ``<subject>/...`` has its subject).
        source: the file (or sequence folder) it was read from.
    """

    name: str
    arrays: List[np.ndarray]
    subject: Optional[str] = None
    type: Optional[str] = None
    view: Optional[str] = None
    source: str = ""
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The facts about the sequence (not the arrays), JSON-able."""
        return {"name": self.name, "subject": self.subject, "type": self.type, "view": self.view,
                "source": self.source, "frames": int(self.arrays[0].shape[0])}


def read_sequences(
    path: Union[str, Path],
    partition: Union[str, Path, None] = None,
    split: str = "TEST_SET",
    json_layout: str = "video",
    track: Optional[str] = None,
    coco17: bool = False,
    on_error: str = "stop",
    data_in_use: Optional[Sequence[bool]] = None,
    progress: bool = False,
) -> List[SequenceInput]:
    """The pose sequences at ``path`` (see the module docstring for what it may be).

    Args:
        path: a dataset folder, a ``.pkl`` file or folder of them, a keypoint ``.json`` or a
            folder of them.
        partition: a dataset's partition JSON: read only the subjects of ``split``.
        split: ``TEST_SET`` (default), ``TRAIN_SET`` or ``PROBE_SET`` (Gait3D's probe
            sequences, ``subject-type-view`` names).
        json_layout: ``video`` (one JSON per video) or ``frame`` (``path`` is a folder of
            per-frame JSON files of one video).
        track: the walker's track id in the JSON files (default: the longest track).
        coco17: map 18 OpenPose joints to COCO-17 (as the converter's ``--coco17``).
        on_error: a malformed annotation in a JSON: ``stop`` (one error) or ``skip`` (dropped,
            with a warning naming the file).
        data_in_use: a dataset's modality flags (as ``data_cfg.data_in_use``).
        progress: a progress bar on stderr for many files.
    """
    path = Path(path)
    if json_layout not in JSON_LAYOUTS:
        raise DatasetError(f"json layout {json_layout!r}: expected one of {', '.join(JSON_LAYOUTS)}")
    if on_error not in ("stop", "skip"):
        raise DatasetError(f"on_error {on_error!r}: expected 'stop' or 'skip'")
    if not path.exists():
        raise MissingFileError(f"{path} does not exist; give a dataset folder, a .pkl or a keypoint .json "
                               "(or a folder of them)")
    if partition is not None and not path.is_dir():
        raise DatasetError(f"{path}: a partition ({partition}) selects subjects of a dataset folder; give the "
                           "dataset's root folder")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".pkl":
            return [_pickle_input(path, path.stem)]
        if suffix == ".json":
            return [_video_input(path, path.stem, "video", track, coco17, on_error)]
        raise DatasetError(f"{path}: not a .pkl pose pickle or a .json keypoint file; give one of those, or a folder")
    if json_layout == "frame":
        return [_video_input(path, path.name, "frame", track, coco17, on_error)]
    if partition is not None or next(path.glob("*/*/*/*.pkl"), None) is not None:
        return _dataset_inputs(path, partition, split, data_in_use, progress)
    if next(path.glob("*/*/*.pkl"), None) is not None:  # one subject's folder of a dataset
        return _dataset_inputs(path.resolve().parent, None, split, data_in_use, progress, [path.resolve().name])
    if next(path.glob("*/*.pkl"), None) is not None and next(path.glob("*.pkl"), None) is None:  # a type folder
        folder = path.resolve()
        items = _dataset_inputs(folder.parent.parent, None, split, data_in_use, progress, [folder.parent.name])
        return [i for i in items if i.type == folder.name]
    pickles = sorted((p for p in path.glob("*.pkl") if p.is_file() and not p.name.startswith(".")),
                     key=lambda p: natural_key(p.name))
    if pickles:
        return [_pickle_input(p, p.stem) for p in _bar(pickles, progress, "Reading pickles")]
    videos = find_videos(path, "video")
    if videos:
        names = sorted(videos, key=natural_key)
        return [_video_input(Path(videos[v]), v, "video", track, coco17, on_error, _place(v))
                for v in _bar(names, progress, "Reading JSON")]
    raise DatasetError(f"{path}: holds no pose sequence (no <subject>/<type>/<view>/*.pkl, *.pkl or *.json); give "
                       "a dataset folder, pose pickles or keypoint JSON files")


def _dataset_inputs(root: Path, partition: Union[str, Path, None], split: str,
                    data_in_use: Optional[Sequence[bool]], progress: bool,
                    subjects: Optional[List[str]] = None) -> List[SequenceInput]:
    """The sequences of a dataset folder (``subjects``, default all, or one split of ``partition``)."""
    subjects = sorted_dirs(str(root)) if subjects is None else subjects
    probes = None
    if partition is not None:
        if split not in SPLITS:
            raise DatasetError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        table = read_partition(partition)
        if split == "PROBE_SET":
            if "PROBE_SET" not in table:
                raise DatasetError(f"{partition}: has no PROBE_SET; choose --split TEST_SET or TRAIN_SET")
            probes = set(table["PROBE_SET"])
            wanted = table["TEST_SET"]
        else:
            wanted = table[split]
        on_disk = set(subjects)
        missing = [s for s in wanted if s not in on_disk]
        if missing:
            logger.warning("%s: %d %s subjects are not in %s and are skipped: %s", partition, len(missing),
                           split, root, ", ".join(missing[:10]))
        subjects = [s for s in wanted if s in on_disk]
    records = build_index(root, subjects, data_in_use)
    if probes is not None:
        records = [r for r in records if f"{r.subject}-{r.type}-{r.view}" in probes]
    if not records:
        where = f" of {split} ({partition})" if partition is not None else ""
        raise DatasetError(f"{root}: no sequence folder <subject>/<type>/<view>/*.pkl{where}; check the folder "
                           "and the partition")
    out = []
    for r in _bar(records, progress, "Reading sequences"):
        arrays = [load_pose(p) for p in r.paths]
        check_same_length(arrays, r.paths)
        out.append(SequenceInput(f"{r.subject}/{r.type}/{r.view}", arrays, r.subject, r.type, r.view,
                                 os.path.dirname(r.paths[0])))
    return out


def _pickle_input(path: Path, name: str) -> SequenceInput:
    return SequenceInput(name, [load_pose(path)], source=str(path))


def _place(video: str) -> dict:
    """Subject and type from a video's folders (``<subject>/<video>``: type ``00``, as the
    converter lays it out; ``<subject>/<type>/<video>``); nothing for a top-level file."""
    parts = video.split("/")
    if len(parts) == 2:
        return {"subject": parts[0], "type": "00", "view": parts[1]}
    if len(parts) >= 3:
        return {"subject": parts[-3], "type": parts[-2], "view": parts[-1]}
    return {}


def _video_input(source: Path, name: str, layout: str, track: Optional[str], coco17: bool, on_error: str,
                 place: Optional[dict] = None) -> SequenceInput:
    """One video's walker, read by the ``custom`` converter's reader."""
    place = place or {}
    spec = VideoSpec(str(source), layout, place.get("subject", ""), place.get("type", ""), place.get("view", ""),
                     track=track, coco17=coco17)
    array, result = read_walker(spec, on_error)
    if result.problems and array is not None:
        logger.warning("%s: %d problem(s) skipped, e.g. %s", source, len(result.problems), result.problems[0])
    if array is None:
        why = "; ".join(result.problems[:2]) or f"{source}: no usable frame"
        dropped = ", ".join(f"{n} {reason}" for reason, n in result.dropped.items())
        raise RawFileError(f"{why}{' (' + dropped + ')' if dropped else ''}; nothing to embed — check the file "
                           "(and --track)")
    notes = [f"{n} frames dropped: {reason}" for reason, n in result.dropped.items()]
    return SequenceInput(name, [array.astype(np.float64, copy=False)], place.get("subject"), place.get("type"),
                         place.get("view"), str(source), notes)


def _bar(items: Sequence, progress: bool, desc: str) -> Iterable:
    if not progress or len(items) < PROGRESS_MIN_FILES:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", leave=False)


def read_many(paths: Sequence[Union[str, Path]], **options) -> List[SequenceInput]:
    """:func:`read_sequences` of several paths, concatenated; names made unique across paths
    by prefixing the path given when two inputs would share one."""
    out: List[SequenceInput] = []
    for path in paths:
        items = read_sequences(path, **options)
        if len(paths) > 1:
            taken = {s.name for s in out}
            for s in items:
                if s.name in taken:
                    s.name = f"{path}:{s.name}"
        out.extend(items)
    return out
