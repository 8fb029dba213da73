"""Fuzzing the restricted unpickler (:mod:`fastposegait.data.io`) with hostile pickles.

The pickles are assembled from raw opcodes (not ``pickle.dumps`` of dangerous objects), so they
can do what no pickler writes: dotted global names under every allowed module (attribute walks
such as ``numpy.dtypes._add_dtype_helper.__globals__...``), the allowed globals called or
instantiated with attacker-chosen arguments (REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX), code
execution globals (``os.system``, ``builtins.eval``, ``subprocess``, ...) through GLOBAL
(protocols 0-3) and STACK_GLOBAL (protocols 4-5), the copyreg extension registry (EXT1/2/4),
persistent ids, and random mutations of legitimate and hostile pickles. Every payload that could
run code tries to create a marker file. Each family is generated from a fixed seed (the same
cases on every run) and the whole run takes a few seconds.

What must hold for every case: the marker is never created; ``load_pose`` raises
:class:`PoseFileError` (one line, naming the file) for every hostile pickle, and for a mutated
legitimate pickle either raises it or returns a valid pose array; ``load_pickle`` raises
:class:`PoseFileError` or returns only plain data (numeric numpy arrays/scalars/dtypes and
built-in containers; an allowed constructor given harmless arguments, e.g. ``complex(1, 2)``,
legitimately gives a value). Never another exception type, never a crash.

The end-to-end tests put the hand-built exploit (three REDUCEs reaching ``eval`` from
``numpy.dtypes._add_dtype_helper``) in a dataset and read it through :class:`PoseDataset`
(packed cache, in-memory cache, no cache) and ``python -m fastposegait.converters validate``.
"""
from __future__ import annotations

import collections
import copyreg
import io
import os
import pickle
import random
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np
import pytest

from fastposegait.data import io as pose_io
from fastposegait.data.dataset import PoseDataset
from fastposegait.data.io import PoseFileError, load_pickle, load_pose

REPO = Path(__file__).resolve().parents[2]
SEED = 20240611


# ---------------------------------------------------------------------------- opcode assembly

class G(NamedTuple):
    """A global ``module.name``: GLOBAL below protocol 4, STACK_GLOBAL from 4 (or ``style``)."""
    module: str
    name: str
    style: str = ""


class Call(NamedTuple):
    """``func(*args)`` through REDUCE."""
    func: Any
    args: tuple


class Build(NamedTuple):
    """``obj`` then ``state`` then BUILD."""
    obj: Any
    state: Any


class Inst(NamedTuple):
    """MARK args INST module name (protocol 0's instantiation)."""
    module: str
    name: str
    args: tuple


class Obj(NamedTuple):
    """MARK cls args OBJ."""
    cls: Any
    args: tuple


class NewObj(NamedTuple):
    """cls args NEWOBJ (``cls.__new__(cls, *args)``)."""
    cls: Any
    args: tuple


class NewObjEx(NamedTuple):
    """cls args kwargs NEWOBJ_EX."""
    cls: Any
    args: tuple
    kwargs: dict


class Raw(NamedTuple):
    """Opcodes inserted as they are."""
    data: bytes


def _ascii_line(text: str) -> bytes:
    return text.encode("utf-8") + b"\n"


