"""The mixed-state presentation and the distribution of beliefs layer by layer.

The beliefs reachable from a root belief (see :mod:`piami.theory.beliefs`), with the symbol-labelled
transitions between them, form the *mixed-state presentation* (MSP; Crutchfield, Ellison & Riechers
2016; Shai et al. 2024, Fig. 1). It is finite for RRXOR (36 mixed states from the stationary root)
and infinite for Mess3, whose beliefs fill a fractal in the 2-simplex.

:func:`mixed_state_presentation` builds the MSP as a graph, breadth first, merging beliefs equal
within a tolerance. :func:`belief_layers` keeps only the *distribution* over beliefs at each depth,
which is all that block entropies and optimal losses need, and can therefore go deep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.theory.beliefs import PROB_FLOOR
from piami.typing import Float

# Coarse layers whose running minimum of h has not improved for this many depths end the expansion:
# the later entries repeat that minimum, still an upper bound since the exact h(L) never increases.
PLATEAU = 16


@dataclass(frozen=True)
class MixedStatePresentation:
    """The mixed-state presentation reached from a root belief, breadth first.

    Attributes:
        beliefs: ``(n_mixed, n_states)`` the distinct beliefs; row 0 is the root.
        next_state: ``(n_mixed, n_symbols)`` index of the belief after each symbol; -1 where the
            symbol has probability zero or the node was not expanded (beyond ``max_depth``).
        symbol_probs: ``(n_mixed, n_symbols)`` ``Pr(x | belief)``.
        depth: ``(n_mixed,)`` depth at which each belief was first reached.
        complete: True when every node was expanded and no new belief appeared: the presentation
            is closed (finite) and exact within the merging tolerance.
        tol: beliefs whose entries agree after rounding to multiples of ``tol`` were merged.
    """

    beliefs: np.ndarray
    next_state: np.ndarray
    symbol_probs: np.ndarray
    depth: np.ndarray
    complete: bool
    tol: float

    @property
    def n_states(self) -> int:
        """Number of distinct mixed states found."""
        return int(self.beliefs.shape[0])


def _row_keys(B: np.ndarray, spacing: float) -> np.ndarray:
    """One uint64 hash per row of the beliefs rounded to multiples of ``spacing``."""
    q = np.round(B / spacing).astype(np.int64).view(np.uint64)
    mult = np.array(
        [
            (0x9E3779B97F4A7C15 ^ (k * 0xBF58476D1CE4E5B9)) & 0xFFFFFFFFFFFFFFFF
            for k in range(B.shape[1])
        ],
        dtype=np.uint64,
    )
    mult |= np.uint64(1)
    h = np.zeros(B.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(B.shape[1]):
            h = (h ^ q[:, k]) * mult[k]
            h ^= h >> np.uint64(29)
    return h


def mixed_state_presentation(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    max_depth: int = 50,
    tol: float = 1e-9,
    max_states: int = 100_000,
) -> MixedStatePresentation:
    """Breadth-first mixed-state presentation from ``root``, merging beliefs equal within ``tol``.

    Args:
        T: transition tensor ``(n_symbols, n_states, n_states)``.
        root: starting belief (the stationary distribution gives the process's own MSP).
        right: principal right eigenvector (None: an HMM).
        max_depth: expand nodes up to this depth.
        tol: merging tolerance on belief entries.
        max_states: stop (with ``complete=False``) once this many mixed states are found.

    Returns:
        The :class:`MixedStatePresentation`. RRXOR from its stationary root gives 36 states.
    """
    if max_depth < 0 or max_states < 1 or not tol > 0:
        raise PiamiValueError(
            f"need max_depth >= 0, max_states >= 1, tol > 0; got {max_depth}, {max_states}, {tol}"
        )
    n_sym, n_st, _ = T.shape
    r = np.ones(n_st) if right is None else right
    Tr = T @ r  # (n_symbols, n_states)
    beliefs = [np.asarray(root, dtype=np.float64)]
    index = {int(_row_keys(beliefs[0][None], tol)[0]): 0}
    depth = [0]
    nxt: list[np.ndarray] = []
    sprobs: list[np.ndarray] = []
    frontier = [0]
    complete = True
    d = 0
    while frontier:
        if d >= max_depth:
            complete = False
            for _ in frontier:
                nxt.append(np.full(n_sym, -1, dtype=np.int64))
                sprobs.append(np.full(n_sym, np.nan))
            break
        B = np.stack([beliefs[k] for k in frontier])
        P = B @ Tr.T  # (K, n_symbols)
        U = np.einsum("ks,xsj->kxj", B, T)
        ok = P > PROB_FLOOR
        child = U / np.where(ok, P, 1.0)[:, :, None]
        keys = _row_keys(child.reshape(-1, n_st), tol).reshape(P.shape).tolist()
        links = np.full(P.shape, -1, dtype=np.int64)
        new_frontier = []
        for row in range(len(frontier)):
            for x in range(n_sym):
                if not ok[row, x]:
                    continue
                key = keys[row][x]
                j = index.get(key)
                if j is None:
                    if len(beliefs) >= max_states:
                        complete = False
                        continue
                    j = len(beliefs)
                    index[key] = j
                    beliefs.append(child[row, x])
                    depth.append(d + 1)
                    new_frontier.append(j)
                links[row, x] = j
        nxt.extend(links)
        sprobs.extend(P)
        frontier = new_frontier
        d += 1
    # nodes appended to nxt in BFS order equal node order; pad nodes never expanded
    while len(nxt) < len(beliefs):
        nxt.append(np.full(n_sym, -1, dtype=np.int64))
        sprobs.append(np.full(n_sym, np.nan))
    return MixedStatePresentation(
        beliefs=np.stack(beliefs),
        next_state=np.stack(nxt),
        symbol_probs=np.stack(sprobs),
        depth=np.asarray(depth, dtype=np.int64),
        complete=complete,
        tol=tol,
    )


@dataclass(frozen=True)
class BeliefLayers:
    """Distribution over beliefs at each depth of the mixed-state tree.

    Attributes:
        next_entropy: ``(depth + 1,)`` nats; entry t is ``E[H(X_t | eta_t)]`` = ``h(t + 1)``.
        n_beliefs: ``(depth + 1,)`` number of distinct beliefs kept at each depth.
        spacing: ``(depth + 1,)`` grid spacing used to merge beliefs at each depth (``tol`` while
            exact). Where it exceeds ``tol``, nearby beliefs were merged into their probability-
            weighted mean -- the exact belief given the coarser history -- so the raw entry is an
            upper bound on the exact ``h(t + 1)`` (conditioning on less raises entropy). Since the
            exact ``h(L)`` never increases with ``L``, the running minimum of upper bounds is again
            an upper bound; ``next_entropy`` holds that running minimum from the
            first coarse depth on.
    """

    next_entropy: np.ndarray
    n_beliefs: np.ndarray
    spacing: np.ndarray

    @property
    def exact_depth(self) -> int:
        """Number of leading entries computed without coarse merging."""
        coarse = np.flatnonzero(self.spacing > self.spacing[0])
        return int(coarse[0]) if coarse.size else int(self.spacing.size)


def _merge(B: np.ndarray, w: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge rows of ``B`` on the same grid point into their ``w``-weighted mean (sorted by key)."""
    keys = _row_keys(B, spacing)
    uniq, inv = np.unique(keys, return_inverse=True)
    wn = np.bincount(inv, weights=w, minlength=uniq.size)
    Bn = np.empty((uniq.size, B.shape[1]))
    for s in range(B.shape[1]):
        Bn[:, s] = np.bincount(inv, weights=w * B[:, s], minlength=uniq.size)
    return Bn / wn[:, None], wn


def belief_layers(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    depth: int,
    *,
    root: Float[np.ndarray, " n_states"],
    right: Float[np.ndarray, " n_states"] | None = None,
    tol: float = 1e-10,
    max_beliefs: int = 20_000,
    progress: bool = False,
) -> BeliefLayers:
    """Expand the mixed-state tree layer by layer and record the expected next-symbol entropy.

    ``H(X_t | X_<t) = sum_eta Pr(eta_t = eta) H[Pr(X | eta)]``: the distribution of beliefs at each
    depth is all that is needed, so identical beliefs are merged per layer (Crutchfield & Feldman
    2003, block entropies from the mixed-state tree). Finite presentations (RRXOR, golden mean) stay
    small and exact to any depth. Infinite ones (Mess3) grow as ``n_symbols^t``; once a layer holds
    more than ``max_beliefs`` beliefs they are merged on a grid whose spacing is doubled until they
    fit (see :class:`BeliefLayers` for what that does to the numbers). When a layer's distribution
    repeats the previous one exactly, every later layer is the same and the expansion stops; in the
    coarse regime it also stops once the running minimum has not improved for ``PLATEAU`` depths
    (the later entries then repeat it, which keeps them upper bounds).

    Args:
        T: transition tensor.
        depth: last depth; the result has ``depth + 1`` entries (``h(1) .. h(depth + 1)``).
        root: root belief.
        right: principal right eigenvector (None: an HMM).
        tol: beliefs equal after rounding to this grid are merged (exact merging).
        max_beliefs: largest layer kept before coarse merging.
        progress: show a tqdm bar.

    Returns:
        :class:`BeliefLayers`.
    """
    if depth < 0 or max_beliefs < 1 or not tol > 0:
        raise PiamiValueError(
            f"need depth >= 0, max_beliefs >= 1, tol > 0; got {depth}, {max_beliefs}, {tol}"
        )
    n_sym, n_st, _ = T.shape
    r = np.ones(n_st) if right is None else right
    W = np.ascontiguousarray(T.transpose(1, 0, 2).reshape(n_st, n_sym * n_st))
    Wr = np.ascontiguousarray((T @ r).T)
    B = np.asarray(root, dtype=np.float64)[None, :]
    w = np.ones(1)
    ent = np.empty(depth + 1)
    nb = np.empty(depth + 1, dtype=np.int64)
    sp = np.empty(depth + 1)
    spacing = tol
    best, stale = np.inf, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=depth + 1, desc="belief layers")
    t = 0
    while True:
        P = B @ Wr  # (K, n_symbols)
        Pc = np.clip(P, 0.0, None)
        logs = np.log(np.where(Pc > 0, Pc, 1.0))
        ent[t] = -float(w @ (Pc * logs).sum(axis=1))
        nb[t] = B.shape[0]
        sp[t] = spacing
        if bar is not None:
            bar.update(1)
        if t == depth:
            break
        if spacing > tol:  # coarse regime: stop once the running minimum has stalled
            if ent[t] < best - 1e-15:
                best, stale = ent[t], 0
            else:
                stale += 1
            if stale >= PLATEAU:
                ent[t + 1 :], nb[t + 1 :], sp[t + 1 :] = best, B.shape[0], spacing
                if bar is not None:
                    bar.update(depth - t)
                break
        else:
            best, stale = ent[t], 0
        U = (B @ W).reshape(-1, n_sym, n_st)
        cw = w[:, None] * P
        mask = P > PROB_FLOOR
        child = U[mask] / P[mask][:, None]
        Bn, wn = _merge(child, cw[mask], tol)
        while Bn.shape[0] > max_beliefs:
            spacing = spacing * 2 if spacing > tol else max(tol, 1e-6)
            Bn, wn = _merge(Bn, wn, spacing)
        if spacing > tol:
            Bn, wn = _merge(Bn, wn, spacing)
        wn = wn / wn.sum()
        t += 1
        if (
            Bn.shape == B.shape
            and np.array_equal(_row_keys(Bn, tol), _row_keys(B, tol))
            and np.abs(wn - w).max() <= 1e-15
            and np.abs(Bn - B).max() <= 1e-15
        ):  # stationary layer: all later layers repeat it
            ent[t:] = ent[t - 1]
            nb[t:] = nb[t - 1]
            sp[t:] = spacing
            if bar is not None:
                bar.update(depth + 1 - t)
            break
        B, w = Bn, wn
    if bar is not None:
        bar.close()
    first_coarse = np.flatnonzero(sp > tol)
    if first_coarse.size:
        k = int(first_coarse[0])
        ent[k:] = np.minimum.accumulate(ent[k - 1 :])[1:] if k > 0 else np.minimum.accumulate(ent)
    return BeliefLayers(next_entropy=ent, n_beliefs=nb, spacing=sp)


