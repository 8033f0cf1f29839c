"""The --quick variants of the learning-dynamics experiments run, and their comparisons pass."""

from __future__ import annotations

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
