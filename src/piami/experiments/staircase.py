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
from piami.processes.tasks import StaircaseTarget
from piami.theory.leap import escape_exponent

REF = "Abbe, Boix-Adsera & Misiakiewicz 2023 (leap complexity)"


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # draws every initialization and every sample
    leaps: tuple[int, ...] = (1, 2, 3)  # which standard staircase targets to train
    dims: tuple[int, ...] = (16, 24, 32, 48)  # input dimensions d (>= 4 for the fit)
    width: int = 128  # hidden units N
    n_replicas: int = 4  # independent networks per (leap, d); escape steps are their median
    batch: int = 32  # fresh samples per step (counted as that many online steps)
    lr0: float = 2.0  # per-sample step is lr0 * d^(-max(leap/2, 1))
    max_samples: int = 20_000_000  # give up on a run after this many samples
    n_evals: int = 200  # evaluations of the test loss over the expected escape time (resolution)
    n_test: int = 4096  # test samples for the loss curve
    dtype: str = "float32"  # torch dtype
    device: str = "auto"  # torch device

    def __post_init__(self) -> None:
        if not self.leaps or any(x not in (1, 2, 3) for x in self.leaps):
            raise PiamiValueError(f"leaps must be among 1, 2, 3, got {self.leaps!r}")
        if len(set(self.dims)) < 4 or min(self.dims) < 3:
            raise PiamiValueError(f"need >= 4 distinct dims >= 3 for the fit, got {self.dims!r}")
        if self.width < 2 or self.n_replicas < 1 or self.batch < 1:
            raise PiamiValueError("width must be >= 2, n_replicas and batch >= 1")
        if not (self.lr0 > 0) or self.max_samples < 1 or self.n_evals < 10 or self.n_test < 100:
            raise PiamiValueError("need lr0 > 0, max_samples >= 1, n_evals >= 10, n_test >= 100")
        resolve_dtype(self.dtype)


def lr_per_sample(lr0: float, leap: int, d: int) -> float:
    """Noise-limited online-SGD step: ``lr0 d^(-max(leap/2, 1))``."""
    return lr0 * d ** (-max(leap / 2.0, 1.0))


class ReplicaNet:
    """``R`` independent two-layer ReLU nets ``f_r(x) = (1/N) sum_j a_rj relu(w_rj . x + b_rj)``.

    Parameters: ``w (R, N, d) ~ N(0, 1/d)``, ``b (R, N) ~ N(0, 1)``, ``a (R, N) ~ N(0, 1)``.
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

    Stops once every replica's test loss is below a quarter of the last non-zero plateau, or at
    ``max_samples``.
    """
    from tqdm.auto import tqdm

    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    d, bsz, reps = target.d, cfg.batch, cfg.n_replicas
    lr = lr_per_sample(cfg.lr0, leap, d)
    net = ReplicaNet(reps, cfg.width, d, generator=generator, dtype=dtype, device=device)
    xt, yt = target.sample(cfg.n_test, rng=rng)
    x_test = torch.as_tensor(xt, dtype=dtype, device=device).expand(reps, -1, -1)
    y_test = torch.as_tensor(yt, dtype=dtype, device=device)
    coefs = [float(c) for c in target.coefficients]
    levels = target.plateau_losses()
    done_below = 0.25 * levels[-2]
    # evaluate ~n_evals times over the expected escape scale d^exponent (grows if needed)
    expected = 200.0 * d ** escape_exponent(leap)
    eval_every = max(1, int(expected / cfg.n_evals / bsz))
    samples, losses = [], []
    step, n_samples = 0, 0
    bar = tqdm(total=cfg.max_samples, disable=not progress, desc=f"leap {leap}, d={d}")
    while True:
        if step % eval_every == 0:
            with torch.no_grad():
                f, _ = net.forward(x_test)
                loss = ((f - y_test) ** 2).mean(dim=1).cpu().numpy().astype(np.float64)
            samples.append(n_samples)
            losses.append(loss)
            if np.all(loss < done_below) or n_samples >= cfg.max_samples:
                break
        x = torch.randint(0, 2, (reps, bsz, d), generator=generator).to(dtype=dtype, device=device)
        x = 2 * x - 1
        y = sum(c * x[..., list(s)].prod(dim=-1) for s, c in zip(target.supports, coefs, strict=True))
        net.sgd_step(x, y, lr * bsz * cfg.width)
        step += 1
        n_samples += bsz
        bar.update(bsz)
    bar.close()
    return np.asarray(samples, dtype=np.float64), np.stack(losses, axis=1)


def first_below(samples: np.ndarray, loss: np.ndarray, level: float) -> float:
    """First sample count at which ``loss`` falls below ``level`` (NaN if never)."""
    idx = np.flatnonzero(loss < level)
    return float(samples[idx[0]]) if idx.size else float("nan")


def plateau_value(loss: np.ndarray, lo: float, hi: float) -> float:
    """Median loss over the middle half of the evaluations lying in ``[lo, hi)`` (NaN if none)."""
    idx = np.flatnonzero((loss >= lo) & (loss < hi))
    if idx.size < 3:
        return float("nan")
    k = idx.size // 4
    return float(np.median(loss[idx[k : idx.size - k]]))


def loglog_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``log y`` on ``log x`` and its standard error."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    a = np.vstack([lx, np.ones_like(lx)]).T
    coef, *_ = np.linalg.lstsq(a, ly, rcond=None)
    resid = ly - a @ coef
    se = math.sqrt(float(resid @ resid) / max(lx.size - 2, 1) / float(((lx - lx.mean()) ** 2).sum()))
    return float(coef[0]), se
