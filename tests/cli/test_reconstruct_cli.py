"""`piami reconstruct`: machine.json from a spec, a text file or a .npy array; bad input exits 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from piami.cli import main

C_GOLDEN = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))


@pytest.mark.parametrize("method", ["cssr", "spectral", "bsi"])
def test_golden_mean_from_a_spec(tmp_path, capsys, method):
    out = tmp_path / method
    argv = ["reconstruct", "golden_mean", "--method", method, "--n", "20000", "--out", str(out)]
    assert main(argv) == 0
    rec = json.loads((out / "machine.json").read_text())
    assert rec["method"] == method and rec["n_states"] == 2 and rec["units"] == "bits"
    h = rec["entropy_rate"]
    assert h["low"] <= 2 / 3 <= h["high"] and abs(h["value"] - 2 / 3) < 0.01
    if method != "spectral":  # a generalized presentation has no causal states
        assert rec["statistical_complexity"]["value"] == pytest.approx(C_GOLDEN, abs=0.01)
    assert (out / "machine.dot").read_text().startswith("digraph")
    assert "entropy rate" in capsys.readouterr().out


def test_text_file_constant_and_periodic_sequences(tmp_path):
    for name, text, states, c_bits in (
        ("const.txt", "a" * 3000, 1, 0.0),
        ("cycle.txt", "xyz" * 2000, 3, math.log2(3)),
    ):
        f = tmp_path / name
        f.write_text(text)
        out = tmp_path / (name + ".out")
        assert main(["reconstruct", str(f), "--out", str(out), "--n-boot", "5"]) == 0
        rec = json.loads((out / "machine.json").read_text())
        assert rec["n_states"] == states
        assert rec["entropy_rate"]["value"] == pytest.approx(0.0, abs=1e-9)
        assert rec["statistical_complexity"]["value"] == pytest.approx(c_bits, abs=1e-9)
        assert sorted(rec["alphabet"]) == sorted(set(text))


def test_npy_rows(tmp_path):
    from piami.processes import from_spec

    f = tmp_path / "gm.npy"
    np.save(f, from_spec("golden_mean").sample(20, 1000, rng=np.random.default_rng(0)))
    assert main(["reconstruct", str(f), "--out", str(tmp_path / "o"), "--n-boot", "5"]) == 0
    assert json.loads((tmp_path / "o" / "machine.json").read_text())["n_states"] == 2


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    short = tmp_path / "short.txt"
    short.write_text("0101")
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        ["reconstruct", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "a")],
        ["reconstruct", str(binary), "--out", str(tmp_path / "b")],
        ["reconstruct", str(short), "--max-length", "6", "--out", str(tmp_path / "c")],
        ["reconstruct", "golden_mean", "--max-length", "0", "--out", str(tmp_path / "d")],
        ["reconstruct", "golden_mean", "--n", "5", "--out", str(tmp_path / "e")],
        ["reconstruct", "golden_mean", "--alpha", "2", "--out", str(tmp_path / "f")],
        ["reconstruct", "golden_mean", "--out", str(afile / "under")],
        ["reconstruct", "no_such_process", "--out", str(tmp_path / "g")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("piami: error:"), (argv, err)
    assert not list(tmp_path.rglob("machine.json")) and not list(tmp_path.rglob(".tmp-*"))
