"""The machinery every converter shares: tasks, parallel execution, resume, atomic writes, summary.

A converter turns a raw dataset into a list of :class:`Task` objects, one per output sequence
(or, where one sequence's output name depends on its neighbours, one per group of sequences).
:func:`run_tasks` then

* removes, given the output root, the hidden temp files that interrupted writes left in it
  (:func:`remove_leftover_temps`);
* skips the tasks whose outputs all exist already (resume: writes are atomic, so an existing
  output is a complete one; a killed run leaves at most a hidden temp file, which is never taken
  for output);
* runs the others in ``workers`` processes (chunks of tasks per process call, a bounded number
  in flight so that ``--on-error stop`` stops promptly and memory stays flat), with a tqdm bar.
  The workers die with the main process, however it ends (:func:`worker_pool`), and SIGINT or
  SIGTERM on the main process stops them and ends the run with :class:`ConversionInterrupted`;
* collects one :class:`SequenceResult` per sequence into a :class:`ConversionSummary`: how many
  sequences were written, already done, left without any usable frame, and how many frames were
  dropped and why.

Per-file problems (truncated JSON, wrong column count, NaN) are :class:`RawFileError`. Under
``on_error="skip"`` a converter drops the frame and records the message; under ``"stop"`` it
re-raises and the run ends with that one message (the path and the fix), after the sequences
already written have been kept.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..data.io import atomic_write, default_file_mode, save_pickle
from ..errors import ConversionError, ConversionInterrupted, RawFileError

logger = logging.getLogger(__name__)

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
EMPTY = "empty"        # no usable frame: nothing written (the original scripts skip it as an "invalid sequence")


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
        """Count ``count`` frames dropped for ``reason``."""
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
        """Sequences with outcome ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def dropped(self) -> Counter:
        """Dropped frames by reason, over every sequence."""
        total: Counter = Counter()
        for r in self.results:
            total.update(r.dropped)
        return total

    @property
    def processed(self) -> int:
        """Sequences this run looked at (written or found without usable frames)."""
        return self.count(WRITTEN) + self.count(EMPTY)

    def sequences_per_second(self) -> float:
        """Conversion rate of this run (sequences found done are not counted)."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def format(self, top: int = 5) -> str:
        """Human-readable summary (several lines): counts, frames, person choices, malformed
        files (the first ``top`` of each), notes, time, and why the run stopped if it did."""
        lines = [self._counts_line(), self._frames_line()]
        lines.extend(self._choice_lines(top))
        lines.extend(self._problem_lines(top))
        lines.extend(self.notes)
        lines.append(self._time_line())
        if self.stopped_by:
            lines.append(f"STOPPED (--on-error stop): {self.stopped_by}")
        return "\n".join(lines)

    def _counts_line(self) -> str:
        """How many sequences were written, found done, or had no usable frame."""
        written, exists, empty = self.count(WRITTEN), self.count(EXISTS), self.count(EMPTY)
        return (f"{self.command}: {len(self.results)} sequences: {written} written, "
                f"{exists} already converted (skipped), {empty} without any usable frame (not written)")

    def _frames_line(self) -> str:
        """Frames read and written by this run (not by an earlier one), and the drops by reason."""
        read = sum(r.frames_read for r in self.results if r.status != EXISTS)
        kept = sum(r.frames_written for r in self.results if r.status != EXISTS)
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1]))
        return f"frames: {read} read, {kept} written" + (f"; dropped: {detail}" if detail else "; none dropped")

    def _choice_lines(self, top: int) -> List[str]:
        """Frames where the walker had to be chosen, by method, and the ``top`` sequences with most."""
        chosen = [r for r in self.results if r.choices]
        if not chosen:
            return []
        methods = Counter(r.selection for r in chosen)
        lines = [f"person choice: {sum(r.choices for r in chosen)} frames with several people in "
                 f"{len(chosen)} sequences (" + ", ".join(f"{m}: {n} seq" for m, n in sorted(methods.items())) + ")"]
        for r in sorted(chosen, key=lambda r: -r.choices)[:top]:
            lines.append(f"  {r.name}: {r.choices} of {r.frames_read} frames ({r.selection})")
        return lines

    def _problem_lines(self, top: int) -> List[str]:
        """The malformed files: how many, the first ``top``, and a pointer to ``--report``."""
        problems = [p for r in self.results for p in r.problems]
        if not problems:
            return []
        lines = [f"malformed files skipped: {len(problems)}"]
        lines.extend(f"  {p}" for p in problems[:top])
        if len(problems) > top:
            lines.append(f"  ... {len(problems) - top} more (see --report)")
        return lines

    def _time_line(self) -> str:
        """Wall time, conversion rate and worker count."""
        rate = self.sequences_per_second()
        return (f"time: {self.seconds:.1f} s ({rate:.1f} sequences/s converted, {self.workers} worker"
                f"{'s' if self.workers != 1 else ''})")

    def write_json(self, path: str | Path) -> None:
        """The ``--report`` file: totals, then every sequence's result."""
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


