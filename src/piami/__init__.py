"""piami: a laboratory for physics-inspired mechanistic interpretability.

Idealized systems whose behaviour is known exactly (processes, theory), instruments that measure
real systems (instruments), and experiments that set every measurement beside the
theory's prediction.
"""

from importlib.metadata import PackageNotFoundError, version

from piami.errors import PiamiError

try:
    __version__ = version("piami")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["PiamiError", "__version__"]
