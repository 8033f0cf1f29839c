"""LLC calibration: the SGLD estimate of the local learning coefficient against exact RLCTs.

Theory. Singular learning theory gives the real log canonical threshold ``lambda`` exactly for a few
families (:mod:`piami.theory.learning_coefficient`): regular models (``d/2``), normal-crossing
potentials ``K(w) = prod_i w_i^(2 k_i)`` (``min_i 1/(2 k_i)``), and deep linear networks (Aoyagi
2024, Thm 1). The local learning coefficient ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))``
(Lau et al. 2023, eq. 3) should recover it at a true parameter; for deep linear networks the
global RLCT is the local one at a minimal-rank factorization (every layer of rank ``r``).

Measurement. :class:`~piami.instruments.LLCEstimator` on (1) linear regressions of three sizes,
(2) three normal-crossing potentials, (3) deep linear networks of depth 2 to 5 at the balanced
minimal-rank factorization ``W_j = Q_{j+1} Q_j^T`` (``Q_j`` random ``H_j x r`` with orthonormal
columns, so the true map has rank ``r`` and unit singular values), noise-free Gaussian data. One
hyperparameter choice per family, stated in the result; no per-case tuning. (4) The LLC along the
training checkpoints of the ``belief-geometry`` transformer, drawn over its loss curve (no exact
value is known there: it is a measurement, not a comparison).

Finite ``n beta`` (found while choosing the deep-linear setting). At rank 0 (``[3,5,2,4]``,
``lambda = 3``, multiplicity 2) the estimand itself is low: Metropolis-adjusted Langevin on the
exact full-data loss and RMSProp-SGLD (step 1e-3 full-batch, 3e-4) agree on about 2.70 (-10%) at
``n beta = n/ln n``, ``n = 10^4``, ``gamma = 1`` -- the slow ``-(m-1)/ln(n beta)`` approach of a
multiplicity-2 threshold, not a sampler bias. The potential is homogeneous of degree ``2L``, so
``gamma -> gamma/c`` acts as ``n beta -> c^L n beta``; yet ``gamma`` 0.5 gave 2.72-2.74 and 0.3
gave 2.67-2.74: this case sits at the 10% edge (seed 0 passes at -9.2%, seed 1 fails at -11.5%).
Five-layer networks at rank > 0 drift upwards at ``gamma = 1``, step 1e-3 (+20-30%: chains wander
along the exact factorizations, where the frozen preconditioner's step grows too large); step
5e-4 slows the drift.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.instruments.learning_coefficient import LLCEstimator
from piami.lab import Comparison, Experiment, Result
from piami.theory.learning_coefficient import (
    deep_linear_rlct,
    normal_crossing_expectation,
    normal_crossing_rlct,
    regular_rlct,
)

REF_DEEP = "Aoyagi 2024, Neural Networks 171, Theorem 1"
REF_NC = "Watanabe 2009, Algebraic Geometry and Statistical Learning Theory, Thm 6.1"
REF_REG = "Watanabe 2009, regular models: lambda = d/2"


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of llc-calibration (defaults: <= 10 min on 2 loaded CPU cores)."""

    seed: int = 0  # seeds data, true parameters and the chains
    n_samples: int = 10_000  # data set size of families 1 and 3 (n beta = n / ln n)
    regular: tuple[str, ...] = ("3-1", "6-5", "12-10")  # linear regressions "in-out", d = in*out
    potentials: tuple[str, ...] = ("2", "3", "1-2")  # exponents k_i of K = prod_i w_i^(2 k_i)
    deep_linear: tuple[str, ...] = (  # "H_1-...-H_{L+1}:r", widths input first, rank r
        "5-4-3:1",
        "10-10-10:0",
        "4-4-4:4",
        "3-5-2-4:0",
        "8-6-6-8:2",
        "20-12-8-16:4",
        "6-6-6-6-6:3",
        "2-3-3-3-2:2",
        "4-6-5-6-4-3:2",
        "3-4-5-4-3-2:1",
    )
    sampler: str = "rmsprop_sgld"  # all families: sampler (preconditioner frozen after burn-in)
    integrator: str = "leimkuhler_matthews"  # all families: noise averaged over two steps
    step_size: float = 5e-4  # families 1 and 3: SGLD step
    gamma: float = 0.5  # families 1 and 3: localization strength
    n_chains: int = 32  # families 1 and 3: chains (vectorized: 32 cost ~2x what 8 do)
    n_burnin: int = 3000  # families 1 and 3: burn-in steps (excluded)
    n_draws: int = 9000  # families 1 and 3: draws
    batch_size: int = 500  # families 1 and 3: minibatch
    nc_n_beta: float = 1e4  # family 2: n beta (a potential has no data)
    nc_step_size: float = 3e-4  # family 2: SGLD step (same sampler)
    nc_gamma: float = 1.0  # family 2: localization strength
    nc_n_chains: int = 64  # family 2: chains
    nc_n_burnin: int = 5000  # family 2: burn-in steps
    nc_n_draws: int = 20000  # family 2: draws
    tolerance: float = 0.10  # allowed relative error |lambda_hat - lambda| / lambda
    checkpoint_llc: bool = True  # part (4): LLC along the belief-geometry training checkpoints
    belief_steps: int = 500  # part (4): training steps of the belief model (its quick size)
    belief_time_budget_s: float = 40.0  # part (4): training time cap
    belief_checkpoints: int = 6  # part (4): log-spaced checkpoints kept (and measured)
    llc_burnin: int = 100  # part (4): burn-in steps per checkpoint
    llc_draws: int = 300  # part (4): draws per checkpoint
    device: str = "auto"  # torch device
    dtype: str = "float32"  # dtype of families 1, 3 and part (4); family 2 runs in float64
    n_threads: int | None = 1  # torch CPU threads (1 is fastest on a shared machine; None: as is)

    def __post_init__(self) -> None:
        for name in ("n_samples", "n_chains", "n_draws", "batch_size", "nc_n_chains", "nc_n_draws"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("step_size", "nc_n_beta", "nc_step_size", "tolerance"):
            if not getattr(self, name) > 0:
                raise PiamiValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.n_burnin < 0 or self.nc_n_burnin < 0 or self.gamma < 0 or self.nc_gamma < 0:
            raise PiamiValueError("n_burnin, nc_n_burnin, gamma and nc_gamma must be >= 0")
        if self.n_threads is not None and self.n_threads < 1:
            raise PiamiValueError(f"n_threads must be None or >= 1, got {self.n_threads}")
        if self.belief_steps < 10 or self.llc_draws < 4 or self.llc_burnin < 0:
            raise PiamiValueError("belief_steps must be >= 10, llc_draws >= 4, llc_burnin >= 0")
        if self.belief_checkpoints < 2:
            raise PiamiValueError(f"belief_checkpoints must be >= 2, got {self.belief_checkpoints}")
        for spec in self.deep_linear:
            _parse_deep(spec)
        for spec in self.regular:
            _parse_widths(spec, "regular")
        for spec in self.potentials:
            normal_crossing_rlct(_parse_widths(spec, "potentials"))


def _parse_widths(spec: str, field: str) -> list[int]:
    try:
        out = [int(x) for x in spec.split("-")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise PiamiValueError(f"{field}: {spec!r} must look like '3-4-5' (positive integers)")
    return out


def _parse_deep(spec: str) -> tuple[list[int], int]:
    if spec.count(":") != 1:
        raise PiamiValueError(f"deep_linear: {spec!r} must look like '5-4-3:1' (widths:rank)")
    w, r = spec.split(":")
    widths = _parse_widths(w, "deep_linear")
    if len(widths) < 3 or not r.strip().isdigit():
        raise PiamiValueError(f"deep_linear: {spec!r} needs >= 2 layers and an integer rank")
    deep_linear_rlct(widths, int(r))  # validates the rank
    return widths, int(r)


def balanced_factorization(
    widths: list[int], rank: int, gen: torch.Generator
) -> list[torch.Tensor]:
    """``W_j = Q_{j+1} Q_j^T`` with ``Q_j`` (``H_j x r``) orthonormal columns: every layer rank ``r``."""
    qs = []
    for h in widths:
        q, _ = torch.linalg.qr(torch.randn(h, max(rank, 1), generator=gen, dtype=torch.float64))
        qs.append(q[:, :rank])
    return [qs[j + 1] @ qs[j].T for j in range(len(widths) - 1)]


def _estimator(cfg: Config, **over: Any) -> LLCEstimator:
    kw = dict(
        step_size=cfg.step_size,
        gamma=cfg.gamma,
        n_chains=cfg.n_chains,
        n_draws=cfg.n_draws,
        n_burnin=cfg.n_burnin,
        batch_size=cfg.batch_size,
        sampler=cfg.sampler,
        integrator=cfg.integrator,
        device=cfg.device,
        dtype=cfg.dtype,
    )
    kw.update(over)
    return LLCEstimator(**kw)


def _case(
    result: Result,
    cases: list,
    *,
    name: str,
    truth: tuple,
    est: LLCEstimator,
    tol: float,
    reference: str,
    extra: dict | None = None,
) -> None:
    lam, mult = truth
    d = est.diagnostics_
    note = (
        f"multiplicity {mult}; {est.n_chains} chains, std across chains {est.llc_std_:.3g}, "
        f"R-hat {d['r_hat']:.3f}, {sum(d['converged'])}/{est.n_chains} chains pass Geweke; "
        "tolerance: the issue's bar (10%), one hyperparameter choice per family"
    )
    result.comparisons.append(
        Comparison(
            name=f"LLC, {name}",
            predicted=lam,
            measured=est.llc_mean_,
            tolerance=tol,
            relative=True,
            unit="",
            reference=reference,
            note=note,
        )
    )
    row = {
        "case": name,
        "truth": lam,
        "multiplicity": mult,
        "estimate": est.llc_mean_,
        "std_across_chains": est.llc_std_,
        "rel_error": (est.llc_mean_ - lam) / lam,
        "r_hat": d["r_hat"],
        "converged_chains": int(sum(d["converged"])),
        "diverged_chains": int(sum(d["diverged"])),
        "draws_per_second": d["draws_per_second"],
        "seconds": d["seconds"],
    }
    row.update(extra or {})
    cases.append(row)


def run(cfg: Config, *, progress: bool = True) -> Result:
    """Run the calibration; see the module docstring."""
    before = torch.get_num_threads()
    if cfg.n_threads is not None:
        torch.set_num_threads(cfg.n_threads)
    try:
        return _run(cfg, progress=progress)
    finally:
        torch.set_num_threads(before)


def _run(cfg: Config, *, progress: bool) -> Result:
    result = Result(
        experiment="llc-calibration",
        config={},
        seed=cfg.seed,
        description=(
            "The local learning coefficient estimated by localized SGLD (all chains in one "
            "vectorized computation) against exact RLCTs: linear regressions (d/2), normal-crossing "
            "potentials (min 1/(2k)) and deep linear networks at minimal-rank factorizations "
            "(Aoyagi 2024), each within 10% with one hyperparameter choice per family (listed in "
            "metrics.hyperparameters); then the LLC along a belief-geometry transformer's training."
        ),
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    cases: list[dict] = []
    fam13 = dict(
        sampler=cfg.sampler,
        integrator=cfg.integrator,
        step_size=cfg.step_size,
        gamma=cfg.gamma,
        n_chains=cfg.n_chains,
        n_burnin=cfg.n_burnin,
        n_draws=cfg.n_draws,
        batch_size=cfg.batch_size,
        n_beta=f"n / ln n, n = {cfg.n_samples}",
        preconditioner="adapted in burn-in, then frozen",
    )
    result.metrics["hyperparameters"] = {
        "regular_and_deep_linear": fam13,
        "normal_crossing": dict(
            sampler=cfg.sampler,
            integrator=cfg.integrator,
            step_size=cfg.nc_step_size,
            gamma=cfg.nc_gamma,
            n_chains=cfg.nc_n_chains,
            n_burnin=cfg.nc_n_burnin,
            n_draws=cfg.nc_n_draws,
            n_beta=cfg.nc_n_beta,
            dtype="float64",
        ),
    }

    def data_for(weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(cfg.n_samples, weights[0].shape[1], generator=gen, dtype=torch.float64)
        w = weights[0]
        for m in weights[1:]:
            w = m @ w
        return x, x @ w.T  # noise-free: w* is an exact minimum, L_n(w*) = 0

    # (1) regular: one linear layer, every parameter identifiable
    for spec in cfg.regular:
        n_in, n_out = _parse_widths(spec, "regular")[:2]
        w = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) / np.sqrt(n_in)
        est = _estimator(cfg, seed=int(torch.randint(2**31, (1,), generator=gen)))
        est.fit_deep_linear([w], data_for([w]))
        _case(
            result,
            cases,
            name=f"linear regression {n_in}->{n_out} (d = {n_in * n_out})",
            truth=regular_rlct(n_in * n_out),
            est=est,
            tol=cfg.tolerance,
            reference=REF_REG,
        )

    # (2) normal-crossing potentials at w* = 0 (no data: the loss is K itself)
    for spec in cfg.potentials:
        ks = _parse_widths(spec, "potentials")
        k_t = torch.tensor(ks, dtype=torch.float64)
        est = _estimator(
            cfg,
            step_size=cfg.nc_step_size,
            gamma=cfg.nc_gamma,
            n_beta=cfg.nc_n_beta,
            n_chains=cfg.nc_n_chains,
            n_burnin=cfg.nc_n_burnin,
            n_draws=cfg.nc_n_draws,
            dtype="float64",
            seed=int(torch.randint(2**31, (1,), generator=gen)),
        )
        est.fit_flat(lambda w, k=k_t: (w ** (2 * k)).prod(dim=1), torch.zeros(len(ks)))
        label = " ".join(f"w{i + 1}^{2 * k}" for i, k in enumerate(ks))
        finite = normal_crossing_expectation(ks, cfg.nc_n_beta, cfg.nc_gamma)
        _case(
            result,
            cases,
            name=f"normal crossing K = {label}",
            truth=normal_crossing_rlct(ks),
            est=est,
            tol=cfg.tolerance,
            reference=REF_NC,
            extra={"finite_n_beta_expectation": finite},
        )

    # (3) deep linear networks at the balanced minimal-rank factorization
    for spec in cfg.deep_linear:
        widths, rank = _parse_deep(spec)
        ws = balanced_factorization(widths, rank, gen)
        est = _estimator(cfg, seed=int(torch.randint(2**31, (1,), generator=gen)))
        est.fit_deep_linear(ws, data_for(ws))
        _case(
            result,
            cases,
            name=f"deep linear {widths} rank {rank} (L = {len(widths) - 1})",
            truth=deep_linear_rlct(widths, rank),
            est=est,
            tol=cfg.tolerance,
            reference=REF_DEEP,
        )

    result.metrics["cases"] = cases
    result.add_figure(
        "llc_vs_truth",
        _plot_cases(cases, cfg.tolerance),
        "LLC estimate against the exact RLCT; band: the 10% tolerance",
    )
    if cfg.checkpoint_llc:
        from piami.experiments._llc_checkpoints import llc_along_training

        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="piami-llc-") as tmp:
            rows, fig = llc_along_training(cfg, tmp, progress=progress)
        result.metrics["checkpoints"] = rows
        result.metrics["checkpoints_seconds"] = time.perf_counter() - t0
        result.add_figure(
            "llc_along_training",
            fig,
            "LLC at the belief-geometry model's checkpoints over its training loss",
        )
    return result


def _plot_cases(cases: list[dict], tol: float) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    truth = np.array([c["truth"] for c in cases])
    est = np.array([c["estimate"] for c in cases])
    err = np.array([c["std_across_chains"] for c in cases])
    grid = np.geomspace(truth.min() * 0.7, truth.max() * 1.4, 50)
    ax.fill_between(grid, grid * (1 - tol), grid * (1 + tol), color="0.88", label=f"±{tol:.0%}")
    ax.plot(grid, grid, "k-", lw=0.8)
    for fam, mk in (("linear", "s"), ("normal", "^"), ("deep", "o")):
        sel = np.array([c["case"].startswith(fam) for c in cases])
        if sel.any():
            ax.errorbar(truth[sel], est[sel], yerr=err[sel], fmt=mk, ms=5, capsize=2, label=fam)
    ax.set(xscale="log", yscale="log", xlabel="exact RLCT λ", ylabel="LLC estimate λ̂")
    ax.legend()
    return fig


EXPERIMENT = Experiment(
    name="llc-calibration",
    config_cls=Config,
    run=run,
    quick={
        "regular": ("6-5",),
        "potentials": ("2",),
        "deep_linear": ("5-4-3:1", "2-3-3-3-2:2"),
        "nc_n_chains": 16,
        "belief_steps": 60,
        "belief_time_budget_s": 6.0,
        "belief_checkpoints": 3,
        "llc_burnin": 20,
        "llc_draws": 40,
    },
    summary="local learning coefficient (vectorized SGLD) against exact RLCTs, and along training",
)
