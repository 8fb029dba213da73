"""Reading checkpoints whose scheduler state torch before 2.2 pickled with objects in it.

Before torch 2.2, ``OneCycleLR.state_dict()`` was the scheduler's ``__dict__`` without the
optimizer, and so held ``anneal_func``: the bound method ``self._annealing_cos`` (or
``_annealing_linear``). Pickling it wrote ``builtins.getattr(<the OneCycleLR object>,
'_annealing_cos')``, and with that object its whole ``__dict__``: the optimizer object
(``torch.optim.adam.Adam``, ...), whose own state holds a ``collections.defaultdict`` (written
with ``builtins.dict``) of per-parameter tensors. Every checkpoint upstream FastPoseGait wrote
with a OneCycleLR schedule (all its configs) is such a file. torch's ``weights_only`` loader
refuses those globals, and it could not read the file even with them allowed: the method refers
to itself through the object's ``__dict__``, which pickle writes with a ``POP`` opcode that
loader does not implement.

:func:`read_old_torch_checkpoint` reads such a file with :class:`Unpickler`, a small stack
machine of our own: only the opcodes ``torch.save`` writes (pickle protocol 2) plus ``POP``;
only torch's own ``weights_only`` list of globals (tensors, storages, dtypes, ``OrderedDict``,
...) plus, for exactly the names in :data:`LEGACY_GLOBALS`, inert stand-ins of ours, never the
real objects:

- ``builtins.getattr`` accepts only an old scheduler stand-in (or its class) and the name of an
  annealing method, and returns that name (a string); it never looks anything up;
- the scheduler and optimizer classes make objects that only keep the state dict the file gives
  them; they have no methods, cannot be called with arguments and never reach torch's classes;
- ``collections.defaultdict`` accepts only the ``builtins.dict`` stand-in and returns a plain
  ``{}``; the ``builtins.dict`` stand-in cannot be called.

A call (``REDUCE``) may only target torch's tensor-rebuilding globals or these stand-ins, and
``BUILD`` only an ``OrderedDict`` or a stand-in object, so no code of the file's choosing runs.
The loaded checkpoint must hold no stand-in object; the scheduler's ``anneal_func`` is the
method's name, which :func:`fastposegait.engine.restore.restore_scheduler` reads.
"""
from __future__ import annotations

import pickle
import pickletools
import re
import struct
import sys
import zipfile
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, BinaryIO, Dict, FrozenSet, List, Optional, Set, Union

import torch
from torch._utils import IMPORT_MAPPING, NAME_MAPPING

#: OneCycleLR's annealing methods: the only attribute names the ``getattr`` stand-in accepts
ANNEAL_METHODS = ("_annealing_cos", "_annealing_linear")

#: the scheduler classes whose state held a method before torch 2.2
LEGACY_SCHEDULERS: FrozenSet[str] = frozenset({"torch.optim.lr_scheduler.OneCycleLR"})

#: the optimizer classes that can sit in such a scheduler's ``__dict__`` (any class in torch.optim
#: can be configured), under the module paths torch has always used for them
LEGACY_OPTIMIZERS: FrozenSet[str] = frozenset(
    f"torch.optim.{module}.{name}" for module, name in (
        ("adam", "Adam"), ("adamw", "AdamW"), ("sgd", "SGD"), ("adagrad", "Adagrad"),
        ("adadelta", "Adadelta"), ("adamax", "Adamax"), ("asgd", "ASGD"), ("nadam", "NAdam"),
        ("radam", "RAdam"), ("rmsprop", "RMSprop"), ("rprop", "Rprop")))

#: every name such a file uses beyond torch's weights-only list
LEGACY_GLOBALS: FrozenSet[str] = frozenset(
    {"builtins.getattr", "collections.defaultdict", "builtins.dict"} | LEGACY_SCHEDULERS | LEGACY_OPTIMIZERS)


class Refused(pickle.UnpicklingError):
    """The file asks this reader for something it does not accept; the message says what.
    Internal: :func:`fastposegait.engine.checkpoint.load_checkpoint` re-raises it as a
    :class:`~fastposegait.errors.CheckpointError` naming the file."""


class _LegacyClass:
    """Stands for a scheduler or optimizer class named in the file; makes inert objects."""
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<stand-in for {self.name}>"


class _LegacyObject:
    """Stands for a scheduler or optimizer object of the file: its class name and the state
    dict the file gave it, nothing else."""
    __slots__ = ("cls", "state")

    def __init__(self, cls: _LegacyClass) -> None:
        self.cls = cls
        self.state: Optional[dict] = None


