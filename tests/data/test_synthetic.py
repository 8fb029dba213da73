"""Tests of the synthetic gait generator: layouts, partitions, determinism, physics, detector,
conditions and that identity is learnable."""
from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from fastposegait.data import synthetic as syn
from fastposegait.data.io import atomic_write
from fastposegait.data.skeleton import COCO, OPENPOSE, openpose_to_coco

# COCO indices used below
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = 11, 12, 13, 14, 15, 16
SMALL_FRAMES = (30, 45)


def _tree(root: Path) -> Dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pkl_paths(root: Path) -> List[Path]:
    return sorted(root.glob("*/*/*/*.pkl"))


def _load(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _seq(root: Path, subject: str, type_name: str, view: str) -> np.ndarray:
    return _load(root / subject / type_name / view / f"{view}.pkl")


def _check_arrays(root: Path, num_joints: int, frames: Tuple[int, int]) -> None:
    paths = _pkl_paths(root)
    assert paths
    for path in paths:
        seq = _load(path)
        assert isinstance(seq, np.ndarray) and seq.dtype == np.float32, path
        assert seq.ndim == 3 and seq.shape[1:] == (num_joints, 3), (path, seq.shape)
        assert frames[0] <= seq.shape[0] <= frames[1], (path, seq.shape)
        assert np.isfinite(seq).all()
        conf = seq[..., 2]
        assert conf.min() >= 0.0 and conf.max() <= 1.0
        missing = conf == 0
        assert (seq[missing] == 0).all(), "missing joints must be stored as (0, 0, 0)"
        assert (seq[~missing][:, :2] >= 0).all()
        assert seq[..., 2].any(axis=1).all(), "every frame has at least one detected joint"


# ---------------------------------------------------------------------------------------------
# Shared small datasets
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def casia(tmp_path_factory) -> Tuple[Path, syn.GenerationSummary]:
    root = tmp_path_factory.mktemp("casia") / "CASIA-B"
    summary = syn.generate_casia_b(root, num_subjects=6, frames=SMALL_FRAMES, seed=3)
    return root, summary


@pytest.fixture(scope="module")
def side_views(tmp_path_factory) -> Path:
    """Eight subjects, every condition, three views: for the physics and identity checks."""
    root = tmp_path_factory.mktemp("side") / "casia"
    syn.generate_casia_b(root, num_subjects=8, views=["000", "090", "180"], frames=(60, 80), seed=11)
    return root


# ---------------------------------------------------------------------------------------------
# Layouts and partitions
# ---------------------------------------------------------------------------------------------
def test_casia_b_layout_files_and_partition(casia):
    root, summary = casia
    subjects = [f"{i:03d}" for i in range(1, 7)]
    expected = {
        f"{s}/{t}/{v}/{v}.pkl" for s in subjects for t in syn.CASIA_B_TYPES for v in syn.CASIA_B_VIEWS
    }
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == expected | {"partition.json", ".fastposegait_synthetic.json"}  # + the generator's marker
    assert syn.CASIA_B_VIEWS == ("000", "018", "036", "054", "072", "090", "108", "126", "144", "162", "180")
    assert syn.CASIA_B_TYPES == ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06",
                                 "bg-01", "bg-02", "cl-01", "cl-02")
    partition = json.loads((root / "partition.json").read_text())
    # 6 * 74/124 = 3.58 -> 4 train
    assert partition == {"TRAIN_SET": ["001", "002", "003", "004"], "TEST_SET": ["005", "006"]}
    assert summary.partition_path == root / "partition.json"
    assert (summary.num_train, summary.num_test, summary.num_sequences) == (4, 2, 6 * 110)
    assert summary.num_frames == sum(len(_load(p)) for p in _pkl_paths(root))
    _check_arrays(root, 17, SMALL_FRAMES)


@pytest.mark.parametrize("num_subjects, num_train", [(124, 74), (10, 6), (2, 1), (3, 2)])
def test_casia_b_split_is_74_of_124_scaled(tmp_path, num_subjects, num_train):
    summary = syn.generate_casia_b(tmp_path / "d", num_subjects=num_subjects, views=["090"],
                                   types=["nm-01"], frames=(8, 10))
    partition = json.loads(summary.partition_path.read_text())
    names = [f"{i:03d}" for i in range(1, num_subjects + 1)]
    assert partition == {"TRAIN_SET": names[:num_train], "TEST_SET": names[num_train:]}


