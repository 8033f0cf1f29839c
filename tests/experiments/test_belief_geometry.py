"""The belief-geometry experiment: the quick run meets issue 3's bar; its baselines are right."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiError, PiamiKeyError
from piami.experiments._belief_measure import onehot_r2, window_ids
from piami.experiments.belief_geometry import EXPERIMENT, Config
from piami.instruments.probes import LinearProbe


@pytest.mark.slow
def test_quick_run_meets_the_bar():
    r = EXPERIMENT(EXPERIMENT.make_config(quick=True), progress=False)
    m = r.metrics
    assert m["kl_gap_nats"] <= 0.02
    final = m["r2"]["beliefs_trained"]["L1"]
    assert final >= 0.97
    assert all(c.passed is not None for c in r.comparisons), r.summary()
    if not m["stopped_by_time_budget"]:  # the full quick schedule ran (not cut by a loaded CPU)
        assert r.passed, r.summary()
    # what the comparisons rest on: the baselines are measured, and below the trained network
    k = m["r2_onehot_baselines"]
    ks = [k[f"position + last {i} token{'s' if i > 1 else ''}"] for i in range(1, 5)]
    assert ks == sorted(ks) and 0.5 < ks[0] < ks[-1] < 1.0  # more context, better beliefs
    assert m["r2"]["beliefs_untrained"]["L1"] < final
    assert m["tokens_seen"] > 0 and m["train_wall_s"] > 0
    assert len(m["loss_by_position"]) == len(m["optimal_loss_by_position"]) == 10
    # optimal loss = myopic entropy: non-increasing in the position
    assert np.all(np.diff(m["optimal_loss_by_position"]) <= 1e-12)
    assert {f.name for f in r.figures} == {
        "belief_simplex",
        "loss_by_position",
        "loss_curve",
        "r2_by_layer",
    }


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
    with pytest.raises(PiamiKeyError, match="n_layers"):
        exp.make_config({"n_layer": "3"})