class Assembler:
    """Turns the nodes above (and plain values) into the opcodes of one protocol."""

    def __init__(self, proto: int) -> None:
        self.proto = proto

    def program(self, value: Any) -> bytes:
        head = bytes([0x80, self.proto]) if self.proto >= 2 else b""
        return head + self.push(value) + b"."

    def push(self, v: Any) -> bytes:  # noqa: C901 - one branch per kind of value
        p = self.proto
        if isinstance(v, Raw):
            return v.data
        if isinstance(v, G):
            style = v.style or ("global" if p < 4 else "stack")
            if style == "global":
                return b"c" + _ascii_line(v.module) + _ascii_line(v.name)
            return self.push(v.module) + self.push(v.name) + b"\x93"
        if isinstance(v, Call):
            return self.push(v.func) + self.push(tuple(v.args)) + b"R"
        if isinstance(v, Build):
            return self.push(v.obj) + self.push(v.state) + b"b"
        if isinstance(v, Inst):
            return b"(" + b"".join(map(self.push, v.args)) + b"i" + _ascii_line(v.module) + _ascii_line(v.name)
        if isinstance(v, Obj):
            return b"(" + self.push(v.cls) + b"".join(map(self.push, v.args)) + b"o"
        if isinstance(v, NewObj):
            return self.push(v.cls) + self.push(tuple(v.args)) + b"\x81"
        if isinstance(v, NewObjEx):
            return self.push(v.cls) + self.push(tuple(v.args)) + self.push(dict(v.kwargs)) + b"\x92"
        if v is None:
            return b"N"
        if isinstance(v, bool):
            return (b"\x88" if v else b"\x89") if p >= 2 else (b"I01\n" if v else b"I00\n")
        if isinstance(v, int):
            if p >= 1 and 0 <= v < 256:
                return b"K" + bytes([v])
            if p >= 1 and -2 ** 31 <= v < 2 ** 31:
                return b"J" + struct.pack("<i", v)
            if p >= 2:
                raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
                if len(raw) < 256:
                    return b"\x8a" + bytes([len(raw)]) + raw
                return b"\x8b" + struct.pack("<i", len(raw)) + raw
            return b"L%dL\n" % v if abs(v) >= 2 ** 31 else b"I%d\n" % v
        if isinstance(v, float):
            return b"G" + struct.pack(">d", v) if p >= 1 else b"F" + repr(v).encode() + b"\n"
        if isinstance(v, str):
            if p == 0:
                esc = (v.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
                       .replace("\r", "\\u000d").replace("\x1a", "\\u001a"))
                return b"V" + esc.encode("raw-unicode-escape") + b"\n"
            data = v.encode("utf-8", "surrogatepass")
            if p >= 4 and len(data) < 256:
                return b"\x8c" + bytes([len(data)]) + data
            return b"X" + struct.pack("<I", len(data)) + data
        if isinstance(v, (bytes, bytearray)):
            if isinstance(v, bytearray) and p >= 5:
                return b"\x96" + struct.pack("<Q", len(v)) + bytes(v)
            if p >= 3:
                size = bytes([len(v)]) if len(v) < 256 else struct.pack("<I", len(v))
                body = (b"C" if len(v) < 256 else b"B") + size + bytes(v)
            else:  # what pickle writes below protocol 3
                body = self.push(Call(G("_codecs", "encode"), (bytes(v).decode("latin-1"), "latin1")))
            return self.push(Call(G("builtins", "bytearray"), (Raw(body),))) if isinstance(v, bytearray) else body
        if isinstance(v, tuple):
            return b"(" + b"".join(map(self.push, v)) + b"t"
        if isinstance(v, list):
            return b"(" + b"".join(map(self.push, v)) + b"l"
        if isinstance(v, dict):
            return b"(" + b"".join(self.push(k) + self.push(x) for k, x in v.items()) + b"d"
        raise TypeError(f"cannot assemble {type(v).__name__}")


def assemble(value: Any, proto: int) -> bytes:
    return Assembler(proto).program(value)


# ---------------------------------------------------------------------------- payloads

def marker_actions(marker: Path) -> List[Any]:
    """Calls that each create ``marker`` when an unrestricted unpickler runs them."""
    m = str(marker)
    code = f"open({m!r}, 'w').close()"
    shell = f"touch {shlex.quote(m)}"
    imported_os = Call(G("builtins", "__import__"), ("os",))
    return [
        Call(G("os", "system"), (shell,)),
        Call(G("posix", "system"), (shell,)),
        Call(G("nt", "system"), (shell,)),
        Call(G("builtins", "eval"), (code,)),
        Call(G("__builtin__", "eval"), (code,)),
        Call(G("builtins", "exec"), (code,)),
        Call(G("builtins", "open"), (m, "w")),
        Call(G("io", "open"), (m, "w")),
        Call(G("_io", "open"), (m, "w")),
        Call(G("codecs", "open"), (m, "w")),
        Call(G("subprocess", "call"), (["touch", m],)),
        Call(G("subprocess", "check_call"), (["touch", m],)),
        Call(G("subprocess", "run"), (["touch", m],)),
        Call(G("subprocess", "Popen"), (["touch", m],)),
        Call(G("subprocess", "getoutput"), (shell,)),
        Call(G("os", "popen"), (shell,)),
        Call(G("timeit", "timeit"), (code, "pass", None, 1)),
        Call(G("runpy", "_run_code"), (Call(G("builtins", "compile"), (code, "x", "exec")), {})),
        Call(G("numpy.testing._private.utils", "runstring"), (code, {})),
        Call(G("pickle", "loads"), (assemble(Call(G("builtins", "eval"), (code,)), 3),)),
        Call(G("_pickle", "loads"), (assemble(Call(G("builtins", "eval"), (code,)), 3),)),
        Call(Call(G("builtins", "getattr"), (imported_os, "system")), (shell,)),
        Call(G("pathlib", "Path.touch"), (Call(G("pathlib", "Path"), (m,)),)),
        Call(G("builtins", "exec"), (f"import os; os.system({shell!r})",)),
    ]


