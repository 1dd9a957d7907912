"""The one thread-job abstraction (``gui.jobs.JobRunner``): yields, results, errors, stops, order, joins."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gui.jobs import JobRunner

TIMEOUT = 10000
MAIN = threading.get_ident()


@pytest.fixture
def runner():
    r = JobRunner("test-jobs")
    yield r
    r.shutdown()


def test_a_generator_jobs_yields_arrive_in_order_in_the_gui_thread_as_copies(qtbot, runner):
    worker_thread = []

    def job(n):
        worker_thread.append(threading.get_ident())
        buf = np.zeros(4)
        for i in range(n):
            buf[:] = i  # the job keeps writing its buffer after each yield...
            yield buf.copy()  # ...so what it hands over is a copy
        return "done"

    got, seen_in, events = [], [], []

    def on_yielded(arr):
        seen_in.append(threading.get_ident())
        got.append(arr)
        events.append("yielded")

    runner.submit(job, 50, yielded=on_yielded, finished=lambda v: events.append(("finished", v)))
    qtbot.waitUntil(lambda: bool(events) and events[-1] == ("finished", "done"), timeout=TIMEOUT)
    assert worker_thread and worker_thread[0] != MAIN
    assert set(seen_in) == {MAIN}  # delivered in the GUI thread
    assert events == ["yielded"] * 50 + [("finished", "done")]  # all yields, in order, then the result
    assert [a[0] for a in got] == list(range(50))
    for i, a in enumerate(got):  # nothing torn: each array still holds what was yielded
        np.testing.assert_array_equal(a, np.full(4, float(i)))
    assert len({id(a) for a in got}) == 50


def test_the_return_value_arrives_after_the_thread_finished_and_a_receiver_may_submit_again(qtbot, runner):
    seen = []

    def on_finished(value):
        seen.append((value, runner.thread.isFinished(), runner.busy))
        if len(seen) == 1:
            runner.submit(sum, (4, 5), finished=on_finished)  # the next job, from the receiver, at once

    job = runner.submit(lambda a, b: a * b, 6, 7, finished=on_finished)
    assert runner.busy
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=TIMEOUT)
    assert seen == [(42, True, False), (9, True, False)]
    assert not job.stopped and runner.wait(0)


def test_an_exception_arrives_via_failed_with_its_message_and_traceback(qtbot, runner):
    got, failures = [], []

    def broken():
        yield 1
        raise ValueError("the 42nd image is corrupt")

    runner.submit(broken, yielded=got.append, finished=lambda v: pytest.fail(f"finished with {v!r}"),
                  failed=lambda msg, tb: failures.append((msg, tb, runner.thread.isFinished())))
    qtbot.waitUntil(lambda: bool(failures), timeout=TIMEOUT)
    msg, tb, joined = failures[0]
    assert msg == "the 42nd image is corrupt" and joined
    assert "ValueError" in tb and "broken" in tb
    assert got == [1]
    # The runner stays usable; an exception without a message is named by its type.
    runner.submit(lambda: {}["k"], failed=lambda msg, _tb: failures.append(msg))
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=TIMEOUT)
    assert failures[1] == "'k'"
    runner.submit(lambda: 1 / 0, failed=lambda msg, _tb: failures.append(msg))
    qtbot.waitUntil(lambda: len(failures) == 3, timeout=TIMEOUT)
    assert "division by zero" in failures[2]


def test_stop_ends_a_long_generator_job_at_its_next_yield(qtbot, runner):
    produced, closed = [], threading.Event()

    def forever():
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
                time.sleep(0.002)
        finally:
            closed.set()  # GeneratorExit at the yield: the job's own clean-up runs

    got, results = [], []
    job = runner.submit(forever, yielded=got.append, finished=results.append)
    qtbot.waitUntil(lambda: len(got) >= 3, timeout=TIMEOUT)
    at_stop = len(produced)
    runner.stop()
    qtbot.waitUntil(lambda: bool(results), timeout=TIMEOUT)
    assert results == [None] and job.stopped and closed.is_set()
    assert len(produced) <= at_stop + 1  # it ran at most to its next yield
    assert got == produced and runner.wait(0) and not runner.busy


def test_a_job_that_takes_its_stop_over_ends_by_itself(qtbot, runner):
    """``ctx.on_stop``: the trainer's pattern. The runner does not cut it; its handler hears the stop."""

    def graceful(ctx, label):
        stop = threading.Event()
        ctx.on_stop(stop.set)  # called at once when the stop came before this line
        i = 0
        while not stop.is_set():
            yield i
            i += 1
            time.sleep(0.002)
        yield "saving"
        return label

    got, results = [], []
    job = runner.submit(graceful, "clean", takes_context=True, yielded=got.append, finished=results.append)
    qtbot.waitUntil(lambda: len(got) >= 3, timeout=TIMEOUT)
    job.stop()
    qtbot.waitUntil(lambda: bool(results), timeout=TIMEOUT)
    assert results == ["clean"] and got[-1] == "saving"

    # A stop before the job even started reaches the handler as soon as it is registered.
    job = runner.submit(graceful, "early", takes_context=True, yielded=got.append, finished=results.append)
    job.stop()
    qtbot.waitUntil(lambda: len(results) == 2, timeout=TIMEOUT)
    assert results[1] == "early" and got[-1] == "saving"


