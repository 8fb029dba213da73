"""The training log line: iteration, time of the window, learning rate, speed and ETA.

``Iteration 00100, Cost 12.34s, lr 1.00e-03, 0.123 s/it, ETA 0:12:34, <loss>=<value>, ...``

``Iteration`` and ``Cost`` (seconds since the previous line) come first, as in the original,
whose users parse them; ``s/it`` is the window's seconds per iteration (the time of a test run
inside the window left out) and ``ETA`` the remaining iterations times that speed.
"""
from __future__ import annotations

import math
from typing import Mapping


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (hours not wrapped at a day: ``26:00:00``); ``?`` when not finite."""
    if not math.isfinite(seconds):
        return "?"
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def training_log_line(iteration: int, cost: float, lr: float, seconds_per_iter: float, remaining: int,
                      means: Mapping[str, float]) -> str:
    """The log line of one window (``means``: the window's means, keys ``scalar/<prefix>/<name>``)."""
    values = ", ".join(f"{k[len('scalar/'):].replace('/', '_')}={v:.4f}" for k, v in means.items())
    eta = format_duration(remaining * seconds_per_iter)
    return (f"Iteration {iteration:05d}, Cost {cost:.2f}s, lr {lr:.2e}, {seconds_per_iter:.3f} s/it, ETA {eta}"
            + (f", {values}" if values else ""))
