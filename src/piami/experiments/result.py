"""Comparisons and results: the unit of work of piami.

A :class:`Comparison` sets a quantity that theory predicts beside the same quantity measured, with
the tolerance within which they must agree. ``passed`` is computed from predicted, measured and
tolerance, never set by hand. A comparison that cannot be made (a missing or non-finite value) has
``passed = None`` and a ``note`` saying why.

A :class:`Result` gathers the comparisons, metrics and figures of one experiment run; it is written
as ``result.json`` (see :func:`piami.report.save_result`).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from piami.errors import PiamiFileError, PiamiValueError

Sense = Literal["within", "at_least", "at_most"]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Theory beside measurement.

    Attributes:
        name: what is compared, e.g. ``"KL(exact || model), mean over positions"``.
        predicted: the theory's value (or the baseline a measurement must beat).
        measured: the measured value.
        tolerance: allowed deviation: absolute, or a fraction of ``|predicted|`` when ``relative``.
        relative: whether ``tolerance`` is relative.
        sense: ``"within"``: ``|measured - predicted| <= tol``; ``"at_least"``:
            ``measured >= predicted - tol``; ``"at_most"``: ``measured <= predicted + tol``.
        unit: unit of both values (``"nats"``, ``"steps"``, ``""``).
        reference: the paper (and equation) the prediction comes from.
        note: why this tolerance; or, when the comparison cannot be made, why not.
        passed: computed; ``None`` when the comparison cannot be made.
    """

    name: str
    predicted: float | None
    measured: float | None
    tolerance: float
    relative: bool = False
    sense: Sense = "within"
    unit: str = ""
    reference: str = ""
    note: str = ""
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        if self.sense not in ("within", "at_least", "at_most"):
            raise PiamiValueError(
                f"Comparison sense must be 'within', 'at_least' or 'at_most', got {self.sense!r}"
            )
        if not _finite(self.tolerance) or self.tolerance < 0:
            raise PiamiValueError(
                f"Comparison {self.name!r}: tolerance must be a finite number >= 0, got {self.tolerance!r}"
            )
        for attr in ("predicted", "measured"):  # numpy and torch scalars -> plain float
            v = getattr(self, attr)
            if v is not None:
                object.__setattr__(self, attr, float(v))
        object.__setattr__(self, "passed", self._compute_passed())

    @property
    def allowed(self) -> float | None:
        """The absolute deviation allowed (tolerance times |predicted| when relative)."""
        if not _finite(self.predicted):
            return None
        return self.tolerance * abs(self.predicted) if self.relative else self.tolerance

    @property
    def error(self) -> float | None:
        """measured - predicted (relative to |predicted| when ``relative``)."""
        if not (_finite(self.predicted) and _finite(self.measured)):
            return None
        diff = self.measured - self.predicted
        if self.relative:
            return diff / abs(self.predicted) if self.predicted != 0 else math.inf
        return diff

    def _compute_passed(self) -> bool | None:
        if not (_finite(self.predicted) and _finite(self.measured)):
            return None
        tol = self.allowed
        diff = self.measured - self.predicted
        if self.sense == "within":
            return bool(abs(diff) <= tol)
        if self.sense == "at_least":
            return bool(diff >= -tol)
        return bool(diff <= tol)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "predicted": self.predicted,
            "measured": self.measured,
            "tolerance": self.tolerance,
            "relative": self.relative,
            "sense": self.sense,
            "passed": self.passed,
            "unit": self.unit,
            "reference": self.reference,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        def num(v: Any) -> float | None:
            if v is None:
                return None
            return float(v)  # "nan"/"inf" strings parse back

        return cls(
            name=d["name"],
            predicted=num(d.get("predicted")),
            measured=num(d.get("measured")),
            tolerance=float(d["tolerance"]),
            relative=bool(d.get("relative", False)),
            sense=d.get("sense", "within"),
            unit=d.get("unit", ""),
            reference=d.get("reference", ""),
            note=d.get("note", ""),
        )


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A figure rendered to PNG bytes, with a caption for the report."""

    name: str
    png: bytes
    caption: str = ""


@dataclass(kw_only=True)
class Result:
    """Everything one experiment run produced.

    Attributes:
        experiment: registered name of the experiment.
        config: the full config as a plain dict.
        seed: the seed the run used.
        comparisons: theory beside measurement.
        metrics: any further measured numbers (JSON-serializable).
        figures: PNG figures for the report.
        runtime_s: wall time of the run.
        piami_version: version that produced it.
        description: one paragraph for the report's head.
    """

    experiment: str
    config: dict[str, Any]
    seed: int
    comparisons: list[Comparison] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    runtime_s: float = 0.0
    piami_version: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.piami_version:
            from piami import __version__

            self.piami_version = __version__

    @property
    def passed(self) -> bool:
        """True when every comparison passed (one that could not be made counts as not passed)."""
        return all(c.passed is True for c in self.comparisons)

    @property
    def n_failed(self) -> int:
        return sum(c.passed is not True for c in self.comparisons)

    def add_figure(self, name: str, fig: Any, caption: str = "", *, dpi: int = 110) -> None:
        """Render a matplotlib figure to PNG, keep the bytes and close the figure."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(Figure(name=name, png=buf.getvalue(), caption=caption))

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "piami_version": self.piami_version,
            "config": self.config,
            "seed": self.seed,
            "passed": self.passed,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "metrics": self.metrics,
            "figures": [f.name + ".png" for f in self.figures],
            "runtime_s": self.runtime_s,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(
            experiment=d["experiment"],
            config=d["config"],
            seed=int(d["seed"]),
            comparisons=[Comparison.from_dict(c) for c in d.get("comparisons", [])],
            metrics=d.get("metrics", {}),
            runtime_s=float(d.get("runtime_s", 0.0)),
            piami_version=d.get("piami_version", ""),
            description=d.get("description", ""),
        )

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Read a ``result.json`` (or the folder holding one); figures are not reloaded."""
        path = Path(path)
        if path.is_dir():
            path = path / "result.json"
        if not path.is_file():
            raise PiamiFileError(f"no result at {path}: expected a result.json written by piami")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError) as exc:
            raise PiamiFileError(f"{path} is not a piami result.json ({exc})") from exc

    def summary(self) -> str:
        """A plain-text table of the comparisons."""
        lines = [
            f"{self.experiment}: {len(self.comparisons) - self.n_failed}/{len(self.comparisons)} "
            f"comparisons passed in {self.runtime_s:.1f} s"
        ]
        for c in self.comparisons:
            mark = {True: "PASS", False: "FAIL", None: "N/A "}[c.passed]
            tol = f"±{c.tolerance:g}{' rel' if c.relative else ''}"
            if c.sense != "within":
                tol = f"{'>=' if c.sense == 'at_least' else '<='} pred {tol}"
            pred = "—" if c.predicted is None else f"{c.predicted:.6g}"
            meas = "—" if c.measured is None else f"{c.measured:.6g}"
            lines.append(f"  [{mark}] {c.name}: predicted {pred}, measured {meas} ({tol}) {c.unit}")
        return "\n".join(lines)
