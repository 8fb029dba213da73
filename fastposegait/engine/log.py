"""Logging set-up: one ``fastposegait`` logger, quiet on every rank but 0."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Optional

from ..errors import OutputDirError

LOGGER_NAME = "fastposegait"
FORMAT = "[%(asctime)s] [%(levelname)s]: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class TqdmHandler(logging.StreamHandler):
    """Writes log lines through ``tqdm.write`` so they do not break an active progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(rank: int = 0, log_dir: Optional[Path] = None) -> logging.Logger:
    """Configure the ``fastposegait`` logger for this process.

    Rank 0 logs at INFO to stderr (and to ``log_dir/<timestamp>.txt`` when given); other
    ranks only report errors, so a multi-process run prints each line once.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.INFO if rank == 0 else logging.ERROR)
    logger.propagate = False
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    console = TqdmHandler(sys.stderr)
    console.setFormatter(formatter)
    logger.addHandler(console)
    if log_dir is not None and rank == 0:
        path = log_dir / (time.strftime("%Y-%m-%d-%H-%M-%S") + ".txt")
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:  # a read-only or full logs folder
            raise OutputDirError(
                f"{log_dir}: --log_to_file cannot write the log there ({exc.strerror or exc}); make the folder "
                "writable, or run without --log_to_file (the log still goes to the terminal)") from None
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
        logger.info("logging to %s", path)
    return logger
