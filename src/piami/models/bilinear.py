"""A bilinear layer ``y = P ((W x) * (V x))``: an MLP whose nonlinearity is a product.

Replacing ``act(W x)`` by the elementwise product ``(W x) * (V x)`` keeps most of an MLP's accuracy
(Shazeer 2020, "GLU variants") and makes the layer a quadratic form per output:
``y_o = x^T B_o x`` with the interaction matrix ``B_o = sum_h P[o, h] W[h]^T V[h]`` (only its
symmetric part matters). Its eigendecomposition reads the features straight from the weights
(Pearce et al. 2024, "Bilinear MLPs enable weight-based mechanistic interpretability"); see
:func:`piami.instruments.weights.bilinear_eigendecomposition`.

Hook names: ``hook_left`` (``W x``), ``hook_right`` (``V x``), ``hook_hidden`` (their product),
``hook_out``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from piami.errors import DivergenceError, PiamiShapeError, PiamiValueError
from piami.models.device import resolve_device, resolve_dtype
from piami.models.hooks import HookedModule, HookPoint


@dataclass(frozen=True, kw_only=True)
class BilinearConfig:
    """Sizes of a bilinear layer."""

    d_in: int  # input dimension
    d_hidden: int  # number of products (W and V rows)
    d_out: int  # output dimension (rows of P)
    bias: bool = False  # add biases to W x and V x (breaks the pure quadratic form)
    init_std: float | None = None  # weight std; None means 1 / sqrt(fan_in)

    def __post_init__(self) -> None:
        for name in ("d_in", "d_hidden", "d_out"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(
                    f"BilinearConfig.{name} must be a positive integer, got {v!r}"
                )
        if self.init_std is not None and not self.init_std > 0:
            raise PiamiValueError(f"init_std must be > 0 or None, got {self.init_std!r}")


class Bilinear(HookedModule):
    """``forward(x: (..., d_in)) -> (..., d_out)`` computing ``P((W x + b_W) * (V x + b_V))``."""

    def __init__(
        self,
        cfg: BilinearConfig,
        *,
        generator: torch.Generator,
        device: str = "auto",
        dtype: str = "float32",
    ) -> None:
        super().__init__()
        self.cfg = cfg
        dev, dt = resolve_device(device), resolve_dtype(dtype)

        def init(o: int, i: int) -> torch.Tensor:
            std = cfg.init_std if cfg.init_std is not None else 1.0 / np.sqrt(i)
            return (
                (torch.randn(o, i, generator=generator, dtype=torch.float64) * std).to(dt).to(dev)
            )

        self.W = nn.Parameter(init(cfg.d_hidden, cfg.d_in))
        self.V = nn.Parameter(init(cfg.d_hidden, cfg.d_in))
        self.P = nn.Parameter(init(cfg.d_out, cfg.d_hidden))
        if cfg.bias:
            self.b_W = nn.Parameter(torch.zeros(cfg.d_hidden, dtype=dt, device=dev))
            self.b_V = nn.Parameter(torch.zeros(cfg.d_hidden, dtype=dt, device=dev))
        self.hook_left = HookPoint()
        self.hook_right = HookPoint()
        self.hook_hidden = HookPoint()
        self.hook_out = HookPoint()
        self.setup_hooks()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.cfg.d_in:
            raise PiamiShapeError(
                f"input must end in d_in={self.cfg.d_in}, got shape {tuple(x.shape)}"
            )
        left = x @ self.W.T
        right = x @ self.V.T
        if self.cfg.bias:
            left = left + self.b_W
            right = right + self.b_V
        h = self.hook_hidden(self.hook_left(left) * self.hook_right(right))
        return self.hook_out(h @ self.P.T)

    def weights_numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(W, V, P)`` as float64 numpy arrays, for the weight-based instruments."""
        return tuple(p.detach().cpu().double().numpy() for p in (self.W, self.V, self.P))


def fit_bilinear(
    model: Bilinear,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    n_steps: int = 2000,
    lr: float = 1e-2,
    batch_size: int = 512,
    weight_decay: float = 0.0,
    generator: torch.Generator,
    progress: bool = False,
) -> np.ndarray:
    """Train ``model`` by AdamW on the mean squared error of ``Y`` from ``X``; returns the losses.

    Args:
        model: the layer to train (in place).
        X: ``(n, d_in)`` inputs.
        Y: ``(n, d_out)`` targets.
        n_steps: optimizer steps.
        lr: AdamW learning rate (cosine decay to 0).
        batch_size: samples per step.
        weight_decay: AdamW weight decay.
        generator: draws the batches.
        progress: show a progress bar.

    Returns:
        The training loss at every step, ``(n_steps,)``.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise PiamiShapeError(
            f"X (n, d_in) and Y (n, d_out) must share n, got {X.shape}, {Y.shape}"
        )
    if X.shape[1] != model.cfg.d_in or Y.shape[1] != model.cfg.d_out:
        raise PiamiShapeError(
            f"X must have {model.cfg.d_in} columns and Y {model.cfg.d_out}, got {X.shape}, "
            f"{Y.shape}"
        )
    p0 = model.W
    Xt = torch.as_tensor(X, dtype=p0.dtype, device=p0.device)
    Yt = torch.as_tensor(Y, dtype=p0.dtype, device=p0.device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_steps)
    losses = np.empty(n_steps)
    for step in tqdm(range(n_steps), disable=not progress, desc="bilinear"):
        idx = torch.randint(0, X.shape[0], (batch_size,), generator=generator).to(p0.device)
        loss = ((model(Xt[idx]) - Yt[idx]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses[step] = float(loss.detach())
        if not np.isfinite(losses[step]):
            raise DivergenceError(f"bilinear training diverged at step {step}; lower lr (now {lr})")
    return losses


__all__ = ["Bilinear", "BilinearConfig", "fit_bilinear"]
