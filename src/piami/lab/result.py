"""Results: everything one experiment run produced, and its verdict.

A :class:`Result` gathers the comparisons, metrics and figures of one run; it is written as
``result.json`` (see :func:`piami.report.save_result`). Its :attr:`Result.verdict` follows the
comparison contract (:mod:`piami.lab.comparison`):

- ``"fail"``: a counted row (prediction, control or sanity) failed;
- ``"not identified"``: none failed, but the run made no prediction that the data could decide, or
  a counted row could not be decided;
- ``"pass"``: at least one prediction was decided, and every counted row passed.

``refuted`` rows never change the verdict. Everything that depends on the wall clock lives in
``timing`` and ``runtime_s``, apart from the measurements: the same config and seed give the same
``result.json`` apart from those two fields, on an idle or a loaded machine.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from piami.errors import PiamiFileError
from piami.lab.comparison import Comparison

Verdict = Literal["pass", "fail", "not identified"]
#: Keys of ``result.json`` that may differ between two runs of the same config and seed.
WALL_CLOCK_KEYS: tuple[str, ...] = ("runtime_s", "timing")


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
        comparisons: the rows (see :class:`~piami.lab.comparison.Comparison`).
        metrics: further measured numbers (JSON-serializable); never wall-clock times.
        timing: wall-clock measurements (seconds, throughput), kept apart from the science.
        figures: PNG figures for the report.
        runtime_s: wall time of the run.
        piami_version: version that produced it.
        code: fingerprint of the code that ran (:func:`piami.lab.fingerprint.code_fingerprint`).
        code_git: ``git describe --always --dirty`` of the source tree, when it is a git checkout.
        variant: ``"full"`` (the defaults) or ``"quick"`` (the small variant the tests run).
        overrides: the settings changed from that variant's defaults.
        runs: for experiments made of sub-runs: planned, cached, computed and failed counts.
        description: one paragraph for the report's head.
    """

    experiment: str
    config: dict[str, Any]
    seed: int
    comparisons: list[Comparison] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    runtime_s: float = 0.0
    piami_version: str = ""
    code: str = ""
    code_git: str = ""
    variant: str = "full"
    overrides: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.piami_version:
            from piami import __version__

            self.piami_version = __version__

    # -- verdict ----------------------------------------------------------------------------------
    @property
    def counted(self) -> list[Comparison]:
        """The rows that decide the verdict (every kind but ``refuted``)."""
        return [c for c in self.comparisons if c.counted]

    @property
    def n_predictions(self) -> int:
        """Predictions the data could decide (passed or failed)."""
        return sum(c.kind == "prediction" and c.passed is not None for c in self.comparisons)

    @property
    def verdict(self) -> Verdict:
        """``"pass"``, ``"fail"`` or ``"not identified"`` (see the module docstring)."""
        counted = self.counted
        if any(c.passed is False for c in counted):
            return "fail"
        if self.n_predictions == 0 or any(c.passed is None for c in counted):
            return "not identified"
        return "pass"

    @property
    def passed(self) -> bool:
        """True only when the verdict is ``"pass"``."""
        return self.verdict == "pass"

    @property
    def n_failed(self) -> int:
        """Counted rows that failed."""
        return sum(c.passed is False for c in self.counted)

    @property
    def n_not_identified(self) -> int:
        """Counted rows the data could not decide."""
        return sum(c.passed is None for c in self.counted)

    def verdict_line(self) -> str:
        """One line: verdict and counts, e.g.
        ``"pass: 5/5 counted rows passed (3 predictions)"``."""
        counted = self.counted
        ok = sum(c.passed is True for c in counted)
        parts = [f"{ok}/{len(counted)} counted rows passed"]
        if self.n_not_identified:
            parts.append(f"{self.n_not_identified} not identified")
        refuted = sum(c.kind == "refuted" for c in self.comparisons)
        if refuted:
            parts.append(f"{refuted} refuted prediction{'s' if refuted > 1 else ''} shown")
        if self.n_predictions == 0:
            parts.append("no prediction was decided")
        return f"{self.verdict}: " + ", ".join(parts)

    # -- figures ----------------------------------------------------------------------------------
    def add_figure(self, name: str, fig: Any, caption: str = "", *, dpi: int = 110) -> None:
        """Render a matplotlib figure to PNG, keep the bytes and close the figure."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        self.figures.append(Figure(name=name, png=buf.getvalue(), caption=caption))

    # -- serialization ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "piami_version": self.piami_version,
            "code": self.code,
            "code_git": self.code_git,
            "variant": self.variant,
            "overrides": self.overrides,
            "config": self.config,
            "seed": self.seed,
            "verdict": self.verdict,
            "passed": self.passed,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "metrics": self.metrics,
            "runs": self.runs,
            "figures": [f.name + ".png" for f in self.figures],
            "description": self.description,
            "runtime_s": self.runtime_s,
            "timing": self.timing,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        if not isinstance(d, dict):
            raise PiamiFileError(f"a result is a JSON object, got {type(d).__name__}")
        return cls(
            experiment=str(d["experiment"]),
            config=dict(d["config"]),
            seed=int(d["seed"]),
            comparisons=[Comparison.from_dict(c) for c in d.get("comparisons", [])],
            metrics=dict(d.get("metrics") or {}),
            timing=dict(d.get("timing") or {}),
            runtime_s=float(d.get("runtime_s", 0.0)),
            piami_version=str(d.get("piami_version", "")),
            code=str(d.get("code", "")),
            code_git=str(d.get("code_git", "")),
            variant=str(d.get("variant", "full")),
            overrides=dict(d.get("overrides") or {}),
            runs=d.get("runs"),
            description=str(d.get("description", "")),
        )

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Read a ``result.json`` (or the folder holding one); figures are not reloaded."""
        from piami._io import read_json

        path = Path(path)
        if path.is_dir():
            path = path / "result.json"
        if not path.exists():
            raise PiamiFileError(f"no result at {path}: expected a result.json written by piami")
        data = read_json(path, what="result.json")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PiamiFileError(f"{path} is not a piami result.json ({exc!r:.200})") from exc

    def summary(self) -> str:
        """A plain-text table of the comparisons, kinds and verdict."""
        lines = [
            f"{self.experiment} ({self.variant}, seed {self.seed}): {self.verdict_line()} "
            f"in {self.runtime_s:.1f} s"
        ]
        for c in self.comparisons:
            mark = {True: "PASS", False: "FAIL", None: "N/I "}[c.passed]
            pred = "—" if c.predicted is None else f"{c.predicted:.6g}"
            meas = "—" if c.measured is None else f"{c.measured:.6g}"
            z = "" if c.z is None else f", z {c.z:+.2f}"
            lines.append(
                f"  [{mark}] {c.kind:<10} {c.name}: predicted {pred}, measured {meas} "
                f"({c.describe_tolerance()}{z}) {c.unit}".rstrip()
            )
            if c.passed is None and c.not_identified:
                lines.append(f"           not identified: {c.not_identified}")
        return "\n".join(lines)