def test_casia_b_explicit_train_and_partition_path(tmp_path):
    part = tmp_path / "splits" / "mine.json"
    summary = syn.generate_casia_b(tmp_path / "d", num_subjects=4, num_train=1, views=["000"],
                                   types=["bg-01"], frames=(8, 10), partition_path=part)
    assert summary.partition_path == part
    assert json.loads(part.read_text()) == {"TRAIN_SET": ["001"], "TEST_SET": ["002", "003", "004"]}
    assert not (tmp_path / "d" / "partition.json").exists()


def test_oumvlp_layout_partition_and_openpose_joints(tmp_path):
    root = tmp_path / "oumvlp"
    summary = syn.generate_oumvlp(root, num_subjects=5, frames=(18, 25))
    expected = {f"{i:05d}/{t}/{v}/{v}.pkl" for i in range(1, 6) for t in ("00", "01")
                for v in ("000", "015", "030", "045", "060", "075", "090",
                          "180", "195", "210", "225", "240", "255", "270")}
    assert {str(p.relative_to(root)) for p in _pkl_paths(root)} == expected
    assert json.loads((root / "partition.json").read_text()) == {
        "TRAIN_SET": ["00001", "00003", "00005"], "TEST_SET": ["00002", "00004"]}
    assert summary.joint_format == "openpose"
    _check_arrays(root, 18, (18, 25))
    # neck (OpenPose joint 1) is the midpoint of the shoulders (2, 5) where all three are seen
    seq = _seq(root, "00001", "00", "000")
    ok = (seq[:, [1, 2, 5], 2] > 0).all(axis=1)
    mid = 0.5 * (seq[ok, 2, :2] + seq[ok, 5, :2])
    assert np.median(np.linalg.norm(seq[ok, 1, :2] - mid, axis=-1)) < 0.1 * np.ptp(seq[ok, :, 1], axis=1).mean()


def test_oumvlp_partition_rule():
    full = syn.oumvlp_partition(10307)
    assert (len(full["TRAIN_SET"]), len(full["TEST_SET"])) == (5153, 5154)
    assert full["TEST_SET"][-1] == "10307" and "10307" not in full["TRAIN_SET"]
    assert full["TRAIN_SET"][:3] == ["00001", "00003", "00005"] and full["TEST_SET"][:2] == ["00002", "00004"]
    small = syn.oumvlp_partition(7)
    assert small == {"TRAIN_SET": ["00001", "00003", "00005", "00007"], "TEST_SET": ["00002", "00004", "00006"]}


def test_grew_layout_probe_truth_and_partition(tmp_path):
    root = tmp_path / "grew"
    summary = syn.generate_grew(root, num_subjects=7, num_train=4, train_sequences=(2, 3),
                                probes_per_subject=2, frames=(16, 30))
    train = [f"{i:05d}train" for i in range(1, 5)]
    test = ["00001", "00002", "00003"]
    partition = json.loads((root / "partition.json").read_text())
    assert partition == {"TRAIN_SET": train, "TEST_SET": test + ["probe"]}
    vid = re.compile(r"^[A-Za-z0-9]{8}$")
    all_vids = []
    for name in train:
        assert [p.name for p in (root / name).iterdir()] == ["00"]
        views = sorted(p.name for p in (root / name / "00").iterdir())
        assert 2 <= len(views) <= 3
        all_vids += views
    for name in test:
        assert sorted(p.name for p in (root / name).iterdir()) == ["01", "02"]
        (g1,), (g2,) = [[p.name for p in (root / name / t).iterdir()] for t in ("01", "02")]
        assert g1 < g2, "01/02 are the first/second gallery walk in sorted video-id order"
        all_vids += [g1, g2]
    assert [p.name for p in (root / "probe").iterdir()] == ["03"]
    probes = sorted(p.name for p in (root / "probe" / "03").iterdir())
    assert len(probes) == 2 * len(test)
    all_vids += probes
    assert all(vid.match(v) for v in all_vids) and len(set(all_vids)) == len(all_vids)
    for path in _pkl_paths(root):
        assert path.stem == path.parent.name
    # identity of the probes: in the summary and in the truth file, not in the layout
    assert sorted(summary.probe_truth) == probes
    assert sorted(set(summary.probe_truth.values())) == test
    assert json.loads(summary.probe_truth_path.read_text()) == summary.probe_truth
    assert summary.probe_truth_path == root / "grew_probe_truth.json"
    _check_arrays(root, 17, (16, 30))


