"""Drawn pictures: sizes, colours where the data says, and the plot command's round trip."""
import json

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

import results_sets
from fastposegait.cli import run_cli
from fastposegait.commands import plot as plot_command
from fastposegait.visualization.curves import (draw_cmc, draw_figures, draw_per_view, draw_view_matrix,
                                               report_pictures)
from fastposegait.visualization.results_data import CMCCurve, PerViewAccuracy, ViewMatrix, find_figures

VIRIDIS = colormaps["viridis"]
BLUE = np.array([0x1F, 0x77, 0xB4])  # matplotlib's tab:blue, the CMC line


def viridis(percent):
    return np.round(np.array(VIRIDIS(percent / 100)[:3]) * 255)


def pixel(picture, x, y):
    col, row = picture.to_pixel(x, y)
    return picture.rgb[int(round(row)), int(round(col))].astype(float)


def test_heatmap_cells_take_the_colour_of_their_value():
    matrix = np.array([[100.0, 0.0, 50.0], [25.0, 100.0, 75.0], [0.0, 10.0, np.nan]])
    picture = draw_view_matrix(ViewMatrix("NM", matrix, ["000", "090", "180"]))
    assert picture.name == "rank1-NM" and picture.tag == "test_rank1_views/NM"
    assert picture.rgb.dtype == np.uint8 and picture.rgb.shape[2] == 3
    assert 300 <= picture.rgb.shape[0] <= 1300 and 300 <= picture.rgb.shape[1] <= 1500
    for i in range(3):
        for j in range(3):
            # off the cell centre, where the value is written
            got = pixel(picture, j + 0.3, i + 0.3)
            if np.isnan(matrix[i, j]):
                assert np.abs(got - 255).max() <= 2  # no value: left blank (white)
            else:
                assert np.abs(got - viridis(matrix[i, j])).max() <= 3, (i, j, got)
    # rows are probe views: the high top-left and low bottom-left cells differ as their values do
    assert np.abs(pixel(picture, 0.3, 0.3) - pixel(picture, 0.3, 2.3)).max() > 100


def test_large_view_tables_are_drawn_without_numbers():
    rng = np.random.default_rng(0)
    matrix = rng.uniform(0, 100, (20, 20))
    picture = draw_view_matrix(ViewMatrix("X", matrix, [f"{v:03d}" for v in range(20)]))
    for i, j in ((0, 0), (5, 17), (19, 3)):
        assert np.abs(pixel(picture, j, i) - viridis(matrix[i, j])).max() <= 3  # the centre too: no text


def test_cmc_line_goes_through_the_points():
    curve = CMCCurve("BG", np.array([20.0, 60.0, 90.0, 95.0]))
    picture = draw_cmc(curve, "CASIA-B, euc")
    assert picture.rgb.shape == (400, 600, 3) and picture.name == "cmc-BG" and picture.tag == "test_cmc/BG"
    for rank, value in zip(curve.ranks, curve.accuracy):
        assert np.abs(pixel(picture, rank, value) - BLUE).max() <= 30
    # far from the curve: background, not line
    assert np.abs(pixel(picture, 3, 30) - BLUE).max() > 100
    other = draw_cmc(CMCCurve("BG", np.array([80.0, 85.0, 90.0, 95.0])), "CASIA-B, euc")
    assert not np.array_equal(other.rgb, picture.rgb)


def test_per_view_chart_one_line_per_condition():
    per_view = PerViewAccuracy(["000", "090", "180"], {"NM": np.array([90.0, 50.0, 90.0]),
                                                      "CL": np.array([10.0, 30.0, 10.0])})
    picture = draw_per_view(per_view)
    assert picture.rgb.shape == (400, 640, 3) and picture.tag == "test_rank1_per_view"
    assert np.abs(pixel(picture, 1, 50) - BLUE).max() <= 30  # first condition: first colour
    orange = np.array([0xFF, 0x7F, 0x0E])
    assert np.abs(pixel(picture, 1, 30) - orange).max() <= 30


def test_draw_figures_of_each_kind(tmp_path):
    expected = {
        "casia_b": ["cmc-NM", "cmc-BG", "cmc-CL", "rank1-NM", "rank1-BG", "rank1-CL", "rank1-per-view"],
        "ccpg": ["cmc-CL", "cmc-UP", "cmc-DN", "cmc-BG", "rank1-CL", "rank1-UP", "rank1-DN", "rank1-BG",
                 "rank1-per-view"],
        "grew": ["cmc-all"],
    }
    for kind, names in expected.items():
        pictures = draw_figures(find_figures(getattr(results_sets, kind)()))
        assert [p.name for p in pictures] == names
    assert draw_figures(find_figures(results_sets.grew_submission(tmp_path))) == []
    # two curves of one condition get distinct names
    both = draw_figures(find_figures({"table/Rank-k": [10.0, 20.0], "table/cmc": [0.1, 0.2]}))
    assert [p.name for p in both] == ["cmc-all", "cmc-all-2"] and [p.tag for p in both][1] == "test_cmc/all-2"


# ------------------------------------------------------------------ fastposegait plot


def write_report(path, results, **extra):
    report = {"eval_func": "evaluate_CCPG", "dataset": "CCPG", "metric": "euc", "num_sequences": 84,
              "checkpoint": "output/CCPG/GPGait/run/checkpoints/run-00010.pt", **extra, "results": results}
    path.write_text(json.dumps(report, indent=2))
    return report


def test_plot_round_trip(tmp_path, capsys):
    results = results_sets.ccpg()
    source = tmp_path / "run-00010-test.json"
    report = write_report(source, results)
    assert run_cli(plot_command.main, [str(source), "-o", str(tmp_path / "pics")]) == 0
    printed = capsys.readouterr().out.split()
    pictures = report_pictures(report)
    assert printed == [str(tmp_path / "pics" / f"run-00010-test-{p.name}.png") for p in pictures]
    for path, picture in zip(printed, pictures):
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), picture.rgb)
    # default folder: next to the JSON
    assert run_cli(plot_command.main, [str(source)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"run-00010-test-{p.name}.png" for p in pictures)


def test_plot_without_curve_data_writes_nothing(tmp_path, capsys):
    source = tmp_path / "grew-test.json"
    write_report(source, results_sets.grew_submission(tmp_path))
    assert run_cli(plot_command.main, [str(source)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "nothing drawn" in err and list(tmp_path.glob("*.png")) == []


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"not json {", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"[1, 2, 3]", "not a test results file"),
    (b'{"results": [1]}', "not a test results file"),
    (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
    ("folder", "not a regular file"),
])
def test_plot_bad_input_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "x.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    assert run_cli(plot_command.main, [str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and message in err and err.count("\n") == 1
