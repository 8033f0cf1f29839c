"""The experiment registry.

Each module in :mod:`piami.experiments` that defines ``EXPERIMENT = Experiment(...)`` is found
automatically (no central list to edit). An experiment is a frozen config dataclass, a
``run(cfg, *, progress) -> Result`` function, and the overrides that make its ``--quick`` variant.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from piami.errors import PiamiKeyError, PiamiTypeError
from piami.experiments.config import apply_overrides, config_to_dict
from piami.experiments.result import Result


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A registered experiment.

    Attributes:
        name: the name used on the command line (``piami run NAME``).
        config_cls: frozen keyword-only dataclass of the settings; must have a ``seed: int`` field.
        run: ``run(cfg, *, progress=True) -> Result``.
        quick: overrides giving the ``--quick`` variant (what the test suite runs).
        summary: one line for ``piami list``.
    """

    name: str
    config_cls: type
    run: Callable[..., Result]
    quick: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config_cls):
            raise PiamiTypeError(f"experiment {self.name!r}: config_cls must be a dataclass")
        if "seed" not in {f.name for f in dataclasses.fields(self.config_cls)}:
            raise PiamiTypeError(f"experiment {self.name!r}: its config needs a 'seed' field")

    def make_config(
        self, overrides: Mapping[str, Any] | None = None, *, quick: bool = False
    ) -> Any:
        """The default config, with the quick overrides (if asked) and then the user's applied."""
        cfg = self.config_cls()
        if quick and self.quick:
            cfg = apply_overrides(cfg, dict(self.quick))
        if overrides:
            cfg = apply_overrides(cfg, dict(overrides))
        return cfg

    def __call__(self, cfg: Any = None, *, progress: bool = True) -> Result:
        """Run with ``cfg`` (default config when None); fills in name, config, seed and runtime."""
        if cfg is None:
            cfg = self.config_cls()
        if not isinstance(cfg, self.config_cls):
            raise PiamiTypeError(
                f"experiment {self.name!r} takes a {self.config_cls.__name__}, got {type(cfg).__name__}"
            )
        t0 = time.perf_counter()
        result = self.run(cfg, progress=progress)
        result.experiment = self.name
        result.config = config_to_dict(cfg)
        result.seed = int(cfg.seed)
        result.runtime_s = time.perf_counter() - t0
        return result


_REGISTRY: dict[str, Experiment] = {}
_BROKEN: dict[str, str] = {}  # experiment module -> why it failed to import
_DISCOVERED = False


def register(exp: Experiment) -> Experiment:
    """Add a user's experiment to the registry (``piami run`` and sweeps then find it by name)."""
    if not isinstance(exp, Experiment):
        raise PiamiTypeError(f"register() takes an Experiment, got {type(exp).__name__}")
    _REGISTRY[exp.name] = exp
    return exp


def _discover() -> None:
    """Import every experiment module of piami, then the modules named in ``$PIAMI_PLUGINS``.

    ``PIAMI_PLUGINS`` is a comma-separated list of importable modules that define ``EXPERIMENT`` or
    call :func:`register`: a user's own experiments, visible to the CLI and to sweep workers.
    """
    global _DISCOVERED
    if _DISCOVERED:
        return
    import piami.experiments as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_") or mod.name in ("config", "registry", "result"):
            continue
        try:
            module = importlib.import_module(f"piami.experiments.{mod.name}")
        except Exception as exc:  # one broken module (e.g. a missing extra) must not hide the rest
            _BROKEN[mod.name] = f"{type(exc).__name__}: {exc}"
            continue
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            _REGISTRY[exp.name] = exp
    for name in filter(None, (m.strip() for m in os.environ.get("PIAMI_PLUGINS", "").split(","))):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise PiamiKeyError(
                f"PIAMI_PLUGINS names {name!r}, which cannot be imported: {exc}"
            ) from exc
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            _REGISTRY[exp.name] = exp
    _DISCOVERED = True


def broken_modules() -> dict[str, str]:
    """Experiment modules that failed to import, with the error (empty when all loaded)."""
    _discover()
    return dict(_BROKEN)


def list_experiments() -> dict[str, Experiment]:
    """All registered experiments by name, sorted."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name lists the valid ones."""
    exps = list_experiments()
    if name not in exps:
        broken = "".join(f"; module {m} failed to load ({why})" for m, why in _BROKEN.items())
        raise PiamiKeyError(
            f"unknown experiment {name!r}; valid: {', '.join(exps) or '(none)'}{broken}"
        )
    return exps[name]


def run_experiment(
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    quick: bool = False,
    progress: bool = True,
) -> Result:
    """Build the config of ``name`` (quick variant and overrides applied) and run it."""
    exp = get_experiment(name)
    cfg = exp.make_config(overrides, quick=quick)
    return exp(cfg, progress=progress)
