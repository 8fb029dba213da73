"""Your own videos: COCO-format keypoint JSON from a pose estimator -> the dataset layout.

Two input layouts (``layout``):

* ``video`` — one JSON file per video, anywhere under the input folder: a list of annotations
  ``{"image_id": frame, "keypoints": [x0, y0, c0, ...], "track_id": id, "score": s}`` (COCO
  results format, as written by AlphaPose, MMPose, Detectron2...; AlphaPose's ``"idx"`` is read
  as the track id), or a COCO dataset object ``{"images": [...], "annotations": [...]}``
  (frames ordered by the images' ``file_name``);
* ``frame`` — one folder per video holding one JSON per frame (frames in natural file-name
  order), each a list of annotations, ``{"annotations": [...]}`` or OpenPose's
  ``{"people": [{"pose_keypoints_2d": [...]}]}``.

Keypoints are 17 (COCO order) or 18 (OpenPose order; ``coco17`` maps them to COCO-17) joints.
When several people are in a video, the walker is the given track (mapping column ``track``),
else the longest track, else (no track ids) the person followed by joint continuity
(:func:`fastposegait.converters.selection.track_walker`).

Where each video goes (``<subject>/<type>/<view>``): a mapping file (CSV with a header
``video,subject,type,view[,track][,split]``, or JSON ``{video: {"subject": ..., ...}}``), or
the folder structure: ``<subject>/<video>`` -> type ``00``, view = video name;
``<subject>/<type>/<video>`` -> as named. The partition comes from a split file, the mapping's
``split`` column (``train``, ``test``, or ``probe`` = a test subject's probe sequence), or a
seeded random subject split; PROBE_SET holds one probe per test subject so that
``eval_func: evaluate_Gait3D`` evaluates it.
"""
from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.skeleton import openpose_to_coco
from ..errors import ConversionError, RawFileError
from .parsing import check_finite, natural_key, read_json
from .selection import track_walker
from .tasks import EMPTY, WRITTEN, SequenceResult, Task, check_separate_roots, require_dir, write_sequence

LAYOUTS = ("video", "frame")
DEFAULT_TYPE = "00"


@dataclass(frozen=True)
class VideoSpec:
    """One input video and where it goes."""

    source: str
    layout: str
    subject: str
    type: str
    view: str
    track: Optional[str] = None
    coco17: bool = False
    split: Optional[str] = None

    @property
    def key(self) -> str:
        """``subject/type/view``: the output folder, unique per video."""
        return f"{self.subject}/{self.type}/{self.view}"


@dataclass
class _Detection:
    track: Optional[str]
    keypoints: np.ndarray  # [V, 3]
    score: float


def _track_of(ann: Dict[str, Any]) -> Optional[str]:
    """The annotation's track id as a string (``track_id``, or AlphaPose's ``idx``), or None."""
    track = ann.get("track_id", ann.get("idx"))
    if isinstance(track, list):
        track = track[0] if len(track) == 1 else tuple(track)
    return None if track is None else str(track)


def _detection(ann: Any, where: str, joints: List[int], path: str) -> _Detection:
    """One annotation as a detection; ``joints`` holds the video's joint count once known."""
    if not isinstance(ann, dict):
        raise RawFileError(f"{path}: {where} is not an object with \"keypoints\"; re-export the file")
    values = ann.get("keypoints", ann.get("pose_keypoints_2d"))
    if not isinstance(values, list) or not values or len(values) % 3:
        size = len(values) if isinstance(values, list) else "no"
        raise RawFileError(f"{path}: {where} has {size} keypoint values, expected a list of x, y, score triplets "
                           "(51 for COCO-17, 54 for OpenPose-18); re-export the file")
    v = len(values) // 3
    if not joints:
        joints.append(v)
    elif v != joints[0]:
        raise RawFileError(f"{path}: {where} has {v} joints but the video's first detection has {joints[0]}")
    try:
        kp = np.array(values, dtype=np.float64).reshape(v, 3)
    except (TypeError, ValueError):
        raise RawFileError(f"{path}: {where} has non-numeric keypoint values; re-export the file") from None
    check_finite(kp, path)
    score = ann.get("score")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else float(kp[:, 2].mean())
    return _Detection(_track_of(ann), kp, score)


