"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (default: all ``bench_*.py``).

Each module defines ``main() -> None`` and prints its figures, each as a ratio against a baseline
measured in the same run, with the size at which it was taken.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv] or names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; valid: {', '.join(names)}", file=sys.stderr)
        return 2
    for name in wanted:
        print(f"=== {name}", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"benchmarks.{name}").main()
        print(f"--- {name} took {time.perf_counter() - t0:.1f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
