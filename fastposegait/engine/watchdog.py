"""Saying what a multi-process run waits for when it stops making progress.

When one rank freezes or dies, the others block inside a collective (the gradient all-reduce,
the feature gather of the losses, a checkpoint's barrier) until the process group's timeout
(``trainer_cfg.collective_timeout`` / ``evaluator_cfg.collective_timeout``). Blocked inside
torch, a rank cannot log, so a small daemon thread watches the progress instead: when nothing
has moved for a while it logs, once per stall, what the run is waiting for and when it will
give up.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from ..errors import CollectiveError, FastPoseGaitError

logger = logging.getLogger(__name__)


def patience_for(timeout_s: float) -> float:
    """How long a stall lasts before it is reported: a quarter of the timeout, at most 2 min."""
    return max(1.0, min(120.0, timeout_s / 4))


class ProgressWatchdog:
    """Reports stalls of a multi-process run (a no-op with one process).

    Args:
        rank, world_size: this process and the run's size.
        timeout_s: the process group's collective timeout (in the message).
        patience_s: silence before a stall is reported (default :func:`patience_for`).
    """

    def __init__(self, rank: int, world_size: int, timeout_s: float, patience_s: Optional[float] = None) -> None:
        self.rank = rank
        self.enabled = world_size > 1
        self.timeout_s = timeout_s
        self.patience_s = patience_for(timeout_s) if patience_s is None else patience_s
        self._what = "start-up"
        self._last = time.monotonic()
        self._reported = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def beat(self, what: str) -> None:
        """Progress: the run now waits for ``what`` (e.g. ``"iteration 12"``)."""
        self._what, self._last, self._reported = what, time.monotonic(), False

    @property
    def what(self) -> str:
        """What the run waits for now."""
        return self._what

    def __enter__(self) -> "ProgressWatchdog":
        if self.enabled:
            self._last = time.monotonic()
            self._thread = threading.Thread(target=self._watch, name="fastposegait-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.patience_s / 4)):
            silent = time.monotonic() - self._last
            if silent >= self.patience_s and not self._reported:
                self._reported = True
                # ranks other than 0 log errors only (engine/log.py): this must show on every rank
                level = logging.WARNING if self.rank == 0 else logging.ERROR
                logger.log(level, "rank %d: no progress for %.0f s while waiting for %s; if it goes on, another "
                           "rank is stuck or dead (every rank must reach the same collective). This rank gives "
                           "up %.0f s after the wait began (collective_timeout)",
                           self.rank, silent, self._what, self.timeout_s)


@contextmanager
def collective_errors(runner: Any) -> Iterator[None]:
    """Turn a collective that failed because another rank froze or died into one
    :class:`~fastposegait.errors.CollectiveError` saying what the run was waiting for (only in a
    multi-process run: with one process such an error is a bug and keeps its traceback)."""
    try:
        yield
    except RuntimeError as exc:  # torch's DistError family (timeouts, lost peers) are RuntimeErrors
        if runner.world_size <= 1 or isinstance(exc, FastPoseGaitError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CollectiveError(
            f"rank {runner.rank}: the other ranks did not answer while this one waited for "
            f"{runner._watch.what} ({first}); a rank froze, died or ran out of memory: see its own log. "
            f"Resume from the last checkpoint with --iter"
        ) from None

