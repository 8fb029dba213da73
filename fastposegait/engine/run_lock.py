"""One training run per output folder.

Two runs writing ``output/<dataset>/<model>/<save_name>/`` at once interleave their
checkpoints and overwrite each other's ``config_train.yaml``. A training run therefore holds an
exclusive ``flock`` on ``<output>/.train.lock`` from its start to its end. The kernel drops the
lock when the process dies, however it dies, so a killed run never leaves a stale lock; the
file itself stays (it only records who held it last). The test phase takes no lock: testing a
checkpoint while training goes on is fine.
"""
from __future__ import annotations

import datetime
import os
import socket
import weakref
from pathlib import Path
from typing import Optional

from ..errors import OutputDirError

LOCK_NAME = ".train.lock"


class RunLock:
    """The exclusive training lock of one output folder (released by :meth:`release`, when
    the object is garbage collected, or when the process exits)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: Optional[int] = None
        self._finalizer: Optional[weakref.finalize] = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no flock, no protection
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputDirError(f"{self.folder}: cannot create the run's lock file ({exc.strerror or exc}); "
                                 "run from a folder where output/ can be written") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise OutputDirError(
                f"{self.folder}: another training run is writing this output folder ({holder}); wait for it "
                "to finish, or give this run another trainer_cfg.save_name"
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.datetime.now().isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        return self

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the descriptor, which drops the lock
            self._finalizer = None
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
