"""The modular-addition grokking experiment: helpers against closed forms, the plan, combine and
every compare() row on made-up seeds (milliseconds: each row passes, fails alone, or is not
identified, with its reason), and the --quick run (honestly undecided), its reproducibility and
its failure on a broken ingredient."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from tests.experiments.reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError
from piami.experiments import modular_addition as ma
from piami.experiments.modular_addition import (
    CONTROL_KEY,
    EXPERIMENT,
    RATE_BAR,
    Config,
    ModularMeasurements,
    SeedConfig,
    combine,
    compare,
    horizon_epochs,
    plan,
    seeds_of,
)
from piami.experiments.modular_addition import seed as seed_exp
from piami.experiments.modular_addition.config import MIN_DELAY, MIN_FVE, MIN_TEST_ACC, SHARP_WIDTH
from piami.experiments.modular_addition.seed import SeedMeasurements, read_out
from piami.experiments.modular_addition.train import last_logits, make_model, split, train
from piami.instruments.curves import first_crossing
from piami.lab import PlanOutcome, Result, binomial_interval, get_experiment, run_experiment
from piami.processes.modular import ModularAddition


def test_width_of_a_smooth_exponential_rise_is_3_17():
    """The baseline the sharpness threshold is set against: 1 - exp(-t / tau)."""
    t = np.linspace(0, 50, 200001)
    acc = 1 - np.exp(-t / 7.0)
    t10, t50, t90 = (first_crossing(t, acc, x) for x in (0.1, 0.5, 0.9))
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


TINY = SeedConfig(p=11, d_model=8, n_heads=2, d_mlp=16, n_epochs=30, eval_every=5)


@pytest.fixture(scope="module")
def tiny_run():
    return train(TINY)


def test_mirror_and_novel_accuracies_partition_the_held_out_pairs(tiny_run):
    """Held-out pairs split by whether (b, a) was trained on; the two accuracies, weighted by the
    counts, must give back the held-out accuracy at every evaluation (an independent recount)."""
    mask = tiny_run.train_mask
    n_mirror = int((mask.T & ~mask).sum())
    n_novel = int((~mask).sum()) - n_mirror
    assert n_mirror > 0 and n_novel > 0
    c = tiny_run.curves
    mixed = (n_mirror * c["test_acc_mirror"] + n_novel * c["test_acc_novel"]) / (n_mirror + n_novel)
    np.testing.assert_allclose(mixed, c["test_acc"], atol=1e-6)
    assert c["train_acc"][-1] > c["train_acc"][0]  # it trained


def test_read_out_times_are_first_crossings_and_none_when_never_reached(tiny_run):
    m = read_out(TINY, tiny_run)
    e, c = tiny_run.epochs, tiny_run.curves
    times = [*m["epochs_novel_acc_10_50_90"], m["epoch_train_acc_50"]]
    curves = [c["test_acc_novel"]] * 3 + [c["train_acc"]]
    for t, y, level in zip(times, curves, (0.1, 0.5, 0.9, 0.5), strict=True):
        ref = first_crossing(e, y, level)
        assert (t is None and math.isnan(ref)) or t == ref
    assert not m["events"]["generalized"] and not m["events"]["decided"]  # 30 epochs: too early
    assert m["width"] is None or m["width"] > 0


def test_plan_derives_disjoint_seeds_and_a_paired_control():
    cfg = Config(seed=2, n_seeds=5, lr=3e-3)
    subs = plan(cfg)
    assert [s.key for s in subs][-1] == CONTROL_KEY and len(subs) == 6
    seeds = [s.overrides["seed"] for s in subs[:-1]]
    assert seeds == seeds_of(cfg) == [10, 11, 12, 13, 14]
    assert not set(seeds) & set(seeds_of(Config(seed=1)))
    assert not set(seeds) & set(seeds_of(Config(seed=3)))
    ctrl = subs[-1].overrides
    assert ctrl["shuffle_labels"] is True and ctrl["seed"] == 10
    assert all(s.overrides["lr"] == 3e-3 and "n_seeds" not in s.overrides for s in subs)


# -- made-up seeds: one seed's metrics as read_out gives them --------------------------------------

CURVES = {
    "epoch": [0, 10],
    "train_acc": [0.0, 1.0],
    "test_acc": [0.0, 1.0],
    "test_acc_novel": [0.0, 1.0],
}


def fake_seed(
    *, acc=1.0, delay=5.0, width=0.3, fve=0.95, decided=None, horizon=1400.0, **events
) -> dict:
    """A seed's metrics; its events follow from the numbers as in read_out, unless given."""
    generalized = acc >= MIN_TEST_ACC
    ev = {
        "generalized": generalized,
        "decided": generalized if decided is None else decided,
        "grokked": generalized and delay is not None and delay >= MIN_DELAY,
        "sharp": generalized and width is not None and width <= SHARP_WIDTH,
        "fourier": generalized and fve >= MIN_FVE,
    }
    ev.update(events)
    return {
        "events": ev,
        "test_acc_final": acc,
        "test_fve_final": fve,
        "width": width if generalized else None,
        "delay": delay if generalized else None,
        "n_test": 8938,
        "horizon_epochs": horizon,
        "curves": CURVES,
        "epochs_novel_acc_10_50_90": [1, 2, 3],
        "epoch_train_acc_50": 1.0,
        "key_frequencies": [4, 7],
        "final": {},
    }


