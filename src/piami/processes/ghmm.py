"""Generalized hidden Markov models and the exact side shared with ordinary HMMs.

A hidden Markov model (HMM, :mod:`piami.processes.hmm`) is *edge-emitting*: from state ``i`` it
emits symbol ``x`` and moves to state ``j`` with probability ``T[x, i, j]``. A *generalized* HMM
(Upper 1997; Balasubramanian 1993) drops the non-negativity: any real ``T`` whose words all get
non-negative probability ``Pr(w) = pi T[w_0] .. T[w_{L-1}] r``, with ``r`` the principal right
eigenvector of ``sum_x T[x]`` and ``pi`` the matching left one (``pi r = 1``). It has no hidden
states to sample, but beliefs, block entropies and the rest are defined the same way.

Everything here is delegated to :mod:`piami.theory`; sampling draws each symbol from the exact
next-symbol distribution, vectorized over sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.processes._checks import as_tensor, check_count, check_tokens
from piami.theory import beliefs as _beliefs
from piami.theory import information as _info
from piami.theory import mixed_state as _mixed
from piami.typing import Float


@dataclass(frozen=True)
class HMMSample:
    """What one call of :meth:`HiddenMarkovModel.sample` returns with any ``return_*`` flag set.

    Attributes:
        tokens: int64 ``(n_seqs, seq_len)``.
        states: int64 ``(n_seqs, seq_len + 1)``: hidden state before each token, then the final one
            (None unless ``return_states``).
        beliefs: float64 ``(n_seqs, seq_len + 1, n_states)``: ``beliefs[:, t] = Pr(S_t | x_<t)``;
            ``t = 0`` is the stationary root (None unless ``return_beliefs``).
        next_token_probs: float64 ``(n_seqs, seq_len + 1, n_symbols)``: ``[:, t] = Pr(X_t | x_<t)``
            (None unless ``return_probs``).
    """

    tokens: np.ndarray
    states: np.ndarray | None = None
    beliefs: np.ndarray | None = None
    next_token_probs: np.ndarray | None = None


class GeneralizedHiddenMarkovModel:
    """A generalized hidden Markov model: real ``T`` normalized by its principal eigenpair.

    Args:
        T: ``(n_symbols, n_states, n_states)`` real array. It is divided by the principal eigenvalue
            ``lambda`` of ``sum_x T[x]``; ``r`` (right eigenvector) and ``pi`` (left, ``pi r = 1``)
            define word probabilities ``pi T[w] r``.
        name: display name (defaults to ``"ghmm"``).

    Example:
        >>> import numpy as np
        >>> from piami.theory import to_bits
        >>> g = GeneralizedHiddenMarkovModel(2 * np.array([[[0.5]], [[0.5]]]))  # a fair coin, x2
        >>> round(to_bits(g.entropy_rate()), 6)
        1.0
    """

    _spec_kind = "ghmm"  # name under which from_spec rebuilds it from an explicit tensor

    def __init__(self, T: Any, *, name: str | None = None) -> None:
        A = as_tensor(T)
        self._init_from(A, name)

    def _init_from(self, A: np.ndarray, name: str | None) -> None:
        M = A.sum(axis=0)
        vals, vecs = np.linalg.eig(M)
        k = int(np.argmax(vals.real))
        lam = vals[k]
        if abs(lam.imag) > 1e-9 or lam.real <= 0:
            raise PiamiValueError(
                f"sum_x T[x] must have a real positive leading eigenvalue; got {lam:.6g}"
            )
        A = A / lam.real
        r = vecs[:, k].real
        r = r / r[np.argmax(np.abs(r))]
        self.T = A
        self._right = r
        self.name = name or "ghmm"
        self._spec: str | None = None
        self._pi: np.ndarray | None = None

    # -- description ---------------------------------------------------------------------------
    @property
    def n_symbols(self) -> int:
        """Alphabet size."""
        return int(self.T.shape[0])

    @property
    def n_states(self) -> int:
        """Number of (hidden or generalized) states."""
        return int(self.T.shape[1])

    @property
    def _r(self) -> np.ndarray | None:
        return self._right

    @property
    def spec(self) -> str:
        """A string that :func:`piami.processes.from_spec` turns back into this process."""
        if self._spec is not None:
            return self._spec
        return f"{self._spec_kind}(T={self.T.tolist()!r})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.spec if self._spec else self.name}, "
            f"n_symbols={self.n_symbols}, n_states={self.n_states})"
        )

    # -- exact side --------------------------------------------------------------------------------
    def stationary_distribution(self) -> Float[np.ndarray, " n_states"]:
        """Stationary distribution ``pi`` (``pi sum_x T[x] = pi``), shape ``(n_states,)``."""
        if self._pi is None:
            self._pi = _beliefs.stationary_distribution(self.T, self._r)
        return self._pi.copy()

    def beliefs(self, tokens: Any) -> np.ndarray:
        """``Pr(S_t | x_<t)`` after every prefix: ``(n, L + 1, n_states)`` (or
        ``(L + 1, n_states)``).

        Args:
            tokens: int array ``(n, L)`` or ``(L,)``; normalized every step, stable at ``L = 10^5``.
        """
        arr, single = check_tokens(tokens, self.n_symbols)
        b, _ = _beliefs.belief_trajectories(
            self.T, arr, root=self.stationary_distribution(), right=self._r, want_probs=False
        )
        return b[0] if single else b

    def next_token_probs(self, tokens: Any) -> np.ndarray:
        """``Pr(X_t | x_<t)`` for ``t = 0 .. L``: ``(n, L + 1, n_symbols)`` (or
        ``(L + 1, n_symbols)``)."""
        arr, single = check_tokens(tokens, self.n_symbols)
        _, p = _beliefs.belief_trajectories(
            self.T, arr, root=self.stationary_distribution(), right=self._r, want_beliefs=False
        )
        return p[0] if single else p

    def word_probability(self, word: Any) -> float:
        """``Pr(x_0 .. x_{L-1})`` of one word under the stationary process."""
        arr, _ = check_tokens(word, self.n_symbols)
        v = self.stationary_distribution()
        for x in arr[0]:
            v = v @ self.T[x]
        r = np.ones(self.n_states) if self._r is None else self._r
        return float(v @ r)

    def block_entropy(self, L: int) -> float:
        """``H(L)`` in nats (Crutchfield & Feldman 2003, eq. 5)."""
        L = check_count("L", L, 0)
        return float(
            _info.block_entropies(self.T, L, root=self.stationary_distribution(), right=self._r)[-1]
        )

    def myopic_entropy(self, L: int) -> float:
        """``h(L) = H(L) - H(L-1)`` in nats: the optimal loss at 0-based position ``L - 1``."""
        L = check_count("L", L, 1)
        return float(self.optimal_loss(L)[-1])

    def optimal_loss(
        self, seq_len: int, *, progress: bool = False
    ) -> Float[np.ndarray, " seq_len"]:
        """Optimal expected cross-entropy at each 0-based position ``t`` (nats): ``h(t + 1)``.

        Exact while each mixed-state layer holds <= 20,000 distinct beliefs: always for finite
        presentations (RRXOR, golden mean, ...), positions 0-9 for Mess3. Beyond that nearby beliefs
        are merged into their weighted mean and the entries are rigorous upper bounds (a running
        minimum; see :func:`piami.theory.mixed_state.belief_layers`); for Mess3 they agree with the
        Blackwell entropy rate within its standard error (~1e-5 bits for Mess3(0.15, 0.6)).
        """
        seq_len = check_count("seq_len", seq_len, 1)
        return _info.myopic_entropies(
            self.T, seq_len, root=self.stationary_distribution(), right=self._r, progress=progress
        )

    def is_unifilar(self) -> bool:
        """True when each state and symbol determine the next state (always False for a GHMM)."""
        return False

    def entropy_rate_estimate(
        self,
        *,
        rng: np.random.Generator | None = None,
        n_chains: int = 512,
        n_steps: int = 4000,
        myopic_depth: int = 256,
    ) -> _info.EntropyRate:
        """The entropy rate with its method, standard error and bounds (nats).

        See :func:`piami.theory.information.entropy_rate`; ``rng=None`` uses a fixed seed (0).
        """
        return _info.entropy_rate(
            self.T,
            root=self.stationary_distribution(),
            right=self._r,
            rng=rng,
            n_chains=n_chains,
            n_steps=n_steps,
            myopic_depth=myopic_depth,
        )

    def entropy_rate(self, *, rng: np.random.Generator | None = None) -> float:
        """Entropy rate ``h`` in nats: exact if unifilar, else the Blackwell time average.

        The time average's standard error is ~1e-5 nats for Mess3(0.15, 0.6) and ~1e-4 for the
        slowly mixing Mess3(0.05, 0.85); :meth:`entropy_rate_estimate` returns it with the bounds.
        """
        return self.entropy_rate_estimate(rng=rng).value

    def excess_entropy(self) -> float:
        """Excess entropy ``E`` in nats (Crutchfield & Feldman 2003, eq. 33)."""
        return _info.excess_entropy(self.T, root=self.stationary_distribution(), right=self._r)

    def statistical_complexity(self, *, max_states: int = 5_000) -> float:
        """``C_mu`` in nats; raises DivergentQuantityError when infinite (e.g. Mess3).

        Args:
            max_states: a mixed-state presentation that has not closed by this many states counts
                as infinite.
        """
        return _info.statistical_complexity(
            self.T,
            root=self.stationary_distribution(),
            right=self._r,
            max_states=max_states,
            name=self.spec_or_name,
        )

    @property
    def spec_or_name(self) -> str:
        return self._spec or self.name

    def mixed_state_presentation(
        self, max_depth: int = 50, *, tol: float = 1e-9, max_states: int = 100_000
    ) -> _mixed.MixedStatePresentation:
        """Mixed-state presentation from the stationary root (see ``theory.beliefs``)."""
        max_depth = check_count("max_depth", max_depth, 0)
        return _mixed.mixed_state_presentation(
            self.T,
            root=self.stationary_distribution(),
            right=self._r,
            max_depth=max_depth,
            tol=tol,
            max_states=max_states,
        )

    # -- sampling ----------------------------------------------------------------------------------
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

        A generalized HMM has no hidden states: it samples each symbol from ``Pr(X_t | x_<t)``.

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
        if return_states:
            raise PiamiValueError(
                "a generalized HMM has no hidden states to return; use return_beliefs instead"
            )
        n, X, S = n_seqs, self.n_symbols, self.n_states
        r = self._r
        W = np.ascontiguousarray(self.T.transpose(1, 0, 2).reshape(S, X * S))
        Wr = np.ascontiguousarray((self.T @ r).T)
        tokens = np.empty((n, seq_len), dtype=np.int64)
        B = np.empty((n, seq_len + 1, S))
        P = np.empty((n, seq_len + 1, X))
        eta = np.broadcast_to(self.stationary_distribution(), (n, S)).copy()
        rows = np.arange(n)
        for t in range(seq_len + 1):
            B[:, t] = eta
            p = eta @ Wr
            P[:, t] = p
            if t == seq_len:
                break
            C = np.cumsum(np.clip(p, 0.0, None), axis=1)
            C /= C[:, -1:]
            x = np.minimum((C <= rng.random(n)[:, None]).sum(axis=1), X - 1)
            tokens[:, t] = x
            nxt = (eta @ W).reshape(n, X, S)[rows, x]
            eta = nxt / (nxt @ r)[:, None]
        if not (return_beliefs or return_probs):
            return tokens
        return HMMSample(
            tokens=tokens,
            beliefs=B if return_beliefs else None,
            next_token_probs=P if return_probs else None,
        )


__all__ = ["GeneralizedHiddenMarkovModel", "HMMSample"]
