"""The Random Hierarchy Model (RHM): a random context-free grammar with a fixed tree.

Cagnetta, Petrini, Tomasini, Favero and Wyart, "How deep neural networks learn compositional data:
the Random Hierarchy Model", PRX 14, 031001 (2024); Cagnetta and Wyart, "Towards a theory of how the
structure of language is acquired by deep neural networks" (NeurIPS 2024).

A datum is generated top-down along a complete ``s``-ary tree of depth ``L``. The root holds one of
``n_c`` classes. Every symbol (class, or one of ``v`` symbols of an intermediate level) has ``m``
production rules; a rule rewrites it as an ``s``-tuple of symbols of the level below. The rules of
one level are drawn *without replacement* from the ``v**s`` possible tuples, so no tuple is the
image of two symbols (the grammar is unambiguous) -- which needs ``m <= v**(s - 1)`` (and
``n_c m <= v**s`` at the root). Each level has its own rules. The ``d = s**L`` leaves are the input.

Exact facts used here (the PRX paper, section II, and Cagnetta and Wyart 2024, section 3):

* ``P_max = n_c m**((s**L - 1)/(s - 1))`` distinct data (one rule choice per internal node).
* Two leaves whose lowest common ancestor sits ``l`` levels above them are correlated with a
  strength ~ ``m**(-l)``; the lag separating them is ~ ``s**l``, so the correlation norm decays as
  ``n**(-beta)`` with ``beta = ln m / ln s``.
* Deep networks learn the task once the training set reaches ``P* ~ n_c m**L``.

Because the tree is fixed, the joint law of any two leaves is computed exactly here by pushing
the root's law down the tree through per-level transition matrices: no sampling is involved.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.typing import Float, Int

if TYPE_CHECKING:  # imported lazily at run time to keep the modules independent
    from piami.processes.pcfg import PCFG


def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PiamiTypeError(f"RandomHierarchyModel: {name} must be an int, got {value!r}")
    if value < lo:
        raise PiamiValueError(f"RandomHierarchyModel: {name} must be >= {lo}, got {value}")
    return int(value)


class RandomHierarchyModel:
    """A Random Hierarchy Model with its rules drawn once from ``rng``.

    Args:
        v: vocabulary size of every level below the root.
        n_classes: number of root symbols (classes), ``n_c``.
        m: production rules per symbol; ``m <= v**(s-1)`` and ``n_c m <= v**s``.
        s: branching factor (tuple length).
        L: depth of the tree; sequences have ``s**L`` tokens.
        rng: generator the rules are drawn from.

    Attributes:
        rules: list of ``L`` int64 arrays; ``rules[l]`` has shape ``(n_parents, m, s)`` and maps a
            symbol of level ``l`` (0 = root) to its ``m`` tuples of level ``l + 1``.

    Example:
        >>> rhm = RandomHierarchyModel(v=8, n_classes=4, m=2, s=2, L=3,
        ...                            rng=np.random.default_rng(0))
        >>> rhm.sample(5, rng=np.random.default_rng(1)).shape
        (5, 8)
        >>> round(rhm.beta, 3)
        1.0
    """

    def __init__(
        self, v: int, n_classes: int, m: int, s: int, L: int, *, rng: np.random.Generator
    ) -> None:
        self.v = _check_int("v", v, 2)
        self.n_classes = _check_int("n_classes", n_classes, 1)
        self.m = _check_int("m", m, 1)
        self.s = _check_int("s", s, 2)
        self.L = _check_int("L", L, 1)
        if not isinstance(rng, np.random.Generator):
            raise PiamiTypeError(
                f"RandomHierarchyModel: rng must be a numpy Generator, got {type(rng).__name__}; "
                "pass rng=np.random.default_rng(seed)"
            )
        n_tuples = self.v**self.s
        if self.m > self.v ** (self.s - 1):
            raise PiamiValueError(
                f"RandomHierarchyModel needs m <= v**(s-1) = {self.v ** (self.s - 1)} so that "
                f"rules are unambiguous, got m={self.m}; lower m or raise v"
            )
        if self.n_classes * self.m > n_tuples:
            raise PiamiValueError(
                f"RandomHierarchyModel needs n_classes*m <= v**s = {n_tuples}, got "
                f"{self.n_classes}*{self.m}; lower n_classes or m"
            )
        if self.s**self.L > 2**20:
            raise PiamiValueError(
                f"RandomHierarchyModel: s**L = {self.s**self.L} leaves is too long (max 2**20)"
            )
        self.rules: list[np.ndarray] = []
        for level in range(self.L):
            n_par = self.n_classes if level == 0 else self.v
            flat = rng.choice(n_tuples, size=n_par * self.m, replace=False)
            digits = (flat[:, None] // (self.v ** np.arange(self.s - 1, -1, -1))) % self.v
            self.rules.append(digits.reshape(n_par, self.m, self.s).astype(np.int64))

    # ----------------------------------------------------------------- sizes and closed forms
    @property
    def seq_len(self) -> int:
        """Number of leaves ``d = s**L``."""
        return self.s**self.L

    @property
    def beta(self) -> float:
        """Correlation decay exponent ``ln m / ln s`` (Cagnetta and Wyart 2024, eq. 9)."""
        return math.log(self.m) / math.log(self.s)

    @property
    def p_max(self) -> int:
        """Number of distinct data ``n_c m**((s**L - 1)/(s - 1))`` (PRX 2024, eq. 2); exact int."""
        return self.n_classes * self.m ** ((self.s**self.L - 1) // (self.s - 1))

    @property
    def p_star(self) -> int:
        """Sample complexity of deep networks ``P* = n_c m**L`` (PRX 2024, eq. 12)."""
        return self.n_classes * self.m**self.L

    def __repr__(self) -> str:
        return (
            f"RandomHierarchyModel(v={self.v}, n_classes={self.n_classes}, m={self.m}, "
            f"s={self.s}, L={self.L})"
        )

    # ----------------------------------------------------------------------------- sampling
    def _check_rng(self, rng: object) -> None:
        if not isinstance(rng, np.random.Generator):
            raise PiamiTypeError(
                f"rng must be a numpy Generator, got {type(rng).__name__}; "
                "pass rng=np.random.default_rng(seed)"
            )

    def sample_labeled(
        self, n_seqs: int, *, rng: np.random.Generator
    ) -> tuple[Int[np.ndarray, "n_seqs seq_len"], Int[np.ndarray, " n_seqs"]]:
        """Draw ``n_seqs`` data: leaves ``(n_seqs, s**L)`` in ``[0, v)`` and
        classes ``(n_seqs,)``."""
        n_seqs = _check_int("n_seqs", n_seqs, 1)
        self._check_rng(rng)
        classes = rng.integers(0, self.n_classes, size=n_seqs)
        nodes = classes[:, None]
        for rules in self.rules:
            r = rng.integers(0, self.m, size=nodes.shape)
            nodes = rules[nodes, r].reshape(n_seqs, -1)  # (n, width*s)
        return nodes.astype(np.int64), classes.astype(np.int64)

    def sample(
        self, n_seqs: int, seq_len: int | None = None, *, rng: np.random.Generator
    ) -> Int[np.ndarray, "n_seqs seq_len"]:
        """Leaves only, ``(n_seqs, s**L)`` int64 (``seq_len`` must be None or ``s**L``)."""
        if seq_len is not None and seq_len != self.seq_len:
            raise PiamiValueError(
                f"{self!r} makes sequences of s**L = {self.seq_len} tokens, got seq_len={seq_len}; "
                "pass seq_len=None"
            )
        return self.sample_labeled(n_seqs, rng=rng)[0]

    def sample_lm(self, n_seqs: int, *, rng: np.random.Generator) -> Int[np.ndarray, "n_seqs pos"]:
        """Sequences for language modelling: the class (as token ``v + c``) then the leaves.

        Returns:
            int64 array ``(n_seqs, 1 + s**L)``; vocabulary size ``v + n_classes``.
        """
        leaves, classes = self.sample_labeled(n_seqs, rng=rng)
        return np.concatenate([(classes + self.v)[:, None], leaves], axis=1)

    # ---------------------------------------------------------------------------- exact side
    @cached_property
    def transitions(self) -> list[np.ndarray]:
        """Per level, ``T[l][k]``: ``(n_parents, v)`` law of child ``k`` given its parent.

        ``T[l][k][a, b] = #{rules of a with tuple[k] = b} / m``; shape ``(L, s)`` lists of arrays.
        """
        out = []
        for rules in self.rules:
            n_par = rules.shape[0]
            per_k = []
            for k in range(self.s):
                t = np.zeros((n_par, self.v))
                np.add.at(t, (np.repeat(np.arange(n_par), self.m), rules[:, :, k].ravel()), 1.0)
                per_k.append(t / self.m)
            out.append(per_k)
        return out

    def _digits(self, pos: int) -> list[int]:
        """Path from the root to leaf ``pos``: ``L`` digits in base ``s``, most
        significant first."""
        if isinstance(pos, bool) or not isinstance(pos, (int, np.integer)):
            raise PiamiTypeError(f"leaf position must be an int, got {pos!r}")
        if not 0 <= pos < self.seq_len:
            raise PiamiValueError(f"leaf position must be in [0, {self.seq_len}), got {pos}")
        return [(int(pos) // self.s ** (self.L - 1 - i)) % self.s for i in range(self.L)]

    def _push(self, p: np.ndarray, digits: list[int], start: int) -> np.ndarray:
        """Push a law (or the rows of a matrix of laws) at depth ``start`` down along ``digits``."""
        for depth in range(start, self.L):
            p = p @ self.transitions[depth][digits[depth]]
        return p

    def leaf_marginal(self, pos: int) -> Float[np.ndarray, " v"]:
        """Exact law ``Pr(X_pos = a)`` of leaf ``pos`` (classes uniform)."""
        root = np.full(self.n_classes, 1.0 / self.n_classes)
        return self._push(root, self._digits(pos), 0)

    def pair_joint(self, i: int, j: int) -> Float[np.ndarray, "v v"]:
        """Exact joint law ``Pr(X_i = a, X_j = b)`` of two distinct leaves, shape ``(v, v)``.

        The law of their lowest common ancestor is pushed down from the root; at the ancestor one
        rule emits both branches (the joint of its children ``k_i, k_j``), then each branch is
        pushed down its own path.
        """
        di, dj = self._digits(i), self._digits(j)
        if i == j:
            return np.diag(self.leaf_marginal(i))
        depth = next(t for t in range(self.L) if di[t] != dj[t])  # children of LCA at depth+1
        anc = np.full(self.n_classes, 1.0 / self.n_classes)
        for t in range(depth):
            anc = anc @ self.transitions[t][di[t]]
        rules = self.rules[depth]  # (n_par, m, s)
        joint = np.zeros((self.v, self.v))
        w = np.repeat(anc / self.m, self.m)
        np.add.at(joint, (rules[:, :, di[depth]].ravel(), rules[:, :, dj[depth]].ravel()), w)
        left = self._push(np.eye(self.v), di, depth + 1)  # (v, v): row b -> law of leaf i
        right = self._push(np.eye(self.v), dj, depth + 1)
        return left.T @ joint @ right

    def lca_height(self, i: int, j: int) -> int:
        """Levels between the leaves and the lowest common ancestor of leaves ``i != j``."""
        di, dj = self._digits(i), self._digits(j)
        return self.L - next(t for t in range(self.L) if di[t] != dj[t])

    def exact_correlation(self, lag: int, *, anchor: str = "pooled") -> Float[np.ndarray, "v v"]:
        """Exact lagged correlation operator ``C(n)_{ab} = Pr(a, b) - Pr(a) Pr(b)``.

        Args:
            lag: ``n`` in ``[1, s**L)``.
            anchor: ``"pooled"`` averages the joint over all pairs ``(i, i + n)`` in a sequence and
                subtracts the product of the averaged marginals (exactly what
                :func:`piami.instruments.statistics.lagged_correlations` estimates from sampled
                sequences); ``"last"`` uses the pair ``(d - 1 - n, d - 1)``, the last token and its
                n-th predecessor (Cagnetta and Wyart 2024, next-token setting).

        Returns:
            ``(v, v)`` float64.

        Note:
            The RHM is not stationary: leaf marginals depend on the position. The pooled operator
            therefore contains the spread of the marginals across positions and levels off at a
            lag-independent value instead of decaying as ``n**(-beta)``; the power law is seen with
            ``anchor="last"`` (measured here: ``v = n_c = 64, m = 3, s = 2, L = 6`` gives a
            Frobenius-norm slope within 5% of ``ln 3 / ln 2`` at lags ``1, 2, 4, 8, 16``).
        """
        if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)):
            raise PiamiTypeError(f"lag must be an int, got {lag!r}")
        d = self.seq_len
        if not 1 <= lag < d:
            raise PiamiValueError(f"lag must be in [1, {d}) for {self!r}, got {lag}")
        if anchor == "last":
            i, j = d - 1 - lag, d - 1
            return self.pair_joint(i, j) - np.outer(self.leaf_marginal(i), self.leaf_marginal(j))
        if anchor != "pooled":
            raise PiamiValueError(f"anchor must be 'pooled' or 'last', got {anchor!r}")
        marg = self.all_leaf_marginals
        joint = sum(self.pair_joint(i, i + lag) for i in range(d - lag)) / (d - lag)
        return joint - np.outer(marg[: d - lag].mean(0), marg[lag:].mean(0))

    @cached_property
    def all_leaf_marginals(self) -> Float[np.ndarray, "seq_len v"]:
        """Exact laws of every leaf, ``(s**L, v)``."""
        return np.stack([self.leaf_marginal(i) for i in range(self.seq_len)])

    def level_lags(self) -> list[int]:
        """One lag per level below the root, ``[1, s, s**2, ..., s**(L-2)]``.

        With ``anchor="last"``, lag ``s**k`` separates two leaves whose common ancestor is exactly
        ``k + 1`` levels up, so these lags sample the staircase ``m**(-level)`` once per step.
        """
        return [self.s**k for k in range(self.L - 1)]

    def to_pcfg(self) -> PCFG:
        """The same grammar as a :class:`~piami.processes.pcfg.PCFG` (uniform rule weights).

        Nonterminals are named ``"c{k}"`` (root) and ``"l{level}_{a}"``; terminals are the leaf
        symbols ``0..v-1``.
        """
        from piami.processes.pcfg import PCFG

        def name(level: int, a: int) -> str | int:
            if level == self.L:
                return int(a)
            return f"c{a}" if level == 0 else f"l{level}_{a}"

        rules = []
        for level, table in enumerate(self.rules):
            for a in range(table.shape[0]):
                for r in range(self.m):
                    rhs = tuple(name(level + 1, int(b)) for b in table[a, r])
                    rules.append((name(0, a) if level == 0 else name(level, a), rhs, 1.0))
        rules += [("S", (f"c{c}",), 1.0) for c in range(self.n_classes)]
        return PCFG(rules, start="S", terminals=range(self.v))
