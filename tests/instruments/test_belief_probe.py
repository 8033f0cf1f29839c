"""Belief probes on any model's activations (piami.instruments.belief_probe) and the by-layer
adapters (piami.instruments.by_layer), against independent computations: scikit-learn's least
squares and R², brute-force group means for the k-token baseline, closed-form KLs, pairwise CKA and
TwoNN, a hand-written cross-entropy; and the LLC estimator run on a Hugging Face causal LM."""

from __future__ import annotations

import doctest
import importlib
import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from piami.errors import PiamiError
from piami.instruments import (
    BeliefProbeReport,
    LLCEstimator,
    causal_lm_loss,
    cka,
    cka_by_layer,
    dimension_by_layer,
    flatten_positions,
    mle_dimension,
    next_token_data,
    predictor_kl,
    probe_beliefs,
    twonn_dimension,
)
from piami.instruments.beliefs import kl_rows, probe_r2_by_layer, shuffled_r2
from piami.processes import from_spec


def mess3(n: int = 300, L: int = 8, seed: int = 0):
    proc = from_spec("mess3(x=0.05, a=0.85)")
    s = proc.sample(
        n, L + 1, rng=np.random.default_rng(seed), return_beliefs=True, return_probs=True
    )
    return s.tokens[:, :L], s.beliefs[:, 1 : L + 1], s.next_token_probs[:, 1 : L + 1]


def acts_of(beliefs: np.ndarray, seed: int = 1, noise: float = 0.05) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, L, _ = beliefs.shape
    return {
        "exact": beliefs @ rng.normal(size=(3, 6)),
        "noisy": beliefs @ rng.normal(size=(3, 5)) + noise * rng.normal(size=(n, L, 5)),
        "noise": rng.normal(size=(n, L, 4)),
    }


# -- probe_beliefs -------------------------------------------------------------------------------


def test_probe_r2_equals_scikit_learn_least_squares_on_the_held_out_half():
    tokens, beliefs, _ = mess3()
    acts = acts_of(beliefs)
    rep = probe_beliefs(acts, beliefs, tokens, fit_frac=0.6, random_state=0)
    n_fit = round(0.6 * len(tokens))
    assert (rep.n_fit_seqs, rep.n_score_seqs, rep.seq_len) == (n_fit, 300 - n_fit, 8)
    y_fit, y_test = beliefs[:n_fit].reshape(-1, 3), beliefs[n_fit:].reshape(-1, 3)
    flat = {
        k: (a[:n_fit].reshape(-1, a.shape[-1]), a[n_fit:].reshape(-1, a.shape[-1]))
        for k, a in acts.items()
    }
    for name, (a, b) in flat.items():
        pred = LinearRegression().fit(a, y_fit).predict(b)
        expected = r2_score(y_test, pred, multioutput="variance_weighted")
        assert rep.r2[name] == pytest.approx(expected, abs=1e-9), name
        np.testing.assert_allclose(rep.predictions[name], pred, atol=1e-9)
    both = [np.hstack([f[i] for f in flat.values()]) for i in (0, 1)]
    pred = LinearRegression().fit(both[0], y_fit).predict(both[1])
    assert rep.r2_all == pytest.approx(
        r2_score(y_test, pred, multioutput="variance_weighted"), abs=1e-9
    )
    np.testing.assert_array_equal(rep.targets, y_test)
    assert rep.r2["exact"] == pytest.approx(1.0, abs=1e-10)  # an affine image of the beliefs
    assert rep.best == "exact" and rep.r2["noise"] < 0.05


def test_r2_is_held_out_not_in_sample():
    """Noise features almost as many as the fitting rows: in-sample R² near 1, held-out below 0
    (a probe scored on its own fitting rows would fail this)."""
    tokens, beliefs, _ = mess3(n=20, L=4)
    rng = np.random.default_rng(3)
    acts = {"wide": rng.normal(size=(20, 4, 36))}
    rep = probe_beliefs(acts, beliefs, tokens, random_state=0)
    in_sample = LinearRegression().fit(
        acts["wide"][:10].reshape(-1, 36), beliefs[:10].reshape(-1, 3)
    )
    assert in_sample.score(acts["wide"][:10].reshape(-1, 36), beliefs[:10].reshape(-1, 3)) > 0.85
    assert rep.r2["wide"] < 0.0


