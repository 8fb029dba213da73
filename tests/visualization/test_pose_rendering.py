"""Pose sequences drawn as GIF frames and grids: frame choice, sizes, joints at the pixels the
geometry says; and the render command's inputs and errors."""
import numpy as np
import pytest
import torch
from PIL import Image

from fastposegait.cli import run_cli
from fastposegait.commands import render as render_command
from fastposegait.data.io import save_pickle
from fastposegait.engine.summary import render_poses
from fastposegait.visualization.skeleton import frame_indices, render_frames, render_grid, save_gif


def walker(num_frames=10):
    """COCO-17 frames with three joints: left shoulder (5) at (50, 10 + t), left hip (11) 100 px
    below it, right hip (12) 20 px right of the left hip, plus ``8 t`` px more: each frame is
    told apart by the width of its hips (several pixels apart once drawn)."""
    poses = np.zeros((num_frames, 17, 3), dtype=np.float32)
    for t in range(num_frames):
        poses[t, 5] = (50, 10 + t, 1)
        poses[t, 11] = (50, 110 + t, 1)
        poses[t, 12] = (70 + 8 * t, 110 + t, 1)
    return poses


def expected_pixels(poses, t, size, shown):
    """Where joints 5, 11, 12 of frame ``t`` land: one scale for all frames drawn (the largest
    extent among them), each frame centred in its cell."""
    margin = max(6, size // 16)
    extent = max(max(np.ptp(poses[s, [5, 11, 12], 0]), np.ptp(poses[s, [5, 11, 12], 1])) for s in shown)
    scale = (size - 2 * margin) / extent
    xy = poses[t, [5, 11, 12], :2]
    centre = (xy.min(0) + xy.max(0)) / 2
    return [(int(round(x)), int(round(y))) for x, y in (xy - centre) * scale + size / 2]


def is_white(cell, x, y):
    return cell[y, x].tolist() == [255, 255, 255]


def test_frames_are_spread_over_the_sequence():
    assert frame_indices(10, None) == list(range(10))
    assert frame_indices(10, 4) == [0, 3, 6, 9]
    assert frame_indices(3, 8) == [0, 1, 2]
    assert frame_indices(1, 5) == [0]


@pytest.mark.parametrize("size", [64, 160])
def test_joints_land_where_the_geometry_says(size):
    poses = walker()
    shown = frame_indices(10, 4)
    cells = render_frames(poses, frames=4, size=size)
    assert cells.shape == (4, size, size, 3) and cells.dtype == np.uint8
    for k, t in enumerate(shown):
        points = expected_pixels(poses, t, size, shown)
        for x, y in points:
            assert is_white(cells[k], x, y), (t, x, y)
        # nothing drawn away from the joints and their bones
        ys, xs = np.nonzero(cells[k, :, :, 0])
        pad = max(2, round(size / 48)) + 1
        assert xs.min() >= min(p[0] for p in points) - pad and xs.max() <= max(p[0] for p in points) + pad
    # frame t's hips are 20 + 8 t px wide: the drawn frames are 0, 3, 6, 9 (and differ)
    widths = [np.ptp([p[0] for p in expected_pixels(poses, t, size, shown)[1:]]) for t in shown]
    assert widths == sorted(widths) and len(set(widths)) == 4


def test_renderer_is_render_poses_split_into_frames():
    poses = walker(6)
    cells = render_frames(poses, size=96)
    row = render_poses(torch.from_numpy(poses)[None], frames_per_row=6).permute(1, 2, 0).numpy()
    assert np.array_equal(np.concatenate(list(cells), axis=1), row)


def test_grid_rows_and_empty_cells():
    poses = walker(10)
    grid = render_grid(poses, frames=5, size=32, columns=2)
    assert grid.shape == (3 * 32, 2 * 32, 3)
    cells = render_frames(poses, frames=5, size=32)
    assert np.array_equal(grid[32:64, 32:64], cells[3])
    assert grid[64:, 32:].max() == 0  # the sixth cell: black
    assert render_grid(poses, frames=3, size=32, columns=8).shape == (32, 3 * 32, 3)


def test_other_joint_formats_draw_their_bones():
    # OpenPose-18: neck (1) to right shoulder (2) is a bone, in COCO (17) it is not
    poses = np.zeros((1, 18, 3), dtype=np.float32)
    poses[0, 1] = (10, 10, 1)
    poses[0, 2] = (110, 10, 1)
    cell = render_frames(poses, size=64)[0]
    assert cell[32, 20:44, 0].min() == 255  # the bone between them, at mid height
    lone = render_frames(poses[:, :17], size=64)[0]  # COCO: nose-left eye... (1, 2) is not a bone
    assert lone[32, 20:44, 0].max() == 0
    poses12 = np.zeros((1, 12, 3), dtype=np.float32)
    poses12[0, 0] = (10, 10, 1)
    poses12[0, 1] = (110, 10, 1)  # coco-no-head: shoulders (0, 1) are a bone
    assert render_frames(poses12, size=64)[0][32, 20:44, 0].min() == 255


def test_gif_round_trip(tmp_path):
    poses = walker(5)
    cells = render_frames(poses, size=48)
    path = save_gif(cells, tmp_path / "walk.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (48, 48) and gif.info["loop"] == 0
        assert gif.info["duration"] == 100
        for k in range(5):
            gif.seek(k)
            frame = np.asarray(gif.convert("RGB"))
            assert np.array_equal(frame, cells[k])  # black and white survive the palette exactly
    # identical neighbours (a walker standing still) are one GIF frame shown for their total time
    still = save_gif(render_frames(np.repeat(poses[:1], 3, axis=0), size=48), tmp_path / "still.gif", fps=10)
    with Image.open(still) as gif:
        assert gif.n_frames == 1 and gif.info["duration"] == 300


def test_bad_arrays_are_value_errors():
    with pytest.raises(ValueError, match=r"\[T, V, C>=2\]"):
        render_frames(np.zeros((4, 17)))
    with pytest.raises(ValueError, match="T, V >= 1"):
        render_frames(np.zeros((0, 17, 3)))


# ------------------------------------------------------------------ fastposegait render


def test_render_command_gif_png_and_sequence_folder(tmp_path, capsys):
    folder = tmp_path / "001" / "nm-01" / "090"
    folder.mkdir(parents=True)
    save_pickle(folder / "a.pkl", walker(12))
    save_pickle(folder / "b.pkl", walker(3))
    out = tmp_path / "walk.gif"
    assert run_cli(render_command.main, [str(folder), "-o", str(out), "--frames", "6", "--size", "40"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and "holds 2 pose files; drawing a.pkl" in captured.err
    with Image.open(out) as gif:
        assert gif.n_frames == 6 and gif.size == (40, 40)
    png = tmp_path / "grid.png"
    assert run_cli(render_command.main, [str(folder / "b.pkl"), "-o", str(png), "--size", "32"]) == 0
    grid = np.asarray(Image.open(png).convert("RGB"))
    assert np.array_equal(grid, render_grid(walker(3), size=32))  # 3 frames: one row of 3


def test_render_command_errors_are_one_line(tmp_path, capsys):
    good = tmp_path / "good.pkl"
    save_pickle(good, walker(4))
    bad = walker(4)
    bad[2, 5, 0] = np.nan
    save_pickle(tmp_path / "nan.pkl", bad)
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    cases = [
        ([str(tmp_path / "missing.pkl")], "no such file or folder"),
        ([str(tmp_path / "nan.pkl")], "non-finite value (NaN/inf) at frame 2, joint 5"),
        ([str(tmp_path / "empty")], "the folder holds no .pkl file"),
        ([str(tmp_path / "junk.pkl")], "not a readable pickle"),
        ([str(good), "--joint-format", "openpose"], "17 joints per frame, but --joint-format openpose has 18"),
    ]
    for args, message in cases:
        assert run_cli(render_command.main, [*args, "-o", str(tmp_path / "x.png")]) == 1, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert run_cli(render_command.main, [str(good), "-o", str(tmp_path / "nowhere" / "x.gif")]) == 1
    assert "does not exist; create it first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # argparse: usage and the reason, status 2
        render_command.main([str(good), "-o", str(tmp_path / "x.jpg")])
    assert info.value.code == 2 and "must end in .gif" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        render_command.main([str(good), "-o", str(tmp_path / "x.png"), "--size", "0"])
    assert not list(tmp_path.glob("x.*"))
