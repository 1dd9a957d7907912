"""The thread-safe requests a caller sends a running training loop: pause, resume, stop, save.

Each is an event the loop reads at its next step boundary; none touches the models. The
GUI's worker calls these from the GUI thread while the loop runs in the worker thread.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator, TypeVar

__all__ = ["Controls"]

T = TypeVar("T")


class Controls:
    def __init__(self) -> None:
        self._stop, self._running, self._save_request = threading.Event(), threading.Event(), threading.Event()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can see the stop

    def request_save(self) -> None:
        """Save a checkpoint at the next step boundary (at once while paused)."""
        self._save_request.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def take_save_request(self) -> bool:
        """Whether a save was asked for since the last call."""
        if self._save_request.is_set():
            self._save_request.clear()
            return True
        return False

    def wait_while_paused(self, save: Callable[[], T] | None) -> Iterator[T]:
        """Block while paused, yielding ``save()`` for each save asked for meanwhile (when there is a
        ``save``); the generator returns the seconds spent paused."""
        if self._running.is_set():
            return 0.0
        paused_at = time.perf_counter()
        while not self._running.wait(0.1):
            if save is not None and self.take_save_request():
                yield save()
        return time.perf_counter() - paused_at
