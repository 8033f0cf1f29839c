"""The settings of the belief-geometry experiment, its process and its untrained network."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from piami.errors import PiamiFileError, PiamiValueError
from piami.models import Transformer, TransformerConfig
from piami.processes import from_spec
from piami.train import TrainConfig


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the belief-geometry experiment (defaults: Mess3(0.05, 0.85), a few minutes on
    one CPU core; every bad value raises :class:`~piami.errors.PiamiValueError`).

    With ``data`` set (data mode, :mod:`.data`) the network trains on windows of that file and
    ``process`` is the *stated* machine whose beliefs are probed, e.g.
    ``'machine("DIR/machine.json")'`` written by ``piami reconstruct DATA --out DIR``.
    """

    seed: int = 0  # seeds the initial weights, the training stream and the held-out sets
    process: str = "mess3(x=0.05, a=0.85)"  # spec string of a hidden Markov process
    data: str | None = None  # symbol file (text or .npy) to train on; None: fresh samples
    data_holdout_frac: float = 0.2  # with data: the tail of every row held out for the probes
    n_ctx: int = 10  # context length the model reads
    n_layers: int = 4  # transformer blocks
    d_model: int = 64  # residual stream width
    n_heads: int = 1  # attention heads per block
    d_head: int = 8  # head width
    d_mlp: int = 256  # MLP hidden width
    n_steps: int = 1200  # optimizer steps: 1200 x 512 x 10 = 6.1M tokens
    batch_size: int = 512  # fresh sequences per step
    lr: float = 3e-3  # AdamW peak learning rate (betas 0.9, 0.99; no weight decay)
    warmup_frac: float = 0.03  # warm-up fraction, then cosine to 0
    grad_clip: float = 1.0  # largest gradient norm
    time_budget_s: float | None = None  # stop training after this many s (rows: not identified)
    n_probe_seqs: int = 5000  # held-out sequences to fit the probes (as many again to score them)
    n_checkpoints: int = 16  # log-spaced checkpoints kept during training
    kl_tolerance: float = 0.002  # allowed KL(exact || model), nats (issue 3's bar; quick too)
    r2_tolerance: float = 0.015  # allowed 1 - R^2 of the final layer (issue 3's bar; quick too)
    checkpoint_dir: str | None = None  # keep the run's checkpoints here; None: a temporary folder
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype
    n_threads: int | None = 1  # torch CPU threads (1 is fastest on a shared 2-core machine)

    def __post_init__(self) -> None:
        for name in ("n_ctx", "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise PiamiValueError(
                    f"{name} must be an integer >= 1, got {getattr(self, name)!r}"
                )
        if self.batch_size < 1 or self.n_probe_seqs < 100:
            raise PiamiValueError(
                f"batch_size must be >= 1 and n_probe_seqs >= 100, got {self.batch_size} and "
                f"{self.n_probe_seqs}"
            )
        if not (self.kl_tolerance >= 0 and 0 <= self.r2_tolerance <= 1):
            raise PiamiValueError(
                f"kl_tolerance must be a number of nats >= 0 and r2_tolerance in [0, 1], got "
                f"{self.kl_tolerance!r} and {self.r2_tolerance!r} (issue 3's bars: 0.002, 0.015)"
            )
        _check_data(self)
        process_of(self)  # a bad spec fails before any work
        self.train_config()  # so do bad training settings (lr, time_budget_s, ...)

    def model_config(self) -> TransformerConfig:
        """The transformer's shape (its vocabulary is the process's alphabet)."""
        return TransformerConfig(
            n_layers=self.n_layers,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_head=self.d_head,
            d_mlp=self.d_mlp,
            n_ctx=self.n_ctx,
            d_vocab=process_of(self).n_symbols,
        )

    def train_config(self) -> TrainConfig:
        """The training loop's settings (AdamW, warm-up then cosine, log-spaced checkpoints)."""
        return TrainConfig(
            n_steps=self.n_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            betas=(0.9, 0.99),
            weight_decay=0.0,
            warmup_frac=self.warmup_frac,
            grad_clip=self.grad_clip,
            time_budget_s=self.time_budget_s,
            eval_every=max(1, self.n_steps // 40),
            n_checkpoints=self.n_checkpoints,
            seed=self.seed,
            device=self.device,
            dtype=self.dtype,
            n_threads=self.n_threads,
        )


def _check_data(cfg: Config) -> None:
    """The data settings (the file is read, and its alphabet checked, when the run starts)."""
    f = cfg.data_holdout_frac
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
        raise PiamiValueError(
            f"data_holdout_frac must be a fraction in (0, 1), e.g. 0.2, got {f!r}"
        )
    if cfg.data is None:
        return
    if not isinstance(cfg.data, str) or not cfg.data.strip():
        raise PiamiValueError(
            f"data must be the path of a symbol file (text or .npy) or None, got {cfg.data!r}"
        )
    if not Path(cfg.data).is_file():
        raise PiamiFileError(
            f"no data file {cfg.data}; give a text file (each non-whitespace character one "
            "symbol) or a .npy array of integer ids"
        )


def process_of(cfg: Config) -> Any:
    """The process of ``cfg`` (a :class:`~piami.processes.HiddenMarkovModel`).

    Raises:
        PiamiValueError: the spec names a process without exact beliefs.
    """
    proc = from_spec(cfg.process)
    if not hasattr(proc, "beliefs"):
        raise PiamiValueError(
            f"process {cfg.process!r} has no exact beliefs; use a hidden Markov process"
        )
    return proc


def build_model(cfg: Config) -> Transformer:
    """The untrained network of ``cfg`` (initial weights drawn from ``cfg.seed``)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    return Transformer(cfg.model_config(), generator=gen, device=cfg.device, dtype=cfg.dtype)


__all__ = ["Config", "build_model", "process_of"]
