"""Reading weights directly: singular spectra, effective rank, teacher modes, bilinear features.

* **Singular spectrum and effective rank.** A weight matrix ``W = U S V^T``. Its *effective rank*
  (Roy & Vetterli 2007) is ``exp(H(p))`` with ``p_i = s_i / sum s``; the *stable rank* is
  ``|W|_F^2 / |W|_2^2``; the *participation ratio* is ``(sum s^2)^2 / sum s^4``. All equal ``r``
  for ``r`` equal singular values and fall smoothly as the spectrum decays.
* **Teacher modes.** A deep linear network trained on ``y = M x`` learns the end-to-end map
  ``W_D ... W_1``; its singular vectors should align with the teacher's modes and its singular
  values approach the teacher's (Saxe et al. 2014). :func:`compare_modes` matches them.
* **Bilinear eigenfeatures.** A bilinear layer ``y = P((W x) * (V x))`` gives each output a
  quadratic form ``y_o = x^T B_o x``; for any output direction ``u`` the symmetric matrix
  ``Q_u = sum_o u_o (B_o + B_o^T) / 2`` has eigenvectors that are input features and eigenvalues
  that are their (signed) contributions (Pearce et al. 2024, section 3).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from piami.errors import PiamiShapeError, PiamiValueError
from piami.instruments.geometry import as_points
from piami.instruments.sae import match_directions


def _matrix(W: object, name: str = "W") -> np.ndarray:
    return as_points(W, name, min_points=1)


def singular_spectrum(W: object) -> np.ndarray:
    """Singular values of a weight matrix ``(d_out, d_in)``, descending."""
    return np.linalg.svd(_matrix(W), compute_uv=False)


def effective_rank(W: object, *, method: str = "entropy") -> float:
    """Effective rank of a matrix from its singular values.

    Args:
        W: ``(d_out, d_in)`` matrix.
        method: ``"entropy"`` (Roy & Vetterli 2007, ``exp H(s / sum s)``), ``"stable"``
            (``|W|_F^2 / |W|_2^2``) or ``"participation"`` (``(sum s^2)^2 / sum s^4``).
    """
    s = singular_spectrum(W)
    if s[0] == 0:
        raise PiamiValueError("the zero matrix has no effective rank")
    s = s / s[0]  # every measure is scale-free; this keeps s^2 and s^4 from under/overflowing
    if method == "entropy":
        p = s / s.sum()
        p = p[p > 0]
        return float(np.exp(-np.sum(p * np.log(p))))
    if method == "stable":
        return float(np.sum(s**2) / s[0] ** 2)
    if method == "participation":
        return float(np.sum(s**2) ** 2 / np.sum(s**4))
    raise PiamiValueError(f"method must be 'entropy', 'stable' or 'participation', got {method!r}")


def end_to_end(weights: list[object]) -> np.ndarray:
    """``W_D ... W_1`` of a list ``[W_1, ..., W_D]`` with ``W_l`` of shape ``(d_l, d_{l-1})``."""
    if len(weights) == 0:
        raise PiamiValueError("weights must be a non-empty list of matrices [W_1, ..., W_D]")
    P = _matrix(weights[0], "W_1")
    for i, w in enumerate(weights[1:], start=2):
        w = _matrix(w, f"W_{i}")
        if w.shape[1] != P.shape[0]:
            raise PiamiShapeError(f"W_{i} has {w.shape[1]} columns, expected {P.shape[0]}")
        P = w @ P
    return P


def compare_modes(learned: object, U: object, S: object, V: object) -> dict[str, np.ndarray]:
    """Match the modes of a learned map to a teacher's ``M = U diag(S) V^T``.

    Args:
        learned: ``(d_out, d_in)`` end-to-end map.
        U: ``(d_out, m)``, S: ``(m,)``, V: ``(d_in, m)``: the teacher's top ``m`` modes.

    Returns:
        ``{"s_true", "s_learned", "left_cos", "right_cos"}``: for each teacher mode (in the order
        given), the learned mode it is matched to (Hungarian matching on
        ``|u_i . u'_j| |v_i . v'_j|``), its singular value and the ``|cos|`` of the left and
        right singular vectors.
    """
    A = _matrix(learned, "learned")
    U = _matrix(U, "U")
    V = _matrix(V, "V")
    S = np.asarray(S, dtype=np.float64).ravel()
    m = S.size
    if U.shape != (A.shape[0], m) or V.shape != (A.shape[1], m):
        raise PiamiShapeError(
            f"expected U ({A.shape[0]}, {m}) and V ({A.shape[1]}, {m}), got {U.shape}, {V.shape}"
        )
    Ul, Sl, Vlt = np.linalg.svd(A, full_matrices=False)
    k = min(Sl.size, max(m, 1) * 2)
    score = np.abs(U.T @ Ul[:, :k]) * np.abs(V.T @ Vlt[:k].T)  # (m, k)
    ti, li = linear_sum_assignment(-score)
    order = np.argsort(ti)
    ti, li = ti[order], li[order]
    return {
        "s_true": S[ti],
        "s_learned": Sl[li],
        "left_cos": np.abs(np.sum(U[:, ti] * Ul[:, li], 0)),
        "right_cos": np.abs(np.sum(V[:, ti] * Vlt[li].T, 0)),
    }


def bilinear_interaction(W: object, V: object, P: object | None = None) -> np.ndarray:
    """Symmetric interaction matrices ``B[o] = sum_h P[o, h] (W_h V_h^T + V_h W_h^T) / 2``.

    Args:
        W: ``(d_hidden, d_in)`` first bilinear factor.
        V: ``(d_hidden, d_in)`` second bilinear factor.
        P: ``(d_out, d_hidden)``, or None for the identity (one output per hidden unit).

    Returns:
        ``(d_out, d_in, d_in)``, with ``y_o = x^T B[o] x`` exactly.
    """
    W = _matrix(W, "W")
    V = _matrix(V, "V")
    if W.shape != V.shape:
        raise PiamiShapeError(f"W and V must have the same shape, got {W.shape} and {V.shape}")
    P = np.eye(W.shape[0]) if P is None else _matrix(P, "P")
    if P.shape[1] != W.shape[0]:
        raise PiamiShapeError(f"P must have {W.shape[0]} columns (d_hidden), got shape {P.shape}")
    B = np.einsum("oh,hi,hj->oij", P, W, V)
    return 0.5 * (B + np.transpose(B, (0, 2, 1)))


def bilinear_eigendecomposition(
    W: object, V: object, P: object | None = None, *, direction: object | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the interaction matrix along output ``direction``(s).

    Args:
        W: as in :func:`bilinear_interaction`.
        V: as in :func:`bilinear_interaction`.
        P: as in :func:`bilinear_interaction`.
        direction: ``(d_out,)`` output direction ``u``; None decomposes every output (``u = e_o``).

    Returns:
        ``(eigenvalues, eigenvectors)``: ``(d_in,)`` and ``(d_in, d_in)`` with eigenvectors as rows,
        sorted by decreasing ``|eigenvalue|``; with ``direction=None`` a leading ``d_out`` axis.
    """
    B = bilinear_interaction(W, V, P)
    if direction is None:
        Q = B
    else:
        u = np.asarray(direction, dtype=np.float64).ravel()
        if u.size != B.shape[0]:
            raise PiamiShapeError(f"direction must have d_out={B.shape[0]} entries, got {u.size}")
        Q = np.tensordot(u, B, axes=1)[None]
    vals, vecs = np.linalg.eigh(Q)  # vecs[..., :, k] is the k-th eigenvector
    order = np.argsort(-np.abs(vals), axis=-1)
    vals = np.take_along_axis(vals, order, -1)
    vecs = np.take_along_axis(np.swapaxes(vecs, -1, -2), order[..., None], -2)
    if direction is not None:
        return vals[0], vecs[0]
    return vals, vecs


def recovered_features(found: object, true: object) -> np.ndarray:
    """``|cos|`` of each true direction with its one-to-one matched found direction."""
    cos, ti, _ = match_directions(found, true)
    out = np.zeros(_matrix(true, "true").shape[0])
    out[ti] = cos
    return out


__all__ = [
    "bilinear_eigendecomposition",
    "bilinear_interaction",
    "compare_modes",
    "effective_rank",
    "end_to_end",
    "recovered_features",
    "singular_spectrum",
]
