"""The instrument-calibration experiment: quick run, ground-truth comparisons pass, config checks."""

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment


@pytest.fixture(scope="module")
def quick_result():
    return run_experiment("instrument-calibration", quick=True, progress=False)


@pytest.mark.slow
def test_quick_run_ground_truth_comparisons_pass(quick_result):
    r = quick_result
    names = [c.name for c in r.comparisons]
    # every instrument calibrated on its ground truth must pass, even in the quick variant
    ground_truth = [c for c in r.comparisons if not c.name.startswith("Mess3")]
    failed = [c.name for c in ground_truth if c.passed is not True]
    assert not failed, failed
    assert sum("TwoNN dimension of S^" in n for n in names) == 4
    assert any("topk SAE" in n for n in names) and any("l1 SAE" in n for n in names)
    # one figure per instrument plus the belief-dimension figure
    assert {f.name for f in r.figures} >= {
        "cka", "dimension", "fractal", "weights", "sae", "natural_latents", "belief_dimensions"
    }  # fmt: skip


@pytest.mark.slow
def test_quick_run_reports_the_mess3_dimension_comparison_with_intervals(quick_result):
    bg = quick_result.metrics["belief_geometry"]
    assert set(bg) == {"mess3(0.05,0.85)", "mess3(0.15,0.6)"}
    for m in bg.values():
        th = m["theory"]
        # the long-run measure: correlation <= Lyapunov (information) <= box, within the intervals
        assert th["correlation"][1] <= th["lyapunov_dimension"] + 0.05
        assert th["lyapunov_dimension"] <= th["box"][2] + 0.05
        lo, hi = th["lyapunov_dimension_ci"]
        assert lo <= th["lyapunov_dimension"] <= hi
        for mean, low, high in m["correlation_slopes"].values():
            assert low <= mean <= high and np.isfinite(mean)
        assert 0.5 < m["probe_r2_concatenated"] <= 1
    mess = [
        c
        for c in quick_result.comparisons
        if c.name.startswith("Mess3") and "correlation" in c.name
    ]
    assert len(mess) == 4 and all(c.passed is not None for c in mess)
    sae = [c for c in quick_result.comparisons if "SAE latents" in c.name]
    assert len(sae) == 2 and all(0 < c.measured <= 1 for c in sae)


@pytest.mark.parametrize(
    "override",
    [
        {"n_points": 10},
        {"sae_features": 8},
        {"mess3_x": (0.05,)},
        {"sae_belief_k": (0,)},
        {"n_subsets": 1},
    ],
)
def test_bad_config_raises(override):
    with pytest.raises(PiamiError):
        get_experiment("instrument-calibration").make_config(override)
