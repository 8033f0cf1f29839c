"""Transducer reconstruction: CSSR over joint input-output histories.

The epsilon-transducer of a channel (Barnett & Crutchfield, "Computational mechanics of
input-output processes", J. Stat. Phys. 161:404, 2015) has as states the classes of joint pasts
``(x, y)_{<t}`` that give the same conditional law of the future outputs given the future inputs.
At the level of one step, two pasts belong together when, **for every input** ``x``, they give the
same ``Pr(Y_t | X_t = x, past)``; the law of the inputs themselves is not the channel's and is never
compared. :func:`cssr_transducer` runs Causal-State Splitting Reconstruction (Shalizi & Klinkner,
UAI 2004) on the pair sequence ``z_t = x_t * n_outputs + y_t`` with that one change in the test:

- **Homogenization.** As in :mod:`~piami.instruments.reconstruction.cssr` (same order of
  suffixes, same morph snapshot, same "first other state it passes against" rule), except that a
  suffix's next-symbol counts ``n(x, y)`` are read as one table of output counts per input, and two
  tables differ when the output counts of some input ``x`` differ significantly (chi-square test
  of homogeneity, or the two-sample Kolmogorov-Smirnov test over outputs ``0..n_outputs-1``).
  An input that either side never saw is no evidence and is skipped.
- **Multiple testing.** One comparison makes up to ``n_inputs`` tests; each is run at size
  ``alpha / n_inputs`` (Bonferroni over the inputs), so a comparison as a whole has size at most
  ``alpha``, the same as one test of :func:`~piami.instruments.reconstruction.cssr.cssr`, whatever
  the input alphabet. ``correction="bonferroni"`` also divides by the number of suffixes tested at
  each length, as in ``cssr``.
- **Determinization and recurrent part.** Exactly those of ``cssr`` on the pair alphabet (the
  machine is unifilar on joint symbols: state and ``(x, y)`` fix the next state), reused from
  that module.
- **The transducer.** ``T[x, y, i, j] = n_i(x, y) / n_i(x)`` for the successor ``j`` of ``i`` on
  ``(x, y)``. An input never read in some state leaves its row unidentified by the data; it is
  filled with the mean of the laws ``Pr(y | x, i')`` of the states ``i'`` that did read ``x`` and,
  on each ``(x, y)``, the successor with the largest summed probability ``Pr((x, y), j | i')`` over
  the other states (a self-loop if none), and listed in ``details``. Such a row is a guess, not
  an estimate: it matters only under an input that reaches it.

Data rule: ``(n_inputs * n_outputs) ** (L + 1) <= n`` windows, the rule of ``cssr`` on the pair
alphabet (every joint suffix of length ``L + 1`` could be seen once).

The conditional entropy rate of the reconstruction is ``h(Y|X) = sum_{i, x} pi_i Pr(x | i)
H[Y | x, i]`` (nats), with ``pi`` and ``Pr(x | i)`` from the state counts: for a unifilar transducer
this is ``h(X, Y) - h(X)`` (see :mod:`piami.processes.transducer`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.counting import check_tokens
from piami.instruments.reconstruction.cssr import (
    CORRECTIONS,
    TESTS,
    _check_max_length,
    _determinize,
    _homogenize,
    _recurrent_machine,
    _suffix_tree,
    _Test,
)
from piami.instruments.reconstruction.result import default_max_length
from piami.processes.hmm import HiddenMarkovModel
from piami.processes.transducer import Transducer
from piami.theory.information import entropy

__all__ = ["TransducerReconstruction", "cssr_transducer"]


@dataclass(frozen=True, kw_only=True)
class TransducerReconstruction:
    """A transducer reconstructed from aligned input and output sequences.

    Attributes:
        method: ``"cssr_transducer"``.
        transducer: the reconstructed unifilar :class:`~piami.processes.transducer.Transducer`.
        joint: the unifilar :class:`~piami.processes.hmm.HiddenMarkovModel` of the pair process
            (symbol ``x * n_outputs + y``) on the same states, ``T[z, i, j] = n_i(z) / n_i``: its
            ``Pr(x | i)`` is the input frequency seen in each state, a model of the input only
            when the input's memory lives in the transducer's states (e.g. i.i.d. inputs).
        n_inputs: input alphabet size.
        n_outputs: output alphabet size.
        n_samples: number of (input, output) pairs read.
        max_length: the suffix length ``L`` of the states.
        details: ``histories`` (per state, its joint suffixes of length ``L``, oldest first, each
            pair written ``x:y``), ``state_counts``, ``test``, ``alpha``, ``correction``,
            ``n_windows``, ``n_homogenized_states``, ``n_splits``, ``n_states_before_pruning``,
            ``n_recurrent_classes``, ``dropped_count`` (as in ``cssr``), and ``unseen_inputs``
            (``[state, x]`` pairs whose row was filled, see the module docstring).
    """

    method: str
    transducer: Transducer
    joint: HiddenMarkovModel
    n_inputs: int
    n_outputs: int
    n_samples: int
    max_length: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        """Number of states of the reconstructed transducer."""
        return self.transducer.n_states

    def conditional_entropy_rate(self) -> float:
        """``h(Y|X) = sum_{i, x} pi_i Pr(x | i) H[Y | x, i]`` in nats, from the state counts."""
        pi = self.joint.stationary_distribution()
        n_in, n_out, n = self.n_inputs, self.n_outputs, self.n_states
        p_x = self.joint.T.reshape(n_in, n_out, n, n).sum(axis=(1, 3))  # (x, i)
        h_cond = entropy(self.transducer.output_law(), axis=-1)  # (x, i)
        return float(np.sum(pi[None, :] * p_x * h_cond))


def cssr_transducer(
    inputs: Any,
    outputs: Any,
    *,
    max_length: int | None = None,
    alpha: float = 0.001,
    test: str = "chi2",
    n_inputs: int | None = None,
    n_outputs: int | None = None,
    correction: str = "none",
) -> TransducerReconstruction:
    """Reconstruct the epsilon-transducer of a channel from aligned inputs and outputs.

    Args:
        inputs: int input symbols ``0..n_inputs-1``, 1-D or ``(n_seqs, seq_len)`` (histories
            never cross rows).
        outputs: int output symbols of the same shape; ``outputs[..., t]`` is the channel's
            answer to ``inputs[..., t]`` (it may depend on that input and on the past).
        max_length: ``L``, the joint suffix length of the states (>= 1); ``None`` takes
            :func:`~piami.instruments.reconstruction.result.default_max_length` on the pair
            alphabet, lowered to what the data rule allows.
        alpha: size of each comparison of two output tables, in (0, 1); split over the inputs
            by Bonferroni (module docstring).
        test: ``"chi2"`` or ``"ks"``, as in ``cssr``.
        n_inputs: input alphabet size (default: largest input + 1).
        n_outputs: output alphabet size (default: largest output + 1).
        correction: ``"none"`` or ``"bonferroni"`` (also over the suffixes of one length).

    Returns:
        a :class:`TransducerReconstruction`.

    Raises:
        PiamiTypeError: non-integer symbols or a non-int ``max_length`` / alphabet size.
        PiamiValueError: inputs and outputs of different shapes; rows shorter than ``L + 2``;
            too few pairs for ``L`` (the message gives the largest ``L`` the data allow); bad
            ``alpha``, ``test`` or ``correction``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.integers(0, 2, size=20_000)
        >>> rec = cssr_transducer(x, Transducer.delay().sample(x, rng), max_length=2)
        >>> rec.n_states, round(rec.conditional_entropy_rate(), 6)
        (2, 0.0)
    """
    x, y, n_in, n_out = _check_pairs(inputs, outputs, n_inputs, n_outputs)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise PiamiTypeError(f"alpha must be a float in (0, 1), got {alpha!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise PiamiValueError(f"alpha must be in (0, 1) (e.g. 0.001), got {alpha!r}")
    if test not in TESTS:
        raise PiamiValueError(f"test must be one of {TESTS}, got {test!r}")
    if correction not in CORRECTIONS:
        raise PiamiValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    z = x * n_out + y
    k = n_in * n_out
    n_rows, row_len = (1, z.size) if z.ndim == 1 else z.shape
    length = _choose_length(max_length, k, n_rows, row_len)
    depth = length + 1
    n_windows = n_rows * (row_len - depth)

    levels = _suffix_tree(z, depth, k)
    classes, n_classes = _homogenize(
        levels,
        k,
        float(alpha),
        test,
        correction,
        make_tester=lambda a: _OutputTest(test, a, n_in, n_out),
    )
    blk, n_splits, tgt = _determinize(levels, classes, k, length)
    joint_T, kept, info = _recurrent_machine(levels[length], blk, tgt)
    T, unseen = _transducer_matrices(joint_T, n_in, n_out)

    act_codes = levels[length][0]
    counts = levels[length][1].sum(axis=1)
    details = {
        "histories": [[_pairs(c, length, k, n_out) for c in act_codes[blk == b]] for b in kept],
        "state_counts": [int(counts[blk == b].sum()) for b in kept],
        "test": test,
        "alpha": float(alpha),
        "correction": correction,
        "n_windows": int(n_windows),
        "n_homogenized_states": int(n_classes),
        "n_splits": int(n_splits),
        "n_states_before_pruning": int(blk.max() + 1),
        **info,
        "unseen_inputs": unseen,
    }
    name = f"cssr_transducer(L={length})"
    return TransducerReconstruction(
        method="cssr_transducer",
        transducer=Transducer(T, name=name),
        joint=HiddenMarkovModel(joint_T, name=f"{name} joint"),
        n_inputs=n_in,
        n_outputs=n_out,
        n_samples=int(z.size),
        max_length=length,
        details=details,
    )


# -- validation ---------------------------------------------------------------------------------
def _check_pairs(
    inputs: Any, outputs: Any, n_inputs: int | None, n_outputs: int | None
) -> tuple[np.ndarray, np.ndarray, int, int]:
    x, n_in = check_tokens(inputs, n_inputs)
    y, n_out = check_tokens(outputs, n_outputs)
    if x.shape != y.shape:
        raise PiamiShapeError(
            f"inputs and outputs must be aligned arrays of one shape, got {x.shape} and "
            f"{y.shape}; outputs[..., t] is the channel's answer to inputs[..., t]"
        )
    if (n_in * n_out) ** 2 > 2**62:
        raise PiamiValueError(
            f"{n_in} inputs x {n_out} outputs is too large a pair alphabet; remap the symbols"
        )
    return x, y, n_in, n_out


def _choose_length(max_length: int | None, k: int, n_rows: int, row_len: int) -> int:
    """``L`` as given or derived, checked against the row length and the data rule."""
    if max_length is None:
        length = default_max_length(n_rows * row_len, k)
        while length > 1 and (
            k ** (length + 1) > n_rows * (row_len - length - 1) or row_len < length + 2
        ):
            length -= 1
    else:
        length = _check_max_length(max_length)
    if row_len < length + 2:
        raise PiamiValueError(
            f"max_length={length} needs rows of at least {length + 2} pairs (joint words of "
            f"length max_length + 2), got {row_len}; lower max_length or pass longer sequences"
        )
    n_windows = n_rows * (row_len - length - 1)
    if k > 1 and k ** (length + 1) > n_windows:
        best = math.floor(math.log(n_windows) / math.log(k) + 1e-9) - 1
        fix = f"use max_length <= {best}" if best >= 1 else "pass more data"
        raise PiamiValueError(
            f"too few pairs for max_length={length}: transducer CSSR needs "
            f"(n_inputs * n_outputs)**(max_length + 1) = {k ** (length + 1)} <= {n_windows} "
            f"windows (every joint suffix of length max_length + 1 seen about once, over {k} "
            f"pair symbols); {fix}, or pass at least {k ** (length + 1) + length + 1} pairs"
        )
    if (length + 2) * max(1, math.ceil(math.log2(max(k, 2)))) > 62:
        raise PiamiValueError(
            f"joint words of length {length + 2} over {k} pair symbols do not fit the exact int64 "
            "codes; lower max_length or remap the alphabets"
        )
    return length


def _pairs(code: int, length: int, k: int, n_out: int) -> str:
    syms = []
    c = int(code)
    for _ in range(length):
        c, s = divmod(c, k)
        syms.append(f"{s // n_out}:{s % n_out}")
    return " ".join(reversed(syms))


# -- homogenization -----------------------------------------------------------------------------
class _OutputTest:
    """Two tables of next-pair counts differ when some input's output counts differ."""

    def __init__(self, name: str, alpha: float, n_in: int, n_out: int) -> None:
        self.n_in, self.n_out = n_in, n_out
        self.per_input = _Test(name, alpha / n_in, n_out)  # Bonferroni over the inputs

    def differs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
        shape = (*a.shape[:-1], self.n_in, self.n_out)
        a, b = a.reshape(shape), b.reshape(shape)
        both = (a.sum(axis=-1) > 0) & (b.sum(axis=-1) > 0)  # an input unseen on a side: no test
        with np.errstate(divide="ignore", invalid="ignore"):
            rejected = self.per_input.differs(a, b)
        return (rejected & both).any(axis=-1)


