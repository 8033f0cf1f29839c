"""``piami stats SOURCE``: correlation decay, entropy profile and the predicted scaling exponent.

SOURCE is ``shakespeare``, a text file, a folder of ``*.txt``, a Random Hierarchy Model
``"rhm(v=64, n_classes=64, m=3, s=2, L=6, seed=0)"``, or any process spec that
:func:`piami.processes.from_spec` knows (``"mess3(x=0.05, a=0.85)"``).
"""

from __future__ import annotations

import argparse
import ast
import math
from pathlib import Path

import numpy as np

from piami._io import ensure_writable_dir
from piami._limits import check_memory
from piami.errors import PiamiValueError
from piami.lab.config import check_seed

_RHM_KEYS = ("v", "n_classes", "m", "s", "L", "seed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="measure beta, gamma and the predicted alpha_D of a corpus or a process",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source", help="shakespeare | PATH | 'rhm(v=.., m=.., s=.., L=..)' | process spec"
    )
    p.add_argument("--tokenizer", default="char", help="char | byte | bpe | bpe:N (text only)")
    p.add_argument("--max-chars", type=int, default=None, help="use only the first N characters")
    p.add_argument("--n-max-lag", type=int, default=256, help="largest lag of C(n)")
    p.add_argument("--n-lags", type=int, default=16, help="number of log-spaced lags")
    p.add_argument("--n-max-entropy", type=int, default=8, help="largest context length of H_n")
    p.add_argument("--estimator", default="nsb", choices=("plugin", "miller_madow", "nsb"))
    p.add_argument(
        "--norm",
        default=None,
        choices=("top_sv", "frobenius"),
        help="strength of C(n) fitted (default: top_sv; frobenius for an RHM)",
    )
    p.add_argument(
        "--include-sparse",
        action="store_true",
        help="fit gamma also on orders whose n-gram counts are flagged too sparse (flagged in "
        "output)",
    )
    p.add_argument("--n-seqs", type=int, default=100_000, help="sequences sampled from a process")
    p.add_argument("--seq-len", type=int, default=1024, help="sequence length for a process spec")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and bootstrap")
    p.add_argument("--out", default=None, help="folder for stats.json and figures")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_stats)


def parse_rhm(spec: str):
    """``"rhm(v=8, n_classes=8, m=2, s=2, L=4, seed=0)"`` -> a RandomHierarchyModel."""
    from piami.processes.rhm import RandomHierarchyModel

    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as exc:
        raise PiamiValueError(f"cannot parse {spec!r}: {exc.msg}") from exc
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args):
        raise PiamiValueError(
            f"write an RHM as rhm(v=.., n_classes=.., m=.., s=.., L=..), got {spec!r}"
        )
    kw = {}
    for k in node.keywords:
        if k.arg not in _RHM_KEYS:
            raise PiamiValueError(f"rhm() takes {', '.join(_RHM_KEYS)}; got {k.arg!r}")
        try:
            kw[k.arg] = ast.literal_eval(k.value)
        except ValueError as exc:
            raise PiamiValueError(f"rhm(): {k.arg} must be a literal number") from exc
    missing = [k for k in ("v", "m", "s", "L") if k not in kw]
    if missing:
        raise PiamiValueError(f"rhm() needs {missing}; e.g. rhm(v=64, m=3, s=2, L=6)")
    seed = kw.pop("seed", 0)
    kw.setdefault("n_classes", kw["v"])
    return RandomHierarchyModel(**kw, rng=np.random.default_rng(seed))


