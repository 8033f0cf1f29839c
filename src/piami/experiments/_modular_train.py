"""Training one seed of the modular-addition grokking experiment (Nanda et al. 2023).

The data, the network and the optimizer of :mod:`piami.experiments._modular_seed`: every pair
``(a, b)`` of ``Z_p x Z_p`` is a prompt ``[a, b, '=']`` with answer ``(a + b) mod p``; a seeded
fraction is trained on, full batch, by a one-layer transformer without LayerNorm and AdamW with
decoupled weight decay (Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability", ICLR 2023). Every ``eval_every`` epochs the loop records train and held-out loss
and accuracy, the held-out accuracy split into *mirror* pairs (held out, but ``(b, a)`` trained)
and *novel* ones (neither), and keeps weight snapshots for the progress measures.

Two switches make the broken systems the experiment's controls must catch: ``shuffle_labels``
permutes the answers over all pairs after the split (nothing to generalize), ``leak_held_out``
trains on the held-out pairs too (a leaky split).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import DivergenceError, PiamiValueError
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.models.transformer import Transformer, TransformerConfig
from piami.processes.modular import ModularAddition

REFERENCE = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability"
MIN_TEST_ACC = 0.9  # held-out accuracy at the end that counts as generalized (a priori)
SHARP_WIDTH = 0.5  # largest (t90 - t10) / t50 that counts as sharp; 1 - exp(-t/tau) gives 3.17
MIN_FVE = 0.9  # share of held-out logit variance the key frequencies must explain (the bar)
MIN_DELAY = 2.0  # t50(novel) / t50(train) at least this: generalization lags memorization
HORIZON_LR_WD = 14.0  # grokking is over by 14 / (lr wd) epochs: Nanda et al.'s ~14k at lr wd 1e-3
CURVES = ("train_loss", "test_loss", "train_acc", "test_acc", "test_acc_mirror", "test_acc_novel")


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, kw_only=True)
class SeedConfig:
    """Settings of one seed's training run (the parent experiment's config adds ``n_seeds``).

    The defaults are Nanda et al.'s recipe (p = 113, 30% of the pairs, one layer without
    LayerNorm, 4 heads, init std 1/sqrt(d_model), AdamW betas (0.9, 0.98), weight decay 1) scaled
    down to CPU minutes; see :mod:`piami.experiments.modular_addition` for the reasons.
    """

    seed: int = 0  # seeds the train/test split, the initial weights and the label shuffle
    p: int = 113  # modulus, as Nanda et al.
    frac_train: float = 0.3  # fraction of the p^2 pairs trained on, as Nanda et al.
    d_model: int = 64  # residual width (Nanda et al.: 128)
    n_heads: int = 4  # attention heads, each of width d_model / n_heads (Nanda et al.: 4)
    d_mlp: int = 256  # MLP hidden width, 4 d_model (Nanda et al.: 512 = 4 x 128)
    init_std: float | None = None  # std of the initial weights; None: 1/sqrt(d_model), as Nanda
    lr: float = 1e-2  # AdamW learning rate (Nanda et al.: 1e-3; x10 compresses time, see parent)
    weight_decay: float = 1.0  # AdamW decoupled weight decay, as Nanda et al.
    n_epochs: int = 1400  # full-batch steps: the horizon 14 / (lr wd) (Nanda et al.: 40k, lr 1e-3)
    eval_every: int = 10  # epochs between evaluations of losses and accuracies
    n_snapshots: int = 40  # weight snapshots kept for the progress measures
    shuffle_labels: bool = False  # control: answers permuted over all pairs (nothing to learn)
    leak_held_out: bool = False  # broken ingredient: also train on the held-out pairs (a leak)
    n_threads: int = 1  # torch CPU threads while training: 1 is fastest for a model this small
    device: str = "cpu"  # torch device (cpu: the same numbers on every machine)
    dtype: str = "float32"  # torch dtype of the weights

    def __post_init__(self) -> None:
        for name in ("p", "d_model", "n_heads", "d_mlp", "n_epochs", "eval_every", "n_snapshots",
                     "n_threads"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.p < 5:
            raise PiamiValueError(f"p must be >= 5 to have frequencies to find, got {self.p}")
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"
            )
        if not _number(self.frac_train) or not 0.0 < self.frac_train < 1.0:
            raise PiamiValueError(f"frac_train must lie in (0, 1), got {self.frac_train!r}")
        for name in ("init_std", "lr"):
            v = getattr(self, name)
            if (v is not None or name == "lr") and not (_number(v) and v > 0):
                raise PiamiValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (_number(self.weight_decay) and self.weight_decay >= 0):
            raise PiamiValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if self.eval_every > self.n_epochs:
            raise PiamiValueError(
                f"eval_every ({self.eval_every}) must not exceed n_epochs ({self.n_epochs}); "
                "lower eval_every or raise n_epochs"
            )
        for name in ("shuffle_labels", "leak_held_out"):
            if not isinstance(getattr(self, name), bool):
                raise PiamiValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        resolve_device(self.device)
        resolve_dtype(self.dtype)

    @property
    def std(self) -> float:
        """The initial weights' std: ``init_std``, or ``1/sqrt(d_model)`` when that is None."""
        return self.init_std if self.init_std is not None else 1.0 / math.sqrt(self.d_model)