def _annotations(data: Any, path: str) -> Tuple[List[Any], Dict[str, str]]:
    """(annotations, image id -> file name) of a JSON document."""
    if isinstance(data, list):
        return data, {}
    if isinstance(data, dict):
        if isinstance(data.get("annotations"), list):
            images = {str(img.get("id")): str(img.get("file_name", img.get("id")))
                      for img in data.get("images", []) if isinstance(img, dict)}
            return data["annotations"], images
        if isinstance(data.get("people"), list):
            return data["people"], {}
    raise RawFileError(f"{path}: expected a list of annotations, {{\"annotations\": [...]}} or {{\"people\": [...]}}")


def _malformed(spec: VideoSpec, result: SequenceResult, on_error: str, exc: RawFileError) -> None:
    """Apply the error policy to one malformed annotation (``video`` layout) or frame file
    (``frame`` layout): raise it under ``stop``, else count the drop and keep the message."""
    if on_error == "stop":
        raise exc
    result.drop("malformed annotation" if spec.layout == "video" else "malformed file")
    result.problems.append(str(exc))


def _read_video(spec: VideoSpec, result: SequenceResult, on_error: str) -> List[List[_Detection]]:
    """Frames (in order) of detections, malformed entries dropped or raised per ``on_error``."""
    reader = _read_video_file if spec.layout == "video" else _read_frame_folder
    return reader(spec, result, on_error)


def _read_video_file(spec: VideoSpec, result: SequenceResult, on_error: str) -> List[List[_Detection]]:
    """The ``video`` layout: one JSON holds every frame's annotations; frames are ordered by
    their image's file name (or the image id) in natural order. Frames listed as images but
    without any annotation count as dropped (no person detected)."""
    try:
        anns, images = _annotations(read_json(spec.source), spec.source)
    except RawFileError as exc:
        _malformed(spec, result, on_error, exc)
        return []
    by_frame = _detections_by_frame(spec, anns, result, on_error)
    order = sorted(by_frame, key=lambda f: natural_key(images.get(f, f)))
    if images:  # frames with an image but nobody in it are known: count them as dropped
        result.frames_read = len(images)
        result.drop("no person detected", len(set(images) - set(by_frame)))
    else:
        result.frames_read = len(order)
    return [by_frame[f] for f in order]


def _detections_by_frame(
    spec: VideoSpec, anns: List[Any], result: SequenceResult, on_error: str
) -> Dict[str, List[_Detection]]:
    """Frame id -> its detections, for the annotations of one video file (a malformed one is
    handled by the error policy and left out)."""
    joints: List[int] = []
    by_frame: Dict[str, List[_Detection]] = defaultdict(list)
    for i, ann in enumerate(anns):
        try:
            frame, det = _frame_detection(ann, i, joints, spec.source)
        except RawFileError as exc:
            _malformed(spec, result, on_error, exc)
            continue
        by_frame[frame].append(det)
    return by_frame


def _frame_detection(ann: Any, i: int, joints: List[int], path: str) -> Tuple[str, _Detection]:
    """(frame id, detection) of annotation ``i``; without an ``image_id`` its frame is unknown."""
    frame = ann.get("image_id") if isinstance(ann, dict) else None
    if frame is None:
        raise RawFileError(f"{path}: annotation {i} has no image_id (the frame); re-export the file")
    return str(frame), _detection(ann, f"annotation {i}", joints, path)


