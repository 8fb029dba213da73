"""TensorBoard output: pose rendering, scalar tags and values, window means."""
import numpy as np
import pytest
import torch

from fastposegait.engine.summary import CELL, SummaryWriter, mean_of_window, render_poses


def one_pose():
    pose = torch.zeros(1, 1, 17, 3)
    # a vertical "spine": left shoulder (5) above left hip (11), 100 px apart; right hip (12) to the right
    pose[0, 0, 5] = torch.tensor([50.0, 0.0, 1.0])
    pose[0, 0, 11] = torch.tensor([50.0, 100.0, 1.0])
    pose[0, 0, 12] = torch.tensor([70.0, 100.0, 1.0])
    return pose


def test_render_poses_draws_present_joints_and_bones_only():
    img = render_poses(one_pose())
    assert img.shape == (3, CELL, CELL) and img.dtype == torch.uint8
    # extent 100 px -> scale (96 - 12) / 100 = 0.84; centre (60, 50) -> cell centre (48, 48)
    def px(x, y):
        return (round((x - 60) * 0.84 + 48), round((y - 50) * 0.84 + 48))
    x5, y5 = px(50, 0)
    x11, y11 = px(50, 100)
    assert img[:, y5, x5].tolist() == [255, 255, 255]
    assert img[:, y11, x11].tolist() == [255, 255, 255]
    assert img[0, (y5 + y11) // 2, x5 - 1:x5 + 2].max() == 255  # bone 5-11 drawn (1 px wide)
    # bone 5-7 is not drawn: joint 7 is missing; nothing is drawn far from the three joints
    mask = img[0] > 0
    ys, xs = torch.nonzero(mask, as_tuple=True)
    assert xs.min() >= x5 - 3 and xs.max() <= px(70, 100)[0] + 3
    assert ys.min() >= y5 - 3 and ys.max() <= y11 + 3


def test_render_poses_grid_shape_and_empty_frame():
    poses = one_pose().repeat(2, 10, 1, 1)
    poses[1, 4] = 0  # an empty frame stays black
    img = render_poses(poses)
    assert img.shape == (3, 2 * CELL, 8 * CELL)
    # the eight frames shown are linspace(0, 9, 8) rounded; only a cell showing frame 4 is black
    shown = torch.linspace(0, 9, steps=8).round().long().tolist()
    for j, t in enumerate(shown):
        cell = img[:, CELL:2 * CELL, j * CELL:(j + 1) * CELL]
        assert (cell.sum() == 0) == (t == 4)


def test_writer_strips_prefix_and_averages(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = SummaryWriter(tmp_path)
    writer.scalars({"scalar/test_accuracy/NM@R1": 91.5, "scalar/triplet/loss": torch.tensor([1.0, 3.0]),
                    "not_a_scalar": 3}, step=7)
    writer.images({"image/pose": one_pose().repeat(2, 3, 1, 1)}, step=7)
    writer.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["test_accuracy/NM@R1", "triplet/loss"]
    assert acc.Scalars("test_accuracy/NM@R1")[0].value == pytest.approx(91.5)
    assert acc.Scalars("triplet/loss")[0].value == pytest.approx(2.0)
    assert acc.Scalars("triplet/loss")[0].step == 7
    assert acc.Tags()["images"] == ["pose"]


def test_disabled_writer_is_a_no_op():
    writer = SummaryWriter(None)
    writer.scalars({"scalar/x": 1.0}, 1)
    writer.close()


def test_mean_of_window_averages_each_entry_then_the_window():
    window = {"scalar/a": [torch.tensor([1.0, 3.0]), torch.tensor(4.0)], "scalar/b": [np.float32(1.0)]}
    assert mean_of_window(window) == {"scalar/a": pytest.approx(3.0), "scalar/b": pytest.approx(1.0)}
