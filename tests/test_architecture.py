"""The house plan, checked: imports run only downward, no cycles, experiments stand apart.

Layers (ARCHITECTURE.md): theory -> processes -> models, train -> instruments -> lab ->
experiments -> runs, report -> cli. A module may import its own layer and the layers below it,
never a layer above. No experiment imports ``piami.runs`` or another experiment's private parts
(a ``_module`` or a module inside another experiment's subpackage).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import piami

ROOT = Path(piami.__file__).resolve().parent
#: layer of each top-level package; the ground modules (errors, _io, ...) are below everything
RANK = {
    "theory": 1,
    "processes": 2,
    "models": 3,
    "train": 3,
    "instruments": 4,
    "lab": 5,
    "experiments": 6,
    "runs": 7,
    "report": 7,
    "cli": 8,
}
# runs and report share a layer; report's writers are used by the run store, runs by nobody in
# report: only this direction is allowed between the two
SAME_LAYER_OK = {("runs", "report"), ("train", "models")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every piami module a file imports (at any depth: lazy imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("piami"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.startswith("piami"):
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_imports_run_only_downward():
    bad = []
    for f in _files():
        me = _top(_module_name(f))
        if me is None:
            continue
        for mod in _imports(f):
            other = _top(mod)
            if other is None or other == me:
                continue
            if RANK[other] > RANK[me] or (
                RANK[other] == RANK[me] and (me, other) not in SAME_LAYER_OK
            ):
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(set(bad)))


def test_no_experiment_imports_runs_or_another_experiments_private_parts():
    exp_root = ROOT / "experiments"
    bad = []
    for f in sorted(exp_root.rglob("*.py")):
        rel = f.relative_to(exp_root).parts
        mine = rel[0].removesuffix(".py") if len(rel) > 1 or rel[0] != "__init__.py" else ""
        for mod in _imports(f):
            parts = mod.split(".")
            if parts[:2] == ["piami", "runs"]:
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
            if parts[:2] != ["piami", "experiments"] or len(parts) < 3:
                continue
            target = parts[2]
            if target == mine:
                continue
            private = target.startswith("_") or (
                len(parts) > 3
                and (exp_root / target).is_dir()
                and (exp_root / target / f"{parts[3]}.py").exists()
            )
            if private:
                bad.append(f"{f.relative_to(ROOT)} imports {mod}")
    assert not bad, "experiments reaching into others:\n" + "\n".join(sorted(set(bad)))


def test_no_private_module_sits_at_the_top_of_experiments():
    private = sorted(
        p.name for p in (ROOT / "experiments").glob("_*.py") if p.name != "__init__.py"
    )
    assert private == []


def test_module_imports_have_no_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    names = {_module_name(f) for f in _files()}
    for f in _files():
        me = _module_name(f)
        for mod in _imports(f):
            while mod and mod not in names:
                mod = mod.rpartition(".")[0]
            if mod and mod != me and not me.startswith(mod + ".") and not mod.startswith(me + "."):
                graph[me].add(mod)
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        seen[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if seen.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in seen and (cycle := visit(m)):
                return cycle
        stack.pop()
        seen[n] = 2
        return None

    for n in sorted(names):
        if n not in seen and (cycle := visit(n)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))
