"""Safe pickle loading and pose-array checks."""
import collections
import os
import pickle
import pickletools

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


def _unframed(data):
    """``data`` without its FRAME opcodes (an optional hint), so names can change length."""
    frames = [pos for op, _, pos in pickletools.genops(data) if op.name == "FRAME"]
    for pos in reversed(frames):
        data = data[:pos] + data[pos + 9:]
    return data


def _with_core(data, core):
    """``data`` with numpy's ``core`` module path as numpy 1 (``numpy.core``) or numpy 2
    (``numpy._core``) writes it."""
    data = _unframed(data)
    for written in (b"numpy.core", b"numpy._core"):
        for name in (b".multiarray", b".numeric"):
            old, new = written + name, core + name
            data = data.replace(bytes([0x8C, len(old)]) + old, bytes([0x8C, len(new)]) + new)  # SHORT_BINUNICODE
            data = data.replace(b"c" + old + b"\n", b"c" + new + b"\n")  # GLOBAL
    return data


def _same(got, want):
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, dict):
        return type(got) is type(want) and list(got) == list(want) and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, np.dtype):
        return type(got) is type(want) and got == want and got.str == want.str
    if isinstance(want, (np.ndarray, np.generic)):
        return (type(got) is type(want) and got.dtype.str == want.dtype.str and got.shape == want.shape
                and np.asarray(got).tobytes("A") == np.asarray(want).tobytes("A")
                and np.asarray(got).flags.f_contiguous == np.asarray(want).flags.f_contiguous)
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("core", [b"numpy.core", b"numpy._core"])
def test_numpy_pickles_load_as_pickle_loads_them(tmp_path, proto, core):
    """Every numeric dtype, both byte orders, C and Fortran order, 0-d arrays, empty arrays,
    scalars, dtypes and lists of frames, with numpy 1's and numpy 2's module paths."""
    base = np.arange(24, dtype=np.float64).reshape(2, 4, 3) - 5.5
    objs = []
    for code in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "g", "c8", "c16"):
        for order in "<>":
            dt = np.dtype(code) if np.dtype(code).itemsize == 1 else np.dtype(code).newbyteorder(order)
            arr = base.astype(dt)
            objs += [arr, np.asfortranarray(arr), arr[:, ::2], arr[:0], arr[0, 0, :1].reshape(()),
                     arr.reshape(-1)[3], dt]
    objs += [[f for f in base.astype(np.float32)], {"pose": base, "fps": np.float32(25.0)}]
    path = tmp_path / "p.pkl"
    for obj in objs:
        data = pickle.dumps(obj, protocol=proto)
        path.write_bytes(_with_core(data, core))
        assert _same(load_pickle(path), pickle.loads(data)), (obj, proto, core)


@pytest.mark.parametrize("proto", range(6))
def test_plain_values_load_with_every_protocol(tmp_path, proto):
    obj = {"set": {1, 2}, "frozen": frozenset({3}), "ba": bytearray(b"ab"), "empty_ba": bytearray(),
           "c": 1 + 2j, "od": collections.OrderedDict(a=1, b=[2]), "b": b"xy", "eb": b"", "big": 2 ** 100,
           "t": (1, None, True, 1.5, "\u00fc\n")}
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=proto))
    got = load_pickle(path)
    assert got == obj and type(got["od"]) is collections.OrderedDict and type(got["ba"]) is bytearray


