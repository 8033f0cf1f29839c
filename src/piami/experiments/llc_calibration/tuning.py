"""How llc-calibration's SGLD settings were chosen: a grid on tuning cases that are never scored.

``llc-calibration-tuning`` (a part of llc-calibration, not in its plan: ``piami run
llc-calibration-tuning``) runs the estimator of :mod:`.cases` over a grid of step sizes and
localization strengths on *tuning cases*: architectures of the same families as the scored ones
but none of them (llc-calibration's Config refuses a scored case that is also a tuning case). The
rule: for each setting, the root-mean-square relative error of each tuning case over ``n_seeds``
seeds (what decides whether single estimates land within 10%: bias and spread); the score is the
worst of these over the cases; the setting with the lowest score wins, ties to the larger step
(faster mixing). Families 1 and 3 (regressions, deep linear networks) share one setting; family 2
(potentials) has its own. The chain and draw counts are not tuned: they follow from the CPU budget
(the docstring of :mod:`piami.experiments.llc_calibration`) and are the defaults of
:class:`~.cases.CaseConfig`.

History: a first grid (steps 2.5e-4 to 1e-3, 32 chains for the potentials) scored each case by
its mean error over two seeds; two seeds of a potential at +15% and -14% then averaged to a
winning 0.5%, so the score became the RMS error, the potentials got the 128 chains that cost
them little more than 32 (vectorized), and larger steps were added while the largest step tried
won (2e-3 for families 1 and 3, which lost; 3e-3 and 1e-2 for the potentials, of which 3e-3 won).
Every run of the grid was on tuning cases only.

The sanity row states whether the grid's choice is llc-calibration's default, so the defaults can
be re-derived by anyone from cases that are never scored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments.llc_calibration.cases import CaseConfig, cases, estimate, row_of
from piami.lab import Comparison, Experiment, Measurements
from piami.models import limit_threads

#: Cases the settings are tuned on (never scored): one or two per family and depth.
TUNING_REGULAR = ("4-2", "8-6")
TUNING_POTENTIALS = ("1-3", "4")
TUNING_DEEP_LINEAR = ("4-6-3:2", "5-3-4-6:1", "4-3-5-3:0", "3-4-4-4-3:1", "3-3-4-4-3-3:2")
#: The two grids: family label -> the config fields they set (step, localization).
GRIDS = {
    "regression and deep linear": ("step_size", "gamma"),
    "potential": ("nc_step_size", "nc_gamma"),
}


@dataclass(frozen=True, kw_only=True)
class TuneConfig(CaseConfig):
    """The grid over SGLD settings; the case lists default to the tuning cases."""

    regular: tuple[str, ...] = TUNING_REGULAR  # tuning regressions (not scored)
    potentials: tuple[str, ...] = TUNING_POTENTIALS  # tuning potentials (not scored)
    deep_linear: tuple[str, ...] = TUNING_DEEP_LINEAR  # tuning deep linear networks (not scored)
    n_seeds: int = 2  # seeds per grid point: cfg.seed * n_seeds + i
    step_sizes: tuple[float, ...] = (2.5e-4, 5e-4, 1e-3, 2e-3)  # families 1 and 3: steps tried
    gammas: tuple[float, ...] = (0.5, 1.0)  # families 1 and 3: localizations tried
    nc_step_sizes: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # family 2: steps
    nc_gammas: tuple[float, ...] = (0.5, 1.0)  # family 2: localizations tried

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n_seeds, bool) or not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise PiamiValueError(f"n_seeds must be an integer >= 1, got {self.n_seeds!r}")
        for name in ("step_sizes", "gammas", "nc_step_sizes", "nc_gammas"):
            v = getattr(self, name)
            if not v or not all(isinstance(x, (int, float)) and 0 <= x < np.inf for x in v):
                raise PiamiValueError(
                    f"{name} must be a non-empty tuple of numbers >= 0, got {v!r}"
                )

    def grid_of(self, family: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(steps, gammas)`` tried for ``family`` (a key of :data:`GRIDS`)."""
        if family == "potential":
            return self.nc_step_sizes, self.nc_gammas
        return self.step_sizes, self.gammas


