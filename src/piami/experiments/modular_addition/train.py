"""Training one seed of the modular-addition grokking experiment (Nanda et al. 2023).

The data, the network and the optimizer of one seed (:mod:`.seed`): every pair
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

from piami.errors import DivergenceError
from piami.experiments.modular_addition.config import SeedConfig
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.models.transformer import Transformer, TransformerConfig
from piami.processes.modular import ModularAddition

CURVES = ("train_loss", "test_loss", "train_acc", "test_acc", "test_acc_mirror", "test_acc_novel")


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