def _read_frame_folder(spec: VideoSpec, result: SequenceResult, on_error: str) -> List[List[_Detection]]:
    """The ``frame`` layout: one JSON per frame in natural file-name order; a frame without
    anyone is dropped, a malformed file handled by the error policy."""
    joints: List[int] = []
    frames = []
    for name in sorted(_json_files(spec.source, hidden=True), key=natural_key):
        path = os.path.join(spec.source, name)
        result.frames_read += 1
        try:
            anns, _ = _annotations(read_json(path), path)
            dets = [_detection(a, f"detection {i}", joints, path) for i, a in enumerate(anns)]
        except RawFileError as exc:
            _malformed(spec, result, on_error, exc)
            continue
        if not dets:
            result.drop("no person detected")
            continue
        frames.append(dets)
    return frames


def _select(spec: VideoSpec, frames: List[List[_Detection]], result: SequenceResult) -> List[np.ndarray]:
    """The walker's keypoints per frame: the given track, else the longest track, else (no
    track ids at all) the person followed by joint continuity."""
    result.choices = sum(1 for f in frames if len(f) > 1)
    tracks = {d.track for f in frames for d in f if d.track is not None}
    if spec.track is not None:
        return _given_track(spec, frames, tracks, result)
    if tracks:
        result.selection = "longest track"
        return _track_keypoints(frames, _longest_track(frames), result)
    result.selection = "tracking" if result.choices else ""
    arrays = [np.stack([d.keypoints for d in f]) for f in frames]
    return [a[k] for a, k in zip(arrays, track_walker(arrays))]


def _given_track(
    spec: VideoSpec, frames: List[List[_Detection]], tracks: set, result: SequenceResult
) -> List[np.ndarray]:
    """The keypoints of the mapping's ``track``; nothing (and a problem noted) when the video
    has no such track, rather than silently taking somebody else."""
    result.selection = "given track"
    if spec.track not in tracks:
        result.problems.append(f"{spec.source}: track {spec.track!r} not found (tracks: {sorted(tracks)[:10]})")
        result.drop("chosen track absent", len(frames))
        return []
    return _track_keypoints(frames, spec.track, result)


def _longest_track(frames: List[List[_Detection]]) -> str:
    """The track in most frames (ties: the higher mean score, then the first in natural order):
    the walker crosses the whole video, bystanders usually do not."""
    length: Dict[str, int] = defaultdict(int)
    score: Dict[str, float] = defaultdict(float)
    for d in (d for f in frames for d in f if d.track is not None):
        length[d.track] += 1
        score[d.track] += d.score
    return min(length, key=lambda t: (-length[t], -score[t] / length[t], natural_key(t)))


def _track_keypoints(frames: List[List[_Detection]], chosen: str, result: SequenceResult) -> List[np.ndarray]:
    """Per frame, the most confident detection of track ``chosen``; frames without it are dropped."""
    out = []
    for f in frames:
        mine = [d for d in f if d.track == chosen]
        if mine:
            out.append(max(mine, key=lambda d: d.score).keypoints)
        else:
            result.drop("chosen track absent")
    return out


def _to_coco17(spec: VideoSpec, array: np.ndarray, result: SequenceResult, on_error: str) -> Optional[np.ndarray]:
    """``--coco17``: map 18 OpenPose joints to COCO-17; any other joint count is a malformed
    video (raised under ``stop``, else noted and None: nothing is written)."""
    if array.shape[1] == 18:
        return openpose_to_coco(array)
    exc = RawFileError(f"{spec.source}: {array.shape[1]} joints; --coco17 converts 18-joint OpenPose "
                       "keypoints only (drop the flag for COCO-17 input)")
    if on_error == "stop":
        raise exc
    result.problems.append(str(exc))
    return None


