"""The pieces both parts of reconstruction-loop use: reconstruct, train on windows, probe."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from piami.experiments.reconstruction_loop.config import (
    LN2,
    SMOOTHING,
    Config,
    belief_config,
)
from piami.instruments.beliefs import (
    window_ids,
    window_means,
)
from piami.instruments.probes import LinearProbe, r2_scores
from piami.instruments.reconstruction.cssr import cssr
from piami.instruments.reconstruction.result import default_max_length
from piami.instruments.reconstruction.score import smoothed
from piami.models import Transformer, residual_stream
from piami.train import TrainHistory, train
from piami.train.windows import window_sampler as _window_sampler

#: Window lengths of the position + last-k-token lookups.
LOOKUP_K = (1, 2, 3, 4)


def _reconstruct(tokens: np.ndarray, k: int, cfg: Config) -> tuple[Any, dict[str, Any]]:
    """CSSR at the default history length: its machine smoothed, and the machine's record."""
    rec = cssr(tokens, max_length=default_max_length(tokens.size, k), alpha=cfg.alpha, n_symbols=k)
    machine = rec.machine
    record = {
        "n_states": rec.n_states,
        "max_length": rec.max_length,
        "n_samples": rec.n_samples,
        "alpha": cfg.alpha,
        "entropy_rate_bits": machine.entropy_rate() / LN2,
        "statistical_complexity_bits": machine.statistical_complexity() / LN2,
    }
    return smoothed(machine, SMOOTHING), record


def _train(
    cfg: Config,
    net: Transformer,
    rows: np.ndarray,
    eval_data: np.ndarray,
    *,
    desc: str,
    progress: bool,
) -> TrainHistory:
    """Train ``net`` on windows of the raw ``rows`` with belief-geometry's schedule."""
    return train(
        net,
        _window_sampler(rows, cfg.n_ctx + 1),
        belief_config(cfg).train_config(),
        eval_data=eval_data,
        progress=progress,
        desc=desc,
    )


def _layers(cfg: Config) -> list[str]:
    return ["embed"] + [f"L{i}" for i in range(cfg.n_layers)] + ["concat"]


def _probe(
    cfg: Config, net: Transformer, fit: dict, test: dict, names: tuple[str, ...]
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], dict[str, Any]]:
    """Held-out R² of every target at every layer (one least-squares fit per layer for all).

    Returns:
        ``(r2, finals, acts)``: R² by target then layer; the final layer's predictions of each
        target on the scoring set; the activations (``fit``, ``test``) and the scoring logits.
    """
    a_fit, _ = residual_stream(net, fit["inputs"])
    a_test, logits = residual_stream(net, test["inputs"])
    dims = np.cumsum([0] + [fit[n].shape[1] for n in names])
    y_fit = np.hstack([fit[n] for n in names])
    y_test = np.hstack([test[n] for n in names])
    feats = [*zip(a_fit, a_test, strict=True), (np.hstack(a_fit), np.hstack(a_test))]
    final = f"L{cfg.n_layers - 1}"
    r2: dict[str, dict[str, float]] = {n: {} for n in names}
    finals: dict[str, np.ndarray] = {}
    for layer, (af, at) in zip(_layers(cfg), feats, strict=True):
        pred = LinearProbe().fit(af, y_fit).predict(at)
        for n, lo, hi in zip(names, dims[:-1], dims[1:], strict=True):
            r2[n][layer] = r2_scores(y_test[:, lo:hi], pred[:, lo:hi])[0]
            if layer == final:
                finals[n] = pred[:, lo:hi]
    return r2, finals, {"fit": a_fit, "test": a_test, "logits": logits}


def _lookups(fit: dict, test: dict, names: tuple[str, ...], k: int) -> dict[str, dict[str, float]]:
    """R² of each target from the position + last j tokens (belief-geometry's baselines)."""
    out: dict[str, dict[str, float]] = {n: {} for n in names}
    for j in LOOKUP_K:
        ids = [window_ids(d["inputs"], j, k) for d in (fit, test)]
        label = f"position + last {j} token{'s' if j > 1 else ''}"
        for n in names:
            out[n][label] = r2_scores(test[n], window_means(ids[0], ids[1], fit[n]))[0]
    return out


def _log_loss_bits(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean ``-log2 p(target)`` of ``(n, L, k)`` predictions of ``(n, L)`` targets."""
    p = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]
    return float(-np.mean(np.log(np.maximum(p, 1e-300))) / LN2)


def _network_loss_bits(logits: np.ndarray, targets: np.ndarray) -> float:
    logq = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()
    return _log_loss_bits(np.exp(logq), targets)


def _impossible_share(machine: Any, inputs: np.ndarray, targets: np.ndarray) -> tuple:
    """The smoothed machine's next-token probabilities after each prefix, and the share of
    observed symbols the unsmoothed machine calls impossible."""
    probs = machine.next_token_probs(inputs)[:, 1:]
    p = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]
    return probs, float(np.mean(p <= SMOOTHING))


def _recon_targets(machine: Any, V: np.ndarray, inputs: np.ndarray) -> tuple:
    """The machine's belief after every prefix of every window, and its predictive image."""
    rho = machine.beliefs(inputs)[:, 1:].reshape(-1, machine.n_states)
    return rho, rho @ V


def _shuffle(d: dict, names: tuple[str, str], rng: np.random.Generator) -> None:
    """Broken ingredient: permute the reconstructed targets across rows (the same permutation for
    the belief and its predictive image)."""
    perm = rng.permutation(len(d[names[0]]))
    for n in names:
        d[n] = d[n][perm]
