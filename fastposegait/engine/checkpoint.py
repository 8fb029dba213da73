"""Checkpoints: atomic writes, safe loads, and the upstream naming scheme.

``output/<dataset>/<model>/<save_name>/checkpoints/<save_name>-<iteration:05d>.pt`` holds
upstream's entries — ``model`` (the unwrapped model's state dict, with upstream's key names),
``optimizer``, ``scheduler``, ``iteration`` — so upstream's code loads it, plus the (AMP)
grad-scaler state, how many batches the sampler has produced, learnable loss parameters and
every rank's RNG states, so a resumed run continues exactly where the saved one was. Files
are written to a temp file, fsynced and renamed, and loaded with ``weights_only=True`` (no
code runs from a checkpoint).

Checkpoints from elsewhere load too: upstream FastPoseGait's own files (only its four
entries: a resume from one continues at its iteration but cannot be bit-exact, and says so),
and this project's files from before its models took upstream's key names (renamed through
:mod:`fastposegait.modeling.legacy_keys`, optimizer state reordered; one log line). A file that
torch before 2.2 wrote with a OneCycleLR state (its annealing method pickled with the scheduler and
optimizer objects: upstream's model zoo) is refused by ``weights_only`` loading; when the globals
it uses are exactly those, it is read again by :mod:`.old_torch_pickle` with inert stand-ins for
them (one log line). Any other global is refused, as before.
"""
from __future__ import annotations

import logging
import pickle
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..data.io import atomic_write
from ..errors import CheckpointError
from ..modeling.legacy_keys import is_legacy_state, translate_legacy_keys
from .old_torch_pickle import (LEGACY_GLOBALS, Refused, is_old_torch_checkpoint, read_old_torch_checkpoint,
                               unusual_globals)

logger = logging.getLogger(__name__)



def checkpoint_path(checkpoint_dir: Path, save_name: str, iteration: int) -> Path:
    return checkpoint_dir / f"{save_name}-{iteration:05d}.pt"


def resolve_restore_hint(hint: Union[int, str], checkpoint_dir: Path, save_name: str) -> Path:
    """The file a ``restore_hint`` refers to: an iteration of this run, or a path."""
    if isinstance(hint, int):
        path = checkpoint_path(checkpoint_dir, save_name, hint)
        if not path.is_file():
            found = sorted(p.name for p in checkpoint_dir.glob(f"{save_name}-*.pt")) if checkpoint_dir.is_dir() else []
            raise CheckpointError(
                f"restore_hint {hint}: {path} does not exist. Available checkpoints: "
                f"{', '.join(found) if found else 'none'}. Use one of their iterations, a file path, "
                "or 0 to start from scratch (--iter 0)"
            )
        return path
    path = Path(hint)
    if not path.is_file():
        raise CheckpointError(f"restore_hint {hint!r}: no such checkpoint file")
    return path


