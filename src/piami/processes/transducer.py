"""Transducers: hidden Markov models of input-output processes (channels with memory).

A process is one stream of symbols; a *channel* turns an input stream ``X`` into an output stream
``Y``. Barnett & Crutchfield ("Computational mechanics of input-output processes: structured
transformations and the epsilon-transducer", J. Stat. Phys. 161:404, 2015; B&C below) present a
channel by states ``S`` and labelled transition matrices

    ``T[x][y][i, j] = Pr(Y_t = y, S_{t+1} = j | X_t = x, S_t = i)``,

with ``sum_y sum_j T[x][y][i, j] = 1`` for every input ``x`` and state ``i``: on reading ``x`` in
state ``i`` the channel writes ``y`` and moves to ``j``. The output at time ``t`` may depend on the
present input ``x_t`` and on the past. The *epsilon-transducer* is the minimal unifilar such
presentation: its states are the classes of joint pasts ``(x, y)_{<t}`` with the same conditional
future ``Pr(Y_{t:} | X_{t:}, past)`` (B&C's causal equivalence), so ``(i, x, y)`` fixes ``j``.

**Driving.** An input process with presentation ``A[x][a, b]`` and the transducer make one hidden
Markov process over pairs ``(x, y)``, symbol ``x * n_outputs + y``, on the product states ``(a, i)``
(numbered ``a * n_states + i``): ``J[(x, y)] = A[x] (kron) T[x][y]``, B&C's joint process. Every
exact tool of :class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel` then applies to the pair
process, and summing ``J`` over ``x`` gives the output process.

**Conditional entropy rate.** For jointly stationary ``(X, Y)`` the chain rule
``H[X_{0:L}, Y_{0:L}] = H[X_{0:L}] + H[Y_{0:L} | X_{0:L}]`` (Cover & Thomas 2006, thm 2.5.1),
divided by ``L`` with ``L -> inf`` (the limits exist for stationary processes, thm 4.2.1), gives

    ``h(Y|X) = lim H[Y_{0:L} | X_{0:L}] / L = h(X, Y) - h(X)``.

Because the channel's randomness is independent of the input's, ``X_t`` is independent of
``Y_{<t}`` given ``X_{<t}``, so ``h(X, Y) = h(X) + H[Y_t | X_t, (X, Y)_{<t}]``; when the state is
a function of the joint past (a unifilar, synchronizing transducer, as an epsilon-transducer is)
this is ``sum_{i, x} Pr(S_t = i, X_t = x) H[Y_t | X_t = x, S_t = i]``.
:meth:`Transducer.conditional_entropy_rate` computes the difference of the two exact rates.

**Input-dependent statistical complexity.** ``C_X = H[S]`` under the stationary distribution of
transducer states when driven by ``X`` (B&C 2015): the memory the channel uses on that input. It
depends on the input; for a delay line it is the entropy of one input symbol.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from piami._limits import check_memory
from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.processes._checks import check_count, check_tokens
from piami.processes.ghmm import GeneralizedHiddenMarkovModel
from piami.processes.hmm import ROW_TOL, HiddenMarkovModel
from piami.theory import information as _info

__all__ = ["Transducer"]

#: Below this many rows :meth:`Transducer.sample` loops in plain Python, row by row.
_FEW_ROWS = 16


def _as_tensor4(T: Any) -> np.ndarray:
    try:
        A = np.array(T, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PiamiTypeError(
            "T must be a real array of shape (n_inputs, n_outputs, n_states, n_states); numpy "
            f"cannot convert {type(T).__name__} to float64 ({exc})"
        ) from None
    if A.ndim != 4 or 0 in A.shape or A.shape[2] != A.shape[3]:
        raise PiamiShapeError(
            "T must have shape (n_inputs, n_outputs, n_states, n_states), with "
            f"T[x, y, i, j] = Pr(emit y, go to j | read x, in i) and every axis non-empty; got "
            f"shape {A.shape}"
        )
    bad = ~np.isfinite(A) | (A < 0)
    if bad.any():
        x, y, i, j = (int(v) for v in np.argwhere(bad)[0])
        raise PiamiValueError(
            f"T[{x}, {y}, {i}, {j}] = {A[x, y, i, j]} is not a probability (negative or "
            "non-finite); every entry must be finite and >= 0"
        )
    rows = A.sum(axis=(1, 3))  # (n_inputs, n_states)
    off = np.abs(rows - 1.0) > ROW_TOL
    if off.any():
        x, i = (int(v) for v in np.argwhere(off)[0])
        raise PiamiValueError(
            f"input {x}, state {i}: sum over outputs y and next states j of T[{x}, y, {i}, j] is "
            f"{rows[x, i]:.12g}, expected 1 (within {ROW_TOL}); for every input the channel must "
            "emit some output and go somewhere"
        )
    return A / rows[:, None, :, None]


class Transducer:
    """A channel with memory, ``T[x, y, i, j] = Pr(Y_t = y, S_{t+1} = j | X_t = x, S_t = i)``.

    Args:
        T: ``(n_inputs, n_outputs, n_states, n_states)`` non-negative array with
            ``sum_y sum_j T[x, y, i, j] = 1`` for every ``x`` and ``i`` (within 1e-9; rows are
            then renormalized exactly). ``T[x][y]`` is the labelled transition matrix of B&C 2015.
        name: display name (default ``"transducer"``).

    Raises:
        PiamiShapeError: wrong rank, an empty axis, or non-square ``T[x][y]``.
        PiamiValueError: a negative or non-finite entry, or an (input, state) row not summing to
            1; the message names the input and the state.

    Example:
        >>> from piami.processes import golden_mean
        >>> delay = Transducer.delay()
        >>> round(float(delay.statistical_complexity(golden_mean()) / np.log(2)), 4)  # H_b(1/3)
        0.9183
        >>> round(delay.conditional_entropy_rate(golden_mean()), 12)
        0.0
    """

    def __init__(self, T: Any, *, name: str | None = None) -> None:
        self.T = _as_tensor4(T)
        self.name = name or "transducer"
        S, n_out = self.n_states, self.n_outputs
        # sampling: row r = x * S + i holds the cumulative law of the flattened pairs (y, j);
        # shifting row r by r makes the rows disjoint, so one searchsorted draws every sequence
        flat = self.T.transpose(0, 2, 1, 3).reshape(self.n_inputs * S, n_out * S)
        cum = np.cumsum(flat, axis=1)
        cum /= cum[:, -1:]
        self._cat = (cum + np.arange(flat.shape[0])[:, None]).ravel()
        self._lastpos = flat.shape[1] - 1 - np.argmax(flat[:, ::-1] > 0, axis=1)

    # -- description ---------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        """Input alphabet size."""
        return int(self.T.shape[0])

    @property
    def n_outputs(self) -> int:
        """Output alphabet size."""
        return int(self.T.shape[1])

    @property
    def n_states(self) -> int:
        """Number of transducer states."""
        return int(self.T.shape[2])

    def __repr__(self) -> str:
        return (
            f"Transducer({self.name}, n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, "
            f"n_states={self.n_states})"
        )

    def is_unifilar(self) -> bool:
        """True when the state, the input and the output determine the next state."""
        return bool(((self.T > 0).sum(axis=3) <= 1).all())

    def output_law(self) -> np.ndarray:
        """``Pr(Y_t = y | X_t = x, S_t = i)`` as an array ``(n_inputs, n_states, n_outputs)``."""
        return self.T.sum(axis=3).transpose(0, 2, 1).copy()

    def joint_symbols(self, inputs: Any, outputs: Any) -> np.ndarray:
        """The pair symbols ``x * n_outputs + y`` of aligned input and output arrays."""
        x, _ = check_tokens(inputs, self.n_inputs)
        y, _ = check_tokens(outputs, self.n_outputs)
        if x.shape != y.shape:
            raise PiamiShapeError(
                f"inputs and outputs must have one shape, got {x.shape} and {y.shape}"
            )
        z = x * self.n_outputs + y
        return z[0] if np.ndim(inputs) == 1 else z

    # -- driving -------------------------------------------------------------------------------
    def _check_input(self, input_process: object) -> GeneralizedHiddenMarkovModel:
        if not isinstance(input_process, GeneralizedHiddenMarkovModel):
            raise PiamiTypeError(
                "input_process must be a piami HiddenMarkovModel or GeneralizedHiddenMarkovModel "
                f"(e.g. piami.processes.golden_mean()), got {type(input_process).__name__}"
            )
        if input_process.n_symbols != self.n_inputs:
            raise PiamiValueError(
                f"input_process emits {input_process.n_symbols} symbols but {self.name} reads "
                f"{self.n_inputs}; drive it with a process over symbols 0..{self.n_inputs - 1}"
            )
        return input_process

    def drive(self, input_process: GeneralizedHiddenMarkovModel) -> GeneralizedHiddenMarkovModel:
        """The exact joint process of ``(X_t, Y_t)`` when ``input_process`` drives the channel.

        Symbol ``x * n_outputs + y``; states ``(a, i)`` numbered ``a * n_states + i`` (``a`` the
        input's state); ``J[(x, y)] = A[x] (kron) T[x][y]`` (B&C 2015).

        Returns:
            a :class:`~piami.processes.hmm.HiddenMarkovModel` when the input is one (unifilar
            when both are), else a generalized HMM.
        """
        proc = self._check_input(input_process)
        A, S, n_out = proc.T, self.n_states, self.n_outputs
        n = A.shape[1] * S
        check_memory(
            8.0 * self.n_inputs * n_out * n * n,
            f"the joint process of {self.name} ({S} states) driven by {proc.name} "
            f"({A.shape[1]} states)",
            fix="drive the transducer with a smaller input presentation",
        )
        J = np.einsum("xab,xyij->xyaibj", A, self.T).reshape(self.n_inputs * n_out, n, n)
        name = f"{self.name} driven by {proc.name}"
        if isinstance(proc, HiddenMarkovModel):
            return HiddenMarkovModel(J, name=name)
        return GeneralizedHiddenMarkovModel(J, name=name)

    def output_process(
        self, input_process: GeneralizedHiddenMarkovModel
    ) -> GeneralizedHiddenMarkovModel:
        """The output process ``Y`` alone: the joint process summed over the inputs."""
        joint = self.drive(input_process)
        T = joint.T.reshape(self.n_inputs, self.n_outputs, *joint.T.shape[1:]).sum(axis=0)
        name = f"output of {joint.name}"
        if isinstance(joint, HiddenMarkovModel):
            return HiddenMarkovModel(T, name=name)
        return GeneralizedHiddenMarkovModel(T, name=name)

    def state_distribution(self, input_process: GeneralizedHiddenMarkovModel) -> np.ndarray:
        """Stationary ``Pr(S_t = i)`` of the transducer's states under ``input_process``.

        The joint stationary distribution ``pi(a, i)`` summed over the input's states with the
        weights of its right eigenvector (all ones for an HMM), shape ``(n_states,)``.
        """
        joint = self.drive(input_process)
        pi = joint.stationary_distribution().reshape(-1, self.n_states)
        r = np.ones(pi.shape[0]) if input_process._r is None else input_process._r
        p = np.clip(r @ pi, 0.0, None)
        return p / p.sum()

    def statistical_complexity(self, input_process: GeneralizedHiddenMarkovModel) -> float:
        """``C_X = H[S]`` in nats, the input-dependent statistical complexity (B&C 2015)."""
        return float(_info.entropy(self.state_distribution(input_process)))

    def conditional_entropy_rate(
        self, input_process: GeneralizedHiddenMarkovModel, *, rng: np.random.Generator | None = None
    ) -> float:
        """``h(Y|X) = h(X, Y) - h(X)`` in nats (module docstring; Cover & Thomas thm 2.5.1).

        Exact when the input and the transducer are unifilar (both rates are then ``H[symbol |
        state]``, and rounding below 0 is clipped); otherwise each rate is the Blackwell time
        average (``rng`` for its chains, default seed 0), with its standard error.
        """
        proc = self._check_input(input_process)
        joint = self.drive(proc)
        h = float(joint.entropy_rate(rng=rng) - proc.entropy_rate(rng=rng))
        if joint.is_unifilar() and proc.is_unifilar():
            h = max(h, 0.0)  # both rates exact: a negative difference is rounding only
        return h

    # -- sampling ------------------------------------------------------------------------------
    def sample(
        self,
        inputs: Any,
        rng: np.random.Generator,
        *,
        initial_state: int | None = None,
        return_states: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Outputs of the channel for given inputs.

        Many rows are sampled together (a numpy step per time); fewer than 16 rows loop in plain
        Python, with the same uniform numbers and the same outputs.

        Args:
            inputs: int symbols ``0..n_inputs-1``, ``(seq_len,)`` or ``(n_seqs, seq_len)``.
            rng: numpy generator of the channel's randomness.
            initial_state: state before the first input; ``None`` draws it uniformly for each
                row (an epsilon-transducer synchronizes, so this only affects a short transient).
            return_states: also return the states, ``(..., seq_len + 1)``: the one before each
                input, then the last.

        Returns:
            int64 outputs of the shape of ``inputs`` (and the states when asked for).
        """
        if not isinstance(rng, np.random.Generator):
            raise PiamiTypeError(
                "rng must be a numpy Generator, e.g. np.random.default_rng(0); got "
                f"{type(rng).__name__}"
            )
        x, single = check_tokens(inputs, self.n_inputs)
        n, L, S, n_out = x.shape[0], x.shape[1], self.n_states, self.n_outputs
        if initial_state is None:
            state = rng.integers(0, S, size=n)
        else:
            state = np.full(n, check_count("initial_state", initial_state, 0), dtype=np.int64)
            if initial_state >= S:
                raise PiamiValueError(
                    f"initial_state must be < n_states = {S}, got {initial_state}"
                )
        u = rng.random((n, L))  # drawn at once: both loops below give the same outputs
        ys = np.empty((n, L), dtype=np.int64)
        states = np.empty((n, L + 1), dtype=np.int64)
        width = n_out * S
        if n < _FEW_ROWS:  # few long rows: a scalar loop beats numpy's per-call overhead
            for r in range(n):
                ys[r], states[r] = self._sample_row(x[r].tolist(), u[r].tolist(), int(state[r]))
            return self._shaped(ys, states, single, return_states)
        for t in range(L):
            states[:, t] = state
            row = x[:, t] * S + state
            k = np.searchsorted(self._cat, row + u[:, t], side="right") - row * width
            np.minimum(k, self._lastpos[row], out=k)
            ys[:, t], state = np.divmod(k, S)
        states[:, L] = state
        return self._shaped(ys, states, single, return_states)

    def _sample_row(self, xs: list, us: list, state: int) -> tuple[list, list]:
        """One row of :meth:`sample` in plain Python (same comparisons as the numpy loop)."""
        S, width = self.n_states, self.n_outputs * self.n_states
        cat, last = self._cat.tolist(), self._lastpos.tolist()
        ys, states = [], [state]
        for xt, ut in zip(xs, us, strict=True):
            row = xt * S + state
            k = min(bisect.bisect_right(cat, row + ut) - row * width, last[row])
            y, state = divmod(k, S)
            ys.append(y)
            states.append(state)
        return ys, states

    @staticmethod
    def _shaped(
        ys: np.ndarray, states: np.ndarray, single: bool, return_states: bool
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        if single:
            ys, states = ys[0], states[0]
        return (ys, states) if return_states else ys

    # -- named examples --------------------------------------------------------------------------
    @classmethod
    def identity(cls, n_symbols: int = 2) -> Transducer:
        """``y_t = x_t``: one state (B&C 2015, the identity channel)."""
        n = check_count("n_symbols", n_symbols, 1)
        return cls(np.eye(n)[:, :, None, None], name=f"identity({n})")

    @classmethod
    def delay(cls, n_symbols: int = 2) -> Transducer:
        """``y_t = x_{t-1}``: state ``i`` = the previous input, ``T[x, y, i, j] = [y = i][j = x]``.

        Driven by a stationary input, ``h(Y|X) = 0`` and ``C_X = H[X_0]``.
        """
        n = check_count("n_symbols", n_symbols, 1)
        T = np.zeros((n, n, n, n))
        for x in range(n):
            for i in range(n):
                T[x, i, i, x] = 1.0
        return cls(T, name=f"delay({n})")

    @classmethod
    def noisy_memory(cls, q0: float = 0.1, q1: float = 0.4) -> Transducer:
        """A binary channel that flips ``x_t`` with probability ``q_{x_{t-1}}`` (2 states).

        State ``i`` = the previous input. Its epsilon-transducer has 2 states when ``q0 != q1``;
        driven by i.i.d. inputs, ``h(Y|X) = sum_i Pr(X = i) H_b(q_i)``.
        """
        q = []
        for name, v in (("q0", q0), ("q1", q1)):
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise PiamiTypeError(f"noisy_memory: {name} must be a number, got {v!r}")
            if not 0.0 <= float(v) <= 1.0:
                raise PiamiValueError(f"noisy_memory: {name} must lie in [0, 1], got {v!r}")
            q.append(float(v))
        T = np.zeros((2, 2, 2, 2))
        for x in range(2):
            for i in range(2):
                T[x, x, i, x] = 1.0 - q[i]
                T[x, 1 - x, i, x] = q[i]
        return cls(T, name=f"noisy_memory(q0={q[0]!r}, q1={q[1]!r})")

    @classmethod
    def odd_not(cls) -> Transducer:
        """NOT gate switched by the parity of the 1s read so far (2 states, deterministic).

        State ``i`` = parity of the number of 1s among ``x_{<t}``; ``y_t = x_t XOR i``; reading a
        1 flips the state. An infinite-memory feedforward channel in the sense of B&C 2015 (in
        the spirit of their "odd NOT"; defined here as stated): the output depends on the whole
        input past, yet one joint symbol synchronizes (``i = x_t XOR y_t``). Driven by i.i.d.
        inputs with ``Pr(1) > 0``: ``C_X = ln 2``, ``h(Y|X) = 0``.
        """
        T = np.zeros((2, 2, 2, 2))
        for x in range(2):
            for i in range(2):
                T[x, x ^ i, i, i ^ x] = 1.0
        return cls(T, name="odd_not")
