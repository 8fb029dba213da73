"""SUSTech1K through evaluate_indoor_dataset: the worked example number by number (euc and cos),
a brute-force loop reference on random sets (small galleries, missing sequences and conditions),
and the failure modes."""
import logging

import numpy as np
import pytest

from eval_reference import distance, subset, worked_example
from fastposegait.errors import EvaluationError
from fastposegait.evaluation import evaluate_indoor_dataset

CONDITIONS = [  # written out again here: name, substring patterns
    ("Normal", ("01-nm",)), ("Bag", ("bg",)), ("Clothing", ("cl",)), ("Carrying", ("cr",)),
    ("Umberalla", ("ub",)), ("Uniform", ("uf",)), ("Occlusion", ("oc",)), ("Night", ("nt",)),
    ("Overall", ("01", "02", "03", "04")),
]
TYPES = ["00-nm", "01-bg", "01-nm", "02-cl", "02-cr", "03-ub", "03-uf", "04-nt", "04-oc"]
OFFSET = {"00-nm": 0.0, "01-nm": 0.2, "01-bg": 0.7, "02-cl": -0.9, "02-cr": 0.5, "03-ub": -0.4, "03-uf": 0.3,
          "04-oc": -0.6, "04-nt": 1.0}
SCALAR = "scalar/test_accuracy/"


# subjects 0001 0003 0004 0006 0007 x the 9 types x views 000 090 180 (135 sequences)
EXAMPLE = worked_example(["0001", "0003", "0004", "0006", "0007"], TYPES, ["000", "090", "180"], OFFSET)

EXPECTED = {  # condition: (per view 000 090 180, R1)
    "euc": {
        "Normal": ([100, 100, 100], 100.0), "Bag": ([90, 100, 90], 93.333333), "Clothing": ([70, 50, 90], 70.0),
        "Carrying": ([90, 60, 100], 83.333333), "Umberalla": ([90, 80, 70], 80.0), "Uniform": ([100, 80, 90], 90.0),
        "Occlusion": ([100, 90, 80], 90.0), "Night": ([50, 100, 70], 73.333333),
        "Overall": ([86.25, 82.5, 86.25], 85.0),
    },
    "cos": {
        "Normal": ([70, 40, 40], 50.0), "Bag": ([10, 50, 60], 40.0), "Clothing": ([70, 50, 60], 60.0),
        "Carrying": ([20, 70, 40], 43.333333), "Umberalla": ([60, 60, 90], 70.0), "Uniform": ([60, 20, 50], 43.333333),
        "Occlusion": ([50, 60, 50], 53.333333), "Night": ([60, 60, 20], 46.666667),
        "Overall": ([50, 51.25, 51.25], 50.833333),
    },
}


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_worked_example(metric, caplog):
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        out = evaluate_indoor_dataset(EXAMPLE, "SUSTech1K", metric)
    scalars = {k[len(SCALAR):]: v for k, v in out.items() if k.startswith("scalar/")}
    assert set(scalars) == {f"{c}@R1" for c, _ in CONDITIONS} | {"Umbrella@R1"}
    assert scalars["Umbrella@R1"] == scalars["Umberalla@R1"]
    for condition, (per_view, r1) in EXPECTED[metric].items():
        assert scalars[f"{condition}@R1"] == pytest.approx(r1, abs=1e-6)
        assert out[f"table/{condition}@R1"] == pytest.approx(per_view)
    assert out["table/views"] == ["000", "090", "180"]
    summary = "\t".join(f"{c}@R1: {r1:.2f}%" for c, (_, r1) in EXPECTED[metric].items())
    assert summary in caplog.text
    assert "===Rank-1 (Exclude identical-view cases) [SUSTech1K, gallery per view, " + metric + "]===" in caplog.text


