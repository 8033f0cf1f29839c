"""Natural-latent errors against independent computations and the uniqueness bound."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError
from piami.theory.natural_latents import (
    best_deterministic_natural_latent,
    conditional_mutual_information_given_latent,
    deterministic_channel,
    joint_with_latent,
    latent_given_latent_entropy,
    mediation_error,
    redundancy_errors,
)


def _kl_mediation(P):
    # independent computation: D_KL(P(X, L) || P(L) prod_j P(X_j | L)) by explicit product
    n = P.ndim - 1
    PL = P.sum(axis=tuple(range(n)))
    Q = np.ones_like(P) * PL
    for j in range(n):
        marg = P.sum(axis=tuple(a for a in range(n) if a != j))  # (|X_j|, |L|)
        cond = marg / np.where(PL > 0, PL, 1)
        shape = [1] * (n + 1)
        shape[j], shape[-1] = marg.shape
        Q = Q * cond.reshape(shape)
    m = P > 0
    return float(np.sum(P[m] * np.log(P[m] / Q[m])))


def _random_joint(rng, shape, n_latent):
    PX = rng.dirichlet(np.full(int(np.prod(shape)), 0.5)).reshape(shape)
    return PX, rng.dirichlet(np.full(n_latent, 0.3), size=shape)


def test_mediation_error_equals_kl_divergence_and_redundancy_closed_form():
    rng = np.random.default_rng(0)
    for shape in [(2, 3), (2, 2, 3), (3, 2, 2, 2)]:
        PX, ch = _random_joint(rng, shape, 3)
        P = joint_with_latent(PX, ch)
        assert abs(mediation_error(P) - _kl_mediation(P)) < 1e-10
        # 2 observables: eps_red_1 = I(L; X_2 | X_1) by the four-entropy formula
        if len(shape) == 2:

            def H(axes, P=P):
                q = P.sum(axis=tuple(a for a in range(3) if a not in axes))
                return -np.sum(q[q > 0] * np.log(q[q > 0]))

            cmi = H((0, 2)) + H((0, 1)) - H((0,)) - H((0, 1, 2))
            assert abs(redundancy_errors(P)[0] - cmi) < 1e-10


def test_conditionally_independent_copies_mediate_and_a_copied_bit_is_redundant():
    # X_1, X_2 independent noisy copies of L: mediation 0; L = X_1 = X_2 exactly: redundancy 0
    eps = 0.1
    P = np.zeros((2, 2, 2))
    for lam in range(2):
        for a in range(2):
            for b in range(2):
                P[a, b, lam] = 0.5 * (1 - eps if a == lam else eps) * (1 - eps if b == lam else eps)
    assert abs(mediation_error(P)) < 1e-12
    assert np.all(redundancy_errors(P) > 0)
    Q = np.zeros((2, 2, 2))
    Q[0, 0, 0] = Q[1, 1, 1] = 0.5
    assert abs(mediation_error(Q)) < 1e-12 and np.allclose(redundancy_errors(Q), 0)


def test_uniqueness_bound_on_random_tables():
    # H(L'|L) <= eps_med(L) + 2 max eps_red(L') when L' = f(X) and L independent of L' given X;
    # and the stochastic form I(L'; X | L) <= the same, for random channels L'.
    rng = np.random.default_rng(1)
    worst = -np.inf
    for _ in range(200):
        shape = tuple(rng.integers(2, 4, size=rng.integers(2, 4)))
        PX, ch = _random_joint(rng, shape, int(rng.integers(2, 5)))
        med = mediation_error(joint_with_latent(PX, ch))
        f = deterministic_channel(rng.integers(0, 3, size=shape), 3)
        red = redundancy_errors(joint_with_latent(PX, f)).max()
        gap = latent_given_latent_entropy(PX, ch, f) - (med + 2 * red)
        worst = max(worst, gap)
        _, ch2 = _random_joint(rng, shape, 3)
        red2 = redundancy_errors(joint_with_latent(PX, ch2)).max()
        assert conditional_mutual_information_given_latent(PX, ch, ch2) <= med + 2 * red2 + 1e-10
    assert worst <= 1e-10


def test_best_deterministic_natural_latent_finds_the_shared_bit():
    # X_j = (shared bit L, private bit N_j): the natural latent is L, with zero error
    PX = np.zeros((4, 4))
    for lam, pl in enumerate([0.3, 0.7]):
        for a, pa in enumerate([0.2, 0.8]):
            for b, pb in enumerate([0.6, 0.4]):
                PX[2 * lam + a, 2 * lam + b] += pl * pa * pb
    res = best_deterministic_natural_latent(PX)
    assert res.n_candidates == 4140  # Bell(8): the support has 8 outcomes
    assert abs(res.score) < 1e-12
    lab = res.labels
    shared = np.add.outer(np.arange(4) // 2, 0 * np.arange(4))
    on = PX > 0
    # the labels are a relabelling of the shared bit on the support
    assert len(set(zip(lab[on], shared[on], strict=True))) == 2


def test_search_matches_brute_force_with_the_general_formulas():
    # every labelling of a 2x2 table with labels in {0..3} covers all 15 partitions of 4 cells
    rng = np.random.default_rng(2)
    PX = rng.dirichlet(np.ones(4)).reshape(2, 2)
    best = np.inf
    for code in range(4**4):
        lab = np.array([(code // 4**i) % 4 for i in range(4)]).reshape(2, 2)
        P = joint_with_latent(PX, deterministic_channel(lab, 4))
        best = min(best, mediation_error(P) + 2 * redundancy_errors(P).max())
    res = best_deterministic_natural_latent(PX)
    assert res.n_candidates == 15
    assert abs(res.score - best) < 1e-10


def test_bad_tables_raise():
    with pytest.raises(PiamiError):
        mediation_error(np.ones((2, 2)))  # does not sum to 1
    with pytest.raises(PiamiError):
        mediation_error(np.array([0.5, 0.5]))  # no observable axis
    with pytest.raises(PiamiError):
        joint_with_latent(np.full((2, 2), 0.25), np.ones((2, 3, 2)))
    with pytest.raises(PiamiError):
        best_deterministic_natural_latent(np.full((4, 4), 1 / 16), max_support=10)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1, 2) | st.just(float("nan")), min_size=1, max_size=12), st.integers(1, 3)
)
def test_fuzz_tables_only_raise_piami_errors(values, n_axes):
    P = np.array(values)
    try:
        P = P.reshape((-1,) + (1,) * (n_axes - 1))
        mediation_error(P)
        redundancy_errors(P)
    except PiamiError:
        pass
