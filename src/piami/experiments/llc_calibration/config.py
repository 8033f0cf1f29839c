"""The settings of llc-calibration: those of one seed, the rate over seeds, the checkpoint part."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from piami.errors import PiamiValueError
from piami.experiments.llc_calibration.cases import (
    CaseConfig,
    parse_deep,
    parse_potential,
    parse_regular,
)
from piami.experiments.llc_calibration.checkpoints import CheckpointConfig
from piami.experiments.llc_calibration.tuning import (
    TUNING_DEEP_LINEAR,
    TUNING_POTENTIALS,
    TUNING_REGULAR,
)

#: Config field -> the tuning cases of that family (never scored).
TUNING_CASES = {
    "regular": TUNING_REGULAR,
    "potentials": TUNING_POTENTIALS,
    "deep_linear": TUNING_DEEP_LINEAR,
}


@dataclass(frozen=True, kw_only=True)
class Config(CaseConfig):
    """Settings of llc-calibration: those of one seed (:class:`CaseConfig`), and these."""

    n_seeds: int = 5  # seeds per case; sub-run seeds are seed * n_seeds + i
    rate_bar: float = 0.8  # a priori: fraction of estimates within tolerance a family must reach
    checkpoint_llc: bool = True  # part (4): LLC along the belief-geometry training checkpoints
    belief_steps: int = 500  # part (4): training steps of the belief model
    belief_checkpoints: int = 6  # part (4): log-spaced checkpoints kept (and measured)
    llc_burnin: int = 100  # part (4): burn-in steps per checkpoint
    llc_draws: int = 300  # part (4): draws per checkpoint

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.n_seeds, bool) or not isinstance(self.n_seeds, int) or self.n_seeds < 1:
            raise PiamiValueError(
                f"n_seeds must be an integer >= 1 (>= 5 to decide), got {self.n_seeds!r}"
            )
        bar = self.rate_bar
        if isinstance(bar, bool) or not (isinstance(bar, (int, float)) and 0 < bar <= 1):
            raise PiamiValueError(f"rate_bar must lie in (0, 1], got {self.rate_bar!r}")
        CheckpointConfig(**self.fields_of(CheckpointConfig))
        for field, tuning in TUNING_CASES.items():
            keys = {architecture(field, t) for t in tuning}
            both = sorted(s for s in getattr(self, field) if architecture(field, s) in keys)
            if both:
                raise PiamiValueError(
                    f"{field}: {both} are tuning cases (the SGLD settings were chosen on them), so "
                    f"they cannot be scored; score other architectures (tuning cases: {tuning})"
                )

    def fields_of(self, cls: type) -> dict[str, Any]:
        """The values of this config's fields that are fields of the dataclass ``cls``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)}

    def seeds(self) -> list[int]:
        """The seeds of the per-seed sub-runs: disjoint for different top-level seeds."""
        return [self.seed * self.n_seeds + i for i in range(self.n_seeds)]


def architecture(field: str, spec: str) -> tuple:
    """A case up to relabeling: widths or their reverse (a transposed problem), exponents sorted.

    Args:
        field: ``"regular"``, ``"potentials"`` or ``"deep_linear"``.
        spec: the case as the config lists it.
    """
    if field == "deep_linear":
        widths, rank = parse_deep(spec)
        return (min(tuple(widths), tuple(widths[::-1])), rank)
    if field == "regular":
        return tuple(sorted(parse_regular(spec)))
    return tuple(sorted(parse_potential(spec)))
