"""Finite random networks converge to their infinite-width kernels (NNGP and NTK).

For deep fully connected ReLU and erf networks in the NTK parameterization, the closed-form
recursions of :mod:`piami.theory.kernels` give the NNGP ``K`` and the NTK ``Theta``. A random
network of width ``n`` gives an empirical NNGP (its last hidden layer's Gram matrix, ``sigma_w^2/n
sum_i phi_i(x) phi_i(x') + sigma_b^2``) and an empirical NTK (``J J^T``, the Jacobian of the output
with respect to every parameter, computed with ``torch.func.jacrev``). Both fluctuate around the
limit with relative error ``~ n^(-1/2)`` (central limit theorem over the units). Compared: the
log-log slope of the RMS error against width (-1/2), and the seed-averaged empirical kernel at the
largest width against the closed form (unbiasedness).

Tolerances come from the run's own noise: the slope's is three standard deviations of its bootstrap
over the networks at each width (its 95% interval must be narrower than 0.5, the gap to the
neighbouring exponents 0 and -1, or the row is not identified); the seed average's is four
standard errors (the Frobenius norm of the per-entry standard errors). Control, in the same run:
the other activation's closed form (relu for an erf network, erf for a relu one) must miss the
seed-averaged kernel by more than that tolerance. ``net_sigma_w_factor != 1`` is a broken
ingredient: networks drawn with a weight scale the closed form does not assume.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.instruments.curves import loglog_slope
from piami.lab import Comparison, Experiment, FigureSpec, Measurements
from piami.models import limit_threads
from piami.models.device import resolve_device, resolve_dtype
from piami.models.mlp import MLP
from piami.theory.kernels import ACTIVATIONS, nngp_ntk

REF = (
    "Lee et al. 2018 (NNGP); Jacot et al. 2018 (NTK); Cho & Saul 2009 (arc-cosine); "
    "Williams 1997 (erf)"
)
#: Widest 95% interval of the slope that decides a row: the gap from -1/2 to 0 and to -1.
MAX_SLOPE_INTERVAL = 0.5
#: Bootstrap resamples of the slope.
N_BOOTSTRAP = 400


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the kernel-limit experiment (random networks per activation and width)."""

    seed: int = 0  # draws the inputs and every network
    activations: tuple[str, ...] = ("relu", "erf")  # nonlinearities to test
    depth: int = 3  # hidden layers L
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)  # hidden widths n (>= 4 for the fit)
    n_seeds: int = 16  # random networks per width
    n_inputs: int = 6  # input points (kernel matrices are n_inputs x n_inputs)
    d_in: int = 8  # input dimension
    sigma_w2: float = 2.0  # weight variance sigma_w^2
    sigma_b2: float = 0.1  # bias variance sigma_b^2
    net_sigma_w_factor: float = 1.0  # broken ingredient when != 1: networks' sigma_w times this
    dtype: str = "float64"  # torch dtype
    device: str = "auto"  # torch device

    def __post_init__(self) -> None:
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if not self.activations or bad:
            raise PiamiValueError(
                f"activations must be among {ACTIVATIONS}, got {self.activations!r}"
            )
        if self.depth < 1:
            raise PiamiValueError(f"depth must be >= 1, got {self.depth}")
        if len(self.widths) < 4 or any(w < 2 for w in self.widths) or len(set(self.widths)) < 4:
            raise PiamiValueError(
                f"need >= 4 distinct widths >= 2 for the fit, got {self.widths!r}"
            )
        if self.n_seeds < 2:
            raise PiamiValueError(
                f"n_seeds must be >= 2 (a standard error needs two), got {self.n_seeds}"
            )
        if self.n_inputs < 2 or self.d_in < 1:
            raise PiamiValueError("need n_inputs >= 2 and d_in >= 1")
        if not (self.sigma_w2 > 0 and self.sigma_b2 >= 0):
            raise PiamiValueError("need sigma_w2 > 0 and sigma_b2 >= 0")
        if not (0 < self.net_sigma_w_factor < 10):
            raise PiamiValueError(
                f"net_sigma_w_factor must lie in (0, 10) (1 = the closed form's scale), got "
                f"{self.net_sigma_w_factor}"
            )
        resolve_dtype(self.dtype)


