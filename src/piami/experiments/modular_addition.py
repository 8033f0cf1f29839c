"""Grokking modular addition, read out in the Fourier basis (Nanda et al. 2023).

A one-layer transformer without LayerNorm learns ``(a + b) mod p`` from a fraction of the ``p^2``
pairs, trained full batch by AdamW with strong weight decay. It first memorizes the training pairs
(train loss falls, test loss rises), then -- much later and abruptly -- generalizes. Nanda et al. 2023
("Progress measures for grokking via mechanistic interpretability", ICLR 2023) showed that the
generalizing network computes ``logit(c) ~ sum_k cos(w_k (a + b - c))`` over a few key frequencies
``w_k = 2 pi k / p``. This experiment measures:

- train and test loss and accuracy, every ``eval_every`` epochs;
- the Fourier spectrum of the embedding and its key frequencies
  (:func:`piami.instruments.fourier.key_frequencies`);
- progress measures on saved snapshots (Nanda et al., section 5.1): the *restricted loss* (logits
  kept to the key-frequency waves of ``a + b``, all pairs) and the *excluded loss* (those waves
  removed, training pairs);

and compares: (1) after the test loss has fallen, the key frequencies explain at least 90% of the
logits' variance on the held-out pairs; (2) the rise of test accuracy is sharp. Sharpness is the
width ``(t_90 - t_10) / t_50`` of the test-accuracy rise, ``t_x`` being the first epoch at which the
test accuracy reaches ``x`` (linear interpolation between evaluations). A smooth saturating curve
``1 - exp(-t / tau)`` has width ``(ln 10 - ln(10/9)) / ln 2 = 3.17``; a transition counts as sharp
when its width is at most 0.5, six times narrower. A third comparison checks that generalization
*lags* memorization (the grokking delay).

The default differs from Nanda et al. in scale, so that it runs in minutes on a laptop CPU: see
``Config`` for the modulus, learning rate and width chosen, and the report's description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import PiamiValueError
from piami.experiments.registry import Experiment
from piami.experiments.result import Comparison, Result
from piami.instruments import fourier
from piami.models.device import resolve_device, resolve_dtype
from piami.models.transformer import Transformer, TransformerConfig
from piami.processes.modular import ModularAddition

REFERENCE = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability"
SHARP_WIDTH = 0.5  # largest (t90 - t10) / t50 that counts as sharp; 1 - exp(-t/tau) gives 3.17
MIN_FVE = 0.9  # share of held-out logit variance the key frequencies must explain (the bar)
MIN_DELAY = 2.0  # t50(test) / t50(train) at least this: generalization lags memorization


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the modular-addition grokking run."""

    seed: int = 0  # seeds the train/test split and the initial weights
    p: int = 113  # modulus (Nanda et al.: 113)
    frac_train: float = 0.3  # fraction of the p^2 pairs trained on (Nanda et al.: 0.3)
    d_model: int = 128  # residual width (Nanda et al.: 128)
    n_heads: int = 4  # attention heads, each of width d_model / n_heads
    d_mlp: int = 512  # MLP hidden width (Nanda et al.: 512)
    init_std: float = 0.1  # std of the initial weights (~1/sqrt(d_model))
    lr: float = 1e-3  # AdamW learning rate (Nanda et al.: 1e-3)
    weight_decay: float = 1.0  # AdamW decoupled weight decay (Nanda et al.: 1.0)
    n_epochs: int = 20000  # full-batch steps
    eval_every: int = 20  # epochs between evaluations of train and test loss and accuracy
    n_snapshots: int = 40  # weight snapshots kept for the progress measures
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype of the weights

    def __post_init__(self) -> None:
        ints = ("p", "d_model", "n_heads", "d_mlp", "n_epochs", "eval_every", "n_snapshots")
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.p < 5:
            raise PiamiValueError(f"p must be >= 5 to have frequencies to find, got {self.p}")
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"
            )
        if not 0.0 < self.frac_train < 1.0:
            raise PiamiValueError(f"frac_train must lie in (0, 1), got {self.frac_train!r}")
        for name in ("init_std", "lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise PiamiValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise PiamiValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.eval_every > self.n_epochs:
            raise PiamiValueError(
                f"eval_every ({self.eval_every}) must not exceed n_epochs ({self.n_epochs})"
            )
        resolve_device(self.device)
        resolve_dtype(self.dtype)


@dataclass(kw_only=True)
class GrokkingRun:
    """What :func:`train` returns: the trained model, its curves and snapshots."""

    model: Transformer  # the network after the last epoch
    task: ModularAddition  # the data set
    train_mask: np.ndarray  # (p, p) bool: the training pairs
    epochs: np.ndarray  # (n_evals,) epochs at which the curves were measured
    curves: dict[str, np.ndarray]  # train_loss, test_loss (nats), train_acc, test_acc per eval
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    wall_s: float = 0.0  # seconds spent training


def logit_table(model: Transformer, task: ModularAddition) -> np.ndarray:
    """Logits ``[a, b, c]`` (float64, shape ``(p, p, p)``) at the ``'='`` position, answers only."""
    tokens, _ = task.all_pairs()
    with torch.no_grad():
        out = model(torch.as_tensor(tokens, device=model.device))[:, -1, : task.p]
    return out.double().cpu().numpy().reshape(task.p, task.p, task.p)


def train(cfg: Config, *, progress: bool = False) -> GrokkingRun:
    """Train the one-layer transformer full batch and record its curves (see the module docstring)."""
    import time

    from tqdm.auto import tqdm

    task = ModularAddition(p=cfg.p)
    train_idx, test_idx = task.split(cfg.frac_train, rng=np.random.default_rng(cfg.seed))
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    tcfg = TransformerConfig(
        n_layers=1, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_model // cfg.n_heads,
        d_mlp=cfg.d_mlp, n_ctx=3, d_vocab=task.d_vocab, act_fn="relu", normalization="none",
        init_std=cfg.init_std,
    )  # fmt: skip
    model = Transformer(tcfg, generator=torch.Generator().manual_seed(cfg.seed), device=device, dtype=dtype)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )  # betas as in Nanda et al.
    tokens, answers = (torch.as_tensor(t, device=device) for t in task.all_pairs())
    tr = torch.as_tensor(train_idx, device=device)
    te = torch.as_tensor(test_idx, device=device)
    x_tr, y_tr = tokens[tr], answers[tr]
    snap_every = max(1, cfg.n_epochs // cfg.n_snapshots)
    epochs, rows, snapshots = [], [], []

    def evaluate(epoch: int) -> None:
        with torch.no_grad():
            logits = model(tokens)[:, -1, : task.p]
            loss = F.cross_entropy(logits, answers, reduction="none")
            hit = (logits.argmax(-1) == answers).to(logits.dtype)
        epochs.append(epoch)
        rows.append([float(loss[tr].mean()), float(loss[te].mean()), float(hit[tr].mean()), float(hit[te].mean())])  # fmt: skip
        if epoch % snap_every == 0 or epoch == cfg.n_epochs:
            snapshots.append((epoch, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}))  # fmt: skip

    t0 = time.perf_counter()
    evaluate(0)
    bar = tqdm(range(1, cfg.n_epochs + 1), disable=not progress, desc="modular-addition")
    for epoch in bar:
        loss = F.cross_entropy(model(x_tr)[:, -1, : task.p], y_tr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if epoch % cfg.eval_every == 0 or epoch == cfg.n_epochs:
            evaluate(epoch)
            if progress:
                bar.set_postfix(train=f"{rows[-1][0]:.3g}", test=f"{rows[-1][1]:.3g}", acc=f"{rows[-1][3]:.2f}")  # fmt: skip
    cols = np.asarray(rows)
    curves = {k: cols[:, i] for i, k in enumerate(("train_loss", "test_loss", "train_acc", "test_acc"))}  # fmt: skip
    return GrokkingRun(
        model=model, task=task, train_mask=task.mask(train_idx), epochs=np.asarray(epochs),
        curves=curves, snapshots=snapshots, wall_s=time.perf_counter() - t0,
    )  # fmt: skip
