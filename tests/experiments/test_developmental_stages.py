"""developmental-stages: the critical-point finder on curves whose critical points are known, the
marker transitions, the markers against direct computations, compare() on synthetic measurements
(every row passes, and each fails or is not identified in its own case), bad configs, and, slow,
the quick run end to end and the shuffled-text ingredient that must fail the bigram and induction
rows."""

from __future__ import annotations

import doctest
import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from piami.errors import PiamiError, PiamiValueError
from piami.experiments import get_experiment, run_experiment
from piami.experiments.developmental_stages import (
    Config,
    StageMeasurements,
    bigram_model,
    compare,
    critical_points,
    induction_sequences,
    local_linear,
    measure_markers,
    nearest_distance,
    transition_step,
)
from piami.experiments.developmental_stages import analysis as analysis_mod
from piami.experiments.developmental_stages import markers as markers_mod
from piami.experiments.developmental_stages import stages as stages_mod
from piami.experiments.developmental_stages.analysis import coverage
from piami.experiments.developmental_stages.config import INDUCTION_FORMED
from piami.experiments.developmental_stages.measure import Unchecked
from piami.models import Transformer, TransformerConfig

STEPS = np.unique(np.round(np.geomspace(1, 3000, 20)))  # log-spaced, like the checkpoints
X = np.log10(STEPS)


def sig(x: np.ndarray, c: float, w: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x - c) / w))


# -- the critical-point finder ---------------------------------------------------------------------
def test_docstring_examples_run() -> None:
    for mod in (stages_mod, markers_mod, analysis_mod):
        assert doctest.testmod(mod).failed == 0


def test_local_linear_is_exact_on_lines_and_its_slope_error_matches_monte_carlo() -> None:
    grid = np.linspace(X[0], X[-1], 7)
    level, slope, _ = local_linear(X, 3.0 - 2.0 * X, grid, 0.3)
    np.testing.assert_allclose(level, 3.0 - 2.0 * grid, atol=1e-9)
    np.testing.assert_allclose(slope, -2.0, atol=1e-9)
    # the propagated standard error against the spread of slopes fitted to noisy copies
    rng = np.random.default_rng(0)
    se = np.full(X.size, 0.3)
    _, _, slope_se = local_linear(X, X, grid, 0.25, se)
    fits = np.array(
        [local_linear(X, X + se * rng.standard_normal(X.size), grid, 0.25)[1] for _ in range(3000)]
    )
    # 3000 draws: the sample std is within ~4% of the truth (1.3% standard error)
    np.testing.assert_allclose(fits.std(axis=0), slope_se, rtol=0.05)


@pytest.mark.parametrize(
    ("curve", "where", "kinds"),
    [
        (-((X - 2.0) ** 2), [2.0], ("maximum",)),
        ((X - 1.5) ** 2, [1.5], ("minimum",)),
        # two equal rises: the slope is smallest midway between them, by symmetry
        (sig(X, 1.0, 0.12) + sig(X, 2.5, 0.12), [1.75], ("plateau",)),
        # rise, fall, rise, symmetric about x = 2: the extrema sit symmetric about it
        (sig(X, 1.0, 0.15) - 0.6 * sig(X, 2.0, 0.15) + sig(X, 3.0, 0.15), None, None),
    ],
)
def test_critical_points_are_found_where_they_are(curve, where, kinds) -> None:
    cp = critical_points(STEPS, curve, bandwidth=0.2)
    assert cp.resolved
    if where is None:  # rise-fall-rise
        assert cp.kinds == ("maximum", "minimum")
        lo, hi = cp.log_steps()
        # symmetric about 2 up to the grid and the uneven rounding of the checkpoints
        assert abs((lo + hi) / 2 - 2.0) < 0.05
        assert 1.2 < lo < 2.0 < hi < 2.8
        return
    assert cp.kinds == kinds
    np.testing.assert_allclose(cp.log_steps(), where, atol=0.03)


