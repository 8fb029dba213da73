import json
import logging
import math
import os

import numpy as np
import pytest
import torch

import eval_reference as ref
from fastposegait.evaluation import (
    INDOOR_CROSS_VIEW,
    INDOOR_SINGLE_VIEW,
    GREW_submission,
    evaluate_Gait3D,
    evaluate_indoor_dataset,
    evaluate_real_scene,
)
from fastposegait.registry import EVALUATORS

P = "scalar/test_accuracy/"


def e3_set(subjects, types, views):
    """Worked example E3 features, generated in listing order (subject-major, then types, then views)."""
    feats, labels, typs, vies = [], [], [], []
    i = 0
    for s, subject in enumerate(subjects):
        for t in types:
            off = 1.5 if t.startswith("bg") else -1.5 if t.startswith("cl") else 0.0
            for v in views:
                i += 1
                x0 = 4 * s + 3 * math.modf(math.sqrt(18 * i + 0.5))[0] + off
                x1 = 1 + 3 * math.modf(math.sqrt(31 * i + 0.5))[0]
                feats.append([[x0], [x1]])
                labels.append(subject)
                typs.append(t)
                vies.append(v)
    feats = np.asarray(feats, dtype=np.float64).astype(np.float32)
    return {"embeddings": feats, "labels": labels, "types": typs, "views": vies}


CASIA = e3_set(["075", "076", "077"], ["nm-01", "nm-02", "nm-05", "bg-01", "bg-02", "cl-01", "cl-02"], ["000", "090"])
OUMVLP = e3_set(["00002", "00004", "00006"], ["00", "01"], ["000", "015", "030"])


def test_e3_first_rows():
    np.testing.assert_allclose(
        CASIA["embeddings"][:3, :, 0], [[0.903488, 2.837458], [0.124569, 3.717083], [1.147235, 3.008619]], atol=1e-6
    )
    assert len(CASIA["labels"]) == 42 and len(OUMVLP["labels"]) == 18


def scalars(result):
    return {k[len(P):]: v for k, v in result.items() if k.startswith(P)}


E3_ROWS = [
    # (data, metric, cross, per-view tables, returned scalars)
    (
        "casia", "euc", False,
        {"NM@R1": [100, 100], "BG@R1": [66.67, 66.67], "CL@R1": [100, 100]},
        {"NM@R1": 100.0, "BG@R1": 66.67, "CL@R1": 100.0},
    ),
    (
        "casia", "cos", False,
        {"NM@R1": [66.67, 100], "BG@R1": [66.67, 50], "CL@R1": [66.67, 100]},
        {"NM@R1": 83.335, "BG@R1": 58.335, "CL@R1": 83.335},
    ),
    (
        "casia", "euc", True,
        {
            "NM-Rank@1": [100, 33.33], "BG-Rank@1": [66.67, 66.67], "CL-Rank@1": [66.67, 66.67],
            "NM-mAP": [91.67, 57.04], "BG-mAP": [68.33, 62.69], "CL-mAP": [68.96, 70.00],
        },
        {"NM-Rank@1": 66.665, "NM-mAP": 74.355, "BG-Rank@1": 66.67, "BG-mAP": 65.51,
         "CL-Rank@1": 66.67, "CL-mAP": 69.48},
    ),
    (
        "casia", "cos", True,
        {
            "NM-Rank@1": [66.67, 66.67], "BG-Rank@1": [33.33, 33.33], "CL-Rank@1": [33.33, 66.67],
            "NM-mAP": [66.80, 62.88], "BG-mAP": [53.70, 49.99], "CL-mAP": [51.27, 65.87],
        },
        {"NM-Rank@1": 66.67, "NM-mAP": 64.84, "BG-Rank@1": 33.33, "BG-mAP": 51.845,
         "CL-Rank@1": 50.0, "CL-mAP": 58.57},
    ),
    ("oumvlp", "euc", False, {"NM@R1": [100, 100, 100]}, {"NM@R1": 100.0}),
    ("oumvlp", "cos", False, {"NM@R1": [66.665, 50, 100]}, {"NM@R1": 72.2217}),
    (
        "oumvlp", "euc", True,
        {"NM-Rank@1": [100, 100, 100], "NM-mAP": [100, 100, 94.44]},
        {"NM-Rank@1": 100.0, "NM-mAP": 98.1467},
    ),
    (
        "oumvlp", "cos", True,
        {"NM-Rank@1": [66.67, 33.33, 66.67], "NM-mAP": [76.11, 66.67, 86.11]},
        {"NM-Rank@1": 55.5567, "NM-mAP": 76.2967},
    ),
]


