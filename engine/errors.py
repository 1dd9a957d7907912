"""Every error the engine raises on purpose derives from ``EngineError``.

Each carries a message written for the person who caused it: it names the file, folder,
field or value and says what is allowed. The CLI prints it as one line (exit 2), the app
shows it in a dialog; neither needs to know which subclass it is.
"""

from __future__ import annotations

__all__ = ["EngineError", "ConfigError", "DataError", "DataGoneError", "CheckpointError", "RunLockedError",
           "MissingExtraError"]


class EngineError(Exception):
    """Base class of the engine's user-facing errors."""


class ConfigError(EngineError, ValueError):
    """A configuration value is invalid. The message names field, value and what is allowed.

    ``field`` is the setting at fault when there is one (the form marks that field), else None.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class DataError(EngineError):
    """A data problem with a clear, user-facing message that names the file or folder."""


class DataGoneError(DataError):
    """A domain's folder disappeared (deleted, renamed, unmounted) while it was in use."""


class CheckpointError(EngineError):
    """A checkpoint or model file cannot be written or read. The message says which file and why."""


class RunLockedError(EngineError):
    """Another process is writing to this run folder."""


class MissingExtraError(EngineError, ImportError):
    """An optional dependency is not installed. The message is one line that says what to install."""
