"""Deep linear networks learn a teacher's modes one at a time (Saxe, McClelland & Ganguli 2014).

A linear teacher ``y = U diag(s) V^T x`` with chosen singular values, whitened inputs, and students
``W_D ... W_1`` from a small balanced initialization aligned with the teacher's modes. Full-batch
gradient descent with step ``lr`` follows gradient flow with ``t = steps * lr``; each mode follows
the exact mode equation of :mod:`piami.theory.dynamics` (logistic for two layers, its depth-``D``
generalization integrated by quadrature). Compared: the half-way time of every mode, the whole
trajectory, the order in which modes are learned, and the loss where the curve is flattest between
two half-way times against the exact loss ``1/2 sum_a (s_a - u_a(t))^2`` of the flow.

Tolerances are derived, not chosen: gradient descent from this initialization follows each mode's
exact discrete recursion ``c <- c + lr c^(D-1) (s - c^D)`` (:func:`deep_linear_gd_modes`; the layers
stay balanced), so its distance from the flow is computed in the run; every row allows twice that
discretization error, plus the rounding of ``steps`` floating-point updates. Controls, computed in
the same run: the theory of the wrong depth (``D + 1``, same ``u0``) must miss the measured half-way
times, and the ideal step-function plateau ``1/2 sum s^2`` over the modes not yet learned must miss
the measured plateau, both by more than the tolerance. ``whiten = false`` is a broken ingredient:
raw Gaussian inputs (``E x x^T != I``) couple the modes, and the rows must fail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.instruments.curves import first_crossing
from piami.lab import Comparison, Experiment, FigureSpec, Measurements
from piami.models import limit_threads
from piami.models.device import resolve_device, resolve_dtype
from piami.models.mlp import DeepLinearNet
from piami.processes.tasks import LinearTeacher
from piami.theory.dynamics import (
    deep_linear_gd_modes,
    deep_linear_loss,
    deep_linear_mode_trajectory,
    deep_linear_time_to,
)

REF = "Saxe, McClelland & Ganguli 2014, eqs. 6-8"
DISCRETE = (
    "derived: gradient descent follows each mode's exact recursion c <- c + lr c^(D-1)(s - c^D) "
    "(balanced layers stay balanced); allowed twice its distance from the flow, computed here"
)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the deep-linear-dynamics experiment (one student per depth)."""

    seed: int = 0  # draws the teacher's singular vectors, the inputs and the hidden rotations
    singular_values: tuple[float, ...] = (3.0, 1.5, 0.75)  # teacher mode strengths s_a
    depths: tuple[int, ...] = (2, 3, 4)  # numbers of weight layers D to train
    u0: tuple[float, ...] = (1e-6, 1e-3, 3e-3)  # initial end-to-end mode strength, one per depth
    lr: float = 0.001  # gradient-descent step lambda; time t = steps * lr (tau = 1)
    t_max_factor: float = 1.6  # train until this multiple of the slowest mode's half-way time
    d_in: int = 12  # input dimension
    d_out: int = 8  # output dimension
    hidden: int = 10  # width of every hidden layer
    n_samples: int = 64  # whitened training inputs (full batch)
    whiten: bool = True  # false is a broken ingredient: raw Gaussian inputs, E x x^T != I
    dtype: str = "float64"  # torch dtype of the students
    device: str = "auto"  # torch device

    def __post_init__(self) -> None:
        s = self.singular_values
        if len(s) < 2 or any(not (v > 0) for v in s) or list(s) != sorted(s, reverse=True):
            raise PiamiValueError(
                f"singular_values must be >= 2 positive numbers in decreasing order, got {s!r}"
            )
        if len(set(s)) != len(s):
            raise PiamiValueError(f"singular_values must be distinct, got {s!r}")
        if not self.depths or any(d < 2 for d in self.depths):
            raise PiamiValueError(f"depths must be integers >= 2, got {self.depths!r}")
        if len(self.u0) != len(self.depths) or any(not (0 < u < min(s)) for u in self.u0):
            raise PiamiValueError(
                f"u0 needs one value in (0, min(s)) per depth ({len(self.depths)}), got {self.u0!r}"
            )
        if not (0 < self.lr <= 0.05):
            raise PiamiValueError(
                f"lr must lie in (0, 0.05] to follow gradient flow, got {self.lr}"
            )
        if self.t_max_factor < 1.2:
            raise PiamiValueError(f"t_max_factor must be >= 1.2, got {self.t_max_factor}")
        if min(self.d_in, self.d_out, self.hidden) < len(s):
            raise PiamiValueError(f"d_in, d_out and hidden must be >= {len(s)} (number of modes)")
        if self.n_samples < self.d_in:
            raise PiamiValueError(f"n_samples must be >= d_in={self.d_in}, got {self.n_samples}")
        if not isinstance(self.whiten, bool):
            raise PiamiValueError(f"whiten must be true or false, got {self.whiten!r}")
        resolve_dtype(self.dtype)


