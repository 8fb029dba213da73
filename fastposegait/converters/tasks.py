"""The machinery every converter shares: tasks, parallel execution, resume, atomic writes, summary.

A converter turns a raw dataset into a list of :class:`Task` objects, one per output sequence
(or, where one sequence's output name depends on its neighbours, one per group of sequences).
:func:`run_tasks` then

* skips the tasks whose outputs all exist already (resume: writes are atomic, so an existing
  output is a complete one; a killed run leaves at most a hidden temp file, which is removed
  before the sequence is written again and is never taken for output);
* runs the others in ``workers`` processes (chunks of tasks per process call, a bounded number
  in flight so that ``--on-error stop`` stops promptly and memory stays flat), with a tqdm bar;
* collects one :class:`SequenceResult` per sequence into a :class:`ConversionSummary`: how many
  sequences were written, already done, left without any usable frame, and how many frames were
  dropped and why.

Per-file problems (truncated JSON, wrong column count, NaN) are :class:`RawFileError`. Under
``on_error="skip"`` a converter drops the frame and records the message; under ``"stop"`` it
re-raises and the run ends with that one message (the path and the fix), after the sequences
already written have been kept.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..data.io import atomic_write, default_file_mode, save_pickle
from ..errors import ConversionError, RawFileError

logger = logging.getLogger("fastposegait.converters")

ON_ERROR_CHOICES = ("skip", "stop")
# Converted files get the permissions of any new file (not mkstemp's owner-only 0o600): a
# dataset on a shared machine must be readable by the people who train on it. Read once, in
# the main process, before worker processes start.
FILE_MODE = default_file_mode()


@dataclass
class _WriteSettings:
    fsync: bool = False


# Set by run_tasks for this process and inside each worker call (see _run_chunk), read by
# write_sequence: converters need not thread it through their signatures.
_WRITES = _WriteSettings()

# Sequence outcomes.
WRITTEN = "written"
EXISTS = "exists"      # already converted by an earlier run (resume)
EMPTY = "empty"        # no usable frame: nothing written (upstream's "invalid sequence")


@dataclass
class SequenceResult:
    """What happened to one sequence.

    Attributes:
        name: ``subject/type/view`` of the output (or the raw folder when nothing was written).
        status: ``written``, ``exists`` (earlier run) or ``empty`` (no usable frame).
        output: the pickle path, when one exists.
        frames_read: frame files (or annotation frames) looked at.
        frames_written: frames in the written array.
        dropped: reason -> number of frames dropped for it.
        choices: frames that held several people, where the person had to be chosen.
        selection: how the person was chosen (``tracking``, ``silhouette``, ``index``, ...).
        problems: messages about malformed files (path and reason), in frame order.
    """

    name: str
    status: str
    output: Optional[str] = None
    frames_read: int = 0
    frames_written: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    choices: int = 0
    selection: str = ""
    problems: List[str] = field(default_factory=list)

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


@dataclass(frozen=True)
class Task:
    """One unit of work for a worker process.

    ``run(*args, on_error=...)`` must be a module-level function (it is pickled by name) and
    returns one :class:`SequenceResult` per sequence it handled. ``outputs`` are the files the
    task produces; when all exist the task is skipped without running (resume). A task whose
    output names are only known while it runs (GREW gallery numbering) leaves ``outputs``
    empty and resumes by itself. ``sequences`` is its weight on the progress bar.
    """

    name: str
    run: Callable[..., List[SequenceResult]]
    args: Tuple[Any, ...]
    outputs: Tuple[str, ...] = ()
    sequences: int = 1


@dataclass
class ConversionSummary:
    """Totals of one run, printed at the end and optionally written as JSON (``--report``)."""

    command: str
    workers: int
    seconds: float = 0.0
    results: List[SequenceResult] = field(default_factory=list)
    stopped_by: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def dropped(self) -> Counter:
        total: Counter = Counter()
        for r in self.results:
            total.update(r.dropped)
        return total

    @property
    def processed(self) -> int:
        """Sequences this run looked at (written or found without usable frames)."""
        return self.count(WRITTEN) + self.count(EMPTY)

    def sequences_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def format(self, top: int = 5) -> str:
        """Human-readable summary (several lines)."""
        written, exists, empty = self.count(WRITTEN), self.count(EXISTS), self.count(EMPTY)
        lines = [
            f"{self.command}: {len(self.results)} sequences: {written} written, "
            f"{exists} already converted (skipped), {empty} without any usable frame (not written)"
        ]
        read = sum(r.frames_read for r in self.results if r.status != EXISTS)
        kept = sum(r.frames_written for r in self.results if r.status != EXISTS)
        dropped = self.dropped
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        lines.append(f"frames: {read} read, {kept} written" + (f"; dropped: {detail}" if detail else "; none dropped"))
        chosen = [r for r in self.results if r.choices]
        if chosen:
            methods = Counter(r.selection for r in chosen)
            lines.append(
                f"person choice: {sum(r.choices for r in chosen)} frames with several people in "
                f"{len(chosen)} sequences (" + ", ".join(f"{m}: {n} seq" for m, n in sorted(methods.items())) + ")"
            )
            for r in sorted(chosen, key=lambda r: -r.choices)[:top]:
                lines.append(f"  {r.name}: {r.choices} of {r.frames_read} frames ({r.selection})")
        problems = [p for r in self.results for p in r.problems]
        if problems:
            lines.append(f"malformed files skipped: {len(problems)}")
            lines.extend(f"  {p}" for p in problems[:top])
            if len(problems) > top:
                lines.append(f"  ... {len(problems) - top} more (see --report)")
        lines.extend(self.notes)
        rate = self.sequences_per_second()
        lines.append(f"time: {self.seconds:.1f} s ({rate:.1f} sequences/s converted, {self.workers} worker"
                     f"{'s' if self.workers != 1 else ''})")
        if self.stopped_by:
            lines.append(f"STOPPED (--on-error stop): {self.stopped_by}")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        payload = {
            "command": self.command,
            "workers": self.workers,
            "seconds": self.seconds,
            "written": self.count(WRITTEN),
            "exists": self.count(EXISTS),
            "empty": self.count(EMPTY),
            "dropped": dict(self.dropped),
            "stopped_by": self.stopped_by,
            "notes": self.notes,
            "sequences": [asdict(r) for r in self.results],
        }
        write_json(path, payload, indent=1)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def remove_stale_temps(path: str | Path) -> int:
    """Delete temp files an interrupted atomic write of ``path`` left behind; returns how many.

    :func:`fastposegait.data.io.atomic_write` names its temp file ``.<name>.<random>.tmp`` in the
    target folder. Such a file is never a finished output, and left in a sequence folder without a
    pickle it would make the loader reject the folder.
    """
    path = Path(path)
    removed = 0
    if path.parent.is_dir():
        prefix = f".{path.name}."
        for entry in os.scandir(path.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp") and entry.is_file():
                os.unlink(entry.path)
                removed += 1
    return removed


def write_sequence(
    path: str | Path,
    frames: Sequence[np.ndarray] | np.ndarray,
    dtype: Optional[np.dtype] = np.dtype(np.float64),
) -> np.ndarray:
    """Stack ``frames`` into ``[T, V, 3]`` and write it atomically as a pickle.

    float64 (the default) is what the upstream JSON/TXT converters write; the loader never
    casts. ``dtype=None`` keeps the input's dtype (the 18 -> 17 step).
    """
    array = np.stack(frames) if not isinstance(frames, np.ndarray) else frames
    array = np.ascontiguousarray(array, dtype=dtype)
    remove_stale_temps(path)
    save_pickle(path, array, mode=FILE_MODE, fsync=_WRITES.fsync)
    return array


def write_json(path: str | Path, obj: Any, indent: Optional[int] = 1) -> None:
    """Write ``obj`` as JSON atomically (temp file + rename)."""
    text = json.dumps(obj, indent=indent) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), mode=FILE_MODE)


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------
def _run_chunk(tasks: Sequence[Task], on_error: str, fsync: bool) -> List[List[SequenceResult]]:
    _WRITES.fsync = fsync
    return [task.run(*task.args, on_error=on_error) for task in tasks]


def is_finished(path: str) -> bool:
    """An output counts as done when it exists and is not empty (a rename-based write never
    leaves a partial file behind a killed process; a machine crash without ``fsync`` may leave
    an empty one, which is then converted again)."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def _chunks(items: Sequence[int], size: int) -> Iterator[List[int]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def run_tasks(
    tasks: Sequence[Task],
    command: str,
    workers: int = 1,
    on_error: str = "skip",
    overwrite: bool = False,
    progress: bool = True,
    chunk_size: Optional[int] = None,
    fsync: bool = False,
) -> ConversionSummary:
    """Run ``tasks`` (resuming, in parallel) and return the summary.

    Args:
        tasks: the work, in output order (the summary keeps this order).
        command: name shown in the progress bar and the summary.
        workers: processes; 1 runs in this process (no pool, easiest to debug).
        on_error: ``skip`` (drop malformed frames, keep going) or ``stop`` (end the run at the
            first malformed file; what was written stays, a re-run resumes).
        overwrite: convert again even when the outputs exist.
        progress: show a tqdm bar on stderr.
        chunk_size: tasks per process call (default: about 8 calls per worker, at most 64 tasks).
        fsync: flush each written file to disk before its rename. Off by default: the rename
            alone guarantees that a killed run leaves no partial output, and one fsync per
            small file would dominate the run time (measured: ~80% on a VM disk).

    Raises:
        RawFileError: under ``on_error="stop"``, the first malformed file; ``summary`` is attached
            to the exception as ``exc.summary`` with everything finished before it.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise ConversionError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    if workers < 1:
        raise ConversionError(f"--workers must be >= 1, got {workers}")
    start = time.perf_counter()
    summary = ConversionSummary(command=command, workers=workers)
    slots: List[Optional[List[SequenceResult]]] = [None] * len(tasks)
    todo: List[int] = []
    for i, task in enumerate(tasks):
        if not overwrite and task.outputs and all(is_finished(p) for p in task.outputs):
            slots[i] = [SequenceResult(name=task.name, status=EXISTS, output=p) for p in task.outputs]
        else:
            todo.append(i)
    total = sum(tasks[i].sequences for i in todo)
    bar = _progress(total, command, progress and total > 0)
    previous_fsync, _WRITES.fsync = _WRITES.fsync, fsync
    try:
        if workers == 1 or len(todo) <= 1:
            for i in todo:
                slots[i] = tasks[i].run(*tasks[i].args, on_error=on_error)
                bar.update(tasks[i].sequences)
        else:
            size = chunk_size or max(1, min(64, len(todo) // (workers * 8) or 1))
            index_chunks = list(_chunks(todo, size))
            with ProcessPoolExecutor(max_workers=workers) as pool:
                pending: Dict[Future, List[int]] = {}
                queue = iter(index_chunks)

                def submit() -> bool:
                    chunk = next(queue, None)
                    if chunk is None:
                        return False
                    pending[pool.submit(_run_chunk, [tasks[i] for i in chunk], on_error, fsync)] = chunk
                    return True

                for _ in range(workers * 3):
                    if not submit():
                        break
                try:
                    while pending:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            chunk = pending.pop(fut)
                            for i, res in zip(chunk, fut.result()):
                                slots[i] = res
                                bar.update(tasks[i].sequences)
                            submit()
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
    except RawFileError as exc:
        summary.stopped_by = str(exc)
        summary.results = [r for rs in slots if rs is not None for r in rs]
        summary.seconds = time.perf_counter() - start
        exc.summary = summary  # type: ignore[attr-defined]
        raise
    finally:
        bar.close()
        _WRITES.fsync = previous_fsync
    summary.results = [r for rs in slots if rs is not None for r in rs]
    summary.seconds = time.perf_counter() - start
    return summary


def iter_dirs(path: str | Path) -> List[str]:
    """Sorted names of the sub-folders of ``path`` (files such as GREW's ``*_gei.png`` are
    not sequences and are left out)."""
    with os.scandir(path) as it:
        return sorted(e.name for e in it if e.is_dir())


def iter_files(path: str | Path, suffix: str = "") -> List[str]:
    """Sorted names of the files in ``path`` ending with ``suffix``."""
    with os.scandir(path) as it:
        return sorted(e.name for e in it if e.is_file() and e.name.endswith(suffix))


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or a :class:`ConversionError` saying what folder was expected."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConversionError(f"{what} {str(p)!r} does not exist or is not a folder")
    return p
