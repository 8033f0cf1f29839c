"""The experiment registry.

Each module in :mod:`piami.experiments` that defines ``EXPERIMENT = Experiment(...)`` is found
automatically (no central list to edit), and so are the modules named in ``$PIAMI_PLUGINS``. An
experiment is a frozen config dataclass, the overrides that make its ``--quick`` variant, and one
of three shapes:

- ``measure`` + ``compare`` (+ ``figures``, ``describe``): the skeleton every piami experiment
  follows (:mod:`piami.lab.measurements`); the framework builds the Result;
- ``plan`` + ``combine`` + ``compare`` (+ ``figures``, ``describe``): an experiment made of sub-runs
  (:mod:`piami.lab.plan`), whose ``combine`` makes their results into its measurements;
- ``run(cfg, *, progress) -> Result``: a whole run in one function, for a user's quick experiment.
 Calling an :class:`Experiment` fills in what every result records: name, config,
seed, variant and overrides, the code fingerprint, and the wall time.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from piami.errors import PiamiKeyError, PiamiTypeError
from piami.lab.comparison import Comparison
from piami.lab.config import apply_overrides, config_to_dict
from piami.lab.measurements import FigureSpec, Measurements
from piami.lab.plan import PlanOutcome, PlanRunner, SubRun, check_plan
from piami.lab.result import Result


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A registered experiment.

    Attributes:
        name: the name used on the command line (``piami run NAME``).
        config_cls: frozen keyword-only dataclass of the settings; must have a ``seed: int`` field.
        measure: ``measure(cfg, *, progress) -> Measurements``.
        compare: ``compare(cfg, m) -> list[Comparison]`` (with ``measure`` or ``plan``).
        figures: ``figures(cfg, m) -> list[FigureSpec]`` (optional).
        describe: ``describe(cfg) -> str``: the report's opening paragraph (optional).
        plan: ``plan(cfg) -> list[SubRun]``: the runs this experiment is made of.
        combine: ``combine(cfg, outcome: PlanOutcome) -> Measurements`` (or, with no ``compare``,
            a whole Result).
        run: ``run(cfg, *, progress=True) -> Result``: the whole run in one function.
        quick: overrides giving the ``--quick`` variant (what the test suite runs).
        summary: one line for ``piami list``.
        inputs: ``inputs(cfg) -> list[str]``: the files a run reads (data, a machine), whose
            contents are hashed into its id (optional; a config names only their paths).
        part_of: for a sub-run experiment, the experiment that plans it (``piami certify`` and
            ``piami list`` show only whole experiments).
    """

    name: str
    config_cls: type
    measure: Callable[..., Measurements] | None = None
    compare: Callable[[Any, Any], list[Comparison]] | None = None
    figures: Callable[[Any, Any], list[FigureSpec]] | None = None
    describe: Callable[[Any], str] | None = None
    plan: Callable[[Any], list[SubRun]] | None = None
    combine: Callable[[Any, PlanOutcome], Any] | None = None
    run: Callable[..., Result] | None = None
    quick: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    part_of: str = ""
    inputs: Callable[[Any], list[str]] | None = None

    def input_fingerprint(self, cfg: Any) -> str:
        """Fingerprint of the contents of the files ``cfg`` makes a run read ("" for none)."""
        if self.inputs is None:
            return ""
        from piami.lab.fingerprint import input_fingerprint

        return input_fingerprint(self.inputs(cfg))

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config_cls):
            raise PiamiTypeError(f"experiment {self.name!r}: config_cls must be a dataclass")
        if "seed" not in {f.name for f in dataclasses.fields(self.config_cls)}:
            raise PiamiTypeError(f"experiment {self.name!r}: its config needs a 'seed' field")
        shapes = sum(f is not None for f in (self.measure, self.plan, self.run))
        if (
            shapes != 1
            or (self.plan is None) != (self.combine is None)
            or (self.measure is not None and self.compare is None)
            or (self.run is not None and self.compare is not None)
        ):
            raise PiamiTypeError(
                f"experiment {self.name!r}: give measure and compare, or plan, combine (and "
                "compare), or run"
            )

    @property
    def module(self) -> str:
        """The module that defines the experiment (imported by workers that do not know it)."""
        fn = self.measure or self.plan or self.run
        return getattr(fn, "__module__", "") or ""

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

    def _build(self, cfg: Any, m: Any) -> Result:
        return _build_result(self, cfg, m)

    def variant_of(self, cfg: Any, variant: str | None = None) -> tuple[str, dict[str, Any]]:
        """``(variant, overrides)``: the variant of ``cfg`` and the fields changed from it.

        ``variant`` is ``"quick"`` or ``"full"`` when the caller knows it (it built the config with
        :meth:`make_config`); otherwise the variant ``cfg`` departs from in fewer fields.
        """
        mine = config_to_dict(cfg)

        def diff(base: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in mine.items() if base.get(k) != v and k != "seed"}

        diff_full = diff(config_to_dict(self.config_cls()))
        diff_quick = diff(config_to_dict(self.make_config(quick=True)))
        if variant is None:
            variant = "quick" if self.quick and len(diff_quick) < len(diff_full) else "full"
        if variant not in ("quick", "full"):
            raise PiamiTypeError(f"variant must be 'quick' or 'full', got {variant!r}")
        return variant, diff_quick if variant == "quick" else diff_full

    def __call__(
        self,
        cfg: Any = None,
        *,
        progress: bool = True,
        runner: PlanRunner | None = None,
        variant: str | None = None,
    ) -> Result:
        """Run with ``cfg`` (default config when None) and fill in what every result records.

        Args:
            cfg: the config (an instance of ``config_cls``).
            progress: show progress bars.
            runner: executes the plan of a planned experiment (default: in this process,
                unstored; :func:`piami.runs.plan_runner` gives a stored, parallel one).
            variant: ``"quick"`` or ``"full"``: which defaults ``cfg`` was built from (recorded
                with the fields changed from them); None: inferred from ``cfg``.
        """
        from piami.lab.fingerprint import code_fingerprint, git_describe

        if cfg is None:
            cfg = self.config_cls()
        if not isinstance(cfg, self.config_cls):
            raise PiamiTypeError(
                f"experiment {self.name!r} takes a {self.config_cls.__name__}, got "
                f"{type(cfg).__name__}"
            )
        t0 = time.perf_counter()
        if self.plan is not None:
            subruns = check_plan(self.plan(cfg))
            outcome = (runner or run_plan_inprocess)(subruns, progress=progress)
            combined = self.combine(cfg, outcome)
            result = combined if self.compare is None else self._build(cfg, combined)
            result.runs = outcome.counts()
            result.comparisons.append(subruns_finished(outcome))
        elif self.measure is not None:
            result = self._build(cfg, self.measure(cfg, progress=progress))
        else:
            result = self.run(cfg, progress=progress)
        result.experiment = self.name
        result.config = config_to_dict(cfg)
        result.seed = int(cfg.seed)
        result.variant, result.overrides = self.variant_of(cfg, variant)
        result.code = code_fingerprint([self.module])
        result.code_git = git_describe()
        result.runtime_s = time.perf_counter() - t0
        return result


