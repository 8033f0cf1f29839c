"""Reconstruction calibrated on ground truth: CSSR and spectral learning on machines known exactly.

A researcher's data comes without its machine; computational mechanics says what the minimal
sufficient statistic of the past is (Shalizi & Crutchfield 2001), and reconstruction estimates it
from samples. Before a reconstruction is trusted on text, it is run here on processes whose
epsilon-machines are known, against theory:

- **Parametric rate.** When CSSR (Shalizi & Klinkner 2004) finds the right causal states, its
  transition probabilities are maximum-likelihood estimates from about ``N`` symbols, so the excess
  log-loss of the reconstruction (the KL divergence rate to the process, computed exactly for two
  unifilar machines) is ``chi^2_d / (2N)`` to leading order, with ``d`` the number of free
  transition probabilities: ``E[2 N D / d] = 1`` and ``D`` falls as ``N^-1`` (the classical
  asymptotics of the likelihood ratio, Wilks 1938; for Markov sources Billingsley 1961).
- **Structure.** The golden mean and even processes have two causal states and ``C_mu = H(2/3,
  1/3) = 0.918`` bit; the issue's bars (fixed before any run): the right number of states and
  ``C_mu`` within 0.005 bit at ``N = 10^4``, counted as a rate over replicates; Mess3(0.05, 0.85),
  which has no finite machine, must still give ``|h - 1.1447| <= 0.005`` bit at ``N = 10^6``.
- **No finite synchronization.** RRXOR's CSSR states grow with the history length ``L``, while
  the entropy rate of the reconstruction stays at or above the true ``2/3`` bit and does not rise
  with ``L`` (more history can only sharpen the prediction).
- **Hankel rank.** The rank of the exact Hankel matrix is the dimension of the process's minimal
  linear (generalized HMM) presentation: 2 for golden mean and even, 3 for Mess3, 5 for RRXOR (4
  if words stop at length 3); spectral learning (Hsu, Kakade & Zhang 2009) must choose it from data.

Control in the same run: a shuffled golden-mean sequence keeps the symbol frequencies and loses
all memory, so it must reconstruct to one state. ``shuffle=True`` is the broken ingredient: every
sequence shuffled before reconstruction, so the structure rows and the rate fail.
"""

from piami.experiments.reconstruction.compare import compare
from piami.experiments.reconstruction.config import (
    HANKEL_RANKS,
    MESS3,
    STRUCTURE_SIZE,
    SYNCHRONIZABLE,
    Config,
)
from piami.experiments.reconstruction.measure import ReconstructionMeasurements, measure
from piami.experiments.reconstruction.plots import figures
from piami.lab import Experiment

__all__ = [
    "EXPERIMENT",
    "HANKEL_RANKS",
    "MESS3",
    "STRUCTURE_SIZE",
    "SYNCHRONIZABLE",
    "Config",
    "ReconstructionMeasurements",
    "compare",
    "figures",
    "measure",
]


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    broken = " BROKEN INGREDIENT: every sequence shuffled." if cfg.shuffle else ""
    return (
        f"CSSR (alpha = {cfg.alpha:g}) on golden mean and even process samples of N = "
        f"{', '.join(f'{n:,}' for n in cfg.sizes)} symbols ({cfg.n_replicates} each), RRXOR at "
        f"L = {list(cfg.rrxor_lengths)}, Mess3, and spectral learning; every reconstruction "
        "scored against the exact machine." + broken
    )


EXPERIMENT = Experiment(
    name="reconstruction",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={
        "sizes": (1_000, 3_000, 10_000, 30_000, 100_000, 300_000),
        "n_replicates": 30,
        "rrxor_size": 100_000,
        "rrxor_lengths": (3, 4, 5),
        "mess3_size": 0,
        "spectral_size": 50_000,
    },
    summary="CSSR and spectral reconstruction against exact epsilon-machines and Hankel ranks",
)
