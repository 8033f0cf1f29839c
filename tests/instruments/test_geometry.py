"""CKA and kernel matrices against closed forms, invariances and an independence test."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError
from piami.instruments.geometry import center_kernel, cka, cka_from_kernels, hsic, kernel_matrix


def _orth(rng, d):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_invariant_to_orthogonal_maps_and_isotropic_scaling(kernel, debiased):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    Y = np.tanh(X @ rng.normal(size=(8, 6))) + 0.3 * rng.normal(size=(120, 6))
    base = cka(X, Y, kernel=kernel, debiased=debiased)
    for Xt in (X @ _orth(rng, 8), 7.5 * X, 0.01 * X @ _orth(rng, 8)):
        assert abs(cka(Xt, Y, kernel=kernel, debiased=debiased) - base) < 1e-6
    assert abs(cka(X, Y @ _orth(rng, 6) * 3.0, kernel=kernel, debiased=debiased) - base) < 1e-6
    assert abs(cka(X, X, kernel=kernel, debiased=debiased) - 1.0) < 1e-6


def test_linear_cka_not_invariant_to_general_linear_maps():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    A = np.diag([10.0, 1.0, 1.0, 0.1, 0.1])
    assert cka(X, X @ A) < 0.9


def test_feature_space_linear_cka_equals_kernel_form():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(50, 4)), rng.normal(size=(50, 7))
    via_kernels = cka_from_kernels(kernel_matrix(X), kernel_matrix(Y))
    assert abs(cka(X, Y) - via_kernels) < 1e-12


def test_hsic_matches_trace_definition():
    rng = np.random.default_rng(3)
    n = 30
    K = kernel_matrix(rng.normal(size=(n, 3)), "rbf")
    L = kernel_matrix(rng.normal(size=(n, 2)), "rbf")
    H = np.eye(n) - np.ones((n, n)) / n
    assert abs(hsic(K, L) - np.trace(K @ H @ L @ H) / (n - 1) ** 2) < 1e-12
    assert np.allclose(center_kernel(K), H @ K @ H)


def test_unbiased_hsic_has_mean_zero_for_independent_data():
    # Monte Carlo: 200 draws of independent X, Y with n = 20. The unbiased estimator's mean is 0;
    # its standard error over 200 draws is ~ std / sqrt(200); the biased one is clearly positive.
    rng = np.random.default_rng(4)
    unb, bia = [], []
    for _ in range(200):
        K = kernel_matrix(rng.normal(size=(20, 3)))
        L = kernel_matrix(rng.normal(size=(20, 3)))
        unb.append(hsic(K, L, unbiased=True))
        bia.append(hsic(K, L))
    unb, bia = np.array(unb), np.array(bia)
    assert abs(unb.mean()) < 4 * unb.std() / np.sqrt(len(unb))
    assert bia.mean() > 10 * bia.std() / np.sqrt(len(bia))


def test_debiased_cka_near_zero_for_independent_representations():
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(100, 50)), rng.normal(size=(100, 50))
    assert cka(X, Y) > 0.3  # the plug-in estimator is badly biased at n ~ d
    assert abs(cka(X, Y, debiased=True)) < 0.05


@pytest.mark.parametrize(
    "bad",
    [
        dict(X=np.ones((5, 2)), Y=np.ones((4, 2))),
        dict(X=np.array([[np.nan, 1.0], [1.0, 2.0]]), Y=np.ones((2, 2))),
        dict(X=np.array([["a", "b"]]), Y=np.ones((1, 2))),
        dict(X=np.ones((3, 2, 2)), Y=np.ones((3, 2))),
        dict(X=np.ones((6, 2)), Y=np.random.default_rng(0).normal(size=(6, 2))),
    ],
)
def test_bad_input_raises_piami_error(bad):
    with pytest.raises(PiamiError):
        cka(bad["X"], bad["Y"])


@settings(max_examples=25, deadline=None)
@example(values=[0.0, 0.0, 0.0, 1.0, 2.5223847652946196e80], kernel="linear", debiased=True)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=12),
    st.sampled_from(["linear", "rbf", "cosine"]),
    st.booleans(),
)
def test_fuzz_cka_only_raises_piami_errors(values, kernel, debiased):
    X = np.array(values, dtype=float).reshape(-1, 2) if len(values) % 2 == 0 else np.array(values)
    try:
        out = cka(X, X, kernel=kernel, debiased=debiased)
    except PiamiError:
        return
    assert np.isfinite(out)