def load_source(args: argparse.Namespace) -> tuple[np.ndarray, int, dict]:
    """``(tokens, n_vocab, settings)`` for a SOURCE string; settings adjust the measurement."""
    src = args.source
    rng = np.random.default_rng(args.seed)
    if src.replace(" ", "").startswith("rhm("):
        rhm = parse_rhm(src)
        tokens = rhm.sample(args.n_seqs, rng=rng)
        info = {
            "kind": "rhm",
            "process": repr(rhm),
            "beta_theory": rhm.beta,
            "p_star": rhm.p_star,
            "anchor": "last",
            "lags": rhm.level_lags(),
            "norm": args.norm or "frobenius",
        }
        return tokens, rhm.v, info
    if src == "shakespeare" or _is_path(src):
        from piami.processes.corpus import load_text, tokenize

        ids, tok = tokenize(load_text(src, max_chars=args.max_chars), args.tokenizer)
        info = {"kind": "text", "tokenizer": args.tokenizer, "norm": args.norm or "top_sv"}
        return ids, int(tok.vocab_size), info
    from piami.processes import from_spec

    proc = from_spec(src)  # raises a PiamiError listing the known processes
    tokens = proc.sample(max(1, args.n_seqs // 100), args.seq_len, rng=rng)
    info = {"kind": "process", "process": src, "norm": args.norm or "top_sv"}
    return np.asarray(tokens), int(np.max(tokens)) + 1, info


def _is_path(src: str) -> bool:
    try:
        return Path(src).exists()
    except (OSError, ValueError):  # a name too long for the file system, or a NUL byte
        return False


def _fmt(fit) -> str:
    if isinstance(fit, str):
        return f"not measured: {fit}"
    return f"{fit.value:.3f}  95% CI [{fit.ci[0]:.3f}, {fit.ci[1]:.3f}]"


def cmd_stats(args: argparse.Namespace) -> int:
    from piami._io import atomic_write_json
    from piami.instruments.exponents import measure_statistics, statistics_to_dict

    for name in ("n_max_lag", "n_lags", "n_max_entropy", "n_seqs", "seq_len"):
        if getattr(args, name) < 1:
            raise PiamiValueError(f"--{name.replace('_', '-')} must be >= 1")
    check_seed(args.seed, key="--seed")
    if args.n_boot < 0:
        raise PiamiValueError(f"--n-boot must be >= 0, got {args.n_boot}")
    # the sampled tokens (int64) and their counting copies, before anything is drawn
    check_memory(
        4 * 8 * float(args.n_seqs) * args.seq_len,
        f"--n-seqs {args.n_seqs} x --seq-len {args.seq_len} tokens",
        fix="sample fewer or shorter sequences",
    )
    if args.max_chars is not None and args.max_chars < 1:
        raise PiamiValueError(f"--max-chars must be >= 1, got {args.max_chars}")
    if args.out:  # checked before the measurement, not after it
        ensure_writable_dir(args.out, what="--out")
    tokens, n_vocab, info = load_source(args)
    stats = measure_statistics(
        tokens,
        n_vocab=n_vocab,
        n_max_lag=args.n_max_lag,
        n_lags=args.n_lags,
        lags=info.get("lags"),
        anchor=info.get("anchor"),
        n_max_entropy=args.n_max_entropy,
        estimator=args.estimator,
        include_sparse=args.include_sparse,
        norm=info["norm"],
        n_boot=args.n_boot,
        rng=np.random.default_rng(args.seed),
        progress=not args.no_progress,
    )
    print(f"source: {args.source}  ({tokens.size:,} tokens, V = {n_vocab})")
    if "beta_theory" in info:
        print(f"beta (theory ln m / ln s)  {info['beta_theory']:.3f}")
    print(f"beta  ({info['norm']})        {_fmt(stats['beta'])}")
    g = stats["gamma"]
    print(f"gamma ({args.estimator})           {_fmt(g)}")
    if not isinstance(g, str):
        sparse_used = [int(n) for n in g.x if stats["entropies"].sparse[int(n)]]
        if sparse_used:
            print(
                f"  WARNING: gamma uses orders n = {sparse_used} flagged sparse (--include-sparse)"
            )
        print(
            f"H_inf                     {g.offset:.3f} nats  [{g.offset_ci[0]:.3f}, "
            f"{g.offset_ci[1]:.3f}]{'  (on its bound)' if g.offset_at_bound else ''}"
        )
    a, ci = stats["alpha_d"], stats["alpha_d_ci"]
    if math.isfinite(a):
        print(f"alpha_D = gamma/(2 beta)  {a:.3f}  95% CI [{ci[0]:.3f}, {ci[1]:.3f}]")
        if not isinstance(g, str) and (g.offset_at_bound or g.at_bound):
            print(
                "  NOT IDENTIFIED: the gamma fit ends on a bound (H_inf or gamma); the n-gram "
                "orders counted do not show where H_n levels off. `piami run "
                "scaling-from-statistics` reads gamma off a trained model's n-gram losses instead"
            )
    else:
        print("alpha_D = gamma/(2 beta)  not available (an exponent is missing)")
    print(
        "published (Cagnetta et al. 2026): TinyStories gamma 0.325 beta 0.88 alpha_D 0.185; "
        "WikiText-103 0.265, 0.94, 0.141"
    )
    if args.out:
        from piami.experiments.scaling_from_statistics import plot_correlations, plot_entropies

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {
            "source": args.source,
            "n_tokens": int(tokens.size),
            "n_vocab": n_vocab,
            **info,
            **statistics_to_dict(stats),
        }
        atomic_write_json(out / "stats.json", payload)
        import io

        import matplotlib.pyplot as plt

        from piami._io import atomic_write_bytes

        for name, fig in (
            ("correlations", plot_correlations(stats["correlations"], stats["beta"])),
            ("entropies", plot_entropies(stats["entropies"], stats["gamma"])),
        ):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            atomic_write_bytes(out / f"{name}.png", buf.getvalue())
        print(f"wrote {out / 'stats.json'} and figures")
    return 0
