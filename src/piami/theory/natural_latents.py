"""Natural latents: when a latent variable is pinned down by the data alone.

Take observables ``X = (X_1, ..., X_n)`` and a latent ``L`` with a joint table
``P(X_1, ..., X_n, L)``. Wentworth & Lorell ("Natural latents: the math", 2023; "Natural latents:
latent variables stable across ontologies", 2024) call ``L`` *natural* when two conditions hold:

* **mediation**: the observables are independent given ``L``. Its error is the conditional total
  correlation ``eps_med = TC(X | L) = sum_j H(X_j | L) - H(X | L)``, equal to the divergence
  ``D_KL(P(X, L) || P(L) prod_j P(X_j | L))``.
* **redundancy**: ``L`` can be read off each single observable. The error for observable ``j`` is
  ``eps_red_j = I(L; X_{-j} | X_j) = H(L | X_j) - H(L | X)``, which vanishes when the rest tells
  nothing more about ``L`` once ``X_j`` is known.

The payoff is uniqueness. If ``L`` mediates (error ``eps_med``) and ``L'`` is redundant (errors
``eps_red_j``), and both are read from ``X`` (``L`` and ``L'`` independent given ``X``), then, by
the chain rule of mutual information,

    I(L'; X | L) <= eps_med + eps_red_a + eps_red_b <= eps_med + 2 max_j eps_red_j

for any two observables ``a != b``; when ``L'`` is a deterministic function of ``X`` the left side
is ``H(L' | L)``: the redundant latent is (almost) a function of the mediating one. Two natural
latents of the same data therefore carry the same information, whoever learned them.

Tables are numpy arrays with one axis per observable and the latent on the **last** axis; entries
are probabilities (non-negative, summing to 1). Information is in nats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError


def _table(P: object, name: str = "P", min_axes: int = 2) -> np.ndarray:
    try:
        P = np.asarray(P, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(f"{name} must be a numeric probability table") from exc
    if P.ndim < min_axes:
        raise PiamiShapeError(
            f"{name} needs at least {min_axes} axes (observables..., latent last), got shape "
            f"{P.shape}"
        )
    if not np.all(np.isfinite(P)) or np.any(P < -1e-12):
        raise PiamiValueError(f"{name} must have finite, non-negative entries")
    total = P.sum()
    if not np.isclose(total, 1.0, atol=1e-8):
        raise PiamiValueError(f"{name} must sum to 1, sums to {total:.6g}; divide by its sum")
    return np.clip(P, 0.0, None)


def entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of a probability array (any shape; zeros contribute 0)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _marginal(P: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    drop = tuple(a for a in range(P.ndim) if a not in keep)
    return P.sum(axis=drop)


def _cond_entropy(P: np.ndarray, target: tuple[int, ...], given: tuple[int, ...]) -> float:
    """H(target | given) = H(target, given) - H(given)."""
    joint = tuple(sorted(set(target) | set(given)))
    return entropy(_marginal(P, joint)) - (entropy(_marginal(P, given)) if given else 0.0)


def mediation_error(P: object) -> float:
    """``TC(X | L) = sum_j H(X_j | L) - H(X | L)`` in nats (latent on the last axis)."""
    P = _table(P)
    lat = P.ndim - 1
    obs = tuple(range(lat))
    return float(sum(_cond_entropy(P, (j,), (lat,)) for j in obs) - _cond_entropy(P, obs, (lat,)))


def redundancy_errors(P: object) -> np.ndarray:
    """``eps_red_j = I(L; X_{-j} | X_j) = H(L | X_j) - H(L | X)`` for each
    observable ``j`` (nats)."""
    P = _table(P)
    lat = P.ndim - 1
    obs = tuple(range(lat))
    h_all = _cond_entropy(P, (lat,), obs)
    return np.array([_cond_entropy(P, (lat,), (j,)) - h_all for j in obs])


def joint_with_latent(P_X: object, channel: object) -> np.ndarray:
    """Joint table ``P(X, L) = P(X) P(L | X)``.

    Args:
        P_X: observables' table, shape ``(|X_1|, ..., |X_n|)``.
        channel: ``P(L | X)`` of shape ``(|X_1|, ..., |X_n|, |L|)``, each
            last-axis row summing to 1.
    """
    P_X = _table(P_X, "P_X", min_axes=1)
    ch = np.asarray(channel, dtype=np.float64)
    if ch.shape[:-1] != P_X.shape:
        raise PiamiShapeError(f"channel must have shape {(*P_X.shape, 'n_latent')}, got {ch.shape}")
    if np.any(ch < -1e-12) or not np.allclose(ch.sum(-1), 1.0, atol=1e-8):
        raise PiamiValueError("channel rows P(L | x) must be non-negative and sum to 1")
    return P_X[..., None] * ch


def deterministic_channel(labels: object, n_labels: int | None = None) -> np.ndarray:
    """One-hot channel ``P(L | X)`` of the function ``L = labels[x]`` (``labels``
    shaped like P_X)."""
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer) or np.any(lab < 0):
        raise PiamiValueError("labels must be non-negative integers")
    n = int(lab.max()) + 1 if n_labels is None else int(n_labels)
    return np.eye(n)[lab]


def latent_given_latent_entropy(P_X: object, channel: object, channel_prime: object) -> float:
    """``H(L' | L)`` in nats when ``L ~ P(L | X)`` and ``L' ~ P(L' | X)`` are
    independent given ``X``."""
    P_X = _table(P_X, "P_X", min_axes=1)
    joint = joint_with_latent(P_X, channel)  # validates
    ch2 = np.asarray(channel_prime, dtype=np.float64)
    joint_with_latent(P_X, ch2)  # validates the second channel
    obs = tuple(range(P_X.ndim))
    P_LL = np.tensordot(joint, ch2, axes=(obs, obs))  # (|L|, |L'|)
    return entropy(P_LL) - entropy(P_LL.sum(1))


def conditional_mutual_information_given_latent(
    P_X: object, channel: object, channel_prime: object
) -> float:
    """``I(L'; X | L) = H(L' | L) - H(L' | X)`` in nats, with ``L`` and ``L'``
    independent given ``X``."""
    P_X = _table(P_X, "P_X", min_axes=1)
    ch2 = np.asarray(channel_prime, dtype=np.float64)
    h_l2_x = entropy(joint_with_latent(P_X, ch2)) - entropy(P_X)
    return latent_given_latent_entropy(P_X, channel, ch2) - h_l2_x


def _set_partitions(n: int):
    """Restricted growth strings of length n: every partition of n items exactly once."""
    a = [0] * n

    def rec(i: int, m: int):
        if i == n:
            yield list(a)
            return
        for v in range(m + 2):
            a[i] = v
            yield from rec(i + 1, max(m, v))

    if n == 0:
        yield []
        return
    yield from rec(1, 0)


@dataclass(frozen=True, kw_only=True)
class NaturalLatentSearch:
    """Result of :func:`best_deterministic_natural_latent`.

    Attributes:
        labels: ``L(x)`` for every cell of ``P_X`` (-1 where ``P_X`` is 0).
        score: ``eps_med + redundancy_weight * max_j eps_red_j`` (nats).
        mediation: ``eps_med`` of the best latent.
        redundancy: ``eps_red_j`` of the best latent.
        n_candidates: how many latents (partitions of the support) were scored.
    """

    labels: np.ndarray
    score: float
    mediation: float
    redundancy: np.ndarray
    n_candidates: int


def best_deterministic_natural_latent(
    P_X: object, *, redundancy_weight: float = 2.0, max_support: int = 10
) -> NaturalLatentSearch:
    """Exhaustive search for the deterministic latent ``L = f(X)`` with the
    smallest naturality error.

    Every partition of the support of ``P_X`` (Bell(m) of them for ``m`` outcomes) is a candidate
    ``f``; the score is ``eps_med + redundancy_weight * max_j eps_red_j``, the right side of the
    uniqueness bound. The constant latent scores ``TC(X)``; the identity scores
    ``2 max_j H(X_{-j} | X_j)``.

    Args:
        P_X: observables' table ``(|X_1|, ..., |X_n|)``, ``n >= 2``.
        redundancy_weight: weight of the worst redundancy error.
        max_support: refuse tables with more non-zero outcomes (Bell(10) = 115,975 candidates).
    """
    P_X = _table(P_X, "P_X", min_axes=2)
    support = np.flatnonzero(P_X.ravel() > 0)
    m = support.size
    if m > max_support:
        raise PiamiValueError(
            f"P_X has {m} outcomes with non-zero probability; the search enumerates Bell({m}) "
            f"partitions; raise max_support (now {max_support}) only for m <= 11"
        )
    if not redundancy_weight >= 0:
        raise PiamiValueError(f"redundancy_weight must be >= 0, got {redundancy_weight!r}")
    # for L = f(X): H(X | L) = H(X) - H(L), H(L | X) = 0, so every error is a few entropies of
    # label histograms; the winner is re-scored below with the general formulas
    p = P_X.ravel()[support]
    obs_idx = np.stack(np.unravel_index(support, P_X.shape), axis=1)  # (m, n_obs)
    h_x = entropy(p)
    h_xj = [entropy(np.bincount(obs_idx[:, j], weights=p)) for j in range(P_X.ndim)]
    best = None
    count = 0
    for part in _set_partitions(m):
        count += 1
        lab = np.asarray(part)
        n_l = int(lab.max()) + 1
        h_l = entropy(np.bincount(lab, weights=p))
        h_jl = [entropy(np.bincount(obs_idx[:, j] * n_l + lab, weights=p)) for j in range(P_X.ndim)]
        med = sum(h_jl) - P_X.ndim * h_l - (h_x - h_l)
        red_max = max(h_jl[j] - h_xj[j] for j in range(P_X.ndim))
        score = med + redundancy_weight * red_max
        if best is None or score < best[0] - 1e-12:
            best = (score, lab)
    _, part = best
    labels = np.full(P_X.size, -1, dtype=np.int64)
    labels[support] = part
    labels = labels.reshape(P_X.shape)
    P = joint_with_latent(P_X, deterministic_channel(np.maximum(labels, 0), int(part.max()) + 1))
    med = mediation_error(P)
    red = redundancy_errors(P)
    score = med + redundancy_weight * float(red.max())
    return NaturalLatentSearch(
        labels=labels, score=float(score), mediation=float(med), redundancy=red, n_candidates=count
    )


__all__ = [
    "NaturalLatentSearch",
    "best_deterministic_natural_latent",
    "conditional_mutual_information_given_latent",
    "deterministic_channel",
    "entropy",
    "joint_with_latent",
    "latent_given_latent_entropy",
    "mediation_error",
    "redundancy_errors",
]
