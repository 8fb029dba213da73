"""Reading and writing pose pickles safely.

Dataset pickles come from strangers, and ``pickle.load`` runs whatever a file asks it to.
:func:`load_pickle` reads them with a restricted unpickler instead. What a pose pickle may hold:

* numpy arrays, numpy scalars and dtypes of a numeric kind only (bool, signed and unsigned
  integers, floats, complex), in either byte order, C or Fortran order, written by numpy 1 or
  numpy 2 (``numpy.core`` or ``numpy._core`` paths) with any pickle protocol 0-5 (out-of-band
  buffers excluded);
* Python's plain values and containers (None, bool, int, float, complex, str, bytes, bytearray,
  list, tuple, dict, ``collections.OrderedDict``, set, frozenset) holding those.

Anything else is refused with an error naming the file: a global outside the exact list of
``(module, name)`` pairs of :func:`_globals` (a dotted name such as ``numpy.dtypes.X.__globals__`` is refused
before anything else), object, string, structured, void and datetime dtypes, numpy subclasses
(masked arrays, matrices, record arrays), and the opcodes that instantiate arbitrary classes or
look objects up elsewhere (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4, PERSID/BINPERSID). The few
callables a pickle may invoke (REDUCE) get their arguments checked against what numpy and
``pickle`` themselves write, and BUILD may only set the state of an array or dtype the same
pickle has just created, after its state is checked: a numeric dtype never receives object
flags, fields or a subarray, and an array's data must match its shape and dtype. (This needs
the pure-Python unpickler, whose opcodes can be overridden: about 25 us more per array pickle
than ``pickle.load``.)

The dataset loader (:func:`load_sequence`) accepts two kinds of sequences, told apart by the
array's rank: 4-D arrays are map sequences ``[T, C, H, W]`` (skeleton maps, e.g. OpenGait's
uint8 ``[T, 2, 64, 64]``; :func:`as_map_array`), everything else must be a pose sequence and
gets the pose checks below unchanged.

:func:`load_pose` wants one array ``[T, V, 3]`` (or ``[T, V, 2]``) of floats or integers,
or a list of per-frame arrays ``[V, C]`` (or nested lists) of at most
:data:`MAX_SEQUENCE_FRAMES` frames and :data:`MAX_SEQUENCE_VALUES` numbers once stacked, both
counted before anything is stacked: frames or rows may be shared references (code such as
``[[0, 0, 0]] * 17`` writes them), but a reference costs a few bytes of pickle and a whole
frame of memory, so a small hostile file could otherwise stack into gigabytes (a 5 MB pickle of
2.6 million references to one frame peaked at 3 GB under the earlier bound of 2**27 numbers).
Every sequence needs at least one frame and one joint, and at most
:data:`MAX_SEQUENCE_FRAMES` frames.

Writes are atomic (temp file, fsync, rename) so an interrupted run never leaves a half-written
file.
"""
from __future__ import annotations

import importlib
import io
import math
import os
import pickle
import re
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np

from ..errors import PoseFileError

