"""``piami sweep NAME --grid key=v1,v2 [--seeds N] [--backend local|ray]``: run
a grid of configs."""

from __future__ import annotations

import argparse

from piami.experiments import parse_overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run an experiment over a grid of configs and seeds, resumably",
        description="Run every combination of the --grid values (times --seeds) once into a "
        "content-addressed store; finished runs are never redone, so the same command resumes "
        "a killed sweep.",
    )
    p.add_argument("name", help="experiment name (see `piami list`)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field for every run; repeatable",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values of one field to sweep (';' separates values that hold commas); repeatable",
    )
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="run seeds 0..N-1")
    p.add_argument("--out", default=None, help="the run store (default: out/runs)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument(
        "--workers", type=int, default=None, help="runs at once (default: cores; 1 = in process)"
    )
    p.add_argument("--address", default=None, help="Ray cluster HOST:PORT (default: start one)")
    p.add_argument(
        "--ray-host",
        default="127.0.0.1",
        help="address a Ray cluster started here listens on (default: loopback only)",
    )
    p.add_argument(
        "--cpus-per-run", type=int, default=1, help="CPUs each Ray task reserves (default 1)"
    )
    p.add_argument("--retries", type=int, default=1, help="further attempts for a failed run")
    p.add_argument(
        "--no-rerun-failed",
        action="store_true",
        help="leave runs that failed in an earlier sweep failed",
    )
    p.add_argument("--quick", action="store_true", help="start from the --quick variant")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from piami.runs import parse_grid, sweep

    res = sweep(
        args.name,
        parse_overrides(args.overrides),
        parse_grid(args.grid),
        args.seeds,
        out=args.out,
        backend=args.backend,
        workers=args.workers,
        address=args.address,
        retries=args.retries,
        rerun_failed=not args.no_rerun_failed,
        quick=args.quick,
        progress=not args.no_progress,
        ray_host=args.ray_host,
        cpus_per_run=args.cpus_per_run,
    )
    print(res.summary())
    for r in res.runs:
        if r.status == "failed":
            print(f"  failed {r.spec.run_id}: {r.error.splitlines()[0] if r.error else '?'}")
    return 0 if res.ok else 1
