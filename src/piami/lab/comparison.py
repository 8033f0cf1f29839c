"""Comparisons: the unit of work of piami.

A :class:`Comparison` sets a quantity beside a reference value with the tolerance within which
they must agree. ``passed`` is computed from the values and the tolerance, never set by hand.

Every row says what kind of claim it is (:data:`KINDS`):

- ``prediction``: theory beside measurement, the claim the experiment exists to test;
- ``control``: a baseline or null (an untrained or shuffled network, a wrong process, shuffled
  data) that must land on its stated side; a broken system fails it;
- ``sanity``: a check of the machinery itself (exact theory against brute force, a fit that
  converged, every planned sub-run finished);
- ``refuted``: a published prediction that exact theory or the data contradicts. Shown, explained,
  its ``passed`` computed as for any row, but never counted: a finding, not a failure of the run.

and where its tolerance comes from (``tolerance_source``, written ``"<source>: <what>"`` with a
source of :data:`TOLERANCE_SOURCES`): a paper, a derived bound, measured noise, a bar stated a
priori, or settings ``tuned on <named cases>`` (which must then not be the cases scored).

A row is *not identified* (``passed is None``) when the data cannot decide it: a value missing or
not finite, an interval wider than the cap stated for it (``max_interval_width``), or a reason the
experiment gives (``not_identified``, e.g. a fit that ended on its bound). Where 95% intervals are
known, the row reports a z-score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from piami.errors import PiamiValueError

Sense = Literal["within", "at_least", "at_most"]
Kind = Literal["prediction", "control", "sanity", "refuted"]

#: The kinds of comparison row; all but ``refuted`` count towards a run's verdict.
KINDS: tuple[str, ...] = ("prediction", "control", "sanity", "refuted")
#: Kinds whose failure fails the run.
COUNTED_KINDS: tuple[str, ...] = ("prediction", "control", "sanity")
#: Where a tolerance may come from; ``tolerance_source`` starts with one of these.
TOLERANCE_SOURCES: tuple[str, ...] = ("paper", "derived", "measured noise", "a priori", "tuned on")
#: Standard normal quantile of a two-sided 95% interval: half-width = Z95 * standard error.
Z95 = 1.959963984540054


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _interval(value: Any, what: str, name: str) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise PiamiValueError(
            f"Comparison {name!r}: {what} must be a pair (low, high), got {value!r}"
        ) from exc
    if lo > hi:
        raise PiamiValueError(f"Comparison {name!r}: {what} has low {lo} > high {hi}")
    return (lo, hi)


def _source_ok(source: str) -> bool:
    """``"<source>: <what>"`` for a source of :data:`TOLERANCE_SOURCES` (``tuned on`` names the
    cases before its colon: ``"tuned on regressions 3-1, 6-5: step 1e-3"``)."""
    head, colon, rest = source.strip().partition(":")
    head = head.strip().lower()
    if not colon or not rest.strip():
        return False
    return head in TOLERANCE_SOURCES[:-1] or (
        head.startswith("tuned on ") and len(head) > len("tuned on ")
    )


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One row: a value beside its reference, with a tolerance whose origin is stated.

    Attributes:
        name: what is compared; the same for every seed, so rows aggregate across runs
            (put seed-dependent details in ``note``).
        kind: ``"prediction"``, ``"control"``, ``"sanity"`` or ``"refuted"`` (module docstring).
        predicted: the reference: theory's value, or the bar or baseline a measurement must meet.
        measured: the measured value.
        tolerance: allowed deviation: absolute, or a fraction of ``|predicted|`` when ``relative``.
        tolerance_source: where the tolerance comes from, ``"<source>: <what>"`` with a source of
            :data:`TOLERANCE_SOURCES`, e.g. ``"derived: gradient descent is O(lr s) from the flow"``
            or ``"tuned on depth-2 nets: step 1e-3"``.
        relative: whether ``tolerance`` is relative.
        sense: ``"within"``: ``|measured - predicted| <= tol``; ``"at_least"``:
            ``measured >= predicted - tol``; ``"at_most"``: ``measured <= predicted + tol``.
        unit: unit of both values (``"nats"``, ``"steps"``, ``""``).
        reference: the paper (and equation) the prediction comes from.
        note: anything a reader needs to interpret the row.
        measured_interval: 95% interval of ``measured`` (e.g. bootstrap), if known.
        predicted_interval: 95% interval of ``predicted``, if it is itself an estimate.
        max_interval_width: the widest interval that still decides the row, stated beforehand;
            a wider one makes the row not identified.
        not_identified: why the data cannot decide this row; non-empty makes ``passed`` None.
        passed: computed: True or False, or None when not identified.
    """

    name: str
    kind: Kind
    predicted: float | None
    measured: float | None
    tolerance: float
    tolerance_source: str
    relative: bool = False
    sense: Sense = "within"
    unit: str = ""
    reference: str = ""
    note: str = ""
    measured_interval: tuple[float, float] | None = None
    predicted_interval: tuple[float, float] | None = None
    max_interval_width: float | None = None
    not_identified: str = ""
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PiamiValueError(
                f"Comparison {self.name!r}: kind must be one of {', '.join(KINDS)}, got "
                f"{self.kind!r}"
            )
        if self.sense not in ("within", "at_least", "at_most"):
            raise PiamiValueError(
                f"Comparison sense must be 'within', 'at_least' or 'at_most', got {self.sense!r}"
            )
        if not _finite(self.tolerance) or self.tolerance < 0:
            raise PiamiValueError(
                f"Comparison {self.name!r}: tolerance must be a finite number >= 0, got "
                f"{self.tolerance!r}"
            )
        if not isinstance(self.tolerance_source, str) or not _source_ok(self.tolerance_source):
            raise PiamiValueError(
                f"Comparison {self.name!r}: tolerance_source must say where the tolerance comes "
                f"from, as '<source>: <what>' with a source among "
                f"{', '.join(map(repr, TOLERANCE_SOURCES))} ('tuned on <cases>: ...'), e.g. "
                f"'derived: O(lr) discretization error'; got {self.tolerance_source!r}"
            )
        if self.max_interval_width is not None and not (
            _finite(self.max_interval_width) and self.max_interval_width > 0
        ):
            raise PiamiValueError(
                f"Comparison {self.name!r}: max_interval_width must be a number > 0 or None"
            )
        for attr in ("predicted", "measured"):  # numpy and torch scalars -> plain float
            v = getattr(self, attr)
            if v is not None:
                object.__setattr__(self, attr, float(v))
        for attr in ("measured_interval", "predicted_interval"):
            object.__setattr__(self, attr, _interval(getattr(self, attr), attr, self.name))
        object.__setattr__(self, "not_identified", self._why_not_identified())
        object.__setattr__(self, "passed", self._compute_passed())

    # -- derived quantities -----------------------------------------------------------------------
    @property
    def counted(self) -> bool:
        """Whether this row counts towards the run's verdict (every kind but ``refuted``)."""
        return self.kind in COUNTED_KINDS

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

    @property
    def z(self) -> float | None:
        """(measured - predicted) / combined standard error, from the 95% intervals given.

        None when no interval is given, a value is missing, or the intervals have zero width.
        """
        if not (_finite(self.predicted) and _finite(self.measured)):
            return None
        var = 0.0
        for iv in (self.measured_interval, self.predicted_interval):
            if iv is not None and all(map(math.isfinite, iv)):
                var += ((iv[1] - iv[0]) / (2 * Z95)) ** 2
        if var <= 0:
            return None
        return (self.measured - self.predicted) / math.sqrt(var)

    def _why_not_identified(self) -> str:
        if self.not_identified:
            return str(self.not_identified)
        for attr in ("predicted", "measured"):
            v = getattr(self, attr)
            if v is None:
                return f"no {attr} value"
            if not math.isfinite(v):
                return f"the {attr} value is {v}"
        cap = self.max_interval_width
        if cap is not None:
            for attr in ("measured_interval", "predicted_interval"):
                iv = getattr(self, attr)
                if iv is not None and not (iv[1] - iv[0] <= cap):
                    return (
                        f"the 95% {attr.replace('_', ' ')} [{iv[0]:.4g}, {iv[1]:.4g}] is wider "
                        f"than the {cap:g} stated as the widest that decides this row"
                    )
        return ""

    def _compute_passed(self) -> bool | None:
        if self.not_identified:
            return None
        tol = self.allowed
        diff = self.measured - self.predicted
        if self.sense == "within":
            return bool(abs(diff) <= tol)
        if self.sense == "at_least":
            return bool(diff >= -tol)
        return bool(diff <= tol)

    def describe_tolerance(self) -> str:
        """The tolerance as a reader reads it, e.g. ``"±0.02 (relative)"`` or
        ``"≥ predicted − 0"``."""
        rel = " (relative)" if self.relative else ""
        tol = f"{self.tolerance:.4g}"
        if self.sense == "at_least":
            return f"≥ predicted − {tol}{rel}"
        if self.sense == "at_most":
            return f"≤ predicted + {tol}{rel}"
        return f"±{tol}{rel}"

    # -- serialization ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "predicted": self.predicted,
            "measured": self.measured,
            "tolerance": self.tolerance,
            "tolerance_source": self.tolerance_source,
            "relative": self.relative,
            "sense": self.sense,
            "passed": self.passed,
            "not_identified": self.not_identified,
            "z": self.z,
            "measured_interval": None
            if self.measured_interval is None
            else list(self.measured_interval),
            "predicted_interval": None
            if self.predicted_interval is None
            else list(self.predicted_interval),
            "max_interval_width": self.max_interval_width,
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
            kind=d["kind"],
            predicted=num(d.get("predicted")),
            measured=num(d.get("measured")),
            tolerance=float(d["tolerance"]),
            tolerance_source=d["tolerance_source"],
            relative=bool(d.get("relative", False)),
            sense=d.get("sense", "within"),
            unit=d.get("unit", ""),
            reference=d.get("reference", ""),
            note=d.get("note", ""),
            measured_interval=d.get("measured_interval"),
            predicted_interval=d.get("predicted_interval"),
            max_interval_width=d.get("max_interval_width"),
            not_identified=d.get("not_identified", ""),
        )
