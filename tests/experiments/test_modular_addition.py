"""The modular-addition grokking experiment: helpers against closed forms, the plan and the combine
step on made-up seeds, and the --quick run (honestly undecided), its reproducibility and its
failure on a broken ingredient."""

import math

import numpy as np
import pytest
import torch
from tests.experiments.reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError
from piami.experiments._modular_seed import horizon_epochs
from piami.experiments._modular_train import (
    SHARP_WIDTH,
    SeedConfig,
    crossing_epoch,
    last_logits,
    make_model,
    split,
    train,
)
from piami.experiments.modular_addition import (
    CONTROL_KEY,
    EXPERIMENT,
    RATE_BAR,
    Config,
    combine,
    plan,
    seeds_of,
)
from piami.lab import PlanOutcome, Result, binomial_interval, run_experiment
from piami.processes.modular import ModularAddition


def test_crossing_epoch_interpolates_linearly():
    e = np.array([0, 10, 20, 30])
    v = np.array([0.0, 0.2, 0.6, 1.0])
    assert crossing_epoch(e, v, 0.4) == pytest.approx(15.0)
    assert crossing_epoch(e, v, 0.0) == 0.0
    assert crossing_epoch(e, v, 1.5) is None


def test_width_of_a_smooth_exponential_rise_is_3_17():
    """The baseline the sharpness threshold is set against: 1 - exp(-t / tau)."""
    t = np.linspace(0, 50, 200001)
    acc = 1 - np.exp(-t / 7.0)
    t10, t50, t90 = (crossing_epoch(t, acc, x) for x in (0.1, 0.5, 0.9))
    closed = (math.log(10) - math.log(10 / 9)) / math.log(2)
    assert (t90 - t10) / t50 == pytest.approx(closed, rel=1e-5)
    assert closed == pytest.approx(3.17, abs=0.01) and SHARP_WIDTH <= closed / 6


@pytest.mark.parametrize(
    "kw",
    [
        {"p": 3},
        {"frac_train": 1.0},
        {"d_model": 30, "n_heads": 4},
        {"lr": 0.0},
        {"init_std": -1.0},
        {"eval_every": 0},
        {"eval_every": 20, "n_epochs": 10},
        {"weight_decay": float("nan")},
        {"shuffle_labels": "yes"},
        {"leak_held_out": 1},
    ],
)
def test_bad_config_raises(kw):
    with pytest.raises(PiamiError):
        SeedConfig(**kw)
    with pytest.raises(PiamiError):
        Config(**kw)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_bad_n_seeds_raises(n):
    with pytest.raises(PiamiError, match="n_seeds"):
        Config(n_seeds=n)


def test_default_init_is_nandas_and_horizon_scales_with_lr_wd():
    cfg = SeedConfig()
    assert cfg.std == pytest.approx(1 / math.sqrt(cfg.d_model))
    assert horizon_epochs(cfg) == pytest.approx(1400) and cfg.n_epochs >= horizon_epochs(cfg)
    assert horizon_epochs(SeedConfig(lr=2e-2, weight_decay=0.5)) == pytest.approx(1400)
    assert horizon_epochs(SeedConfig(weight_decay=0.0)) == math.inf


def test_last_position_forward_matches_the_model():
    """The shortcut forward (MLP and query at the last position only) against the full model."""
    cfg = SeedConfig(p=13, d_model=16, n_heads=2, d_mlp=32, init_std=0.5)
    task = ModularAddition(p=13)
    model = make_model(cfg, task)
    tokens = torch.as_tensor(task.all_pairs()[0])
    with torch.no_grad():
        ref = model(tokens)[:, -1, :13]
        fast = last_logits(model, tokens, 13)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_shuffle_keeps_the_split_and_permutes_the_answers():
    task = ModularAddition(p=11)
    tr, te, ans = split(SeedConfig(p=11, seed=3), task)
    tr2, te2, shuffled = split(SeedConfig(p=11, seed=3, shuffle_labels=True), task)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    assert sorted(shuffled.tolist()) == sorted(ans.tolist()) and (shuffled != ans).mean() > 0.8


