"""The local learning coefficient (LLC), estimated by localized SGLD with all chains vectorized.

Near a minimum ``w*`` of the empirical loss ``L_n``, singular learning theory predicts that the
tempered, localized posterior ``p(w) ∝ exp(-n beta L_n(w) - gamma/2 ||w - w*||^2)`` has

    lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))                     (Lau et al. 2023, eq. 3)

equal to the local RLCT ``lambda`` as ``n beta -> infinity`` (with ``beta = 1 / ln n`` the WBIC
temperature of Watanabe 2013, the default ``n beta = n / ln n``).
:mod:`piami.theory.learning_coefficient` gives the exact ``lambda`` of regular models,
normal-crossing potentials and deep linear networks; the ``llc-calibration`` experiment measures
this estimator against them.

Design (differences from devinterp 2.0.1, the anchor library):

* chains are rows of one ``(n_chains, n_params)`` tensor, moved together by one vectorized update
  (``torch.func.vmap`` over ``functional_call`` for any ``nn.Module``; batched ``bmm`` with a
  hand-written backward pass for deep linear networks); devinterp runs chains one after another;
* the reference loss ``L_n(w*)`` is taken on the full data set, not one batch;
* burn-in draws are excluded from the estimate (``loss_trace_`` keeps them, marked by ``n_burnin``);
* each chain draws its own minibatches (epochs without replacement), so chains are independent and
  R-hat means something; a module whose forward pass cannot be vmapped over per-chain batches is
  run once per chain, each on its own batch (a warning says so; ``diagnostics_["batching"]``);
* a chain that goes non-finite is flagged and dropped with a warning; if all do, a
  :class:`~piami.errors.DivergenceError` names the hyperparameter to lower.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from piami.errors import DivergenceError, PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.contract import PiamiEstimator, RandomState, renamed_keywords, torch_seed
from piami.instruments.llc_gradients import (
    Batcher,
    as_tensors,
    deep_linear_grad_fn,
    deep_linear_loss,
    flat_grad_fn,
    full_mean_loss,
    module_grad_fn,
)
from piami.instruments.sgld import geweke_z, run_sgld, split_rhat, warn_diverged
from piami.models.device import resolve_device, resolve_dtype

__all__ = ["LLCEstimator"]

_SAMPLERS = ("sgld", "rmsprop_sgld")
_INTEGRATORS = ("euler", "leimkuhler_matthews")
#: ``diagnostics_["batching"]`` values under which every chain sees its own minibatches (or all
#: the data).
INDEPENDENT = ("full data", "per chain", "vmap", "per-chain loop")


class LLCEstimator(PiamiEstimator):
    """Local learning coefficient by localized SGLD, chains vectorized (scikit-learn contract).

    ``get_params``, ``set_params`` and ``sklearn.base.clone`` work (see
    :mod:`piami.instruments.contract`). There are three ways to fit (a module and its data, a
    loss of a flat parameter vector, a deep linear network), each returning ``self``; the
    estimate is ``llc_mean_``. There is no ``score``: the LLC is a property of one minimum, with
    no held-out data to score it on.

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
        integrator: ``"euler"`` (standard SGLD) or ``"leimkuhler_matthews"`` (noise averaged over
            consecutive steps: second-order accurate invariant measure at the same cost).
        random_state: randomness of the minibatches and the noise: an int seeds the torch
            generator on the sampling device (``seed=`` is its deprecated name, same numbers);
            a numpy Generator or ``None`` gives that seed by one draw.
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
            (any chain diverged), ``draws_per_second`` (chains x steps / s), ``seconds``,
            ``batching`` (how minibatches reach the chains: ``"full data"``, ``"per chain"``, or
            for :meth:`fit` ``"vmap"`` / ``"per-chain loop"``) and ``independent_batches``
            (True when each chain draws its own minibatches).

    Example:
        >>> import torch
        >>> est = LLCEstimator(
        ...     step_size=1e-3, n_beta=100.0, n_draws=400, n_burnin=100, device="cpu"
        ... )
        >>> quad = lambda w: 0.5 * (w**2).sum(dim=1)            # regular, d = 4: lambda = 2
        >>> round(est.fit_flat(quad, torch.zeros(4)).llc_mean_, 0)
        2.0
    """

    @renamed_keywords(seed="random_state")
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
        integrator: str = "euler",
        random_state: RandomState = 0,
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
        self.integrator = integrator
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.progress = progress

    def _validate(self) -> None:
        def pos(name: str, *, integer: bool = False, zero_ok: bool = False) -> None:
            v = getattr(self, name)
            ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
            if (
                isinstance(v, bool)
                or not ok_type
                or not np.isfinite(v)
                or v < 0
                or (v == 0 and not zero_ok)
            ):
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
            raise PiamiValueError(
                f"rmsprop_alpha must be a float in [0, 1), got {self.rmsprop_alpha!r}"
            )
        if self.integrator not in _INTEGRATORS:
            raise PiamiValueError(
                f"integrator must be one of {_INTEGRATORS}, got {self.integrator!r}"
            )
        if self.sampler not in _SAMPLERS:
            raise PiamiValueError(f"sampler must be one of {_SAMPLERS}, got {self.sampler!r}")
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.dtype)
        if self.dtype_ not in (torch.float32, torch.float64):
            raise PiamiValueError(f"dtype must be float32 or float64 for SGLD, got {self.dtype!r}")

    def _generator(self, generator: torch.Generator | None) -> torch.Generator:
        if generator is None:
            seed = torch_seed(self.random_state)
            return torch.Generator(device=self.device_).manual_seed(seed)
        warnings.warn(
            "LLCEstimator.fit*(generator=...) is deprecated: pass random_state=... to the "
            "constructor (this generator is used instead of random_state for this fit)",
            DeprecationWarning,
            stacklevel=3,
        )
        if not isinstance(generator, torch.Generator):
            raise PiamiTypeError(
                f"generator must be a torch.Generator, got {type(generator).__name__}"
            )
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
            generator: deprecated (warns): a torch generator on the sampling device, used
                instead of ``random_state``.

        Returns:
            self, with ``llc_mean_`` and the other attributes set.
        """
        self._validate()
        if not isinstance(model, nn.Module):
            raise PiamiTypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise PiamiTypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        gen = self._generator(generator)
        tensors = as_tensors(data, device=self.device_, dtype=self.dtype_)
        n = len(tensors[0])
        model = copy.deepcopy(model).to(
            device=self.device_, dtype=self.dtype_
        )  # caller keeps theirs
        batch = self._batch(n)
        batcher = Batcher(n, batch, self.n_chains, gen, self.device_)
        grad_fn, w_star, ref = module_grad_fn(model, tensors, loss_fn, batch, batcher)
        self._sample(grad_fn, w_star, n, ref, gen)
        self.diagnostics_["batching"] = grad_fn.batching["mode"]
        self.diagnostics_["batching_note"] = grad_fn.batching["why"]
        self.diagnostics_["independent_batches"] = grad_fn.batching["mode"] in INDEPENDENT
        return self

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
            generator: deprecated (warns): a torch generator used instead of ``random_state``.

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
                "w_star must be a non-empty 1-D tensor (d,), got "
                f"{getattr(w_star, 'shape', type(w_star))}"
            )
        w_star = w_star.detach().to(device=self.device_, dtype=self.dtype_)
        tensors = None if data is None else as_tensors(data, device=self.device_, dtype=self.dtype_)
        if tensors is not None:
            n = len(tensors[0])
        batch = None if tensors is None else self._batch(n)
        batcher = None if tensors is None else Batcher(n, batch, self.n_chains, gen, self.device_)

        grad_fn, ref = flat_grad_fn(loss_fn, w_star, tensors, batch, batcher)
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
            generator: deprecated (warns): a torch generator used instead of ``random_state``.

        Returns:
            self.
        """
        self._validate()
        gen = self._generator(generator)
        if (
            isinstance(weights, (torch.Tensor, np.ndarray))
            or not isinstance(weights, Sequence)
            or not weights
        ):
            raise PiamiTypeError("weights must be a non-empty list [W_1, ..., W_L] of 2-D tensors")
        ws = [torch.as_tensor(np.asarray(w) if isinstance(w, np.ndarray) else w) for w in weights]
        ws = [w.detach().to(device=self.device_, dtype=self.dtype_) for w in ws]
        for j, w in enumerate(ws):
            if w.ndim != 2 or (j > 0 and w.shape[1] != ws[j - 1].shape[0]):
                raise PiamiShapeError(
                    "weights must chain as (H2, H1), (H3, H2), ...; got "
                    f"{[tuple(w.shape) for w in ws]}"
                )
        tensors = as_tensors(data, device=self.device_, dtype=self.dtype_)
        if len(tensors) != 2 or tensors[0].ndim != 2 or tensors[1].ndim != 2:
            raise PiamiShapeError("data must be (X (n, H_1), Y (n, H_{L+1})) for fit_deep_linear")
        X, Y = tensors
        if X.shape[1] != ws[0].shape[1] or Y.shape[1] != ws[-1].shape[0]:
            raise PiamiShapeError(
                f"X has {X.shape[1]} columns and Y {Y.shape[1]}, but the network maps "
                f"{ws[0].shape[1]} -> {ws[-1].shape[0]}"
            )
        n, C = len(X), self.n_chains
        shapes = [tuple(w.shape) for w in ws]
        w_star = torch.cat([w.reshape(-1) for w in ws])
        batch = self._batch(n)
        batcher = Batcher(n, batch, C, gen, self.device_)
        with torch.no_grad():
            ref = full_mean_loss(lambda x, y: deep_linear_loss(ws, x, y), tensors, max(batch, 1024))

        grad_fn = deep_linear_grad_fn(shapes, X, Y, batch, batcher)

        return self._sample(grad_fn, w_star, n, ref, gen)

    def _sample(
        self,
        grad_fn: Callable,
        w_star: torch.Tensor,
        n: int | None,
        ref: float,
        gen: torch.Generator,
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
            integrator=self.integrator,
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
            "converged": [
                bool(k and np.isfinite(v) and abs(v) <= 3.0) for v, k in zip(z, ok, strict=True)
            ],
            "diverged": trace.diverged.tolist(),
            "divergence": bool(trace.diverged.any()),
            "draws_per_second": self.n_chains
            * (self.n_burnin + self.n_draws)
            / max(trace.seconds, 1e-12),
            "seconds": trace.seconds,
            "batching": "full data" if n is None or self._batch(n) == n else "per chain",
            "independent_batches": True,
        }
        return self
