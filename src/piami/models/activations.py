"""Collecting activations by TransformerLens hook name, in batches, as numpy arrays.

Instruments take arrays, not models; this module is where a model's activations become arrays.
:func:`collect_activations` runs any :class:`~piami.models.HookedModule` over token sequences in
chunks and keeps the named hook points; :func:`residual_stream` is the common case of a
:class:`~piami.models.Transformer`: the residual stream after the embedding and after every block,
one ``(n_seqs * pos, d_model)`` array per layer, with the logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from piami.errors import PiamiKeyError, PiamiValueError
from piami.models.hooks import HookedModule


@torch.no_grad()
def collect_activations(
    model: HookedModule,
    tokens: np.ndarray,
    names: Sequence[str],
    *,
    batch_size: int = 4096,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Activations at the hook points ``names`` and the outputs, for every sequence of ``tokens``.

    Args:
        model: a :class:`HookedModule` (e.g. :class:`~piami.models.Transformer`); put in eval mode.
        tokens: ``(n_seqs, pos)`` integer token ids.
        names: TransformerLens hook names, e.g. ``["blocks.0.hook_resid_post"]``.
        batch_size: sequences per forward pass.

    Returns:
        ``(acts, outputs)``: ``acts[name]`` is a float32 array ``(n_seqs, pos, ...)``; ``outputs``
        the model's float32 outputs (logits ``(n_seqs, pos, d_vocab)`` for a transformer).

    Raises:
        PiamiKeyError: a name that is not a hook point of the model (the message lists them).
    """
    valid = list(model.hook_points())
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise PiamiKeyError(f"unknown hook point(s) {unknown}; valid: {', '.join(valid)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise PiamiValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model.eval()
    device = next(model.parameters()).device
    acts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    outputs = []
    for start in range(0, len(tokens), batch_size):
        chunk = torch.as_tensor(tokens[start : start + batch_size], device=device)
        out, cache = model.run_with_cache(chunk, names_filter=list(names))
        outputs.append(out.float().cpu().numpy())
        for n in names:
            acts[n].append(cache[n].float().cpu().numpy())
    return {n: np.concatenate(a) for n, a in acts.items()}, np.concatenate(outputs)


def residual_stream(
    model: HookedModule, tokens: np.ndarray, *, batch_size: int = 4096
) -> tuple[list[np.ndarray], np.ndarray]:
    """The residual stream of a transformer at every layer, flattened over positions.

    Args:
        model: a :class:`~piami.models.Transformer` (``cfg.n_layers``, ``cfg.d_model``).
        tokens: ``(n_seqs, pos)`` token ids.
        batch_size: sequences per forward pass.

    Returns:
        ``([embed, after block 0, ..., after block L-1], logits)``: each layer an array
        ``(n_seqs * pos, d_model)`` (float32), the logits ``(n_seqs, pos, d_vocab)``.
    """
    names = ["blocks.0.hook_resid_pre"] + [
        f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)
    ]
    acts, logits = collect_activations(model, tokens, names, batch_size=batch_size)
    return [acts[n].reshape(-1, model.cfg.d_model) for n in names], logits