def dtype_helper_exploit(code: str, module: str = "numpy.dtypes", head: str = "_add_dtype_helper") -> Any:
    """The exploit of the old allow-list (any name under ``numpy.dtypes``): three REDUCEs.

    ``dict.get`` (reached as ``<head>.__globals__.__class__.get``) applied to the function's
    globals gives the builtins dict, applied to that gives ``eval``, which runs ``code``."""
    get = G(module, f"{head}.__globals__.__class__.get", "stack")
    builtins_dict = Call(get, (G(module, f"{head}.__globals__", "stack"), "__builtins__"))
    return Call(Call(get, (builtins_dict, "eval")), (code,))


def exploit_bytes(marker: Path) -> bytes:
    return assemble(dtype_helper_exploit(f"open({str(marker)!r}, 'w').close()"), 4)


# ---------------------------------------------------------------------------- the oracle

PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray)


def assert_plain(obj: Any, seen: Optional[Dict[int, bool]] = None) -> None:
    """``obj`` holds only what a pose pickle may: numeric numpy values and built-in containers
    (and the harmless values the allow-list resolves: ``numpy.ndarray``, dtype classes)."""
    seen = {} if seen is None else seen
    if id(obj) in seen:
        return
    seen[id(obj)] = True
    if type(obj) in (list, tuple, set, frozenset):
        for item in obj:
            assert_plain(item, seen)
    elif type(obj) in (dict, collections.OrderedDict):
        for key, value in obj.items():
            assert_plain(key, seen)
            assert_plain(value, seen)
    elif isinstance(obj, (np.ndarray, np.generic, np.dtype)):
        dtype = obj if isinstance(obj, np.dtype) else obj.dtype
        assert type(obj) is np.ndarray or not isinstance(obj, np.ndarray), type(obj)
        assert dtype.kind in "biufc" and not dtype.hasobject and dtype.names is None and dtype.flags == 0
    elif isinstance(obj, type):
        assert obj is np.ndarray or (issubclass(obj, np.dtype) and obj.__module__ == "numpy.dtypes"), obj
    elif type(obj).__name__ == "_Constructor" and type(obj).__module__ == pose_io.__name__:
        pass  # a reference to an allowed constructor, as a value
    else:
        assert type(obj) in PLAIN_TYPES, type(obj)


class Outcome(NamedTuple):
    pose: str  # "refused" (unsafe), "unreadable", "bad pose" (readable, not a pose) or "loaded"
    plain: str  # load_pickle: "error" or "value"


def classify(message: str) -> str:
    if "refusing" in message:
        return "refused"
    if "not a readable pickle" in message:
        return "unreadable"
    return "bad pose"


