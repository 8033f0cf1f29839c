"""Lazy to rich: a wide two-layer linear network against its DMFT (Bordelon & Pehlevan 2022).

``f(x) = (1/(gamma0 N)) sum_i a_i (w_i . x)`` (mean-field parameterization), trained by full-batch
gradient descent with step ``gamma0^2 N dt`` on whitened inputs and a linear target ``y (e . x)``.
Infinite-width theory: the output along ``e`` obeys ``df/dt = 2 sqrt(1 + gamma0^2 f^2)(y - f)``;
the kernel along ``e`` grows as ``sqrt(1 + gamma0^2 f^2)``. Small ``gamma0`` is lazy (exponential
approach, fixed kernel); large ``gamma0`` is rich (sigmoidal, the kernel grows with the function).
Compared for each ``gamma0``: the time to reach ``0.9 y`` (closed form), the shape ratio
``t_0.9 / t_0.5``, and the kernel's growth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.lab import Comparison, Result
from piami.models.device import resolve_device, resolve_dtype
from piami.models.mlp import TwoLayerNet, few_threads
from piami.processes.tasks import whitened_inputs
from piami.theory.dynamics import dmft_kernel_scale, dmft_linear_time_to, dmft_linear_trajectory

REF = "Bordelon & Pehlevan 2022, two-layer linear network (sec. 5)"


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # draws the inputs, the target direction and the initialization
    gamma0s: tuple[float, ...] = (0.1, 1.0, 4.0)  # richness values gamma0 to train
    width: int = 50_000  # hidden units N (>= 10^4 for the DMFT to hold to ~1%)
    d_in: int = 8  # input dimension (= number of whitened samples, full batch)
    y: float = 1.0  # target value along its direction
    dt: float = 0.001  # time per gradient step (learning rate gamma0^2 N dt)
    t_max_factor: float = 1.3  # train until this multiple of the largest predicted t_0.9
    dtype: str = "float64"  # torch dtype
    device: str = "auto"  # torch device

    def __post_init__(self) -> None:
        if not self.gamma0s or any(not (g > 0) for g in self.gamma0s):
            raise PiamiValueError(f"gamma0s must be positive numbers, got {self.gamma0s!r}")
        if self.width < 2 or self.width % 2:
            raise PiamiValueError(f"width must be an even integer >= 2, got {self.width}")
        if self.d_in < 1:
            raise PiamiValueError(f"d_in must be >= 1, got {self.d_in}")
        if not (self.y > 0):
            raise PiamiValueError(f"y must be > 0, got {self.y}")
        if not (0 < self.dt <= 0.01):
            raise PiamiValueError(
                f"dt must lie in (0, 0.01] to follow gradient flow, got {self.dt}"
            )
        if self.t_max_factor < 1.05:
            raise PiamiValueError(f"t_max_factor must be >= 1.05, got {self.t_max_factor}")
        resolve_dtype(self.dtype)


def _crossing(t: np.ndarray, f: np.ndarray, level: float) -> float:
    idx = np.flatnonzero(f >= level)
    if idx.size == 0 or idx[0] == 0:
        return float("nan")
    k = idx[0]
    return float(t[k - 1] + (level - f[k - 1]) * (t[k] - t[k - 1]) / (f[k] - f[k - 1]))


def train(
    cfg: Config, gamma0: float, x: np.ndarray, e: np.ndarray, *, generator: torch.Generator,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Train one network; returns times, ``f`` along ``e`` and the kernel along ``e`` over time."""
    from tqdm.auto import tqdm

    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    n = cfg.width
    net = TwoLayerNet(
        cfg.d_in, n, scale=1.0 / (gamma0 * n), activation="linear", symmetric=True,
        generator=generator, dtype=dtype, device=device,
    )  # fmt: skip
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    et = torch.as_tensor(e, dtype=dtype, device=device)
    yt = cfg.y * (xt @ et)
    opt = torch.optim.SGD(net.parameters(), lr=gamma0**2 * n * cfg.dt)
    t_end = cfg.t_max_factor * dmft_linear_time_to(0.9, cfg.y, gamma0)
    n_steps = int(np.ceil(t_end / cfg.dt))
    f_e = np.empty(n_steps + 1)
    kern = np.empty(n_steps + 1)
    with few_threads(1):
        for step in tqdm(range(n_steps + 1), disable=not progress, desc=f"gamma0={gamma0:g}"):
            with torch.no_grad():
                beta = (net.a @ net.w) * net.scale
                f_e[step] = float(beta @ et)
                kern[step] = float(((net.a**2).sum() + ((net.w @ et) ** 2).sum()) / n)
            if step == n_steps:
                break
            opt.zero_grad()
            loss = 0.5 * ((yt - net(xt)) ** 2).mean()
            loss.backward()
            opt.step()
    return np.arange(n_steps + 1) * cfg.dt, f_e, kern


