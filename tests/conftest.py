"""Shared test settings: a non-interactive plotting backend and no Ray auth token."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