@dataclass(kw_only=True)
class GrokkingRun:
    """What :func:`train` returns: the trained model, its curves and snapshots."""

    model: Transformer  # the network after the last epoch
    task: ModularAddition  # the pairs
    answers: np.ndarray  # (p^2,) the targets trained and tested on (permuted when shuffled)
    train_mask: np.ndarray  # (p, p) bool: the training pairs
    epochs: np.ndarray  # (n_evals,) epochs at which the curves were measured
    curves: dict[str, np.ndarray]  # per evaluation, the CURVES (losses in nats)
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    wall_s: float = 0.0  # seconds spent training (wall clock; goes to result.timing)


def last_logits(model: Transformer, tokens: torch.Tensor, p: int) -> torch.Tensor:
    """Logits of the answers ``0 .. p-1`` at the last position of a one-layer, LayerNorm-free model.

    The same numbers as ``model(tokens)[:, -1, :p]`` (Nanda et al.'s architecture; see
    :mod:`piami.models.transformer`), computing the MLP and the attention query only at the last
    position, which is all the loss reads: a third of the work.

    Args:
        model: a :class:`Transformer` with one block, ``normalization="none"`` and an MLP.
        tokens: ``(batch, pos)`` int64 prompts.
        p: the number of answers kept.

    Returns:
        ``(batch, p)`` logits.
    """
    blk = model.blocks[0]
    at, mlp = blk.attn, blk.mlp
    x = model.W_E[tokens] + model.W_pos[: tokens.shape[1]]  # (batch, pos, d_model)
    q = torch.einsum("bd,hde->bhe", x[:, -1], at.W_Q) + at.b_Q
    k = torch.einsum("bpd,hde->bphe", x, at.W_K) + at.b_K
    v = torch.einsum("bpd,hde->bphe", x, at.W_V) + at.b_V
    pattern = torch.softmax(torch.einsum("bhe,bphe->bhp", q, k) * at.scale, dim=-1)
    z = torch.einsum("bhp,bphe->bhe", pattern, v)
    resid = x[:, -1] + torch.einsum("bhe,hed->bd", z, at.W_O) + at.b_O
    resid = resid + mlp.act(resid @ mlp.W_in + mlp.b_in) @ mlp.W_out + mlp.b_out
    return resid @ model.W_U[:, :p] + model.b_U[:p]


def logit_table(model: Transformer, task: ModularAddition) -> np.ndarray:
    """Logits ``[a, b, c]`` (float64, shape ``(p, p, p)``) at the ``'='`` position, answers only."""
    tokens, _ = task.all_pairs()
    with torch.no_grad():
        out = last_logits(model, torch.as_tensor(tokens, device=model.device), task.p)
    return out.double().cpu().numpy().reshape(task.p, task.p, task.p)


def make_model(cfg: SeedConfig, task: ModularAddition) -> Transformer:
    """The one-layer ReLU transformer without LayerNorm, seeded by ``cfg.seed``."""
    tcfg = TransformerConfig(
        n_layers=1,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_model // cfg.n_heads,
        d_mlp=cfg.d_mlp,
        n_ctx=3,
        d_vocab=task.d_vocab,
        act_fn="relu",
        normalization="none",
        init_std=cfg.std,
    )
    return Transformer(
        tcfg,
        generator=torch.Generator().manual_seed(cfg.seed),
        device=resolve_device(cfg.device),
        dtype=resolve_dtype(cfg.dtype),
    )


