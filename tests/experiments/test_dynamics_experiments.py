"""The --quick variants of the learning-dynamics experiments run, and their comparisons pass."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment

NAMES = ["deep-linear-dynamics", "dmft-two-layer", "kernel-limit"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_quick_variant_passes(name):
    r = run_experiment(name, quick=True, progress=False)
    assert r.comparisons and r.figures
    assert r.passed, r.summary()


@pytest.mark.slow
def test_staircase_quick_runs_and_reports():
    r = run_experiment("staircase", quick=True, progress=False)
    exps = [c for c in r.comparisons if "exponent" in c.name]
    assert len(exps) == 3 and r.figures
    # the escape-exponent fits are the claim of Abbe et al.; they must be measured (not N/A)
    assert all(c.measured is not None for c in exps), r.summary()
    assert all(c.passed for c in exps), r.summary()
    # the networks' own mean-field limit is integrated beside them; at d = 24 the leap-1 networks
    # follow it (the gradient flow without the SGD-noise term is 0.2 off) and learn in order
    by_name = {c.name: c for c in r.comparisons}
    gap = by_name["leap 1, d=24: test loss follows the high-dimensional mean-field limit (max gap)"]
    assert gap.measured is not None and gap.measured < 0.2, r.summary()
    order = by_name[
        "leap 1, d=24: monomials learned in the staircase order (half-coefficient times)"
    ]
    assert order.passed, r.summary()
    assert r.metrics["leap2_limit_final_loss"] == pytest.approx(1.0, abs=1e-3)  # saddle kept
    assert {f.name for f in r.figures} >= {"loss_curves", "escape_scaling", "leap1_monomials"}


@pytest.mark.parametrize(
    "name,bad",
    [
        ("deep-linear-dynamics", {"singular_values": (1.0, 2.0)}),
        ("deep-linear-dynamics", {"u0": (1e-3,)}),
        ("dmft-two-layer", {"width": 101}),
        ("kernel-limit", {"widths": (8, 16, 32)}),
        ("staircase", {"leaps": (4,)}),
        ("staircase", {"dims": (8, 16)}),
    ],
)
def test_bad_configs_raise(name, bad):
    with pytest.raises(PiamiError):
        get_experiment(name).make_config(bad)


def test_support_frequencies_follow_hypercube_point_order():
    from piami.experiments.staircase import support_frequencies
    from piami.theory.mean_field import hypercube_points

    pts = hypercube_points(3)
    x = np.concatenate([np.repeat(pts, np.arange(1, 9), axis=0), np.ones((36, 2))], axis=1)
    np.testing.assert_array_equal(support_frequencies(x, 3), np.arange(1, 9))
