"""Kernel matrices and centered kernel alignment (CKA) of activations.

Two sets of activations of the same ``n`` inputs, ``X`` of shape ``(n, d1)`` and ``Y`` of shape
``(n, d2)`` (two layers, two networks), are compared through their data kernels: the ``n x n``
matrices ``K = k(x_i, x_j)`` and ``L = l(y_i, y_j)``. The Hilbert-Schmidt independence criterion
``HSIC(K, L) = tr(K H L H) / (n - 1)^2`` (Gretton et al. 2005), with the centering matrix
``H = I - 11^T / n``, measures how alike the two kernels are. CKA normalizes it (Kornblith et al.
2019, eq. 3)::

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))      in [0, 1].

With the linear kernel, CKA is invariant to orthogonal maps and to isotropic scaling of either
representation, but not to general invertible linear maps. With the RBF kernel whose bandwidth is a
fraction of the median pairwise distance, the same invariances hold. The plug-in HSIC is biased
upward at finite ``n`` (two independent representations do not give 0); the debiased CKA uses the
unbiased HSIC estimator of Song et al. (2012, eq. 5), as proposed for CKA by Nguyen, Raghu &
Kornblith (2021).

Every function takes plain arrays (numpy, or anything ``np.asarray`` accepts, such as CPU torch
tensors), so it measures any model's activations, not only piami's.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 10))
    >>> Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    >>> round(cka(X, 3.0 * X @ Q), 6)
    1.0
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.typing import Float

Kernel = Literal["linear", "rbf"]


def as_points(X: object, name: str = "X", *, min_points: int = 2) -> np.ndarray:
    """Validate a point cloud and return it as a float64 ``(n_points, n_dims)`` array.

    A 1-D array is read as ``n_points`` points on a line. Raises a PiamiError for non-numeric,
    non-finite or too-small input.
    """
    if hasattr(X, "detach"):  # a torch tensor: leave the graph and the device
        X = X.detach().cpu().numpy()
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise PiamiTypeError(f"{name} must be a numeric array, got {type(X).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise PiamiTypeError(
            f"{name} must be a numeric array of shape (n_points, n_dims), got dtype {arr.dtype}"
        )
    if np.iscomplexobj(arr):
        raise PiamiTypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise PiamiShapeError(
            f"{name} must have shape (n_points, n_dims), got shape {arr.shape}; "
            "flatten batch and position first, e.g. X.reshape(-1, d_model)"
        )
    if arr.shape[0] < min_points or arr.shape[1] < 1:
        raise PiamiShapeError(
            f"{name} needs at least {min_points} points and 1 dimension, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise PiamiValueError(f"{name} contains NaN or infinite values; remove or fix them first")
    return arr


def squared_distances(X: Float[np.ndarray, "n d"]) -> Float[np.ndarray, "n n"]:
    """Pairwise squared Euclidean distances, clipped at 0 against round-off."""
    X = as_points(X, "X", min_points=1)
    sq = np.sum(X * X, axis=1)
    D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.fill_diagonal(D, 0.0)
    return np.maximum(D, 0.0)


def kernel_matrix(
    X: Float[np.ndarray, "n d"],
    kernel: Kernel = "linear",
    *,
    sigma: float | None = None,
    sigma_frac: float = 1.0,
) -> Float[np.ndarray, "n n"]:
    """The data kernel (Gram) matrix of ``n`` activation vectors.

    Args:
        X: activations, shape ``(n, d)``.
        kernel: ``"linear"`` (``K = X X^T``) or ``"rbf"``
            (``K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2))``).
        sigma: RBF bandwidth; ``None`` uses ``sigma_frac`` times the median pairwise distance
            (Kornblith et al. 2019, section 6.1), which keeps the kernel scale-invariant.
        sigma_frac: fraction of the median distance used when ``sigma`` is None.

    Returns:
        ``(n, n)`` symmetric positive semi-definite matrix.
    """
    X = as_points(X)
    if kernel == "linear":
        return X @ X.T
    if kernel != "rbf":
        raise PiamiValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
    D = squared_distances(X)
    if sigma is None:
        if not (np.isfinite(sigma_frac) and sigma_frac > 0):
            raise PiamiValueError(f"sigma_frac must be a positive number, got {sigma_frac!r}")
        iu = np.triu_indices(X.shape[0], 1)
        med = float(np.sqrt(np.median(D[iu])))
        if med == 0.0:
            raise PiamiValueError(
                "the median pairwise distance is 0 (most points coincide); pass sigma explicitly"
            )
        sigma = sigma_frac * med
    if not (np.isfinite(sigma) and sigma > 0):
        raise PiamiValueError(f"sigma must be a positive number, got {sigma!r}")
    return np.exp(-D / (2.0 * sigma**2))


def center_kernel(K: Float[np.ndarray, "n n"]) -> Float[np.ndarray, "n n"]:
    """``H K H`` with ``H = I - 11^T/n``: subtract row and column means, add back the grand mean."""
    K = _as_kernel(K, "K")
    return K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()


def _as_kernel(K: object, name: str) -> np.ndarray:
    K = as_points(K, name, min_points=1)
    if K.shape[0] != K.shape[1]:
        raise PiamiShapeError(f"{name} must be a square (n, n) kernel matrix, got shape {K.shape}")
    return K


def hsic(
    K: Float[np.ndarray, "n n"], L: Float[np.ndarray, "n n"], *, unbiased: bool = False
) -> float:
    """Hilbert-Schmidt independence criterion of two kernel matrices.

    Biased (plug-in): ``tr(K H L H) / (n - 1)^2`` (Gretton et al. 2005, eq. 4). Unbiased (Song et
    al. 2012, eq. 5), with ``K~, L~`` the kernels with zeroed diagonals::

        [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n - 3))

    Args:
        K: ``(n, n)`` kernel matrix; ``n >= 4`` for the unbiased form.
        L: ``(n, n)`` kernel matrix of the same inputs.
        unbiased: use the unbiased estimator (may be negative).
    """
    K = _as_kernel(K, "K")
    L = _as_kernel(L, "L")
    if K.shape != L.shape:
        raise PiamiShapeError(
            f"K and L must be kernels of the same n inputs, got shapes {K.shape} and {L.shape}"
        )
    n = K.shape[0]
    if not unbiased:
        if n < 2:
            raise PiamiShapeError(f"HSIC needs at least 2 points, got {n}")
        return float(np.sum(center_kernel(K) * center_kernel(L)) / (n - 1) ** 2)
    if n < 4:
        raise PiamiShapeError(f"the unbiased HSIC needs at least 4 points, got {n}")
    Kt = K.copy()
    Lt = L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    term1 = np.sum(Kt * Lt)  # tr(K~ L~) for symmetric kernels
    term2 = Kt.sum() * Lt.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * float(Kt.sum(axis=0) @ Lt.sum(axis=1))
    return float((term1 + term2 - term3) / (n * (n - 3)))


def cka_from_kernels(
    K: Float[np.ndarray, "n n"], L: Float[np.ndarray, "n n"], *, debiased: bool = False
) -> float:
    """CKA of two kernel matrices (Kornblith et al. 2019, eq. 3); debiased: the unbiased HSIC."""
    kl = hsic(K, L, unbiased=debiased)
    kk = hsic(K, K, unbiased=debiased)
    ll = hsic(L, L, unbiased=debiased)
    if kk <= 0 or ll <= 0:
        raise PiamiValueError(
            "CKA is undefined: a representation has zero (or, debiased, non-positive) self-HSIC; "
            "it is constant across inputs or has too few points"
        )
    # sqrt of each factor: kk * ll can underflow to 0 when one representation is nearly constant
    out = kl / (np.sqrt(kk) * np.sqrt(ll))
    if not np.isfinite(out):
        raise PiamiValueError(
            "CKA is numerically undefined: the self-HSIC of a representation is too small against "
            "its cross-HSIC (a representation is constant but for a few entries); rescale or drop "
            "those inputs"
        )
    return float(out)


def cka(
    X: Float[np.ndarray, "n d1"],
    Y: Float[np.ndarray, "n d2"],
    *,
    kernel: Kernel = "linear",
    debiased: bool = False,
    sigma_frac: float = 1.0,
) -> float:
    """Centered kernel alignment of two representations of the same ``n`` inputs.

    Args:
        X: activations ``(n, d1)``; rows are inputs.
        Y: activations ``(n, d2)`` of the same inputs in the same order.
        kernel: ``"linear"`` or ``"rbf"`` (bandwidth ``sigma_frac`` x median distance).
        debiased: use the unbiased HSIC (Nguyen et al. 2021), which removes the finite-``n`` bias.
        sigma_frac: RBF bandwidth as a fraction of the median pairwise distance.

    Returns:
        CKA in ``[0, 1]`` (the debiased value can be slightly negative).

    Linear CKA without debiasing is computed in feature space, ``|Y_c^T X_c|_F^2 /
    (|X_c^T X_c|_F |Y_c^T Y_c|_F)`` with column-centered ``X_c, Y_c`` (Kornblith et al. 2019,
    eq. 5),
    which costs ``O(n d^2)`` instead of ``O(n^2 d)``.
    """
    X = as_points(X, "X")
    Y = as_points(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise PiamiShapeError(
            f"X and Y must hold the same inputs (rows), got {X.shape[0]} and {Y.shape[0]} rows"
        )
    # CKA is invariant to isotropic scaling: rescale both to unit max entry against overflow
    X = X / max(float(np.max(np.abs(X))), 1e-300)
    Y = Y / max(float(np.max(np.abs(Y))), 1e-300)
    if kernel == "linear" and not debiased:
        Xc = X - X.mean(axis=0)
        Yc = Y - Y.mean(axis=0)
        num = np.linalg.norm(Yc.T @ Xc) ** 2
        den = np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)
        if not den > 0:
            raise PiamiValueError("CKA is undefined: a representation is constant across inputs")
        return float(num / den)
    K = kernel_matrix(X, kernel, sigma_frac=sigma_frac)
    L = kernel_matrix(Y, kernel, sigma_frac=sigma_frac)
    return cka_from_kernels(K, L, debiased=debiased)


__all__ = [
    "as_points",
    "center_kernel",
    "cka",
    "cka_from_kernels",
    "hsic",
    "kernel_matrix",
    "squared_distances",
]