def split(cfg: SeedConfig, task: ModularAddition) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train_idx, test_idx, answers)``: the seeded split, and the targets (permuted, after the
    same split, when ``cfg.shuffle_labels``)."""
    rng = np.random.default_rng(cfg.seed)
    train_idx, test_idx = task.split(cfg.frac_train, rng=rng)
    answers = task.all_pairs()[1]
    if cfg.shuffle_labels:
        answers = answers[rng.permutation(answers.size)]
    return train_idx, test_idx, answers


def held_out_groups(train_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the held-out pairs whose mirror ``(b, a)`` was trained on, and of the others
    (*novel*: neither ``(a, b)`` nor ``(b, a)`` trained; the diagonal ``(a, a)`` included)."""
    mirror = (train_mask.T & ~train_mask).ravel()
    return np.flatnonzero(mirror), np.flatnonzero(~train_mask.ravel() & ~mirror)


def train(cfg: SeedConfig, *, progress: bool = False) -> GrokkingRun:
    """Train full batch and record the curves (see the module docstring).

    Uses ``cfg.n_threads`` torch CPU threads and restores the previous setting afterwards.
    """
    with limit_threads(cfg.n_threads):
        return _train(cfg, progress=progress)


def _train(cfg: SeedConfig, *, progress: bool) -> GrokkingRun:
    from tqdm.auto import tqdm

    task = ModularAddition(p=cfg.p)
    train_idx, test_idx, answers_np = split(cfg, task)
    model = make_model(cfg, task)
    device, p = model.device, cfg.p
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )  # betas as in Nanda et al.
    tokens = torch.as_tensor(task.all_pairs()[0], device=device)
    answers = torch.as_tensor(answers_np, device=device)
    train_mask = task.mask(train_idx)
    groups = [train_idx, test_idx, *held_out_groups(train_mask)]
    tr, te, mi, no = (torch.as_tensor(g, device=device) for g in groups)
    fit = torch.arange(task.n_pairs, device=device) if cfg.leak_held_out else tr
    x_tr, y_tr = tokens[fit], answers[fit]
    snap_every = cfg.eval_every * max(1, cfg.n_epochs // (cfg.n_snapshots * cfg.eval_every))
    epochs, rows, snapshots = [], [], []

    def evaluate(epoch: int) -> None:
        with torch.no_grad():
            logits = last_logits(model, tokens, p)
            loss = F.cross_entropy(logits, answers, reduction="none")
            hit = (logits.argmax(-1) == answers).to(logits.dtype)
        if not torch.isfinite(loss).all():
            raise DivergenceError(
                f"modular-addition diverged by epoch {epoch} (non-finite loss); lower lr={cfg.lr}"
            )
        epochs.append(epoch)
        parts = (loss[tr], loss[te], hit[tr], hit[te], hit[mi], hit[no])
        rows.append([float(x.mean()) if x.numel() else math.nan for x in parts])
        if epoch % snap_every == 0 or epoch == cfg.n_epochs:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            snapshots.append((epoch, state))

    t0 = time.perf_counter()
    evaluate(0)
    bar = tqdm(range(1, cfg.n_epochs + 1), disable=not progress, desc="modular-addition")
    for epoch in bar:
        loss = F.cross_entropy(last_logits(model, x_tr, p), y_tr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if epoch % cfg.eval_every == 0 or epoch == cfg.n_epochs:
            evaluate(epoch)
            if progress:
                bar.set_postfix(train=f"{rows[-1][0]:.3g}", test_acc=f"{rows[-1][3]:.2f}")
    cols = np.asarray(rows)
    return GrokkingRun(
        model=model,
        task=task,
        answers=answers_np,
        train_mask=train_mask,
        epochs=np.asarray(epochs),
        curves={k: cols[:, i] for i, k in enumerate(CURVES)},
        snapshots=snapshots,
        wall_s=time.perf_counter() - t0,
    )


def crossing_epoch(epochs: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """First epoch at which ``values`` reaches ``level``, interpolated linearly between evaluations.

    Returns ``None`` when the curve never reaches ``level`` (or holds NaN only).
    """
    above = np.flatnonzero(np.asarray(values) >= level)
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(epochs[0])
    v0, v1 = float(values[i - 1]), float(values[i])
    return float(epochs[i - 1] + (level - v0) / (v1 - v0) * (epochs[i] - epochs[i - 1]))
