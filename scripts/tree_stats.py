"""Print the shape of the source tree: files and lines per package, the largest modules and
functions, private modules at the top of experiments/, and `fmt: skip` and long-line counts.

    python scripts/tree_stats.py [src/piami]
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path


def functions(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append((node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}"))
    return out


def main(root: str = "src/piami") -> None:
    base = Path(root)
    files = sorted(base.rglob("*.py"))
    per_pkg: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    sizes, funcs = [], []
    skips = longs = 0
    for f in files:
        text = f.read_text(encoding="utf-8")
        n = text.count("\n")
        rel = f.relative_to(base)
        pkg = rel.parts[0] if len(rel.parts) > 1 else "(top)"
        per_pkg[pkg][0] += 1
        per_pkg[pkg][1] += n
        sizes.append((n, str(f)))
        funcs.extend(functions(f))
        skips += text.count("fmt: skip")
        longs += sum(len(line) > 100 for line in text.splitlines())
    print(f"{len(files)} files, {sum(s for s, _ in sizes)} lines under {base}")
    for pkg, (nf, nl) in sorted(per_pkg.items()):
        print(f"  {pkg:<14} {nf:>3} files {nl:>6} lines")
    print("largest modules:")
    for n, f in sorted(sizes, reverse=True)[:8]:
        print(f"  {n:>5}  {f}")
    print("largest functions:")
    for n, f in sorted(funcs, reverse=True)[:10]:
        print(f"  {n:>5}  {f}")
    private = sorted(p.name for p in (base / "experiments").glob("_*.py") if p.name != "__init__.py")
    print(f"private modules at the top of experiments/: {len(private)} {private}")
    print(f"'fmt: skip': {skips}; lines over 100 characters: {longs}")


if __name__ == "__main__":
    main(*sys.argv[1:])
