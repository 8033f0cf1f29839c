"""``piami list`` and ``piami run NAME``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from piami._io import ensure_writable_dir, remove_stale_temporaries
from piami.experiments import get_experiment, list_experiments, parse_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the experiments")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one experiment and write its report")
    p.add_argument("name", help="experiment name (see `piami list`)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field; repeatable",
    )
    p.add_argument("--out", default=None, help="output folder (default: out/NAME)")
    p.add_argument("--quick", action="store_true", help="the small variant the test suite runs")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless the run passes (a failed or undecided row, or no prediction, fails it)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    g = p.add_argument_group(
        "sub-runs", "where an experiment made of many runs (seeds, sizes) executes them"
    )
    g.add_argument(
        "--store",
        default=None,
        help=(
            "run store for the sub-runs (default: OUT/runs; "
            "finished ones of the same code are reused)"
        ),
    )
    g.add_argument("--workers", type=int, default=1, help="sub-runs at once (default 1)")
    g.add_argument("--backend", choices=("local", "ray"), default="local")
    g.add_argument("--address", default=None, help="Ray cluster HOST:PORT (default: start one)")
    p.set_defaults(func=cmd_run)


def cmd_list(args: argparse.Namespace) -> int:
    exps = list_experiments()
    width = max((len(n) for n in exps), default=0)
    for name, exp in exps.items():
        part = f" (a sub-run of {exp.part_of})" if exp.part_of else ""
        print(f"{name:<{width}}  {exp.summary}{part}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from piami.report import save_result

    exp = get_experiment(args.name)
    cfg = exp.make_config(
        parse_overrides(args.overrides), quick=args.quick
    )  # errors before any work
    out = Path(args.out) if args.out else Path("out") / re.sub(r"[^A-Za-z0-9_.-]", "_", exp.name)
    ensure_writable_dir(out, what="--out")  # before the compute, not after
    remove_stale_temporaries(out)  # what an interrupted run into this folder left
    if args.store:
        ensure_writable_dir(args.store, what="--store")
    runner = None
    if exp.plan is not None:
        from piami.runs import plan_runner

        runner = plan_runner(
            args.store or out / "runs",
            backend=args.backend,
            workers=args.workers,
            address=args.address,
        )
    result = exp(
        cfg,
        progress=not args.no_progress,
        runner=runner,
        variant="quick" if args.quick else "full",
    )
    report = save_result(result, out)
    print(result.summary())
    print(f"report: {report.resolve()}")
    if args.check and not result.passed:
        return 1
    return 0
