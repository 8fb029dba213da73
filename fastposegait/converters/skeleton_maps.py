"""Pose dataset -> skeleton-map dataset, in the layout SkeletonGait's original configs read.

Every ``<pose_root>/<subject>/<type>/<view>/*.pkl`` pose sequence ``[T, V, 3]`` is rendered by
:func:`fastposegait.data.skeleton_maps.exact.render_sequence` into uint8 maps ``[T, 2, 64, 64]``
(channel 0 limbs, channel 1 joints) and written, as a plain pickled NumPy array, to
``<save_root>/<dataset>_sigma_<sigma>_<ext_name>/pkl/<subject>/<type>/<view>/<same file name>``.

Dataset quirks handled here:

* 18-joint OpenPose/AlphaPose sequences are converted to COCO-17 (chosen per file from the
  joint count, not by a global switch);
* GREW (``--dataset GREW``): rows ``[T, 53]`` (two leading fields + 17 x 3 numbers) are
  accepted next to ``[T, 17, 3]``;
* SUSTech1K (``--dataset SUSTech1K``): only the files whose name starts with ``03`` (the
  30 Hz pose modality of its multi-modal folders) are converted.

Writes are atomic, existing outputs are kept unless ``--overwrite``, and the output does not
depend on ``--workers`` (each sequence is rendered alone, deterministically).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, List

import numpy as np

from ..data.io import as_pose_array, load_pickle
from ..data.skeleton_maps.exact import render_sequence
from ..errors import ConversionError, PoseFileError, RawFileError
from .tasks import EMPTY, WRITTEN, SequenceResult, Task, check_separate_roots, iter_dirs, iter_files, require_dir, \
    write_sequence

#: GREW rows hold two leading fields (frame id, ...) before the 17 x 3 numbers.
GREW_ROW_LENGTH = 2 + 17 * 3
#: SUSTech-1K's pose pickles are the files whose name starts with this.
SUSTECH_POSE_PREFIX = "03"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def map_folder_name(dataset: str, sigma: float, ext_name: str = "") -> str:
    """``<dataset>_sigma_<sigma>_<ext_name>``, e.g. ``Gait3D_sigma_8.0_`` (trailing ``_`` kept
    when ``ext_name`` is empty, as in the original)."""
    return f"{dataset}_sigma_{float(sigma)}_{ext_name}"


def is_grew(dataset: str) -> bool:
    return dataset.lower() == "grew"


def is_sustech1k(dataset: str) -> bool:
    return dataset.lower() in ("sustech1k", "sustech-1k")


def pose_sequence(obj: Any, path: str | Path, grew: bool) -> np.ndarray:
    """The pose array of one unpickled file: ``[T, V, 3]``, or for GREW also ``[T, 53]`` rows
    (first two fields dropped, reshaped to ``[T, 17, 3]``).

    Raises:
        PoseFileError: anything else, naming ``path``.
    """
    if grew and isinstance(obj, np.ndarray) and obj.ndim == 2:
        if obj.shape[1] != GREW_ROW_LENGTH:
            raise PoseFileError(f"{path}: GREW rows must hold {GREW_ROW_LENGTH} numbers (2 leading fields + 17 "
                                f"joints x 3), got shape {list(obj.shape)}; or store [T, 17, 3]")
        obj = obj[:, 2:].reshape(obj.shape[0], 17, 3)
    seq = as_pose_array(obj, path)
    if seq.shape[2] != 3:
        raise PoseFileError(f"{path}: skeleton maps need (x, y, confidence) per joint, got {seq.shape[2]} "
                            "channels; re-export the poses with their confidences")
    if seq.shape[1] not in (17, 18):
        raise PoseFileError(f"{path}: {seq.shape[1]} joints; skeleton maps are drawn from 17 COCO joints or 18 "
                            "OpenPose/AlphaPose joints (converted to COCO-17)")
    return seq


def convert_sequence(in_path: str, out_path: str, name: str, sigma: float, grew: bool,
                     on_error: str = "skip") -> List[SequenceResult]:
    """Render one pose pickle into a map pickle (a task of :func:`plan`)."""
    result = SequenceResult(name=name, status=EMPTY)
    try:
        poses = pose_sequence(load_pickle(in_path), in_path, grew)
        maps = render_sequence(poses, sigma=sigma)
    except PoseFileError as exc:
        message = str(exc) if str(exc).startswith(in_path) else f"{in_path}: {exc}"
        if on_error == "stop":
            raise RawFileError(message) from None
        result.drop("unusable pose pickle")
        result.problems.append(message)
        return [result]
    result.frames_read = len(poses)
    write_sequence(out_path, maps, dtype=None)
    result.status, result.output, result.frames_written = WRITTEN, out_path, len(maps)
    return [result]


def check_options(dataset: str, sigma: float, ext_name: str) -> None:
    """Refuse a dataset or extension name that is not a plain folder name, and a bad sigma."""
    if not _PLAIN_NAME.match(dataset):
        raise ConversionError(f"--dataset {dataset!r} must be a plain folder name (letters, digits, . _ + -), "
                              "e.g. Gait3D; it names the output folder <dataset>_sigma_<sigma>_<ext-name>")
    if ext_name and not _PLAIN_NAME.match(ext_name):
        raise ConversionError(f"--ext-name {ext_name!r} must be empty or a plain name (letters, digits, . _ + -)")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ConversionError(f"--sigma {sigma!r} must be a positive number (the original uses 8.0)")


def plan(input_root: str | Path, save_root: str | Path, dataset: str, sigma: float = 8.0,
         ext_name: str = "") -> List[Task]:
    """One task per pose pickle of ``input_root`` (SUSTech1K: only ``03*`` files), writing under
    ``<save_root>/<dataset>_sigma_<sigma>_<ext_name>/pkl/``.

    Raises:
        ConversionError: bad options, a missing input root, or no pose pickle found.
    """
    check_options(dataset, sigma, ext_name)
    root = require_dir(input_root, "pose dataset root")
    check_separate_roots(input_root, save_root)
    out = Path(save_root) / map_folder_name(dataset, sigma, ext_name) / "pkl"
    sustech, grew = is_sustech1k(dataset), is_grew(dataset)
    tasks = []
    for subject in iter_dirs(root):
        for type_ in iter_dirs(root / subject):
            for view in iter_dirs(root / subject / type_):
                key = f"{subject}/{type_}/{view}"
                for name in iter_files(root / key, ".pkl"):
                    if sustech and not name.startswith(SUSTECH_POSE_PREFIX):
                        continue
                    dst = str(out / key / name)
                    tasks.append(Task(f"{key}/{name}", convert_sequence,
                                      (str(root / key / name), dst, f"{key}/{name}", float(sigma), grew),
                                      outputs=(dst,)))
    if not tasks:
        which = f"{SUSTECH_POSE_PREFIX}*.pkl" if sustech else "*.pkl"
        raise ConversionError(f"{root}: no <subject>/<type>/<view>/{which} pose pickles found; --input must be "
                              "the pose dataset root")
    return tasks
