"""Gradient functions of every chain at once, for the three forms the LLC estimator accepts.

Each builder returns ``grad_fn(w) -> (grad, loss)`` with ``w`` of shape ``(n_chains, n_params)``
(one chain per row) for :func:`piami.instruments.sgld.run_sgld`:

* any ``nn.Module``: ``torch.func.functional_call`` of the module on each chain's parameters,
  vectorized over chains by ``torch.func.vmap`` of ``grad_and_value``;
* a loss of a flat parameter vector, already batched over chains (one autograd call);
* deep linear networks: chains' weights viewed as ``(n_chains, out, in)`` and the forward and
  backward passes written as batched ``bmm`` (no autograd), 2-2.5x faster than ``vmap``.

Minibatches are drawn per chain, in epochs without replacement (:class:`Batcher`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.sgld import GradFn

__all__ = [
    "Batcher",
    "as_tensors",
    "deep_linear_grad_fn",
    "deep_linear_loss",
    "flat_grad_fn",
    "full_mean_loss",
    "module_grad_fn",
]


def as_tensors(data: Any, *, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    """``(inputs, targets, ...)`` or a TensorDataset -> tensors on device (floats cast to dtype)."""
    if hasattr(data, "tensors"):
        data = data.tensors
    if isinstance(data, (torch.Tensor, np.ndarray)) or not isinstance(data, (tuple, list)):
        raise PiamiTypeError(
            f"data must be a tuple (inputs, targets, ...) of tensors or a TensorDataset, got "
            f"{type(data).__name__}"
        )
    out = []
    for i, t in enumerate(data):
        if isinstance(t, np.ndarray):
            t = torch.from_numpy(t)
        if not isinstance(t, torch.Tensor):
            raise PiamiTypeError(f"data[{i}] must be a tensor or array, got {type(t).__name__}")
        t = t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
        out.append(t)
    if not out or out[0].ndim == 0 or any(t.ndim == 0 or len(t) != len(out[0]) for t in out):
        raise PiamiShapeError(
            f"data tensors must share a first (sample) dimension; got shapes "
            f"{[tuple(t.shape) for t in out]}"
        )
    if len(out[0]) == 0:
        raise PiamiValueError("data holds no samples; give at least one")
    return out


class Batcher:
    """Per-chain minibatch indices, epochs without replacement, each chain its own permutation."""

    def __init__(
        self, n: int, batch: int, chains: int, gen: torch.Generator, device: torch.device
    ) -> None:
        self.n, self.b, self.c, self.gen, self.device = n, batch, chains, gen, device
        self.perm: torch.Tensor | None = None
        self.pos = n

    def __call__(self) -> torch.Tensor:  # (chains, batch) int64
        if self.pos + self.b > self.n:
            perms = [
                torch.randperm(self.n, generator=self.gen, device=self.device)
                for _ in range(self.c)
            ]
            self.perm = torch.stack(perms)  # randperm: ~30x faster than argsort of random keys
            self.pos = 0
        idx = self.perm[:, self.pos : self.pos + self.b]
        self.pos += self.b
        return idx


def deep_linear_loss(ws: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2`` batch mean of the squared error summed over outputs, one network."""
    h = x
    for w in ws:
        h = h @ w.T
    return 0.5 * (h - y).square().sum(dim=1).mean()


