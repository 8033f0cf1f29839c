"""llc-calibration: the quick run's rates and control, a broken temperature failing the run,
reproducibility beside a busy process, the plan's seeds, the combine step, each compare() on
synthetic measurements (every row passing, then each row failing) and config validation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment
from piami.experiments import llc_calibration as llc
from piami.experiments.llc_calibration import checkpoints, seed, tuning
from piami.experiments.llc_calibration.cases import CaseConfig, case_generator, cases
from piami.lab import PlanOutcome, Result
from piami.theory.learning_coefficient import normal_crossing_expectation

RATE_ROWS = {"regression", "potential", "deep linear"}


@pytest.fixture(scope="module")
def quick():
    return run_experiment("llc-calibration", quick=True, progress=False)


@pytest.mark.slow
def test_quick_run_passes_its_rates_and_control(quick):
    r = quick
    assert r.verdict == "pass", r.summary()
    kinds = {c.kind for c in r.comparisons}
    assert kinds == {"prediction", "control", "sanity"}
    rates = [c for c in r.comparisons if c.kind == "prediction"]
    assert {fam for c in rates for fam in RATE_ROWS if f", {fam}:" in c.name} == RATE_ROWS
    for c in rates:
        assert c.sense == "at_least" and c.predicted == pytest.approx(0.8)
        assert c.tolerance_source.startswith("a priori:") and "tuned on" in c.tolerance_source
        lo, hi = c.measured_interval
        assert lo <= c.measured <= hi
    (control,) = [c for c in r.comparisons if c.kind == "control"]
    assert control.passed is True and control.measured == 1.0
    names = {c.name for c in r.comparisons}
    assert "planned sub-runs that finished" in names
    assert "LLC chains along training draw their own minibatches" in names
    assert r.runs["planned"] == 6 and r.runs["failed"] == 0
    assert r.metrics["seeds"] == [0, 1, 2, 3, 4]
    for row in r.metrics["cases"]:
        assert row["n_seeds"] == 5 and len(row["per_seed_rel_error"]) == 5
        assert math.isfinite(row["mean_rel_error"]) and math.isfinite(row["std_rel_error"])
    ck = r.metrics["checkpoints"]
    assert ck and all(math.isfinite(row["llc_mean"]) for row in ck)
    assert [row["step"] for row in ck] == sorted(row["step"] for row in ck)
    assert all(row["batching"] == "per-chain loop" for row in ck)
    assert {f.name for f in r.figures} == {"llc_vs_truth", "llc_along_training"}
    assert "seconds" not in str(r.metrics) and "draws_per_second" in str(r.timing)


@pytest.mark.slow
def test_quick_run_is_reproducible_beside_a_busy_process(quick):
    exp = get_experiment("llc-calibration")
    cfg = exp.make_config(quick=True)
    before = torch.get_num_threads()
    try:
        assert_reproducible_beside_load(lambda: exp(cfg, progress=False, variant="quick"), quick)
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_chains_at_a_wrong_temperature_fail_the_run():
    # broken ingredient: every scored estimate samples at 10x n beta, lambda_hat uses the nominal
    r = run_experiment(
        "llc-calibration",
        {"temperature_factor": 10.0, "checkpoint_llc": False},
        quick=True,
        progress=False,
    )
    assert r.verdict == "fail", r.summary()
    rates = [c for c in r.comparisons if c.kind == "prediction"]
    assert rates and all(c.passed is False and c.measured == 0.0 for c in rates)
    (control,) = [c for c in r.comparisons if c.kind == "control"]
    assert control.passed is True


def test_plan_seeds_are_disjoint_across_top_level_seeds():
    a, b = llc.plan(llc.Config(seed=0)), llc.plan(llc.Config(seed=1))
    seeds = [
        {s.overrides["seed"] for s in p if s.experiment == "llc-calibration-seed"} for p in (a, b)
    ]
    assert seeds[0] == {0, 1, 2, 3, 4} and seeds[1] == {5, 6, 7, 8, 9}
    assert [s.key for s in a][-1] == "checkpoints"
    no_ck = llc.plan(llc.Config(checkpoint_llc=False))
    assert not any(s.experiment == "llc-calibration-checkpoints" for s in no_ck)
    # every sub-run config builds from the overrides alone
    for sub in a:
        get_experiment(sub.experiment).make_config(dict(sub.overrides))


def test_the_parts_are_registered_as_parts_of_llc_calibration():
    for name in ("llc-calibration-seed", "llc-calibration-tuning", "llc-calibration-checkpoints"):
        assert get_experiment(name).part_of == "llc-calibration"
    assert get_experiment("llc-calibration").measure is None  # a plan of sub-runs


# -- combine: sub-run results pooled into measurements -------------------------------------------


def _fake_seed(s: int, cfg: llc.Config, err: float, control_err: float = -0.9) -> Result:
    rows = [
        {
            "case": c["name"],
            "rel_error": err,
            "estimate": c["truth"][0] * (1 + err),
            "r_hat": 1.0,
            "diverged_chains": 0,
        }
        for c in cases(cfg)
    ]
    control = {"case": rows[0]["case"], "rel_error": control_err, "temperature_factor": 10.0}
    return Result(
        experiment="llc-calibration-seed",
        config={},
        seed=s,
        metrics={"cases": rows, "control": control},
    )


def test_combine_pools_the_seeds_per_case():
    cfg = llc.Config(
        regular=("3-1",), potentials=(), deep_linear=("5-4-3:1",), checkpoint_llc=False
    )
    errs = {0: 0.02, 1: -0.05, 2: 0.15, 3: 0.0, 4: 0.01}  # one seed misses
    out = PlanOutcome(
        results={f"seed={s}": _fake_seed(s, cfg, e) for s, e in errs.items()}, n_planned=5
    )
    m = llc.combine(cfg, out)
    assert isinstance(m, llc.LLCMeasurements) and m.seeds == [0, 1, 2, 3, 4]
    assert m.checkpoints is None and len(m.controls) == 5
    case = m.cases[0]
    assert case["within"] == 4 and case["mean_rel_error"] == pytest.approx(0.026)
    assert m.metrics["cases"] is m.cases and m.metrics["control"] == m.controls
    rows = llc.compare(cfg, m)
    assert [c.kind for c in rows] == ["prediction", "prediction", "control"]
    assert all(c.passed is True for c in rows) and rows[0].measured == pytest.approx(0.8)
    del out.results["seed=4"]
    assert llc.combine(cfg, out).seeds == [0, 1, 2, 3]


# -- compare on synthetic measurements (milliseconds) --------------------------------------------


def _pooled(family: str, within: int = 5, n: int = 5) -> dict:
    return {
        "case": f"a {family} case",
        "family": family,
        "n_seeds": n,
        "within": within,
        "mean_rel_error": 0.01,
        "std_rel_error": 0.02,
    }


def _measurements(**broken: bool) -> llc.LLCMeasurements:
    """Every row passes, but those named in ``broken`` (a family, "control" or "checkpoints")."""
    ctrl = {"case": "a deep linear case", "rel_error": -0.9, "temperature_factor": 10.0}
    controls = [dict(ctrl) for _ in range(5)]
    if broken.get("control"):
        controls[2]["rel_error"] = 0.05  # one seed where the broken estimator lands within 10%
    ck = {"independent_batches": not broken.get("checkpoints"), "batching": "per-chain loop"}
    return llc.LLCMeasurements(
        seeds=[0, 1, 2, 3, 4],
        cases=[_pooled(f, within=3 if broken.get(f) else 5) for f in sorted(RATE_ROWS)],
        controls=controls,
        checkpoints=[ck, dict(ck)],
    )


def _row_of(rows: list, which: str):
    (row,) = [c for c in rows if which in c.name]
    return row


ROWS = {
    "regression": ", regression:",
    "potential": ", potential:",
    "deep linear": ", deep linear:",
    "control": "control:",
    "checkpoints": "draw their own minibatches",
}


def test_compare_every_row_passes():
    rows = llc.compare(llc.Config(), _measurements())
    assert len(rows) == len(ROWS) and all(c.passed is True for c in rows)
    assert [c.kind for c in rows] == ["prediction"] * 3 + ["control", "sanity"]
    for which in ROWS.values():
        _row_of(rows, which)


@pytest.mark.parametrize("broken", list(ROWS))
def test_compare_each_row_fails_alone(broken):
    rows = llc.compare(llc.Config(), _measurements(**{broken: True}))
    failed = [c.name for c in rows if c.passed is False]
    assert failed == [_row_of(rows, ROWS[broken]).name]
    assert all(c.passed is True for c in rows if c.name not in failed)


def test_compare_with_too_few_seeds_leaves_the_rates_not_identified():
    m = _measurements()
    m.seeds = m.seeds[:4]
    rows = llc.compare(llc.Config(), m)
    rates = [c for c in rows if c.kind in ("prediction", "control")]
    assert len(rates) == 4 and all(c.passed is None for c in rates)
    assert all("only 4 seed(s)" in c.not_identified for c in rates)
    assert _row_of(rows, ROWS["checkpoints"]).passed is True  # decided at any seed count


def test_compare_without_the_checkpoint_part_or_a_family_has_no_row_for_it():
    m = dataclasses.replace(_measurements(), checkpoints=None)
    m.cases = [c for c in m.cases if c["family"] != "potential"]
    rows = llc.compare(llc.Config(), m)
    assert len(rows) == 3 and not any("potential" in c.name for c in rows)


def test_figures_are_drawn_from_measurements():
    import matplotlib.pyplot as plt

    m = _measurements()
    for c in m.cases:
        c.update(truth=1.0, mean_estimate=1.01, std_estimate=0.02)
    m.checkpoints = [
        {"step": s, "llc_mean": v, "llc_std": 0.1, **m.checkpoints[0]}
        for s, v in ((0, 1.0), (50, 3.0))
    ]
    m.training_curve = {"step": [0, 25, 50], "loss": [1.1, 0.8, 0.7], "optimal_loss": 0.6}
    specs = llc.figures(llc.Config(), m)
    assert [s.name for s in specs] == ["llc_vs_truth", "llc_along_training"]
    for s in specs:
        plt.close(s.figure)


def _seed_row(err: float, family: str = "deep linear") -> dict:
    return {
        "case": f"a {family} case",
        "family": family,
        "truth": 2.0,
        "multiplicity": 1,
        "estimate": 2.0 * (1 + err),
        "rel_error": err,
        "std_across_chains": 0.1,
        "r_hat": 1.01,
        "n_chains": 4,
    }


@pytest.mark.parametrize("broken", [None, "case", "control"])
def test_seed_compare_each_row_fails_alone(broken):
    cases_ = [_seed_row(0.03, "regression"), _seed_row(-0.2 if broken == "case" else -0.04)]
    control = {**_seed_row(0.05 if broken == "control" else -0.88), "temperature_factor": 10.0}
    m = seed.SeedMeasurements(cases=cases_, control=control)
    rows = seed.compare(CaseConfig(), m)
    assert [c.kind for c in rows] == ["prediction", "prediction", "control"]
    passed = [c.passed for c in rows]
    want = {None: [True] * 3, "case": [True, False, True], "control": [True, True, False]}
    assert passed == want[broken]


def _grid(best_step: float, best_gamma: float = 0.5) -> list[dict]:
    steps = sorted({5e-4, 1e-3, 3e-3, best_step})
    return [
        {"step_size": s, "gamma": best_gamma, "score": 0.05 if s == best_step else 0.2, "cases": {}}
        for s in steps
    ]


@pytest.mark.parametrize("broken", [None, "regression and deep linear", "potential"])
def test_tuning_compare_each_row_fails_alone(broken):
    d = CaseConfig()
    grids = {
        "regression and deep linear": _grid(5e-4 if broken else d.step_size),
        "potential": _grid(d.nc_step_size),
    }
    if broken == "potential":
        grids = {"regression and deep linear": _grid(d.step_size), "potential": _grid(1e-3)}
    rows = tuning.compare(tuning.TuneConfig(), tuning.TuneMeasurements(grids=grids))
    assert [c.kind for c in rows] == ["sanity", "sanity"]
    assert [c.passed for c in rows] == [broken != fam for fam in tuning.GRIDS]


def test_tuning_selects_the_lowest_score_ties_to_the_larger_step_and_skips_nan():
    grid = [
        {"step_size": 1e-3, "gamma": 0.5, "score": 0.1},
        {"step_size": 2e-3, "gamma": 0.5, "score": 0.1},
        {"step_size": 5e-4, "gamma": 1.0, "score": float("nan")},
    ]
    assert tuning.select(grid)["step_size"] == 2e-3
    assert tuning.select(grid[2:]) is None
    m = tuning.TuneMeasurements(grids={"potential": grid[2:]})
    assert tuning.compare(tuning.TuneConfig(), m) == []


@pytest.mark.parametrize("independent", [True, False])
def test_checkpoints_compare_fails_when_chains_share_batches(independent):
    rows = [{"independent_batches": independent, "batching": "per-chain loop"}] * 2
    (row,) = checkpoints.compare(
        checkpoints.CheckpointConfig(), checkpoints.CheckpointMeasurements(rows=rows)
    )
    assert row.kind == "sanity" and row.passed is independent


# -- the cases -----------------------------------------------------------------------------------


def test_case_generators_depend_on_seed_and_case_only():
    cfg = CaseConfig()
    cs = cases(cfg)
    a = torch.randn(3, generator=case_generator(0, cs[0]))
    assert torch.equal(a, torch.randn(3, generator=case_generator(0, cases(cfg)[0])))
    assert not torch.equal(a, torch.randn(3, generator=case_generator(1, cs[0])))
    assert not torch.equal(a, torch.randn(3, generator=case_generator(0, cs[1])))


def test_balanced_factorization_has_rank_r_in_every_layer():
    g = torch.Generator().manual_seed(0)
    ws = llc.balanced_factorization([5, 4, 6, 3], 2, g)
    assert [tuple(w.shape) for w in ws] == [(4, 5), (6, 4), (3, 6)]
    for w in ws:
        assert int(torch.linalg.matrix_rank(w)) == 2
    prod = ws[2] @ ws[1] @ ws[0]
    s = torch.linalg.svdvals(prod)
    assert torch.allclose(s[:2], torch.ones(2, dtype=s.dtype), atol=1e-10)
    assert float(s[2:].abs().max()) < 1e-10
    assert all(float(w.abs().max()) == 0 for w in llc.balanced_factorization([3, 3, 3], 0, g))


def test_finite_n_beta_expectation_tends_to_lambda():
    # 1-D K = w^4 (lambda 1/4): the localization's correction shrinks as n beta grows
    errs = [abs(normal_crossing_expectation([2], t, 1.0) - 0.25) for t in (1e2, 1e4, 1e6)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3
    assert normal_crossing_expectation([1, 2, 3], 1e4, 1.0) is None


@pytest.mark.parametrize(
    "override",
    [
        {"deep_linear": ("5-4-3:9",)},  # rank above the narrowest width
        {"deep_linear": ("5-4-3",)},  # no rank
        {"deep_linear": (tuning.TUNING_DEEP_LINEAR[0],)},  # a tuning case cannot be scored
        {"deep_linear": ("3-6-4:2",)},  # nor its transpose (tuning case 4-6-3:2)
        {"regular": ("2-4",)},  # (tuning case 4-2)
        {"potentials": ("3-1",)},  # (tuning case 1-3)
        {"deep_linear": ("5-4-3:1", "5-4-3:1")},  # listed twice
        {"potentials": ("0",)},  # constant potential
        {"regular": ("a-b",)},
        {"regular": ("3-4-5",)},  # a regression has one input and one output width
        {"step_size": -1.0},
        {"n_chains": 0},
        {"n_seeds": 0},
        {"rate_bar": 1.5},
        {"tolerance": 0.0},
        {"temperature_factor": float("nan")},
        {"control_temperature_factor": 1.05},  # would not move the estimate past the tolerance
        {"belief_checkpoints": 1},
    ],
)
def test_bad_config_raises_piami_error(override):
    with pytest.raises(PiamiError):
        get_experiment("llc-calibration").make_config(override)
