"""The reconstruction-loop experiment: compare() on synthetic measurements (every counted row
passes, and each fails in its own case), its helpers against independent computations (the
derived gap bound against brute-force probes, predictive beliefs against exact word
probabilities, the text map against a per-character loop), and, slow, the quick run passes and
fails with each broken ingredient."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment
from piami.experiments.belief_geometry import Config as BeliefConfig
from piami.experiments.belief_geometry import build_model
from piami.experiments.reconstruction_loop import (
    R2_TOLERANCE,
    Config,
    LoopMeasurements,
    belief_config,
    compare,
    map_text,
    predictive_gap_bound,
    predictive_matrix,
)
from piami.experiments.reconstruction_loop.config import build_network
from piami.instruments.probes import LinearProbe
from piami.processes import from_spec

CFG = Config()  # 4 layers: the final one is L3
LAYERS = ("embed", "L0", "L1", "L2", "L3", "concat")

P_TRUE = "true beliefs: R² from the final residual stream"
P_REC = "reconstructed machine's predictive beliefs: R² from the final residual stream"
P_GAP = "reconstructed minus true predictive beliefs: R² from the final residual stream"
REFUTED = "reconstructed belief vector vs true belief: R² from the final residual stream"
S_LINEAR = "true beliefs read linearly from the reconstructed beliefs (no network)"
C_UNTRAINED = "untrained network's final-layer R² of true beliefs falls below the bar"
C_TRAINED = (
    "trained network carries more of the reconstructed belief vector than the untrained one "
    "(all layers)"
)
C_SHUFFLED = "R² of a probe on shuffled reconstructed beliefs"
T_TRAINED = (
    "text: trained network carries more of the reconstructed belief vector than the untrained "
    "one (all layers)"
)
T_TRAINED_PRED = (
    "text: trained network carries more of the reconstructed predictive beliefs than the "
    "untrained one (final layer)"
)
T_SHUFFLED = "text: R² of a probe on shuffled reconstructed beliefs"
T_MEMORY = "text: reconstructed machine's held-out log-loss is below the symbol frequencies'"


def by_layer(*values: float) -> dict[str, float]:
    return dict(zip(LAYERS, values, strict=True))


def good() -> LoopMeasurements:
    """Measurements like a quick run's: every counted row passes, the refuted row fails."""
    return LoopMeasurements(
        r2={
            "true|trained": by_layer(0.83, 0.997, 0.998, 0.998, 0.998, 0.999),
            "true_predictive|trained": by_layer(0.83, 0.997, 0.998, 0.998, 0.998, 0.999),
            "recon|trained": by_layer(0.24, 0.63, 0.64, 0.65, 0.65, 0.74),
            "recon_predictive|trained": by_layer(0.83, 0.995, 0.996, 0.996, 0.996, 0.997),
            "true|untrained": by_layer(0.83, 0.946, 0.95, 0.955, 0.96, 0.972),
            "true_predictive|untrained": by_layer(0.83, 0.946, 0.95, 0.955, 0.96, 0.972),
            "recon|untrained": by_layer(0.24, 0.45, 0.46, 0.46, 0.46, 0.55),
            "recon_predictive|untrained": by_layer(0.83, 0.94, 0.95, 0.955, 0.957, 0.97),
            "text_recon|trained": by_layer(0.16, 0.55, 0.56, 0.56, 0.56, 0.68),
            "text_recon_predictive|trained": by_layer(0.63, 0.89, 0.89, 0.89, 0.9, 0.92),
            "text_recon|untrained": by_layer(0.16, 0.26, 0.26, 0.26, 0.26, 0.37),
            "text_recon_predictive|untrained": by_layer(0.63, 0.72, 0.72, 0.72, 0.73, 0.79),
        },
        intervals={
            "true": (0.9978, 0.9981),
            "recon_predictive": (0.9958, 0.9962),
            "predictive_gap": (-0.0018, -0.0013),
        },
        network_free={"recon_from_true": 0.30, "true_from_recon": 0.998},
        recon_error={
            "ss_delta": 7.1,
            "sst_true": 1860.0,
            "sst_recon": 1839.0,
            "n_fit": 20000,
            "n_features": 64,
        },
        shuffled={"synthetic": -0.007, "text": -0.008},
        lookup={},
        losses_bits={"text": {"network": 1.39, "machine": 1.36, "unigram": 1.74}},
        machines={
            "synthetic": {"n_states": 71, "max_length": 4},
            "text": {"n_states": 60, "max_length": 3},
        },
    )


