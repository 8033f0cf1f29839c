"""``piami reconstruct PATH|SPEC``: the minimal predictive model of a symbol sequence.

PATH is a text file (each non-whitespace character one symbol) or a ``.npy`` integer array (1-D, or
2-D with one sequence per row); SPEC is a process piami knows (``golden_mean``, ``"mess3(x=0.05,
a=0.85)"``), sampled ``--n`` symbols long. Writes ``OUT/machine.json`` (method, states, alphabet,
transitions, and entropy rate, statistical complexity and excess entropy in bits as
``{value, low, high}``: moving-block bootstrap intervals, BSI's posterior credible intervals) and
``OUT/machine.dot`` (a Graphviz state diagram; ``machine.png`` too where Graphviz's ``dot`` is
installed), and prints a summary.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
from functools import partial
from pathlib import Path

import numpy as np

from piami._io import atomic_write_bytes, atomic_write_json, atomic_write_text, ensure_writable_dir
from piami.errors import PiamiValueError
from piami.lab.config import check_seed

METHODS = ("cssr", "spectral", "bsi")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct",
        help="reconstruct the minimal predictive model (epsilon-machine) of a symbol sequence",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="PATH (text file or .npy ids) | process spec, e.g. golden_mean")
    p.add_argument("--method", default="cssr", choices=METHODS)
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="longest history (cssr) or word (spectral); default ln N / (3 ln k), in 1..10",
    )
    p.add_argument("--alpha", type=float, default=0.001, help="significance level of CSSR's test")
    p.add_argument("--max-states", type=int, default=3, help="largest machine BSI considers")
    p.add_argument("--n", type=int, default=100_000, help="symbols sampled from a process spec")
    p.add_argument("--n-boot", type=int, default=20, help="bootstrap resamples (0: no intervals)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and bootstrap")
    p.add_argument("--out", required=True, help="folder for machine.json and machine.dot")
    p.set_defaults(func=cmd_reconstruct)


def _load(args: argparse.Namespace, rng: np.random.Generator):
    from piami.processes.symbols import SymbolSequence, read_symbols

    src = args.source
    try:
        is_file = Path(src).exists()
    except (OSError, ValueError):
        is_file = False
    if is_file or "/" in src or src.lower().endswith((".txt", ".npy")):
        return read_symbols(src)  # a path that does not exist says so
    from piami.processes import from_spec

    proc = from_spec(src)  # an unknown name raises a PiamiError listing the known ones
    if isinstance(args.n, bool) or args.n < 10:
        raise PiamiValueError(f"--n must be at least 10 symbols, got {args.n}")
    tokens = np.asarray(proc.sample(1, args.n, rng=rng))[0].astype(np.int64)
    return SymbolSequence(
        tokens=tokens,
        alphabet=tuple(str(i) for i in range(proc.n_symbols)),
        source=src,
    )


def _method(args: argparse.Namespace, n_symbols: int, max_length: int):
    """The method with its settings bound: ``tokens -> Reconstruction``."""
    if args.method == "cssr":
        from piami.instruments.reconstruction.cssr import cssr

        return partial(cssr, max_length=max_length, alpha=args.alpha, n_symbols=n_symbols)
    if args.method == "spectral":
        from piami.instruments.reconstruction.spectral import spectral

        return partial(spectral, max_length=max_length, n_symbols=n_symbols)
    from piami.instruments.reconstruction.bsi import bsi

    return partial(bsi, max_states=args.max_states, n_symbols=n_symbols)


def _fmt(m: dict) -> str:
    if math.isnan(m["value"]):
        return "undefined for this (non-unifilar) presentation"
    if math.isnan(m["low"]):
        return f"{m['value']:.4f}"
    return f"{m['value']:.4f}  95% [{m['low']:.4f}, {m['high']:.4f}]"


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from piami.instruments.reconstruction.summary import (
        machine_measures,
        machine_record,
        state_diagram_dot,
    )

    out = ensure_writable_dir(args.out)  # before any work: a bad --out costs nothing
    check_seed(args.seed)
    if isinstance(args.n_boot, bool) or not 0 <= args.n_boot <= 1000:
        raise PiamiValueError(f"--n-boot must be in 0..1000, got {args.n_boot}")
    if not 0.0 < args.alpha < 1.0:
        raise PiamiValueError(f"--alpha must be in (0, 1), got {args.alpha}")
    rng = np.random.default_rng(args.seed)
    seq = _load(args, rng)
    n = int(seq.tokens.size)
    from piami.instruments.reconstruction.result import default_max_length

    max_length = args.max_length
    if max_length is None:
        max_length = default_max_length(n, max(seq.n_symbols, 2))
    if max_length < 1:
        raise PiamiValueError(f"--max-length must be >= 1, got {max_length}")
    fit = _method(args, seq.n_symbols, max_length)
    if args.method == "bsi":
        recon = fit(
            seq.tokens.ravel() if seq.tokens.ndim == 2 and len(seq.tokens) == 1 else seq.tokens,
            rng=rng,
        )
        measures = machine_measures(recon, seq.tokens, None, rng=rng)
        for key in ("entropy_rate", "statistical_complexity"):  # the posterior's credible interval
            post = recon.details[key]
            measures[key].update(low=post["low"] / math.log(2), high=post["high"] / math.log(2))
    else:
        recon = fit(seq.tokens)
        measures = machine_measures(recon, seq.tokens, fit, n_boot=args.n_boot, rng=rng)
    record = machine_record(recon, seq.alphabet, measures, source=seq.source)
    atomic_write_json(out / "machine.json", record)
    dot = state_diagram_dot(recon, seq.alphabet)
    atomic_write_text(out / "machine.dot", dot)
    if shutil.which("dot"):
        png = subprocess.run(["dot", "-Tpng"], input=dot.encode(), capture_output=True, check=False)
        if png.returncode == 0:
            atomic_write_bytes(out / "machine.png", png.stdout)
    print(f"{seq.source}: {n:,} symbols over {seq.n_symbols} ({' '.join(seq.alphabet[:12])})")
    print(f"{recon.method}: {recon.n_states} states, max length {recon.max_length}")
    print(f"  entropy rate            {_fmt(measures['entropy_rate'])} bits/symbol")
    print(f"  statistical complexity  {_fmt(measures['statistical_complexity'])} bits")
    print(f"  excess entropy          {_fmt(measures['excess_entropy'])} bits")
    print(f"machine: {out / 'machine.json'}")
    return 0
