"""The rows of the round trip: a pure function of its measurements.

Predictions: the Hugging Face path reads what piami's hooks read. For every deterministic reading
``x`` (the residual stream, probe R², KL, CKA, TwoNN) the tolerance is derived from the float32
rounding of the two paths, each measured against its own float64 twin: by the triangle inequality

    |x_HF32 - x_p32| <= |x_HF32 - x_HF64| + |x_HF64 - x_p64| + |x_p64 - x_p32|,

and for an exact export the middle term is float64 rounding, about ``2^-29`` of the others (the
ratio of the unit roundoffs); the tolerance is twice the sum of the outer two. A wrong export puts
a difference of the size of the mistake in the middle term, far outside. Readings by layer are
taken together: the largest difference against the largest budgets. The LLC is a random
estimate; its row allows the 95% spread of the difference of two independent means of
``n_chains`` chains, ``Z95 sqrt(2) s / sqrt(n_chains)`` with ``s`` the chain-to-chain standard
deviation on piami's path (same seed on both paths, so the difference is in fact far smaller).

Controls: the deliberately broken export (``W_Q`` not rescaled) goes through the same readings and
must differ beyond the same budgets (activations, KL, probe R²). Sanity: the export map inside the
LLC's loss reproduces :func:`~piami.models.export.gpt2_state_dict` at ``w*`` bit for bit, and the
float64 twins agree to float64 rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from piami.experiments.round_trip.config import Config
from piami.experiments.round_trip.measure import RoundTripMeasurements
from piami.lab import Comparison
from piami.lab.comparison import Z95

#: float64 / float32 unit roundoff.
U_RATIO = 2.0**-29
REF_SHAI = "Shai et al. 2024 (probes), Kornblith et al. 2019 (CKA), Facco et al. 2017 (TwoNN)"
REF_LLC = "Lau et al. 2023, eq. 3"
ROUNDING = (
    "derived: twice the float32 rounding of both paths, each measured against its float64 twin "
    "(triangle inequality; the float64 gap of an exact export is ~2^-29 of it)"
)

#: reading -> (row name, unit)
READINGS = {
    "r2": ("probe R² of the beliefs, every layer and all together: max |{p} - piami|", ""),
    "kl": ("KL(exact ‖ model), mean over prefixes: |{p} - piami|", "nats"),
    "cka": ("linear CKA between layers: max |{p} - piami| over the matrix", ""),
    "twonn": ("TwoNN dimension by layer: max |{p} - piami|", "dimensions"),
}
LABEL = {"hf": "HF", "broken": "broken export"}


def _values(x: Any) -> np.ndarray:
    """A reading as a flat float array (a number, a dict by name, or a matrix)."""
    if isinstance(x, dict):
        return np.array([float(v) for v in x.values()])
    return np.asarray(x, dtype=float).ravel()


def gap_and_budget(m: RoundTripMeasurements, path: str, reading: str) -> tuple[float, float]:
    """``(max |x_path32 - x_p32|, max |x_path32 - x_path64| + max |x_p32 - x_p64|)``."""
    r, p = m.readings[path], m.readings["piami"]
    x32, x64 = _values(r["float32"][reading]), _values(r["float64"][reading])
    p32, p64 = _values(p["float32"][reading]), _values(p["float64"][reading])
    gap = float(np.max(np.abs(x32 - p32)))
    return gap, float(np.max(np.abs(x32 - x64)) + np.max(np.abs(p32 - p64)))


def llc_tolerance(m: RoundTripMeasurements) -> float:
    """95% spread of the difference of two means of ``n_chains`` independent chains (piami's)."""
    llc = m.llc["piami"]
    return Z95 * math.sqrt(2.0) * llc["std"] / math.sqrt(len(llc["per_chain"]))


def path_rows(cfg: Config, m: RoundTripMeasurements, path: str = "hf") -> list[Comparison]:
    """The prediction rows for ``path`` against piami's hooks (``"hf"``; ``"broken"`` is what the
    controls run, and fails them)."""
    who = LABEL[path]
    a, p = m.act[path], m.act["piami"]
    rows = [
        Comparison(
            name=f"residual stream by TransformerLens name: max |{who} - piami| (float32)",
            kind="prediction",
            predicted=0.0,
            measured=a["diff"],
            tolerance=2.0 * (a["rounding"] + p["rounding"]),
            tolerance_source=ROUNDING,
            note=f"largest activation {p['scale']:.3g}; names {', '.join(m.names)}",
        )
    ]
    for reading, (name, unit) in READINGS.items():
        gap, budget = gap_and_budget(m, path, reading)
        rows.append(
            Comparison(
                name=name.format(p=who),
                kind="prediction",
                predicted=0.0,
                measured=gap,
                tolerance=2.0 * budget,
                tolerance_source=ROUNDING,
                unit=unit,
                reference=REF_SHAI,
            )
        )
    llc, ref = m.llc[path], m.llc["piami"]
    rows.append(
        Comparison(
            name=f"LLC, same seed and SGLD settings, piami's coordinates: |{who} - piami|",
            kind="prediction",
            predicted=0.0,
            measured=abs(llc["mean"] - ref["mean"]),
            tolerance=llc_tolerance(m),
            tolerance_source=(
                "measured noise: 95% spread of a difference of two means of "
                f"{len(ref['per_chain'])} chains, chain sd {ref['std']:.3g} on piami's path"
            ),
            reference=REF_LLC,
            note=f"piami {ref['mean']:.6g}, {who} {llc['mean']:.6g} ({llc['batching']})",
        )
    )
    return rows


def control_rows(cfg: Config, m: RoundTripMeasurements) -> list[Comparison]:
    """The broken export must differ beyond the budgets within which the exact one agrees."""
    b, h, p = m.act["broken"], m.act["hf"], m.act["piami"]
    rows = [
        Comparison(
            name="broken export (W_Q not rescaled): residual stream differs beyond the budget",
            kind="control",
            predicted=2.0 * (h["rounding"] + p["rounding"]),
            measured=b["diff"],
            tolerance=0.0,
            sense="at_least",
            tolerance_source="derived: the exact export's float32 budget (prediction row)",
        )
    ]
    for reading in ("kl", "r2"):
        gap, _ = gap_and_budget(m, "broken", reading)
        _, budget = gap_and_budget(m, "hf", reading)
        what = "KL" if reading == "kl" else "probe R²"
        rows.append(
            Comparison(
                name=f"broken export: {what} differs from piami's beyond the budget",
                kind="control",
                predicted=2.0 * budget,
                measured=gap,
                tolerance=0.0,
                sense="at_least",
                tolerance_source="derived: the exact export's float32 budget (prediction row)",
                unit=READINGS[reading][1],
            )
        )
    return rows


def sanity_rows(cfg: Config, m: RoundTripMeasurements) -> list[Comparison]:
    """The LLC's export map is the export; the float64 twins agree to float64 rounding."""
    h, p = m.act["hf"], m.act["piami"]
    return [
        Comparison(
            name="export map in the LLC's loss reproduces gpt2_state_dict at w*: max |difference|",
            kind="sanity",
            predicted=0.0,
            measured=m.map_error,
            tolerance=0.0,
            tolerance_source="derived: the same float operations in the same order",
        ),
        Comparison(
            name="float64 twins: residual stream max |HF - piami|",
            kind="sanity",
            predicted=0.0,
            measured=h["diff64"],
            tolerance=16.0 * U_RATIO * (h["rounding"] + p["rounding"]),
            tolerance_source=(
                "derived: float64 rounding is 2^-29 of the float32 rounding of the two paths "
                "(unit roundoffs 2^-53 and 2^-24); 16x for room"
            ),
        ),
    ]


def compare(cfg: Config, m: RoundTripMeasurements) -> list[Comparison]:
    """Predictions (HF path vs piami), controls (broken export), sanity (module docstring)."""
    return [*path_rows(cfg, m, "hf"), *control_rows(cfg, m), *sanity_rows(cfg, m)]


__all__ = [
    "READINGS",
    "compare",
    "control_rows",
    "gap_and_budget",
    "llc_tolerance",
    "path_rows",
    "sanity_rows",
]
