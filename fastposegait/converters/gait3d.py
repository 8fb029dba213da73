"""Gait3D: ``2D_Poses`` per-frame text files -> one pickle per sequence, and its partition.

Raw: ``2D_Poses/<id>/camid<c>_videoid<v>/seq<k>/human_crop_f<frame>.txt``, ``<frame>`` the video
frame number without zero padding; one line: two numbers that are not keypoints, then 17 ×
(x, y, conf) in COCO order. Output: ``<out>/<id>/<camvid>/<seq>/<seq>.pkl`` ``[T, 17, 3]``
float64, frames in **integer** frame-number order (the original FastPoseGait script sorted the
file names as text, which puts ``f10000`` before ``f9999``; the other deliberate differences
are listed in docs/upstream_differences.md).

The partition is not a rule: it comes from Gait3D's official split, which the user passes in
(:func:`read_split_file` documents the accepted forms).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import ConversionError, RawFileError
from .parsing import read_json, read_number_lines
from .tasks import (EMPTY, WRITTEN, SequenceResult, Task, check_separate_roots, iter_dirs, iter_files, require_dir,
                    write_sequence)

_FRAME = re.compile(r"f(\d+)\.txt$")
_LEADING = 2
_JOINTS = 17
SPLIT_KEYS = ("TRAIN_SET", "TEST_SET", "PROBE_SET")


def convert_sequence(seq_dir: str, out_path: str, name: str, on_error: str = "skip") -> List[SequenceResult]:
    """Convert one ``<id>/<camvid>/<seq>`` folder, frames ordered by their integer number."""
    result = SequenceResult(name=name, status=EMPTY)
    numbered = _numbered_files(seq_dir, result)
    frames = _read_frames(seq_dir, numbered, result, on_error)
    if not numbered:
        result.problems.append(f"{seq_dir}: no human_crop_f<frame>.txt files; nothing written")
    if frames:
        write_sequence(out_path, frames)
        result.status, result.output, result.frames_written = WRITTEN, out_path, len(frames)
    return [result]


def _numbered_files(seq_dir: str, result: SequenceResult) -> List[Tuple[int, str]]:
    """(frame number, file name) of the ``human_crop_f<frame>.txt`` files in integer frame order
    (the names are not zero-padded, so text order would misplace ``f10000``); other ``.txt``
    files are dropped with a note."""
    numbered = []
    for file in iter_files(seq_dir, ".txt"):
        match = _FRAME.search(file)
        if match is None:
            result.drop("file name without a frame number")
            result.problems.append(f"{os.path.join(seq_dir, file)}: not human_crop_f<frame>.txt; ignored")
            continue
        numbered.append((int(match.group(1)), file))
    return sorted(numbered)


def _read_frames(
    seq_dir: str, numbered: List[Tuple[int, str]], result: SequenceResult, on_error: str
) -> List[np.ndarray]:
    """The ``[17, 3]`` keypoints of each file, malformed files handled by the error policy."""
    names = [file for _, file in numbered]
    return read_number_lines(seq_dir, names, _LEADING, _JOINTS, "Gait3D 2D pose .txt", result, on_error)


def find_pose_root(input_path: str | Path) -> Path:
    """``input_path`` itself, or its ``2D_Poses`` sub-folder when given the release folder."""
    path = require_dir(input_path, "Gait3D input folder")
    return path / "2D_Poses" if (path / "2D_Poses").is_dir() else path


def plan(input_path: str | Path, output_root: str | Path) -> List[Task]:
    """One task per ``<id>/<camvid>/<seq>`` folder."""
    root = find_pose_root(input_path)
    check_separate_roots(input_path, output_root)
    out = Path(output_root)
    tasks = []
    for subject in iter_dirs(root):
        for camvid in iter_dirs(root / subject):
            for seq in iter_dirs(root / subject / camvid):
                dst = str(out / subject / camvid / seq / f"{seq}.pkl")
                name = f"{subject}/{camvid}/{seq}"
                tasks.append(Task(name, convert_sequence, (str(root / subject / camvid / seq), dst, name),
                                  outputs=(dst,)))
    if not tasks:
        raise ConversionError(
            f"{root}: no <id>/<camid_videoid>/<seq>/ folders; --input must be Gait3D's 2D_Poses folder"
        )
    return tasks


# ----------------------------------------------------------------------------------------------
# The official split
# ----------------------------------------------------------------------------------------------
def _canonical_key(key: str) -> str:
    """``train``, ``Test_Set``, ``PROBE-SET`` ... -> the canonical ``*_SET`` key (others unchanged)."""
    k = key.strip().lower().replace("-", "_")
    k = k[:-4] if k.endswith("_set") else k
    return {"train": "TRAIN_SET", "test": "TEST_SET", "probe": "PROBE_SET"}.get(k, key)


def _subject(value: Any, path: Path, key: str, int_width: Optional[int]) -> str:
    """A subject id as a string (an integer zero-padded to ``int_width``); anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConversionError(f"{path}: {key} entries must be subject ids (\"0001\" or 1), got {value!r}")
    if isinstance(value, int):
        return f"{value:0{int_width}d}" if int_width else str(value)
    return value.strip()


