"""Bayesian structural inference over topological epsilon-machines (Strelioff & Crutchfield 2014).

Strelioff & Crutchfield, "Bayesian structural inference for hidden processes", Phys. Rev. E 89,
042119 (2014). The candidate model set is every topological epsilon-machine (labelled transition
structure, :mod:`~piami.instruments.reconstruction.topological`) with ``min_states..max_states``
states over the alphabet. For a topology ``M`` and a start state ``s0`` the symbol sequence is
either a path of ``M`` from ``s0`` (unifilarity makes the state path unique) or impossible. Along
the path, ``n(s, x)`` counts the edges ``s --x-->`` taken. With independent Dirichlet priors of
concentration ``alpha`` on each state's outgoing probabilities (only the edges present in ``M``),
the evidence of ``(M, s0)`` is the Dirichlet-multinomial integral

    P(D | M, s0) = prod_s  Gamma(k_s alpha) / Gamma(k_s alpha + n(s))
                           prod_{x : s --x--> present} Gamma(alpha + n(s, x)) / Gamma(alpha),

``k_s`` the out-degree of ``s`` and ``n(s) = sum_x n(s, x)``. The start state is marginalized
under a uniform prior: ``P(D | M) = (1/|M|) sum_s0 P(D | M, s0)``, and the topologies carry the
prior ``P(M) ∝ exp(-beta |M|)`` with ``|M|`` the number of states (``beta = 0`` is uniform over
topologies). Posterior model probabilities follow from Bayes' rule, all in log space with
``logsumexp``. Given ``(M, s0)`` the posterior of each state's outgoing probabilities is
``Dirichlet(alpha + n(s, .))``, with mean ``(alpha + n(s, x)) / (k_s alpha + n(s))``. (These are
the paper's expressions for the evidence, the start-state and model posteriors and the parameter
posterior; the equation numbers of the published version were not checked here.)

The path counts of all candidates (topology, start) are computed at once. The first 1024
symbols are walked one at a time, dropping the candidates that cannot produce them and merging the
start states of one topology that have reached the same state (their futures coincide). The rest
is cut into blocks of ``B`` symbols: the state reached after each block word is tabulated per
candidate, the walk jumps a block per step, and the edge counts are recovered from the histogram
of (candidate, block-start state, block word). Cost: ``O(N / B)`` vectorized steps over the
surviving candidates. Measured on 2 shared cores: golden mean, ``max_states = 3`` (88 topologies),
0.05 s at ``N = 10^4`` and 0.6 s at ``N = 10^6``; ``max_states = 5`` (36662 topologies, the
paper's model set), 3 s at ``N = 10^4`` and 7 s at ``N = 10^5``.

Only single sequences (1-D token arrays) are accepted: with several independent rows each row has
its own unknown start state and the marginal likelihood no longer has the closed form above.

The full one-state machine (every symbol allowed) accepts every sequence, so with
``min_states = 1`` some candidate is always possible; a sequence that no candidate can produce
(only with ``min_states > 1``) raises :class:`~piami.errors.PiamiValueError`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp, xlogy

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.reconstruction.result import Reconstruction
from piami.instruments.reconstruction.topological import _machine_array, candidate_estimate
from piami.instruments.statistics import check_tokens
from piami.processes.hmm import HiddenMarkovModel

__all__ = ["bsi"]

#: Most (topology, start state) candidates one call scores.
MAX_CANDIDATES = 1_000_000
#: Largest enumeration (estimated candidate tables per state count) a call may start; 2 symbols
#: and 5 states (the paper's model set) is about 5e5.
MAX_ENUMERATION = 1_000_000
_TABLE_BUDGET = 1 << 22  # entries of the block transition table (candidates x states x words)
_RECORD_BUDGET = 1 << 22  # entries of block-start states held at once
_MAX_BLOCK = 12
_PRELUDE = 1024  # symbols walked one at a time while impossible candidates are dropped
_SEGMENT = 8192  # first block-walk segment; later ones double


def _int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise PiamiValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _float(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise PiamiTypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise PiamiValueError(f"{name} must be finite{' and > 0' if positive else ''}, got {v}")
    return v


def _block_length(n_rows: int, n_cand: int, k: int, n: int) -> int:
    """Block length ``B <= n`` balancing the block tables against the walk.

    Cost model in array-element operations: the tables cost about ``3 n_rows k^B`` (build,
    transpose, histogram scan), the walk ``(n / B) (n_cand + 2000)`` (2000 ~ one Python step).
    """
    if k == 1:
        return max(1, min(n, 64))
    best, best_cost = 1, math.inf
    for b in range(1, min(n, _MAX_BLOCK) + 1):
        if n_rows * k**b > _TABLE_BUDGET:
            break
        cost = 3 * n_rows * k**b + (n / b) * (n_cand + 2000)
        if cost < best_cost:
            best, best_cost = b, cost
    return best


def _path_counts(
    delta: np.ndarray, starts: np.ndarray, seq: np.ndarray, group: np.ndarray | None = None
) -> tuple:
    """Edge counts along each candidate's path and its final state.

    The first ``_PRELUDE`` symbols are walked one at a time, the rest by blocks
    (:func:`_block_walk`) in segments of doubling length. At checkpoints (every 16 symbols in
    the prelude, after each segment) candidates that fell into the sink (cannot produce the
    sequence) are dropped, and candidates of one ``group`` (one topology, different start states)
    that stand in the same state are merged: their future paths coincide, so one walks on and the
    others inherit its counts from then on.

    Args:
        delta: ``(M, S1, k)`` int transition tables; state ``S1 - 1`` is an absorbing sink that
            stands for "no such edge".
        starts: ``(M,)`` start states.
        seq: 1-D int64 symbols in ``0..k-1``.
        group: ``(M,)`` int labels; candidates with equal labels must have equal tables
            (default: all distinct).

    Returns:
        ``counts (M, S1, k)`` int64 (meaningless for candidates that end in the sink) and the
        final states ``(M,)``.
    """
    M, S1, k = delta.shape
    sink = S1 - 1
    N = seq.size
    dflat = delta.reshape(-1).astype(np.int64)
    counts = np.zeros((M, S1 * k), dtype=np.int64)
    cflat = counts.reshape(-1)
    final = np.full(M, sink, dtype=np.int64)
    gid = np.arange(M, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    idx = np.arange(M, dtype=np.int64)
    state = starts.astype(np.int64).copy()
    events = []  # (merged candidates, their representatives, representatives' counts then)

    def checkpoint(idx: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alive = state != sink
        idx, state = idx[alive], state[alive]
        _, first, inv = np.unique(gid[idx] * S1 + state, return_index=True, return_inverse=True)
        if first.size < idx.size:
            rep = idx[first][inv.ravel()]
            gone = rep != idx
            events.append((idx[gone], rep[gone], counts[rep[gone]].copy()))
            idx, state = idx[first], state[first]
        return idx, state

    n0 = min(N, _PRELUDE)
    for t in range(n0):
        pos = (idx * S1 + state) * k + seq[t]
        cflat[pos] += 1  # one position per candidate: no repeated index
        state = dflat[pos]
        if (t + 1) % 16 == 0 or t + 1 == n0:
            idx, state = checkpoint(idx, state)
    t, seg = n0, _SEGMENT
    while idx.size and t < N:
        part = seq[t : t + seg]
        sub_counts, state = _block_walk(delta[idx], state, part)
        counts[idx] += sub_counts.reshape(idx.size, S1 * k)
        t += part.size
        seg *= 2
        idx, state = checkpoint(idx, state)
    final[idx] = state
    # Later merges first: a representative may itself have been merged afterwards.
    for gone, rep, then in reversed(events):
        counts[gone] += counts[rep] - then
        final[gone] = final[rep]
    return counts.reshape(M, S1, k), final


def _block_walk(delta: np.ndarray, starts: np.ndarray, seq: np.ndarray) -> tuple:
    """Edge counts along each candidate's path and its final state, a block at a time.

    Args:
        delta: ``(M, S1, k)`` int transition tables; state ``S1 - 1`` is an absorbing sink that
            stands for "no such edge".
        starts: ``(M,)`` start states.
        seq: 1-D int64 symbols in ``0..k-1``.

    Returns:
        ``counts (M, S1, k)`` int64 (meaningless for candidates that end in the sink) and the
        final states ``(M,)``.
    """
    M, S1, k = delta.shape
    N = seq.size
    rows = M * S1
    B = _block_length(rows, M, k, N)
    KB = k**B
    dflat = delta.reshape(rows, k).astype(np.int64)
    base = (np.arange(M, dtype=np.int64) * S1)[:, None]
    # fin[b][r, w]: state reached from row r = (m, s) after the length-b word with code w
    # (first symbol most significant).
    # States fit in int8 (the topology enumeration caps them far lower).
    fin = [np.tile(np.arange(S1, dtype=np.int8), M)[:, None]]
    row_of = np.repeat(base[:, 0], S1)[:, None]
    for _ in range(B):
        prev = fin[-1]
        fin.append(dflat[row_of + prev].reshape(rows, -1).astype(np.int8))
    jump = np.ascontiguousarray(fin[B].T)  # (KB, rows)

    nb = N // B
    state = starts.astype(np.int64).copy()
    flat_base = base[:, 0]
    hist = np.zeros(rows * KB, dtype=np.float64)
    if nb:
        powers = k ** np.arange(B - 1, -1, -1, dtype=np.int64)
        words = seq[: nb * B].reshape(nb, B) @ powers
        chunk = max(1, _RECORD_BUDGET // M)
        for c0 in range(0, nb, chunk):
            w = words[c0 : c0 + chunk]
            rec = np.empty((w.size, M), dtype=np.int64)
            for j, wj in enumerate(w):
                rec[j] = state
                state = jump[wj][flat_base + state]
            keys = (flat_base[None, :] + rec) * KB + w[:, None]
            hist += np.bincount(keys.ravel(), minlength=rows * KB)
    counts = np.zeros(rows * k, dtype=np.float64)
    r, w = np.nonzero(hist.reshape(rows, KB))
    if r.size:
        h = hist.reshape(rows, KB)[r, w]
        m_base = (r // S1) * S1
        for j in range(B):
            prefix = w // k ** (B - j)
            sym = (w // k ** (B - 1 - j)) % k
            st = fin[j][r, prefix]
            counts += np.bincount((m_base + st) * k + sym, weights=h, minlength=rows * k)
    counts = np.rint(counts).astype(np.int64)
    for x in seq[nb * B :]:
        idx = (flat_base + state) * k + x
        counts[idx] += 1
        state = dflat.ravel()[idx]
    return counts.reshape(M, S1, k), state


def _summary(values: np.ndarray, credibility: float) -> dict:
    lo, hi = np.quantile(values, [(1 - credibility) / 2, (1 + credibility) / 2])
    return {
        "mean": float(values.mean()),
        "low": float(lo),
        "high": float(hi),
        "std": float(values.std()),
        "unit": "nats",
    }


def _sample_measures(
    delta: np.ndarray, present: np.ndarray, post_alpha: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Entropy rate and statistical complexity (nats) of machines drawn from their posteriors.

    Args:
        delta: ``(D, n, k)`` transition tables (entries ``0..n-1`` where ``present``).
        present: ``(D, n, k)`` bool edge masks.
        post_alpha: ``(D, n, k)`` Dirichlet parameters (ignored where not present).
        rng: random generator.
    """
    D, n, _ = delta.shape
    g = rng.gamma(np.where(present, post_alpha, 1.0)) * present
    theta = g / g.sum(axis=2, keepdims=True)
    P = np.zeros((D, n, n))
    d_idx = np.arange(D)[:, None, None]
    i_idx = np.arange(n)[None, :, None]
    np.add.at(P, (d_idx, i_idx, np.where(present, delta, 0)), theta)
    A = np.swapaxes(P, 1, 2) - np.eye(n)[None]
    A[:, -1, :] = 1.0
    b = np.zeros((D, n))
    b[:, -1] = 1.0
    pi = np.linalg.solve(A, b[..., None])[..., 0]
    pi = np.clip(pi, 0.0, None)
    pi /= pi.sum(axis=1, keepdims=True)
    h_state = -xlogy(theta, theta).sum(axis=2)
    return (pi * h_state).sum(axis=1) + 0.0, -xlogy(pi, pi).sum(axis=1) + 0.0  # no -0.0


