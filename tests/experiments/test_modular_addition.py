"""The modular-addition grokking experiment: helpers against closed forms, and the --quick run."""

import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.experiments import run_experiment
from piami.experiments.modular_addition import SHARP_WIDTH, Config, crossing_epoch, train


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
    [
        {"p": 3},
        {"frac_train": 1.0},
        {"d_model": 30, "n_heads": 4},
        {"lr": 0.0},
        {"eval_every": 0},
        {"qk_init_scale": -1.0},
    ],
)
def test_bad_config_raises(kw):
    with pytest.raises(PiamiError):
        Config(**kw)


def test_mirror_and_novel_accuracies_partition_the_held_out_pairs():
    """Held-out pairs split by whether (b, a) was trained on; the two accuracies, weighted by the
    counts, must give back the test accuracy at every evaluation (an independent recount)."""
    cfg = Config(p=11, d_model=8, n_heads=2, d_mlp=16, n_epochs=30, eval_every=5, lr=1e-2)
    run = train(cfg)
    mask = run.train_mask
    n_mirror = int((mask.T & ~mask).sum())
    n_novel = int((~mask).sum()) - n_mirror
    assert n_mirror > 0 and n_novel > 0
    c = run.curves
    mixed = (n_mirror * c["test_acc_mirror"] + n_novel * c["test_acc_novel"]) / (n_mirror + n_novel)
    np.testing.assert_allclose(mixed, c["test_acc"], atol=1e-6)
    assert c["train_acc"][-1] > c["train_acc"][0]  # it trained


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
