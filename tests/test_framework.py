"""The experiment framework: comparisons and verdicts, configs, plans, the report and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from piami._io import to_jsonable
from piami.cli import main
from piami.errors import PiamiError, PiamiKeyError, PiamiTypeError, PiamiValueError
from piami.lab import (
    Comparison,
    Experiment,
    FigureSpec,
    Measurements,
    PlanOutcome,
    Result,
    SubRun,
    apply_overrides,
    code_fingerprint,
    parse_value,
    register,
)
from piami.lab import registry as registry_module
from piami.report import render_html, save_result


def row(**kw):
    base = dict(
        name="a",
        kind="prediction",
        predicted=1.0,
        measured=1.0,
        tolerance=0.1,
        tolerance_source="derived: test",
    )
    return Comparison(**(base | kw))


def test_comparison_within_absolute_and_relative():
    assert row(measured=1.05).passed is True
    assert row(measured=1.2).passed is False
    assert row(predicted=10.0, measured=10.9, relative=True).passed
    assert not row(predicted=10.0, measured=11.1, relative=True).passed


def test_comparison_numpy_inputs_give_plain_bool():
    c = row(predicted=np.float64(1.0), measured=np.float32(1.0))
    assert c.passed is True and type(c.measured) is float


def test_comparison_one_sided_and_not_identified():
    assert row(predicted=0.9, measured=0.95, tolerance=0, sense="at_least").passed
    assert not row(predicted=0.9, measured=0.85, tolerance=0, sense="at_least").passed
    assert row(predicted=0.9, measured=0.85, tolerance=0, sense="at_most").passed
    c = row(measured=float("nan"), note="diverged")
    assert c.passed is None and "nan" in c.not_identified
    c = row(measured=1.0, not_identified="the fit ended on its bound")
    assert c.passed is None and c.not_identified == "the fit ended on its bound"
    with pytest.raises(PiamiValueError):
        row(tolerance=-1)


def test_every_row_states_kind_and_tolerance_source():
    for bad in ("", "because", "tuned on: x", "papers: x", "paper:", "derived"):
        with pytest.raises(PiamiValueError, match="tolerance_source"):
            row(tolerance_source=bad)
    with pytest.raises(PiamiValueError, match="kind"):
        row(kind="check")
    with pytest.raises(TypeError):
        Comparison(name="a", predicted=1, measured=1, tolerance=0)  # no kind, no source
    for src in (
        "paper: Saxe 2014",
        "measured noise: 5 seeds",
        "tuned on cases A, B: step 1e-3",
        "a priori: the bar",
    ):
        assert row(tolerance_source=src).passed


def test_interval_cap_makes_a_row_not_identified_and_z_is_reported():
    c = row(predicted=0.2, measured=0.25, measured_interval=(0.1, 0.5), max_interval_width=0.2)
    assert c.passed is None and "wider than the 0.2" in c.not_identified
    c = row(predicted=0.2, measured=0.25, measured_interval=(0.2, 0.3), max_interval_width=0.2)
    assert c.passed is True
    assert c.z == pytest.approx(0.05 / (0.1 / (2 * 1.959963984540054)))
    assert row().z is None
    with pytest.raises(PiamiValueError, match="low"):
        row(measured_interval=(1.0, 0.0))


def test_comparison_round_trips_through_dict():
    c = row(measured=1.3, measured_interval=(1.1, 1.5), kind="refuted", note="n")
    d = json.loads(json.dumps(c.to_dict()))
    assert Comparison.from_dict(d) == c


def _result(*rows):
    return Result(experiment="x", config={}, seed=0, comparisons=list(rows))


def test_verdict_follows_the_contract():
    ok, bad = row(), row(measured=2.0)
    ni = row(not_identified="interval too wide")
    control_bad = row(kind="control", measured=2.0)
    refuted_bad = row(kind="refuted", measured=2.0)
    assert _result().verdict == "not identified" and not _result().passed  # no comparison
    assert _result(row(kind="control")).verdict == "not identified"  # no prediction made
    assert _result(ok).verdict == "pass" and _result(ok).passed
    assert _result(ok, bad).verdict == "fail"
    assert _result(ok, control_bad).verdict == "fail"
    assert _result(ok, ni).verdict == "not identified"
    assert _result(ok, refuted_bad).verdict == "pass"  # a finding, not a failure
    assert _result(ni, bad).verdict == "fail"


@dataclass(frozen=True, kw_only=True)
class _Cfg:
    seed: int = 0
    n: int = 3  # a count
    lr: float = 1e-3  # a rate
    name: str = "x"
    widths: tuple[int, ...] = (1, 2)
    opt: int | None = None


def test_overrides_are_type_checked():
    cfg = apply_overrides(_Cfg(), {"n": "5", "lr": "0.1", "widths": "3,4,5", "opt": "none"})
    assert (cfg.n, cfg.lr, cfg.widths, cfg.opt) == (5, 0.1, (3, 4, 5), None)
    with pytest.raises(PiamiTypeError, match="n: expected an integer"):
        apply_overrides(_Cfg(), {"n": "five"})
    with pytest.raises(PiamiKeyError, match="valid keys: seed, n, lr"):
        apply_overrides(_Cfg(), {"bogus": "1"})
    assert parse_value("1e4", int) == 10000


def _run(cfg, *, progress=True):
    r = Result(experiment="", config={}, seed=0, description="toy")
    r.comparisons.append(row(name="n squared", predicted=cfg.n**2, measured=cfg.n * cfg.n))
    r.timing["wall"] = 0.1
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, cfg.n])
    r.add_figure("line", fig, "a line")
    return r


def test_result_roundtrip_and_report(tmp_path):
    exp = Experiment(name="toy", config_cls=_Cfg, run=_run, quick={"n": 2})
    result = exp(exp.make_config({"n": "4"}, quick=True), variant="quick")
    assert result.passed and result.config["n"] == 4
    assert result.variant == "quick" and result.overrides == {"n": 4}
    assert result.code == code_fingerprint([exp.module]) != code_fingerprint()  # test module too
    report = save_result(result, tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["comparisons"][0]["passed"] is True and data["verdict"] == "pass"
    assert data["comparisons"][0]["kind"] == "prediction"
    assert (tmp_path / "line.png").read_bytes()[:4] == b"\x89PNG"
    text = report.read_text()
    assert "data:image/png;base64," in text and "quick" in text and "derived: test" in text
    back = Result.load(tmp_path)
    assert back.comparisons[0].measured == 16 and back.timing == {"wall": 0.1}
    assert to_jsonable(back.to_dict() | {"figures": []}) == to_jsonable(
        result.to_dict() | {"figures": []}
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_zero_comparisons_never_pass(tmp_path, monkeypatch):
    empty = Experiment(
        name="empty-toy",
        config_cls=_Cfg,
        run=lambda cfg, progress=True: Result(experiment="", config={}, seed=0),
    )
    monkeypatch.setitem(registry_module._REGISTRY, "empty-toy", empty)
    res = empty()
    assert not res.passed and res.verdict == "not identified"
    assert "badge ni" in render_html(res)
    assert main(["run", "empty-toy", "--out", str(tmp_path), "--check", "--no-progress"]) == 1


@dataclass(frozen=True, kw_only=True)
class _SeedCfg:
    seed: int = 0
    n_seeds: int = 3  # sub-runs planned
    fail_seed: int = -1  # the sub-run seed that raises


def _part_run(cfg, *, progress=True):
    if cfg.seed == 99:
        raise RuntimeError("boom")
    r = Result(experiment="", config={}, seed=cfg.seed)
    r.metrics["value"] = cfg.seed * 2
    return r


def _plan(cfg):
    return [
        SubRun(
            key=f"seed={s}",
            experiment="part-toy",
            overrides={"seed": 99 if s == cfg.fail_seed else s},
        )
        for s in range(cfg.n_seeds)
    ]


def _combine(cfg, outcome: PlanOutcome):
    r = Result(experiment="", config={}, seed=cfg.seed)
    values = [res.metrics["value"] for res in outcome.results.values()]
    r.comparisons.append(
        row(
            name="sum of values",
            predicted=sum(2 * s for s in range(cfg.n_seeds)),
            measured=sum(values),
            tolerance=0,
        )
    )
    return r


@pytest.fixture
def planned(monkeypatch):
    part = Experiment(name="part-toy", config_cls=_Cfg, run=_part_run, part_of="plan-toy")
    whole = Experiment(name="plan-toy", config_cls=_SeedCfg, plan=_plan, combine=_combine)
    monkeypatch.setitem(registry_module._REGISTRY, "part-toy", part)
    monkeypatch.setitem(registry_module._REGISTRY, "plan-toy", whole)
    return whole


def test_plan_runs_in_process_and_counts_its_sub_runs(planned):
    res = planned()
    assert res.passed and res.runs["planned"] == 3 and res.runs["computed"] == 3
    sanity = res.comparisons[-1]
    assert sanity.kind == "sanity" and sanity.passed
    broken = planned(_SeedCfg(fail_seed=1))
    assert broken.verdict == "fail" and broken.runs["failed"] == 1
    assert "boom" in broken.runs["failures"]["seed=1"]
    assert broken.comparisons[-1].passed is False  # the failed sub-run is not dropped silently


def test_plan_through_the_store_reuses_and_recomputes_on_new_code(planned, tmp_path, monkeypatch):
    from piami.lab import fingerprint
    from piami.runs import plan_runner

    runner = plan_runner(tmp_path / "runs", workers=1)
    first = planned(runner=runner, progress=False)
    second = planned(runner=runner, progress=False)
    assert first.runs["computed"] == 3 and second.runs["cached"] == 3
    assert first.comparisons[0].to_dict() == second.comparisons[0].to_dict()
    monkeypatch.setattr(fingerprint, "code_fingerprint", lambda modules=(): "edited-code")
    third = planned(runner=runner, progress=False)
    assert third.runs["computed"] == 3  # other code: the stored results are not reused


def test_list_hides_nothing_but_marks_sub_runs(planned, capsys):
    register(planned)
    assert main(["list"]) == 0
    assert "part-toy" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(capsys):
    assert main(["run", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piami: error: unknown experiment") and "Traceback" not in err
    assert err.count("\n") == 1


def test_errors_are_builtin_subclasses():
    assert issubclass(PiamiValueError, ValueError) and issubclass(PiamiValueError, PiamiError)


def test_every_experiment_module_loads():
    from piami.lab.registry import broken_modules, list_experiments

    assert broken_modules() == {}
    assert {"belief-geometry", "llc-calibration", "instrument-calibration"} <= set(
        list_experiments()
    )


def test_binomial_interval_is_clopper_pearson():
    from scipy.stats import binomtest

    from piami.lab import binomial_interval

    for k, n in ((0, 5), (3, 5), (5, 5), (7, 20)):
        ci = binomtest(k, n).proportion_ci(method="exact")
        assert binomial_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    with pytest.raises(PiamiValueError):
        binomial_interval(6, 5)


@dataclass(kw_only=True)
class _SquareMeasurements(Measurements):
    squared: float = 0.0


def _measure(cfg, *, progress=True):
    return _SquareMeasurements(
        squared=float(cfg.n * cfg.n), metrics={"n": cfg.n}, timing={"s": 0.01}
    )


def _compare(cfg, m):
    return [row(name="n squared", predicted=cfg.n**2, measured=m.squared, tolerance=0)]


def _figures(cfg, m):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, m.squared])
    return [FigureSpec(name="square", figure=fig, caption="n^2")]


def test_measure_compare_figures_skeleton_builds_the_result():
    exp = Experiment(
        name="skeleton-toy",
        config_cls=_Cfg,
        measure=_measure,
        compare=_compare,
        figures=_figures,
        describe=lambda cfg: f"n = {cfg.n}",
    )
    res = exp(_Cfg(n=5))
    assert res.passed and res.metrics == {"n": 5} and res.timing == {"s": 0.01}
    assert res.description == "n = 5" and [f.name for f in res.figures] == ["square"]
    # compare is a pure function of the measurements: a synthetic one fails the row
    (failed,) = _compare(_Cfg(n=5), _SquareMeasurements(squared=24.0))
    assert failed.passed is False
    with pytest.raises(PiamiTypeError, match="measure and compare"):
        Experiment(name="x", config_cls=_Cfg, measure=_measure)
    with pytest.raises(PiamiTypeError, match="Measurements"):
        Experiment(
            name="x", config_cls=_Cfg, measure=lambda cfg, progress=True: {}, compare=_compare
        )()


def test_combine_may_return_measurements(planned, monkeypatch):
    def combine(cfg, outcome):
        return _SquareMeasurements(
            squared=sum(r.metrics["value"] for r in outcome.results.values())
        )

    whole = Experiment(
        name="plan-toy2",
        config_cls=_SeedCfg,
        plan=_plan,
        combine=combine,
        compare=lambda cfg, m: [row(predicted=6.0, measured=m.squared, tolerance=0)],
    )
    res = whole()
    assert res.passed and res.runs["computed"] == 3 and res.comparisons[-1].kind == "sanity"
