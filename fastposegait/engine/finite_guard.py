"""Stop a training run whose loss stops being finite, without a GPU sync per step.

A NaN or inf loss (keypoints near float overflow, a learning rate that diverges, a checkpoint
whose weights are already NaN) makes every later step and checkpoint NaN, and training would
otherwise go on to the end and exit 0. :class:`FiniteGuard` remembers, on the loss's device,
the first iteration whose loss was not finite (a couple of tiny device ops per step, no
``.item()``); the runner reads it where it synchronises anyway — the log line, before each
checkpoint (so no checkpoint with non-finite values is ever written) — and stops with one
:class:`~fastposegait.errors.TrainingError`.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import torch

from ..errors import TrainingError


class FiniteGuard:
    """The first iteration with a non-finite loss, and that loss, kept on the device."""

    def __init__(self) -> None:
        self._first: Optional[torch.Tensor] = None  # 0 while every loss was finite
        self._value: Optional[torch.Tensor] = None

    def record(self, loss: torch.Tensor, iteration: int) -> None:
        """Note this step's loss (no host sync)."""
        loss = loss.detach().float().reshape(())
        if self._first is None:
            self._first = torch.zeros((), dtype=torch.int64, device=loss.device)
            self._value = torch.zeros((), dtype=torch.float32, device=loss.device)
        new = (self._first == 0) & ~torch.isfinite(loss)
        self._first = torch.where(new, iteration, self._first)
        self._value = torch.where(new, loss, self._value)

    def first_bad(self) -> Optional[tuple]:
        """``(iteration, loss)`` of the first non-finite loss, or None (one host sync)."""
        if self._first is None:
            return None
        first = int(self._first.item())
        return (first, float(self._value.item())) if first else None

    def reset(self) -> None:
        self._first = self._value = None


def non_finite_tensors(tensors: Iterable[torch.Tensor]) -> int:
    """How many of ``tensors`` (floating point) hold a NaN or inf (one host sync)."""
    flags = [~torch.isfinite(t.detach()).all() for t in tensors if t.is_floating_point() and t.numel()]
    return int(torch.stack(flags).sum().item()) if flags else 0


def stop_training(iteration: int, value: float, losses: Mapping[str, Any], last_good: Optional[str],
                  now: int) -> TrainingError:
    """The one-line error that ends a run whose loss became ``value`` at ``iteration``.
    ``last_good``: the last checkpoint with finite weights and how to restore it, or None."""
    shown = ", ".join(f"{k[len('scalar/'):] if k.startswith('scalar/') else k}={_number(v)}"
                      for k, v in losses.items()) or "none logged"
    where = f"the last checkpoint with finite weights is {last_good}" if last_good is not None else \
        "this run wrote no checkpoint with finite weights"
    return TrainingError(
        f"training stopped at iteration {now}: the loss is {_number(value)} since iteration {iteration} "
        f"(losses now: {shown}); no checkpoint was written after it, {where}. Check the data (non-finite or "
        "huge keypoints) and the learning rate, then restore from a checkpoint with finite weights")


def _number(value: Any) -> str:
    try:
        return f"{float(torch.as_tensor(value).detach().double().mean()):.4g}"
    except (TypeError, ValueError, RuntimeError):
        return repr(value)
