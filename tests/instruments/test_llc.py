"""LLCEstimator: known answers (regular quadratics), agreement of its three forms, burn-in and
reference-loss bookkeeping, divergence handling, determinism, diagnostics and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import DivergenceError, PiamiError
from piami.instruments.learning_coefficient import LLCEstimator
from piami.instruments.sgld import geweke_z, split_rhat
from piami.theory.learning_coefficient import deep_linear_rlct


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine two spinning threads are many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


HESS = torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0, 3.0], dtype=torch.float64)


def quadratic(w):
    return 0.5 * (HESS * w**2).sum(dim=1)


def small(**kw):
    base = dict(
        step_size=2e-4,
        n_beta=1000.0,
        n_chains=8,
        n_draws=1500,
        n_burnin=300,
        device="cpu",
        dtype="float64",
    )
    base.update(kw)
    return LLCEstimator(**base)


@pytest.mark.parametrize("sampler", ["sgld", "rmsprop_sgld"])
def test_regular_quadratic_gives_half_the_dimension(sampler):
    # K = 1/2 w^T H w in d = 6: lambda = 3. The Euler discretization inflates the variance along
    # curvature c = n beta h by 1 / (1 - eps c / 4): <= 4% here (2% on average); the chains'
    # standard error is about 3%, so 10% is about 3 standard errors away.
    est = small(sampler=sampler, step_size=5e-5 if sampler == "sgld" else 1e-3, n_draws=3000)
    est.fit_flat(quadratic, torch.zeros(6))
    assert est.llc_mean_ == pytest.approx(3.0, rel=0.10)
    assert est.loss_trace_.shape == (8, 3300)
    assert est.diagnostics_["r_hat"] < 1.1
    assert not est.diagnostics_["divergence"]


def _linear_data(n=400, d_in=3, d_out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(4, d_in, generator=g)
    w2 = torch.randn(d_out, 4, generator=g)
    x = torch.randn(n, d_in, generator=g)
    return [w1, w2], (x, x @ (w2 @ w1).T)


@pytest.mark.parametrize("batch", [50, 4, None])  # Gram form; 4 < 3 + 2: direct; full data
def test_module_form_equals_deep_linear_fast_path(batch):
    ws, data = _linear_data()
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 2, bias=False)
    )
    with torch.no_grad():
        model[0].weight.copy_(ws[0])
        model[1].weight.copy_(ws[1])

    def loss_fn(out, y):
        return 0.5 * (out - y).square().sum(dim=1).mean()

    kw = dict(
        step_size=1e-4,
        n_chains=3,
        n_draws=40,
        n_burnin=10,
        batch_size=batch,
        device="cpu",
        dtype="float64",
        random_state=3,
    )
    a = LLCEstimator(**kw).fit(model, data, loss_fn)
    b = LLCEstimator(**kw).fit_deep_linear(ws, data)
    np.testing.assert_allclose(a.loss_trace_, b.loss_trace_, rtol=1e-9, atol=1e-12)
    assert a.llc_mean_ == pytest.approx(b.llc_mean_, rel=1e-9)
    # the flat form with data: same numbers again
    sizes = [12, 8]

    def flat_loss(w, x, y):
        w1 = w[:, :12].reshape(-1, 4, 3)
        w2 = w[:, 12:].reshape(-1, 2, 4)
        out = torch.bmm(torch.bmm(x, w1.transpose(1, 2)), w2.transpose(1, 2))
        return 0.5 * (out - y).square().sum(dim=2).mean(dim=1)

    c = LLCEstimator(**kw).fit_flat(flat_loss, torch.cat([w.reshape(-1) for w in ws]), data=data)
    assert sum(sizes) == 20
    np.testing.assert_allclose(c.loss_trace_, b.loss_trace_, rtol=1e-9, atol=1e-12)


def test_burnin_excluded_and_reference_loss_on_full_data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 2, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-1.0]], dtype=torch.float64) + 0.3 * torch.randn(
        300, 1, generator=g, dtype=torch.float64
    )
    w_star = torch.tensor([0.7, -0.4], dtype=torch.float64)  # not the minimum: L_n(w*) > 0

    def loss(w, xb, yb):
        return 0.5 * ((xb @ w.unsqueeze(-1)) - yb).square().mean(dim=(1, 2))

    est = small(n_chains=2, n_draws=50, n_burnin=20, batch_size=32, n_beta=None)
    est.fit_flat(loss, w_star, data=(x, y))
    full = float(0.5 * ((x @ w_star[:, None]) - y).square().mean())
    assert est.reference_loss_ == pytest.approx(full, rel=1e-12)
    assert est.n_beta_ == pytest.approx(300 / np.log(300))
    manual = est.n_beta_ * (est.loss_trace_[:, 20:].mean(axis=1) - full)
    np.testing.assert_allclose(est.llc_per_chain_, manual, rtol=1e-12)
    assert est.loss_trace_.shape == (2, 70)


def test_same_seed_same_numbers_other_seed_other_numbers():
    a = small(n_draws=50, n_burnin=5).fit_flat(quadratic, torch.zeros(6))
    b = small(n_draws=50, n_burnin=5).fit_flat(quadratic, torch.zeros(6))
    c = small(n_draws=50, n_burnin=5, random_state=99).fit_flat(quadratic, torch.zeros(6))
    np.testing.assert_array_equal(a.loss_trace_, b.loss_trace_)
    assert not np.array_equal(a.loss_trace_, c.loss_trace_)


def test_deprecated_seed_and_generator_warn_and_give_the_same_numbers():
    new = small(n_draws=20, n_burnin=0, random_state=7).fit_flat(quadratic, torch.zeros(6))
    with pytest.warns(DeprecationWarning, match="random_state"):
        old = small(n_draws=20, n_burnin=0, seed=7)
    assert old.get_params()["random_state"] == 7
    np.testing.assert_array_equal(
        old.fit_flat(quadratic, torch.zeros(6)).loss_trace_, new.loss_trace_
    )
    with pytest.warns(DeprecationWarning, match="random_state"):
        gen = small(n_draws=20, n_burnin=0).fit_flat(
            quadratic, torch.zeros(6), generator=torch.Generator().manual_seed(7)
        )
    np.testing.assert_array_equal(gen.loss_trace_, new.loss_trace_)


def test_one_diverging_chain_is_flagged_and_excluded():
    def loss(w):
        out = quadratic(w)
        bad = torch.zeros_like(out)
        if len(out) > 1:  # the reference loss (one row) stays finite; chain 0 never does
            bad[0] = float("nan")
        return out + bad

    est = small(n_chains=3, n_draws=40, n_burnin=5)
    with pytest.warns(RuntimeWarning, match="excluded"):
        est.fit_flat(loss, torch.zeros(6))
    assert est.diagnostics_["diverged"] == [True, False, False]
    assert est.diagnostics_["divergence"] is True
    assert np.isnan(est.llc_per_chain_[0]) and np.isfinite(est.llc_mean_)
    assert est.llc_mean_ == pytest.approx(np.mean(est.llc_per_chain_[1:]))


def test_all_chains_diverging_names_the_step_size():
    ws, data = _linear_data()
    est = LLCEstimator(step_size=10.0, n_chains=2, n_draws=200, n_burnin=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow warnings on the way
        with pytest.raises(DivergenceError, match="step_size"):
            est.fit_deep_linear(ws, data)


@pytest.mark.slow
def test_deep_linear_small_case_near_aoyagi():
    # widths (3, 3, 3), rank 1, balanced factorization: lambda = 3.5 (multiplicity 2).
    # Few draws here (the calibration experiment runs more): 20% allows for the chains' spread.
    g = torch.Generator().manual_seed(0)
    q = [torch.linalg.qr(torch.randn(3, 1, generator=g))[0] for _ in range(3)]
    ws = [q[1] @ q[0].T, q[2] @ q[1].T]
    x = torch.randn(2000, 3, generator=g)
    y = x @ (ws[1] @ ws[0]).T
    est = LLCEstimator(
        sampler="rmsprop_sgld",
        step_size=1e-3,
        n_chains=4,
        n_burnin=500,
        n_draws=2000,
        batch_size=200,
        device="cpu",
    )
    est.fit_deep_linear(ws, (x, y))
    assert est.llc_mean_ == pytest.approx(deep_linear_rlct([3, 3, 3], 1)[0], rel=0.2)


def test_rhat_and_geweke_detect_disagreement_and_drift():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 2000))
    assert split_rhat(iid) < 1.01
    assert split_rhat(iid + np.arange(4)[:, None]) > 1.5
    assert abs(geweke_z(iid[0])) < 3
    assert abs(geweke_z(iid[0] + np.linspace(0, 3, 2000))) > 3


def test_unfitted_estimator_stores_only_hyperparameters():
    est = LLCEstimator(step_size=1e-3, n_chains=2)
    assert est.step_size == 1e-3 and est.n_chains == 2
    assert not hasattr(est, "llc_mean_")
    assert small(n_draws=20, n_burnin=0).fit_flat(quadratic, torch.zeros(6)).llc_mean_ is not None


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(
        [
            "step_size",
            "gamma",
            "n_chains",
            "n_draws",
            "n_burnin",
            "batch_size",
            "n_beta",
            "rmsprop_delta",
            "rmsprop_alpha",
            "sampler",
            "dtype",
            "random_state",
        ]
    ),
    value=st.one_of(
        st.just(-1), st.just(0.0), st.just(float("nan")), st.just("x"), st.just(2.5), st.just(True)
    ),
)
def test_bad_hyperparameters_raise_piami_error(name, value):
    kw = {"n_draws": 10, "n_burnin": 0}
    kw[name] = value
    est = small(**kw)
    try:
        est.fit_flat(quadratic, torch.zeros(6))
    except PiamiError:
        return
    # a few values are legal for some fields (e.g. gamma = 0, n_burnin = 0): then it must work
    assert np.isfinite(est.llc_mean_)


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.fit_flat(quadratic, torch.zeros(2, 3)),
        lambda e: e.fit_flat(lambda w: w, torch.zeros(6)),  # wrong output shape
        lambda e: e.fit_flat(quadratic, torch.zeros(6), n=None) if e.n_beta is None else None,
        lambda e: e.fit_deep_linear(
            [torch.zeros(3, 2), torch.zeros(3, 2)], (torch.zeros(5, 2), torch.zeros(5, 3))
        ),
        lambda e: e.fit_deep_linear([torch.zeros(3, 2)], (torch.zeros(5, 2), torch.zeros(4, 3))),
        lambda e: e.fit_deep_linear([torch.zeros(3, 2)], torch.zeros(5, 2)),
        lambda e: e.fit("not a module", (torch.zeros(5, 2),), lambda o: o.sum()),
        lambda e: e.set_params(random_state=1.5).fit_flat(quadratic, torch.zeros(6)),
    ],
)
def test_bad_input_raises_piami_error(call):
    est = LLCEstimator(n_draws=10, n_burnin=0, device="cpu")
    with pytest.raises(PiamiError):
        out = call(est)
        if out is None:  # the n_beta=None case: no data and no n
            est.fit_flat(quadratic, torch.zeros(6))


def test_leimkuhler_matthews_removes_the_step_size_bias_on_a_gaussian():
    # For a quadratic K the Leimkuhler-Matthews noise (xi_t + xi_{t+1}) / 2 leaves the stationary
    # variance exactly 1 / c for any stable step (an OU recursion, solved by hand), while Euler
    # inflates it by 1 / (1 - eps c / 4): at eps = 1e-3 and c = 3000, fourfold in that direction.
    kw = dict(step_size=1e-3, n_draws=3000, n_burnin=300)
    lm = small(integrator="leimkuhler_matthews", **kw).fit_flat(quadratic, torch.zeros(6))
    euler = small(integrator="euler", **kw).fit_flat(quadratic, torch.zeros(6))
    assert lm.llc_mean_ == pytest.approx(3.0, rel=0.10)
    assert euler.llc_mean_ > 4.0


class _CheckedLinear(torch.nn.Module):
    """A module whose forward pass reads a value of its input (vmap cannot batch ``int(...)``)."""

    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, x):
        if int(x.abs().max() > 1e9):  # a data-dependent check, like a token-range check
            raise ValueError("input out of range")
        return self.lin(x)


def test_unvmappable_module_keeps_chains_independent_with_a_warning():
    # the fallback runs each chain on its own minibatch: the same numbers as the vmapped path
    ws, data = _linear_data()
    lin = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(ws[1] @ ws[0])

    def loss_fn(out, y):
        return 0.5 * (out - y).square().sum(dim=1).mean()

    kw = dict(step_size=1e-4, n_chains=3, n_draws=20, n_burnin=5, batch_size=50, device="cpu")
    plain = LLCEstimator(dtype="float64", **kw).fit(lin, data, loss_fn)
    with pytest.warns(RuntimeWarning, match="own minibatch"):
        looped = LLCEstimator(dtype="float64", **kw).fit(_CheckedLinear(lin), data, loss_fn)
    assert plain.diagnostics_["batching"] == "vmap"
    assert looped.diagnostics_["batching"] == "per-chain loop"
    assert looped.diagnostics_["independent_batches"] is True
    np.testing.assert_allclose(looped.loss_trace_, plain.loss_trace_, rtol=1e-10)
    assert not np.allclose(looped.loss_trace_[0], looped.loss_trace_[1])  # chains differ
