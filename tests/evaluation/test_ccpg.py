"""evaluate_CCPG: the worked example number by number (euc and cos), a brute-force loop reference
on random sets (small galleries, missing sequences, cameras with several view suffixes), and the
failure modes (one clear line each)."""
import logging

import numpy as np
import pytest

from eval_reference import distance, subset, worked_example
from fastposegait.errors import EvaluationError
from fastposegait.evaluation import evaluate_CCPG, evaluate_indoor_dataset
from fastposegait.registry import EVALUATORS

GROUPS = [  # written out again here (not imported): name, probe types, gallery types
    ("CL", ("U0_D0_BG", "U0_D0"), ("U1_D1", "U2_D2", "U3_D3")),
    ("UP", ("U3_D3",), ("U0_D3",)),
    ("DN", ("U1_D0",), ("U1_D1",)),
    ("BG", ("U0_D0_BG",), ("U0_D0",)),
]
TYPES = ["U0_D0", "U0_D0_BG", "U0_D3", "U1_D0", "U1_D1", "U2_D2", "U3_D3"]
OFFSET = {"U0_D0": 0.0, "U0_D0_BG": 0.7, "U0_D3": -0.6, "U1_D0": 0.5, "U1_D1": -0.9, "U2_D2": 1.0, "U3_D3": -0.3}


# 5 subjects x 7 types x 2 views
EXAMPLE = worked_example(["100", "101", "102", "103", "104"], TYPES, ["01_1", "02_1"], OFFSET)

# (Re-ID rank-1, mAP, mINP, rank-1 incl. identical, rank-1 excl. identical, per camera, matrix) per group
EXPECTED = {
    "euc": {
        "CL": (75.0, 71.510, 57.435, 82.5, 85.0, [100, 70], [[80, 100], [70, 80]]),
        "UP": (80.0, 88.333, 88.333, 90.0, 80.0, [100, 60], [[100, 100], [60, 100]]),
        "DN": (50.0, 70.833, 70.833, 65.0, 60.0, [60, 60], [[80, 60], [60, 60]]),
        "BG": (80.0, 88.333, 88.333, 90.0, 90.0, [80, 100], [[100, 80], [100, 80]]),
    },
    "cos": {
        "CL": (50.0, 46.715, 35.181, 60.0, 50.0, [50, 50], [[80, 50], [50, 60]]),
        "UP": (40.0, 62.500, 62.500, 55.0, 60.0, [80, 40], [[40, 80], [40, 60]]),
        "DN": (30.0, 55.095, 55.095, 55.0, 50.0, [60, 40], [[60, 60], [40, 60]]),
        "BG": (30.0, 50.944, 50.944, 50.0, 60.0, [40, 80], [[60, 40], [80, 20]]),
    },
}
SCALAR = "scalar/test_accuracy/"


