"""Geometry by depth on real text: TwoNN intrinsic dimension and adjacent-layer CKA per layer.

Large transformers read on real text show an intrinsic-dimension profile that rises in the early
layers and falls towards the output (Valeriani et al. 2023, "The geometry of hidden representations
of large transformer models"; Cheng et al. 2025, "Emergence of a high-dimensional abstraction
phase in language transformers"). Here ``text_seqs`` contiguous pieces of ``text_len`` tokens of
Shakespeare (:func:`~piami.processes.corpus.load_text`), cut by the model's own tokenizer (or, for
the tokenizer-free tiny model, one id per character by frequency rank), are read by the model and
by its random-weight twin; every position but the prefix is a point. Per layer (embedding + each
block's ``resid_post``): the TwoNN dimension with its exact 95% interval (Facco et al. 2017; the
same ``max_rows`` rows for every layer and both models) and the linear CKA to the next layer
(Kornblith et al. 2019, eq. 3).

The rule that decides the profile (:func:`peak_test`, fixed before the first run): ``J`` is the
interior layer of largest dimension, ``h`` the interval half-widths. A *peak* when ``d_J`` exceeds
both the first and the last layer's value by more than ``h_J + h_end``; *no peak* when an end
exceeds ``d_J`` by more than that; else the intervals overlap and the shape is not identified.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from torch import nn

from piami.errors import PiamiValueError
from piami.experiments.pretrained_lm.config import Config
from piami.instruments.by_layer import cka_by_layer, dimension_by_layer
from piami.lab import Comparison
from piami.models import collect_activations
from piami.processes.corpus import load_text

#: Characters of the corpus skipped before the text is read (the first play's cast list).
TEXT_OFFSET = 20_000
#: Fewest layers (embedding included) whose profile the rule decides (a priori): with fewer, a
#: "peak" rests on one or two interior layers.
DEPTH_MIN_LAYERS = 5
#: The random-weight control passes when its rise is within its own interval margin or at most
#: this share of the pretrained model's rise (a priori: "much weaker" = under half).
RANDOM_SHARE = 0.5
DEPTH_REF = (
    "Valeriani et al. 2023 (NeurIPS), The geometry of hidden representations of large transformer "
    "models; Cheng et al. 2025 (ICLR), Emergence of a high-dimensional abstraction phase"
)
#: What piami's instrument-calibration experiment states for TwoNN and MLE on known manifolds.
CALIBRATION = (
    "calibration (instrument-calibration): TwoNN and the Levina-Bickel MLE are held to within 5% "
    "relative error on the spheres S^2..S^5 at 2,000 points; TwoNN reads low at S^8"
)
#: Neighbours of the Levina-Bickel MLE (Levina & Bickel 2004 use 10-20; instrument-calibration's).
MLE_K = 20
#: Largest dimension instrument-calibration checks TwoNN at (S^8, shown there, not scored).
CALIBRATED_UP_TO = 8


def char_ranks(text: str, vocab_size: int) -> tuple[dict[str, int], list[str]]:
    """One id per character by frequency rank, ``1 .. vocab_size - 1``, for a tokenizer-free model.

    Returns:
        ``(rank, chars)``: character -> id (the rarest sharing the last id), and id -> the
        character it decodes to (id 0, the prefix, decodes to nothing; the shared last id to the
        most frequent character it stands for).

    Example:
        >>> char_ranks("abbccc", 3)
        ({'c': 1, 'b': 2, 'a': 2}, ['', 'c', 'b'])
    """
    if vocab_size < 2:
        raise PiamiValueError(f"vocab_size must be >= 2, got {vocab_size}")
    letters, counts = np.unique(list(text), return_counts=True)
    order = letters[np.argsort(-counts, kind="stable")]
    rank = {str(c): min(1 + i, vocab_size - 1) for i, c in enumerate(order)}
    chars = [""] + [str(c) for c in order[: vocab_size - 1]]
    return rank, chars + [""] * (vocab_size - len(chars))


def text_ids(cfg: Config, tokenizer: Any, vocab_size: int, prefix_id: int) -> np.ndarray:
    """``(text_seqs, text_len + 1)`` token ids of consecutive pieces of the corpus, prefix first.

    With a tokenizer, the text is cut by it; without (the tiny model), each character becomes one
    id ``1 .. vocab_size - 1`` by its frequency rank (the rarest sharing the last id).
    """
    need = cfg.text_seqs * cfg.text_len
    chars = TEXT_OFFSET + need * (2 if tokenizer is None else 8)
    text = load_text(cfg.text_source, max_chars=chars)[TEXT_OFFSET:]
    if tokenizer is not None:
        ids = np.asarray(tokenizer.encode(text, add_special_tokens=False), dtype=np.int64)
    else:
        rank, _ = char_ranks(text, vocab_size)
        ids = np.asarray([rank[c] for c in text], dtype=np.int64)
    if ids.size < need:
        raise PiamiValueError(
            f"the text gives {ids.size} tokens, fewer than text_seqs * text_len = {need}; lower "
            "text_seqs or text_len"
        )
    pieces = ids[:need].reshape(cfg.text_seqs, cfg.text_len)
    return np.concatenate([np.full((cfg.text_seqs, 1), prefix_id), pieces], axis=1)


def _mle_or_nan(name: str, acts: np.ndarray, rows: dict[str, Any]) -> tuple[float, float, float]:
    """The Levina-Bickel MLE of one layer, or NaNs where it has no more than ``MLE_K`` distinct
    points (the embedding of a small vocabulary)."""
    try:
        e = dimension_by_layer({name: acts}, estimator="mle", k=MLE_K, **rows)[name]
    except PiamiValueError:
        return (float("nan"),) * 3
    return e.dimension, e.low, e.high


@torch.no_grad()
def depth_profile(model: nn.Module, ids: np.ndarray, cfg: Config, seed: int) -> dict[str, Any]:
    """TwoNN by layer (with intervals) and the linear CKA of each layer to the next.

    Args:
        model: a Hugging Face causal LM.
        ids: from :func:`text_ids`; the prefix position is dropped.
        cfg: ``geometry_rows``, batch size and device.
        seed: draws the rows (the same seed gives the same rows for every model).

    Returns:
        ``twonn``, ``low``, ``high``, ``n_points`` (distinct points used), and the Levina-Bickel
        ``mle``, ``mle_low``, ``mle_high`` (``k =`` :data:`MLE_K`, on the same rows): per layer;
        ``cka_adjacent``: CKA(layer i, layer i + 1).
    """
    n = int(model.config.num_hidden_layers)
    names = ["hook_embed"] + [f"blocks.{i}.hook_resid_post" for i in range(n)]
    acts = collect_activations(model, ids, names, batch_size=cfg.batch_size, device=cfg.device)
    acts = {k: v[:, 1:].float().numpy() for k, v in acts.items()}
    rows = {"max_rows": cfg.geometry_rows, "random_state": seed}
    dims = dimension_by_layer(acts, **rows)
    mle = {k: _mle_or_nan(k, a, rows) for k, a in acts.items()}
    cka = [
        float(cka_by_layer({"a": a, "b": b}, **rows)[1][0, 1])
        for a, b in itertools.pairwise(acts.values())
    ]
    est = [dims[k] for k in names]
    return {
        "twonn": [e.dimension for e in est],
        "low": [e.low for e in est],
        "high": [e.high for e in est],
        "n_points": [e.n_points for e in est],
        "mle": [mle[k][0] for k in names],
        "mle_low": [mle[k][1] for k in names],
        "mle_high": [mle[k][2] for k in names],
        "cka_adjacent": cka,
    }


def peak_test(dim: list[float], low: list[float], high: list[float]) -> dict[str, Any]:
    """The rise of the interior maximum above the profile's ends, and the rule's verdict.

    Args:
        dim, low, high: the dimension and its interval per layer (at least 3 layers).

    Returns:
        ``peak_layer`` (index of the interior maximum), ``rise`` (``d_J`` minus the binding end's
        value: the end for which ``d_J - d_end - (h_J + h_end)`` is smallest), ``margin``
        (``h_J + h_end`` of that end), ``end`` (its index) and ``verdict``: ``"peak"``,
        ``"no peak"`` or ``"overlap"``.

    Example:
        >>> peak_test([5, 9, 6], [4.5, 8.5, 5.5], [5.5, 9.5, 6.5])["verdict"]
        'peak'
        >>> peak_test([5, 6, 9], [4.5, 5.5, 8.5], [5.5, 6.5, 9.5])["verdict"]
        'no peak'
        >>> peak_test([5, 6, 5.5], [4, 5, 4.5], [6, 7, 6.5])["verdict"]
        'overlap'
    """
    d, lo, hi = (np.asarray(v, dtype=float) for v in (dim, low, high))
    if d.ndim != 1 or d.size < 3 or lo.shape != d.shape or hi.shape != d.shape:
        raise PiamiValueError(
            f"peak_test needs dim, low and high of one equal length >= 3, got {d.shape}, "
            f"{lo.shape}, {hi.shape}"
        )
    h = (hi - lo) / 2.0
    J = 1 + int(np.argmax(d[1:-1]))
    ends = (0, d.size - 1)
    slack = {e: (d[J] - d[e]) - (h[J] + h[e]) for e in ends}
    end = min(ends, key=slack.__getitem__)
    if all(s > 0 for s in slack.values()):
        verdict = "peak"
    elif any((d[e] - d[J]) > (h[J] + h[e]) for e in ends):
        verdict = "no peak"
    else:
        verdict = "overlap"
    return {
        "peak_layer": J,
        "rise": float(d[J] - d[end]),
        "margin": float(h[J] + h[end]),
        "end": end,
        "verdict": verdict,
    }


def _profile_note(p: dict[str, Any], layers: list[str], test: dict[str, Any]) -> str:
    dims = ", ".join(
        f"{lab} {d:.1f} [{lo:.1f}, {hi:.1f}]"
        for lab, d, lo, hi in zip(layers, p["twonn"], p["low"], p["high"], strict=True)
    )
    cka, npts = p["cka_adjacent"], p["n_points"]
    beyond = (
        f"; readings above {CALIBRATED_UP_TO} lie beyond the calibrated range (TwoNN reads low "
        "there), so the profile's shape, not its values, is the reading"
    ) * (max(p["twonn"]) > CALIBRATED_UP_TO)
    mle = ", ".join(f"{lab} {d:.1f}" for lab, d in zip(layers, p.get("mle", []), strict=False))
    if "mle" not in p:
        mle_verdict = "not measured"
    elif np.isfinite(p["mle"]).all():
        t = peak_test(p["mle"], p["mle_low"], p["mle_high"])
        mle_verdict = (
            f"whose maximum is at {layers[t['peak_layer']]} (the same rule on its delta-method "
            f"interval, optimistic since neighbourhoods overlap: {t['verdict']})"
        )
    else:
        mle_verdict = f"not defined where a layer has no more than {MLE_K} distinct points"
    return (
        f"TwoNN by layer (95% interval; {min(npts)}..{max(npts)} distinct points, the embedding "
        f"holding one per distinct token): {dims}; interior maximum at "
        f"{layers[test['peak_layer']]}, binding end {layers[test['end']]} (verdict: "
        f"{test['verdict']}); beside it the Levina-Bickel MLE (k = {MLE_K}): {mle}, "
        f"{mle_verdict}; "
        f"adjacent-layer linear CKA {min(cka):.3f}..{max(cka):.3f}; " + CALIBRATION + beyond
    )


def depth_rows(depth: dict[str, dict[str, Any]], layers: list[str]) -> list[Comparison]:
    """The hypothesis row (a peak in the pretrained profile) and its random-weight control."""
    tests = {w: peak_test(p["twonn"], p["low"], p["high"]) for w, p in depth.items()}
    few = (
        f"the profile has {len(layers)} layers, fewer than the {DEPTH_MIN_LAYERS} the rule needs "
        "(a priori: a peak resting on one or two interior layers is not a rise and fall)"
    ) * (len(layers) < DEPTH_MIN_LAYERS)
    rule = (
        "a priori rule: J = interior layer of largest TwoNN; a peak when d_J exceeds the first "
        "and the last layer by more than h_J + h_end (h: 95% interval half-widths); no peak when "
        "an end exceeds d_J by more than that; else not identified (intervals overlap)"
    )
    m, r = tests["model"], tests["random"]
    overlap = "the intervals of the interior maximum and an end overlap" * (
        m["verdict"] == "overlap"
    )
    hyp = Comparison(
        name="real text: the pretrained TwoNN profile peaks at an interior layer (rise minus "
        "the interval margin)",
        kind="prediction",
        predicted=m["margin"],
        measured=m["rise"],
        tolerance=0.0,
        sense="at_least",
        tolerance_source=f"measured noise: {rule}",
        measured_interval=(m["rise"] - m["margin"], m["rise"] + m["margin"]),
        not_identified=few or overlap,
        reference="hypothesis: " + DEPTH_REF,
        note=_profile_note(depth["model"], layers, m),
    )
    allowed = max(r["margin"], RANDOM_SHARE * max(m["rise"], 0.0))
    ctrl = Comparison(
        name="real text: random weights show no such peak (rise of the interior maximum)",
        kind="control",
        predicted=0.0,
        measured=r["rise"],
        tolerance=allowed,
        sense="at_most",
        tolerance_source=f"a priori: at most its own interval margin h_J + h_end, or "
        f"{RANDOM_SHARE:g} x the pretrained rise (much weaker); {rule}",
        measured_interval=(r["rise"] - r["margin"], r["rise"] + r["margin"]),
        not_identified=few,
        note=_profile_note(depth["random"], layers, r),
    )
    return [hyp, ctrl]


__all__ = [
    "CALIBRATED_UP_TO",
    "CALIBRATION",
    "DEPTH_MIN_LAYERS",
    "DEPTH_REF",
    "MLE_K",
    "RANDOM_SHARE",
    "TEXT_OFFSET",
    "char_ranks",
    "depth_profile",
    "depth_rows",
    "peak_test",
    "text_ids",
]
