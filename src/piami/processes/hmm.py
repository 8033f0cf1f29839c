"""Edge-emitting hidden Markov models: ``T[x, i, j] = Pr(emit x, go to j | in i)``.

From state ``i`` the process emits symbol ``x`` and moves to state ``j`` with probability
``T[x, i, j]``, so ``T`` has shape ``(n_symbols, n_states, n_states)`` and
``sum_x sum_j T[x, i, j] = 1`` for every ``i`` (Rabiner 1989 uses state-emitting models; the
edge-emitting convention is that of computational mechanics, Shai et al. 2024). The exact side
(beliefs, entropies, mixed states) comes from
:class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel`.

Sampling is vectorized over sequences and loops over time only. Each step draws, for every sequence
at once, the pair (symbol, next state) from the flattened row ``T[:, s, :]`` of its current state by
one uniform number against precomputed cumulative sums; exact beliefs, when asked for, update in the
same step by one batched product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.processes._checks import as_tensor, check_count
from piami.processes.ghmm import GeneralizedHiddenMarkovModel, HMMSample
from piami.theory import information as _info

ROW_TOL = 1e-9  # how far a row of sum_x T[x] may be from summing to 1


class HiddenMarkovModel(GeneralizedHiddenMarkovModel):
    """An edge-emitting hidden Markov model, ``T[x, i, j] = Pr(emit x, go to j | in i)``.

    Args:
        T: ``(n_symbols, n_states, n_states)`` non-negative array whose ``sum_x T[x]`` is
            row-stochastic (within 1e-9; rows are then renormalized exactly).
        name: display name (defaults to ``"hmm"``).

    Raises:
        PiamiShapeError: wrong rank, empty axes or non-square ``T[x]``.
        PiamiValueError: a negative or non-finite entry, or a row not summing to 1; the message
            names the state.

    Example:
        >>> import numpy as np
        >>> coin = HiddenMarkovModel(np.array([[[0.5]], [[0.5]]]), name="coin")
        >>> coin.sample(2, 3, rng=np.random.default_rng(0)).shape
        (2, 3)
    """

    _spec_kind = "hmm"

    def __init__(self, T: Any, *, name: str | None = None) -> None:
        A = as_tensor(T)
        neg = A < 0
        if neg.any():
            x, i, j = (int(v) for v in np.argwhere(neg)[0])
            raise PiamiValueError(
                f"T has a negative entry T[{x}, {i}, {j}] = {A[x, i, j]:.6g} (state {i}); "
                "an HMM needs probabilities >= 0 "
                "(use GeneralizedHiddenMarkovModel for signed presentations)"
            )
        rows = A.sum(axis=(0, 2))
        off = np.abs(rows - 1.0) > ROW_TOL
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise PiamiValueError(
                f"state {i}: sum over symbols x and next states j of T[x, {i}, j] is "
                f"{rows[i]:.12g}, expected 1 (within {ROW_TOL}); "
                "each state must emit some symbol and go somewhere"
            )
        self.T = A / rows[None, :, None]
        self._right = None
        self.name = name or "hmm"
        self._spec = None
        self._pi = None
        # Sampling tables. Row s of ``cum`` is the cumulative distribution of the flattened pairs
        # (x, j) from state s; shifting row s by s makes the rows disjoint intervals (s, s + 1], so
        # one searchsorted of ``s + u`` over all rows draws every sequence's pair at once.
        S = self.n_states
        flat = self.T.transpose(1, 0, 2).reshape(S, -1)
        cum = np.cumsum(flat, axis=1)
        cum /= cum[:, -1:]
        self._cat = (cum + np.arange(S)[:, None]).ravel()
        # largest pair index of positive probability in each row (guards float rounding at u ~ 1)
        self._lastpos = flat.shape[1] - 1 - np.argmax(flat[:, ::-1] > 0, axis=1)

    def is_unifilar(self) -> bool:
        """True when each state and symbol determine the next state."""
        return _info.is_unifilar(self.T)

    def sample(
        self,
        n_seqs: int,
        seq_len: int,
        *,
        rng: np.random.Generator,
        return_states: bool = False,
        return_beliefs: bool = False,
        return_probs: bool = False,
    ) -> np.ndarray | HMMSample:
        """Sample ``n_seqs`` sequences of ``seq_len`` symbols from the stationary process.

        The first hidden state is drawn from the stationary distribution; each step draws every
        sequence's (symbol, next state) pair at once. Beliefs and next-token probabilities, when
        asked for, are the exact Bayesian ones (normalized every step) computed in the same loop.

        Args:
            n_seqs: number of sequences (>= 1).
            seq_len: symbols per sequence (>= 0).
            rng: numpy random generator; the same seed gives the same tokens whatever flags are set.
            return_states: also return the hidden states (see :class:`HMMSample`).
            return_beliefs: also return the exact beliefs (see :class:`HMMSample`).
            return_probs: also return the exact next-token probabilities (see :class:`HMMSample`).

        Returns:
            int64 ``(n_seqs, seq_len)`` when no ``return_*`` flag is set, else an
            :class:`HMMSample`.
        """
        n_seqs = check_count("n_seqs", n_seqs, 1)
        seq_len = check_count("seq_len", seq_len, 0)
        if not isinstance(rng, np.random.Generator):
            raise PiamiTypeError(
                "rng must be a numpy Generator, e.g. np.random.default_rng(0); got "
                f"{type(rng).__name__}"
            )
        n, X, S = n_seqs, self.n_symbols, self.n_states
        pi = self.stationary_distribution()
        cpi = np.cumsum(pi)
        cpi /= cpi[-1]
        state = np.minimum(np.searchsorted(cpi, rng.random(n), side="right"), S - 1)
        tokens = np.empty((seq_len, n), dtype=np.int64)
        states = np.empty((seq_len + 1, n), dtype=np.int64) if return_states else None
        B = np.empty((n, seq_len + 1, S)) if return_beliefs else None
        P = np.empty((n, seq_len + 1, X)) if return_probs else None
        exact = return_beliefs or return_probs
        cat, lastpos, XS = self._cat, self._lastpos, X * S
        # exact beliefs, time-major with sequences on the fast axis (see theory.beliefs)
        Wt = np.ascontiguousarray(self.T.transpose(0, 2, 1).reshape(XS, S))  # [x*S + j, i]
        Wrt = np.ascontiguousarray(self.T.sum(axis=2))  # [x, i] = Pr(x | i)
        eta = np.repeat(pi[:, None], n, axis=1)  # (n_states, n)
        cols = np.arange(n)
        offs = (np.arange(S) * n)[:, None]
        for t in range(seq_len + 1):
            if states is not None:
                states[t] = state
            if B is not None:
                B[:, t] = eta.T
            if P is not None:
                P[:, t] = (Wrt @ eta).T
            if t == seq_len:
                break
            k = np.searchsorted(cat, state + rng.random(n), side="right")
            k -= state * XS
            np.minimum(k, lastpos[state], out=k)
            x = k // S
            tokens[t] = x
            state = k - x * S
            if exact:  # eta' = eta T[x] / (eta T[x] 1), every sequence at once
                nxt = (Wt @ eta).ravel()[x * (S * n) + cols + offs]
                eta = nxt / nxt.sum(axis=0)
        tokens = np.ascontiguousarray(tokens.T)
        if not (return_states or exact):
            return tokens
        return HMMSample(
            tokens=tokens,
            states=np.ascontiguousarray(states.T) if states is not None else None,
            beliefs=B,
            next_token_probs=P,
        )


__all__ = ["GeneralizedHiddenMarkovModel", "HMMSample", "HiddenMarkovModel"]
