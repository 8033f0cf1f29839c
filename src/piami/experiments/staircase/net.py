"""Two-layer ReLU replicas trained by online SGD on hypercube targets.

The network and loop behind the ``staircase`` experiment (:mod:`piami.experiments.staircase`):
``R`` independent networks train side by side as one batched tensor, every step on fresh samples,
with gradients written out by hand (tested against autograd in ``tests/models/test_mlp.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from piami.experiments.staircase.config import Config, lr_per_sample
from piami.models.device import resolve_device, resolve_dtype
from piami.processes.tasks import StaircaseTarget


class ReplicaNet:
    """``R`` independent two-layer ReLU nets ``f_r(x) = (1/N) sum_j a_rj relu(w_rj . x + b_rj)``.

    Parameters: ``w (R, N, d) ~ N(0, w_scale^2/d)``, ``b (R, N) ~ N(0, 1)``,
    ``a (R, N) ~ N(0, a_scale^2)``.
    Mean-field learning rate: each parameter moves by ``N lr`` times its gradient, so that ``f``
    changes at rate O(1) whatever ``N``.
    """

    def __init__(
        self,
        n_replicas: int,
        width: int,
        d: int,
        *,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
        a_scale: float = 1.0,
        w_scale: float = 1.0,
    ) -> None:
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


def train(
    target: StaircaseTarget,
    cfg: Config,
    *,
    leap: int,
    rng: np.random.Generator,
    generator: torch.Generator,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train ``n_replicas`` nets on ``target`` by online SGD.

    Args:
        target: the hypercube target (its monomials and coefficients).
        cfg: width, initial scales, step schedule, evaluation and stopping settings.
        leap: the target's leap, which sets the per-sample step (:func:`lr_per_sample`).
        rng: draws the test set; generator: draws the initialization and every training sample.
        progress: show a progress bar.

    Returns:
        ``(samples, losses, coefficients, x_test)``: sample counts ``(n_evals,)``, test MSE
        ``(R, n_evals)``, the network's Fourier coefficient on each target monomial,
        ``mean_test f chi_S``, ``(R, n_evals, n_monomials)``, and the test inputs ``(n_test, d)``.

    Each step uses ``batch = max(1, round(dt / lr))`` fresh samples and moves by ``batch * lr``.
    Stops once every replica's test loss is below a quarter of the last non-zero plateau, or at
    ``t_max``. With ``cfg.shuffle_labels`` (a broken ingredient) every training label is the
    target at an independent input, so there is nothing to learn; the test set keeps true labels.
    """
    from tqdm.auto import tqdm

    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    d, reps = target.d, cfg.n_replicas
    lr = lr_per_sample(cfg.lr0, leap, d)
    bsz = max(1, round(cfg.dt / lr))
    scales = {"a_scale": cfg.init_a_scale, "w_scale": cfg.init_w_scale}
    net = ReplicaNet(reps, cfg.width, d, generator=generator, dtype=dtype, device=device, **scales)
    xt, yt = target.sample(cfg.n_test, rng=rng)
    x_test = torch.as_tensor(xt, dtype=dtype, device=device).expand(reps, -1, -1)
    y_test = torch.as_tensor(yt, dtype=dtype, device=device)
    coefs = [float(c) for c in target.coefficients]
    chi_test = torch.stack(
        [y_test.new_tensor(xt[:, list(s)].prod(axis=1)) for s in target.supports], 1
    )
    done_below = 0.25 * target.plateau_losses()[-2]
    eval_every = max(1, round(cfg.eval_dt / (bsz * lr)))
    n_steps = math.ceil(cfg.t_max / (bsz * lr))
    samples, losses, mono = [], [], []
    for step in tqdm(range(n_steps + 1), disable=not progress, desc=f"leap {leap}, d={d}"):
        if step % eval_every == 0 or step == n_steps:
            with torch.no_grad():
                f, _ = net.forward(x_test)
                loss = ((f - y_test) ** 2).mean(dim=1).cpu().numpy().astype(np.float64)
            samples.append(step * bsz)
            losses.append(loss)
            mono.append((f @ chi_test / cfg.n_test).cpu().numpy().astype(np.float64))
            if np.all(loss < done_below) or step == n_steps:
                break
        x = torch.randint(0, 2, (reps, bsz, d), generator=generator).to(dtype=dtype, device=device)
        x = 2 * x - 1
        x_lab = x
        if cfg.shuffle_labels:
            x_lab = 2 * torch.randint(0, 2, x.shape, generator=generator).to(x) - 1
        y = sum(
            c * x_lab[..., list(s)].prod(dim=-1)
            for s, c in zip(target.supports, coefs, strict=True)
        )
        net.sgd_step(x, y, lr * bsz)
    return (
        np.asarray(samples, dtype=np.float64),
        np.stack(losses, axis=1),
        np.stack(mono, axis=1),
        xt,
    )