def capture_rng_state() -> Dict[str, Any]:
    """This process's RNG states in a form ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _rng_problem(state: Any) -> Optional[str]:
    """What is wrong with a saved RNG state (entry and why), or None when it fits this process."""
    if not isinstance(state, Mapping):
        return f"the entry is a {type(state).__name__}, not a mapping of RNG states"
    for name in ("torch", "cuda"):
        if name == "cuda" and (name not in state or not torch.cuda.is_available()):
            continue
        value = state.get(name)
        own = torch.get_rng_state() if name == "torch" else torch.cuda.get_rng_state()
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.shape != own.shape:
            what = f"a {value.dtype} tensor of shape {list(value.shape)}" if isinstance(value, torch.Tensor) \
                else repr(value)[:40]
            return f"'{name}' is {what}, not the {own.numel()}-byte generator state"
    npst = state.get("numpy")
    if not isinstance(npst, Mapping) or not isinstance(npst.get("key"), torch.Tensor) \
            or npst["key"].numel() != 624 or not isinstance(npst.get("pos"), int) \
            or not 0 <= npst["pos"] <= 624 or not isinstance(npst.get("has_gauss"), int) \
            or not isinstance(npst.get("cached_gaussian"), (int, float)):
        return "'numpy' is not a MT19937 state (key of 624 words, pos, has_gauss, cached_gaussian)"
    py = state.get("python")
    if not isinstance(py, (tuple, list)) or len(py) != 3 or not isinstance(py[0], int) \
            or not isinstance(py[1], (tuple, list)) or len(py[1]) != 625 \
            or not all(isinstance(v, int) for v in py[1]):
        return "'python' is not a state of Python's random module (version, 625 words, gauss)"
    return None


def restore_rng_state(state: Dict[str, Any], path: Optional[Path] = None) -> None:
    """Put a state of :func:`capture_rng_state` back. It is checked first, so a checkpoint with
    a broken entry changes nothing and is one :class:`CheckpointError` naming ``path`` and the
    entry."""
    problem = _rng_problem(state)
    if problem is None:
        try:
            _apply_rng_state(state)
            return
        except (TypeError, ValueError, RuntimeError, KeyError) as exc:
            problem = f"it does not apply ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    raise CheckpointError(
        f"{path or 'checkpoint'}: its saved random state ('rng' entry) is unusable: {problem}. The file was "
        "altered or written by another program; restore it by path (trainer_cfg.restore_hint=<file>) to "
        "fine-tune from its weights without its random state")


def _apply_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(path: Path, payload: Dict[str, Any]) -> None:
    """Atomically ``torch.save`` ``payload`` to ``path``.

    A failed write (full disk, read-only folder, quota) leaves the earlier checkpoints as they
    were and no partial file, and is one :class:`CheckpointError` naming the path.
    """
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except (OSError, RuntimeError) as exc:
        # torch's zip writer reports a short write (a full disk, a quota) as a RuntimeError
        # ("[enforce fail at inline_container.cc...] unexpected pos ..."), not as an OSError
        if isinstance(exc, OSError):
            why = exc.strerror or str(exc)
        elif _is_short_write(exc):
            why = "the write stopped short: the disk or quota is probably full"
        else:
            raise
        earlier = sorted(p.name for p in path.parent.glob("*.pt") if p != path) if path.parent.is_dir() else []
        kept = f"; the earlier checkpoints are intact (latest: {earlier[-1]})" if earlier else ""
        raise CheckpointError(
            f"{path}: cannot write the checkpoint ({why}){kept}. Free space or make "
            f"{path.parent} writable, then resume from the latest checkpoint with --iter"
        ) from None


def _is_short_write(exc: RuntimeError) -> bool:
    """Whether a RuntimeError of ``torch.save`` is its zip writer failing to write (the bytes
    did not all reach the file), rather than a bug."""
    text = str(exc)
    return "inline_container" in text or "unexpected pos" in text or "PytorchStreamWriter" in text


def remove_stale_temps(checkpoint_dir: Path) -> int:
    """Delete the temp files of checkpoint writes that a killed run left behind (never read:
    a checkpoint only appears under its final name). Returns how many were removed."""
    removed = 0
    if checkpoint_dir.is_dir():
        for leftover in checkpoint_dir.glob(".*.pt.*.tmp"):
            try:
                leftover.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _legacy_model_state(model: torch.nn.Module, state: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """``state`` under today's key names if it is a state dict with this project's old names
    that fits ``model`` better so; else None. Constant buffers the old files lack (the
    adjacency each GaitGraph input branch saves) are taken from the model."""
    own = model.state_dict()
    if all(k in own for k in state) or not is_legacy_state(state):
        return None
    renamed = translate_legacy_keys(state)
    if sum(k in own for k in renamed) <= sum(k in own for k in state):
        return None
    persistent_constants = {name for name, _ in model.named_buffers() if name.endswith(".A")}
    for key in own:
        if key not in renamed and key in persistent_constants:
            renamed[key] = own[key].clone()
    return renamed


def translate_legacy_checkpoint(ckpt: Dict[str, Any], model: torch.nn.Module, path: Path) -> bool:
    """Rename the ``model`` entry of a checkpoint with this project's pre-upstream key names to
    today's names, and reorder its ``optimizer`` state to today's parameter order (an optimizer
    state indexes parameters by position). Modifies ``ckpt``; returns whether it was such a
    checkpoint. One log line says so."""
    state = ckpt.get("model")
    if not isinstance(state, Mapping):
        return False
    renamed = _legacy_model_state(model, state)
    if renamed is None:
        return False
    ckpt["model"] = renamed
    note = ""
    if isinstance(ckpt.get("optimizer"), Mapping):
        names = [name for name, p in model.named_parameters() if p.requires_grad]
        old_order = [key for key in renamed if key in set(names)]  # the old file's own parameter order
        permuted = _reorder_optimizer_state(ckpt["optimizer"], old_order, names)
        if permuted is None:
            note = "; its optimizer state does not match the model's parameters and is left as it is"
        else:
            ckpt["optimizer"] = permuted
            note = ", optimizer state reordered to the new parameter order"
    logger.warning("%s uses FastPoseGait's pre-upstream state-dict key names; translated to upstream's names "
                   "(docs/upstream_differences.md, \"Checkpoint key names\")%s", path, note)
    return True


def _reorder_optimizer_state(optimizer_state: Mapping[str, Any], old_order: List[str],
                             new_order: List[str]) -> Optional[Dict[str, Any]]:
    """An optimizer state whose per-parameter entries follow ``new_order`` instead of
    ``old_order`` (both lists of the same model parameter names; parameters after them, such
    as a loss's class matrix, keep their place). None if it does not fit."""
    groups = optimizer_state.get("param_groups")
    per_param = optimizer_state.get("state")
    if not isinstance(groups, list) or not isinstance(per_param, Mapping) or len(groups) != 1 \
            or sorted(old_order) != sorted(new_order) or not isinstance(groups[0], Mapping):
        return None
    ids = list(groups[0].get("params", ()))
    if len(ids) < len(new_order):
        return None
    old_position = {name: i for i, name in enumerate(old_order)}
    source = [ids[old_position[name]] for name in new_order] + ids[len(new_order):]
    reordered = {ids[j]: per_param[src] for j, src in enumerate(source) if src in per_param}
    return {**optimizer_state, "state": reordered}


def load_model_state(model: torch.nn.Module, state: Dict[str, Any], strict: bool, path: Path) -> List[str]:
    """Load ``state`` into ``model``; returns the model keys left at their initial values.

    ``strict``: every tensor must match by name and shape, else one :class:`CheckpointError`
    that counts and names the differences. Not strict: the tensors that match are loaded, the
    others are named in a warning; a checkpoint of which no tensor fits is an error. A state
    dict with this project's pre-upstream key names is renamed first (one log line).
    """
    renamed = _legacy_model_state(model, state)
    if renamed is not None:
        logger.warning("%s uses FastPoseGait's pre-upstream state-dict key names; translated to upstream's "
                       "names (docs/upstream_differences.md, \"Checkpoint key names\")", path)
        state = renamed
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if strict and (missing or unexpected or reshaped):
        differences = _differences(missing, unexpected, reshaped, state, own)
        raise CheckpointError(
            f"{path} does not fit model {type(model).__name__}: {differences}. It was written for another "
            "model_cfg: test or resume with the config it was trained with, or set restore_ckpt_strict: false "
            "to load only the tensors that match"
        )
    matching = {k: v for k, v in state.items() if k in own and k not in reshaped}
    if not matching:
        raise CheckpointError(
            f"{path}: none of its {len(state)} tensors fits model {type(model).__name__} "
            f"({_differences(missing, unexpected, reshaped, state, own)}); it is a checkpoint of another model"
        )
    model.load_state_dict(matching, strict=False)
    left = [k for k in own if k not in matching]
    if left:
        logger.warning("%s: %d of the model's %d tensors were not in the checkpoint or had another shape "
                       "and keep their initial values (restore_ckpt_strict: false): %s%s", path, len(left),
                       len(own), ", ".join(left[:8]), " ..." if len(left) > 8 else "")
    return left


def _differences(missing: List[str], unexpected: List[str], reshaped: List[str], state: Dict[str, Any],
                 own: Dict[str, Any]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} model tensor(s) missing from it (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensor(s) the model does not have (e.g. {unexpected[0]})")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape (e.g. {k}: checkpoint {list(state[k].shape)}, "
                     f"model {list(own[k].shape)})")
    return ", ".join(parts)


def load_checkpoint(path: Path, model: Optional[torch.nn.Module] = None) -> Dict[str, Any]:
    """Load a checkpoint safely (tensors, numbers, strings and containers only; an old torch's
    OneCycleLR state through inert stand-ins) and check that its ``model`` entry is a state dict
    of tensors. With ``model``, a checkpoint with this project's pre-upstream key names is
    translated for it (:func:`translate_legacy_checkpoint`)."""
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a global outside the tensors-and-containers list
        if not is_old_torch_checkpoint(path):
            others = sorted((unusual_globals(path) or set()) - LEGACY_GLOBALS)
            raise _refused(path, exc, others) from None
        try:  # only the known names of an old torch's OneCycleLR state, read with inert stand-ins
            ckpt = read_old_torch_checkpoint(path)
        except pickle.UnpicklingError as refusal:
            raise _refused(path, refusal) from None
        except Exception as failure:  # noqa: BLE001 - a truncated storage, ...
            raise _unreadable(path, failure) from None
        logger.info("%s: its scheduler state was written by an older torch (before 2.2, with OneCycleLR's "
                    "annealing method and the scheduler and optimizer objects pickled in it); read with inert "
                    "stand-ins for those objects (docs/upstream_differences.md, \"Checkpoints written by "
                    "torch before 2.2\")", path)
    except Exception as exc:  # noqa: BLE001 - truncated file, not a torch file, ...
        raise _unreadable(path, exc) from None
    shadowed = _mapping_with_attributes(ckpt)
    if shadowed:
        raise CheckpointError(f"{path}: refused: a mapping in the file carries attributes ({shadowed}) that "
                              "would shadow its methods; a checkpoint never does (it may be hostile: do not "
                              "load it elsewhere)")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a FastPoseGait checkpoint (no 'model' entry)")
    state = ckpt["model"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: its 'model' entry is not a state dict of named tensors")
    for key in ("iteration", "batches_seen"):
        if key in ckpt and (not isinstance(ckpt[key], int) or isinstance(ckpt[key], bool) or ckpt[key] < 0):
            raise CheckpointError(f"{path}: its '{key}' entry is not an iteration count ({ckpt[key]!r})")
    if model is not None:
        translate_legacy_checkpoint(ckpt, model, path)
    return ckpt


def _mapping_with_attributes(obj: Any, depth: int = 0) -> str:
    """The attribute names a loaded dict/OrderedDict was given (pickle's BUILD may set any, e.g.
    ``items``, which would then shadow the method), or ``""``. ``_metadata`` is what
    ``state_dict()`` itself attaches."""
    if depth > 64:
        return ""
    if isinstance(obj, dict):
        extra = sorted(set(getattr(obj, "__dict__", {})) - {"_metadata"})
        if extra:
            return ", ".join(map(str, extra))
        children = dict.values(obj)
    elif isinstance(obj, (list, tuple)):
        children = obj
    else:
        return ""
    for child in children:
        found = _mapping_with_attributes(child, depth + 1)
        if found:
            return found
    return ""


def _refused(path: Path, exc: pickle.UnpicklingError, others: Sequence[str] = ()) -> CheckpointError:
    """The one-line refusal of a file that asks for more than tensors and plain values
    (``others``: the globals it names beyond torch's list and the old-torch names)."""
    blocked = re.search(r"unsupported GLOBAL (\S+)", str(exc))
    if blocked:
        what = f"asks for {blocked.group(1)}"
    elif others:
        what = f"asks for {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}"
    elif isinstance(exc, Refused):  # the old-torch reader says what it refused
        what = " ".join(str(exc).split())[:200]
    else:
        what = "holds objects other than tensors and plain values"
    return CheckpointError(f"{path}: refused: the file {what}; a checkpoint holds only tensors and plain "
                           "values, so this is not one (it may be hostile: do not load it elsewhere)")


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}); pass a .pt file this program wrote")


