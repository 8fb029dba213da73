"""The ``image/pose`` entry models put in ``visual_summary``: a few raw poses of the batch."""
from __future__ import annotations

from typing import Dict

import torch

MAX_SAMPLES = 4


def pose_summary(pose: torch.Tensor) -> Dict[str, torch.Tensor]:
    """``pose`` ``[N, T, V, C>=2]`` -> ``{'image/pose': [n<=4, T, V, C]}`` (detached, CPU-cheap).

    The TensorBoard writer renders these keypoints into images; models only hand them over.
    """
    return {"image/pose": pose[:MAX_SAMPLES].detach()}