def deep_linear_grad_fn(
    shapes: list[tuple[int, int]], X: torch.Tensor, Y: torch.Tensor, batch: int, batcher: Batcher
) -> GradFn:
    """Minibatch loss and gradient of a deep linear network for all chains, by batched ``bmm``.

    Chains' weights are rows of ``w (n_chains, n_params)``, viewed as ``(n_chains, out, in)``
    matrices. The loss ``1/2 mean_b ||P x_b - y_b||^2`` of the product ``P = W_L ... W_1`` needs
    only the batch moments ``S_xx = X^T X / B``, ``S_yx = Y^T X / B`` and ``tr S_yy``: one ``bmm``
    over the batch, then ``(H x H)`` products only (Gram form, exact algebra):

        L = 1/2 tr(P S_xx P^T) - tr(P S_yx^T) + 1/2 tr(S_yy),   dL/dP = P S_xx - S_yx,
        dL/dW_j = (W_L ... W_{j+1})^T (dL/dP) (W_{j-1} ... W_1)^T.

    With the full data set as the batch the moments are computed once, so a full-batch step
    costs no more than a minibatch one. When ``H_1 + H_{L+1}`` exceeds a minibatch the direct
    form is used instead: forward ``h_j = h_{j-1} W_j^T``, backward
    ``delta_{j-1} = delta_j W_j``, ``dL/dW_j = delta_j^T h_{j-1}``.
    """
    sizes = [a * b for a, b in shapes]
    n, d_in = len(X), X.shape[1]
    XY = torch.cat([X, Y], dim=1)  # one gather per step

    def mats_of(w: torch.Tensor) -> list[torch.Tensor]:
        C = w.shape[0]
        return [p.view(C, *s) for p, s in zip(torch.split(w, sizes, dim=1), shapes, strict=True)]

    def batch_rows(C: int) -> torch.Tensor:  # (C, B, d_in + d_out)
        return XY.expand(C, *XY.shape) if batch == n else XY[batcher()]

    # full batch: the moments never change, so they are computed once (in float64, then cast)
    S_full = (XY.double().T @ XY.double()).div_(n).to(XY.dtype) if batch == n else None

    def gram(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        C = w.shape[0]
        mats = mats_of(w)
        if S_full is not None:
            S = S_full.expand(C, *S_full.shape)
        else:
            xy = batch_rows(C)
            S = torch.bmm(xy.transpose(1, 2), xy).div_(batch)  # (C, D, D) batch moments
        sxx, syx = S[:, :d_in, :d_in], S[:, d_in:, :d_in]
        syy = S[:, d_in:, d_in:].diagonal(dim1=1, dim2=2).sum(dim=1)
        prefix = [mats[0]]  # W_j ... W_1
        for m in mats[1:]:
            prefix.append(torch.bmm(m, prefix[-1]))
        P = prefix[-1]
        PS = torch.bmm(P, sxx)
        loss = 0.5 * (PS * P).sum(dim=(1, 2)) - (P * syx).sum(dim=(1, 2)) + 0.5 * syy
        left = PS - syx  # (W_L ... W_{j+1})^T dL/dP, built from the top down
        grads = []
        for j in range(len(mats) - 1, -1, -1):
            grads.append(torch.bmm(left, prefix[j - 1].transpose(1, 2)) if j else left)
            if j:
                left = torch.bmm(mats[j].transpose(1, 2), left)
        return torch.cat([g.reshape(C, -1) for g in grads[::-1]], dim=1), loss

    def direct(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        C = w.shape[0]
        mats = mats_of(w)
        xy = batch_rows(C)
        hs = [xy[..., :d_in]]  # (C, B, H_j)
        for m in mats:
            hs.append(torch.bmm(hs[-1], m.transpose(1, 2)))
        err = hs[-1] - xy[..., d_in:]
        loss = 0.5 * err.square().sum(dim=(1, 2)) / batch
        delta = err / batch
        grads = []
        for j in range(len(mats) - 1, -1, -1):
            grads.append(torch.bmm(delta.transpose(1, 2), hs[j]).reshape(C, -1))
            if j:
                delta = torch.bmm(delta, mats[j])
        return torch.cat(grads[::-1], dim=1), loss

    return gram if XY.shape[1] <= batch or batch == n else direct


def full_mean_loss(
    loss_of_batch: Callable[..., torch.Tensor], tensors: list[torch.Tensor], chunk: int
) -> float:
    """Mean loss over the whole data set, in chunks weighted by their size (``L_n(w*)``)."""
    n = len(tensors[0])
    total = 0.0
    with torch.no_grad():
        for s in range(0, n, chunk):
            part = [t[s : s + chunk] for t in tensors]
            total += float(loss_of_batch(*part)) * len(part[0])
    if not np.isfinite(total):
        raise PiamiValueError(
            f"the loss at w* on the full data set is {total / n}; the LLC needs a finite minimum"
        )
    return total / n


def module_grad_fn(
    model: nn.Module,
    tensors: list[torch.Tensor],
    loss_fn: Callable[..., torch.Tensor],
    batch: int,
    batcher: Batcher,
) -> tuple[GradFn, torch.Tensor, float]:
    """``(grad_fn, w_star, L_n(w*))`` for any module: ``vmap`` over ``functional_call``.

    ``w_star`` concatenates the trainable parameters in ``named_parameters`` order; frozen ones and
    buffers stay fixed. ``loss_fn(model(inputs), *targets)`` is the mean loss of a batch. Each chain
    draws its own batch, always: a model whose forward pass branches on its inputs' values (which
    ``vmap`` cannot batch over per-chain batches, e.g. a check ``int(tokens.max()) < d_vocab``)
    is run once per chain instead, each chain on its own batch (slower, same numbers up to
    rounding), with a warning; ``grad_fn.batching["mode"]`` records ``"full data"``, ``"vmap"`` or
    ``"per-chain loop"`` and ``grad_fn.batching["why"]`` the error that forced the loop.
    """
    from torch.func import functional_call, grad_and_value, vmap

    names = [k for k, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise PiamiValueError("model has no trainable parameters to sample")
    params = dict(model.named_parameters())
    shapes = [params[k].shape for k in names]
    sizes = [params[k].numel() for k in names]
    frozen = {k: p.detach() for k, p in params.items() if k not in names}
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    w_star = torch.cat([params[k].detach().reshape(-1) for k in names])
    n = len(tensors[0])

    def one(flat: torch.Tensor, *batch_t: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes, dim=-1)
        named = {k: p.reshape(s) for k, p, s in zip(names, parts, shapes, strict=True)}
        out = functional_call(model, ({**named, **frozen}, buffers), (batch_t[0],))
        return loss_fn(out, *batch_t[1:])

    ref = full_mean_loss(lambda *b: one(w_star, *b), tensors, max(batch, 1024))
    g_one = grad_and_value(one)
    g_batched = vmap(g_one, in_dims=(0,) + (0,) * len(tensors))
    g_full = vmap(g_one, in_dims=(0,) + (None,) * len(tensors))
    mode = {"mode": "full data" if batch == n else "vmap", "why": ""}

    def looped(w: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [g_one(w[c], *(t[idx[c]] for t in tensors)) for c in range(w.shape[0])]
        return torch.stack([g for g, _ in outs]), torch.stack([v for _, v in outs])

    def grad_fn(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if batch == n:
            return g_full(w, *tensors)
        idx = batcher()
        if mode["mode"] == "vmap":
            try:
                return g_batched(w, *(t[idx] for t in tensors))
            except RuntimeError as exc:  # data-dependent control flow on the inputs (e.g. checks)
                if "vmap" not in str(exc):
                    raise
                mode["mode"], mode["why"] = "per-chain loop", str(exc).split("\n")[0][:200]
                warnings.warn(
                    "LLCEstimator: the model's forward pass cannot be vmapped over per-chain "
                    f"batches ({mode['why']}); running it once per chain instead, each chain on "
                    "its own minibatch (chains stay independent, sampling is slower)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return looped(w, idx)

    grad_fn.batching = mode  # type: ignore[attr-defined]
    return grad_fn, w_star, ref


def flat_grad_fn(
    loss_fn: Callable[..., torch.Tensor],
    w_star: torch.Tensor,
    tensors: list[torch.Tensor] | None,
    batch: int | None,
    batcher: Batcher | None,
) -> tuple[GradFn, float]:
    """``(grad_fn, L_n(w*))`` for a loss of flat parameters, batched over chains (autograd)."""

    def call(w: torch.Tensor, batch_t: list[torch.Tensor] | None) -> torch.Tensor:
        loss = loss_fn(w) if batch_t is None else loss_fn(w, *batch_t)
        if not isinstance(loss, torch.Tensor) or loss.shape != (w.shape[0],):
            raise PiamiShapeError(
                f"loss_fn must return a tensor of shape (n_chains,) = ({w.shape[0]},), got "
                f"{getattr(loss, 'shape', type(loss).__name__)}"
            )
        return loss

    with torch.no_grad():
        if tensors is None:
            ref = float(call(w_star[None], None)[0])
        else:
            ref = full_mean_loss(
                lambda *b: call(w_star[None], [t[None] for t in b])[0], tensors, max(batch, 1024)
            )
    if not np.isfinite(ref):
        raise PiamiValueError(f"the loss at w* is {ref}; the LLC needs a finite minimum")

    def grad_fn(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = w.detach().requires_grad_(True)
        with torch.enable_grad():
            if tensors is None:
                loss = call(w, None)
            elif batch == len(tensors[0]):
                loss = call(w, [t.expand(w.shape[0], *t.shape) for t in tensors])
            else:
                idx = batcher()
                loss = call(w, [t[idx] for t in tensors])
            (g,) = torch.autograd.grad(loss.sum(), w)
        return g, loss.detach()

    return grad_fn, ref
