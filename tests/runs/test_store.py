"""The run store and in-process sweeps: ids, validation before any run, caching,
failures, the table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piami import __version__
from piami.cli import main
from piami.errors import PiamiError, PiamiFileError, PiamiKeyError, PiamiTypeError
from piami.runs import RunStore, load, parse_grid, plan, run_id, sweep
from piami.runs.store import StoreLock

EXP = "toy-runs"


def _log_lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_run_id_depends_on_everything_and_nothing_else():
    base = {"seed": 0, "n": 3, "dims": [2, 3]}
    rid = run_id(EXP, base, "0.1.0")
    assert len(rid) == 16 and all(c in "0123456789abcdef" for c in rid)
    assert run_id(EXP, {"dims": [2, 3], "n": 3, "seed": 0}, "0.1.0") == rid  # key order
    assert run_id(EXP, {**base, "dims": (2, 3)}, "0.1.0") == rid  # tuple == list in JSON
    changed = [
        run_id("other", base, "0.1.0"),
        run_id(EXP, {**base, "seed": 1}, "0.1.0"),
        run_id(EXP, {**base, "n": 4}, "0.1.0"),
        run_id(EXP, base, "0.1.1"),
    ]
    assert len({rid, *changed}) == 5


def test_run_ids_hash_the_contents_of_the_files_a_run_reads(tmp_path):
    from piami.experiments import get_experiment
    from piami.lab.fingerprint import input_fingerprint

    base = {"seed": 0, "n": 3}
    assert run_id(EXP, base, "c", "") == run_id(EXP, base, "c")  # no files: ids as before
    data = tmp_path / "data.txt"
    data.write_text("abab")
    first = input_fingerprint([data])
    data.write_text("abba")  # same path, other bytes: another run
    assert input_fingerprint([data]) != first
    assert run_id(EXP, base, "c", first) != run_id(EXP, base, "c", input_fingerprint([data]))
    with pytest.raises(PiamiFileError, match="input file"):
        input_fingerprint([tmp_path / "missing.txt"])
    exp = get_experiment("belief-geometry")
    cfg = exp.config_cls(process="mess3", data=str(data))
    assert exp.inputs(cfg) == [str(data)]
    assert exp.input_fingerprint(exp.config_cls()) == ""  # synthetic runs read no file


def test_plan_expands_grid_and_seeds_in_order():
    specs = plan(EXP, {"n": "5"}, {"scale": ["1", "2"], "tag": ["a", "b"]}, seeds=2)
    got = [(s.config["scale"], s.config["tag"], s.seed) for s in specs]
    assert got == [
        (sc, t, sd) for sc in (1.0, 2.0) for t in ("a", "b") for sd in (0, 1)
    ]  # last key fastest, seeds fastest of all
    assert all(s.config["n"] == 5 and s.piami_version == __version__ for s in specs)
    assert len({s.run_id for s in specs}) == 8
    # "1" and "1.0" are the same float: one run, not two
    assert len(plan(EXP, grid={"scale": ["1", "1.0"]})) == 1
    assert parse_grid(["dims=1,2;3,4", "n=1,2"]) == {"dims": ["1,2", "3,4"], "n": ["1", "2"]}
    assert [s.config["dims"] for s in plan(EXP, grid=parse_grid(["dims=1,2;3,4"]))] == [
        (1, 2),
        (3, 4),
    ]


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"experiment": "no-such"}, PiamiKeyError, "unknown experiment 'no-such'; valid:"),
        ({"grid": {"bogus": [1]}}, PiamiKeyError, "unknown config key 'bogus'"),
        ({"grid": {"n": ["3", "three"]}}, PiamiTypeError, "n: expected an integer, got 'three'"),
        ({"base_overrides": {"scale": "big"}}, PiamiTypeError, "scale: expected a number"),
        ({"grid": {"n": ["0"]}}, PiamiError, "n must be >= 1"),  # the config's own check
        ({"seeds": 0}, PiamiError, "seeds must be >= 1"),
        ({"seeds": 2, "grid": {"seed": [1]}}, PiamiError, "not both"),
        ({"backend": "slurm"}, PiamiError, "backend must be 'local' or 'ray'"),
        ({"workers": 0}, PiamiError, "workers must be >= 1"),
        ({"retries": -1}, PiamiError, "retries must be"),
        ({"cpus_per_run": 0}, PiamiError, "cpus_per_run must be"),
        ({"address": "127.0.0.1:1"}, PiamiError, "--address is for --backend ray"),
    ],
)
def test_bad_input_fails_before_any_run(tmp_path, kwargs, err, match):
    out = tmp_path / "store"
    kwargs = {"experiment": EXP, "workers": 1, **kwargs}
    with pytest.raises(err, match=match) as info:
        sweep(**kwargs, out=out, progress=False)
    assert "\n" not in str(info.value)
    assert not any(out.glob("*/spec.json"))  # nothing planned, nothing ran


def test_grid_strings_must_look_right():
    with pytest.raises(PiamiError, match="key=v1,v2"):
        parse_grid(["n"])
    with pytest.raises(PiamiError, match="given twice"):
        parse_grid(["n=1", "n=2"])


def test_inprocess_sweep_stores_once_and_never_redoes(tmp_path):
    out, log = tmp_path / "store", tmp_path / "log.txt"
    res = sweep(
        EXP, {"log": str(log)}, {"scale": [1.0, 3.0]}, seeds=2, out=out, workers=1, progress=False
    )
    assert (res.n_finished, res.n_cached, res.n_failed) == (4, 0, 0) and res.backend == "inprocess"
    assert len(_log_lines(log)) == 4
    store = RunStore(out)
    for rid in res.run_ids:
        data = json.loads((store.path(rid) / "result.json").read_text())
        spec = json.loads((store.path(rid) / "spec.json").read_text())
        assert data["config"] == spec["config"] and spec["run_id"] == rid
        assert run_id(EXP, data["config"], data["code"]) == rid and spec["code"] == data["code"]
    mtimes = {rid: (store.path(rid) / "result.json").stat().st_mtime_ns for rid in res.run_ids}
    # a larger sweep that contains the first: only the new runs execute
    res2 = sweep(
        EXP,
        {"log": str(log)},
        {"scale": [1.0, 3.0, 5.0]},
        seeds=2,
        out=out,
        workers=1,
        progress=False,
    )
    assert (res2.n_finished, res2.n_cached) == (2, 4)
    assert len(_log_lines(log)) == 6
    assert all(l.split()[0] in "01" for l in _log_lines(log)[4:])
    assert {r: (store.path(r) / "result.json").stat().st_mtime_ns for r in mtimes} == mtimes
    # the results are what the experiment computes for that config
    for r in res2.results():
        assert r.metrics["mean"] == pytest.approx(r.metrics["mean"])
        assert r.config["scale"] in (1.0, 3.0, 5.0)


def test_load_gives_configs_metrics_measured_and_passed(tmp_path):
    out = tmp_path / "store"
    res = sweep(
        EXP,
        grid={"scale": [1.0, 2.0], "fail": [False, True]},
        out=out,
        workers=1,
        retries=0,
        progress=False,
    )
    df = load(out)
    assert len(df) == 4 and set(df.run_id) == set(res.run_ids)
    for col in (
        "seed",
        "n",
        "scale",
        "dims",
        "passed",
        "runtime_s",
        "metrics.mean",
        "metrics.nested.max",
        "measured.mean square",
        "status",
        "error",
    ):
        assert col in df.columns, col
    assert "metrics.trace_list" not in df.columns  # lists are not scalars
    ok = df[df.status == "finished"]
    assert len(ok) == 2 and ok.passed.tolist() == [True, True]
    assert ok.dims.tolist() == [(2, 3), (2, 3)]
    bad = df[df.status == "failed"]
    assert len(bad) == 2 and bad.error.str.contains("toy failure").all()
    assert all(math.isnan(v) for v in bad["metrics.mean"])
    # the sweep's own frame is the same rows, in plan order
    assert res.frame().run_id.tolist() == res.run_ids
    assert load(out, experiment="nothing").empty
    with pytest.raises(PiamiFileError):
        load(tmp_path / "missing")


def test_failures_are_recorded_retried_and_do_not_stop_others(tmp_path, capsys):
    out, log = tmp_path / "store", tmp_path / "log.txt"
    res = sweep(
        EXP,
        {"log": str(log)},
        {"fail": [True, False]},
        seeds=2,
        out=out,
        workers=1,
        retries=2,
        progress=True,
    )
    bar = capsys.readouterr().err  # the progress bar counts finished, running and failed runs
    assert "sweep toy-runs" in bar and "finished 2, running 0, failed 2" in bar
    assert (res.n_finished, res.n_failed) == (2, 2) and not res.ok
    store = RunStore(out)
    for r in res.runs:
        if r.spec.config["fail"]:
            assert r.status == "failed" and r.attempts == 3 and "toy failure" in r.error
            err = store.error(r.spec.run_id)
            assert err["n_attempts"] == 3 and err["type"] == "RuntimeError"
            assert "Traceback" in err["traceback"] and len(err["attempts"]) == 3
            assert not (store.path(r.spec.run_id) / "result.json").exists()
        else:
            assert r.status == "finished" and store.error(r.spec.run_id) is None
    assert len(_log_lines(log)) == 2 * 3 + 2
    # left failed on request; retried (and failed again) by default
    again = sweep(
        EXP,
        {"log": str(log)},
        {"fail": [True, False]},
        seeds=2,
        out=out,
        workers=1,
        retries=0,
        rerun_failed=False,
        progress=False,
    )
    assert (again.n_cached, again.n_failed, again.n_finished) == (2, 2, 0)
    assert len(_log_lines(log)) == 8
    sweep(
        EXP,
        {"log": str(log)},
        {"fail": [True, False]},
        seeds=2,
        out=out,
        workers=1,
        retries=0,
        progress=False,
    )
    assert len(_log_lines(log)) == 10


def test_stale_temporaries_are_removed_and_one_sweep_per_store(tmp_path):
    out = tmp_path / "store"
    res = sweep(EXP, seeds=1, out=out, workers=1, progress=False)
    stale = RunStore(out).path(res.run_ids[0]) / ".tmp-result.json.abc123"
    stale.write_text('{"half": ')
    assert sweep(EXP, seeds=1, out=out, workers=1, progress=False).n_cached == 1
    assert not stale.exists()
    with StoreLock(out), pytest.raises(PiamiFileError, match="another sweep"):
        sweep(EXP, seeds=1, out=out, workers=1, progress=False)


def test_cli_sweep_ls_show(tmp_path, capsys):
    out = tmp_path / "store"
    args = ["sweep", EXP, "--set", "n=4", "--grid", "scale=1,2", "--grid", "fail=false,true"]
    rc = main([*args, "--out", str(out), "--workers", "1", "--retries", "0", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 1 and "4 runs: 2 ran" in text and "toy failure" in text
    assert main(["runs", "ls", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 runs in" in text and text.count("finished") == 2 and text.count("failed") == 2
    assert "scale=" in text and "fail=" in text  # the keys that vary are shown
    rid = next(i.spec.run_id for i in RunStore(out).list() if i.status == "finished")
    assert main(["runs", "show", rid[:6], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert rid in text and "mean square" in text
    fid = next(i.spec.run_id for i in RunStore(out).list() if i.status == "failed")
    assert main(["runs", "show", fid, "--out", str(out)]) == 0
    assert "RuntimeError: toy failure" in capsys.readouterr().out
    assert main(["runs", "ls", "--out", str(out), "--status", "failed"]) == 0
    assert "2 runs in" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["sweep", "no-such"], "unknown experiment"),
        (["sweep", EXP, "--grid", "n=1,x"], "n: expected an integer, got 'x'"),
        (["sweep", EXP, "--grid", "nope=1"], "unknown config key 'nope'"),
        (["sweep", EXP, "--backend", "ray", "--address", "127.0.0.1:1"], "cannot reach a Ray"),
        (["sweep", EXP, "--backend", "ray", "--address", "nohostport"], "HOST:PORT"),
        (["runs", "show", "zz"], "hex digits"),
        (["runs", "show", "0"], "no run id starts with"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, argv, match):
    rc = main([*argv, "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1 and "Traceback" not in err
    assert not any((tmp_path / "store").glob("*/spec.json"))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(max_size=12), min_size=1, max_size=3),
    st.sampled_from(["n", "scale", "fail", "dims", "tag"]),
)
def test_any_grid_text_plans_or_fails_with_a_piami_error(values, key):
    item = f"{key}={','.join(values)}"
    try:
        specs = plan(EXP, grid=parse_grid([item]))
    except PiamiError as exc:
        assert "\n" not in str(exc)
        return
    assert specs and all(isinstance(s.config["n"], int) for s in specs)
    assert len({s.run_id for s in specs}) == len(specs)


def test_editing_the_experiment_source_makes_the_next_sweep_recompute(tmp_path, monkeypatch):
    """The cache knows the code: same config, edited module -> a new run, not the stored one."""
    import importlib
    import shutil
    import sys

    from piami.lab import registry

    src = Path(__file__).with_name("toy_experiment.py")
    mod_dir = tmp_path / "plugin"
    mod_dir.mkdir()
    target = mod_dir / "toy_edited_experiment.py"
    shutil.copy(src, target)
    text = target.read_text().replace('name="toy-runs"', 'name="toy-edited"')
    target.write_text(text)
    monkeypatch.syspath_prepend(str(mod_dir))
    module = importlib.import_module("toy_edited_experiment")
    monkeypatch.setitem(registry._REGISTRY, "toy-edited", module.EXPERIMENT)
    out = tmp_path / "store"
    first = sweep("toy-edited", seeds=2, out=out, workers=1, progress=False)
    again = sweep("toy-edited", seeds=2, out=out, workers=1, progress=False)
    assert (first.n_finished, again.n_cached) == (2, 2)
    target.write_text(text + "\n# an edit: the code that runs is no longer the code that ran\n")
    edited = sweep("toy-edited", seeds=2, out=out, workers=1, progress=False)
    assert (edited.n_finished, edited.n_cached) == (2, 0)
    assert set(edited.run_ids).isdisjoint(first.run_ids)
    sys.modules.pop("toy_edited_experiment", None)