def control_metrics(acc=1 / 113, fve=0.01) -> dict:
    return {**fake_seed(acc=0.01, decided=True), "test_acc_final": acc, "test_fve_final": fve}


def measurements(seeds, control=None, failure="") -> ModularMeasurements:
    return ModularMeasurements(
        seeds={f"seed={i}": m for i, m in enumerate(seeds)},
        control=control,
        control_failure=failure,
    )


RATE_EVENTS = ("grokked", "sharp", "fourier")


def test_compare_every_row_passes():
    rows = compare(Config(), measurements([fake_seed()] * 5, control_metrics()))
    assert [r.kind for r in rows] == ["prediction"] * 3 + ["control"] * 2
    assert all(r.passed is True for r in rows), [(r.name, r.measured) for r in rows]
    assert all(r.predicted == RATE_BAR and r.measured == 1.0 for r in rows[:3])
    assert all(r.tolerance_source.startswith("a priori:") for r in rows[:3])


@pytest.mark.parametrize("row", range(5))
def test_compare_each_row_fails_alone(row):
    """Rates: 3 of 5 seeds with the event (0.6 < 0.8); controls: a null that learned."""
    seeds, control = [fake_seed()] * 5, control_metrics()
    if row < 3:
        seeds = [fake_seed()] * 3 + [fake_seed(**{RATE_EVENTS[row]: False})] * 2
    else:
        control = control_metrics(acc=0.5) if row == 3 else control_metrics(fve=0.95)
    rows = compare(Config(), measurements(seeds, control))
    assert [r.passed for r in rows] == [i != row for i in range(5)]
    if row < 3:
        assert rows[row].measured == pytest.approx(0.6)
        assert rows[row].measured_interval == pytest.approx(binomial_interval(3, 5))


def test_compare_rate_at_the_bar_passes_with_its_clopper_pearson_interval():
    seeds = [fake_seed()] * 4 + [fake_seed(acc=0.5, decided=True)]
    rows = compare(Config(), measurements(seeds, control_metrics()))
    assert all(r.measured == pytest.approx(0.8) and r.passed is True for r in rows[:3])
    assert rows[0].measured_interval == pytest.approx(binomial_interval(4, 5))
    assert "4 of 5 seeds" in rows[0].note and "seed=4" not in rows[0].note


def test_compare_does_not_decide_a_rate_while_a_seed_may_still_grok():
    seeds = [fake_seed()] * 4 + [fake_seed(acc=0.1, decided=False)]
    rows = compare(Config(n_epochs=700), measurements(seeds, control_metrics()))
    for row in rows[:3]:
        assert row.passed is None and "before the horizon 1400" in row.not_identified
    assert [r.passed for r in rows[3:]] == [True, True]


def test_compare_without_a_finished_seed_or_control_is_not_identified():
    rows = compare(Config(), measurements([], None, failure="DivergenceError: lower lr"))
    assert all(r.passed is None and r.measured is None for r in rows)
    assert all(r.not_identified == "no seed's run finished" for r in rows[:3])
    assert all("control run failed: DivergenceError" in r.not_identified for r in rows[3:])
    rows = compare(Config(), measurements([fake_seed()] * 5, None))
    assert "control run failed: missing" in rows[3].not_identified
    n_test = 113 * 113 - round(0.3 * 113 * 113)
    assert f"on {n_test} held-out pairs" in rows[3].tolerance_source


# -- one seed's rows ------------------------------------------------------------------------------

SEED_ROWS = {
    "held-out accuracy": {"acc": 0.5, "decided": True},
    "delay": {"delay": 1.5},
    "width": {"width": 0.8},
    "fve": {"fve": 0.5},
}


def test_seed_compare_every_row_passes():
    rows = seed_exp.compare(SeedConfig(), SeedMeasurements(metrics=fake_seed()))
    assert len(rows) == 4 and all(r.kind == "prediction" and r.passed is True for r in rows)


@pytest.mark.parametrize("broken", list(SEED_ROWS))
def test_seed_compare_each_row_fails_alone(broken):
    """A seed short of one bar fails that row; without a grokking event (the accuracy row) the
    timing and read-out rows are not identified, never passed."""
    m = SeedMeasurements(metrics=fake_seed(**SEED_ROWS[broken]))
    rows = seed_exp.compare(SeedConfig(), m)
    i = list(SEED_ROWS).index(broken)
    assert rows[i].passed is False
    others = [r.passed for j, r in enumerate(rows) if j != i]
    assert others == ([None] * 3 if i == 0 else [True] * 3)
    if i == 0:
        assert "0.500 < 0.9 at epoch 1400" in rows[1].not_identified
        assert "horizon" not in rows[1].not_identified