def _set(target: str, layer: str, value: float):
    return lambda m: m.r2[target].__setitem__(layer, value)


#: For each counted row, a change to the measurements that fails it (and only it).
BROKEN = {
    P_TRUE: _set("true|trained", "L3", 0.97),
    P_REC: _set("recon_predictive|trained", "L3", 0.982),  # the gap stays within its bound
    P_GAP: _set("true_predictive|trained", "L3", 0.97),  # a gap of 0.026, beyond the bound
    S_LINEAR: lambda m: m.network_free.__setitem__("true_from_recon", 0.9),
    C_UNTRAINED: _set("true|untrained", "L3", 0.99),
    C_TRAINED: _set("recon|untrained", "concat", 0.735),
    C_SHUFFLED: lambda m: m.shuffled.__setitem__("synthetic", 0.05),
    T_TRAINED: _set("text_recon|untrained", "concat", 0.675),
    T_TRAINED_PRED: _set("text_recon_predictive|untrained", "L3", 0.895),
    T_SHUFFLED: lambda m: m.shuffled.__setitem__("text", 0.05),
    T_MEMORY: lambda m: m.losses_bits["text"].__setitem__("machine", 1.70),
}


def test_every_counted_row_passes_on_a_good_run():
    rows = {r.name: r for r in compare(CFG, good())}
    counted = {n: r for n, r in rows.items() if r.kind != "refuted"}
    assert all(r.passed for r in counted.values()), [n for n, r in counted.items() if not r.passed]
    assert rows[REFUTED].kind == "refuted" and rows[REFUTED].passed is False
    kinds = [r.kind for r in rows.values()]
    assert kinds.count("prediction") == 3 and "control" in kinds


def test_every_counted_row_has_a_failing_case():
    names = {r.name for r in compare(CFG, good()) if r.kind != "refuted"}
    assert set(BROKEN) == names


@pytest.mark.parametrize("row", sorted(BROKEN))
def test_each_row_fails_alone(row):
    m = copy.deepcopy(good())
    BROKEN[row](m)
    results = {r.name: r.passed for r in compare(CFG, m) if r.kind != "refuted"}
    assert {name for name, ok in results.items() if ok is not True} == {row}


def test_gap_row_is_not_identified_when_the_reconstruction_is_too_coarse():
    m = good()
    m.recon_error["ss_delta"] = 100.0  # SS(delta) / SST = 5%: a bound of about 0.08
    row = {r.name: r for r in compare(CFG, m)}[P_GAP]
    assert row.passed is None and "too coarse" in row.not_identified


def test_parts_select_their_rows():
    m = good()
    text_only = {r.name for r in compare(Config(synthetic=False), m)}
    assert text_only == {T_TRAINED, T_TRAINED_PRED, T_SHUFFLED, T_MEMORY}
    synthetic_only = {r.name for r in compare(Config(text=False), m)}
    assert synthetic_only.isdisjoint(text_only) and P_TRUE in synthetic_only


def test_gap_bound_is_zero_for_an_exact_reconstruction_and_grows_with_its_error():
    err = dict(ss_delta=0.0, sst_true=100.0, sst_recon=100.0, n_fit=1000, n_features=10)
    assert predictive_gap_bound(err) == pytest.approx(0.0, abs=1e-12)
    # with no error and equal totals the two R² are equal; with error d the bound is, at u = bar,
    # (sqrt(bar S) + d)^2 / S - bar = 2 sqrt(bar) d / sqrt(S) + d^2 / S (the larger side)
    d2 = 0.5 * (1 + 2 * 11 / 1000)
    expect = 2 * math.sqrt(R2_TOLERANCE * d2 / 100) + d2 / 100
    assert predictive_gap_bound({**err, "ss_delta": 0.5}) == pytest.approx(expect, rel=1e-9)
    assert predictive_gap_bound({**err, "ss_delta": 2.0}) > predictive_gap_bound(
        {**err, "ss_delta": 0.5}
    )


