"""The belief-geometry experiment: compare() on synthetic measurements (every row passes, and each
row fails in its own case), and, slow, the quick run passes with its controls, gives the same
numbers beside a busy process, fails with a barely trained network. Its instruments are tested
in tests/instruments/test_beliefs.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError, PiamiKeyError, PiamiValueError
from piami.experiments.belief_geometry import EXPERIMENT, BeliefMeasurements, Config, compare
from piami.experiments.belief_geometry.measure import K3

KL_ROW = "KL(exact ‖ model), mean over positions"
R2_ROW = "R² of beliefs from the final residual stream"
BEYOND_K3_ROW = "R² of beliefs: all layers concatenated minus position + last 3 tokens"
TRAINED_ROWS = {KL_ROW, R2_ROW, BEYOND_K3_ROW}
KL_UNTRAINED_ROW = "untrained network's KL exceeds the bar"
KL_K3_ROW = "KL of the best predictor from position + last 3 tokens exceeds the bar"
R2_UNTRAINED_ROW = "untrained network's final-layer R² falls below the bar"
SHUFFLED_ROW = "R² of a probe on shuffled beliefs (targets permuted across samples)"
ENTROPY_ROW = "entropy of the exact next-token distribution vs myopic entropy h(t+2)"
LAYERS = ("embed", "L0", "L1", "L2", "L3", "concat")  # Config(): 4 layers


def rows(result):
    return {c.name: c for c in result.comparisons}


def r2_by_layer(*values: float) -> dict[str, float]:
    return dict(zip(LAYERS, values, strict=True))


def synthetic(**changes) -> BeliefMeasurements:
    """Measurements of a run that passes every row (numbers like the quick run's), then
    ``changes``: ``r2_trained`` / ``r2_untrained`` replace one layer's R² of beliefs."""
    rng = np.random.default_rng(0)
    n, L = 300, 10
    trained = r2_by_layer(0.9, 0.95, 0.97, 0.99, 0.998, 0.999) | changes.pop("r2_trained", {})
    untrained = r2_by_layer(0.9, 0.92, 0.94, 0.95, 0.96, 0.97) | changes.pop("r2_untrained", {})
    m = BeliefMeasurements(
        r2={"beliefs_trained": trained, "beliefs_untrained": untrained},
        kl_trained=0.001 * (1 + 0.1 * rng.standard_normal((n, L))),
        kl_untrained=0.3 * (1 + 0.1 * rng.standard_normal((n, L))),
        r2_onehot={K3: 0.99},
        kl_onehot={K3: 0.0033},
        r2_final_interval=(0.997, 0.999),
        concat_minus_k3_interval=(0.008, 0.011),
        shuffled=-0.007,
        entropy_per_seq=0.8 + 0.05 * rng.standard_normal(n),
        optimal=np.full(L, 0.8),
    )
    return dataclasses.replace(m, **changes)


def test_compare_passes_every_row_of_a_good_run():
    rows_ = compare(Config(), synthetic())
    assert len(rows_) == 8 and all(c.passed is True for c in rows_), [c.name for c in rows_]
    assert {c.name for c in rows_ if c.kind == "prediction"} == TRAINED_ROWS
    assert all(c.tolerance_source for c in rows_)


# each case breaks one ingredient; exactly its row fails
FAILING = {
    KL_ROW: {"kl_trained": np.full((300, 10), 0.01)},
    KL_UNTRAINED_ROW: {"kl_untrained": np.full((300, 10), 0.001)},
    KL_K3_ROW: {"kl_onehot": {K3: 0.001}},
    R2_ROW: {"r2_trained": {"L3": 0.95}, "r2_final_interval": (0.94, 0.96)},
    R2_UNTRAINED_ROW: {"r2_untrained": {"L3": 0.99}},
    BEYOND_K3_ROW: {"r2_trained": {"concat": 0.98}, "concat_minus_k3_interval": (-0.012, -0.008)},
    SHUFFLED_ROW: {"shuffled": 0.3},
    ENTROPY_ROW: {"optimal": np.full(10, 0.9)},
}


@pytest.mark.parametrize("row", list(FAILING))
def test_compare_fails_exactly_the_row_whose_ingredient_is_broken(row):
    rows_ = {c.name: c for c in compare(Config(), synthetic(**FAILING[row]))}
    assert len(rows_) == 8 and rows_[row].passed is False, rows_[row]
    assert all(c.passed is True for name, c in rows_.items() if name != row)


def test_a_time_budget_leaves_only_the_trained_rows_not_identified():
    rows_ = compare(Config(), synthetic(not_identified="training stopped at step 1 of 400"))
    for c in rows_:
        assert (c.passed is None) == (c.name in TRAINED_ROWS), c.name
        assert c.name not in TRAINED_ROWS or "step 1 of 400" in c.not_identified


def test_the_beyond_k3_row_is_not_identified_when_its_interval_contains_zero():
    rows_ = {
        c.name: c for c in compare(Config(), synthetic(concat_minus_k3_interval=(-1e-3, 0.02)))
    }
    assert rows_[BEYOND_K3_ROW].passed is None
    assert "contains 0" in rows_[BEYOND_K3_ROW].not_identified
    assert all(c.passed for name, c in rows_.items() if name != BEYOND_K3_ROW)


def test_bars_set_by_the_user_are_used_and_named():
    rows_ = {c.name: c for c in compare(Config(kl_tolerance=0.0005), synthetic())}
    assert rows_[KL_ROW].passed is False and rows_[KL_ROW].tolerance == 0.0005
    assert "set by the user (kl_tolerance=0.0005" in rows_[KL_ROW].tolerance_source


@pytest.fixture(scope="module")
def quick_result():
    return EXPERIMENT(EXPERIMENT.make_config(quick=True), progress=False)


@pytest.mark.slow
def test_quick_run_passes_with_its_controls(quick_result):
    r = quick_result
    assert r.variant == "quick" and r.verdict == "pass", r.summary()
    by_kind = {k: {c.name for c in r.comparisons if c.kind == k} for k in ("prediction", "control")}
    assert by_kind["prediction"] == TRAINED_ROWS
    assert len(by_kind["control"]) == 4
    assert all(c.tolerance_source for c in r.comparisons)
    m = r.metrics
    assert m["train_steps"] == 400 and m["train_stop_reason"] == "schedule completed"
    # what the rows rest on: the baselines are measured, and below the trained network
    names = [f"position + last {i} token{'s' if i > 1 else ''}" for i in range(1, 5)]
    ks = [m["r2_onehot_baselines"][n] for n in names]
    assert ks == sorted(ks) and 0.5 < ks[0] < ks[-1] < 1.0  # more context, better beliefs
    kls = [m["kl_onehot_baselines_nats"][n] for n in names]
    assert kls == sorted(kls, reverse=True)  # and better next-token predictions
    assert len(m["loss_by_position"]) == len(m["optimal_loss_by_position"]) == 10
    # optimal loss = myopic entropy: non-increasing in the position
    assert np.all(np.diff(m["optimal_loss_by_position"]) <= 1e-12)
    # nothing wall-clock among the metrics; it is all in timing
    assert not {"train_wall_s", "tokens_per_s", "stopped_by_time_budget"} & set(m)
    assert r.timing["train_wall_s"] > 0 and r.timing["tokens_per_s"] > 0
    assert {f.name for f in r.figures} == {
        "belief_simplex",
        "loss_by_position",
        "loss_curve",
        "r2_by_layer",
    }


@pytest.mark.slow
def test_quick_run_is_reproducible_beside_a_busy_process(quick_result):
    cfg = EXPERIMENT.make_config(quick=True)
    assert_reproducible_beside_load(lambda: EXPERIMENT(cfg, progress=False), quick_result)


@pytest.mark.slow
def test_two_training_steps_fail_the_predictions_but_not_the_controls():
    """The broken ingredient: a barely trained network (`piami run belief-geometry --quick --set
    n_steps=2`). The KL and R² predictions fail; the controls (untrained network, 3-token lookup,
    shuffled probe) still pass, so the failure is the network's, not the instrument's."""
    r = EXPERIMENT(EXPERIMENT.make_config({"n_steps": 2}, quick=True), progress=False)
    assert r.verdict == "fail", r.summary()
    failed = {c.name for c in r.comparisons if c.passed is False}
    assert {KL_ROW, R2_ROW} <= failed <= TRAINED_ROWS, r.summary()
    assert rows(r)[BEYOND_K3_ROW].passed is not True
    assert all(c.passed for c in r.comparisons if c.kind in ("control", "sanity")), r.summary()


@pytest.mark.slow
def test_a_users_time_budget_leaves_the_trained_rows_not_identified():
    cfg = EXPERIMENT.make_config({"time_budget_s": 1e-6, "n_probe_seqs": 300}, quick=True)
    r = EXPERIMENT(cfg, progress=False)
    assert r.metrics["train_stop_reason"] == "time budget" and r.metrics["train_steps"] == 1
    assert r.verdict == "not identified", r.summary()
    for name, c in rows(r).items():
        if name in TRAINED_ROWS:
            assert c.passed is None and "stopped at step 1 of 400" in c.not_identified
        else:
            assert c.passed is not None, name


def test_config_validation_and_overrides():
    exp = EXPERIMENT
    assert exp.make_config({"process": "rrxor"}).process == "rrxor"
    with pytest.raises(PiamiError):
        Config(process="no_such_process(3)")
    with pytest.raises(PiamiError):
        Config(n_layers=0)
    with pytest.raises(PiamiValueError, match="time_budget_s"):
        Config(time_budget_s=0.0)
    with pytest.raises(PiamiValueError, match="kl_tolerance"):
        Config(kl_tolerance=-1.0)
    assert Config().time_budget_s is None  # no wall-clock limit by default
    with pytest.raises(PiamiKeyError, match="n_layers"):
        exp.make_config({"n_layer": "3"})
