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
def test_quick_run_generalizes_through_its_key_frequencies():
    """--quick (p = 31, half the pairs) learns rather than groks: memorization and generalization
    overlap, so its width is measured but not asserted sharp; the Fourier read-out must hold."""
    r = run_experiment("modular-addition", quick=True, progress=False)
    m = r.metrics
    assert [f.name for f in r.figures] == ["curves", "embedding_spectrum"]
    fve, width, _ = r.comparisons
    assert m["final"]["train_acc"] == 1.0 and m["final"]["test_acc"] >= 0.95
    assert 1 <= len(m["key_frequencies"]) <= r.config["p"] // 4
    assert m["embedding_energy_in_key_frequencies"] > 0.5
    assert fve.passed is True, r.summary()
    assert width.measured is not None and width.measured > 0
    # progress measures: the key-frequency part alone predicts as well as the whole logits, and
    # the training pairs cannot be fitted without it
    assert m["final_restricted_loss"] <= 2 * m["final"]["test_loss"]
    assert m["final_excluded_loss_train"] > 100 * m["final"]["train_loss"]
