"""llc-calibration: the quick run's rates and control, a broken temperature failing the run,
reproducibility beside a busy process, the plan's seeds, the combine step and config validation."""

from __future__ import annotations

import math

import pytest
import torch
from reproducibility import assert_reproducible_beside_load

from piami.errors import PiamiError
from piami.experiments import get_experiment, run_experiment
from piami.experiments._llc_cases import CaseConfig, case_generator, cases
from piami.experiments._llc_tuning import TUNING_DEEP_LINEAR
from piami.experiments.llc_calibration import Config, balanced_factorization, combine, plan
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
    a, b = plan(Config(seed=0)), plan(Config(seed=1))
    seeds = [
        {s.overrides["seed"] for s in p if s.experiment == "llc-calibration-seed"} for p in (a, b)
    ]
    assert seeds[0] == {0, 1, 2, 3, 4} and seeds[1] == {5, 6, 7, 8, 9}
    assert [s.key for s in a][-1] == "checkpoints"
    assert not any(
        s.experiment == "llc-calibration-checkpoints" for s in plan(Config(checkpoint_llc=False))
    )
    # every sub-run config builds from the overrides alone
    for sub in a:
        get_experiment(sub.experiment).make_config(dict(sub.overrides))


def _fake_seed(seed: int, cfg: Config, err: float, control_err: float = -0.9) -> Result:
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
        seed=seed,
        metrics={"cases": rows, "control": control},
    )


def test_combine_counts_rates_and_refuses_too_few_seeds():
    cfg = Config(regular=("3-1",), potentials=(), deep_linear=("5-4-3:1",), checkpoint_llc=False)
    errs = {0: 0.02, 1: -0.05, 2: 0.15, 3: 0.0, 4: 0.01}  # one seed misses
    out = PlanOutcome(
        results={f"seed={s}": _fake_seed(s, cfg, e) for s, e in errs.items()}, n_planned=5
    )
    r = combine(cfg, out)
    rates = {c.name: c for c in r.comparisons if c.kind == "prediction"}
    assert len(rates) == 2
    for c in rates.values():
        assert c.measured == pytest.approx(0.8) and c.passed is True
    assert r.comparisons[-1].kind == "control" and r.comparisons[-1].passed is True
    case = r.metrics["cases"][0]
    assert case["within"] == 4 and case["mean_rel_error"] == pytest.approx(0.026)
    # a control that does not miss fails; fewer than 5 seeds leave the rates undecided
    out.results["seed=4"] = _fake_seed(4, cfg, 0.01, control_err=0.05)
    assert combine(cfg, out).comparisons[-1].passed is False
    del out.results["seed=4"]
    r = combine(cfg, out)
    assert all(c.passed is None for c in r.comparisons)
    assert "only 4 seed(s)" in r.comparisons[0].not_identified


def test_case_generators_depend_on_seed_and_case_only():
    cfg = CaseConfig()
    cs = cases(cfg)
    a = torch.randn(3, generator=case_generator(0, cs[0]))
    assert torch.equal(a, torch.randn(3, generator=case_generator(0, cases(cfg)[0])))
    assert not torch.equal(a, torch.randn(3, generator=case_generator(1, cs[0])))
    assert not torch.equal(a, torch.randn(3, generator=case_generator(0, cs[1])))


def test_balanced_factorization_has_rank_r_in_every_layer():
    g = torch.Generator().manual_seed(0)
    ws = balanced_factorization([5, 4, 6, 3], 2, g)
    assert [tuple(w.shape) for w in ws] == [(4, 5), (6, 4), (3, 6)]
    for w in ws:
        assert int(torch.linalg.matrix_rank(w)) == 2
    prod = ws[2] @ ws[1] @ ws[0]
    s = torch.linalg.svdvals(prod)
    assert torch.allclose(s[:2], torch.ones(2, dtype=s.dtype), atol=1e-10)
    assert float(s[2:].abs().max()) < 1e-10
    assert all(float(w.abs().max()) == 0 for w in balanced_factorization([3, 3, 3], 0, g))


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
        {"deep_linear": (TUNING_DEEP_LINEAR[0],)},  # a tuning case cannot be scored
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