# numpy's own reconstruction functions, taken from what numpy's pickling returns (importing
# numpy.core by name warns under numpy 2, and the functions are called with checked arguments).
_NP_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # multiarray._reconstruct
_NP_SCALAR = np.float64(0).__reduce__()[0]  # multiarray.scalar
_NP_FROMBUFFER = np.zeros(0).__reduce_ex__(5)[0]  # numeric._frombuffer
_NUMERIC_KINDS = "biufc"
_NUMERIC_ONLY = "(numeric dtypes only: bool, int, uint, float, complex)"
_MAX_DIMS = 32  # numpy 1's limit (numpy 2 allows 64); a pose array has 3


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle references something other than numpy arrays and plain containers."""


def _text(value: Any, limit: int = 80) -> str:
    """``value`` (a name read from the file) for an error message: one line, ASCII, bounded."""
    text = str(value)
    short = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    short = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in short)
    return short + ("..." if len(text) > limit else "")


def _numeric_dtype(value: Any) -> np.dtype:
    """``value`` if it is a plain numeric dtype (no fields, subarray, object flags or metadata)."""
    if not isinstance(value, np.dtype):
        raise UnsafePickleError(f"expected a dtype, got {type(value).__name__}")
    if (value.kind not in _NUMERIC_KINDS or value.hasobject or value.flags != 0
            or value.names is not None or value.subdtype is not None or value.metadata is not None):
        raise UnsafePickleError(f"refusing dtype {_text(value.str)} {_NUMERIC_ONLY}")
    return value


def _shape(value: Any) -> Tuple[int, ...]:
    if type(value) is not tuple or len(value) > _MAX_DIMS or any(type(d) is not int or d < 0 for d in value):
        raise pickle.UnpicklingError("array shape is not a tuple of non-negative ints")
    return value


def _check_size(data: Any, shape: Tuple[int, ...], dtype: np.dtype, types: Tuple[type, ...] = (bytes,)) -> None:
    if type(data) not in types:
        raise pickle.UnpicklingError(f"array data is {type(data).__name__}, not bytes")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise pickle.UnpicklingError(f"array data holds {len(data)} bytes, shape {list(shape)} of "
                                     f"{dtype.str} needs {math.prod(shape) * dtype.itemsize}")


class _Constructor:
    """A global a pickle may call (REDUCE): ``build(unpickler, *args)`` checks the arguments
    and makes the object. Nothing else is ever called."""

    __slots__ = ("name", "build")

    def __init__(self, name: str, build: Callable[..., Any]) -> None:
        self.name = name
        self.build = build

    def __repr__(self) -> str:
        return f"<restricted {self.name}>"


def _make_reconstruct(u: "_RestrictedUnpickler", subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # numpy writes _reconstruct(ndarray, (0,), b"b"): an empty placeholder that BUILD fills.
    if (subtype is not np.ndarray or type(shape) is not tuple or shape != (0,)
            or type(dtype) not in (bytes, str) or dtype not in (b"b", "b")):
        raise UnsafePickleError("refusing _reconstruct with arguments numpy never writes")
    return u.pending(_NP_RECONSTRUCT(np.ndarray, (0,), b"b"))


def _make_dtype(u: "_RestrictedUnpickler", spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    # numpy writes dtype("f8", False, True) and sets the byte order with BUILD.
    if (type(spec) is not str or not re.fullmatch(r"[biufc][0-9]{1,2}", spec)
            or type(align) not in (bool, int) or align or type(copy) not in (bool, int)):
        raise UnsafePickleError(f"refusing dtype {_text(spec)} {_NUMERIC_ONLY}")
    # always a private copy: BUILD must never reach numpy's shared built-in dtype objects
    return u.pending(_numeric_dtype(np.dtype(spec, align=False, copy=True)))


def _make_scalar(u: "_RestrictedUnpickler", dtype: Any, data: Any) -> Any:
    dtype = u.use(_numeric_dtype(dtype))
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar data does not match its dtype")
    return _NP_SCALAR(dtype, data)


def _make_frombuffer(u: "_RestrictedUnpickler", buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    dtype, shape = u.use(_numeric_dtype(dtype)), _shape(shape)
    _check_size(buf, shape, dtype, (bytes, bytearray))  # protocol 5 writes a bytearray
    if type(order) is not str or order not in ("C", "F"):
        raise pickle.UnpicklingError("array order is not 'C' or 'F'")
    return _NP_FROMBUFFER(buf, dtype, shape, order)


def _make_encode(u: "_RestrictedUnpickler", text: Any, encoding: Any = "utf-8") -> bytes:
    # protocols 0-2 write bytes as _codecs.encode(str, "latin1")
    if type(text) is not str or type(encoding) is not str or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode other than str -> latin1 bytes")
    return text.encode("latin-1")


def _make_bytes(u: "_RestrictedUnpickler") -> bytes:
    return b""  # protocols 0-2 write b"" as bytes()


def _make_bytearray(u: "_RestrictedUnpickler", *args: Any) -> bytearray:
    if args and (len(args) > 1 or type(args[0]) is not bytes):
        raise UnsafePickleError("refusing bytearray() of anything but bytes")
    return bytearray(*args)


def _make_container(kind: type) -> Callable[..., Any]:
    def make(u: "_RestrictedUnpickler", *args: Any) -> Any:
        if args and (len(args) > 1 or type(args[0]) not in (list, tuple)):
            raise UnsafePickleError(f"refusing {kind.__name__}() of anything but a list")
        return kind(*args)

    return make


def _make_complex(u: "_RestrictedUnpickler", real: Any = 0.0, imag: Any = 0.0) -> complex:
    if type(real) not in (int, float) or type(imag) not in (int, float):
        raise UnsafePickleError("refusing complex() of anything but two numbers")
    return complex(real, imag)


def _make_ordered_dict(u: "_RestrictedUnpickler") -> OrderedDict:
    return OrderedDict()  # items follow as SETITEMS


def _globals() -> Dict[Tuple[str, str], Any]:
    """The exact ``(module, name)`` pairs a pose pickle may reference, and what each gives."""
    table: Dict[Tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,  # _reconstruct's argument
                                         ("numpy", "dtype"): _Constructor("numpy.dtype", _make_dtype)}
    for core in ("numpy.core", "numpy._core"):  # numpy 2 moved numpy.core to numpy._core
        table[f"{core}.multiarray", "_reconstruct"] = _Constructor("_reconstruct", _make_reconstruct)
        table[f"{core}.multiarray", "scalar"] = _Constructor("scalar", _make_scalar)
        table[f"{core}.numeric", "_frombuffer"] = _Constructor("_frombuffer", _make_frombuffer)
    table["_codecs", "encode"] = _Constructor("_codecs.encode", _make_encode)
    table["collections", "OrderedDict"] = _Constructor("OrderedDict", _make_ordered_dict)
    for builtins in ("builtins", "__builtin__"):  # protocols 0-2 write Python 2's module name
        table[builtins, "bytes"] = _Constructor("bytes", _make_bytes)
        table[builtins, "bytearray"] = _Constructor("bytearray", _make_bytearray)
        table[builtins, "set"] = _Constructor("set", _make_container(set))
        table[builtins, "frozenset"] = _Constructor("frozenset", _make_container(frozenset))
        table[builtins, "complex"] = _Constructor("complex", _make_complex)
    # numpy>=1.25 pickles a dtype's class (type(arr.dtype)) as numpy.dtypes.<Name>DType; arrays,
    # scalars and dtypes themselves never reference these. Allowed as plain values (never called).
    try:
        dtypes = importlib.import_module("numpy.dtypes")
    except ImportError:  # numpy < 1.25
        dtypes = None
    for name in ("BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType",
                 "UInt16DType", "UInt32DType", "UInt64DType", "ByteDType", "UByteDType", "ShortDType",
                 "UShortDType", "IntDType", "UIntDType", "LongDType", "ULongDType", "LongLongDType",
                 "ULongLongDType", "Float16DType", "Float32DType", "Float64DType", "LongDoubleDType",
                 "Complex64DType", "Complex128DType", "CLongDoubleDType"):
        cls = getattr(dtypes, name, None)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            table["numpy.dtypes", name] = cls
    return table


_ALLOWED_GLOBALS = _globals()


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one: its opcodes can be overridden
    """Unpickles numeric numpy arrays/scalars/dtypes and plain containers, nothing else.

    Only the globals of ``_ALLOWED_GLOBALS`` resolve; only :class:`_Constructor` objects can be
    called; BUILD only sets the checked state of an array or dtype created earlier by the same
    pickle and not used since; APPEND/SETITEM/ADDITEMS only fill lists, dicts and sets."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self._pending: Dict[int, Any] = {}  # id -> array or dtype waiting for its BUILD

    def pending(self, obj: Any) -> Any:
        self._pending[id(obj)] = obj
        return obj

    def use(self, dtype: np.dtype) -> np.dtype:
        """``dtype`` is now part of an array or scalar: no later BUILD may change it."""
        if self._pending.get(id(dtype)) is dtype:
            del self._pending[id(dtype)]
        return dtype

    def find_class(self, module: str, name: str) -> Any:
        if "." in name:
            raise UnsafePickleError(f"refusing dotted global name {_text(module)}.{_text(name)}")
        obj = _ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"refusing to load global {_text(module)}.{_text(name)}")
        return obj

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if type(func) is not _Constructor:
            what = (f"{func.__module__}.{func.__qualname__}" if isinstance(func, type)
                    else f"a {type(func).__name__}")
            raise UnsafePickleError(f"refusing to call {_text(what)}")
        if type(args) is not tuple:
            raise pickle.UnpicklingError(f"REDUCE arguments are a {type(args).__name__}, not a tuple")
        self.stack[-1] = func.build(self, *args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if self._pending.get(id(inst)) is not inst:
            raise UnsafePickleError(f"refusing to set the state of a {_text(type(inst).__name__)}")
        del self._pending[id(inst)]
        if isinstance(inst, np.dtype):
            self._build_dtype(inst, state)
        else:
            self._build_array(inst, state)

    dispatch[pickle.BUILD[0]] = load_build

    @staticmethod
    def _build_dtype(dtype: np.dtype, state: Any) -> None:
        # numpy writes (3, byte order, None, None, None, -1, -1, 0) for numeric dtypes
        if (type(state) is not tuple or len(state) != 8 or type(state[0]) is not int or state[0] != 3
                or state[2] is not None or state[3] is not None or state[4] is not None
                or any(type(v) is not int or v != w for v, w in zip(state[5:], (-1, -1, 0)))):
            raise UnsafePickleError("refusing a dtype state other than a numeric type's byte order")
        order = state[1]
        if type(order) is not str or order not in (("<", ">") if dtype.itemsize > 1 else ("|",)):
            raise UnsafePickleError(f"refusing byte order {_text(order)} for {dtype}")
        dtype.__setstate__((3, order, None, None, None, -1, -1, 0))

    def _build_array(self, array: np.ndarray, state: Any) -> None:
        # numpy writes (1, shape, dtype, is_fortran, raw bytes)
        if type(state) is not tuple or len(state) != 5 or type(state[0]) is not int or state[0] != 1:
            raise pickle.UnpicklingError("array state is not (1, shape, dtype, fortran, data)")
        _, shape, dtype, fortran, data = state
        shape, dtype = _shape(shape), self.use(_numeric_dtype(dtype))
        if type(fortran) is not bool:
            raise pickle.UnpicklingError("array state: the Fortran flag is not a bool")
        _check_size(data, shape, dtype)
        array.__setstate__((1, shape, dtype, fortran, data))

    # containers: only the built-in ones are filled (the generic versions call whatever
    # append/extend/add/__setitem__ the object on the stack has)
    def load_append(self) -> None:
        value = self.stack.pop()
        self._target(list).append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._target(list).extend(items)

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(dict, OrderedDict)[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        target = self._target(dict, OrderedDict)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._target(set).update(items)

    def _target(self, *types: type) -> Any:
        target = self.stack[-1]
        if type(target) not in types:
            raise pickle.UnpicklingError(f"cannot add items to a {_text(type(target).__name__)}")
        return target

    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.ADDITEMS[0]] = load_additems

    def _refused(reason: str) -> Callable[["_RestrictedUnpickler"], None]:  # type: ignore[misc]
        def refuse(self: "_RestrictedUnpickler") -> None:
            raise UnsafePickleError(reason)

        return refuse

    for _op, _reason in (
        (pickle.INST, "refusing opcode INST (instantiates a class)"),
        (pickle.OBJ, "refusing opcode OBJ (instantiates a class)"),
        (pickle.NEWOBJ, "refusing opcode NEWOBJ (instantiates a class)"),
        (pickle.NEWOBJ_EX, "refusing opcode NEWOBJ_EX (instantiates a class)"),
        (pickle.EXT1, "refusing opcode EXT1 (copyreg extension registry)"),
        (pickle.EXT2, "refusing opcode EXT2 (copyreg extension registry)"),
        (pickle.EXT4, "refusing opcode EXT4 (copyreg extension registry)"),
        (pickle.PERSID, "refusing opcode PERSID (persistent ids)"),
        (pickle.BINPERSID, "refusing opcode BINPERSID (persistent ids)"),
    ):
        dispatch[_op[0]] = _refused(_reason)
    del _op, _reason, _refused


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only numeric numpy arrays/scalars/dtypes and plain containers
    (see the module docstring); anything else raises :class:`PoseFileError` naming the file."""
    path = Path(path)
    with open(path, "rb") as f:
        return load_pickle_bytes(f.read(), path)


def load_pickle_bytes(data: bytes, path: str | Path) -> Any:
    """:func:`load_pickle` for the bytes of ``path`` already read (``path`` names it in errors).

    For callers that must parse exactly the bytes they also hash (the packed cache)."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise PoseFileError(
            f"{path}: {exc}. Pose pickles may only hold numeric numpy arrays and plain lists/dicts; "
            "re-export the file with pickle.dump(numpy_array) (see docs/process_dataset.md)"
        ) from None
    except Exception as exc:  # hostile bytes can fail anywhere in the parser, with any type
        raise PoseFileError(f"{path}: not a readable pickle ({type(exc).__name__}: {_text(exc, 200)}); "
                            "the file is truncated or not a pickle — regenerate it") from None


