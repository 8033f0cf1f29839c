"""Size limits derived from the machine: refuse what cannot fit, before allocating it.

A request that would exhaust memory (a 10^9-wide layer in a checkpoint's config, a random HMM
with 10^6 states, a grid of 10^8 runs) must fail at once with a one-line error that states the
estimate and the limit, not after minutes of swapping or with a raw ``MemoryError``. The limit
is half of the physical memory (the other half is left to the rest of the process and the
machine), overridable with ``$PIAMI_MEMORY_LIMIT_GB``.
"""

from __future__ import annotations

import functools
import os

from piami.errors import PiamiValueError

#: Fraction of physical memory one request may claim.
MEMORY_FRACTION = 0.5
#: Most runs one sweep or certificate may plan (each run is at least a folder and a process task).
MAX_RUNS = 100_000


@functools.lru_cache(maxsize=1)
def physical_memory_bytes() -> int:
    """Physical memory of this machine in bytes (8 GiB when the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def memory_limit_bytes() -> int:
    """The most memory one request may claim: ``$PIAMI_MEMORY_LIMIT_GB`` or half the RAM."""
    env = os.environ.get("PIAMI_MEMORY_LIMIT_GB", "").strip()
    if env:
        try:
            gb = float(env)
        except ValueError:
            gb = -1.0
        if gb > 0:
            return int(gb * 2**30)
    return int(MEMORY_FRACTION * physical_memory_bytes())


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def check_memory(n_bytes: float, what: str, *, fix: str = "") -> None:
    """Raise :class:`PiamiValueError` when ``n_bytes`` exceeds :func:`memory_limit_bytes`.

    Args:
        n_bytes: the estimate of what the request would allocate.
        what: what is being allocated, for the message (e.g. ``"random_hmm(n_states=10**6)"``).
        fix: how to make the request fit, appended to the message.

    Example:
        >>> check_memory(1e3, "a small array")
        >>> check_memory(1e30, "a huge array")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        piami.errors.PiamiValueError: a huge array needs about ... PiB, over the limit of ...
    """
    limit = memory_limit_bytes()
    if not n_bytes <= limit:  # NaN too
        source = (
            "PIAMI_MEMORY_LIMIT_GB"
            if os.environ.get("PIAMI_MEMORY_LIMIT_GB", "").strip()
            else "half this machine's memory; set PIAMI_MEMORY_LIMIT_GB to change it"
        )
        raise PiamiValueError(
            f"{what} needs about {_human(float(n_bytes))}, over the limit of {_human(limit)} "
            f"({source})" + (f"; {fix}" if fix else "")
        )


def check_count(n: int, limit: int, what: str, *, fix: str = "") -> None:
    """Raise :class:`PiamiValueError` when a count ``n`` exceeds ``limit``."""
    if n > limit:
        raise PiamiValueError(
            f"{what}: {n:,} is over the limit of {limit:,}" + (f"; {fix}" if fix else "")
        )
