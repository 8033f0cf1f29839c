"""Settings and bars of the reconstruction-loop experiment (bars fixed before any run).

The network, its training schedule and its R² bar are belief-geometry's
(:mod:`piami.experiments.belief_geometry`): :func:`belief_config` turns these settings into a
belief-geometry config, whose :func:`~piami.experiments.belief_geometry.build_model` and
``train_config()`` build the network and its optimizer, so the two experiments train the same
Transformer the same way; only the data differ (here a fixed raw sample, there fresh samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from piami.errors import PiamiValueError
from piami.experiments.belief_geometry import Config as BeliefConfig
from piami.experiments.belief_geometry import build_model, process_of
from piami.models import Transformer
from piami.processes.hmm import HiddenMarkovModel

REF = (
    "Shai et al. 2024 (belief geometry); Shalizi & Klinkner 2004 (CSSR); "
    "Upper 1997, Jaeger 2000 (a presentation's predictions are its belief times a fixed matrix; "
    "the minimal one has the Hankel rank's dimension)"
)
LN2 = math.log(2.0)
MESS3 = "mess3(x=0.05, a=0.85)"
#: Allowed 1 - R² of a belief read-out from the final layer: issue 3's bar, belief-geometry's
#: default ``r2_tolerance`` (the same in the quick variant).
R2_TOLERANCE = 0.015
#: Widest gap bound that still decides the predictive comparison (a priori): a reconstruction whose
#: error lets the R² move by more than twice the bar's width cannot show that its geometry is
#: carried as well as the truth's.
MAX_GAP_BOUND = 2 * R2_TOLERANCE
#: Margin by which the trained network must beat the untrained one (a priori, stated before the
#: first run): an R² gain below 0.01 would not tell training from a lucky initialization.
TRAINED_MARGIN = 0.01
#: Largest held-out R² a probe on shuffled targets may score (belief-geometry's control bar).
SHUFFLED_BAR = 0.01
#: Memory the reconstructed text machine must show: its held-out log-loss at least this many bits
#: below the symbol frequencies' (a priori, stated before the first run).
MEMORY_MARGIN_BITS = 0.05
#: Smoothing of the reconstructed machine before its beliefs are read (a transition CSSR never
#: saw would otherwise make a held-out window impossible): ``(1 - eps) T + eps / k`` in place.
SMOOTHING = 1e-6
#: Symbols per sampled row of the synthetic process (histories never cross rows).
ROW_LENGTH = 1_000
#: The four symbols text is mapped to.
TEXT_ALPHABET = ("vowel", "consonant", "space or newline", "other")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the reconstruction-loop experiment (every bad value raises
    :class:`~piami.errors.PiamiValueError`)."""

    seed: int = 0  # seeds the samples, the reconstruction's data, the network and the probe sets
    process: str = MESS3  # the synthetic process: a hidden Markov model spec
    synthetic: bool = True  # run the synthetic part (truth known: the predictions)
    n_samples: int = 2_000_000  # raw symbols of the synthetic sample (CSSR and training data)
    alpha: float = 0.001  # CSSR's significance level (Shalizi & Klinkner's default)
    future_length: int = 3  # l: predictive beliefs are Pr(next l symbols | past)
    text: bool = True  # run the real-text part (Shakespeare mapped to 4 symbols)
    text_chars: int | None = None  # characters of Shakespeare read (None: all, ~5.06M)
    text_holdout: float = 0.1  # share at the end of the text held out for probes and losses
    n_ctx: int = 10  # context length the model reads
    n_layers: int = 4  # transformer blocks
    d_model: int = 64  # residual stream width
    n_heads: int = 1  # attention heads per block
    d_head: int = 8  # head width
    d_mlp: int = 256  # MLP hidden width
    n_steps: int = 600  # optimizer steps per network: 600 x 512 windows of n_ctx + 1 symbols
    batch_size: int = 512  # windows of the raw data per step
    lr: float = 3e-3  # AdamW peak learning rate (betas 0.9, 0.99; no weight decay)
    warmup_frac: float = 0.03  # warm-up fraction, then cosine to 0
    grad_clip: float = 1.0  # largest gradient norm
    n_probe_seqs: int = 5000  # held-out windows to fit the probes (as many again to score them)
    shuffle_beliefs: bool = False  # broken ingredient: reconstructed beliefs permuted across rows
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype
    n_threads: int | None = 1  # torch CPU threads (1 is fastest on a shared 2-core machine)

    def __post_init__(self) -> None:
        if not (self.synthetic or self.text):
            raise PiamiValueError("nothing to run: set synthetic=true, text=true or both")
        for name in ("n_samples", "future_length", "n_probe_seqs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.n_samples < 10 * ROW_LENGTH:
            raise PiamiValueError(
                f"n_samples must be >= {10 * ROW_LENGTH} (ten rows of {ROW_LENGTH}), got "
                f"{self.n_samples}"
            )
        if self.n_probe_seqs < 100:
            raise PiamiValueError(f"n_probe_seqs must be >= 100, got {self.n_probe_seqs}")
        if not 0 < self.alpha < 1:
            raise PiamiValueError(f"alpha must be in (0, 1) (e.g. 0.001), got {self.alpha!r}")
        if self.future_length > 6:
            raise PiamiValueError(
                f"future_length must be <= 6 (k**l predictive coordinates), got "
                f"{self.future_length}"
            )
        if not 0 < self.text_holdout < 0.5:
            raise PiamiValueError(f"text_holdout must be in (0, 0.5), got {self.text_holdout!r}")
        if self.text_chars is not None and self.text_chars < 10_000:
            raise PiamiValueError(
                f"text_chars must be None (all) or >= 10000, got {self.text_chars!r}"
            )
        proc = process_of(belief_config(self))  # bad network or training settings fail here
        if not isinstance(proc, HiddenMarkovModel):
            raise PiamiValueError(
                f"process {self.process!r} must be a hidden Markov model (nonnegative T), so "
                "that its predictive beliefs are belief @ T[w] @ 1"
            )


def belief_config(cfg: Config) -> BeliefConfig:
    """The belief-geometry config of the same network, schedule and bar (no checkpoints)."""
    return BeliefConfig(
        seed=cfg.seed,
        process=cfg.process,
        n_ctx=cfg.n_ctx,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_frac=cfg.warmup_frac,
        grad_clip=cfg.grad_clip,
        n_probe_seqs=cfg.n_probe_seqs,
        n_checkpoints=0,
        r2_tolerance=R2_TOLERANCE,
        device=cfg.device,
        dtype=cfg.dtype,
        n_threads=cfg.n_threads,
    )


def build_network(cfg: Config, n_symbols: int) -> Transformer:
    """The untrained network of ``cfg`` over ``n_symbols`` tokens (weights drawn from the seed).

    Over the synthetic process's alphabet it is belief-geometry's
    :func:`~piami.experiments.belief_geometry.build_model`; over another alphabet (text), the
    same shape and initialization with its vocabulary changed.
    """
    bcfg = belief_config(cfg)
    if n_symbols == process_of(bcfg).n_symbols:
        return build_model(bcfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = replace(bcfg.model_config(), d_vocab=n_symbols)
    return Transformer(shape, generator=gen, device=cfg.device, dtype=cfg.dtype)


__all__ = [
    "LN2",
    "MAX_GAP_BOUND",
    "MEMORY_MARGIN_BITS",
    "MESS3",
    "R2_TOLERANCE",
    "REF",
    "ROW_LENGTH",
    "SHUFFLED_BAR",
    "SMOOTHING",
    "TEXT_ALPHABET",
    "TRAINED_MARGIN",
    "Config",
    "belief_config",
    "build_network",
]
