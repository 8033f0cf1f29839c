"""Teacher tasks whose learning dynamics theory predicts exactly.

- :class:`LinearTeacher`: ``y = W* x`` with ``W* = U diag(s) V^T`` of chosen singular values, on
  *whitened* inputs (``X^T X / n = I`` exactly), the setting of Saxe, McClelland & Ganguli 2014 and
  of the two-layer DMFT of Bordelon & Pehlevan 2022 (:mod:`piami.theory.dynamics`).
- :class:`StaircaseTarget`: a sum of parities ``y = sum_S c_S prod_{i in S} x_i`` on the hypercube
  ``{-1, +1}^d``, the setting of Abbe, Boix-Adsera & Misiakiewicz 2023 (:mod:`piami.theory.leap`).

numpy only; every random draw takes an explicit ``rng: np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from piami.errors import PiamiTypeError, PiamiValueError
from piami.theory.leap import _check_supports, leap_complexity, plateau_losses
from piami.typing import Float

__all__ = [
    "STAIRCASES",
    "LinearTeacher",
    "StaircaseTarget",
    "random_orthogonal",
    "whitened_inputs",
]


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise PiamiTypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _check_count(name: str, v: object, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise PiamiValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def random_orthogonal(n: int, *, rng: np.random.Generator) -> Float[np.ndarray, "n n"]:
    """A Haar-random orthogonal ``n x n`` matrix (QR of a Gaussian matrix, signs fixed)."""
    n = _check_count("n", n)
    rng = _check_rng(rng)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def whitened_inputs(
    n_samples: int, d_in: int, *, rng: np.random.Generator
) -> Float[np.ndarray, "batch d_in"]:
    """Inputs with exactly identity second moment: ``X^T X / n_samples = I`` (needs ``n >= d``).

    Gaussian draws are orthonormalized (thin QR) and scaled by ``sqrt(n_samples)``.
    """
    n = _check_count("n_samples", n_samples)
    d = _check_count("d_in", d_in)
    rng = _check_rng(rng)
    if n < d:
        raise PiamiValueError(
            f"whitening needs n_samples >= d_in, got n_samples={n} < d_in={d}; draw more samples"
        )
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    return q * np.sqrt(n)


class LinearTeacher:
    """A linear map ``y = W* x``, ``W* = U diag(s) V^T``, with Haar-random singular vectors.

    Args:
        singular_values: the mode strengths ``s_1 >= s_2 >= ... > 0`` (sorted internally).
        d_in: input dimension (>= number of modes).
        d_out: output dimension (>= number of modes).
        rng: draws ``U`` and ``V``.

    Attributes:
        s: singular values, shape ``(n_modes,)``, descending.
        U: output singular vectors, shape ``(d_out, n_modes)``.
        V: input singular vectors, shape ``(d_in, n_modes)``.
        weight: ``W*``, shape ``(d_out, d_in)``.
    """

    def __init__(
        self,
        singular_values: Sequence[float],
        d_in: int,
        d_out: int,
        *,
        rng: np.random.Generator,
    ) -> None:
        s = np.asarray(singular_values, dtype=np.float64)
        if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise PiamiValueError(
                "singular_values must be a non-empty list of positive numbers, got "
                f"{singular_values!r}"
            )
        d_in = _check_count("d_in", d_in)
        d_out = _check_count("d_out", d_out)
        if s.size > min(d_in, d_out):
            raise PiamiValueError(
                f"{s.size} modes need d_in and d_out >= {s.size}, got d_in={d_in}, d_out={d_out}"
            )
        rng = _check_rng(rng)
        self.s = np.sort(s)[::-1].copy()
        self.U = random_orthogonal(d_out, rng=rng)[:, : s.size]
        self.V = random_orthogonal(d_in, rng=rng)[:, : s.size]
        self.weight = (self.U * self.s) @ self.V.T
        self.d_in, self.d_out = d_in, d_out

    def sample(
        self, n_samples: int, *, rng: np.random.Generator
    ) -> tuple[Float[np.ndarray, "batch d_in"], Float[np.ndarray, "batch d_out"]]:
        """Whitened inputs and noiseless targets ``(X, Y)``, ``Y = X W*^T``, ``Y^T X / n = W*``."""
        x = whitened_inputs(n_samples, self.d_in, rng=rng)
        return x, x @ self.weight.T

    def mode_strengths(self, w: Float[np.ndarray, "d_out d_in"]) -> np.ndarray:
        """Strength of each teacher mode in a student map: ``u_a = U[:, a]^T W V[:, a]``."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.d_out, self.d_in):
            raise PiamiValueError(f"w must have shape {(self.d_out, self.d_in)}, got {w.shape}")
        return np.einsum("oa,oi,ia->a", self.U, w, self.V)


