"""What the reconstruction-loop experiment measures: raw data -> CSSR -> beliefs -> probes.

Synthetic part (truth known): a raw sample of the process; CSSR (Shalizi & Klinkner 2004) on it;
belief-geometry's Transformer trained on windows of the same raw sample (never on a machine); then,
on two fresh held-out sets (one fits the probes, the other scores them), four targets after every
prefix of every window:

- ``true``: the exact belief ``eta`` of the process (Shai et al. 2024's target);
- ``true_predictive``: ``eta V``, its predictions of the next ``l`` symbols
  (``V[i, w] = Pr(w | state i) = (T[w_1] .. T[w_l] 1)_i``, Upper 1997; Jaeger 2000);
- ``recon``: the belief ``rho`` of the reconstructed machine (``machine.beliefs``; one-hot once
  the unifilar machine is synchronized);
- ``recon_predictive``: ``rho V_rec``, the reconstructed machine's predictions of the next ``l``
  symbols: the part of ``rho`` that is a prediction, the same for every presentation of a process.

Each is read from the residual stream of the trained and the untrained network by a linear probe at
every layer and from all layers concatenated; beside them, without any network: the R² of ``rho``
from ``eta`` (what a network carrying exactly the true belief scores on ``rho``), of ``eta`` from
``rho``, the reconstruction's error in the predictive targets, the position + last-k-token lookups
(belief-geometry's baselines) and held-out log-losses.

Text part: Shakespeare mapped to four symbols (:func:`~piami.processes.corpus.map_text`), the
last ``text_holdout`` share held out; CSSR and the network on the rest; the reconstructed beliefs
and predictive beliefs probed on held-out windows as above. There is no exact truth on text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments.belief_geometry import process_of
from piami.experiments.reconstruction_loop.config import (
    LN2,
    ROW_LENGTH,
    TEXT_ALPHABET,
    Config,
    belief_config,
    build_network,
)
from piami.experiments.reconstruction_loop.pieces import (
    LOOKUP_K,
    _impossible_share,
    _log_loss_bits,
    _lookups,
    _network_loss_bits,
    _probe,
    _recon_targets,
    _reconstruct,
    _shuffle,
    _train,
)
from piami.instruments.beliefs import (
    bootstrap_r2,
    percentile_interval,
    shuffled_r2,
)
from piami.instruments.probes import LinearProbe
from piami.lab import Measurements
from piami.models import limit_threads
from piami.processes.corpus import load_text, map_text
from piami.train import TrainHistory

#: Names of the synthetic targets and of the text targets (keys of ``r2``, ``lookup``).
SYNTHETIC_TARGETS = ("true", "true_predictive", "recon", "recon_predictive")
TEXT_TARGETS = ("text_recon", "text_recon_predictive")


@dataclass(kw_only=True)
class LoopMeasurements(Measurements):
    """The measurements of one reconstruction-loop run (empty where a part was not run).

    Attributes:
        r2: held-out R² by ``"<target>|<network>"`` (targets :data:`SYNTHETIC_TARGETS`,
            :data:`TEXT_TARGETS`; networks ``trained``, ``untrained``), then by layer
            (``"embed"``, ``"L0"``.., ``"concat"``).
        intervals: bootstrap 95% intervals over the scoring set's sequences: ``"true"`` and
            ``"recon_predictive"`` (final-layer R²), ``"predictive_gap"`` (paired: R² of
            ``recon_predictive`` minus R² of ``true_predictive``, final layer).
        network_free: ``"recon_from_true"`` (R² of ``rho`` from ``eta``), ``"true_from_recon"``
            (R² of ``eta`` from ``rho``), linear probes on exact beliefs, no network.
        recon_error: the reconstruction's error in the predictive targets on the scoring set:
            ``ss_delta`` (centered sum of squares of ``rho V_rec - eta V``), ``sst_true``,
            ``sst_recon`` (total sums of squares of the two targets), ``n_fit`` (fitting rows) and
            ``n_features`` (final-layer width).
        shuffled: held-out R² of the all-layers probe on reconstructed beliefs permuted across
            rows (trained network), by part (``"synthetic"``, ``"text"``).
        lookup: R² of each target from the position + last k tokens, by target then
            ``"position + last k tokens"``.
        losses_bits: held-out log-loss per symbol, by part then predictor (``network``,
            ``machine``; ``exact`` on synthetic data, ``unigram`` on text).
        machines: the reconstructed machines by part (states, max_length, entropy rate and
            statistical complexity in bits, ...).
        images: final-layer probe predictions on the scoring set (for the figures).
        history: training histories by part.
    """

    r2: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    network_free: dict[str, float] = field(default_factory=dict)
    recon_error: dict[str, float] = field(default_factory=dict)
    shuffled: dict[str, float] = field(default_factory=dict)
    lookup: dict[str, dict[str, float]] = field(default_factory=dict)
    losses_bits: dict[str, dict[str, float]] = field(default_factory=dict)
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    history: dict[str, TrainHistory] = field(default_factory=dict)


def predictive_matrix(T: np.ndarray, length: int) -> np.ndarray:
    """``V[i, w] = Pr(next symbols = w | state i)`` for every word ``w`` of ``length`` symbols.

    A belief ``b`` (row vector) predicts the word ``w`` with ``b @ V[:, w]``; words are ordered
    with their first symbol most significant (Upper 1997; Jaeger 2000: a presentation's
    predictions are linear in its belief).

    Args:
        T: ``(k, n, n)`` transition tensor of a hidden Markov model.
        length: ``l >= 1``.

    Returns:
        ``(n, k**l)`` float64 matrix.

    Example:
        >>> T = np.array([[[0.5]], [[0.5]]])  # a fair coin
        >>> predictive_matrix(T, 2).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    T = np.asarray(T, dtype=np.float64)
    V = np.ones((T.shape[1], 1))
    for _ in range(length):
        V = np.concatenate([T[x] @ V for x in range(T.shape[0])], axis=1)
    return V


