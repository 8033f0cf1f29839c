"""The experiment framework: comparisons compute `passed`, configs parse overrides, the CLI fails cleanly."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from piami.cli import main
from piami.errors import PiamiError, PiamiKeyError, PiamiTypeError, PiamiValueError
from piami.experiments import Comparison, Experiment, Result, apply_overrides, parse_value
from piami.report import save_result


def test_comparison_within_absolute_and_relative():
    assert Comparison(name="a", predicted=1.0, measured=1.05, tolerance=0.1).passed is True
    assert Comparison(name="a", predicted=1.0, measured=1.2, tolerance=0.1).passed is False
    assert Comparison(name="a", predicted=10.0, measured=10.9, tolerance=0.1, relative=True).passed
    assert not Comparison(
        name="a", predicted=10.0, measured=11.1, tolerance=0.1, relative=True
    ).passed


def test_comparison_numpy_inputs_give_plain_bool():
    import numpy as np

    c = Comparison(name="a", predicted=np.float64(1.0), measured=np.float32(1.0), tolerance=0.1)
    assert c.passed is True and type(c.measured) is float


def test_comparison_one_sided_and_not_made():
    assert Comparison(name="a", predicted=0.9, measured=0.95, tolerance=0, sense="at_least").passed
    assert not Comparison(
        name="a", predicted=0.9, measured=0.85, tolerance=0, sense="at_least"
    ).passed
    assert Comparison(name="a", predicted=0.9, measured=0.85, tolerance=0, sense="at_most").passed
    c = Comparison(name="a", predicted=1.0, measured=float("nan"), tolerance=0.1, note="diverged")
    assert c.passed is None
    with pytest.raises(PiamiValueError):
        Comparison(name="a", predicted=1.0, measured=1.0, tolerance=-1)


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
    r.comparisons.append(
        Comparison(name="n squared", predicted=cfg.n**2, measured=cfg.n * cfg.n, tolerance=0)
    )
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, cfg.n])
    r.add_figure("line", fig, "a line")
    return r


def test_result_roundtrip_and_report(tmp_path):
    exp = Experiment(name="toy", config_cls=_Cfg, run=_run, quick={"n": 2})
    result = exp(exp.make_config({"n": "4"}, quick=True))
    assert result.passed and result.config["n"] == 4
    report = save_result(result, tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["comparisons"][0]["passed"] is True
    assert (tmp_path / "line.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in report.read_text()
    assert Result.load(tmp_path).comparisons[0].measured == 16
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_cli_bad_input_is_one_line(capsys):
    assert main(["run", "no-such-experiment"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piami: error: unknown experiment") and "Traceback" not in err
    assert err.count("\n") == 1


def test_errors_are_builtin_subclasses():
    assert issubclass(PiamiValueError, ValueError) and issubclass(PiamiValueError, PiamiError)


def test_every_experiment_module_loads():
    from piami.experiments.registry import broken_modules, list_experiments

    assert broken_modules() == {}
    assert {"belief-geometry", "llc-calibration", "instrument-calibration"} <= set(
        list_experiments()
    )