def test_baseline_equals_brute_force_group_means_over_position_and_window():
    tokens, beliefs, _ = mess3(n=200, L=6, seed=5)
    rep = probe_beliefs({"x": acts_of(beliefs)["noise"]}, beliefs, tokens, last_k=3)
    n_fit = 100
    for k in (1, 2, 3):

        def key(seq, t, k=k):
            return (t, tuple(tokens[seq, max(0, t - k + 1) : t + 1]))

        groups: dict = {}
        for seq, t in itertools.product(range(n_fit), range(6)):
            groups.setdefault(key(seq, t), []).append(beliefs[seq, t])
        overall = beliefs[:n_fit].reshape(-1, 3).mean(axis=0)
        pred = np.array(
            [
                np.mean(groups[key(seq, t)], axis=0) if key(seq, t) in groups else overall
                for seq, t in itertools.product(range(n_fit, 200), range(6))
            ]
        )
        np.testing.assert_allclose(rep.baseline_predictions[k], pred, atol=1e-12)
        y = beliefs[n_fit:].reshape(-1, 3)
        assert rep.baseline_r2[k] == pytest.approx(
            r2_score(y, pred, multioutput="variance_weighted"), abs=1e-10
        )
    assert rep.baseline_r2[1] < rep.baseline_r2[2] < rep.baseline_r2[3] < 1.0


def test_shuffled_null_uses_one_pair_of_permutations_and_scores_nothing():
    tokens, beliefs, _ = mess3(n=400)
    acts = acts_of(beliefs)
    rep = probe_beliefs(acts, beliefs, tokens, random_state=7)
    rng = np.random.default_rng(7)
    y_fit, y_test = beliefs[:200].reshape(-1, 3), beliefs[200:].reshape(-1, 3)
    pf, pt = rng.permutation(len(y_fit)), rng.permutation(len(y_test))
    for name, a in acts.items():
        a_fit, a_test = a[:200].reshape(-1, a.shape[-1]), a[200:].reshape(-1, a.shape[-1])
        pred = LinearRegression().fit(a_fit, y_fit[pf]).predict(a_test)
        expected = r2_score(y_test[pt], pred, multioutput="variance_weighted")
        assert rep.shuffled_r2[name] == pytest.approx(expected, abs=1e-9)
        assert abs(rep.shuffled_r2[name]) < 0.01  # about -d / n_fit
    assert rep.r2["exact"] > 0.99 > rep.shuffled_r2_all


def test_matches_the_belief_geometry_instruments_bit_for_bit():
    """The contract belief-geometry relies on: the same numbers as probe_r2_by_layer and
    shuffled_r2 on the two sets side by side (float32 activations, as residual_stream gives)."""
    tokens, beliefs, _ = mess3(n=200, L=5)
    acts = {k: v.astype(np.float32) for k, v in acts_of(beliefs).items()}
    rep = probe_beliefs(acts, beliefs, tokens, random_state=np.random.default_rng([0, 3]))
    fit = [a[:100].reshape(-1, a.shape[-1]) for a in acts.values()]
    test = [a[100:].reshape(-1, a.shape[-1]) for a in acts.values()]
    y_fit, y_test = beliefs[:100].reshape(-1, 3), beliefs[100:].reshape(-1, 3)
    r2, preds = probe_r2_by_layer(fit, test, y_fit, y_test)
    assert [rep.r2[n] for n in acts] + [rep.r2_all] == r2
    assert np.array_equal(rep.predictions["noise"], preds["final"])
    assert np.array_equal(rep.prediction_all, preds["concat"])
    assert rep.shuffled_r2_all == shuffled_r2(
        fit, test, y_fit, y_test, np.random.default_rng([0, 3])
    )


def test_torch_and_numpy_inputs_agree_and_summary_is_plain_numbers():
    tokens, beliefs, _ = mess3(n=60)
    acts = acts_of(beliefs)
    a = probe_beliefs(acts, beliefs, tokens, random_state=1)
    b = probe_beliefs(
        {k: torch.from_numpy(v) for k, v in acts.items()},
        torch.from_numpy(beliefs),
        torch.from_numpy(tokens),
        random_state=1,
    )
    assert isinstance(a, BeliefProbeReport) and a.r2 == b.r2 and a.baseline_r2 == b.baseline_r2
    s = a.summary()
    assert s["best"] == a.best and s["r2_all_minus_baseline"] == a.r2_all - a.baseline_r2[3]
    assert all(isinstance(v, float) for v in s["r2"].values())


