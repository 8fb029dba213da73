"""Pose sequences as pictures: an animated GIF or a grid of frames, for looking at data.

Drawing is :func:`fastposegait.engine.summary.render_poses` (the TensorBoard pose images):
each frame centred in its square cell, one scale for the whole sequence, missing joints
(stored as 0, 0) left out, bones of the joint format (COCO-17, OpenPose-18, COCO without the
head; chosen by the number of joints unless named).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from ..data.skeleton import get_joint_format
from ..engine.summary import render_poses

#: default frames of a GIF (spread over the sequence) and of a grid
GIF_FRAMES = 200
GRID_FRAMES = 16
GRID_COLUMNS = 8


def _as_tensor(poses: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
    array = torch.as_tensor(np.asarray(poses, dtype=np.float32))
    if array.dim() != 3 or array.shape[-1] < 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"a pose sequence is [T, V, C>=2] with T, V >= 1, got shape {list(array.shape)}")
    return array


def frame_indices(num_frames: int, shown: Optional[int]) -> List[int]:
    """The frames drawn from a sequence of ``num_frames``: ``shown`` spread evenly over it,
    first and last included (all of them when ``shown`` is None or not smaller)."""
    count = num_frames if shown is None else min(shown, num_frames)
    return torch.linspace(0, num_frames - 1, steps=count).round().long().tolist()


def render_frames(poses: Union[np.ndarray, torch.Tensor], frames: Optional[int] = None, size: int = 192,
                  joint_format: Optional[str] = None) -> np.ndarray:
    """Draw ``frames`` frames (default all) of one sequence ``[T, V, C]``: ``[F, size, size, 3]`` uint8."""
    seq = _as_tensor(poses)
    edges = get_joint_format(joint_format).edges if joint_format else None
    shown = len(frame_indices(seq.shape[0], frames))
    row = render_poses(seq.unsqueeze(0), frames_per_row=shown, cell=size, edges=edges)  # [3, size, F*size]
    return row.view(3, size, shown, size).permute(2, 1, 3, 0).contiguous().numpy()


def render_grid(poses: Union[np.ndarray, torch.Tensor], frames: int = GRID_FRAMES, size: int = 128,
                columns: int = GRID_COLUMNS, joint_format: Optional[str] = None) -> np.ndarray:
    """``frames`` frames of one sequence in rows of ``columns`` cells: ``[H, W, 3]`` uint8 (the
    cells after the last frame stay black)."""
    cells = render_frames(poses, frames, size, joint_format)
    count = len(cells)
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    grid = np.zeros((rows * size, columns * size, 3), dtype=np.uint8)
    for k, cell in enumerate(cells):
        r, c = divmod(k, columns)
        grid[r * size:(r + 1) * size, c * size:(c + 1) * size] = cell
    return grid


def save_gif(cells: np.ndarray, path: Union[str, Path], fps: float = 15.0) -> Path:
    """Write frames ``[F, H, W, 3]`` as an animated GIF that loops forever."""
    from PIL import Image

    path = Path(path)
    images = [Image.fromarray(cell) for cell in cells]
    duration = max(20, int(round(1000 / fps)))  # GIF frame times are in 10 ms steps; browsers floor ~20 ms
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0,
                   optimize=False, disposal=1)
    return path


def save_png(rgb: np.ndarray, path: Union[str, Path]) -> Path:
    """Write an ``[H, W, 3]`` uint8 picture as PNG."""
    from PIL import Image

    path = Path(path)
    Image.fromarray(rgb).save(path, format="PNG", optimize=True)
    return path


__all__ = ["frame_indices", "render_frames", "render_grid", "save_gif", "save_png", "GIF_FRAMES", "GRID_FRAMES"]