def test_gap_bound_holds_for_brute_force_probes():
    """Random features, a target read with R² near the bar, a perturbed copy: the measured gap of
    held-out probe R² stays inside the bound computed from the perturbation alone."""
    rng = np.random.default_rng(0)
    decided = 0
    for trial in range(26):
        n, p, dim = 4000, 16, 5
        X = rng.standard_normal((2 * n, p))
        W = rng.standard_normal((p, dim))
        noise = math.sqrt(R2_TOLERANCE * 0.8 * p)  # true R² about 1 - 0.8 * bar
        y = X @ W + noise * rng.standard_normal((2 * n, dim))
        if trial < 20:  # independent noise, or noise the features explain
            delta = 0.05 * (1 + trial) * rng.standard_normal((2 * n, dim)) * (trial % 2 or X[:, :1])
        else:  # the worst directions: along the true target's own residual, either sign
            resid = y - LinearProbe().fit(X, y).predict(X)
            delta = (-1.0, -0.5, 0.5, 1.0, -0.9, 2.0)[trial - 20] * resid
        y2 = y + delta
        r_true = LinearProbe().fit(X[:n], y[:n]).score(X[n:], y[n:])
        r_rec = LinearProbe().fit(X[:n], y2[:n]).score(X[n:], y2[n:])
        if r_true < 1 - R2_TOLERANCE:
            continue

        def ss(a):
            return float(np.sum((a - a.mean(axis=0)) ** 2))

        err = dict(
            ss_delta=ss(delta[n:]),
            sst_true=ss(y[n:]),
            sst_recon=ss(y2[n:]),
            n_fit=n,
            n_features=p,
        )
        assert abs(r_rec - r_true) <= predictive_gap_bound(err), trial
        decided += 1
    assert decided >= 20


def test_predictive_matrix_gives_exact_word_probabilities():
    proc = from_spec("mess3(x=0.05, a=0.85)")
    V = predictive_matrix(proc.T, 3)
    pi = proc.stationary_distribution()
    words = list(itertools.product(range(3), repeat=3))
    exact = np.array([proc.word_probability(list(w)) for w in words])
    np.testing.assert_allclose(pi @ V, exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(V.sum(axis=1), 1.0, rtol=1e-12)


def test_map_text_matches_a_per_character_rule():
    text = "ALL'S WELL, that ends well!\nÉtude 42\r\n\tyes"

    def rule(c):
        if c in "aeiouAEIOU":
            return 0
        if c.isascii() and c.isalpha():
            return 1
        if c in " \n\r":
            return 2
        return 3

    assert map_text(text).tolist() == [rule(c) for c in text]
    with pytest.raises(PiamiError):
        map_text("")


def test_network_and_bar_are_belief_geometrys():
    assert R2_TOLERANCE == BeliefConfig().r2_tolerance
    bcfg = belief_config(CFG)
    a, b = build_network(CFG, 3), build_model(bcfg)
    assert all(
        np.array_equal(x.detach().numpy(), y.detach().numpy())
        for x, y in zip(a.parameters(), b.parameters(), strict=True)
    )
    assert build_network(CFG, 4).cfg.d_vocab == 4


def test_bad_configs_raise():
    for bad in (
        {"synthetic": False, "text": False},
        {"n_samples": 5_000},
        {"alpha": 1.5},
        {"future_length": 0},
        {"text_holdout": 0.7},
        {"text_chars": 100},
        {"process": "not_a_process"},
        {"n_steps": 0},
    ):
        with pytest.raises(PiamiError):
            get_experiment("reconstruction-loop").make_config(bad)


@pytest.mark.slow
def test_quick_run_passes():
    result = run_experiment("reconstruction-loop", quick=True, progress=False)
    failed = [c.name for c in result.comparisons if c.kind != "refuted" and not c.passed]
    assert result.verdict == "pass", failed
    assert result.metrics["machines"]["synthetic"]["n_states"] > 3


@pytest.mark.slow
def test_shuffled_reconstructed_beliefs_fail_the_run():
    result = run_experiment(
        "reconstruction-loop", quick=True, progress=False, overrides={"shuffle_beliefs": True}
    )
    failed = {c.name for c in result.comparisons if c.passed is False}
    assert result.verdict == "fail"
    assert {P_REC, S_LINEAR, C_TRAINED, T_TRAINED, T_TRAINED_PRED} <= failed, failed


@pytest.mark.slow
def test_a_barely_trained_network_fails_the_run():
    result = run_experiment(
        "reconstruction-loop",
        quick=True,
        progress=False,
        overrides={"n_steps": 2, "text": False},
    )
    failed = {c.name for c in result.comparisons if c.passed is False}
    assert result.verdict == "fail"
    assert {P_TRUE, P_REC} <= failed, failed
