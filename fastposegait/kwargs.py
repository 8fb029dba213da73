"""Matching config entries to the keyword arguments of the class or function they configure.

Configs pass their keys straight to constructors (losses, samplers, transforms, optimizers,
schedulers, models, evaluators). Upstream drops the keys a constructor does not take without
a word, so a typo silently falls back to the default; here every caller goes through
:func:`match_kwargs` and decides what an unknown key means: a visible warning
(:func:`filter_kwargs`, so upstream configs keep working), or an error (model keys).
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping

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
