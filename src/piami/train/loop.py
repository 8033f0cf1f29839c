"""A generic training loop: AdamW, warm-up + cosine, clipping, log-spaced checkpoints, resume.

Two data regimes:

- **fresh samples** (the online regime of Shai et al. 2024): ``data`` is a callable
  ``data(batch_size, rng) -> tokens`` drawing a new batch every step from a process;
- **fixed training set**: ``data`` is a tensor of ``P`` sequences (or a tuple
  ``(inputs, targets)``), visited in shuffled minibatches (``batch_size=None``: full batch), with a
  held-out set ``eval_data`` and optional early stopping on the held-out loss
  (best weights restored).

The loss is ``loss_fn(model, batch)``; the default is the next-token cross-entropy (nats) of a
language model on a batch of sequences ``(batch, seq_len)``: inputs ``tokens[:, :-1]``, targets
``tokens[:, 1:]``. For a process whose exact optimal loss is known, pass ``optimal_loss`` (the mean
over the predicted positions, nats) and each step records the gap ``loss - optimal_loss``.

The learning rate rises linearly over ``warmup_frac`` of the schedule, then follows a cosine to
``min_lr_frac * lr`` (Loshchilov & Hutter 2017); the schedule's progress is ``step / n_steps``,
never the wall clock, so the same seed gives the same weights on an idle or a loaded machine. A
wall-time cap (``time_budget_s``, unset by default) only *stops* training at the step where it runs
out; that step is recorded (``hist.stop_reason == "time budget"``, ``hist.step[-1]``), so whoever
reads the result knows the schedule was cut and where.

Checkpoints go to ``out_dir/checkpoints/step_<8-digit step>/`` at log-spaced steps (and the last
step); each holds the weights, the optimizer state and the sampler state, so ``train`` called again
with the same ``out_dir`` resumes from the last one and reproduces the uninterrupted run.

Example:
    >>> import numpy as np, torch
    >>> from piami.models import Transformer, TransformerConfig
    >>> model = Transformer(TransformerConfig(n_layers=1, d_model=16, d_head=8, d_mlp=16, n_ctx=4,
    ...                     d_vocab=2), generator=torch.Generator().manual_seed(0), device="cpu")
    >>> sample = lambda n, rng: rng.integers(0, 2, size=(n, 5))
    >>> hist = train(model, sample, TrainConfig(n_steps=5, batch_size=8, device="cpu"),
    ...              progress=False)
    >>> len(hist.loss)
    5
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from piami._io import atomic_write_json
from piami.errors import DivergenceError, PiamiTypeError, PiamiValueError
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.train.checkpoint import (
    checkpoint_dir,
    list_checkpoints,
    load_checkpoint,
    load_trainer_tensors,
    save_checkpoint,
)
from piami.train.config import TrainConfig, TrainHistory, checkpoint_steps, lr_factor

Batch = torch.Tensor | tuple[torch.Tensor, ...]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
Sampler = Callable[[int, np.random.Generator], Any]


def next_token_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats): predict ``tokens[:, 1:]`` from ``tokens[:, :-1]``."""
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def _as_tensor(x: Any, device: torch.device, what: str) -> torch.Tensor:
    if isinstance(x, list):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise PiamiTypeError(
            f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}"
        )
    if x.ndim == 0 or x.shape[0] == 0:
        raise PiamiValueError(f"{what} must hold at least one example, got shape {tuple(x.shape)}")
    return x.to(device)


def _as_dataset(data: Any, device: torch.device, what: str) -> Batch:
    if isinstance(data, tuple):  # (inputs, targets, ...); a list is one array of sequences
        parts = tuple(_as_tensor(d, device, f"{what}[{i}]") for i, d in enumerate(data))
        if len({p.shape[0] for p in parts}) != 1:
            raise PiamiValueError(
                f"{what}: the tensors of a tuple dataset must share their first dimension, got "
                f"{[tuple(p.shape) for p in parts]}"
            )
        return parts
    return _as_tensor(data, device, what)


def _n_examples(data: Batch) -> int:
    return int(data[0].shape[0] if isinstance(data, tuple) else data.shape[0])


def _take(data: Batch, idx: torch.Tensor | slice) -> Batch:
    return tuple(d[idx] for d in data) if isinstance(data, tuple) else data[idx]


def _n_tokens(batch: Batch) -> int:
    """Tokens a batch trains on: positions predicted for sequences, input elements for tuples."""
    if isinstance(batch, tuple):
        return int(batch[0].numel())
    return int(batch.shape[0] * max(batch.shape[1] - 1, 1)) if batch.ndim == 2 else batch.numel()


