"""Safe pickle loading and pose-array checks."""
import os
import pickle

import numpy as np
import pytest

from fastposegait.data.io import PoseFileError, load_pickle, load_pose, save_pickle


class RunsCode:
    """Unpickling this would call os.system -- the classic malicious pickle."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_roundtrip_numpy_arrays_all_protocols(tmp_path):
    arr = np.random.default_rng(0).normal(size=(5, 17, 3))
    for proto in (2, 4, 5):
        path = tmp_path / f"p{proto}.pkl"
        with open(path, "wb") as f:
            pickle.dump(arr, f, protocol=proto)
        np.testing.assert_array_equal(load_pickle(path), arr)
    for dtype in (np.float32, np.float16, np.int32):
        path = tmp_path / f"{np.dtype(dtype).name}.pkl"
        save_pickle(path, arr.astype(dtype))
        out = load_pose(path)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, arr.astype(dtype))


def test_plain_containers_load(tmp_path):
    path = tmp_path / "c.pkl"
    save_pickle(path, {"a": [1, 2.5, (3, "x")], "b": np.zeros(2)})
    out = load_pickle(path)
    assert out["a"] == [1, 2.5, (3, "x")]


def test_list_of_frames_becomes_array(tmp_path):
    path = tmp_path / "frames.pkl"
    save_pickle(path, [np.ones((17, 3)), np.zeros((17, 3))])
    assert load_pose(path).shape == (2, 17, 3)


def test_malicious_pickle_is_refused_and_not_executed(tmp_path, monkeypatch):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump(RunsCode(), f)
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(PoseFileError) as info:
        load_pose(path)
    assert str(path) in str(info.value)
    assert "refusing to load global posix.system" in str(info.value) or "refusing to load global os.system" in str(info.value)
    assert called == []


@pytest.mark.parametrize("payload, message", [
    (np.zeros((10, 17)), r"expected shape \[T, V, 3\]"),
    (np.zeros((10, 17, 5)), r"got \[10, 17, 5\]"),
    (np.zeros((0, 17, 3)), "empty sequence"),
    (np.array([["a", "b", "c"]] * 2, dtype=object).reshape(2, 1, 3), "numeric array"),
    ("hello", "expected a numpy array"),
])
def test_wrong_content_is_a_clear_error(tmp_path, payload, message):
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump(payload, f)
    with pytest.raises(PoseFileError, match=message):
        load_pose(path)


def test_nan_is_reported_with_position(tmp_path):
    arr = np.ones((4, 17, 3))
    arr[2, 5, 1] = np.nan
    path = tmp_path / "nan.pkl"
    save_pickle(path, arr)
    with pytest.raises(PoseFileError, match="non-finite value \\(NaN/inf\\) at frame 2, joint 5"):
        load_pose(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.pkl"
    data = pickle.dumps(np.ones((4, 17, 3)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoseFileError, match="not a readable pickle"):
        load_pose(path)


def test_atomic_write_keeps_old_content_when_writer_fails(tmp_path):
    from fastposegait.data.io import atomic_write

    path = tmp_path / "x.bin"
    path.write_bytes(b"old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    import os
    import stat

    from fastposegait.data.io import atomic_write

    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "shared.pt", lambda f: f.write(b"x"))
        atomic_write(tmp_path / "private.pt", lambda f: f.write(b"x"), mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.pt").stat().st_mode) == 0o640  # 0o666 minus the umask
    assert stat.S_IMODE((tmp_path / "private.pt").stat().st_mode) == 0o600
