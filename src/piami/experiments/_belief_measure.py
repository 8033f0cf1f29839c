"""Measurements of the belief-geometry experiment: residual streams, probes, k-token baselines."""

from __future__ import annotations

import numpy as np
import torch

from piami.instruments.probes import LinearProbe, r2_scores
from piami.models import Transformer


@torch.no_grad()
def activations(model: Transformer, inputs: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Residual streams [embed, after block 0, ...] as (n * pos, d_model) float32, and logits."""
    names = ["blocks.0.hook_resid_pre"] + [
        f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)
    ]
    model.eval()
    acts: list[list[np.ndarray]] = [[] for _ in names]
    logits = []
    for start in range(0, len(inputs), 4096):
        chunk = torch.as_tensor(inputs[start : start + 4096], device=model.device)
        out, cache = model.run_with_cache(chunk, names_filter=names)
        logits.append(out.float().cpu().numpy())
        for i, n in enumerate(names):
            acts[i].append(cache[n].float().cpu().numpy().reshape(-1, model.cfg.d_model))
    return [np.concatenate(a) for a in acts], np.concatenate(logits)


def probe_r2(fit: list[np.ndarray], test: list[np.ndarray], y_fit: np.ndarray, y_test: np.ndarray):
    """R^2 per layer and for all layers concatenated, plus the two probes' test predictions."""
    r2, preds = [], {}
    for i, (a, b) in enumerate(zip(fit, test, strict=True)):
        probe = LinearProbe().fit(a, y_fit)
        r2.append(probe.score(b, y_test))
        if i == len(fit) - 1:
            preds["final"] = probe.predict(b)
    probe = LinearProbe().fit(np.hstack(fit), y_fit)
    r2.append(probe.score(np.hstack(test), y_test))
    preds["concat"] = probe.predict(np.hstack(test))
    return r2, preds


def window_ids(inputs: np.ndarray, k: int, n_symbols: int) -> np.ndarray:
    """Joint code of (position, last k tokens) for every position: (n * pos,) int64."""
    n, L = inputs.shape
    base = n_symbols + 1  # symbol n_symbols pads windows that start before position 0
    padded = np.concatenate([np.full((n, k - 1), n_symbols), inputs], axis=1)
    ids = np.broadcast_to(np.arange(L), (n, L)).astype(np.int64)
    for j in range(k):  # window x_{t-k+1} .. x_t
        ids = ids * base + padded[:, j : j + L]
    return ids.reshape(-1)


def onehot_r2(
    ids_fit: np.ndarray, ids_test: np.ndarray, y_fit: np.ndarray, y_test: np.ndarray
) -> float:
    """R^2 of a linear probe on the complete one-hot code of ``ids`` = the mean target per code.

    Least squares on a complete set of indicator features reproduces each category's mean in the
    fitting set exactly, so it is computed that way; codes unseen in fitting get the overall mean.
    """
    codes, inv = np.unique(ids_fit, return_inverse=True)
    sums = np.zeros((len(codes), y_fit.shape[1]))
    np.add.at(sums, inv, y_fit)
    means = sums / np.bincount(inv, minlength=len(codes))[:, None]
    pos = np.searchsorted(codes, ids_test)
    pos = np.minimum(pos, len(codes) - 1)
    seen = codes[pos] == ids_test
    pred = np.where(seen[:, None], means[pos], y_fit.mean(axis=0))
    return r2_scores(y_test, pred)[0]


def logprob_r2(
    p_fit: np.ndarray, p_test: np.ndarray, y_fit: np.ndarray, y_test: np.ndarray
) -> float:
    """R^2 of beliefs from the exact next-token log-probabilities (the optimal logits).

    A network that carried only the optimal next-token prediction would score this; a higher R^2
    from the residual stream means it carries more of the belief than its output needs.
    """
    logs = [np.log(np.maximum(p, 1e-12)) for p in (p_fit, p_test)]
    return float(LinearProbe().fit(logs[0], y_fit).score(logs[1], y_test))


__all__ = ["activations", "logprob_r2", "onehot_r2", "probe_r2", "window_ids"]