def test_worked_example_first_rows():
    np.testing.assert_allclose(EXAMPLE["embeddings"][:3, :, 0],
                               [[0.602325, 2.224972], [0.083046, 2.811388], [1.464823, 2.339080]], atol=1e-6)


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_worked_example(metric, caplog):
    views = list(EXAMPLE["views"])
    data = dict(EXAMPLE, views=views)
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        out = evaluate_CCPG(data, "CCPG", metric)
    assert views == EXAMPLE["views"] and views[:2] == ["01_1", "02_1"]  # the caller's views are not cut
    assert out["table/cameras"] == ["01", "02"]
    for group, (r1, m_ap, m_inp, incl, excl, per_camera, matrix) in EXPECTED[metric].items():
        assert out[SCALAR + f"{group}-Rank@1"] == pytest.approx(r1, abs=1e-4)
        assert out[SCALAR + f"{group}-mAP"] == pytest.approx(m_ap, abs=5e-4)
        assert out[SCALAR + f"{group}-mINP"] == pytest.approx(m_inp, abs=5e-4)
        assert out[SCALAR + group] == pytest.approx(incl)  # the original's TensorBoard value (mean of the table)
        assert out[SCALAR + f"{group}@R1"] == pytest.approx(excl)
        assert out[f"table/{group}@R1"] == pytest.approx(per_camera)
        assert out[f"table/{group}-matrix"] == matrix
    assert {k for k in out if k.startswith("scalar/")} == {
        SCALAR + g + suffix for g in ("CL", "UP", "DN", "BG") for suffix in ("", "@R1", "-Rank@1", "-mAP", "-mINP")}
    assert all(isinstance(v, float) for k, v in out.items() if k.startswith("scalar/"))
    r = {g: v for g, v in EXPECTED[metric].items()}
    lines = [
        "===Rank-1 (Exclude identical-view cases for Person Re-Identification)===",
        ",\t".join(f"{g}: {v[0]:.3f}" for g, v in r.items()),
        "===mAP (Exclude identical-view cases for Person Re-Identification)===",
        ",\t".join(f"{g}: {v[1]:.3f}" for g, v in r.items()),
        "===mINP (Exclude identical-view cases for Person Re-Identification)===",
        ",\t".join(f"{g}: {v[2]:.3f}" for g, v in r.items()),
        "===Rank-1 (Include identical-view cases)===",
        ",\t".join(f"{g}: {v[3]:.3f}" for g, v in r.items()),
        "===Rank-1 (Exclude identical-view cases)===",
        ",\t".join(f"{g}: {v[4]:.3f}" for g, v in r.items()),
        *(f"{g}: [{v[5][0]:.2f} {v[5][1]:.2f}]" for g, v in r.items()),
    ]
    text = caplog.text
    positions = [text.index(line) for line in lines]
    assert positions == sorted(positions)
    assert "CL: gallery 30 sequences (U1_D1, U2_D2, U3_D3), probe 20 sequences (U0_D0_BG, U0_D0)" in text
    assert "UP: gallery 10 sequences (U0_D3), probe 10 sequences (U3_D3)" in text


def test_registered_under_the_original_name():
    assert EVALUATORS.get("evaluate_CCPG") is evaluate_CCPG


# ---------------------------------------------------------------------------------------------
# brute-force reference
# ---------------------------------------------------------------------------------------------


def reference(data, metric):
    """The protocol with plain loops: returns {group: dict} or ('empty', group, kind, camera)."""
    feats = np.asarray(data["embeddings"], dtype=np.float64)
    labels, types, views = data["labels"], data["types"], data["views"]
    cams = [v.split("_")[0] for v in views]
    cam_list = sorted(set(cams))
    out = {}
    for name, ptypes, gtypes in GROUPS:
        probes = [i for i in range(len(labels)) if types[i] in ptypes]
        gallery = [j for j in range(len(labels)) if types[j] in gtypes]
        for kind, rows in (("probe", probes), ("gallery", gallery)):
            for c in cam_list:
                if not any(cams[i] == c for i in rows):
                    return ("empty", name, kind, c)
        d = distance(feats[probes], feats[gallery], metric)
        firsts, aps, inps, sizes = [], [], [], []
        for a, i in enumerate(probes):
            keep = [b for b, j in enumerate(gallery) if not (labels[j] == labels[i] and cams[j] == cams[i])]
            order = sorted(keep, key=lambda b: (d[a, b], b))
            pos = [k + 1 for k, b in enumerate(order) if labels[gallery[b]] == labels[i]]
            if not pos:
                continue
            firsts.append(pos[0])
            aps.append(sum((n + 1) / p for n, p in enumerate(pos)) / len(pos))
            inps.append(len(pos) / pos[-1])
            sizes.append(len(order))
        if not firsts:
            return ("no match", name)
        max_rank = min(50, len(gallery), max(sizes))
        cmc = [100 * sum(f <= r for f in firsts) / len(firsts) for r in range(1, max_rank + 1)]
        matrix = np.zeros((len(cam_list), len(cam_list)))
        for a, c1 in enumerate(cam_list):
            p_rows = [i for i in probes if cams[i] == c1]
            for b, c2 in enumerate(cam_list):
                g_rows = [j for j in gallery if cams[j] == c2]
                dd = distance(feats[p_rows], feats[g_rows], metric)
                hits = 0
                for k, i in enumerate(p_rows):
                    nearest = min(range(len(g_rows)), key=lambda n: (dd[k, n], n))
                    hits += labels[g_rows[nearest]] == labels[i]
                matrix[a, b] = round(100 * hits / len(p_rows), 2)
        per_camera = [(sum(matrix[a]) - matrix[a, a]) / (len(cam_list) - 1) for a in range(len(cam_list))]
        out[name] = {"rank1": cmc[0], "mAP": 100 * np.mean(aps), "mINP": 100 * np.mean(inps), "cmc": cmc,
                     "matrix": matrix, "per_camera": per_camera}
    return out


