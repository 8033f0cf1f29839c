"""CSSR on 10^6 golden-mean symbols at L = 8: piami against sofic 0.2.1, in the same run.

sofic (PyPI, BSD-3) counts histories in Python dictionaries; piami sorts int64 word codes once
and loops over distinct suffixes only. Both are run with alpha = 0.001 and the chi-square test on
the same sequence; their state counts and entropy rates are printed beside the times. The
issue's goal is a ratio of at least 20. Skips the comparison when sofic is not installed.
"""

from __future__ import annotations

import time

import numpy as np

N = 1_000_000
L = 8
ALPHA = 0.001


def golden_mean(n: int, rng: np.random.Generator) -> np.ndarray:
    """One stationary golden-mean sequence (no ``00``): i.i.d. blocks ``1`` and ``01``.

    From the state after a 1 the process emits 1 or (0 then 1) with probability 1/2 each, so a
    single long sequence (sofic takes one) is a concatenation of fair-coin blocks; rows of a
    batched sample glued together would create forbidden ``00`` words at the seams.
    """
    blocks = rng.integers(0, 2, size=n)  # 0: "1", 1: "01"
    x = np.ones(n + blocks.sum(), dtype=np.int64)
    x[np.flatnonzero(blocks) + np.arange(int(blocks.sum()))] = 0
    return x[:n]


def main() -> None:
    from piami.instruments.reconstruction.cssr import cssr
    from piami.processes import from_spec

    x = golden_mean(N, np.random.default_rng(0))
    if not np.isclose(from_spec("golden_mean").T[1, 1, 0], 1.0):  # after a 0, a 1 must follow
        raise RuntimeError("piami's golden mean forbids another word than 00; fix golden_mean()")
    cssr(x[:10_000], max_length=2)  # warm imports
    t0 = time.perf_counter()
    rec = cssr(x, max_length=L, alpha=ALPHA)
    t_piami = time.perf_counter() - t0
    h = rec.machine.entropy_rate() / np.log(2)
    print(f"piami cssr: N={N:,} L={L}: {t_piami:.2f} s, {rec.n_states} states, h={h:.4f} bit")
    try:
        from sofic.generators import cssr as sofic_cssr
    except ImportError:
        print("sofic not installed (pip install sofic==0.2.1): no baseline")
        return
    t0 = time.perf_counter()
    m = sofic_cssr(x.tolist(), alphabet=[0, 1], Lmax=L, alpha=ALPHA, test="chi2")
    t_sofic = time.perf_counter() - t0
    print(
        f"sofic cssr: N={N:,} L={L}: {t_sofic:.2f} s, {len(list(m.states()))} states, "
        f"h={m.entropy_rate():.4f} bit"
    )
    print(f"ratio sofic / piami: {t_sofic / t_piami:.0f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
