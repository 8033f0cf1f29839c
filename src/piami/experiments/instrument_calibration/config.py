"""Settings of the ``instrument-calibration`` experiment and its quick variant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piami.errors import PiamiValueError

#: Fields that must be positive integers.
POSITIVE_INTS = (
    "n_points",
    "n_twonn_draws",
    "sae_samples",
    "sae_features",
    "sae_dim",
    "sae_latents",
    "sae_steps",
    "bilinear_steps",
    "n_random_tables",
    "fractal_steps",
    "fractal_chains",
    "n_ctx",
    "n_layers",
    "d_model",
    "train_steps",
    "batch_size",
    "n_probe_seqs",
    "n_dim_seqs",
    "sae_belief_latents",
)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the instrument-calibration experiment."""

    seed: int = 0  # seeds every draw, initialization and training stream
    n_points: int = 2000  # points per manifold for TwoNN / MLE (the bar is at 2,000)
    twonn_tolerance: float = 0.05  # relative error allowed for TwoNN and MLE at d = 2..5
    n_twonn_draws: int = 5  # independent point clouds per dimension
    sae_samples: int = 20000  # superposition samples
    sae_features: int = 64  # known features (random unit directions)
    sae_dim: int = 32  # ambient dimension (< sae_features: superposition)
    sae_p_fire: float = 0.047  # Bernoulli firing probability per feature (~3 active)
    sae_latents: int = 128  # SAE dictionary size
    sae_steps: int = 1500  # Adam steps per SAE
    bilinear_steps: int = 1500  # AdamW steps for the bilinear layer
    n_random_tables: int = 300  # random tables for the natural-latent bound and identities
    fractal_steps: int = 1500  # belief-update steps per chain (after burn-in)
    fractal_chains: int = 16  # chains per subset
    n_subsets: int = 5  # disjoint subsets for the intervals
    network: bool = True  # train the belief-geometry model (Mess3 sections)
    mess3_x: tuple[float, ...] = (0.05, 0.15)  # Mess3 x of each setting
    mess3_a: tuple[float, ...] = (0.85, 0.6)  # Mess3 a of each setting
    n_ctx: int = 10  # context of the belief model
    n_layers: int = 4  # transformer blocks
    d_model: int = 64  # residual width
    train_steps: int = 2000  # optimizer steps per belief model (no wall-clock limit)
    batch_size: int = 512  # sequences per step
    n_probe_seqs: int = 3000  # held-out sequences for the SAE and probe (as many again to score)
    n_dim_seqs: int = 4000  # held-out contexts whose last residual vectors are measured
    dimension_quantiles: tuple[float, float] = (0.01, 0.1)  # pair-distance quantiles of the radii
    dimension_tolerance: float = 0.15  # allowed |network - theory| correlation dimension
    sae_belief_latents: int = 256  # SAE size on the residual stream
    sae_belief_k: tuple[int, ...] = (2, 4, 16)  # TopK values on the residual stream
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype
    n_threads: int | None = 1  # torch/BLAS threads (1 is fastest on a shared 2-core machine)

    def __post_init__(self) -> None:
        for name in POSITIVE_INTS:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_points < 100:
            raise PiamiValueError(
                f"n_points must be >= 100 (TwoNN needs a cloud), got {self.n_points}"
            )
        if not isinstance(self.n_subsets, int) or self.n_subsets < 2:
            raise PiamiValueError(f"n_subsets must be an integer >= 2, got {self.n_subsets!r}")
        if self.fractal_chains < 2 or self.n_twonn_draws < 2:
            raise PiamiValueError(
                "fractal_chains and n_twonn_draws must be >= 2 (their spread gives the errors)"
            )
        if self.sae_features <= self.sae_dim:
            raise PiamiValueError(
                "superposition needs sae_features > sae_dim, got "
                f"{self.sae_features} <= {self.sae_dim}"
            )
        if not 0 < self.sae_p_fire <= 1:
            raise PiamiValueError(f"sae_p_fire must be in (0, 1], got {self.sae_p_fire}")
        self._check_network_and_tolerances()

    def _check_network_and_tolerances(self) -> None:
        if len(self.mess3_x) != len(self.mess3_a) or not self.mess3_x:
            raise PiamiValueError("mess3_x and mess3_a must be non-empty and of equal length")
        for x, a in zip(self.mess3_x, self.mess3_a, strict=True):
            if not (0 < x < 0.5 and 0 <= a <= 1):
                raise PiamiValueError(f"Mess3 needs 0 < x < 0.5 and 0 <= a <= 1, got ({x}, {a})")
        if not self.sae_belief_k or any(
            k < 1 or k > self.sae_belief_latents for k in self.sae_belief_k
        ):
            raise PiamiValueError("sae_belief_k must hold values in [1, sae_belief_latents]")
        q = self.dimension_quantiles
        if len(q) != 2 or not 0 < q[0] < q[1] < 1:
            raise PiamiValueError(
                f"dimension_quantiles must be (low, high) with 0 < low < high < 1, got {q}"
            )
        if not (self.twonn_tolerance > 0 and self.dimension_tolerance > 0):
            raise PiamiValueError("twonn_tolerance and dimension_tolerance must be > 0")
        if self.n_probe_seqs < 100 or self.n_dim_seqs < 50 * self.n_subsets:
            raise PiamiValueError(
                f"n_probe_seqs must be >= 100 and n_dim_seqs >= 50 * n_subsets, got "
                f"{self.n_probe_seqs} and {self.n_dim_seqs}"
            )


#: The ``--quick`` variant (what the test suite runs).
QUICK: dict[str, Any] = {
    "sae_samples": 8000,
    "sae_steps": 600,
    "bilinear_steps": 400,
    "n_random_tables": 100,
    "fractal_steps": 400,
    "fractal_chains": 8,
    "mess3_x": (0.15,),
    "mess3_a": (0.6,),
    "n_layers": 2,
    "d_model": 32,
    "train_steps": 150,
    "batch_size": 256,
    "n_probe_seqs": 600,
    "n_dim_seqs": 2000,
    "sae_belief_latents": 64,
    "sae_belief_k": (4,),
}