def _stack_frames(obj: Any, path: str | Path) -> Any:
    """A list of per-frame arrays (or nested lists) stacked into one array, after the size
    check of :func:`_check_stacked_size`; anything else is returned as it is."""
    if isinstance(obj, list):
        _check_stacked_size(obj, path)
        try:
            obj = np.stack([np.asarray(f) for f in obj]) if obj else np.zeros((0,))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise PoseFileError(f"{path}: frames of different shapes ({_text(exc, 200)})") from None
        except MemoryError:
            raise PoseFileError(f"{path}: the frames do not fit in memory") from None
    return obj


def as_pose_array(obj: Any, path: str | Path) -> np.ndarray:
    """Turn an unpickled object into a pose array ``[T, V, C]`` and check it.

    Accepts an ndarray or a list of per-frame arrays (or of nested lists). Rejects non-numeric
    dtypes, wrong ranks, an empty time axis, no joints, more than :data:`MAX_SEQUENCE_FRAMES`
    frames and non-finite values, each with a message naming ``path``.
    """
    obj = _stack_frames(obj, path)
    if not isinstance(obj, np.ndarray):
        raise PoseFileError(f"{path}: expected a numpy array [T, V, 3], got {type(obj).__name__}")
    if obj.dtype.kind not in "fiu":
        raise PoseFileError(f"{path}: expected a numeric array, got dtype {obj.dtype}")
    if obj.ndim != 3 or obj.shape[-1] not in (2, 3):
        raise PoseFileError(
            f"{path}: expected shape [T, V, 3] (frames, joints, x/y/confidence), got {list(obj.shape)}"
        )
    if obj.shape[0] == 0:
        raise PoseFileError(f"{path}: empty sequence (0 frames); delete it or re-run the preprocessing")
    if obj.shape[1] == 0:
        raise PoseFileError(f"{path}: no joints (shape {list(obj.shape)}); a pose sequence is [T, V, C] with "
                            "V >= 1 joints: the file is corrupt or hostile — regenerate it")
    if obj.shape[0] > MAX_SEQUENCE_FRAMES:
        raise PoseFileError(_too_many_frames(path, obj.shape[0]))
    if obj.dtype.kind == "f" and not np.isfinite(obj).all():
        bad = np.argwhere(~np.isfinite(obj))[0]
        raise PoseFileError(
            f"{path}: non-finite value (NaN/inf) at frame {bad[0]}, joint {bad[1]}; "
            "clean the file (missing joints are stored as 0, 0, 0)"
        )
    return obj


