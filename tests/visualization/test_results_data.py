"""The adapter that finds CMC curves, view-pair matrices and per-view vectors in a results
dict: checked on hand-made dicts and on what every evaluator actually returns."""
import math

import numpy as np
import pytest

import results_sets
from fastposegait.visualization.results_data import WHOLE_SET, file_safe, find_figures


def curves(figures):
    return {c.condition: c.accuracy.tolist() for c in figures.cmc}


def matrices(figures):
    return {m.condition: (m.matrix.tolist(), m.views) for m in figures.matrices}


def test_hand_made_single_view_dict():
    results = {
        "scalar/test_accuracy/NM@R1": 50.0,
        "table/views": ["000", "090"],
        "table/NM@R1": [25.0, 75.0],
        "table/NM@R1-matrix": [[100.0, 25.0], [75.0, None]],  # null = NaN in the JSON
    }
    figures = find_figures(results)
    assert figures.cmc == []  # rank-1 only: no curve
    ((condition, (matrix, views)),) = matrices(figures).items()
    assert condition == "NM" and views == ["000", "090"]
    assert matrix[0] == [100.0, 25.0] and matrix[1][0] == 75.0 and math.isnan(matrix[1][1])
    assert figures.per_view.views == ["000", "090"]
    assert figures.per_view.conditions["NM"].tolist() == [25.0, 75.0]


def test_hand_made_rank_k_vectors_make_a_cmc_averaged_over_views():
    results = {"table/views": ["a", "b"],
               "table/Bag@R1": [10.0, 30.0], "table/Bag@R2": [20.0, 40.0], "table/Bag@R3": [50.0, None]}
    assert curves(find_figures(results)) == {"Bag": [20.0, 30.0, 50.0]}  # the NaN view left out at rank 3
    # a gap in the ranks (R1, R3) or vectors of different lengths are not a curve
    assert find_figures({"table/views": ["a", "b"], "table/X@R1": [1.0, 2.0], "table/X@R3": [3.0, 4.0]}).cmc == []
    assert find_figures({"table/views": ["a", "b"], "table/X@R1": [1.0, 2.0], "table/X@R2": [3.0]}).cmc == []


@pytest.mark.parametrize("rank1, stored, expected", [
    (40.0, [0.4, 0.5, 1.0], [40.0, 50.0, 100.0]),  # a fraction, as Gait3D writes it
    (40.0, [40.0, 50.0, 100.0], [40.0, 50.0, 100.0]),  # already percent: kept
    (None, [0.25, 0.5], [25.0, 50.0]),  # no scalar: values <= 1 are a fraction
])
def test_whole_set_cmc_scale(rank1, stored, expected):
    results = {"table/cmc": stored}
    if rank1 is not None:
        results["scalar/test_accuracy/Rank-1"] = rank1
    assert curves(find_figures(results)) == {WHOLE_SET: pytest.approx(expected)}
    assert curves(find_figures({"table/Rank-k": [12.5, 50.0]})) == {WHOLE_SET: [12.5, 50.0]}


def test_malformed_entries_are_ignored_and_labels_fall_back_to_indices():
    results = {
        "table/views": ["000", "090", "180"],
        "table/A-matrix": [[1.0, 2.0], [3.0, 4.0]],  # 2 x 2 but 3 view names: numbered views
        "table/B-matrix": [[1.0, 2.0], [3.0]],  # not square
        "table/C-matrix": [["x", "y"], ["z", "w"]],  # not numbers
        "table/D-cmc": "not a list",
        "table/E-cmc": [],
        "table/F@R1": [1.0, 2.0],  # not one value per view: no per-view line
        "table/submission_csv": "/some/where.csv",
        "scalar/test_accuracy/A": 3.0,
        "table/G-cmc": [True, False],  # booleans are not accuracies
    }
    figures = find_figures(results)
    assert matrices(figures) == {"A": ([[1.0, 2.0], [3.0, 4.0]], ["0", "1"])}
    assert figures.cmc == [] and figures.per_view is None
    assert not find_figures({}) and not find_figures([1, 2]) and not find_figures({"table/views": "000"})