def _legacy_getattr(target: Any, name: Any) -> str:
    """Stand-in for ``builtins.getattr``: the name of an old OneCycleLR's annealing method."""
    owner = target.cls if isinstance(target, _LegacyObject) else target
    if not isinstance(owner, _LegacyClass) or owner.name not in LEGACY_SCHEDULERS:
        raise Refused(f"calls builtins.getattr on {_describe(target)} (only an old OneCycleLR's "
                      "annealing method is accepted)")
    if name not in ANNEAL_METHODS:
        raise Refused(f"calls builtins.getattr for {name!r} (only {' or '.join(ANNEAL_METHODS)} is accepted)")
    return str(name)


def _legacy_dict_type(*args: Any) -> None:
    """Stand-in for ``builtins.dict``: only an argument of the ``defaultdict`` stand-in."""
    raise Refused("calls builtins.dict (it may only name a defaultdict's factory)")


def _legacy_defaultdict(factory: Any = None) -> dict:
    """Stand-in for ``collections.defaultdict(dict)``: a plain dict."""
    if factory is not _legacy_dict_type:
        raise Refused("calls collections.defaultdict with a factory other than builtins.dict")
    return {}


def _stand_in(name: str) -> Any:
    if name == "builtins.getattr":
        return _legacy_getattr
    if name == "builtins.dict":
        return _legacy_dict_type
    if name == "collections.defaultdict":
        return _legacy_defaultdict
    return _LegacyClass(name)


def _torch_safe_globals() -> Dict[str, Any]:
    """torch's own ``weights_only`` list (tensor and storage rebuilding, dtypes, OrderedDict,
    ...), without anything a program added to it."""
    from torch import _weights_only_unpickler
    return dict(_weights_only_unpickler._get_allowed_globals())


def _global_name(module: str, name: str) -> str:
    """``module.name`` as Python 3 spells it (protocol 2 writes ``__builtin__``)."""
    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


# ------------------------------------------------------------------ which files qualify

_DATA_RECORD = re.compile(r"[^/]+/data\.pkl")


def _pickle_record(file: Union[Path, BinaryIO]) -> Optional[bytes]:
    """The object pickle of a ``torch.save`` zip file; None for anything else (a TorchScript
    archive, the pre-1.6 format, not a zip)."""
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            records = [n for n in names if _DATA_RECORD.fullmatch(n)]
            if len(records) != 1 or any(n.rpartition("/")[2] == "constants.pkl" for n in names):  # TorchScript
                return None
            return archive.read(records[0])
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None


def unusual_globals(path: Path) -> Optional[Set[str]]:
    """The globals of a ``torch.save`` file outside torch's ``weights_only`` list, found by
    reading its opcodes (nothing is built); None if the file is not one this module reads."""
    data = _pickle_record(path)
    if data is None:
        return None
    found: Set[str] = set()
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                found.add(_global_name(module, name))
            elif ord(opcode.code) not in _OPCODES:
                return None
        allowed = set(_torch_safe_globals())
    except (ValueError, pickle.UnpicklingError, struct.error):
        return None
    except (ImportError, AttributeError):  # a torch without this list: such files stay refused
        return None
    return found - allowed


def is_old_torch_checkpoint(path: Path) -> bool:
    """Whether the file uses globals outside torch's list and all of them are the known
    legacy names (so that :func:`read_old_torch_checkpoint` should be tried)."""
    extra = unusual_globals(path)
    return bool(extra) and extra <= LEGACY_GLOBALS


def read_old_torch_checkpoint(path: Path) -> Any:
    """Load a checkpoint that :func:`is_old_torch_checkpoint` accepts, through :class:`Unpickler`
    and torch's reading of the zip file and its tensor storages. Raises
    :class:`Refused` (a ``pickle.UnpicklingError``) saying what, when it asks for anything else."""
    this_module = sys.modules[__name__]
    with open(path, "rb") as f:  # one open file, checked and then read: never a TorchScript archive
        if _pickle_record(f) is None:
            raise Refused("is not a torch.save zip file")
        f.seek(0)
        try:
            result = torch.load(f, map_location="cpu", weights_only=False, pickle_module=this_module)
        except RuntimeError as exc:  # e.g. TORCH_FORCE_WEIGHTS_ONLY_LOAD set: not read at all
            raise Refused(f"cannot be read with stand-ins here ({exc})") from None
    _check_no_stand_ins(result)
    return result


def _check_no_stand_ins(result: Any) -> None:
    """Refuse a result that keeps a stand-in (it would be an object of no use, or a trap)."""
    seen: Set[int] = set()
    pending: List[Any] = [result]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (_LegacyClass, _LegacyObject)) or any(item is f for f in _STAND_IN_NAMES):
            raise Refused(f"keeps {_describe(item)} outside an old scheduler's method")
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
            pending.extend(getattr(item, "__dict__", {}).values())  # an OrderedDict's _metadata
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, torch.Tensor):  # attributes and hooks a rebuild function gave it
            pending.extend(vars(item).values())
            pending.append(item._backward_hooks)


