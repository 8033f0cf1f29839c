"""Causal-State Splitting Reconstruction (CSSR; Shalizi & Klinkner 2004).

Shalizi & Klinkner, "Blind construction of optimal nonlinear recursive predictors for discrete
sequences", UAI 2004, pp. 504-511 (arXiv:cs/0406011). The causal states of a process are the
classes of pasts with the same conditional distribution of the future (Shalizi & Crutchfield 2001);
CSSR estimates them from one sample by growing suffixes one symbol further into the past, grouping
them by their next-symbol distribution ("morph"), then splitting the groups until every transition
is deterministic. The result is a unifilar hidden Markov model, the estimated epsilon-machine.

The steps, for ``L = max_length`` over an alphabet of ``k`` symbols:

1. **Initialization.** One state holding the empty suffix.
2. **Homogenization (sufficiency).** For ``l = 0, 1, ..., L``: for each state ``s`` (in order of
   creation), for each suffix ``x`` of length ``l`` in ``s`` (in code order), for each symbol
   ``a``, the child ``a x`` (one symbol older) is tested against ``s``: the null hypothesis is
   that its next-symbol counts and the pooled counts of ``s`` (all suffixes in ``s``, as the
   morph ``P(X | s)`` of the paper, taken once at the start of ``s``) come from one
   distribution. A child that passes a test of size ``alpha`` joins ``s``; otherwise it joins
   the first other state (in order of creation) it passes against, else a new state. Children
   never seen are skipped. Tests: ``"chi2"``, Pearson's chi-square test of homogeneity of the
   2 x k table (degrees of freedom: observed symbols - 1); ``"ks"``, the two-sample
   Kolmogorov-Smirnov test of the paper on the cumulative distributions over symbols
   ``0..k-1``, with the asymptotic p-value and Stephens' small-sample correction
   ``(sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)) D`` (Press et al., Numerical Recipes, sec. 14.3).
3. **Determinization (recursion).** The states are the classes of the suffixes of length ``L``;
   suffix ``z`` moves on symbol ``b`` to the state of its exact successor ``y = z b`` (length
   ``L + 1``, placed by step 2, so never truncated). A state whose suffixes reach different
   states on one symbol is split, the successors seen most often staying, until each (state,
   symbol) pair has one successor. Which state of its class ``y`` stands for, in this order:
   that of its suffix ``y[1:]`` when step 2 put both in one class (the older symbol changed
   nothing); the only state of its class; when its class has been split (``y``'s own
   transitions lie beyond the counted words), the state of its class that the other suffixes of
   ``z``'s state reach on ``b`` most often; else that of ``y[1:]`` (truncation). Suffixes never
   followed by a symbol are "don't care" for it, as in the reference implementation. Suffixes
   shorter than ``L`` only guide step 2.
4. **Recurrent part.** Transient states are dropped: the machine is the closed strongly
   connected class of the state graph visited most often. ``T[x, i, j] = n_i(x) / n_i`` for the
   successor ``j`` of ``i`` on ``x``, from the counts ``n_i(x)`` of the suffixes of ``i``
   followed by ``x``.

Using the exact successor ``z b`` (as the reference C++ implementation of Klinkner and Shalizi
does for its next-to-longest suffixes) rather than the truncation ``(z b)[1:]`` keeps a process
that is not Markov of any order, such as the even process, at its true states: the suffix
``1...1`` of unknown parity is a transient state instead of a recurrent one.

Counting: all words of length ``L + 2`` (within rows) are packed into int64 codes and sorted once
(:func:`~piami.instruments.entropy.ngram_codes`); every shorter word is counted as the end of
those windows (the suffix marginals of that one table, re-sorted over its distinct entries only),
so the suffix tree is closed and exactly consistent: the suffix ``x`` of a counted ``a x`` is
counted, and ``n(x b) = sum_a n(a x b)``. The loops run over distinct suffixes (at most
``k ** (L + 1)``), never over the data.

Data rule: ``k ** (L + 1) <= n``, ``n`` the number of windows of length ``L + 2``, i.e.
``L + 1 <= log n / log k``: each of the ``k ** (L + 1)`` suffixes of the longest length could be
seen at least once. This is the block-length condition of Marton & Shields (1994) for consistent
estimates of block distributions, ``L <= log n / (h + eps)``, with the entropy rate ``h`` bounded
by its largest value ``log k`` (the data do not tell ``h`` before the model is built).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

from piami._limits import check_memory
from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments.entropy import ngram_codes
from piami.instruments.reconstruction.result import Reconstruction
from piami.instruments.statistics import check_tokens
from piami.processes.hmm import HiddenMarkovModel

__all__ = ["CORRECTIONS", "MAX_STATES", "TESTS", "cssr"]

#: Names of the significance tests :func:`cssr` accepts.
TESTS = ("chi2", "ks")
#: Multiple-testing corrections :func:`cssr` accepts.
CORRECTIONS = ("none", "bonferroni")
#: Most states a reconstruction may have: its dense ``T`` takes ``8 k n**2`` bytes and the exact
#: tools on it (stationary distribution, entropies) cost ``O(n**3)``.
MAX_STATES = 20_000


def cssr(
    tokens: Any,
    *,
    max_length: int,
    alpha: float = 0.001,
    test: str = "chi2",
    n_symbols: int | None = None,
    correction: str = "none",
) -> Reconstruction:
    """Reconstruct the epsilon-machine of a symbol sequence by CSSR (Shalizi & Klinkner 2004).

    Args:
        tokens: int symbols ``0..k-1``: a 1-D sequence, or a 2-D ``(n_seqs, seq_len)`` array of
            independent rows (histories never cross rows).
        max_length: ``L``, the length of the suffixes that make up the states (>= 1). Suffixes
            are grown to length ``L + 1`` and words of length ``L + 2`` are counted. It must be
            at least the synchronization length of the process for an exact reconstruction
            (1 for the golden mean); a process with no finite synchronization (RRXOR, Mess3)
            gives more states as ``L`` grows, with an entropy rate falling towards the true one.
        alpha: size of each significance test, in (0, 1). Smaller values split less; 0.001 is
            the default of the reference implementation (Klinkner & Shalizi's CSSR program).
        test: ``"chi2"`` (chi-square test of homogeneity) or ``"ks"`` (Kolmogorov-Smirnov, as
            in the paper).
        n_symbols: alphabet size ``k`` (default: largest symbol + 1); symbols never seen get
            probability 0.
        correction: ``"none"`` (the paper: every test has size ``alpha``, so about
            ``alpha * k ** (L + 1)`` suffixes of the longest length split off by chance, and
            determinization multiplies each such false state: an i.i.d. sequence of 10^6 fair
            bits gives 9 states at ``L = 8``) or ``"bonferroni"`` (each test at length ``l`` has
            size ``alpha / m_l``, ``m_l`` the suffixes of length ``l`` tested, so ``alpha``
            bounds the chance of any false split per length; less power on weak structure).

    Returns:
        a :class:`~piami.instruments.reconstruction.result.Reconstruction` with ``method =
        "cssr"`` and a unifilar :class:`~piami.processes.hmm.HiddenMarkovModel` as ``machine``.
        ``details``: ``histories`` (per state, its suffixes of length ``L`` as strings, oldest
        symbol first; symbols separated by spaces when ``k > 10``), ``state_counts`` (how often
        each state's suffixes were seen), ``test``, ``alpha``, ``n_windows`` (words of length
        ``L + 2`` counted), ``n_homogenized_states`` (classes after step 2, all lengths),
        ``n_splits`` (states added by determinization), ``n_states_before_pruning``,
        ``n_recurrent_classes`` (closed classes found; the most visited is kept),
        ``dropped_count`` (transitions ``z -> b`` seen whose successor ``z b`` is never
        followed by a symbol within its row, so has no state; left out of ``T``).

    Raises:
        PiamiTypeError: tokens not integer, or ``max_length`` / ``n_symbols`` not an int.
        PiamiValueError: ``max_length < 1``; rows shorter than ``max_length + 2``; too few
            windows for ``max_length`` (``k ** (max_length + 1) > n``) or an alphabet too large
            for the data; ``alpha`` outside (0, 1); an unknown ``test`` or ``correction``; a
            machine over :data:`MAX_STATES` states or over the memory limit.

    Example:
        >>> from piami.processes import from_spec
        >>> x = from_spec("golden_mean").sample(10, 1000, rng=np.random.default_rng(0))
        >>> rec = cssr(x, max_length=3)
        >>> rec.n_states, round(float(rec.machine.entropy_rate() / np.log(2)), 2)
        (2, 0.67)
    """
    tokens, k = check_tokens(tokens, n_symbols)
    length = _check_max_length(max_length)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise PiamiTypeError(f"alpha must be a float in (0, 1), got {alpha!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise PiamiValueError(f"alpha must be in (0, 1) (e.g. 0.001), got {alpha!r}")
    alpha = float(alpha)
    if test not in TESTS:
        raise PiamiValueError(f"test must be one of {TESTS}, got {test!r}")
    if correction not in CORRECTIONS:
        raise PiamiValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    depth = length + 1  # longest suffix grown by homogenization
    row_len = tokens.shape[-1]
    if row_len < depth + 1:
        raise PiamiValueError(
            f"max_length={length} needs rows of at least {depth + 1} symbols (words of length "
            f"max_length + 2), got {row_len}; lower max_length or pass longer sequences"
        )
    n_rows = 1 if tokens.ndim == 1 else tokens.shape[0]
    n_windows = n_rows * (row_len - depth)
    _check_enough_data(k, length, n_windows)
    if (depth + 1) * max(1, math.ceil(math.log2(max(k, 2)))) > 62:
        raise PiamiValueError(
            f"words of length {depth + 1} over {k} symbols do not fit the exact int64 codes; "
            "lower max_length or remap the alphabet to fewer symbols"
        )

    levels = _suffix_tree(tokens, depth, k)
    classes, n_classes = _homogenize(levels, k, alpha, test, correction)
    blk, n_splits, tgt = _determinize(levels, classes, k, length)
    machine_T, kept, info = _recurrent_machine(levels[length], blk, tgt)

    act_codes = levels[length][0]
    counts = levels[length][1].sum(axis=1)
    histories = [[_word(c, length, k) for c in act_codes[blk == b]] for b in kept]
    details = {
        "histories": histories,
        "state_counts": [int(counts[blk == b].sum()) for b in kept],
        "test": test,
        "alpha": alpha,
        "correction": correction,
        "n_windows": int(n_windows),
        "n_homogenized_states": int(n_classes),
        "n_splits": int(n_splits),
        "n_states_before_pruning": int(blk.max() + 1),
        **info,
    }
    return Reconstruction(
        method="cssr",
        machine=HiddenMarkovModel(machine_T, name=f"cssr(L={length})"),
        n_symbols=k,
        n_samples=int(tokens.size),
        max_length=length,
        details=details,
    )


# -- validation ---------------------------------------------------------------------------------
def _check_max_length(max_length: object) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
        raise PiamiTypeError(f"max_length must be an int >= 1, got {max_length!r}")
    if max_length < 1:
        raise PiamiValueError(
            f"max_length must be >= 1 (the suffix length of the states), got {max_length}"
        )
    return int(max_length)


def _check_enough_data(k: int, length: int, n_windows: int) -> None:
    """The data rule ``k ** (L + 1) <= n`` (module docstring)."""
    if k <= 1:
        return
    if k**2 > n_windows:
        raise PiamiValueError(
            f"an alphabet of {k} symbols is too large for {n_windows} windows: even "
            f"max_length=1 needs k**2 = {k**2} <= windows; map the symbols to a smaller "
            "alphabet (n_symbols counts unseen ids too) or pass more data"
        )
    if k ** (length + 1) > n_windows:
        best = math.floor(math.log(n_windows) / math.log(k) + 1e-9) - 1
        raise PiamiValueError(
            f"too few symbols for max_length={length}: CSSR needs k**(max_length+1) = "
            f"{k ** (length + 1)} <= {n_windows} windows of length max_length+2 (every suffix "
            f"of length max_length+1 seen about once; Marton & Shields 1994) over k={k} "
            f"symbols; use max_length <= {best} or pass at least {k ** (length + 1) + length + 1} "
            "symbols"
        )


# -- counting -----------------------------------------------------------------------------------
def _suffix_tree(tokens: np.ndarray, depth: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per suffix length ``l = 0..depth``: sorted suffix codes and their next-symbol counts.

    One sort of the int64 codes of the words of length ``depth + 1``; every shorter word is
    counted as the end of those windows, so a counted suffix's own suffixes are counted and
    ``n(x b) = sum_a n(a x b)`` holds exactly. A suffix ``x_0 .. x_{l-1}`` (oldest first) has
    code ``sum_i x_i k**(l-1-i)``.
    """
    words, counts = np.unique(ngram_codes(tokens, depth + 1, k), return_counts=True)
    levels = []
    for ell in range(depth + 1):
        ends = words % (k ** (ell + 1)) if k > 1 else words  # last ell + 1 symbols
        w, inv = np.unique(ends, return_inverse=True)
        wc = np.bincount(inv, weights=counts, minlength=w.size).astype(np.int64)
        hist, sym = np.divmod(w, k)
        hstarts = np.flatnonzero(np.concatenate(([True], hist[1:] != hist[:-1])))
        row = np.repeat(np.arange(hstarts.size), np.diff(np.append(hstarts, hist.size)))
        nxt = np.zeros((hstarts.size, k), dtype=np.int64)
        nxt[row, sym] = wc
        levels.append((hist[hstarts], nxt))
    return levels


def _find(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each ``query`` code in the sorted ``codes``, -1 where absent."""
    pos = np.searchsorted(codes, query)
    pos_c = np.minimum(pos, codes.size - 1)
    return np.where((pos < codes.size) & (codes[pos_c] == query), pos_c, -1)


def _word(code: int, length: int, k: int) -> str:
    syms = []
    c = int(code)
    for _ in range(length):
        c, s = divmod(c, k)
        syms.append(s)
    return (" " if k > 10 else "").join(str(s) for s in reversed(syms))


# -- significance tests -------------------------------------------------------------------------
class _Test:
    """Vectorized two-sample test of next-symbol counts: rows of ``a`` against rows of ``b``."""

    def __init__(self, name: str, alpha: float, k: int) -> None:
        self.name = name
        if name == "chi2":
            dof = np.arange(max(k, 2))
            self.crit = np.where(dof > 0, stats.chi2.isf(alpha, np.maximum(dof, 1)), np.inf)
        else:
            self.crit_ks = float(stats.kstwobign.isf(alpha))

    def differs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """True where the null hypothesis (one distribution) is rejected at size alpha."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        a, b = np.broadcast_arrays(a, b)
        n1 = a.sum(axis=-1, keepdims=True)
        n2 = b.sum(axis=-1, keepdims=True)
        if self.name == "chi2":
            col = a + b
            seen = col > 0
            tot = n1 + n2
            with np.errstate(divide="ignore", invalid="ignore"):
                e1 = n1 * col / tot
                e2 = n2 * col / tot
                terms = np.where(seen, (a - e1) ** 2 / e1 + (b - e2) ** 2 / e2, 0.0)
            stat = terms.sum(axis=-1)
            dof = seen.sum(axis=-1) - 1
            return stat > self.crit[dof]
        d = np.abs(np.cumsum(a, axis=-1) / n1 - np.cumsum(b, axis=-1) / n2).max(axis=-1)
        ne = (n1 * n2 / (n1 + n2))[..., 0]
        sq = np.sqrt(ne)
        return (sq + 0.12 + 0.11 / sq) * d > self.crit_ks


# -- step 2: homogenization ---------------------------------------------------------------------
def _homogenize(
    levels: list[tuple[np.ndarray, np.ndarray]],
    k: int,
    alpha: float,
    test: str,
    correction: str,
    *,
    make_tester: Callable[[float], Any] | None = None,
) -> tuple[list[np.ndarray], int]:
    """Class of every suffix of every length (Shalizi & Klinkner's sufficiency step).

    ``make_tester(alpha)`` builds the two-sample test (an object with ``differs(a, b)``); the
    default is :class:`_Test` on the ``k`` next symbols. The transducer reconstruction passes a
    test of the output laws per input.
    """
    if make_tester is None:
        make_tester = lambda a: _Test(test, a, k)  # noqa: E731
    tester = make_tester(alpha)
    classes = [np.full(codes.size, -1, dtype=np.int64) for codes, _ in levels]
    classes[0][0] = 0
    pooled = np.zeros((16, k), dtype=np.float64)  # pooled next-symbol counts per state
    pooled[0] = levels[0][1][0]
    n_states = 1
    sym_shift = np.arange(k, dtype=np.int64)
    for ell in range(len(levels) - 1):
        codes, _ = levels[ell]
        child_codes_all, child_next = levels[ell + 1]
        if correction == "bonferroni":
            tester = make_tester(alpha / child_codes_all.size)
        cls = classes[ell]
        order = np.argsort(cls, kind="stable")
        bounds = np.searchsorted(cls[order], np.arange(n_states + 1))
        for s in range(n_states):  # states made at this level hold no suffix of length ell
            members = order[bounds[s] : bounds[s + 1]]
            if members.size == 0:
                continue
            query = (codes[members][:, None] + sym_shift[None, :] * (k**ell)).ravel()
            children = _find(child_codes_all, query)
            children = children[children >= 0]
            c_next = child_next[children]
            reject = tester.differs(c_next, pooled[s])  # against the morph at the start of s
            stay = children[~reject]
            classes[ell + 1][stay] = s
            pooled[s] += c_next[~reject].sum(axis=0)
            for child in children[reject]:
                c = child_next[child]
                other = tester.differs(c, pooled[:n_states])
                other[s] = True
                match = np.flatnonzero(~other)
                if match.size:
                    target = int(match[0])
                else:
                    target = n_states
                    n_states += 1
                    if n_states > pooled.shape[0]:
                        pooled = np.concatenate([pooled, np.zeros_like(pooled)])
                classes[ell + 1][child] = target
                pooled[target] += c
    return classes, n_states


# -- step 3: determinization --------------------------------------------------------------------
def _determinize(
    levels: list[tuple[np.ndarray, np.ndarray]], classes: list[np.ndarray], k: int, length: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """Split the classes of the length-``L`` suffixes until transitions are deterministic.

    Returns the block (state) of each length-``L`` suffix, the number of splits, and the block
    each suffix reaches on each symbol (-1 where ``z b`` is unseen or has no state).
    """
    act_codes, act_next = levels[length]
    pas_codes, _ = levels[length + 1]
    cls_act = classes[length]
    cls_pas = classes[length + 1]
    n_act = act_codes.size
    succ = _find(pas_codes, (act_codes[:, None] * k + np.arange(k)[None, :]).ravel())
    succ = succ.reshape(n_act, k)
    parent = _find(act_codes, pas_codes % (k**length) if k > 1 else pas_codes)
    inherit = (parent >= 0) & (cls_pas == np.where(parent >= 0, cls_act[parent], -2))
    n_cls = int(max(cls_act.max(), cls_pas.max())) + 1

    # initial blocks: the homogenized classes present among the length-L suffixes, renumbered
    uniq_cls, blk = np.unique(cls_act, return_inverse=True)
    blk = blk.astype(np.int64)
    blk_class = uniq_cls.astype(np.int64)
    n_splits = 0
    while True:
        n_blk = blk_class.size
        tgt = _successor_blocks(blk, blk_class, n_cls, succ, parent, inherit, cls_pas, act_next)
        split_any = False
        # blocks that reach more than one block on some symbol
        bad = np.zeros(n_blk, dtype=bool)
        for x in range(k):
            ok = tgt[:, x] >= 0
            pairs = np.unique(np.stack([blk[ok], tgt[ok, x]], axis=1), axis=0)
            if pairs.size:
                nb = np.bincount(pairs[:, 0], minlength=n_blk)
                bad |= nb > 1
        for b in np.flatnonzero(bad):
            members = np.flatnonzero(blk == b)
            for x in range(k):
                t = tgt[members, x]
                seen = t >= 0
                u, inv = np.unique(t[seen], return_inverse=True)
                if u.size <= 1:
                    continue
                w = np.bincount(inv, weights=act_next[members[seen], x], minlength=u.size)
                keep = int(np.argmax(w))
                moved = members[seen]
                for g in range(u.size):
                    if g == keep:
                        continue
                    blk[moved[inv == g]] = blk_class.size
                    blk_class = np.append(blk_class, blk_class[b])
                    n_splits += 1
                split_any = True
                break
        if not split_any:
            break
    return blk, n_splits, tgt


def _successor_blocks(
    blk: np.ndarray,
    blk_class: np.ndarray,
    n_cls: int,
    succ: np.ndarray,
    parent: np.ndarray,
    inherit: np.ndarray,
    cls_pas: np.ndarray,
    act_next: np.ndarray,
) -> np.ndarray:
    """Block reached by each length-``L`` suffix ``z`` on each symbol ``x`` (-1: none).

    The successor ``y = z x`` (length ``L + 1``) takes, in this order: the block of its suffix
    ``y[1:]`` when both are in one class; the block of its class when that class has one; the
    block of its class that the other suffixes of ``z``'s block reach on ``x`` most often; the
    block of ``y[1:]`` (truncation).
    """
    k = succ.shape[1]
    n_of_class = np.bincount(blk_class, minlength=n_cls)
    only = np.full(n_cls, -1, dtype=np.int64)  # the block of a class with exactly one block
    single = n_of_class[blk_class] == 1
    only[blk_class[single]] = np.flatnonzero(single)
    par_blk = np.where(parent >= 0, blk[np.maximum(parent, 0)], -1)
    multi = ~inherit & (n_of_class[cls_pas] > 1)  # decided by the block's other suffixes
    lab = np.where(inherit, par_blk, only[cls_pas])
    lab = np.where((lab < 0) & ~multi, par_blk, lab)
    sidx = np.maximum(succ, 0)
    seen = succ >= 0
    tgt = np.where(seen & ~multi[sidx], lab[sidx], -1)
    wild_r, wild_x = np.nonzero(seen & multi[sidx])
    if wild_r.size:
        rows, xs = np.nonzero(tgt >= 0)
        t = tgt[rows, xs]
        key = (blk[rows] * k + xs) * n_cls + blk_class[t]  # (block, symbol, class reached)
        o = np.lexsort((-act_next[rows, xs], key))  # most frequent first within a key
        key, t = key[o], t[o]
        first = np.concatenate(([True], key[1:] != key[:-1]))
        wclass = cls_pas[succ[wild_r, wild_x]]
        pos = _find(key[first], (blk[wild_r] * k + wild_x) * n_cls + wclass)
        fallback = par_blk[succ[wild_r, wild_x]]
        tgt[wild_r, wild_x] = np.where(pos >= 0, t[first][np.maximum(pos, 0)], fallback)
    return tgt


# -- step 4: recurrent part and the machine -----------------------------------------------------
def _recurrent_machine(
    level: tuple[np.ndarray, np.ndarray], blk: np.ndarray, tgt: np.ndarray
) -> tuple[np.ndarray, list[int], dict[str, Any]]:
    """``T`` on the most visited closed class of the block graph, its blocks, and diagnostics."""
    _, act_next = level
    k = act_next.shape[1]
    n_blk = int(blk.max()) + 1
    ok = tgt >= 0
    rows, syms = np.nonzero(ok)
    src = blk[rows]
    dst = tgt[rows, syms]
    n_bx = np.zeros((n_blk, k))
    np.add.at(n_bx, (src, syms), act_next[rows, syms])
    delta = np.full((n_blk, k), -1, dtype=np.int64)
    delta[src, syms] = dst  # deterministic after step 3
    adj = sparse.csr_matrix((np.ones(src.size), (src, dst)), shape=(n_blk, n_blk))
    n_comp, comp = connected_components(adj, directed=True, connection="strong")
    exits = np.zeros(n_comp, dtype=bool)  # components with an edge out of them
    exits[comp[src[comp[src] != comp[dst]]]] = True
    has_edge = np.zeros(n_comp, dtype=bool)
    has_edge[comp[src]] = True
    weight = np.bincount(comp, weights=n_bx.sum(axis=1), minlength=n_comp)
    closed = [c for c in range(n_comp) if has_edge[c] and not exits[c]]
    if not closed:
        raise PiamiValueError(
            "CSSR found no recurrent states (every state leads to an unplaced history); pass "
            "more data or a smaller max_length"
        )
    best = max(closed, key=lambda c: weight[c])
    kept = [int(b) for b in np.flatnonzero(comp == best)]
    index = {b: i for i, b in enumerate(kept)}
    n = len(kept)
    fix = "lower max_length, or lower alpha so that fewer states split off"
    if n > MAX_STATES:
        raise PiamiValueError(
            f"CSSR found {n:,} recurrent states, over the limit of {MAX_STATES:,} "
            f"(the machine's dense T and its exact theory would not fit); {fix}"
        )
    check_memory(4 * 8.0 * k * n * n, f"a CSSR machine with {n:,} states and {k} symbols", fix=fix)
    T = np.zeros((k, n, n))
    for i, b in enumerate(kept):
        total = n_bx[b].sum()
        for x in range(k):
            if n_bx[b, x] > 0:
                T[x, i, index[int(delta[b, x])]] = n_bx[b, x] / total
    info = {
        "n_recurrent_classes": len(closed),
        "dropped_count": int(act_next[(tgt < 0) & (act_next > 0)].sum()),
    }
    return T, kept, info