def test_gait3d_layout_and_probe_set(tmp_path):
    root = tmp_path / "gait3d"
    summary = syn.generate_gait3d(root, num_subjects=12, frames=(20, 30))
    names = [f"{i:04d}" for i in range(12)]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == names
    partition = json.loads((root / "partition.json").read_text())
    train, test, probe_set = partition["TRAIN_SET"], partition["TEST_SET"], partition["PROBE_SET"]
    assert sorted(train + test) == names and not set(train) & set(test)
    assert (len(train), len(test)) == (9, 3) == (summary.num_train, summary.num_test)
    type_re, view_re = re.compile(r"^camid\d+_videoid\d+$"), re.compile(r"^seq\d+$")
    for path in _pkl_paths(root):
        subject, type_name, view = path.relative_to(root).parts[:3]
        assert type_re.match(type_name) and view_re.match(view) and path.name == f"{view}.pkl"
    for name in names:  # every subject has >= 2 sequences; views of a track start at seq0
        types = [p.name for p in (root / name).iterdir()]
        assert sum(len(list((root / name / t).iterdir())) for t in types) >= 2
        for t in types:
            ks = sorted(int(p.name[3:]) for p in (root / name / t).iterdir())
            assert ks == list(range(len(ks)))
    assert len(probe_set) == len(test)
    assert sorted(entry.split("-")[0] for entry in probe_set) == sorted(test)
    for entry in probe_set:
        subject, type_name, view = entry.split("-")
        assert (root / subject / type_name / view / f"{view}.pkl").is_file()
    _check_arrays(root, 17, (20, 30))


def test_gait3d_probe_set_is_mostly_seq0(tmp_path):
    summary = syn.generate_gait3d(tmp_path / "g", num_subjects=80, num_train=20, frames=(8, 9))
    probe_set = json.loads(summary.partition_path.read_text())["PROBE_SET"]
    seq0 = sum(entry.endswith("-seq0") for entry in probe_set)
    assert len(probe_set) == 60 and seq0 >= 0.7 * 60  # 872 of 1,000 in Gait3D


def test_dispatcher_and_unknown_layout(tmp_path):
    summary = syn.generate_dataset("casia-b", tmp_path / "d", num_subjects=2, views=["090"],
                                   types=["nm-01"], frames=(8, 10))
    assert summary.layout == "casia-b" and summary.num_sequences == 2
    with pytest.raises(ValueError, match="valid layouts: casia-b, oumvlp, grew, gait3d"):
        syn.generate_dataset("casia", tmp_path / "e")


# ---------------------------------------------------------------------------------------------
# Determinism and formats
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_bytes_any_worker_count(tmp_path):
    kw = dict(num_subjects=3, views=["018", "090"], frames=(20, 30), seed=5)
    a = syn.generate_casia_b(tmp_path / "a", **kw)
    b = syn.generate_casia_b(tmp_path / "b", workers=2, **kw)
    c = syn.generate_casia_b(tmp_path / "c", **{**kw, "seed": 6})
    tree_a, tree_b, tree_c = _tree(a.root), _tree(b.root), _tree(c.root)
    assert tree_a == tree_b
    assert tree_a.keys() == tree_c.keys()
    pkls = [k for k in tree_a if k.endswith(".pkl")]
    assert all(tree_a[k] != tree_c[k] for k in pkls)


