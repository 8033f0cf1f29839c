"""Independent markers of what a language model has learned, read at one checkpoint.

Each marker is measured on fixed token sets, without the LLC, so that its own stages can be set
beside the LLC's critical points (Hoogland et al., TMLR 2025, sec. 4 and app. on the language
model's stages):

- **held-out loss**: next-token cross-entropy (nats per token) on windows of the held-out text;
- **bigram KL**: ``mean_t KL(p_bigram(. | x_t) || p_model(. | x_<=t))`` on held-out windows, with
  ``p_bigram`` the empirical bigram model of the training text (add-``alpha`` smoothed). It falls
  while the model learns bigram statistics and may rise again once it uses more context (their
  "bigram score");
- **previous-token attention**: the largest, over layer-0 heads, mean attention from position
  ``t`` to ``t - 1`` on held-out windows (the previous-token heads an induction head composes
  with; Olsson et al. 2022, sec. 2);
- **induction score**: on sequences of ``L`` tokens drawn i.i.d. from the training text's unigram
  frequencies and repeated once (``[r, r]``), the mean loss on the first copy minus the mean loss
  on the second (nats per token; Olsson et al. 2022, "in-context learning on repeated random
  tokens"). A model that copies from the earlier occurrence predicts the second copy; without
  induction both halves are equally unpredictable and the score stays near 0;
- **induction attention**: the largest, over layer-1 heads, mean attention from a position of the
  second copy to the token after its earlier occurrence (Olsson et al.'s induction-head pattern).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import PiamiShapeError, PiamiValueError
from piami.models import Transformer

__all__ = [
    "MARKERS",
    "bigram_model",
    "induction_sequences",
    "measure_markers",
]

#: The markers of :func:`measure_markers` and whether learning raises them (True) or lowers them.
MARKERS: dict[str, bool] = {
    "held_out_loss": False,
    "bigram_kl": False,
    "prev_token_attention": True,
    "induction_score": True,
    "induction_attention": True,
}


def bigram_model(tokens: np.ndarray, n_symbols: int, *, alpha: float = 0.1) -> np.ndarray:
    """Empirical next-token distribution given the current token, add-``alpha`` smoothed.

    Args:
        tokens: ``(n,)`` int token stream.
        n_symbols: vocabulary size ``V``.
        alpha: pseudo-count added to every cell.

    Returns:
        ``(V, V)`` float64 row-stochastic matrix ``P[a, b] = Pr(next = b | current = a)``.

    Example:
        >>> bigram_model(np.array([0, 1, 0, 1, 0]), 2, alpha=0.0).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    t = np.asarray(tokens)
    if t.ndim != 1 or t.size < 2:
        raise PiamiShapeError(f"tokens must be a 1-D stream of >= 2 tokens, got {t.shape}")
    if alpha < 0:
        raise PiamiValueError(f"alpha must be >= 0, got {alpha!r}")
    counts = np.bincount(t[:-1] * n_symbols + t[1:], minlength=n_symbols * n_symbols)
    counts = counts.reshape(n_symbols, n_symbols).astype(np.float64) + alpha
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.full_like(counts, 1.0 / n_symbols), where=rows > 0)


def induction_sequences(
    unigram: np.ndarray, n_seqs: int, half: int, *, rng: np.random.Generator
) -> np.ndarray:
    """``(n_seqs, 2 * half)`` sequences ``[r, r]`` with ``r`` i.i.d. from ``unigram``.

    Example:
        >>> s = induction_sequences(np.array([0.5, 0.5]), 3, 4, rng=np.random.default_rng(0))
        >>> s.shape, bool((s[:, :4] == s[:, 4:]).all())
        ((3, 8), True)
    """
    p = np.asarray(unigram, dtype=np.float64)
    if p.ndim != 1 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise PiamiValueError("unigram must be a 1-D probability vector")
    r = rng.choice(p.size, size=(n_seqs, half), p=p)
    return np.concatenate([r, r], axis=1).astype(np.int64)


def _mean_pattern(pattern: torch.Tensor, offset: int, start: int) -> torch.Tensor:
    """Per head, the mean attention from query ``q >= start`` to key ``q - offset``."""
    n = pattern.shape[-1]
    q = torch.arange(start, n, device=pattern.device)
    return pattern[:, :, q, q - offset].mean(dim=(0, 2))  # (head,)


@torch.no_grad()
def measure_markers(
    model: Transformer, held_out: torch.Tensor, repeated: torch.Tensor, bigram: torch.Tensor
) -> dict[str, float]:
    """Every marker of :data:`MARKERS` for one model (see the module docstring).

    Args:
        model: a piami :class:`~piami.models.Transformer` with at least 2 layers.
        held_out: ``(n, n_ctx + 1)`` int64 windows of held-out text.
        repeated: ``(m, 2 L)`` int64 repeated random sequences, ``2 L <= n_ctx + 1``.
        bigram: ``(V, V)`` empirical bigram matrix (:func:`bigram_model`) on the model's device.

    Returns:
        marker name -> value (nats per token for losses and KL, attention weights otherwise).
    """
    was_training = model.training
    model.eval()
    V, dev = model.cfg.d_vocab, model.device
    held_out, repeated = held_out.to(dev), repeated.to(dev)
    logits, cache = model.run_with_cache(held_out[:, :-1])
    logp = F.log_softmax(logits.double(), dim=-1)
    loss = F.nll_loss(logp.reshape(-1, V), held_out[:, 1:].reshape(-1))
    pb = bigram.to(dev, torch.float64)[held_out[:, :-1]]  # (n, pos, V)
    kl = (pb * (pb.clamp_min(1e-300).log() - logp)).sum(-1).mean()
    prev = _mean_pattern(cache["blocks.0.attn.hook_pattern"], 1, 1).max()

    half = repeated.shape[1] // 2
    logits_r, cache_r = model.run_with_cache(repeated[:, :-1])
    nll = F.cross_entropy(
        logits_r.double().reshape(-1, V), repeated[:, 1:].reshape(-1), reduction="none"
    ).reshape(repeated.shape[0], -1)  # position p predicts token p + 1
    first, second = nll[:, : half - 1].mean(), nll[:, half - 1 :].mean()
    # a query at q >= half sees token q; its earlier occurrence sits at q - half, followed by
    # the token at q - half + 1: the induction head's key
    ind_attn = _mean_pattern(cache_r["blocks.1.attn.hook_pattern"], half - 1, half).max()
    model.train(was_training)
    return {
        "held_out_loss": float(loss),
        "bigram_kl": float(kl),
        "prev_token_attention": float(prev),
        "induction_score": float(first - second),
        "induction_attention": float(ind_attn),
    }
