"""The staircase experiment's settings, and the protocol they fix.

The per-sample step of online SGD follows the noise-limited prescription ``lr0 d^(-max(leap/2,
1))`` (Ben Arous, Gheissari & Jagannath 2021; Abbe et al. 2023): it supplies ``max(leap/2, 1)`` of
the predicted sample exponent ``max(leap - 1, 1)`` by construction, so the experiment times escape
in gradient-flow time ``t = lr * samples`` and compares only what the theory adds
(:func:`added_exponent`). A replica escapes when its test loss first falls below
:data:`ESCAPE_SHARE` of the last non-zero plateau.
"""

from __future__ import annotations

from dataclasses import dataclass

from piami.errors import PiamiValueError
from piami.models.device import resolve_dtype
from piami.theory.leap import escape_exponent

#: A replica escapes the last plateau when its test loss first falls below this share of it.
#: Chosen with this rewrite among 0.5 / 0.75 / 0.9 by looking at seed 0 (quick and full) and seeds
#: 1-2 (quick): 0.5 adds the descent after the escape (a d-free constant that lowers the leap-3
#: exponent to ~0.37-0.40), 0.9 sits in the test-set noise (wider intervals). Not tuned on other
#: seeds; certify's further seeds are the out-of-sample check.
ESCAPE_SHARE = 0.75


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the staircase experiment (networks, online SGD, and the limit beside them)."""

    seed: int = 0  # draws every initialization and every sample
    leaps: tuple[int, ...] = (1, 2, 3)  # which standard staircase targets to train
    dims: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128)  # input dimensions d (>= 4 for the fit)
    width: int = 128  # hidden units N
    n_replicas: int = 6  # independent networks per (leap, d); the exponent fit pools them
    init_w_scale: float = 1.0  # first-layer init w ~ N(0, init_w_scale^2 / d)
    init_a_scale: float = 1.0  # second-layer init a ~ N(0, init_a_scale^2)
    lr0: float = 0.1  # per-sample step is lr0 * d^(-max(leap/2, 1)) (mean-field units)
    dt: float = 0.05  # gradient-flow time per step: batch = dt / (per-sample step) fresh samples
    t_max: float = 400.0  # give up after this much gradient-flow time
    eval_dt: float = 0.4  # gradient-flow time between test-loss evaluations
    n_test: int = 2048  # test samples for the loss curve
    mf_particles: int = 4000  # particles of the mean-field limit integrated beside the networks
    mf_dt: float = 0.02  # integration step of that limit (gradient-flow time)
    shuffle_labels: bool = False  # broken ingredient: train on labels of independent inputs
    dtype: str = "float32"  # torch dtype
    device: str = "auto"  # torch device

    def __post_init__(self) -> None:
        if not self.leaps or any(x not in (1, 2, 3) for x in self.leaps):
            raise PiamiValueError(f"leaps must be among 1, 2, 3, got {self.leaps!r}")
        if len(set(self.leaps)) != len(self.leaps):
            raise PiamiValueError(f"leaps must not repeat, got {self.leaps!r}")
        if len(set(self.dims)) < 4 or min(self.dims) < 4:
            raise PiamiValueError(f"need >= 4 distinct dims >= 4 for the fit, got {self.dims!r}")
        if not (self.init_w_scale > 0 and self.init_a_scale > 0):
            raise PiamiValueError("init_w_scale and init_a_scale must be > 0")
        if self.width < 2 or self.n_replicas < 1:
            raise PiamiValueError("width must be >= 2 and n_replicas >= 1")
        if not (self.lr0 > 0 and 0 < self.dt <= 0.5 and self.t_max > 0 and self.eval_dt >= self.dt):
            raise PiamiValueError("need lr0 > 0, 0 < dt <= 0.5, t_max > 0 and eval_dt >= dt")
        if self.mf_particles < 100 or not 0 < self.mf_dt <= 0.1:
            raise PiamiValueError("need mf_particles >= 100 and 0 < mf_dt <= 0.1")
        if self.n_test < 100:
            raise PiamiValueError(f"n_test must be >= 100, got {self.n_test}")
        if not isinstance(self.shuffle_labels, bool):
            raise PiamiValueError(
                f"shuffle_labels must be true or false, got {self.shuffle_labels!r}"
            )
        resolve_dtype(self.dtype)


def lr_per_sample(lr0: float, leap: int, d: int) -> float:
    """Noise-limited online-SGD step: ``lr0 d^(-max(leap/2, 1))``.

    Example:
        >>> lr_per_sample(0.1, 3, 4)
        0.0125
    """
    return lr0 * d ** (-max(leap / 2.0, 1.0))


def schedule_exponent(leap: int) -> float:
    """Exponent of ``1/d`` in the per-sample step ``lr0 d^(-max(leap/2, 1))`` (the protocol's)."""
    return max(leap / 2.0, 1.0)


def added_exponent(leap: int) -> float:
    """What the theory adds beyond the schedule: ``max(leap - 1, 1) - max(leap/2, 1)``.

    Abbe, Boix-Adsera & Misiakiewicz 2023 (escape in ``~ d^max(leap - 1, 1)`` samples): 0 for
    leaps 1 and 2, 1/2 for leap 3.
    """
    return escape_exponent(leap) - schedule_exponent(leap)
