"""Checkpoints: atomic writes, safe loads, and the upstream naming scheme.

``output/<dataset>/<model>/<save_name>/checkpoints/<save_name>-<iteration:05d>.pt`` holds
the unwrapped model's state dict, the optimizer, scheduler and (for AMP) grad-scaler states,
the iteration, how many batches the sampler has produced, and every rank's RNG states, so a
resumed run continues exactly where the saved one was. Files are written to a temp file,
fsynced and renamed, and loaded with ``weights_only=True`` (no code runs from a checkpoint).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np
import torch

from ..data.io import atomic_write
from ..errors import CheckpointError



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


def restore_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(path: Path, payload: Dict[str, Any]) -> None:
    """Atomically ``torch.save`` ``payload`` to ``path``."""
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Load a checkpoint safely (tensors, numbers, strings and containers only)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle, ...
        raise CheckpointError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a FastPoseGait checkpoint (no 'model' entry)")
    return ckpt


def rng_states_for_rank(ckpt: Dict[str, Any], rank: int) -> Dict[str, Any] | None:
    states: List[Dict[str, Any]] = ckpt.get("rng", [])
    return states[rank] if rank < len(states) else None
