"""Every error a user can cause, in one leaf module (it imports nothing from the package).

Each one subclasses :class:`FastPoseGaitError`: its message names the file or config key
at fault and says how to fix it, and the command-line tools print that message as one line
instead of a traceback. Anything else that escapes is a bug and keeps its traceback.

The classes also subclass the built-in exception a caller would expect (``ValueError``,
or ``KeyError`` for an unknown name), so ``except ValueError`` keeps working.
"""
from __future__ import annotations

from typing import Optional


class FastPoseGaitError(Exception):
    """Base class of the errors caused by bad input (files, configs, arguments)."""


class ConfigError(FastPoseGaitError, ValueError):
    """A config file or override is invalid; the message names the file, key and fix."""


class UnknownNameError(FastPoseGaitError, KeyError):
    """A config names a model, loss, transform, sampler or evaluator that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0])


class DatasetError(FastPoseGaitError, ValueError):
    """The dataset root, partition or a sequence folder is unusable."""


class PoseFileError(FastPoseGaitError, ValueError):
    """A pose file cannot be used: unreadable, unsafe, or of the wrong shape/dtype/content."""


class CacheConfigError(FastPoseGaitError, ValueError):
    """``data_cfg.cache`` / ``data_cfg.cache_dir`` hold a value that cannot be used."""


class CheckpointError(FastPoseGaitError, ValueError):
    """A checkpoint named by restore_hint is missing or unusable."""


class Interrupted(FastPoseGaitError):
    """A run stopped on SIGINT or SIGTERM after leaving everything it wrote complete and
    resumable. ``exit_code`` follows the shell's convention for a signal (128 + its number)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class ConversionError(FastPoseGaitError, ValueError):
    """The conversion cannot start or continue: missing input, bad option, unusable split file."""


class ConversionInterrupted(Interrupted, ConversionError):
    """SIGINT or SIGTERM reached the main process during a conversion: the workers were
    stopped; every output already written is complete, and re-running the same command
    resumes."""


class RawFileError(FastPoseGaitError, ValueError):
    """One raw annotation file is malformed; the message names the file and the problem."""


class MissingFileError(FastPoseGaitError, FileNotFoundError):
    """A file that a config key or option names does not exist."""


class DeviceError(FastPoseGaitError, RuntimeError):
    """The requested device cannot be used: ``--device cuda`` without CUDA, or a process whose
    local rank has no GPU."""


class EvaluationError(FastPoseGaitError, ValueError):
    """The test set does not fit the evaluation protocol: an empty probe or gallery cell, no
    probe with a gallery match, a partition without PROBE_SET, NaN embeddings."""


class OutputDirError(FastPoseGaitError, OSError):
    """The run's output folder cannot be written, or another training run is writing it."""


class RunInterrupted(Interrupted):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the message says how to
    resume."""


class CollectiveError(FastPoseGaitError, RuntimeError):
    """A multi-process run lost a rank: a collective timed out or its peer disappeared."""


def user_message(exc: BaseException) -> Optional[str]:
    """The one-line message for an input error, or None for a genuine bug.

    An input error raised inside a DataLoader worker reaches the main process re-raised with
    the worker's traceback in its text; only the original message's last line is kept.
    """
    if not isinstance(exc, FastPoseGaitError):
        return None
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        head, sep, tail = last.partition(": ")
        text = tail if sep and head.endswith("Error") else last
    return text


class TrainingError(FastPoseGaitError, RuntimeError):
    """Training cannot go on: the loss stopped being finite (NaN or inf), so every later step
    and checkpoint would be garbage. The message names the iteration, the last checkpoint with
    finite weights, and what to check."""


class GalleryError(FastPoseGaitError, ValueError):
    """A gallery or embeddings file is unusable (not the safe ``.npz`` format, wrong shapes,
    non-finite values, another model's embeddings), or a gallery operation got inconsistent
    input; the message names the file or argument and the fix."""


class ResultsFileError(FastPoseGaitError, ValueError):
    """A file given as test results is not one: unreadable, not JSON, or without the
    ``results`` mapping the test phase writes."""


class ExportError(FastPoseGaitError, RuntimeError):
    """An export that cannot be made (a missing optional package, an unwritable file), or
    whose saved file differs from the eager model beyond the parity tolerance."""
