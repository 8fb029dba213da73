"""OUMVLP-Pose: per-frame OpenPose/AlphaPose JSON -> one pickle per sequence.

Raw: ``<input>/<subject>/<view>_<type>/<frame>_keypoints.json`` (OpenPose JSON, 18 joints per
person in ``people[i]["pose_keypoints_2d"]``; the frame index is the first run of 4 digits in
the file name). Output: ``<output>/<subject>/<type>/<view>/<view>.pkl`` holding ``[T, 18, 3]``
float64 (type and view swap places, the layout the original FastPoseGait script writes and
the configs read), or ``[T, 17, 3]`` COCO with ``coco17``.

Deliberate differences from the original script (all listed in docs/upstream_differences.md):
the walker is chosen per frame (:mod:`.selection`) instead of always ``people[0]``; a malformed
file is reported and skipped (or stops the run) instead of aborting it; writes are atomic and a
re-run resumes; sequences convert in parallel. :func:`convert_18_to_17` is the separate
18 -> COCO-17 step (the original's ``misc/oumvlp17.py``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..data.io import load_pose
from ..data.skeleton import openpose_to_coco
from ..errors import ConversionError, PoseFileError, RawFileError
from .parsing import frame_number, keypoint_array, read_json
from .selection import load_selection_index, read_silhouette, silhouette_choice, track_walker
from .tasks import (EMPTY, WRITTEN, SequenceResult, Task, check_separate_roots, iter_dirs, iter_files, require_dir,
                    write_sequence)

OPENPOSE_JOINTS = 18
SELECTION_CHOICES = ("auto", "tracking", "first")
INDEX_FILE = "pose_selection_idx.pkl"
FRAME_DIGITS = 4


@dataclass(frozen=True)
class OumvlpOptions:
    """How to convert: person selection and output joints.

    Attributes:
        selection: ``auto`` (selection index if given, else silhouettes if given, else
            tracking), ``tracking`` (ignore side information), or ``first`` (always
            ``people[0]``, as the original script: only to reproduce FastPoseGait's released
            pickles).
        index_root: OpenGait selection-index tree ``<subject>/<type>/<view>/pose_selection_idx.pkl``.
        silhouette_root: silhouettes, either ``<subject>/<type>/<view>/<frame>.png`` or OU-MVLP's
            release layout ``Silhouette_<view>-<type>/<subject>/<frame>.png``.
        coco17: write COCO-17 (new joint i = old joint
            :data:`fastposegait.data.skeleton.OPENPOSE_TO_COCO` ``[i]``) instead of the raw 18 joints.
    """

    selection: str = "auto"
    index_root: Optional[str] = None
    silhouette_root: Optional[str] = None
    coco17: bool = False


def read_people(path: str | Path) -> np.ndarray:
    """The detections of one OpenPose JSON frame as ``[P, 18, 3]`` (``P`` may be 0)."""
    data = read_json(path)
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise RawFileError(
            f"{path}: no \"people\" list; an OpenPose frame file is {{\"people\": [{{\"pose_keypoints_2d\": "
            "[54 numbers]}, ...]}} — re-export it or delete it"
        )
    arrays = []
    for i, person in enumerate(people):
        values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        arrays.append(keypoint_array(values, OPENPOSE_JOINTS, path, "pose_keypoints_2d", person=i))
    if not arrays:
        return np.zeros((0, OPENPOSE_JOINTS, 3))
    return np.stack(arrays)


def split_folder_name(name: str) -> Optional[Tuple[str, str]]:
    """``"000_01"`` -> ``("000", "01")`` (view, type); None for other names."""
    view, sep, type_ = name.rpartition("_")
    if not sep or not view or not type_:
        return None
    return view, type_


def _silhouette_dir(root: str, subject: str, type_: str, view: str) -> Optional[str]:
    """The sequence's silhouette folder in either accepted layout, or None when it has none."""
    for candidate in (os.path.join(root, subject, type_, view),
                      os.path.join(root, f"Silhouette_{view}-{type_}", subject)):
        if os.path.isdir(candidate):
            return candidate
    return None


def _choose(
    frames: List[np.ndarray],
    numbers: List[int],
    ids: Tuple[str, str, str],
    opts: OumvlpOptions,
    result: SequenceResult,
) -> List[int]:
    """Person index per kept frame, recording the method and the number of crowded frames.

    ``first`` takes person 0 everywhere; otherwise the selection index when ``auto`` and the
    sequence has one, else tracking, corrected by the silhouettes (``auto``) where they exist.
    """
    crowded = [t for t, f in enumerate(frames) if f.shape[0] > 1]
    result.choices = len(crowded)
    if opts.selection == "first":
        result.selection = "first"
        return [0] * len(frames)
    index_path = _selection_index_path(opts, ids)
    if index_path is not None:
        result.selection = "index"
        return _index_choice(index_path, frames, numbers)
    choice = track_walker(frames)
    result.selection = "tracking"
    sil_dir = _silhouette_dir(opts.silhouette_root, *ids) if _use_silhouettes(opts, crowded) else None
    if sil_dir is not None:
        used = _apply_silhouettes(choice, frames, numbers, crowded, sil_dir)
        if used:
            result.selection = "silhouette" if used == len(crowded) else "silhouette+tracking"
    return choice


