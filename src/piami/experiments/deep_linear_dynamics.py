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

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.lab import Comparison, Result
from piami.models.device import resolve_device, resolve_dtype
from piami.models.mlp import DeepLinearNet, few_threads
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


def _first_crossing(t: np.ndarray, u: np.ndarray, level: float) -> float:
    idx = np.flatnonzero(u >= level)
    if idx.size == 0 or idx[0] == 0:
        return float("nan")
    k = idx[0]
    return float(t[k - 1] + (level - u[k - 1]) * (t[k] - t[k - 1]) / (u[k] - u[k - 1]))


def train_student(
    teacher: LinearTeacher,
    x: np.ndarray,
    y: np.ndarray,
    *,
    depth: int,
    u0: float,
    hidden: int,
    lr: float,
    n_steps: int,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch GD on ``1/2 mean ||y - W x||^2``; returns mode strengths ``(steps+1, m)`` and loss."""
    from tqdm.auto import tqdm

    dims = (teacher.d_in, *([hidden] * (depth - 1)), teacher.d_out)
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
    with few_threads(1):
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


def _half_rows(depth: int, s: np.ndarray, u0: float, t: np.ndarray, t_meas: np.ndarray,
               t_flow: np.ndarray, t_gd: np.ndarray, rounding: float) -> list[Comparison]:  # fmt: skip
    """Half-way time of every mode, and the wrong depth's theory as a control."""
    rows, tols = [], []
    for a in range(s.size):
        tol = 2 * abs(t_gd[a] - t_flow[a]) / t_flow[a] + rounding
        tols.append(tol)
        rows.append(Comparison(
            name=f"D={depth}: half-way time of mode s={s[a]:g}", kind="prediction",
            predicted=float(t_flow[a]), measured=float(t_meas[a]), tolerance=tol, relative=True,
            tolerance_source=DISCRETE, unit="time (steps x lr)",
            reference=REF + (" (closed form)" if depth == 2 else " (quadrature of the mode equation)"),
            note=f"gradient descent's own half-way time (the recursion) is {t_gd[a]:.6g}",
        ))  # fmt: skip
    wrong = np.array([deep_linear_time_to(v / 2, v, u0, depth + 1) for v in s])
    miss = float(np.max(np.abs(t_meas - wrong) / wrong))
    rows.append(Comparison(
        name=f"D={depth}: the depth-{depth + 1} theory misses the half-way times (wrong depth)",
        kind="control", predicted=max(tols), measured=miss, tolerance=0.0,
        tolerance_source=DISCRETE, sense="at_least", relative=False,
        note=(f"largest relative gap between the measured half-way times and those of a depth-"
              f"{depth + 1} network from the same u0 ({', '.join(f'{w:.4g}' for w in wrong)}): "
              "the rows above must be able to tell the depth"),
    ))  # fmt: skip
    return rows


def _plateau_rows(depth: int, s: np.ndarray, u0: float, t: np.ndarray, losses: np.ndarray,
                  t_meas: np.ndarray, u_gd: np.ndarray, rounding: float) -> list[Comparison]:  # fmt: skip
    """Loss at the flattest point between consecutive half-way times against the exact loss."""
    rows = []
    rate = -np.gradient(losses, t) / np.maximum(losses, 1e-300)
    for a in range(s.size - 1):
        name = f"D={depth}: loss on the plateau after mode {a + 1} against the exact loss"
        ctrl = f"D={depth}: the ideal plateau 1/2 sum s^2 misses the plateau after mode {a + 1}"
        mask = (t > t_meas[a]) & (t < t_meas[a + 1])
        why = (
            "" if mask.any() else f"no evaluation between the half-way times of modes {a + 1} "
            f"and {a + 2} (measured {t_meas[a]:.4g} and {t_meas[a + 1]:.4g}): a mode never "
            "reached s/2, or they were learned out of order"
        )  # fmt: skip
        pred = meas = tol = ideal = float("nan")
        note = ""
        if not why:
            k = np.flatnonzero(mask)[np.argmin(rate[mask])]
            pred = float(deep_linear_loss(np.array([t[k]]), s, u0, depth)[0])
            meas = float(losses[k])
            gd = 0.5 * float(np.sum((s - u_gd[k]) ** 2))
            tol = 2 * abs(gd - pred) + rounding * pred
            ideal = 0.5 * float(np.sum(s[a + 1 :] ** 2))
            note = (f"flattest point of the measured loss (smallest |dL/dt| / L) at t = "
                    f"{t[k]:.3f}; gradient descent's own loss there {gd:.6g}")  # fmt: skip
        rows.append(Comparison(
            name=name, kind="prediction", predicted=pred, measured=meas,
            tolerance=0.0 if why else tol, tolerance_source=DISCRETE,
            unit="loss (1/2 squared error)", reference=REF, not_identified=why, note=note,
        ))  # fmt: skip
        rows.append(Comparison(
            name=ctrl, kind="control", predicted=0.0 if why else tol,
            measured=abs(meas - ideal), tolerance=0.0, tolerance_source=DISCRETE,
            sense="at_least", unit="loss (1/2 squared error)", not_identified=why,
            note=(f"|measured - ideal {ideal:.6g}|: the ideal levels (modes fully learned or not "
                  "started) are the tails-free picture; the exact loss must be told from it"),
        ))  # fmt: skip
    return rows


def _depth_rows(cfg: Config, s: np.ndarray, depth: int, u0: float, t: np.ndarray,
                modes: np.ndarray, losses: np.ndarray) -> tuple[list[Comparison], dict[str, Any]]:  # fmt: skip
    """Every row of one depth, and its metrics."""
    n_steps = t.size - 1
    rounding = float(torch.finfo(resolve_dtype(cfg.dtype)).eps) * n_steps
    u_flow = np.stack([deep_linear_mode_trajectory(t, v, u0, depth) for v in s], axis=1)
    u_gd = deep_linear_gd_modes(n_steps, s, u0, depth, cfg.lr)
    t_flow = np.array([deep_linear_time_to(v / 2, v, u0, depth) for v in s])
    t_gd = np.array([_first_crossing(t, u_gd[:, a], s[a] / 2) for a in range(s.size)])
    t_meas = np.array([_first_crossing(t, modes[:, a], s[a] / 2) for a in range(s.size)])
    rows = _half_rows(depth, s, u0, t, t_meas, t_flow, t_gd, rounding)
    traj_err = float(np.max(np.abs(modes - u_flow) / s))
    traj_tol = 2 * float(np.max(np.abs(u_gd - u_flow) / s)) + rounding
    rows.append(Comparison(
        name=f"D={depth}: max_t max_a |u_a - u_a(theory)| / s_a", kind="prediction",
        predicted=0.0, measured=traj_err, tolerance=traj_tol, tolerance_source=DISCRETE,
        sense="at_most", unit="fraction of s", reference=REF,
        note="the whole trajectory of every mode against the flow",
    ))  # fmt: skip
    pairs = [(a, b) for a in range(s.size) for b in range(a + 1, s.size)]
    done = bool(np.all(np.isfinite(t_meas)))
    rows.append(Comparison(
        name=f"D={depth}: fraction of mode pairs learned strongest first", kind="prediction",
        predicted=1.0, measured=float(np.mean([t_meas[a] < t_meas[b] for a, b in pairs])),
        tolerance=0.0, tolerance_source="a priori: an order is right or wrong", reference=REF,
        not_identified="" if done else "a mode never reached s/2 within the run",
        note=f"measured half-way times: {[round(float(v), 4) for v in t_meas]}",
    ))  # fmt: skip
    rows += _plateau_rows(depth, s, u0, t, losses, t_meas, u_gd, rounding)
    metrics = {
        "u0": u0, "n_steps": n_steps, "t_half_theory": t_flow.tolist(),
        "t_half_gradient_descent": t_gd.tolist(), "t_half_measured": t_meas.tolist(),
        "trajectory_error_over_s": traj_err,
    }  # fmt: skip
    return rows, metrics


def run(cfg: Config, *, progress: bool = True) -> Result:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    s = np.asarray(cfg.singular_values, dtype=np.float64)
    teacher = LinearTeacher(s, cfg.d_in, cfg.d_out, rng=rng)
    x, y = _inputs(teacher, cfg, rng)
    result = Result(
        experiment="deep-linear-dynamics",
        config={},
        seed=cfg.seed,
        description=(
            "Linear students of depth D learn a linear teacher with singular values "
            f"{tuple(cfg.singular_values)} from whitened inputs by full-batch gradient descent from a "
            "small balanced initialization aligned with the teacher's modes. Theory: each mode "
            "follows tau du/dt = D u^(2-2/D)(s - u) (closed-form logistic for D = 2, quadrature "
            "otherwise), with t = steps * lr. Modes are learned strongest first, with plateaus; "
            "tolerances are twice gradient descent's own distance from the flow."
            + ("" if cfg.whiten else " BROKEN INGREDIENT: inputs not whitened.")
        ),
    )
    fig, axes = plt.subplots(
        1, len(cfg.depths), figsize=(4.2 * len(cfg.depths), 3.4), squeeze=False
    )
    fig_l, ax_l = plt.subplots(figsize=(5.5, 3.6))
    for j, (depth, u0) in enumerate(zip(cfg.depths, cfg.u0, strict=True)):
        t_half = max(deep_linear_time_to(v / 2, v, u0, depth) for v in s)
        n_steps = int(np.ceil(cfg.t_max_factor * t_half / cfg.lr))
        modes, losses = train_student(
            teacher, x, y, depth=depth, u0=u0, hidden=cfg.hidden, lr=cfg.lr, n_steps=n_steps,
            generator=gen, dtype=dtype, device=device, progress=progress,
        )  # fmt: skip
        t = np.arange(n_steps + 1) * cfg.lr
        rows, metrics = _depth_rows(cfg, s, depth, u0, t, modes, losses)
        result.comparisons.extend(rows)
        result.metrics[f"depth{depth}"] = metrics
        ax = axes[0, j]
        stride = max(1, n_steps // 60)
        for a in range(s.size):
            u_th = deep_linear_mode_trajectory(t, s[a], u0, depth)
            (line,) = ax.plot(t, u_th, lw=1.5, label=f"s={s[a]:g}")
            ax.plot(t[::stride], modes[::stride, a], "o", ms=3, color=line.get_color(), alpha=0.7)
        ax.set(title=f"D = {depth}, u0 = {u0:g}", xlabel="t = steps x lr", ylabel="mode strength u")
        ax.legend(fontsize=8)
        (line,) = ax_l.plot(t, losses, label=f"D = {depth}")
        ax_l.plot(t, deep_linear_loss(t, s, u0, depth), ":", color=line.get_color(), lw=1)
    for a in range(s.size + 1):
        ax_l.axhline(0.5 * float(np.sum(s[a:] ** 2)), color="gray", ls="--", lw=0.6)
    ax_l.set(xlabel="t = steps x lr", ylabel="loss", yscale="log", title="training loss")
    ax_l.set_ylim(1e-4, None)
    ax_l.legend()
    result.add_figure(
        "modes", fig, "Mode strengths: theory (lines) and network (dots), one panel per depth."
    )
    result.add_figure(
        "loss",
        fig_l,
        "Training loss; dotted: the exact loss of the flow; dashed: the ideal levels 1/2 sum of "
        "s^2 over the modes not yet learned.",
    )
    return result


from piami.lab import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    name="deep-linear-dynamics",
    config_cls=Config,
    run=run,
    quick={"singular_values": (2.0, 1.0), "depths": (2, 3), "u0": (1e-6, 1e-3), "lr": 0.0015},
    summary="Saxe et al.: deep linear nets learn teacher modes one at a time, theory vs GD",
)
