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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..data.skeleton import openpose_to_coco
from .parsing import check_finite, natural_key, read_json
from .tasks import EMPTY, WRITTEN, ConversionError, RawFileError, SequenceResult, Task, require_dir, write_sequence
from .selection import track_walker

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
        return f"{self.subject}/{self.type}/{self.view}"


@dataclass
class _Detection:
    track: Optional[str]
    keypoints: np.ndarray  # [V, 3]
    score: float


def _track_of(ann: Dict[str, Any]) -> Optional[str]:
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


def _read_video(spec: VideoSpec, result: SequenceResult, on_error: str) -> List[List[_Detection]]:
    """Frames (in order) of detections, malformed entries dropped or raised per ``on_error``."""
    joints: List[int] = []

    def bad(exc: RawFileError) -> None:
        if on_error == "stop":
            raise exc
        result.drop("malformed annotation" if spec.layout == "video" else "malformed file")
        result.problems.append(str(exc))

    if spec.layout == "video":
        try:
            anns, images = _annotations(read_json(spec.source), spec.source)
        except RawFileError as exc:
            bad(exc)
            return []
        by_frame: Dict[str, List[_Detection]] = defaultdict(list)
        for i, ann in enumerate(anns):
            frame = ann.get("image_id") if isinstance(ann, dict) else None
            try:
                if frame is None:
                    raise RawFileError(f"{spec.source}: annotation {i} has no image_id (the frame); re-export the file")
                det = _detection(ann, f"annotation {i}", joints, spec.source)
            except RawFileError as exc:
                bad(exc)
                continue
            by_frame[str(frame)].append(det)
        order = sorted(by_frame, key=lambda f: natural_key(images.get(f, f)))
        if images:  # frames with an image but nobody in it are known: count them as dropped
            result.frames_read = len(images)
            result.drop("no person detected", len(set(images) - set(by_frame)))
        else:
            result.frames_read = len(order)
        return [by_frame[f] for f in order]
    frames = []
    names = sorted((n for n in os.listdir(spec.source) if n.endswith(".json")), key=natural_key)
    for name in names:
        path = os.path.join(spec.source, name)
        result.frames_read += 1
        try:
            anns, _ = _annotations(read_json(path), path)
            dets = [_detection(a, f"detection {i}", joints, path) for i, a in enumerate(anns)]
        except RawFileError as exc:
            bad(exc)
            continue
        if not dets:
            result.drop("no person detected")
            continue
        frames.append(dets)
    return frames


def _select(spec: VideoSpec, frames: List[List[_Detection]], result: SequenceResult) -> List[np.ndarray]:
    crowded = sum(1 for f in frames if len(f) > 1)
    result.choices = crowded
    tracks = {d.track for f in frames for d in f if d.track is not None}
    if spec.track is not None or tracks:
        if spec.track is not None:
            chosen = spec.track
            result.selection = "given track"
            if chosen not in tracks:
                result.problems.append(f"{spec.source}: track {chosen!r} not found (tracks: {sorted(tracks)[:10]})")
                result.drop("chosen track absent", len(frames))
                return []
        else:
            length: Dict[str, int] = defaultdict(int)
            score: Dict[str, float] = defaultdict(float)
            for f in frames:
                for d in f:
                    if d.track is not None:
                        length[d.track] += 1
                        score[d.track] += d.score
            chosen = min(length, key=lambda t: (-length[t], -score[t] / length[t], natural_key(t)))
            result.selection = "longest track"
        out = []
        for f in frames:
            mine = [d for d in f if d.track == chosen]
            if mine:
                out.append(max(mine, key=lambda d: d.score).keypoints)
            else:
                result.drop("chosen track absent")
        return out
    result.selection = "tracking" if crowded else ""
    arrays = [np.stack([d.keypoints for d in f]) for f in frames]
    return [a[k] for a, k in zip(arrays, track_walker(arrays))]


