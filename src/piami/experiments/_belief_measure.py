"""Measurements of the belief-geometry experiment: residual streams, probes, k-token baselines.

Besides the probes (:func:`probe_r2`), this module computes the references the experiment's rows
are judged against: the best function of the position and the last k tokens (:func:`window_means`:
as beliefs, :func:`onehot_r2`; as next-token predictions, :func:`next_token_kl`), a probe fitted to
shuffled targets (:func:`shuffled_r2`), and 95% intervals by resampling held-out sequences
(:func:`bootstrap_r2`, :func:`mean_interval`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from piami.instruments.probes import LinearProbe, r2_scores
from piami.models import Transformer, residual_stream


def activations(model: Transformer, inputs: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Residual streams [embed, after block 0, ...] as (n * pos, d_model) float32, and logits."""
    return residual_stream(model, inputs)


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


def window_means(ids_fit: np.ndarray, ids_test: np.ndarray, y_fit: np.ndarray) -> np.ndarray:
    """The mean of ``y_fit`` over the fitting rows with each test row's code: ``(n_test, dim)``.

    This is what least squares on the complete one-hot code of ``ids`` predicts (indicator features
    reproduce each category's mean exactly); codes unseen in fitting get the overall mean.
    """
    codes, inv = np.unique(ids_fit, return_inverse=True)
    sums = np.zeros((len(codes), y_fit.shape[1]))
    np.add.at(sums, inv, y_fit)
    means = sums / np.bincount(inv, minlength=len(codes))[:, None]
    pos = np.searchsorted(codes, ids_test)
    pos = np.minimum(pos, len(codes) - 1)
    seen = codes[pos] == ids_test
    return np.where(seen[:, None], means[pos], y_fit.mean(axis=0))


def onehot_r2(
    ids_fit: np.ndarray, ids_test: np.ndarray, y_fit: np.ndarray, y_test: np.ndarray
) -> float:
    """R^2 of a linear probe on the complete one-hot code of ``ids`` = the mean target per code."""
    return r2_scores(y_test, window_means(ids_fit, ids_test, y_fit))[0]