#: Most numbers a list-of-frames pickle may stack into (2**24, 16.7 million: 128 MiB as
#: float64). A one-hour walk at 30 fps of 18 joints x 3 channels is 5.8 million.
MAX_SEQUENCE_VALUES = 2 ** 24
#: Most frames a sequence may have (a list of frames, or the T of an array): 9 hours at 30 fps.
MAX_SEQUENCE_FRAMES = 1_000_000


def _too_many_frames(path: str | Path, frames: int) -> str:
    return (f"{path}: {frames:,} frames (more than {MAX_SEQUENCE_FRAMES:,}, over 9 hours at 30 fps); no walk "
            "is that long: the file is corrupt or hostile — regenerate it")


def _check_stacked_size(frames: list, path: str | Path) -> None:
    """Refuse a list of more than :data:`MAX_SEQUENCE_FRAMES` frames, or of frames that would
    stack into more than :data:`MAX_SEQUENCE_VALUES` numbers, counted without building
    anything (shared objects are counted once per use, as stacking would copy them, but
    walked once)."""
    if len(frames) > MAX_SEQUENCE_FRAMES:
        raise PoseFileError(_too_many_frames(path, len(frames)))
    sizes: dict = {}

    def count(item: Any) -> int:
        key = id(item)
        if key not in sizes:
            if isinstance(item, np.ndarray):
                sizes[key] = int(item.size)
            elif type(item) in (list, tuple):
                sizes[key] = 0  # a list that contains itself (pickle can build one) ends the walk there
                sizes[key] = sum(count(x) for x in item)
            else:
                sizes[key] = 1
        return sizes[key]

    try:
        total = sum(count(frame) for frame in frames)
    except RecursionError:
        raise PoseFileError(f"{path}: lists nested thousands of levels deep; a pose sequence is frames of "
                            "joints of numbers: the file is corrupt or hostile") from None
    if total > MAX_SEQUENCE_VALUES:
        raise PoseFileError(f"{path}: its {len(frames)} frames would stack into {total:,} numbers (more than "
                            f"{MAX_SEQUENCE_VALUES:,}); no walk is that long: the file is corrupt or hostile")


