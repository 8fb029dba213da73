"""An interrupted parallel conversion: the pool is stopped without a race that printed a
thread's ``InvalidStateError`` traceback before the one-line message."""
import threading
import time
from concurrent.futures import Future

import pytest

from fastposegait.converters import tasks as tasks_module
from fastposegait.converters.tasks import Task
from fastposegait.errors import ConversionInterrupted


def _slow(seconds, on_error):
    time.sleep(seconds)
    return []


class _InterruptingBar:
    """A progress bar whose first update raises what SIGINT raises in the main thread."""

    def update(self, n):
        raise ConversionInterrupted("interrupted by SIGINT; re-run the same command to resume", 2)


def test_an_interrupted_pool_run_cancels_no_future_from_the_main_thread(monkeypatch):
    main_thread_cancels = []
    real_cancel = Future.cancel

    def cancel(self):
        main_thread_cancels.append(threading.current_thread() is threading.main_thread())
        return real_cancel(self)

    thread_errors = []
    monkeypatch.setattr(Future, "cancel", cancel)
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    todo = list(range(12))
    run = tasks_module._Run(tasks=[Task(f"t{i}", _slow, (0.3,)) for i in todo], on_error="skip", fsync=False,
                            slots=[None] * len(todo), bar=_InterruptingBar())
    with pytest.raises(ConversionInterrupted, match="interrupted by SIGINT"):
        tasks_module._run_parallel(run, todo, 2, 1)
    # the pool's own thread cancels the queued calls and marks the others broken; a cancel
    # from this thread in between made that thread die with InvalidStateError
    assert True not in main_thread_cancels
    assert thread_errors == []