@pytest.mark.parametrize(
    "curve",
    [sig(X, 2.0, 0.2), 0.7 * X + 1, np.exp(X), -np.log1p(X)],
    ids=["sigmoid", "linear", "convex rise", "concave fall"],
)
def test_monotone_curves_have_no_critical_point(curve) -> None:
    cp = critical_points(STEPS, curve, bandwidth=0.2)
    assert cp.resolved and cp.steps.size == 0


def test_edges_report_where_a_sigmoid_starts_and_stops_moving() -> None:
    steps = np.geomspace(1, 1e4, 60)
    x = np.log10(steps)
    c, w, f = 2.0, 0.25, 0.15
    cp = critical_points(steps, sig(x, c, w), bandwidth=0.05, flat_fraction=f, edges=True)
    assert cp.kinds == ("onset", "levels off")
    # the slope s (1 - s) / w falls to f times its peak 1 / (4 w) where s (1 - s) = f / 4
    s = (1 - math.sqrt(1 - f)) / 2
    want = [c + w * math.log(s / (1 - s)), c - w * math.log(s / (1 - s))]
    np.testing.assert_allclose(cp.log_steps(), want, atol=0.03)
    assert critical_points(steps, sig(x, c, w), bandwidth=0.05, flat_fraction=f).steps.size == 0


def test_a_flat_curve_is_not_resolved_and_noise_rarely_makes_a_boundary() -> None:
    cp = critical_points(STEPS, np.full(X.size, 2.0))
    assert not cp.resolved and cp.steps.size == 0
    rng = np.random.default_rng(1)
    se = np.ones(X.size)
    hits = [critical_points(STEPS, rng.standard_normal(X.size), stderr=se, z=2.5).steps.size > 0]
    hits += [
        critical_points(STEPS, rng.standard_normal(X.size), stderr=se, z=2.5).steps.size > 0
        for _ in range(199)
    ]
    assert np.mean(hits) < 0.1  # measured 3%: z = 2.5 over a correlated grid of slopes
    # without the noise threshold the same noise is full of "boundaries": the threshold matters
    loose = [
        critical_points(STEPS, rng.standard_normal(X.size), flat_fraction=0.0, z=0.0).steps.size
        for _ in range(20)
    ]
    assert np.mean(loose) >= 2


def test_the_noise_threshold_hides_a_small_bump_but_not_a_large_one() -> None:
    bump = np.exp(-(((X - 2.0) / 0.3) ** 2) / 2)
    se = np.full(X.size, 0.05)
    big = critical_points(STEPS, X + 3.0 * bump, stderr=se, z=2.5, bandwidth=0.2)
    small = critical_points(STEPS, X + 0.05 * bump, stderr=se, z=2.5, bandwidth=0.2)
    assert big.kinds == ("maximum", "minimum")
    assert small.steps.size == 0


@pytest.mark.parametrize(
    "bad",
    [
        dict(steps=[1, 2], values=[0, 1]),
        dict(steps=[1, 3, 2], values=[0, 1, 2]),
        dict(steps=[0, 1, 2], values=[0, 1, 2]),
        dict(steps=[1, 2, 3], values=[0, np.nan, 2]),
        dict(steps=[1, 2, 3], values=[0, 1]),
        dict(steps=[1, 2, 3], values=[0, 1, 2], bandwidth=0.0),
        dict(steps=[1, 2, 3], values=[0, 1, 2], flat_fraction=1.5),
        dict(steps=[1, 2, 3], values=[0, 1, 2], stderr=[1, -1, 1]),
    ],
)
def test_critical_points_rejects_bad_input(bad) -> None:
    with pytest.raises(PiamiError):
        critical_points(**bad)


