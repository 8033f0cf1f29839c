"""``piami certify``: run every experiment at several seeds and certify the instruments.

Every whole experiment (sub-run experiments are run through their parents) is run at seeds
``0..N-1`` through one run store, so the certificate is resumable and reuses every run of the
same code. The work is flattened before it starts: the single-run experiments and the sub-runs of
every planned experiment form one list, executed ``workers`` at a time; then each planned
experiment combines its (now stored) sub-runs. Each result's report is written under
``OUT/reports/EXPERIMENT/seed-S/``; the certificate (``OUT/index.html``, ``OUT/certificate.json``
and ``OUT/certificate.md``) sets every comparison beside its pass rate over seeds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from piami._io import ensure_writable_dir
from piami.errors import PiamiKeyError, PiamiValueError
from piami.lab import Result, get_experiment, list_experiments
from piami.runs.execution import Backend, execute
from piami.runs.plans import plan_runner
from piami.runs.store import RunSpec, RunStore
from piami.runs.sweep import specs_for


@dataclass(kw_only=True)
class CertifyOutcome:
    """What ``piami certify`` produced.

    Attributes:
        out: the certificate's folder.
        results: experiment -> its results, one per seed that finished.
        failures: experiment -> seed -> error, for runs that raised.
        reports: experiment -> seed -> path of the report (relative to ``out``).
        variant: ``"quick"`` or ``"full"``.
        seeds: the seeds run.
        wall_s: wall time of the whole certification.
    """

    out: Path
    results: dict[str, list[Result]] = field(default_factory=dict)
    failures: dict[str, dict[int, str]] = field(default_factory=dict)
    reports: dict[str, dict[int, str]] = field(default_factory=dict)
    variant: str = "full"
    seeds: list[int] = field(default_factory=list)
    wall_s: float = 0.0


def _experiments(only: Sequence[str] | None) -> list[Any]:
    whole = list_experiments(parts=False)
    if not only:
        return list(whole.values())
    unknown = [n for n in only if n not in whole]
    if unknown:
        raise PiamiKeyError(
            f"unknown experiment {', '.join(map(repr, unknown))} for certify; "
            f"valid: {', '.join(whole)}"
        )
    return [whole[n] for n in only]


def certify(
    *,
    out: str | os.PathLike,
    seeds: int = 1,
    quick: bool = False,
    only: Sequence[str] | None = None,
    backend: Backend = "local",
    workers: int | None = 1,
    address: str | None = None,
    progress: bool = True,
) -> CertifyOutcome:
    """Run every experiment at seeds ``0..seeds-1`` and write the certificate into ``out``.

    Args:
        out: folder of the certificate; its ``runs/`` is the run store (reused when rerun).
        seeds: number of seeds per experiment.
        quick: run the quick variants.
        only: names of the experiments to certify (default: all).
        backend: ``"local"`` or ``"ray"``.
        workers: runs at once (1: in this process).
        address: Ray cluster address.
        progress: show progress bars.

    Returns:
        The :class:`CertifyOutcome`; the page is ``out/index.html``.
    """
    from piami.report import save_result
    from piami.report.certificate import write_certificate

    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 100:
        raise PiamiValueError(f"seeds must be an integer in [1, 100], got {seeds!r}")
    t0 = time.perf_counter()
    root = ensure_writable_dir(out, what="--out")
    store = RunStore(root / "runs")
    exps = _experiments(only)
    variant = "quick" if quick else "full"
    configs = {
        e.name: [e.make_config({"seed": s}, quick=quick) for s in range(seeds)] for e in exps
    }
    # 1. every leaf run at once: single-run experiments, and the sub-runs of planned ones
    leaves: list[RunSpec] = []
    for e in exps:
        if e.plan is None:
            leaves.extend(specs_for(e, configs[e.name]))
            continue
        for cfg in configs[e.name]:
            for sub in e.plan(cfg):
                part = get_experiment(sub.experiment)
                leaves.extend(specs_for(part, [part.make_config(dict(sub.overrides))]))
    execution = {"backend": backend, "workers": workers, "address": address}
    outcomes, _, _ = execute(
        leaves, store, retries=0, progress=progress, label="certify", **execution
    )
    # 2. results: stored single runs; planned experiments combine their stored sub-runs
    cert = CertifyOutcome(out=root, variant=variant, seeds=list(range(seeds)))
    runner = plan_runner(store.root, **execution)
    for e in exps:
        cert.results[e.name], cert.failures[e.name], cert.reports[e.name] = [], {}, {}
        specs = specs_for(e, configs[e.name])
        for cfg, spec in zip(configs[e.name], specs, strict=True):
            try:
                if e.plan is None:
                    o = outcomes[spec.run_id]
                    if o.status == "failed":
                        cert.failures[e.name][cfg.seed] = o.error
                        continue
                    res = store.result(spec.run_id)
                else:
                    res = e(cfg, progress=False, runner=runner, variant=variant)
                    store.write_spec(spec)
                    store.write_result(spec.run_id, res)
            except Exception as exc:  # recorded on the certificate, never dropped
                cert.failures[e.name][cfg.seed] = f"{type(exc).__name__}: {exc}"
                continue
            res.variant = variant
            rel = Path("reports") / e.name / f"seed-{cfg.seed}"
            save_result(res, root / rel)
            cert.results[e.name].append(res)
            cert.reports[e.name][cfg.seed] = (rel / "report.html").as_posix()
    cert.wall_s = time.perf_counter() - t0
    write_certificate(cert)
    return cert