def test_callback_style_jobs_report_through_ctx_emit_and_poll_the_stop(qtbot, runner):
    def engine_style(ctx, n):
        def callback(i):
            ctx.emit(np.array([i]))

        i = 0
        while i < n and not ctx.stop_requested:
            callback(i)
            i += 1
        return i

    got, results = [], []
    runner.submit(engine_style, 5, takes_context=True, yielded=got.append, finished=results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=TIMEOUT)
    assert results == [5] and [int(a[0]) for a in got] == list(range(5))


def test_queued_jobs_run_in_fifo_order_one_at_a_time_on_one_thread(qtbot, runner):
    lock, ran, finished = threading.Lock(), [], []
    active = {"now": 0, "max": 0}

    def work(name):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            ran.append((name, threading.get_ident()))
        time.sleep(0.02)
        with lock:
            active["now"] -= 1
        return name

    for name in "abcde":
        runner.submit(work, name, finished=finished.append)
    assert runner.busy
    qtbot.waitUntil(lambda: len(finished) == 5, timeout=TIMEOUT)
    assert finished == list("abcde") and [n for n, _ in ran] == list("abcde")
    assert active["max"] == 1
    idents = {ident for _, ident in ran}
    assert len(idents) == 1 and MAIN not in idents
    assert not runner.busy and runner.wait(0)


def test_wait_runs_out_the_queue_and_app_quit_stops_and_joins(qtbot, runner):
    ran = []
    for i in range(3):
        runner.submit(lambda i=i: (time.sleep(0.01), ran.append(i)))
    assert runner.wait()  # joined: every queued job has run
    assert ran == [0, 1, 2] and runner.thread.isFinished()
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT)  # their reports come through the event loop

    def forever():
        while True:
            yield
            time.sleep(0.002)

    results = []
    runner.submit(forever, finished=results.append)
    assert not runner.wait(50)
    runner._on_app_about_to_quit()  # what QApplication.aboutToQuit runs: stop, then join
    assert runner.thread.isFinished()
    qtbot.waitUntil(lambda: results == [None], timeout=TIMEOUT)


def test_an_interruption_request_on_the_thread_stops_the_job(qtbot, runner):
    heard, results = [], []

    def job(ctx):
        ctx.on_stop(lambda: heard.append("stop"))
        while not heard:
            yield
            time.sleep(0.002)
        return ctx.stop_requested

    runner.submit(job, takes_context=True, finished=results.append)
    qtbot.waitUntil(lambda: runner.thread.isRunning(), timeout=TIMEOUT)
    runner.thread.requestInterruption()
    qtbot.waitUntil(lambda: bool(results), timeout=TIMEOUT)
    assert results == [True] and heard


def test_deleting_a_runner_stops_and_joins_its_thread_first(qtbot):
    r = JobRunner("test-jobs-deleted")
    closed = threading.Event()

    def forever():
        try:
            while True:
                yield
                time.sleep(0.002)
        finally:
            closed.set()

    r.submit(forever)
    thread = r.thread
    qtbot.waitUntil(thread.isRunning, timeout=TIMEOUT)
    with qtbot.waitSignal(r.destroyed, timeout=TIMEOUT):
        r.deleteLater()  # Qt would abort the process if it deleted the running QThread
    assert closed.is_set()
