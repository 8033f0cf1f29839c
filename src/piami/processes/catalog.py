"""The catalog of named hidden Markov processes.

Each function returns a :class:`~piami.processes.hmm.HiddenMarkovModel` whose ``spec`` rebuilds it
through :func:`piami.processes.from_spec`. States are numbered as listed in each docstring.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from piami._limits import check_memory
from piami.errors import PiamiTypeError, PiamiValueError
from piami.processes.hmm import HiddenMarkovModel


def _prob(fn: str, name: str, v: Any, lo: float = 0.0, hi: float = 1.0, *, open_lo=False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise PiamiTypeError(f"{fn}: parameter {name} must be a number; got {v!r}")
    v = float(v)
    ok = math.isfinite(v) and (v > lo if open_lo else v >= lo) and v <= hi
    if not ok:
        left = "(" if open_lo else "["
        raise PiamiValueError(f"{fn}: parameter {name} must lie in {left}{lo}, {hi}]; got {v!r}")
    return v


def _build(T: np.ndarray, name: str, spec: str) -> HiddenMarkovModel:
    proc = HiddenMarkovModel(T, name=name)
    proc._spec = spec
    return proc


def mess3(x: float = 0.15, a: float = 0.6) -> HiddenMarkovModel:
    """Mess3 (Marzen & Crutchfield 2017): 3 states, 3 symbols, non-unifilar.

    With ``b = (1 - a) / 2`` and ``y = 1 - 2x``: ``T[s, i, j] = (a if s == j else b) * (y if i == j
    else x)``: the state moves (stays with prob. ``y``), then emits a symbol that names the *new*
    state with prob. ``a``. The state matrix has eigenvalues ``{1, 1 - 3x, 1 - 3x}`` and the
    stationary distribution is uniform. Its mixed-state presentation is infinite (a fractal in the
    2-simplex). Shai et al. (2024) train on ``(0.05, 0.85)``.

    Args:
        x: probability of moving to each other state, in ``(0, 0.5]``.
        a: probability that the symbol names the new state, in ``[0, 1]``.
    """
    x = _prob("mess3", "x", x, 0.0, 0.5, open_lo=True)
    a = _prob("mess3", "a", a)
    b, y = (1.0 - a) / 2.0, 1.0 - 2.0 * x
    emit = np.full((3, 3), b) + (a - b) * np.eye(3)  # emit[s, j]
    move = np.full((3, 3), x) + (y - x) * np.eye(3)  # move[i, j]
    T = emit[:, None, :] * move[None, :, :]
    return _build(T, "mess3", f"mess3(x={x!r}, a={a!r})")


def rrxor(p1: float = 0.5, p2: float = 0.5) -> HiddenMarkovModel:
    """Random-random-XOR: two random bits then their XOR, repeated (5 states, 2 symbols, unifilar).

    States: 0 = S (start), 1 = "0" (first bit was 0), 2 = "1", 3 = T (XOR is 1), 4 = F (XOR is 0).
    S emits 0 with prob. ``p1`` (to "0") else 1 (to "1"); "0" emits 0 with prob. ``p2`` (to F) else
    1 (to T); "1" emits 0 with prob. ``p2`` (to T) else 1 (to F); T emits 1 and F emits 0, both to
    S. At ``p1 = p2 = 1/2``: stationary ``[2, 1, 1, 1, 1] / 6``, ``h = 2/3`` bit, ``C_mu = E =
    log2(6) - 1/3`` bits, 36 mixed states from the stationary root.
    """
    p1 = _prob("rrxor", "p1", p1)
    p2 = _prob("rrxor", "p2", p2)
    T = np.zeros((2, 5, 5))
    T[0, 0, 1], T[1, 0, 2] = p1, 1 - p1
    T[0, 1, 4], T[1, 1, 3] = p2, 1 - p2
    T[0, 2, 3], T[1, 2, 4] = p2, 1 - p2
    T[1, 3, 0] = 1.0
    T[0, 4, 0] = 1.0
    return _build(T, "rrxor", f"rrxor(p1={p1!r}, p2={p2!r})")


def z1r(p: float = 0.5) -> HiddenMarkovModel:
    """Zero-one-random: the period-3 pattern 0, 1, random (3 states, 2 symbols, unifilar).

    States 0 -> 1 -> 2 -> 0: state 0 emits 0, state 1 emits 1, state 2 emits **1 with probability
    p** (and 0 otherwise). (Two public libraries use opposite meanings of ``p``; here it is the
    probability of a 1.) Entropy rate ``H_b(p) / 3``.
    """
    p = _prob("z1r", "p", p)
    T = np.zeros((2, 3, 3))
    T[0, 0, 1] = 1.0
    T[1, 1, 2] = 1.0
    T[1, 2, 0], T[0, 2, 0] = p, 1 - p
    return _build(T, "z1r", f"z1r(p={p!r})")


def golden_mean(p: float = 0.5) -> HiddenMarkovModel:
    """Golden mean process: no two 0s in a row (2 states, 2 symbols, unifilar).

    State 0 (A) emits **0 with probability p** and goes to state 1 (B), else emits 1 and stays;
    B emits 1 and returns to A. At ``p = 1/2``: stationary ``[2/3, 1/3]``, ``h = 2/3`` bit.
    """
    p = _prob("golden_mean", "p", p)
    T = np.zeros((2, 2, 2))
    T[0, 0, 1], T[1, 0, 0] = p, 1 - p
    T[1, 1, 0] = 1.0
    return _build(T, "golden_mean", f"golden_mean(p={p!r})")


def even_process(p: float = 0.5) -> HiddenMarkovModel:
    """Even process: 1s come in blocks of even length (2 states, 2 symbols, unifilar).

    State 0 (A) emits **0 with probability p** and stays, else emits 1 and goes to state 1 (B);
    B emits 1 and returns to A. At ``p = 1/2``: ``h = 2/3`` bit, ``C_mu = E = H_b(1/3)`` bits.
    """
    p = _prob("even_process", "p", p)
    T = np.zeros((2, 2, 2))
    T[0, 0, 0], T[1, 0, 1] = p, 1 - p
    T[1, 1, 0] = 1.0
    return _build(T, "even_process", f"even_process(p={p!r})")


#: Largest random HMM the catalog draws: its exact quantities cost O(states^3) per call.
MAX_RANDOM_STATES = 1024
#: Largest alphabet of a random HMM.
MAX_RANDOM_SYMBOLS = 4096


def random_hmm(
    n_states: int, n_symbols: int, *, rng: np.random.Generator, concentration: float = 1.0
) -> HiddenMarkovModel:
    """A random HMM: each state's row over (symbol, next state) pairs drawn from a Dirichlet.

    Every entry is positive (so the process is ergodic and, generically, non-unifilar).

    Args:
        n_states: number of hidden states (>= 1).
        n_symbols: alphabet size (>= 1).
        rng: numpy random generator.
        concentration: Dirichlet concentration of every entry (small: sparse-looking rows).
    """
    for nm, v in (("n_states", n_states), ("n_symbols", n_symbols)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise PiamiTypeError(f"random_hmm: {nm} must be an int; got {v!r}")
        if v < 1:
            raise PiamiValueError(f"random_hmm: {nm} must be >= 1; got {v}")
    if not isinstance(rng, np.random.Generator):
        raise PiamiTypeError(
            f"random_hmm: rng must be a numpy Generator (np.random.default_rng(seed)); got {rng!r}"
        )
    c = _prob("random_hmm", "concentration", concentration, 0.0, math.inf, open_lo=True)
    if n_states > MAX_RANDOM_STATES or n_symbols > MAX_RANDOM_SYMBOLS:
        raise PiamiValueError(
            f"random_hmm: at most {MAX_RANDOM_STATES} states and {MAX_RANDOM_SYMBOLS} symbols "
            f"(the exact theory costs O(states^3) per call), got {n_states} and {n_symbols}; "
            "for a larger process build T yourself and call HiddenMarkovModel(T)"
        )
    # the Dirichlet draw, its normalized copy and T: three float64 arrays of S * X * S entries
    check_memory(
        3 * 8 * float(n_states) ** 2 * n_symbols,
        f"random_hmm(n_states={n_states}, n_symbols={n_symbols})",
        fix="use fewer states or symbols",
    )
    flat = rng.dirichlet(np.full(n_symbols * n_states, c), size=n_states)  # (S, X*S)
    flat = np.maximum(flat, 1e-12)
    flat /= flat.sum(axis=1, keepdims=True)
    T = flat.reshape(n_states, n_symbols, n_states).transpose(1, 0, 2)
    proc = HiddenMarkovModel(T, name="random_hmm")
    return proc


__all__ = ["even_process", "golden_mean", "mess3", "random_hmm", "rrxor", "z1r"]