@dataclass(kw_only=True)
class DepthRun:
    """One depth's student: its measured curves, with the flow's and gradient descent's beside them.

    Attributes:
        depth: number of weight layers ``D``.
        u0: initial end-to-end strength of every mode.
        t: ``(n_steps + 1,)`` time ``steps * lr`` of each evaluation.
        modes: ``(n_steps + 1, m)`` measured mode strengths ``u_a = U_a^T W V_a``.
        losses: ``(n_steps + 1,)`` measured training loss ``1/2 mean ||y - W x||^2``.
        u_flow: ``(n_steps + 1, m)`` the gradient flow's mode strengths (Saxe et al., eqs. 6-8).
        u_gd: ``(n_steps + 1, m)`` gradient descent's exact per-mode recursion.
        t_flow: ``(m,)`` the flow's half-way times (``u_a = s_a / 2``).
        t_gd: ``(m,)`` the recursion's half-way times.
        t_meas: ``(m,)`` the measured half-way times (NaN: the mode never got there).
    """

    depth: int
    u0: float
    t: np.ndarray
    modes: np.ndarray
    losses: np.ndarray
    u_flow: np.ndarray
    u_gd: np.ndarray
    t_flow: np.ndarray
    t_gd: np.ndarray
    t_meas: np.ndarray


@dataclass(kw_only=True)
class DeepLinearMeasurements(Measurements):
    """The teacher's singular values ``s`` ``(m,)`` and one :class:`DepthRun` per depth."""

    s: np.ndarray
    runs: list[DepthRun] = field(default_factory=list)