def test_transition_step_finds_a_sigmoids_midpoint_and_stays_silent_without_a_rise() -> None:
    steps = np.concatenate([[0], STEPS])
    y = np.concatenate([[0.0], sig(X, 2.3, 0.2)])
    t = transition_step(steps, y)  # half of the way from 0 to the top (~1): the midpoint
    assert abs(math.log10(t) - 2.3) < 0.03
    t_level = transition_step(steps, 2 * y, level=1.0)
    assert abs(math.log10(t_level) - 2.3) < 0.03
    assert abs(math.log10(transition_step(steps, -y, rise=False)) - 2.3) < 0.03
    assert transition_step(steps, np.zeros(steps.size)) is None
    assert transition_step(steps, 0.1 * y, min_change=0.5) is None
    assert transition_step(steps, y, level=2.0) is None
    assert nearest_distance(100.0, []) == math.inf
    assert coverage(np.array([1.0, 3.0]), 0.0, 4.0, 0.5) == pytest.approx(0.5, abs=1e-3)


# -- the markers -----------------------------------------------------------------------------------
def test_bigram_model_counts_pairs_like_a_loop() -> None:
    rng = np.random.default_rng(2)
    t = rng.integers(0, 4, 500)
    counts = np.zeros((4, 4))
    for a, b in itertools.pairwise(t):
        counts[a, b] += 1
    want = (counts + 0.1) / (counts + 0.1).sum(1, keepdims=True)
    np.testing.assert_allclose(bigram_model(t, 4, alpha=0.1), want)


def small_model(seed: int = 0, n_ctx: int = 16, V: int = 5) -> Transformer:
    cfg = TransformerConfig(
        n_layers=2, d_model=8, n_heads=2, d_head=4, d_mlp=0, n_ctx=n_ctx, d_vocab=V
    )
    return Transformer(cfg, generator=torch.Generator().manual_seed(seed), device="cpu")


def test_markers_match_direct_computations() -> None:
    torch.manual_seed(0)
    model = small_model()
    with torch.no_grad():  # sharper attention than at initialization
        for p in model.parameters():
            p.mul_(20.0)
    rng = np.random.default_rng(3)
    held = torch.as_tensor(rng.integers(0, 5, (6, 17)))
    rep = torch.as_tensor(induction_sequences(np.full(5, 0.2), 4, 8, rng=rng))
    big = torch.as_tensor(bigram_model(rng.integers(0, 5, 200), 5))
    got = measure_markers(model, held, rep, big)
    with torch.no_grad():
        logits = model(held[:, :-1]).double()
    assert got["held_out_loss"] == pytest.approx(
        float(F.cross_entropy(logits.reshape(-1, 5), held[:, 1:].reshape(-1))), rel=1e-9
    )
    logq = torch.log_softmax(logits, -1).numpy()
    p = big.numpy()[held[:, :-1].numpy()]
    assert got["bigram_kl"] == pytest.approx(
        float((p * (np.log(p) - logq)).sum(-1).mean()), rel=1e-9
    )
    _, cache = model.run_with_cache(held[:, :-1])
    pat = cache["blocks.0.attn.hook_pattern"].numpy()
    prev = max(np.mean([pat[:, h, q, q - 1] for q in range(1, 16)]) for h in range(2))
    assert got["prev_token_attention"] == pytest.approx(float(prev), rel=1e-6)
    with torch.no_grad():
        nll = F.cross_entropy(
            model(rep[:, :-1]).double().reshape(-1, 5), rep[:, 1:].reshape(-1), reduction="none"
        ).reshape(4, 15)
    first = [nll[i, j] for i in range(4) for j in range(7)]  # targets 1..7: the first copy
    second = [nll[i, j] for i in range(4) for j in range(7, 15)]  # targets 8..15: the second
    want = float(torch.stack(first).mean() - torch.stack(second).mean())
    assert got["induction_score"] == pytest.approx(want, rel=1e-9)


def test_an_exact_copier_scores_high_and_the_unchecked_forward_matches() -> None:
    model = small_model()
    x = torch.as_tensor(np.random.default_rng(4).integers(0, 5, (3, 16)))
    torch.testing.assert_close(Unchecked(model)(x), model(x), rtol=0, atol=0)
    # a copier that is exact on the second copy and uniform on the first scores ln V there
    nll = np.full((8, 15), math.log(5.0))
    nll[:, 7:] = 0.0
    assert nll[:, :7].mean() - nll[:, 7:].mean() > INDUCTION_FORMED  # the bar is reachable