def _probe(value: Any, path: Path, int_width: Optional[int]) -> str:
    """A probe entry in any accepted form as ``<id>-<camid_videoid>-<seq>`` (the loader's key)."""
    if isinstance(value, (list, tuple)) and len(value) == 3:
        parts = [str(v) for v in value]
        if isinstance(value[0], int) and int_width:
            parts[0] = f"{value[0]:0{int_width}d}"
    elif isinstance(value, str) and value.count("/") == 2:
        parts = value.strip().strip("/").split("/")
    elif isinstance(value, str) and value.count("-") >= 2:
        return value.strip()
    else:
        raise ConversionError(
            f"{path}: PROBE_SET entry {value!r} is not \"<id>-<camid_videoid>-<seq>\", \"<id>/<camid_videoid>/<seq>\" "
            "or [id, camid_videoid, seq]"
        )
    return "-".join(parts)


def read_split_file(path: str | Path, require_probe: bool = True, int_width: Optional[int] = 4) -> Dict[str, List[str]]:
    """Read Gait3D's official split (or any split file of the same form).

    Expected: a JSON object with ``TRAIN_SET`` and ``TEST_SET`` (lists of subject ids) and
    ``PROBE_SET`` (the probe sequences, one per test subject) — the ``Gait3D.json`` that ships with
    OpenGait/FastPoseGait. Also accepted: keys in any case, with or without ``_SET``
    (``train``, ``test``, ``probe``); subject ids as integers (written ``%04d``); probe entries
    as ``"<id>-<camid_videoid>-<seq>"``, ``"<id>/<camid_videoid>/<seq>"`` or a 3-element list.
    List order is kept (it is the index order). ``require_probe=False`` makes PROBE_SET
    optional; ``int_width`` is the zero padding of integer subject ids (None: no padding).
    """
    path = Path(path).expanduser()
    split = _normalise_split(_load_split_json(path), path, int_width)
    missing = [k for k in SPLIT_KEYS if k not in split and (require_probe or k != "PROBE_SET")]
    if missing:
        raise ConversionError(
            f"{path}: missing {', '.join(missing)}; Gait3D's split lists TRAIN_SET and TEST_SET subjects and "
            "the PROBE_SET sequences (the Gait3D evaluation needs PROBE_SET)"
        )
    return {k: split[k] for k in SPLIT_KEYS if k in split}


def _load_split_json(path: Path) -> Dict[Any, Any]:
    """The split file's JSON object; a missing, unreadable or non-object file is a ConversionError
    (the conversion cannot start without its split)."""
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ConversionError(f"split file {str(path)!r} {what}; pass Gait3D's official split (Gait3D.json)")
    try:
        raw = read_json(path)
    except RawFileError as exc:
        raise ConversionError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ConversionError(f"{path}: expected a JSON object with TRAIN_SET, TEST_SET and PROBE_SET")
    return raw


def _normalise_split(raw: Dict[Any, Any], path: Path, int_width: Optional[int]) -> Dict[str, List[str]]:
    """The split's lists under their canonical keys, entries normalised (other keys ignored)."""
    split: Dict[str, List[str]] = {}
    for key, value in raw.items():
        canon = _canonical_key(str(key))
        if canon not in SPLIT_KEYS:
            continue
        if not isinstance(value, list):
            raise ConversionError(f"{path}: {key} must be a list")
        if canon == "PROBE_SET":
            split[canon] = [_probe(v, path, int_width) for v in value]
        else:
            split[canon] = [_subject(v, path, key, int_width) for v in value]
    return split


def split_errors(split: Dict[str, List[str]]) -> List[str]:
    """What makes a split unusable, whatever was converted: a subject in both TRAIN_SET and
    TEST_SET, a PROBE_SET entry whose subject is not a test subject."""
    errors: List[str] = []
    overlap = sorted(set(split["TRAIN_SET"]) & set(split["TEST_SET"]))
    if overlap:
        errors.append(f"{len(overlap)} subjects are in both TRAIN_SET and TEST_SET: {overlap[:5]}")
    test_set = set(split["TEST_SET"])
    for entry in split.get("PROBE_SET", []):
        subject = entry.split("-", 1)[0]
        if subject not in test_set:
            errors.append(f"PROBE_SET entry {entry!r}: subject {subject!r} is not in TEST_SET")
    return errors


def split_notes(split: Dict[str, List[str]], root: str | Path) -> List[str]:
    """How a (valid) split compares with a converted tree: subjects or probes that were not
    converted, converted test subjects without a probe."""
    root = Path(root)
    notes: List[str] = []
    on_disk = set(iter_dirs(root)) if root.is_dir() else set()
    for key in ("TRAIN_SET", "TEST_SET"):
        absent = [s for s in split[key] if s not in on_disk]
        if absent:
            notes.append(f"{len(absent)} of {len(split[key])} {key} subjects were not converted "
                         f"(e.g. {absent[:3]}); the loader skips them with a warning")
    probes = split.get("PROBE_SET", [])
    absent_probes = [entry for entry in probes if not _probe_dir(root, entry).is_dir()]
    if absent_probes:
        notes.append(f"{len(absent_probes)} PROBE_SET sequences were not converted (e.g. {absent_probes[:3]})")
    probed = {entry.split("-")[0] for entry in probes}
    unprobed = [s for s in split["TEST_SET"] if s not in probed and s in on_disk]
    if unprobed:
        notes.append(f"{len(unprobed)} converted test subjects have no PROBE_SET sequence (e.g. {unprobed[:3]})")
    return notes


def _probe_dir(root: Path, entry: str) -> Path:
    """The folder of a ``<id>-camid<c>_videoid<v>-<seq>`` probe: ``camid<c>_videoid<v>`` holds
    no ``-``, so the subject is the first part and the sequence the last."""
    parts = entry.split("-")
    return root / parts[0] / "-".join(parts[1:-1]) / parts[-1]
