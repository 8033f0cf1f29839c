"""Settings of developmental-stages, and the bars its rows use (all fixed before the full run)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from piami.errors import PiamiValueError

REFERENCE = (
    "Hoogland et al., TMLR 2025 (Loss landscape degeneracy and stagewise development in "
    "transformers): LLC stage boundaries of a 2-layer attention-only LM at bigram, n-gram and "
    "induction-head formation"
)
#: Smallest rise of the induction score (nats per token) that says induction formed at all: about
#: a sixth of the characters' unigram entropy, which an exact copier gains on the second copy of
#: unigram-random characters (a priori).
INDUCTION_FORMED = 0.5
#: Largest rise of the induction score (nats per token) a model without induction may show: the
#: drift of a model that only sharpens its in-context token counts (a priori).
INDUCTION_ABSENT = 0.1
#: Largest Geweke |z| of a converged chain (Geweke 1992: |z| > 3 is drift) and largest split
#: R-hat of a converged estimate (Gelman et al. 2013 use 1.1): an LLC estimate outside either is
#: flagged as not converged and left out of the curve.
GEWEKE_MAX = 3.0
RHAT_MAX = 1.1
#: Share of an estimate's chains that must pass the Geweke check.
CONVERGED_SHARE = 0.5
#: Smallest number of identified (converged, positive) LLC estimates from which critical points
#: are sought.
MIN_CONVERGED = 8
#: Largest share of the log-step range that may lie within the tolerance of some LLC boundary:
#: above it, a marker transition anywhere would match one by chance (control; a priori).
MAX_CHANCE_COVERAGE = 0.5


def _int(name: str, v: object, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise PiamiValueError(f"{name} must be an integer >= {low}, got {v!r}")


def _num(name: str, v: object, low: float, high: float = math.inf, *, open_low=True) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or (v <= low if open_low else v < low) or v > high:
        side = ">" if open_low else ">="
        raise PiamiValueError(f"{name} must be a number {side} {low} and <= {high}, got {v!r}")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of developmental-stages (every bad value raises
    :class:`~piami.errors.PiamiValueError`)."""

    seed: int = 0  # seeds the model, the batches, the token sets and the SGLD chains
    text_chars: int | None = None  # characters of Shakespeare read (None: all, ~5.06M)
    n_ctx: int = 64  # context length (characters)
    d_model: int = 32  # residual stream width; 2 attention-only layers (d_mlp = 0)
    n_heads: int = 2  # heads per layer, d_head = d_model / n_heads
    n_steps: int = 3000  # AdamW steps (constant learning rate after a 1% warm-up)
    batch_size: int = 32  # windows of n_ctx + 1 characters per step
    lr: float = 1e-2  # AdamW learning rate (betas 0.9, 0.99, no weight decay, clip 1)
    n_checkpoints: int = 20  # log-spaced checkpoints in [1, n_steps], plus step 0
    llc_chains: int = 4  # SGLD chains per LLC estimate
    llc_burnin: int = 50  # SGLD steps per chain left out of the estimate
    llc_draws: int = 150  # SGLD steps per chain that enter the estimate
    llc_step: float = 3e-4  # SGLD step size epsilon (the same at every checkpoint)
    llc_gamma: float = 300.0  # localization strength gamma
    llc_windows: int = 1024  # n: training windows of the LLC's loss (n beta = n / ln n)
    llc_batch: int = 8  # windows per SGLD step and chain
    smoothing: float = 0.25  # bandwidth (decades of step) of the LLC curve's local linear fit
    flat_fraction: float = 0.15  # slopes below this share of the steepest count as flat
    z: float = 2.5  # slopes within z standard errors of zero count as flat
    n_marker_windows: int = 64  # held-out windows for the loss, bigram and attention markers
    n_induction_seqs: int = 64  # repeated random sequences for the induction markers
    control: bool = True  # also train and analyse the shuffled-text control
    shuffle_text: bool = False  # broken ingredient: train the main model on shuffled text
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype
    n_threads: int | None = 1  # torch CPU threads

    def __post_init__(self) -> None:
        _int("seed", self.seed, 0)
        if self.text_chars is not None:
            _int("text_chars", self.text_chars, 20_000)
        _int("n_ctx", self.n_ctx, 8)
        _int("d_model", self.d_model, 2)
        _int("n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"
            )
        _int("n_steps", self.n_steps, 10)
        _int("batch_size", self.batch_size, 1)
        _num("lr", self.lr, 0.0, 1.0)
        _int("n_checkpoints", self.n_checkpoints, 5)
        if self.n_checkpoints > self.n_steps:
            raise PiamiValueError(
                f"n_checkpoints ({self.n_checkpoints}) must not exceed n_steps ({self.n_steps})"
            )
        _int("llc_chains", self.llc_chains, 2)
        _int("llc_burnin", self.llc_burnin, 0)
        _int("llc_draws", self.llc_draws, 20)
        _num("llc_step", self.llc_step, 0.0, 1.0)
        _num("llc_gamma", self.llc_gamma, 0.0, open_low=False)
        _int("llc_windows", self.llc_windows, 16)
        _int("llc_batch", self.llc_batch, 1)
        if self.llc_batch > self.llc_windows:
            raise PiamiValueError(
                f"llc_batch ({self.llc_batch}) must not exceed llc_windows ({self.llc_windows})"
            )
        _num("smoothing", self.smoothing, 0.0, 2.0)
        _num("flat_fraction", self.flat_fraction, 0.0, 0.99, open_low=False)
        _num("z", self.z, 0.0, 10.0, open_low=False)
        _int("n_marker_windows", self.n_marker_windows, 4)
        _int("n_induction_seqs", self.n_induction_seqs, 4)
        for name in ("control", "shuffle_text"):
            if not isinstance(getattr(self, name), bool):
                raise PiamiValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.n_threads is not None:
            _int("n_threads", self.n_threads, 1)

    @property
    def d_head(self) -> int:
        """Width of each head."""
        return self.d_model // self.n_heads

    def tolerance(self) -> float:
        """One checkpoint interval in decades: ``log10(n_steps) / (n_checkpoints - 1)``."""
        return math.log10(self.n_steps) / (self.n_checkpoints - 1)


__all__ = [
    "CONVERGED_SHARE",
    "GEWEKE_MAX",
    "INDUCTION_ABSENT",
    "INDUCTION_FORMED",
    "MAX_CHANCE_COVERAGE",
    "MIN_CONVERGED",
    "REFERENCE",
    "RHAT_MAX",
    "Config",
]
