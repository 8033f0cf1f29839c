"""What pretrained-lm measures: a pretrained LM, in context, on sequences of known processes.

For each process (Mess3 and RRXOR by default): ``n_seqs`` fresh sequences of ``seq_len`` symbols,
written as tokens (:mod:`.lm`), the exact beliefs after every prefix and the reference losses
(:mod:`.targets`). Two models read them: the pretrained model, and the same architecture with
random weights (:func:`~piami.models.pretrained.random_like`). For each model and process:

- the loss of every symbol under the model's alphabet-renormalized prediction, by position;
- ridge probes of every layer's residual stream for the exact belief (:mod:`.probes`): the first
  half of the sequences fit, the second half score; the best layer is chosen on held-back fitting
  sequences.

Without any model: the best position + last-k read-outs of the belief (exact, for k = 1 ..
:data:`~.config.MAX_K`), and the best *affine* read-outs from one-hot codes of the last K symbols
(:data:`~.config.HISTORY_K`; fitted and scored on the probes' split), which tell a linear code of
the recent tokens from a nonlinear function of the history. Then the paired bootstrap over scoring
sequences of the R² differences (model minus read-out, model minus random weights, random weights
minus read-out) and the normal intervals over sequences of the loss differences over the second
half of the positions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.experiments.pretrained_lm.block_llc import block_llc
from piami.experiments.pretrained_lm.config import HISTORY_K, MAX_K, N_BOOT, Config
from piami.experiments.pretrained_lm.depth import depth_profile, text_ids
from piami.experiments.pretrained_lm.generated import generated_statistics
from piami.experiments.pretrained_lm.lm import (
    layer_names,
    load_subject,
    run_model,
    train_in_distribution,
    vocabulary,
)
from piami.experiments.pretrained_lm.probes import Readout, layer_readout
from piami.experiments.pretrained_lm.targets import (
    belief_targets,
    onehot_history,
    reference_losses,
    window_beliefs,
)
from piami.instruments.beliefs import bootstrap_r2, mean_interval, percentile_interval
from piami.instruments.probes import r2_scores
from piami.lab import Measurements
from piami.models import limit_threads
from piami.models.pretrained import random_like
from piami.processes.hmm import HiddenMarkovModel

#: The two models every process is read by.
MODELS = ("model", "random")


@dataclass(kw_only=True)
class PLMMeasurements(Measurements):
    """The measurements of one pretrained-lm run.

    Attributes:
        processes: by process name, everything :func:`~.compare.compare` and the figures read
            (the same dict is in ``metrics["processes"]``): ``r2`` (by model, per layer),
            ``best_layer``, ``control_r2`` (by k), ``diff`` (R² differences with intervals),
            ``late`` (loss differences with intervals), ``curves`` (mean loss by position),
            ``shuffled``, ``mass``, ``optimal_check``, ``history_r2`` (the linear read-out from
            one-hot codes of the last K symbols, by K).
        layers: the layer labels (``embed``, ``L0`` ..).
        depth: by model (``model``, ``random``), the geometry by depth on real text
            (:func:`~.depth.depth_profile`); empty when ``depth_geometry`` is off.
        generated: the statistics of the pretrained model's own text beside the corpus's
            (:func:`~.generated.generated_statistics`); empty when ``generated_stats`` is off.
        block_llc: by model, the LLC of block ``llc_block`` on the depth geometry's text
            (:func:`~.block_llc.block_llc`); empty when ``block_llc`` is off.
    """

    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    depth: dict[str, dict[str, Any]] = field(default_factory=dict)
    generated: dict[str, Any] = field(default_factory=dict)
    block_llc: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)


def _sample(proc: HiddenMarkovModel, cfg: Config, rng: np.random.Generator) -> dict[str, Any]:
    tokens = proc.sample(cfg.n_seqs, cfg.seq_len, rng=rng)
    ks = sorted({*range(1, MAX_K + 1), cfg.control_k})
    return {
        "tokens": tokens,
        "beliefs": belief_targets(proc, tokens),
        "windows": {k: window_beliefs(proc, tokens, k) for k in ks},
        "losses": reference_losses(proc, tokens),
    }


def _history_r2(
    cfg: Config, proc: HiddenMarkovModel, d: dict[str, Any], rng: np.random.Generator
) -> dict[str, float]:
    """Held-out R² of the belief from one-hot codes of the last K symbols (the probes' split)."""
    out = {}
    for K in HISTORY_K:
        feats = onehot_history(d["tokens"], K, proc.n_symbols)
        out[str(K)] = layer_readout([feats], d["beliefs"], cfg.n_seqs // 2, rng).r2[0]
    return out


def measure(cfg: Config, *, progress: bool = True) -> PLMMeasurements:
    """Run both models on every process and reduce to the numbers the rows and figures need."""
    t0 = time.perf_counter()
    m = PLMMeasurements()
    with limit_threads(cfg.n_threads):
        procs = cfg.process_list()
        streams = np.random.SeedSequence(cfg.seed).spawn(len(procs) + 4)
        data = {
            name: _sample(proc, cfg, np.random.default_rng(s))
            for (name, proc), s in zip(procs.items(), streams, strict=False)
        }
        rng, rng_history = (np.random.default_rng(s) for s in streams[len(procs) : len(procs) + 2])
        depth_seed, gen_seed = (int(s.generate_state(1)[0]) for s in streams[len(procs) + 2 :])
        history = {
            name: _history_r2(cfg, proc, data[name], rng_history) for name, proc in procs.items()
        }
        model, tokenizer, source = load_subject(cfg)
        m.timing["load_s"] = time.perf_counter() - t0
        vocab = vocabulary(cfg, tokenizer, {n: d["tokens"] for n, d in data.items()})
        train_loss: list[float] = []
        if cfg.train_steps:
            train_loss = train_in_distribution(model, cfg, procs, vocab, progress=progress)
        m.layers = layer_names(model)[1]
        text = None
        if cfg.depth_geometry or cfg.block_llc:
            text = text_ids(cfg, tokenizer, int(model.config.vocab_size), vocab.prefix_id)
        reads: dict[str, dict[str, Any]] = {name: {} for name in procs}
        for which in MODELS:
            if which == "random":
                model = random_like(model, seed=cfg.seed + 1)  # drops the pretrained weights
            if cfg.depth_geometry:
                t = time.perf_counter()
                m.depth[which] = depth_profile(model, text, cfg, depth_seed)
                m.timing[f"depth_{which}_s"] = time.perf_counter() - t
            if cfg.block_llc:
                m.block_llc[which] = block_llc(
                    model,
                    text,
                    block=cfg.llc_block,
                    seed=cfg.seed,
                    device=cfg.device,
                    dtype=cfg.dtype,
                    progress=progress,
                    n_burnin=cfg.llc_burnin,
                    n_draws=cfg.llc_draws,
                )
                m.timing[f"block_llc_{which}_s"] = m.block_llc[which]["seconds"]
            if which == "model" and cfg.generated_stats:
                t = time.perf_counter()
                m.generated = generated_statistics(model, tokenizer, cfg, vocab.prefix_id, gen_seed)
                m.timing["generated_s"] = time.perf_counter() - t
            for name, proc in procs.items():
                t = time.perf_counter()
                out = run_model(
                    model, vocab.encode(data[name]["tokens"]), vocab, proc.n_symbols, cfg
                )
                m.timing[f"forward_{which}_{name}_s"] = time.perf_counter() - t
                t = time.perf_counter()
                ro = layer_readout(out.pop("layers"), data[name]["beliefs"], cfg.n_seqs // 2, rng)
                m.timing[f"probes_{which}_{name}_s"] = time.perf_counter() - t
                reads[name][which] = (ro, out)
        del model
        for name in procs:
            m.processes[name] = _reduce(cfg, data[name], reads[name], rng)
            m.processes[name]["history_r2"] = history[name]
    m.metrics = {
        "model": source,
        "vocabulary": {"prefix_id": vocab.prefix_id, "symbol_ids": list(vocab.symbol_ids)},
        "symbols_as_text": list(vocab.texts),
        "round_trip": vocab.round_trip,
        "train_loss_first_last": train_loss[:1] + train_loss[-1:],
        "layers": m.layers,
        "processes": m.processes,
        "depth": m.depth,
        "generated": m.generated,
        "block_llc": m.block_llc,
    }
    m.timing["total_s"] = time.perf_counter() - t0
    return m


def _diff(boot: dict[str, np.ndarray], a: str, b: str, point: dict[str, float]) -> dict:
    lo, hi = percentile_interval(boot[a] - boot[b])
    return {"value": point[a] - point[b], "interval": [lo, hi]}


def _late(per_pos: np.ndarray, start: int) -> np.ndarray:
    return per_pos[:, start:].mean(axis=1)


def _reduce(cfg: Config, d: dict[str, Any], reads: dict[str, Any], rng: np.random.Generator):
    """One process's numbers: R² by layer, the paired bootstrap, the loss curves and intervals."""
    n_fit, L = cfg.n_seqs // 2, cfg.seq_len
    y = d["beliefs"][n_fit:].reshape(-1, d["beliefs"].shape[-1])
    window = {k: w[n_fit:].reshape(y.shape) for k, w in d["windows"].items()}
    ro: dict[str, Readout] = {w: reads[w][0] for w in MODELS}
    preds = {
        "model": ro["model"].pred,
        "random": ro["random"].pred,
        "control": window[cfg.control_k],
    }
    point = {k: r2_scores(y, v)[0] for k, v in preds.items()}
    boot = bootstrap_r2(y, preds, L, rng, n_boot=N_BOOT)
    ref = d["losses"]
    loss = {w: reads[w][1]["loss"] for w in MODELS}
    start = L // 2
    opt_all = ref["optimal"].mean(axis=1)
    opt_mean, opt_iv = mean_interval(opt_all)
    late = {}
    for base in ("unigram", "last_symbol"):
        for w in MODELS:
            v, iv = mean_interval(_late(ref[base], start) - _late(loss[w], start))
            late[f"{base}_minus_{w}"] = {"value": v, "interval": list(iv)}
    curves = {w: loss[w].mean(axis=0).tolist() for w in MODELS}
    curves |= {
        k: ref[k].mean(axis=0).tolist() for k in ("optimal", "last_symbol", "in_context_unigram")
    }
    curves["optimal_expected"] = ref["optimal_expected"].tolist()
    return {
        "r2": {w: ro[w].r2 for w in MODELS},
        "r2_select": {w: ro[w].r2_select for w in MODELS},
        "ridge_alpha": {w: ro[w].alpha for w in MODELS},
        "best_layer": {w: ro[w].best for w in MODELS},
        "best_r2": {w: point[w] for w in MODELS},
        "control_k": cfg.control_k,
        "control_r2": {str(k): r2_scores(y, v)[0] for k, v in window.items()},
        "diff": {
            "model_minus_control": _diff(boot, "model", "control", point),
            "model_minus_random": _diff(boot, "model", "random", point),
            "random_minus_control": _diff(boot, "random", "control", point),
        },
        "shuffled": {w: ro[w].shuffled for w in MODELS},
        "late_start": start,
        "late": late,
        "late_loss": {w: float(_late(loss[w], start).mean()) for w in MODELS}
        | {k: float(_late(ref[k], start).mean()) for k in ("optimal", "last_symbol")},
        "unigram_entropy": ref["unigram_entropy"],
        "curves": curves,
        "mass": {w: reads[w][1]["mass"] for w in MODELS},
        "optimal_check": {
            "sampled": opt_mean,
            "interval": list(opt_iv),
            "expected": float(ref["optimal_expected"].mean()),
        },
    }


__all__ = ["MODELS", "PLMMeasurements", "measure"]
