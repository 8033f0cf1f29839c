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

Measured here (seed 0, defaults): escape exponents 1.15 (leap 1), 1.12 (leap 2), 1.91 (leap 3)
against 1, 1, 2; the leap-2 plateau at 1 and the leap-3 plateau at 1 are flat and at the predicted
level, but the leap-1 staircase shows no separated plateaus at d <= 64 (x1 and x1x2 are learned
together, then x1x2x3 creeps in from ~0.8), so its plateau comparisons fail. Protocol changes probed
on leap 1 (4 replicas, seed 0; plateau values by :func:`plateau_value`, predicted 2 and 1) did not
separate them either: ``init_a_scale=0.01`` at d = 128 / 256 / 512 / 1024 (with ``init_w_scale`` 1
or 0.1 or 0.01) gave 1.51-1.65 (or 2.18-2.50 near the window's top edge: no flat stretch at 2) and
0.73-0.85; ``lr0=0.02`` at d = 128 gave 1.5-2.3 and 0.73-0.75; biases shrunk 10-100x gave 1.52-1.69
and 0.80-0.87; layer-wise training (second layer frozen at its init) dropped from 3 to ~0.9 at once,
then 0.52-0.74. The level is d-independent from 128 to 1024, as the leap-1 mean-field limit is.
Projecting the network on the monomials at the ~0.8 level (d = 128) gives x1 1.22, x1x2 0.78, x1x2x3
0.20, x1x3 -0.20: x3 enters before x1x2 is fitted, so that level is not the "x1 + x1x2 learned"
saddle the theory names, and it stays reported as a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from piami.errors import PiamiValueError
from piami.experiments.result import Comparison, Result
from piami.models.device import resolve_device, resolve_dtype
from piami.models.mlp import few_threads
from piami.processes.tasks import STAIRCASES, StaircaseTarget
from piami.theory.leap import escape_exponent, learning_order

REF = "Abbe, Boix-Adsera & Misiakiewicz 2023 (leap complexity)"


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # draws every initialization and every sample
    leaps: tuple[int, ...] = (1, 2, 3)  # which standard staircase targets to train
    dims: tuple[int, ...] = (16, 24, 32, 48, 64)  # input dimensions d (>= 4 for the fit)
    width: int = 128  # hidden units N
    n_replicas: int = 6  # independent networks per (leap, d); escape counts are their median
    init_w_scale: float = 1.0  # first-layer init w ~ N(0, init_w_scale^2 / d)
    init_a_scale: float = 1.0  # second-layer init a ~ N(0, init_a_scale^2)
    lr0: float = 0.1  # per-sample step is lr0 * d^(-max(leap/2, 1)) (mean-field units)
    dt: float = 0.05  # gradient-flow time per step: batch = dt / (per-sample step) fresh samples
    t_max: float = 400.0  # give up after this much gradient-flow time
    eval_dt: float = 0.4  # gradient-flow time between test-loss evaluations
    n_test: int = 2048  # test samples for the loss curve
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
        if self.n_test < 100:
            raise PiamiValueError(f"n_test must be >= 100, got {self.n_test}")
        resolve_dtype(self.dtype)


def lr_per_sample(lr0: float, leap: int, d: int) -> float:
    """Noise-limited online-SGD step: ``lr0 d^(-max(leap/2, 1))``."""
    return lr0 * d ** (-max(leap / 2.0, 1.0))


class ReplicaNet:
    """``R`` independent two-layer ReLU nets ``f_r(x) = (1/N) sum_j a_rj relu(w_rj . x + b_rj)``.

    Parameters: ``w (R, N, d) ~ N(0, w_scale^2/d)``, ``b (R, N) ~ N(0, 1)``, ``a (R, N) ~ N(0, a_scale^2)``.
    Mean-field learning rate: each parameter moves by ``N lr`` times its gradient, so that ``f``
    changes at rate O(1) whatever ``N``.
    """

    def __init__(self, n_replicas: int, width: int, d: int, *, generator: torch.Generator,
                 dtype: torch.dtype, device: torch.device, a_scale: float = 1.0,
                 w_scale: float = 1.0) -> None:  # fmt: skip
        def randn(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator, dtype=dtype).to(device)

        self.w = randn(n_replicas, width, d) * (w_scale / math.sqrt(d))
        self.b = randn(n_replicas, width)
        self.a = randn(n_replicas, width) * a_scale
        self.width = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (R, B, d) -> (f (R, B), pre-activations (R, B, N))``."""
        z = torch.baddbmm(self.b.unsqueeze(1), x, self.w.transpose(1, 2))
        return torch.einsum("rbn,rn->rb", torch.relu(z), self.a) / self.width, z

    @torch.no_grad()
    def sgd_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        """One step on ``1/2 mean_b (f - y)^2`` with mean-field step ``N lr``."""
        f, z = self.forward(x)
        r = (f - y) / x.shape[1]  # (R, B): d loss / d f, averaged over the batch
        h = torch.relu(z)
        g_a = torch.einsum("rb,rbn->rn", r, h)  # times 1/N, cancelled by the N in N lr
        g_z = r.unsqueeze(-1) * (z > 0).to(z.dtype) * self.a.unsqueeze(1)  # (R, B, N)
        g_w = torch.einsum("rbn,rbd->rnd", g_z, x)
        g_b = g_z.sum(dim=1)
        self.a -= lr * g_a
        self.w -= lr * g_w
        self.b -= lr * g_b


def train(target: StaircaseTarget, cfg: Config, *, leap: int, rng: np.random.Generator,
          generator: torch.Generator, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Train ``n_replicas`` nets; returns sample counts ``(n_evals,)`` and test losses ``(R, n_evals)``.

    Each step uses ``batch = max(1, round(dt / lr))`` fresh samples and moves by ``batch * lr``.
    Stops once every replica's test loss is below a quarter of the last non-zero plateau, or at
    ``t_max``.
    """
    from tqdm.auto import tqdm

    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    d, reps = target.d, cfg.n_replicas
    lr = lr_per_sample(cfg.lr0, leap, d)
    bsz = max(1, round(cfg.dt / lr))
    net = ReplicaNet(reps, cfg.width, d, generator=generator, dtype=dtype, device=device,
                     a_scale=cfg.init_a_scale, w_scale=cfg.init_w_scale)  # fmt: skip
    xt, yt = target.sample(cfg.n_test, rng=rng)
    x_test = torch.as_tensor(xt, dtype=dtype, device=device).expand(reps, -1, -1)
    y_test = torch.as_tensor(yt, dtype=dtype, device=device)
    coefs = [float(c) for c in target.coefficients]
    done_below = 0.25 * target.plateau_losses()[-2]
    eval_every = max(1, round(cfg.eval_dt / (bsz * lr)))
    n_steps = math.ceil(cfg.t_max / (bsz * lr))
    samples, losses = [], []
    for step in tqdm(range(n_steps + 1), disable=not progress, desc=f"leap {leap}, d={d}"):
        if step % eval_every == 0 or step == n_steps:
            with torch.no_grad():
                f, _ = net.forward(x_test)
                loss = ((f - y_test) ** 2).mean(dim=1).cpu().numpy().astype(np.float64)
            samples.append(step * bsz)
            losses.append(loss)
            if np.all(loss < done_below) or step == n_steps:
                break
        x = torch.randint(0, 2, (reps, bsz, d), generator=generator).to(dtype=dtype, device=device)
        x = 2 * x - 1
        y = sum(
            c * x[..., list(s)].prod(dim=-1) for s, c in zip(target.supports, coefs, strict=True)
        )
        net.sgd_step(x, y, lr * bsz)
    return np.asarray(samples, dtype=np.float64), np.stack(losses, axis=1)


def first_below(samples: np.ndarray, loss: np.ndarray, level: float) -> float:
    """First sample count at which ``loss`` falls below ``level`` (NaN if never)."""
    idx = np.flatnonzero(loss < level)
    return float(samples[idx[0]]) if idx.size else float("nan")


def plateau_value(samples: np.ndarray, loss: np.ndarray, lo: float, hi: float) -> float:
    """Loss at the flattest point of the curve while it lies in ``[lo, hi)`` (NaN if never there).

    The curve is smoothed over 5 evaluations and the point of smallest ``|dL/dn|`` is taken. On a
    true plateau this is the plateau's level; a curve that only passes through the window (no
    plateau) is flattest at its lower edge, half a gap away from the level.
    """
    if loss.size < 5:
        return float("nan")
    smooth = np.convolve(loss, np.ones(5) / 5, mode="same")
    smooth[:2], smooth[-2:] = loss[:2], loss[-2:]
    slope = np.abs(np.gradient(smooth, samples))
    idx = np.flatnonzero((smooth >= lo) & (smooth < hi))
    idx = idx[(idx >= 2) & (idx < loss.size - 2)]
    if idx.size == 0:
        return float("nan")
    return float(smooth[idx[np.argmin(slope[idx])]])


def loglog_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``log y`` on ``log x`` and its standard error."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    a = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(a, ly, rcond=None)
    resid = ly - a @ coef
    se = math.sqrt(
        float(resid @ resid) / max(lx.size - 2, 1) / float(((lx - lx.mean()) ** 2).sum())
    )
    return float(coef[0]), se


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
            "samples. Measured: plateau losses and the samples needed to escape the last plateau."
        ),
    )
    fig_c, axes_c = plt.subplots(
        1, len(cfg.leaps), figsize=(4.4 * len(cfg.leaps), 3.5), squeeze=False
    )
    fig_s, ax_s = plt.subplots(figsize=(5.2, 3.8))
    with few_threads(1):
        for j, leap in enumerate(cfg.leaps):
            escapes = np.full(dims.size, np.nan)
            curves = {}
            for i, d in enumerate(dims.astype(int)):
                target = StaircaseTarget.standard(leap=leap, d=int(d))
                samples, losses = train(target, cfg, leap=leap, rng=rng, generator=gen,
                                        progress=progress)  # fmt: skip
                levels = target.plateau_losses()
                per_rep = [first_below(samples, l, levels[-2] / 2) for l in losses]
                escapes[i] = np.median(per_rep) if np.all(np.isfinite(per_rep)) else np.nan
                curves[int(d)] = (samples, losses, per_rep)
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
            samples, losses, _ = curves[d_big]
            levels = StaircaseTarget.standard(leap=leap, d=d_big).plateau_losses()
            _, jumps = learning_order(STAIRCASES[leap])
            first_is_saddle = jumps[0] >= 2  # a linear first monomial has a gradient at f = 0
            for k in range(0 if first_is_saddle else 1, levels.size - 1):
                hi = np.inf if k == 0 else (levels[k] + levels[k - 1]) / 2
                lo = (levels[k] + levels[k + 1]) / 2
                vals = [plateau_value(samples, l, lo, hi) for l in losses]
                seen = [v for v in vals if np.isfinite(v)]
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
                          "monomial is not a plateau (no saddle at f = 0) and is not compared"),
                ))  # fmt: skip
            ax = axes_c[0, j]
            for r in range(losses.shape[0]):
                ax.plot(samples, losses[r], lw=1, alpha=0.8)
            for lv in levels:
                ax.axhline(lv, color="gray", ls=":", lw=0.8)
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
        "Test loss of every replica at the largest d; dotted: predicted plateaus.",
    )
    result.add_figure(
        "escape_scaling", fig_s, "Median samples to escape the last plateau against d."
    )
    return result


from piami.experiments.registry import Experiment  # noqa: E402

EXPERIMENT = Experiment(
    name="staircase",
    config_cls=Config,
    run=run,
    quick={"dims": (8, 12, 16, 24), "width": 64, "n_replicas": 4, "n_test": 1024},
    summary="Abbe et al.: online SGD learns staircases saddle to saddle; escape ~ d^max(leap-1,1)",
)