def test_file_safe_names():
    assert file_safe("NM") == "NM" and file_safe("a/b c@R1") == "a_b_c_R1" and file_safe("") == "_"


# ------------------------------------------------------------------ every evaluator's real output


def test_casia_b_single_view_gallery():
    results = results_sets.casia_b()
    figures = find_figures(results)
    assert [c.condition for c in figures.cmc] == ["NM", "BG", "CL"]
    for curve in figures.cmc:  # ranks 1-5, starting at the condition's rank-1
        assert curve.accuracy.tolist() == results[f"table/{curve.condition}-cmc"]
        assert curve.accuracy[0] == results[f"scalar/test_accuracy/{curve.condition}@R1"]
    found = matrices(figures)
    assert list(found) == ["NM", "BG", "CL"]
    for cond in ("NM", "BG", "CL"):
        assert found[cond] == (results[f"table/{cond}@R1-matrix"], ["000", "090", "180"])
        assert figures.per_view.conditions[cond].tolist() == results[f"table/{cond}@R1"]
    values = np.concatenate([m.matrix.ravel() for m in figures.matrices])
    assert 0 < values.min() < values.max() <= 100  # the set gives informative numbers


def test_casia_b_cross_view_gallery_has_per_view_rank1_only():
    results = results_sets.casia_b(cross_view=True)
    figures = find_figures(results)
    assert figures.cmc == [] and figures.matrices == []
    assert {c: v.tolist() for c, v in figures.per_view.conditions.items()} == {
        c: results[f"table/{c}-Rank@1"] for c in ("NM", "BG", "CL")}


def test_sustech1k_rank_k_tables_give_curves_and_matrices():
    results = results_sets.sustech1k()
    figures = find_figures(results)
    present = [name for name in ("Normal", "Bag", "Overall") if f"table/{name}@R1" in results]
    assert present == ["Normal", "Bag", "Overall"]
    got = curves(figures)
    assert list(got) == present
    for name in present:
        expected = [float(np.mean(results[f"table/{name}@R{k}"])) for k in range(1, 6)]
        assert got[name] == pytest.approx(expected)
        assert all(a <= b + 1e-9 for a, b in zip(got[name], got[name][1:]))  # a CMC never decreases
        assert matrices(figures)[name] == (results[f"table/{name}-matrix"], ["000", "090"])


def test_ccpg_curves_matrices_and_cameras():
    results = results_sets.ccpg()
    figures = find_figures(results)
    assert curves(figures) == {g: results[f"table/{g}-cmc"] for g in ("CL", "UP", "DN", "BG")}
    assert matrices(figures) == {g: (results[f"table/{g}-matrix"], ["01", "02", "03"]) for g in ("CL", "UP", "DN", "BG")}
    assert figures.per_view.views == ["01", "02", "03"]
    for curve in figures.cmc:
        assert curve.accuracy[0] == pytest.approx(results[f"scalar/test_accuracy/{curve.condition}-Rank@1"])


def test_grew_local_curve():
    results = results_sets.grew()
    figures = find_figures(results)
    assert curves(figures) == {WHOLE_SET: results["table/Rank-k"]}
    assert len(results["table/Rank-k"]) == 20 and figures.matrices == [] and figures.per_view is None
    assert figures.cmc[0].accuracy[0] == results["scalar/test_accuracy/Rank-1"]


def test_gait3d_fraction_curve_becomes_percent(tmp_path):
    results = results_sets.gait3d(tmp_path)
    figures = find_figures(results)
    (curve,) = figures.cmc
    assert curve.condition == WHOLE_SET
    assert curve.accuracy.tolist() == pytest.approx([100 * v for v in results["table/cmc"]])
    assert curve.accuracy[0] == pytest.approx(results["scalar/test_accuracy/Rank-1"], abs=1e-4)
    assert curve.accuracy[4] == pytest.approx(results["scalar/test_accuracy/Rank-5"], abs=1e-4)


def test_grew_submission_has_nothing_to_draw(tmp_path):
    results = results_sets.grew_submission(tmp_path)
    assert list(results) == ["table/submission_csv"]
    assert not find_figures(results)