def read_walker(spec: VideoSpec, on_error: str = "skip") -> Tuple[Optional[np.ndarray], SequenceResult]:
    """The walker's keypoints ``[T, V, 3]`` (float64) of one video's keypoint JSON, and what
    happened while reading it; None when no frame is usable (the result says why).

    This is the whole reading path of the converter (frames, the person chosen per frame,
    ``--coco17``), shared with :func:`fastposegait.recognition.inputs.read_sequences` so that a
    JSON gives the same array whether it is converted or identified directly. ``on_error``:
    ``stop`` raises the first :class:`~fastposegait.errors.RawFileError`, ``skip`` drops the
    malformed annotation or frame file and notes it in ``result.problems``.
    """
    result = SequenceResult(name=spec.key, status=EMPTY)
    frames = _read_video(spec, result, on_error)
    sequence = _select(spec, frames, result)
    if not sequence:
        if not frames:
            result.problems.append(f"{spec.source}: no detections; nothing written")
        return None, result
    array = np.stack(sequence)
    if spec.coco17:
        array = _to_coco17(spec, array, result, on_error)
    return array, result


def convert_video(spec: VideoSpec, out_path: str, on_error: str = "skip") -> List[SequenceResult]:
    """Convert one video's keypoint JSON into ``out_path``."""
    array, result = read_walker(spec, on_error)
    if array is None:
        return [result]
    write_sequence(out_path, array)
    result.status, result.output, result.frames_written = WRITTEN, out_path, len(array)
    return [result]


# ----------------------------------------------------------------------------------------------
# Finding videos and where they go
# ----------------------------------------------------------------------------------------------
_COLUMNS = ("video", "subject", "type", "view", "track", "split")
SPLIT_VALUES = ("train", "test", "probe")


def read_mapping(path: str | Path) -> Dict[str, Dict[str, str]]:
    """video -> {subject, type, view[, track][, split]} from a CSV (header row required) or JSON
    (``{video: {...}}`` or a list of objects with a ``video`` key)."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ConversionError(f"mapping file {str(path)!r} {what}")
    rows = _json_mapping_rows(path) if path.suffix.lower() == ".json" else _csv_mapping_rows(path)
    mapping: Dict[str, Dict[str, str]] = {}
    for i, row in enumerate(rows):
        video, entry = _mapping_entry(path, i, row)
        if video in mapping:
            raise ConversionError(f"{path}: video {video!r} is listed twice")
        mapping[video] = entry
    return mapping


def _json_mapping_rows(path: Path) -> List[Any]:
    """The rows of a JSON mapping: ``{video: {...}}`` becomes one row per video (a value that is
    not an object is kept as a row without a subject, which :func:`_mapping_entry` refuses)."""
    try:
        data = read_json(path)
    except RawFileError as exc:
        raise ConversionError(str(exc)) from None
    if isinstance(data, dict):
        return [dict(v, video=k) if isinstance(v, dict) else {"video": k, "bad": v} for k, v in data.items()]
    if isinstance(data, list):
        return data
    raise ConversionError(f"{path}: expected {{video: {{subject, type, view}}}} or a list of objects")


def _csv_mapping_rows(path: Path) -> List[Dict[str, Any]]:
    """The rows of a CSV mapping, keyed by its header row."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _mapping_entry(path: Path, i: int, row: Any) -> Tuple[str, Dict[str, str]]:
    """(video, its known non-empty columns, stripped) of row ``i``; a row without a video or a
    subject, or with an unknown split, is refused with its 1-based number."""
    if not isinstance(row, dict) or not row.get("video") or not row.get("subject"):
        raise ConversionError(f"{path}: entry {i + 1} needs at least 'video' and 'subject' "
                              f"(columns: {', '.join(_COLUMNS)}); got {row!r}")
    entry = {k: str(row[k]).strip() for k in _COLUMNS if row.get(k) not in (None, "")}
    if entry.get("split") and entry["split"].lower() not in SPLIT_VALUES:
        raise ConversionError(f"{path}: entry {i + 1}: split {entry['split']!r} is not one of {SPLIT_VALUES}")
    return entry.pop("video"), entry