@pytest.mark.parametrize("obj, message", [
    (np.zeros(3, dtype=[("x", "f4"), ("y", "i4")]), r"refusing dtype V8"),
    (np.zeros(3, dtype="V8"), r"refusing dtype V8"),
    (np.array(["ab", "c"]), r"refusing dtype U2"),
    (np.array([b"ab"]), r"refusing dtype S2"),
    (np.array(["2020-01-01"], dtype="M8[D]"), r"refusing dtype M8"),
    (np.array([1], dtype="m8[s]"), r"refusing dtype m8"),
    (np.array([None, 1], dtype=object), r"refusing dtype O8"),
    (np.ma.array([1.0, 2.0], mask=[0, 1]), r"refusing to load global numpy\.ma\."),
    (np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), r"refusing to load global numpy\.(rec\.)?recarray"),
])
def test_non_numeric_numpy_content_is_refused(tmp_path, obj, message):
    path = tmp_path / "x.pkl"
    for proto in (2, 4, 5):
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        with pytest.raises(PoseFileError, match=message) as info:
            load_pickle(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_dotted_names_and_tampered_dtypes_are_refused(tmp_path):
    path = tmp_path / "x.pkl"
    # STACK_GLOBAL("numpy.dtypes", "__builtins__.get"): a dotted name walks attributes
    path.write_bytes(b"\x80\x04\x8c\x0cnumpy.dtypes\x8c\x10__builtins__.get\x93.")
    with pytest.raises(PoseFileError, match="refusing dotted global name numpy.dtypes.__builtins__.get"):
        load_pickle(path)
    path.write_bytes(b"\x80\x04\x8c\x0cnumpy.dtypes\x8c\x11_add_dtype_helper\x93.")
    with pytest.raises(PoseFileError, match="refusing to load global numpy.dtypes._add_dtype_helper"):
        load_pickle(path)
    # a float64 dtype whose state claims object flags (numpy would later treat the data as pointers)
    data = pickle.dumps(np.dtype("f8"), protocol=2)
    assert data.count(b"J\xff\xff\xff\xffK\x00t") == 1  # ..., alignment -1, flags 0)
    path.write_bytes(data.replace(b"J\xff\xff\xff\xffK\x00t", b"J\xff\xff\xff\xffK\x3ft"))
    with pytest.raises(PoseFileError, match="refusing a dtype state other than a numeric type's byte order"):
        load_pickle(path)


def test_plain_containers_load(tmp_path):
    path = tmp_path / "c.pkl"
    save_pickle(path, {"a": [1, 2.5, (3, "x")], "b": np.zeros(2)})
    out = load_pickle(path)
    assert out["a"] == [1, 2.5, (3, "x")]


def test_list_of_frames_becomes_array(tmp_path):
    path = tmp_path / "frames.pkl"
    save_pickle(path, [np.ones((17, 3)), np.zeros((17, 3))])
    assert load_pose(path).shape == (2, 17, 3)
    save_pickle(path, [[[float(t), float(v), 0.5] for v in range(17)] for t in range(4)])  # nested lists
    assert load_pose(path).shape == (4, 17, 3)


def test_shared_frames_cannot_blow_up_memory(tmp_path):
    """A pickle refers back to an object in a few bytes: 2000 references to one 100k-joint frame
    are 2.4 MB of pickle but would stack into 4.8 GB."""
    path = tmp_path / "amplified.pkl"
    save_pickle(path, [np.ones((100_000, 3))] * 2000)
    assert path.stat().st_size < 3_000_000
    with pytest.raises(PoseFileError, match="its 2000 frames would stack into 600,000,000 numbers"):
        load_pose(path)


def test_shared_frames_within_the_old_bound_are_refused_before_stacking(monkeypatch):
    """2.6M references to one 17 x 3 frame (a 5 MB pickle) were accepted under the old bound of
    2**27 numbers and peaked at ~3 GB while stacking; now both the frame count and the number
    count are checked before anything is stacked."""
    from fastposegait.data import io as pose_io

    def no_stacking(*args, **kwargs):
        raise AssertionError("stacked before the bounds were checked")

    monkeypatch.setattr(pose_io.np, "stack", no_stacking)
    frame = np.ones((17, 3))
    with pytest.raises(PoseFileError, match=r"2,600,000 frames \(more than 1,000,000,"):
        pose_io.as_pose_array([frame] * 2_600_000, "amplified.pkl")
    # under the frame bound, over the number bound: 400,000 x 51 = 20.4M numbers > 2**24
    with pytest.raises(PoseFileError, match="its 400000 frames would stack into 20,400,000 numbers"):
        pose_io.as_pose_array([frame] * 400_000, "amplified.pkl")
    assert pose_io.MAX_SEQUENCE_VALUES == 2 ** 24 and pose_io.MAX_SEQUENCE_FRAMES == 1_000_000
    # an hour of a 30 fps walk of 18 joints x 3 channels fits
    monkeypatch.undo()
    assert pose_io.as_pose_array([np.ones((18, 3), np.float32)] * 108_000, "hour.pkl").shape == (108_000, 18, 3)


@pytest.mark.parametrize("shape, message", [
    ((4, 0, 2), r"no joints \(shape \[4, 0, 2\]\)"),
    ((1_000_001, 1, 2), r"1,000,001 frames \(more than 1,000,000,"),
])
def test_arrays_without_joints_or_with_too_many_frames_are_refused(shape, message):
    from fastposegait.data.io import as_pose_array

    array = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=shape, strides=(0,) * 3)
    with pytest.raises(PoseFileError, match=message):
        as_pose_array(array, "x.pkl")


def test_a_pickled_zero_joint_array_of_10_18_frames_is_refused(tmp_path):
    # before: accepted (no bytes of data; numpy itself refuses to create such an array)
    path = tmp_path / "zero.pkl"
    data = pickle.dumps(np.zeros((10, 0, 3), np.float32), protocol=2)  # no frames: lengths may change
    small = b"K\nK\x00K\x03\x87"  # the shape (10, 0, 3): three BININT1 and TUPLE3
    huge = b"\x8a\x08" + (10 ** 18).to_bytes(8, "little") + b"K\x00K\x03\x87"  # LONG1 10**18
    assert data.count(small) == 1
    path.write_bytes(data.replace(small, huge))
    with pytest.raises(PoseFileError, match=r"zero.pkl: no joints \(shape \[1000000000000000000, 0, 3\]\)"):
        load_pose(path)


def test_shared_frames_and_rows_of_an_ordinary_walk_load(tmp_path):
    # e.g. a converter that repeats the previous frame object, or writes missing joints as [[0, 0, 0]] * 17
    frame = np.arange(51, dtype=np.float32).reshape(17, 3)
    path = tmp_path / "shared.pkl"
    save_pickle(path, [frame, frame, frame * 2])
    assert np.array_equal(load_pose(path), np.stack([frame, frame, frame * 2]))
    save_pickle(path, [[[0.0, 0.0, 0.0]] * 17, [[1.0, 2.0, 0.5]] * 17])
    out = load_pose(path)
    assert out.shape == (2, 17, 3) and out[1, 16].tolist() == [1.0, 2.0, 0.5]


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
    (np.array([["a", "b", "c"]] * 2, dtype=object).reshape(2, 1, 3), r"refusing dtype O8 \(numeric dtypes only"),
    ([[["a", "b", "c"]], [["d", "e", "f"]]], "expected a numeric array, got dtype <U1"),  # frames of strings
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


@pytest.mark.parametrize("data, message", [
    (b"\x80\x04" + b"]" * 200_000 + b"a" * 199_999 + b".", "lists nested thousands of levels deep"),
    (b"\x80\x04]\x94h\x00a.", "frames of different shapes"),  # a list that contains itself
])
def test_pathological_nesting_is_one_error_not_a_crash(data, message):
    from fastposegait.data.io import load_pose_bytes

    with pytest.raises(PoseFileError, match=message):
        load_pose_bytes(data, "odd.pkl")
