"""Training settings, the learning-rate schedule, checkpoint steps and the per-step history."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from piami._io import atomic_write_json
from piami.errors import PiamiFileError, PiamiValueError


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimizer, schedule, budget and checkpoint settings of :func:`piami.train.train`."""

    n_steps: int = 1000  # optimizer steps: the length of the schedule
    batch_size: int | None = 1024  # sequences per step; None: the whole fixed training set
    lr: float = 1e-3  # peak learning rate of AdamW
    betas: tuple[float, float] = (0.9, 0.99)  # AdamW moment decay rates
    eps: float = 1e-8  # AdamW denominator floor
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    warmup_frac: float = 0.03  # fraction of the schedule spent rising linearly from 0 to lr
    schedule: Literal["cosine", "constant"] = "cosine"  # shape after the warm-up
    min_lr_frac: float = 0.0  # the cosine ends at min_lr_frac * lr
    grad_clip: float | None = 1.0  # largest global gradient norm; None: no clipping
    time_budget_s: float | None = None  # wall-time cap: stops at a step (schedule unchanged)
    eval_every: int = 0  # held-out loss every so many steps (0: at checkpoints and the end only)
    early_stopping_patience: int | None = None  # stop after this many evaluations without gain
    min_delta: float = 0.0  # smallest decrease of the held-out loss that counts as a gain (nats)
    n_checkpoints: int = 20  # log-spaced checkpoints (plus step 0 and the last step); 0: none
    seed: int = 0  # seeds the batch sampler (numpy) and the minibatch order (torch)
    device: str = "auto"  # torch device ("auto": CUDA, else MPS, else CPU)
    dtype: str = "float32"  # torch dtype of the model
    n_threads: int | None = None  # torch CPU threads while training; None: leave torch's setting

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> PiamiValueError:
            return PiamiValueError(
                f"TrainConfig.{name} must be {want}, got {getattr(self, name)!r}"
            )

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.n_steps) or self.n_steps < 1:
            raise bad("n_steps", "an integer >= 1")
        if self.batch_size is not None and (not is_int(self.batch_size) or self.batch_size < 1):
            raise bad("batch_size", "an integer >= 1 or None")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < math.inf):
            raise bad("lr", "a finite number > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise bad("betas", "two numbers in [0, 1)")
        if not 0 <= self.weight_decay < math.inf:
            raise bad("weight_decay", "a number >= 0")
        if not 0 <= self.warmup_frac < 1:
            raise bad("warmup_frac", "in [0, 1)")
        if self.schedule not in ("cosine", "constant"):
            raise bad("schedule", "'cosine' or 'constant'")
        if not 0 <= self.min_lr_frac <= 1:
            raise bad("min_lr_frac", "in [0, 1]")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise bad("grad_clip", "a number > 0 or None")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise bad("time_budget_s", "a number of seconds > 0 or None")
        if not is_int(self.eval_every) or self.eval_every < 0:
            raise bad("eval_every", "an integer >= 0")
        pat = self.early_stopping_patience
        if pat is not None and (not is_int(pat) or pat < 1):
            raise bad("early_stopping_patience", "an integer >= 1 or None")
        if not self.min_delta >= 0:
            raise bad("min_delta", "a number >= 0")
        if not is_int(self.n_checkpoints) or self.n_checkpoints < 0:
            raise bad("n_checkpoints", "an integer >= 0")
        if self.n_threads is not None and (not is_int(self.n_threads) or self.n_threads < 1):
            raise bad("n_threads", "an integer >= 1 or None")

    def resume_key(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues (JSON-ready)."""
        d = dataclasses.asdict(self)
        for k in ("device", "n_threads", "time_budget_s"):
            d.pop(k)
        d["betas"] = list(d["betas"])
        return d


def lr_factor(progress: float, cfg: TrainConfig) -> float:
    """Learning rate as a fraction of ``cfg.lr`` at schedule progress in [0, 1].

    Linear warm-up over ``warmup_frac``, then constant or a half cosine from 1 to ``min_lr_frac``
    (Loshchilov & Hutter 2017, eq. 5 without restarts).

    Example:
        >>> cfg = TrainConfig(warmup_frac=0.1)
        >>> lr_factor(0.05, cfg), lr_factor(0.1, cfg), round(lr_factor(1.0, cfg), 12)
        (0.5, 1.0, 0.0)
    """
    if cfg.warmup_frac > 0 and progress < cfg.warmup_frac:
        return progress / cfg.warmup_frac
    if cfg.schedule == "constant":
        return 1.0
    t = (progress - cfg.warmup_frac) / (1.0 - cfg.warmup_frac)
    lo = cfg.min_lr_frac
    return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def checkpoint_steps(n_steps: int, n_checkpoints: int) -> list[int]:
    """Step 0, ``n_checkpoints`` log-spaced steps in [1, n_steps] (deduplicated), and ``n_steps``.

    Example:
        >>> checkpoint_steps(1000, 4)
        [0, 1, 10, 100, 1000]
    """
    if n_checkpoints <= 0:
        return []
    pts = np.unique(np.round(np.geomspace(1, n_steps, n_checkpoints)).astype(int))
    return sorted({0, n_steps, *map(int, pts)})


@dataclass(kw_only=True)
class TrainHistory:
    """Per-step metrics of a run (nats), the held-out evaluations and the early-stopping record."""

    step: list[int] = field(default_factory=list)  # optimizer step (1-based)
    loss: list[float] = field(default_factory=list)  # training loss of that step's batch
    lr: list[float] = field(default_factory=list)  # learning rate used
    grad_norm: list[float] = field(default_factory=list)  # global gradient norm before clipping
    tokens_seen: list[int] = field(default_factory=list)  # tokens trained on so far
    wall_s: list[float] = field(default_factory=list)  # seconds since the start of training
    eval_step: list[int] = field(default_factory=list)  # steps of the held-out evaluations
    eval_loss: list[float] = field(default_factory=list)  # held-out loss
    optimal_loss: float | None = None  # exact optimal loss when known (gap = loss - optimal)
    eval_optimal_loss: float | None = None  # the optimal predictor's loss on the held-out set
    best_step: int | None = None  # step of the lowest held-out loss
    best_eval_loss: float | None = None  # the lowest held-out loss
    stopped_early: bool = False  # stopped by early stopping or the time budget
    stop_reason: str = ""  # "", "early stopping" or "time budget"
    checkpoints: list[int] = field(default_factory=list)  # steps with a checkpoint on disk

    def record(
        self, step: int, loss: float, lr: float, gnorm: float, tokens: int, wall: float
    ) -> None:
        self.step.append(step)
        self.loss.append(loss)
        self.lr.append(lr)
        self.grad_norm.append(gnorm)
        self.tokens_seen.append(tokens)
        self.wall_s.append(wall)

    def record_eval(self, step: int, loss: float) -> None:
        self.eval_step.append(step)
        self.eval_loss.append(loss)

    @property
    def gap(self) -> list[float] | None:
        """Training loss minus the exact optimal loss, per step (None when unknown)."""
        if self.optimal_loss is None:
            return None
        return [x - self.optimal_loss for x in self.loss]

    @property
    def eval_gap(self) -> list[float] | None:
        """Held-out loss minus the optimal predictor's loss on the same set (paired: low noise),
        or minus ``optimal_loss`` when that is not known."""
        ref = self.eval_optimal_loss if self.eval_optimal_loss is not None else self.optimal_loss
        if ref is None:
            return None
        return [x - ref for x in self.eval_loss]

    def postfix(self) -> dict[str, str]:
        """A few numbers for the progress bar (mean of the last 20 steps)."""
        recent = float(np.mean(self.loss[-20:])) if self.loss else float("nan")
        out = {"loss": f"{recent:.4f}"}
        if self.optimal_loss is not None:
            out["gap"] = f"{recent - self.optimal_loss:.2e}"
        return out

    def truncate(self, step: int) -> TrainHistory:
        """The history up to and including ``step`` (used when resuming from a checkpoint)."""
        keep = sum(s <= step for s in self.step)
        keep_e = sum(s <= step for s in self.eval_step)
        for name in ("step", "loss", "lr", "grad_norm", "tokens_seen", "wall_s"):
            setattr(self, name, getattr(self, name)[:keep])
        self.eval_step, self.eval_loss = self.eval_step[:keep_e], self.eval_loss[:keep_e]
        if self.eval_loss:
            i = int(np.argmin(self.eval_loss))
            self.best_step, self.best_eval_loss = self.eval_step[i], self.eval_loss[i]
        else:
            self.best_step = self.best_eval_loss = None
        self.stopped_early = False
        self.stop_reason = ""
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | Path) -> TrainHistory:
        path = Path(path)
        if not path.is_file():
            raise PiamiFileError(f"no training history at {path}")
        d = json.loads(path.read_text())
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


__all__ = ["TrainConfig", "TrainHistory", "checkpoint_steps", "lr_factor"]
