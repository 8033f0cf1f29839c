"""What the round trip measures: one network, read through piami's hooks and through Hugging Face.

:func:`measure` trains the belief-geometry network, writes it as a GPT-2 folder
(:func:`~piami.models.save_huggingface`) and a deliberately broken one
(:func:`~.export_map.broken_export`), reloads both through ``transformers``, and reads every path
with the same instruments on the same sequences: the residual stream by TransformerLens names
(:func:`~piami.models.collect_activations`), probe R² of the exact beliefs
(:func:`~piami.instruments.probe_beliefs`), KL to the exact predictor
(:func:`~piami.instruments.predictor_kl`), linear CKA between layers and TwoNN dimension by layer
(:mod:`piami.instruments.by_layer`), and the LLC (:class:`~piami.instruments.LLCEstimator`, the
same seed and SGLD settings on every path). Each path is read twice, as saved (float32) and as
its float64 twin (the same weights, exported from the float64 copy of the network): the gap
between the two is the path's own float32 rounding, the budget of the rows in :mod:`.compare`.
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piami.experiments import belief_geometry as bg
from piami.experiments.round_trip.config import Config
from piami.experiments.round_trip.export_map import (
    ThroughExport,
    broken_export,
    gpt2_weights,
    q_scale_of,
)
from piami.instruments import (
    LLCEstimator,
    causal_lm_loss,
    cka_by_layer,
    dimension_by_layer,
    next_token_data,
    predictor_kl,
    probe_beliefs,
)
from piami.lab import Measurements
from piami.models import Transformer, collect_activations, limit_threads, to_huggingface
from piami.models.export import gpt2_state_dict, save_huggingface

#: The paths: piami's own hooks, the exact export reloaded, the broken export reloaded.
PATHS = ("piami", "hf", "broken")


@dataclass(kw_only=True)
class RoundTripMeasurements(Measurements):
    """The readings of every path (JSON-ready; ``metrics`` holds them all).

    Attributes:
        names: the activation names read (TransformerLens names of the residual stream).
        readings: ``path -> precision ("float32", "float64") -> reading``: ``r2`` (probe R² by
            name, and ``"all"``), ``kl`` (mean KL, nats), ``cka`` (matrix, as lists), ``twonn``
            (dimension by name), ``shuffled_r2_all`` and ``baseline_r2`` (k = 1..3).
        act: ``path -> {"diff": max |float32 - piami float32|, "diff64": the same in float64,
            "rounding": max |float32 - float64| of the path itself, "scale": max |activation|,
            "by_layer": the float32 difference by name}`` (piami: ``rounding`` and ``scale``).
        llc: ``path -> {"mean", "std", "per_chain", "r_hat", "reference_loss", "batching",
            "n_params"}`` for ``piami``, ``hf``, ``broken`` (both through the export map, in
            piami's coordinates) and ``hf_native`` (the reloaded model in its own coordinates).
        map_error: max |export map at w* - gpt2_state_dict(model)| over every weight.
        history: training steps, stop reason and final gap.
    """

    names: list[str]
    readings: dict[str, dict[str, dict[str, Any]]]
    act: dict[str, dict[str, Any]]
    llc: dict[str, dict[str, Any]]
    map_error: float
    history: dict[str, Any] = field(default_factory=dict)


def measure(cfg: Config, *, progress: bool = True) -> RoundTripMeasurements:
    """Train, export, reload and read every path (module docstring)."""
    with limit_threads(cfg.n_threads):
        return _measure(cfg, progress=progress)


def _measure(cfg: Config, *, progress: bool) -> RoundTripMeasurements:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="piami-round-trip-") as tmp:
        model, _, hist = bg.train_belief_model(
            cfg.belief_config(), Path(tmp) / "train", progress=progress
        )
        t1 = time.perf_counter()
        nets32 = {"piami": model.eval(), **export_and_reload(model, Path(tmp))}
    model64 = copy.deepcopy(model).to(torch.float64)
    nets64 = {"piami": model64, "hf": to_huggingface(model64), "broken": broken_export(model64)}
    names = ["blocks.0.hook_resid_pre"] + [
        f"blocks.{i}.hook_resid_post" for i in range(cfg.n_layers)
    ]
    readings, act = read_paths(cfg, nets32, nets64, probe_sets(cfg), names)
    t2 = time.perf_counter()
    llc = llc_paths(cfg, model, nets32)
    map_error = export_map_error(model)
    m = RoundTripMeasurements(
        names=names,
        readings=readings,
        act=act,
        llc=llc,
        map_error=map_error,
        history={
            "train_steps": hist.step[-1] if hist.step else 0,
            "train_stop_reason": hist.stop_reason or "schedule completed",
        },
    )
    m.metrics = {
        "names": names,
        "readings": readings,
        "activations": act,
        "llc": llc,
        "export_map_error": map_error,
        "q_scale": q_scale_of(model.cfg),
        **m.history,
    }
    m.timing = {
        "train_s": t1 - t0,
        "read_s": t2 - t1,
        "llc_s": time.perf_counter() - t2,
        "llc_seconds_by_path": {k: v.pop("seconds") for k, v in llc.items()},
    }
    return m


def export_and_reload(model: Transformer, folder: Path) -> dict[str, torch.nn.Module]:
    """The exact export (:func:`~piami.models.save_huggingface`) and the broken one, each saved
    under ``folder`` and reloaded through ``transformers.AutoModelForCausalLM`` (float32, on
    ``model``'s device, eval mode): ``{"hf": ..., "broken": ...}``."""
    import transformers

    broken_export(model).save_pretrained(folder / "broken")
    save_huggingface(model, folder / "exact")
    load = transformers.AutoModelForCausalLM.from_pretrained
    return {
        path: load(folder / name).to(device=model.device, dtype=torch.float32).eval()
        for path, name in (("hf", "exact"), ("broken", "broken"))
    }


def export_map_error(model: Transformer) -> float:
    """Max |export map at the current weights - gpt2_state_dict(model)| over every weight."""
    with torch.no_grad():
        params = dict(model.named_parameters())
        mine = gpt2_weights(params, model.cfg, q_scale=q_scale_of(model.cfg))
        ref = gpt2_state_dict(model)
        return max(float((mine[k] - ref[k]).abs().max()) for k in ref)


def probe_sets(cfg: Config) -> dict[str, np.ndarray]:
    """Held-out sequences (the first ``n_probe_seqs`` fit the probes, the rest score them), drawn
    as belief-geometry draws its two probe sets: ``inputs`` ``(n, n_ctx)``, ``beliefs``
    ``(n, n_ctx, n_states)`` and ``probs`` ``(n, n_ctx, d_vocab)`` after each prefix."""
    proc = bg.process_of(cfg.belief_config())
    L = cfg.belief_config().n_ctx
    rng = np.random.default_rng([cfg.seed, 1])
    sets = [
        proc.sample(cfg.n_probe_seqs, L + 1, rng=rng, return_beliefs=True, return_probs=True)
        for _ in range(2)
    ]
    return {
        "inputs": np.concatenate([s.tokens[:, :L] for s in sets]),
        "beliefs": np.concatenate([s.beliefs[:, 1 : L + 1] for s in sets]),
        "probs": np.concatenate([s.next_token_probs[:, 1 : L + 1] for s in sets]),
    }


@torch.no_grad()
def _forward(net: torch.nn.Module, inputs: np.ndarray, names: list[str]) -> tuple[dict, np.ndarray]:
    """Activations (float64 numpy, ``(n, pos, d)``) by name and logits ``(n, pos, d_vocab)``."""
    dev = next(net.parameters()).device
    acts = collect_activations(net, inputs, names, batch_size=2048, device=dev)
    tokens = torch.as_tensor(inputs, device=dev)
    logits = [getattr(o, "logits", o) for o in (net(t) for t in tokens.split(2048))]
    as64 = {n: a.double().numpy() for n, a in acts.items()}
    return as64, torch.cat(logits).double().cpu().numpy()


def _instruments(cfg: Config, acts: dict, logits: np.ndarray, data: dict) -> dict[str, Any]:
    """One path's reading at one precision (see :class:`RoundTripMeasurements`)."""
    rep = probe_beliefs(
        acts, data["beliefs"], data["inputs"], random_state=np.random.default_rng([cfg.seed, 3])
    )
    rows = {"max_rows": cfg.geometry_rows}  # the same rows on every path and precision
    _, cka = cka_by_layer(acts, **rows, random_state=np.random.default_rng([cfg.seed, 6]))
    dims = dimension_by_layer(acts, **rows, random_state=np.random.default_rng([cfg.seed, 6]))
    return {
        "r2": {**rep.r2, "all": rep.r2_all},
        "kl": float(np.mean(predictor_kl(logits, data["probs"]))),
        "cka": cka.tolist(),
        "twonn": {n: d.dimension for n, d in dims.items()},
        "shuffled_r2_all": rep.shuffled_r2_all,
        "baseline_r2": {str(k): v for k, v in rep.baseline_r2.items()},
    }


def read_paths(
    cfg: Config, nets32: dict, nets64: dict, data: dict, names: list[str]
) -> tuple[dict, dict]:
    """Every path's instruments at both precisions, and its activations beside piami's."""
    readings: dict[str, dict[str, Any]] = {}
    act: dict[str, dict[str, Any]] = {}
    ref: dict[str, dict] = {}
    for path in PATHS:
        a32, logits32 = _forward(nets32[path], data["inputs"], names)
        a64, logits64 = _forward(nets64[path], data["inputs"], names)
        readings[path] = {
            "float32": _instruments(cfg, a32, logits32, data),
            "float64": _instruments(cfg, a64, logits64, data),
        }
        act[path] = {
            "rounding": max(float(np.abs(a32[n] - a64[n]).max()) for n in names),
            "scale": max(float(np.abs(a32[n]).max()) for n in names),
        }
        if path == "piami":
            ref = {"float32": a32, "float64": a64}
            continue
        by = {n: float(np.abs(a32[n] - ref["float32"][n]).max()) for n in names}
        act[path] |= {
            "diff": max(by.values()),
            "diff64": max(float(np.abs(a64[n] - ref["float64"][n]).max()) for n in names),
            "by_layer": by,
        }
        del a32, a64
    return readings, act


def llc_paths(cfg: Config, model: Transformer, nets32: dict) -> dict[str, dict[str, Any]]:
    """The LLC of every path with the same seed, data and SGLD settings (module docstring of
    :mod:`.export_map`: ``hf`` and ``broken`` sample piami's coordinates through the export map)."""
    bcfg = cfg.belief_config()
    proc = bg.process_of(bcfg)
    tokens = proc.sample(cfg.llc_seqs, bcfg.n_ctx + 1, rng=np.random.default_rng([cfg.seed, 5]))
    data = next_token_data(tokens)
    s = q_scale_of(model.cfg)
    modules = {
        "piami": model,
        "hf": ThroughExport(model, copy.deepcopy(nets32["hf"]), q_scale=s),
        "broken": ThroughExport(model, copy.deepcopy(nets32["broken"]), q_scale=1.0),
        "hf_native": nets32["hf"],
    }
    out = {}
    for path, module in modules.items():
        est = LLCEstimator(
            sampler="sgld",
            step_size=cfg.llc_step_size,
            gamma=cfg.llc_gamma,
            n_chains=cfg.llc_chains,
            n_burnin=cfg.llc_burnin,
            n_draws=cfg.llc_draws,
            batch_size=cfg.llc_batch_size,
            random_state=cfg.seed,
            device=cfg.device,
            dtype="float32",
        )
        with warnings.catch_warnings():  # recorded in "batching": piami's token check forces
            warnings.filterwarnings("ignore", message="LLCEstimator: the model's forward")
            warnings.filterwarnings("ignore", message="There is a performance drop")  # vmap, sdpa
            est.fit(module, data, causal_lm_loss)
        d = est.diagnostics_
        out[path] = {
            "mean": est.llc_mean_,
            "std": est.llc_std_,
            "per_chain": est.llc_per_chain_.tolist(),
            "r_hat": d["r_hat"],
            "reference_loss": est.reference_loss_,
            "batching": d["batching"],
            "n_params": int(sum(p.numel() for p in module.parameters() if p.requires_grad)),
            "seconds": d["seconds"],
        }
    return out


__all__ = [
    "PATHS",
    "RoundTripMeasurements",
    "export_and_reload",
    "export_map_error",
    "llc_paths",
    "measure",
    "probe_sets",
    "read_paths",
]