def rng_states_for_rank(ckpt: Dict[str, Any], rank: int, path: Optional[Path] = None) -> Dict[str, Any] | None:
    """This rank's saved RNG states for a resume, or None. A checkpoint without them or without
    the sampler's position (upstream's checkpoints hold only model, optimizer, scheduler and
    iteration) still resumes, with one log line saying the run is not bit-exact."""
    states: List[Dict[str, Any]] = ckpt.get("rng", [])
    if not isinstance(states, (list, tuple)):
        raise CheckpointError(
            f"{path or 'checkpoint'}: its saved random state ('rng' entry) is unusable: it is a "
            f"{type(states).__name__}, not a list with one state per process. The file was altered or written by "
            "another program; restore it by path (trainer_cfg.restore_hint=<file>) to fine-tune from its weights "
            "without its random state")
    if rank >= len(states) or "batches_seen" not in ckpt:
        lacking = " and no ".join(what for what, absent in (("random states", rank >= len(states)),
                                                            ("sampler position", "batches_seen" not in ckpt)) if absent)
        logger.warning("the checkpoint holds no %s (upstream FastPoseGait's checkpoints do not): resuming at "
                       "iteration %s, but not bit-exact with a run that was never stopped (other random draws%s)",
                       lacking, ckpt.get("iteration", "?"),
                       "; batches counted from the iteration" if "batches_seen" not in ckpt else "")
    return states[rank] if rank < len(states) else None