def measure(cfg: Config, *, progress: bool = True) -> LoopMeasurements:
    """Run the synthetic and the text parts of ``cfg`` (module docstring)."""
    with limit_threads(cfg.n_threads):
        m = LoopMeasurements()
        t0 = time.perf_counter()
        if cfg.synthetic:
            _synthetic(cfg, m, progress)
        if cfg.text:
            _text(cfg, m, progress)
        m.timing["total_s"] = time.perf_counter() - t0
    m.metrics = metrics_of(cfg, m)
    return m


# -- the synthetic part --------------------------------------------------------------------------
def _synthetic(cfg: Config, m: LoopMeasurements, progress: bool) -> None:
    proc = process_of(belief_config(cfg))
    k, L, ell = proc.n_symbols, cfg.n_ctx, cfg.future_length
    t0 = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, 0])
    stream = np.asarray(proc.sample(cfg.n_samples // ROW_LENGTH, ROW_LENGTH, rng=rng), np.int64)
    machine, record = _reconstruct(stream, k, cfg)
    record["true_entropy_rate_bits"] = proc.entropy_rate(rng=np.random.default_rng(cfg.seed)) / LN2
    m.machines["synthetic"] = record
    t1 = time.perf_counter()
    eval_set = proc.sample(512, L + 1, rng=np.random.default_rng([cfg.seed, 2]))
    net = build_network(cfg, k)
    m.history["synthetic"] = _train(
        cfg, net, stream, eval_set, desc="reconstruction-loop (synthetic)", progress=progress
    )
    t2 = time.perf_counter()

    V_true, V_rec = predictive_matrix(proc.T, ell), predictive_matrix(machine.T, ell)
    rng_sets = np.random.default_rng([cfg.seed, 1])
    rng_shuffle = np.random.default_rng([cfg.seed, 3])
    sets = []
    for _ in range(2):
        s = proc.sample(cfg.n_probe_seqs, L + 1, rng=rng_sets, return_beliefs=True)
        d = {"inputs": s.tokens[:, :L], "targets": s.tokens[:, 1:]}
        d["true"] = s.beliefs[:, 1 : L + 1].reshape(-1, proc.n_states)
        d["true_predictive"] = d["true"] @ V_true
        d["recon"], d["recon_predictive"] = _recon_targets(machine, V_rec, d["inputs"])
        if cfg.shuffle_beliefs:
            _shuffle(d, ("recon", "recon_predictive"), rng_shuffle)
        sets.append(d)
    fit, test = sets

    # without any network
    m.network_free = {
        "recon_from_true": LinearProbe()
        .fit(fit["true"], fit["recon"])
        .score(test["true"], test["recon"]),
        "true_from_recon": LinearProbe()
        .fit(fit["recon"], fit["true"])
        .score(test["recon"], test["true"]),
    }
    delta = test["recon_predictive"] - test["true_predictive"]

    def ss(a: np.ndarray) -> float:
        return float(np.sum((a - a.mean(axis=0)) ** 2))

    m.recon_error = {
        "ss_delta": ss(delta),
        "sst_true": ss(test["true_predictive"]),
        "sst_recon": ss(test["recon_predictive"]),
        "n_fit": len(fit["true"]),
        "n_features": int(cfg.d_model),
    }
    m.lookup.update(_lookups(fit, test, SYNTHETIC_TARGETS, k))

    # the networks
    finals = {}
    for tag, model in (("trained", net), ("untrained", build_network(cfg, k))):
        r2, fin, acts = _probe(cfg, model, fit, test, SYNTHETIC_TARGETS)
        for n in SYNTHETIC_TARGETS:
            m.r2[f"{n}|{tag}"] = r2[n]
        if tag == "trained":
            finals = fin
            m.shuffled["synthetic"] = shuffled_r2(
                acts["fit"], acts["test"], fit["recon"], test["recon"], rng_shuffle
            )
            exact = proc.next_token_probs(test["inputs"])[:, 1:]
            probs, impossible = _impossible_share(machine, test["inputs"], test["targets"])
            m.losses_bits["synthetic"] = {
                "network": _network_loss_bits(acts["logits"], test["targets"]),
                "machine": _log_loss_bits(probs, test["targets"]),
                "exact": _log_loss_bits(exact, test["targets"]),
            }
            record["impossible_share"] = impossible
        del acts

    def reps(target: str) -> np.ndarray:  # the same resamples for every target: paired
        rng = np.random.default_rng([cfg.seed, 4])
        return bootstrap_r2(test[target], {"final": finals[target]}, L, rng)["final"]

    r_true, r_pt, r_rp = reps("true"), reps("true_predictive"), reps("recon_predictive")
    m.intervals = {
        "true": percentile_interval(r_true),
        "recon_predictive": percentile_interval(r_rp),
        "predictive_gap": percentile_interval(r_rp - r_pt),
    }
    m.images = {f"synthetic_{n}": finals[n] for n in ("true", "recon")}
    m.images["synthetic_true_beliefs"] = test["true"]
    m.timing.update(
        {
            "synthetic_sample_and_cssr_s": t1 - t0,
            "synthetic_train_s": t2 - t1,
            "synthetic_probe_s": time.perf_counter() - t2,
        }
    )


# -- the text part -------------------------------------------------------------------------------
def _held_out_windows(part: np.ndarray, n: int, length: int, rng: np.random.Generator) -> Any:
    """``n`` non-overlapping windows of ``part`` at random slots."""
    slots = len(part) // length
    if slots < n:
        raise PiamiValueError(
            f"the held-out text holds {slots} windows of {length} symbols, fewer than "
            f"n_probe_seqs={n}; raise text_chars or text_holdout, or lower n_probe_seqs"
        )
    idx = rng.choice(slots, size=n, replace=False)
    return part[: slots * length].reshape(slots, length)[idx]


def _text(cfg: Config, m: LoopMeasurements, progress: bool) -> None:
    k, L, ell = len(TEXT_ALPHABET), cfg.n_ctx, cfg.future_length
    t0 = time.perf_counter()
    symbols = map_text(load_text("shakespeare", max_chars=cfg.text_chars))
    n_hold = int(len(symbols) * cfg.text_holdout)
    train_part, held = symbols[:-n_hold], symbols[-n_hold:]
    machine, record = _reconstruct(train_part, k, cfg)
    counts = np.bincount(train_part, minlength=k)
    record["symbol_counts"] = dict(zip(TEXT_ALPHABET, counts.tolist(), strict=True))
    record["n_held_out"] = int(n_hold)
    m.machines["text"] = record
    t1 = time.perf_counter()

    rng = np.random.default_rng([cfg.seed, 5])
    half = n_hold // 2
    windows = [
        _held_out_windows(p, cfg.n_probe_seqs, L + 1, rng) for p in (held[:half], held[half:])
    ]
    net = build_network(cfg, k)
    m.history["text"] = _train(
        cfg,
        net,
        train_part[None, :],
        windows[0][:512],
        desc="reconstruction-loop (text)",
        progress=progress,
    )
    t2 = time.perf_counter()

    V = predictive_matrix(machine.T, ell)
    names = TEXT_TARGETS
    sets = []
    for w in windows:
        d = {"inputs": w[:, :L], "targets": w[:, 1:]}
        d[names[0]], d[names[1]] = _recon_targets(machine, V, d["inputs"])
        if cfg.shuffle_beliefs:
            _shuffle(d, names, rng)
        sets.append(d)
    fit, test = sets
    m.lookup.update(_lookups(fit, test, names, k))
    for tag, model in (("trained", net), ("untrained", build_network(cfg, k))):
        r2, _, acts = _probe(cfg, model, fit, test, names)
        for n in names:
            m.r2[f"{n}|{tag}"] = r2[n]
        if tag == "trained":
            m.shuffled["text"] = shuffled_r2(
                acts["fit"], acts["test"], fit[names[0]], test[names[0]], rng
            )
            probs, impossible = _impossible_share(machine, test["inputs"], test["targets"])
            freq = counts / counts.sum()
            m.losses_bits["text"] = {
                "network": _network_loss_bits(acts["logits"], test["targets"]),
                "machine": _log_loss_bits(probs, test["targets"]),
                "unigram": float(-np.mean(np.log(freq[test["targets"]])) / LN2),
            }
            record["impossible_share"] = impossible
        del acts
    m.timing.update(
        {
            "text_load_and_cssr_s": t1 - t0,
            "text_train_s": t2 - t1,
            "text_probe_s": time.perf_counter() - t2,
        }
    )


def metrics_of(cfg: Config, m: LoopMeasurements) -> dict[str, Any]:
    """The run's deterministic numbers (nothing wall-clock: that goes to ``timing``)."""

    def hist(h: TrainHistory) -> dict[str, Any]:
        return {
            "train_steps": h.step[-1] if h.step else 0,
            "tokens_seen": h.tokens_seen[-1] if h.tokens_seen else 0,
            "final_train_loss_nats": h.loss[-1] if h.loss else None,
            "final_held_out_loss_nats": h.eval_loss[-1] if h.eval_loss else None,
        }

    return {
        "machines": m.machines,
        "r2": m.r2,
        "r2_intervals": {k: list(v) for k, v in m.intervals.items()},
        "r2_without_network": m.network_free,
        "reconstruction_error": m.recon_error,
        "r2_shuffled_beliefs": m.shuffled,
        "r2_lookup_baselines": m.lookup,
        "held_out_log_loss_bits": m.losses_bits,
        "training": {part: hist(h) for part, h in m.history.items()},
        "future_length": cfg.future_length,
    }


__all__ = [
    "LOOKUP_K",
    "SYNTHETIC_TARGETS",
    "TEXT_TARGETS",
    "LoopMeasurements",
    "map_text",
    "measure",
    "metrics_of",
    "predictive_matrix",
]
