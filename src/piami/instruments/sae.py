"""Sparse autoencoders (SAEs) on activations, scored against known features.

An SAE writes each activation vector ``x`` in ``R^d`` as a sparse non-negative combination of
``n_latents`` learned directions (the decoder rows): ``x ~ b_dec + sum_i z_i W_dec[i]``, with
``z = sigma(W_enc (x - b_dec) + b_enc)``. Sparsity comes either from an L1 penalty on ``z`` weighted
by the decoder norms (Bricken et al. 2023) or from keeping only the ``k`` largest pre-activations
(TopK; Makhzani & Frey 2013, Gao et al. 2024), which fixes the L0 and needs no penalty.

Whether an SAE finds *the* features is only testable where the features are known. The data model
it assumes is superposition: ``x = sum_f c_f u_f`` with many more unit directions ``u_f`` than
dimensions and sparse non-negative coefficients ``c_f`` (Elhage et al. 2022);
:func:`make_superposition` draws such data. :func:`feature_recovery` matches learned decoder rows
to the true directions:

* mean max cosine similarity (MMCS): for each true feature, the best ``|cos|`` with any latent;
* MCC: mean ``|cos|`` after a one-to-one (Hungarian) matching
  (``scipy.optimize.linear_sum_assignment``);
* recovered fraction: the share of true features with max ``|cos|`` above a threshold (0.9).

Plus the usual health numbers: explained variance, L0 (mean active latents) and dead latents.
Activations are rescaled by one scalar so that ``E|x - mean|^2 = d`` before training; the
hyperparameters (``l1_coefficient``, ``lr``) are therefore scale-free.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.base import TransformerMixin
from tqdm.auto import tqdm

from piami.errors import PiamiShapeError, PiamiValueError
from piami.instruments.contract import (
    PiamiEstimator,
    RandomState,
    as_2d_array,
    renamed_keywords,
    torch_seed,
)
from piami.instruments.geometry import as_points
from piami.models.device import resolve_device, resolve_dtype
from piami.typing import Float


def make_superposition(
    n_samples: int,
    *,
    n_features: int,
    d: int,
    p_fire: float,
    rng: np.random.Generator,
    magnitude: tuple[float, float] = (0.5, 1.5),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data in superposition with known features.

    Each of ``n_features`` random unit directions in ``R^d`` fires independently with probability
    ``p_fire`` (Bernoulli), with a magnitude uniform in ``magnitude``; a sample is the sum of the
    firing directions times their magnitudes.

    Returns:
        ``X`` ``(n_samples, d)``, coefficients ``(n_samples, n_features)``, directions
        ``(n_features, d)`` (unit rows).
    """
    if not isinstance(rng, np.random.Generator):
        raise PiamiValueError("rng must be a numpy Generator, e.g. np.random.default_rng(0)")
    for name, v in (("n_samples", n_samples), ("n_features", n_features), ("d", d)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise PiamiValueError(f"{name} must be a positive integer, got {v!r}")
    if not 0 < p_fire <= 1:
        raise PiamiValueError(f"p_fire must be in (0, 1], got {p_fire!r}")
    lo, hi = magnitude
    if not 0 <= lo <= hi:
        raise PiamiValueError(
            f"magnitude must be (low, high) with 0 <= low <= high, got {magnitude}"
        )
    U = rng.normal(size=(n_features, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    fire = rng.random((n_samples, n_features)) < p_fire
    C = fire * rng.uniform(lo, hi, size=(n_samples, n_features))
    return C @ U, C, U


def match_directions(found: object, true: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of directions by ``|cos|`` (Hungarian algorithm).

    Args:
        found: ``(n_found, d)`` learned directions (e.g. decoder rows).
        true: ``(n_true, d)`` known directions.

    Returns:
        ``(cosines, true_index, found_index)``: the matched ``|cos|`` (``min(n_found, n_true)``
        of them) and which rows were paired.
    """
    A = as_points(found, "found", min_points=1)
    B = as_points(true, "true", min_points=1)
    if A.shape[1] != B.shape[1]:
        raise PiamiShapeError(
            f"directions live in different spaces: {A.shape[1]} vs {B.shape[1]} dims"
        )
    S = np.abs(_unit(B) @ _unit(A).T)  # (n_true, n_found)
    ti, fi = linear_sum_assignment(-S)
    return S[ti, fi], ti, fi


def _unit(A: np.ndarray) -> np.ndarray:
    nrm = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(nrm > 0, nrm, 1.0)


def feature_recovery(found: object, true: object, *, threshold: float = 0.9) -> dict[str, float]:
    """Scores of learned directions against known ones: ``mmcs``, ``mcc``, ``recovered``.

    ``mmcs``: mean over true features of the best ``|cos|``; ``mcc``: mean matched ``|cos|`` after
    Hungarian matching; ``recovered``: fraction of true features whose best ``|cos|`` >= threshold.
    """
    A = as_points(found, "found", min_points=1)
    B = as_points(true, "true", min_points=1)
    if A.shape[1] != B.shape[1]:
        raise PiamiShapeError(
            f"directions live in different spaces: {A.shape[1]} vs {B.shape[1]} dims"
        )
    best = np.max(np.abs(_unit(B) @ _unit(A).T), axis=1)
    cos, _, _ = match_directions(A, B)
    return {
        "mmcs": float(best.mean()),
        "mcc": float(cos.mean()),
        "recovered": float(np.mean(best >= threshold)),
    }


def explained_variance(X: object, X_hat: object) -> float:
    """``1 - sum |x - x_hat|^2 / sum |x - mean(x)|^2``."""
    X = as_points(X, "X")
    Xh = as_points(X_hat, "X_hat")
    if X.shape != Xh.shape:
        raise PiamiShapeError(f"X and X_hat differ in shape: {X.shape} vs {Xh.shape}")
    return float(1.0 - np.sum((X - Xh) ** 2) / np.sum((X - X.mean(0)) ** 2))


class SparseAutoencoder(TransformerMixin, PiamiEstimator):
    """TopK or L1 sparse autoencoder (a scikit-learn transformer; see
    :mod:`piami.instruments.contract`).

    Args:
        n_latents: dictionary size.
        kind: ``"topk"`` (keep the ``k`` largest pre-activations, ReLU) or ``"l1"`` (ReLU with an
            L1 penalty ``l1_coefficient * sum_i z_i |W_dec[i]|``).
        k: active latents per input for TopK.
        l1_coefficient: L1 weight (on data rescaled to ``E|x - mean|^2 = d``).
        n_steps: Adam steps.
        batch_size: samples per step, drawn with replacement.
        lr: Adam learning rate (cosine decay to 10%).
        random_state: randomness of the initialization and the batches: an int seeds the torch
            generator (``seed=`` is its deprecated name, same numbers), a numpy Generator or
            ``None`` gives that seed by one draw.
        device: torch device (``"auto"`` picks CUDA/MPS/CPU).
        dtype: torch dtype of the parameters.
        progress: show a tqdm bar.

    Attributes (after ``fit``):
        W_enc_ ``(d, n_latents)``, b_enc_ ``(n_latents,)``, W_dec_ ``(n_latents, d)`` (unit rows for
        TopK), b_dec_ ``(d,)``, scale_ (the input rescaling), losses_ (per step),
        n_features_in_ (``d``).

    ``transform`` is :meth:`encode`, ``inverse_transform`` is :meth:`decode`; ``score`` is the
    explained variance (one float) and :meth:`health` gives it with L0 and dead latents.
    """

    @renamed_keywords(seed="random_state")
    def __init__(
        self,
        n_latents: int,
        *,
        kind: Literal["topk", "l1"] = "topk",
        k: int = 4,
        l1_coefficient: float = 2.0,
        n_steps: int = 3000,
        batch_size: int = 256,
        lr: float = 1e-2,
        random_state: RandomState = 0,
        device: str = "auto",
        dtype: str = "float32",
        progress: bool = False,
    ) -> None:
        self.n_latents = n_latents
        self.kind = kind
        self.k = k
        self.l1_coefficient = l1_coefficient
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.progress = progress

    def _validate(self) -> None:
        if not isinstance(self.n_latents, (int, np.integer)) or self.n_latents < 1:
            raise PiamiValueError(f"n_latents must be a positive integer, got {self.n_latents!r}")
        if self.kind not in ("topk", "l1"):
            raise PiamiValueError(f"kind must be 'topk' or 'l1', got {self.kind!r}")
        if self.kind == "topk" and not (
            isinstance(self.k, (int, np.integer)) and 1 <= self.k <= self.n_latents
        ):
            raise PiamiValueError(f"k must be an integer in [1, n_latents], got {self.k!r}")
        for name in ("n_steps", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise PiamiValueError(f"{name} must be a positive integer, got {v!r}")
        if not (self.lr > 0 and self.l1_coefficient >= 0):
            raise PiamiValueError("lr must be > 0 and l1_coefficient >= 0")

    def fit(self, X: Float[np.ndarray, "n d_model"], y: None = None) -> SparseAutoencoder:
        """Train on activations ``X`` ``(n_samples, d)`` (``y`` is ignored); returns self."""
        self._validate()
        X = as_2d_array(X, "X", column=False)
        dev = resolve_device(self.device)
        dt = resolve_dtype(self.dtype)
        g = torch.Generator().manual_seed(torch_seed(self.random_state))
        mean = X.mean(0)
        scale = float(np.sqrt(np.mean(np.sum((X - mean) ** 2, 1)) / X.shape[1]))
        if scale == 0:
            raise PiamiValueError(
                f"X is constant ({X.shape[0]} sample(s)): nothing for an SAE to explain"
            )
        Xt = torch.as_tensor(X / scale, dtype=dt).to(dev)
        W_dec = torch.randn(self.n_latents, X.shape[1], generator=g, dtype=dt)
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        params = {
            "W_enc": W_dec.T.clone().to(dev).requires_grad_(True),
            "b_enc": torch.zeros(self.n_latents, dtype=dt, device=dev, requires_grad=True),
            "W_dec": W_dec.clone().to(dev).requires_grad_(True),
            "b_dec": torch.as_tensor(mean / scale, dtype=dt).to(dev).requires_grad_(True),
        }
        losses = self._train(Xt, params, g)
        if not np.all(np.isfinite(losses)):
            raise PiamiValueError("SAE training diverged (non-finite loss); lower lr")
        self.scale_ = scale
        self.losses_ = losses
        self.W_enc_, self.b_enc_, self.W_dec_, self.b_dec_ = (
            params[key].detach().cpu().double().numpy() for key in params
        )
        self.b_dec_ = self.b_dec_ * scale
        self.n_features_in_ = X.shape[1]
        return self

    def _train(
        self, Xt: torch.Tensor, p: dict[str, torch.Tensor], g: torch.Generator
    ) -> np.ndarray:
        """Adam with cosine decay on ``Xt`` (rescaled data); returns the loss of each step."""
        opt = torch.optim.Adam(list(p.values()), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * s / self.n_steps))
        )
        losses = np.empty(self.n_steps)
        for step in tqdm(range(self.n_steps), disable=not self.progress, desc="SAE"):
            idx = torch.randint(0, Xt.shape[0], (self.batch_size,), generator=g).to(Xt.device)
            x = Xt[idx]
            pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
            if self.kind == "l1":
                z = torch.relu(pre)
            else:
                vals, top = torch.topk(pre, self.k, dim=-1)
                z = torch.zeros_like(pre).scatter(-1, top, torch.relu(vals))
            x_hat = z @ p["W_dec"] + p["b_dec"]
            loss = ((x - x_hat) ** 2).sum(-1).mean()
            if self.kind == "l1":
                loss = loss + self.l1_coefficient * (z * p["W_dec"].norm(dim=1)).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if self.kind == "topk":
                with torch.no_grad():
                    p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True).clamp_min(1e-12)
            losses[step] = float(loss.detach())
        return losses

    def encode(self, X: Float[np.ndarray, "n d_model"]) -> Float[np.ndarray, "n n_latents"]:
        """Latent activations ``(n_samples, n_latents)`` (in units of the rescaled data)."""
        self._check_fitted("W_dec_", "fit(X)")
        X = as_2d_array(X, "X", column=False)
        if X.shape[1] != self.n_features_in_:
            raise PiamiShapeError(
                f"X has {X.shape[1]} features, but SparseAutoencoder is expecting "
                f"{self.n_features_in_} features as input (the number it was fitted on)"
            )
        pre = (X - self.b_dec_) / self.scale_ @ self.W_enc_ + self.b_enc_
        if self.kind == "l1":
            return np.maximum(pre, 0.0)
        z = np.zeros_like(pre)
        idx = np.argpartition(-pre, self.k - 1, axis=1)[:, : self.k]
        rows = np.arange(pre.shape[0])[:, None]
        z[rows, idx] = np.maximum(pre[rows, idx], 0.0)
        return z

    def decode(self, Z: Float[np.ndarray, "n n_latents"]) -> Float[np.ndarray, "n d_model"]:
        """Reconstructions ``(n_samples, d)`` from latents ``(n_samples, n_latents)``."""
        self._check_fitted("W_dec_", "fit(X)")
        Z = as_2d_array(Z, "Z", column=False)
        if Z.shape[1] != self.W_dec_.shape[0]:
            raise PiamiShapeError(
                f"Z has {Z.shape[1]} latents, but the SAE has {self.W_dec_.shape[0]}"
            )
        return Z @ self.W_dec_ * self.scale_ + self.b_dec_

    def transform(self, X: Float[np.ndarray, "n d_model"]) -> Float[np.ndarray, "n n_latents"]:
        """:meth:`encode` (scikit-learn's name)."""
        return self.encode(X)

    def inverse_transform(
        self, Z: Float[np.ndarray, "n n_latents"]
    ) -> Float[np.ndarray, "n d_model"]:
        """:meth:`decode` (scikit-learn's name)."""
        return self.decode(Z)

    def reconstruct(self, X: Float[np.ndarray, "n d_model"]) -> Float[np.ndarray, "n d_model"]:
        """``decode(encode(X))``."""
        return self.decode(self.encode(X))

    def score(self, X: Float[np.ndarray, "n d_model"], y: None = None) -> float:
        """Explained variance of the reconstruction of ``X`` (:func:`explained_variance`)."""
        return explained_variance(X, self.reconstruct(X))

    def health(self, X: Float[np.ndarray, "n d_model"]) -> dict[str, float]:
        """``explained_variance``, ``l0`` (mean active latents) and ``dead_fraction`` on ``X``.

        (Before the estimator contract this dict was what ``score`` returned.)
        """
        Z = self.encode(X)
        active = Z > 0
        return {
            "explained_variance": explained_variance(X, self.decode(Z)),
            "l0": float(active.sum(1).mean()),
            "dead_fraction": float(np.mean(~active.any(0))),
        }


__all__ = [
    "SparseAutoencoder",
    "explained_variance",
    "feature_recovery",
    "make_superposition",
    "match_directions",
]