def test_generated_numbers_are_pinned(tmp_path):
    """Exact values at fixed seeds, recorded from the generator (numpy's Generator streams are
    stable for a given bit generator): a change of the draws, of their order or of the
    arithmetic, which would change every generated dataset, fails here."""
    subject = syn.sample_subject(np.random.default_rng(2024))
    np.testing.assert_allclose([subject.height_m, subject.cadence_spm],
                               [1.7267248026436248, 108.24598075410913], rtol=1e-12)
    condition = syn.sample_condition("bg", subject, np.random.default_rng(1))
    variation = syn.sample_variation(np.random.default_rng(2))
    points = syn.walk_3d(subject, condition, variation, np.arange(5) / 25.0)
    np.testing.assert_allclose(points[4, L_ANK], [0.02190572015596671, 0.3380307253465873, 0.0645284378114015],
                               rtol=1e-12)
    np.testing.assert_allclose(points[0, 0], [-0.09831438103565804, 0.18081938833497485, 1.539973370582511],
                               rtol=1e-12)
    camera = syn.CASIA_B_RIG.camera(36)
    assert camera == syn.camera_at_azimuth(36, distance_m=6.5, height_m=1.0, focal_px=330.0, image_size=(320, 240))
    seq = syn.simulate_walk(subject, condition, camera, 12, np.random.default_rng(7))
    assert seq.shape == (12, 17, 3) and int((seq[..., 2] == 0).sum()) == 2
    expected = {
        (0, 0): [183.87940979003906, 91.03436279296875, 0.9934622645378113],
        (5, L_HIP): [182.3848419189453, 121.1423568725586, 0.8842876553535461],
        (11, R_ANK): [173.62074279785156, 162.97991943359375, 0.7134341597557068],
    }
    for (t, j), values in expected.items():
        np.testing.assert_array_equal(seq[t, j], np.array(values, dtype=np.float32))
    # the writer's seeding, window placement and frame filtering
    summary = syn.generate_casia_b(tmp_path / "c", num_subjects=2, views=["090"], types=["bg-01"],
                                   frames=(10, 12), seed=21)
    written = _seq(summary.root, "002", "bg-01", "090")
    assert written.shape == (11, 17, 3) and summary.num_frames == 21
    np.testing.assert_array_equal(written[0, L_SHO], np.array([175.42808532714844, 99.88001251220703,
                                                               0.9151913523674011], dtype=np.float32))
    np.testing.assert_array_equal(written[10, R_ANK], np.array([140.9598388671875, 167.12110900878906,
                                                                0.6954653859138489], dtype=np.float32))


def test_grew_deterministic_across_workers(tmp_path):
    kw = dict(num_subjects=5, num_train=3, frames=(16, 20), seed=1)
    a = syn.generate_grew(tmp_path / "a", **kw)
    b = syn.generate_grew(tmp_path / "b", workers=2, **kw)
    assert _tree(a.root) == _tree(b.root) and a.probe_truth == b.probe_truth


def test_sequence_does_not_depend_on_other_views_or_subjects(casia, tmp_path):
    root, _ = casia
    sub = syn.generate_casia_b(tmp_path / "sub", num_subjects=2, views=["090"], types=["cl-01", "nm-02"],
                               frames=SMALL_FRAMES, seed=3)
    for s in ("001", "002"):
        for t in ("cl-01", "nm-02"):
            assert np.array_equal(_seq(sub.root, s, t, "090"), _seq(root, s, t, "090"))


def test_openpose_output_is_coco_plus_neck(tmp_path):
    kw = dict(num_subjects=2, views=["036"], types=["nm-01", "cl-01"], frames=(20, 25), seed=2)
    coco = syn.generate_casia_b(tmp_path / "coco", **kw)
    op = syn.generate_casia_b(tmp_path / "op", joint_format="openpose", **kw)
    for path in _pkl_paths(coco.root):
        rel = path.relative_to(coco.root)
        seq18 = _load(op.root / rel)
        assert seq18.shape[1] == 18
        np.testing.assert_array_equal(openpose_to_coco(seq18), _load(path))
    assert len(syn.INTERNAL_JOINTS) == 18 and syn.INTERNAL_JOINTS[:17] == COCO.joint_names
    assert OPENPOSE.joint_names[1] == "neck"


