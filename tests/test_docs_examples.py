"""The documentation's code runs as printed: the tutorial script, the example experiment, the site.

Each check runs in a subprocess, as a reader would run it, from a fresh working directory where
the example writes files: the tutorial (docs/examples/tutorial.py), the tests of the example
experiment of "Writing an experiment", that experiment through the command line with
``PIAMI_PLUGINS``, and ``mkdocs build --strict`` when the docs extra is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
TIMEOUT_S = 300


def _env(**extra: str) -> dict[str, str]:
    """The current environment, with a non-interactive plotting backend and ``extra`` set."""
    env = {**os.environ, "MPLBACKEND": "Agg", **extra}
    env.pop("PIAMI_PLUGINS", None) if "PIAMI_PLUGINS" not in extra else None
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
        f"\n--- stderr\n{proc.stderr[-4000:]}"
    )
    return proc


def _with_examples_on_path(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH", "")]))
    return _env(PYTHONPATH=path, **extra)


def test_tutorial_script_runs_as_printed(tmp_path: Path) -> None:
    proc = _run([sys.executable, str(EXAMPLES / "tutorial.py")], tmp_path, _env())
    assert "verdict: pass" in proc.stdout
    assert (tmp_path / "out" / "my-probe" / "result.json").is_file()
    assert (tmp_path / "out" / "my-probe" / "report.html").is_file()


def test_example_experiment_tests_pass(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    args += [str(EXAMPLES / "test_sphere_dimension.py")]
    proc = _run(args, tmp_path, _with_examples_on_path())
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_example_experiment_runs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "sphere-dimension"
    args = [sys.executable, "-m", "piami.cli", "run", "sphere-dimension", "--quick"]
    args += ["--no-progress", "--out", str(out)]
    _run(args, tmp_path, _with_examples_on_path(PIAMI_PLUGINS="sphere_dimension"))
    result = json.loads((out / "result.json").read_text())
    assert result["experiment"] == "sphere-dimension"
    assert result["variant"] == "quick"
    assert {c["kind"] for c in result["comparisons"]} == {"prediction", "control"}
    assert (out / "report.html").is_file()


def test_docs_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("latex2mathml")
    args = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    _run(args, ROOT, _env(NO_MKDOCS_2_WARNING="1"))
    for page in ("index.html", "lab.html", "tutorial.html", "experiments/llc-calibration.html"):
        assert (tmp_path / "site" / page).is_file(), page
