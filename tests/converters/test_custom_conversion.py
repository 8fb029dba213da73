"""Your own data: COCO-format keypoint JSON (per video or per frame) -> layout + partition."""
import csv
import json

import numpy as np
import pytest
from raw_trees import bystander, load_tree, numbers, synthetic, write_text

from fastposegait.data.dataset import PoseDataset
from fastposegait.converters import cli

TYPES = ["nm-01", "nm-02"]
VIEWS = ["000", "090"]


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    base = tmp_path_factory.mktemp("custom")
    src = synthetic("casia-b", base / "syn", num_subjects=4, types=TYPES, views=VIEWS, frames=(18, 24), seed=11)
    return {k: v.astype(np.float64) for k, v in src.items()}, base


def _video_name(key):
    s, t, v = key
    return f"cam{v}_person{s}_{t}"


def _annotations(walk, other, track_ids=True):
    """COCO results list: the walker (track 3) in every frame, a bystander (track 1) listed first
    and more confident in frames 0-7, image ids as unpadded file names (natural order matters)."""
    anns = []
    for i, frame in enumerate(walk):
        if i < 8:
            ann = {"image_id": f"img{i}.jpg", "category_id": 1, "keypoints": numbers(other[i]), "score": 0.99}
            if track_ids:
                ann["track_id"] = 1
            anns.append(ann)
        ann = {"image_id": f"img{i}.jpg", "category_id": 1, "keypoints": numbers(frame), "score": 0.7}
        if track_ids:
            ann["track_id"] = 3
        anns.append(ann)
    return anns[::-1]  # file order must not matter


