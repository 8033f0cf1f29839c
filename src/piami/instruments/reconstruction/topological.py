"""Enumeration of topological epsilon-machines (Johnson, Crutchfield, Ellison & McTague 2010).

A *topological* epsilon-machine over ``k`` symbols with ``n`` states is a labelled transition
structure ``delta(i, x) in {0..n-1, absent}`` that is

* deterministic (unifilar): at most one edge per (state, symbol);
* strongly connected, every state with at least one outgoing edge;
* minimal: no two states have the same future language (set of words that can be read from them),
  so that giving every outgoing edge of a state the same probability yields an epsilon-machine.
  Every other positive assignment of probabilities to the same edges is an epsilon-machine too,
  since distinct supports mean distinct future distributions (Strelioff & Crutchfield 2014).

Machines are counted up to relabelling the states (symbols keep their labels). The counts for a
binary alphabet are 3, 7, 78, 1388, 35186 for ``n = 1..5`` (Johnson et al. 2010, Table 1;
OEIS A181621).

Method (after Johnson et al. 2010: accessible-DFA generation pruned to epsilon-machines; here
vectorized over candidates):

1. Generate every transition string that is *BFS-canonical* from state 0: reading the table in
   the order (state 0, symbol 0), (state 0, symbol 1), ..., each entry is absent, an already
   numbered state, or the next unnumbered one; state ``p`` must be numbered before its row is
   read. These are exactly the accessible partial DFAs rooted at 0, one per isomorphism class of
   (automaton, start state). Rows without an outgoing edge are pruned as they complete.
2. Relabel every candidate by breadth-first search from each possible root. The candidate is
   strongly connected iff every root reaches all ``n`` states, and it is the class
   representative iff its own string is lexicographically no larger than every relabelling
   (so each machine is kept exactly once, automorphisms included).
3. Keep the minimal ones: Moore partition refinement with absent edges sent to a rejecting sink
   must end with ``n`` singleton blocks.

A machine is returned as an int64 array ``delta`` of shape ``(n_states, n_symbols)`` with
``delta[i, x] = j`` for the edge ``i --x--> j`` and ``-1`` where state ``i`` cannot emit ``x``.
The enumeration is exponential in ``n * k``: over two symbols ``n <= 4`` takes milliseconds and
``n = 5`` about a second; three symbols and three states (15598 machines) a fraction of a second.
Sizes whose candidate count ``(n+1)^(n k) / n!`` exceeds :data:`MAX_CANDIDATE_STRINGS` are
refused. Results are cached per ``(n, k)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError

__all__ = [
    "candidate_estimate",
    "canonical_form",
    "count_topological_machines",
    "is_topological_machine",
    "topological_machines",
]

ABSENT = -1
#: Largest estimated number of BFS-canonical candidate strings, ``(n+1)^(n k) / n!``, the
#: enumeration accepts (about 3e6 for 4 symbols and 3 states: 17 s; 5e5 for 2 symbols and 5
#: states: 1 s). Memory and time grow with it.
MAX_CANDIDATE_STRINGS = 5_000_000


def candidate_estimate(n_states: int, n_symbols: int) -> float:
    """Rough number of candidate strings the enumeration walks, ``(n+1)^(n k) / n!``."""
    return (n_states + 1) ** (n_states * n_symbols) / math.factorial(n_states)


def _check_size(
    n_states: object, n_symbols: object, limit: float = MAX_CANDIDATE_STRINGS
) -> tuple[int, int]:
    for name, value in (("n_states", n_states), ("n_symbols", n_symbols)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise PiamiValueError(f"{name} must be an int >= 1, got {value!r}")
    n, k = int(n_states), int(n_symbols)
    est = candidate_estimate(n, k)
    if est > limit:
        raise PiamiValueError(
            f"enumerating topological machines with n_states={n} over n_symbols={k} is too large "
            f"(about {est:.3g} candidate tables, limit {limit:.3g}); use fewer states or symbols"
        )
    return n, k


def _bfs_candidates(n: int, k: int) -> np.ndarray:
    """Every BFS-canonical accessible string rooted at 0, no state without an edge: ``(R, n*k)``."""
    strings = np.zeros((1, 0), dtype=np.int8)
    count = np.ones(1, dtype=np.int8)  # states numbered so far (the root is 0)
    options = np.arange(-1, n, dtype=np.int8)
    for t in range(n * k):
        p, x = divmod(t, k)
        if x == 0:  # state p's row starts: it must already be numbered (accessibility)
            keep = count > p
            strings, count = strings[keep], count[keep]
        # Allowed targets: absent, any numbered state, or the next new one (if any left).
        top = np.minimum(count, n - 1)
        ok = options[None, :] <= top[:, None]
        rows, cols = np.nonzero(ok)
        choice = options[cols]
        strings = np.concatenate([strings[rows], choice[:, None]], axis=1)
        count = count[rows] + (choice == count[rows]).astype(np.int8)
        if x == k - 1:  # row complete: the state needs an outgoing edge
            keep = (strings[:, p * k : (p + 1) * k] != ABSENT).any(axis=1)
            strings, count = strings[keep], count[keep]
    return strings[count == n]


def _relabel(delta: np.ndarray, root: int) -> tuple[np.ndarray, np.ndarray]:
    """BFS relabelling of each ``(R, n, k)`` table from ``root``: strings and states reached."""
    R, n, k = delta.shape
    ar = np.arange(R)
    label = np.full((R, n), -1, dtype=np.int8)
    order = np.zeros((R, n), dtype=np.int8)
    label[:, root] = 0
    order[:, 0] = root
    cnt = np.ones(R, dtype=np.int8)
    out = np.full((R, n * k), ABSENT, dtype=np.int8)
    for p in range(n):
        alive = cnt > p
        s = order[:, p]
        for x in range(k):
            tgt = delta[ar, s, x]
            has = alive & (tgt >= 0)
            tg = np.where(has, tgt, 0)
            new = has & (label[ar, tg] < 0)
            label[ar[new], tg[new]] = cnt[new]
            order[ar[new], cnt[new]] = tg[new]
            cnt = cnt + new.astype(np.int8)
            out[:, p * k + x] = np.where(has, label[ar, tg], ABSENT)
    return out, cnt


def _lex_leq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``a <= b`` in lexicographic order."""
    diff = a != b
    first = diff.argmax(axis=1)
    ar = np.arange(a.shape[0])
    return ~diff.any(axis=1) | (a[ar, first] < b[ar, first])


