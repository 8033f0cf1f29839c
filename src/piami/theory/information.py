"""Information measures of a stationary hidden Markov process (computational mechanics).

For a stationary process ``... X_{-1} X_0 X_1 ...`` (Crutchfield & Feldman 2003, "Regularities
unseen, randomness observed", Chaos 13, 25):

- block entropy ``H(L) = H[X_0 .. X_{L-1}]`` (eq. 5), with ``H(0) = 0``;
- myopic entropy ``h(L) = H(L) - H(L-1) = H[X_{L-1} | X_0 .. X_{L-2}]`` (eq. 20): the smallest
  expected cross-entropy a predictor can reach at 0-based position ``L - 1``, i.e.
  the optimal loss there;
- entropy rate ``h = lim h(L)`` (eq. 21);
- excess entropy ``E = sum_{L >= 1} (h(L) - h)`` (eq. 33), the information the past shares with the
  future;
- statistical complexity ``C_mu = H[causal state]``, the entropy of the stationary distribution over
  the epsilon-machine's states (Shalizi & Crutchfield 2001). It is infinite when the process has
  infinitely many causal states, as every non-unifilar Mess3 does.

For a unifilar presentation (each state and symbol determine the next state) ``h = H[X | S]``. For a
non-unifilar one the same formula is wrong (for Mess3(0.05, 0.85) it gives 1.329 bits instead of
1.1447); the entropy rate is then the Blackwell average of the next-symbol entropy over the
stationary distribution of beliefs, estimated here by a time average along long belief trajectories
(Jurgens & Crutchfield 2021, "Shannon entropy rate of hidden Markov processes", J. Stat. Phys. 183,
eq. 6), with the bounds ``H[X | S] <= h <= H[X, S' | S]``.

Everything is in nats; :func:`to_bits` converts for display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from piami.errors import DivergentQuantityError, PiamiValueError
from piami.theory.beliefs import PROB_FLOOR
from piami.theory.mixed_state import belief_layers, mixed_state_presentation
from piami.typing import Float

LN2 = math.log(2.0)


def to_bits(nats: float | np.ndarray) -> float | np.ndarray:
    """Convert nats to bits (divide by ln 2)."""
    return np.asarray(nats) / LN2 if isinstance(nats, np.ndarray) else float(nats) / LN2


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Shannon entropy ``-sum p log p`` in nats along ``axis`` (``0 log 0 = 0``)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    out = terms.sum(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def is_unifilar(T: Float[np.ndarray, "n_symbols n_states n_states"]) -> bool:
    """True when every (state, symbol) pair leads to at most one next state."""
    return bool(((T != 0).sum(axis=2) <= 1).all())


def conditional_entropy_bounds(
    T: Float[np.ndarray, "n_symbols n_states n_states"], pi: Float[np.ndarray, " n_states"]
) -> tuple[float, float]:
    """``(H[X | S], H[X, S' | S])`` in nats for an HMM: the bounds on its entropy rate.

    ``H[X | S] <= h`` because knowing the state can only help; ``h <= H[X, S' | S]`` because the
    symbols are a function of the Markov chain of edges (Cover & Thomas, Theorem 4.5.1
    for the lower side).
    """
    sym = T.sum(axis=2)  # (n_symbols, n_states): Pr(x | i)
    lower = float(pi @ entropy(sym.T, axis=1))
    edges = T.transpose(1, 0, 2).reshape(T.shape[1], -1)  # (n_states, n_symbols * n_states)
    upper = float(pi @ entropy(edges, axis=1))
    return lower, upper


def block_entropies(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    L: int,
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    max_beliefs: int = 20_000,
) -> Float[np.ndarray, " L+1"]:
    """Block entropies ``H(0), H(1), .., H(L)`` in nats, by breadth-first mixed-state expansion.

    ``H(L) = sum_{t < L} E[H(X_t | eta_t)]`` (chain rule; the belief ``eta_t`` carries everything
    the prefix says about ``X_t``). Exact while each layer holds at most ``max_beliefs`` distinct
    beliefs; beyond that see :func:`piami.theory.mixed_state.belief_layers`.
    """
    if L < 0:
        raise PiamiValueError(f"block length L must be >= 0; got {L}")
    H = np.zeros(L + 1)
    if L > 0:
        layers = belief_layers(T, L - 1, root=root, right=right, max_beliefs=max_beliefs)
        H[1:] = np.cumsum(layers.next_entropy)
    return H


def myopic_entropies(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    L: int,
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    max_beliefs: int = 20_000,
    progress: bool = False,
) -> Float[np.ndarray, " L"]:
    """``h(1), .., h(L)`` in nats: entry ``t`` is the optimal expected loss at
    0-based position ``t``."""
    if L < 1:
        raise PiamiValueError(f"need L >= 1 positions; got {L}")
    layers = belief_layers(
        T, L - 1, root=root, right=right, max_beliefs=max_beliefs, progress=progress
    )
    return layers.next_entropy


@dataclass(frozen=True)
class EntropyRate:
    """An entropy rate with how it was obtained (nats).

    Attributes:
        value: the entropy rate.
        stderr: standard error of a Monte Carlo estimate (0.0 when exact).
        lower: ``H[X | S]`` (NaN for a generalized HMM).
        upper: ``H[X, S' | S]`` (NaN for a generalized HMM).
        method: ``"unifilar"`` (exact, ``H[X | S]``) or ``"blackwell"`` (time average).
        n_samples: number of belief states averaged (0 when exact).
        myopic_bound: ``min_L h(L)`` over the mixed-state layers up to ``L = 256``: an independent
            upper bound on ``h`` (``h(L)`` decreases to ``h``), tight for processes that forget
            their start geometrically; NaN when not computed.
    """

    value: float
    stderr: float
    lower: float
    upper: float
    method: str
    n_samples: int
    myopic_bound: float = math.nan


def entropy_rate_blackwell(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    rng: np.random.Generator,
    n_chains: int = 512,
    n_steps: int = 4000,
    burn_in: int = 200,
) -> tuple[float, float]:
    """Entropy rate as the time average of ``H[Pr(X | eta_t)]`` along sampled belief trajectories.

    Jurgens & Crutchfield (2021), eq. 6: ``h = int H[Pr(X | eta)] dmu(eta)`` with ``mu`` the
    Blackwell (stationary) measure of the belief chain; by ergodicity the time average converges to
    it. ``n_chains`` independent trajectories run in parallel from ``root``; the first ``burn_in``
    steps are dropped.

    Returns:
        ``(estimate, stderr)`` in nats; ``stderr`` is the standard deviation of the chain means over
        ``sqrt(n_chains)`` (chains are independent, so this accounts for
        autocorrelation within them).
    """
    if n_chains < 2 or n_steps < 1 or burn_in < 0:
        raise PiamiValueError(
            f"need n_chains >= 2, n_steps >= 1, burn_in >= 0; got {n_chains}, {n_steps}, {burn_in}"
        )
    n_sym, n_st, _ = T.shape
    r = np.ones(n_st) if right is None else right
    W = np.ascontiguousarray(T.transpose(1, 0, 2).reshape(n_st, n_sym * n_st))
    Wr = np.ascontiguousarray((T @ r).T)
    eta = np.broadcast_to(np.asarray(root, dtype=np.float64), (n_chains, n_st)).copy()
    rows = np.arange(n_chains)
    acc = np.zeros(n_chains)
    for t in range(burn_in + n_steps):
        P = np.clip(eta @ Wr, 0.0, None)
        if t >= burn_in:
            acc += entr(P).sum(axis=1)
        C = np.cumsum(P, axis=1)
        u = rng.random(n_chains) * C[:, -1]
        x = np.minimum((C <= u[:, None]).sum(axis=1), n_sym - 1)
        nxt = (eta @ W).reshape(n_chains, n_sym, n_st)[rows, x]
        eta = nxt / (nxt @ r)[:, None]
    means = acc / n_steps
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(n_chains))


def entropy_rate(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    rng: np.random.Generator | None = None,
    n_chains: int = 512,
    n_steps: int = 4000,
    myopic_depth: int = 256,
) -> EntropyRate:
    """Entropy rate in nats: exact ``H[X | S]`` when unifilar, else the Blackwell time average.

    Args:
        T: transition tensor.
        root: the stationary distribution.
        right: principal right eigenvector (None: an HMM).
        rng: random generator for the time average (None: ``np.random.default_rng(0)``, so the
            same call gives the same number).
        n_chains: chains of the time average (its stderr is returned).
        n_steps: steps of each chain of the time average.
        myopic_depth: depth of the mixed-state layers giving ``myopic_bound`` (0: skip).
    """
    hmm = right is None
    lower, upper = conditional_entropy_bounds(T, root) if hmm else (math.nan, math.nan)
    if hmm and is_unifilar(T):
        return EntropyRate(
            value=lower, stderr=0.0, lower=lower, upper=upper, method="unifilar", n_samples=0
        )
    rng = np.random.default_rng(0) if rng is None else rng
    value, se = entropy_rate_blackwell(
        T, root=root, right=right, rng=rng, n_chains=n_chains, n_steps=n_steps
    )
    bound = math.nan
    if myopic_depth > 0:
        bound = float(belief_layers(T, myopic_depth - 1, root=root, right=right).next_entropy.min())
    return EntropyRate(
        value=value,
        stderr=se,
        lower=lower,
        upper=upper,
        method="blackwell",
        n_samples=n_chains * n_steps,
        myopic_bound=bound,
    )


def excess_entropy(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    max_depth: int = 4096,
    atol: float = 1e-12,
    max_beliefs: int = 20_000,
) -> float:
    """Excess entropy ``E = sum_{L >= 1} (h(L) - h)`` in nats (Crutchfield & Feldman 2003, eq. 33).

    ``h(L)`` comes from the mixed-state layers, doubling the depth until two successive ``h(L)``
    agree within ``atol``; the last ``h(L)`` then stands for ``h``. Exact for finite mixed-state
    presentations; for infinite ones (Mess3) the layers are merged on a grid beyond ``max_beliefs``
    beliefs, which biases each ``h(L)`` up by a second-order amount (see ``belief_layers``).

    Raises:
        DivergentQuantityError: ``h(L)`` has not converged by ``max_depth`` (E may be infinite, as
            for processes with long-range order).
    """
    depth = 64
    while True:
        h = belief_layers(T, depth, root=root, right=right, max_beliefs=max_beliefs).next_entropy
        tail = np.abs(np.diff(h[-8:]))
        if tail.max() <= atol:
            return float(np.sum(h - h[-1]))
        if depth >= max_depth:
            raise DivergentQuantityError(
                f"the myopic entropy h(L) still changes by {tail.max():.2e} nats per step at "
                f"L = {depth}; the excess entropy may be infinite or converge too slowly. "
                "Raise max_depth to look further."
            )
        depth = min(2 * depth, max_depth)


def _lump(nxt: np.ndarray, probs: np.ndarray, decimals: int = 9) -> np.ndarray:
    """Predictive-equivalence classes of a unifilar machine by partition refinement (Moore).

    Two nodes are equivalent when they give the same symbol probabilities and, symbol by symbol, go
    to equivalent nodes.
    """
    _, labels = np.unique(np.round(probs, decimals), axis=0, return_inverse=True)
    labels = labels.ravel()
    while True:
        tgt = np.where(nxt >= 0, labels[np.maximum(nxt, 0)], -1)
        _, new = np.unique(np.column_stack([labels, tgt]), axis=0, return_inverse=True)
        new = new.ravel()
        if new.max() == labels.max():
            return new
        labels = new


def _stationary_of_chain(P: np.ndarray) -> np.ndarray:
    n = P.shape[0]
    A = np.vstack([(P - np.eye(n)).T, np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def statistical_complexity(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    max_states: int = 5_000,
    name: str = "this process",
) -> float:
    """Statistical complexity ``C_mu`` in nats: entropy of the stationary causal-state distribution.

    A unifilar HMM is lumped into its epsilon-machine (merging predictively equivalent states) and
    ``C_mu`` is the entropy of the lumped stationary distribution. Otherwise the mixed-state
    presentation is built from the stationary root; its recurrent part, lumped the same way, gives
    the causal states (Crutchfield, Ellison & Riechers 2016).

    Raises:
        DivergentQuantityError: the mixed-state presentation does not close within ``max_states``
            states: the process has (at least that many, generically infinitely many) causal states
            and ``C_mu`` diverges. This is the case of Mess3.
    """
    if right is None and is_unifilar(T):
        nz = T != 0
        nxt = np.where(nz.any(axis=2), nz.argmax(axis=2), -1).T  # (n_states, n_symbols)
        probs = T.sum(axis=2).T
        labels = _lump(nxt, probs)
        mass = np.bincount(labels, weights=root, minlength=labels.max() + 1)
        return float(entropy(mass))
    msp = mixed_state_presentation(
        T, root=root, right=right, max_depth=10 * max_states, max_states=max_states
    )
    if not msp.complete:
        raise DivergentQuantityError(
            f"the statistical complexity of {name} diverges: its mixed-state presentation did not "
            f"close within {max_states} mixed states (a non-unifilar process such as Mess3 has "
            "infinitely many causal states, so C_mu = +inf). Use the entropy rate, excess entropy "
            "or finite-depth mixed-state presentation instead, "
            "or raise max_states if you know it is finite."
        )
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    K = msp.n_states
    nxt, probs = msp.next_state, msp.symbol_probs
    src = np.repeat(np.arange(K), nxt.shape[1])
    dst = nxt.ravel()
    keep = (dst >= 0) & (probs.ravel() > PROB_FLOOR)
    G = csr_matrix((np.ones(keep.sum()), (src[keep], dst[keep])), shape=(K, K))
    _, comp = connected_components(G, directed=True, connection="strong")
    leaves = np.ones(comp.max() + 1, dtype=bool)
    leaves[np.unique(comp[src[keep]][comp[src[keep]] != comp[dst[keep]]])] = False
    closed = np.flatnonzero(leaves)
    if closed.size != 1:
        raise PiamiValueError(
            f"{name} has {closed.size} closed classes of mixed states; "
            "C_mu needs an ergodic process"
        )
    rec = np.flatnonzero(comp == closed[0])
    pos = -np.ones(K, dtype=np.int64)
    pos[rec] = np.arange(rec.size)
    sub_nxt = np.where(nxt[rec] >= 0, pos[np.maximum(nxt[rec], 0)], -1)
    sub_p = np.clip(probs[rec], 0.0, None)
    P = np.zeros((rec.size, rec.size))
    for x in range(nxt.shape[1]):
        ok = sub_nxt[:, x] >= 0
        np.add.at(P, (np.flatnonzero(ok), sub_nxt[ok, x]), sub_p[ok, x])
    pi = _stationary_of_chain(P)
    labels = _lump(sub_nxt, sub_p)
    return float(entropy(np.bincount(labels, weights=pi)))


__all__ = [
    "LN2",
    "EntropyRate",
    "block_entropies",
    "conditional_entropy_bounds",
    "entropy",
    "entropy_rate",
    "entropy_rate_blackwell",
    "excess_entropy",
    "is_unifilar",
    "myopic_entropies",
    "statistical_complexity",
    "to_bits",
]