def convert_video(spec: VideoSpec, out_path: str, on_error: str = "skip") -> List[SequenceResult]:
    """Convert one video's keypoint JSON into ``out_path``."""
    result = SequenceResult(name=spec.key, status=EMPTY)
    frames = _read_video(spec, result, on_error)
    sequence = _select(spec, frames, result)
    if not sequence:
        if not frames:
            result.problems.append(f"{spec.source}: no detections; nothing written")
        return [result]
    array = np.stack(sequence)
    if spec.coco17:
        if array.shape[1] != 18:
            exc = RawFileError(f"{spec.source}: {array.shape[1]} joints; --coco17 converts 18-joint OpenPose "
                               "keypoints only (drop the flag for COCO-17 input)")
            if on_error == "stop":
                raise exc
            result.problems.append(str(exc))
            return [result]
        array = openpose_to_coco(array)
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
        raise ConversionError(f"mapping file {str(path)!r} does not exist")
    rows: List[Dict[str, Any]]
    if path.suffix.lower() == ".json":
        try:
            data = read_json(path)
        except RawFileError as exc:
            raise ConversionError(str(exc)) from None
        if isinstance(data, dict):
            rows = [dict(v, video=k) if isinstance(v, dict) else {"video": k, "bad": v} for k, v in data.items()]
        elif isinstance(data, list):
            rows = data
        else:
            raise ConversionError(f"{path}: expected {{video: {{subject, type, view}}}} or a list of objects")
    else:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    mapping: Dict[str, Dict[str, str]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("video") or not row.get("subject"):
            raise ConversionError(f"{path}: entry {i + 1} needs at least 'video' and 'subject' "
                                  f"(columns: {', '.join(_COLUMNS)}); got {row!r}")
        entry = {k: str(row[k]).strip() for k in _COLUMNS if row.get(k) not in (None, "")}
        if entry.get("split") and entry["split"].lower() not in SPLIT_VALUES:
            raise ConversionError(f"{path}: entry {i + 1}: split {entry['split']!r} is not one of {SPLIT_VALUES}")
        video = entry.pop("video")
        if video in mapping:
            raise ConversionError(f"{path}: video {video!r} is listed twice")
        mapping[video] = entry
    return mapping


def _check_name(value: str, what: str, video: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\\" in value or value.startswith("."):
        raise ConversionError(f"video {video!r}: {what} {value!r} cannot be a folder name")
    return value


def find_videos(input_root: Path, layout: str, exclude: Sequence[Path] = ()) -> Dict[str, str]:
    """Relative video name -> source path (a JSON file or a folder of per-frame JSON files)."""
    skip = {p.resolve() for p in exclude}
    videos: Dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(input_root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        jsons = [f for f in sorted(filenames) if f.endswith(".json") and not f.startswith(".")]
        rel = Path(dirpath).relative_to(input_root)
        if layout == "video":
            for f in jsons:
                if (Path(dirpath) / f).resolve() not in skip:
                    videos[(rel / f[:-5]).as_posix()] = os.path.join(dirpath, f)
        elif jsons and rel.parts:
            videos[rel.as_posix()] = dirpath
    return videos


def _place(video: str, mapping: Optional[Dict[str, Dict[str, str]]]) -> Optional[Dict[str, str]]:
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
    mapping = read_mapping(mapping_path) if mapping_path is not None else None
    excluded = [Path(p) for p in exclude] + ([Path(mapping_path)] if mapping_path is not None else [])
    videos = find_videos(root, layout, excluded)
    if not videos:
        what = "*.json files" if layout == "video" else "folders holding per-frame *.json files"
        raise ConversionError(f"{root}: no {what} found (--layout {layout})")
    out = Path(output_root)
    tasks: List[Task] = []
    specs: List[VideoSpec] = []
    notes: List[str] = []
    seen: Dict[str, str] = {}
    unmapped = []
    for video, source in sorted(videos.items()):
        place = _place(video, mapping)
        if place is None:
            unmapped.append(video)
            continue
        subject = _check_name(place["subject"], "subject", video)
        type_ = _check_name(place.get("type", DEFAULT_TYPE), "type", video)
        view = _check_name(place.get("view", video.rsplit("/", 1)[-1]), "view", video)
        spec = VideoSpec(source, layout, subject, type_, view, place.get("track"), coco17,
                         place.get("split", "").lower() or None)
        if spec.key in seen:
            raise ConversionError(f"videos {seen[spec.key]!r} and {video!r} both map to {spec.key}; "
                                  "give them different types or views")
        seen[spec.key] = video
        dst = str(out / subject / type_ / view / f"{view}.pkl")
        tasks.append(Task(spec.key, convert_video, (spec, dst), outputs=(dst,)))
        specs.append(spec)
    if unmapped:
        notes.append(f"{len(unmapped)} videos are not in the mapping and were not converted: "
                     f"{', '.join(unmapped[:5])}{' ...' if len(unmapped) > 5 else ''}")
    if not tasks:
        raise ConversionError(f"no video of {root} is in the mapping {mapping_path}; check its 'video' column")
    return tasks, specs, notes


# ----------------------------------------------------------------------------------------------
# Partition
# ----------------------------------------------------------------------------------------------
def make_partition(
    specs: Sequence[VideoSpec],
    output_root: str | Path,
    split_file: Optional[str | Path] = None,
    test_fraction: float = 0.5,
    seed: int = 0,
) -> Tuple[Dict[str, List[str]], List[str]]:
    """The partition of the converted videos, and notes.

    Subjects come from ``split_file`` (TRAIN_SET / TEST_SET, optional PROBE_SET), else from the
    mapping's ``split`` column, else a seeded random ``test_fraction`` of the subjects is test.
    PROBE_SET, unless given, holds the first sequence (sorted type, then view) of each test
    subject that has at least two, so that the rest are its gallery.
    """
    from .gait3d import read_split_file

    out = Path(output_root)
    done = [s for s in specs if (out / s.subject / s.type / s.view / f"{s.view}.pkl").is_file()]
    subjects = sorted({s.subject for s in done})
    notes: List[str] = []
    probes: Optional[List[str]] = None
    if split_file is not None:
        given = read_split_file(split_file, require_probe=False, int_width=None)
        train, test = given["TRAIN_SET"], given["TEST_SET"]
        probes = given.get("PROBE_SET")
        unlisted = [s for s in subjects if s not in set(train) | set(test)]
        if unlisted:
            notes.append(f"{len(unlisted)} converted subjects are in neither list of {split_file}: {unlisted[:5]}")
    elif any(s.split for s in specs):
        role: Dict[str, str] = {}
        for s in specs:
            if s.split:
                kind = "test" if s.split in ("test", "probe") else "train"
                if role.setdefault(s.subject, kind) != kind:
                    raise ConversionError(f"subject {s.subject!r} is marked both train and test in the mapping")
        missing = [s for s in subjects if s not in role]
        if missing:
            raise ConversionError(f"the mapping's split column is empty for subjects {missing[:5]}; fill it for "
                                  "every video or for none")
        train = [s for s in subjects if role[s] == "train"]
        test = [s for s in subjects if role[s] == "test"]
        marked = [f"{s.subject}-{s.type}-{s.view}" for s in done if s.split == "probe"]
        probes = marked or None
    else:
        if len(subjects) < 2:
            raise ConversionError(f"{len(subjects)} subject converted; a train/test split needs at least 2")
        if not 0.0 < test_fraction < 1.0:
            raise ConversionError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
        order = np.random.default_rng(seed).permutation(len(subjects))
        n_test = min(len(subjects) - 1, max(1, int(round(test_fraction * len(subjects)))))
        test = sorted(subjects[i] for i in order[:n_test])
        train = sorted(subjects[i] for i in order[n_test:])
    if probes is None:
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
        if single:
            notes.append(f"{len(single)} test subjects have one sequence only: gallery, no probe ({single[:5]})")
    return {"TRAIN_SET": list(train), "TEST_SET": list(test), "PROBE_SET": list(probes)}, notes