def test_mirror_and_novel_accuracies_partition_the_held_out_pairs():
    """Held-out pairs split by whether (b, a) was trained on; the two accuracies, weighted by the
    counts, must give back the held-out accuracy at every evaluation (an independent recount)."""
    cfg = SeedConfig(p=11, d_model=8, n_heads=2, d_mlp=16, n_epochs=30, eval_every=5)
    run = train(cfg)
    mask = run.train_mask
    n_mirror = int((mask.T & ~mask).sum())
    n_novel = int((~mask).sum()) - n_mirror
    assert n_mirror > 0 and n_novel > 0
    c = run.curves
    mixed = (n_mirror * c["test_acc_mirror"] + n_novel * c["test_acc_novel"]) / (n_mirror + n_novel)
    np.testing.assert_allclose(mixed, c["test_acc"], atol=1e-6)
    assert c["train_acc"][-1] > c["train_acc"][0]  # it trained


def test_plan_derives_disjoint_seeds_and_a_paired_control():
    cfg = Config(seed=2, n_seeds=5, lr=3e-3)
    subs = plan(cfg)
    assert [s.key for s in subs][-1] == CONTROL_KEY and len(subs) == 6
    seeds = [s.overrides["seed"] for s in subs[:-1]]
    assert seeds == seeds_of(cfg) == [10, 11, 12, 13, 14]
    assert not set(seeds) & set(seeds_of(Config(seed=1))) and not set(seeds) & set(
        seeds_of(Config(seed=3))
    )
    ctrl = subs[-1].overrides
    assert ctrl["shuffle_labels"] is True and ctrl["seed"] == 10
    assert all(s.overrides["lr"] == 3e-3 and "n_seeds" not in s.overrides for s in subs)


def fake_seed(generalized, decided=None, **events):
    ev = {"generalized": generalized, "decided": generalized if decided is None else decided}
    ev.update({k: events.get(k, generalized) for k in ("grokked", "sharp", "fourier")})
    curves = {"epoch": [0, 10], "train_acc": [0.0, 1.0], "test_acc": [0.0, 1.0],
              "test_acc_novel": [0.0, 1.0]}  # fmt: skip
    return {"events": ev, "test_acc_final": 1.0 if generalized else 0.1, "test_fve_final": 0.95,
            "width": 0.3, "delay": 5.0, "n_test": 8938, "curves": curves,
            "epochs_novel_acc_10_50_90": [1, 2, 3], "epoch_train_acc_50": 1.0,
            "key_frequencies": [4, 7], "final": {}}  # fmt: skip


def outcome_of(seed_metrics, control_metrics):
    results = {f"seed={i}": Result(experiment="x", config={}, seed=i, metrics=m)
               for i, m in enumerate(seed_metrics)}  # fmt: skip
    if control_metrics is not None:
        results[CONTROL_KEY] = Result(experiment="x", config={}, seed=0, metrics=control_metrics)
    return PlanOutcome(results=results, n_planned=len(seed_metrics) + 1, n_computed=len(results))


def control_metrics(acc=1 / 113, fve=0.01):
    return {**fake_seed(False, decided=True), "test_acc_final": acc, "test_fve_final": fve}


def test_combine_counts_rates_with_clopper_pearson_intervals():
    seeds = [fake_seed(True)] * 3 + [fake_seed(True, sharp=False), fake_seed(False, decided=True)]
    res = combine(Config(), outcome_of(seeds, control_metrics()))
    grok, sharp, fve, ctrl_acc, ctrl_fve = res.comparisons
    assert grok.measured == pytest.approx(0.8) and grok.passed is True
    assert grok.measured_interval == pytest.approx(binomial_interval(4, 5))
    assert sharp.measured == pytest.approx(0.6) and sharp.passed is False
    assert grok.predicted == sharp.predicted == fve.predicted == RATE_BAR
    assert all(c.tolerance_source.startswith("a priori:") for c in (grok, sharp, fve))
    assert ctrl_acc.kind == ctrl_fve.kind == "control" and ctrl_acc.passed and ctrl_fve.passed
    assert res.verdict == "fail" and set(res.metrics["seeds"]) == {f"seed={i}" for i in range(5)}