@torch.no_grad()
def evaluate(model: nn.Module, data: Batch, loss_fn: LossFn, *, chunk: int = 8192) -> float:
    """Mean loss over ``data`` (weighted by chunk size), without gradients, in eval mode."""
    was_training = model.training
    model.eval()
    n, total = _n_examples(data), 0.0
    for start in range(0, n, chunk):
        part = _take(data, slice(start, start + chunk))
        total += float(loss_fn(model, part)) * _n_examples(part)
    model.train(was_training)
    return total / n


class _Batches:
    """Draws training batches; its state (rng, permutation) goes into checkpoints."""

    def __init__(self, data: Any, cfg: TrainConfig, device: torch.device) -> None:
        self.device, self.cfg = device, cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.sampler: Sampler | None = data if callable(data) else None
        if self.sampler is not None:
            if cfg.batch_size is None:
                raise PiamiValueError("fresh sampling needs batch_size; None means full batch")
            self.dataset = None
        else:
            self.dataset = _as_dataset(data, device, "data")
        self.perm = torch.zeros(0, dtype=torch.long)
        self.pos = 0

    def next(self) -> Batch:
        if self.sampler is not None:
            return _as_dataset(self.sampler(self.cfg.batch_size, self.rng), self.device, "sample")
        n = _n_examples(self.dataset)
        bs = self.cfg.batch_size
        if bs is None or bs >= n:
            return self.dataset
        if self.pos + bs > len(self.perm):  # new epoch (the ragged tail is dropped)
            self.perm, self.pos = torch.randperm(n, generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + bs].to(self.device)
        self.pos += bs
        return _take(self.dataset, idx)

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        return (
            {"rng": self.rng.bit_generator.state, "perm_pos": self.pos},
            {"gen_state": self.gen.get_state(), "perm": self.perm},
        )

    def restore(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        self.rng.bit_generator.state = meta["rng"]
        self.pos = int(meta["perm_pos"])
        self.gen.set_state(tensors["gen_state"])
        self.perm = tensors["perm"]


def train(
    model: nn.Module,
    data: Sampler | torch.Tensor | np.ndarray | tuple,
    cfg: TrainConfig,
    *,
    loss_fn: LossFn | None = None,
    eval_data: torch.Tensor | np.ndarray | tuple | None = None,
    optimal_loss: float | None = None,
    eval_optimal_loss: float | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    desc: str = "train",
) -> TrainHistory:
    """Train ``model`` in place and return its per-step history.

    Args:
        model: any ``nn.Module``; moved to ``cfg.device`` / ``cfg.dtype``.
        data: ``data(batch_size, rng) -> tokens`` (fresh samples each step), or a fixed training
            set: a tensor/array of sequences ``(P, seq_len)`` or a tuple ``(inputs, targets, ...)``.
        cfg: the optimizer, schedule, budget and checkpoint settings.
        loss_fn: ``loss_fn(model, batch) -> scalar`` (nats); default :func:`next_token_loss`.
        eval_data: held-out set in the same form as a fixed training set.
        optimal_loss: the exact optimal value of the loss (nats), to record the gap.
        eval_optimal_loss: the optimal predictor's loss on ``eval_data`` itself (nats); the held-out
            gap is then a paired difference, free of the held-out set's sampling offset.
        out_dir: where checkpoints and ``history.json`` go; ``None``: keep nothing on disk.
        resume: continue from the last checkpoint in ``out_dir`` when there is one.
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        The :class:`TrainHistory` (also written to ``out_dir/history.json``).
    """
    if not isinstance(model, nn.Module):
        raise PiamiTypeError(f"train() takes an nn.Module, got {type(model).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise PiamiTypeError(f"train() takes a TrainConfig, got {type(cfg).__name__}")
    if cfg.early_stopping_patience is not None and eval_data is None:
        raise PiamiValueError("early_stopping_patience needs eval_data (a held-out set)")
    device = resolve_device(cfg.device)
    model.to(device=device, dtype=resolve_dtype(cfg.dtype))
    loss_fn = loss_fn or next_token_loss
    batches = _Batches(data, cfg, device)
    held_out = None if eval_data is None else _as_dataset(eval_data, device, "eval_data")
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    hist = TrainHistory(optimal_loss=optimal_loss, eval_optimal_loss=eval_optimal_loss)
    ckpt_steps = set(checkpoint_steps(cfg.n_steps, cfg.n_checkpoints))
    st: dict[str, Any] = {"step": 0, "tokens": 0, "elapsed": 0.0, "bad_evals": 0}
    best_state: dict[str, torch.Tensor] | None = None
    run_dir = None if out_dir is None else Path(out_dir)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        saved_cfg = run_dir / "train_config.json"
        if resume and list_checkpoints(run_dir):
            old = json.loads(saved_cfg.read_text()) if saved_cfg.is_file() else None
            if old is not None and old != cfg.resume_key():
                raise PiamiValueError(
                    f"{run_dir} holds a run with another training config ({old}); use a fresh "
                    "out_dir or resume=False"
                )
            last = list_checkpoints(run_dir)[-1][1]
            _, meta = load_checkpoint(last, model=model, optimizer=opt)
            st.update(meta["trainer"])
            tensors = load_trainer_tensors(last)
            batches.restore(meta["trainer"]["batches"], tensors)
            best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
            best_state = best or None
            hist = TrainHistory.load(run_dir / "history.json").truncate(st["step"])
        atomic_write_json(saved_cfg, cfg.resume_key())

    def save(step: int) -> None:
        if run_dir is None:
            return
        bmeta, btensors = batches.state()
        trainer = {k: st[k] for k in ("step", "tokens", "elapsed", "bad_evals")} | {
            "batches": bmeta
        }
        extra = dict(btensors)
        if best_state is not None:
            extra |= {f"best.{k}": v for k, v in best_state.items()}
        meta = {
            "step": step,
            "tokens_seen": st["tokens"],
            "loss": hist.loss[-1] if hist.loss else None,
            "eval_loss": hist.eval_loss[-1] if hist.eval_loss else None,
            "trainer": trainer,
        }
        save_checkpoint(
            model, checkpoint_dir(run_dir, step), metadata=meta, optimizer=opt, extra_tensors=extra
        )
        hist.checkpoints = [s for s, _ in list_checkpoints(run_dir)]
        hist.save(run_dir / "history.json")

    def do_eval(step: int) -> bool:
        """Evaluate; returns True when early stopping says stop."""
        nonlocal best_state
        if held_out is None:
            return False
        ev = evaluate(model, held_out, loss_fn)
        hist.record_eval(step, ev)
        if hist.best_eval_loss is None or ev < hist.best_eval_loss - cfg.min_delta:
            hist.best_eval_loss, hist.best_step, st["bad_evals"] = ev, step, 0
            if cfg.early_stopping_patience is not None:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            st["bad_evals"] += 1
        pat = cfg.early_stopping_patience
        return pat is not None and st["bad_evals"] >= pat

    if st["step"] == 0 and not hist.loss:
        do_eval(0)
        if 0 in ckpt_steps:
            save(0)
    model.train()
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.n_steps, initial=st["step"], desc=desc, disable=not progress, leave=False)
    t_start = time.perf_counter() - st["elapsed"]
    pat, budget = cfg.early_stopping_patience, cfg.time_budget_s
    stop = (pat is not None and st["bad_evals"] >= pat) or (
        budget is not None and st["elapsed"] >= budget
    )  # a resumed run that had already stopped stays stopped
    with limit_threads(cfg.n_threads):
        while st["step"] < cfg.n_steps and not stop:
            step = st["step"] + 1
            lr = cfg.lr * lr_factor(step / cfg.n_steps, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = batches.next()
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"loss became {float(loss.detach())} at step {step} (lr {lr:.3g}); lower "
                    "TrainConfig.lr or set grad_clip"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip = cfg.grad_clip if cfg.grad_clip is not None else math.inf
            gnorm = float(nn.utils.clip_grad_norm_(model.parameters(), clip))
            opt.step()
            st["step"], st["tokens"] = step, st["tokens"] + _n_tokens(batch)
            st["elapsed"] = time.perf_counter() - t_start
            hist.record(step, float(loss.detach()), lr, gnorm, st["tokens"], st["elapsed"])
            out_of_time = cfg.time_budget_s is not None and st["elapsed"] >= cfg.time_budget_s
            last = step == cfg.n_steps or out_of_time
            if (cfg.eval_every and step % cfg.eval_every == 0) or step in ckpt_steps or last:
                stop = do_eval(step)
            if step in ckpt_steps or last or stop:
                save(step)
            bar.update(1)
            if progress:
                bar.set_postfix(hist.postfix(), refresh=False)
            if out_of_time and not stop:
                hist.stop_reason = "time budget"
            elif stop:
                hist.stop_reason = "early stopping"
            stop = stop or out_of_time
    bar.close()
    hist.stopped_early = st["step"] < cfg.n_steps
    if hist.stopped_early and not hist.stop_reason:  # a resumed run that had already stopped
        hist.stop_reason = "early stopping" if pat is not None else "time budget"
    if best_state is not None and cfg.early_stopping_patience is not None:
        model.load_state_dict(best_state)
    if run_dir is not None:
        hist.save(run_dir / "history.json")
    return hist


__all__ = ["evaluate", "next_token_loss", "train"]
