"""Settings and the bars of the reconstruction experiment (fixed before any run)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from piami.errors import PiamiValueError

REF = "Shalizi & Klinkner 2004 (CSSR); Hsu, Kakade & Zhang 2009 (spectral)"
LN2 = math.log(2.0)
#: Exactly synchronizable processes with two causal states: the rate and structure rows.
SYNCHRONIZABLE = ("golden_mean", "even_process")
MESS3 = "mess3(x=0.05, a=0.85)"
#: The issue's bars, fixed before any run (bits).
C_MU_TOL_BITS = 0.005
H_TOL_BITS = 0.005
#: Size at which the structure bar is stated.
STRUCTURE_SIZE = 10_000
#: Least share of replicates that must meet the structure bar (a priori, as the other rate rows).
RATE_BAR = 0.8
#: Widest 95% interval of the rate's slope that decides it: half the gap between N^-1 and N^-1/2.
MAX_SLOPE_INTERVAL = 0.5
#: Published exact Hankel ranks (words up to length 4 on each side; RRXOR 4 with length 3).
HANKEL_RANKS = {"golden_mean": 2, "even_process": 2, MESS3: 3, "rrxor": 5}
ROW_LENGTH = 1_000  # symbols per sampled row: histories never cross rows


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the reconstruction experiment."""

    seed: int = 0  # every sample and shuffle derives from it
    sizes: tuple[int, ...] = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)  # N
    n_replicates: int = 20  # independent samples per process and size
    alpha: float = 0.001  # CSSR's significance level (Shalizi & Klinkner's default)
    rrxor_size: int = 1_000_000  # symbols of the RRXOR sample
    rrxor_lengths: tuple[int, ...] = (3, 4, 5, 6)  # CSSR history lengths L on RRXOR
    mess3_size: int = 1_000_000  # symbols of the Mess3 sample; 0 skips its row
    spectral_size: int = 100_000  # symbols given to spectral learning
    shuffle: bool = False  # broken ingredient: shuffle every sequence before reconstruction

    def __post_init__(self) -> None:
        if len(set(self.sizes)) < 3 or min(self.sizes) < 200:
            raise PiamiValueError(f"need >= 3 distinct sizes >= 200 for the rate, got {self.sizes}")
        if STRUCTURE_SIZE not in self.sizes:
            raise PiamiValueError(
                f"sizes must include {STRUCTURE_SIZE:,}, where the structure bar is stated"
            )
        if self.n_replicates < 5:
            raise PiamiValueError(f"n_replicates must be >= 5, got {self.n_replicates}")
        if not 0 < self.alpha < 1:
            raise PiamiValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if len(self.rrxor_lengths) < 2 or min(self.rrxor_lengths) < 1:
            raise PiamiValueError(f"need >= 2 RRXOR lengths >= 1, got {self.rrxor_lengths}")
        if self.rrxor_size < 1_000 or self.spectral_size < 1_000 or self.mess3_size < 0:
            raise PiamiValueError("rrxor_size and spectral_size must be >= 1000, mess3_size >= 0")
