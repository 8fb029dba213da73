"""TensorBoard writing: scalars (window means), test metrics and pose images.

Keys follow upstream: ``scalar/<tag>`` and ``image/<tag>``; the prefix is stripped to form
the TensorBoard tag (``scalar/test_accuracy/NM@R1`` -> ``test_accuracy/NM@R1``). Pose
images are drawn with torchvision's keypoint renderer from the raw keypoints a model puts
in its ``visual_summary``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

from ..data.skeleton import get_joint_format

logger = logging.getLogger(__name__)

FRAMES_PER_ROW = 8
CELL = 96  # pixels per rendered frame


def _edges_for(num_joints: int):
    for name in ("coco", "openpose", "coco-no-head"):
        fmt = get_joint_format(name)
        if fmt.num_joints == num_joints:
            return list(fmt.edges)
    return None


def render_poses(poses: torch.Tensor, frames_per_row: int = FRAMES_PER_ROW, cell: int = CELL,
                 edges: Optional[Sequence[Tuple[int, int]]] = None) -> torch.Tensor:
    """Draw pose sequences ``[n, T, V, C>=2]`` as an image grid ``[3, H, W]`` (uint8).

    Each row is one sample; ``frames_per_row`` frames spread over its sequence, each in a
    ``cell`` x ``cell`` square. Every frame is centred in its cell and all frames of a row
    share one scale, so a walker who crosses the image stays visible and keeps their
    proportions. Missing joints (stored at (0, 0)) and their bones are left out. The bones are
    ``edges``, or by default those of the joint format with ``V`` joints (COCO-17, OpenPose-18,
    or COCO without the head, 12); with another ``V`` only the joints are drawn.
    """
    from torchvision.utils import draw_keypoints

    poses = poses.detach().float().cpu()
    n, T, V = poses.shape[:3]
    edges = list(edges) if edges is not None else (_edges_for(V) or [])
    frames = torch.linspace(0, T - 1, steps=min(frames_per_row, T)).round().long()
    canvas = torch.zeros(3, n * cell, len(frames) * cell, dtype=torch.uint8)
    margin = max(6, cell // 16)
    radius, width = max(2, round(cell / 48)), max(1, round(cell / 96))
    for i in range(n):
        xy = poses[i, frames, :, :2]  # [F, V, 2]
        present = (xy != 0).any(-1)  # [F, V]
        big = torch.full_like(xy, float("inf"))
        lo = torch.where(present.unsqueeze(-1), xy, big).amin(1)  # [F, 2]
        hi = torch.where(present.unsqueeze(-1), xy, -big).amax(1)
        extent = torch.nan_to_num((hi - lo).amax(), nan=1.0, posinf=1.0, neginf=1.0)
        scale = (cell - 2 * margin) / extent.clamp(min=1e-6)
        for j in range(len(frames)):
            if not present[j].any():
                continue
            centre = (lo[j] + hi[j]) / 2
            kp = (xy[j] - centre) * scale + cell / 2
            kp = torch.where(present[j].unsqueeze(-1), kp, torch.full_like(kp, -1000.0))
            bones = [(a, b) for a, b in edges if a < V and b < V and present[j, a] and present[j, b]]
            image = torch.zeros(3, cell, cell, dtype=torch.uint8)
            image = draw_keypoints(image, kp.unsqueeze(0), connectivity=bones, colors="white", radius=radius,
                                   width=width)
            canvas[:, i * cell:(i + 1) * cell, j * cell:(j + 1) * cell] = image
    return canvas


class SummaryWriter:
    """Rank-0 TensorBoard writer (a no-op object on other ranks or when disabled)."""

    def __init__(self, log_dir: Optional[Path], purge_step: Optional[int] = None) -> None:
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter as TBWriter

            self.writer = TBWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if not key.startswith("scalar/"):
                continue
            if isinstance(value, torch.Tensor):
                value = value.detach().float().mean().item()
            self.writer.add_scalar(key[len("scalar/"):], float(value), step)

    def images(self, values: Mapping[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            if not key.startswith("image/"):
                if not key.startswith("scalar/"):
                    logger.warning("visual_summary key %r must start with scalar/ or image/; skipped", key)
                continue
            tag = key[len("image/"):]
            if tag == "pose" and value.dim() == 4:
                self.writer.add_image(tag, render_poses(value), step)
            elif value.dim() == 4:  # [n, C, H, W] images: normalise each separately
                v = value.detach().float().cpu()
                lo = v.amin(dim=(1, 2, 3), keepdim=True)
                hi = v.amax(dim=(1, 2, 3), keepdim=True)
                self.writer.add_images(tag, (v - lo) / (hi - lo).clamp(min=1e-12), step)

    def rgb_images(self, images: Mapping[str, Any], step: int) -> None:
        """Write ready-made pictures ``{tag: [H, W, 3] uint8 array}`` (the test-phase figures)."""
        if self.writer is None:
            return
        for tag, rgb in images.items():
            self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def mean_of_window(buffer: Dict[str, list]) -> Dict[str, float]:
    """Average each buffered scalar over the logging window."""
    out = {}
    for key, values in buffer.items():
        means = [torch.as_tensor(v).detach().double().mean().cpu() for v in values]
        out[key] = float(torch.stack(means).mean())
    return out