def _check_name(value: str, what: str, video: str) -> str:
    """``value`` unchanged if it is one plain folder name (no separator, not hidden, not ``..``)."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or value.startswith("."):
        raise ConversionError(f"video {video!r}: {what} {value!r} cannot be a folder name")
    return value


def _json_files(folder: str, hidden: bool = False) -> List[str]:
    """Sorted names of the regular ``*.json`` files of ``folder`` (hidden ones only with
    ``hidden``). A FIFO (whose ``open`` would block forever) or a folder named like a JSON file
    is no keypoint file."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it
                      if e.name.endswith(".json") and (hidden or not e.name.startswith(".")) and e.is_file())


def find_videos(input_root: Path, layout: str, exclude: Sequence[Path] = ()) -> Dict[str, str]:
    """Relative video name -> source path (a JSON file or a folder of per-frame JSON files)."""
    skip = {p.resolve() for p in exclude}
    videos: Dict[str, str] = {}
    for dirpath, dirnames, _ in os.walk(input_root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        jsons = _json_files(dirpath)
        rel = Path(dirpath).relative_to(input_root)
        if layout == "video":
            for f in jsons:
                if (Path(dirpath) / f).resolve() not in skip:
                    videos[(rel / f[:-5]).as_posix()] = os.path.join(dirpath, f)
        elif jsons and rel.parts:
            videos[rel.as_posix()] = dirpath
    return videos


def _place(video: str, mapping: Optional[Dict[str, Dict[str, str]]]) -> Optional[Dict[str, str]]:
    """Where ``video`` goes: its mapping entry (by relative path, name, or file name; None when
    unmapped), or, without a mapping, its folders (``<subject>/<video>`` or ``<subject>/<type>/<video>``)."""
    if mapping is not None:
        name = video.rsplit("/", 1)[-1]
        return mapping.get(video) or mapping.get(name) or mapping.get(f"{name}.json")
    parts = video.split("/")
    if len(parts) == 2:
        return {"subject": parts[0], "type": DEFAULT_TYPE, "view": parts[1]}
    if len(parts) == 3:
        return {"subject": parts[0], "type": parts[1], "view": parts[2]}
    raise ConversionError(
        f"video {video!r}: cannot tell its subject from the folders; lay the input out as "
        "<subject>/<video>.json (or <subject>/<type>/<video>.json), or pass --mapping"
    )


def plan(
    input_root: str | Path,
    output_root: str | Path,
    layout: str = "video",
    mapping_path: Optional[str | Path] = None,
    coco17: bool = False,
    exclude: Sequence[str | Path] = (),
) -> Tuple[List[Task], List[VideoSpec], List[str]]:
    """Tasks for every video, the video specs (for the partition) and notes (unmapped videos)."""
    if layout not in LAYOUTS:
        raise ConversionError(f"--layout must be one of {LAYOUTS}, got {layout!r}")
    root = require_dir(input_root, "input folder")
    check_separate_roots(input_root, output_root)
    mapping = read_mapping(mapping_path) if mapping_path is not None else None
    excluded = [Path(p) for p in exclude] + ([Path(mapping_path)] if mapping_path is not None else [])
    videos = find_videos(root, layout, excluded)
    if not videos:
        what = "*.json files" if layout == "video" else "folders holding per-frame *.json files"
        raise ConversionError(f"{root}: no {what} found (--layout {layout})")
    specs, unmapped = _video_specs(videos, mapping, layout, coco17)
    if not specs:
        raise ConversionError(f"no video of {root} is in the mapping {mapping_path}; check its 'video' column")
    notes = [f"{len(unmapped)} videos are not in the mapping and were not converted: "
             f"{', '.join(unmapped[:5])}{' ...' if len(unmapped) > 5 else ''}"] if unmapped else []
    return [_video_task(spec, Path(output_root)) for spec in specs], specs, notes


def _video_specs(
    videos: Dict[str, str], mapping: Optional[Dict[str, Dict[str, str]]], layout: str, coco17: bool
) -> Tuple[List[VideoSpec], List[str]]:
    """The spec of every placed video (sorted by video name) and the videos the mapping leaves
    out; two videos placed in the same ``subject/type/view`` are refused (one would overwrite
    the other)."""
    specs: List[VideoSpec] = []
    unmapped: List[str] = []
    seen: Dict[str, str] = {}
    for video, source in sorted(videos.items()):
        place = _place(video, mapping)
        if place is None:
            unmapped.append(video)
            continue
        spec = _video_spec(video, source, place, layout, coco17)
        if spec.key in seen:
            raise ConversionError(f"videos {seen[spec.key]!r} and {video!r} both map to {spec.key}; "
                                  "give them different types or views")
        seen[spec.key] = video
        specs.append(spec)
    return specs, unmapped


def _video_spec(video: str, source: str, place: Dict[str, str], layout: str, coco17: bool) -> VideoSpec:
    """A video's spec from its place; type defaults to ``00`` and view to the video's name, and
    each must be usable as a folder name."""
    subject = _check_name(place["subject"], "subject", video)
    type_ = _check_name(place.get("type", DEFAULT_TYPE), "type", video)
    view = _check_name(place.get("view", video.rsplit("/", 1)[-1]), "view", video)
    return VideoSpec(source, layout, subject, type_, view, place.get("track"), coco17,
                     place.get("split", "").lower() or None)


def _video_task(spec: VideoSpec, out: Path) -> Task:
    """The task converting one video to ``<out>/<subject>/<type>/<view>/<view>.pkl``."""
    dst = str(out / spec.subject / spec.type / spec.view / f"{spec.view}.pkl")
    return Task(spec.key, convert_video, (spec, dst), outputs=(dst,))


# ----------------------------------------------------------------------------------------------
# Partition
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _PartitionInput:
    """What every partition strategy may use.

    Attributes:
        specs: every mapped video (the mapping's ``split`` column is read from all of them).
        done: the videos whose pickle exists, i.e. the sequences the loader will see.
        subjects: the sorted subjects of ``done``.
        split_file, test_fraction, seed: the command-line options of the strategies.
    """

    specs: Sequence[VideoSpec]
    done: List[VideoSpec]
    subjects: List[str]
    split_file: Optional[str | Path]
    test_fraction: float
    seed: int


@dataclass
class _Split:
    """A strategy's answer: the subjects of each split, the probes if the strategy names them
    (None: choose them by the default rule), and notes for the summary."""

    train: List[str]
    test: List[str]
    probes: Optional[List[str]] = None
    notes: List[str] = field(default_factory=list)


def _split_from_file(given: _PartitionInput) -> _Split:
    """TRAIN_SET / TEST_SET (optional PROBE_SET) from the user's split file, in its order;
    converted subjects it does not list are noted (the loader would never use them)."""
    from .gait3d import read_split_file

    split = read_split_file(given.split_file, require_probe=False, int_width=None)
    train, test = split["TRAIN_SET"], split["TEST_SET"]
    listed = set(train) | set(test)
    unlisted = [s for s in given.subjects if s not in listed]
    notes = [f"{len(unlisted)} converted subjects are in neither list of {given.split_file}: {unlisted[:5]}"
             ] if unlisted else []
    return _Split(train, test, split.get("PROBE_SET"), notes)


def _subject_roles(specs: Sequence[VideoSpec]) -> Dict[str, str]:
    """subject -> ``train`` or ``test`` from the mapping's split column (``probe`` marks a test
    subject); a subject marked both ways is refused."""
    role: Dict[str, str] = {}
    for s in specs:
        if s.split:
            kind = "test" if s.split in ("test", "probe") else "train"
            if role.setdefault(s.subject, kind) != kind:
                raise ConversionError(f"subject {s.subject!r} is marked both train and test in the mapping")
    return role


def _split_from_mapping(given: _PartitionInput) -> _Split:
    """The subjects of each split from the mapping's ``split`` column, which must be filled for
    every converted subject; the sequences marked ``probe`` are the probes (if any)."""
    role = _subject_roles(given.specs)
    missing = [s for s in given.subjects if s not in role]
    if missing:
        raise ConversionError(f"the mapping's split column is empty for subjects {missing[:5]}; fill it for "
                              "every video or for none")
    train = [s for s in given.subjects if role[s] == "train"]
    test = [s for s in given.subjects if role[s] == "test"]
    marked = [f"{s.subject}-{s.type}-{s.view}" for s in given.done if s.split == "probe"]
    return _Split(train, test, marked or None)


def _random_split(given: _PartitionInput) -> _Split:
    """A seeded random ``test_fraction`` of the subjects is test (at least one subject in each
    split), the rest train; both sorted."""
    subjects = given.subjects
    if len(subjects) < 2:
        raise ConversionError(f"{len(subjects)} subject converted; a train/test split needs at least 2")
    if not 0.0 < given.test_fraction < 1.0:
        raise ConversionError(f"--test-fraction must be between 0 and 1, got {given.test_fraction}")
    order = np.random.default_rng(given.seed).permutation(len(subjects))
    n_test = min(len(subjects) - 1, max(1, int(round(given.test_fraction * len(subjects)))))
    return _Split(sorted(subjects[i] for i in order[n_test:]), sorted(subjects[i] for i in order[:n_test]))


# The partition strategies, by name; :func:`_strategy` picks one from the options given.
PARTITION_STRATEGIES = {
    "split-file": _split_from_file,
    "mapping": _split_from_mapping,
    "random": _random_split,
}


def _strategy(split_file: Optional[str | Path], specs: Sequence[VideoSpec]) -> str:
    """A split file wins, then the mapping's split column, then a random split."""
    if split_file is not None:
        return "split-file"
    if any(s.split for s in specs):
        return "mapping"
    return "random"


def _default_probes(done: Sequence[VideoSpec], test: Sequence[str]) -> Tuple[List[str], List[str]]:
    """One probe per test subject with at least two sequences: its first (sorted type, then
    view), so that the others are its gallery; and a note on the subjects with one sequence."""
    by_subject: Dict[str, List[VideoSpec]] = defaultdict(list)
    for s in done:
        by_subject[s.subject].append(s)
    probes, single = [], []
    for subject in test:
        seqs = sorted(by_subject.get(subject, []), key=lambda s: (s.type, s.view))
        if len(seqs) >= 2:
            probes.append(f"{subject}-{seqs[0].type}-{seqs[0].view}")
        elif seqs:
            single.append(subject)
    notes = [f"{len(single)} test subjects have one sequence only: gallery, no probe ({single[:5]})"] if single else []
    return probes, notes


def make_partition(
    specs: Sequence[VideoSpec],
    output_root: str | Path,
    split_file: Optional[str | Path] = None,
    test_fraction: float = 0.5,
    seed: int = 0,
) -> Tuple[Dict[str, List[str]], List[str]]:
    """The partition of the converted videos, and notes.

    Subjects come from ``split_file`` (TRAIN_SET / TEST_SET, optional PROBE_SET), else from the
    mapping's ``split`` column, else a seeded random ``test_fraction`` of the subjects is test
    (:data:`PARTITION_STRATEGIES`). PROBE_SET, unless given, holds the first sequence (sorted
    type, then view) of each test subject that has at least two, so that the rest are its gallery.
    """
    out = Path(output_root)
    done = [s for s in specs if (out / s.subject / s.type / s.view / f"{s.view}.pkl").is_file()]
    given = _PartitionInput(specs, done, sorted({s.subject for s in done}), split_file, test_fraction, seed)
    split = PARTITION_STRATEGIES[_strategy(split_file, specs)](given)
    probes, notes = split.probes, list(split.notes)
    if probes is None:
        probes, probe_notes = _default_probes(done, split.test)
        notes.extend(probe_notes)
    return {"TRAIN_SET": list(split.train), "TEST_SET": list(split.test), "PROBE_SET": list(probes)}, notes