def test_video_files_with_tracks_and_mapping(walks, tmp_path, capsys):
    src, _ = walks
    videos = tmp_path / "videos"
    rows = []
    others = {}
    for key, walk in src.items():
        other = bystander(walk, src[("004", "nm-02", "090")] if key[0] != "004" else src[("001", "nm-01", "000")])
        others[key] = other
        write_text(videos / f"{_video_name(key)}.json", json.dumps(_annotations(walk, other)))
        rows.append({"video": _video_name(key), "subject": f"p{key[0]}", "type": key[1], "view": key[2]})
    mapping = tmp_path / "mapping.csv"
    with open(mapping, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video", "subject", "type", "view"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "mine"
    assert cli.main(["custom", "-i", str(videos), "-o", str(out), "--mapping", str(mapping), "--no-progress",
                     "--test-fraction", "0.5", "--seed", "0", "--report", str(tmp_path / "r.json")]) == 0
    got = load_tree(out)
    assert set(got) == {(f"p{s}", t, v) for s, t, v in src}
    for (s, t, v), walk in src.items():
        arr = got[(f"p{s}", t, v)]
        assert arr.dtype == np.float64 and arr.shape == walk.shape
        np.testing.assert_array_equal(arr, walk)  # longest track, frames img0..img23 in natural order
    report = json.loads((tmp_path / "r.json").read_text())
    assert {s["selection"] for s in report["sequences"]} == {"longest track"}
    assert {s["choices"] for s in report["sequences"]} == {8}
    part = json.loads((out / "partition.json").read_text())
    assert sorted(part["TRAIN_SET"] + part["TEST_SET"]) == ["p001", "p002", "p003", "p004"]
    assert len(part["TEST_SET"]) == 2 and not set(part["TRAIN_SET"]) & set(part["TEST_SET"])
    assert part["PROBE_SET"] == [f"{s}-nm-01-000" for s in part["TEST_SET"]]
    test = PoseDataset(out, out / "partition.json", training=False)
    assert len(test) == 8


def test_frame_files_without_tracks_follow_the_walker(walks, tmp_path):
    src, _ = walks
    root = tmp_path / "frames"
    expected = {}
    for key, walk in src.items():
        s, t, v = key
        other = bystander(walk, src[("004", "nm-02", "090")] if s != "004" else src[("001", "nm-01", "000")])
        folder = root / f"subj{s}" / f"{t}_{v}"  # <subject>/<video>: type 00, view = video name
        keep = np.ones(len(walk), bool)
        for i, frame in enumerate(walk):
            people = [{"keypoints": numbers(frame), "score": 0.6}]
            if i < 8:
                people.insert(0, {"keypoints": numbers(other[i]), "score": 0.99})
            text = json.dumps(people)
            if key == ("001", "nm-01", "000") and i == 10:
                text, keep[i] = text[:-20], False      # truncated
            if key == ("001", "nm-01", "000") and i == 11:
                text, keep[i] = "[]", False           # nobody detected
            write_text(folder / f"frame{i}.json", text)
        expected[(f"subj{s}", "00", f"{t}_{v}")] = walk[keep]
    out = tmp_path / "out"
    assert cli.main(["custom", "-i", str(root), "-o", str(out), "--layout", "frame", "--no-progress",
                     "--report", str(tmp_path / "r.json")]) == 0
    got = load_tree(out)
    assert set(got) == set(expected)
    for key, arr in got.items():
        np.testing.assert_array_equal(arr, expected[key])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dropped"] == {"malformed file": 1, "no person detected": 1}
    seq = next(s for s in report["sequences"] if s["name"] == "subj001/00/nm-01_000")
    assert seq["selection"] == "tracking" and seq["choices"] == 8
    assert "frame10.json: invalid JSON" in seq["problems"][0]


def test_mapping_json_with_split_probe_and_track(walks, tmp_path):
    src, _ = walks
    videos = tmp_path / "v"
    mapping = {}
    for key, walk in src.items():
        s, t, v = key
        other = bystander(walk, src[("001", "nm-01", "000")])
        write_text(videos / s / f"{t}-{v}.json", json.dumps(_annotations(walk, other)))
        split = "train" if s in ("001", "002") else ("probe" if (t, v) == ("nm-02", "090") else "test")
        entry = {"subject": s, "type": t, "view": v, "split": split}
        if key == ("003", "nm-01", "000"):
            entry["track"] = "1"  # the user says the walker is track 1 here
        mapping[f"{s}/{t}-{v}"] = entry
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    out = tmp_path / "out"
    assert cli.main(["custom", "-i", str(videos), "-o", str(out), "--mapping", str(tmp_path / "map.json"),
                     "--no-progress"]) == 0
    part = json.loads((out / "partition.json").read_text())
    assert part == {"TRAIN_SET": ["001", "002"], "TEST_SET": ["003", "004"],
                    "PROBE_SET": ["003-nm-02-090", "004-nm-02-090"]}
    chosen = load_tree(out)[("003", "nm-01", "000")]
    assert chosen.shape[0] == 8  # track 1 is in frames 0-7 only
    np.testing.assert_array_equal(chosen, bystander(src[("003", "nm-01", "000")], src[("001", "nm-01", "000")])[:8])


def test_openpose_input_converted_to_coco(tmp_path):
    src18 = synthetic("casia-b", tmp_path / "s18", num_subjects=2, types=["nm-01"], views=["090"],
                      frames=(12, 14), seed=2, joint_format="openpose")
    src17 = synthetic("casia-b", tmp_path / "s17", num_subjects=2, types=["nm-01"], views=["090"],
                      frames=(12, 14), seed=2, joint_format="coco")
    for (s, t, v), walk in src18.items():
        anns = [{"image_id": i, "keypoints": numbers(f)} for i, f in enumerate(walk)]
        write_text(tmp_path / "in" / s / f"{v}.json", json.dumps({"images": [{"id": i, "file_name": f"{i:03d}.png"}
                                                                           for i in range(len(walk) + 2)],
                                                                 "annotations": anns}))
    out = tmp_path / "out"
    assert cli.main(["custom", "-i", str(tmp_path / "in"), "-o", str(out), "--coco17", "--no-progress",
                     "--report", str(tmp_path / "r.json")]) == 0
    got = load_tree(out)
    for (s, t, v), walk in src17.items():
        np.testing.assert_array_equal(got[(s, "00", v)], walk.astype(np.float64))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dropped"] == {"no person detected": 4}  # 2 images per video without anyone


def test_unusable_inputs_are_one_line_errors(walks, tmp_path, capsys):
    src, _ = walks
    flat = tmp_path / "flat"
    write_text(flat / "a.json", "[]")
    assert cli.main(["custom", "-i", str(flat), "-o", str(tmp_path / "o")]) == 2
    assert "cannot tell its subject from the folders" in capsys.readouterr().err
    bad_map = tmp_path / "m.csv"
    bad_map.write_text("video,subject\na,\n")
    assert cli.main(["custom", "-i", str(flat), "-o", str(tmp_path / "o"), "--mapping", str(bad_map)]) == 2
    assert "entry 1 needs at least 'video' and 'subject'" in capsys.readouterr().err
    twice = tmp_path / "t.csv"
    write_text(flat / "b.json", "[]")
    twice.write_text("video,subject,type,view\na,x,00,v\nb,x,00,v\n")
    assert cli.main(["custom", "-i", str(flat), "-o", str(tmp_path / "o"), "--mapping", str(twice)]) == 2
    assert "both map to x/00/v" in capsys.readouterr().err
