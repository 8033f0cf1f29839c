"""Fractal dimensions: known self-similar sets, Lyapunov exponents by independent computations."""

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.theory.fractal import (
    belief_dynamics,
    box_counting_dimension,
    correlation_dimension,
    lyapunov_dimension,
    simplex_coordinates,
    update_jacobian,
)

LOG3_LOG2 = np.log(3) / np.log(2)


def sierpinski_hmm():
    """An HMM whose belief set is the Sierpinski triangle.

    T[x] = A_x / 3 with A_x = (I + 1 e_x^T) / 2 row-stochastic: every symbol has probability 1/3 in
    every state, so the belief update is the affine chaos-game map eta -> (eta + e_x) / 2.
    """
    T = np.zeros((3, 3, 3))
    for x in range(3):
        A = np.eye(3) / 2
        A[:, x] += 0.5
        T[x] = A / 3
    return T


def mess3_T(x, a):
    b, y = (1 - a) / 2, 1 - 2 * x
    emit = np.full((3, 3), b) + (a - b) * np.eye(3)
    move = np.full((3, 3), x) + (y - x) * np.eye(3)
    return emit[:, None, :] * move[None, :, :]


@pytest.fixture(scope="module")
def sierpinski():
    return belief_dynamics(
        sierpinski_hmm(), n_steps=1000, n_chains=32, rng=np.random.default_rng(0)
    )


def test_sierpinski_exponents_entropy_and_lyapunov_dimension_are_exact(sierpinski):
    assert np.allclose(sierpinski.lyapunov_exponents, -np.log(2), atol=1e-10)
    assert abs(sierpinski.entropy_rate - np.log(3)) < 1e-10
    assert abs(sierpinski.lyapunov_dimension - LOG3_LOG2) < 1e-9


def test_box_and_correlation_dimension_of_sierpinski_within_5_percent(sierpinski):
    P = simplex_coordinates(sierpinski.points)
    assert abs(box_counting_dimension(P).dimension / LOG3_LOG2 - 1) < 0.05
    assert abs(correlation_dimension(P).dimension / LOG3_LOG2 - 1) < 0.05


def test_middle_thirds_cantor_set():
    rng = np.random.default_rng(1)
    digits = rng.integers(0, 2, size=(20000, 14)) * 2
    x = (digits / 3.0 ** np.arange(1, 15)).sum(1)
    d = np.log(2) / np.log(3)
    assert abs(box_counting_dimension(x).dimension / d - 1) < 0.05
    assert abs(correlation_dimension(x).dimension / d - 1) < 0.05


def test_lyapunov_dimension_formula():
    assert lyapunov_dimension([-np.log(2), -np.log(2)], np.log(3)) == pytest.approx(LOG3_LOG2)
    assert lyapunov_dimension([-1.0, -2.0], 0.5) == pytest.approx(0.5)
    assert lyapunov_dimension([-1.0, -2.0], 5.0) == 2.0
    assert lyapunov_dimension([-1.0, -2.0], 0.0) == 0.0


def test_update_jacobian_matches_finite_differences():
    rng = np.random.default_rng(2)
    T = mess3_T(0.05, 0.85)
    eta = rng.dirichlet(np.ones(3), size=4)
    J = update_jacobian(T, eta)
    v = np.array([1.0, -0.5, -0.5]) * 1e-6

    def f(e, x):
        m = e @ T[x]
        return m / m.sum()

    for c in range(4):
        for x in range(3):
            fd = (f(eta[c] + v, x) - f(eta[c] - v, x)) / 2
            assert np.allclose(v @ J[c, x], fd, atol=1e-12)


def test_mess3_top_exponent_and_entropy_rate_by_independent_computations():
    T = mess3_T(0.15, 0.6)
    bd = belief_dynamics(T, n_steps=1500, n_chains=16, rng=np.random.default_rng(3))
    # entropy rate: compare with the process library (block-entropy / exact machinery of H1)
    from piami.processes import mess3

    assert abs(bd.entropy_rate - mess3(x=0.15, a=0.6).entropy_rate()) < 5e-3
    # top exponent: separation growth of two nearby trajectories driven by the same symbols,
    # renormalized each step (no Jacobians). 32 x 1500 steps; tolerance 4 standard errors + 0.01.
    rng = np.random.default_rng(4)
    c, steps, d0 = 32, 1500, 1e-7
    ar = np.arange(c)

    def step(e, e2=None):
        m = np.einsum("ci,xij->cxj", e, T)
        p = m.sum(-1)
        x = (rng.random((c, 1)) > np.cumsum(p / p.sum(1, keepdims=True), 1)).sum(1).clip(max=2)
        new = m[ar, x] / m[ar, x].sum(1, keepdims=True)
        if e2 is None:
            return new, None
        m2 = np.einsum("ci,cij->cj", e2, T[x])
        return new, m2 / m2.sum(1, keepdims=True)

    e = np.full((c, 3), 1 / 3)
    for _ in range(100):
        e, _ = step(e)
    e2 = e + d0 * np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    logs = np.zeros(c)
    for _ in range(steps):
        e, e2 = step(e, e2)
        dist = np.linalg.norm(e2 - e, axis=1)
        logs += np.log(dist / d0)
        e2 = e + (e2 - e) * (d0 / dist)[:, None]
    logs /= steps
    lam1 = np.mean(logs)
    se = np.std(logs, ddof=1) / np.sqrt(len(logs))
    assert abs(lam1 - bd.lyapunov_exponents[0]) < 4 * np.hypot(se, bd.exponent_stderr[0]) + 0.01
    assert bd.lyapunov_exponents[1] <= bd.lyapunov_exponents[0] < 0


def test_bad_input_raises():
    rng = np.random.default_rng(0)
    with pytest.raises(PiamiError):
        belief_dynamics(np.ones((2, 3, 3)), rng=rng)
    with pytest.raises(PiamiError):
        belief_dynamics(sierpinski_hmm(), rng=0)
    with pytest.raises(PiamiError):
        belief_dynamics(sierpinski_hmm(), n_steps=0, rng=rng)
    with pytest.raises(PiamiError):
        lyapunov_dimension([-1.0], -1.0)
    with pytest.raises(PiamiError):
        box_counting_dimension(np.zeros((100, 2)))


def test_a_few_distinct_points_have_no_scaling_range():
    # three distinct points repeated: every quantile radius coincides; a PiamiError, not scipy's
    X = np.repeat(np.eye(3)[:, :2], 50, axis=0)
    X[:, 0] += np.repeat([0.0, 0.0, 1e-9], 50)
    with pytest.raises(PiamiError, match="scaling range"):
        correlation_dimension(X, c_range=(1e-2, 1e-1))
