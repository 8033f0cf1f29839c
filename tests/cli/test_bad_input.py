"""Named regressions for every category of bad input found by fuzzing the CLI (issue 13).

Each test is one category: the command must end with exit 2 and one line on stderr, before any
work, leaving no half-written file; or, for damaged stores, list what it can and name the rest.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from piami.cli import main
from piami.lab import Comparison, Result
from piami.lab import registry as registry_module


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("piami: error:"), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def calls(monkeypatch):
    """Replace experiments by a stub that records each call (so 'before any work' is checkable)."""
    seen = []

    def stub(self, cfg=None, *, progress=True, runner=None, variant=None):
        seen.append((self.name, cfg))
        r = Result(experiment=self.name, config={}, seed=0)
        r.comparisons.append(
            Comparison(
                name="s",
                kind="prediction",
                predicted=1,
                measured=1,
                tolerance=0,
                tolerance_source="derived: stub",
            )
        )
        return r

    monkeypatch.setattr(registry_module.Experiment, "__call__", stub)
    return seen


@pytest.mark.parametrize("out", ["a_file", "a_file/under", "n" * 300])
def test_out_that_cannot_be_a_folder_fails_before_the_run(tmp_path, capsys, calls, out):
    (tmp_path / "a_file").write_text("x")
    assert main(["run", "kernel-limit", "--quick", "--out", str(tmp_path / out)]) == 2
    assert "--out" in one_line_error(capsys) and calls == []  # nothing was computed


def test_sweep_and_certify_check_out_first(tmp_path, capsys, calls):
    (tmp_path / "f").write_text("x")
    assert (
        main(
            [
                "sweep",
                "kernel-limit",
                "--quick",
                "--out",
                str(tmp_path / "f"),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    one_line_error(capsys)
    assert main(["certify", "--quick", "--out", str(tmp_path / "f"), "--no-progress"]) == 2
    one_line_error(capsys)
    assert calls == []


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "kernel-limit", "--set", "seed=-1"],
        ["run", "kernel-limit", "--set", "seed=1.5"],
        ["run", "kernel-limit", "--set", f"seed={2**64}"],
        ["stats", "mess3", "--seed", "-3"],
        ["process", "random_hmm(n_states=3, n_symbols=2, seed=1.5)"],
    ],
)
def test_seeds_are_non_negative_integers(capsys, calls, argv):
    assert main(argv) == 2
    assert "seed" in one_line_error(capsys) and calls == []


def test_nan_in_a_float_field_is_refused(capsys, calls):
    assert main(["run", "dmft-two-layer", "--quick", "--set", "dt=nan"]) == 2
    assert "NaN" in one_line_error(capsys) and calls == []


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "kernel-limit", "--seeds", str(10**9), "--workers", "1"],
        [
            "sweep",
            "kernel-limit",
            "--grid",
            "seed=" + ",".join(map(str, range(400))),
            "--grid",
            "n_test=" + ",".join(map(str, range(100, 400))),
        ],
        ["process", "random_hmm(n_states=1000000, n_symbols=2)"],
        ["process", "mess3", "--chains", "100000", "--steps", "100000"],
        ["stats", "mess3", "--n-seqs", str(10**12)],
    ],
)
def test_sizes_past_the_stated_limit_are_refused_at_once(tmp_path, capsys, calls, argv):
    assert main([*argv, *(["--out", str(tmp_path / "o")] if argv[0] == "sweep" else [])]) == 2
    assert re.search("limit|at most", one_line_error(capsys)) and calls == []


def test_a_source_name_longer_than_the_file_system_allows(capsys):
    assert main(["stats", "x" * 5000, "--no-progress"]) == 2
    one_line_error(capsys)


def test_a_repeated_spec_keyword_is_an_error(capsys):
    assert main(["process", "mess3(x=0.1, x=0.2)"]) == 2
    assert "more than once" in one_line_error(capsys)


def _damaged_store(root: Path) -> None:
    good = {"run_id": "c3", "experiment": "x", "config": {"seed": 0}, "seed": 0, "code": "z"}
    for name, files in {
        "a1": {"spec.json": b"[1, 2]"},
        "b2": {"spec.json": b"\xff\xfe"},
        "c3": {"spec.json": json.dumps(good).encode(), "result.json": b"[]"},
        "e5": {"spec.json": b'{"run_id": "e5", "seed": Infinity}'},
        "f6": {"spec.json": json.dumps(good | {"run_id": "f6"}).encode(), "error.json": b"7"},
    }.items():
        (root / name).mkdir(parents=True)
        for f, data in files.items():
            (root / name / f).write_bytes(data)
    (root / "d4" / "spec.json").mkdir(parents=True)


def test_runs_ls_lists_what_it_can_and_names_damaged_runs(tmp_path, capsys):
    _damaged_store(tmp_path)
    assert main(["runs", "ls", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("a1", "b2", "c3", "d4", "e5"):
        assert f"damaged {name}:" in out
    assert "f6" in out  # readable spec: listed
    for rid in ("c3", "a1", "f6", "d4"):
        assert main(["runs", "show", rid, "--out", str(tmp_path)]) in (0, 2)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err


def test_numerical_warnings_do_not_reach_the_terminal_above_an_error(capsys, monkeypatch):
    import numpy as np

    from piami.cli import process as process_cli

    def warn_then_fail(args):
        np.log(np.zeros(2))  # RuntimeWarning: divide by zero
        from piami.errors import PiamiValueError

        raise PiamiValueError("bad input")

    monkeypatch.setattr(process_cli, "cmd_process", warn_then_fail)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert main(["process", "mess3"]) == 2
    assert one_line_error(capsys) == "piami: error: bad input"


def test_an_interrupted_run_leaves_nothing_half_written(tmp_path, capsys, calls, monkeypatch):
    """Stale .tmp-* files are removed by the next run; a report never stands beside no result."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".tmp-result.json.abc").write_text("half")
    assert main(["run", "kernel-limit", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert not list(out.glob(".tmp-*")) and (out / "result.json").is_file()
    # a kill between result.json and report.html: the old report is gone, not left to lie
    from piami.report import html as html_module

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(html_module, "atomic_write_json", killed)
    assert main(["run", "kernel-limit", "--quick", "--out", str(out), "--no-progress"]) == 130
    assert not (out / "report.html").exists()