def bsi(
    tokens: object,
    *,
    max_states: int = 3,
    min_states: int = 1,
    n_symbols: int | None = None,
    alpha: float = 1.0,
    beta: float = 0.0,
    n_draws: int = 2000,
    credibility: float = 0.95,
    sample_from: str = "mixture",
    min_posterior: float = 1e-4,
    rng: np.random.Generator | None = None,
) -> Reconstruction:
    """Bayesian structural inference of an epsilon-machine from one symbol sequence.

    Strelioff & Crutchfield 2014 (Phys. Rev. E 89, 042119): exact marginal likelihoods of every
    topological epsilon-machine with ``min_states..max_states`` states (Dirichlet-multinomial
    evidence per topology and start state, start state marginalized uniformly), posterior model
    probabilities, and Dirichlet posteriors of the transition probabilities (module docstring).

    Args:
        tokens: 1-D integer sequence of symbols ``0..n_symbols-1`` (a ``(1, N)`` array is read as
            its one row).
        max_states: largest number of states of a candidate topology.
        min_states: smallest number of states (1 keeps the one-state machines, which accept any
            sequence).
        n_symbols: alphabet size; defaults to ``max(tokens) + 1``.
        alpha: concentration of the symmetric Dirichlet prior on each state's outgoing edges
            (the paper uses 1, uniform).
        beta: model prior ``P(M) ∝ exp(-beta * n_states(M))``; 0 (default) is uniform over
            topologies.
        n_draws: machines drawn from the posterior for the entropy-rate and statistical-complexity
            intervals.
        credibility: mass of the equal-tailed credible intervals.
        sample_from: ``"mixture"`` draws topologies from their posterior (which the paper finds
            reflects the uncertainty better); ``"map"`` draws only from the MAP topology.
        min_posterior: topologies with at least this posterior probability are listed in
            ``details["topologies"]`` (the MAP is always listed).
        rng: generator for the posterior draws; ``None`` uses a fixed seed (0).

    Returns:
        A :class:`Reconstruction` with ``method="bsi"``; ``machine`` is the posterior-mean
        :class:`HiddenMarkovModel` of the MAP topology (``T[x, i, delta(i, x)]`` is the posterior
        mean of ``Pr(x | i)``, averaged over the posterior of the start state). ``details`` holds
        (probabilities as floats, entropies in nats):

        - ``map``: ``{"n_states", "transitions", "posterior", "log_evidence",
          "start_state_posterior", "current_state_posterior"}`` (``transitions[i][x]`` is the
          next state, ``-1`` for no edge; ``current_state_posterior`` is over the state after
          the last symbol);
        - ``topologies``: the same keys (less the state posteriors) for every topology with
          posterior ``>= min_posterior``, most probable first; ``listed_mass`` is their total;
        - ``posterior_n_states``: ``{"n_states": [...], "posterior": [...]}``;
        - ``n_topologies``, ``n_possible`` (topologies that can produce the sequence),
          ``log_evidence`` (``ln P(D)`` over the whole model set);
        - ``entropy_rate``, ``statistical_complexity``: ``{"mean", "low", "high", "std",
          "unit"}`` over ``n_draws`` posterior machines, plus ``credibility``, ``sample_from``;
        - ``alpha``, ``beta``, ``min_states``, ``max_states``, ``n_draws``.

    Raises:
        PiamiTypeError: tokens not integers, or a non-numeric parameter.
        PiamiShapeError: tokens with more than one row.
        PiamiValueError: a bad parameter, a model set too large to score, or a sequence that no
            topology with ``min_states..max_states`` states can produce.

    Example:
        >>> import numpy as np
        >>> from piami.processes import from_spec
        >>> x = from_spec("golden_mean").sample(1, 2000, rng=np.random.default_rng(0))[0]
        >>> rec = bsi(x, max_states=2, rng=np.random.default_rng(1))
        >>> rec.n_states, rec.details["map"]["transitions"]
        (2, [[-1, 1], [0, 1]])
    """
    seq, k = check_tokens(tokens, n_symbols)
    if seq.ndim == 2:
        if seq.shape[0] != 1:
            raise PiamiShapeError(
                f"bsi reads one sequence (1-D tokens), got shape {seq.shape}: with several rows "
                "each has its own unknown start state and the evidence has no closed form; pass "
                "one row (tokens[i]), or tokens.ravel() only if the rows are consecutive pieces "
                "of one stream"
            )
        seq = seq[0]
    max_states = _int("max_states", max_states, 1)
    min_states = _int("min_states", min_states, 1)
    if min_states > max_states:
        raise PiamiValueError(f"min_states={min_states} exceeds max_states={max_states}")
    alpha = _float("alpha", alpha, positive=True)
    beta = _float("beta", beta, positive=False)
    n_draws = _int("n_draws", n_draws, 1)
    credibility = _float("credibility", credibility, positive=True)
    if credibility >= 1:
        raise PiamiValueError(f"credibility must lie in (0, 1), got {credibility}")
    min_posterior = _float("min_posterior", min_posterior, positive=True)
    if sample_from not in ("mixture", "map"):
        raise PiamiValueError(f"sample_from must be 'mixture' or 'map', got {sample_from!r}")
    if rng is None:
        rng = np.random.default_rng(0)
    elif not isinstance(rng, np.random.Generator):
        raise PiamiTypeError(f"rng must be a numpy Generator or None, got {type(rng)}")

    # Candidate set: every topology, padded to S = max_states states plus a sink S.
    S = max_states
    tables, sizes = [], []
    n_cand = 0
    for n in range(min_states, max_states + 1):
        if candidate_estimate(n, k) > MAX_ENUMERATION:
            raise PiamiValueError(
                f"max_states={max_states} over {k} symbols is too large a model set (enumerating "
                f"the {n}-state topologies walks ~{candidate_estimate(n, k):.3g} tables, limit "
                f"{MAX_ENUMERATION:.0e}); lower max_states"
            )
    for n in range(min_states, max_states + 1):
        arr = _machine_array(n, k)
        n_cand += len(arr) * n
        if n_cand > MAX_CANDIDATES:
            raise PiamiValueError(
                f"too many candidates: topologies with up to {n} states over {k} symbols give "
                f"more than {MAX_CANDIDATES} (topology, start state) pairs; lower max_states "
                f"(now {max_states}) or the alphabet"
            )
        pad = np.full((len(arr), S + 1, k), S, dtype=np.int64)
        pad[:, :n] = np.where(arr >= 0, arr, S)
        tables.append(pad)
        sizes.append(np.full(len(arr), n, dtype=np.int64))
    delta = np.concatenate(tables)  # (G, S+1, k)
    size = np.concatenate(sizes)  # (G,)
    G = len(delta)
    if G == 0:
        raise PiamiValueError(
            f"no topological epsilon-machine has {min_states}..{max_states} states over {k} "
            "symbols; lower min_states"
        )
    present = delta != S  # the sink row is all False
    cand_topo = np.repeat(np.arange(G), size)
    cand_start = np.concatenate([np.arange(n) for n in size])

    counts, final = _path_counts(delta[cand_topo], cand_start, seq, cand_topo)
    possible = final != S
    if not possible.any():
        raise PiamiValueError(
            f"no topological epsilon-machine with {min_states}..{max_states} states "
            f"(max_states={max_states}) over {k} symbols can produce this sequence of "
            f"{seq.size} symbols; raise max_states or lower min_states (the full one-state "
            "machine accepts every sequence)"
        )

    # ln P(D | M, s0) over the possible candidates.
    pres = present[cand_topo][:, :S]  # (C, S, k)
    n_sx = counts[:, :S]
    deg = pres.sum(axis=2)
    n_s = n_sx.sum(axis=2)
    used = deg > 0
    degf = np.where(used, deg, 1) * alpha
    row = np.where(used, gammaln(degf) - gammaln(degf + n_s), 0.0)
    cell = np.where(pres, gammaln(alpha + n_sx) - gammaln(alpha), 0.0).sum(axis=2)
    log_ev_cand = np.where(possible, (row + cell).sum(axis=1), -np.inf)

    # ln P(D | M) with a uniform start state; ln P(M | D) with the prior exp(-beta |M|).
    ends = np.cumsum(size)
    starts_at = ends - size
    log_ev = np.logaddexp.reduceat(log_ev_cand, starts_at) - np.log(size)
    log_joint = log_ev - beta * size
    log_z = logsumexp(log_joint)
    post = np.exp(log_joint - log_z)
    g_map = int(np.argmax(log_joint))

    def topo_entry(g: int) -> dict:
        n = int(size[g])
        return {
            "n_states": n,
            "transitions": np.where(present[g, :n], delta[g, :n], -1).tolist(),
            "posterior": float(post[g]),
            "log_evidence": float(log_ev[g]),
        }

    # MAP topology: start-state posterior and posterior-mean machine.
    n_map = int(size[g_map])
    sl = slice(int(starts_at[g_map]), int(ends[g_map]))
    w_start = np.exp(log_ev_cand[sl] - logsumexp(log_ev_cand[sl]))
    pres_map = present[g_map, :n_map]
    a_post = alpha + counts[sl, :n_map].astype(np.float64)  # (n_map starts, n_map, k)
    a_post = np.where(pres_map[None], a_post, 0.0)
    theta = (w_start[:, None, None] * a_post / a_post.sum(axis=2, keepdims=True)).sum(axis=0)
    T = np.zeros((k, n_map, n_map))
    ii, xx = np.nonzero(pres_map)
    T[xx, ii, delta[g_map, ii, xx]] = theta[ii, xx]
    machine = HiddenMarkovModel(T, name="bsi")
    current = np.zeros(n_map)
    np.add.at(current, final[sl][possible[sl]], w_start[possible[sl]])

    # Posterior draws of (topology, start, probabilities) -> h_mu, C_mu.
    log_cand_joint = log_ev_cand - np.log(size[cand_topo]) - beta * size[cand_topo]
    if sample_from == "map":
        log_cand_joint = np.where(cand_topo == g_map, log_cand_joint, -np.inf)
    p_cand = np.exp(log_cand_joint - logsumexp(log_cand_joint))
    draws = rng.choice(p_cand.size, size=n_draws, p=p_cand)
    h_all = np.empty(n_draws)
    c_all = np.empty(n_draws)
    for n in np.unique(size[cand_topo[draws]]):
        sel = np.flatnonzero(size[cand_topo[draws]] == n)
        d = draws[sel]
        g = cand_topo[d]
        h_all[sel], c_all[sel] = _sample_measures(
            delta[g, :n], present[g, :n], alpha + counts[d, :n], rng
        )

    ranked = np.argsort(-post, kind="stable")
    listed = [int(g) for g in ranked if post[g] >= min_posterior or g == g_map]
    n_values = np.arange(min_states, max_states + 1)
    details = {
        "map": {
            **topo_entry(g_map),
            "start_state_posterior": w_start.tolist(),
            "current_state_posterior": current.tolist(),
        },
        "topologies": [topo_entry(g) for g in listed],
        "posterior_n_states": {
            "n_states": n_values.tolist(),
            "posterior": [float(post[size == n].sum()) for n in n_values],
        },
        "listed_mass": float(post[listed].sum()),
        "n_topologies": int(G),
        "n_possible": int(np.isfinite(log_ev).sum()),
        "log_evidence": float(logsumexp(log_ev - beta * size) - logsumexp(-beta * size)),
        "entropy_rate": _summary(h_all, credibility),
        "statistical_complexity": _summary(c_all, credibility),
        "credibility": credibility,
        "sample_from": sample_from,
        "alpha": alpha,
        "beta": beta,
        "min_states": min_states,
        "max_states": max_states,
        "n_draws": n_draws,
    }
    return Reconstruction(
        method="bsi", machine=machine, n_symbols=k, n_samples=int(seq.size), details=details
    )
