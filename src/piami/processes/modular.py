"""Modular addition: the data set of the grokking experiments.

Every pair ``(a, b)`` of ``Z_p x Z_p`` is one example: the prompt is the three tokens
``[a, b, '=']`` and the answer is ``(a + b) mod p``. Tokens ``0 .. p-1`` are the numbers and token
``p`` is ``'='``, so the vocabulary has ``p + 1`` entries. A network sees a seeded fraction of the
``p^2`` pairs (30% in Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability", with ``p = 113``) and is tested on the rest; with strong weight decay it first
memorizes the training pairs and later generalizes ("grokking", Power et al. 2022).

Pairs are numbered ``i = a * p + b`` (row-major on the grid), so a table over all pairs reshapes to
``(p, p, ...)`` indexed ``[a, b]`` -- the layout :mod:`piami.instruments.fourier` expects.

numpy only; the split takes an explicit ``rng: np.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.typing import Int


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise PiamiTypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


@dataclass(frozen=True, kw_only=True)
class ModularAddition:
    """The task ``(a, b) -> (a + b) mod p`` on prompts ``[a, b, '=']``.

    Example:
        >>> task = ModularAddition(p=5)
        >>> tokens, answers = task.all_pairs()
        >>> tokens[7].tolist(), int(answers[7])
        ([1, 2, 5], 3)
        >>> train, test = task.split(0.3, rng=np.random.default_rng(0))
        >>> len(train), len(test)
        (8, 17)
    """

    p: int = 113  # the modulus: numbers are 0 .. p-1 and '=' is token p

    def __post_init__(self) -> None:
        if not isinstance(self.p, (int, np.integer)) or isinstance(self.p, bool) or self.p < 2:
            raise PiamiValueError(f"ModularAddition.p must be an integer >= 2, got {self.p!r}")

    @property
    def d_vocab(self) -> int:
        """Vocabulary size: the ``p`` numbers and ``'='``."""
        return self.p + 1

    @property
    def equals_token(self) -> int:
        """Token id of ``'='``."""
        return self.p

    @property
    def n_pairs(self) -> int:
        """Number of examples, ``p^2``."""
        return self.p * self.p

    def all_pairs(self) -> tuple[Int[np.ndarray, "n_pairs 3"], Int[np.ndarray, " n_pairs"]]:
        """Every prompt and its answer.

        Returns:
            ``(tokens, answers)``: int64 arrays of shape ``(p^2, 3)`` (rows ``[a, b, p]``) and
            ``(p^2,)`` (``(a + b) mod p``), row ``a * p + b`` holding the pair ``(a, b)``.
        """
        a, b = np.divmod(np.arange(self.n_pairs, dtype=np.int64), self.p)
        tokens = np.stack([a, b, np.full_like(a, self.p)], axis=1)
        return tokens, (a + b) % self.p

    def split(
        self, frac_train: float, *, rng: np.random.Generator
    ) -> tuple[Int[np.ndarray, " n_train"], Int[np.ndarray, " n_test"]]:
        """A seeded random split of the pairs into training and held-out ones.

        Args:
            frac_train: fraction of the ``p^2`` pairs used for training, in ``(0, 1)``; the number
                of training pairs is ``round(frac_train * p^2)``.
            rng: the source of the permutation.

        Returns:
            ``(train_idx, test_idx)``: sorted int64 indices into :meth:`all_pairs`, disjoint and
            together covering every pair, both non-empty.
        """
        rng = _check_rng(rng)
        if (
            isinstance(frac_train, bool)
            or not isinstance(frac_train, (int, float, np.floating))
            or not 0.0 < frac_train < 1.0
        ):
            raise PiamiValueError(f"frac_train must be a number in (0, 1), got {frac_train!r}")
        n_train = round(float(frac_train) * self.n_pairs)
        if not 1 <= n_train < self.n_pairs:
            raise PiamiValueError(
                f"frac_train = {frac_train} of p^2 = {self.n_pairs} pairs leaves {n_train} for "
                "training; both the training and the held-out set must be non-empty"
            )
        perm = rng.permutation(self.n_pairs)
        return np.sort(perm[:n_train]), np.sort(perm[n_train:])

    def mask(self, idx: Int[np.ndarray, " n"]) -> np.ndarray:
        """Boolean ``(p, p)`` grid, true at the pairs ``idx`` (as returned by :meth:`split`)."""
        idx = np.asarray(idx)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise PiamiValueError(f"idx must be a 1-D array of pair indices, got {idx!r}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_pairs):
            raise PiamiValueError(f"pair indices must lie in [0, {self.n_pairs}), got {idx!r}")
        m = np.zeros(self.n_pairs, dtype=bool)
        m[idx] = True
        return m.reshape(self.p, self.p)

    def sample(
        self, n_seqs: int, seq_len: int = 4, *, rng: np.random.Generator
    ) -> Int[np.ndarray, "n_seqs seq_len"]:
        """Random sequences ``[a, b, '=', (a+b) mod p]`` with uniform ``a, b``
        (the process contract).

        Args:
            n_seqs: number of sequences.
            seq_len: must be 4 (prompt and answer).
            rng: the source of the pairs.
        """
        rng = _check_rng(rng)
        if not isinstance(n_seqs, (int, np.integer)) or isinstance(n_seqs, bool) or n_seqs < 1:
            raise PiamiValueError(f"n_seqs must be an integer >= 1, got {n_seqs!r}")
        if seq_len != 4:
            raise PiamiValueError(
                "modular addition sequences are [a, b, '=', answer]: seq_len must be 4, got "
                f"{seq_len!r}"
            )
        ab = rng.integers(0, self.p, size=(int(n_seqs), 2))
        eq = np.full((int(n_seqs), 1), self.p)
        return np.concatenate([ab, eq, ab.sum(axis=1, keepdims=True) % self.p], axis=1).astype(
            np.int64
        )


__all__ = ["ModularAddition"]