class Runner:
    """Writes each case to one file, loads it both ways and checks the oracle."""

    def __init__(self, tmp_path: Path, marker: Path) -> None:
        self.path = tmp_path / "case.pkl"
        self.marker = marker
        self.counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def run(self, family: str, data: bytes, hostile: bool = True, label: str = "") -> Outcome:
        self.path.write_bytes(data)
        where = f"{family} case {label or data[:120]!r}"
        try:
            arr = load_pose(self.path)
        except PoseFileError as exc:
            self.check_marker(where, "load_pose")
            message = str(exc)
            assert str(self.path) in message and "\n" not in message and "\r" not in message, (where, message)
            pose = classify(message)
        except BaseException as exc:  # noqa: B902 - anything else is the bug this test looks for
            self.check_marker(where, "load_pose")
            raise AssertionError(f"{where}: load_pose raised {type(exc).__name__}: {exc}") from exc
        else:
            self.check_marker(where, "load_pose")
            assert not hostile, f"{where}: a hostile pickle loaded as a pose array"
            assert isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.dtype.kind in "fiu", where
            pose = "loaded"
        try:
            value = load_pickle(self.path)
        except PoseFileError:
            plain = "error"
        except BaseException as exc:  # noqa: B902
            self.check_marker(where, "load_pickle")
            raise AssertionError(f"{where}: load_pickle raised {type(exc).__name__}: {exc}") from exc
        else:
            self.check_marker(where, "load_pickle")
            assert_plain(value)
            plain = "value"
        self.check_marker(where, "load_pickle")
        self.counts[family][pose] += 1
        return Outcome(pose, plain)

    def check_marker(self, where: str, reader: str) -> None:
        assert not self.marker.exists(), f"{where}: {reader} ran the payload (the marker file exists)"


# ---------------------------------------------------------------------------- the families

def allowed_pairs() -> List[Tuple[str, str]]:
    return sorted(pose_io._ALLOWED_GLOBALS)


def allowed_modules() -> List[str]:
    return sorted({m for m, _ in allowed_pairs()} | {"numpy", "numpy.dtypes", "builtins", "__builtin__",
                                                     "_codecs", "collections"})


# attribute walks that lead from a function, class or module to eval / the builtins
TAILS = ("__builtins__.get", "__globals__.get", "__globals__.__class__.get", "__globals__.__builtins__.get",
         "__init__.__globals__.get", "__class__.__base__.__subclasses__", "__call__.__self__.eval",
         "__dict__.get", "__self__.eval", "__reduce_ex__", "__module__.__class__.join", "__class__.__getattribute__")
HEADS = ("__builtins__", "_add_dtype_helper", "__loader__", "__spec__", "__dict__", "sys", "os", "eval")


def family_dotted(rng: random.Random, marker: Path) -> Iterator[Tuple[bytes, str]]:
    """Dotted names under every allowed module (and prefix), walking to eval, with GLOBAL and
    STACK_GLOBAL, in the shapes the real exploits take."""
    code = f"open({str(marker)!r}, 'w').close()"
    for module in allowed_modules():
        heads = sorted({n for m, n in allowed_pairs() if m == module} | set(HEADS))
        for head in heads:
            for tail in TAILS:
                name = f"{head}.{tail}"
                for proto in rng.sample(range(6), 2):
                    style = rng.choice(["global", "stack"])
                    shapes = [
                        Call(Call(G(module, name, style), ("eval",)), (code,)),  # a bound get
                        Call(G(module, name, style), (code,)),
                        dtype_helper_exploit(code, module, head),
                        Call(Call(G(module, name, style), (G(module, f"{head}.__globals__", style), "__builtins__")),
                             ("eval",)),
                    ]
                    yield assemble(rng.choice(shapes), proto), f"{module}:{name} p{proto}"
        for name in ("", ".", "..", "a..b", ".eval", "eval.", "__builtins__..get"):
            for proto in (0, 4):
                yield assemble(Call(G(module, name), (code,)), proto), f"{module}:{name!r}"


def hostile_args(rng: random.Random, marker: Path, actions: List[Any]) -> Any:
    """One attacker-chosen argument."""
    pool = [
        0, -1, 1, 2 ** 31 - 1, 2 ** 62, 2 ** 70, -2 ** 63, 1.5, float("nan"), None, True, False,
        "O", "O8", "|O", "V8", "U2", "S2", "M8", "f8", "<f8", "b", "latin1", "rot13", "hex", "zlib", "utf-8",
        "__import__('os').system('true')", f"open({str(marker)!r}, 'w').close()", "x" * 300,
        b"O", b"b", b"\x00" * 8, b"\x41" * 16, bytearray(b"\x00" * 8),
        (0,), (2 ** 40,), (3, 17, 3), (-1,), ("a", "O"), [("a", "O")], [1, 2], {"a": 1}, {"__code__": None},
        G("numpy", "ndarray"), G("numpy", "dtype"), rng.choice(actions),
    ]
    return rng.choice(pool)


