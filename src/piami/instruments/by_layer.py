"""Instruments by layer on any model: collected activations in, one reading per layer out.

:func:`piami.models.collect_activations` gives ``name -> (n_seqs, seq_len, d)`` tensors from a
piami, Hugging Face, TransformerLens or plain ``nn.Module`` model. The geometric instruments take
point clouds ``(n_points, d)``; the adapters here flatten sequences and positions into points
(:func:`flatten_positions`) and apply an instrument to every layer:

- :func:`cka_by_layer`: centered kernel alignment between every pair of layers (Kornblith et al.
  2019, eq. 3; :func:`~piami.instruments.geometry.cka`), the same inputs in the same order;
- :func:`dimension_by_layer`: TwoNN (Facco et al. 2017) or Levina-Bickel intrinsic dimension of
  each layer's point cloud (:mod:`piami.instruments.dimension`).

The local learning coefficient needs a loss rather than activations.
:class:`~piami.instruments.LLCEstimator` samples any ``nn.Module`` (by
``torch.func.functional_call``); for a causal language model on token sequences,
:func:`next_token_data` gives its data ``(inputs, targets)`` and :func:`causal_lm_loss` its loss:
the mean next-token cross-entropy, from plain logits or from a ``transformers`` output
(``.logits``)::

    est = LLCEstimator(...).fit(hf_model, next_token_data(tokens), causal_lm_loss)

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 8, 4))
    >>> names, m = cka_by_layer({"a": x, "b": 2.0 * x, "c": rng.normal(size=(50, 8, 4))})
    >>> names, round(float(m[0, 1]), 6), bool(m[0, 2] < 0.1)
    (['a', 'b', 'c'], 1.0, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.instruments.contract import RandomState, check_random_state
from piami.instruments.dimension import mle_dimension, twonn_dimension
from piami.instruments.geometry import Kernel, cka
from piami.theory.fractal import DimensionEstimate
from piami.typing import Float, Int


def flatten_positions(
    activations: Mapping[str, Float[np.ndarray, "n_seqs pos d"]],
) -> dict[str, Float[np.ndarray, "n_points d"]]:
    """``name -> (n_seqs * seq_len, d)`` float arrays, sequence by sequence (numpy or torch in).

    Raises:
        PiamiTypeError, PiamiShapeError: not a non-empty mapping of 3-D float arrays with the
            same ``(n_seqs, seq_len)``.
    """
    if not isinstance(activations, Mapping) or not activations:
        raise PiamiTypeError(
            "activations must be a non-empty mapping name -> (n_seqs, seq_len, d), e.g. from "
            f"collect_activations; got {type(activations).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    lead = None
    for name, a in activations.items():
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu()
            a = (a.float() if a.dtype in (torch.float16, torch.bfloat16) else a).numpy()
        a = np.asarray(a)
        if a.ndim != 3 or a.dtype.kind != "f" or (lead is not None and a.shape[:2] != lead):
            raise PiamiShapeError(
                f"activations[{name!r}] must be a float array (n_seqs, seq_len, d)"
                + (f" with (n_seqs, seq_len) = {lead}" if lead else "")
                + f", got shape {a.shape} of {a.dtype}"
            )
        lead = a.shape[:2]
        out[str(name)] = a.reshape(-1, a.shape[-1])
    return out


def _rows(n: int, max_rows: int | None, random_state: RandomState) -> np.ndarray | None:
    """The same random subset of rows for every layer (``None``: all rows)."""
    if max_rows is None:
        return None
    if isinstance(max_rows, bool) or not isinstance(max_rows, int | np.integer) or max_rows < 4:
        raise PiamiValueError(f"max_rows must be an integer >= 4 or None, got {max_rows!r}")
    if n <= max_rows:
        return None
    return np.sort(check_random_state(random_state).choice(n, size=int(max_rows), replace=False))


def cka_by_layer(
    activations: Mapping[str, Float[np.ndarray, "n_seqs pos d"]],
    *,
    kernel: Kernel = "linear",
    debiased: bool = False,
    max_rows: int | None = None,
    random_state: RandomState = None,
) -> tuple[list[str], Float[np.ndarray, "n_layers n_layers"]]:
    """CKA between every pair of layers, over the same inputs (every sequence and position).

    Args:
        activations: name -> ``(n_seqs, seq_len, d)`` activations of the same tokens.
        kernel: ``"linear"`` (feature space, ``O(n d^2)``: no row limit needed) or ``"rbf"``.
        debiased: the unbiased HSIC (Nguyen et al. 2021).
        max_rows: use this many rows, the same random ones for every layer (kernel CKA needs
            ``n x n`` matrices); ``None``: all.
        random_state: draws those rows.

    Returns:
        ``(names, matrix)``: ``matrix[i, j] = CKA(layer i, layer j)``, symmetric, 1 on the
        diagonal.
    """
    flat = flatten_positions(activations)
    names = list(flat)
    rows = _rows(len(next(iter(flat.values()))), max_rows, random_state)
    pts = [a if rows is None else a[rows] for a in flat.values()]
    m = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            m[i, j] = m[j, i] = cka(pts[i], pts[j], kernel=kernel, debiased=debiased)
    return names, m


def dimension_by_layer(
    activations: Mapping[str, Float[np.ndarray, "n_seqs pos d"]],
    *,
    estimator: Literal["twonn", "mle"] = "twonn",
    max_rows: int | None = None,
    random_state: RandomState = None,
    **options: Any,
) -> dict[str, DimensionEstimate]:
    """Intrinsic dimension of each layer's point cloud (every sequence and position a point).

    Args:
        activations: name -> ``(n_seqs, seq_len, d)`` activations.
        estimator: ``"twonn"`` (:func:`~piami.instruments.dimension.twonn_dimension`) or
            ``"mle"`` (:func:`~piami.instruments.dimension.mle_dimension`).
        max_rows: use this many rows, the same random ones for every layer; ``None``: all.
        random_state: draws those rows.
        **options: passed to the estimator (e.g. ``method="fit"``, ``k=20``).

    Returns:
        name -> :class:`~piami.theory.fractal.DimensionEstimate` (duplicate points are counted
        once, as the estimators do).
    """
    fns = {"twonn": twonn_dimension, "mle": mle_dimension}
    if estimator not in fns:
        raise PiamiValueError(f"estimator must be one of {sorted(fns)}, got {estimator!r}")
    flat = flatten_positions(activations)
    rows = _rows(len(next(iter(flat.values()))), max_rows, random_state)
    return {
        name: fns[estimator](a if rows is None else a[rows], **options) for name, a in flat.items()
    }


def next_token_data(
    tokens: Int[np.ndarray, "n_seqs seq_len"],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` = ``(tokens[:, :-1], tokens[:, 1:])`` as int64 tensors.

    The data of :meth:`LLCEstimator.fit <piami.instruments.LLCEstimator.fit>` for a causal LM,
    with :func:`causal_lm_loss`; the sample size ``n`` is the number of sequences.
    """
    t = tokens.detach().cpu() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    if isinstance(t, np.ndarray):
        if t.dtype.kind not in "iu":
            raise PiamiTypeError(f"tokens must be integer ids, got {t.dtype}")
        t = torch.as_tensor(t.astype(np.int64))
    if t.is_floating_point() or t.ndim != 2 or t.shape[1] < 2 or t.shape[0] < 1:
        raise PiamiShapeError(
            f"tokens must be integer ids (n_seqs, seq_len) with seq_len >= 2, got "
            f"{tuple(t.shape)} of {t.dtype}"
        )
    t = t.long()
    return t[:, :-1].contiguous(), t[:, 1:].contiguous()


def causal_lm_loss(output: Any, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of a causal LM's output against ``targets``.

    Args:
        output: the model's output on the inputs: logits ``(batch, pos, d_vocab)``, or a
            ``transformers`` output with ``.logits``, or a tuple whose first item is the logits.
        targets: ``(batch, pos)`` the next token at each position.

    Returns:
        A scalar: ``mean over (batch, pos) of -log softmax(logits)[target]``.
    """
    logits = getattr(output, "logits", output)
    if isinstance(logits, (tuple, list)) and logits:
        logits = logits[0]
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        raise PiamiTypeError(
            "causal_lm_loss needs logits (batch, pos, d_vocab) or an output with .logits, got "
            f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}"
        )
    if not isinstance(targets, torch.Tensor) or targets.shape != logits.shape[:2]:
        raise PiamiShapeError(
            f"targets must be a tensor of shape (batch, pos) = {tuple(logits.shape[:2])}, got "
            f"{tuple(getattr(targets, 'shape', ()))}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


__all__ = [
    "causal_lm_loss",
    "cka_by_layer",
    "dimension_by_layer",
    "flatten_positions",
    "next_token_data",
]
