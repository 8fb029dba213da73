"""Validation of config values: one error per problem, naming the file, the key and whether
the command line set it, and the type checks that dataclass annotations declare."""
from __future__ import annotations

import dataclasses
import inspect
import logging
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, NoReturn, Optional, Tuple, Type, TypeVar, Union

from ..errors import ConfigError
from ..registry import Registry, closest_name

logger = logging.getLogger(__name__)

S = TypeVar("S")


class Checker:
    """Validation context: which file, which keys the command line set, and whether to log
    warnings (a config is checked again when a runner receives it; it warns only once)."""

    def __init__(self, path: Union[str, Path] = "<config>", overridden: Iterable[str] = (), report: bool = True) -> None:
        self.path = path
        self.overridden = set(overridden)
        self.report = report

    def fail(self, key: str, message: str) -> NoReturn:
        origin = " (set on the command line)" if key in self.overridden else ""
        raise ConfigError(f"{self.path}: {key}{origin}: {message}")

    def warn(self, message: str, *args: Any) -> None:
        if self.report:
            logger.warning("%s: " + message, self.path, *args)

    def mapping(self, value: Any, key: str, what: str = "a mapping") -> Dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(key, f"must be {what}, got {type(value).__name__}")
        return dict(value)

    def registered(self, registry: Registry, name: Any, key: str) -> None:
        if name not in registry:
            self.fail(key, registry.unknown_message(name))

    def class_in(self, module: Any, base: type, name: str, key: str) -> None:
        valid = classes_in(module, base)
        if name not in valid:
            close = closest_name(name, valid)
            hint = f" (did you mean {close!r}?)" if close else ""
            self.fail(key, f"{name!r} is not a class in {module.__name__}{hint}. Valid names: {', '.join(valid)}")

    def unknown_keys(self, key: str, unknown: List[str], valid: Iterable[str]) -> None:
        """An error for the first key of ``unknown`` (a typo would otherwise fall back to the
        default without a word), with the closest valid key and all of them."""
        valid = list(valid)
        for name in unknown:
            close = closest_name(name, valid)
            hint = f" (did you mean {close!r}?)" if close else ""
            self.fail(f"{key}.{name}", f"unknown key{hint}. Valid keys: {', '.join(valid)}")


# ----------------------------------------------------------------------------- field checks


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kinds(annotation: Any) -> Tuple[Optional[Tuple[type, ...]], bool]:
    """The runtime types an annotation allows (None: not checked generically) and whether
    ``None`` is allowed."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) is Union else (annotation,)
    optional = type(None) in args
    kinds = tuple(a for a in args if a is not type(None))
    if all(a in (int, bool, str, float) for a in kinds):
        return kinds, optional
    return None, optional


def _type_ok(value: Any, kinds: Tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and is_int(value):
        return True
    return isinstance(value, kinds)


def read_fields(cls: Type[S], values: Mapping[str, Any], key: str, checker: Checker,
                skip: Iterable[str] = ()) -> Dict[str, Any]:
    """The values of ``cls``'s fields from ``values``, each checked against its annotation.

    A field without a Python default must be given (and not null unless its annotation is
    Optional); a field whose default is None may be left out. ``skip`` fields are read by
    the caller.
    """
    hints = typing.get_type_hints(cls)
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in skip:
            continue
        full = f"{key}.{f.name}"
        kinds, optional = _kinds(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        value = values.get(f.name, None)
        if value is None:
            if f.name not in values and has_default:
                continue
            if not optional:
                checker.fail(full, "is missing; add it to the config")
        elif kinds is not None and not _type_ok(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            checker.fail(full, f"must be {names}, got {value!r} ({type(value).__name__})")
        out[f.name] = value
    return out


def field_names(cls: type) -> List[str]:
    return [f.name for f in dataclasses.fields(cls)]


def check_positive(checker: Checker, key: str, value: Optional[int], what: str = "a positive integer") -> None:
    if value is not None and value <= 0:
        checker.fail(key, f"must be {what}, got {value}")


def check_restore_hint(checker: Checker, key: str, value: Union[int, str]) -> None:
    """An iteration to restore is >= 0 (0: none); ``--iter -5`` would look for ``x--0005.pt``."""
    if is_int(value) and value < 0:
        checker.fail(key, f"must be 0 (no restore), a positive iteration or a checkpoint path, got {value}")


# ----------------------------------------------------------------------------- sections


def classes_in(module: Any, base: type) -> List[str]:
    """Public classes of ``module`` that subclass ``base`` (sorted)."""
    names = [name for name, obj in vars(module).items()
             if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")]
    return sorted(names)


def check_folder_name(checker: Checker, key: str, value: str) -> None:
    """``value`` names one folder of the output tree (``dataset_name``, ``save_name``): a
    path separator or ``..`` would put the run's files outside ``output/``."""
    if value in ("", ".", "..") or "/" in value or "\\" in value or "\0" in value:
        checker.fail(key, f"must be a plain folder name (it names a folder under output/), got {value!r}")
