"""The one thread-job abstraction every background task of the GUI uses.

A **job** is a callable run on a worker thread: ``fn(*args)``, or ``fn(ctx, *args)`` when it is
submitted with ``takes_context=True``. If it returns a generator (a generator function), each
item it yields reaches the GUI thread as ``Job.yielded(item)``; the return value follows as
``Job.finished(value)``, an exception as ``Job.failed(message, traceback)``. Every job that is
submitted reports exactly once: finished or failed, after all its yields.

``JobRunner`` lives in the GUI thread, and is owned by a panel. It runs its jobs one after
another, in the order they were submitted, on **one** QThread with one worker object moved
there (a second drop on the Translate tab queues behind the first; a model load runs before
the translations submitted after it). The thread runs while there is work and ends by itself
when the queue is empty: when a job was the last one, its finished/failed arrives after the
runner has joined the thread, so a receiver sees ``busy`` False and may submit the next job at
once, and nothing is left running between jobs.

Stopping goes through the job's ``JobContext``, never through widget state: ``Job.stop()`` and
``JobRunner.stop()`` set its ``threading.Event`` from the GUI thread; the job polls
``ctx.stop_requested`` (which also honours ``QThread.requestInterruption``), and the runner
ends a generator job at its next yield. A job with a graceful stop of its own (the trainer
saves a checkpoint on its way out) hands stops over with ``ctx.on_stop(trainer.stop)``; the
runner then lets it run to its end. The runner stops its jobs and joins its thread when the
app is about to quit (and before Qt deletes it).

Only copies cross threads: a job yields and returns objects it no longer touches (frozen
reports, fresh numpy arrays); the runner hands them on as they are.
"""

from __future__ import annotations

import inspect
import logging
import threading
import traceback
from collections import deque
from functools import partial
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

__all__ = ["JobContext", "Job", "JobRunner"]


# --- the thread-job abstraction -------------------------------------------------------------------
class JobContext:
    """What a running job gets from its runner: a thread-safe stop request, and a way to report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_handlers: list[Callable[[], None]] = []
        self._thread: QThread | None = None  # set by the worker before the job runs
        self._emit: Callable[[Any], None] | None = None

    @property
    def stop_requested(self) -> bool:
        """Any thread: a stop was asked for, or the thread was asked to finish (``requestInterruption``)."""
        thread = self._thread
        return self._stop.is_set() or (thread is not None and thread.isInterruptionRequested())

    def request_stop(self) -> None:
        """Any thread: ask the job to stop. Handlers given to ``on_stop`` run here, in the caller's thread."""
        with self._lock:
            self._stop.set()
            handlers = list(self._stop_handlers)
        for handler in handlers:
            handler()

    def on_stop(self, handler: Callable[[], None]) -> None:
        """Hand stops over to ``handler`` (thread-safe, e.g. ``trainer.stop``); called at once if one was
        asked for already. The job then ends by itself: the runner no longer cuts it at a yield."""
        with self._lock:
            self._stop_handlers.append(handler)
            stopped = self._stop.is_set()
        if stopped:
            handler()

    @property
    def stops_itself(self) -> bool:
        with self._lock:
            return bool(self._stop_handlers)

    def emit(self, item: Any) -> None:
        """Worker thread: send ``item`` to the GUI thread as if yielded (for engine code that reports
        through a callback). Hand over a copy: the GUI thread reads it later."""
        if self._emit is None:
            raise RuntimeError("the job is not running")
        self._emit(item)


class Job(QObject):
    """One submitted job; its signals are emitted in the GUI thread (by the ``JobRunner``)."""

    yielded = Signal(object)   # each item a generator job yields (or passes to ctx.emit), in order
    finished = Signal(object)  # the return value (None for a generator cut at a yield by a stop)
    failed = Signal(str, str)  # message, traceback

    def __init__(self, fn: Callable[..., Any], args: tuple, takes_context: bool):
        super().__init__()
        self.fn, self.args, self.takes_context = fn, args, takes_context
        self.context = JobContext()

    def stop(self) -> None:
        """Thread-safe: ask this job to stop (see ``JobContext``)."""
        self.context.request_stop()

    @property
    def stopped(self) -> bool:
        return self.context.stop_requested


