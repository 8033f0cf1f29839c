"""One point of a data-limited learning curve: a transformer trained on the first P tokens.

This is the sub-run that ``scaling-from-statistics`` plans once per training-set size ``P``
(:mod:`piami.lab.plan`): the runs layer stores, caches and parallelizes it, and it can be run
alone: ``piami run scaling-train-point --set n_train_tokens=100000``.

The corpus is cut, in order, into train | validation | test (contiguous: text is not i.i.d.). The
model sees only the first ``n_train_tokens`` of the train part, as sequences of ``n_ctx + 1``
tokens; it is early-stopped on the validation loss (best weights kept) and scored on the test
part. The test loss is reported by position: entry ``k`` of ``loss_by_position`` is the loss of
predicting a token from the ``k + 1`` tokens before it, ``L_{k+1}(P)``, the "n-gram loss" of
Cagnetta, Raventos, Ganguli and Wyart (2026, eq. 2). Test windows start every ``eval_stride``
tokens, so that each position is scored on ``~ test_tokens / eval_stride`` tokens.

Beside it, ``unigram_test_loss`` is the test cross-entropy of the best context-free predictor
fitted on the same P tokens (add-1/2 counts): a model that uses its context must beat it.
``shuffle_train`` permutes the P training tokens (a broken ingredient for controls: the model
can then learn the unigram law and nothing more).

A point compares nothing with theory by itself (``compare`` returns no row) and draws no figure:
``scaling-from-statistics`` combines the points into a learning curve and judges that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from piami.errors import PiamiValueError
from piami.lab import Comparison, Experiment, FigureSpec, Measurements

if TYPE_CHECKING:
    from torch import nn

    from piami.train.config import TrainHistory


@lru_cache(maxsize=4)
def corpus_tokens(source: str, tokenizer: str, max_chars: int | None) -> tuple[np.ndarray, int]:
    """``(ids, vocab_size)`` of a text source (cached per process: planned points reuse it)."""
    from piami.processes.corpus import load_text, tokenize

    text = load_text(source, max_chars=max_chars)
    ids, tok = tokenize(text, tokenizer)
    return ids, int(tok.vocab_size)


def split_three(ids: np.ndarray, test_tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train | validation | test, contiguous; validation and test have ``test_tokens`` each."""
    if 2 * test_tokens >= ids.size // 2:
        raise PiamiValueError(
            f"test_tokens={test_tokens} leaves too little to train on ({ids.size} tokens); lower it"
        )
    cut = ids.size - 2 * test_tokens
    return ids[:cut], ids[cut : cut + test_tokens], ids[cut + test_tokens :]


def to_sequences(ids: np.ndarray, n_ctx: int, stride: int | None = None) -> np.ndarray:
    """Windows of ``n_ctx + 1`` tokens every ``stride`` tokens (default ``n_ctx``: no overlap)."""
    stride = n_ctx if stride is None else stride
    if ids.size < n_ctx + 1:
        raise PiamiValueError(f"{ids.size} tokens make no sequence of {n_ctx + 1}; lower n_ctx")
    n = (ids.size - n_ctx - 1) // stride + 1
    idx = np.arange(n)[:, None] * stride + np.arange(n_ctx + 1)[None, :]
    return ids[idx]


def unigram_cross_entropy(train: np.ndarray, test: np.ndarray, n_vocab: int) -> float:
    """Test cross-entropy (nats) of the add-1/2 unigram law of ``train``: no context used."""
    counts = np.bincount(train, minlength=n_vocab).astype(np.float64) + 0.5
    logp = np.log(counts / counts.sum())
    return float(-logp[test].mean())


@dataclass(frozen=True, kw_only=True)
class PointConfig:
    seed: int = 0  # model init, minibatch order and the shuffle of shuffle_train
    source: str = "shakespeare"  # 'shakespeare', a text file or a folder of .txt
    tokenizer: str = "char"  # 'char', 'byte', 'bpe' or 'bpe:N'
    max_chars: int | None = 2_000_000  # characters of the source used (None: all)
    n_train_tokens: int = 100_000  # P: training tokens (the first P of the train part)
    test_tokens: int = 100_000  # tokens of the validation part and of the test part (each)
    shuffle_train: bool = False  # permute the P training tokens (broken ingredient for controls)
    n_ctx: int = 64  # context length of the transformer
    n_layers: int = 2  # transformer blocks
    d_model: int = 64  # residual width
    n_heads: int = 4  # attention heads
    d_mlp: int = 256  # MLP width
    n_steps: int = 1500  # longest schedule (early stopping usually ends sooner)
    batch_size: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate
    weight_decay: float = 0.1  # AdamW weight decay
    eval_every: int = 50  # steps between validation evaluations
    patience: int = 6  # evaluations without improvement before stopping
    eval_stride: int | None = None  # start of a test window every so many tokens (None: n_ctx)
    device: str = "auto"  # torch device
    n_threads: int | None = 1  # torch CPU threads (1 avoids thread contention on small models)

    def __post_init__(self) -> None:
        for name in ("n_train_tokens", "test_tokens", "n_ctx", "n_steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise PiamiValueError(f"{name} must be an int >= 1, got {v!r}")
        if self.eval_stride is not None and not 1 <= self.eval_stride <= self.n_ctx:
            raise PiamiValueError(
                f"eval_stride must be None or an int in [1, n_ctx={self.n_ctx}], got "
                f"{self.eval_stride!r}"
            )
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}"
            )
        if not self.lr > 0:
            raise PiamiValueError(f"lr must be > 0, got {self.lr}")