def test_worked_example_tables_and_rank2_line(caplog):
    with caplog.at_level(logging.INFO, logger="fastposegait.evaluation"):
        out = evaluate_indoor_dataset(EXAMPLE, "SUSTech1K", "euc")
    assert out["table/Clothing-matrix"] == [[80, 60, 80], [40, 40, 60], [100, 80, 100]]
    assert out["table/Night-matrix"] == [[40, 60, 40], [100, 100, 100], [60, 80, 80]]
    assert out["table/Overall-matrix"] == [[87.5, 90, 82.5], [82.5, 82.5, 82.5], [87.5, 85, 90]]
    # Night R2 table [[100,100,80],[100,100,100],[100,100,100]] -> per view [100, 100, 100]... excluding
    # the diagonal: (100+80)/2, (100+100)/2, (100+100)/2 = 90, 100, 100 -> 96.67
    assert out["table/Night@R2"] == pytest.approx([90, 100, 100])
    line = "\t".join(f"{c}@R2: {v}%" for c, v in [
        ("Normal", "100.00"), ("Bag", "100.00"), ("Clothing", "100.00"), ("Carrying", "100.00"),
        ("Umberalla", "100.00"), ("Uniform", "100.00"), ("Occlusion", "100.00"), ("Night", "96.67"),
        ("Overall", "99.58")])
    assert line in caplog.text
    for r in (3, 4, 5):
        assert "\t".join(f"{c}@R{r}: 100.00%" for c, _ in CONDITIONS) in caplog.text


# ---------------------------------------------------------------------------------------------
# brute-force reference
# ---------------------------------------------------------------------------------------------


def reference(data, metric):
    """Per condition: [5, V] per-view vectors (rank 1..5, identical view excluded) and the rank-1
    matrix, with plain loops; a condition without probes is absent."""
    feats = np.asarray(data["embeddings"], dtype=np.float64)
    labels, types, views = data["labels"], data["types"], data["views"]
    vs = sorted(set(views))
    gallery_all = [j for j in range(len(labels)) if "00-nm" in types[j]]
    out = {}
    for name, patterns in CONDITIONS:
        probes_all = [i for i in range(len(labels)) if any(p in types[i] for p in patterns)]
        if not probes_all:
            continue
        acc = np.zeros((len(vs), len(vs), 5))
        for a, v1 in enumerate(vs):
            probes = [i for i in probes_all if views[i] == v1]
            if not probes:
                return ("empty", name, v1)
            for b, v2 in enumerate(vs):
                gallery = [j for j in gallery_all if views[j] == v2]
                d = distance(feats[probes], feats[gallery], metric)
                for r in range(5):
                    hits = 0
                    for k, i in enumerate(probes):
                        order = sorted(range(len(gallery)), key=lambda n: (d[k, n], n))[: r + 1]
                        hits += any(labels[gallery[n]] == labels[i] for n in order)
                    acc[a, b, r] = round(100 * hits / len(probes), 2)
        vectors = np.array([[(sum(acc[a, :, r]) - acc[a, a, r]) / (len(vs) - 1) for a in range(len(vs))]
                            for r in range(5)])
        out[name] = (vectors, acc[:, :, 0])
    return out


def random_set(rng, num_subjects, views, types, drop):
    labels, ts, vs = [], [], []
    for s in range(num_subjects):
        for t in types:
            for v in views:
                if t == "00-nm" or rng.random() >= drop:  # keep every gallery sequence
                    labels.append(f"{s:04d}")
                    ts.append(t)
                    vs.append(v)
    emb = rng.normal(size=(len(labels), 3, 2)).astype(np.float32)
    emb += np.asarray([int(x) for x in labels], dtype=np.float32)[:, None, None] * 0.4
    return {"embeddings": emb, "labels": labels, "types": ts, "views": vs}


CASES = [  # (seed, subjects, views, types, drop)
    (0, 4, ["000", "090"], TYPES, 0.0),                          # 4 gallery sequences per view: top-5 of 4
    (1, 2, ["000", "045", "090"], TYPES, 0.0),                   # 2 per view
    (2, 7, ["000", "090", "180"], TYPES, 0.2),
    (3, 9, ["000", "030", "060", "090"], ["00-nm", "01-nm", "01-bg-cl", "02-ub", "03-nt-uf"], 0.1),
    (4, 6, ["000", "180"], ["00-nm", "01-nm", "02-cr", "03-oc"], 0.0),   # no bg/cl/ub/uf/nt: left out
]