def _selection_index_path(opts: OumvlpOptions, ids: Tuple[str, str, str]) -> Optional[str]:
    """The sequence's ``pose_selection_idx.pkl`` under ``auto`` selection, if the index tree has
    one (a sequence without it falls back to tracking)."""
    if opts.selection != "auto" or not opts.index_root:
        return None
    subject, type_, view = ids
    path = os.path.join(opts.index_root, subject, type_, view, INDEX_FILE)
    return path if os.path.isfile(path) else None


def _index_choice(index_path: str, frames: List[np.ndarray], numbers: List[int]) -> List[int]:
    """Person per frame from OpenGait's selection index: its entry in crowded frames (0 without
    one, as OpenGait), 0 in single-person frames. An entry beyond the frame's people means the
    index belongs to other pose files, which is refused rather than guessed."""
    index = load_selection_index(index_path)
    choice = []
    for f, n in zip(frames, numbers):
        k = index.get(n, 0) if f.shape[0] > 1 else 0
        if not 0 <= k < f.shape[0]:
            raise RawFileError(
                f"{index_path}: frame {n:04d} selects person {k} but the frame has {f.shape[0]} people; "
                "the index does not match these pose files (AlphaPose vs OpenPose release?)"
            )
        choice.append(k)
    return choice


def _use_silhouettes(opts: OumvlpOptions, crowded: List[int]) -> bool:
    """Silhouettes are read only under ``auto``, when given, and for a sequence with a crowded frame."""
    return opts.selection == "auto" and bool(opts.silhouette_root) and bool(crowded)


def _silhouette_images(sil_dir: str) -> Dict[int, str]:
    """Frame number -> silhouette PNG of one sequence (the first file of each number)."""
    images: Dict[int, str] = {}
    for name in iter_files(sil_dir, ".png"):
        n = frame_number(name, FRAME_DIGITS)
        if n is not None:
            images.setdefault(n, os.path.join(sil_dir, name))
    return images


def _apply_silhouettes(
    choice: List[int], frames: List[np.ndarray], numbers: List[int], crowded: List[int], sil_dir: str
) -> int:
    """Replace the tracked choice of each crowded frame that has a silhouette with the
    silhouette's choice (in place); returns how many frames it decided."""
    images = _silhouette_images(sil_dir)
    used = 0
    for t in crowded:
        if numbers[t] in images:
            choice[t] = silhouette_choice(frames[t], read_silhouette(images[numbers[t]]))
            used += 1
    return used


def _numbered_frame_files(seq_dir: str, result: SequenceResult) -> List[Tuple[int, str]]:
    """(frame number, file name) of the sequence's JSON files in frame order; a file without a
    frame number cannot be placed in time and is dropped with a note."""
    entries = []
    for name in iter_files(seq_dir, ".json"):
        n = frame_number(name, FRAME_DIGITS)
        if n is None:
            result.drop("file name without a frame number")
            result.problems.append(f"{os.path.join(seq_dir, name)}: no frame number in the file name; ignored")
            continue
        entries.append((n, name))
    return sorted(entries)


def _read_frames(
    seq_dir: str, entries: List[Tuple[int, str]], result: SequenceResult, on_error: str
) -> Tuple[List[np.ndarray], List[int]]:
    """The detections ``[P, 18, 3]`` of each frame with somebody in it, and those frames'
    numbers; empty frames are dropped, malformed files handled by the error policy."""
    frames: List[np.ndarray] = []
    numbers: List[int] = []
    for n, name in entries:
        result.frames_read += 1
        try:
            people = read_people(os.path.join(seq_dir, name))
        except RawFileError as exc:
            if on_error == "stop":
                raise
            result.drop("malformed file")
            result.problems.append(str(exc))
            continue
        if people.shape[0] == 0:
            result.drop("no person detected")
            continue
        frames.append(people)
        numbers.append(n)
    return frames, numbers


def convert_sequence(
    seq_dir: str,
    out_path: str,
    ids: Tuple[str, str, str],
    opts: OumvlpOptions,
    on_error: str = "skip",
) -> List[SequenceResult]:
    """Convert one ``<subject>/<view>_<type>`` folder of JSON frames into ``out_path``."""
    subject, type_, view = ids
    result = SequenceResult(name=f"{subject}/{type_}/{view}", status=EMPTY)
    entries = _numbered_frame_files(seq_dir, result)
    frames, numbers = _read_frames(seq_dir, entries, result, on_error)
    if not frames:
        if not entries:
            result.problems.append(f"{seq_dir}: no *.json frame files; nothing written")
        return [result]
    choice = _choose(frames, numbers, ids, opts, result)
    sequence = np.stack([f[k] for f, k in zip(frames, choice)])
    if opts.coco17:
        sequence = openpose_to_coco(sequence)
    write_sequence(out_path, sequence)
    result.status, result.output, result.frames_written = WRITTEN, out_path, len(sequence)
    return [result]