@dataclass(kw_only=True)
class KernelFit:
    """One kernel (NNGP or NTK) of one activation: errors against width, and the seed average.

    Attributes:
        activation: ``"relu"`` or ``"erf"``; kernel: ``"NNGP"`` or ``"NTK"``.
        widths: ``(n_w,)`` sorted widths.
        errors: ``(n_w, n_seeds)`` relative Frobenius errors ``||K_emp - K||_F / ||K||_F``.
        slope: slope of log RMS error on log width; slope_sd: its bootstrap standard deviation;
        slope_interval: its 95% bootstrap percentile interval.
        mean_kernel: ``(n_inputs, n_inputs)`` seed average of the empirical kernel at the largest
            width; mean_se: Frobenius norm of its per-entry standard errors.
        closed_form: the right closed form; wrong_form: the other activation's closed form.
    """

    activation: str
    kernel: str
    widths: np.ndarray
    errors: np.ndarray
    slope: float
    slope_sd: float
    slope_interval: tuple[float, float]
    mean_kernel: np.ndarray
    mean_se: float
    closed_form: np.ndarray
    wrong_form: np.ndarray

    @property
    def rms_error(self) -> np.ndarray:
        """``(n_w,)`` RMS relative error over the networks at each width (its square ~ 1/n)."""
        return np.sqrt((self.errors**2).mean(axis=1))


@dataclass(kw_only=True)
class KernelMeasurements(Measurements):
    """One :class:`KernelFit` per (activation, kernel), activations in the config's order."""

    fits: list[KernelFit] = field(default_factory=list)