def _loss_by_position(
    model: nn.Module, windows: np.ndarray, n_threads: int | None
) -> tuple[list[float], list[float]]:
    """Mean and standard error of the test loss at every position (nats), in float64."""
    import torch

    from piami.models import limit_threads

    dev = next(model.parameters()).device
    n_ctx = windows.shape[1] - 1
    total = torch.zeros(n_ctx, dtype=torch.float64)
    total2 = torch.zeros(n_ctx, dtype=torch.float64)
    model.eval()
    with limit_threads(n_threads or None), torch.no_grad():
        tt = torch.as_tensor(windows, device=dev)
        for i in range(0, tt.shape[0], 512):
            chunk = tt[i : i + 512]
            logits = model(chunk[:, :-1]).double()
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), chunk[:, 1:], reduction="none"
            ).cpu()
            total += nll.sum(0)
            total2 += (nll * nll).sum(0)
    n = windows.shape[0]
    mean = total / n
    se = ((total2 / n - mean * mean).clamp(min=0.0) / max(n - 1, 1)).sqrt()
    return mean.tolist(), se.tolist()


def _train_model(
    cfg: PointConfig, tr: np.ndarray, va: np.ndarray, vocab: int, *, progress: bool
) -> tuple[nn.Module, TrainHistory]:
    """A transformer seeded by ``cfg.seed``, trained on ``tr`` and early-stopped on ``va``."""
    import torch

    from piami.models import Transformer, TransformerConfig
    from piami.train.config import TrainConfig
    from piami.train.loop import train

    mcfg = TransformerConfig(
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_model // cfg.n_heads,
        d_mlp=cfg.d_mlp,
        n_ctx=cfg.n_ctx,
        d_vocab=vocab,
    )
    model = Transformer(mcfg, generator=torch.Generator().manual_seed(cfg.seed), device="cpu")
    tcfg = TrainConfig(
        n_steps=cfg.n_steps,
        batch_size=min(cfg.batch_size, tr.shape[0]),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        eval_every=cfg.eval_every,
        early_stopping_patience=cfg.patience,
        n_checkpoints=0,
        seed=cfg.seed,
        device=cfg.device,
        n_threads=cfg.n_threads,
    )
    hist = train(model, tr, tcfg, eval_data=va, progress=progress, desc=f"P={cfg.n_train_tokens}")
    return model, hist


def measure(cfg: PointConfig, *, progress: bool = True) -> Measurements:
    """Train on the first ``P`` tokens; the test loss by position and the unigram baseline.

    Returns:
        Measurements whose metrics hold ``loss_by_position`` (``(n_ctx,)``, nats: entry ``k`` is
        ``L_{k+1}(P)``, Cagnetta et al. 2026, eq. 2), its standard error, ``test_loss`` (their
        mean), ``unigram_test_loss`` and the training history's summary.
    """
    ids, vocab = corpus_tokens(cfg.source, cfg.tokenizer, cfg.max_chars)
    train_ids, val_ids, test_ids = split_three(ids, cfg.test_tokens)
    if cfg.n_train_tokens > train_ids.size - 1:
        raise PiamiValueError(
            f"n_train_tokens={cfg.n_train_tokens} exceeds the {train_ids.size - 1} training "
            "tokens; raise max_chars or lower it"
        )
    seen = train_ids[: cfg.n_train_tokens + 1]
    if cfg.shuffle_train:
        seen = np.random.default_rng([cfg.seed, 0x5EED]).permutation(seen)
    tr = to_sequences(seen, cfg.n_ctx)
    va = to_sequences(val_ids, cfg.n_ctx)
    te = to_sequences(test_ids, cfg.n_ctx, cfg.eval_stride)
    model, hist = _train_model(cfg, tr, va, vocab, progress=progress)
    t0 = time.perf_counter()
    per_pos, per_pos_se = _loss_by_position(model, te, cfg.n_threads)
    eval_s = time.perf_counter() - t0
    metrics = {
        "n_train_tokens": cfg.n_train_tokens,
        "test_loss": float(np.mean(per_pos)),
        "loss_by_position": per_pos,
        "loss_by_position_se": per_pos_se,
        "n_test_windows": int(te.shape[0]),
        "unigram_test_loss": unigram_cross_entropy(seen, test_ids, vocab),
        "best_eval_loss": hist.best_eval_loss,
        "best_step": hist.best_step,
        "steps_run": hist.step[-1] if hist.step else 0,
        "stopped_early": hist.stopped_early,
        "stop_reason": hist.stop_reason,
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "vocab_size": vocab,
        "final_train_loss": hist.loss[-1] if hist.loss else None,
    }
    train_s = hist.wall_s[-1] if hist.wall_s else 0.0
    tokens = hist.tokens_seen[-1] if hist.tokens_seen else 0
    timing = {
        "train_s": train_s,
        "eval_s": eval_s,
        "train_tokens_per_s": tokens / train_s if train_s else None,
    }
    return Measurements(metrics=metrics, timing=timing)


def compare(cfg: PointConfig, m: Measurements) -> list[Comparison]:
    """No row: a single point has no exponent to compare (the parent experiment fits them)."""
    return []


def figures(cfg: PointConfig, m: Measurements) -> list[FigureSpec]:
    """No figure: the parent experiment draws the learning curve of all the points."""
    return []


def describe(cfg: PointConfig) -> str:
    """The report's opening line."""
    return "One point of a learning curve: held-out loss after training on P tokens."


EXPERIMENT = Experiment(
    name="scaling-train-point",
    config_cls=PointConfig,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={
        "max_chars": 300_000,
        "n_train_tokens": 20_000,
        "test_tokens": 20_000,
        "n_layers": 1,
        "d_model": 32,
        "d_mlp": 64,
        "n_steps": 150,
        "eval_every": 25,
    },
    summary="one learning-curve point: a transformer trained on P tokens, early-stopped",
    part_of="scaling-from-statistics",
)