class _JobQueue:
    """The state the GUI thread and the worker thread share, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._running = False  # a worker is working through the queue: a new job needs no new start

    def put(self, job: Job) -> bool:
        """GUI thread: queue ``job``; True when the thread has to be started for it."""
        with self._lock:
            self._pending.append(job)
            start, self._running = not self._running, True
            return start

    def take(self) -> Job | None:
        """Worker thread: the next job, or None, and then the worker counts as gone."""
        with self._lock:
            job = self._pending.popleft() if self._pending else None
            self._running = job is not None
            return job

    @property
    def running(self) -> bool:
        with self._lock:
            return self._running


class _JobWorker(QObject):
    """Lives in the runner's thread: runs the queued jobs one after another, then ends the thread."""

    yielded = Signal(object, object)  # job, item
    done = Signal(object, object)     # job, ("finished", value) | ("failed", message, traceback)

    def __init__(self, queue: _JobQueue):
        super().__init__()
        self._queue = queue

    @Slot()
    def run(self) -> None:
        thread = QThread.currentThread()
        try:
            job = self._queue.take()
            while job is not None:
                outcome = self._execute(job, thread)
                following = self._queue.take()  # None marks the runner idle before it hears of this end
                self.done.emit(job, outcome)
                job = following
        finally:
            # The thread ends its own event loop: a GUI thread blocked in wait() (quitting the app)
            # could never deliver a queued quit(), and would wait forever.
            thread.quit()

    def _execute(self, job: Job, thread: QThread) -> tuple:
        ctx = job.context
        ctx._thread, ctx._emit = thread, partial(self.yielded.emit, job)
        try:
            result = job.fn(ctx, *job.args) if job.takes_context else job.fn(*job.args)
            if inspect.isgenerator(result):
                result = self._iterate(job, result, thread)
        except Exception as e:  # anything at all: the GUI shows it and stays usable
            return ("failed", str(e) or type(e).__name__, traceback.format_exc())
        finally:
            ctx._emit = None
        return ("finished", result)

    def _iterate(self, job: Job, gen, thread: QThread) -> Any:
        """Each yield goes to the GUI thread and is a point where the job can be stopped."""
        ctx = job.context
        while True:
            try:
                item = next(gen)
            except StopIteration as end:
                return end.value
            self.yielded.emit(job, item)
            if thread.isInterruptionRequested() and not ctx._stop.is_set():
                ctx.request_stop()  # the owner is going away: a job's own stop handler must hear of it
            if ctx.stop_requested and not ctx.stops_itself:
                gen.close()  # GeneratorExit at the yield: the job's finally blocks run here
                return None


class JobRunner(QObject):
    """Runs jobs one after another, in FIFO order, on one QThread; lives in (and reports to) the GUI thread.

    ``submit`` connects the callbacks before the job is queued, so even a job that ends at once
    reports to them. ``busy`` is True from ``submit`` until the job's finished/failed was emitted.
    """

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.setObjectName(name)
        self._queue = _JobQueue()
        self._jobs: list[Job] = []  # GUI thread only: submitted and not yet reported (keeps them alive)
        self._thread = QThread(self)
        self._thread.setObjectName(name)
        self._worker = _JobWorker(self._queue)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.yielded.connect(self._on_worker_yielded)  # queued: the worker lives in the thread
        self._worker.done.connect(self._on_worker_done)
        # Qt deletes a parent's children after ``destroyed``: join the thread first (deleting a running
        # QThread aborts the process). The handler holds no reference to the runner itself.
        self.destroyed.connect(partial(_stop_and_join, self._jobs, self._thread))
        app = QCoreApplication.instance()
        if app is not None:  # a quit that skipped every closeEvent still must not kill a running thread
            app.aboutToQuit.connect(self._on_app_about_to_quit)

    # --- queries ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    @property
    def thread(self) -> QThread:
        return self._thread

    # --- commands --------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, takes_context: bool = False,
               yielded: Callable[[Any], None] | None = None, finished: Callable[[Any], None] | None = None,
               failed: Callable[[str, str], None] | None = None) -> Job:
        """Queue ``fn(*args)`` (``fn(ctx, *args)`` with ``takes_context``); returns its ``Job``.

        ``args`` are handed to the worker thread as they are: pass values the GUI does not change.
        """
        job = Job(fn, args, takes_context)
        for signal, slot in ((job.yielded, yielded), (job.finished, finished), (job.failed, failed)):
            if slot is not None:
                signal.connect(slot)
        self._jobs.append(job)
        if self._queue.put(job):
            self._thread.wait()  # a worker that has just run out of work may still be on its way out
            self._thread.start()
        return job

    def stop(self) -> None:
        """Ask every job not yet reported to stop: the running one now, the queued ones as they start.
        Each still reports (finished or failed); a plain function that does not poll its context
        runs to its end, so what stops early is a generator (at its next yield) or a polling job."""
        for job in list(self._jobs):
            job.stop()

    def wait(self, ms: int = -1) -> bool:
        """Join the thread, so every queued job has run (shutdown, tests); True when it has finished.
        Their reports arrive later, through the event loop."""
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    def shutdown(self) -> None:
        """Stop the jobs and join the thread (closing, quitting)."""
        self.stop()
        self.wait()

    # --- internals -------------------------------------------------------------------------------
    def _on_app_about_to_quit(self) -> None:
        self.shutdown()

    @Slot(object, object)
    def _on_worker_yielded(self, job: Job, item: Any) -> None:
        job.yielded.emit(item)

    @Slot(object, object)
    def _on_worker_done(self, job: Job, outcome: tuple) -> None:
        if not self._queue.running:
            self._thread.wait()  # the worker took its last job: join it before anyone hears of the end
        self._jobs.remove(job)
        if outcome[0] == "finished":
            job.finished.emit(outcome[1])
        else:
            job.failed.emit(outcome[1], outcome[2])


def _stop_and_join(jobs: list[Job], thread: QThread, *_args: Any) -> None:
    for job in jobs:
        job.stop()
    thread.wait()
