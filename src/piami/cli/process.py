"""``piami process SPEC``: print a process's exact quantities (nats and bits)."""

from __future__ import annotations

import argparse

import numpy as np

from piami.errors import DivergentQuantityError, PiamiValueError

#: Most belief updates (chains x steps) of the entropy-rate average the command will run.
MAX_BELIEF_UPDATES = 10**8


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "process",
        help="print the exact theory of a process (entropy rate, E, C_mu, optimal loss)",
        description="Print the exact quantities of a process given by its spec, e.g. "
        "'mess3(x=0.05, a=0.85)', in nats and bits.",
    )
    p.add_argument("spec", help="process spec, e.g. mess3, 'rrxor(p1=0.5, p2=0.5)'")
    p.add_argument("--positions", type=int, default=10, help="optimal losses to print (default 10)")
    p.add_argument(
        "--chains",
        type=int,
        default=512,
        help="belief trajectories in the Blackwell average (non-unifilar only; default 512)",
    )
    p.add_argument("--steps", type=int, default=4000, help="steps per trajectory (default 4000)")
    p.set_defaults(func=cmd_process)


def _row(label: str, nats: float, extra: str = "") -> str:
    return f"  {label:<26} {nats:12.6f} nats {nats / np.log(2):12.6f} bits{extra}"


def cmd_process(args: argparse.Namespace) -> int:
    from piami.processes import HiddenMarkovModel, from_spec

    if args.positions < 1 or args.positions > 100_000:
        raise PiamiValueError(f"--positions must lie in [1, 100000]; got {args.positions}")
    if args.chains < 2 or args.steps < 1:
        raise PiamiValueError(
            f"need --chains >= 2 and --steps >= 1; got {args.chains}, {args.steps}"
        )
    if args.chains * args.steps > MAX_BELIEF_UPDATES:
        raise PiamiValueError(
            f"--chains x --steps = {args.chains * args.steps:,} belief updates is over the limit "
            f"of {MAX_BELIEF_UPDATES:,} (about a minute of work); lower one of them"
        )
    proc = from_spec(args.spec)
    print(f"{proc.spec}")
    if isinstance(proc, HiddenMarkovModel):
        kind = "unifilar HMM" if proc.is_unifilar() else "non-unifilar HMM"
    else:
        kind = "generalized HMM (signed presentation)"
    print(f"  {proc.n_symbols} symbols, {proc.n_states} states, {kind}")
    pi = proc.stationary_distribution()
    print(f"  stationary distribution    {np.array2string(pi, precision=6, max_line_width=200)}")
    er = proc.entropy_rate_estimate(n_chains=args.chains, n_steps=args.steps)
    if er.method == "unifilar":
        extra = "  (exact: H[X|S] of a unifilar presentation)"
    else:
        extra = (
            f"  (Blackwell time average of {er.n_samples:,} beliefs, stderr {er.stderr:.1e} nats)"
        )
    print(_row("entropy rate h", er.value, extra))
    if np.isfinite(er.myopic_bound):
        print(_row("  upper bound min_L h(L)", er.myopic_bound, "  (mixed-state layers, L <= 256)"))
    if np.isfinite(er.lower):
        print(_row("  lower bound H[X|S]", er.lower))
        print(_row("  upper bound H[X,S'|S]", er.upper))
    try:
        print(_row("excess entropy E", proc.excess_entropy()))
    except DivergentQuantityError as exc:
        print(f"  excess entropy E           not available: {exc}")
    try:
        print(_row("statistical complexity", proc.statistical_complexity()))
    except DivergentQuantityError:
        print(
            "  statistical complexity     diverges (infinitely many causal states: the "
            "mixed-state presentation does not close)"
        )
    msp = proc.mixed_state_presentation(max_depth=200, max_states=10_000)
    size = f"{msp.n_states}" if msp.complete else f"> {msp.n_states - 1} (did not close)"
    print(f"  mixed states from root     {size}")
    losses = proc.optimal_loss(args.positions)
    print("  optimal loss by position t (h(t+1) = H(t+1) - H(t)):")
    for t, v in enumerate(losses):
        print(f"    t = {t:<5d} {v:12.6f} nats {v / np.log(2):12.6f} bits")
    return 0