def test_simulate_walk_api():
    rng = np.random.default_rng(0)
    subject = syn.sample_subject(rng)
    camera = syn.camera_at_azimuth(54, distance_m=6.5, height_m=1.0, focal_px=330, image_size=(320, 240))
    a = syn.simulate_walk(subject, syn.Condition(), camera, 40, np.random.default_rng(1))
    b = syn.simulate_walk(subject, syn.Condition(), camera, 40, np.random.default_rng(1))
    c = syn.simulate_walk(subject, syn.Condition(), camera, 40, np.random.default_rng(1), "openpose")
    assert a.shape == (40, 17, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert c.shape == (40, 18, 3) and np.array_equal(openpose_to_coco(c), a)
    with pytest.raises(ValueError, match="joint_format"):
        syn.simulate_walk(subject, syn.Condition(), camera, 40, rng, "coco-no-head")


# ---------------------------------------------------------------------------------------------
# Physics and camera
# ---------------------------------------------------------------------------------------------
def _visible(seq: np.ndarray, *joints: int) -> np.ndarray:
    return (seq[:, list(joints), 2] > 0).all(axis=1)


def test_ankles_below_hips_and_head_on_top(side_views):
    for path in _pkl_paths(side_views):
        seq = _load(path)
        ok = _visible(seq, 0, L_HIP, R_HIP, L_ANK, R_ANK)
        hip_y = seq[ok][:, [L_HIP, R_HIP], 1].mean(axis=1)
        ankle_y = seq[ok][:, [L_ANK, R_ANK], 1].mean(axis=1)
        assert (ankle_y > hip_y).mean() > 0.95, path
        assert (seq[ok, 0, 1] < hip_y).mean() > 0.95, path  # image y points down


def _height_px(seq: np.ndarray) -> np.ndarray:
    ok = _visible(seq, 0, L_ANK, R_ANK)
    return ok, seq[:, [L_ANK, R_ANK], 1].mean(axis=1) - seq[:, 0, 1]


def _shoulder_width(seq: np.ndarray) -> float:
    ok, height = _height_px(seq)
    ok &= _visible(seq, L_SHO, R_SHO)
    return float(np.median(np.abs(seq[ok, L_SHO, 0] - seq[ok, R_SHO, 0]) / height[ok]))


def test_shoulder_width_depends_on_view(side_views):
    for s in range(1, 9):
        for t in ("nm-01", "nm-05"):
            front = _shoulder_width(_seq(side_views, f"{s:03d}", t, "000"))
            back = _shoulder_width(_seq(side_views, f"{s:03d}", t, "180"))
            side = _shoulder_width(_seq(side_views, f"{s:03d}", t, "090"))
            assert front > 2.5 * side and back > 2.5 * side, (s, t, front, back, side)


def test_walker_translates_in_side_view_and_grows_in_front_view(side_views):
    side = _seq(side_views, "002", "nm-01", "090")
    ok = _visible(side, L_HIP, R_HIP)
    hip_x = side[ok][:, [L_HIP, R_HIP], 0].mean(axis=1)
    assert abs(hip_x[-1] - hip_x[0]) > 100  # crosses a large part of the 320-px frame
    front = _seq(side_views, "002", "nm-01", "000")
    ok, height = _height_px(front)
    h = height[ok]
    assert h[-10:].mean() > 1.3 * h[:10].mean()  # walks towards the camera


def test_gait_period_matches_cadence():
    rng = np.random.default_rng(4)
    fps, num_frames = 25.0, 250
    camera = syn.camera_at_azimuth(90, distance_m=9.0, height_m=1.0, focal_px=330, image_size=(320, 240))
    for _ in range(3):
        subject = syn.sample_subject(rng)
        seq = syn.simulate_walk(subject, syn.Condition(), camera, num_frames, rng,
                                variation=syn.SequenceVariation(), fps=fps)
        ok = _visible(seq, L_ANK, R_ANK)
        t = np.arange(num_frames)
        gap = seq[:, L_ANK, 0] - seq[:, R_ANK, 0]
        signal = np.interp(t, t[ok], gap[ok])
        spectrum = np.abs(np.fft.rfft(signal - signal.mean()))
        freqs = np.fft.rfftfreq(num_frames, d=1.0 / fps)
        expected = subject.cadence_spm / 120.0  # strides per second
        assert abs(freqs[np.argmax(spectrum)] - expected) <= 1.0 / (num_frames / fps) + 1e-9


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------
def _wrist_swing(seq: np.ndarray, wrist: int) -> float:
    """Swing amplitude of a wrist: 10-90% range of its horizontal position relative to the hips
    (in body heights), after a 5-frame running median (removes single-frame left/right swaps)
    and minus a 25-frame (~one stride) running mean (removes the slow drift that perspective
    adds as the walker crosses the image)."""
    ok, height = _height_px(seq)
    ok &= _visible(seq, wrist, L_HIP, R_HIP)
    rel = (seq[ok, wrist, 0] - seq[ok][:, [L_HIP, R_HIP], 0].mean(axis=1)) / height[ok]
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(rel, 5), axis=1)
    swing = smooth[12:-12] - np.convolve(smooth, np.ones(25) / 25, mode="valid")
    return float(np.percentile(swing, 90) - np.percentile(swing, 10))