# ``.<name>.<random>.tmp``: the temp file of fastposegait.data.io.atomic_write (mkstemp's random
# part is letters, digits and underscores).
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def is_temp_name(name: str) -> bool:
    """True for the name of a temp file an atomic write creates (``.<name>.<random>.tmp``)."""
    return _TEMP_NAME.match(name) is not None


def remove_leftover_temps(root: str | Path) -> int:
    """Delete, everywhere under the output root ``root``, the temp files of atomic writes that
    a killed run left behind; returns how many.

    Hidden folders (the loader's ``.fastposegait_cache/`` among them) are not entered. A folder
    that held nothing but such temp files is removed too (with its parents, up to ``root``, when
    they become empty): the interrupted write created it, and the loader would reject it.
    Not for an output root that another conversion is writing to at the same time.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    removed, _ = _remove_temps_in(str(root), top=True)
    return removed


def _remove_temps_in(folder: str, top: bool = False) -> Tuple[int, bool]:
    """:func:`remove_leftover_temps` of one folder: ``(temp files removed, folder now gone)``."""
    removed, kept, emptied = 0, 0, 0
    with os.scandir(folder) as it:
        entries = list(it)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name.startswith("."):
                kept += 1
                continue
            n, gone = _remove_temps_in(entry.path)
            removed += n
            emptied += gone
            kept += not gone
        elif is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed += 1
        else:
            kept += 1
    if top or kept or not (removed or emptied):
        return removed, False
    try:
        os.rmdir(folder)
    except OSError:  # something appeared meanwhile: keep the folder
        return removed, False
    return removed, True


def write_sequence(
    path: str | Path,
    frames: Sequence[np.ndarray] | np.ndarray,
    dtype: Optional[np.dtype] = np.dtype(np.float64),
) -> np.ndarray:
    """Stack ``frames`` into ``[T, V, 3]`` and write it atomically as a pickle.

    float64 (the default) is what the original FastPoseGait JSON/TXT converters write; the
    loader never casts. ``dtype=None`` keeps the input's dtype (the 18 -> 17 step).
    """
    array = np.stack(frames) if not isinstance(frames, np.ndarray) else frames
    array = np.ascontiguousarray(array, dtype=dtype)
    remove_stale_temps(path)
    save_pickle(path, array, mode=FILE_MODE, fsync=_WRITES.fsync)
    return array


def write_json(path: str | Path, obj: Any, indent: Optional[int] = 1, fsync: bool = True) -> None:
    """Write ``obj`` as JSON atomically (temp file + rename; ``fsync=False``: not flushed to disk)."""
    text = json.dumps(obj, indent=indent) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), mode=FILE_MODE, fsync=fsync)


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------
def _run_chunk(tasks: Sequence[Task], on_error: str, fsync: bool) -> List[List[SequenceResult]]:
    """Run a chunk of tasks inside a worker process (one pool call for several small tasks).

    The fsync setting is set here because a worker process does not share the main process's
    ``_WRITES``."""
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


# ----------------------------------------------------------------------------------------------
# Worker processes that never outlive the main process
# ----------------------------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1          # prctl option (linux/prctl.h): signal this process when its parent dies
_PARENT_CHECK_SECONDS = 0.5    # how often a worker's watchdog thread looks at its parent


def _set_parent_death_signal(signum: int) -> bool:
    """Ask the Linux kernel to send ``signum`` to this process when its parent dies; False where
    that is not available (other systems, no C library found)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(parent: int) -> None:
    """Watchdog thread of a worker: end the process as soon as its parent is no longer
    ``parent`` (the parent died and the process was handed to another one)."""
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def _worker_init(main_pid: int) -> None:
    """Initializer of every pool worker (runs in the worker, before any task).

    * SIGTERM gets its default action back (a forked worker inherits the main process's
      handler, which would turn it into an exception inside a task) and SIGINT is ignored: a
      Ctrl-C in a terminal reaches every process of the group, and the main process stops the
      workers itself;
    * the worker dies with its parent: on Linux the kernel sends it SIGTERM when the parent
      dies (whatever killed it, SIGKILL included), and everywhere a watchdog thread ends it when
      its parent changes. A write cut short leaves only a hidden temp file, which the next run
      removes.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal(signal.SIGTERM)
    parent = os.getppid()
    # The main process is the parent (fork, spawn) unless a fork server started the worker.
    # Dead before the line above: the worker was already handed to another process.
    if parent != main_pid and not _pid_alive(main_pid):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watchdog", daemon=True).start()


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's worker processes now, whatever they are doing (their writes are atomic)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.terminate()


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers die with this process (see :func:`_worker_init`).

    On a normal exit, or a task's exception, the tasks already running finish (what they write
    is complete) and the queued ones are cancelled. On an interruption (Ctrl-C, SIGTERM: see
    :func:`interruptible`) the workers are terminated at once.
    """
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),))
    try:
        yield pool
    except (KeyboardInterrupt, ConversionInterrupted):
        _terminate_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`ConversionInterrupted` in the main thread
    (one line for the user: the run was interrupted, re-running resumes) instead of a traceback
    (SIGINT) or a death that leaves the workers behind (SIGTERM). A second signal during the
    clean-up ends the process at once. A signal this process ignores (SIGINT in a background
    job of a script) stays ignored; outside the main thread, nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: List[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:  # the user insists: no clean-up (the workers still die with this process)
            os._exit(128 + signum)
        received.append(signum)
        raise ConversionInterrupted(
            f"interrupted by {signal.Signals(signum).name}; the sequences written "
            "so far are complete — re-run the same command to resume", signum)

    signums = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _chunks(items: Sequence[int], size: int) -> Iterator[List[int]]:
    """``items`` cut into consecutive lists of ``size`` (the last one may be shorter)."""
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr counting sequences (stdout keeps only the summary)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def _check_run_options(on_error: str, workers: int) -> None:
    """Refuse an unknown error policy or a worker count below 1 before anything runs."""
    if on_error not in ON_ERROR_CHOICES:
        raise ConversionError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    if workers < 1:
        raise ConversionError(f"--workers must be >= 1, got {workers}")


@dataclass
class _Run:
    """What the steps of one :func:`run_tasks` call share.

    ``slots`` holds, per task and in task order, its results once it ran or was found done
    (None before), so that the summary keeps the tasks' order whatever order workers finish in.
    """

    tasks: Sequence[Task]
    on_error: str
    fsync: bool
    slots: List[Optional[List[SequenceResult]]]
    bar: Any = None

    def record(self, i: int, results: List[SequenceResult]) -> None:
        """Store task ``i``'s results and advance the progress bar by its sequences."""
        self.slots[i] = results
        self.bar.update(self.tasks[i].sequences)

    def results(self) -> List[SequenceResult]:
        """Every result so far, in task order (tasks that did not run yet are left out)."""
        return [r for rs in self.slots if rs is not None for r in rs]


def _skip_finished(tasks: Sequence[Task], overwrite: bool) -> Tuple[List[Optional[List[SequenceResult]]], List[int]]:
    """Resume: ``exists`` results for the tasks whose outputs all exist, and the indices of the
    tasks left to run. A task without declared outputs always runs (it resumes by itself)."""
    slots: List[Optional[List[SequenceResult]]] = [None] * len(tasks)
    todo: List[int] = []
    for i, task in enumerate(tasks):
        if not overwrite and task.outputs and all(is_finished(p) for p in task.outputs):
            slots[i] = [SequenceResult(name=task.name, status=EXISTS, output=p) for p in task.outputs]
        else:
            todo.append(i)
    return slots, todo


def _run_serial(run: _Run, todo: Sequence[int]) -> None:
    """Run the tasks in this process, one after the other (no pool: simplest to debug)."""
    for i in todo:
        task = run.tasks[i]
        run.record(i, task.run(*task.args, on_error=run.on_error))


def _default_chunk_size(todo: int, workers: int) -> int:
    """About 8 pool calls per worker (few enough to amortise the call, enough to balance the
    load), at most 64 tasks per call."""
    return max(1, min(64, todo // (workers * 8) or 1))


class _ChunkFeeder:
    """Keeps a bounded number of chunks in flight in a process pool and records their results.

    Submitting chunks a few at a time, rather than all at once, keeps memory flat and lets a
    ``RawFileError`` under ``on_error="stop"`` end the run without waiting for the whole queue.
    """

    def __init__(self, pool: ProcessPoolExecutor, run: _Run, chunks: Iterator[List[int]]):
        """Feed ``chunks`` (lists of task indices) to ``pool``, recording into ``run``."""
        self.pool, self.run, self.chunks = pool, run, chunks
        self.pending: Dict[Future, List[int]] = {}

    def submit(self) -> bool:
        """Send the next chunk to the pool; False when none is left."""
        chunk = next(self.chunks, None)
        if chunk is None:
            return False
        tasks = [self.run.tasks[i] for i in chunk]
        self.pending[self.pool.submit(_run_chunk, tasks, self.run.on_error, self.run.fsync)] = chunk
        return True

    def start(self, in_flight: int) -> None:
        """Submit up to ``in_flight`` chunks."""
        for _ in range(in_flight):
            if not self.submit():
                break

    def drain(self) -> None:
        """Record each chunk as it finishes and submit the next, until none is pending.

        On any error (a worker's exception, Ctrl-C) the chunks not yet started are cancelled by
        the pool's shutdown (:func:`worker_pool`), in the pool's own thread. Cancelling them
        here instead raced with that thread: when the workers are terminated (an interruption,
        a worker killed by the system) it marks every pending future failed, and a future
        cancelled in between made it print an ``InvalidStateError`` traceback."""
        while self.pending:
            done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            for fut in done:
                self._record(fut)
                self.submit()

    def _record(self, fut: Future) -> None:
        """Store a finished chunk's results (re-raising the exception of a failed one)."""
        chunk = self.pending.pop(fut)
        for i, results in zip(chunk, fut.result()):
            self.run.record(i, results)


def _run_parallel(run: _Run, todo: Sequence[int], workers: int, chunk_size: int) -> None:
    """Run the tasks in ``workers`` processes, ``chunk_size`` tasks per call, 3 calls per
    worker in flight."""
    with worker_pool(workers) as pool:
        feeder = _ChunkFeeder(pool, run, iter(list(_chunks(todo, chunk_size))))
        feeder.start(workers * 3)
        feeder.drain()


def _execute(run: _Run, todo: Sequence[int], workers: int, chunk_size: Optional[int]) -> None:
    """Run the remaining tasks serially (one worker, or a single task) or in a process pool."""
    if workers == 1 or len(todo) <= 1:
        _run_serial(run, todo)
    else:
        _run_parallel(run, todo, workers, chunk_size or _default_chunk_size(len(todo), workers))


def _fill_summary(summary: ConversionSummary, run: _Run, start: float) -> ConversionSummary:
    """Put the results so far and the elapsed time into ``summary`` and return it."""
    summary.results = run.results()
    summary.seconds = time.perf_counter() - start
    return summary


def run_tasks(
    tasks: Sequence[Task],
    command: str,
    workers: int = 1,
    on_error: str = "skip",
    overwrite: bool = False,
    progress: bool = True,
    chunk_size: Optional[int] = None,
    fsync: bool = False,
    output_root: Optional[str | Path] = None,
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
        output_root: the root the tasks write under; the temp files that interrupted writes
            left there are removed first (their number goes to the summary's notes).

    Raises:
        RawFileError: under ``on_error="stop"``, the first malformed file; ``summary`` is attached
            to the exception as ``exc.summary`` with everything finished before it.
        ConversionInterrupted: SIGINT or SIGTERM (from the main thread only); the workers are
            stopped, and what was written is complete.
    """
    _check_run_options(on_error, workers)
    with interruptible():
        return _run_tasks(tasks, command, workers, on_error, overwrite, progress, chunk_size, fsync, output_root)


def _run_tasks(tasks: Sequence[Task], command: str, workers: int, on_error: str, overwrite: bool, progress: bool,
               chunk_size: Optional[int], fsync: bool, output_root: Optional[str | Path]) -> ConversionSummary:
    """:func:`run_tasks` once its options are checked and the signals handled."""
    start = time.perf_counter()
    summary = ConversionSummary(command=command, workers=workers)
    if output_root is not None:
        removed = remove_leftover_temps(output_root)
        if removed:
            summary.notes.append(f"removed {removed} leftover temp file{'s' if removed != 1 else ''} of an "
                                 f"interrupted run under {output_root}")
    slots, todo = _skip_finished(tasks, overwrite)
    total = sum(tasks[i].sequences for i in todo)
    run = _Run(tasks, on_error, fsync, slots, _progress(total, command, progress and total > 0))
    previous_fsync, _WRITES.fsync = _WRITES.fsync, fsync
    try:
        _execute(run, todo, workers, chunk_size)
    except RawFileError as exc:
        summary.stopped_by = str(exc)
        exc.summary = _fill_summary(summary, run, start)  # type: ignore[attr-defined]
        raise
    finally:
        run.bar.close()
        _WRITES.fsync = previous_fsync
    return _fill_summary(summary, run, start)


def iter_dirs(path: str | Path) -> List[str]:
    """Sorted names of the sub-folders of ``path``: the subjects, types, views or sequences of
    a raw or converted tree. Files (such as GREW's ``*_gei.png``) and hidden folders (names
    starting with ``.``: the loader's ``.fastposegait_cache/``, ``.ipynb_checkpoints/``, ...)
    are left out."""
    with os.scandir(path) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


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


def real_path(path: str | Path) -> Path:
    """``path`` absolute, with ``~``, ``..`` and symbolic links resolved (it need not exist)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def is_within(path: str | Path, folder: str | Path) -> bool:
    """True when ``path`` is ``folder`` or lies anywhere below it (both resolved)."""
    path, folder = real_path(path), real_path(folder)
    return path == folder or folder in path.parents


def check_separate_roots(input_root: str | Path, output_root: str | Path) -> None:
    """Refuse an output root equal to the input, inside it, or holding it: the converted files
    (and the partition) would be mixed into the raw tree, where a later run reads them as input.

    Raises:
        ConversionError: one line naming both folders.
    """
    if real_path(output_root) == real_path(input_root):
        raise ConversionError(f"--output {str(output_root)!r} is the --input folder {str(input_root)!r}: the converted "
                              "files would be mixed into the raw tree; choose an output folder outside the input")
    if is_within(output_root, input_root):
        raise ConversionError(f"--output {str(output_root)!r} is inside the --input folder {str(input_root)!r}: the "
                              "converted files would be mixed into the raw tree (and read as input by a later run); "
                              "choose an output folder outside the input")
    if is_within(input_root, output_root):
        raise ConversionError(f"--output {str(output_root)!r} holds the --input folder {str(input_root)!r}: the "
                              "converted subjects would be mixed with the raw tree; choose an output folder "
                              "outside the input")

