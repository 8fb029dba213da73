"""The partition files shipped in datasets/ for CCPG, SUSTech1K and Gait3D: their content
(counts, id ranges, disjoint splits, one probe per Gait3D test subject) and the configs that
read them."""
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def load(name):
    return json.loads((REPO / "datasets" / name / f"{name}.json").read_text())


def test_ccpg():
    part = load("CCPG")
    assert part["TRAIN_SET"] == [f"{i:03d}" for i in range(100)]
    assert part["TEST_SET"] == [f"{i:03d}" for i in range(100, 200)]


def test_sustech1k():
    part = load("SUSTech1K")
    train, test = part["TRAIN_SET"], part["TEST_SET"]
    assert len(train) == 250 and len(test) == 800 and not set(train) & set(test)
    absent = {352, 1047, 1048, *range(1050, 1055)}
    assert {int(s) for s in train + test} == set(range(1058)) - absent
    assert all(len(s) == 4 for s in train + test)
    assert test == sorted(test) and train.index("0522") == train.index("0521") - 1


def test_gait3d():
    part = load("Gait3D")
    train, test, probes = part["TRAIN_SET"], part["TEST_SET"], part["PROBE_SET"]
    assert len(train) == 3000 and len(test) == 1000 and not set(train) & set(test)
    subjects = [p.split("-")[0] for p in probes]
    assert len(probes) == 1000 and sorted(subjects) == sorted(test)
    assert all(p.split("-")[1].startswith("camid") and p.split("-")[2].startswith("seq") for p in probes)


@pytest.mark.parametrize("name", ["CCPG", "SUSTech1K", "Gait3D"])
def test_configs_read_the_shipped_file(name):
    configs = [p for p in (REPO / "configs").rglob("*.yaml")
               if name.lower() in p.name.lower() and p.parent.name != "demo"]  # demos use synthetic data
    assert configs
    for path in configs:
        data_cfg = yaml.safe_load(path.read_text())["data_cfg"]
        assert data_cfg["dataset_partition"] == f"./datasets/{name}/{name}.json", path
