"""``piami runs ls`` and ``piami runs show ID``: query a run store."""

from __future__ import annotations

import argparse
import json

from piami.runs.sweep import DEFAULT_STORE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list and show the runs of a store")
    rsub = p.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = rsub.add_parser("ls", help="list runs: id, experiment, status, seed, passed")
    ls.add_argument("--out", default=str(DEFAULT_STORE), help="the run store (default: out/runs)")
    ls.add_argument("--experiment", default=None, help="only the runs of this experiment")
    ls.add_argument(
        "--status", choices=("finished", "failed", "pending"), default=None, help="only these"
    )
    ls.set_defaults(func=cmd_ls)

    show = rsub.add_parser("show", help="config and result (or error) of one run")
    show.add_argument("run_id", help="run id, or a unique prefix of it")
    show.add_argument("--out", default=str(DEFAULT_STORE), help="the run store (default: out/runs)")
    show.set_defaults(func=cmd_show)


def _varying(configs: list[dict]) -> list[str]:
    keys: list[str] = []
    for c in configs:
        keys.extend(k for k in c if k not in keys)
    return [k for k in keys if k != "seed" and len({json.dumps(c.get(k)) for c in configs}) > 1]


def cmd_ls(args: argparse.Namespace) -> int:
    from piami.errors import PiamiFileError
    from piami.runs.store import RunStore

    store = RunStore(args.out)
    try:
        is_store = store.root.is_dir()
    except OSError:  # e.g. a name too long to look up
        is_store = False
    if not is_store:
        raise PiamiFileError(f"no run store at {str(store.root)[:200]}; give --out DIR of a sweep")
    infos = [i for i in store.list(args.experiment) if args.status in (None, i.status)]
    vary = _varying([i.spec.config for i in infos])
    print(
        f"{'run_id':<16}  {'experiment':<20} {'status':<8} {'seed':>4}  verdict         "
        + " ".join(vary)
    )
    damaged = store.damaged()
    for i in infos:
        passed = "-"
        if i.status == "finished":
            try:
                passed = store.result(i.spec.run_id).verdict
            except PiamiFileError as exc:
                passed, damaged[i.spec.run_id] = "DAMAGED", str(exc)
        cfg = " ".join(f"{k}={json.dumps(i.spec.config.get(k))}" for k in vary)
        print(
            f"{i.spec.run_id:<16}  {i.spec.experiment:<20} {i.status:<8} {i.spec.seed:>4}  "
            f"{passed:<14}  {cfg}"
        )
    print(f"{len(infos)} runs in {store.root}")
    for name, why in sorted(damaged.items()):
        print(f"damaged {name}: {why}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from piami.runs.store import RunStore

    store = RunStore(args.out)
    rid = store.resolve(args.run_id)
    spec = store.spec(rid)
    status = store.status(rid)
    print(
        f"run {rid}: {spec.experiment}, seed {spec.seed}, piami {spec.piami_version}, "
        f"code {spec.code or '?'}{f' ({spec.code_git})' if spec.code_git else ''}, {status}"
    )
    print(f"folder: {store.path(rid).resolve()}")
    print("config: " + json.dumps(spec.config, indent=2))
    if status == "finished":
        res = store.result(rid)
        print(res.summary())
        if res.metrics:
            print("metrics: " + json.dumps(res.metrics, indent=2)[:4000])
    elif status == "failed":
        err = store.error(rid) or {}
        print(
            f"failed after {err.get('n_attempts', '?')} attempts: {err.get('type')}: "
            f"{err.get('message')}"
        )
        print(err.get("traceback", ""))
    return 0
