"""`piami process SPEC`: exact quantities in nats and bits; bad specs are one line, exit 2."""

import math

import pytest

from piami.cli import main


def test_process_prints_exact_quantities(capsys):
    assert main(["process", "rrxor", "--positions", "4"]) == 0
    out = capsys.readouterr().out
    assert "rrxor(p1=0.5, p2=0.5)" in out
    assert "0.666667 bits" in out  # entropy rate
    assert f"{math.log2(6) - 1 / 3:.6f} bits" in out  # C_mu = E
    assert "mixed states from root     36" in out
    assert "t = 3" in out and "t = 4" not in out


def test_process_non_unifilar_says_c_mu_diverges(capsys):
    args = [
        "process",
        "mess3(x=0.15, a=0.6)",
        "--positions",
        "2",
        "--chains",
        "64",
        "--steps",
        "500",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "diverges" in out and "Blackwell" in out and "1.5709" in out  # exact myopic bound


@pytest.mark.parametrize("spec", ["mess4", "mess3(y=2)", "mess3(x=9)", "mess3(", "hmm(T=[[1]])"])
def test_bad_spec_is_one_line_exit_2(spec, capsys):
    assert main(["process", spec]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("piami: error:")
    assert "Traceback" not in captured.err


def test_bad_positions_exit_2(capsys):
    assert main(["process", "mess3", "--positions", "0"]) == 2
    assert "positions" in capsys.readouterr().err
