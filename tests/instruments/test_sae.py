"""Sparse autoencoders scored on data in superposition with known features."""

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.instruments.sae import (
    SparseAutoencoder,
    explained_variance,
    feature_recovery,
    make_superposition,
    match_directions,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # tiny matrices: with 2 threads on a loaded 2-core machine torch spins ~30x slower
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def superposed():
    # 64 random unit directions in R^32 (2x overcomplete), each firing w.p. 3/64 with magnitude
    # U(0.5, 1.5): about 3 features per sample.
    return make_superposition(
        12000, n_features=64, d=32, p_fire=3 / 64, rng=np.random.default_rng(0)
    )


def test_topk_sae_recovers_90_percent_of_features_above_cos_09(superposed):
    X, _, U = superposed
    sae = SparseAutoencoder(128, kind="topk", k=4, n_steps=300, device="cpu").fit(X)
    rec = feature_recovery(sae.W_dec_, U)
    assert rec["recovered"] >= 0.9
    assert rec["mmcs"] > 0.95
    s = sae.health(X)
    assert sae.score(X) == s["explained_variance"]
    assert abs(s["l0"] - 4) < 0.5  # TopK fixes the L0 (a latent can be active at 0 after ReLU)
    assert s["explained_variance"] > 0.8
    assert np.allclose(np.linalg.norm(sae.W_dec_, axis=1), 1.0)


def test_l1_sae_recovers_features(superposed):
    X, _, U = superposed
    sae = SparseAutoencoder(128, kind="l1", l1_coefficient=2.0, n_steps=600, device="cpu").fit(X)
    assert feature_recovery(sae.W_dec_, U)["recovered"] >= 0.9


def test_random_dictionary_scores_low(superposed):
    _, _, U = superposed
    R = np.random.default_rng(1).normal(size=(128, 32))
    assert feature_recovery(R, U)["recovered"] == 0.0


def test_same_seed_same_weights(superposed):
    X = superposed[0][:2000]
    a = SparseAutoencoder(16, k=2, n_steps=20, device="cpu", random_state=3).fit(X)
    b = SparseAutoencoder(16, k=2, n_steps=20, device="cpu", random_state=3).fit(X)
    assert np.array_equal(a.W_dec_, b.W_dec_)
    with pytest.warns(DeprecationWarning, match="random_state"):
        old = SparseAutoencoder(16, k=2, n_steps=20, device="cpu", seed=3)
    assert old.random_state == 3  # the old keyword maps to the new one: the same numbers
    assert np.array_equal(old.fit(X).W_dec_, a.W_dec_)
    with pytest.raises(PiamiError, match="random_state"):
        SparseAutoencoder(16, seed=3, random_state=3)


def test_matching_and_explained_variance_closed_forms():
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.normal(size=(6, 6)))[0][:4]
    perm = np.array([2, 0, 3, 1])
    cos, ti, fi = match_directions(-3.0 * U[perm], U)
    assert np.allclose(cos, 1.0) and np.array_equal(perm[fi], ti)
    X = rng.normal(size=(100, 3))
    assert explained_variance(X, X) == 1.0
    assert abs(explained_variance(X, np.tile(X.mean(0), (100, 1)))) < 1e-12


@pytest.mark.parametrize(
    "kw",
    [
        dict(n_latents=0),
        dict(n_latents=8, kind="relu"),
        dict(n_latents=8, k=9),
        dict(n_latents=8, lr=-1),
    ],
)
def test_bad_hyperparameters_raise(kw):
    with pytest.raises(PiamiError):
        SparseAutoencoder(**kw, n_steps=2, device="cpu").fit(
            np.random.default_rng(0).normal(size=(20, 3))
        )


def test_bad_data_and_unfitted_raise():
    with pytest.raises(PiamiError):
        SparseAutoencoder(4, k=2, device="cpu").fit(np.ones((20, 3)))
    with pytest.raises(PiamiError):
        SparseAutoencoder(4, k=2).encode(np.ones((2, 3)))
    with pytest.raises(PiamiError):
        make_superposition(10, n_features=4, d=2, p_fire=1.5, rng=np.random.default_rng(0))