def _check_options(opts: OumvlpOptions) -> None:
    """Refuse an unknown selection method or a missing side-information folder before planning."""
    if opts.selection not in SELECTION_CHOICES:
        raise ConversionError(f"--selection must be one of {SELECTION_CHOICES}, got {opts.selection!r}")
    for what, path in (("--selection-index", opts.index_root), ("--silhouettes", opts.silhouette_root)):
        if path is not None:
            require_dir(path, what)


def _sequence_task(root: Path, out: Path, subject: str, folder: str, opts: OumvlpOptions) -> Optional[Task]:
    """The task of one raw ``<subject>/<view>_<type>`` folder; None for a folder not so named."""
    parts = split_folder_name(folder)
    if parts is None:
        return None
    view, type_ = parts
    out_path = str(out / subject / type_ / view / f"{view}.pkl")
    return Task(f"{subject}/{type_}/{view}", convert_sequence,
                (str(root / subject / folder), out_path, (subject, type_, view), opts), outputs=(out_path,))


def plan(input_root: str | Path, output_root: str | Path, opts: OumvlpOptions) -> Tuple[List[Task], List[str]]:
    """The tasks of a raw OUMVLP-Pose tree, plus notes about folders that were not understood."""
    root = require_dir(input_root, "OUMVLP-Pose input folder")
    check_separate_roots(input_root, output_root)
    _check_options(opts)
    tasks: List[Task] = []
    notes: List[str] = []
    for subject in iter_dirs(root):
        for folder in iter_dirs(root / subject):
            task = _sequence_task(root, Path(output_root), subject, folder, opts)
            if task is None:
                notes.append(f"ignored {root / subject / folder}: not a <view>_<type> folder (e.g. 000_00)")
            else:
                tasks.append(task)
    if not tasks:
        raise ConversionError(
            f"{root}: no <subject>/<view>_<type>/ folders found; --input must be the folder holding the "
            "subject folders (00001, 00002, ...) of OUMVLP-Pose"
        )
    return tasks, notes


# ----------------------------------------------------------------------------------------------
# 18 -> 17
# ----------------------------------------------------------------------------------------------
def convert_18_to_17(in_path: str, out_path: str, name: str, on_error: str = "skip") -> List[SequenceResult]:
    """Map one 18-joint pickle to COCO-17 (new joint i = old joint ``m[i]``, ``m`` =
    :data:`fastposegait.data.skeleton.OPENPOSE_TO_COCO`), dtype kept."""
    result = SequenceResult(name=name, status=EMPTY)
    try:
        sequence = load_pose(in_path)
        if sequence.shape[1] != OPENPOSE_JOINTS:
            raise PoseFileError(
                f"{in_path}: {sequence.shape[1]} joints, expected 18 (OpenPose/AlphaPose order); "
                "only 18-joint sequences are converted to COCO-17"
            )
    except PoseFileError as exc:
        if on_error == "stop":
            raise RawFileError(str(exc)) from None
        result.drop("unreadable pickle")
        result.problems.append(str(exc))
        return [result]
    result.frames_read = len(sequence)
    write_sequence(out_path, openpose_to_coco(sequence), dtype=None)
    result.status, result.output, result.frames_written = WRITTEN, out_path, len(sequence)
    return [result]


def _sequence_pickles(root: Path) -> Iterator[Tuple[str, str, str, str]]:
    """``(subject, type, view, file name)`` of every ``<subject>/<type>/<view>/*.pkl``, sorted."""
    for subject in iter_dirs(root):
        for type_ in iter_dirs(root / subject):
            for view in iter_dirs(root / subject / type_):
                for name in iter_files(root / subject / type_ / view, ".pkl"):
                    yield subject, type_, view, name


def plan_18_to_17(input_root: str | Path, output_root: str | Path) -> List[Task]:
    """One task per ``<subject>/<type>/<view>/*.pkl`` of an 18-joint tree."""
    root = require_dir(input_root, "18-joint dataset root")
    out = Path(output_root)
    check_separate_roots(input_root, output_root)  # the 18-joint files are kept, apart
    tasks = []
    for subject, type_, view, name in _sequence_pickles(root):
        key = f"{subject}/{type_}/{view}"
        dst = str(out / key / name)
        tasks.append(Task(key, convert_18_to_17, (str(root / key / name), dst, key), outputs=(dst,)))
    if not tasks:
        raise ConversionError(f"{root}: no <subject>/<type>/<view>/*.pkl files found")
    return tasks
