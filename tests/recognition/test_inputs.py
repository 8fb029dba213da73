"""read_sequences: a dataset folder (indexed like the dataset classes, optionally one split of a
partition), pose pickles, and keypoint JSON read exactly as the custom converter reads it."""
import json
import pickle

import numpy as np
import pytest

from fastposegait.converters.custom import VideoSpec, convert_video
from fastposegait.data.dataset import PoseDataset
from fastposegait.data.io import load_pose
from fastposegait.data.synthetic import generate_casia_b
from fastposegait.errors import DatasetError, MissingFileError, PoseFileError, RawFileError
from fastposegait.recognition.inputs import read_many, read_sequences


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs") / "data"
    generate_casia_b(root, num_subjects=4, num_train=2, views=["000", "090"], types=["nm-01", "nm-02"],
                     frames=(12, 16), seed=3)
    return root


def test_dataset_folder_all_subjects(dataset):
    items = read_sequences(dataset)
    assert len(items) == 4 * 2 * 2
    assert [i.name for i in items[:3]] == ["001/nm-01/000", "001/nm-01/090", "001/nm-02/000"]
    first = items[0]
    assert (first.subject, first.type, first.view) == ("001", "nm-01", "000")
    np.testing.assert_array_equal(first.arrays[0], load_pose(dataset / "001" / "nm-01" / "000" / "000.pkl"))


def test_dataset_split_is_the_test_phase_index(dataset):
    partition = dataset / "partition.json"
    items = read_sequences(dataset, partition=partition)
    reference = PoseDataset(dataset, partition, training=False, cache=False)
    assert [(i.subject, i.type, i.view) for i in items] == [(r.subject, r.type, r.view) for r in reference.records]
    for item, index in zip(items, range(len(reference))):
        np.testing.assert_array_equal(item.arrays[0], reference.load(index)[0])
    train = read_sequences(dataset, partition=partition, split="TRAIN_SET")
    assert {i.subject for i in train} == set(json.loads(partition.read_text())["TRAIN_SET"])


def test_probe_set_split(dataset, tmp_path):
    partition = tmp_path / "p.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": ["003", "004"],
                                     "PROBE_SET": ["004-nm-02-090", "003-nm-01-000"]}))
    items = read_sequences(dataset, partition=partition, split="PROBE_SET")
    assert [i.name for i in items] == ["003/nm-01/000", "004/nm-02/090"]  # partition order, then sorted
    with pytest.raises(DatasetError, match="split 'TEST'"):
        read_sequences(dataset, partition=partition, split="TEST")


def test_pickle_file_and_folder(tmp_path):
    folder = tmp_path / "walks"
    folder.mkdir()
    arrays = {}
    for name in ("walk10", "walk2", "walk1"):
        arrays[name] = np.random.default_rng(len(name) + int(name[4:])).normal(size=(5, 17, 3)).astype(np.float32)
        with open(folder / f"{name}.pkl", "wb") as f:
            pickle.dump(arrays[name], f)
    items = read_sequences(folder)
    assert [i.name for i in items] == ["walk1", "walk2", "walk10"]  # natural order
    for item in items:
        np.testing.assert_array_equal(item.arrays[0], arrays[item.name])
        assert item.subject is None and item.source.endswith(f"{item.name}.pkl")
    one = read_sequences(folder / "walk2.pkl")
    assert len(one) == 1 and one[0].name == "walk2"
    both = read_many([folder / "walk2.pkl", folder])
    assert [i.name for i in both] == ["walk2", "walk1", f"{folder}:walk2", "walk10"]


class Boom:
    def __reduce__(self):
        return (print, ("code ran",))


def test_hostile_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(PoseFileError, match="evil.pkl"):
        read_sequences(path)
    assert "code ran" not in capsys.readouterr().out


def _walk(seed, frames=10):
    rng = np.random.default_rng(seed)
    walk = rng.uniform(10, 200, size=(frames, 17, 3))
    walk[..., 2] = rng.uniform(0.3, 1, size=(frames, 17))
    return walk


def _coco_results(walk, other):
    """The walker (track 7) in every frame but frame 3, a more confident bystander (track 2)
    in the first 4 frames listed first; image ids as unpadded names (natural order)."""
    anns = []
    for i, frame in enumerate(walk):
        if i < 4:
            anns.append({"image_id": f"f{i}.jpg", "keypoints": other[i].ravel().tolist(), "score": 0.99,
                         "track_id": 2})
        if i != 3:
            anns.append({"image_id": f"f{i}.jpg", "keypoints": frame.ravel().tolist(), "score": 0.6, "track_id": 7})
    return anns[::-1]


def test_json_video_reads_as_the_converter_does(tmp_path):
    walk, other = _walk(1, 12), _walk(2, 12)
    source = tmp_path / "videos" / "p01" / "cam1.json"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps(_coco_results(walk, other)))
    item = read_sequences(source)[0]
    expected = np.delete(walk, 3, axis=0)  # the longest track; its missing frame dropped
    np.testing.assert_array_equal(item.arrays[0], expected)
    assert item.name == "cam1" and item.subject is None
    # the converter writes the very same array
    out = tmp_path / "converted.pkl"
    convert_video(VideoSpec(str(source), "video", "p01", "00", "cam1"), str(out))
    np.testing.assert_array_equal(item.arrays[0], load_pose(out))
    # a folder of videos: the subject comes from the folder, as in the converter's layout
    items = read_sequences(tmp_path / "videos")
    assert [(i.name, i.subject, i.type, i.view) for i in items] == [("p01/cam1", "p01", "00", "cam1")]
    # the given track instead of the longest one
    bystander = read_sequences(source, track="2")[0]
    np.testing.assert_array_equal(bystander.arrays[0], other[:4])


def test_json_frame_folder(tmp_path):
    walk = _walk(3, 6)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(walk):
        people = [{"pose_keypoints_2d": frame.ravel().tolist()}] if i != 2 else []
        (folder / f"frame_{i}.json").write_text(json.dumps({"people": people}))
    item = read_sequences(folder, json_layout="frame")[0]
    np.testing.assert_array_equal(item.arrays[0], np.delete(walk, 2, axis=0))
    assert item.notes == ["1 frames dropped: no person detected"]


def test_bad_inputs_are_one_line(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        read_sequences(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="notes.txt: not a .pkl"):
        read_sequences(tmp_path / "notes.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds no pose sequence"):
        read_sequences(empty)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 0, "keypoints": [1, 2]}]')
    with pytest.raises(RawFileError, match="bad.json.*2 keypoint values") as info:
        read_sequences(bad)
    assert "\n" not in str(info.value)
    nobody = tmp_path / "nobody.json"
    nobody.write_text("[]")
    with pytest.raises(RawFileError, match="nobody.json.*no detections"):
        read_sequences(nobody)
    truncated = tmp_path / "cut.json"
    truncated.write_text('[{"image_id": 0, "keypoints": [1, 2, 3')
    with pytest.raises(RawFileError, match="cut.json: invalid JSON"):
        read_sequences(truncated)


def test_subject_and_type_folders_of_a_dataset(dataset):
    subject = read_sequences(dataset / "002")
    assert [(i.subject, i.type, i.view) for i in subject] == [
        ("002", t, v) for t in ("nm-01", "nm-02") for v in ("000", "090")]
    kind = read_sequences(dataset / "002" / "nm-02")
    assert [i.name for i in kind] == ["002/nm-02/000", "002/nm-02/090"]
    np.testing.assert_array_equal(kind[1].arrays[0], load_pose(dataset / "002" / "nm-02" / "090" / "090.pkl"))
