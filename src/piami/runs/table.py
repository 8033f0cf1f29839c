"""The runs of a store as one table (a pandas DataFrame; pandas comes with the ``runs`` extra).

One row per run. Columns, in order:

- ``run_id``, ``experiment``, ``status`` (``finished`` / ``failed`` / ``pending``);
- every config field under its own name (``seed`` included; tuples stay tuples, so they group);
- ``passed`` (all comparisons passed), ``runtime_s``;
- ``metrics.<name>`` for each scalar metric (nested dicts flattened with dots; lists left out);
- ``measured.<comparison name>`` for each comparison's measured value;
- ``error`` (the last error message of a failed run).

Values a run lacks are NaN (None for ``passed``). Non-finite numbers stored as ``"nan"``/``"inf"``
strings in result.json come back as floats.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from piami.errors import PiamiError, PiamiFileError
from piami.runs.store import RunStore

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _scalar(v: Any) -> Any:
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return None


def _flatten(metrics: dict[str, Any], prefix: str, row: dict[str, Any]) -> None:
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", row)
        elif not isinstance(v, (list, tuple)):
            s = _scalar(v)
            if s is not None:
                row[key] = s


def _config_cell(v: Any) -> Any:
    return tuple(_config_cell(x) for x in v) if isinstance(v, list) else v


def rows(
    out: str | os.PathLike, *, experiment: str | None = None, run_ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The rows :func:`load` puts in its DataFrame, as plain dicts (no pandas needed)."""
    store = RunStore(out)
    if not store.root.is_dir():
        raise PiamiFileError(f"no run store at {store.root}: run `piami sweep ... --out {out}`")
    infos = store.list(experiment)
    if run_ids is not None:
        wanted = list(run_ids)
        by_id = {i.spec.run_id: i for i in infos}
        infos = [by_id[r] for r in wanted if r in by_id]
    table = []
    for info in infos:
        spec = info.spec
        row: dict[str, Any] = {
            "run_id": spec.run_id,
            "experiment": spec.experiment,
            "status": info.status,
        }
        row.update({k: _config_cell(v) for k, v in spec.config.items()})
        row["passed"] = None
        row["runtime_s"] = math.nan
        if info.status == "finished":
            try:
                res = store.result(spec.run_id)
            except PiamiError as exc:
                raise PiamiFileError(f"run {spec.run_id}: {exc}") from exc
            row["passed"] = res.passed
            row["runtime_s"] = res.runtime_s
            _flatten(res.metrics, "metrics.", row)
            for c in res.comparisons:
                row[f"measured.{c.name}"] = math.nan if c.measured is None else c.measured
        elif info.status == "failed":
            err = store.error(spec.run_id) or {}
            row["error"] = f"{err.get('type', '')}: {err.get('message', '')}"
        table.append(row)
    return table


def load(
    out: str | os.PathLike, *, experiment: str | None = None, run_ids: Iterable[str] | None = None
) -> Any:
    """The runs stored under ``out`` as a pandas DataFrame, one row per run (columns above).

    Args:
        out: the store's folder (the sweep's ``out``).
        experiment: keep only the runs of this experiment.
        run_ids: keep only these runs, in this order.

    Example:
        >>> df = load("out/runs", experiment="scaling")            # doctest: +SKIP
        >>> df[df.status == "finished"].groupby("width")["metrics.loss"].mean()  # doctest: +SKIP
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise PiamiError("piami.runs.load needs pandas: pip install 'piami[runs]'") from exc
    return pd.DataFrame(rows(out, experiment=experiment, run_ids=run_ids))
