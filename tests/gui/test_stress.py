"""Many start/stop cycles in one app session leak neither threads nor memory."""

from __future__ import annotations

import gc
import threading
import time

import psutil
import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

TIMEOUT = 60000
CYCLES = 50
MAX_GROWTH_MB = 100


def _settle() -> None:
    for _ in range(3):
        QApplication.processEvents()
        QApplication.sendPostedEvents(None, 0)  # deleteLater of workers and threads
        gc.collect()


@pytest.mark.slow
def test_fifty_start_stop_cycles_leave_no_thread_and_bounded_memory(qtbot, window, tmp_path):
    """Train, then Stop right away, 50 times through the window's own buttons.

    Each cycle builds a trainer, writes a run folder and a step-0 checkpoint, and joins its
    thread. Resident memory after the last cycle stays within 100 MB of that after the first.
    """
    c = window.controller
    proc = psutil.Process()
    threads: list[QThread] = []
    c.started.connect(lambda _info: threads.append(c.jobs.thread))
    baseline_py_threads = None
    rss_first = None
    t0 = time.monotonic()
    for i in range(CYCLES):
        window.run_folder.set_path(str(tmp_path / "runs" / f"r{i:02d}"))
        with qtbot.waitSignal(c.finished, timeout=TIMEOUT) as done:
            window.controls.train.click()
            window.controls.stop.click()  # while the trainer is still being built
        assert done.args[0].reason == "stopped", done.args[0]
        assert not c.busy and c.wait(0) and window.controls.train.isEnabled()
        if i == 0:
            _settle()
            rss_first = proc.memory_info().rss
            baseline_py_threads = threading.active_count()
    _settle()
    rss_last = proc.memory_info().rss
    elapsed = time.monotonic() - t0

    growth_mb = (rss_last - rss_first) / 2**20
    print(f"{CYCLES} cycles in {elapsed:.1f} s; RSS after the first {rss_first / 2**20:.0f} MB, "
          f"after the last {rss_last / 2**20:.0f} MB ({growth_mb:+.1f} MB)")
    assert growth_mb < MAX_GROWTH_MB
    # No QThread still running (the autouse fixture checks too), and no Python thread left behind
    # (the batch prefetcher of each run).
    for t in threads:
        try:
            assert not t.isRunning()
        except RuntimeError:  # deleted on the C++ side: it finished
            pass
    assert threading.active_count() <= baseline_py_threads
    assert all((tmp_path / "runs" / f"r{i:02d}" / "checkpoints" / "latest.pt").is_file() for i in range(CYCLES))
