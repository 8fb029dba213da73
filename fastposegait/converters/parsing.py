"""Readers for the raw per-frame annotation files, with one clear error per malformed file.

Every reader returns float64 arrays (what the original FastPoseGait converters write, so the
pickles match theirs) and raises :class:`~fastposegait.errors.RawFileError` naming the file, what is wrong and how to
fix it: unreadable, empty, truncated JSON, wrong number of values, non-numeric or non-finite
(NaN/inf) values.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np

from ..errors import RawFileError
from .tasks import SequenceResult

_DIGIT_RUNS = re.compile(r"\d+")


def frame_number(name: str, digits: Optional[int] = None) -> Optional[int]:
    """The frame index written in a file name.

    With ``digits``, the first maximal run of exactly that many digits (OUMVLP-Pose:
    ``0021_keypoints.json`` -> 21, and subject 00001's differently named files still give their
    4-digit frame); falls back to the first run of any length. ``None`` when the name holds no
    digit at all.
    """
    runs = _DIGIT_RUNS.findall(name)
    if not runs:
        return None
    if digits is not None:
        for run in runs:
            if len(run) == digits:
                return int(run)
    return int(runs[0])


# Opening a FIFO for reading waits for a writer; without blocking, it opens at once and the
# check of its type below refuses it (a regular file ignores the flag).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_text(path: str | Path) -> str:
    """The file's UTF-8 text; unreadable, undecodable, too large for memory or not a regular
    file (a FIFO, which would block ``open`` forever, or a folder) is a RawFileError naming
    the file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise RawFileError(f"{path}: cannot read the file ({type(exc).__name__}: {exc}); "
                           "check it or delete it") from None
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            raise RawFileError(f"{path}: not a regular file ({_file_kind(kind)}); only regular files are "
                               "read — remove it or rename it")
        with os.fdopen(fd, "r", encoding="utf-8") as f:
            fd = -1  # closed with f
            return f.read()
    except (OSError, UnicodeDecodeError, MemoryError) as exc:
        raise RawFileError(f"{path}: cannot read the file ({type(exc).__name__}: {exc}); "
                           "check it or delete it") from None
    finally:
        if fd >= 0:
            os.close(fd)


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a plain file"


def read_number_line(path: str | Path, leading: int, joints: int, source: str) -> np.ndarray:
    """Read a one-line keypoint text file: ``leading`` numbers to discard, then ``joints`` ×
    ``(x, y, confidence)``, separated by commas and/or whitespace. Returns ``[joints, 3]``.

    ``source`` names the format in the error message (e.g. ``"GREW _2d_pose.txt"``).
    """
    text = read_text(path).strip()
    expected = leading + 3 * joints
    if not text:
        raise RawFileError(f"{path}: empty file; a {source} file holds {expected} numbers — "
                           "re-export it or delete it")
    fields = text.replace(",", " ").split()  # commas and/or whitespace (2x faster than a regex)
    if len(fields) != expected:
        raise RawFileError(
            f"{path}: {len(fields)} values, expected {expected} ({leading} leading numbers, then {joints} "
            f"joints × x, y, confidence) for a {source} file; the file is truncated or not in this format — "
            "re-export it or delete it"
        )
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError as exc:
        raise RawFileError(f"{path}: non-numeric value ({exc}); re-export the file or delete it") from None
    return check_finite(values[leading:].reshape(joints, 3), path)


def read_number_lines(seq_dir: str, names: Sequence[str], leading: int, joints: int, source: str,
                      result: SequenceResult, on_error: str) -> List[np.ndarray]:
    """:func:`read_number_line` of each file ``names`` of ``seq_dir``, in order. Each file read
    is counted in ``result``; a malformed one raises (``on_error="stop"``) or is dropped and
    recorded in ``result`` (``"skip"``), so one bad frame does not lose the sequence."""
    frames = []
    for name in names:
        result.frames_read += 1
        try:
            frames.append(read_number_line(os.path.join(seq_dir, name), leading, joints, source))
        except RawFileError as exc:
            if on_error == "stop":
                raise
            result.drop("malformed file")
            result.problems.append(str(exc))
    return frames


def check_finite(array: np.ndarray, path: str | Path, person: Optional[int] = None) -> np.ndarray:
    """``array`` ``[..., V, 3]`` unchanged, or a RawFileError naming the first NaN/inf joint."""
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        joint = int(bad[-2]) if array.ndim >= 2 else int(bad[0])
        who = f"person {person}, " if person is not None else ""
        raise RawFileError(
            f"{path}: NaN/inf value ({who}joint {joint}); a detector writes a missing joint as 0, 0, 0 — "
            "fix or delete the file"
        )
    return array


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a truncated or invalid file is a RawFileError with the position, and
    so is one nested too deeply for the parser (``RecursionError``) or too large for memory."""
    text = read_text(path)
    if not text.strip():
        raise RawFileError(f"{path}: empty file, expected JSON; re-export it or delete it")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RawFileError(
            f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); the file is "
            "truncated or corrupt — re-export it or delete it"
        ) from None
    except RecursionError:
        raise RawFileError(f"{path}: JSON nested too deeply to parse (lists or objects inside each other "
                           "thousands of levels deep); the file is corrupt — re-export it or delete it") from None
    except MemoryError:
        raise RawFileError(f"{path}: JSON too large to parse in memory; the file is corrupt or not a "
                           "keypoint file — re-export it or delete it") from None


def keypoint_array(values: Any, joints: int, path: str | Path, what: str, person: Optional[int] = None) -> np.ndarray:
    """A flat ``[x0, y0, c0, ...]`` list as ``[joints, 3]`` float64, checked."""
    who = f" (person {person})" if person is not None else ""
    if not isinstance(values, list) or len(values) != 3 * joints:
        size = len(values) if isinstance(values, list) else type(values).__name__
        raise RawFileError(
            f"{path}: {what}{who} holds {size} values, expected {3 * joints} ({joints} joints × x, y, "
            "confidence); re-export the file or delete it"
        )
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise RawFileError(f"{path}: {what}{who} holds non-numeric values; re-export the file or delete it") from None
    return check_finite(array.reshape(joints, 3), path, person)


def natural_key(name: str) -> List[Any]:
    """Sort key that orders embedded numbers numerically (``f9999`` before ``f10000``)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