# -- compare on synthetic measurements -------------------------------------------------------------
K = 0.8  # bigram KL of the unigram predictor


def fake_run(*, llc=None, se=0.05, identified=True, peak=2.0, ind_peak=None, ind_top=1.0):
    """Checkpoint rows whose LLC has one maximum at log step 2 (step 100) and whose markers have
    theirs at ``peak`` (the induction score at ``ind_peak``, rising ``ind_top`` nats from step 0):
    every curve is an inverted parabola in log step, so each has that one critical point."""
    steps = np.concatenate([[0], STEPS])
    x = np.concatenate([[np.nan], X])
    ind_peak = peak if ind_peak is None else ind_peak
    llc = 10.0 - 3.0 * (x - 2.0) ** 2 if llc is None else llc
    share = np.where(steps > 0, 0.9 - 0.3 * (x - peak) ** 2, -1.0)
    prev = np.where(steps > 0, 0.4 - 0.05 * (x - peak) ** 2, 0.05)
    ind = np.where(steps > 0, ind_top * (1.0 - 0.1 * (x - ind_peak) ** 2), 0.0)
    rows = []
    for i, s in enumerate(steps):
        ok = bool(identified if np.isscalar(identified) else identified[i]) and s > 0
        rows.append(
            {
                "step": int(s),
                "train_loss": 2.0,
                "held_out_loss": 4.0 - share[i],
                "bigram_kl": K * (1.0 - share[i]),
                "prev_token_attention": prev[i],
                "induction_score": ind[i],
                "induction_attention": 0.0,
                "llc_mean": float(llc[i]) if s > 0 else -1.0,
                "llc_se": se,
                "identified": ok,
                "why_not_identified": "" if ok else "drift",
                "batching": "vmap",
                "independent_batches": True,
            }
        )
    return {"rows": rows, "history": {"step": [], "loss": []}, "shuffled": False}


def fake(text=None, shuffled=None) -> StageMeasurements:
    flat = np.full(STEPS.size + 1, 2.0)
    sh = shuffled
    if sh is None:  # learns nothing: flat LLC and markers
        sh = fake_run(llc=flat, ind_top=0.0)
        for r in sh["rows"]:
            r.update(bigram_kl=K, prev_token_attention=0.05, induction_score=0.0)
    return StageMeasurements(
        runs={"text": text or fake_run(), "shuffled": sh},
        reference={"unigram": 3.3, "bigram": 2.5, "bigram_kl_of_unigram": K},
    )


CFG = Config(n_steps=3000, n_checkpoints=20)


def by_name(rows) -> dict:
    return {r.name: r for r in rows}


def row(rows, start: str):
    (hit,) = [r for r in rows if r.name.startswith(start)]
    return hit


def test_compare_passes_when_boundaries_and_transitions_line_up() -> None:
    rows = compare(CFG, fake())
    assert {r.kind for r in rows} == {"prediction", "control", "sanity"}
    bad = [(r.name, r.passed, r.not_identified) for r in rows if r.passed is not True]
    assert not bad
    assert row(rows, "induction score").measured < 0.05  # both at step 100


def test_a_marker_far_from_every_boundary_fails_its_row() -> None:
    rows = compare(CFG, fake(text=fake_run(ind_peak=2.9)))
    r = row(rows, "induction score")
    # the score levels off (its slope stays within the flat threshold) 0.4-0.9 decades after
    # the LLC's maximum: far outside one checkpoint interval
    assert r.passed is False and 0.4 < r.measured < 0.95
    assert row(rows, "LLC boundaries").passed is True  # the boundary still meets the others


def test_a_boundary_no_marker_explains_fails_the_share_row() -> None:
    rows = compare(CFG, fake(text=fake_run(peak=3.2)))
    assert row(rows, "LLC boundaries").passed is False