#: Rank of a map sequence ``[T, C, H, W]`` (skeleton maps, silhouettes with a channel axis);
#: every other rank is read as a pose sequence ``[T, V, C]`` and checked as one.
MAP_SEQUENCE_RANK = 4


def as_sequence_array(obj: Any, path: str | Path) -> np.ndarray:
    """Turn an unpickled object into the array of one dataset sequence and check it.

    The array's rank decides what it is: 4-D is a map sequence ``[T, C, H, W]`` (e.g.
    SkeletonGait's uint8 ``[T, 2, 64, 64]`` skeleton maps), checked by
    :func:`as_map_array`; anything else must be a pose sequence and gets exactly the checks and
    errors of :func:`as_pose_array`.
    """
    obj = _stack_frames(obj, path)
    if isinstance(obj, np.ndarray) and obj.ndim == MAP_SEQUENCE_RANK:
        return as_map_array(obj, path)
    return as_pose_array(obj, path)


def as_map_array(obj: Any, path: str | Path) -> np.ndarray:
    """Check a map sequence ``[T, C, H, W]`` of numbers (any int, uint or float dtype).

    Rejects non-numeric dtypes, other ranks, an empty axis, more than
    :data:`MAX_SEQUENCE_FRAMES` frames and non-finite values, each with a message naming
    ``path``. Its size needs no further bound: an array's bytes are in the file (the
    unpickler checks that they match its shape), and a list of frames is bounded by
    :data:`MAX_SEQUENCE_VALUES` before it is stacked.
    """
    obj = _stack_frames(obj, path)
    if not isinstance(obj, np.ndarray):
        raise PoseFileError(f"{path}: expected a numpy array [T, C, H, W], got {type(obj).__name__}")
    if obj.dtype.kind not in "fiu":
        raise PoseFileError(f"{path}: expected a numeric map array, got dtype {obj.dtype}")
    if obj.ndim != MAP_SEQUENCE_RANK:
        raise PoseFileError(f"{path}: expected a map sequence [T, C, H, W] (frames, channels, height, width), "
                            f"got shape {list(obj.shape)}")
    if obj.shape[0] == 0:
        raise PoseFileError(f"{path}: empty sequence (0 frames); delete it or re-run the preprocessing")
    if 0 in obj.shape[1:]:
        raise PoseFileError(f"{path}: a map sequence [T, C, H, W] with an empty axis (shape {list(obj.shape)}); "
                            "the file is corrupt or hostile — regenerate it")
    if obj.shape[0] > MAX_SEQUENCE_FRAMES:
        raise PoseFileError(_too_many_frames(path, obj.shape[0]))
    if obj.dtype.kind == "f" and not np.isfinite(obj).all():
        bad = np.argwhere(~np.isfinite(obj))[0]
        raise PoseFileError(f"{path}: non-finite value (NaN/inf) at frame {bad[0]}, channel {bad[1]}, pixel "
                            f"({bad[2]}, {bad[3]}); regenerate the maps")
    return obj


