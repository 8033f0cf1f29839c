"""Errors raised by piami.

Every error a user can cause is a :class:`PiamiError`: it says what was expected, what came, and how
to fix it. Subclasses also derive from the matching builtin (``ValueError``, ``TypeError``, ...), so
code that already catches those keeps working. The CLI prints a ``PiamiError`` as one line, without
a traceback, and exits with status 2.
"""

from __future__ import annotations


class PiamiError(Exception):
    """Base class of every error piami raises on bad input or an impossible request."""


class PiamiValueError(PiamiError, ValueError):
    """An argument has the right type but a value piami cannot use."""


class PiamiTypeError(PiamiError, TypeError):
    """An argument has the wrong type."""


class PiamiShapeError(PiamiValueError):
    """An array has the wrong rank or shape."""


class PiamiKeyError(PiamiError, KeyError):
    """A name (process, experiment, config key) is unknown; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PiamiFileError(PiamiError, OSError):
    """A file or folder is missing, empty, unreadable or not what was expected."""


class DivergenceError(PiamiError, RuntimeError):
    """A numerical procedure diverged (non-finite values); the message names the
    setting to lower."""


class DivergentQuantityError(PiamiValueError):
    """The quantity asked for is infinite for this process (e.g. C_mu of a non-unifilar process)."""


__all__ = [
    "DivergenceError",
    "DivergentQuantityError",
    "PiamiError",
    "PiamiFileError",
    "PiamiKeyError",
    "PiamiShapeError",
    "PiamiTypeError",
    "PiamiValueError",
]