# -- measure --------------------------------------------------------------------------------------
def empirical_kernels(net: MLP, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Empirical NNGP (last-layer Gram matrix) and NTK (``J J^T`` via ``torch.func.jacrev``).

    Args:
        net: the random network (NTK parameterization).
        x: ``(n_inputs, d_in)`` inputs.

    Returns:
        ``(n_inputs, n_inputs)`` NNGP and NTK matrices, float64 (Lee et al. 2018, eq. 4; Jacot et
        al. 2018, eq. 2).
    """
    from torch.func import functional_call, jacrev

    params = {k: v.detach() for k, v in net.named_parameters()}
    with torch.no_grad():
        phi = net.features(x)
        nngp = net.sigma_w**2 * (phi @ phi.T) / phi.shape[1] + net.sigma_b**2

    def out(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(net, p, (x,)).squeeze(-1)

    jac = jacrev(out)(params)
    ntk = sum(j.reshape(x.shape[0], -1) @ j.reshape(x.shape[0], -1).T for j in jac.values())
    return nngp.cpu().numpy().astype(np.float64), ntk.detach().cpu().numpy().astype(np.float64)


def bootstrap_slope(
    widths: np.ndarray, errs: np.ndarray, rng: np.random.Generator
) -> tuple[float, float, tuple[float, float]]:
    """Slope of log RMS error on log width, its bootstrap s.d. and 95% percentile interval.

    Args:
        widths: ``(n_w,)``; errs: ``(n_w, n_seeds)`` relative errors of independent networks,
            resampled with replacement at each width.
    """
    slope, _ = loglog_slope(widths, np.sqrt((errs**2).mean(axis=1)))
    boot = np.empty(N_BOOTSTRAP)
    for b in range(N_BOOTSTRAP):
        idx = rng.integers(0, errs.shape[1], errs.shape)
        boot[b] = loglog_slope(widths, np.sqrt((np.take_along_axis(errs, idx, 1) ** 2).mean(1)))[0]
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return slope, float(boot.std(ddof=1)), (float(lo), float(hi))


def _sample_errors(
    cfg: Config,
    act: str,
    widths: np.ndarray,
    xt: torch.Tensor,
    k_th: np.ndarray,
    t_th: np.ndarray,
    gen: torch.Generator,
    bar: Any,
) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """Relative errors of ``n_seeds`` random networks per width; kernels at the largest width."""
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    errs = {k: np.zeros((widths.size, cfg.n_seeds)) for k in ("NNGP", "NTK")}
    last: dict[str, list[np.ndarray]] = {"NNGP": [], "NTK": []}
    sigma_w = math.sqrt(cfg.sigma_w2) * cfg.net_sigma_w_factor
    for i, n in enumerate(widths.astype(int)):
        for r in range(cfg.n_seeds):
            net = MLP(
                cfg.d_in,
                int(n),
                cfg.depth,
                activation=act,
                sigma_w=sigma_w,
                sigma_b=math.sqrt(cfg.sigma_b2),
                generator=gen,
                dtype=dtype,
                device=device,
            )
            k_emp, t_emp = empirical_kernels(net, xt)
            for name, emp, th in (("NNGP", k_emp, k_th), ("NTK", t_emp, t_th)):
                errs[name][i, r] = np.linalg.norm(emp - th) / np.linalg.norm(th)
                if i == widths.size - 1:
                    last[name].append(emp)
            bar.update()
    return errs, last


def _fit(
    act: str,
    name: str,
    widths: np.ndarray,
    errs: np.ndarray,
    last: list[np.ndarray],
    closed: np.ndarray,
    wrong: np.ndarray,
    rng: np.random.Generator,
) -> KernelFit:
    """The slope (bootstrapped over networks) and the seed average at the largest width."""
    slope, sd, iv = bootstrap_slope(widths, errs, rng)
    stack = np.stack(last)
    se = float(np.linalg.norm(stack.std(axis=0, ddof=1)) / math.sqrt(stack.shape[0]))
    return KernelFit(
        activation=act,
        kernel=name,
        widths=widths,
        errors=errs,
        slope=slope,
        slope_sd=sd,
        slope_interval=iv,
        mean_kernel=stack.mean(axis=0),
        mean_se=se,
        closed_form=closed,
        wrong_form=wrong,
    )


def measure(cfg: Config, *, progress: bool = True) -> KernelMeasurements:
    """Draw ``n_seeds`` networks per activation and width; their kernels against the closed form."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    x = rng.standard_normal((cfg.n_inputs, cfg.d_in))
    x *= math.sqrt(cfg.d_in) / np.linalg.norm(x, axis=1, keepdims=True)  # |x|^2 = d_in
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    widths = np.array(sorted(cfg.widths), dtype=np.float64)
    total = len(cfg.activations) * widths.size * cfg.n_seeds
    bar = tqdm(total=total, disable=not progress, desc="random networks")
    kw = {"depth": cfg.depth, "sigma_w2": cfg.sigma_w2, "sigma_b2": cfg.sigma_b2}
    m = KernelMeasurements()
    with limit_threads(1):
        for j, act in enumerate(cfg.activations):
            start = time.perf_counter()
            k_th, t_th = nngp_ntk(x, activation=act, **kw)
            wrong = nngp_ntk(x, activation="erf" if act == "relu" else "relu", **kw)
            errs, last = _sample_errors(cfg, act, widths, xt, k_th, t_th, gen, bar)
            m.timing[f"{act}_s"] = time.perf_counter() - start
            for (name, th), w in zip((("NNGP", k_th), ("NTK", t_th)), wrong, strict=True):
                boot_rng = np.random.default_rng([cfg.seed, j, len(name)])
                fit = _fit(act, name, widths, errs[name], last[name], th, w, boot_rng)
                m.fits.append(fit)
                m.metrics[f"{act}_{name}_mean_error"] = dict(
                    zip(map(str, widths.astype(int)), fit.rms_error.tolist(), strict=True)
                )
    bar.close()
    return m


# -- compare --------------------------------------------------------------------------------------
def _fit_rows(fit: KernelFit) -> list[Comparison]:
    """Slope, unbiasedness and wrong-activation control for one kernel of one activation."""
    act, name, widths, errs = fit.activation, fit.kernel, fit.widths, fit.errors
    sd = fit.slope_sd
    norm = float(np.linalg.norm(fit.closed_form))
    tol = 4 * fit.mean_se / norm
    other = "erf" if act == "relu" else "relu"
    bias_src = (
        "measured noise: four standard errors of the seed average (Frobenius norm of the "
        f"per-entry standard errors over {errs.shape[1]} networks)"
    )
    return [
        Comparison(
            name=f"{act}: slope of log {name} error vs log width",
            kind="prediction",
            predicted=-0.5,
            measured=fit.slope,
            tolerance=3 * sd,
            tolerance_source=(
                f"measured noise: three bootstrap standard deviations of the slope, resampling "
                f"the {errs.shape[1]} networks at each width"
            ),
            measured_interval=fit.slope_interval,
            max_interval_width=MAX_SLOPE_INTERVAL,
            reference=REF,
            note=(
                f"central limit theorem over units: error ~ n^(-1/2); RMS over networks at "
                f"each of {widths.size} widths; bootstrap s.d. {sd:.3f} ({N_BOOTSTRAP} "
                f"resamples); an interval wider than {MAX_SLOPE_INTERVAL:g} cannot tell -1/2 "
                "from 0 or -1"
            ),
        ),
        Comparison(
            name=f"{act}: ||mean empirical {name} - closed form||_F at the largest width, relative",
            kind="prediction",
            predicted=0.0,
            measured=float(np.linalg.norm(fit.mean_kernel - fit.closed_form) / norm),
            tolerance=tol,
            tolerance_source=bias_src,
            sense="at_most",
            reference=REF,
            note=(
                f"width {int(widths[-1])}: the empirical kernel is unbiased up to O(1/n), so the "
                "seed average must lie within the tolerance of the closed form"
            ),
        ),
        Comparison(
            name=f"{act}: the {other} closed form misses the mean empirical {name} (wrong kernel)",
            kind="control",
            predicted=tol,
            measured=float(np.linalg.norm(fit.mean_kernel - fit.wrong_form) / norm),
            tolerance=0.0,
            tolerance_source=bias_src,
            sense="at_least",
            note=(
                "relative to the right closed form's norm, as the row above: the unbiasedness "
                "test must tell the right kernel from a wrong one"
            ),
        ),
    ]


def compare(cfg: Config, m: KernelMeasurements) -> list[Comparison]:
    """Three rows per (activation, kernel): slope, unbiasedness, and the wrong-kernel control."""
    return [row for fit in m.fits for row in _fit_rows(fit)]


# -- figures and description ----------------------------------------------------------------------
def figures(cfg: Config, m: KernelMeasurements) -> list[FigureSpec]:
    """RMS error against width per activation, NNGP and NTK, with the n^(-1/2) guide."""
    import matplotlib.pyplot as plt

    acts = list(dict.fromkeys(fit.activation for fit in m.fits))
    fig, axes = plt.subplots(1, len(acts), figsize=(5 * len(acts), 3.8), squeeze=False)
    for ax, act in zip(axes[0], acts, strict=True):
        for fit in (f for f in m.fits if f.activation == act):
            widths, mean_err = fit.widths, fit.rms_error
            yerr = fit.errors.std(axis=1, ddof=1) / math.sqrt(fit.errors.shape[1])
            label = f"{fit.kernel} (slope {fit.slope:.2f})"
            ax.errorbar(widths, mean_err, yerr=yerr, fmt="o-", capsize=3, label=label)
        ax.plot(widths, mean_err[0] * np.sqrt(widths[0] / widths), "k:", lw=1, label="n^(-1/2)")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="width n",
            ylabel="RMS relative Frobenius error",
            title=f"{act}, depth {cfg.depth}",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    caption = "Empirical kernel error against width, RMS over seeds (bars: its standard error)."
    return [FigureSpec(name="convergence", figure=fig, caption=caption)]


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    broken = (
        f" BROKEN INGREDIENT: networks drawn with sigma_w x {cfg.net_sigma_w_factor:g}."
        if cfg.net_sigma_w_factor != 1
        else ""
    )
    return (
        f"Random fully connected networks with {cfg.depth} hidden layers (NTK parameterization, "
        f"sigma_w^2 = {cfg.sigma_w2:g}, sigma_b^2 = {cfg.sigma_b2:g}) on {cfg.n_inputs} inputs: "
        "empirical NNGP and NTK against the closed-form arc-cosine / erf recursions, "
        f"{cfg.n_seeds} networks per width. Error = ||K_emp - K||_F / ||K||_F." + broken
    )


EXPERIMENT = Experiment(
    name="kernel-limit",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={"depth": 2, "widths": (32, 64, 128, 256), "n_seeds": 16},
    summary="Empirical NNGP/NTK of random deep ReLU and erf nets converge to the closed forms",
)
