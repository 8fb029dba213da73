"""``fastposegait render <pose.pkl | sequence folder> -o out.gif|out.png``: look at a pose sequence.

A ``.gif`` output is an animation of the sequence (``--frames`` spread over it, default up to
200; ``--fps``); a ``.png`` output is a grid of ``--frames`` frames (default 16) in rows of
``--columns``. ``--size`` is the side of one frame in pixels. The input is a pose pickle
``[T, V, C]`` (read with the restricted unpickler: numpy arrays and plain containers only) or
a dataset sequence folder ``<subject>/<type>/<view>/`` (its first ``.pkl`` in name order; a
note names it when the folder holds several). Bones are drawn for COCO-17, OpenPose-18 and
COCO without the head (chosen by the number of joints), or for ``--joint-format``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..data.io import load_pose
from ..data.skeleton import get_joint_format
from ..errors import MissingFileError, OutputDirError, PoseFileError


def find_pose_file(path: Path) -> Tuple[Path, int]:
    """The pickle to draw for ``path`` (a file, or a sequence folder's first ``.pkl``) and how
    many pickles the folder holds."""
    if not path.exists():
        raise MissingFileError(f"{path}: no such file or folder; give a pose .pkl or a sequence folder "
                               "<root>/<subject>/<type>/<view>")
    if path.is_file():
        return path, 1
    if not path.is_dir():
        raise PoseFileError(f"{path}: not a regular file or folder; give a pose .pkl or a sequence folder")
    pickles = sorted(p for p in path.iterdir() if p.name.endswith(".pkl") and not p.name.startswith(".")
                     and p.is_file())
    if not pickles:
        raise PoseFileError(f"{path}: the folder holds no .pkl file; give a sequence folder "
                            "<root>/<subject>/<type>/<view> or a pose .pkl")
    return pickles[0], len(pickles)


def render_file(source: Path, output: Path, frames: Optional[int] = None, size: Optional[int] = None,
                fps: float = 15.0, columns: int = 8, joint_format: Optional[str] = None) -> Path:
    """Draw the pose sequence of ``source`` into ``output`` (``.gif`` or ``.png``)."""
    from ..visualization import skeleton

    pose_path, count = find_pose_file(source)
    if count > 1:
        print(f"{source} holds {count} pose files; drawing {pose_path.name} (give a file to draw another)",
              file=sys.stderr)
    poses = load_pose(pose_path).astype(np.float32)
    if joint_format is not None:
        expected = get_joint_format(joint_format).num_joints
        if poses.shape[1] != expected:
            raise PoseFileError(f"{pose_path}: {poses.shape[1]} joints per frame, but --joint-format {joint_format} "
                                f"has {expected}; drop --joint-format or name the format of this file")
    try:
        if output.suffix.lower() == ".gif":
            cells = skeleton.render_frames(poses, frames if frames is not None else skeleton.GIF_FRAMES,
                                           size or 192, joint_format)
            return skeleton.save_gif(cells, output, fps)
        grid = skeleton.render_grid(poses, frames if frames is not None else skeleton.GRID_FRAMES, size or 128,
                                    columns, joint_format)
        return skeleton.save_png(grid, output)
    except OSError as exc:
        raise OutputDirError(f"{output}: cannot write the picture ({exc.strerror or exc}); give a writable "
                             "path with -o") from None


def _positive(kind: type, low: float, high: float):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value
    return parse


def main(argv: List[str]) -> Optional[int]:
    parser = argparse.ArgumentParser(
        prog="fastposegait render",
        description="Draw a pose sequence (a .pkl or a dataset sequence folder) as an animated GIF or a frame grid.")
    parser.add_argument("source", type=Path, help="a pose .pkl [T, V, C], or a folder <root>/<subject>/<type>/<view>")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="out.gif (animation) or out.png (grid of frames)")
    parser.add_argument("--frames", type=_positive(int, 1, 2000), default=None,
                        help="frames shown, spread over the sequence (default: up to 200 in a GIF, 16 in a grid)")
    parser.add_argument("--size", type=_positive(int, 16, 1024), default=None,
                        help="pixels per frame side (default 192 in a GIF, 128 in a grid)")
    parser.add_argument("--fps", type=_positive(float, 1, 50), default=15.0, help="GIF frames per second (15)")
    parser.add_argument("--columns", type=_positive(int, 1, 64), default=8, help="grid frames per row (8)")
    parser.add_argument("--joint-format", default=None, choices=["coco", "coco-no-head", "openpose", "alphapose"],
                        help="the joints' layout (default: from the number of joints)")
    args = parser.parse_args(argv)
    if args.output.suffix.lower() not in (".gif", ".png"):
        parser.error(f"-o {args.output}: the output must end in .gif (animation) or .png (frame grid)")
    if args.output.parent and not args.output.parent.is_dir():
        raise OutputDirError(f"-o {args.output}: folder {args.output.parent} does not exist; create it first")
    print(render_file(args.source, args.output, args.frames, args.size, args.fps, args.columns, args.joint_format))
    return 0
