"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a cluster's preemption).

While training, the first SIGINT or SIGTERM only raises a flag: the current step finishes, a
checkpoint is written, and the run ends with one line saying how to resume. A second SIGINT
stops at once (the previous checkpoint is still there). With several processes every rank must
stop after the same step, or the collective of the checkpoint would wait forever: the ranks
agree through a one-number all-reduce after each step.
"""
from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional

import torch

from .. import distributed as dist_utils

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Context manager: while active, SIGINT/SIGTERM ask the training loop to stop.

    Args:
        device: where the ranks' all-reduce runs (the training device).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.signum: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signum = signum
        logger.warning("received %s: finishing the current step, then saving a checkpoint "
                       "(Ctrl-C again stops at once)", signal.Signals(signum).name)

    def requested(self) -> Optional[int]:
        """The signal that asked to stop, on this rank or any other (None: keep going)."""
        if not dist_utils.is_dist():
            return self.signum
        flag = torch.tensor([self.signum or 0], dtype=torch.int64, device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag.item()) or None