def test_bag_damps_the_carrying_arm():
    rng = np.random.default_rng(7)
    camera = syn.camera_at_azimuth(90, distance_m=6.5, height_m=1.0, focal_px=330, image_size=(320, 240))
    for _ in range(4):
        subject = syn.sample_subject(rng)
        variation = syn.SequenceVariation()
        bag = syn.sample_condition("bg", subject, rng)
        nm = syn.simulate_walk(subject, syn.Condition(), camera, 100, np.random.default_rng(1), variation=variation)
        bg = syn.simulate_walk(subject, bag, camera, 100, np.random.default_rng(1), variation=variation)
        side = 0 if bag.arm_swing_scale[0] < 1 else 1
        carrying, free = (L_WRI, R_WRI) if side == 0 else (R_WRI, L_WRI)
        assert _wrist_swing(bg, carrying) < 0.7 * _wrist_swing(nm, carrying)
        assert _wrist_swing(bg, free) > 0.8 * _wrist_swing(nm, free)
        assert bag.extra_lean_deg > 0


def test_bag_in_dataset_reduces_one_wrist_swing(side_views):
    ratios = []
    for s in range(1, 9):
        for bg in ("bg-01", "bg-02"):
            nm = _seq(side_views, f"{s:03d}", "nm-01", "090")
            b = _seq(side_views, f"{s:03d}", bg, "090")
            ratios.append(min(_wrist_swing(b, w) / _wrist_swing(nm, w) for w in (L_WRI, R_WRI)))
    assert np.median(ratios) < 0.6


def _jitter(seq: np.ndarray, joints: List[int]) -> float:
    """Frame-to-frame jitter: mean |second difference| of x, y (body heights) of ``joints``."""
    ok, height = _height_px(seq)
    ok &= _visible(seq, *joints)
    xy = seq[ok][:, joints, :2] / height[ok, None, None]
    return float(np.abs(np.diff(xy, n=2, axis=0)).mean())


def _trunk_width(seq: np.ndarray) -> float:
    """Median of shoulder width + hip width (image x) over body height."""
    ok, height = _height_px(seq)
    ok &= _visible(seq, L_SHO, R_SHO, L_HIP, R_HIP)
    widths = np.abs(seq[ok, L_SHO, 0] - seq[ok, R_SHO, 0]) + np.abs(seq[ok, L_HIP, 0] - seq[ok, R_HIP, 0])
    return float(np.median(widths / height[ok]))


def test_coat_widens_and_blurs_shoulders_and_hips(side_views):
    trunk = [L_SHO, R_SHO, L_HIP, R_HIP]
    conf_drop, widening, blurrier = [], [], 0
    for s in range(1, 9):
        nm = [_seq(side_views, f"{s:03d}", t, v) for t in ("nm-01", "nm-02") for v in ("000", "180")]
        cl = [_seq(side_views, f"{s:03d}", t, v) for t in ("cl-01", "cl-02") for v in ("000", "180")]

        def conf(seqs):
            return np.mean([seq[:, trunk, 2][seq[:, trunk, 2] > 0].mean() for seq in seqs])

        conf_drop.append(conf(nm) - conf(cl))
        widening.append(np.mean([_trunk_width(q) for q in cl]) / np.mean([_trunk_width(q) for q in nm]))
        blurrier += np.mean([_jitter(q, trunk) for q in cl]) > np.mean([_jitter(q, trunk) for q in nm])
    assert np.mean(conf_drop) > 0.05 and sum(d > 0 for d in conf_drop) >= 7, conf_drop
    # coats add 5-15% (shoulders) and 5-20% (hips); the detector's biases blur it per subject
    assert np.mean(widening) > 1.03, widening
    assert blurrier >= 7, blurrier


# ---------------------------------------------------------------------------------------------
# Detector
# ---------------------------------------------------------------------------------------------
def test_detector_misses_joints_and_hides_the_far_side(side_views):
    zeros = [(_load(p)[..., 2] == 0).mean() for p in _pkl_paths(side_views)]
    assert 0.0 < np.mean(zeros) < 0.1
    # view 090: the camera is on the walker's left, so the right limbs are the far side
    near, far = [], []
    for s in range(1, 9):
        seq = _seq(side_views, f"{s:03d}", "nm-01", "090")
        conf = seq[..., 2]
        for left, right in ((L_ELB, R_ELB), (L_WRI, R_WRI), (L_KNE, R_KNE), (L_ANK, R_ANK)):
            near.append(conf[conf[:, left] > 0, left].mean())
            far.append(conf[conf[:, right] > 0, right].mean())
    assert np.mean(far) < np.mean(near) - 0.1
    # seen from behind, the face is hidden
    back = _seq(side_views, "001", "nm-01", "180")
    front = _seq(side_views, "001", "nm-01", "000")
    assert back[:, 0, 2].mean() < front[:, 0, 2].mean() - 0.2