@pytest.mark.parametrize("metric", ["euc", "cos"])
@pytest.mark.parametrize("case", CASES)
def test_matches_brute_force(case, metric, caplog):
    seed, subjects, views, types, drop = case
    data = random_set(np.random.default_rng(seed), subjects, views, types, drop)
    ref = reference(data, metric)
    if isinstance(ref, tuple):
        _, condition, view = ref
        with pytest.raises(EvaluationError, match=rf"no probe sequences of condition {condition} .* with view {view}"):
            evaluate_indoor_dataset(data, "SUSTech1K", metric)
        return
    with caplog.at_level(logging.WARNING, logger="fastposegait.evaluation"):
        out = evaluate_indoor_dataset(data, "SUSTech1K", metric)
    scalars = {k[len(SCALAR):] for k in out if k.startswith("scalar/")}
    expected = {f"{c}@R1" for c in ref} | ({"Umbrella@R1"} if "Umberalla" in ref else set())
    assert scalars == expected
    for name, (vectors, matrix) in ref.items():
        assert out[SCALAR + f"{name}@R1"] == pytest.approx(vectors[0].mean())
        for r in range(5):
            assert out[f"table/{name}@R{r + 1}"] == pytest.approx(vectors[r].tolist())
        assert out[f"table/{name}-matrix"] == matrix.tolist()
    for name, patterns in CONDITIONS:
        if name not in ref:
            assert f"no probe sequences of condition {name} (types containing {' or '.join(patterns)})" in caplog.text
    if subjects < 5:
        assert "fewer than 5 gallery sequences in view(s)" in caplog.text


def test_random_cases_are_mostly_evaluated():
    outcomes = [isinstance(reference(random_set(np.random.default_rng(s), n, v, t, d), "euc"), tuple)
                for s, n, v, t, d in CASES]
    assert outcomes.count(False) >= 4


# ---------------------------------------------------------------------------------------------
# failure modes
# ---------------------------------------------------------------------------------------------


def test_condition_missing_in_one_view_is_named():
    keep = ~((np.asarray(EXAMPLE["types"]) == "04-nt") & (np.asarray(EXAMPLE["views"]) == "090"))
    with pytest.raises(EvaluationError) as info:
        evaluate_indoor_dataset(subset(EXAMPLE, keep), "SUSTech1K")
    assert str(info.value) == ("evaluate_indoor_dataset(SUSTech1K): no probe sequences of condition Night "
                               "(types containing nt) with view 090")


def test_condition_absent_everywhere_is_left_out_with_a_warning(caplog):
    keep = np.asarray(EXAMPLE["types"]) != "04-nt"
    with caplog.at_level(logging.WARNING, logger="fastposegait.evaluation"):
        out = evaluate_indoor_dataset(subset(EXAMPLE, keep), "SUSTech1K")
    assert SCALAR + "Night@R1" not in out and SCALAR + "Overall@R1" in out
    assert not any(np.isnan(v) for k, v in out.items() if k.startswith("scalar/"))
    assert "no probe sequences of condition Night (types containing nt); it is left out" in caplog.text


def test_gallery_view_without_00_nm_is_named():
    keep = ~((np.asarray(EXAMPLE["types"]) == "00-nm") & (np.asarray(EXAMPLE["views"]) == "180"))
    with pytest.raises(EvaluationError, match=r"no gallery sequences \(types containing 00-nm\) with view 180$"):
        evaluate_indoor_dataset(subset(EXAMPLE, keep), "SUSTech1K")


def test_one_view_is_an_error():
    with pytest.raises(EvaluationError, match="needs at least 2 views"):
        evaluate_indoor_dataset(subset(EXAMPLE, np.asarray(EXAMPLE["views"]) == "000"), "SUSTech1K")


def test_no_condition_at_all_is_an_error():
    with pytest.raises(EvaluationError, match="no test sequence belongs to any SUSTech1K condition"):
        evaluate_indoor_dataset(subset(EXAMPLE, np.asarray(EXAMPLE["types"]) == "00-nm"), "SUSTech1K")