def random_set(rng, num_subjects, views, drop):
    labels, types, vs = [], [], []
    for s in range(num_subjects):
        for t in TYPES:
            for v in views:
                if rng.random() >= drop:
                    labels.append(f"{s:03d}")
                    types.append(t)
                    vs.append(v)
    emb = rng.normal(size=(len(labels), 4, 2)).astype(np.float32)
    # a little identity signal so rankings are not pure noise
    emb += np.asarray([int(x) for x in labels], dtype=np.float32)[:, None, None] * 0.3
    return {"embeddings": emb, "labels": labels, "types": types, "views": vs}


CASES = [  # (seed, subjects, views, drop probability)
    (0, 3, ["01_1", "02_1"], 0.0),           # galleries of 3 per camera: the original crashes
    (1, 4, ["01_1", "01_2", "02_1", "03_1"], 0.15),
    (2, 6, ["1_a", "2_a", "2_b"], 0.25),
    (3, 12, ["01_1", "02_1", "03_1"], 0.1),
    (4, 2, ["01_1", "02_1"], 0.3),
    (5, 25, ["01_1", "02_2"], 0.05),         # CL gallery > 50: the CMC is cut at 50
    (8, 2, ["01_1", "02_1"], 0.6),           # an empty gallery cell: refused, naming it
    (9, 2, ["01_1", "02_1"], 0.6),           # 1-2 sequences per cell
]


@pytest.mark.parametrize("metric", ["euc", "cos"])
@pytest.mark.parametrize("case", CASES)
def test_matches_brute_force(case, metric):
    seed, subjects, views, drop = case
    data = random_set(np.random.default_rng(seed), subjects, views, drop)
    ref = reference(data, metric)
    if isinstance(ref, tuple):
        if ref[0] == "empty":
            _, group, kind, camera = ref
            with pytest.raises(EvaluationError, match=rf"group {group}: no {kind} sequences .* from camera {camera}"):
                evaluate_CCPG(data, "CCPG", metric)
        else:
            with pytest.raises(EvaluationError, match=rf"group {ref[1]}: no probe"):
                evaluate_CCPG(data, "CCPG", metric)
        return
    out = evaluate_CCPG(data, "CCPG", metric)
    for group, r in ref.items():
        assert out[SCALAR + f"{group}-Rank@1"] == pytest.approx(r["rank1"], abs=1e-4)
        assert out[SCALAR + f"{group}-mAP"] == pytest.approx(r["mAP"], abs=1e-9)
        assert out[SCALAR + f"{group}-mINP"] == pytest.approx(r["mINP"], abs=1e-9)
        assert out[f"table/{group}-cmc"] == pytest.approx(r["cmc"], abs=1e-4)
        assert out[f"table/{group}-matrix"] == r["matrix"].tolist()
        assert out[f"table/{group}@R1"] == pytest.approx(r["per_camera"])
        assert out[SCALAR + group] == pytest.approx(r["matrix"].mean())
        assert out[SCALAR + f"{group}@R1"] == pytest.approx(np.mean(r["per_camera"]))


