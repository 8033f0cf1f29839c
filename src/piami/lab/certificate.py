"""The certificate: every comparison of every experiment, aggregated over seeds.

``piami certify`` runs every experiment at several seeds; this module turns their results into the
rows of the certificate, one per (experiment, comparison): its kind, the tolerance used and where
it comes from, how often it passed (with the Clopper-Pearson interval of that rate), the error on
ground truth (mean and spread over seeds), and each seed's value. Pure functions of
:class:`~piami.lab.Result` objects: where the runs executed is the runs layer's business
(:mod:`piami.runs.certify`), how the page looks the report's (:mod:`piami.report.certificate`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from piami.lab.comparison import Comparison
from piami.lab.rates import binomial_interval
from piami.lab.result import Result


@dataclass(kw_only=True)
class CertificateRow:
    """One comparison of one experiment, across seeds.

    Attributes:
        experiment: the experiment's name.
        name: the comparison's name (the same at every seed).
        kind: prediction, control, sanity or refuted.
        unit: unit of the values.
        tolerance: the tolerance as a reader reads it (from the first seed).
        tolerance_source: where it comes from.
        reference: the paper it tests.
        passed: per seed, True / False / None (not identified); absent seeds are missing keys.
        errors: per seed, measured - predicted (relative when the row is relative), or None.
        measured: per seed, the measured value, or None.
        predicted: per seed, the predicted value, or None.
        notes: per seed, the reason a row was not identified (empty otherwise).
    """

    experiment: str
    name: str
    kind: str
    unit: str = ""
    tolerance: str = ""
    tolerance_source: str = ""
    reference: str = ""
    relative: bool = False
    passed: dict[int, bool | None] = field(default_factory=dict)
    errors: dict[int, float | None] = field(default_factory=dict)
    measured: dict[int, float | None] = field(default_factory=dict)
    predicted: dict[int, float | None] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)

    @property
    def n_decided(self) -> int:
        return sum(v is not None for v in self.passed.values())

    @property
    def n_passed(self) -> int:
        return sum(v is True for v in self.passed.values())

    @property
    def pass_rate(self) -> float | None:
        """Share of the seeds that decided this row in which it passed."""
        return self.n_passed / self.n_decided if self.n_decided else None

    @property
    def pass_interval(self) -> tuple[float, float] | None:
        """Clopper-Pearson 95% interval of the pass rate."""
        return binomial_interval(self.n_passed, self.n_decided) if self.n_decided else None

    @property
    def error_mean(self) -> float | None:
        vals = [v for v in self.errors.values() if v is not None and math.isfinite(v)]
        return sum(vals) / len(vals) if vals else None

    @property
    def error_spread(self) -> float | None:
        """Sample standard deviation of the error over seeds (None below two seeds)."""
        vals = [v for v in self.errors.values() if v is not None and math.isfinite(v)]
        if len(vals) < 2:
            return None
        m = sum(vals) / len(vals)
        return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "tolerance": self.tolerance,
            "tolerance_source": self.tolerance_source,
            "reference": self.reference,
            "relative": self.relative,
            "n_decided": self.n_decided,
            "n_passed": self.n_passed,
            "pass_rate": self.pass_rate,
            "pass_interval": None if self.pass_interval is None else list(self.pass_interval),
            "error_mean": self.error_mean,
            "error_spread": self.error_spread,
            "per_seed": {
                str(s): {
                    "passed": self.passed.get(s),
                    "measured": self.measured.get(s),
                    "predicted": self.predicted.get(s),
                    "error": self.errors.get(s),
                    "not_identified": self.notes.get(s, ""),
                }
                for s in sorted(self.passed)
            },
        }


def _add(row: CertificateRow, seed: int, c: Comparison) -> None:
    row.passed[seed] = c.passed
    row.errors[seed] = c.error
    row.measured[seed] = c.measured
    row.predicted[seed] = c.predicted
    if c.passed is None:
        row.notes[seed] = c.not_identified


def certificate_rows(results: Mapping[str, Sequence[Result]]) -> list[CertificateRow]:
    """One row per (experiment, comparison name), in the order the first seed lists them.

    Args:
        results: experiment name -> its results, one per seed.
    """
    rows: list[CertificateRow] = []
    for experiment, runs in results.items():
        by_name: dict[str, CertificateRow] = {}
        for res in runs:
            seen: dict[str, int] = {}
            for c in res.comparisons:
                # a name repeated within one result gets a suffix, so no row overwrites another
                seen[c.name] = seen.get(c.name, 0) + 1
                key = c.name if seen[c.name] == 1 else f"{c.name} [{seen[c.name]}]"
                if key not in by_name:
                    by_name[key] = CertificateRow(
                        experiment=experiment,
                        name=key,
                        kind=c.kind,
                        unit=c.unit,
                        tolerance=c.describe_tolerance(),
                        tolerance_source=c.tolerance_source,
                        reference=c.reference,
                        relative=c.relative,
                    )
                _add(by_name[key], res.seed, c)
        rows.extend(by_name.values())
    return rows


def experiment_verdicts(results: Mapping[str, Sequence[Result]]) -> dict[str, dict[int, str]]:
    """experiment -> seed -> verdict."""
    return {name: {r.seed: r.verdict for r in runs} for name, runs in results.items()}
