"""Exact RLCTs: Aoyagi's deep formula against Aoyagi & Watanabe's two-layer one, the regular count,
symmetry, hand-derived cases, and quadrature of the normal-crossing zeta function."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from piami.errors import PiamiError
from piami.theory.learning_coefficient import (
    deep_linear_rlct,
    normal_crossing_rlct,
    reduced_rank_rlct,
    regular_rlct,
)


def test_deep_two_layer_equals_reduced_rank_every_width_up_to_8():
    n = 0
    for m, h, k in itertools.product(range(1, 9), repeat=3):
        for r in range(min(m, h, k) + 1):
            assert deep_linear_rlct([m, h, k], r) == reduced_rank_rlct(m, h, k, r), (m, h, k, r)
            n += 1
    assert n > 1000


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_full_rank_gives_regular_count(depth):
    for widths in itertools.product(range(1, 6), repeat=depth + 1):
        r = min(widths)
        lam, mult = deep_linear_rlct(widths, r)
        # dimension of the rank-r matrices H_{L+1} x H_1, halved
        assert lam == r * (widths[0] + widths[-1] - r) / 2 and mult == 1, widths


def test_reversed_widths_same_rlct():
    # the transpose network y^T = x^T W_1^T ... W_L^T has the same likelihood geometry
    for widths in itertools.product(range(1, 6), repeat=4):
        for r in range(min(widths) + 1):
            assert deep_linear_rlct(widths, r) == deep_linear_rlct(widths[::-1], r)


def test_rlct_never_exceeds_half_the_parameter_count():
    for widths in itertools.product(range(1, 6), repeat=4):
        d = sum(a * b for a, b in itertools.pairwise(widths))
        for r in range(min(widths) + 1):
            assert deep_linear_rlct(widths, r)[0] <= d / 2


@pytest.mark.parametrize(
    ("m", "h", "n", "r", "expected"),
    [
        (2, 2, 2, 0, (1.5, 1)),  # case 1, even: [2*2*4 - 0 - 4] / 8
        (3, 2, 2, 0, (2.0, 2)),  # case 1, odd: [2*2*5 - 1 - 4 + 1] / 8
        (1, 1, 5, 1, (2.5, 1)),  # case 2: y = b (a x), a rank-1 5x1 map: 5 directions
        (5, 1, 1, 1, (2.5, 1)),  # case 3: the transpose
        (1, 5, 1, 0, (0.5, 1)),  # case 4: K = (sum_i a_i b_i)^2 at a smooth zero: 1/2
    ],
)
def test_reduced_rank_hand_cases(m, h, n, r, expected):
    assert reduced_rank_rlct(m, h, n, r) == expected


def test_regular_and_one_layer():
    assert regular_rlct(7) == (3.5, 1)
    assert deep_linear_rlct([4, 3], 0) == (6.0, 1)


def test_normal_crossing_values():
    assert normal_crossing_rlct([1, 2]) == (0.25, 1)
    assert normal_crossing_rlct([1, 1]) == (0.5, 2)
    assert normal_crossing_rlct([2, 2, 1]) == (0.25, 2)
    assert normal_crossing_rlct([0, 3]) == (1 / 6, 1)  # w1 does not enter K
    assert normal_crossing_rlct([1, 2], prior_exponents=[0, 1]) == (0.5, 2)  # (1+1)/4 = 1/2


@pytest.mark.parametrize("k", [1, 2, 3])
def test_normal_crossing_one_dim_by_quadrature(k):
    # E[t K] under exp(-t K) on [0, 1]: with u = t^(1/2k) w the boundary moves to t^(1/2k) and
    # the ratio tends to lambda; at t = 1e12 the remaining boundary term is ~exp(-1e12 ...) = 0
    t = 1e12
    top = min(t ** (1 / (2 * k)), 60.0)
    num = integrate.quad(lambda u: u ** (2 * k) * np.exp(-(u ** (2 * k))), 0, top, limit=200)[0]
    den = integrate.quad(lambda u: np.exp(-(u ** (2 * k))), 0, top, limit=200)[0]
    assert num / den == pytest.approx(normal_crossing_rlct([k])[0], rel=1e-8)


def test_normal_crossing_two_dim_by_quadrature():
    # K = x^2 y^4, x integrated out exactly (a Gaussian); E[t K] -> 1/4 slowly (error ~ t^-1/4)
    def expectation(t):
        def f(y, power):
            prec = t * y**4 + 0.5
            base = np.exp(-(y**2) / 2) / np.sqrt(prec)
            return base * t * y**4 / (2 * prec) if power else base

        core = (1 / t) ** 0.25
        num = integrate.quad(f, 0, 12, args=(True,), points=[core], limit=800)[0]
        den = integrate.quad(f, 0, 12, args=(False,), points=[core], limit=800)[0]
        return num / den

    lam = normal_crossing_rlct([1, 2])[0]
    errs = [abs(expectation(t) - lam) for t in (1e4, 1e6, 1e10)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.01 * lam


@settings(max_examples=60, deadline=None)
@given(
    widths=st.lists(st.integers(-2, 6), min_size=0, max_size=5),
    rank=st.integers(-2, 8),
)
def test_deep_linear_bad_input_raises_piami_error(widths, rank):
    if len(widths) >= 2 and min(widths) >= 1 and 0 <= rank <= min(widths):
        lam, mult = deep_linear_rlct(widths, rank)
        assert lam >= 0 and mult >= 1
    else:
        with pytest.raises(PiamiError):
            deep_linear_rlct(widths, rank)


@pytest.mark.parametrize(
    "call",
    [
        lambda: deep_linear_rlct("345", 1),
        lambda: deep_linear_rlct([3, 4.0, 5], 1),
        lambda: deep_linear_rlct([3, 4, 5], True),
        lambda: reduced_rank_rlct(3, 3, 3, 4),
        lambda: reduced_rank_rlct(0, 3, 3, 0),
        lambda: normal_crossing_rlct([0, 0]),
        lambda: normal_crossing_rlct([1, 2], prior_exponents=[0]),
        lambda: normal_crossing_rlct(3),
        lambda: regular_rlct(-1),
    ],
)
def test_bad_input_messages(call):
    with pytest.raises(PiamiError):
        call()
