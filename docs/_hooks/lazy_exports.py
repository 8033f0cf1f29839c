"""Griffe extension: the names a package exports lazily, seen by static analysis.

``piami.instruments`` imports its names on first use (``__getattr__`` over a literal table
``_EXPORTS = {"submodule": ("Name", ...), ...}``), so that ``import piami.instruments`` stays
cheap. Static analysis (how mkdocstrings reads the code, without importing it) sees only the
table; this extension reads it and adds each name as an alias of its definition, exported as
``__all__`` would be. A package that imports its names plainly is left as it is.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


def _lazy_table(source: str) -> dict[str, tuple[str, ...]] | None:
    """The literal ``_EXPORTS`` table of a module's source, or None when it has none."""
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and node.value is not None:
            try:
                table = ast.literal_eval(node.value)
            except ValueError:
                return None
            return {str(k): tuple(v) for k, v in table.items()}
    return None


class LazyExports(griffe.Extension):
    """Add the aliases of a ``_EXPORTS`` table to the module that defines it."""

    def on_module_members(self, *, mod: griffe.Module, **_: Any) -> None:
        if mod.filepath is None or isinstance(mod.filepath, list) or mod.filepath.name != (
            "__init__.py"
        ):
            return
        table = _lazy_table(mod.filepath.read_text(encoding="utf-8"))
        if not table:
            return
        names = []
        for submodule, members in table.items():
            for name in members:
                if name not in mod.members:
                    mod.set_member(name, griffe.Alias(name, f"{mod.path}.{submodule}.{name}"))
                names.append(name)
        mod.exports = sorted(names)
