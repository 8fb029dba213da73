"""TensorBoard output, read back from the event files: pose rendering, scalar tags, steps and
values, image shapes and pixels, purging on resume, window means."""
import io
import logging

import numpy as np
import pytest
import torch

from fastposegait.engine import summary
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


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def decode(image_event):
    """A TensorBoard image event as an ``[H, W, 3]`` uint8 array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)).convert("RGB"))


def test_writer_strips_prefix_and_averages(tmp_path):
    writer = SummaryWriter(tmp_path)
    writer.scalars({"scalar/test_accuracy/NM@R1": 91.5, "scalar/triplet/loss": torch.tensor([1.0, 3.0]),
                    "not_a_scalar": 3}, step=7)
    poses = one_pose().repeat(2, 3, 1, 1)
    writer.images({"image/pose": poses}, step=7)
    writer.close()
    acc = read_events(tmp_path)
    assert sorted(acc.Tags()["scalars"]) == ["test_accuracy/NM@R1", "triplet/loss"]
    assert [(e.step, e.value) for e in acc.Scalars("test_accuracy/NM@R1")] == [(7, pytest.approx(91.5))]
    assert [(e.step, e.value) for e in acc.Scalars("triplet/loss")] == [(7, pytest.approx(2.0))]  # the mean
    assert acc.Tags()["images"] == ["pose"]
    (event,) = acc.Images("pose")
    # two samples of three frames: a 2 x 3 grid of cells, and exactly what render_poses draws
    assert (event.step, event.height, event.width) == (7, 2 * CELL, 3 * CELL)
    expected = render_poses(poses).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(decode(event), expected)
    assert expected.max() == 255 and expected.min() == 0


def test_scalars_over_steps_and_a_resumed_run_purges_what_followed_its_checkpoint(tmp_path):
    writer = SummaryWriter(tmp_path)
    for step in range(1, 6):
        writer.scalars({"scalar/loss": float(step), "scalar/lr": torch.tensor(0.5 * step)}, step)
    writer.close()
    acc = read_events(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(s, float(s)) for s in range(1, 6)]
    assert [e.value for e in acc.Scalars("lr")] == [0.5, 1.0, 1.5, 2.0, 2.5]
    # resumed from the checkpoint of step 3: steps 3.. of the first run are replaced
    resumed = SummaryWriter(tmp_path, purge_step=3)
    resumed.scalars({"scalar/loss": 30.0}, 3)
    resumed.scalars({"scalar/loss": 40.0}, 4)
    resumed.close()
    acc = read_events(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]
    assert [e.step for e in acc.Scalars("lr")] == [1, 2]


def test_non_pose_images_are_normalised_each_and_unknown_keys_skipped(tmp_path, caplog):
    writer = SummaryWriter(tmp_path)
    maps = torch.stack([torch.linspace(-3.0, 5.0, 16).view(1, 4, 4), torch.full((1, 4, 4), 2.0)])
    maps[1, 0, 0, 0] = 4.0  # the second image spans [2, 4]
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        writer.images({"image/maps": maps, "scalar/x": 1.0, "heatmap": maps}, step=2)
    writer.close()
    assert "visual_summary key 'heatmap' must start with scalar/ or image/; skipped" in caplog.text
    assert "scalar/x" not in caplog.text  # scalars in a visual_summary are not an error
    acc = read_events(tmp_path)
    assert acc.Tags()["images"] == ["maps"]
    (event,) = acc.Images("maps")
    assert (event.step, event.height, event.width) == (2, 4, 2 * 4)  # the two images side by side
    pixels = decode(event)[..., 0].astype(float)
    for index, image in enumerate(maps):
        lo, hi = image.min(), image.max()
        expected = ((image[0] - lo) / (hi - lo) * 255).numpy()
        got = pixels[:, 4 * index:4 * (index + 1)]
        assert np.abs(got - expected).max() <= 1.0  # each image scaled to [0, 255] on its own
        assert got.min() == 0 and got.max() == 255
    assert acc.Tags()["scalars"] == []


def test_disabled_writer_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(summary, "render_poses", lambda *a: pytest.fail("a disabled writer rendered poses"))
    writer = SummaryWriter(None)
    assert writer.writer is None
    assert writer.scalars({"scalar/x": 1.0}, 1) is None
    assert writer.images({"image/pose": one_pose()}, 1) is None
    writer.flush()
    writer.close()
    writer.close()  # twice is fine
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_close_flushes_and_detaches(tmp_path):
    writer = SummaryWriter(tmp_path)
    writer.scalars({"scalar/x": 1.0}, 1)
    writer.flush()
    assert [e.value for e in read_events(tmp_path).Scalars("x")] == [1.0]  # visible before close
    writer.close()
    assert writer.writer is None
    writer.scalars({"scalar/x": 2.0}, 2)  # after close: ignored
    assert [e.value for e in read_events(tmp_path).Scalars("x")] == [1.0]


def test_mean_of_window_averages_each_entry_then_the_window():
    window = {"scalar/a": [torch.tensor([1.0, 3.0]), torch.tensor(4.0)], "scalar/b": [np.float32(1.0)]}
    assert mean_of_window(window) == {"scalar/a": pytest.approx(3.0), "scalar/b": pytest.approx(1.0)}
    # each entry's mean first ((1 + 3) / 2 = 2, then 4 -> 3), not the mean of all elements (8 / 3)
    assert mean_of_window(window)["scalar/a"] != pytest.approx(8 / 3)
    mixed = {"scalar/c": [0.5, np.array([1.0, 2.0, 3.0]), torch.tensor([[4.0]], dtype=torch.float16)],
             "scalar/d": [torch.tensor(1, dtype=torch.int64), 2]}
    means = mean_of_window(mixed)
    assert means == {"scalar/c": pytest.approx((0.5 + 2.0 + 4.0) / 3), "scalar/d": pytest.approx(1.5)}
    assert all(type(v) is float for v in means.values())
    assert mean_of_window({}) == {}