@pytest.mark.usefixtures("rank_path")
@pytest.mark.parametrize("which, metric, cross, tables, expected", E3_ROWS)
def test_e3_indoor_protocols(which, metric, cross, tables, expected):
    data, dataset = (CASIA, "CASIA-B") if which == "casia" else (OUMVLP, "OUMVLP")
    result = evaluate_indoor_dataset(data, dataset, metric=metric, cross_view_gallery=cross)
    got = scalars(result)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-4), name
        assert type(got[name]) is float
    for name, values in tables.items():
        np.testing.assert_allclose(result[f"table/{name}"], values, atol=1e-9)
    json.dumps(result)  # JSON-ready


def test_e3_identical_view_exclusion_is_exact():
    # CL's cells are [[33.33, 100], [100, 83.33]]: the off-diagonal sum is exactly 100.0
    result = evaluate_indoor_dataset(CASIA, "CASIA-B")
    assert result["table/CL@R1-matrix"] == [[33.33, 100.0], [100.0, 83.33]]
    assert result[P + "CL@R1"] == 100.0 and result["table/NM@R1"] == [100.0, 100.0]


def test_e3_single_view_logs_tables(caplog):
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        evaluate_indoor_dataset(CASIA, "CASIA-B")
    text = caplog.text
    assert "Exclude identical-view" in text
    assert "NM@R1: 100.00%\tBG@R1: 66.67%\tCL@R1: 100.00%" in text


# ---------------------------------------------------------------- E2 Gait3D

E2_ROWS = """
0001 camid1_videoid1 seq0 0.00 * 0001 camid2_videoid1 seq0 0.45 - 0001 camid3_videoid2 seq1 3.20 -
0002 camid1_videoid1 seq0 2.60 * 0002 camid4_videoid1 seq0 1.10 - 0002 camid4_videoid1 seq1 2.70 -
0003 camid5_videoid1 seq0 7.00 * 0004 camid1_videoid2 seq0 0.30 - 0004 camid2_videoid2 seq0 6.10 -
0005 camid6_videoid1 seq0 1.60 - 0005 camid7_videoid1 seq0 4.40 - 0006 camid8_videoid1 seq0 5.30 -
0006 camid9_videoid1 seq0 8.90 - 0007 camid2_videoid1 seq0 9.70 - 0007 camid3_videoid1 seq0 2.35 -
"""


def e2_set(tmp_path):
    tokens = E2_ROWS.split()
    rows = [tokens[i : i + 5] for i in range(0, len(tokens), 5)]
    data = {
        "embeddings": np.asarray([[[float(r[3])]] for r in rows], dtype=np.float32),
        "labels": [r[0] for r in rows],
        "types": [r[1] for r in rows],
        "views": [r[2] for r in rows],
    }
    probes = [f"{r[0]}-{r[1]}-{r[2]}" for r in rows if r[4] == "*"]
    partition = tmp_path / "Gait3D.json"
    partition.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": sorted(set(data["labels"])), "PROBE_SET": probes}))
    return data, str(partition)


