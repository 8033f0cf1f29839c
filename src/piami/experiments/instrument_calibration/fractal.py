"""Fractal section of ``instrument-calibration``: the dimension of a fractal belief set.

The hidden Markov process of :func:`sierpinski_T` updates its belief by the chaos game
``eta -> (eta + e_x) / 2``, so its belief set is the Sierpinski triangle, of dimension
``log 3 / log 2`` (Hutchinson 1981); its Lyapunov (information) dimension is exact (Jurgens &
Crutchfield 2021). The box-counting and correlation dimension (Grassberger & Procaccia 1983) of
the visited beliefs must read it; the filled triangle (dimension 2) is the null. Like every
section, :func:`measure_fractal` measures and :func:`compare_fractal` compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from piami.lab import Comparison
from piami.theory.fractal import (
    DimensionEstimate,
    belief_dynamics,
    box_counting_dimension,
    correlation_dimension,
    simplex_coordinates,
)

#: relative tolerance of the fractal dimensions of the Sierpinski set (both estimators)
FRACTAL_TOL = 0.05


@dataclass(kw_only=True)
class FractalMeasured:
    """The Sierpinski belief set (exact dimension ``log 3 / log 2``) and the filled triangle.

    Attributes:
        lyapunov_exponents, entropy_rate, lyapunov_dimension: of the belief dynamics (nats).
        box, corr: box-counting and correlation dimension of the belief set.
        filled: correlation dimension of as many uniform points of the simplex.
        points: the belief set in simplex coordinates, thinned for the figure.
    """

    lyapunov_exponents: list[float]
    entropy_rate: float
    lyapunov_dimension: float
    box: DimensionEstimate
    corr: DimensionEstimate
    filled: DimensionEstimate
    n_points: int
    points: np.ndarray

    def metrics(self) -> dict[str, Any]:
        return {
            "lyapunov_exponents": self.lyapunov_exponents,
            "entropy_rate": self.entropy_rate,
            "lyapunov_dimension": self.lyapunov_dimension,
            "box": self.box.dimension,
            "correlation": self.corr.dimension,
            "filled_triangle_correlation": self.filled.dimension,
        }


def sierpinski_T() -> np.ndarray:
    """HMM whose belief maps are the chaos game eta -> (eta + e_x)/2: belief set = Sierpinski."""
    T = np.zeros((3, 3, 3))
    for x in range(3):
        A = np.eye(3) / 2
        A[:, x] += 0.5
        T[x] = A / 3
    return T


def measure_fractal(cfg: Any, rng: np.random.Generator) -> FractalMeasured:
    """Dimensions of the Sierpinski belief set and of the filled triangle."""
    bd = belief_dynamics(
        sierpinski_T(), n_steps=cfg.fractal_steps, n_chains=2 * cfg.fractal_chains, rng=rng
    )
    P = simplex_coordinates(bd.points)
    box, corr = box_counting_dimension(P), correlation_dimension(P)
    lam = rng.dirichlet(np.ones(3), size=P.shape[0])  # uniform in the simplex: not a fractal
    filled = correlation_dimension(simplex_coordinates(lam))
    return FractalMeasured(
        lyapunov_exponents=bd.lyapunov_exponents.tolist(),
        entropy_rate=bd.entropy_rate,
        lyapunov_dimension=bd.lyapunov_dimension,
        box=box,
        corr=corr,
        filled=filled,
        n_points=P.shape[0],
        points=P[:: max(1, P.shape[0] // 20000)],
    )


def compare_fractal(cfg: Any, m: FractalMeasured) -> list[Comparison]:
    """Lyapunov, box-counting and correlation dimension against ``log 3 / log 2`` (Hutchinson
    1981); the filled triangle (dimension 2) as the null."""
    d_true = float(np.log(3) / np.log(2))
    a_priori = f"a priori: {FRACTAL_TOL:.0%} relative, stated when the estimators were added"
    box, corr, filled = m.box, m.corr, m.filled
    return [
        Comparison(
            name="Sierpinski belief set: Lyapunov (information) dimension",
            kind="prediction",
            predicted=d_true,
            measured=m.lyapunov_dimension,
            tolerance=1e-6,
            relative=True,
            tolerance_source="derived: the maps are similarities of ratio 1/2 and every symbol "
            "has probability 1/3, so exponents and entropy rate are exact up to rounding",
            reference="Jurgens & Crutchfield 2021 (Chaos 31, 083114)",
            note="exponents "
            + ", ".join(f"{x:.6f}" for x in m.lyapunov_exponents)
            + f" (exact -log 2 = {-np.log(2):.6f}); entropy rate {m.entropy_rate:.6f} (log 3)",
        ),
        Comparison(
            name="Sierpinski belief set: box-counting dimension",
            kind="prediction",
            predicted=d_true,
            measured=box.dimension,
            tolerance=FRACTAL_TOL,
            relative=True,
            tolerance_source=a_priori,
            measured_interval=(box.low, box.high),
            reference="Hutchinson 1981; log 3 / log 2",
            note=f"{m.n_points} points; slope interval of the fit ({box.interval})",
        ),
        Comparison(
            name="Sierpinski belief set: correlation dimension",
            kind="prediction",
            predicted=d_true,
            measured=corr.dimension,
            tolerance=FRACTAL_TOL,
            relative=True,
            tolerance_source=a_priori,
            measured_interval=(corr.low, corr.high),
            reference="Grassberger & Procaccia 1983",
            note=f"{corr.n_points} points; slope interval of the fit ({corr.interval})",
        ),
        Comparison(
            name="filled triangle: correlation dimension (null of the Sierpinski rows)",
            kind="control",
            predicted=2.0,
            measured=filled.dimension,
            tolerance=FRACTAL_TOL,
            relative=True,
            tolerance_source=a_priori,
            measured_interval=(filled.low, filled.high),
            reference="Grassberger & Procaccia 1983",
            note=f"as many uniform points of the simplex; an estimator that returned log 3 / log 2 "
            f"({d_true:.3f}) for any belief-like cloud fails here",
        ),
    ]
