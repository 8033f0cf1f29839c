"""Saddle-to-saddle learning of staircase targets by online SGD (Abbe, Boix-Adsera & Misiakiewicz 2023).

A two-layer ReLU network ``f(x) = (1/N) sum_j a_j relu(w_j . x + b_j)`` (mean-field scale) is trained
by online SGD (every step draws fresh samples) on hypercube targets of leap 1
(``x1 + x1x2 + x1x2x3``), leap 2 (``x1 + x1x2x3``) and leap 3 (``x1x2x3``) in ``d`` dimensions.
Theory (:mod:`piami.theory.leap`): the loss sits on plateaus equal to the summed squared
coefficients of the monomials not yet learned, and escaping the hardest plateau takes
``~ d^max(leap - 1, 1)`` SGD steps.

Protocol. The step size follows the noise-limited prescription of online SGD analyses (Ben Arous,
Gheissari & Jagannath 2021; Abbe et al. 2023): ``lr = lr0 d^(-max(leap/2, 1))`` per sample, i.e.
``lr ~ 1/d`` for leaps 1 and 2 and ``lr ~ d^(-3/2)`` for leap 3. The predicted exponent is then the
lr's exponent plus that of the gradient-flow escape time (``O(log d)`` for leaps 1-2, ``~ d^(1/2)``
for leap 3 from an initial overlap ``~ d^(-1/2)``): only the second part is a measurement, and the
report says so. Steps are counted in samples: a minibatch of ``B`` fresh samples with step ``B lr``
counts as ``B`` online steps (same drift and noise per sample while ``B lr`` is small). Several
independent networks (replicas) train side by side as one batched tensor; gradients are written out
by hand (tested against autograd).

Theory beside the networks. Each run also integrates the networks' own high-dimensional mean-field
limit (:mod:`piami.theory.mean_field`: width and d to infinity, with the online-SGD noise term) from
zero overlap, with the same initial scales and step. For leaps 2 and 3 the limit never leaves the
saddle (loss 1.000002 and 1.0000000001 at the end of the run): the plateau the leap picture names is
exact there, and the finite-d networks leave it only through their d^(-1/2) overlaps. For leap 1 it
settles what the networks show: a leap-1 step is not a saddle. Once x1 is being learned, the
gradient on a neuron's x2 weight is ``a E[x1 relu'(u)]``, non-zero, so x1x2 starts while x1 is still
being learned, and x3 likewise; x1 overshoots to ~1.23 and x1x2 stalls near 0.78 while x1x2x3 creeps
in (the ~0.8 level), and the loss passes 2 and 1 without stopping. The leap picture's leap-1 plateau
comparisons therefore fail, as the exact limit says they must; the networks match the limit.

Measured (``piami run staircase``, defaults: d = 16..128, width 128, 6 replicas, ~55 s; seed 0 and
seed 1):

- escape exponents, leap 1 / 2 / 3 (predicted 1 / 1 / 2): 1.12 / 1.15 / 1.87 and 1.06 / 1.18 / 1.87;
- leap-2 and leap-3 plateaus (predicted 1): 1.034 and 1.002 at both seeds;
- leap-1 plateaus of the leap picture (predicted 2 and 1): 1.53 / 0.67 and 1.52 / 0.51 (fail); the
  limit's flattest points in the same windows: 1.52 / 0.50 (the windows' lower edges: no plateau);
- leap 1, largest gap between the median network's test loss and the limit's: 0.070 and 0.096;
- leap 1, time to half-learn x1x2: 3.6 (limit 3.5) and 3.6 (3.6); x1x2x3: 14.4 (15.8) and 16.0 (17.4).

Before the limit was built, protocol changes were probed on leap 1 to find the leap picture's
plateaus (4 replicas, seed 0, predicted 2 and 1): ``init_a_scale=0.01`` at d = 128..1024 (with
``init_w_scale`` 1, 0.1 or 0.01) gave 1.51-1.65 and 0.73-0.85; ``lr0=0.02`` at d = 128 gave 1.5-2.3
and 0.73-0.75; biases shrunk 10-100x gave 1.52-1.69 and 0.80-0.87; layer-wise training dropped from
3 to ~0.9 at once, then 0.52-0.74; tanh, softplus and sigmoid units, Gaussian inputs and graded
coefficients (2, 1, 0.5) showed no stop at 2 either. The ~0.8 level is d-independent, as the limit is.
With the limit, whole regimes are cheap to scan (flattest loss in the level-2 and level-1 windows,
noise 0.1): tail norm rho0 = 1 / 2 / 4 / 8 gives 1.51 / 1.51 / 1.51 / 1.85 and 0.50 / 0.96 / 1.05 /
0.50; rho0 = 16 with a_scale 0.1 and b_scale 16 gives 1.96 and 1.10; a second layer ten times
faster than the first gives 1.68-1.75 and 0.70-0.76. The higher steps of a leap-1 staircase are
delayed only where the unit's curvature at its operating point is small (``phi(b/rho)/rho``), so
leap-1 plateaus are a property of such a regime, not of the leap; none of these reached both levels
within 0.1, and the defaults keep the standard initialization.
Without the noise term the limit (gradient flow) runs 0.2 ahead of the networks near t = 3.5 at
every d from 32 to 512: online SGD with ``lr ~ 1/d`` keeps injecting O(1) variance into the tails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.experiments._staircase_net import (
    ReplicaNet,
    first_below,
    loglog_slope,
    lr_per_sample,
    plateau_value,
    train,
)
from piami.lab import Comparison, Result
from piami.models.device import resolve_dtype
from piami.models.mlp import few_threads
from piami.processes.tasks import STAIRCASES, StaircaseTarget
from piami.theory.leap import escape_exponent, learning_order
from piami.theory.mean_field import MeanFieldTrajectory, staircase_mean_field

__all__ = ["Config", "ReplicaNet", "first_below", "half_times", "plateau_value", "run", "train"]

REF = "Abbe, Boix-Adsera & Misiakiewicz 2023 (leap complexity)"


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # draws every initialization and every sample
    leaps: tuple[int, ...] = (1, 2, 3)  # which standard staircase targets to train
    dims: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128)  # input dimensions d (>= 4 for the fit)
    width: int = 128  # hidden units N
    n_replicas: int = 6  # independent networks per (leap, d); escape counts are their median
    init_w_scale: float = 1.0  # first-layer init w ~ N(0, init_w_scale^2 / d)
    init_a_scale: float = 1.0  # second-layer init a ~ N(0, init_a_scale^2)
    lr0: float = 0.1  # per-sample step is lr0 * d^(-max(leap/2, 1)) (mean-field units)
    dt: float = 0.05  # gradient-flow time per step: batch = dt / (per-sample step) fresh samples
    t_max: float = 400.0  # give up after this much gradient-flow time
    eval_dt: float = 0.4  # gradient-flow time between test-loss evaluations
    n_test: int = 2048  # test samples for the loss curve
    mf_particles: int = 4000  # particles of the mean-field limit integrated beside the networks
    mf_dt: float = 0.02  # integration step of that limit (gradient-flow time)
    dtype: str = "float32"  # torch dtype
    device: str = "auto"  # torch device

    def __post_init__(self) -> None:
        if not self.leaps or any(x not in (1, 2, 3) for x in self.leaps):
            raise PiamiValueError(f"leaps must be among 1, 2, 3, got {self.leaps!r}")
        if len(set(self.dims)) < 4 or min(self.dims) < 3:
            raise PiamiValueError(f"need >= 4 distinct dims >= 3 for the fit, got {self.dims!r}")
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
        resolve_dtype(self.dtype)


def _limit_for(
    target: StaircaseTarget, cfg: Config, leap: int, t_end: float
) -> MeanFieldTrajectory:
    """The network's high-dimensional mean-field limit (:mod:`piami.theory.mean_field`) at ``d``."""
    d, k = target.d, max(max(s) for s in target.supports) + 1
    lr = lr_per_sample(cfg.lr0, leap, d)
    return staircase_mean_field(
        target.supports, target.coefficients, t_max=t_end,
        rng=np.random.default_rng([cfg.seed, leap, d]), n_particles=cfg.mf_particles,
        a_scale=cfg.init_a_scale, b_scale=1.0, rho0=cfg.init_w_scale * math.sqrt((d - k) / d),
        noise=lr * (d - k), dt=cfg.mf_dt,
    )  # fmt: skip


