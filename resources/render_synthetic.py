"""Draw the figure ``resources/synthetic_walks.png`` used by the README.

Rows: two synthetic subjects walking normally at views 000, 090 and 180 (one row per
subject and view), then the first subject carrying a bag and wearing a coat at 090. Each row
shows eight frames spread over the sequence, drawn with the same renderer that puts pose
images into TensorBoard (torchvision's keypoint drawing).

    python resources/render_synthetic.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from fastposegait.data import synthetic
from fastposegait.engine.summary import render_poses


def main(out: Path = Path(__file__).with_name("synthetic_walks.png"), frames: int = 40) -> Path:
    rng = np.random.default_rng(7)
    subjects = [synthetic.sample_subject(rng) for _ in range(2)]
    rows = []
    for subject in subjects:
        for azimuth in (0.0, 90.0, 180.0):
            camera = synthetic.CASIA_B_RIG.camera(azimuth)
            condition = synthetic.sample_condition("nm", subject, rng)
            rows.append(synthetic.simulate_walk(subject, condition, camera, frames, rng))
    for kind in ("bg", "cl"):
        condition = synthetic.sample_condition(kind, subjects[0], rng)
        rows.append(synthetic.simulate_walk(subjects[0], condition, synthetic.CASIA_B_RIG.camera(90.0), frames, rng))
    image = render_poses(torch.from_numpy(np.stack(rows)))
    write_png(image, str(out))
    return out


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(lambda: print(main())))
