"""What every reconstruction method returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from piami.processes.ghmm import GeneralizedHiddenMarkovModel

__all__ = ["Reconstruction", "default_max_length"]


@dataclass(frozen=True, kw_only=True)
class Reconstruction:
    """A model reconstructed from data.

    Attributes:
        method: ``"cssr"``, ``"spectral"`` or ``"bsi"``.
        machine: the reconstructed process: a unifilar
            :class:`~piami.processes.hmm.HiddenMarkovModel` (CSSR, BSI) or a
            :class:`~piami.processes.ghmm.GeneralizedHiddenMarkovModel` (spectral), over symbols
            ``0..n_symbols-1``.
        n_symbols: alphabet size the sequence was read with.
        n_samples: number of symbols the model was estimated from.
        max_length: the longest history (CSSR), word length (spectral) the method used; 0 where
            it does not apply.
        details: method-specific extras (the histories of each causal state, singular values of
            the Hankel matrix, posterior model probabilities, ...), JSON-serializable.
    """

    method: str
    machine: GeneralizedHiddenMarkovModel
    n_symbols: int
    n_samples: int
    max_length: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        """Number of states of the reconstructed machine."""
        return self.machine.n_states


def default_max_length(n_samples: int, n_symbols: int) -> int:
    """``floor(ln N / (3 ln k))`` clipped to 1..10: the longest history every method is given.

    With ``k ** (3 L) <= N`` every history of length ``L`` followed by a word of length up to
    ``2 L`` is expected to be seen, so the tests inside CSSR compare distributions estimated from
    many counts (the same default as sofic's CSSR).

    Example:
        >>> default_max_length(10_000, 2), default_max_length(10**6, 3)
        (4, 4)
    """
    if n_symbols < 2 or n_samples < 2:
        return 1
    return max(1, min(10, math.floor(math.log(n_samples) / (3 * math.log(n_symbols)))))