@dataclass(kw_only=True)
class TuneMeasurements(Measurements):
    """The grids. ``grids``: family label (a key of :data:`GRIDS`) -> one entry per setting
    (``step_size``, ``gamma``, ``score``: worst RMS relative error, ``cases``: per-case errors)."""

    grids: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)


def grid(cfg: TuneConfig, family: str) -> list[dict[str, Any]]:
    """Every (step, gamma) of ``family``'s grid: per-case errors over seeds, and the score."""
    todo = [c for c in cases(cfg) if (c["family"] == "potential") == (family == "potential")]
    seeds = [cfg.seed * cfg.n_seeds + i for i in range(cfg.n_seeds)]
    out = []
    for step in cfg.grid_of(family)[0]:
        for gamma in cfg.grid_of(family)[1]:
            c = dataclasses.replace(cfg, **dict(zip(GRIDS[family], (step, gamma), strict=True)))
            errs = {}
            for case in todo:
                e = [row_of(case, estimate(c, case, s), 1.0)[0]["rel_error"] for s in seeds]
                rms = float(np.sqrt(np.mean(np.square(e))))
                errs[case["name"]] = {"mean": float(np.mean(e)), "rms": rms, "per_seed": e}
            score = max(v["rms"] for v in errs.values()) if errs else float("nan")
            out.append({"step_size": step, "gamma": gamma, "score": score, "cases": errs})
    return out


def select(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Lowest worst-case RMS relative error over seeds; ties to the larger step."""
    ok = [g for g in entries if np.isfinite(g["score"])]
    if not ok:
        return None
    return min(ok, key=lambda g: (round(g["score"], 12), -g["step_size"]))


def chosen(family: str, best: dict[str, Any]) -> dict[str, float]:
    """The config fields the grid's winner ``best`` sets for ``family``."""
    step, gamma = GRIDS[family]
    return {step: best["step_size"], gamma: best["gamma"]}


def measure(cfg: TuneConfig, *, progress: bool = True) -> TuneMeasurements:
    """Run both grids on the tuning cases."""
    m = TuneMeasurements()
    with limit_threads(cfg.n_threads):
        for family in GRIDS:
            m.grids[family] = m.metrics[f"grid, {family}"] = grid(cfg, family)
            best = select(m.grids[family])
            if best is not None:
                m.metrics[f"selected, {family}"] = chosen(family, best)
    return m


def compare(cfg: TuneConfig, m: TuneMeasurements) -> list[Comparison]:
    """One sanity row per grid: its choice is llc-calibration's default."""
    default = CaseConfig()
    rows = []
    for family, entries in m.grids.items():
        best = select(entries)
        if best is None:
            continue
        pick = chosen(family, best)
        is_default = all(getattr(default, k) == v for k, v in pick.items())
        nominal = {k: getattr(default, k) for k in GRIDS[family]}
        rows.append(
            Comparison(
                name=f"the grid's choice is llc-calibration's default ({family})",
                kind="sanity",
                predicted=1.0,
                measured=float(is_default),
                tolerance=0.0,
                tolerance_source="derived: the defaults are what this grid selects",
                note=(
                    f"selected {pick} (worst RMS relative error {best['score']:.3f}); "
                    f"default {nominal}"
                ),
            )
        )
    return rows


def describe(cfg: TuneConfig) -> str:
    """The report's opening paragraph."""
    return (
        "How llc-calibration's SGLD settings were chosen: a grid of step sizes and "
        "localizations on tuning cases that llc-calibration never scores."
    )


EXPERIMENT = Experiment(
    name="llc-calibration-tuning",
    config_cls=TuneConfig,
    measure=measure,
    compare=compare,
    describe=describe,
    part_of="llc-calibration",
    summary="the grid that chose llc-calibration's SGLD settings, on cases it never scores",
)