def test_detector_noise_scales_with_body_size():
    rng = np.random.default_rng(9)
    subject = syn.sample_subject(rng)
    variation = syn.SequenceVariation()
    times = np.arange(60) / 25.0
    points = syn.walk_3d(subject, syn.Condition(), variation, times)
    errors = []
    for focal in (300.0, 1200.0):
        camera = syn.camera_at_azimuth(0, distance_m=8.0, height_m=1.0, focal_px=focal, image_size=(4000, 3000))
        view = syn.observe(points, camera, subject.height_m)
        det = syn.apply_detector(view, syn.Condition(), np.random.default_rng(2))
        ok = det[..., 2] > 0
        errors.append(np.abs(det[..., :2] - view.uv)[ok].mean())
    assert 3.0 < errors[1] / errors[0] < 5.0  # 4x larger in the image -> ~4x the pixel noise


def test_left_right_swaps_happen():
    rng = np.random.default_rng(1)
    subject = syn.sample_subject(rng)
    camera = syn.camera_at_azimuth(90, distance_m=6.5, height_m=1.0, focal_px=330, image_size=(320, 240))
    points = syn.walk_3d(subject, syn.Condition(), syn.SequenceVariation(), np.arange(100) / 25.0)
    view = syn.observe(points, camera, subject.height_m)
    params = syn.DetectorParams(noise_scale=0.0, bias_scale=0.0, miss_prob=0.0, miss_prob_occluded=0.0,
                                limb_swap_prob=0.2)
    det = syn.apply_detector(view, syn.Condition(), np.random.default_rng(0), params)
    swapped = np.isclose(det[:, L_ANK, 0], view.uv[:, R_ANK, 0]) & ~np.isclose(view.uv[:, L_ANK, 0], view.uv[:, R_ANK, 0])
    assert 5 <= swapped.sum() <= 40


# ---------------------------------------------------------------------------------------------
# Identity is learnable
# ---------------------------------------------------------------------------------------------
_BONES = [(5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12), (5, 11), (6, 12)]


def _bone_feature(seq: np.ndarray) -> np.ndarray:
    """Median bone lengths over the sequence, normalised to sum 1."""
    lengths = []
    for a, b in _BONES:
        ok = _visible(seq, a, b)
        lengths.append(np.median(np.linalg.norm(seq[ok, a, :2] - seq[ok, b, :2], axis=-1)))
    lengths = np.array(lengths)
    return lengths / lengths.sum()


def test_identity_is_learnable_from_bone_proportions(side_views):
    gallery_types, probe_types = ("nm-01", "nm-02", "nm-03", "nm-04"), ("nm-05", "nm-06")
    subjects = [f"{s:03d}" for s in range(1, 9)]
    for view in ("090", "000"):
        gallery = np.array([_bone_feature(_seq(side_views, s, t, view)) for s in subjects for t in gallery_types])
        g_ids = np.repeat(np.arange(8), len(gallery_types))
        probes = np.array([_bone_feature(_seq(side_views, s, t, view)) for s in subjects for t in probe_types])
        p_ids = np.repeat(np.arange(8), len(probe_types))
        dist = np.linalg.norm(probes[:, None] - gallery[None], axis=-1)
        accuracy = (g_ids[dist.argmin(axis=1)] == p_ids).mean()
        assert accuracy >= 0.5, (view, accuracy)  # chance is 1/8


# ---------------------------------------------------------------------------------------------
# Files, errors, command line
# ---------------------------------------------------------------------------------------------
def test_refuses_non_empty_root_unless_overwrite(tmp_path):
    root = tmp_path / "d"
    kw = dict(num_subjects=2, views=["090"], types=["nm-01"], frames=(8, 10))
    syn.generate_casia_b(root, **kw)
    with pytest.raises(FileExistsError, match="not empty.*overwrite"):
        syn.generate_casia_b(root, **kw)
    stale = root / "001" / "nm-99" / "090"
    stale.mkdir(parents=True)
    (stale / "090.pkl").write_bytes(b"stale")
    (root / "notes.txt").write_text("keep me")
    summary = syn.generate_casia_b(root, overwrite=True, **{**kw, "seed": 1})
    assert not (root / "001" / "nm-99").exists()  # generated subjects are replaced whole
    assert (root / "notes.txt").read_text() == "keep me"
    assert summary.num_sequences == 2 and len(_pkl_paths(root)) == 2
    other = tmp_path / "empty"
    other.mkdir()
    part = tmp_path / "p.json"
    part.write_text("{}")
    with pytest.raises(FileExistsError, match="p.json"):
        syn.generate_casia_b(other, partition_path=part, **kw)


