"""Measurements: what an experiment measured, before it is compared with theory.

An experiment is three functions (ARCHITECTURE.md):

- ``measure(cfg, *, progress) -> Measurements``: the compute (training, sampling, estimating);
- ``compare(cfg, m) -> list[Comparison]``: theory beside the measurements, every row with its kind
  and tolerance source; a pure function of ``m``, so it is unit-tested on synthetic measurements
  in milliseconds, including a case where each row fails;
- ``figures(cfg, m) -> list[FigureSpec]``: the plots.

The framework builds the :class:`~piami.lab.Result` from them. An experiment's measurements are a
subclass of :class:`Measurements` (a keyword-only dataclass) that adds whatever ``compare`` and
``figures`` need (arrays, fitted objects); only ``metrics`` (JSON-ready, deterministic) and
``timing`` (wall clock) reach ``result.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class Measurements:
    """Base class of an experiment's measurements.

    Attributes:
        metrics: numbers for ``result.json`` (JSON-ready; the same for the same config and seed).
        timing: wall-clock measurements (seconds, throughput), kept apart from the science.
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FigureSpec:
    """A matplotlib figure with its name and caption, as ``figures`` returns it."""

    name: str
    figure: Any
    caption: str = ""
