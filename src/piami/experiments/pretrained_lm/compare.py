"""The rows of pretrained-lm: a pure function of its measurements.

A pretrained LM is not known to form the belief state of a process it meets only in its context,
so the predictions here are hypotheses that may come out either way, each decided only when its
95% interval excludes 0 (else *not identified*). Per process:

- prediction: the belief R² at the best layer (chosen on held-back fitting sequences) exceeds the
  best position + last-k read-out's (the exact ``E[eta | last k symbols]``, :mod:`.targets`): the
  model carries more of the belief, linearly, than any function of the recent symbols (not
  identified when the read-out leaves less than :data:`~.config.MIN_LEFT` of the variance);
- prediction: it exceeds the random-weight model's best layer (what the architecture alone gives);
- prediction: the in-context loss over the second half of the positions is below that of the
  exact best predictor from the last symbol, ``Pr(x_t | x_{t-1})``: the model uses more of the
  past than the last token;
- prediction: it is below the unigram entropy ``H(X)``: the model's predictions approach the
  optimum beyond what symbol frequencies allow;
- controls: the random-weight model does not beat the read-out nor the last-symbol predictor (the
  95% interval of its margin must reach 0; the last symbol, not the unigram, because random tied
  embeddings already give a copy bias, which a persistent process rewards), and a probe on
  shuffled beliefs scores nothing;
- sanity: the exact optimal loss on the sampled sequences matches its exact expectation
  (the sampler and the filter agree with the block entropies), and, with a tokenizer, the symbols'
  text tokenizes back into the ids the model was given.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from piami.experiments.pretrained_lm.block_llc import block_llc_rows
from piami.experiments.pretrained_lm.config import HYPOTHESIS, MIN_LEFT, SHUFFLED_BAR, Config
from piami.experiments.pretrained_lm.depth import depth_rows
from piami.experiments.pretrained_lm.generated import generated_rows
from piami.experiments.pretrained_lm.measure import PLMMeasurements
from piami.instruments.beliefs import Z95
from piami.lab import Comparison

_DECIDE = (
    "measured noise: tolerance 0; decided only when the paired 95% {what} excludes 0 (else not "
    "identified)"
)
_REACH = (
    "measured noise: the lower half of the 95% {what}; fails only when the whole interval lies "
    "above 0"
)


def _straddles(iv: list[float]) -> str:
    lo, hi = iv
    return f"the 95% interval [{lo:.3g}, {hi:.3g}] contains 0" if lo <= 0 <= hi else ""


def _hypothesis(name: str, d: dict[str, Any], what: str, unit: str, note: str) -> Comparison:
    return Comparison(
        name=name,
        kind="prediction",
        predicted=0.0,
        measured=d["value"],
        tolerance=0.0,
        sense="at_least",
        tolerance_source=_DECIDE.format(what=what),
        measured_interval=tuple(d["interval"]),
        not_identified=_straddles(d["interval"]),
        unit=unit,
        reference=HYPOTHESIS,
        note=note,
    )


def _must_not_exceed(name: str, d: dict[str, Any], what: str, unit: str, note: str) -> Comparison:
    lo = d["interval"][0]
    return Comparison(
        name=name,
        kind="control",
        predicted=0.0,
        measured=d["value"],
        tolerance=max(0.0, d["value"] - lo),
        sense="at_most",
        tolerance_source=_REACH.format(what=what),
        measured_interval=tuple(d["interval"]),
        unit=unit,
        note=note,
    )


def process_rows(cfg: Config, name: str, p: dict[str, Any], layers: list[str]) -> list[Comparison]:
    """The eight rows of one process (module docstring)."""
    k, best = p["control_k"], p["best_layer"]
    r2, ctrl = p["best_r2"], p["control_r2"][str(k)]
    boot = "bootstrap interval over scoring sequences"
    norm = "normal interval over sequences"
    h, ll = p["unigram_entropy"], p["late_loss"]
    late = f"positions {p['late_start']}..{cfg.seq_len - 1}"
    opt = p["optimal_check"]
    se = (opt["interval"][1] - opt["interval"][0]) / (2 * Z95)
    too_little = (
        f"the last-{k} read-out already explains {ctrl:.3f} of the belief's variance; at least "
        f"{MIN_LEFT:g} must be left to the rest of the past (a priori) for the data to tell "
        "belief geometry from the window"
    ) * (ctrl > 1.0 - MIN_LEFT)
    beyond = _hypothesis(
        f"{name}: best-layer belief R² minus the position + last-{k} read-out's",
        p["diff"]["model_minus_control"],
        boot,
        "",
        f"model {r2['model']:.4f} at {layers[best['model']]} (chosen on held-back fitting "
        f"sequences) vs {ctrl:.4f}, the exact E[belief | last {k} symbols]: the best any "
        "function of the position and the last k symbols can do",
    )
    if too_little:
        beyond = replace(beyond, not_identified=too_little)
    return [
        beyond,
        _hypothesis(
            f"{name}: best-layer belief R², pretrained minus random weights",
            p["diff"]["model_minus_random"],
            boot,
            "",
            f"random weights {r2['random']:.4f} at {layers[best['random']]}: what the "
            "architecture gives without learning",
        ),
        _hypothesis(
            f"{name}: last-symbol predictor's loss minus the in-context loss over the second half",
            p["late"]["last_symbol_minus_model"],
            norm,
            "nats",
            f"{late}; model {ll['model']:.4f} nats, exact Pr(x_t | x_t-1) {ll['last_symbol']:.4f}, "
            f"optimum {ll['optimal']:.4f}; the model's prediction restricted to the alphabet and "
            f"renormalized (its full softmax leaves {p['mass']['model']:.3f} on the alphabet)",
        ),
        _hypothesis(
            f"{name}: unigram entropy minus the in-context loss over the second half",
            p["late"]["unigram_minus_model"],
            norm,
            "nats",
            f"{late}; model {ll['model']:.4f} nats vs H(X) = {h:.4f}",
        ),
        _must_not_exceed(
            f"{name}: random weights: best-layer belief R² minus the position + last-{k} "
            "read-out's",
            p["diff"]["random_minus_control"],
            boot,
            "",
            "a random-weight model must not beat the read-out: if it does, the read-out is too "
            "weak a yardstick for the first row",
        ),
        _must_not_exceed(
            f"{name}: random weights: last-symbol predictor's loss minus the in-context loss over "
            "the second half",
            p["late"]["last_symbol_minus_random"],
            norm,
            "nats",
            f"{late}; random weights {ll['random']:.4f} nats (unigram entropy {h:.4f}): no "
            "function of the last symbol beats the exact Pr(x_t | x_t-1), whatever copy bias "
            "random tied embeddings give",
        ),
        Comparison(
            name=f"{name}: R² of a probe on shuffled beliefs (best layer)",
            kind="control",
            predicted=0.0,
            measured=p["shuffled"]["model"],
            tolerance=SHUFFLED_BAR,
            sense="at_most",
            tolerance_source=f"a priori: {SHUFFLED_BAR} (belief-geometry's bar); with no relation "
            "a held-out ridge R² is about -d/n_fit, so a probe or a split that leaks scores above",
            note="targets permuted across rows, the best layer's features and penalty",
        ),
        Comparison(
            name=f"{name}: exact optimal loss on the sampled sequences vs its expectation",
            kind="sanity",
            predicted=opt["expected"],
            measured=opt["sampled"],
            tolerance=max(4.0 * se, 1e-9),
            tolerance_source="measured noise: 4 standard errors of the mean over sequences, at "
            "least 1e-9 nats of rounding (RRXOR gives every admissible sequence of a length the "
            "same probability, so its standard error is 0)",
            unit="nats",
            reference="Crutchfield & Feldman 2003 (myopic entropies h(t + 1))",
            measured_interval=tuple(opt["interval"]),
            note="mean over all positions: the sampler and the belief filter against the exact "
            "block entropies",
        ),
    ]


def compare(cfg: Config, m: PLMMeasurements) -> list[Comparison]:
    """Eight rows per process, the tokenizer's round trip (when the model has one), then the two
    rows of the geometry by depth on real text (when measured; :func:`~.depth.depth_rows`) and
    those of the statistics of the model's own text (:func:`~.generated.generated_rows`) and of
    the LLC of a block (:func:`~.block_llc.block_llc_rows`)."""
    rows: list[Comparison] = []
    for name, p in m.processes.items():
        rows += process_rows(cfg, name, p, m.layers)
    trip = m.metrics.get("round_trip")
    if trip is not None:
        rows.append(
            Comparison(
                name="the symbols' text tokenizes back into the ids the model was given",
                kind="sanity",
                predicted=1.0,
                measured=trip,
                tolerance=0.0,
                sense="at_least",
                tolerance_source="derived: every sequence must round-trip exactly",
                note="share of sampled sequences, prefix included: the model reads the symbols "
                "as it would read the same text",
            )
        )
    if m.depth:
        rows += depth_rows(m.depth, m.layers)
    if m.generated:
        rows += generated_rows(m.generated)
    if m.block_llc:
        rows += block_llc_rows(m.block_llc)
    return rows


__all__ = ["compare", "process_rows"]