@pytest.mark.usefixtures("rank_path")
def test_e2_gait3d_end_to_end(tmp_path, caplog):
    data, partition = e2_set(tmp_path)
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        result = evaluate_Gait3D(data, "Gait3D", metric="euc", dataset_partition=partition)
    got = scalars(result)
    expected = {"Rank-1": 50.0, "Rank-5": 100.0, "Rank-10": 100.0, "mAP": 54.6429, "mINP": 34.2857}
    assert got == pytest.approx(expected, abs=1e-4)
    assert "1 of 3 probes have no gallery match" in caplog.text
    json.dumps(result)


def test_gait3d_errors(tmp_path):
    data, partition = e2_set(tmp_path)
    with pytest.raises(ValueError, match="needs dataset_partition"):
        evaluate_Gait3D(data, "Gait3D")
    with pytest.raises(FileNotFoundError, match="nope.json does not exist"):
        evaluate_Gait3D(data, "Gait3D", dataset_partition=str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": []}))
    with pytest.raises(ValueError, match="has no PROBE_SET"):
        evaluate_Gait3D(data, "Gait3D", dataset_partition=str(bad))
    bad.write_text(json.dumps({"PROBE_SET": ["9999-x-seq0"]}))
    with pytest.raises(ValueError, match="no test sequence is in the PROBE_SET"):
        evaluate_Gait3D(data, "Gait3D", dataset_partition=str(bad))
    only_unmatched = tmp_path / "u.json"
    only_unmatched.write_text(json.dumps({"PROBE_SET": ["0003-camid5_videoid1-seq0"]}))
    with pytest.raises(ValueError, match="no probe has a same-subject gallery sequence"):
        evaluate_Gait3D(data, "Gait3D", dataset_partition=str(only_unmatched))


def test_gait3d_small_gallery_saturates(tmp_path, caplog):
    data = {"embeddings": np.asarray([[[0.0]], [[1.0]], [[0.2]]], dtype=np.float32), "labels": ["1", "2", "1"],
            "types": ["a", "a", "b"], "views": ["s", "s", "s"]}
    partition = tmp_path / "p.json"
    partition.write_text(json.dumps({"PROBE_SET": ["1-a-s"]}))
    with caplog.at_level(logging.WARNING, logger="fastposegait.evaluation"):
        got = scalars(evaluate_Gait3D(data, "Gait3D", dataset_partition=str(partition)))
    assert got["Rank-1"] == 100.0 and got["Rank-10"] == 100.0
    assert "only 2 gallery sequences" in caplog.text


# ---------------------------------------------------------------- E4 / E5 GREW


def grew_gallery(types):
    return (
        [[[float(i)]] for i in range(20)],
        [f"{i // 2 + 1:05d}" for i in range(20)],
        types,
        [f"g{i:02d}" for i in range(20)],
    )


@pytest.mark.usefixtures("rank_path")
def test_e4_grew_local(caplog):
    feats, labels, types, views = grew_gallery(["01"] * 20)
    for x, subject in [(0.2, "00001"), (5.4, "00006"), (12.9, "00007"), (19.3, "00001")]:
        feats.append([[x]]); labels.append(subject); types.append("02"); views.append(f"p{x}")
    # the probe pseudo-subject's 03 sequences are ignored
    feats.append([[3.0]]); labels.append("probe"); types.append("03"); views.append("vidZ")
    data = {"embeddings": np.asarray(feats, dtype=np.float32), "labels": labels, "types": types, "views": views}
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        result = evaluate_real_scene(data, "GREW", metric="euc")
    assert scalars(result) == {"Rank-1": 50.0, "Rank-5": 50.0}
    curve = result["table/Rank-k"]
    assert len(curve) == 20 and (curve[0], curve[4], curve[9], curve[19]) == (50.0, 50.0, 75.0, 100.0)
    assert "Rank-1: 50.000\tRank-5: 50.000\tRank-10: 75.000\tRank-20: 100.000" in caplog.text


def test_grew_local_small_gallery_and_empty_sets(caplog):
    data = {"embeddings": np.asarray([[[0.0]], [[1.0]], [[0.9]]], dtype=np.float32), "labels": ["1", "2", "2"],
            "types": ["01", "01", "02"], "views": ["a", "b", "c"]}
    with caplog.at_level(logging.WARNING, logger="fastposegait.evaluation"):
        result = evaluate_real_scene(data, "GREW")
    assert scalars(result) == {"Rank-1": 100.0, "Rank-5": 100.0}
    assert "only 2 gallery sequences" in caplog.text
    with pytest.raises(ValueError, match=r"evaluate_real_scene\(GREW\): no probe sequences of types 02"):
        evaluate_real_scene({**data, "types": ["01", "01", "01"]}, "GREW")
    with pytest.raises(ValueError, match=r"evaluate_real_scene\(GREW\): no gallery sequences of types 01"):
        evaluate_real_scene({**data, "types": ["02", "02", "02"]}, "GREW")


E5_CSV = (
    "videoId," + ",".join(f"rank{k}" for k in range(1, 21)) + "\n"
    "vidA,1,1,2,2,3,3,4,4,5,5,6,6,7,7,8,8,9,9,10,10\n"
    "vidB,3,4,3,4,2,5,2,5,1,6,1,6,7,7,8,8,9,9,10,10\n"
)


@pytest.mark.usefixtures("rank_path")
def test_e5_grew_submission(tmp_path, caplog):
    feats, labels, types, views = grew_gallery(["01" if i % 2 == 0 else "02" for i in range(20)])
    for x, vid in [(0.2, "vidA"), (5.4, "vidB")]:
        feats.append([[x]]); labels.append("probe"); types.append("03"); views.append(vid)
    data = {"embeddings": np.asarray(feats, dtype=np.float32), "labels": labels, "types": types, "views": views}
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        result = GREW_submission(data, "GREW", metric="euc", output_dir=str(tmp_path))
    path = result["table/submission_csv"]
    assert not any(k.startswith("scalar/") for k in result)
    assert os.path.dirname(path) == str(tmp_path / "GREW_result")
    name = os.path.basename(path)
    assert name.endswith(".csv") and len(name) == len("2024-0131-235959.csv")
    with open(path, newline="") as f:
        assert f.read() == E5_CSV
    assert path in caplog.text
    # a second call in the same second gets its own file
    second = GREW_submission(data, "GREW", output_dir=str(tmp_path))["table/submission_csv"]
    assert second != path and os.path.exists(path)


def test_grew_submission_needs_output_dir():
    with pytest.raises(ValueError, match="needs output_dir"):
        GREW_submission(CASIA, "GREW")


# ---------------------------------------------------------------- registry, errors


def test_registered_names_and_runner_kwargs():
    import inspect

    assert EVALUATORS.get("evaluate_indoor_dataset") is evaluate_indoor_dataset
    assert EVALUATORS.get("evaluate_real_scene") is evaluate_real_scene
    assert EVALUATORS.get("GREW_submission") is GREW_submission
    assert EVALUATORS.get("evaluate_Gait3D") is evaluate_Gait3D
    # the runner passes only these keyword names (filtered to each function's parameters)
    for fn in (evaluate_indoor_dataset, evaluate_real_scene, GREW_submission, evaluate_Gait3D):
        params = list(inspect.signature(fn).parameters)
        assert params[:2] == ["data", "dataset"] and "metric" in params
    assert "cross_view_gallery" in inspect.signature(evaluate_indoor_dataset).parameters
    assert "output_dir" in inspect.signature(GREW_submission).parameters
    assert "dataset_partition" in inspect.signature(evaluate_Gait3D).parameters


def test_protocol_tables_are_frozen():
    with pytest.raises(TypeError):
        INDOOR_SINGLE_VIEW["X"] = INDOOR_SINGLE_VIEW["CASIA-B"]  # type: ignore[index]
    assert [c.name for c in INDOOR_CROSS_VIEW["CASIA-B"].conditions] == ["NM", "BG", "CL"]


@pytest.mark.parametrize("dataset", ["CCPG", "GREW", "casia-b"])
def test_unknown_indoor_dataset(dataset):
    with pytest.raises(KeyError, match="supported: CASIA-B, OUMVLP, SUSTech1K") as info:
        evaluate_indoor_dataset(CASIA, dataset)
    if dataset == "GREW":
        assert "evaluate_real_scene" in str(info.value)
    if dataset == "CCPG":
        assert "evaluate_CCPG" in str(info.value)


def test_sustech1k_has_no_cross_view_gallery():
    with pytest.raises(KeyError, match="SUSTech1K has the single-view-gallery protocol only"):
        evaluate_indoor_dataset(CASIA, "SUSTech1K", cross_view_gallery=True)


def _drop(data, keep):
    return {
        "embeddings": data["embeddings"][keep],
        **{k: [data[k][i] for i in np.flatnonzero(keep)] for k in ("labels", "types", "views")},
    }


def test_empty_gallery_view_is_a_clear_error():
    keep = ~(np.isin(CASIA["types"], ["nm-01", "nm-02"]) & (np.asarray(CASIA["views"]) == "090"))
    with pytest.raises(
        ValueError,
        match=r"evaluate_indoor_dataset\(CASIA-B\): "
        r"no gallery sequences of types nm-01, nm-02, nm-03, nm-04 with view 090",
    ):
        evaluate_indoor_dataset(_drop(CASIA, keep), "CASIA-B")


@pytest.mark.parametrize("cross", [False, True])
def test_empty_probe_cell_is_a_clear_error(cross):
    types = ["bg-01", "bg-02"] if not cross else ["bg-01"]
    keep = ~(np.isin(CASIA["types"], types) & (np.asarray(CASIA["views"]) == "000"))
    message = rf"no probe sequences of condition BG \(types {', '.join(types)}\) with view 000"
    with pytest.raises(ValueError, match=message):
        evaluate_indoor_dataset(_drop(CASIA, keep), "CASIA-B", cross_view_gallery=cross)


def test_cross_view_probe_without_candidates_is_a_clear_error():
    # one subject, one view: after removing its own same-view sequences nothing is left
    data = {"embeddings": np.zeros((2, 2, 1), np.float32), "labels": ["1", "1"], "types": ["nm-01", "nm-02"],
            "views": ["000", "000"]}
    data_bg = {**data, "embeddings": np.zeros((4, 2, 1), np.float32), "labels": ["1"] * 4,
               "types": ["nm-01", "bg-01", "cl-01", "nm-02"], "views": ["000"] * 4}
    with pytest.raises(ValueError, match=r"probe 1/nm-01/000 \(condition NM, view 000\) has no gallery sequence left"):
        evaluate_indoor_dataset(data_bg, "CASIA-B", cross_view_gallery=True)
    with pytest.raises(ValueError, match="needs at least 2 views"):
        evaluate_indoor_dataset(data, "OUMVLP")


def test_bad_data_errors():
    with pytest.raises(KeyError, match="lacks views"):
        evaluate_indoor_dataset({k: v for k, v in CASIA.items() if k != "views"}, "CASIA-B")
    with pytest.raises(ValueError, match="42 embeddings but 41 labels"):
        evaluate_indoor_dataset({**CASIA, "labels": CASIA["labels"][:-1]}, "CASIA-B")
    bad = CASIA["embeddings"].copy()
    bad[5, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 embeddings contain NaN or inf \(first: 075/nm-05/090\)"):
        evaluate_indoor_dataset({**CASIA, "embeddings": bad}, "CASIA-B")


# ---------------------------------------------------------------- brute force on random sets

CASIA_TYPES = ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"]


def random_indoor_set(seed, dataset, num_subjects=7, views=("000", "018", "036"), parts=3, integer=False):
    """Random features; some gallery sequences dropped (probes without a match in a view) and
    duplicated gallery features (exact distance ties)."""
    rng = np.random.default_rng(seed)
    types = CASIA_TYPES if dataset == "CASIA-B" else ["00", "01"]
    gallery_types = set(INDOOR_SINGLE_VIEW[dataset].gallery_types) | set(INDOOR_CROSS_VIEW[dataset].gallery_types)
    labels, typs, vies = [], [], []
    for s in range(num_subjects):
        for t in types:
            for v in views:
                # subject 0 is always complete, so no cell is empty; others lose ~25% of sequences
                if s > 0 and rng.random() < 0.25:
                    continue
                labels.append(f"{s:03d}"); typs.append(t); vies.append(v)
    n = len(labels)
    if integer:
        feats = rng.integers(-3, 4, size=(n, 4, parts)).astype(np.float32)
    else:
        feats = rng.normal(size=(n, 8, parts)).astype(np.float32)
    gallery_rows = [i for i in range(n) if typs[i] in gallery_types]
    for i in rng.choice(gallery_rows, size=len(gallery_rows) // 4, replace=False):
        feats[i] = feats[rng.choice(gallery_rows)]  # duplicate another gallery feature → exact ties
    return {"embeddings": feats, "labels": labels, "types": typs, "views": vies}


def _conditions(protocol):
    return [(c.name, c.probe_types) for c in protocol.conditions]


@pytest.mark.usefixtures("rank_path")
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dataset", ["CASIA-B", "OUMVLP"])
@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_single_view_matches_brute_force(seed, dataset, metric):
    data = random_indoor_set(seed, dataset, integer=(seed == 2 and metric == "euc"), parts=1 if seed == 2 else 3)
    result = evaluate_indoor_dataset(data, dataset, metric=metric, chunk_size=5)
    protocol = INDOOR_SINGLE_VIEW[dataset]
    expected = ref.indoor_single(data["embeddings"], data["labels"], data["types"], data["views"],
                                 _conditions(protocol), protocol.gallery_types, metric)
    for name, (acc, per_view) in expected.items():
        np.testing.assert_allclose(result[f"table/{name}@R1-matrix"], acc, atol=1e-6)
        np.testing.assert_allclose(result[f"table/{name}@R1"], per_view, atol=1e-6)
        assert result[P + f"{name}@R1"] == pytest.approx(np.mean(per_view), abs=1e-6)
        assert result[f"table/{name}-cmc"][0] == result[P + f"{name}@R1"]  # the curve starts at rank-1


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_single_view_cmc_matches_brute_force(seed, metric):
    """Ranks 2..5 of the single-view gallery's CMC: per view pair a match among the first r of
    the stable (distance, index) order, identical views excluded, averaged like rank-1."""
    data = random_indoor_set(seed + 20, "CASIA-B", integer=(seed == 1), parts=2)
    result = evaluate_indoor_dataset(data, "CASIA-B", metric=metric, chunk_size=7)
    protocol = INDOOR_SINGLE_VIEW["CASIA-B"]
    for rank in (2, 3, 5):
        expected = ref.indoor_single(data["embeddings"], data["labels"], data["types"], data["views"],
                                     _conditions(protocol), protocol.gallery_types, metric, rank=rank)
        for name, (_, per_view) in expected.items():
            assert result[f"table/{name}-cmc"][rank - 1] == pytest.approx(np.mean(per_view), abs=1e-6)
    for name, _ in _conditions(protocol):
        cmc = result[f"table/{name}-cmc"]
        assert len(cmc) == 5 and all(a <= b for a, b in zip(cmc, cmc[1:]))


@pytest.mark.usefixtures("rank_path")
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dataset", ["CASIA-B", "OUMVLP"])
@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_cross_view_matches_brute_force(seed, dataset, metric):
    data = random_indoor_set(seed + 10, dataset, integer=(seed == 2 and metric == "euc"), parts=1 if seed == 2 else 3)
    result = evaluate_indoor_dataset(data, dataset, metric=metric, cross_view_gallery=True, chunk_size=4)
    protocol = INDOOR_CROSS_VIEW[dataset]
    expected = ref.indoor_cross(data["embeddings"], data["labels"], data["types"], data["views"],
                                _conditions(protocol), protocol.gallery_types, metric)
    for name, (r1, maps) in expected.items():
        np.testing.assert_allclose(result[f"table/{name}-Rank@1"], r1, atol=1e-6)
        np.testing.assert_allclose(result[f"table/{name}-mAP"], maps, atol=1e-6)
        assert result[P + f"{name}-Rank@1"] == pytest.approx(np.mean(r1), abs=1e-6)
        assert result[P + f"{name}-mAP"] == pytest.approx(np.mean(maps), abs=1e-6)


@pytest.mark.usefixtures("rank_path")
@pytest.mark.parametrize("seed", range(3))
def test_grew_and_gait3d_match_brute_force(seed, tmp_path):
    rng = np.random.default_rng(seed)
    n = 60
    feats = rng.normal(size=(n, 6, 2)).astype(np.float32)
    feats[rng.choice(n, 10)] = feats[rng.choice(n, 10)]  # exact ties
    labels = [f"{v:05d}" for v in rng.integers(0, 12, n)]
    types = [["01", "02"][v] for v in rng.integers(0, 2, n)]
    views = [f"seq{i}" for i in range(n)]
    data = {"embeddings": feats, "labels": labels, "types": types, "views": views}
    # GREW local: misses count
    pr = [i for i in range(n) if types[i] == "02"]
    gr = [i for i in range(n) if types[i] == "01"]
    d = ref.distance(feats[pr], feats[gr], "euc")
    firsts = [ref.rank_probe(d[k], labels[i], [labels[j] for j in gr])["positions"][:1] for k, i in enumerate(pr)]
    expected = [np.round(sum(1 for f in firsts if f and f[0] <= k) * 100 / len(pr), 2) for k in range(1, 21)]
    np.testing.assert_allclose(evaluate_real_scene(data, "GREW", chunk_size=7)["table/Rank-k"], expected, atol=1e-9)
    # Gait3D: the 02 sequences are the probes, probes without match skipped
    partition = tmp_path / "g.json"
    partition.write_text(json.dumps({"PROBE_SET": [f"{labels[i]}-{types[i]}-{views[i]}" for i in pr]}))
    got = scalars(evaluate_Gait3D(data, "Gait3D", metric="cos", dataset_partition=str(partition), chunk_size=5))
    gallery = [i for i in range(n) if i not in pr]
    d = ref.distance(feats[pr], feats[gallery], "cos")
    cmc, aps, inps = ref.cmc_ap_inp(d, [labels[i] for i in pr], [labels[j] for j in gallery], 50)
    assert got["Rank-1"] == pytest.approx(cmc[0] * 100, abs=1e-4)
    assert got["Rank-5"] == pytest.approx(cmc[4] * 100, abs=1e-4)
    assert got["Rank-10"] == pytest.approx(cmc[9] * 100, abs=1e-4)
    assert got["mAP"] == pytest.approx(np.mean(aps) * 100, abs=1e-6)
    assert got["mINP"] == pytest.approx(np.mean(inps) * 100, abs=1e-6)


def test_tensor_embeddings_and_chunking_do_not_change_results():
    data = random_indoor_set(4, "CASIA-B")
    base = evaluate_indoor_dataset(data, "CASIA-B", chunk_size=3)
    tensor = evaluate_indoor_dataset({**data, "embeddings": torch.from_numpy(data["embeddings"])}, "CASIA-B")
    assert base == tensor


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cross", [False, True])
def test_cuda_equals_cpu(cross, tmp_path):
    data = random_indoor_set(5, "CASIA-B")
    cpu = evaluate_indoor_dataset(data, "CASIA-B", metric="euc", cross_view_gallery=cross, device="cpu")
    cuda = evaluate_indoor_dataset(data, "CASIA-B", metric="euc", cross_view_gallery=cross, device="cuda")
    assert cpu.keys() == cuda.keys()
    for key in cpu:
        np.testing.assert_allclose(np.asarray(cpu[key], dtype=object if key == "table/views" else float),
                                   np.asarray(cuda[key], dtype=object if key == "table/views" else float), atol=1e-6)
    e2, partition = e2_set(tmp_path)
    assert evaluate_Gait3D(e2, "Gait3D", dataset_partition=partition, device="cuda") == evaluate_Gait3D(
        e2, "Gait3D", dataset_partition=partition, device="cpu")


@pytest.mark.usefixtures("rank_path")
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_grew_submission_matches_brute_force(seed, metric, tmp_path):
    """Random gallery with duplicated features (exact ties) and fewer subjects than 20 ranks."""
    rng = np.random.default_rng(seed)
    m, n = 50, 30
    feats = rng.integers(-2, 3, size=(m + n, 4, 2)).astype(np.float32)
    feats[rng.choice(m, 15)] = feats[rng.choice(m, 15)]
    labels = [f"{v:05d}" for v in rng.integers(1, 9, m)] + ["probe"] * n
    types = [["01", "02"][v] for v in rng.integers(0, 2, m)] + ["03"] * n
    views = [f"g{i}" for i in range(m)] + [f"vid{i:03d}" for i in range(n)]
    data = {"embeddings": feats, "labels": labels, "types": types, "views": views}
    path = GREW_submission(data, "GREW", metric=metric, output_dir=str(tmp_path), chunk_size=7)["table/submission_csv"]
    with open(path) as f:
        rows = f.read().splitlines()
    d = ref.distance(feats[m:], feats[:m], metric)
    assert rows[0] == "videoId," + ",".join(f"rank{k}" for k in range(1, 21))
    assert len(rows) == n + 1
    for i, line in enumerate(rows[1:]):
        order = ref.rank_probe(d[i], "none", labels[:m])["order"][:20]
        assert line == ",".join([f"vid{i:03d}", *(str(int(labels[j])) for j in order)])


@pytest.mark.usefixtures("rank_path")
@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_cross_view_with_a_single_view_gallery_matches_brute_force(metric):
    """All gallery sequences in one view: probes of that view lose every same-subject entry
    (misses for rank-1, absent from mAP), probes of the other views keep theirs."""
    data = random_indoor_set(21, "OUMVLP", views=("000", "015", "030"))
    keep = [i for i, (t, v) in enumerate(zip(data["types"], data["views"])) if t == "00" or v == "015"]
    data = _drop(data, np.isin(np.arange(len(data["labels"])), keep))
    result = evaluate_indoor_dataset(data, "OUMVLP", metric=metric, cross_view_gallery=True, chunk_size=3)
    expected = ref.indoor_cross(data["embeddings"], data["labels"], data["types"], data["views"],
                                [("NM", ("00",))], ("01",), metric)
    r1, maps = expected["NM"]
    np.testing.assert_allclose(result["table/NM-Rank@1"], r1, atol=1e-6)
    np.testing.assert_allclose(result["table/NM-mAP"], maps, atol=1e-6)
    assert result["table/NM-Rank@1"][1] == 0.0 and math.isnan(result["table/NM-mAP"][1])


def test_grew_submission_with_a_small_gallery_has_a_matching_header(tmp_path, caplog):
    data = {"embeddings": np.asarray([[[0.0]], [[1.0]], [[3.0]], [[0.9]]], dtype=np.float32),
            "labels": ["00007", "00002", "00002", "probe"], "types": ["01", "02", "01", "03"],
            "views": ["a", "b", "c", "vidA"]}
    with caplog.at_level(logging.WARNING, logger="fastposegait.evaluation"):
        path = GREW_submission(data, "GREW", output_dir=str(tmp_path))["table/submission_csv"]
    assert "rows list 3 subjects instead of 20" in caplog.text
    with open(path) as f:
        assert f.read() == "videoId,rank1,rank2,rank3\nvidA,2,7,2\n"
