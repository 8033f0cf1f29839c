"""Crossing times and log-log slopes against closed forms."""

import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.instruments.curves import first_crossing, loglog_slope, loglog_slope_interval


def test_first_crossing_of_a_logistic_matches_its_closed_form():
    t = np.linspace(0, 10, 2001)
    y = 1 / (1 + np.exp(-(t - 4)))  # reaches 1/2 at t = 4, 0.9 at 4 + ln 9
    assert first_crossing(t, y, 0.5) == pytest.approx(4.0, abs=1e-5)
    assert first_crossing(t, y, 0.9) == pytest.approx(4 + math.log(9), abs=1e-4)
    assert first_crossing(t, 1 - y, 0.1, direction="down") == pytest.approx(
        4 + math.log(9), abs=1e-4
    )
    assert math.isnan(first_crossing(t, y, 2.0))
    assert first_crossing(t, y, -1.0) == 0.0  # already past the level at the start
    coarse = first_crossing([0, 1, 2, 3], [0.0, 0.2, 0.6, 1.0], 0.5, interpolate=False)
    assert coarse == 2.0


def test_loglog_slope_recovers_a_power_law_and_its_noise():
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1e4, 400)
    y = 3 * x**-0.75 * np.exp(0.05 * rng.standard_normal(x.size))
    s, se, (lo, hi) = loglog_slope_interval(x, y)
    assert abs(s + 0.75) < 0.01
    assert lo < -0.75 < hi and se == pytest.approx(0.05 / np.std(np.log(x)) / 20, rel=0.15)
    assert loglog_slope([1, 2], [1, 4])[0] == pytest.approx(2.0) and math.isnan(
        loglog_slope([1, 2], [1, 4])[1]
    )


@pytest.mark.parametrize(
    "x,y",
    [
        ([1, 2], [1, -1]),
        ([1], [1]),
        ([1, 1, 1], [1, 2, 3]),
        ([[1, 2]], [[1, 2]]),
        ([1, 2], [1, 2, 3]),
    ],
)
def test_bad_curves_raise_piami_errors(x, y):
    with pytest.raises(PiamiError):
        loglog_slope(x, y)
    if np.asarray(x).ndim != 1 or len(x) != len(y):
        with pytest.raises(PiamiError):
            first_crossing(x, y, 0.5)