def test_random_cases_cover_numbers_and_refusals():
    outcomes = [isinstance(reference(random_set(np.random.default_rng(s), n, v, d), "euc"), tuple)
                for s, n, v, d in CASES]
    assert outcomes.count(False) >= 6 and outcomes.count(True) >= 1


def test_ragged_cmc_one_missing_gallery_sequence():
    """One gallery sequence removed from the worked example: probes keep galleries of different
    sizes (the original stacks ragged CMC rows and crashes); rows are padded, numbers as the loops."""
    keep = [i for i in range(70) if not (EXAMPLE["labels"][i] == "102" and EXAMPLE["types"][i] == "U0_D3"
                                         and EXAMPLE["views"][i] == "01_1")]
    data = {"embeddings": EXAMPLE["embeddings"][keep], **{k: [EXAMPLE[k][i] for i in keep]
                                                            for k in ("labels", "types", "views")}}
    ref = reference(data, "euc")
    out = evaluate_CCPG(data, "CCPG", "euc")
    assert len(out["table/UP-cmc"]) == 9 == len(ref["UP"]["cmc"])
    assert out["table/UP-cmc"] == pytest.approx(ref["UP"]["cmc"], abs=1e-4)
    assert out[SCALAR + "UP-mAP"] == pytest.approx(ref["UP"]["mAP"])


# ---------------------------------------------------------------------------------------------
# failure modes and the SUSTech1K redirection
# ---------------------------------------------------------------------------------------------


def test_empty_gallery_camera_names_group_and_camera():
    keep = ~((np.asarray(EXAMPLE["types"]) == "U0_D3") & (np.asarray(EXAMPLE["views"]) == "02_1"))
    with pytest.raises(EvaluationError) as info:
        evaluate_CCPG(subset(EXAMPLE, keep), "CCPG")
    message = str(info.value)
    assert "\n" not in message
    assert message == ("evaluate_CCPG(CCPG): group UP: no gallery sequences of types U0_D3 from camera 02 "
                       "(cameras = view names up to the first '_')")


def test_empty_probe_camera_names_group_and_camera():
    keep = ~((np.asarray(EXAMPLE["types"]) == "U1_D0") & (np.asarray(EXAMPLE["views"]) == "01_1"))
    with pytest.raises(EvaluationError, match=r"group DN: no probe sequences of types U1_D0 from camera 01 "):
        evaluate_CCPG(subset(EXAMPLE, keep), "CCPG")


def test_one_camera_is_an_error():
    keep = np.asarray(EXAMPLE["views"]) == "01_1"
    with pytest.raises(EvaluationError, match=r"needs at least 2 cameras; the test set has only \['01'\]"):
        evaluate_CCPG(subset(EXAMPLE, keep), "CCPG")


@pytest.mark.parametrize("dataset", ["CASIA-B", "ccpg", "Gait3D"])
def test_other_dataset_is_one_clear_error(dataset):
    views = list(EXAMPLE["views"])
    with pytest.raises(EvaluationError) as info:
        evaluate_CCPG(dict(EXAMPLE, views=views), dataset)
    assert "\n" not in str(info.value) and f"got {dataset!r}" in str(info.value)
    assert "data_cfg.test_dataset_name" in str(info.value)
    assert views == EXAMPLE["views"]  # checked before anything else, nothing touched


def test_sustech1k_goes_to_its_own_protocol(caplog):
    from test_sustech1k import EXAMPLE as SUSTECH

    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        out = evaluate_CCPG(SUSTECH, "SUSTech1K", "euc")
    assert "evaluate_CCPG(SUSTech1K): test_dataset_name SUSTech1K is evaluated with the SUSTech1K single-view" in \
        caplog.text
    direct = evaluate_indoor_dataset(SUSTECH, "SUSTech1K", "euc")
    assert out == direct
    assert out[SCALAR + "Overall@R1"] == pytest.approx(85.0)
