"""Fourier instruments on Z_p, checked against tables built from known frequencies."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError
from piami.instruments import fourier as fo


def wave_embedding(p, freqs, d_model, rng, noise=0.0):
    """W_E[x] = sum_k cos(w_k x) u_k + sin(w_k x) v_k (+ noise); exact energies
    (p/2)(|u|^2+|v|^2)."""
    x = np.arange(p)[:, None]
    W = noise * rng.standard_normal((p + 1, d_model))  # row p is '='
    energy = np.zeros(p // 2 + 1)
    for k in freqs:
        u, v = rng.standard_normal(d_model), rng.standard_normal(d_model)
        w = 2 * np.pi * k / p
        W[:p] += np.cos(w * x) * u + np.sin(w * x) * v
        energy[k] = p / 2 * (u @ u + v @ v)
    return W, energy


def cos_logits(p, alphas):
    """logits[a, b, c] = sum_k alpha_k cos(w_k (a + b - c)): Nanda et al. 2023, eq. 1."""
    a, b, c = np.meshgrid(np.arange(p), np.arange(p), np.arange(p), indexing="ij")
    return sum(al * np.cos(2 * np.pi * k / p * (a + b - c)) for k, al in alphas.items())


@pytest.mark.parametrize("p", [2, 3, 4, 5, 8, 113])
def test_basis_is_orthonormal_with_right_frequencies(p):
    basis, freqs = fo.fourier_basis(p)
    np.testing.assert_allclose(basis @ basis.T, np.eye(p), atol=1e-12)
    assert np.bincount(freqs).tolist()[:1] == [1]
    assert freqs.max() == p // 2 and fo.n_frequencies(p) == p // 2 + 1


@pytest.mark.parametrize("p", [7, 10, 31])
def test_parseval_and_agreement_with_complex_fft(p):
    rng = np.random.default_rng(p)
    x = rng.standard_normal((p, 6))
    e = fo.frequency_spectrum(x)
    np.testing.assert_allclose(e.sum(), (x**2).sum(), rtol=1e-12)
    # independent: |X_k|^2 / p from numpy's complex FFT, doubled for k and -k except 0 and Nyquist
    X = np.fft.fft(x, axis=0)
    ref = (np.abs(X[: p // 2 + 1]) ** 2).sum(axis=1) / p
    ref[1 : (p + 1) // 2] *= 2
    np.testing.assert_allclose(e, ref, rtol=1e-10)
    np.testing.assert_allclose(fo.frequency_spectrum(x.T, axis=1), e, rtol=1e-12)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_embedding_from_known_frequencies_is_detected_exactly(noise):
    p, keys = 59, [4, 11, 17, 25]
    W, energy = wave_embedding(p, keys, 32, np.random.default_rng(0), noise=noise)
    spec = fo.embedding_spectrum(W, p)
    if noise == 0.0:
        np.testing.assert_allclose(spec, energy, atol=1e-9)
    assert fo.key_frequencies(spec).tolist() == keys
    # capped below the true set, no gap lies within reach: nothing is claimed
    assert fo.key_frequencies(spec, max_keys=2).size == 0


def test_flat_spectrum_has_no_key_frequencies():
    assert fo.key_frequencies(np.ones(20)).size == 0
    assert fo.key_frequencies(np.zeros(20)).size == 0
    spec = fo.frequency_spectrum(np.random.default_rng(1).standard_normal((113, 128)))
    assert fo.key_frequencies(spec).size == 0  # white noise: no factor-4 gap at p=113, d=128


def test_sum_basis_is_orthonormal_and_projection_is_a_projector():
    p = 12  # even p: the Nyquist wave has a cosine only
    dirs = fo.sum_frequency_basis(p, [1, 3, 6]).reshape(-1, p * p)
    assert dirs.shape[0] == 5
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(5), atol=1e-12)
    x = np.random.default_rng(2).standard_normal((p, p, 4))
    P = fo.project_sum_frequencies(x, [1, 3])
    np.testing.assert_allclose(fo.project_sum_frequencies(P, [1, 3]), P, atol=1e-12)
    R = fo.remove_sum_frequencies(x, [1, 3])
    np.testing.assert_allclose(((P - P.mean((0, 1))) * R).sum(), 0.0, atol=1e-10)


def test_cosine_logits_are_explained_completely_by_their_frequencies():
    p, alphas = 23, {2: 3.0, 5: 2.0, 9: 1.0}
    L = cos_logits(p, alphas)
    held_out = np.random.default_rng(3).random((p, p)) < 0.7
    keys = list(alphas)
    assert fo.logit_variance_explained(L, keys, held_out) == pytest.approx(1.0, abs=1e-12)
    # a subset of the frequencies explains its share of sum alpha^2
    assert fo.logit_variance_explained(L, [2, 9]) == pytest.approx(10 / 14, abs=1e-12)
    # a per-(a, b) shift and a per-answer bias are not variance of the logits
    shifted = L + np.random.default_rng(4).standard_normal((p, p, 1)) + np.arange(p)
    assert fo.logit_variance_explained(shifted, keys) == pytest.approx(1.0, abs=1e-12)
    assert fo.grid_accuracy(L) == 1.0
    assert fo.restricted_loss(L, keys) == pytest.approx(fo.grid_cross_entropy(L), abs=1e-12)
    assert fo.excluded_loss(L, keys, held_out) == pytest.approx(np.log(p), abs=1e-12)
    assert fo.excluded_loss(L, [2]) > fo.grid_cross_entropy(L)


def test_grid_cross_entropy_matches_torch():
    p = 7
    L = np.random.default_rng(5).standard_normal((p, p, p))
    target = (np.arange(p)[:, None] + np.arange(p)[None, :]) % p
    mask = np.random.default_rng(6).random((p, p)) < 0.5
    ref = F.cross_entropy(torch.tensor(L[mask]), torch.tensor(target[mask])).item()
    assert fo.grid_cross_entropy(torch.tensor(L), mask) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: fo.fourier_basis(1),
        lambda: fo.fourier_basis(5.0),
        lambda: fo.embedding_spectrum(np.zeros((4, 3)), 5),
        lambda: fo.key_frequencies(np.array([1.0, -1.0, 2.0])),
        lambda: fo.key_frequencies(np.ones(5), min_gap=1.0),
        lambda: fo.sum_frequency_basis(7, [0]),
        lambda: fo.sum_frequency_basis(7, [4]),
        lambda: fo.sum_frequency_basis(7, [2, 2]),
        lambda: fo.project_sum_frequencies(np.zeros((5, 4)), [1]),
        lambda: fo.grid_cross_entropy(np.zeros((5, 5, 6))),
        lambda: fo.grid_cross_entropy(np.zeros((5, 5, 5)), np.zeros((5, 5), bool)),
        lambda: fo.logit_variance_explained(np.zeros((5, 5, 5)), [1]),
        lambda: fo.frequency_spectrum(np.array([1.0, np.nan])),
        lambda: fo.frequency_spectrum("abc"),
    ],
)
def test_bad_input_raises_piami_errors(call):
    with pytest.raises(PiamiError):
        call()


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=4), freq=st.integers(-3, 8))
def test_malformed_tables_raise_piami_errors_or_work(shape, freq):
    x = np.ones(shape)
    try:
        out = fo.project_sum_frequencies(x, [freq])
    except PiamiError:
        return
    assert out.shape == x.shape