# -- the transducer -----------------------------------------------------------------------------
def _transducer_matrices(joint_T: np.ndarray, n_in: int, n_out: int) -> tuple[np.ndarray, list]:
    """``T[x, y, i, j]`` from the joint machine; rows of unseen (state, input) filled."""
    n = joint_T.shape[1]
    J = joint_T.reshape(n_in, n_out, n, n)
    p_x = J.sum(axis=(1, 3))  # (x, i): Pr(x | i)
    seen = p_x > 0
    T = J / np.where(seen, p_x, 1.0)[:, None, :, None]
    unseen = [[int(i), int(xx)] for xx, i in zip(*np.nonzero(~seen), strict=True)]
    for xx, i in zip(*np.nonzero(~seen), strict=True):
        pooled = T[xx][:, seen[xx]].sum(axis=(1, 2))  # (y,): summed laws of the states that read x
        pooled = pooled / pooled.sum() if pooled.sum() > 0 else np.full(n_out, 1.0 / n_out)
        for yy in range(n_out):
            if pooled[yy] == 0:
                continue
            dest = J[xx, yy].sum(axis=0)  # how often (x, y) leads to each state
            j = int(np.argmax(dest)) if dest.sum() > 0 else int(i)
            T[xx, yy, i, j] = pooled[yy]
    return T, unseen
