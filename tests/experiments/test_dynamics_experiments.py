"""The learning-dynamics experiments: quick variants pass and reproduce, broken ingredients fail.

For each of ``staircase``, ``deep-linear-dynamics``, ``dmft-two-layer`` and ``kernel-limit``: the
quick variant passes (every counted row decided), carries a kind and a tolerance source on every
row and at least one control, and gives the same ``result.json`` again beside a CPU-bound process;
the quick variant with a broken ingredient (a config switch) fails, on the rows expected.
"""

from __future__ import annotations

import numpy as np
import pytest
from reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment

NAMES = ["staircase", "deep-linear-dynamics", "dmft-two-layer", "kernel-limit"]

#: name -> (broken ingredient, extra overrides that keep the broken run as cheap as the quick one)
BROKEN = {
    # labels of independent inputs: nothing to learn (t_max cut so that it is not trained for 400)
    "staircase": ({"shuffle_labels": True}, {"t_max": 40.0}),
    "deep-linear-dynamics": ({"whiten": False}, {}),  # the theory needs E x x^T = I
    "dmft-two-layer": ({"parameterization": "ntk"}, {}),  # every gamma0 lazy
    "kernel-limit": ({"net_sigma_w_factor": 1.1}, {}),  # 10% off the closed form's weight scale
}


@pytest.fixture(scope="module")
def quick_results():
    return {}


