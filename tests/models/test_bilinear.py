"""The bilinear layer: its forward pass, hooks, and feature recovery from its weights."""

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.instruments.weights import bilinear_eigendecomposition, bilinear_interaction
from piami.models.bilinear import Bilinear, BilinearConfig, fit_bilinear


def _model(seed=0, **kw):
    cfg = BilinearConfig(d_in=kw.pop("d_in", 5), d_hidden=kw.pop("d_hidden", 7), d_out=3, **kw)
    return Bilinear(
        cfg, generator=torch.Generator().manual_seed(seed), device="cpu", dtype="float64"
    )


def test_forward_is_the_quadratic_form_and_hooks_are_named():
    m = _model()
    x = torch.randn(4, 2, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y, cache = m.run_with_cache(x)
    W, V, P = m.weights_numpy()
    B = bilinear_interaction(W, V, P)
    xn = x.numpy()
    assert np.allclose(y.detach().numpy(), np.einsum("bpi,oij,bpj->bpo", xn, B, xn))
    assert set(cache) == {"hook_left", "hook_right", "hook_hidden", "hook_out"}
    assert cache["hook_hidden"].shape == (4, 2, 7)


def test_trained_layer_recovers_planted_features():
    # y = 1.0 (f_0 . x)^2 - 0.5 (f_1 . x)^2 with orthonormal f: the interaction matrix's top two
    # eigenvectors must be f_0, f_1 with eigenvalues 1.0 and -0.5.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a loaded machine
    try:
        _fit_and_check()
    finally:
        torch.set_num_threads(n_threads)


def _fit_and_check():
    rng = np.random.default_rng(0)
    F = np.linalg.qr(rng.normal(size=(6, 2)))[0].T
    X = rng.normal(size=(2048, 6))
    Y = ((X @ F.T) ** 2) @ np.array([[1.0], [-0.5]])
    g = torch.Generator().manual_seed(0)
    m = Bilinear(BilinearConfig(d_in=6, d_hidden=4, d_out=1), generator=g, device="cpu")
    losses = fit_bilinear(m, X, Y, n_steps=600, lr=1e-2, generator=g)
    assert losses[-20:].mean() < 1e-3 * Y.var()
    vals, vecs = bilinear_eigendecomposition(*m.weights_numpy(), direction=[1.0])
    assert np.allclose(vals[:2], [1.0, -0.5], atol=0.02)
    assert np.all(np.abs(np.sum(vecs[:2] * F, 1)) > 0.99)


def test_bad_config_and_input_raise():
    with pytest.raises(PiamiError):
        BilinearConfig(d_in=0, d_hidden=2, d_out=1)
    with pytest.raises(PiamiError):
        _model()(torch.zeros(2, 4, dtype=torch.float64))
    m = _model()
    with pytest.raises(PiamiError):
        fit_bilinear(m, np.zeros((5, 5)), np.zeros((4, 3)), generator=torch.Generator())
