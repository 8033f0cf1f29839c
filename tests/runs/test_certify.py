"""``piami certify``: every run of every seed, one page, resumable, and honest about failures."""

from __future__ import annotations

import json

from piami.cli import main
from piami.lab import registry
from piami.runs.certify import certify

EXP = "toy-runs"


def test_certify_aggregates_seeds_and_reuses_runs(tmp_path):
    out = tmp_path / "cert"
    first = certify(out=out, seeds=3, quick=True, only=[EXP], workers=1, progress=False)
    assert [r.seed for r in first.results[EXP]] == [0, 1, 2]
    data = json.loads((out / "certificate.json").read_text())
    (row,) = data["rows"]
    assert row["name"] == "mean square" and row["kind"] == "prediction"
    assert row["n_decided"] == 3 and set(row["per_seed"]) == {"0", "1", "2"}
    page = (out / "index.html").read_text()
    assert "reports/toy-runs/seed-2/report.html" in page and "mean square" in page
    assert (out / "reports" / EXP / "seed-1" / "result.json").is_file()
    assert "| `toy-runs` |" in (out / "certificate.md").read_text()
    n_runs = len(list((out / "runs").iterdir()))
    again = certify(out=out, seeds=3, quick=True, only=[EXP], workers=1, progress=False)
    assert len(list((out / "runs").iterdir())) == n_runs  # nothing recomputed
    assert [r.to_dict()["comparisons"] for r in again.results[EXP]] == [
        r.to_dict()["comparisons"] for r in first.results[EXP]
    ]


def test_certify_records_a_failing_run_instead_of_dropping_it(tmp_path, monkeypatch):
    from dataclasses import replace

    toy = registry.get_experiment(EXP)
    broken = replace(toy, name="toy-broken", quick={"fail": True})
    monkeypatch.setitem(registry._REGISTRY, "toy-broken", broken)
    cert = certify(
        out=tmp_path, seeds=2, quick=True, only=["toy-broken"], workers=1, progress=False
    )
    assert cert.results["toy-broken"] == [] and set(cert.failures["toy-broken"]) == {0, 1}
    assert "toy failure" in (tmp_path / "index.html").read_text()


def test_certify_cli_rejects_bad_input(capsys, tmp_path):
    assert main(["certify", "--only", "no-such", "--out", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert main(["certify", "--seeds", "0", "--out", str(tmp_path)]) == 2