def numpy_states(rng: random.Random, marker: Path, actions: List[Any]) -> List[Any]:
    """BUILD states an attacker would give a dtype or an array."""
    evil = rng.choice(actions)
    o8 = Call(G("numpy", "dtype"), ("O8", False, True))
    f8 = Call(G("numpy", "dtype"), ("f8", False, True))
    return [
        (3, "<", None, None, None, -1, -1, 0x3F),  # object flags on a float dtype
        (3, "<", None, None, None, -1, -1, 0x01),
        (3, "<", None, ("a",), {"a": (o8, 0)}, 8, 1, 0),  # fields holding an object
        (3, "<", (o8, (2,)), None, None, 16, 8, 0),  # an object subarray
        (3, "|", None, None, None, 1, 1, 0),
        (4, "<", None, None, None, -1, -1, 0, {"m": evil}),  # version 4 carries metadata
        (1, (2,), o8, False, [evil, evil]),  # an object array whose items are payloads
        (1, (2,), f8, False, b"\x41" * 16),
        (1, (2 ** 40,), f8, False, b"\x00" * 8),
        (1, (2,), f8, True, [1.0, 2.0]),
        ((2,), f8, False, b"\x00" * 16),  # the old 4-tuple form
        {"__class__": G("numpy", "ndarray")},
        ({}, {"__setstate__": evil}),
        (None, {"__call__": evil, "__defaults__": (evil,)}),
        evil,
    ]


def family_allowed_globals(rng: random.Random, marker: Path) -> Iterator[Tuple[bytes, str]]:
    """Each allowed global used with every instantiating opcode and attacker-chosen arguments."""
    actions = marker_actions(marker)
    for module, name in allowed_pairs():
        glob = G(module, name)
        for _ in range(3):
            nargs = rng.randrange(0, 5)
            args = tuple(hostile_args(rng, marker, actions) for _ in range(nargs))
            state = rng.choice(numpy_states(rng, marker, actions))
            proto = rng.randrange(6)
            cases = {
                "REDUCE": Call(glob, args),
                "REDUCE+BUILD": Build(Call(glob, args), state),
                "BUILD": Build(glob, state),
                "INST": Inst(module, name, args),
                "OBJ": Obj(glob, args),
                "NEWOBJ": NewObj(glob, args),
                "NEWOBJ_EX": NewObjEx(glob, args, {"buffer": b"\x00" * 8, "dtype": "O"}),
            }
            for op, value in cases.items():
                yield assemble(value, proto), f"{module}.{name} {op} p{proto}"
    # the numpy reconstructors in the shapes numpy writes, with one part made hostile
    for core in ("numpy.core", "numpy._core"):
        rec = G(f"{core}.multiarray", "_reconstruct")
        frombuffer = G(f"{core}.numeric", "_frombuffer")
        scalar = G(f"{core}.multiarray", "scalar")
        for spec in ("O8", "V8", "U2", "S2", "M8", "m8", "f8", "i4"):
            dtype = Call(G("numpy", "dtype"), (spec, False, True))
            for state in numpy_states(rng, marker, actions):
                placeholder = Call(rec, (G("numpy", "ndarray"), (0,), b"b"))
                yield assemble(Build(placeholder, state), 4), f"_reconstruct {state!r:.60}"
                yield assemble(Build(dtype, state), 2), f"dtype {spec} BUILD"
            for shape in ((0,), (2 ** 40,), (2, 2), (-1,)):
                for sub in (G("numpy", "ndarray"), G("numpy", "dtype"), rng.choice(actions)):
                    yield assemble(Call(rec, (sub, shape, spec.encode())), 3), f"_reconstruct {spec} {shape}"
            for buf in (b"\x00" * 8, bytearray(b"\x41" * 16), b""):
                yield assemble(Call(frombuffer, (buf, dtype, (2, 1), "C")), 5), f"_frombuffer {spec}"
                yield assemble(Call(scalar, (dtype, buf)), 4), f"scalar {spec}"
            yield assemble(Call(scalar, (dtype, rng.choice(actions))), 4), f"scalar {spec} evil"
        yield assemble(Call(frombuffer, (b"\x00" * 24, Call(G("numpy", "dtype"), ("f8", False, True)), (1, 1, 3),
                                         "K")), 5), "_frombuffer order"


