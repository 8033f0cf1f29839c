"""A toy experiment for the run-store tests and the sweep benchmark (loaded via PIAMI_PLUGINS).

Its numbers depend only on the config (numpy and torch, both seeded); switches make it slow, fail,
kill its own worker once, or log each start to a file, so tests can watch what ran when.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments import Comparison, Experiment, Result


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    seed: int = 0  # seeds numpy and torch
    n: int = 8  # size of the random matrix whose statistics are the metrics
    scale: float = 1.0  # multiplies the matrix
    tag: str = ""  # free text (makes distinct runs)
    work: int = 0  # iterations of a CPU-bound loop (matrix products), to make the run take time
    sleep_s: float = 0.0  # seconds to sleep, to make the run take time without CPU
    fail: bool = False  # raise inside the run
    die_once: str = ""  # marker file: when absent, create it and kill this process (os._exit)
    log: str = ""  # file to which each start of the run appends a line "<seed> <tag> <pid>"
    dims: tuple[int, ...] = (2, 3)  # a tuple field, to test grid parsing
    use_torch: bool = True  # compute the torch metric (False: the worker never imports torch)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise PiamiValueError(f"n must be >= 1, got {self.n}")
        if self.work < 0 or self.sleep_s < 0:
            raise PiamiValueError("work and sleep_s must be >= 0")


def burn(work: int, rng: np.random.Generator) -> float:
    """CPU-bound, single-threaded-friendly work: ``work`` products of 96x96 float64 matrices."""
    a = rng.standard_normal((96, 96)) / 10.0
    b = np.eye(96)
    for _ in range(work):
        b = np.tanh(a @ b)
    return float(np.abs(b).sum())


def run(cfg: ToyConfig, *, progress: bool = True) -> Result:
    if cfg.log:
        with open(cfg.log, "a") as fh:
            fh.write(f"{cfg.seed} {cfg.tag} {os.getpid()}\n")
    if cfg.die_once and not os.path.exists(cfg.die_once):
        with open(cfg.die_once, "w") as fh:
            fh.write("died\n")
        os._exit(3)
    if cfg.fail:
        raise RuntimeError(f"toy failure (seed {cfg.seed})")
    rng = np.random.default_rng(cfg.seed)
    x = cfg.scale * rng.standard_normal((cfg.n, cfg.n))
    y = 0.0
    if cfg.use_torch:
        import torch

        g = torch.Generator().manual_seed(cfg.seed)
        w = torch.randn(cfg.n, cfg.n, generator=g, dtype=torch.float64)
        y = (w @ torch.from_numpy(x)).sum().item()
    burned = burn(cfg.work, rng) if cfg.work else 0.0
    if cfg.sleep_s:
        time.sleep(cfg.sleep_s)
    res = Result(experiment="", config={}, seed=cfg.seed, description="toy for run tests")
    mean_sq = float(np.mean(x**2))
    res.comparisons.append(
        Comparison(
            name="mean square",
            kind="prediction",
            predicted=cfg.scale**2,
            measured=mean_sq,
            tolerance=0.5,
            tolerance_source="a priori: loose on purpose (n^2 samples of a chi-square)",
            relative=True,
            note="E[x^2] = scale^2",
        )
    )
    res.metrics.update(
        {"mean": float(x.mean()), "torch_sum": y, "burned": burned, "nested": {"max": x.max()}}
    )
    res.metrics["trace_list"] = [float(v) for v in np.diag(x)]
    return res


EXPERIMENT = Experiment(
    name="toy-runs", config_cls=ToyConfig, run=run, quick={"n": 4}, summary="toy for run tests"
)
