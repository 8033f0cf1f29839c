"""The local learning coefficient (LLC), estimated by localized SGLD with all chains vectorized.

Near a minimum ``w*`` of the empirical loss ``L_n``, singular learning theory predicts that the
tempered, localized posterior ``p(w) ∝ exp(-n beta L_n(w) - gamma/2 ||w - w*||^2)`` has

    lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))                     (Lau et al. 2023, eq. 3)

equal to the local RLCT ``lambda`` as ``n beta -> infinity`` (with ``beta = 1 / ln n`` the WBIC
temperature of Watanabe 2013, the default ``n beta = n / ln n``). :mod:`piami.theory.learning_coefficient`
gives the exact ``lambda`` of regular models, normal-crossing potentials and deep linear networks;
the ``llc-calibration`` experiment measures this estimator against them.

Design (differences from devinterp 2.0.1, the anchor library):

* chains are rows of one ``(n_chains, n_params)`` tensor, moved together by one vectorized update
  (``torch.func.vmap`` over ``functional_call`` for any ``nn.Module``; batched ``bmm`` with a
  hand-written backward pass for deep linear networks); devinterp runs chains one after another;
* the reference loss ``L_n(w*)`` is taken on the full data set, not one batch;
* burn-in draws are excluded from the estimate (``loss_trace_`` keeps them, marked by ``n_burnin``);
* each chain draws its own minibatches (epochs without replacement), so chains are independent and
  R-hat means something;
* a chain that goes non-finite is flagged and dropped with a warning; if all do, a
  :class:`~piami.errors.DivergenceError` names the hyperparameter to lower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from piami.errors import DivergenceError, PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.sgld import geweke_z, run_sgld, split_rhat, warn_diverged
from piami.models.device import resolve_device, resolve_dtype

__all__ = ["LLCEstimator"]

_SAMPLERS = ("sgld", "rmsprop_sgld")


def _as_tensors(data: Any, *, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
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


class _Batcher:
    """Per-chain minibatch indices, epochs without replacement, each chain its own permutation."""

    def __init__(self, n: int, batch: int, chains: int, gen: torch.Generator, device: torch.device):
        self.n, self.b, self.c, self.gen, self.device = n, batch, chains, gen, device
        self.perm: torch.Tensor | None = None
        self.pos = n

    def __call__(self) -> torch.Tensor:  # (chains, batch) int64
        if self.pos + self.b > self.n:
            keys = torch.rand(self.c, self.n, generator=self.gen, device=self.device)
            self.perm = keys.argsort(dim=1)
            self.pos = 0
        idx = self.perm[:, self.pos : self.pos + self.b]
        self.pos += self.b
        return idx


class LLCEstimator:
    """Local learning coefficient by localized SGLD, chains vectorized (scikit-learn contract).

    Args:
        step_size: SGLD step ``eps``.
        n_beta: ``n beta``; ``None`` means ``n / ln n`` (``n`` the number of samples).
        gamma: localization strength (pull towards ``w*``).
        n_chains: independent chains, run together.
        n_draws: draws per chain that enter the estimate.
        n_burnin: steps per chain run first and excluded from the estimate.
        batch_size: minibatch per step and chain; ``None`` means the full data set.
        sampler: ``"sgld"`` or ``"rmsprop_sgld"`` (RMSProp-preconditioned, Li et al. 2016).
        rmsprop_alpha: EMA factor of the squared drift for ``"rmsprop_sgld"``.
        rmsprop_delta: ``delta`` of ``G = 1 / (delta + sqrt(V))``: steps never exceed ``eps/delta``.
        seed: seed of the default generator (a ``generator`` passed to ``fit`` overrides it).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        dtype: ``"float32"`` or ``"float64"``.
        progress: show a tqdm bar while sampling.

    Attributes (after ``fit``):
        llc_mean_: mean LLC over the chains that stayed finite.
        llc_std_: standard deviation across those chains (``ddof=1``; 0 for a single chain).
        llc_per_chain_: ``(n_chains,)`` per-chain estimates (``nan`` for diverged chains).
        loss_trace_: ``(n_chains, n_burnin + n_draws)`` minibatch loss at each step, burn-in first.
        reference_loss_: ``L_n(w*)`` on the full data set.
        n_beta_: the ``n beta`` used.
        diagnostics_: dict with ``r_hat`` (split R-hat of the draws across chains), ``geweke_z``
            and ``converged`` (per chain, ``|z| <= 3``), ``diverged`` (per chain), ``divergence``
            (any chain diverged), ``draws_per_second`` (chains x steps / s) and ``seconds``.

    Example:
        >>> import torch
        >>> est = LLCEstimator(step_size=1e-3, n_beta=100.0, n_draws=400, n_burnin=100, device="cpu")
        >>> quad = lambda w: 0.5 * (w**2).sum(dim=1)            # regular, d = 4: lambda = 2
        >>> round(est.fit_flat(quad, torch.zeros(4)).llc_mean_, 0)
        2.0
    """

    def __init__(
        self,
        *,
        step_size: float = 3e-5,
        n_beta: float | None = None,
        gamma: float = 1.0,
        n_chains: int = 4,
        n_draws: int = 8000,
        n_burnin: int = 2000,
        batch_size: int | None = 500,
        sampler: str = "sgld",
        rmsprop_alpha: float = 0.99,
        rmsprop_delta: float = 1.0,
        seed: int = 0,
        device: str = "auto",
        dtype: str = "float32",
        progress: bool = False,
    ) -> None:
        self.step_size = step_size
        self.n_beta = n_beta
        self.gamma = gamma
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_burnin = n_burnin
        self.batch_size = batch_size
        self.sampler = sampler
        self.rmsprop_alpha = rmsprop_alpha
        self.rmsprop_delta = rmsprop_delta
        self.seed = seed
        self.device = device
        self.dtype = dtype
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def pos(name: str, *, integer: bool = False, zero_ok: bool = False) -> None:
            v = getattr(self, name)
            ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
            if isinstance(v, bool) or not ok_type or not np.isfinite(v) or v < 0 or (v == 0 and not zero_ok):
                kind = "an integer" if integer else "a finite number"
                raise PiamiValueError(
                    f"LLCEstimator {name} must be {kind} {'>= 0' if zero_ok else '> 0'}, got {v!r}"
                )

        pos("step_size")
        pos("gamma", zero_ok=True)
        pos("n_chains", integer=True)
        pos("n_draws", integer=True)
        pos("n_burnin", integer=True, zero_ok=True)
        pos("rmsprop_delta")
        if self.n_beta is not None:
            pos("n_beta")
        if self.batch_size is not None:
            pos("batch_size", integer=True)
        if self.n_draws < 4:
            raise PiamiValueError(f"n_draws must be >= 4 for the diagnostics, got {self.n_draws}")
        if not (isinstance(self.rmsprop_alpha, float) and 0.0 <= self.rmsprop_alpha < 1.0):
            raise PiamiValueError(f"rmsprop_alpha must be a float in [0, 1), got {self.rmsprop_alpha!r}")
        if self.sampler not in _SAMPLERS:
            raise PiamiValueError(f"sampler must be one of {_SAMPLERS}, got {self.sampler!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise PiamiTypeError(f"seed must be an integer, got {self.seed!r}")
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.dtype)
        if self.dtype_ not in (torch.float32, torch.float64):
            raise PiamiValueError(f"dtype must be float32 or float64 for SGLD, got {self.dtype!r}")

    def _generator(self, generator: torch.Generator | None) -> torch.Generator:
        if generator is None:
            return torch.Generator(device=self.device_).manual_seed(self.seed)
        if not isinstance(generator, torch.Generator):
            raise PiamiTypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != self.device_.type:
            raise PiamiValueError(
                f"generator lives on {generator.device} but sampling runs on {self.device_}; "
                f"create it with torch.Generator(device={str(self.device_)!r})"
            )
        return generator

    def _n_beta(self, n: int | None) -> float:
        if self.n_beta is not None:
            return float(self.n_beta)
        if n is None or n < 2:
            raise PiamiValueError(
                f"n_beta=None means n / ln n, which needs a sample size n >= 2 (got {n}); "
                "pass n=... or set n_beta"
            )
        return n / np.log(n)

    def _batch(self, n: int) -> int:
        return n if self.batch_size is None else min(int(self.batch_size), n)

    # ------------------------------------------------------------------ the three fit forms
    def fit(
        self,
        model: nn.Module,
        data: Any,
        loss_fn: Callable[..., torch.Tensor],
        *,
        generator: torch.Generator | None = None,
    ) -> LLCEstimator:
        """Estimate the LLC of ``model`` at its current parameters ``w*``.

        Args:
            model: any ``nn.Module``; its parameters are ``w*`` (it is not modified).
            data: ``(inputs, targets, ...)`` tensors sharing a first dimension ``n``, or a
                TensorDataset; the model gets ``inputs``.
            loss_fn: ``loss_fn(model(inputs), targets, ...) -> scalar``, the mean loss of a batch
                (e.g. ``torch.nn.functional.cross_entropy``). The posterior is tempered on it.
            generator: torch generator (on the sampling device) for batches and noise.

        Returns:
            self, with ``llc_mean_`` and the other attributes set.
        """
        from torch.func import functional_call, grad_and_value, vmap

        self._validate()
        if not isinstance(model, nn.Module):
            raise PiamiTypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise PiamiTypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        gen = self._generator(generator)
        tensors = _as_tensors(data, device=self.device_, dtype=self.dtype_)
        n = len(tensors[0])
        model = model.to(device=self.device_, dtype=self.dtype_)
        names = [k for k, p in model.named_parameters() if p.requires_grad]
        if not names:
            raise PiamiValueError("model has no trainable parameters to sample")
        params = dict(model.named_parameters())
        shapes = [params[k].shape for k in names]
        sizes = [params[k].numel() for k in names]
        frozen = {k: p.detach() for k, p in params.items() if k not in names}
        buffers = {k: b.detach() for k, b in model.named_buffers()}
        w_star = torch.cat([params[k].detach().reshape(-1) for k in names])

        def unflatten(w: torch.Tensor) -> dict[str, torch.Tensor]:
            parts = torch.split(w, sizes, dim=-1)
            return {k: p.reshape(*w.shape[:-1], *s) for k, p, s in zip(names, parts, shapes, strict=True)}

        def one(flat: torch.Tensor, *batch: torch.Tensor) -> torch.Tensor:
            out = functional_call(model, ({**unflatten(flat), **frozen}, buffers), (batch[0],))
            return loss_fn(out, *batch[1:])

        ref = self._full_loss(lambda *b: one(w_star, *b), tensors)
        batch = self._batch(n)
        batcher = _Batcher(n, batch, self.n_chains, gen, self.device_)
        g_all = vmap(grad_and_value(one), in_dims=(0,) + (0,) * len(tensors))
        g_full = vmap(grad_and_value(one), in_dims=(0,) + (None,) * len(tensors))

        def grad_fn(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if batch == n:
                return g_full(w, *tensors)
            idx = batcher()
            return g_all(w, *(t[idx] for t in tensors))

        return self._sample(grad_fn, w_star, n, ref, gen)

    def fit_flat(
        self,
        loss_fn: Callable[..., torch.Tensor],
        w_star: torch.Tensor | np.ndarray,
        *,
        data: Any = None,
        n: int | None = None,
        generator: torch.Generator | None = None,
    ) -> LLCEstimator:
        """Estimate the LLC of a loss given as a function of a flat parameter vector.

        Args:
            loss_fn: batched over chains: ``loss_fn(w)`` with ``w`` of shape ``(n_chains, d)``
                returns ``(n_chains,)`` losses, row ``i`` depending on ``w[i]`` only. With ``data``,
                ``loss_fn(w, *batch)`` where each batch tensor is ``(n_chains, batch_size, ...)``.
            w_star: ``(d,)`` the minimum to localize at.
            data: optional ``(tensor, ...)`` sharing a first dimension, minibatched per chain.
            n: sample size for the default ``n beta = n / ln n`` when there is no data.
            generator: torch generator (on the sampling device).

        Returns:
            self.
        """
        self._validate()
        if not callable(loss_fn):
            raise PiamiTypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        gen = self._generator(generator)
        if isinstance(w_star, np.ndarray):
            w_star = torch.from_numpy(w_star)
        if not isinstance(w_star, torch.Tensor) or w_star.ndim != 1 or w_star.numel() == 0:
            raise PiamiShapeError(
                f"w_star must be a non-empty 1-D tensor (d,), got {getattr(w_star, 'shape', type(w_star))}"
            )
        w_star = w_star.detach().to(device=self.device_, dtype=self.dtype_)
        tensors = None if data is None else _as_tensors(data, device=self.device_, dtype=self.dtype_)
        if tensors is not None:
            n = len(tensors[0])
        batch = None if tensors is None else self._batch(n)
        batcher = None if tensors is None else _Batcher(n, batch, self.n_chains, gen, self.device_)

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
                ref = self._full_loss(lambda *b: call(w_star[None], [t[None] for t in b])[0], tensors)

        def grad_fn(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            w = w.detach().requires_grad_(True)
            with torch.enable_grad():
                if tensors is None:
                    loss = call(w, None)
                elif batch == n:
                    loss = call(w, [t.expand(w.shape[0], *t.shape) for t in tensors])
                else:
                    idx = batcher()
                    loss = call(w, [t[idx] for t in tensors])
                (g,) = torch.autograd.grad(loss.sum(), w)
            return g, loss.detach()

        return self._sample(grad_fn, w_star, n, ref, gen)

    def fit_deep_linear(
        self,
        weights: Sequence[torch.Tensor | np.ndarray],
        data: Any,
        *,
        generator: torch.Generator | None = None,
    ) -> LLCEstimator:
        """Fast path for deep linear networks ``y = W_L ... W_1 x``, loss ``1/2 ||y_hat - y||^2``.

        The loss is the batch mean of half the squared error summed over outputs (the negative
        log-likelihood of unit Gaussian noise, up to a constant). All chains' weights are stacked
        as ``(n_chains, out, in)`` and the forward and backward passes are batched ``bmm`` calls.

        Args:
            weights: ``[W_1, ..., W_L]``, input side first, ``W_j`` of shape ``(H_{j+1}, H_j)``.
            data: ``(X (n, H_1), Y (n, H_{L+1}))``.
            generator: torch generator (on the sampling device).

        Returns:
            self.
        """
        self._validate()
        gen = self._generator(generator)
        if isinstance(weights, (torch.Tensor, np.ndarray)) or not isinstance(weights, Sequence) or not weights:
            raise PiamiTypeError("weights must be a non-empty list [W_1, ..., W_L] of 2-D tensors")
        ws = [torch.as_tensor(np.asarray(w) if isinstance(w, np.ndarray) else w) for w in weights]
        ws = [w.detach().to(device=self.device_, dtype=self.dtype_) for w in ws]
        for j, w in enumerate(ws):
            if w.ndim != 2 or (j > 0 and w.shape[1] != ws[j - 1].shape[0]):
                raise PiamiShapeError(
                    f"weights must chain as (H2, H1), (H3, H2), ...; got {[tuple(w.shape) for w in ws]}"
                )
        tensors = _as_tensors(data, device=self.device_, dtype=self.dtype_)
        if len(tensors) != 2 or tensors[0].ndim != 2 or tensors[1].ndim != 2:
            raise PiamiShapeError("data must be (X (n, H_1), Y (n, H_{L+1})) for fit_deep_linear")
        X, Y = tensors
        if X.shape[1] != ws[0].shape[1] or Y.shape[1] != ws[-1].shape[0]:
            raise PiamiShapeError(
                f"X has {X.shape[1]} columns and Y {Y.shape[1]}, but the network maps "
                f"{ws[0].shape[1]} -> {ws[-1].shape[0]}"
            )
        n, C = len(X), self.n_chains
        shapes = [w.shape for w in ws]
        sizes = [w.numel() for w in ws]
        w_star = torch.cat([w.reshape(-1) for w in ws])
        batch = self._batch(n)
        batcher = _Batcher(n, batch, C, gen, self.device_)
        with torch.no_grad():
            ref = self._full_loss(lambda x, y: _dl_loss(ws, x, y), tensors)

        def grad_fn(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mats = [p.view(C, *s) for p, s in zip(torch.split(w, sizes, dim=1), shapes, strict=True)]
            if batch == n:
                x, y = X.expand(C, *X.shape), Y.expand(C, *Y.shape)
            else:
                idx = batcher()
                x, y = X[idx], Y[idx]
            hs = [x]  # (C, B, H_j)
            for m in mats:
                hs.append(torch.bmm(hs[-1], m.transpose(1, 2)))
            err = hs[-1] - y
            loss = 0.5 * err.square().sum(dim=(1, 2)) / batch
            delta = err / batch
            grads = []
            for j in range(len(mats) - 1, -1, -1):
                grads.append(torch.bmm(delta.transpose(1, 2), hs[j]).reshape(C, -1))
                if j:
                    delta = torch.bmm(delta, mats[j])
            return torch.cat(grads[::-1], dim=1), loss

        return self._sample(grad_fn, w_star, n, ref, gen)

    # ------------------------------------------------------------------ shared parts
    def _full_loss(self, loss_of_batch: Callable[..., torch.Tensor], tensors: list[torch.Tensor]) -> float:
        """Mean loss over the whole data set, in chunks, weighted by chunk size."""
        n = len(tensors[0])
        chunk = max(self._batch(n), 1024)
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

    def _sample(
        self, grad_fn: Callable, w_star: torch.Tensor, n: int | None, ref: float, gen: torch.Generator
    ) -> LLCEstimator:
        nb = self._n_beta(n)
        trace = run_sgld(
            grad_fn,
            w_star,
            n_chains=self.n_chains,
            n_steps=self.n_burnin + self.n_draws,
            step_size=float(self.step_size),
            n_beta=nb,
            gamma=float(self.gamma),
            sampler=self.sampler,
            rmsprop_alpha=float(self.rmsprop_alpha),
            rmsprop_delta=float(self.rmsprop_delta),
            adapt_steps=self.n_burnin if self.n_burnin > 0 else None,
            generator=gen,
            progress=self.progress,
        )
        ok = ~trace.diverged
        if not ok.any():
            raise DivergenceError(
                f"all {self.n_chains} SGLD chains diverged (non-finite loss or parameters): lower "
                f"step_size (now {self.step_size:g}) first, or n_beta (now {nb:g})"
            )
        warn_diverged(trace.diverged, float(self.step_size))
        draws = nb * (trace.losses[:, self.n_burnin :] - ref)  # (C, n_draws), burn-in excluded
        per_chain = np.full(self.n_chains, np.nan)
        per_chain[ok] = draws[ok].mean(axis=1)
        self.llc_per_chain_ = per_chain
        self.llc_mean_ = float(per_chain[ok].mean())
        self.llc_std_ = float(per_chain[ok].std(ddof=1)) if ok.sum() > 1 else 0.0
        self.loss_trace_ = trace.losses
        self.reference_loss_ = float(ref)
        self.n_beta_ = float(nb)
        self.n_samples_ = n
        z = np.array([geweke_z(d) if k else np.nan for d, k in zip(draws, ok, strict=True)])
        self.diagnostics_ = {
            "r_hat": split_rhat(draws[ok]) if ok.sum() > 1 else float("nan"),
            "geweke_z": z.tolist(),
            "converged": [bool(k and np.isfinite(v) and abs(v) <= 3.0) for v, k in zip(z, ok, strict=True)],
            "diverged": trace.diverged.tolist(),
            "divergence": bool(trace.diverged.any()),
            "draws_per_second": self.n_chains * (self.n_burnin + self.n_draws) / max(trace.seconds, 1e-12),
            "seconds": trace.seconds,
        }
        return self


def _dl_loss(ws: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2`` batch mean of the squared error summed over outputs, one network."""
    h = x
    for w in ws:
        h = h @ w.T
    return 0.5 * (h - y).square().sum(dim=1).mean()
