"""What the belief-geometry experiment measures: train, then probe and score on held-out sets.

:func:`measure` trains the network (:func:`~piami.experiments.belief_geometry.train_belief_model`),
draws two held-out sets (one fits the probes, the other scores them), and measures the trained
network and its untrained twin with the instruments of :mod:`piami.instruments.beliefs`: probe R²
by layer, KL(exact || network) per prefix, the shuffled-target null, the position + last-k-token
baselines and the bootstrap intervals. Everything :func:`~.compare.compare` and
:func:`~.plots.figures` need is in the returned :class:`BeliefMeasurements`; nothing in it
depends on the wall clock but ``timing``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piami._io import ensure_writable_dir
from piami.experiments.belief_geometry.config import Config, build_model, process_of
from piami.experiments.belief_geometry.data import (
    data_held_out_sets,
    read_data,
    sequence_losses,
)
from piami.experiments.belief_geometry.train import train_belief_model
from piami.instruments.belief_probe import BeliefProbeReport, predictor_kl, probe_beliefs
from piami.instruments.beliefs import (
    bootstrap_r2,
    logprob_r2,
    next_token_kl,
    percentile_interval,
    probe_r2_by_layer,
    window_ids,
)
from piami.lab import Measurements
from piami.models import Transformer, limit_threads, residual_stream
from piami.train import TrainHistory

#: The baseline the trained network must beat: the best read-out from these tokens.
K3 = "position + last 3 tokens"


@dataclass(kw_only=True)
class BeliefMeasurements(Measurements):
    """The measurements of one belief-geometry run (arrays in nats where they are losses).

    Attributes:
        process: the spec of the process whose beliefs are the targets.
        data: data mode only (else empty): the file, its hash and alphabet, the symbols trained
            on and held out, and the held-out windows the stated process calls impossible.
        seq_losses: data mode only: cross-entropy on the data's next tokens, mean over positions,
            ``(n_seqs,)`` per window of both probe sets, by predictor (``"trained"``,
            ``"untrained"``, ``"stated"``: the stated process).
        not_identified: why rows on the trained network cannot be decided ("" when they can).
        r2: held-out R² by target and network (``"beliefs_trained"``, ``"beliefs_untrained"``,
            ``"next_token_trained"``, ``"next_token_untrained"``), then by layer (``"embed"``,
            ``"L0"``.., ``"concat"``).
        kl_trained: KL(exact || trained network) per prefix, ``(n_seqs, n_ctx)``.
        kl_untrained: the same for the untrained network.
        r2_onehot: R² of beliefs from the position + last k tokens (k = 1..4), by name.
        kl_onehot: KL of the best next-token predictor from the same, by name.
        r2_final_interval: bootstrap 95% interval of the final layer's R².
        concat_minus_k3_interval: paired bootstrap 95% interval of concat R² minus the k=3 R².
        shuffled: held-out R² of the all-layers probe on shuffled beliefs.
        entropy_per_seq: entropy of the exact next-token distribution, mean over positions,
            ``(n_seqs,)``.
        optimal: the exact optimal loss (myopic entropy h(t+2)) by position, ``(n_ctx,)``.
        expected: the network's cross-entropy by position, expected over the next token.
        sampled: its cross-entropy on the sampled next token, by position.
        stated_sampled: data mode only: the stated process's cross-entropy on the data's next
            token, by position (in data mode the beliefs, probabilities, ``optimal`` and
            ``expected`` are the stated process's, not a known truth's).
        r2_logprobs: R² of beliefs from the exact next-token log-probabilities.
        affine_control: the next-token probabilities are an invertible affine image of the belief.
        images: the final-layer and all-layers probes' images of the scoring set's beliefs.
        beliefs: the scoring set's exact beliefs, ``(n_seqs * n_ctx, n_states)``.
        history: the training history.
    """

    process: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seq_losses: dict[str, np.ndarray] = field(default_factory=dict)
    not_identified: str = ""
    r2: dict[str, dict[str, float]]
    kl_trained: np.ndarray
    kl_untrained: np.ndarray
    r2_onehot: dict[str, float]
    kl_onehot: dict[str, float]
    r2_final_interval: tuple[float, float]
    concat_minus_k3_interval: tuple[float, float]
    shuffled: float
    entropy_per_seq: np.ndarray
    optimal: np.ndarray
    # for the figures only
    expected: np.ndarray | None = None
    sampled: np.ndarray | None = None
    stated_sampled: np.ndarray | None = None
    r2_logprobs: float = float("nan")
    affine_control: bool = False
    images: dict[str, np.ndarray] = field(default_factory=dict)
    beliefs: np.ndarray | None = None
    history: TrainHistory | None = None


def measure(cfg: Config, *, progress: bool = True) -> BeliefMeasurements:
    """Train the network of ``cfg``, then measure it and its controls (module docstring)."""
    with limit_threads(cfg.n_threads):
        return _measure(cfg, progress=progress)


def _measure(cfg: Config, *, progress: bool) -> BeliefMeasurements:
    proc = process_of(cfg)
    if cfg.checkpoint_dir:  # a bad folder fails now, not after training
        ensure_writable_dir(cfg.checkpoint_dir, what="checkpoint_dir")
    data: dict[str, Any] = {}
    if cfg.data is not None:  # data mode: bad data, or too little of it, fails before training
        split = read_data(cfg, proc)
        fit, test, counts = data_held_out_sets(proc, cfg, split)
        data = split.info() | counts
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="piami-belief-") as tmp:
        run_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(tmp)
        model, _, hist = train_belief_model(cfg, run_dir, progress=progress)
    t1 = time.perf_counter()
    if cfg.data is None:
        fit, test = held_out_sets(proc, cfg)
    nets = probe_networks(cfg, {"trained": model, "untrained": build_model(cfg)}, fit, test)
    logq, logq0 = nets.pop("logq"), nets.pop("logq_untrained", None)
    probe = nets.pop("probe")
    losses = losses_by_position(proc, cfg, logq, fit, test)
    m = BeliefMeasurements(
        process=proc.spec,
        data=data,
        seq_losses=sequence_losses(fit, test, logq, logq0) if cfg.data is not None else {},
        not_identified=budget_cut(cfg, hist),
        **nets,
        **losses,
        **baselines(cfg, fit, test, probe),
        r2_logprobs=logprob_r2(fit["probs"], test["probs"], fit["beliefs"], test["beliefs"]),
        affine_control=emission_full_rank(proc),
        beliefs=test["beliefs"],
        history=hist,
    )
    m.metrics = metrics_of(m, hist)
    tokens = hist.tokens_seen[-1] if hist.tokens_seen else 0
    train_s = hist.wall_s[-1] if hist.wall_s else 0.0
    m.timing = {
        "train_wall_s": train_s,
        "tokens_per_s": tokens / train_s if train_s > 0 else None,
        "train_section_s": t1 - t0,
        "measure_s": time.perf_counter() - t1,
    }
    return m


def budget_cut(cfg: Config, hist: TrainHistory) -> str:
    """Why rows on the trained network cannot be decided ("" when training ran its schedule)."""
    if hist.stop_reason != "time budget":
        return ""
    step = hist.step[-1] if hist.step else 0
    return (
        f"training stopped at step {step} of {cfg.n_steps}: the time budget set by the user "
        f"(time_budget_s={cfg.time_budget_s}) ran out, so this network is not the one the "
        "config describes"
    )


def held_out_sets(proc: Any, cfg: Config) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two held-out sets (fit the probes, score them): inputs, targets, exact beliefs and probs.

    Returns:
        Two dicts with ``inputs`` and ``targets`` ``(n_probe_seqs, n_ctx)``, ``beliefs``
        ``(n_probe_seqs * n_ctx, n_states)`` and ``probs`` ``(n_probe_seqs * n_ctx, n_symbols)``
        (the belief and next-token distribution after each prefix).
    """
    rng = np.random.default_rng([cfg.seed, 1])
    L, S = cfg.n_ctx, proc.n_states
    sets = []
    for _ in range(2):
        s = proc.sample(cfg.n_probe_seqs, L + 1, rng=rng, return_beliefs=True, return_probs=True)
        sets.append(
            {
                "inputs": s.tokens[:, :L],
                "targets": s.tokens[:, 1:],
                "beliefs": s.beliefs[:, 1 : L + 1].reshape(-1, S),
                "probs": s.next_token_probs[:, 1 : L + 1].reshape(-1, proc.n_symbols),
            }
        )
    return sets[0], sets[1]


