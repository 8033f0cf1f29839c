"""``piami certify [--quick] [--seeds N] [--out DIR]``: every experiment, every
check, over seeds."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "certify",
        help="run every experiment at several seeds and write the certificate page",
        description="Run every experiment at seeds 0..N-1 through one run store (resumable: the "
        "same command reuses every finished run of the same code) and write DIR/index.html: one "
        "row per instrument and theory check with its pass rate and error over seeds, its "
        "controls, and links to each run's report.",
    )
    p.add_argument("--quick", action="store_true", help="the quick variants (what the tests run)")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 (default 1)")
    p.add_argument("--out", default="out/certificate", help="folder (default out/certificate)")
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help="certify only this experiment; repeatable",
    )
    p.add_argument("--workers", type=int, default=None, help="runs at once (default: the cores)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster HOST:PORT (default: start one)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--check", action="store_true", help="exit 1 unless every run of every experiment passes"
    )
    p.set_defaults(func=cmd_certify)


def cmd_certify(args: argparse.Namespace) -> int:
    from piami.errors import PiamiValueError
    from piami.runs.certify import certify
    from piami.runs.executors import n_cores

    if args.workers is not None and args.workers < 1:
        raise PiamiValueError(f"--workers must be >= 1, got {args.workers}")
    cert = certify(
        out=args.out,
        seeds=args.seeds,
        quick=args.quick,
        only=args.only,
        backend=args.backend,
        workers=args.workers or n_cores(),
        address=args.address,
        progress=not args.no_progress,
    )
    from piami.report.certificate import render_markdown

    print(render_markdown(cert))
    print(f"certificate: {(cert.out / 'index.html').resolve()}")
    ok = all(
        len(runs) == len(cert.seeds) and all(r.passed for r in runs)
        for runs in cert.results.values()
    )
    return 1 if args.check and not ok else 0