def family_code_globals(rng: random.Random, marker: Path) -> Iterator[Tuple[bytes, str]]:
    """Code-running globals through GLOBAL/STACK_GLOBAL, INST, OBJ and NEWOBJ, protocols 0-5,
    also nested inside legitimate-looking containers and arrays."""
    for action in marker_actions(marker):
        func = action.func if isinstance(action.func, G) else None
        for proto in range(6):
            yield assemble(action, proto), f"{action.func!r:.60} p{proto}"
            yield assemble([1.0, {"k": action}], proto), f"nested {action.func!r:.40} p{proto}"
            if func is not None:
                yield assemble(Call(G(func.module, func.name, "global"), action.args), proto), f"GLOBAL p{proto}"
                yield assemble(Inst(func.module, func.name, action.args), proto), f"INST p{proto}"
                yield assemble(Obj(func, action.args), proto), f"OBJ p{proto}"
                if proto >= 2:
                    yield assemble(NewObj(func, action.args), proto), f"NEWOBJ p{proto}"
                if proto >= 4:
                    stack_global = Call(G(func.module, func.name, "stack"), action.args)
                    yield assemble(stack_global, proto), f"STACK_GLOBAL p{proto}"
                    yield assemble(NewObjEx(func, action.args, {}), proto), f"NEWOBJ_EX p{proto}"
        # after a legitimate array, and as an array's state
        arr = pickle.dumps(np.ones((2, 17, 3)), protocol=2)[:-1]  # without STOP
        yield arr + Assembler(2).push(action) + b"0.", "array then payload"
        yield assemble(Build(Call(G("numpy.core.multiarray", "_reconstruct"), (G("numpy", "ndarray"), (0,), b"b")),
                             (1, (1,), action, False, b"\x00" * 8)), 2), "payload as the dtype"


EXT_TARGETS = (("posix", "system"), ("os", "system"), ("builtins", "eval"), ("builtins", "exec"),
               ("numpy", "dtype"), ("builtins", "set"))


def family_extensions(rng: random.Random, marker: Path) -> Iterator[Tuple[bytes, str]]:
    """EXT1/EXT2/EXT4 with the codes registered (here, for the test) to code-running globals
    and to allowed ones, and with codes nobody registered."""
    shell = f"touch {shlex.quote(str(marker))}"
    code = f"open({str(marker)!r}, 'w').close()"
    for i, (module, name) in enumerate(EXT_TARGETS):
        for op, width, number in ((b"\x82", 1, 0xE0 + i), (b"\x83", 2, 0xE0E0 + i), (b"\x84", 4, 0x7FE0E0E0 + i)):
            ext = Raw(op + number.to_bytes(width, "little"))
            arg = shell if name == "system" else code
            for proto in (0, 2, 3, 4, 5):
                for value in (Call(ext, (arg,)), ext, [Call(ext, (arg,))], NewObj(ext, (arg,))):
                    yield assemble(value, proto), f"EXT{width} -> {module}.{name} p{proto}"


def registered_extensions() -> List[Tuple[str, str, int]]:
    out = []
    for i, (module, name) in enumerate(EXT_TARGETS):
        out += [(module, name, 0xE0 + i), (module, name, 0xE0E0 + i), (module, name, 0x7FE0E0E0 + i)]
    return out