def probe_networks(
    cfg: Config, nets: dict[str, Transformer], fit: dict, test: dict
) -> dict[str, Any]:
    """Probe R² by layer, KL(exact || network) per prefix, and (trained) the shuffled null.

    The beliefs are probed with :func:`~piami.instruments.belief_probe.probe_beliefs` on the two
    sets side by side (the first ``n_probe_seqs`` sequences fit, the rest score).

    Returns:
        ``r2``, ``kl_<tag>`` ``(n_seqs, n_ctx)`` for each network, and for the trained one the
        probes' ``images``, its log-probabilities ``logq`` ``(n_seqs, n_ctx, d_vocab)`` over both
        sets, ``shuffled`` and its ``probe`` report (which holds the position + last-k baselines).
    """
    L, V = cfg.n_ctx, fit["probs"].shape[1]
    layers = ["embed"] + [f"L{i}" for i in range(cfg.n_layers)] + ["concat"]
    p_all = np.concatenate([fit["probs"], test["probs"]])
    tokens = np.concatenate([fit["inputs"], test["inputs"]])
    beliefs = np.concatenate([fit["beliefs"], test["beliefs"]]).reshape(len(tokens), L, -1)
    out: dict[str, Any] = {"r2": {}}
    for tag, net in nets.items():
        a_fit, fit_logits = residual_stream(net, fit["inputs"])
        a_test, logits = residual_stream(net, test["inputs"])
        acts = {
            name: np.concatenate([a, b]).reshape(len(tokens), L, -1)
            for name, a, b in zip(layers[:-1], a_fit, a_test, strict=True)
        }
        rng = np.random.default_rng([cfg.seed, 3])  # the shuffled null's permutations
        rep = probe_beliefs(acts, beliefs, tokens, last_k=4, n_symbols=V, random_state=rng)
        rb = [rep.r2[name] for name in layers[:-1]] + [rep.r2_all]
        rp, _ = probe_r2_by_layer(a_fit, a_test, fit["probs"], test["probs"])
        out["r2"][f"beliefs_{tag}"] = dict(zip(layers, rb, strict=True))
        out["r2"][f"next_token_{tag}"] = dict(zip(layers, rp, strict=True))
        all_logits = np.concatenate([fit_logits, logits])
        out[f"kl_{tag}"] = predictor_kl(all_logits, p_all.reshape(-1, L, V))  # (seq, position)
        if tag == "untrained" and cfg.data is not None:  # data mode: its loss on the data
            out["logq_untrained"] = _log_softmax64(all_logits)
        if tag == "trained":
            out["images"] = {"final": rep.predictions[layers[-2]], "concat": rep.prediction_all}
            out["logq"], out["probe"] = _log_softmax64(all_logits), rep
            out["shuffled"] = rep.shuffled_r2_all
        del a_fit, a_test, acts
    return out


