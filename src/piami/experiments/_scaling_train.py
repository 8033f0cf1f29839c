"""One point of a data-limited learning curve: a transformer trained on the first P tokens.

This is the unit the ``scaling-from-statistics`` experiment sweeps over P (through
:func:`piami.runs.sweep`, so every point is stored by its config, cached and resumable). It is
registered as the experiment ``scaling-train-point`` and can be run alone:
``piami run scaling-train-point --set n_train_tokens=100000``.

The corpus is cut, in order, into train | validation | test (contiguous: text is not i.i.d.). The
model sees only the first ``n_train_tokens`` of the train part, as sequences of ``n_ctx + 1``
tokens; it is early-stopped on the validation loss (best weights kept) and scored on the test part,
whose loss is also reported by position: the loss at position ``n`` is ``L_n(P)``, the loss with a
context of ``n`` tokens, which the collapse of Cagnetta et al. (2026) uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from piami.errors import PiamiValueError
from piami.lab import Experiment, Result
from piami.models.device import limit_threads


@lru_cache(maxsize=4)
def corpus_tokens(source: str, tokenizer: str, max_chars: int | None) -> tuple[np.ndarray, int]:
    """``(ids, vocab_size)`` of a text source (cached per process: sweeps reuse it)."""
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


def to_sequences(ids: np.ndarray, n_ctx: int) -> np.ndarray:
    """Windows of ``n_ctx + 1`` tokens with stride ``n_ctx`` (each token is a target once)."""
    n = (ids.size - 1) // n_ctx
    if n < 1:
        raise PiamiValueError(f"{ids.size} tokens make no sequence of {n_ctx + 1}; lower n_ctx")
    idx = np.arange(n)[:, None] * n_ctx + np.arange(n_ctx + 1)[None, :]
    return ids[idx]


@dataclass(frozen=True, kw_only=True)
class PointConfig:
    seed: int = 0  # model init and minibatch order
    source: str = "shakespeare"  # 'shakespeare', a text file or a folder of .txt
    tokenizer: str = "char"  # 'char', 'byte', 'bpe' or 'bpe:N'
    max_chars: int | None = 2_000_000  # characters of the source used (None: all)
    n_train_tokens: int = 100_000  # P: training tokens (the first P of the train part)
    test_tokens: int = 100_000  # tokens of the validation part and of the test part (each)
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
    device: str = "auto"  # torch device
    n_threads: int | None = 1  # torch CPU threads (1 avoids thread contention on small models)

    def __post_init__(self) -> None:
        for name in ("n_train_tokens", "test_tokens", "n_ctx", "n_steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise PiamiValueError(f"{name} must be an int >= 1, got {v!r}")
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}"
            )
        if not self.lr > 0:
            raise PiamiValueError(f"lr must be > 0, got {self.lr}")


def run_point(cfg: PointConfig, *, progress: bool = True) -> Result:
    import torch

    from piami.models import Transformer, TransformerConfig
    from piami.train.config import TrainConfig
    from piami.train.loop import train

    ids, vocab = corpus_tokens(cfg.source, cfg.tokenizer, cfg.max_chars)
    train_ids, val_ids, test_ids = split_three(ids, cfg.test_tokens)
    if cfg.n_train_tokens > train_ids.size:
        raise PiamiValueError(
            f"n_train_tokens={cfg.n_train_tokens} exceeds the {train_ids.size} training tokens; "
            "raise max_chars or lower it"
        )
    tr = to_sequences(train_ids[: cfg.n_train_tokens + 1], cfg.n_ctx)
    va, te = to_sequences(val_ids, cfg.n_ctx), to_sequences(test_ids, cfg.n_ctx)
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
    dev = next(model.parameters()).device
    model.eval()
    with limit_threads(cfg.n_threads or None), torch.no_grad():
        tt = torch.as_tensor(te, device=dev)
        per_pos = torch.zeros(cfg.n_ctx, dtype=torch.float64)
        for i in range(0, tt.shape[0], 256):
            chunk = tt[i : i + 256]
            logits = model(chunk[:, :-1]).double()
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), chunk[:, 1:], reduction="none"
            )
            per_pos += nll.sum(0).cpu()
        per_pos /= tt.shape[0]
    result = Result(
        experiment="",
        config={},
        seed=cfg.seed,
        description="One point of a learning curve: held-out loss after training on P tokens.",
    )
    result.metrics.update(
        n_train_tokens=cfg.n_train_tokens,
        test_loss=float(per_pos.mean()),
        loss_by_position=per_pos.tolist(),
        best_eval_loss=hist.best_eval_loss,
        best_step=hist.best_step,
        steps_run=hist.step[-1] if hist.step else 0,
        stopped_early=hist.stopped_early,
        n_params=int(sum(p.numel() for p in model.parameters())),
        vocab_size=vocab,
        final_train_loss=hist.loss[-1] if hist.loss else None,
    )
    return result


POINT = Experiment(
    name="scaling-train-point",
    config_cls=PointConfig,
    run=run_point,
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
)
