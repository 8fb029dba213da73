"""How every command-line program of the repository ends: :func:`run_cli` wraps its ``main``.

* ``main`` returns: its int is the exit status (``None`` or any other value, such as a summary
  object, is 0). Output still buffered for stdout is flushed here, so a closed pipe is seen
  by this function and not by the interpreter's shutdown.
* The reader of stdout or stderr went away (``... | head -1``): ``BrokenPipeError``. The program
  stops quietly with status :data:`EXIT_BROKEN_PIPE` = 141, the status a shell reports for a
  program killed by SIGPIPE (128 + 13), which is what ``cat`` or ``grep`` do in the same pipe.
  The broken stream is pointed at the null device first, so the interpreter's last flush does
  not print "Exception ignored ... BrokenPipeError" either. A broken pipe that is neither
  stdout's nor stderr's (a worker's, a socket) is a bug and keeps its traceback.
* An input error (:class:`~fastposegait.errors.FastPoseGaitError`): ``error: <message>`` on
  stderr, one line, status :data:`EXIT_INPUT_ERROR` = 1, or the error's ``exit_code`` when it
  has one (``RunInterrupted``: 128 + the signal's number). (The programs that give other
  statuses to some input errors, such as ``config error: ...`` with 2, catch those themselves.)
* Ctrl-C (``KeyboardInterrupt``): one line on stderr, status :data:`EXIT_INTERRUPTED` = 130
  (128 + SIGINT, as a shell reports it).
* ``SystemExit`` (argparse's ``--help`` and usage errors) keeps its status.
* Anything else is a bug and keeps its traceback.

Entry points use it as ``raise SystemExit(run_cli(main))``.
"""
from __future__ import annotations

import os
import select
import sys
from typing import Any, Callable, Optional, TextIO

from .errors import FastPoseGaitError, user_message

#: exit status of a program whose output pipe was closed by its reader (128 + SIGPIPE)
EXIT_BROKEN_PIPE = 141
#: exit status of a program stopped by Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130
#: exit status of a program stopped by an input error that reached :func:`run_cli`
EXIT_INPUT_ERROR = 1


def run_cli(main: Callable[..., Any], *args: Any, interrupted: Optional[str] = None) -> int:
    """Call ``main(*args)`` and return the process exit status (see the module docstring).

    ``interrupted`` is added to the one line printed on Ctrl-C (e.g. how to resume).
    """
    try:
        try:
            result = main(*args)
        except SystemExit:
            _flush_stdout()  # what argparse printed: a closed pipe is seen here, not at shutdown
            raise
        _flush_stdout()
    except BrokenPipeError:
        if not _silence_broken_streams():
            raise  # some other pipe (a worker's, a socket): a bug, keep the traceback
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _say("interrupted" + (f"; {interrupted}" if interrupted else ""))
        return EXIT_INTERRUPTED
    except FastPoseGaitError as exc:
        _say(f"error: {user_message(exc)}")
        return getattr(exc, "exit_code", EXIT_INPUT_ERROR)
    if isinstance(result, bool) or not isinstance(result, int):
        return 0
    return result


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _silence_broken_streams() -> bool:
    """Point stdout and stderr at the null device where their reader is gone, so nothing more
    (the interpreter's final flush included) fails on them; False when neither is broken."""
    broken = [stream for stream in (sys.stdout, sys.stderr) if _reader_gone(stream)]
    for stream in broken:
        _to_devnull(stream)
    return bool(broken)


def _reader_gone(stream: Optional[TextIO]) -> bool:
    """Whether ``stream`` is a pipe (or socket) that nobody reads any more."""
    fd = _fileno(stream)
    if fd is None:
        return False
    poll = getattr(select, "poll", None)
    if poll is None:  # no poll() on this platform: assume the pipe that broke was this one
        return True
    poller = poll()
    poller.register(fd, select.POLLOUT)
    # the write end of a pipe without readers reports POLLERR; a closed socket, POLLHUP
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _fileno(stream: Optional[TextIO]) -> Optional[int]:
    try:
        return stream.fileno() if stream is not None else None
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture buffer), or closed
        return None


def _to_devnull(stream: TextIO) -> None:
    fd = _fileno(stream)
    if fd is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _say(line: str) -> None:
    """Print one line to stderr, unless stderr's reader is gone too."""
    try:
        print(line, file=sys.stderr, flush=True)
    except BrokenPipeError:
        _silence_broken_streams()  # nobody can read it: nothing to say