def _minimal(delta: np.ndarray) -> np.ndarray:
    """Whether each ``(R, n, k)`` table has pairwise distinct future languages (Moore)."""
    R, n, k = delta.shape
    ar = np.arange(R)[:, None]
    block = np.zeros((R, n), dtype=np.int64)
    base = n + 1
    for _ in range(n):
        sig = block.copy()
        for x in range(k):
            tgt = delta[:, :, x]
            nxt = np.where(tgt >= 0, block[ar, np.maximum(tgt, 0)] + 1, 0)
            sig = sig * base + nxt
        # New block of each state: the first state with the same signature.
        new = (sig[:, :, None] == sig[:, None, :]).argmax(axis=2)
        if np.array_equal(new, block):
            break
        block = new
    return (block == np.arange(n)[None, :]).all(axis=1)


@functools.lru_cache(maxsize=32)
def _machine_array(n: int, k: int) -> np.ndarray:
    """All topological machines with ``n`` states over ``k`` symbols, ``(E, n, k)`` int8."""
    strings = _bfs_candidates(n, k)
    delta = strings.reshape(-1, n, k)
    keep = np.ones(len(delta), dtype=bool)
    for root in range(1, n):
        relabelled, reached = _relabel(delta, root)
        keep &= reached == n
        keep &= _lex_leq(strings, relabelled)
        delta, strings, keep = delta[keep], strings[keep], keep[keep]
    # Root 0 reaches every state by construction; rooted elsewhere strong connectivity was checked.
    delta = delta[_minimal(delta)] if n > 1 else delta
    delta.setflags(write=False)
    return delta


