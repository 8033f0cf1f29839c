"""Data statistics at scale: ||C(n)|| at 64 lags plus H_n for n <= 8 on 10^7 tokens, V = 8,192.

The fast path is what ``piami stats`` calls: the lagged pairs counted by the compiled kernels
(``piami.instruments._pair_kernels``: positions grouped by token once, four lags counted per pass
over the stream, in cache), n-gram groups refined order by order for H_n (the counting engine,
``piami.instruments.counting``), a Lanczos top singular value, chunks of lags on two threads. The
Numba JIT compiles (or loads from its cache) before the timed run; that time is printed apart.
Goal (issue 15): <= 8 s wall on 2 cores, <= 1 GB.

Baseline, measured in the same run: straightforward dictionary counting (a Python ``dict`` keyed
by the pair or the n-gram tuple, incremented token by token), followed by the same entropy and
singular-value code. The baseline is run on a subsample and extrapolated linearly in tokens and in
lags (its cost is one dict update per pair per lag and one per n-gram per order); the fast path is
timed at full size and also on the same subsample, so the ratio is given both ways.
The token stream is Zipfian (exponent 1.1) with copied spans, so that it has text-like marginals,
long-range repeats and a realistic number of distinct pairs.
"""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict

import numpy as np

N_TOKENS = 10_000_000
VOCAB = 8192
LAGS = np.arange(1, 65)
N_MAX = 8
SUB = 200_000  # baseline subsample (tokens)
SUB_LAGS = 4  # baseline lags measured on the subsample


def make_tokens(n: int, rng: np.random.Generator) -> np.ndarray:
    ranks = rng.zipf(1.1, size=n) - 1
    x = (ranks % VOCAB).astype(np.int64)
    x = rng.permutation(VOCAB)[x]  # scatter the frequent ids
    starts = rng.integers(0, n - 200, size=n // 2000)
    for s in starts:  # copy a span from earlier: correlations at many lags
        src = rng.integers(0, max(1, s - 1000))
        x[s : s + 100] = x[src : src + 100]
    return x


def fast(x: np.ndarray, lags: np.ndarray, n_max: int, rng: np.random.Generator) -> dict:
    from piami.instruments.entropy import conditional_entropies
    from piami.instruments.statistics import lagged_correlations

    t0 = time.perf_counter()
    prof = lagged_correlations(x, lags, n_vocab=VOCAB, rng=rng, n_floor_lags=4)
    t1 = time.perf_counter()
    ent = conditional_entropies(x, n_max, n_vocab=VOCAB)
    t2 = time.perf_counter()
    return {"top_sv": prof.top_sv, "H": ent.plugin, "wall_parts": (t1 - t0, t2 - t1)}


def dict_baseline(x: np.ndarray, lags: np.ndarray, n_max: int) -> dict:
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    from piami.instruments.entropy import entropy_plugin

    xs = x.tolist()
    tops = []
    for n in lags:
        counts: dict = defaultdict(int)
        for a, b in zip(xs[:-n], xs[n:], strict=True):
            counts[(a, b)] += 1
        keys = np.array(list(counts.keys()))
        vals = np.array(list(counts.values()), dtype=np.float64)
        tot = vals.sum()
        joint = sp.csr_matrix((vals / tot, (keys[:, 0], keys[:, 1])), shape=(VOCAB, VOCAB))
        p, q = np.asarray(joint.sum(1)).ravel(), np.asarray(joint.sum(0)).ravel()
        from scipy.sparse.linalg import LinearOperator

        op = LinearOperator(
            (VOCAB, VOCAB),
            matvec=lambda z, j=joint, p=p, q=q: j @ np.ravel(z) - p * (q @ np.ravel(z)),
            rmatvec=lambda z, j=joint, p=p, q=q: j.T @ np.ravel(z) - q * (p @ np.ravel(z)),
            dtype=np.float64,
        )
        tops.append(svds(op, k=1, tol=1e-4, return_singular_vectors=False)[0])
    blocks = [0.0]
    for k in range(1, n_max + 2):
        counts = defaultdict(int)
        for i in range(len(xs) - k + 1):
            counts[tuple(xs[i : i + k])] += 1
        blocks.append(entropy_plugin(np.fromiter(counts.values(), dtype=np.int64)))
    return {"top_sv": np.array(tops), "H": np.diff(blocks)}


def _timed(fn, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def _load() -> str:
    return "load average " + " ".join(f"{a:.1f}" for a in os.getloadavg())


def main() -> None:
    rng = np.random.default_rng(0)
    x = make_tokens(N_TOKENS, rng)
    sub = x[:SUB]
    sub_lags = LAGS[:SUB_LAGS]
    print(f"tokens {N_TOKENS:,}, V {VOCAB}, lags 1..{LAGS[-1]} ({LAGS.size}), H_n for n <= {N_MAX}")
    print(f"machine: {os.cpu_count()} cores, {_load()} (1, 5, 15 min) before the run")

    _, wall_jit, _ = _timed(fast, x[:20_000], LAGS[:8], 2, np.random.default_rng(1))
    print(f"JIT compile or cache load (small input, not counted below): {wall_jit:.1f} s")
    res_f, wall_f, cpu_f = _timed(fast, x, LAGS, N_MAX, np.random.default_rng(1))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        "fast (compiled pair counts, 4 lags per pass + Lanczos on 2 threads, refined "
        f"n-gram groups + NSB), full size: {wall_f:.1f} s wall ({res_f['wall_parts'][0]:.1f} "
        f"correlations + {res_f['wall_parts'][1]:.1f} entropies), {cpu_f:.1f} s CPU, peak RSS "
        f"{peak_mb:.0f} MB (process, tokens included)   [goal: <= 8 s wall on 2 cores, <= 1 GB]"
    )
    print(f"  {_load()} after the full-size run")

    res_fs, wall_fs, cpu_fs = _timed(fast, sub, sub_lags, N_MAX, np.random.default_rng(1))
    res_d, wall_d, cpu_d = _timed(dict_baseline, sub, sub_lags, N_MAX)
    np.testing.assert_allclose(res_fs["top_sv"], res_d["top_sv"], rtol=1e-3)
    np.testing.assert_allclose(res_fs["H"], res_d["H"], rtol=1e-9, atol=1e-12)
    print(
        f"same subsample ({SUB:,} tokens, {SUB_LAGS} lags, n <= {N_MAX}), results agree: "
        f"fast {wall_fs:.2f} s wall / {cpu_fs:.2f} s CPU, dict {wall_d:.2f} s / {cpu_d:.2f} s "
        f"-> ratio {wall_d / wall_fs:.1f}x wall, {cpu_d / cpu_fs:.1f}x CPU"
    )

    # linear extrapolation of the dict baseline: pair work scales with tokens x lags, n-gram work
    # with tokens x orders; the two parts are timed separately (pairs-only run below)
    _, _, cpu_pairs = _timed(dict_baseline, sub, sub_lags, -1)
    cpu_ngrams = max(cpu_d - cpu_pairs, 0.0)
    scale = N_TOKENS / SUB
    est = cpu_pairs * scale * LAGS.size / SUB_LAGS + cpu_ngrams * scale
    print(
        f"dict baseline extrapolated linearly to full size (NOT run at full size; REFERENCES "
        f"measured 273 s / 7.6 GB there): ~{est:.0f} s CPU -> ratio ~{est / cpu_f:.0f}x CPU"
    )
    print(
        f"note: the machine is shared ({_load()} at the end); wall times are inflated by the "
        "load, CPU times less so"
    )


if __name__ == "__main__":
    main()