def family_persistent_ids(rng: random.Random, marker: Path) -> Iterator[Tuple[bytes, str]]:
    actions = marker_actions(marker)
    for proto in range(6):
        for pid in ("0", "posix.system", str(marker), "x" * 200, "\u00e9"):
            head = bytes([0x80, proto]) if proto >= 2 else b""
            yield head + b"P" + pid.encode() + b"\n.", f"PERSID {pid[:20]} p{proto}"
        for value in (0, str(marker), ("posix", "system"), rng.choice(actions), [G("numpy", "ndarray")]):
            a = Assembler(proto)
            head = bytes([0x80, proto]) if proto >= 2 else b""
            yield head + a.push(value) + b"Q.", f"BINPERSID {value!r:.40} p{proto}"
            yield head + a.push(Call(Raw(a.push(value) + b"Q"), ("x",))) + b".", f"BINPERSID call p{proto}"


def legitimate_seeds() -> List[bytes]:
    rng = np.random.default_rng(SEED)
    pose = rng.normal(size=(4, 17, 3)) * 100
    seeds = []
    for proto in range(6):
        for arr in (pose, pose.astype(np.float32), pose.astype(">f8"), np.asfortranarray(pose.astype(np.float16)),
                    pose.astype(np.int32)):
            seeds.append(pickle.dumps(arr, protocol=proto))
        seeds.append(pickle.dumps([f for f in pose.astype(np.float32)], protocol=proto))
        seeds.append(pickle.dumps({"a": pose[:2], "b": [1, 2.5, (3, "x")], "s": {1}, "c": 1j}, protocol=proto))
    return seeds


OPCODE_BYTES = b"cR\x93b\x81\x92io\x82\x83\x84PQ(t\x85\x86\x87l]}d\x8c\x94qh.0"


def mutate(rng: random.Random, data: bytes, fragments: List[bytes]) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if kind == 0 and data:  # flip bits of one byte
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:  # a random byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 2:  # an opcode byte
            data[pos:pos] = bytes([rng.choice(OPCODE_BYTES)])
        elif kind == 3:  # delete a run
            del data[pos:pos + rng.randint(1, 8)]
        elif kind == 4:  # truncate
            del data[pos:]
        else:  # splice in a fragment of a hostile pickle
            frag = rng.choice(fragments)
            start = rng.randrange(len(frag))
            data[pos:pos] = frag[start:start + rng.randint(1, 40)]
    return bytes(data)


def family_mutations(rng: random.Random, marker: Path, hostile: bool) -> Iterator[Tuple[bytes, str]]:
    """Random byte flips, insertions, deletions, truncations and splices of legitimate pickles
    (which may still load) or of hostile ones (which must not)."""
    code = f"open({str(marker)!r}, 'w').close()"
    hostile_seeds = [exploit_bytes(marker)] + [assemble(a, p) for a in marker_actions(marker)[:8] for p in (0, 2, 4)]
    hostile_seeds.append(assemble(dtype_helper_exploit(code, head="_add_dtype_helper"), 5))
    seeds = hostile_seeds if hostile else legitimate_seeds()
    rounds = 20 if hostile else 60
    for i, seed in enumerate(seeds):
        for j in range(rounds):
            yield mutate(rng, seed, hostile_seeds), f"seed {i} mutation {j}"


FAMILIES: Dict[str, Callable[[random.Random, Path], Iterator[Tuple[bytes, str]]]] = {
    "dotted names": family_dotted,
    "allowed globals x opcodes": family_allowed_globals,
    "code-running globals": family_code_globals,
    "EXT1/2/4": family_extensions,
    "PERSID/BINPERSID": family_persistent_ids,
    "mutated hostile": lambda rng, marker: family_mutations(rng, marker, hostile=True),
    "mutated legitimate": lambda rng, marker: family_mutations(rng, marker, hostile=False),
}
MIN_CASES = {"dotted names": 1000, "allowed globals x opcodes": 1000, "code-running globals": 400,
             "EXT1/2/4": 300, "PERSID/BINPERSID": 50, "mutated hostile": 400, "mutated legitimate": 1500}


@pytest.fixture
def extensions():
    """The EXT codes of EXT_TARGETS registered in copyreg's extension registry, as an attacker
    would hope some library did; removed afterwards."""
    added = []
    for module, name, code in registered_extensions():
        if (module, name) in copyreg._extension_registry or code in copyreg._inverted_registry:
            continue
        copyreg.add_extension(module, name, code)
        added.append((module, name, code))
    yield
    for module, name, code in added:
        copyreg.remove_extension(module, name, code)


