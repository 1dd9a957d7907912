"""Work around a reference-count bug of the installed PySide6 on CPython < 3.12.

Some PySide6 builds (seen with 6.12.0 on Python 3.11) return ``None`` from void methods,
and ``True`` from ``Signal.emit``, without taking a new reference. On Python 3.12+ these
singletons are immortal, so nothing happens; on 3.11 each call steals one reference and,
after a few thousand Qt calls, the interpreter aborts with "Fatal Python error:
none_dealloc: deallocating None". Training for a minute makes far more calls than that.

When a probe shows the leak, the singletons' reference counts are raised by 2**40: in
effect what Python 3.12 does (immortal singletons). Nothing else is touched.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_applied = False


def _leaks() -> bool:
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        fired = Signal()

    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(8):
        probe.setObjectName("probe")  # void → None
        probe.fired.emit()            # → True
    return sys.getrefcount(None) < none_before or sys.getrefcount(True) < true_before


def protect_singletons() -> bool:
    """Apply the workaround if this interpreter and PySide6 need it; True when applied."""
    global _applied
    if _applied:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if not _leaks():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40  # ob_refcnt is PyObject's first field
    _applied = True
    import PySide6

    log.info("PySide6 %s leaks references to None/True on Python %d.%d: singletons made immortal "
             "(as on Python 3.12)", PySide6.__version__, *sys.version_info[:2])
    return True
