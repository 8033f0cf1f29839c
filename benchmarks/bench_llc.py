"""LLC by SGLD: piami's vectorized chains against devinterp 2.0.1, on the same deep linear network.

Both run plain SGLD (Lau et al. 2023 update, same convention) with the same step size, n beta,
localization, chains, burn-in, draws and batch size, on the same noise-free data at a minimal-rank
factorization; the truth is Aoyagi's RLCT. Printed: draws per second of each (chains x steps / wall
time of the whole call), their ratio, and both estimates beside the truth.

devinterp runs in its own virtual environment (``.venv-bench``: ``torch==2.13.0`` then
``devinterp==2.0.1``), called as a subprocess, so it cannot disturb the main one. Where its API
forces a difference:

* it takes only a HuggingFace ``Dataset`` with an ``input_ids`` column and a per-token loss of shape
  ``(batch, seq - 1)``: the rows hold ``[x, y]`` as floats and the loss of each sample is repeated
  over the ``seq - 1`` slots (the mean, hence the gradient, is unchanged);
* its chains run one after another, all chains see the same batches in the same order
  (``match_sampling_input_ids_across_chains``), and its data loader replays the first epoch's
  shuffle; piami's chains draw their own batches, reshuffled every epoch;
* its reference loss is the mean over ``num_init_loss_batches`` batches (here 0: noise-free data);
* the LLC it returns averages the burn-in steps in; the estimate without them is printed as well,
  computed from its own loss trace;
* it writes every draw to a zarr store (part of its wall time).

Usage: ``python -m benchmarks llc`` (from the main venv). Set ``PIAMI_BENCH_THREADS`` to change the
torch thread count of both sides (default 1: fastest on a shared machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_PY = Path(__file__).resolve().parents[1] / ".venv-bench" / "bin" / "python"
WIDTHS, RANK = (8, 6, 6, 8), 2
SETTINGS = dict(step_size=3e-5, gamma=1.0, n_chains=4, n_burnin=500, n_draws=2000, batch_size=500)
N = 10_000


def _data(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    qs = [np.linalg.qr(rng.normal(size=(h, RANK)))[0] for h in WIDTHS]
    ws = [qs[j + 1] @ qs[j].T for j in range(len(WIDTHS) - 1)]
    x = rng.normal(size=(N, WIDTHS[0]))
    w = ws[0]
    for m in ws[1:]:
        w = m @ w
    return ws, x, x @ w.T


def _worker(npz: str, threads: int) -> None:  # runs inside .venv-bench: no piami here
    import torch
    from datasets import Dataset
    from devinterp.slt.llc import llc

    torch.set_num_threads(threads)
    z = np.load(npz)
    s = json.loads(str(z["settings"]))
    ws = [z[f"w{j}"] for j in range(int(z["n_layers"]))]
    x, y = z["x"].astype(np.float32), z["y"].astype(np.float32)
    d_in = x.shape[1]
    layers = [torch.nn.Linear(w.shape[1], w.shape[0], bias=False) for w in ws]
    with torch.no_grad():
        for lay, w in zip(layers, ws, strict=True):
            lay.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
    model = torch.nn.Sequential(*layers)
    rows = np.concatenate([x, y], axis=1)
    ds = Dataset.from_dict({"input_ids": rows.tolist()}).with_format("torch")
    seq = rows.shape[1]

    def loss_fn(m: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
        xb, yb = ids[:, :d_in].float(), ids[:, d_in:].float()
        per_sample = 0.5 * (m(xb) - yb).square().sum(dim=1)
        return per_sample[:, None].expand(-1, seq - 1)

    n_beta = len(x) / np.log(len(x))
    t0 = time.perf_counter()
    out = llc(
        model,
        ds,
        {},
        lr=s["step_size"],
        n_beta=n_beta,
        loss_fn=loss_fn,
        num_chains=s["n_chains"],
        num_draws=s["n_draws"],
        num_burnin_steps=s["n_burnin"],
        batch_size=s["batch_size"],
        localization=s["gamma"],
        num_init_loss_batches=4,
        device="cpu",
    )
    seconds = time.perf_counter() - t0
    res = {"seconds": seconds, "llc_mean": float(out["llc_mean"]), "n_beta": n_beta}
    try:  # the estimate without burn-in, from devinterp's own per-step losses
        trace = np.asarray(out["loss_trace"].values, dtype=np.float64)
        init = float(np.asarray(out["init_loss"].values).mean())
        trace = trace.reshape(s["n_chains"], -1)
        res["llc_no_burnin"] = float(n_beta * (trace[:, s["n_burnin"] :].mean() - init))
        res["trace_len"] = trace.shape[1]
    except Exception as exc:  # report, do not hide
        res["llc_no_burnin_error"] = repr(exc)
    print("RESULT " + json.dumps(res))


def main() -> None:
    import torch

    from piami.instruments.learning_coefficient import LLCEstimator
    from piami.theory.learning_coefficient import deep_linear_rlct

    threads = int(os.environ.get("PIAMI_BENCH_THREADS", "1"))
    torch.set_num_threads(threads)
    ws, x, y = _data()
    lam, mult = deep_linear_rlct(list(WIDTHS), RANK)
    steps = SETTINGS["n_burnin"] + SETTINGS["n_draws"]
    total = SETTINGS["n_chains"] * steps
    print(
        f"deep linear {list(WIDTHS)} rank {RANK}, n = {N}, n beta = n / ln n, plain SGLD, "
        f"{SETTINGS}, float32, {threads} torch thread(s)"
    )
    est = LLCEstimator(sampler="sgld", device="cpu", dtype="float32", **SETTINGS)
    t0 = time.perf_counter()
    est.fit_deep_linear([torch.as_tensor(w) for w in ws], (torch.as_tensor(x), torch.as_tensor(y)))
    ours_s = time.perf_counter() - t0
    ours = total / ours_s
    print(
        f"piami (bmm fast path) : {ours:9.0f} draws/s ({ours_s:.2f} s), LLC {est.llc_mean_:.3f}"
        f" ± {est.llc_std_:.3f}   truth {lam:g} (multiplicity {mult})"
    )
    if not BENCH_PY.is_file():
        print(
            f"devinterp: not run -- no benchmark venv at {BENCH_PY}. Create it with\n"
            "  python3 -m venv .venv-bench && .venv-bench/bin/pip install -q torch==2.13.0 "
            "&& .venv-bench/bin/pip install -q devinterp==2.0.1"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        npz = str(Path(tmp) / "bench.npz")
        np.savez(
            npz,
            x=x,
            y=y,
            n_layers=len(ws),
            settings=json.dumps(SETTINGS),
            **{f"w{j}": w for j, w in enumerate(ws)},
        )
        env = {**os.environ, "TQDM_DISABLE": "1"}
        proc = subprocess.run(
            [str(BENCH_PY), __file__, "--devinterp-worker", npz, str(threads)],
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
            check=False,
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"devinterp: failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return
    res = json.loads(lines[-1][len("RESULT ") :])
    theirs = total / res["seconds"]
    print(
        f"devinterp 2.0.1       : {theirs:9.0f} draws/s ({res['seconds']:.2f} s), LLC "
        f"{res['llc_mean']:.3f} (burn-in averaged in); without burn-in "
        f"{res.get('llc_no_burnin', float('nan')):.3f}"
    )
    print(f"speed ratio piami / devinterp: {ours / theirs:.1f}x (same chains, draws, step size)")
    # piami with the one setting llc-calibration uses for every deep linear network, for accuracy
    from piami.experiments.llc_calibration import Config

    c = Config()
    cal = LLCEstimator(
        sampler=c.sampler,
        integrator=c.integrator,
        step_size=c.step_size,
        gamma=c.gamma,
        n_chains=c.n_chains,
        n_burnin=c.n_burnin,
        n_draws=c.n_draws,
        batch_size=c.batch_size,
        device="cpu",
    )
    t0 = time.perf_counter()
    cal.fit_deep_linear([torch.as_tensor(w) for w in ws], (torch.as_tensor(x), torch.as_tensor(y)))
    cal_s = time.perf_counter() - t0
    steps = c.n_burnin + c.n_draws
    print(
        f"piami, llc-calibration setting ({c.sampler} + {c.integrator}, eps {c.step_size:g}, "
        f"gamma {c.gamma:g}, {c.n_chains} chains, {c.n_burnin} + {c.n_draws}): LLC "
        f"{cal.llc_mean_:.3f} ± {cal.llc_std_:.3f} vs truth {lam:g} "
        f"({c.n_chains * steps / cal_s:.0f} draws/s)"
    )


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--devinterp-worker":
        _worker(sys.argv[2], int(sys.argv[3]))
    else:
        main()