def _bad_probe_inputs():
    tokens, beliefs, _ = mess3(n=20, L=4)
    acts = {"x": acts_of(beliefs)["noisy"]}
    return tokens, beliefs, acts


@pytest.mark.parametrize(
    "change",
    [
        {"activations": {}},
        {"activations": [np.zeros((20, 4, 3))]},
        {"activations": {"x": np.zeros((20, 3, 3))}},
        {"activations": {"x": np.zeros((20, 4))}},
        {"activations": {"x": np.full((20, 4, 3), np.nan)}},
        {"activations": {1: np.zeros((20, 4, 3))}},
        {"beliefs": np.zeros((20, 4))},
        {"beliefs": np.full((20, 4, 3), np.inf)},
        {"tokens": np.zeros((20, 5), dtype=int)},
        {"tokens": np.zeros((20, 4))},
        {"tokens": -np.ones((20, 4), dtype=int)},
        {"n_symbols": 1},
        {"fit_frac": 1.0},
        {"fit_frac": 0.01},
        {"fit_frac": True},
        {"last_k": 0},
        {"random_state": 1.5},
    ],
)
def test_bad_input_raises_a_piami_error(change):
    tokens, beliefs, acts = _bad_probe_inputs()
    kwargs = {"activations": acts, "beliefs": beliefs, "tokens": tokens} | change
    with pytest.raises(PiamiError):
        probe_beliefs(**kwargs)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 6),
    L=st.integers(0, 4),
    d=st.integers(0, 3),
    k=st.integers(0, 3),
    frac=st.floats(allow_nan=True, allow_infinity=True),
)
def test_fuzzed_shapes_either_work_or_raise_a_piami_error(n, L, d, k, frac):
    rng = np.random.default_rng(0)
    try:
        rep = probe_beliefs(
            {"x": rng.normal(size=(n, L, d))},
            rng.random((n, L, k)),
            rng.integers(0, 2, (n, L)),
            fit_frac=frac,
        )
    except PiamiError:
        return
    assert rep.n_fit_seqs + rep.n_score_seqs == n


# -- predictor_kl -------------------------------------------------------------------------------


def test_predictor_kl_against_closed_forms():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    assert np.allclose(predictor_kl(np.log(p[1:]) + 3.0, p[1:]), 0.0, atol=1e-15)  # q = p
    logits = np.array([[0.0, math.log(3.0), 5.0], [0.0, 0.0, 0.0]])
    q0 = np.exp(logits[0]) / np.exp(logits[0]).sum()
    expected = [
        0.5 * math.log(0.5 / q0[0]) + 0.5 * math.log(0.5 / q0[1]),
        sum(v * math.log(3 * v) for v in p[1]),
    ]
    np.testing.assert_allclose(predictor_kl(logits, p), expected, rtol=1e-13)
    got = predictor_kl(torch.tensor(logits, dtype=torch.float32)[None], p[None])  # torch, 3-D
    assert got.shape == (1, 2) and np.allclose(got[0], expected, rtol=1e-6)


def test_predictor_kl_is_kl_rows_of_the_float64_log_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 7, 3)).astype(np.float32)
    p = rng.dirichlet(np.ones(3), size=(50, 7))
    logq = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()
    assert np.array_equal(predictor_kl(logits, p), kl_rows(p, logq))


@pytest.mark.parametrize(
    "logits, p",
    [
        (np.zeros((2, 3)), np.zeros((2, 4))),
        (np.zeros((2, 3), dtype=int), np.full((2, 3), 1 / 3)),
        (np.full((2, 3), np.nan), np.full((2, 3), 1 / 3)),
        (np.zeros((2, 3)), -np.ones((2, 3))),
        (np.float64(0.0), np.float64(1.0)),
    ],
)
def test_predictor_kl_bad_input_raises(logits, p):
    with pytest.raises(PiamiError):
        predictor_kl(logits, p)


# -- by-layer adapters ---------------------------------------------------------------------------


