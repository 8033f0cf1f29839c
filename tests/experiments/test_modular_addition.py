"""The modular-addition grokking experiment: helpers against closed forms, and the --quick run."""

import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.experiments import run_experiment
from piami.experiments.modular_addition import SHARP_WIDTH, Config, crossing_epoch


def test_crossing_epoch_interpolates_linearly():
    e = np.array([0, 10, 20, 30])
    v = np.array([0.0, 0.2, 0.6, 1.0])
    assert crossing_epoch(e, v, 0.4) == pytest.approx(15.0)
    assert crossing_epoch(e, v, 0.0) == 0.0
    assert crossing_epoch(e, v, 1.5) is None


def test_width_of_a_smooth_exponential_rise_is_3_17():
    """The baseline the sharpness threshold is set against: 1 - exp(-t / tau)."""
    t = np.linspace(0, 50, 200001)
    acc = 1 - np.exp(-t / 7.0)
    t10, t50, t90 = (crossing_epoch(t, acc, x) for x in (0.1, 0.5, 0.9))
    closed = (math.log(10) - math.log(10 / 9)) / math.log(2)
    assert (t90 - t10) / t50 == pytest.approx(closed, rel=1e-5)
    assert closed == pytest.approx(3.17, abs=0.01) and SHARP_WIDTH <= closed / 6


@pytest.mark.parametrize(
    "kw",
    [{"p": 3}, {"frac_train": 1.0}, {"d_model": 30, "n_heads": 4}, {"lr": 0.0}, {"eval_every": 0}],
)
def test_bad_config_raises(kw):
    with pytest.raises(PiamiError):
        Config(**kw)


@pytest.mark.slow
def test_quick_run_memorizes_then_generalizes_through_key_frequencies():
    r = run_experiment("modular-addition", quick=True, progress=False)
    m = r.metrics
    assert [f.name for f in r.figures] == ["curves", "embedding_spectrum"]
    assert len(r.comparisons) == 3
    assert m["final"]["train_acc"] == 1.0
    keys = m["key_frequencies"]
    assert 1 <= len(keys) <= r.config["p"] // 4
    assert m["embedding_energy_in_key_frequencies"] > 0.5
    assert all(c.passed for c in r.comparisons), r.summary()
