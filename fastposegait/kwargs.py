"""Matching config entries to the keyword arguments of the class or function they configure.

Configs pass their keys straight to constructors (losses, samplers, transforms, optimizers,
schedulers, models, evaluators). Upstream drops the keys a constructor does not take without
a word, so a typo silently falls back to the default; here every caller goes through
:func:`match_kwargs` and decides what an unknown key means: a visible warning
(:func:`filter_kwargs`, so upstream configs keep working), or an error (model keys).

It also checks values against a parameter's annotation (:func:`expected_type`,
:func:`value_problem`): the model and the optimizer/scheduler keys are checked this way at
load, so ``lr: 5e-3`` (text to YAML) is an error naming the key instead of a TypeError from
torch when the run builds the optimizer.
"""
from __future__ import annotations

import collections.abc
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KwargsMatch:
    """How a mapping of config entries fits a callable's signature.

    Attributes:
        accepted: the entries the callable takes.
        unknown: keys it does not take (empty when it has ``**kwargs``).
        missing: its required parameters that the mapping does not give.
        valid: every keyword the callable takes, in signature order.
    """

    accepted: Dict[str, Any]
    unknown: List[str]
    missing: List[str]
    valid: List[str]


def match_kwargs(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    ignore: Iterable[str] = (),
    skip_first: bool = False,
) -> KwargsMatch:
    """Split ``kwargs`` (minus the ``ignore`` keys) by what ``fn`` accepts.

    ``skip_first`` leaves out ``fn``'s first positional parameter (the data argument of a
    plain-function transform, or ``self`` of an unbound method). A callable without an
    introspectable signature accepts everything.
    """
    ignored = set(ignore)
    given = {k: v for k, v in kwargs.items() if k not in ignored}
    try:
        params = [p for name, p in inspect.signature(fn).parameters.items() if name != "self"]
    except (TypeError, ValueError):
        return KwargsMatch(given, [], [], list(given))
    if skip_first and params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    valid = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [p.name for p in params
               if p.name in valid and p.default is inspect.Parameter.empty and p.name not in given]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return KwargsMatch(given, [], missing, valid)
    accepted = {k: v for k, v in given.items() if k in valid}
    unknown = [k for k in given if k not in valid]
    return KwargsMatch(accepted, unknown, missing, valid)


def filter_kwargs(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    owner: str,
    ignore: Iterable[str] = (),
    skip_first: bool = False,
) -> Dict[str, Any]:
    """The entries of ``kwargs`` that ``fn`` accepts; one warning names the others.

    ``owner`` says where the entries come from (e.g. ``"loss TripletLoss"``) in the warning.
    """
    match = match_kwargs(fn, kwargs, ignore, skip_first)
    if match.unknown:
        logger.warning("%s: ignoring unknown key(s) %s (accepted: %s)",
                       owner, ", ".join(map(repr, match.unknown)), ", ".join(match.valid) or "none")
    return match.accepted


# ----------------------------------------------------------------------------- value types
#
# Config values arrive from YAML, so only a few shapes occur: numbers, booleans, strings,
# lists and null. ``expected_type`` turns a parameter's annotation into one of those shapes
# (or None when it cannot be checked generically, e.g. a callable or a custom class), and
# ``value_problem`` says what is wrong with a value for it.


def _resolve(annotation: Any, owner: Any = None) -> Any:
    """An annotation written as text (``from __future__ import annotations``) evaluated in
    the owner's module, or None when it cannot be."""
    if not isinstance(annotation, str):
        return annotation
    import typing

    namespace: Dict[str, Any] = {name: getattr(typing, name) for name in typing.__all__}
    module = inspect.getmodule(owner) if owner is not None else None
    if module is not None:
        namespace.update(vars(module))

    def holder() -> None:
        pass

    holder.__annotations__ = {"value": annotation}
    try:
        return typing.get_type_hints(holder, globalns=namespace)["value"]
    except Exception:  # names something not importable here: not checked
        return None


def expected_type(annotation: Any, owner: Any = None) -> Optional[Tuple[str, ...]]:
    """The YAML shapes ``annotation`` allows: a tuple of ``"int"``, ``"float"``, ``"bool"``,
    ``"str"``, ``"none"``, ``"list[int]"``, ``"list[float]"``; None when the annotation is
    missing or not one the config layer can check (then any value is accepted)."""
    import typing

    annotation = _resolve(annotation, owner)
    if annotation is None or annotation is inspect.Parameter.empty or annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin is Union or type(annotation).__name__ == "UnionType":
        shapes: List[str] = []
        for arg in typing.get_args(annotation):
            if arg is type(None):
                shapes.append("none")
                continue
            inner = expected_type(arg)
            if inner is None:
                if _is_tensor(arg):  # torch accepts a tensor lr; YAML cannot hold one
                    continue
                return None
            shapes.extend(inner)
        return tuple(dict.fromkeys(shapes)) or None
    if annotation in (int, float, bool, str):
        return (annotation.__name__,)
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if args and all(a is int for a in args):
            return ("list[int]",)
        if args and all(a in (int, float) for a in args):
            return ("list[float]",)
    return None


def _is_tensor(annotation: Any) -> bool:
    return getattr(annotation, "__name__", "") == "Tensor" and "torch" in getattr(annotation, "__module__", "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _matches(value: Any, shape: str) -> bool:
    if shape == "none":
        return value is None
    if shape == "bool":
        return isinstance(value, bool)
    if shape == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if shape == "float":
        return _is_number(value)
    if shape == "str":
        return isinstance(value, str)
    if shape in ("list[int]", "list[float]"):
        item = shape[5:-1]
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    return True


_SHAPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "none": "null", "list[int]": "a list of integers", "list[float]": "a list of numbers"}


def describe_shapes(shapes: Sequence[str]) -> str:
    """``("float", "none")`` -> ``"a number or null"``."""
    if "int" in shapes and "float" in shapes:
        shapes = [s for s in shapes if s != "int"]
    return " or ".join(_SHAPE_WORDS[s] for s in shapes)


def numeric_text_hint(value: Any) -> str:
    """For a string that reads as a number, why YAML kept it as text and how to write it
    (``5e-3``: YAML 1.1 needs a dot in the mantissa and a signed exponent; ``"128"``: quoted);
    else ''."""
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if not math.isfinite(number):  # YAML spells these .inf / .nan
        return ""
    import yaml

    text = value.strip()
    try:
        as_yaml = yaml.safe_load(text)
    except yaml.YAMLError:
        as_yaml = None
    if isinstance(as_yaml, (int, float)) and not isinstance(as_yaml, bool):
        return f"; the value is quoted, write {text} without quotes"
    if "e" in text.lower():
        mantissa, _, exponent = text.lower().partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent and exponent[0] not in "+-":
            exponent = "+" + exponent
        fixed = f"{mantissa}e{exponent}"
    else:
        fixed = repr(number)
    return f"; YAML reads {text} as text, write {fixed}"


def value_problem(value: Any, shapes: Optional[Sequence[str]]) -> Optional[str]:
    """None when ``value`` fits one of ``shapes`` (see :func:`expected_type`), else the
    message ``"must be <shapes>, got <value> (<type>)[; YAML hint]"``."""
    if shapes is None or any(_matches(value, s) for s in shapes):
        return None
    return (f"must be {describe_shapes(shapes)}, got {value!r} ({type(value).__name__})"
            + numeric_text_hint(value))
