"""The command line under generated bad input: exit 0 (or 1 for --check), or exit 2 with one line.

Argument vectors are built from each subcommand's own options, mixed with malformed values (bad
numbers, NaN, negative and huge sizes and seeds, paths that cannot be folders, over-long names,
unknown keys). Experiments are replaced by a stub that validates its config and returns a tiny
result, so a well-formed command costs milliseconds; what is fuzzed is everything before and
after the compute: parsing, validation, paths, stores, reports. Every case must finish within
the deadline, print no traceback, and leave no ``.tmp-*`` file behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piami.cli import main
from piami.lab import Comparison, Result
from piami.lab import registry as registry_module

from .conftest import case, examples

NAMES = [
    "belief-geometry",
    "staircase",
    "kernel-limit",
    "modular-addition",
    "nope",
    "",
    "-x",
    "belief_geometry",
    "a" * 300,
]
KEYS = ["seed", "n_steps", "lr", "process", "dims", "bogus", "device", "dtype", "quick", ""]
VALUES = [
    "0",
    "-1",
    "1",
    "2",
    "1.5",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "10**9",
    "x",
    "",
    "none",
    "true",
    "1,2,3",
    "mess3",
    "no_such(3)",
    str(2**64),
    "9" * 40,
    "\x00",
    "é",
]
NUMBERS = ["0", "-1", "1", "2", "3", "nan", "x", "1e9", str(2**63), "-0", "", "1.5"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-fuzz")
    (root / "a_file").write_text("not a folder")
    (root / "text.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    return root


def _paths(root: Path) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            str(root / "out"),
            str(root / "out" / "deeper"),
            str(root / "a_file"),
            str(root / "a_file" / "under"),
            str(root / ("n" * 300)),
            "/proc/piami-no",
            "",
            str(root / "text.txt"),
            str(root / "store"),
        ]
    )


def _stub_call(self, cfg=None, *, progress=True, runner=None, variant=None):
    """Stands in for running an experiment: validate the config, return one passing row."""
    cfg = self.config_cls() if cfg is None else cfg
    res = Result(experiment=self.name, config={}, seed=int(cfg.seed))
    res.comparisons.append(
        Comparison(
            name="stub",
            kind="prediction",
            predicted=1.0,
            measured=1.0,
            tolerance=0.0,
            tolerance_source="derived: a stub",
        )
    )
    return res


def argv_strategy(root: Path) -> st.SearchStrategy[list[str]]:
    paths = _paths(root)
    sets = st.lists(
        st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)).map(lambda kv: f"{kv[0]}={kv[1]}")
        | st.sampled_from(VALUES),
        max_size=3,
    ).map(lambda xs: [a for x in xs for a in ("--set", x)])
    run = st.builds(
        lambda n, s, out, flags: ["run", n, *s, "--out", out, "--no-progress", *flags],
        st.sampled_from(NAMES),
        sets,
        paths,
        st.lists(st.sampled_from(["--quick", "--check", "--workers", "1", "--store"]), max_size=3),
    )
    sweep = st.builds(
        lambda n, s, g, seeds, out: [
            "sweep",
            n,
            *s,
            "--grid",
            g,
            "--seeds",
            seeds,
            "--out",
            out,
            "--workers",
            "1",
            "--no-progress",
            "--quick",
        ],
        st.sampled_from(NAMES),
        sets,
        st.sampled_from(["seed=1,2", "lr=", "=1", "bogus=1", "n_steps=1;2", "dims=1,2;3", "x"]),
        st.sampled_from(NUMBERS),
        paths,
    )
    certify = st.builds(
        lambda seeds, out, only: [
            "certify",
            "--seeds",
            seeds,
            "--out",
            out,
            "--workers",
            "1",
            "--no-progress",
            "--quick",
            *only,
        ],
        st.sampled_from(["0", "1", "-2", "x", "101", "1e3"]),
        paths,
        st.lists(st.sampled_from(NAMES[:5]), max_size=2).map(
            lambda ns: [a for n in ns for a in ("--only", n)]
        ),
    )
    runs = st.builds(
        lambda sub, rid, out: ["runs", sub, *rid, "--out", out],
        st.sampled_from(["ls", "show", "rm", ""]),
        st.lists(st.sampled_from(["0123", "zz", "", "-1", "a" * 300]), max_size=1),
        paths,
    )
    process = st.builds(
        # small defaults first (a later option overrides them): valid cases stay cheap
        lambda spec, opts: [
            "process",
            spec,
            "--chains",
            "4",
            "--steps",
            "20",
            "--positions",
            "3",
            *opts,
        ],
        st.sampled_from(
            [
                "mess3",
                "rrxor",
                "mess3(x=0.1, x=0.2)",
                "nope(1)",
                "random_hmm(n_states=9999999, n_symbols=2)",
                "mess3(x=nan)",
                "",
                "golden_mean(p=2)",
            ]
        ),
        st.lists(
            st.tuples(
                st.sampled_from(["--positions", "--chains", "--steps"]),
                st.sampled_from(["2", "0", "-5", "x", "1e12", str(10**10), "99"]),
            ),
            max_size=2,
        ).map(lambda xs: [a for x in xs for a in x]),
    )
    small = [
        "--n-seqs",
        "200",
        "--seq-len",
        "32",
        "--n-boot",
        "3",
        "--n-max-lag",
        "8",
        "--n-lags",
        "4",
        "--n-max-entropy",
        "4",
        "--no-progress",
    ]
    stats = st.builds(
        lambda src, opts: ["stats", src, *small, *opts],
        st.sampled_from(
            [
                "mess3",
                str(root / "text.txt"),
                "rhm(v=4, m=2, s=2, L=3)",
                "rhm(v=4)",
                "rhm(v=4, m=9, s=2, L=3)",
                "a" * 300,
                "",
                str(root / "a_file" / "x"),
                "golden_mean(p=2)",
                "random_hmm(n_states=2000, n_symbols=9)",
            ]
        ),
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        "--seed",
                        "--n-seqs",
                        "--seq-len",
                        "--n-boot",
                        "--max-chars",
                        "--out",
                        "--tokenizer",
                        "--n-lags",
                    ]
                ),
                st.sampled_from(
                    [
                        "-1",
                        "0",
                        "x",
                        "nan",
                        "bpe:0",
                        str(2**70),
                        "byte",
                        str(root / "a_file"),
                        str(root / "stats-out"),
                    ]
                ),
            ),
            max_size=2,
        ).map(lambda xs: [a for x in xs for a in x]),
    )
    noise = st.lists(
        st.sampled_from(
            [
                "run",
                "list",
                "sweep",
                "runs",
                "process",
                "stats",
                "certify",
                "--help-no",
                "--version-x",
                "--set",
                "x=1",
                "--out",
                "-",
                "--",
                "\x00",
            ]
        ),
        max_size=4,
    )
    return st.one_of(run, sweep, certify, runs, process, stats, noise)


SETTINGS = dict(deadline=20_000, suppress_health_check=list(HealthCheck))


@pytest.fixture
def stubbed(monkeypatch, sandbox):
    """Experiments stubbed, every executor in this process (a pool's workers would run the real
    experiments), and the working folder inside the sandbox (default paths such as out/ land
    there)."""
    import importlib

    from piami.runs.executors import InProcessExecutor

    execution = importlib.import_module("piami.runs.execution")

    monkeypatch.setattr(registry_module.Experiment, "__call__", _stub_call)
    monkeypatch.setattr(execution, "_make_executor", lambda *a, **k: InProcessExecutor())
    monkeypatch.chdir(sandbox)


def _check(argv: list[str], capsys, root: Path) -> None:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: --help, or its own one-line error
        status = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, (argv, err)
    assert status in (0, 1, 2), (argv, status, err)
    if status == 2 and "usage:" not in err + out:  # help printed for a missing command
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("piami: error:"), (argv, err)
    leftovers = [p for p in root.rglob(".tmp-*")]
    assert not leftovers, (argv, leftovers)


@pytest.mark.usefixtures("stubbed")
@settings(max_examples=examples(1000), **SETTINGS)
@given(data=st.data())
def test_generated_command_lines_end_cleanly(sandbox, capsys, data):
    argv = data.draw(argv_strategy(sandbox))
    with case():
        _check(argv, capsys, sandbox)


@pytest.mark.usefixtures("stubbed")
@settings(max_examples=examples(150), **SETTINGS)
@given(argv=st.lists(st.text(max_size=12), max_size=5))
def test_arbitrary_text_arguments_end_cleanly(sandbox, capsys, argv):
    with case():
        _check(argv, capsys, sandbox)
