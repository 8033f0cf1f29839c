"""llc-calibration: the quick run's comparisons, its bookkeeping, and config validation."""

from __future__ import annotations

import math

import pytest
import torch

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment
from piami.experiments.llc_calibration import balanced_factorization
from piami.theory.learning_coefficient import normal_crossing_expectation


@pytest.mark.slow
def test_quick_run_every_case_within_tolerance():
    before = torch.get_num_threads()
    try:
        r = run_experiment("llc-calibration", quick=True, progress=False)
    finally:
        torch.set_num_threads(before)
    assert r.comparisons, "no comparisons"
    for c in r.comparisons:
        assert c.relative and c.tolerance == pytest.approx(0.10)
        assert c.passed is True, r.summary()
    cases = r.metrics["cases"]
    assert len(cases) == len(r.comparisons)
    for row in cases:
        assert math.isclose(row["rel_error"], (row["estimate"] - row["truth"]) / row["truth"])
    hp = r.metrics["hyperparameters"]
    assert set(hp) >= {"regular_and_deep_linear", "normal_crossing"}
    assert {f.name for f in r.figures} >= {"llc_vs_truth"}
    if r.config["checkpoint_llc"]:
        rows = r.metrics["checkpoints"]
        assert rows and all(math.isfinite(row["llc_mean"]) for row in rows)
        assert [row["step"] for row in rows] == sorted(row["step"] for row in rows)


def test_balanced_factorization_has_rank_r_in_every_layer():
    g = torch.Generator().manual_seed(0)
    ws = balanced_factorization([5, 4, 6, 3], 2, g)
    assert [tuple(w.shape) for w in ws] == [(4, 5), (6, 4), (3, 6)]
    for w in ws:
        assert int(torch.linalg.matrix_rank(w)) == 2
    prod = ws[2] @ ws[1] @ ws[0]
    s = torch.linalg.svdvals(prod)
    assert torch.allclose(s[:2], torch.ones(2, dtype=s.dtype), atol=1e-10)
    assert float(s[2:].abs().max()) < 1e-10
    assert all(float(w.abs().max()) == 0 for w in balanced_factorization([3, 3, 3], 0, g))


def test_finite_n_beta_expectation_tends_to_lambda():
    # 1-D K = w^4 (lambda 1/4): the localization's correction shrinks as n beta grows
    errs = [abs(normal_crossing_expectation([2], t, 1.0) - 0.25) for t in (1e2, 1e4, 1e6)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3
    assert normal_crossing_expectation([1, 2, 3], 1e4, 1.0) is None


@pytest.mark.parametrize(
    "override",
    [
        {"deep_linear": ("5-4-3:9",)},  # rank above the narrowest width
        {"deep_linear": ("5-4-3",)},  # no rank
        {"potentials": ("0",)},  # constant potential
        {"regular": ("a-b",)},
        {"step_size": -1.0},
        {"n_chains": 0},
        {"tolerance": 0.0},
    ],
)
def test_bad_config_raises_piami_error(override):
    with pytest.raises(PiamiError):
        get_experiment("llc-calibration").make_config(override)
