"""GREW: per-frame ``_2d_pose.txt`` files -> the rearranged pickle layout.

Raw (after unpacking the official archives)::

    train/<id>/<seq>/<NNNNN>_2d_pose.txt        train/<id>/<seq>_gei.png
    test/gallery/<id>/<seq>/<NNNNN>_2d_pose.txt
    test/probe/<seq>/<NNNNN>_2d_pose.txt        test/probe/<seq>_gei.png

Each ``_2d_pose.txt`` is one line: original image height and width, then 17 × (x, y, conf) in
COCO order. Output::

    <out>/<id>train/00/<seq>/<seq>.pkl          every training sequence
    <out>/<id>/01/<seq>/<seq>.pkl, .../02/...   k-th successfully written gallery sequence of
                                                a subject, in sorted sequence-id order
    <out>/probe/03/<seq>/<seq>.pkl              every probe sequence

Deliberate differences from the original FastPoseGait GREW script (all listed in
docs/upstream_differences.md): files beside the sequence folders, such as ``<seq>_gei.png``,
are skipped in every split (the original crashed on them in the probe split); probes go under
``probe/`` (the original wrote ``<out>/03/`` unless given ``--dstdir <out>/probe``); the split
is given (``split``) or read from the normalised path, so a trailing slash does not hide it;
gallery numbering follows sorted sequence ids everywhere (the original's rearrangement used
directory order, which can swap ``01`` and ``02``); a malformed file is reported with its path
and skipped, or stops the run (``on_error``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..errors import ConversionError
from .parsing import frame_number, read_number_lines
from .tasks import (EMPTY, EXISTS, WRITTEN, SequenceResult, Task, check_separate_roots, is_finished, iter_dirs,
                    iter_files, require_dir, write_sequence)

SPLITS = ("train", "gallery", "probe")
POSE_SUFFIX = "_2d_pose.txt"
TRAIN_TYPE = "00"
PROBE_SUBJECT, PROBE_TYPE = "probe", "03"
_LEADING = 2  # original image height and width
_JOINTS = 17


def read_frames(seq_dir: str, result: SequenceResult, on_error: str) -> List[np.ndarray]:
    """The ``[17, 3]`` frames of one GREW sequence folder in frame order; malformed files are
    recorded in ``result`` and dropped (``on_error="skip"``) or raised (``"stop"``)."""
    names = [n for n in iter_files(seq_dir, POSE_SUFFIX) if n.split("_")[1:2] == ["2d"]]
    names.sort(key=lambda n: (frame_number(n) if frame_number(n) is not None else -1, n))
    frames = read_number_lines(seq_dir, names, _LEADING, _JOINTS, "GREW _2d_pose.txt", result, on_error)
    if not names:
        result.problems.append(f"{seq_dir}: no *{POSE_SUFFIX} files; nothing written")
    return frames


def convert_sequence(seq_dir: str, out_path: str, name: str, on_error: str = "skip") -> List[SequenceResult]:
    """Convert one train or probe sequence folder."""
    result = SequenceResult(name=name, status=EMPTY)
    frames = read_frames(seq_dir, result, on_error)
    if frames:
        write_sequence(out_path, frames)
        result.status, result.output, result.frames_written = WRITTEN, out_path, len(frames)
    return [result]


def _existing_gallery(out_subject: Path, seqs: List[str]) -> Dict[str, str]:
    """seq id -> type of the gallery sequences an earlier run already wrote."""
    found: Dict[str, str] = {}
    if out_subject.is_dir():
        for type_ in iter_dirs(out_subject):
            for seq in seqs:
                if is_finished(str(out_subject / type_ / seq / f"{seq}.pkl")):
                    found.setdefault(seq, type_)
    return found


def convert_gallery_subject(
    subject_dir: str, out_root: str, subject: str, overwrite: bool, on_error: str = "skip"
) -> List[SequenceResult]:
    """Convert a gallery subject's sequences in sorted order; the k-th one written gets type
    ``%02d`` of k. Resumes from the sequences an earlier run wrote (their types are kept)."""
    seqs = iter_dirs(subject_dir)
    out_subject = Path(out_root) / subject
    existing = {} if overwrite else _existing_gallery(out_subject, seqs)
    results = []
    k = 0
    for seq in seqs:
        if seq in existing:
            k = max(k, int(existing[seq]) if existing[seq].isdigit() else k + 1)
            path = str(out_subject / existing[seq] / seq / f"{seq}.pkl")
            results.append(SequenceResult(name=f"{subject}/{existing[seq]}/{seq}", status=EXISTS, output=path))
            continue
        result = _convert_gallery_sequence(subject_dir, out_subject, seq, k + 1, overwrite, on_error)
        k += result.status == WRITTEN
        results.append(result)
    return results


def _convert_gallery_sequence(
    subject_dir: str, out_subject: Path, seq: str, number: int, overwrite: bool, on_error: str
) -> SequenceResult:
    """Convert one gallery sequence as the subject's ``number``-th (type ``%02d``); a sequence
    without any usable frame is not written and takes no number."""
    result = SequenceResult(name=f"{out_subject.name}/??/{seq}", status=EMPTY)
    frames = read_frames(os.path.join(subject_dir, seq), result, on_error)
    if not frames:
        return result
    type_ = f"{number:02d}"
    path = out_subject / type_ / seq / f"{seq}.pkl"
    if overwrite:
        _remove_renumbered(out_subject, seq, type_)
    write_sequence(path, frames)
    result.name, result.status, result.output, result.frames_written = (
        f"{out_subject.name}/{type_}/{seq}", WRITTEN, str(path), len(frames))
    return result


def _remove_renumbered(out_subject: Path, seq: str, type_: str) -> None:
    """Delete ``seq``'s pickle under any type other than ``type_``: an earlier run may have
    numbered it differently, and the subject must not hold the sequence twice."""
    for other in iter_dirs(out_subject) if out_subject.is_dir() else []:
        stale = out_subject / other / seq / f"{seq}.pkl"
        if other != type_ and stale.is_file():
            stale.unlink()


def resolve_splits(input_path: str | Path, split: str = "auto") -> List[Tuple[str, Path]]:
    """The ``(split, folder)`` pairs to convert.

    ``split`` names the split of ``input_path`` explicitly; ``auto`` reads it from the folder
    name (``train``, ``gallery``, ``probe``; trailing slashes and ``..`` are normalised), or,
    for the dataset root or its ``test`` folder, converts every split found inside.
    """
    path = require_dir(input_path, "GREW input folder").resolve()
    if split != "auto":
        if split not in SPLITS:
            raise ConversionError(f"--split must be one of auto, {', '.join(SPLITS)}; got {split!r}")
        return [(split, path)]
    if path.name in SPLITS:
        return [(path.name, path)]
    found = _splits_inside(path)
    if not found:
        raise ConversionError(
            f"{path}: cannot tell which GREW split this is; pass the dataset root (holding train/ and "
            "test/gallery, test/probe), one split folder (train, gallery or probe), or --split"
        )
    return found


def _splits_inside(path: Path) -> List[Tuple[str, Path]]:
    """The split folders under a dataset root (``train``, ``test/gallery``, ``test/probe``) or
    its ``test`` folder (``gallery``, ``probe``), the first found of each split."""
    found: List[Tuple[str, Path]] = []
    for name, sub in (("train", path / "train"), ("gallery", path / "test" / "gallery"),
                      ("probe", path / "test" / "probe"), ("gallery", path / "gallery"),
                      ("probe", path / "probe")):
        if sub.is_dir() and name not in [n for n, _ in found]:
            found.append((name, sub))
    return found


def _sequence_task(seq_dir: Path, out: Path, subject: str, type_: str) -> Task:
    """The task converting one train or probe sequence folder to ``<subject>/<type>/<seq>``."""
    name = f"{subject}/{type_}/{seq_dir.name}"
    dst = str(out / name / f"{seq_dir.name}.pkl")
    return Task(name, convert_sequence, (str(seq_dir), dst, name), outputs=(dst,))


def _train_tasks(folder: Path, out: Path, overwrite: bool) -> List[Task]:
    """One task per training sequence, to ``<id>train/00/<seq>``."""
    return [_sequence_task(folder / subject / seq, out, f"{subject}train", TRAIN_TYPE)
            for subject in iter_dirs(folder) for seq in iter_dirs(folder / subject)]


def _gallery_tasks(folder: Path, out: Path, overwrite: bool) -> List[Task]:
    """One task per gallery subject: its sequences' types (``01``, ``02``, ...) depend on each
    other, so they convert together (and resume by themselves: no declared outputs)."""
    return [Task(f"{subject} (gallery)", convert_gallery_subject, (str(folder / subject), str(out), subject, overwrite),
                 sequences=len(iter_dirs(folder / subject)))
            for subject in iter_dirs(folder)]


def _probe_tasks(folder: Path, out: Path, overwrite: bool) -> List[Task]:
    """One task per probe sequence, to ``probe/03/<seq>``."""
    return [_sequence_task(folder / seq, out, PROBE_SUBJECT, PROBE_TYPE) for seq in iter_dirs(folder)]


# How each split is planned, by the names :func:`resolve_splits` returns.
_SPLIT_PLANNERS = {"train": _train_tasks, "gallery": _gallery_tasks, "probe": _probe_tasks}


def plan(input_path: str | Path, output_root: str | Path, split: str = "auto",
         overwrite: bool = False) -> List[Task]:
    """The tasks converting one or all GREW splits into ``output_root``."""
    out = Path(output_root)
    splits = resolve_splits(input_path, split)
    check_separate_roots(input_path, output_root)
    tasks: List[Task] = []
    for name, folder in splits:
        tasks.extend(_SPLIT_PLANNERS[name](folder, out, overwrite))
    if not tasks:
        raise ConversionError(f"{input_path}: no GREW sequence folders found")
    return tasks


def partition_from_tree(root: str | Path) -> Dict[str, List[str]]:
    """GREW's partition from the converted folders: TRAIN_SET = the ``*train`` subjects,
    TEST_SET = the test ids followed by ``probe`` (all sorted)."""
    names = iter_dirs(require_dir(root, "GREW dataset root"))
    train = [n for n in names if n.endswith("train")]
    test = [n for n in names if not n.endswith("train") and n != PROBE_SUBJECT]
    if PROBE_SUBJECT in names:
        test.append(PROBE_SUBJECT)
    return {"TRAIN_SET": train, "TEST_SET": test}


def rule_partition(num_train: int = 20000, num_test: int = 6000) -> Dict[str, List[str]]:
    """The official GREW partition: ``00001train``…``20000train`` / ``00001``…``06000`` + ``probe``."""
    return {
        "TRAIN_SET": [f"{i:05d}train" for i in range(1, num_train + 1)],
        "TEST_SET": [f"{i:05d}" for i in range(1, num_test + 1)] + [PROBE_SUBJECT],
    }