def run(cfg: Config, *, progress: bool = True) -> Result:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x = whitened_inputs(cfg.d_in, cfg.d_in, rng=rng)
    e = rng.standard_normal(cfg.d_in)
    e /= np.linalg.norm(e)
    result = Result(
        experiment="dmft-two-layer",
        config={},
        seed=cfg.seed,
        description=(
            f"A two-layer linear network of width {cfg.width} in the mean-field parameterization "
            "(output scale 1/(gamma0 N), learning rate gamma0^2 N dt) learns a linear target on "
            "whitened inputs by full-batch gradient descent, for gamma0 in "
            f"{tuple(cfg.gamma0s)}. DMFT: df/dt = 2 sqrt(1 + gamma0^2 f^2)(y - f); the kernel "
            "along the target grows by sqrt(1 + gamma0^2 f^2). Units are paired (a, w), (-a, w) so "
            "that f = 0 at initialization, as the theory assumes."
        ),
    )
    fig, (ax_f, ax_k) = plt.subplots(1, 2, figsize=(10, 3.8))
    for gamma0 in cfg.gamma0s:
        t, f, kern = train(cfg, gamma0, x, e, generator=gen, progress=progress)
        f_th = dmft_linear_trajectory(t, cfg.y, gamma0)
        t90, t50 = (dmft_linear_time_to(q, cfg.y, gamma0) for q in (0.9, 0.5))
        m90, m50 = (_crossing(t, f, q * cfg.y) for q in (0.9, 0.5))
        result.comparisons.append(Comparison(
            name=f"gamma0={gamma0:g}: time to reach 0.9 y", predicted=t90, measured=m90,
            tolerance=0.03, relative=True, unit="time (steps x dt)", reference=REF,
            note=f"finite width N={cfg.width}: the initial kernel fluctuates by ~2/sqrt(N/2) = "
                 f"{2 / np.sqrt(cfg.width / 2):.1%}, and gradient descent differs from gradient "
                 "flow by O(dt K); 3% as the issue asks",
        ))  # fmt: skip
        result.comparisons.append(Comparison(
            name=f"gamma0={gamma0:g}: shape ratio t_0.9 / t_0.5", predicted=t90 / t50,
            measured=m90 / m50, tolerance=0.03, relative=True, reference=REF,
            note="lazy (exponential) gives ln10/ln2 = 3.32; the rich sigmoid gives less. Same "
                 "error sources as the times; 3%",
        ))  # fmt: skip
        f_end = float(f_th[-1])
        result.comparisons.append(Comparison(
            name=f"gamma0={gamma0:g}: kernel growth K(t_end)/K(0) along the target",
            predicted=float(dmft_kernel_scale(f_end, gamma0)), measured=float(kern[-1] / kern[0]),
            tolerance=0.03, relative=True, reference=REF + ", conservation K^2 - 4 gamma0^2 f^2",
            note="lazy: the kernel stays put; rich: it grows with f. 3% for the finite width",
        ))  # fmt: skip
        result.metrics[f"gamma0={gamma0:g}"] = {
            "t90_theory": t90, "t90_measured": m90, "t50_theory": t50, "t50_measured": m50,
            "max_abs_f_error": float(np.max(np.abs(f - f_th))), "kernel_initial": float(kern[0]),
        }  # fmt: skip
        stride = max(1, t.size // 40)
        (line,) = ax_f.plot(t / t90, f_th / cfg.y, lw=1.5, label=f"gamma0={gamma0:g}")
        ax_f.plot(t[::stride] / t90, f[::stride] / cfg.y, "o", ms=3, color=line.get_color())
        ax_k.plot(t / t90, dmft_kernel_scale(f_th, gamma0), lw=1.5, color=line.get_color())
        ax_k.plot(t[::stride] / t90, kern[::stride] / kern[0], "o", ms=3, color=line.get_color())
    ax_f.axhline(0.9, color="gray", ls=":", lw=0.8)
    ax_f.set(
        xlabel="t / t_0.9 (theory)", ylabel="f / y", title="lazy (exponential) to rich (sigmoid)"
    )
    ax_f.legend(fontsize=8)
    ax_k.set(xlabel="t / t_0.9 (theory)", ylabel="K(t) / K(0)", yscale="log",
             title="kernel along the target")  # fmt: skip
    fig.tight_layout()
    result.add_figure(
        "dmft",
        fig,
        "DMFT (lines) and width-N network (dots); time in units of the predicted t_0.9.",
    )
    return result


from piami.lab import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    name="dmft-two-layer",
    config_cls=Config,
    run=run,
    quick={"width": 10_000, "dt": 0.002},
    summary="Bordelon & Pehlevan: lazy-to-rich dynamics of a wide two-layer linear net vs DMFT",
)