# The three targets of Abbe et al. 2023 with all coefficients 1, by leap.
STAIRCASES: dict[int, tuple[tuple[int, ...], ...]] = {
    1: ((0,), (0, 1), (0, 1, 2)),
    2: ((0,), (0, 1, 2)),
    3: ((0, 1, 2),),
}


class StaircaseTarget:
    """``y(x) = sum_S c_S prod_{i in S} x_i`` on the hypercube ``{-1, +1}^d``.

    Args:
        supports: the monomials, tuples of coordinate indices ``< d``.
        coefficients: one per monomial (default all 1).
        d: input dimension.

    Example:
        >>> t = StaircaseTarget.standard(leap=2, d=10)
        >>> t.leap, t.plateau_losses().tolist()
        (2, [2.0, 1.0, 0.0])
    """

    def __init__(
        self,
        supports: Sequence[Sequence[int]],
        *,
        d: int,
        coefficients: Sequence[float] | None = None,
    ) -> None:
        sets = _check_supports(supports)
        self.d = _check_count("d", d)
        if max(max(s) for s in sets) >= self.d:
            raise PiamiValueError(f"support indices must be < d={self.d}, got {supports!r}")
        self.supports = tuple(tuple(sorted(s)) for s in sets)
        c = np.ones(len(sets)) if coefficients is None else np.asarray(coefficients, float)
        if c.shape != (len(sets),) or not np.all(np.isfinite(c)):
            raise PiamiValueError(
                f"need {len(sets)} finite coefficients (one per support), got {coefficients!r}"
            )
        self.coefficients = c

    @classmethod
    def standard(cls, *, leap: int, d: int) -> StaircaseTarget:
        """``x1 + x1x2 + x1x2x3`` (leap 1), ``x1 + x1x2x3`` (leap 2) or ``x1x2x3`` (leap 3)."""
        if leap not in STAIRCASES:
            raise PiamiValueError(f"standard staircases have leap 1, 2 or 3, got {leap!r}")
        return cls(STAIRCASES[leap], d=d)

    @property
    def leap(self) -> int:
        """Leap complexity of the target (:func:`piami.theory.leap.leap_complexity`)."""
        return leap_complexity(self.supports)

    def plateau_losses(self) -> np.ndarray:
        """Predicted mean squared error on each plateau (first: nothing learned; last: 0)."""
        return plateau_losses(self.supports, self.coefficients)

    def __call__(self, x: Float[np.ndarray, "batch d"]) -> np.ndarray:
        """The target on inputs ``x`` of shape ``(batch, d)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise PiamiValueError(f"x must have shape (batch, {self.d}), got {x.shape}")
        y = np.zeros(x.shape[0])
        for s, c in zip(self.supports, self.coefficients, strict=True):
            y += c * np.prod(x[:, list(s)], axis=1)
        return y

    def sample(
        self, n_samples: int, *, rng: np.random.Generator
    ) -> tuple[Float[np.ndarray, "batch d"], np.ndarray]:
        """Uniform hypercube inputs (float +-1) and their targets."""
        n = _check_count("n_samples", n_samples)
        rng = _check_rng(rng)
        x = rng.integers(0, 2, size=(n, self.d)).astype(np.float64) * 2.0 - 1.0
        return x, self(x)