def _log_softmax64(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of float32 logits, taken in float64."""
    return torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()


def losses_by_position(
    proc: Any, cfg: Config, logq: np.ndarray, fit: dict, test: dict
) -> dict[str, np.ndarray]:
    """Loss by position: sampled cross-entropy, and its expectation over the next token under the
    exact distribution, ``E[H(p, q)] = E[H(p)] + KL(p || q)``, beside the optimal loss."""
    L, V = cfg.n_ctx, proc.n_symbols
    p = np.concatenate([fit["probs"], test["probs"]]).reshape(-1, L, V)
    targets = np.concatenate([fit["targets"], test["targets"]])
    out = {
        "expected": -np.mean(np.sum(p * logq, axis=-1), axis=0),
        "sampled": -np.mean(np.take_along_axis(logq, targets[..., None], -1)[..., 0], axis=0),
        "optimal": proc.optimal_loss(L + 1)[1:],
        "entropy_per_seq": -np.sum(p * np.log(np.maximum(p, 1e-300)), axis=-1).mean(axis=1),
    }
    if cfg.data is not None:  # the stated process on the data's own next tokens
        p_seen = np.take_along_axis(p, targets[..., None], -1)[..., 0]
        out["stated_sampled"] = -np.mean(np.log(np.maximum(p_seen, 1e-300)), axis=0)
    return out


def baselines(cfg: Config, fit: dict, test: dict, probe: BeliefProbeReport) -> dict[str, Any]:
    """The position + last-k-token baselines (k = 1..4; R² from the trained network's ``probe``
    report) and the bootstrap intervals."""
    V = fit["probs"].shape[1]
    out: dict[str, Any] = {"r2_onehot": {}, "kl_onehot": {}}
    for k in range(1, 5):
        ids = [window_ids(d["inputs"], k, V) for d in (fit, test)]
        name = f"position + last {k} token{'s' if k > 1 else ''}"
        out["r2_onehot"][name] = probe.baseline_r2[k]
        out["kl_onehot"][name] = next_token_kl(ids[0], ids[1], fit["probs"], test["probs"])
    reps = bootstrap_r2(
        test["beliefs"],
        {
            "final": probe.predictions[probe.names[-1]],
            "concat": probe.prediction_all,
            "k3": probe.baseline_predictions[3],
        },
        cfg.n_ctx,
        np.random.default_rng([cfg.seed, 4]),
    )
    out["r2_final_interval"] = percentile_interval(reps["final"])
    out["concat_minus_k3_interval"] = percentile_interval(reps["concat"] - reps["k3"])
    return out


def emission_full_rank(proc: Any) -> bool:
    """Whether the next-token probabilities are an invertible affine image of the belief.

    ``Pr(x | belief) = belief @ E`` with ``E[i, x] = sum_j T[x, i, j]``; when ``E`` has full row
    rank the two targets score the same R², so the next-token control cannot separate them.
    """
    emission = np.asarray(proc.T).sum(axis=2).T  # (n_states, n_symbols)
    return bool(np.linalg.matrix_rank(emission) == proc.n_states)


def metrics_of(m: BeliefMeasurements, hist: TrainHistory) -> dict[str, Any]:
    """The run's deterministic numbers (nothing wall-clock: that goes to ``timing``)."""
    r2 = m.r2
    kl = m.kl_trained.mean(axis=0)
    return (
        {
            "tokens_seen": hist.tokens_seen[-1] if hist.tokens_seen else 0,
            "train_steps": hist.step[-1] if hist.step else 0,
            "train_stop_reason": hist.stop_reason or "schedule completed",
            "kl_gap_nats": float(np.mean(kl)),
            "kl_untrained_nats": float(np.mean(m.kl_untrained)),
            "loss_gap_nats": float(np.mean(m.sampled - m.optimal)),  # sampled targets: noisy
            "expected_loss_gap_nats": float(np.mean(m.expected - m.optimal)),
            "next_token_probs_affine_in_belief": m.affine_control,
            "r2": r2,
            "r2_final_interval": list(m.r2_final_interval),
            "r2_onehot_baselines": m.r2_onehot,
            "kl_onehot_baselines_nats": m.kl_onehot,
            "r2_concat_minus_k3_interval": list(m.concat_minus_k3_interval),
            "r2_from_exact_next_token_logprobs": m.r2_logprobs,
            "r2_shuffled_beliefs": m.shuffled,
            "best_single_layer": max(
                list(r2["beliefs_trained"])[:-1], key=r2["beliefs_trained"].get
            ),
            "kl_by_position": kl.tolist(),
            "loss_by_position": m.sampled.tolist(),
            "expected_loss_by_position": m.expected.tolist(),
            "optimal_loss_by_position": m.optimal.tolist(),
        }
        | (_data_metrics(m) if m.data else {})
    )


def _data_metrics(m: BeliefMeasurements) -> dict[str, Any]:
    """Data mode: the data, and the losses of the network and the stated process on it."""
    return {
        "data": m.data,
        "stated_process": m.process,
        "stated_process_loss_by_position": m.stated_sampled.tolist(),
        "loss_minus_stated_process_nats": float(np.mean(m.sampled - m.stated_sampled)),
        "kl_stated_process_to_model_nats": float(np.mean(m.kl_trained)),
    }


__all__ = [
    "K3",
    "BeliefMeasurements",
    "baselines",
    "budget_cut",
    "emission_full_rank",
    "held_out_sets",
    "losses_by_position",
    "measure",
    "metrics_of",
    "probe_networks",
]