def topological_machines(n_states: int, n_symbols: int = 2) -> list[np.ndarray]:
    """Every topological epsilon-machine with exactly ``n_states`` states, up to isomorphism.

    Johnson, Crutchfield, Ellison & McTague 2010 ("Enumerating finitary processes", Table 1):
    deterministic, strongly connected, minimal labelled transition structures, each state with an
    outgoing edge, one per class under relabelling of states.

    Args:
        n_states: number of states ``n >= 1``.
        n_symbols: alphabet size ``k >= 1``.

    Returns:
        A list of int64 arrays ``delta`` of shape ``(n_states, n_symbols)``: ``delta[i, x]`` is the
        state reached from ``i`` on symbol ``x``, or ``-1`` where ``i`` cannot emit ``x``. Each is
        in canonical form (its breadth-first numbering from state 0 is the lexicographically
        smallest over start states).

    Raises:
        PiamiValueError: a size below 1, or a table space too large to enumerate.

    Examples:
        >>> [m.tolist() for m in topological_machines(1)]
        [[[-1, 0]], [[0, -1]], [[0, 0]]]
        >>> len(topological_machines(3))
        78
    """
    n, k = _check_size(n_states, n_symbols)
    return [d.astype(np.int64) for d in _machine_array(n, k)]


def count_topological_machines(n_states: int, n_symbols: int = 2) -> int:
    """Number of topological epsilon-machines (OEIS A181621 for ``n_symbols = 2``).

    Args:
        n_states: number of states ``n >= 1``.
        n_symbols: alphabet size ``k >= 1``.

    Returns:
        ``E(n, k)``: 3, 7, 78, 1388, 35186 for ``n = 1..5``, ``k = 2``.

    Examples:
        >>> [count_topological_machines(n) for n in (1, 2, 3)]
        [3, 7, 78]
    """
    n, k = _check_size(n_states, n_symbols)
    return len(_machine_array(n, k))


def _check_table(delta: object) -> np.ndarray:
    d = np.asarray(delta)
    if d.dtype.kind not in "iu":
        raise PiamiTypeError(f"delta must be an integer array, got dtype {d.dtype}")
    if d.ndim != 2 or d.size == 0:
        raise PiamiShapeError(
            f"delta must be a non-empty (n_states, n_symbols) array, got shape {d.shape}"
        )
    n = d.shape[0]
    if d.min() < ABSENT or d.max() >= n:
        raise PiamiValueError(f"delta entries must lie in -1..{n - 1} (-1 = no edge), got {d}")
    return d.astype(np.int8)


def canonical_form(delta: object) -> np.ndarray:
    """The representative of a strongly connected transition table's isomorphism class.

    The states are renumbered in breadth-first order (symbols in order) from every start state;
    the lexicographically smallest table wins, the form :func:`topological_machines` returns.

    Args:
        delta: integer array ``(n_states, n_symbols)``, entries in ``-1..n_states-1``.

    Returns:
        int64 ``(n_states, n_symbols)``: two tables are isomorphic iff their forms are equal.

    Raises:
        PiamiTypeError: not an integer array.
        PiamiShapeError: not 2-D or empty.
        PiamiValueError: an entry out of range, or a table that is not strongly connected.

    Examples:
        >>> canonical_form([[1, 0], [-1, 0]]).tolist()  # golden mean, started in the 1-loop state
        [[-1, 1], [0, 1]]
    """
    table = _check_table(delta)
    n, k = table.shape
    best = None
    for root in range(n):
        s, reached = _relabel(table[None], root)
        if reached[0] != n:
            raise PiamiValueError(
                f"delta is not strongly connected: from state {root} only {int(reached[0])} of "
                f"{n} states are reachable"
            )
        if best is None or _lex_leq(s, best)[0]:
            best = s
    return best[0].reshape(n, k).astype(np.int64)


def is_topological_machine(delta: object) -> bool:
    """Whether a transition table is a topological epsilon-machine (any state labelling).

    Args:
        delta: integer array ``(n_states, n_symbols)``, entries in ``-1..n_states-1``.

    Returns:
        True iff every state has an outgoing edge, the graph is strongly connected and no two
        states have the same future language.

    Raises:
        PiamiTypeError: not an integer array.
        PiamiShapeError: not 2-D or empty.
        PiamiValueError: an entry outside ``-1..n_states-1``.

    Examples:
        >>> is_topological_machine([[0, 1], [0, -1]])  # the golden mean
        True
        >>> is_topological_machine([[1, -1], [0, -1]])  # period 2 on one symbol: states agree
        False
    """
    d = _check_table(delta)
    n = d.shape[0]
    if not (d >= 0).any(axis=1).all():
        return False
    table = d[None]
    for root in range(n):
        if _relabel(table, root)[1][0] != n:
            return False
    return bool(_minimal(table)[0])
