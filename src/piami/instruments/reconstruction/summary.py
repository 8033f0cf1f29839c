"""A reconstructed machine's measures with intervals, as JSON, and its state diagram.

The intervals come from a moving-block bootstrap (Künsch 1989): the sequence is cut into
``n_blocks`` contiguous blocks, blocks are drawn with replacement and stacked as rows (the methods
never read a history across rows), the method is run again on each draw, and the 2.5% and 97.5%
quantiles of each measure are reported. The interval therefore includes the method's own
variability (a different number of states on a resample counts), not only the sampling noise of
the transition probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from piami.errors import DivergentQuantityError, PiamiValueError
from piami.instruments.reconstruction.result import Reconstruction
from piami.processes.ghmm import GeneralizedHiddenMarkovModel
from piami.processes.machine_file import machine_transitions

__all__ = ["block_bootstrap", "machine_measures", "machine_record", "state_diagram_dot"]

LN2 = math.log(2.0)


def _measures(machine: GeneralizedHiddenMarkovModel, rng: np.random.Generator) -> dict[str, float]:
    """``h_mu``, ``C_mu`` and ``E`` in nats; NaN where the quantity is infinite or undefined."""
    out = {"entropy_rate": float(machine.entropy_rate(rng=rng))}
    if not machine.is_unifilar():
        # C_mu is the entropy of the causal states; a generalized (spectral) model has none, and
        # the mixed states of an estimated one never close exactly: undefined, not a number
        out["statistical_complexity"] = float("nan")
    else:
        try:
            out["statistical_complexity"] = float(machine.statistical_complexity(max_states=2_000))
        except DivergentQuantityError:
            out["statistical_complexity"] = math.inf
    try:
        out["excess_entropy"] = float(machine.excess_entropy())
    except (DivergentQuantityError, PiamiValueError, np.linalg.LinAlgError):
        out["excess_entropy"] = float("nan")
    return out


def block_bootstrap(
    tokens: np.ndarray, *, n_blocks: int, n_boot: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``n_boot`` resamples of ``tokens``: ``n_blocks`` contiguous blocks drawn with replacement.

    Args:
        tokens: ``(n,)`` one sequence, or ``(n_seqs, seq_len)`` whose rows are the blocks.
        n_blocks: blocks a 1-D sequence is cut into (ignored for 2-D input).
        n_boot: number of resamples.
        rng: the generator of the draws.

    Returns:
        ``n_boot`` arrays of shape ``(n_blocks, block_len)`` (the tail shorter than a block is
        dropped).
    """
    if tokens.ndim == 1:
        if n_blocks < 2 or tokens.size < 2 * n_blocks:
            raise PiamiValueError(
                f"cannot cut {tokens.size} symbols into {n_blocks} blocks for the bootstrap; "
                "give more symbols or fewer blocks (or --n-boot 0)"
            )
        block = tokens.size // n_blocks
        rows = tokens[: block * n_blocks].reshape(n_blocks, block)
    else:
        rows = tokens
    return [rows[rng.integers(0, rows.shape[0], size=rows.shape[0])] for _ in range(n_boot)]


def machine_measures(
    recon: Reconstruction,
    tokens: np.ndarray,
    refit: Callable[[np.ndarray], Reconstruction] | None,
    *,
    n_boot: int = 20,
    n_blocks: int = 20,
    rng: np.random.Generator,
) -> dict[str, dict[str, float]]:
    """Entropy rate, statistical complexity and excess entropy in bits, with 95% intervals.

    Args:
        recon: the reconstruction from all of ``tokens``.
        tokens: the data it was reconstructed from.
        refit: runs the same method, with the same settings, on a resample; None (or
            ``n_boot = 0``) gives no interval (``low = high = nan``).
        n_boot: bootstrap resamples.
        n_blocks: blocks of a 1-D sequence (see :func:`block_bootstrap`).
        rng: generator of the resampling and of any sampled entropy rate.

    Returns:
        ``{name: {"value", "low", "high"}}`` in bits; ``inf`` for a divergent statistical
        complexity (a non-unifilar presentation whose mixed states never close), ``nan`` where
        undefined.
    """
    point = _measures(recon.machine, rng)
    draws: dict[str, list[float]] = {k: [] for k in point}
    if refit is not None and n_boot > 0:
        for sample in block_bootstrap(tokens, n_blocks=n_blocks, n_boot=n_boot, rng=rng):
            for k, v in _measures(refit(sample).machine, rng).items():
                draws[k].append(v)
    out = {}
    for k, v in point.items():
        d = np.asarray(draws[k], dtype=float)
        if d.size and np.all(np.isfinite(d)):
            low, high = np.quantile(d, [0.025, 0.975])
        elif d.size and np.any(np.isinf(d)):
            low, high = float(np.nanmin(d)), math.inf
        else:
            low = high = float("nan")
        out[k] = {"value": v / LN2, "low": float(low) / LN2, "high": float(high) / LN2}
    return out


def machine_record(
    recon: Reconstruction,
    alphabet: tuple[str, ...],
    measures: dict[str, dict[str, float]],
    *,
    source: str,
) -> dict[str, Any]:
    """The record of ``machine.json``: method, states, alphabet, transitions, measures in bits."""
    return {
        "source": source,
        "method": recon.method,
        "n_states": recon.n_states,
        "alphabet": list(alphabet),
        "n_samples": recon.n_samples,
        "max_length": recon.max_length,
        "unifilar": bool(recon.machine.is_unifilar()),
        "transitions": machine_transitions(recon.machine, alphabet),
        **measures,
        "units": "bits",
        "details": recon.details,
    }


def state_diagram_dot(recon: Reconstruction, alphabet: tuple[str, ...]) -> str:
    """Graphviz ``dot`` source of the machine: states as circles, edges ``symbol | probability``."""

    def quote(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "digraph machine {",
        "  rankdir=LR;",
        '  node [shape=circle, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    lines += [f"  s{i} [label={quote(f'S{i}')}];" for i in range(recon.n_states)]
    for e in machine_transitions(recon.machine, alphabet):
        label = quote(f"{e['symbol']} | {e['probability']:.3f}")
        lines.append(f"  s{e['from']} -> s{e['to']} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
