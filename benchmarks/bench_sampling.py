"""Mess3 sampling with exact beliefs: the vectorized sampler against a per-sequence loop.

Size: 4096 sequences x 256 tokens (1,048,576 tokens) for the vectorized sampler
(``proc.sample(..., return_beliefs=True)``: tokens and the exact belief after every prefix). The
baseline is a straightforward per-sequence Python loop (one token at a time: inverse-CDF draw of the
(symbol, next state) pair from the current state's row, then the belief update
``eta T[x] / (eta T[x] 1)``), measured in the same run on 32 x 256 tokens (it is ~100x slower, so a
full-size baseline would take a minute) and compared in tokens per second. Both are timed by wall
clock and by process CPU time (the latter is what an unloaded machine would show when other jobs
share the cores). The baseline's beliefs are checked against the exact ones first.
Targets (issue 2): >= 10 million tokens/s and >= 50x the baseline.
"""

from __future__ import annotations

import time

import numpy as np

from piami.processes import mess3


def per_sequence_loop(proc, n_seqs: int, seq_len: int, rng: np.random.Generator):
    """The straightforward sampler: Python loops over sequences and positions."""
    T = proc.T
    X, S, _ = T.shape
    pi = proc.stationary_distribution()
    cum = np.cumsum(T.transpose(1, 0, 2).reshape(S, X * S), axis=1)
    tokens = np.empty((n_seqs, seq_len), dtype=np.int64)
    beliefs = np.empty((n_seqs, seq_len + 1, S))
    for i in range(n_seqs):
        s = int(np.searchsorted(np.cumsum(pi), rng.random(), side="right"))
        eta = pi.copy()
        for t in range(seq_len):
            beliefs[i, t] = eta
            k = int(np.searchsorted(cum[s], rng.random(), side="right"))
            x, s = divmod(k, S)
            tokens[i, t] = x
            eta = eta @ T[x]
            eta /= eta.sum()
        beliefs[i, seq_len] = eta
    return tokens, beliefs


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over ``repeats`` calls."""
    wall = cpu = np.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    proc = mess3(x=0.05, a=0.85)
    n, L, nb = 4096, 256, 32
    rng = np.random.default_rng(0)
    proc.sample(64, 16, rng=rng, return_beliefs=True)  # warm up

    tok_b, bel_b = per_sequence_loop(proc, nb, L, np.random.default_rng(1))
    err = float(np.abs(proc.beliefs(tok_b) - bel_b).max())
    s = proc.sample(64, L, rng=rng, return_beliefs=True)
    err_v = float(np.abs(proc.beliefs(s.tokens) - s.beliefs).max())
    if err > 1e-12 or err_v > 1e-12:
        raise RuntimeError(f"beliefs disagree with the exact ones by {err:.2e} / {err_v:.2e}")

    rows = [
        (
            "vectorized: tokens + beliefs",
            n,
            lambda: proc.sample(n, L, rng=rng, return_beliefs=True),
            3,
        ),
        (
            "vectorized: + next-token probs",
            n,
            lambda: proc.sample(n, L, rng=rng, return_beliefs=True, return_probs=True),
            3,
        ),
        ("vectorized: tokens only", n, lambda: proc.sample(n, L, rng=rng), 3),
        ("per-sequence loop: tokens + beliefs", nb, lambda: per_sequence_loop(proc, nb, L, rng), 1),
    ]
    print(f"mess3(0.05, 0.85), length {L}; batch {n} (vectorized) and {nb} (loop)")
    rates = {}
    for label, m, fn, reps in rows:
        wall, cpu = _timed(fn, reps)
        rates[label] = (m * L / wall, m * L / cpu)
        print(
            f"  {label:<36} wall {wall * 1e3:8.1f} ms {m * L / wall / 1e6:7.2f} M tok/s | "
            f"cpu {cpu * 1e3:8.1f} ms {m * L / cpu / 1e6:7.2f} M tok/s"
        )
    fast, slow = rates["vectorized: tokens + beliefs"], rates["per-sequence loop: tokens + beliefs"]
    print(
        f"  speed-up over the loop (tokens + beliefs): wall {fast[0] / slow[0]:.0f}x, "
        f"cpu {fast[1] / slow[1]:.0f}x   (targets: >= 10 M tok/s, >= 50x)"
    )
    print(
        f"  max |belief - exact belief| on the same tokens: loop {err:.1e}, vectorized {err_v:.1e}"
    )


if __name__ == "__main__":
    main()
