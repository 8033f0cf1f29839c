"""The fuzz suite: generated bad input for the CLI, the spec language, the file readers and the
public estimators. Each case must end in success or a one-line PiamiError, within a stated time,
leaving no half-written file.

``PIAMI_FUZZ_SCALE`` multiplies every test's number of examples (default 1; CI runs the default,
derandomized; ``HYPOTHESIS_PROFILE=explore PIAMI_FUZZ_SCALE=20`` fuzzes longer with fresh draws).
The session prints how many cases ran and held.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

SCALE = float(os.environ.get("PIAMI_FUZZ_SCALE", "1") or 1)
CASES = {"ran": 0, "held": 0}


def examples(n: int) -> int:
    """``n`` examples times the scale."""
    return max(1, int(n * SCALE))


@contextmanager
def case():
    """Count one generated case: ran on entry, held when the block finishes without failing."""
    CASES["ran"] += 1
    yield
    CASES["held"] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if CASES["ran"]:
        terminalreporter.write_line(
            f"fuzz suite: {CASES['ran']} generated cases ran, {CASES['held']} held"
        )
