"""A user's experiment: the TwoNN dimension of spheres, beside the dimension they have.

The example of the docs' page "Writing an experiment" (docs/lab.md). Make it visible to
``piami`` by naming its module in ``PIAMI_PLUGINS``, from the folder that holds it:

    PYTHONPATH=docs/examples PIAMI_PLUGINS=sphere_dimension piami run sphere-dimension --quick

Theory: the unit sphere ``S^d`` is a ``d``-dimensional manifold, whatever space it sits in.
Measurement: TwoNN (Facco et al. 2017) on points drawn uniformly on ``S^d`` and rotated into
``R^ambient``. Control: the same cloud with every coordinate shuffled on its own (no manifold
left), which a broken estimator that reads the same number whatever the data fails.
"""

# --8<-- [start:config]
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from piami.instruments import twonn_dimension
from piami.lab import Comparison, Experiment, FigureSpec, Measurements

TOLERANCE = 0.1  # relative; a module constant, so nobody widens it until a row passes


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the sphere-dimension experiment."""

    seed: int = 0  # every random draw derives from it
    dims: tuple[int, ...] = (2, 3, 4)  # sphere dimensions d to measure
    ambient: int = 20  # dimension of the space the spheres are rotated into
    n_points: int = 4000  # points per sphere
    shuffle: bool = False  # broken ingredient: shuffle every sphere's coordinates


# --8<-- [end:config]


# --8<-- [start:measure]
@dataclass(kw_only=True)
class SphereMeasurements(Measurements):
    """What ``compare`` and ``figures`` need, beyond ``metrics``."""

    estimates: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    null: float = float("nan")  # TwoNN of S^2 with shuffled coordinates


def sphere(d: int, cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """``(n_points, ambient)``: uniform on ``S^d``, rotated into ``R^ambient``."""
    x = rng.normal(size=(cfg.n_points, d + 1))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q, _ = np.linalg.qr(rng.normal(size=(cfg.ambient, cfg.ambient)))
    x = np.pad(x, ((0, 0), (0, cfg.ambient - d - 1))) @ q
    return shuffled(x, rng) if cfg.shuffle else x


def shuffled(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every column permuted on its own: the marginals stay, the manifold goes."""
    return np.column_stack([rng.permutation(col) for col in x.T])


def measure(cfg: Config, *, progress: bool = True) -> SphereMeasurements:
    """Draw the spheres and the null, and run TwoNN on each (all from the seed)."""
    rng = np.random.default_rng(cfg.seed)
    m = SphereMeasurements()
    for d in cfg.dims:
        est = twonn_dimension(sphere(d, cfg, rng))
        m.estimates[d] = (est.dimension, est.low, est.high)
    m.null = twonn_dimension(shuffled(sphere(2, cfg, rng), rng)).dimension
    m.metrics = {
        "twonn": {str(d): e[0] for d, e in m.estimates.items()},
        "twonn_shuffled_s2": m.null,
    }
    return m


# --8<-- [end:measure]


# --8<-- [start:compare]
def compare(cfg: Config, m: SphereMeasurements) -> list[Comparison]:
    """One prediction per sphere and the shuffled null: a pure function of ``m``."""
    rows = [
        Comparison(
            name=f"TwoNN dimension of S^{d}",
            kind="prediction",
            predicted=float(d),
            measured=est,
            tolerance=TOLERANCE,
            relative=True,
            tolerance_source="a priori: 10%, stated before the first run",
            measured_interval=(low, high),
            max_interval_width=2.0,  # wider: cannot tell d - 1 from d + 1
            reference="Facco et al. 2017",
        )
        for d, (est, low, high) in m.estimates.items()
    ]
    rows.append(
        Comparison(
            name="TwoNN of S^2 with shuffled coordinates exceeds the band around 2",
            kind="control",
            predicted=2 * (1 + TOLERANCE),
            measured=m.null,
            tolerance=0.0,
            sense="at_least",
            tolerance_source="a priori: the upper edge of the prediction's band",
        )
    )
    return rows


# --8<-- [end:compare]


# --8<-- [start:figures]
def figures(cfg: Config, m: SphereMeasurements) -> list[FigureSpec]:
    """The estimates with their intervals against the diagonal."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.2))
    dims = sorted(m.estimates)
    est = np.array([m.estimates[d] for d in dims])
    yerr = [est[:, 0] - est[:, 1], est[:, 2] - est[:, 0]]
    ax.errorbar(dims, est[:, 0], yerr=yerr, fmt="o")
    ax.plot(dims, dims, "k--", lw=1, label="d")
    ax.set(xlabel="sphere dimension d", ylabel="TwoNN estimate")
    ax.legend()
    fig.tight_layout()
    caption = "TwoNN on S^d with 95% intervals."
    return [FigureSpec(name="twonn", figure=fig, caption=caption)]


# --8<-- [end:figures]


# --8<-- [start:register]
def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    return (
        f"TwoNN (Facco et al. 2017) on {cfg.n_points} points of the spheres S^d, "
        f"d in {list(cfg.dims)}, rotated into R^{cfg.ambient}; the null shuffles "
        "every coordinate."
    )


EXPERIMENT = Experiment(
    name="sphere-dimension",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={"dims": (2, 3), "n_points": 1500},
    summary="TwoNN on spheres S^d against d, with a shuffled-coordinate null",
)
# --8<-- [end:register]
