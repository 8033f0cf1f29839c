"""The power-law-curves experiment's settings."""

from __future__ import annotations

from dataclasses import dataclass

from piami.errors import PiamiValueError


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the power-law learning-curve experiment."""

    seed: int = 0  # root of every numpy Generator (spawned per curve, size and seed)
    pairs: tuple[tuple[float, float], ...] = ((1.5, 2.0), (2.0, 3.0), (1.5, 5.0))  # (a, b)
    n_modes: int = 8192  # M: latent modes of the kernel curves and of the random features
    n_features: int = 512  # N: random features, and the modes of the finite-M trap
    n_min: int = 32  # smallest training-set size (sizes are the powers of two in between)
    n_max: int = 4096  # largest training-set size (random-feature curve)
    fit_fraction: int = 16  # kernel curves and the exponent fit use n <= n_modes / fit_fraction
    n_seeds: int = 40  # independent training sets per size (the exponent bar needs ~40)
    rf_ridge: float = 1e-3  # ridge delta of the random-feature regression (finite at n = N)
    allowance: float = 2.0  # finite-size allowance c/n on log(test MSE): theory exact to O(1/n)
    exponent_bar: float = 0.05  # the bar on the fitted exponent
    spectrum_shift: float = 0.5  # wrong-spectrum control: theory with a + this
    shuffle_labels: bool = False  # broken ingredient: training labels shuffled in every curve

    def __post_init__(self) -> None:
        if not self.pairs or any(len(p) != 2 or min(p) <= 1 for p in self.pairs):
            raise PiamiValueError(
                "pairs must be a non-empty tuple of (a, b) with a > 1 and b > 1, got "
                f"{self.pairs!r}"
            )
        for name in ("n_modes", "n_features", "n_min", "n_max", "fit_fraction"):
            val = getattr(self, name)
            if not isinstance(val, int) or val < 1 or val & (val - 1):
                raise PiamiValueError(f"{name} must be a power of two >= 1, got {val!r}")
        if self.n_min < 8:
            raise PiamiValueError(f"n_min must be >= 8 (the theory is O(1/n)), got {self.n_min}")
        if self.n_modes // self.fit_fraction < 4 * self.n_min:
            raise PiamiValueError(
                f"need n_modes / fit_fraction >= 4 n_min (three sizes for the exponent fit), got "
                f"{self.n_modes}/{self.fit_fraction} < 4 x {self.n_min}: raise n_modes"
            )
        if self.n_features < 8 * self.n_min or self.n_max < 2 * self.n_features:
            raise PiamiValueError(
                f"need n_features >= 8 n_min (trap fit over [N/8, N/2]) and n_max >= 2 "
                f"n_features (the random-feature curve crosses N); got n_min {self.n_min}, "
                f"n_features {self.n_features}, n_max {self.n_max}"
            )
        if self.n_features >= self.n_modes:
            raise PiamiValueError("n_features must be < n_modes (features fewer than latents)")
        if self.n_seeds < 3:
            raise PiamiValueError(f"n_seeds must be >= 3 (standard errors), got {self.n_seeds}")
        if not (self.rf_ridge > 0 and self.allowance >= 0 and self.exponent_bar > 0):
            raise PiamiValueError("need rf_ridge > 0, allowance >= 0 and exponent_bar > 0")
        if not self.spectrum_shift > 0:
            raise PiamiValueError(f"spectrum_shift must be > 0, got {self.spectrum_shift}")