def test_overwrite_refuses_a_root_the_generator_did_not_write(tmp_path, capsys):
    """--overwrite replaces subject folders, so only in a root that carries the generator's
    marker (a real dataset's subjects were replaced); an empty or new root is fine."""
    marker = ".fastposegait_synthetic.json"
    kw = dict(num_subjects=2, views=["090"], types=["nm-01"], frames=(8, 10))
    real = tmp_path / "real"
    (real / "001" / "nm-01" / "090").mkdir(parents=True)
    (real / "001" / "nm-01" / "090" / "090.pkl").write_bytes(b"real data")
    with pytest.raises(FileExistsError, match=f"{re.escape(str(real))}.*{re.escape(marker)}"):
        syn.generate_casia_b(real, overwrite=True, **kw)
    with pytest.raises(SystemExit) as info:
        syn.main(["casia-b", "--root", str(real), "--overwrite", "--subjects", "2", "--views", "090",
                  "--types", "nm-01", "--frames", "8", "10"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and str(real) in err and "not written by" in err
    assert (real / "001" / "nm-01" / "090" / "090.pkl").read_bytes() == b"real data"
    assert sorted(p.name for p in real.iterdir()) == ["001"]  # nothing written: no partition, no marker
    # roots the generator wrote (API or command line) carry the marker and can be overwritten
    api = tmp_path / "api"
    syn.generate_casia_b(api, **kw)
    assert json.loads((api / marker).read_text()) == {"generator": "fastposegait.data.synthetic",
                                                      "layout": "casia-b"}
    assert syn.generate_casia_b(api, overwrite=True, **{**kw, "seed": 1}).num_sequences == 2
    cli_root = tmp_path / "cli"
    args = ["casia-b", "--root", str(cli_root), "--subjects", "2", "--views", "090", "--types", "nm-01",
            "--frames", "8", "10"]
    syn.main(args)
    assert (cli_root / marker).is_file()
    assert syn.main(args + ["--overwrite", "--seed", "3"]).num_sequences == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert syn.generate_casia_b(empty, overwrite=True, **kw).num_sequences == 2
    assert (empty / marker).is_file()


def test_no_temporary_files_and_atomic_write(tmp_path):
    summary = syn.generate_grew(tmp_path / "g", num_subjects=4, num_train=2, frames=(16, 20))
    assert not [p for p in summary.root.rglob("*") if p.name.endswith(".tmp")]
    target = tmp_path / "x.pkl"
    with pytest.raises(TypeError):
        # the generator's writes (atomic, no fsync), failing half-way through
        atomic_write(target, lambda f: f.write("not bytes"), fsync=False)
    assert not target.exists() and list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*.tmp")) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(frames=(1, 5)), "frames"),
        (dict(frames=(9, 5)), "frames"),
        (dict(types=["walk-01"]), "nm, bg or cl"),
        (dict(views=["front"]), "azimuth"),
        (dict(joint_format="coco-no-head"), "joint_format"),
        (dict(num_subjects=1), "num_subjects"),
        (dict(num_train=9), "num_train"),
        (dict(seed=-1), "seed"),
        (dict(workers=0), "workers"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        syn.generate_casia_b(tmp_path / "d", **{"num_subjects": 3, **kwargs})
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_command_line(tmp_path, capsys):
    root = tmp_path / "cli"
    summary = syn.main(["oumvlp", "--root", str(root), "--subjects", "3", "--seed", "4",
                        "--joint-format", "coco", "--frames", "10", "12", "--views", "000,090",
                        "--workers", "2"])
    out = capsys.readouterr().out
    assert "oumvlp" in out and "sequences:   12" in out and str(root) in out
    assert summary.num_sequences == 12 and _load(root / "00001" / "00" / "090" / "090.pkl").shape[1] == 17
    with pytest.raises(SystemExit):
        syn.main(["oumvlp", "--root", str(root), "--subjects", "3"])  # not empty
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        syn.main(["grew", "--root", str(tmp_path / "x"), "--views", "000"])