def test_rows_are_not_identified_without_a_transition_or_a_readable_curve() -> None:
    rows = compare(CFG, fake(text=fake_run(ind_top=0.2)))
    assert row(rows, "induction score").passed is None
    assert "never forms" in row(rows, "induction score").not_identified
    few = np.arange(STEPS.size + 1) < 6  # only 5 positive-step estimates identified
    rows = compare(CFG, fake(text=fake_run(identified=few)))
    names = ("bigram", "previous", "induction", "LLC boundaries")
    assert all(row(rows, n).passed is None for n in names)
    noisy = compare(CFG, fake(text=fake_run(se=20.0)))
    assert row(noisy, "bigram").passed is None
    assert "noise" in row(noisy, "bigram").not_identified


def test_a_wiggling_llc_curve_fails_the_chance_control() -> None:
    x = np.concatenate([[0.0], X])
    rows = compare(CFG, fake(text=fake_run(llc=10 + 5 * np.sin(2 * np.pi * x / 1.2))))
    r = row(rows, "share of the log-step range")
    assert r.passed is False and r.measured > 0.5


def test_shuffled_controls_fail_when_the_control_learns_structure() -> None:
    learned = fake_run(llc=np.full(STEPS.size + 1, 50.0))
    rows = by_name(compare(CFG, fake(shuffled=learned)))
    fails = [n for n, r in rows.items() if n.startswith("shuffled") and r.passed is False]
    assert len(fails) == 3


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        dict(n_steps=5),
        dict(n_heads=3),
        dict(lr=0.0),
        dict(lr=float("nan")),
        dict(n_checkpoints=2),
        dict(llc_chains=1),
        dict(llc_batch=4096),
        dict(smoothing=-0.1),
        dict(z=-1.0),
        dict(text_chars=10),
        dict(control="yes"),
        dict(batch_size=True),
    ],
)
def test_bad_config_values_raise(bad) -> None:
    with pytest.raises(PiamiValueError):
        Config(**bad)


def test_bad_overrides_raise_through_the_registry() -> None:
    with pytest.raises(PiamiError):
        get_experiment("developmental-stages").make_config({"n_heads": 5})


# -- slow: the quick run, and the broken ingredient ------------------------------------------------
@pytest.fixture(scope="module")
def quick():
    torch.set_num_threads(1)
    return run_experiment("developmental-stages", quick=True, progress=False)


@pytest.mark.slow
def test_quick_run_end_to_end(quick, tmp_path) -> None:
    from piami.report import save_result

    names = [c.name for c in quick.comparisons]
    assert sum(c.kind == "prediction" for c in quick.comparisons) == 4
    assert any(n.startswith("shuffled-text control") for n in names)
    assert {f.name for f in quick.figures} == {"llc_curve", "markers"}
    save_result(quick, tmp_path)
    assert (tmp_path / "llc_curve.png").stat().st_size > 1000
    assert (tmp_path / "markers.png").stat().st_size > 1000
    text = quick.metrics["text"]
    assert len(text["checkpoints"]) >= 8
    assert all(math.isfinite(r["llc_mean"]) for r in text["checkpoints"])
    # the control learns no bigrams and no induction, whatever the text model does
    shuffled = [c for c in quick.comparisons if c.name.startswith("shuffled-text control: the")]
    assert all(c.passed for c in shuffled)


@pytest.mark.slow
def test_shuffled_text_fails_the_bigram_and_induction_rows(quick) -> None:
    exp = get_experiment("developmental-stages")
    cfg = replace(exp.make_config(quick=True), shuffle_text=True, control=False)
    broken = exp(cfg, progress=False)
    rows = {c.name.split(":")[0]: c for c in broken.comparisons}
    assert rows["bigram share"].passed is None
    assert "never forms" in rows["bigram share"].not_identified
    assert rows["induction score"].passed is None
    assert broken.verdict != "pass"
    # the same model on real text does cross the bigram level
    real = {c.name.split(":")[0]: c for c in quick.comparisons}
    assert "never forms" not in real["bigram share"].not_identified
