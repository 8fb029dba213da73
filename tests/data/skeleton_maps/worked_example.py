"""The 4-frame COCO-17 pose sequence of the skeleton-map worked example (docs/process_dataset.md).

Shared by the exact and the batched renderer tests: import ``worked_example_poses`` from here.
Frame 0 is a standing person in image pixels; frames 1..3 move every x by +5t and swing the legs
and arms by +10, 0, -10; frame 2 loses its right wrist (0, 0, 0) and frame 3's left ear has
confidence 0.2.
"""
from __future__ import annotations

import numpy as np

#: Frame 0: (x, y, confidence) of the 17 COCO joints.
FRAME0 = [
    (300, 100, 0.95), (305, 95, 0.93), (295, 95, 0.92), (312, 98, 0.80), (288, 98, 0.78),
    (325, 135, 0.90), (275, 135, 0.91), (332, 175, 0.85), (268, 175, 0.86),
    (335, 210, 0.80), (265, 210, 0.82), (315, 200, 0.88), (285, 200, 0.89),
    (318, 250, 0.87), (282, 250, 0.86), (320, 300, 0.84), (280, 300, 0.83),
]
L_EAR, L_WRIST, R_WRIST, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 3, 9, 10, 13, 14, 15, 16


def worked_example_poses() -> np.ndarray:
    """float64 [4, 17, 3] pose sequence of the worked example."""
    frames = []
    for t, swing in enumerate((0.0, 10.0, 0.0, -10.0)):
        frame = np.array(FRAME0, dtype=np.float64)
        frame[:, 0] += 5 * t
        frame[[L_KNEE, L_ANKLE, R_WRIST], 0] += swing
        frame[[R_KNEE, R_ANKLE, L_WRIST], 0] -= swing
        frames.append(frame)
    poses = np.stack(frames)
    poses[2, R_WRIST] = 0.0
    poses[3, L_EAR, 2] = 0.2
    return poses
