"""Tests of the example experiment: ``compare`` on measurements built by hand, then whole runs.

``compare`` is a pure function of the measurements, so it is tested in milliseconds, with no
sampling: one case where every row passes, and for each row a case where that row fails. Two
whole runs of the quick variant follow (a second each): as configured it passes, and with its
broken ingredient (``shuffle=True``) it fails.
"""

# --8<-- [start:tests]
import dataclasses

from sphere_dimension import EXPERIMENT, Config, SphereMeasurements, compare


def good() -> SphereMeasurements:
    estimates = {2: (2.03, 1.95, 2.11), 3: (2.96, 2.85, 3.07)}
    return SphereMeasurements(estimates=estimates, null=15.0)


def test_every_row_passes() -> None:
    rows = compare(Config(dims=(2, 3)), good())
    assert [r.kind for r in rows] == ["prediction", "prediction", "control"]
    assert all(r.passed for r in rows)


def broken_cases() -> dict[str, SphereMeasurements]:
    """Row name -> measurements that fail exactly that row."""
    m = good()
    off_2 = {**m.estimates, 2: (2.5, 2.4, 2.6)}  # 25% high
    off_3 = {**m.estimates, 3: (3.5, 3.4, 3.6)}  # 17% high
    control = "TwoNN of S^2 with shuffled coordinates exceeds the band around 2"
    return {
        "TwoNN dimension of S^2": dataclasses.replace(m, estimates=off_2),
        "TwoNN dimension of S^3": dataclasses.replace(m, estimates=off_3),
        control: dataclasses.replace(m, null=2.1),  # inside the band: a broken null
    }


def test_each_row_fails_alone() -> None:
    for name, m in broken_cases().items():
        rows = {r.name: r.passed for r in compare(Config(dims=(2, 3)), m)}
        assert rows.pop(name) is False, name
        assert all(rows.values()), name


# --8<-- [end:tests]


# --8<-- [start:broken]
def test_quick_run_passes() -> None:
    cfg = EXPERIMENT.make_config(quick=True)
    assert EXPERIMENT(cfg, progress=False).verdict == "pass"


def test_broken_ingredient_fails_the_run() -> None:
    cfg = EXPERIMENT.make_config({"shuffle": True}, quick=True)
    result = EXPERIMENT(cfg, progress=False)
    assert result.verdict == "fail"
    failed = {c.name for c in result.comparisons if c.passed is False}
    assert failed == {"TwoNN dimension of S^2", "TwoNN dimension of S^3"}


# --8<-- [end:broken]