def support_frequencies(x_test: np.ndarray, k: int) -> np.ndarray:
    """How often each of the ``2^k`` support points (in :func:`hypercube_points` order) occurs."""
    codes = ((x_test[:, :k] > 0).astype(np.int64) * (1 << np.arange(k - 1, -1, -1))).sum(axis=1)
    return np.bincount(codes, minlength=1 << k).astype(np.float64)


def half_times(t: np.ndarray, coefs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """First time each monomial's coefficient reaches half its target (NaN if never): ``(n_mono,)``."""
    out = np.full(targets.size, np.nan)
    for m, c in enumerate(targets):
        out[m] = first_below(t, -coefs[:, m] / c, -0.5)
    return out


def _leap1_limit_comparisons(result: Result, cfg: Config, target: StaircaseTarget, t: np.ndarray,
                             losses: np.ndarray, mono: np.ndarray,
                             limit: MeanFieldTrajectory, x_test: np.ndarray) -> None:  # fmt: skip
    """Network against its mean-field limit: the loss curve, and when each monomial is learned.

    The limit is evaluated on the network's own test set (its support-point frequencies), so the
    set's sampling error (~0.08 in the loss at n_test = 2048) cancels.
    """
    d = target.d
    weights = support_frequencies(x_test, limit.points.shape[1])
    net_loss = np.median(losses, axis=0)
    lim_loss = np.interp(t, limit.times, limit.loss_on(weights))
    dev = np.abs(net_loss - lim_loss)
    result.metrics["leap1_limit"] = {
        "d": d, "max_abs_loss_gap": float(dev.max()), "t_of_max_gap": float(t[dev.argmax()]),
        "mean_abs_loss_gap": float(dev.mean()), "limit_min_tail_norm": limit.min_tail,
    }  # fmt: skip
    result.comparisons.append(Comparison(
        name=f"leap 1, d={d}: test loss follows the high-dimensional mean-field limit (max gap)",
        predicted=0.0, measured=float(dev.max()), tolerance=0.15, sense="at_most",
        unit="mean squared error", reference="Abbe et al. 2022 (dimension-free dynamics); "
        "Ben Arous, Gheissari & Jagannath 2022 (online-SGD corrector)",
        note=(f"largest |median-replica loss - limit loss| over the run (at t = "
              f"{t[dev.argmax()]:.2f}; mean gap {dev.mean():.3f}); the limit is integrated with "
              f"{cfg.mf_particles} particles from zero overlap with the SGD-noise term "
              "delta = eta (d - 3). 0.15 = 5% of the initial loss 3: finite d (~d^-1/2), finite "
              f"width ({cfg.width}) and the SGD step (dt = {cfg.dt}) each shift the curve by a few "
              "hundredths (measured 0.13 / 0.09 / 0.06 at d = 32 / 128 / 512, width 256)"),
    ))  # fmt: skip
    coefs = np.asarray(target.coefficients, dtype=np.float64)
    net_half = half_times(t, np.median(mono, axis=0), coefs)
    chis = np.stack([limit.points[:, list(s)].prod(axis=1) for s in target.supports], axis=1)
    lim_coefs_test = limit.outputs @ (chis * (weights / weights.sum())[:, None])
    lim_half = half_times(limit.times, lim_coefs_test, coefs)
    order, _ = learning_order(target.supports)
    names = ["x" + "x".join(str(i + 1) for i in s) for s in target.supports]
    result.metrics["leap1_half_times"] = {
        n: {"network": float(a), "limit": float(b)}
        for n, a, b in zip(names, net_half, lim_half, strict=True)
    }
    in_order = bool(np.all(np.diff(net_half[order]) > 0)) if np.all(np.isfinite(net_half)) else None
    result.comparisons.append(Comparison(
        name=f"leap 1, d={d}: monomials learned in the staircase order (half-coefficient times)",
        predicted=1.0, measured=None if in_order is None else float(in_order), tolerance=0.0,
        reference=REF, unit="1 = in order",
        note=("times at which the median network's Fourier coefficient on each monomial first "
              "reaches half its target: " + ", ".join(
                  f"{n} {a:.2f} (limit {b:.2f})" for n, a, b in zip(
                      names, net_half, lim_half, strict=True)) + " (gradient-flow time)"),
    ))  # fmt: skip
    for m in order[1:]:
        rel = (net_half[m] - lim_half[m]) / lim_half[m]
        result.comparisons.append(Comparison(
            name=f"leap 1, d={d}: time to half-learn {names[m]}, network vs mean-field limit",
            predicted=float(lim_half[m]), measured=float(net_half[m]) if np.isfinite(rel) else None,
            tolerance=0.2, relative=True, unit="gradient-flow time", reference="Abbe et al. 2022",
            note=("20%: the finite-d network learns a step a few tenths of a time unit off the "
                  "limit; the first monomial (linear, learned in ~1 time unit) is not compared"),
        ))  # fmt: skip


def run(cfg: Config, *, progress: bool = True) -> Result:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    dims = np.array(sorted(set(cfg.dims)), dtype=np.float64)
    result = Result(
        experiment="staircase",
        config={},
        seed=cfg.seed,
        description=(
            f"Two-layer ReLU networks (width {cfg.width}, mean-field scale, {cfg.n_replicas} "
            "replicas per setting) trained by online SGD on x1 + x1x2 + x1x2x3 (leap 1), "
            "x1 + x1x2x3 (leap 2) and x1x2x3 (leap 3) on the hypercube, d in "
            f"{tuple(int(d) for d in dims)}. Per-sample step lr0 d^-max(leap/2, 1) (the "
            "noise-limited online-SGD scaling, an input of the protocol); steps are counted in "
            "samples. Measured: plateau losses and the samples needed to escape the last plateau; "
            "beside them, the network's high-dimensional mean-field limit (piami.theory.mean_field), "
            "integrated from zero overlap: it stays on every leap >= 2 saddle for ever and learns "
            "the leap-1 staircase without stopping."
        ),
    )
    fig_c, axes_c = plt.subplots(
        1, len(cfg.leaps), figsize=(4.4 * len(cfg.leaps), 3.5), squeeze=False
    )
    fig_s, ax_s = plt.subplots(figsize=(5.2, 3.8))
    fig_m = None
    with few_threads(1):
        for j, leap in enumerate(cfg.leaps):
            escapes = np.full(dims.size, np.nan)
            curves = {}
            for i, d in enumerate(dims.astype(int)):
                target = StaircaseTarget.standard(leap=leap, d=int(d))
                samples, losses, mono, x_test = train(target, cfg, leap=leap, rng=rng,
                                                      generator=gen, progress=progress)  # fmt: skip
                levels = target.plateau_losses()
                per_rep = [first_below(samples, l, levels[-2] / 2) for l in losses]
                escapes[i] = np.median(per_rep) if np.all(np.isfinite(per_rep)) else np.nan
                curves[int(d)] = (samples, losses, mono, x_test)
            expo = escape_exponent(leap)
            lr_expo = max(leap / 2.0, 1.0)
            ok = np.isfinite(escapes)
            if ok.sum() >= 4:
                slope, se = loglog_slope(dims[ok], escapes[ok])
                note = (f"fit over d = {dims[ok].astype(int).tolist()} (slope s.e. {se:.2f}); the "
                        f"step size contributes {lr_expo:g} by construction, the gradient-flow escape "
                        f"time the measured remainder {slope - lr_expo:+.2f} (expected "
                        f"{expo - lr_expo:+g} up to logs); 0.3 as the issue asks")  # fmt: skip
            else:
                slope, note = float("nan"), "fewer than 4 dimensions escaped within t_max"
            result.comparisons.append(Comparison(
                name=f"leap {leap}: exponent of d in the SGD steps to escape the last plateau",
                predicted=float(expo), measured=slope, tolerance=0.3, reference=REF, note=note,
            ))  # fmt: skip
            result.metrics[f"leap{leap}_escape_samples"] = dict(
                zip(map(str, dims.astype(int)), escapes.tolist(), strict=True)
            )
            # plateaus at the largest dimension, where they are longest
            d_big = int(dims[-1])
            samples, losses, mono, x_test = curves[d_big]
            target = StaircaseTarget.standard(leap=leap, d=d_big)
            levels = target.plateau_losses()
            lr = lr_per_sample(cfg.lr0, leap, d_big)
            limit = _limit_for(target, cfg, leap, float(samples[-1] * lr))
            _, jumps = learning_order(STAIRCASES[leap])
            first_is_saddle = jumps[0] >= 2  # a linear first monomial has a gradient at f = 0
            lim_vals = {}
            for k in range(0 if first_is_saddle else 1, levels.size - 1):
                hi = np.inf if k == 0 else (levels[k] + levels[k - 1]) / 2
                lo = (levels[k] + levels[k + 1]) / 2
                vals = [plateau_value(samples, l, lo, hi) for l in losses]
                seen = [v for v in vals if np.isfinite(v)]
                lim_vals[k] = plateau_value(limit.times / lr, limit.loss, lo, hi)
                result.comparisons.append(Comparison(
                    name=f"leap {leap}, d={d_big}: plateau {k} loss (sum c_S^2 not yet learned)",
                    predicted=float(levels[k]),
                    measured=float(np.median(seen)) if len(seen) * 2 > len(vals) else None,
                    tolerance=0.1, unit="mean squared error", reference=REF,
                    note=(f"median over replicas ({len(seen)}/{len(vals)} reached the window) of the "
                          "loss at the flattest point of the smoothed curve within half a gap of "
                          "this level (a curve without a plateau is flattest at the window's edge, "
                          "half a gap away); 0.1 "
                          f"allows the test-set error (n_test={cfg.n_test}) and the start of the "
                          "next monomial while on the plateau. The level before a linear first "
                          "monomial is not a plateau (no saddle at f = 0) and is not compared. "
                          "Mean-field limit from zero overlap, same window: "
                          + ("never reached" if not np.isfinite(lim_vals[k])
                             else f"flattest at {lim_vals[k]:.3f}")
                          + ("; a leap-1 step is no saddle (the gradient on the new coordinate "
                             "is non-zero once the previous ones are learned), so the leap "
                             "picture's plateau does not exist for it" if leap == 1 else "")),
                ))  # fmt: skip
            result.metrics[f"leap{leap}_limit_flattest"] = {str(k): v for k, v in lim_vals.items()}
            result.metrics[f"leap{leap}_limit_final_loss"] = float(limit.loss[-1])
            if leap == 1:
                _leap1_limit_comparisons(result, cfg, target, samples * lr, losses, mono, limit,
                                         x_test)  # fmt: skip
                fig_m, ax_m = plt.subplots(figsize=(5.2, 3.8))
                med = np.median(mono, axis=0)
                for m, s in enumerate(target.supports):
                    name = "x" + "x".join(str(i + 1) for i in s)
                    (ln,) = ax_m.plot(samples * lr, med[:, m], lw=1.5, label=f"{name} network")
                    ax_m.plot(limit.times, limit.coefficients[:, m], "--", color=ln.get_color(),
                              lw=1, label=f"{name} limit")  # fmt: skip
                ax_m.set(xlabel="gradient-flow time t = eta * samples",
                         ylabel="Fourier coefficient of f", title=f"leap 1, d = {d_big}")  # fmt: skip
                ax_m.legend(fontsize=7)
            ax = axes_c[0, j]
            for r in range(losses.shape[0]):
                ax.plot(samples, losses[r], lw=1, alpha=0.8)
            test_freq = support_frequencies(x_test, limit.points.shape[1])
            ax.plot(limit.times / lr, limit.loss_on(test_freq), "k--", lw=1.2,
                    label="mean-field limit (same test set)")  # fmt: skip
            for lv in levels:
                ax.axhline(lv, color="gray", ls=":", lw=0.8)
            ax.legend(fontsize=7)
            ax.set(xlabel="online SGD steps (samples)", ylabel="test MSE",
                   title=f"leap {leap}, d = {d_big}")  # fmt: skip
            (line,) = ax_s.plot(
                dims[ok], escapes[ok], "o", label=f"leap {leap} (slope {slope:.2f})"
            )
            if ok.any():
                ref = escapes[ok][0] * (dims[ok] / dims[ok][0]) ** expo
                ax_s.plot(dims[ok], ref, ":", color=line.get_color(), lw=1)
    ax_s.set(xscale="log", yscale="log", xlabel="d", ylabel="samples to escape",
             title="dotted: d^max(leap-1, 1)")  # fmt: skip
    ax_s.legend(fontsize=8)
    fig_c.tight_layout()
    result.add_figure(
        "loss_curves",
        fig_c,
        "Test loss of every replica at the largest d; dotted: predicted plateaus; dashed: the "
        "mean-field limit from zero overlap (it never leaves a leap >= 2 saddle).",
    )
    result.add_figure(
        "escape_scaling", fig_s, "Median samples to escape the last plateau against d."
    )
    if fig_m is not None:
        fig_m.tight_layout()
        result.add_figure(
            "leap1_monomials",
            fig_m,
            "Leap 1: the network's Fourier coefficients on x1, x1x2, x1x2x3 (median replica) and "
            "the mean-field limit's (dashed). The steps overlap: x1x2 starts while x1 is learned.",
        )
    return result


from piami.lab import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    name="staircase",
    config_cls=Config,
    run=run,
    quick={
        "dims": (8, 12, 16, 24),
        "width": 64,
        "n_replicas": 4,
        "n_test": 1024,
        "mf_particles": 1000,
    },
    summary="Abbe et al.: online SGD learns staircases saddle to saddle; escape ~ d^max(leap-1,1)",
)
