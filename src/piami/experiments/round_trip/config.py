"""The settings of the round-trip experiment and the belief-geometry network it exports."""

from __future__ import annotations

from dataclasses import dataclass

from piami.errors import PiamiValueError
from piami.experiments import belief_geometry as bg

#: The belief-geometry fields a round trip sets; its quick variant is belief-geometry's.
BELIEF_FIELDS = ("n_layers", "d_mlp", "n_steps", "batch_size", "n_probe_seqs", "n_checkpoints")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the round trip (defaults: belief-geometry's default Mess3 network; the quick
    variant trains its quick network). Every bad value raises
    :class:`~piami.errors.PiamiValueError`."""

    seed: int = 0  # seeds the network (as belief-geometry), the probe sets and the chains
    n_layers: int = 4  # transformer blocks of the belief-geometry network
    d_mlp: int = 256  # its MLP width
    n_steps: int = 1200  # its optimizer steps
    batch_size: int = 512  # its fresh sequences per step
    n_probe_seqs: int = 5000  # sequences that fit the probes (as many again score them)
    n_checkpoints: int = 16  # log-spaced checkpoints of its training (kept in a temporary folder)
    llc_seqs: int = 2048  # sequences in the LLC's data set (its n)
    llc_chains: int = 4  # SGLD chains per path (their spread is the LLC row's noise)
    llc_burnin: int = 100  # burn-in steps per chain
    llc_draws: int = 300  # draws per chain
    llc_step_size: float = 1e-4  # SGLD step (llc-calibration's transformer setting)
    llc_gamma: float = 100.0  # localization strength (llc-calibration's transformer setting)
    llc_batch_size: int = 64  # sequences per SGLD minibatch
    geometry_rows: int = 2000  # points (the same on every path) for CKA and TwoNN
    device: str = "auto"  # torch device of training and of every path (float64 twins too)
    n_threads: int | None = 1  # torch CPU threads

    def __post_init__(self) -> None:
        ints = ("llc_seqs", "llc_chains", "llc_burnin", "llc_draws", "llc_batch_size")
        for name in (*ints, "geometry_rows"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int)
                or v < (0 if name == "llc_burnin" else 1)
            ):
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.llc_chains < 2 or self.llc_draws < 4 or self.geometry_rows < 10:
            raise PiamiValueError(
                "llc_chains must be >= 2 (their spread is the LLC row's noise), llc_draws >= 4 "
                f"and geometry_rows >= 10; got {self.llc_chains}, {self.llc_draws}, "
                f"{self.geometry_rows}"
            )
        for name in ("llc_step_size", "llc_gamma"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < float("inf"):
                raise PiamiValueError(f"{name} must be a finite number > 0, got {v!r}")
        self.belief_config()  # bad network settings fail now, with belief-geometry's message

    def belief_config(self) -> bg.Config:
        """The belief-geometry config whose network is exported (its process and shape)."""
        return bg.Config(
            seed=self.seed,
            **{name: getattr(self, name) for name in BELIEF_FIELDS},
            device=self.device,
            n_threads=self.n_threads,
        )


#: The quick variant: belief-geometry's quick network, and short chains.
QUICK = {
    **{k: v for k, v in bg.EXPERIMENT.quick.items() if k in BELIEF_FIELDS},
    "llc_seqs": 1024,
    "llc_burnin": 20,
    "llc_draws": 40,
}

__all__ = ["BELIEF_FIELDS", "QUICK", "Config"]