def _quick(cache, name):
    if name not in cache:
        cache[name] = run_experiment(name, quick=True, progress=False)
    return cache[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_quick_variant_passes_and_reproduces(name, quick_results):
    r = _quick(quick_results, name)
    assert r.verdict == "pass", r.summary()
    assert r.comparisons and r.figures
    assert any(c.kind == "control" for c in r.comparisons), r.summary()
    assert all(c.tolerance_source for c in r.comparisons)
    exp = get_experiment(name)
    cfg = exp.make_config(quick=True)
    assert_reproducible_beside_load(lambda: exp(cfg, progress=False, variant="quick"), r)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_broken_ingredient_fails(name):
    broken, cheap = BROKEN[name]
    r = run_experiment(name, {**broken, **cheap}, quick=True, progress=False)
    assert r.verdict == "fail", r.summary()
    failed = {c.name for c in r.comparisons if c.counted and c.passed is False}
    expected = {
        "staircase": {"leap 1, d=64: test loss follows the mean-field limit (largest gap)"},
        "deep-linear-dynamics": {
            f"D={d}: half-way time of mode s={s:g}" for d in (2, 3) for s in (2.0, 1.0)
        }
        | {f"D={d}: loss on the plateau after mode 1 against the exact loss" for d in (2, 3)},
        "dmft-two-layer": {
            f"gamma0={g:g}: {what}"
            for g in (1.0, 4.0)
            for what in ("time to reach 0.9 y", "kernel growth K(t_end)/K(0) along the target")
        },
        "kernel-limit": {
            f"{a}: ||mean empirical {k} - closed form||_F at the largest width, relative"
            for a in ("relu", "erf")
            for k in ("NNGP", "NTK")
        },
    }[name]
    assert expected <= failed, r.summary()
    # the controls keep passing: the broken ingredient breaks the system, not the yardstick
    assert not any(c.kind == "control" and c.passed is False for c in r.comparisons), r.summary()


@pytest.mark.slow
def test_staircase_quick_rows(quick_results):
    """Exponents beyond the schedule, leap-1 plateaus refuted, leap 2's against the limit."""
    r = _quick(quick_results, "staircase")
    by = {c.name: c for c in r.comparisons}
    for leap, p in ((1, 0.0), (2, 0.0), (3, 0.5)):
        row = by[f"leap {leap}: exponent of d in the escape time beyond the step-size schedule"]
        assert row.predicted == p and row.passed is True and row.measured_interval is not None
        esc = r.metrics[f"leap{leap}_escape"]
        assert esc["schedule_exponent"] == max(leap / 2, 1)
        assert esc["sample_exponent"] == pytest.approx(row.measured + esc["schedule_exponent"])
    refuted = [c for c in r.comparisons if c.kind == "refuted"]
    assert [c.name for c in refuted] == [
        "leap 1, d=64: leap picture's plateau 1 (loss 2)",
        "leap 1, d=64: leap picture's plateau 2 (loss 1)",
    ]
    assert all(c.passed is False for c in refuted)  # the exact limit has no such plateau
    plateau = by["leap 2, d=64: plateau 1 loss against the mean-field limit"]
    assert plateau.predicted == pytest.approx(1.0, abs=1e-2) and plateau.passed
    assert r.metrics["leap2_limit_final_loss"] == pytest.approx(1.0, abs=1e-3)  # saddle kept
    assert not any("plateau 0" in c.name for c in r.comparisons)  # the initial loss is no row
    assert {f.name for f in r.figures} >= {"loss_curves", "escape_scaling", "leap1_monomials"}


@pytest.mark.slow
def test_deep_linear_gradient_descent_is_the_recursion(quick_results):
    """The network follows the discrete mode recursion to rounding: the tolerances' premise."""
    r = _quick(quick_results, "deep-linear-dynamics")
    for depth in (2, 3):
        m = r.metrics[f"depth{depth}"]
        np.testing.assert_allclose(m["t_half_measured"], m["t_half_gradient_descent"], rtol=1e-9)


@pytest.mark.parametrize(
    "name,bad",
    [
        ("deep-linear-dynamics", {"singular_values": (1.0, 2.0)}),
        ("deep-linear-dynamics", {"u0": (1e-3,)}),
        ("dmft-two-layer", {"width": 101}),
        ("dmft-two-layer", {"parameterization": "standard"}),
        ("kernel-limit", {"widths": (8, 16, 32)}),
        ("kernel-limit", {"net_sigma_w_factor": 0.0}),
        ("staircase", {"leaps": (4,)}),
        ("staircase", {"leaps": (1, 1)}),
        ("staircase", {"dims": (8, 16)}),
        ("staircase", {"dims": (3, 8, 16, 32)}),
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


def test_staircase_exponent_beyond_the_schedule():
    """What the theory adds to the step size's exponent: 0, 0 and 1/2."""
    from piami.experiments.staircase.config import added_exponent, schedule_exponent

    assert [schedule_exponent(k) for k in (1, 2, 3)] == [1.0, 1.0, 1.5]
    assert [added_exponent(k) for k in (1, 2, 3)] == [0.0, 0.0, 0.5]


def test_pooled_slope_recovers_a_power_law_and_covers_it():
    from piami.experiments.staircase.readouts import pooled_slope

    rng = np.random.default_rng(0)
    dims = np.array([8.0, 16.0, 32.0, 64.0])
    times = 3.0 * dims[:, None] ** 0.5 * np.exp(0.05 * rng.standard_normal((4, 6)))
    slope, se, (lo, hi) = pooled_slope(dims, times)
    assert lo < 0.5 < hi and abs(slope - 0.5) < 3 * se and hi - lo < 0.2


def test_exponent_row_is_not_identified_when_a_replica_never_escaped():
    from piami.experiments.staircase.compare import exponent_row

    dims = np.array([8.0, 16.0, 32.0, 64.0])
    times = np.tile(dims[:, None] ** 0.5, (1, 3))
    times[2, 1] = np.nan
    row = exponent_row(3, dims, times)
    assert row.passed is None and "1 of 3 at d=32" in row.not_identified
    times[2, 1] = 32**0.5
    assert exponent_row(3, dims, times).passed is True
    assert exponent_row(2, dims, times).passed is False  # 1/2 is not leap 2's 0


def test_deep_linear_plateau_row_not_identified_when_the_window_is_empty():
    from piami.experiments.deep_linear_dynamics import DepthRun, _plateau_rows

    s = np.array([2.0, 1.0])
    t = np.linspace(0, 10, 101)
    zeros = np.zeros((101, 2))
    run = DepthRun(
        depth=2,
        u0=1e-3,
        t=t,
        modes=zeros,
        losses=np.linspace(2.5, 0.1, 101),
        u_flow=zeros,
        u_gd=zeros,
        t_flow=np.array([5.0, 7.0]),
        t_gd=np.array([5.0, 7.0]),
        t_meas=np.array([5.0, np.nan]),
    )
    rows = _plateau_rows(run, s, 0.0)
    assert [r.kind for r in rows] == ["prediction", "control"]
    assert all(r.passed is None and "never reached s/2" in r.not_identified for r in rows)


def test_dmft_tolerance_shrinks_with_width_and_step():
    from piami.experiments.dmft_two_layer import Config, tolerance

    wide, _ = tolerance(Config(width=40_000, dt=0.001), 1.0)
    narrow, source = tolerance(Config(width=10_000, dt=0.002), 1.0)
    assert wide < narrow and source.startswith("derived:")
    assert narrow == pytest.approx(3 * np.sqrt(2 / 10_000) + 0.002 * 2 * np.sqrt(2))