def _build_result(exp: Experiment, cfg: Any, m: Any) -> Result:
    """The Result of measurements ``m``: compared, metrics and timing kept, figures rendered."""
    if not isinstance(m, Measurements):
        raise PiamiTypeError(
            f"experiment {exp.name!r}: measure/combine must return Measurements, got "
            f"{type(m).__name__}"
        )
    result = Result(
        experiment=exp.name,
        config={},
        seed=int(cfg.seed),
        description=exp.describe(cfg) if exp.describe is not None else "",
        metrics=dict(m.metrics),
        timing=dict(m.timing),
    )
    result.comparisons = list(exp.compare(cfg, m))
    for spec in exp.figures(cfg, m) if exp.figures is not None else ():
        result.add_figure(spec.name, spec.figure, spec.caption)
    return result


def subruns_finished(outcome: PlanOutcome) -> Comparison:
    """The sanity row of a planned experiment: every planned sub-run finished."""
    failed = "; ".join(f"{k}: {v}" for k, v in sorted(outcome.failures.items()))
    return Comparison(
        name="planned sub-runs that finished",
        kind="sanity",
        predicted=outcome.n_planned,
        measured=outcome.n_planned - outcome.n_failed,
        tolerance=0.0,
        tolerance_source="derived: a failed sub-run is never dropped without a word",
        unit="runs",
        note=(
            f"{outcome.n_cached} reused from the store (same code and config), "
            f"{outcome.n_computed} computed now" + (f"; failed: {failed}" if failed else "")
        ),
    )


#: The package whose modules (and subpackages) are scanned for ``EXPERIMENT``.
EXPERIMENTS_PACKAGE = "piami.experiments"

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
    # by name, not by an import statement: the framework does not depend on its content
    pkg = importlib.import_module(EXPERIMENTS_PACKAGE)
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{EXPERIMENTS_PACKAGE}.{mod.name}")
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


def list_experiments(*, parts: bool = True) -> dict[str, Experiment]:
    """All registered experiments by name, sorted; ``parts=False`` leaves out
    sub-run experiments."""
    _discover()
    return {k: v for k, v in sorted(_REGISTRY.items()) if parts or not v.part_of}


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
    runner: PlanRunner | None = None,
) -> Result:
    """Build the config of ``name`` (quick variant and overrides applied) and run it."""
    exp = get_experiment(name)
    cfg = exp.make_config(overrides, quick=quick)
    return exp(cfg, progress=progress, runner=runner, variant="quick" if quick else "full")


def run_plan_inprocess(subruns: list[SubRun], *, progress: bool = True) -> PlanOutcome:
    """Run every sub-run in this process, one after another, storing nothing.

    A sub-run that raises is recorded as failed (with the error) and the others still run.
    """
    outcome = PlanOutcome(n_planned=len(subruns))
    # configs are built first, so a bad plan fails before any work
    built = []
    for sub in check_plan(subruns):
        exp = get_experiment(sub.experiment)
        built.append((sub, exp, exp.make_config(dict(sub.overrides))))
    for sub, exp, cfg in built:
        try:
            outcome.results[sub.key] = exp(cfg, progress=progress)
            outcome.n_computed += 1
        except Exception as exc:  # recorded: the combined result fails its sanity row
            last = traceback.format_exception(exc)[-1].strip()
            outcome.failures[sub.key] = f"{type(exc).__name__}: {exc} ({last})"
    return outcome
