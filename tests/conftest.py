"""Shared test settings: a non-interactive plotting backend, no Ray auth token, and a derandomized
hypothesis (same code, same examples: CI cannot fail on a draw a local run never saw; set
``HYPOTHESIS_PROFILE=explore`` to fuzz with fresh random examples)."""

import os

from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
