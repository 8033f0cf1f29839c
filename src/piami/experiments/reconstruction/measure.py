"""Reconstruct every sample; all randomness from the config's seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from piami.experiments.reconstruction.config import (
    HANKEL_RANKS,
    LN2,
    MESS3,
    ROW_LENGTH,
    STRUCTURE_SIZE,
    SYNCHRONIZABLE,
    Config,
)
from piami.instruments.reconstruction.cssr import cssr
from piami.instruments.reconstruction.hankel import exact_hankel_rank
from piami.instruments.reconstruction.result import default_max_length
from piami.instruments.reconstruction.score import kl_rate_unifilar
from piami.instruments.reconstruction.spectral import spectral
from piami.lab import Measurements
from piami.processes import from_spec


@dataclass(kw_only=True)
class ReconstructionMeasurements(Measurements):
    """What the rows read; ``metrics`` carries the same numbers for result.json.

    Attributes:
        n_params: free transition probabilities ``d`` of each synchronizable process.
        exact_c_bits: exact statistical complexity of each synchronizable process.
        states: ``{process: (n_sizes, n_replicates)}`` reconstructed state counts.
        c_bits: same shape, reconstructed ``C_mu`` in bits.
        kl: same shape, exact KL rate (nats/symbol) of each reconstruction to its process.
        rrxor_h_bits: entropy rate (bits) of the RRXOR reconstruction at each length.
        rrxor_h_se_bits: its standard error (plug-in, ``sqrt(Var[surprisal] / N)``).
        rrxor_states: state counts at each length.
        mess3_h_bits: entropy rate of the Mess3 reconstruction (nan when skipped).
        mess3_exact_bits: Mess3's entropy rate (Blackwell time average, exact to ~1e-4 nats).
        shuffled_states: ``(n_replicates,)`` state counts of the shuffled golden-mean control.
        exact_ranks: exact Hankel rank of each process (words up to 4; ``rrxor@3`` up to 3).
        spectral_ranks: rank spectral learning chose on data.
    """

    n_params: dict[str, int] = field(default_factory=dict)
    exact_c_bits: dict[str, float] = field(default_factory=dict)
    states: dict[str, np.ndarray] = field(default_factory=dict)
    c_bits: dict[str, np.ndarray] = field(default_factory=dict)
    kl: dict[str, np.ndarray] = field(default_factory=dict)
    rrxor_h_bits: list[float] = field(default_factory=list)
    rrxor_h_se_bits: list[float] = field(default_factory=list)
    rrxor_states: list[int] = field(default_factory=list)
    mess3_h_bits: float = float("nan")
    mess3_exact_bits: float = float("nan")
    shuffled_states: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    exact_ranks: dict[str, int] = field(default_factory=dict)
    spectral_ranks: dict[str, int] = field(default_factory=dict)


def _sample(proc: Any, n: int, rng: np.random.Generator, shuffle: bool) -> np.ndarray:
    """``n`` symbols as rows of :data:`ROW_LENGTH` (fewer when ``n`` is small)."""
    length = min(ROW_LENGTH, n)
    tokens = np.asarray(proc.sample(max(1, n // length), length, rng=rng), dtype=np.int64)
    if shuffle:
        tokens = rng.permutation(tokens.ravel()).reshape(tokens.shape)
    return tokens


def _free_parameters(proc: Any) -> int:
    """``d = sum_s (number of symbols state s emits - 1)``: free transition probabilities."""
    return int(((proc.T.sum(axis=2) > 0).sum(axis=0) - 1).sum())


def _surprisal_se_bits(machine: Any, n: int) -> float:
    """Plug-in standard error of a unifilar machine's entropy rate from ``n`` symbols (bits)."""
    p = machine.T.sum(axis=2).T  # (n_states, k)
    pi = machine.stationary_distribution()
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(p > 0, -np.log2(p), 0.0)
    var = float(pi @ (p * s**2).sum(axis=1) - (pi @ (p * s).sum(axis=1)) ** 2)
    return math.sqrt(max(var, 0.0) / n)


def _cssr(tokens: np.ndarray, cfg: Config, length: int | None = None) -> Any:
    n = int(tokens.size)
    return cssr(tokens, max_length=length or default_max_length(n, 2), alpha=cfg.alpha)


