"""Weight instruments: effective ranks, teacher-mode matching, bilinear eigenfeatures."""

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.instruments.weights import (
    bilinear_eigendecomposition,
    bilinear_interaction,
    compare_modes,
    effective_rank,
    end_to_end,
    recovered_features,
    singular_spectrum,
)


def _orth(rng, n, m):
    return np.linalg.qr(rng.normal(size=(n, m)))[0]


@pytest.mark.parametrize("method", ["entropy", "stable", "participation"])
def test_effective_rank_of_r_equal_modes_is_r(method):
    rng = np.random.default_rng(0)
    W = 2.5 * _orth(rng, 20, 5) @ _orth(rng, 12, 5).T
    assert abs(effective_rank(W, method=method) - 5) < 1e-9


def test_effective_rank_entropy_closed_form_and_spectrum():
    rng = np.random.default_rng(1)
    s = np.array([4.0, 2.0, 1.0, 1.0])
    W = _orth(rng, 6, 4) @ np.diag(s) @ _orth(rng, 5, 4).T
    p = s / s.sum()
    assert np.allclose(singular_spectrum(W)[:4], s)
    assert abs(effective_rank(W) - np.exp(-np.sum(p * np.log(p)))) < 1e-9


def test_compare_modes_recovers_a_permuted_noisy_teacher():
    rng = np.random.default_rng(2)
    U, V = _orth(rng, 8, 3), _orth(rng, 10, 3)
    S = np.array([3.0, 2.0, 1.0])
    M = U @ np.diag(S) @ V.T + 1e-3 * rng.normal(size=(8, 10))
    out = compare_modes(M, U[:, [2, 0, 1]], S[[2, 0, 1]], V[:, [2, 0, 1]])
    assert np.allclose(out["s_learned"], S[[2, 0, 1]], atol=1e-2)
    assert np.all(out["left_cos"] > 0.999) and np.all(out["right_cos"] > 0.999)
    Ws = [rng.normal(size=(4, 3)), rng.normal(size=(5, 4))]
    assert np.allclose(end_to_end(Ws), Ws[1] @ Ws[0])


def test_bilinear_interaction_reproduces_the_layer_exactly():
    rng = np.random.default_rng(3)
    W, V, P = rng.normal(size=(7, 5)), rng.normal(size=(7, 5)), rng.normal(size=(3, 7))
    x = rng.normal(size=(11, 5))
    y = ((x @ W.T) * (x @ V.T)) @ P.T
    B = bilinear_interaction(W, V, P)
    assert np.allclose(np.einsum("ni,oij,nj->no", x, B, x), y)
    assert np.allclose(B, np.transpose(B, (0, 2, 1)))


def test_bilinear_eigendecomposition_of_a_planted_quadratic_form():
    rng = np.random.default_rng(4)
    F = _orth(rng, 6, 2).T  # two orthonormal features
    # one hidden unit per feature, W_h = V_h = f_h, P = coefficients (2.0, -0.5)
    W = F.copy()
    P = np.array([[2.0, -0.5]])
    vals, vecs = bilinear_eigendecomposition(W, W, P, direction=[1.0])
    assert np.allclose(vals[:2], [2.0, -0.5]) and np.allclose(vals[2:], 0, atol=1e-12)
    assert np.allclose(recovered_features(vecs[:2], F), 1.0)
    all_vals, _ = bilinear_eigendecomposition(W, W, P)
    assert all_vals.shape == (1, 6)


def test_bad_input_raises():
    with pytest.raises(PiamiError):
        effective_rank(np.zeros((3, 3)))
    with pytest.raises(PiamiError):
        effective_rank(np.eye(3), method="nuclear")
    with pytest.raises(PiamiError):
        bilinear_interaction(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(PiamiError):
        end_to_end([np.ones((3, 2)), np.ones((3, 4))])
    with pytest.raises(PiamiError):
        compare_modes(np.eye(3), np.eye(3)[:, :2], [1.0], np.eye(3)[:, :2])