def load_sequence(path: str | Path) -> np.ndarray:
    """Load and check one dataset pickle: a pose sequence ``[T, V, C]`` or a map sequence
    ``[T, C, H, W]`` (told apart by rank, :func:`as_sequence_array`), dtype as stored."""
    return as_sequence_array(load_pickle(path), path)


def load_sequence_bytes(data: bytes, path: str | Path) -> np.ndarray:
    """:func:`load_sequence` for the bytes of ``path`` already read."""
    return as_sequence_array(load_pickle_bytes(data, path), path)


def load_pose(path: str | Path) -> np.ndarray:
    """Load and check one pose pickle ``[T, V, C]`` (dtype as stored)."""
    return as_pose_array(load_pickle(path), path)


def load_pose_bytes(data: bytes, path: str | Path) -> np.ndarray:
    """:func:`load_pose` for the bytes of ``path`` already read."""
    return as_pose_array(load_pickle_bytes(data, path), path)


def default_file_mode() -> int:
    """The permissions ``open()`` would give a new file (0o666 minus the process umask).

    ``tempfile.mkstemp`` creates files readable by their owner only; data meant to be shared
    (a converted dataset on a cluster) should get the usual permissions instead.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(
    path: str | Path, write: Callable[[Any], None], mode: int | None = None, fsync: bool = True
) -> None:
    """Write a file by calling ``write(fileobj)`` on a temp file, fsync, then rename.

    Either the old content or the complete new content is at ``path``, never a mix. ``mode``
    sets the file's permissions before the rename (default: what ``open()`` would give a new
    file, not the temp file's owner-only 0o600, so checkpoints and datasets can be shared).
    ``fsync=False`` skips the flush to disk: the rename still guarantees that a killed process
    leaves no partial file, but a machine crash may (for bulk writes of many small files, where
    one fsync each dominates the run time).
    """
    path = Path(path)
    mode = default_file_mode() if mode is None else mode
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_pickle(path: str | Path, obj: Any, mode: int | None = None, fsync: bool = True) -> None:
    """Atomically pickle ``obj`` to ``path`` (protocol 4, readable by every supported Python);
    ``mode`` and ``fsync`` as in :func:`atomic_write`."""
    atomic_write(path, lambda f: pickle.dump(obj, f, protocol=4), mode=mode, fsync=fsync)
