"""Learning-dynamics theory against independent numerical solutions (scipy ODE
integration, brute force)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad, solve_ivp

from piami.errors import PiamiError
from piami.theory.dynamics import (
    deep_linear_loss,
    deep_linear_mode_trajectory,
    deep_linear_time_to,
    dmft_kernel_scale,
    dmft_linear_rhs,
    dmft_linear_time_to,
    dmft_linear_trajectory,
    saxe_half_time,
    saxe_mode_trajectory,
)
from piami.theory.leap import escape_exponent, leap_complexity, learning_order, plateau_losses


def _ode_mode(t: np.ndarray, s: float, u0: float, depth: int) -> np.ndarray:
    """Integrate tau du/dt = D u^(2-2/D)(s - u) directly in u (independent of the
    library's route)."""
    sol = solve_ivp(
        lambda _t, u: depth * np.abs(u) ** (2 - 2 / depth) * (s - u),
        (0, t[-1]),
        [u0],
        t_eval=t,
        method="LSODA",
        rtol=1e-10,
        atol=1e-13,
    )
    return sol.y[0]


@pytest.mark.parametrize("s,u0", [(3.0, 1e-3), (0.5, 1e-6), (1.0, 0.3)])
def test_saxe_closed_form_matches_ode(s, u0):
    t = np.linspace(0, 4 * saxe_half_time(s, u0), 200)
    # ODE tolerance 1e-10 relative: agreement to 1e-7 of s leaves room for the solver's error
    np.testing.assert_allclose(
        saxe_mode_trajectory(t, s, u0), _ode_mode(t, s, u0, 2), atol=1e-7 * s
    )
    assert saxe_mode_trajectory(saxe_half_time(s, u0), s, u0) == pytest.approx(s / 2, rel=1e-12)


@pytest.mark.parametrize("depth,u0", [(2, 1e-4), (3, 1e-3), (4, 3e-3), (6, 0.05)])
def test_deep_mode_trajectory_matches_ode(depth, u0):
    s = 1.7
    t_end = 1.5 * deep_linear_time_to(s / 2, s, u0, depth)
    t = np.linspace(0, t_end, 120)
    np.testing.assert_allclose(
        deep_linear_mode_trajectory(t, s, u0, depth), _ode_mode(t, s, u0, depth), atol=1e-6 * s
    )


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_deep_time_to_is_inverse_of_trajectory(depth):
    s, u0 = 2.0, 1e-3
    for frac in (0.01, 0.5, 0.99):
        t = deep_linear_time_to(frac * s, s, u0, depth)
        assert deep_linear_mode_trajectory(np.array([t]), s, u0, depth)[0] == pytest.approx(
            frac * s, rel=1e-8
        )
    # the quadrature against direct numerical integration of dt = tau/D u^(2/D-2)/(s-u) du
    direct, _ = quad(lambda u: u ** (2 / depth - 2) / (s - u) / depth, u0, s / 2, limit=200)
    assert deep_linear_time_to(s / 2, s, u0, depth) == pytest.approx(direct, rel=1e-8)


def test_two_layer_time_to_equals_half_time_formula():
    assert deep_linear_time_to(1.5, 3.0, 1e-3, 2) == pytest.approx(
        (1 / 6) * math.log(3.0 / 1e-3 - 1), rel=1e-12
    )


def test_deeper_nets_have_longer_plateaus_from_the_same_layer_scale():
    # escape time ~ a0^-(D-2) for per-layer scale a0 (REFERENCES: depth D > 2 from small init)
    a0, s = 0.05, 1.0
    times = [deep_linear_time_to(s / 2, s, a0**d, d) for d in (3, 4, 5)]
    ratios = np.diff(np.log(times)) / math.log(1 / a0)
    assert np.all(ratios > 0.7) and np.all(ratios < 1.3)


def test_loss_is_half_sum_of_residuals():
    s = np.array([2.0, 1.0])
    t = np.array([0.0, 100.0])
    loss = deep_linear_loss(t, s, 1e-3, 2)
    assert loss[0] == pytest.approx(0.5 * np.sum((s - 1e-3) ** 2))
    assert loss[1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("gamma0", [0.0, 0.1, 1.0, 4.0])
@pytest.mark.parametrize("y", [1.0, 2.5])
def test_dmft_time_matches_ode_and_quadrature(gamma0, y):
    for q in (0.3, 0.5, 0.9, 0.99):
        direct, _ = quad(lambda f: 1 / float(dmft_linear_rhs(f, y, gamma0)), 0, q * y, limit=200)
        assert dmft_linear_time_to(q, y, gamma0) == pytest.approx(direct, rel=1e-9)
    t = np.linspace(0, 2 * dmft_linear_time_to(0.9, y, gamma0), 50)
    sol = solve_ivp(
        lambda _t, f: dmft_linear_rhs(f, y, gamma0),
        (0, t[-1]),
        [0.0],
        t_eval=t,
        rtol=1e-11,
        atol=1e-13,
    )
    np.testing.assert_allclose(dmft_linear_trajectory(t, y, gamma0), sol.y[0], atol=1e-7 * y)


def test_dmft_limits():
    assert dmft_linear_time_to(0.9, 1.0, 0.0) == pytest.approx(math.log(10) / 2)
    # richer networks reach 0.9 y sooner, and the curve turns sigmoidal (smaller t90 / t50)
    t90 = [dmft_linear_time_to(0.9, 1.0, g) for g in (0.1, 1, 4)]
    shape = [t / dmft_linear_time_to(0.5, 1.0, g) for t, g in zip(t90, (0.1, 1, 4), strict=True)]
    assert t90[0] > t90[1] > t90[2] and shape[0] > shape[1] > shape[2]
    assert float(dmft_kernel_scale(1.0, 1.0)) == pytest.approx(math.sqrt(2))


def test_leap_complexity_known_values_and_brute_force():
    assert leap_complexity([(0,), (0, 1), (0, 1, 2)]) == 1
    assert leap_complexity([(0,), (0, 1, 2)]) == 2
    assert leap_complexity([(0, 1, 2)]) == 3
    assert learning_order([(0, 1, 2), (0,), (0, 1)]) == ([1, 2, 0], [1, 1, 1])
    rng = np.random.default_rng(0)
    for _ in range(40):  # greedy leap == min over all orders of the max new-coordinate count
        sets = {
            tuple(sorted(rng.choice(6, size=rng.integers(1, 4), replace=False).tolist()))
            for _ in range(rng.integers(1, 5))
        }
        sets = list(sets)
        best = min(
            max(len(set(p[k]) - set().union(*map(set, p[:k]))) for k in range(len(p)))
            for p in itertools.permutations(sets)
        )
        assert leap_complexity(sets) == best


def test_plateau_losses_and_exponent():
    np.testing.assert_allclose(plateau_losses([(0,), (0, 1, 2)], [1.0, 0.5]), [1.25, 0.25, 0.0])
    np.testing.assert_allclose(plateau_losses([(0, 1, 2)], [2.0]), [4.0, 0.0])
    assert [escape_exponent(k) for k in (1, 2, 3, 4)] == [1, 1, 2, 3]


@settings(max_examples=30, deadline=None)
@given(s=st.floats(-5, 5), u0=st.floats(-1, 10), depth=st.integers(-3, 8))
def test_bad_input_raises_piami_error(s, u0, depth):
    if s > 0 and 0 < u0 < s and depth >= 2:
        if u0 <= s / 2:
            assert deep_linear_time_to(s / 2, s, u0, depth) >= 0
        return
    with pytest.raises(PiamiError):
        deep_linear_time_to(s / 2, s, u0, depth)


@pytest.mark.parametrize(
    "call",
    [
        lambda: saxe_half_time(1.0, 2.0),
        lambda: dmft_linear_time_to(1.0, 1.0, 1.0),
        lambda: dmft_linear_time_to(0.5, -1.0, 1.0),
        lambda: dmft_linear_time_to(0.5, 1.0, -1.0),
        lambda: deep_linear_mode_trajectory(np.array([-1.0]), 1.0, 0.1, 3),
        lambda: leap_complexity([]),
        lambda: leap_complexity([(0, 0)]),
        lambda: leap_complexity("x1"),
        lambda: plateau_losses([(0,)], [1.0, 2.0]),
        lambda: escape_exponent(0),
    ],
)
def test_bad_inputs(call):
    with pytest.raises(PiamiError):
        call()


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_gradient_descent_recursion_matches_matrix_descent_and_tends_to_the_flow(depth):
    """The scalar recursion equals gradient descent on the product of balanced aligned matrices
    (brute force, numpy), and its distance from the flow shrinks in proportion to the step."""
    from piami.theory.dynamics import deep_linear_gd_modes

    rng = np.random.default_rng(depth)
    s, u0, lr, n = np.array([2.0, 0.7]), 1e-2, 0.01, 600
    u_rec = deep_linear_gd_modes(n, s, u0, depth, lr)
    U, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    V, _ = np.linalg.qr(rng.standard_normal((4, 2)))
    rots = [np.linalg.qr(rng.standard_normal((3, 2)))[0] for _ in range(depth - 1)]
    c = u0 ** (1 / depth)
    ws = [c * rots[0] @ V.T]
    ws += [c * rots[k] @ rots[k - 1].T for k in range(1, depth - 1)]
    ws += [c * U @ rots[-1].T]
    target = (U * s) @ V.T
    for _ in range(n):
        prods = [np.eye(4)]
        for w in ws:
            prods.append(w @ prods[-1])
        err = target - prods[-1]
        above, grads = np.eye(5), [None] * depth
        for k in range(depth - 1, -1, -1):
            grads[k] = above.T @ err @ prods[k].T
            above = above @ ws[k]
        ws = [w + lr * g for w, g in zip(ws, grads, strict=True)]
    w_end = ws[0]
    for w in ws[1:]:
        w_end = w @ w_end
    np.testing.assert_allclose(np.einsum("oa,oi,ia->a", U, w_end, V), u_rec[-1], rtol=1e-10)
    t = np.arange(n + 1) * lr
    flow = np.stack([deep_linear_mode_trajectory(t, v, u0, depth) for v in s], axis=1)
    coarse = np.abs(u_rec - flow).max()
    fine = np.abs(deep_linear_gd_modes(2 * n, s, u0, depth, lr / 2)[::2] - flow).max()
    assert fine == pytest.approx(coarse / 2, rel=0.1)


def test_gradient_descent_recursion_rejects_bad_input():
    from piami.theory.dynamics import deep_linear_gd_modes

    for args in [
        (-1, [1.0], 0.1, 2, 0.1),
        (5, [], 0.1, 2, 0.1),
        (5, [1.0], 2.0, 2, 0.1),
        (5, [1.0], 0.1, 1, 0.1),
        (5, [1.0], 0.1, 2, 0.0),
    ]:
        with pytest.raises(PiamiError):
            deep_linear_gd_modes(*args)