def test_combine_does_not_decide_a_rate_while_a_seed_may_still_grok():
    seeds = [fake_seed(True)] * 4 + [fake_seed(False, decided=False)]
    res = combine(Config(n_epochs=700), outcome_of(seeds, control_metrics()))
    for row in res.comparisons[:3]:
        assert row.passed is None and "before the horizon 1400" in row.not_identified
    assert res.verdict == "not identified"


def test_combine_controls_fail_on_a_learning_null_and_are_undecided_without_one():
    seeds = [fake_seed(True)] * 5
    res = combine(Config(), outcome_of(seeds, control_metrics(acc=0.5, fve=0.95)))
    assert [c.passed for c in res.comparisons[3:]] == [False, False] and res.verdict == "fail"
    res = combine(Config(), outcome_of(seeds, None))
    assert [c.passed for c in res.comparisons[3:]] == [None, None]
    assert "control run failed" in res.comparisons[3].not_identified


@pytest.fixture(scope="module")
def quick():
    return run_experiment("modular-addition", quick=True, progress=False)


@pytest.mark.slow
def test_quick_run_is_honestly_undecided(quick):
    """--quick (p = 31, 100 epochs) memorizes and stops before any grokking: the rates are not
    identified (with the horizon as the reason), never passed; the controls and every sub-run
    pass; and a second run beside a CPU-bound process gives the same result.json."""
    r = quick
    assert r.variant == "quick" and r.verdict == "not identified", r.summary()
    rates, controls = r.comparisons[:3], r.comparisons[3:]
    for row in rates:
        assert row.kind == "prediction" and row.passed is None
        assert "before the horizon 1400" in row.not_identified
    assert [c.kind for c in controls] == ["control", "control", "sanity"]
    assert all(c.passed is True for c in controls), r.summary()
    assert r.runs["computed"] == 6 and r.runs["failed"] == 0
    seeds = r.metrics["seeds"]
    assert len(seeds) == 5 and all(m["final"]["train_acc"] >= 0.9 for m in seeds.values())
    assert r.metrics["control"]["final"]["train_acc"] >= 0.9  # the null memorized, too
    assert [f.name for f in r.figures] == ["seeds"]
    assert all(": train_wall_s" in k for k in r.timing) and "train_wall_s" not in str(r.metrics)
    assert_reproducible_beside_load(
        lambda: EXPERIMENT(EXPERIMENT.make_config(quick=True), progress=False, variant="quick"), r
    )


@pytest.mark.slow
def test_quick_run_fails_with_a_leaky_split():
    """Broken ingredient everywhere: the held-out pairs are trained on. The shuffled-label control
    then 'predicts' its held-out answers, and no seed's generalization lags memorization."""
    r = run_experiment("modular-addition", {"leak_held_out": True}, quick=True, progress=False)
    assert r.verdict == "fail", r.summary()
    by_name = {c.name: c for c in r.comparisons}
    assert by_name["shuffled labels: held-out accuracy at the last epoch"].passed is False
    grok = next(c for c in r.comparisons if c.name.startswith("share of seeds that grok"))
    assert grok.passed is False and grok.measured == 0.0


@pytest.mark.slow
def test_quick_run_with_shuffled_labels_everywhere_never_passes():
    """Nothing to learn anywhere: no seed generalizes, so the quick variant stays undecided (its
    100 epochs are short of the horizon); it must not pass."""
    r = run_experiment("modular-addition", {"shuffle_labels": True}, quick=True, progress=False)
    assert r.verdict == "not identified", r.summary()
    assert all(not m["events"]["generalized"] for m in r.metrics["seeds"].values())
