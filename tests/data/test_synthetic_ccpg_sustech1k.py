"""The CCPG and SUSTech1K layouts of the synthetic generator: folder names, partitions,
determinism, the condition mapping (outfits, covariates) and bad arguments."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from fastposegait.data import synthetic as syn
from fastposegait.evaluation.ccpg import CCPG_GROUPS
from fastposegait.evaluation.sustech1k import SUSTECH1K_CONDITIONS, SUSTECH1K_GALLERY

FRAMES = (20, 30)


def _tree(root: Path):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        return pickle.load(fh)


def test_ccpg_layout_and_partition(tmp_path):
    summary = syn.generate_ccpg(tmp_path / "ccpg", num_subjects=4, views=["01_1", "01_2", "03_1"], frames=FRAMES)
    root = summary.root
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["000", "001", "002", "003"]
    assert sorted(p.name for p in (root / "002").iterdir()) == sorted(syn.CCPG_TYPES)
    assert sorted(p.name for p in (root / "002" / "U0_D0_BG").iterdir()) == ["01_1", "01_2", "03_1"]
    seq = _load(root / "002" / "U3_D3" / "03_1" / "03_1.pkl")
    assert seq.dtype == np.float32 and seq.shape[1:] == (17, 3) and FRAMES[0] <= len(seq) <= FRAMES[1]
    partition = json.loads(summary.partition_path.read_text())
    assert partition == {"TRAIN_SET": ["000", "001"], "TEST_SET": ["002", "003"]}  # first half trains
    assert summary.num_sequences == 4 * 7 * 3
    # every CCPG group finds its probe and gallery types
    types = {p.name for p in (root / "002").iterdir()}
    for group in CCPG_GROUPS:
        assert set(group.probe_types) <= types and set(group.gallery_types) <= types
    assert syn.CCPG_VIEWS == tuple(f"{c}_{w}" for c in ("01", "02", "03", "04", "05") for w in (1, 2))


def test_sustech1k_layout_and_partition(tmp_path):
    summary = syn.generate_sustech1k(tmp_path / "sus", num_subjects=8, views=["000", "090"], frames=FRAMES, seed=2)
    root = summary.root
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [f"{i:04d}" for i in range(8)]
    assert sorted(p.name for p in (root / "0005").iterdir()) == sorted(syn.SUSTECH1K_TYPES)
    assert sorted(p.name for p in (root / "0005" / "04-nt").iterdir()) == ["000", "090"]
    partition = json.loads(summary.partition_path.read_text())
    train, test = partition["TRAIN_SET"], partition["TEST_SET"]
    assert len(train) == 2 and len(test) == 6  # 250/1050 of 8, rounded
    assert sorted(train + test) == [f"{i:04d}" for i in range(8)] and train == sorted(train) and test == sorted(test)
    other = syn.generate_sustech1k(tmp_path / "other", num_subjects=8, views=["000", "090"], frames=FRAMES, seed=3)
    assert json.loads(other.partition_path.read_text())["TRAIN_SET"] != train  # a seeded choice
    # the default types hold every pattern of the protocol and the gallery type
    types = np.asarray(syn.SUSTECH1K_TYPES)
    for condition in (*SUSTECH1K_CONDITIONS, SUSTECH1K_GALLERY):
        assert condition.matches(types).any(), condition.name
    assert syn.SUSTECH1K_VIEWS == ("000", "045", "090", "135", "180", "225", "270", "315")


@pytest.mark.parametrize("layout", ["ccpg", "sustech1k"])
def test_same_seed_same_bytes_any_worker_count(layout, tmp_path):
    views = ["01_1", "02_1"] if layout == "ccpg" else ["000", "090"]
    kw = dict(num_subjects=3, views=views, frames=FRAMES, seed=5)
    a = syn.generate_dataset(layout, tmp_path / "a", **kw)
    b = syn.generate_dataset(layout, tmp_path / "b", workers=2, **kw)
    c = syn.generate_dataset(layout, tmp_path / "c", **{**kw, "seed": 6})
    tree_a, tree_b, tree_c = _tree(a.root), _tree(b.root), _tree(c.root)
    assert tree_a == tree_b and tree_a.keys() == tree_c.keys()
    assert all(tree_a[k] != tree_c[k] for k in tree_a if k.endswith(".pkl"))


def test_existing_layouts_unchanged_by_the_new_ones(tmp_path):
    """A CASIA-B set does not depend on the new layouts (its seeds and condition kinds are untouched)."""
    kw = dict(num_subjects=2, views=["090"], types=["nm-01", "bg-01", "cl-01"], frames=FRAMES, seed=1)
    a = syn.generate_casia_b(tmp_path / "a", **kw)
    assert _tree(a.root) == _tree(syn.generate_casia_b(tmp_path / "b", **kw).root)
    assert _load(a.root / "001" / "bg-01" / "090" / "090.pkl").shape[1:] == (17, 3)


# ---------------------------------------------------------------------------------------------
# condition mapping
# ---------------------------------------------------------------------------------------------


def _condition(kind, seed=0):
    rng = np.random.default_rng(seed)
    subject = syn.sample_subject(rng)
    return subject, syn.sample_condition(kind, subject, rng)


def test_ccpg_outfits():
    _, ref = _condition("outfit:U0_D0")
    assert ref == syn.Condition()  # the reference clothes change nothing
    subject, full = _condition("outfit:U3_D3")
    assert full.name == "cl"
    assert full.shoulder_width_scale == pytest.approx(subject.coat_shoulder_scale, rel=0.05)
    assert full.hip_width_scale == pytest.approx(subject.coat_hip_scale, rel=0.05)
    _, upper = _condition("outfit:U2_D0")
    assert upper.shoulder_width_scale > 1.0 and upper.hip_width_scale == 1.0
    _, lower = _condition("outfit:U0_D3")
    assert lower.shoulder_width_scale == 1.0 and lower.hip_width_scale > 1.0 and lower.blur > 1.0
    _, bag = _condition("outfit:U0_D0_BG")
    assert min(bag.arm_swing_scale) < 0.8 and bag.extra_lean_deg > 0 and bag.shoulder_width_scale == 1.0
    _, both = _condition("outfit:U1_D1_BG")
    assert min(both.arm_swing_scale) < 0.8 and both.shoulder_width_scale > 1.0


def test_sustech1k_covariates():
    assert _condition("covariates:nm")[1] == syn.Condition()
    for code in ("bg", "cr", "ub"):
        c = _condition(f"covariates:{code}")[1]
        assert min(c.arm_swing_scale) < 0.8 and max(c.arm_swing_scale) == 1.0, code
    subject, coat = _condition("covariates:cl")
    assert coat.shoulder_width_scale > 1.0 and coat.blur > 1.0
    uniform = _condition("covariates:uf")[1]
    assert 1.0 < uniform.shoulder_width_scale < coat.shoulder_width_scale
    for code in ("oc", "nt"):
        c = _condition(f"covariates:{code}")[1]
        assert c.blur > 1.0 and c.conf_drop > 0 and c.shoulder_width_scale == 1.0, code
    combined = _condition("covariates:bg-nt")[1]
    assert min(combined.arm_swing_scale) < 0.8 and combined.blur > 1.0


@pytest.mark.parametrize("call, message", [
    (lambda r: syn.generate_ccpg(r, num_subjects=2, types=["U4_D0"]), "CCPG type 'U4_D0'"),
    (lambda r: syn.generate_ccpg(r, num_subjects=2, types=["nm-01"]), "CCPG type 'nm-01'"),
    (lambda r: syn.generate_ccpg(r, num_subjects=2, views=["09_1"]), "CCPG view '09_1'"),
    (lambda r: syn.generate_ccpg(r, num_subjects=2, views=["01"]), "CCPG view '01'"),
    (lambda r: syn.generate_sustech1k(r, num_subjects=2, types=["01-xx"]), "SUSTech1K type '01-xx'"),
    (lambda r: syn.generate_sustech1k(r, num_subjects=2, types=["bg"]), "SUSTech1K type 'bg'"),
    (lambda r: syn.generate_sustech1k(r, num_subjects=2, views=["north"]), "view 'north' is not an azimuth"),
])
def test_bad_types_and_views(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "root")
    assert not (tmp_path / "root").exists()  # checked before anything is written


def test_command_line(tmp_path, capsys):
    syn.main(["ccpg", "--root", str(tmp_path / "c"), "--subjects", "2", "--views", "02_1,04_1",
              "--types", "U0_D0,U1_D0", "--frames", "20", "30"])
    assert sorted(p.name for p in (tmp_path / "c" / "001" / "U1_D0").iterdir()) == ["02_1", "04_1"]
    syn.main(["sustech1k", "--root", str(tmp_path / "s"), "--subjects", "3", "--train", "1", "--views", "000,180",
              "--types", "00-nm,01-bg", "--frames", "20", "30"])
    partition = json.loads((tmp_path / "s" / "partition.json").read_text())
    assert len(partition["TRAIN_SET"]) == 1 and len(partition["TEST_SET"]) == 2
    assert "layout:      sustech1k" in capsys.readouterr().out