def measure(cfg: Config, *, progress: bool = True) -> ReconstructionMeasurements:
    """Reconstruct every sample; all randomness from ``cfg.seed``."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(cfg.seed)
    m = ReconstructionMeasurements()
    n_sizes = len(cfg.sizes)
    bar = tqdm(
        total=len(SYNCHRONIZABLE) * n_sizes * cfg.n_replicates,
        disable=not progress,
        desc="reconstruction",
    )
    for name in SYNCHRONIZABLE:
        proc = from_spec(name)
        m.n_params[name] = _free_parameters(proc)
        m.exact_c_bits[name] = proc.statistical_complexity() / LN2
        shape = (n_sizes, cfg.n_replicates)
        m.states[name], m.c_bits[name], m.kl[name] = (
            np.zeros(shape, int),
            np.zeros(shape),
            np.zeros(shape),
        )
        for i, n in enumerate(cfg.sizes):
            for r in range(cfg.n_replicates):
                rec = _cssr(_sample(proc, n, rng, cfg.shuffle), cfg)
                m.states[name][i, r] = rec.n_states
                m.c_bits[name][i, r] = rec.machine.statistical_complexity() / LN2
                m.kl[name][i, r] = kl_rate_unifilar(proc, rec.machine)
                bar.update()
    bar.close()

    rrxor = from_spec("rrxor")
    tokens = _sample(rrxor, cfg.rrxor_size, rng, cfg.shuffle)
    for length in cfg.rrxor_lengths:
        rec = _cssr(tokens, cfg, length)
        m.rrxor_states.append(rec.n_states)
        m.rrxor_h_bits.append(rec.machine.entropy_rate() / LN2)
        m.rrxor_h_se_bits.append(_surprisal_se_bits(rec.machine, tokens.size))
    if cfg.mess3_size:
        mess3 = from_spec(MESS3)
        rec = _cssr(_sample(mess3, cfg.mess3_size, rng, cfg.shuffle), cfg)
        m.mess3_h_bits = rec.machine.entropy_rate() / LN2
        m.mess3_exact_bits = mess3.entropy_rate(rng=np.random.default_rng(cfg.seed)) / LN2
    gm = from_spec("golden_mean")
    m.shuffled_states = np.array(
        [
            _cssr(_sample(gm, STRUCTURE_SIZE, rng, True), cfg).n_states
            for _ in range(cfg.n_replicates)
        ]
    )

    for name in HANKEL_RANKS:
        proc = from_spec(name)
        m.exact_ranks[name] = exact_hankel_rank(proc, max_length=4)
        if name != "rrxor":  # RRXOR needs words of 9 symbols: beyond a laptop-sized sample
            tokens = _sample(proc, cfg.spectral_size, rng, cfg.shuffle)
            m.spectral_ranks[name] = spectral(tokens, n_symbols=proc.n_symbols).n_states
    m.exact_ranks["rrxor@3"] = exact_hankel_rank(rrxor, max_length=3)

    m.metrics = {
        "sizes": list(cfg.sizes),
        **{
            name: {
                "n_params": m.n_params[name],
                "exact_c_mu_bits": m.exact_c_bits[name],
                "states_mean": m.states[name].mean(axis=1).tolist(),
                "c_mu_bits_mean": m.c_bits[name].mean(axis=1).tolist(),
                "kl_mean": m.kl[name].mean(axis=1).tolist(),
                "two_n_kl_over_d": np.nanmean(ratio_samples(m, name, cfg), axis=1).tolist(),
            }
            for name in SYNCHRONIZABLE
        },
        "rrxor": {
            "lengths": list(cfg.rrxor_lengths),
            "h_bits": m.rrxor_h_bits,
            "h_se_bits": m.rrxor_h_se_bits,
            "states": m.rrxor_states,
        },
        "mess3_h_bits": m.mess3_h_bits,
        "mess3_exact_bits": m.mess3_exact_bits,
        "shuffled_golden_mean_states": m.shuffled_states.tolist(),
        "exact_hankel_ranks": m.exact_ranks,
        "spectral_ranks": m.spectral_ranks,
    }
    return m


def ratio_samples(m: ReconstructionMeasurements, name: str, cfg: Config) -> np.ndarray:
    """``2 N D / d`` per size and replicate; NaN where the reconstruction's structure is wrong.

    The parametric law holds given the right causal states; a wrong structure (a false split) is
    counted by the structure row, not averaged into this one.
    """
    sizes = np.asarray(cfg.sizes, dtype=float)[:, None]
    right = m.states[name] == 2
    return np.where(right, 2 * sizes * m.kl[name] / max(m.n_params[name], 1), np.nan)