def unsynchronized_probability(
    T: Float[np.ndarray, "n_symbols n_states n_states"],
    length: int,
    *,
    root: Float[np.ndarray, " n_states"],
    tol: float = 1e-10,
) -> float:
    """Probability that a word of ``length`` symbols leaves the state uncertain.

    After the word ``w`` the belief is ``root T^(w) / |root T^(w)|``; the observer is
    *synchronized* when that belief is a single state (Crutchfield & Feldman 2003, Sec. V; Travers
    & Crutchfield 2011). This is ``sum_w Pr(w) [max_s eta_w(s) < 1]`` over the words of that length,
    computed layer by layer with equal beliefs merged (exact for the finite presentations of a
    unifilar HMM's words). For the even process it is ``Pr(1^L)``: every word with a 0 fixes the
    parity.

    Args:
        T: transition tensor of an HMM (non-negative entries).
        length: word length ``L >= 0``.
        root: the belief before the word (usually the stationary distribution).
        tol: beliefs equal after rounding to this grid are merged; a belief within ``tol`` of a
            single state counts as synchronized.

    Returns:
        the probability, in ``[0, 1]``.

    Example:
        >>> from piami.processes import even_process, golden_mean
        >>> p = even_process()
        >>> round(unsynchronized_probability(p.T, 3, root=p.stationary_distribution()), 6)
        0.333333
        >>> g = golden_mean()
        >>> unsynchronized_probability(g.T, 3, root=g.stationary_distribution())
        0.0
    """
    if length < 0 or not tol > 0:
        raise PiamiValueError(f"need length >= 0 and tol > 0, got {length} and {tol}")
    T = np.asarray(T, dtype=np.float64)
    if np.any(T < 0):
        raise PiamiValueError("unsynchronized_probability needs an HMM (non-negative T)")
    B = np.asarray(root, dtype=np.float64)[None, :] / np.sum(root)
    w = np.ones(1)
    for _ in range(length):
        nxt = np.einsum("bi,xij->xbj", B, T)  # (symbol, belief, state)
        mass = nxt.sum(axis=2)
        keep = mass > PROB_FLOOR
        B = nxt[keep] / mass[keep][:, None]
        w = (mass * w[None, :])[keep]
        B, w = _merge(B, w, tol)
    return float(np.clip(w[B.max(axis=1) < 1.0 - tol].sum(), 0.0, 1.0))


__all__ = [
    "BeliefLayers",
    "MixedStatePresentation",
    "belief_layers",
    "mixed_state_presentation",
    "unsynchronized_probability",
]