def test_seed_compare_before_the_horizon_is_not_identified():
    m = SeedMeasurements(metrics=fake_seed(acc=0.1, decided=False, horizon=1400.0))
    rows = seed_exp.compare(SeedConfig(n_epochs=100), m)
    assert all(r.passed is None for r in rows)
    assert all(
        "before the horizon 1400 epochs (it may still grok)" in r.not_identified for r in rows
    )


@pytest.mark.parametrize("broken", [None, "accuracy", "fve"])
def test_seed_compare_of_a_shuffled_label_run_gives_the_control_rows(broken):
    kw = {"accuracy": {"acc": 0.5}, "fve": {"fve": 0.95}}.get(broken, {})
    m = SeedMeasurements(metrics=control_metrics(**kw))
    rows = seed_exp.compare(SeedConfig(shuffle_labels=True), m)
    assert [r.kind for r in rows] == ["control", "control"]
    assert [r.passed for r in rows] == [broken != "accuracy", broken != "fve"]
    assert rows[0].tolerance == pytest.approx(4 * math.sqrt((1 / 113) * (112 / 113) / 8938))


# -- combine and figures --------------------------------------------------------------------------


def outcome_of(seed_metrics, control, failure=None) -> PlanOutcome:
    results = {
        f"seed={i}": Result(
            experiment="x", config={}, seed=i, metrics=m, timing={"train_wall_s": 1.0 + i}
        )
        for i, m in enumerate(seed_metrics)
    }
    if control is not None:
        results[CONTROL_KEY] = Result(experiment="x", config={}, seed=0, metrics=control)
    failures = {} if failure is None else {CONTROL_KEY: failure}
    return PlanOutcome(
        results=results, failures=failures, n_planned=len(seed_metrics) + 1, n_computed=len(results)
    )


def test_combine_gathers_the_seeds_and_the_control():
    m = combine(Config(), outcome_of([fake_seed()] * 2, control_metrics()))
    assert isinstance(m, ModularMeasurements) and list(m.seeds) == ["seed=0", "seed=1"]
    assert m.control is not None and m.control["test_fve_final"] == 0.01
    assert set(m.metrics) == {"seeds", "horizon_epochs", "bars", "control"}
    assert "curves" not in m.metrics["seeds"]["seed=0"] and m.metrics["bars"]["rate"] == RATE_BAR
    assert m.timing == {
        "seed=0: train_wall_s": 1.0,
        "seed=1: train_wall_s": 2.0,
        f"{CONTROL_KEY}: train_wall_s": None,
    }
    m = combine(Config(), outcome_of([fake_seed()], None, failure="ValueError: boom"))
    assert m.control is None and m.control_failure == "ValueError: boom"
    assert "control" not in m.metrics


def test_figures_of_made_up_measurements():
    m = measurements([fake_seed(), fake_seed(acc=0.1)], control_metrics())
    specs = ma.figures(Config(), m)
    assert [s.name for s in specs] == ["seeds"] and ma.figures(Config(), measurements([])) == []
    spectrum = np.full(16, 1 / 16)
    metrics = {
        **fake_seed(),
        "progress_measures": {
            "epoch": [0, 10],
            "restricted_loss": [3.0, 0.1],
            "excluded_loss": [0.1, 3.0],
            "test_fve": [0.1, 0.95],
        },
        "embedding_spectrum": spectrum.tolist(),
        "epochs_novel_acc_10_50_90": [2.0, None, None],
    }
    curves = {k: np.linspace(1.0, 0.1, 3) for k in ("train_loss", "test_loss")}
    curves.update({k: np.linspace(0, 1, 3) for k in CURVES if k != "epoch"})
    curves["test_acc_mirror"] = np.linspace(0, 1, 3)
    sm = SeedMeasurements(metrics=metrics, epochs=np.array([0, 5, 10]), curves=curves)
    specs += seed_exp.figures(SeedConfig(), sm)
    assert [s.name for s in specs] == ["seeds", "curves"] and "[4, 7] in red" in specs[1].caption
    for s in specs:
        plt.close(s.figure)


def test_describe_names_the_recipe_and_the_broken_ingredients():
    assert "5 seeds" in ma.describe(Config()) and "Broken" not in ma.describe(Config())
    assert "held-out pairs trained on" in ma.describe(Config(leak_held_out=True))
    assert "shuffled answers (control)" in seed_exp.describe(SeedConfig(shuffle_labels=True))


# -- the --quick run ------------------------------------------------------------------------------


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


def test_seed_experiment_is_registered_as_part_of_the_whole():
    seed = get_experiment("modular-addition-seed")
    assert seed is seed_exp.EXPERIMENT and seed.part_of == "modular-addition"
    assert get_experiment("modular-addition") is EXPERIMENT and EXPERIMENT.compare is compare
