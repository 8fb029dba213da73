"""One training run per output folder.

Two runs writing ``output/<dataset>/<model>/<save_name>/`` at once interleave their
checkpoints and overwrite each other's ``config_train.yaml``. A training run therefore holds an
exclusive lock on ``<output>/.train.lock`` from its start to its end. It is a POSIX record
lock (``lockf``): the kernel drops it when the process dies, however it dies, and forked
DataLoader workers do not inherit it (an ``flock`` would stay held by the workers of a killed
run until they notice their parent is gone). Two runners of one process are told apart by a
table of the folders this process has locked. The file itself stays; it only records who held
it last. The test phase takes no lock: testing a checkpoint while training goes on is fine.
"""
from __future__ import annotations

import datetime
import os
import socket
import weakref
from pathlib import Path
from typing import Optional, Set

from ..errors import OutputDirError

LOCK_NAME = ".train.lock"

#: Lock files this process holds (real paths).
_HELD: Set[str] = set()


def _unlock(fd: int, key: str) -> None:
    _HELD.discard(key)
    os.close(fd)


class RunLock:
    """The exclusive training lock of one output folder (released by :meth:`release`, when
    the object is garbage collected, or when the process exits)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: Optional[int] = None
        self._finalizer: Optional[weakref.finalize] = None

    def acquire(self) -> "RunLock":
        key = os.path.realpath(self.path)
        if key in _HELD:  # this process locked it already (POSIX locks do not conflict within one)
            raise self._busy(f"pid {os.getpid()}, this process")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lockf, no protection
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputDirError(f"{self.folder}: cannot create the run's lock file ({exc.strerror or exc}); "
                                 "run from a folder where output/ can be written") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise self._busy(holder) from None
        os.ftruncate(fd, 0)
        started = datetime.datetime.now().isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)
        self._fd = fd
        _HELD.add(key)
        self._finalizer = weakref.finalize(self, _unlock, fd, key)
        return self

    def _busy(self, holder: str) -> OutputDirError:
        return OutputDirError(
            f"{self.folder}: another training run is writing this output folder ({holder}); wait for it "
            "to finish, or give this run another trainer_cfg.save_name"
        )

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the descriptor, which drops the lock
            self._finalizer = None
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
