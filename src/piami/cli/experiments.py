"""``piami list`` and ``piami run NAME``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

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
    p.add_argument("--check", action="store_true", help="exit 1 when a comparison does not pass")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_run)


def cmd_list(args: argparse.Namespace) -> int:
    exps = list_experiments()
    width = max((len(n) for n in exps), default=0)
    for name, exp in exps.items():
        print(f"{name:<{width}}  {exp.summary}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from piami.report import save_result

    exp = get_experiment(args.name)
    cfg = exp.make_config(
        parse_overrides(args.overrides), quick=args.quick
    )  # errors before any work
    out = Path(args.out) if args.out else Path("out") / re.sub(r"[^A-Za-z0-9_.-]", "_", exp.name)
    result = exp(cfg, progress=not args.no_progress)
    report = save_result(result, out)
    print(result.summary())
    print(f"report: {report.resolve()}")
    if args.check and not result.passed:
        return 1
    return 0