_STAND_IN_NAMES = {_legacy_getattr: "builtins.getattr", _legacy_dict_type: "builtins.dict",
                   _legacy_defaultdict: "collections.defaultdict"}


# ------------------------------------------------------------------ the unpickler

_P = pickle
#: the opcodes ``torch.save`` writes (protocol 2), and POP
_OPCODES = frozenset(op[0] for op in (
    _P.PROTO, _P.STOP, _P.MARK, _P.POP, _P.EMPTY_DICT, _P.EMPTY_LIST, _P.EMPTY_TUPLE, _P.TUPLE, _P.TUPLE1,
    _P.TUPLE2, _P.TUPLE3, _P.SETITEM, _P.SETITEMS, _P.APPEND, _P.APPENDS, _P.BINPUT, _P.LONG_BINPUT,
    _P.BINGET, _P.LONG_BINGET, _P.GLOBAL, _P.REDUCE, _P.NEWOBJ, _P.BUILD, _P.BINPERSID, _P.NONE,
    _P.NEWTRUE, _P.NEWFALSE, _P.BININT, _P.BININT1, _P.BININT2, _P.LONG1, _P.BINFLOAT, _P.BINUNICODE,
    _P.SHORT_BINSTRING))


class Unpickler:
    """The restricted unpickler :func:`read_old_torch_checkpoint` hands ``torch.load`` (as the
    ``Unpickler`` of its ``pickle_module``). torch subclasses it to map storage names, and sets
    ``persistent_load`` to read the tensor storages of the zip file."""

    def __init__(self, file: BinaryIO, *, encoding: str = "utf-8", **_: Any) -> None:
        self.read = file.read
        self.readline = file.readline
        self.encoding = encoding
        self.memo: Dict[int, Any] = {}
        self.torch_globals = _torch_safe_globals()
        self.callables = list(self.torch_globals.values()) + [_legacy_getattr, _legacy_defaultdict]

    def persistent_load(self, pid: Any) -> Any:  # replaced by torch.load
        raise Refused("asks for a persistent id")

    def find_class(self, module: str, name: str) -> Any:
        """The object a GLOBAL names: torch's weights-only list, else a stand-in, else refused."""
        full = f"{module}.{name}"
        if full in self.torch_globals:
            return self.torch_globals[full]
        if full in LEGACY_GLOBALS:
            return _stand_in(full)
        raise Refused(f"unsupported GLOBAL {full}")

    def load(self) -> Any:
        try:
            return self._load()
        except pickle.UnpicklingError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error, UnicodeDecodeError,
                EOFError, RecursionError) as exc:
            raise Refused(f"is a malformed pickle ({type(exc).__name__}: {exc})") from None

    def _load(self) -> Any:  # noqa: C901 - one branch per opcode, as pickle's own loop
        stack: List[Any] = []
        marks: List[List[Any]] = []
        read, memo = self.read, self.memo

        def pop_mark() -> List[Any]:
            nonlocal stack
            items, stack = stack, marks.pop()
            return items

        while True:
            op = read(1)
            if not op:
                raise EOFError("the pickle ends before its STOP")
            code = op[0]
            if code == _P.GLOBAL[0]:
                module = self.readline()[:-1].decode("utf-8")
                name = self.readline()[:-1].decode("utf-8")
                module, _, name = _global_name(module, name).rpartition(".")
                stack.append(self.find_class(module, name))
            elif code == _P.REDUCE[0]:
                args = stack.pop()
                func = stack[-1]
                if type(args) is not tuple or not any(func is c for c in self.callables):
                    raise Refused(f"calls {_describe(func)}")
                stack[-1] = func(*args)
            elif code == _P.NEWOBJ[0]:
                args = stack.pop()
                cls = stack.pop()
                stack.append(self._new(cls, args))
            elif code == _P.BUILD[0]:
                state = stack.pop()
                self._build(stack[-1], state)
            elif code == _P.BINPERSID[0]:
                pid = stack.pop()
                if type(pid) is not tuple or not pid or torch.serialization._maybe_decode_ascii(pid[0]) != "storage":
                    raise Refused("asks for a persistent id other than a tensor storage")
                stack.append(self.persistent_load(pid))
            elif code == _P.MARK[0]:
                marks.append(stack)
                stack = []
            elif code == _P.POP[0]:
                stack.pop()
            elif code == _P.TUPLE[0]:
                items = pop_mark()  # before naming ``stack``: it is the outer list from here on
                stack.append(tuple(items))
            elif code in (_P.TUPLE1[0], _P.TUPLE2[0], _P.TUPLE3[0]):
                size = 1 if code == _P.TUPLE1[0] else 2 if code == _P.TUPLE2[0] else 3
                if len(stack) < size:
                    raise IndexError("a tuple of more items than the stack holds")
                stack[-size:] = [tuple(stack[-size:])]
            elif code in (_P.SETITEM[0], _P.SETITEMS[0]):
                items = pop_mark() if code == _P.SETITEMS[0] else [stack.pop(-2), stack.pop()]
                target = stack[-1]
                if type(target) not in (dict, OrderedDict, Counter) or len(items) % 2:
                    raise Refused(f"sets items of {type(target).__name__}")
                for i in range(0, len(items), 2):
                    target[items[i]] = items[i + 1]
            elif code in (_P.APPEND[0], _P.APPENDS[0]):
                items = pop_mark() if code == _P.APPENDS[0] else [stack.pop()]
                if type(stack[-1]) is not list:
                    raise Refused(f"appends to {type(stack[-1]).__name__}")
                stack[-1].extend(items)
            elif code in (_P.BINPUT[0], _P.LONG_BINPUT[0]):
                memo[read(1)[0] if code == _P.BINPUT[0] else struct.unpack("<I", read(4))[0]] = stack[-1]
            elif code in (_P.BINGET[0], _P.LONG_BINGET[0]):
                stack.append(memo[read(1)[0] if code == _P.BINGET[0] else struct.unpack("<I", read(4))[0]])
            elif code == _P.EMPTY_DICT[0]:
                stack.append({})
            elif code == _P.EMPTY_LIST[0]:
                stack.append([])
            elif code == _P.EMPTY_TUPLE[0]:
                stack.append(())
            elif code == _P.NONE[0]:
                stack.append(None)
            elif code == _P.NEWTRUE[0]:
                stack.append(True)
            elif code == _P.NEWFALSE[0]:
                stack.append(False)
            elif code == _P.BININT[0]:
                stack.append(struct.unpack("<i", read(4))[0])
            elif code == _P.BININT1[0]:
                stack.append(read(1)[0])
            elif code == _P.BININT2[0]:
                stack.append(struct.unpack("<H", read(2))[0])
            elif code == _P.LONG1[0]:
                stack.append(int.from_bytes(read(read(1)[0]), "little", signed=True))
            elif code == _P.BINFLOAT[0]:
                stack.append(struct.unpack(">d", read(8))[0])
            elif code == _P.BINUNICODE[0]:
                size = struct.unpack("<I", read(4))[0]
                data = read(size)
                if len(data) != size:
                    raise EOFError("a string runs past the end of the pickle")
                stack.append(str(data, "utf-8", "surrogatepass"))
            elif code == _P.SHORT_BINSTRING[0]:
                data = read(read(1)[0])
                stack.append(data if self.encoding == "bytes" else data.decode(self.encoding, "strict"))
            elif code == _P.PROTO[0]:
                read(1)
            elif code == _P.STOP[0]:
                return stack.pop()
            else:
                raise Refused(f"uses the pickle opcode {op!r}, which torch.save does not write")

    def _new(self, cls: Any, args: Any) -> Any:
        if type(args) is not tuple:
            raise Refused("creates an object without an argument tuple")
        if isinstance(cls, _LegacyClass):
            if args:
                raise Refused(f"creates a {cls.name} with arguments")
            return _LegacyObject(cls)
        if cls is torch.nn.Parameter:
            return torch.nn.Parameter(*args)
        if isinstance(cls, type) and any(cls is c for c in self.torch_globals.values()):
            return cls.__new__(cls, *args)
        raise Refused(f"creates {_describe(cls)}")

    @staticmethod
    def _build(inst: Any, state: Any) -> None:
        if isinstance(inst, _LegacyObject) and inst.state is None and type(state) is dict:
            inst.state = state
        elif type(inst) is OrderedDict and type(state) is dict and all(type(k) is str for k in state):
            inst.__dict__.update(state)
        else:
            raise Refused(f"sets the state of {_describe(inst)}")


def _describe(obj: Any) -> str:
    """How a refusal names an object of the file."""
    if isinstance(obj, _LegacyClass):
        return obj.name
    if isinstance(obj, _LegacyObject):
        return f"a {obj.cls.name} object"
    for function, name in _STAND_IN_NAMES.items():
        if obj is function:
            return name
    name = getattr(obj, "__qualname__", None) if isinstance(obj, type) or callable(obj) else None
    return name if isinstance(name, str) else f"a {type(obj).__name__}"


def load(file: BinaryIO, **kwargs: Any) -> Any:
    """Module-level ``load`` of this ``pickle_module``: torch calls it only for its pre-1.6
    formats, which are never handed here."""
    raise Refused("is not a torch.save zip file")


__all__ = ["ANNEAL_METHODS", "LEGACY_GLOBALS", "Refused", "Unpickler", "is_old_torch_checkpoint",
           "read_old_torch_checkpoint", "unusual_globals"]
