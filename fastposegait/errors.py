"""Which exceptions are user errors (bad input) to report in one line, not as a traceback."""
from __future__ import annotations

from typing import Optional


def user_facing(exc: BaseException) -> Optional[str]:
    """The one-line message for an input error, or None for a genuine bug."""
    from .config import ConfigError
    from .data.dataset import DatasetError
    from .data.io import PoseFileError
    from .engine.checkpoint import CheckpointError
    from .registry import UnknownNameError

    if isinstance(exc, (ConfigError, DatasetError, PoseFileError, CheckpointError, UnknownNameError)):
        text = str(exc)
        if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the message
            last = [line for line in text.strip().splitlines() if line.strip()][-1]
            text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
        return text
    return None
