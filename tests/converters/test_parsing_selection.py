"""Raw-file readers and the person-selection rules, on hand-made inputs."""
import re

import numpy as np
import pytest

from fastposegait.converters.parsing import frame_number, natural_key, read_json, read_number_line
from fastposegait.converters.tasks import RawFileError
from fastposegait.converters.selection import closest_candidate, joint_distance, silhouette_choice, track_walker


@pytest.mark.parametrize("name, expected", [
    ("0021_keypoints.json", 21),
    ("00001_0021_keypoints.json", 21),     # first run of exactly 4 digits, not the subject id
    ("frame-0100.json", 100),
    ("img17.json", 17),                    # no 4-digit run: first run of any length
    ("keypoints.json", None),
])
def test_frame_number(name, expected):
    assert frame_number(name, 4) == expected


def test_natural_key_orders_numbers_numerically():
    names = ["human_crop_f10000.txt", "human_crop_f9999.txt", "human_crop_f10001.txt"]
    assert sorted(names, key=natural_key) == ["human_crop_f9999.txt", "human_crop_f10000.txt", "human_crop_f10001.txt"]


def test_read_number_line(tmp_path):
    good = tmp_path / "a.txt"
    values = np.arange(53, dtype=np.float64)
    good.write_text(",".join(map(str, values[:20])) + " \n " + " ".join(map(str, values[20:])))
    np.testing.assert_array_equal(read_number_line(good, 2, 17, "test"), values[2:].reshape(17, 3))
    cases = {
        "": "empty file",
        ",".join(["1"] * 52): "52 values, expected 53",
        ",".join(["1"] * 52 + ["abc"]): "non-numeric value",
        ",".join(["1"] * 10 + ["inf"] + ["1"] * 42): "NaN/inf value (joint 2)",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(RawFileError, match=re.escape(message)) as err:
            read_number_line(bad, 2, 17, "test")
        assert str(err.value).startswith(f"{bad}: ")


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"people": [1, 2')
    with pytest.raises(RawFileError, match=r"x.json: invalid JSON .* line 1, column 17"):
        read_json(bad)
    with pytest.raises(RawFileError, match="cannot read the file"):
        read_json(tmp_path / "missing.json")


def _person(x, conf=0.8, joints=5, y=20.0):
    p = np.zeros((joints, 3))
    p[:, 0] = x + np.arange(joints)
    p[:, 1] = y
    p[:, 2] = conf
    return p


def test_distance_uses_joints_confident_in_both():
    prev = _person(0.0)
    prev[0] = 0.0  # joint 0 missing in the previous frame
    cand = np.stack([_person(3.0), _person(50.0)])
    cand[0, 1, 2] = 0.0  # joint 1 missing in candidate 0
    np.testing.assert_allclose(joint_distance(prev, cand), [3.0, 50.0])
    none_shared = np.stack([np.zeros((5, 3))])
    assert joint_distance(prev, none_shared)[0] == np.inf
    # ties are broken by the higher mean confidence
    tie = np.stack([_person(10.0, conf=0.5), _person(-10.0, conf=0.9)])
    assert closest_candidate(_person(0.0), tie) == 1


def test_tracking_starts_at_an_unambiguous_frame_and_walks_both_ways():
    walker = [_person(100.0 + 4 * t) for t in range(8)]
    stranger = [_person(300.0 - 4 * t, conf=0.99) for t in range(8)]
    frames = []
    for t in range(8):
        if t in (3, 4):
            frames.append(np.stack([walker[t]]))                      # alone: the start
        elif t % 2:
            frames.append(np.stack([walker[t], stranger[t]]))
        else:
            frames.append(np.stack([stranger[t], walker[t]]))        # stranger listed first
    choice = track_walker(frames)
    assert [f[k][0, 0] for f, k in zip(frames, choice)] == [w[0, 0] for w in walker]


def test_tracking_with_every_frame_crowded_starts_from_the_most_confident():
    a = [_person(10.0 * t, conf=0.9) for t in range(4)]
    b = [_person(500.0 - 10.0 * t, conf=0.4) for t in range(4)]
    frames = [np.stack([b[t], a[t]]) for t in range(4)]
    assert track_walker(frames) == [1, 1, 1, 1]
    assert track_walker([]) == []


def test_silhouette_choice():
    sil = np.zeros((50, 80), np.uint8)
    sil[:, 40:] = 255
    inside_dark, inside_bright = _person(5.0), _person(45.0)
    outside = _person(75.0)  # joints at x = 75..79: inside; shift one out of the image
    outside[4, 0] = 80.0
    assert silhouette_choice(np.stack([inside_dark, inside_bright]), sil) == 1
    assert silhouette_choice(np.stack([outside, inside_dark]), sil) == 1  # -inf beats nothing