def kl_rows(p: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """KL(p || q) of each row, from exact probabilities ``p`` and log-probabilities ``logq``."""
    return np.sum(p * (np.log(np.maximum(p, 1e-300)) - logq), axis=-1)


def next_token_kl(
    ids_fit: np.ndarray, ids_test: np.ndarray, p_fit: np.ndarray, p_test: np.ndarray
) -> float:
    """Mean KL(exact || q) of the best next-token predictor from the code of ``ids`` alone.

    ``q`` = the mean exact next-token distribution over the fitting prefixes with the same code,
    i.e. Pr(next token | position, last k tokens) estimated on the fitting set: the predictor an
    ideal network that reads only those tokens would make. Its KL is the information the rest of
    the context adds.
    """
    q = window_means(ids_fit, ids_test, p_fit)
    return float(np.mean(kl_rows(p_test, np.log(np.maximum(q, 1e-300)))))


def shuffled_r2(
    fit: list[np.ndarray], test: list[np.ndarray], y_fit: np.ndarray, y_test: np.ndarray, rng
) -> float:
    """Held-out R^2 of the all-layers probe on targets permuted across samples (a null).

    With targets unrelated to the features, least squares scores about ``-d / n_fit`` out of
    sample; a probe or a data split that leaked would score above 0.
    """
    probe = LinearProbe().fit(np.hstack(fit), y_fit[rng.permutation(len(y_fit))])
    return float(probe.score(np.hstack(test), y_test[rng.permutation(len(y_test))]))


def mean_interval(per_seq: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Mean over independent sequences and its 95% normal interval."""
    m = float(np.mean(per_seq))
    h = 1.959963984540054 * float(np.std(per_seq, ddof=1)) / np.sqrt(len(per_seq))
    return m, (m - h, m + h)


def bootstrap_r2(
    y: np.ndarray, preds: dict[str, np.ndarray], seq_len: int, rng, n_boot: int = 400
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of the variance-weighted R^2 of each prediction, resampling sequences.

    ``y`` and each prediction are ``(n_seqs * seq_len, dim)`` with the rows of one sequence
    together; whole sequences are resampled (they are independent, their positions are not).
    The same resamples serve every prediction, so differences are paired.
    """
    n = len(y) // seq_len
    per_seq = lambda a: a.reshape(n, seq_len, -1).sum(axis=1)  # noqa: E731
    s1, s2 = per_seq(y), per_seq(y**2)
    sse = {k: per_seq((y - v) ** 2).sum(axis=1) for k, v in preds.items()}
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # (B, n)
    total = n * seq_len
    sst = (counts @ s2).sum(axis=1) - ((counts @ s1) ** 2).sum(axis=1) / total
    return {k: 1.0 - (counts @ v) / sst for k, v in sse.items()}


def percentile_interval(reps: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% percentiles of bootstrap replicates."""
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi)


def logprob_r2(
    p_fit: np.ndarray, p_test: np.ndarray, y_fit: np.ndarray, y_test: np.ndarray
) -> float:
    """R^2 of beliefs from the exact next-token log-probabilities (the optimal logits).

    A network that carried only the optimal next-token prediction would score this; a higher R^2
    from the residual stream means it carries more of the belief than its output needs.
    """
    logs = [np.log(np.maximum(p, 1e-12)) for p in (p_fit, p_test)]
    return float(LinearProbe().fit(logs[0], y_fit).score(logs[1], y_test))


def held_out_sets(proc: Any, cfg: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two held-out sets (fit the probes, score them): inputs, targets, exact beliefs and probs."""
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


def probe_networks(cfg: Any, nets: dict[str, Any], fit: dict, test: dict) -> dict[str, Any]:
    """Probe R^2 by layer, KL(exact || network) per prefix, and the shuffled-target null."""
    L, V = cfg.n_ctx, fit["probs"].shape[1]
    layers = ["embed"] + [f"L{i}" for i in range(cfg.n_layers)] + ["concat"]
    p_all = np.concatenate([fit["probs"], test["probs"]])
    out: dict[str, Any] = {"r2": {}}
    for tag, net in nets.items():
        a_fit, fit_logits = activations(net, fit["inputs"])
        a_test, logits = activations(net, test["inputs"])
        rb, preds = probe_r2(a_fit, a_test, fit["beliefs"], test["beliefs"])
        rp, _ = probe_r2(a_fit, a_test, fit["probs"], test["probs"])
        out["r2"][f"beliefs_{tag}"] = dict(zip(layers, rb, strict=True))
        out["r2"][f"next_token_{tag}"] = dict(zip(layers, rp, strict=True))
        all_logits = torch.as_tensor(np.concatenate([fit_logits, logits]), dtype=torch.float64)
        logq = torch.log_softmax(all_logits, -1).numpy().reshape(-1, V)
        out[f"kl_{tag}"] = kl_rows(p_all, logq).reshape(-1, L)  # (sequence, position)
        if tag == "trained":
            out["images"], out["logq"] = preds, logq.reshape(-1, L, V)
            rng = np.random.default_rng([cfg.seed, 3])
            out["shuffled"] = shuffled_r2(a_fit, a_test, fit["beliefs"], test["beliefs"], rng)
        del a_fit, a_test
    return out


def measure(
    cfg: Any, proc: Any, model: Transformer, untrained: Transformer, fit: dict, test: dict
) -> dict[str, Any]:
    """Everything the rows, metrics and figures need (deterministic given the config)."""
    L, S, V = cfg.n_ctx, proc.n_states, proc.n_symbols
    m = probe_networks(cfg, {"trained": model, "untrained": untrained}, fit, test)
    # loss by position: sampled cross-entropy, and its expectation over the next token under the
    # exact distribution, E[H(p, q)] = E[H(p)] + KL(p || q)
    logq, p = m.pop("logq"), np.concatenate([fit["probs"], test["probs"]]).reshape(-1, L, V)
    targets = np.concatenate([fit["targets"], test["targets"]])
    m["kl"] = m["kl_trained"].mean(axis=0)
    m["expected"] = -np.mean(np.sum(p * logq, axis=-1), axis=0)
    m["sampled"] = -np.mean(np.take_along_axis(logq, targets[..., None], -1)[..., 0], axis=0)
    m["optimal"] = proc.optimal_loss(L + 1)[1:]
    m["entropy_per_seq"] = -np.sum(p * np.log(np.maximum(p, 1e-300)), axis=-1).mean(axis=1)
    m["r2_onehot"], m["kl_onehot"] = {}, {}
    for k in range(1, 5):
        ids = [window_ids(d["inputs"], k, V) for d in (fit, test)]
        name = f"position + last {k} token{'s' if k > 1 else ''}"
        pred = window_means(ids[0], ids[1], fit["beliefs"])
        m["r2_onehot"][name] = r2_scores(test["beliefs"], pred)[0]
        m["kl_onehot"][name] = next_token_kl(ids[0], ids[1], fit["probs"], test["probs"])
        if k == 3:
            k3 = pred
    reps = bootstrap_r2(
        test["beliefs"],
        {"final": m["images"]["final"], "concat": m["images"]["concat"], "k3": k3},
        L,
        np.random.default_rng([cfg.seed, 4]),
    )
    m["r2_final_interval"] = percentile_interval(reps["final"])
    m["concat_minus_k3_interval"] = percentile_interval(reps["concat"] - reps["k3"])
    m["r2_logprobs"] = logprob_r2(fit["probs"], test["probs"], fit["beliefs"], test["beliefs"])
    # Pr(x | belief) = belief @ E with E[i, x] = sum_j T[x, i, j]; when E has full row rank the
    # next-token probabilities are an invertible affine image of the belief and score the same R^2
    emission = np.asarray(proc.T).sum(axis=2).T  # (n_states, n_symbols)
    m["affine_control"] = bool(np.linalg.matrix_rank(emission) == S)
    return m


__all__ = [
    "activations",
    "bootstrap_r2",
    "held_out_sets",
    "kl_rows",
    "logprob_r2",
    "mean_interval",
    "measure",
    "next_token_kl",
    "onehot_r2",
    "percentile_interval",
    "probe_networks",
    "probe_r2",
    "shuffled_r2",
    "window_ids",
    "window_means",
]