def run_families(tmp_path: Path) -> Tuple[Dict[str, collections.Counter], float]:
    marker = tmp_path / "PWNED"
    runner = Runner(tmp_path, marker)
    start = time.perf_counter()
    for family, generate in FAMILIES.items():
        rng = random.Random(f"{SEED}-{family}")
        hostile = family != "mutated legitimate"
        for data, label in generate(rng, marker):
            runner.run(family, data, hostile=hostile, label=label)
    assert not marker.exists()
    return runner.counts, time.perf_counter() - start


def test_hostile_pickles_never_run_code_and_always_fail_cleanly(tmp_path, extensions):
    counts, seconds = run_families(tmp_path)
    summary = {family: dict(c) for family, c in counts.items()}
    for family, minimum in MIN_CASES.items():
        assert sum(counts[family].values()) >= minimum, (family, summary)
    # the exploits are refused by the allow-list itself, not by a later shape check
    for family in ("dotted names", "code-running globals", "EXT1/2/4", "PERSID/BINPERSID"):
        assert set(counts[family]) == {"refused"}, (family, summary)
    # some mutated legitimate pickles still load (a flipped data byte), most do not
    assert counts["mutated legitimate"]["loaded"] > 0 and counts["mutated legitimate"]["unreadable"] > 0
    total = sum(sum(c.values()) for c in counts.values())
    print(f"\n{total} cases in {seconds:.2f} s: {summary}")


def test_the_generated_payloads_are_live(tmp_path):
    """The payloads really run code under an unrestricted unpickler (so the test above would
    notice a loader that let them through)."""
    marker = tmp_path / "LIVE"
    code = f"open({str(marker)!r}, 'w').close()"
    for payload in (assemble(Call(G("builtins", "eval"), (code,)), proto) for proto in range(6)):
        pickle._Unpickler(io.BytesIO(payload)).load()
        assert marker.exists()
        marker.unlink()
    if not hasattr(getattr(np, "dtypes", None), "_add_dtype_helper"):
        pytest.skip("this numpy has no numpy.dtypes._add_dtype_helper (numpy < 1.25)")
    data = exploit_bytes(marker)
    assert len(data) < 300  # a few hundred bytes
    pickle.loads(data)  # the C unpickler follows the dotted names (protocol 4)
    assert marker.exists()


# ---------------------------------------------------------------------------- end to end

def exploit_dataset(tmp_path: Path, marker: Path) -> Tuple[Path, Path, Path]:
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    for subject in ("001", "002"):
        for view in ("000", "090"):
            folder = root / subject / "nm-01" / view
            folder.mkdir(parents=True)
            (folder / f"{view}.pkl").write_bytes(pickle.dumps(rng.normal(size=(8, 17, 3)), protocol=4))
    evil = root / "002" / "nm-01" / "090" / "090.pkl"
    evil.write_bytes(exploit_bytes(marker))
    partition = tmp_path / "partition.json"
    partition.write_text('{"TRAIN_SET": ["001", "002"], "TEST_SET": ["001", "002"]}')
    return root, partition, evil


@pytest.mark.parametrize("cache", [True, False, "memory"])
def test_exploit_in_a_dataset_is_refused_by_the_loader(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    marker = tmp_path / "PWNED"
    root, partition, evil = exploit_dataset(tmp_path, marker)
    with pytest.raises(PoseFileError) as info:
        try:
            dataset = PoseDataset(root, partition, training=True, cache=cache, cache_dir=tmp_path / "cache")
            for i in range(len(dataset)):
                dataset.load(i)
        finally:
            assert not marker.exists(), "the exploit ran"
    message = str(info.value)
    assert str(evil) in message and "refusing dotted global name numpy.dtypes._add_dtype_helper" in message
    assert "\n" not in message


def test_exploit_in_a_dataset_is_one_line_of_validate(tmp_path):
    marker = tmp_path / "PWNED"
    root, _, evil = exploit_dataset(tmp_path, marker)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "fastposegait.converters", "validate", "--input", str(root)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert not marker.exists(), "the exploit ran"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if str(evil) in line]
    assert len(lines) == 1 and "refusing dotted global name" in lines[0], proc.stdout + proc.stderr
