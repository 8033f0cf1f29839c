"""The belief-geometry experiment: the quick run passes with its controls, gives the same numbers
beside a busy process, fails with a barely trained network; its baselines are right."""

from __future__ import annotations

import numpy as np
import pytest
from reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError, PiamiKeyError, PiamiValueError
from piami.experiments._belief_measure import (
    bootstrap_r2,
    onehot_r2,
    percentile_interval,
    shuffled_r2,
    window_ids,
)
from piami.experiments.belief_geometry import EXPERIMENT, Config
from piami.instruments.probes import LinearProbe, r2_scores

KL_ROW = "KL(exact ‖ model), mean over positions"
R2_ROW = "R² of beliefs from the final residual stream"
BEYOND_K3_ROW = "R² of beliefs: all layers concatenated minus position + last 3 tokens"
TRAINED_ROWS = {KL_ROW, R2_ROW, BEYOND_K3_ROW}


def rows(result):
    return {c.name: c for c in result.comparisons}


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


def test_onehot_baseline_equals_a_linear_probe_on_the_one_hot_code():
    """The k-token baseline is computed as category means; check it against LinearProbe."""
    rng = np.random.default_rng(0)
    fit_in, test_in = rng.integers(0, 3, (400, 5)), rng.integers(0, 3, (300, 5))
    y_fit = rng.normal(size=(2000, 2)) + fit_in.reshape(-1, 1)
    y_test = rng.normal(size=(1500, 2)) + test_in.reshape(-1, 1)
    k = 2
    ids_fit, ids_test = window_ids(fit_in, k, 3), window_ids(test_in, k, 3)
    codes = np.unique(np.concatenate([ids_fit, ids_test]))

    def onehot(ids):
        return (ids[:, None] == codes[None, :]).astype(float)

    probe = LinearProbe().fit(onehot(ids_fit), y_fit)
    assert set(ids_test) <= set(ids_fit)  # every code seen in fitting: the two must agree
    assert onehot_r2(ids_fit, ids_test, y_fit, y_test) == pytest.approx(
        probe.score(onehot(ids_test), y_test), abs=1e-9
    )


def test_window_ids_encode_position_and_last_k_tokens():
    x = np.array([[0, 1, 2, 1], [2, 1, 2, 1]])
    ids = window_ids(x, 2, 3).reshape(2, 4)
    assert ids[0, 3] == ids[1, 3] and ids[0, 2] == ids[1, 2]
    assert ids[0, 1] != ids[1, 1]  # windows (0,1) and (2,1) differ
    assert len(set(window_ids(x, 1, 3))) == len({(t, v) for row in x for t, v in enumerate(row)})


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


def test_bootstrap_r2_resamples_whole_sequences_around_the_sample_value():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(3000, 2))
    good, bad = y + 0.1 * rng.normal(size=y.shape), y + 0.5 * rng.normal(size=y.shape)
    reps = bootstrap_r2(y, {"good": good, "bad": bad}, 10, rng, n_boot=300)
    for name, pred in (("good", good), ("bad", bad)):
        lo, hi = percentile_interval(reps[name])
        assert lo < r2_scores(y, pred)[0] < hi and hi - lo < 0.05
    assert np.all(reps["good"] > reps["bad"])  # paired: the same resamples for both


def test_a_probe_on_shuffled_targets_scores_no_r2():
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))]
    W = rng.normal(size=(3, 3))
    Y = [x[:, :3] @ W for x in X]  # targets linear in the features
    assert LinearProbe().fit(X[0], Y[0]).score(X[1], Y[1]) > 0.999
    assert shuffled_r2([X[0]], [X[1]], Y[0], Y[1], rng) < 0.01
