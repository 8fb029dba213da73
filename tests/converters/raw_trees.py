"""Write raw dataset trees in the official formats from the synthetic gait model.

The synthetic generator writes finished pickles (``<root>/<subject>/<type>/<view>/<view>.pkl``);
these helpers turn such a set back into what a dataset release ships (per-frame OpenPose JSON,
GREW/Gait3D text files, COCO keypoint JSON), so that converting the raw tree must reproduce the
generator's arrays exactly. Numbers are written with ``repr(float)``, so float32 values survive
the text round trip bit for bit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fastposegait.data.io import load_pose
from fastposegait.data.synthetic import generate_dataset

REPO = Path(__file__).resolve().parents[2]
CONVERSIONS = ("oumvlp", "oumvlp17", "grew", "gait3d", "custom")
Key = Tuple[str, str, str]


def synthetic(layout: str, root: Path, **kwargs) -> Dict[Key, np.ndarray]:
    """Generate a synthetic dataset and return ``{(subject, type, view): array}``."""
    generate_dataset(layout, root, **kwargs)
    return load_tree(root)


def load_tree(root: Path) -> Dict[Key, np.ndarray]:
    """Every ``<subject>/<type>/<view>/*.pkl`` under ``root`` (one pickle per sequence)."""
    out = {}
    for pkl in sorted(Path(root).glob("*/*/*/*.pkl")):
        s, t, v = pkl.relative_to(root).parts[:3]
        out[(s, t, v)] = load_pose(pkl)
    return out


def numbers(values: np.ndarray) -> List[float]:
    return [float(x) for x in np.asarray(values).ravel()]


def bystander(walker: np.ndarray, other: np.ndarray, shift: float = 180.0) -> np.ndarray:
    """Another person: ``other``'s walk (trimmed or padded to the walker's length), shifted
    ``shift`` pixels to the right and detected more confidently than the walker."""
    t = walker.shape[0]
    idx = np.arange(t) % other.shape[0]
    person = other[idx].astype(np.float64).copy()
    person[..., 0] += shift
    person[..., 2] = np.minimum(1.0, person[..., 2] * 0.5 + 0.55)
    return person


def openpose_frame(people: Sequence[np.ndarray]) -> str:
    return json.dumps({"version": 1.3, "people": [
        {"person_id": [-1], "pose_keypoints_2d": numbers(p), "face_keypoints_2d": []} for p in people]})


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def pose_line(keypoints: np.ndarray, leading: Tuple[float, float] = (1080.0, 1920.0)) -> str:
    """GREW / Gait3D text line: two leading numbers, then 17 × (x, y, conf), comma-separated."""
    return ",".join(repr(float(v)) for v in (*leading, *numbers(keypoints)))


def run_datasets_cli(args: Sequence[str], cwd: Optional[Path] = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m fastposegait.converters ARGS``; returns the completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "fastposegait.converters", *map(str, args)]
    if args and args[0] in CONVERSIONS:
        cmd.append("--no-progress")
    proc = subprocess.run(cmd, cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