# -- measure --------------------------------------------------------------------------------------
def train_student(
    teacher: LinearTeacher,
    x: np.ndarray,
    y: np.ndarray,
    cfg: Config,
    *,
    depth: int,
    u0: float,
    n_steps: int,
    generator: torch.Generator,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch GD (step ``cfg.lr``) on ``1/2 mean ||y - W x||^2`` from a balanced aligned init.

    Args:
        teacher: the linear teacher, whose singular vectors define the modes.
        x, y: ``(n_samples, d_in)`` inputs and ``(n_samples, d_out)`` targets.
        cfg: the width, step, dtype and device of the student.
        depth: number of weight layers ``D``; u0: initial strength of every mode.
        n_steps: gradient steps; generator: draws the hidden rotations of the initialization.

    Returns:
        Mode strengths ``(n_steps + 1, m)`` and training losses ``(n_steps + 1,)``.
    """
    from tqdm.auto import tqdm

    device, dtype, lr = resolve_device(cfg.device), resolve_dtype(cfg.dtype), cfg.lr
    dims = (teacher.d_in, *([cfg.hidden] * (depth - 1)), teacher.d_out)
    net = DeepLinearNet(dims, dtype=dtype, device=device)
    U = torch.as_tensor(teacher.U, dtype=torch.float64)
    V = torch.as_tensor(teacher.V, dtype=torch.float64)
    net.init_balanced_aligned(U, V, u0, generator=generator)
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    yt = torch.as_tensor(y, dtype=dtype, device=device)
    n = xt.shape[0]
    sigma_yx, sigma_xx = yt.T @ xt / n, xt.T @ xt / n
    yy = float((yt**2).sum() / n)
    Ut, Vt = U.to(dtype=dtype, device=device), V.to(dtype=dtype, device=device)
    modes = torch.empty(n_steps + 1, U.shape[1], dtype=dtype, device=device)
    losses = torch.empty(n_steps + 1, dtype=dtype, device=device)
    with limit_threads(1):
        for step in tqdm(range(n_steps + 1), disable=not progress, desc=f"depth {depth}"):
            with torch.no_grad():
                w = net.product()
                modes[step] = ((Ut.T @ w) * Vt.T).sum(dim=1)
                # 1/2 mean ||y - W x||^2 = 1/2 (tr Syy - 2 tr(W^T Syx) + tr(W Sxx W^T))
                losses[step] = 0.5 * (yy - 2 * (w * sigma_yx).sum() + ((w @ sigma_xx) * w).sum())
            if step < n_steps:
                net.gd_step(sigma_yx, sigma_xx, lr)
    return modes.cpu().numpy().astype(np.float64), losses.cpu().numpy().astype(np.float64)


def _inputs(
    teacher: LinearTeacher, cfg: Config, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The training set: whitened inputs (the theory's), or raw Gaussian ones (broken)."""
    if cfg.whiten:
        return teacher.sample(cfg.n_samples, rng=rng)
    x = rng.standard_normal((cfg.n_samples, cfg.d_in))
    return x, x @ teacher.weight.T


def _half_times(t: np.ndarray, u: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``(m,)`` first time each mode ``u[:, a]`` reaches ``s_a / 2`` (interpolated; NaN: never)."""
    return np.array([first_crossing(t, u[:, a], s[a] / 2) for a in range(s.size)])


def _depth_metrics(run: DepthRun, s: np.ndarray) -> dict[str, Any]:
    return {
        "u0": run.u0,
        "n_steps": run.t.size - 1,
        "t_half_theory": run.t_flow.tolist(),
        "t_half_gradient_descent": run.t_gd.tolist(),
        "t_half_measured": run.t_meas.tolist(),
        "trajectory_error_over_s": float(np.max(np.abs(run.modes - run.u_flow) / s)),
    }


def measure(cfg: Config, *, progress: bool = True) -> DeepLinearMeasurements:
    """Train one student per depth; read its modes and loss beside the flow and the recursion."""
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    s = np.asarray(cfg.singular_values, dtype=np.float64)
    teacher = LinearTeacher(s, cfg.d_in, cfg.d_out, rng=rng)
    x, y = _inputs(teacher, cfg, rng)
    m = DeepLinearMeasurements(s=s)
    for depth, u0 in zip(cfg.depths, cfg.u0, strict=True):
        start = time.perf_counter()
        t_half = max(deep_linear_time_to(v / 2, v, u0, depth) for v in s)
        n_steps = int(np.ceil(cfg.t_max_factor * t_half / cfg.lr))
        kw = {"depth": depth, "u0": u0, "n_steps": n_steps, "generator": gen}
        modes, losses = train_student(teacher, x, y, cfg, progress=progress, **kw)
        m.timing[f"depth{depth}_s"] = time.perf_counter() - start
        t = np.arange(n_steps + 1) * cfg.lr
        u_gd = deep_linear_gd_modes(n_steps, s, u0, depth, cfg.lr)
        u_flow = np.stack([deep_linear_mode_trajectory(t, v, u0, depth) for v in s], axis=1)
        t_flow = np.array([deep_linear_time_to(v / 2, v, u0, depth) for v in s])
        t_gd, t_meas = _half_times(t, u_gd, s), _half_times(t, modes, s)
        curves = {"t": t, "modes": modes, "losses": losses, "u_flow": u_flow, "u_gd": u_gd}
        run = DepthRun(depth=depth, u0=u0, t_flow=t_flow, t_gd=t_gd, t_meas=t_meas, **curves)
        m.runs.append(run)
        m.metrics[f"depth{depth}"] = _depth_metrics(run, s)
    return m


# -- compare --------------------------------------------------------------------------------------
def _half_rows(run: DepthRun, s: np.ndarray, rounding: float) -> list[Comparison]:
    """Half-way time of every mode, and the wrong depth's theory as a control."""
    depth = run.depth
    rows, tols = [], []
    how = " (closed form)" if depth == 2 else " (quadrature of the mode equation)"
    for a in range(s.size):
        tol = 2 * abs(run.t_gd[a] - run.t_flow[a]) / run.t_flow[a] + rounding
        tols.append(tol)
        rows.append(
            Comparison(
                name=f"D={depth}: half-way time of mode s={s[a]:g}",
                kind="prediction",
                predicted=float(run.t_flow[a]),
                measured=float(run.t_meas[a]),
                tolerance=tol,
                relative=True,
                tolerance_source=DISCRETE,
                unit="time (steps x lr)",
                reference=REF + how,
                note=f"gradient descent's own half-way time (the recursion) is {run.t_gd[a]:.6g}",
            )
        )
    wrong = np.array([deep_linear_time_to(v / 2, v, run.u0, depth + 1) for v in s])
    miss = float(np.max(np.abs(run.t_meas - wrong) / wrong))
    rows.append(
        Comparison(
            name=f"D={depth}: the depth-{depth + 1} theory misses the half-way times (wrong depth)",
            kind="control",
            predicted=max(tols),
            measured=miss,
            tolerance=0.0,
            tolerance_source=DISCRETE,
            sense="at_least",
            relative=False,
            note=(
                f"largest relative gap between the measured half-way times and those of a depth-"
                f"{depth + 1} network from the same u0 ({', '.join(f'{w:.4g}' for w in wrong)}): "
                "the rows above must be able to tell the depth"
            ),
        )
    )
    return rows


def _plateau_rows(run: DepthRun, s: np.ndarray, rounding: float) -> list[Comparison]:
    """Loss at the flattest point between consecutive half-way times against the exact loss."""
    depth, t, losses, t_meas = run.depth, run.t, run.losses, run.t_meas
    rows = []
    rate = -np.gradient(losses, t) / np.maximum(losses, 1e-300)
    for a in range(s.size - 1):
        mask = (t > t_meas[a]) & (t < t_meas[a + 1])
        why = (
            ""
            if mask.any()
            else f"no evaluation between the half-way times of modes {a + 1} "
            f"and {a + 2} (measured {t_meas[a]:.4g} and {t_meas[a + 1]:.4g}): a mode never "
            "reached s/2, or they were learned out of order"
        )
        pred = meas = tol = ideal = float("nan")
        note = ""
        if not why:
            k = np.flatnonzero(mask)[np.argmin(rate[mask])]
            pred = float(deep_linear_loss(np.array([t[k]]), s, run.u0, depth)[0])
            meas = float(losses[k])
            gd = 0.5 * float(np.sum((s - run.u_gd[k]) ** 2))
            tol = 2 * abs(gd - pred) + rounding * pred
            ideal = 0.5 * float(np.sum(s[a + 1 :] ** 2))
            note = (
                f"flattest point of the measured loss (smallest |dL/dt| / L) at t = "
                f"{t[k]:.3f}; gradient descent's own loss there {gd:.6g}"
            )
        rows.append(
            Comparison(
                name=f"D={depth}: loss on the plateau after mode {a + 1} against the exact loss",
                kind="prediction",
                predicted=pred,
                measured=meas,
                tolerance=0.0 if why else tol,
                tolerance_source=DISCRETE,
                unit="loss (1/2 squared error)",
                reference=REF,
                not_identified=why,
                note=note,
            )
        )
        rows.append(
            Comparison(
                name=f"D={depth}: the ideal plateau 1/2 sum s^2 misses the plateau after mode "
                f"{a + 1}",
                kind="control",
                predicted=0.0 if why else tol,
                measured=abs(meas - ideal),
                tolerance=0.0,
                tolerance_source=DISCRETE,
                sense="at_least",
                unit="loss (1/2 squared error)",
                not_identified=why,
                note=(
                    f"|measured - ideal {ideal:.6g}|: the ideal levels (modes fully learned or "
                    "not started) are the tails-free picture; the exact loss must be told from it"
                ),
            )
        )
    return rows


def _depth_rows(cfg: Config, s: np.ndarray, run: DepthRun) -> list[Comparison]:
    """Every row of one depth: half-way times, trajectory, order, plateaus (with controls)."""
    depth = run.depth
    rounding = float(torch.finfo(resolve_dtype(cfg.dtype)).eps) * (run.t.size - 1)
    rows = _half_rows(run, s, rounding)
    traj_err = float(np.max(np.abs(run.modes - run.u_flow) / s))
    traj_tol = 2 * float(np.max(np.abs(run.u_gd - run.u_flow) / s)) + rounding
    rows.append(
        Comparison(
            name=f"D={depth}: max_t max_a |u_a - u_a(theory)| / s_a",
            kind="prediction",
            predicted=0.0,
            measured=traj_err,
            tolerance=traj_tol,
            tolerance_source=DISCRETE,
            sense="at_most",
            unit="fraction of s",
            reference=REF,
            note="the whole trajectory of every mode against the flow",
        )
    )
    t_meas = run.t_meas
    pairs = [(a, b) for a in range(s.size) for b in range(a + 1, s.size)]
    done = bool(np.all(np.isfinite(t_meas)))
    rows.append(
        Comparison(
            name=f"D={depth}: fraction of mode pairs learned strongest first",
            kind="prediction",
            predicted=1.0,
            measured=float(np.mean([t_meas[a] < t_meas[b] for a, b in pairs])),
            tolerance=0.0,
            tolerance_source="a priori: an order is right or wrong",
            reference=REF,
            not_identified="" if done else "a mode never reached s/2 within the run",
            note=f"measured half-way times: {[round(float(v), 4) for v in t_meas]}",
        )
    )
    return rows + _plateau_rows(run, s, rounding)


def compare(cfg: Config, m: DeepLinearMeasurements) -> list[Comparison]:
    """Every depth's rows against the flow, tolerances from gradient descent's own recursion."""
    return [row for run in m.runs for row in _depth_rows(cfg, m.s, run)]


# -- figures and description ----------------------------------------------------------------------
def figures(cfg: Config, m: DeepLinearMeasurements) -> list[FigureSpec]:
    """Mode strengths per depth (theory and network) and the training loss of every depth."""
    import matplotlib.pyplot as plt

    s = m.s
    fig, axes = plt.subplots(1, len(m.runs), figsize=(4.2 * len(m.runs), 3.4), squeeze=False)
    fig_l, ax_l = plt.subplots(figsize=(5.5, 3.6))
    for ax, run in zip(axes[0], m.runs, strict=True):
        t = run.t
        stride = max(1, (t.size - 1) // 60)
        for a in range(s.size):
            (line,) = ax.plot(t, run.u_flow[:, a], lw=1.5, label=f"s={s[a]:g}")
            ax.plot(
                t[::stride], run.modes[::stride, a], "o", ms=3, color=line.get_color(), alpha=0.7
            )
        ax.set(
            title=f"D = {run.depth}, u0 = {run.u0:g}",
            xlabel="t = steps x lr",
            ylabel="mode strength u",
        )
        ax.legend(fontsize=8)
        (line,) = ax_l.plot(t, run.losses, label=f"D = {run.depth}")
        ax_l.plot(t, deep_linear_loss(t, s, run.u0, run.depth), ":", color=line.get_color(), lw=1)
    for a in range(s.size + 1):
        ax_l.axhline(0.5 * float(np.sum(s[a:] ** 2)), color="gray", ls="--", lw=0.6)
    ax_l.set(xlabel="t = steps x lr", ylabel="loss", yscale="log", title="training loss")
    ax_l.set_ylim(1e-4, None)
    ax_l.legend()
    return [
        FigureSpec(
            name="modes",
            figure=fig,
            caption="Mode strengths: theory (lines) and network (dots), one panel per depth.",
        ),
        FigureSpec(
            name="loss",
            figure=fig_l,
            caption="Training loss; dotted: the exact loss of the flow; dashed: the ideal levels "
            "1/2 sum of s^2 over the modes not yet learned.",
        ),
    ]


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    return (
        "Linear students of depth D learn a linear teacher with singular values "
        f"{tuple(cfg.singular_values)} from whitened inputs by full-batch gradient descent from a "
        "small balanced initialization aligned with the teacher's modes. Theory: each mode "
        "follows tau du/dt = D u^(2-2/D)(s - u) (closed-form logistic for D = 2, quadrature "
        "otherwise), with t = steps * lr. Modes are learned strongest first, with plateaus; "
        "tolerances are twice gradient descent's own distance from the flow."
        + ("" if cfg.whiten else " BROKEN INGREDIENT: inputs not whitened.")
    )


EXPERIMENT = Experiment(
    name="deep-linear-dynamics",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={"singular_values": (2.0, 1.0), "depths": (2, 3), "u0": (1e-6, 1e-3), "lr": 0.0015},
    summary="Saxe et al.: deep linear nets learn teacher modes one at a time, theory vs GD",
)