def test_cka_by_layer_is_the_pairwise_cka_of_the_flattened_layers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6, 5))
    acts = {"a": x, "b": x @ rng.normal(size=(5, 7)), "c": rng.normal(size=(40, 6, 3))}
    names, m = cka_by_layer(acts)
    flat = flatten_positions(acts)
    assert names == ["a", "b", "c"] and all(
        f.shape == (240, acts[n].shape[-1]) for n, f in flat.items()
    )
    for (i, a), (j, b) in itertools.product(enumerate(names), repeat=2):
        assert m[i, j] == pytest.approx(1.0 if i == j else cka(flat[a], flat[b]), abs=1e-12)
    _, sub = cka_by_layer(acts, kernel="rbf", debiased=True, max_rows=50, random_state=3)
    rows = np.sort(np.random.default_rng(3).choice(240, size=50, replace=False))
    expected = cka(flat["a"][rows], flat["c"][rows], kernel="rbf", debiased=True)
    assert sub[0, 2] == pytest.approx(expected, abs=1e-12) and sub[2, 0] == sub[0, 2]


def test_dimension_by_layer_is_the_estimator_on_each_flattened_layer():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(100, 5, 2)) @ rng.normal(size=(2, 6))  # a 2-D plane in R^6
    acts = {"plane": torch.from_numpy(plane), "cloud": rng.normal(size=(100, 5, 4))}
    dims = dimension_by_layer(acts)
    assert dims["plane"].dimension == twonn_dimension(plane.reshape(-1, 6)).dimension
    assert abs(dims["plane"].dimension - 2) < 0.3 and abs(dims["cloud"].dimension - 4) < 0.6
    mle = dimension_by_layer(acts, estimator="mle", max_rows=200, random_state=0, k=10)
    rows = np.sort(np.random.default_rng(0).choice(500, size=200, replace=False))
    assert (
        mle["cloud"].dimension == mle_dimension(acts["cloud"].reshape(-1, 4)[rows], k=10).dimension
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: cka_by_layer({}),
        lambda: cka_by_layer({"a": np.zeros((3, 4))}),
        lambda: cka_by_layer({"a": np.zeros((3, 4, 2)), "b": np.zeros((3, 5, 2))}),
        lambda: cka_by_layer({"a": np.ones((3, 4, 2))}, max_rows=2),
        lambda: dimension_by_layer({"a": np.ones((3, 4, 2))}, estimator="pca"),
        lambda: next_token_data(np.zeros((3, 1), dtype=int)),
        lambda: next_token_data(np.zeros((3, 4))),
        lambda: causal_lm_loss("logits", torch.zeros(2, 3, dtype=torch.long)),
        lambda: causal_lm_loss(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long)),
    ],
)
def test_adapters_bad_input_raises_a_piami_error(call):
    with pytest.raises(PiamiError):
        call()


def test_causal_lm_loss_is_the_mean_next_token_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, 5, generator=g, dtype=torch.float64)
    inputs, targets = next_token_data(torch.randint(0, 5, (4, 7), generator=g))
    assert inputs.shape == targets.shape == (4, 6) and inputs.dtype == torch.long
    by_hand = -np.mean(
        [
            logits[b, t, targets[b, t]].item()
            - math.log(sum(math.exp(v) for v in logits[b, t].tolist()))
            for b in range(4)
            for t in range(6)
        ]
    )
    for out in (logits, SimpleNamespace(logits=logits), (logits, None)):
        assert float(causal_lm_loss(out, targets)) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:There is a performance drop")  # vmap over sdpa: slow path
def test_llc_estimator_runs_on_a_hugging_face_causal_lm():
    """The adapters make LLCEstimator.fit work on a transformers model: its reference loss is the
    same function's as the piami model it was exported from, and the estimate is finite."""
    pytest.importorskip("transformers")
    from piami.models import Transformer, TransformerConfig, to_huggingface

    cfg = TransformerConfig(n_layers=1, d_model=8, n_heads=2, d_head=4, d_mlp=8, n_ctx=6, d_vocab=3)
    model = Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")
    hf = to_huggingface(model)
    data = next_token_data(np.random.default_rng(0).integers(0, 3, (64, 7)))
    settings_ = dict(
        step_size=1e-4, gamma=100.0, n_chains=2, n_burnin=5, n_draws=10, batch_size=16, device="cpu"
    )
    est = LLCEstimator(**settings_, random_state=0).fit(hf, data, causal_lm_loss)
    with torch.no_grad():
        expected = float(causal_lm_loss(model(data[0]), data[1]))
    assert est.reference_loss_ == pytest.approx(expected, abs=1e-6)
    assert np.isfinite(est.llc_mean_) and est.diagnostics_["independent_batches"]


def test_module_examples_run():
    for name in ("piami.instruments.belief_probe", "piami.instruments.by_layer"):
        result = doctest.testmod(importlib.import_module(name))
        assert result.attempted > 0 and result.failed == 0, name
