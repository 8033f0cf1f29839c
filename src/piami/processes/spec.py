"""Process spec strings: ``"mess3(x=0.05, a=0.85)"`` names a process wherever one is expected.

Grammar: ``NAME`` or ``NAME(ARG, ..., KEY=VALUE, ...)`` with literal values (numbers, nested lists
for ``T``, strings for paths). It is parsed with :mod:`ast` (never evaluated). ``random_hmm``
takes ``seed`` in place of ``rng``; ``hmm(T=[...])`` and ``ghmm(T=[...])`` build a process from an
explicit tensor, which is the spec of any process not in the catalog;
``machine("DIR/machine.json")`` reads the machine that ``piami reconstruct --out DIR`` wrote
(:mod:`piami.processes.machine_file`).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from piami.errors import PiamiKeyError, PiamiTypeError, PiamiValueError
from piami.processes import catalog
from piami.processes.ghmm import GeneralizedHiddenMarkovModel
from piami.processes.hmm import HiddenMarkovModel
from piami.processes.machine_file import load_machine


def _random_hmm(n_states: int, n_symbols: int, seed: int = 0, concentration: float = 1.0):
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PiamiValueError(f"random_hmm: seed must be an int >= 0; got {seed!r}")
    proc = catalog.random_hmm(
        n_states, n_symbols, rng=np.random.default_rng(seed), concentration=concentration
    )
    c = "" if concentration == 1.0 else f", concentration={float(concentration)!r}"
    proc._spec = f"random_hmm(n_states={n_states}, n_symbols={n_symbols}, seed={seed}{c})"
    return proc


def _hmm(T: Any) -> HiddenMarkovModel:
    return HiddenMarkovModel(T)


def _ghmm(T: Any) -> GeneralizedHiddenMarkovModel:
    return GeneralizedHiddenMarkovModel(T)


def _machine(path: Any) -> GeneralizedHiddenMarkovModel:
    return load_machine(path)


# name -> constructor taking the spec's arguments
PROCESSES: dict[str, Callable[..., GeneralizedHiddenMarkovModel]] = {
    "mess3": catalog.mess3,
    "rrxor": catalog.rrxor,
    "z1r": catalog.z1r,
    "golden_mean": catalog.golden_mean,
    "even_process": catalog.even_process,
    "random_hmm": _random_hmm,
    "hmm": _hmm,
    "ghmm": _ghmm,
    "machine": _machine,
}


def _params(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _usage() -> str:
    return "; ".join(f"{n}({', '.join(_params(f))})" for n, f in PROCESSES.items())


def _literal(node: ast.AST, spec: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise PiamiValueError(
            f"process spec {spec!r}: argument {ast.unparse(node)!r} is not a literal number, list "
            "or string"
        ) from None


def spec_files(spec: Any) -> list[str]:
    """The files a process spec reads: the path of ``machine(PATH)``, else none.

    Example:
        >>> spec_files('machine("out/machine.json")'), spec_files("mess3")
        (['out/machine.json'], [])
    """
    if not isinstance(spec, str):
        return []
    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return []
    if node.func.id != "machine":
        return []
    values = list(node.args) + [k.value for k in node.keywords]
    return [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]


def from_spec(spec: Any) -> GeneralizedHiddenMarkovModel:
    """Build a process from a spec string (a process passes through unchanged).

    Args:
        spec: e.g. ``"mess3"``, ``"mess3(x=0.05, a=0.85)"``, ``"rrxor(0.5, 0.5)"``,
            ``"random_hmm(n_states=4, n_symbols=3, seed=1)"``, ``'machine("out/machine.json")'`` (a
            machine file written by ``piami reconstruct``).

    Raises:
        PiamiKeyError: unknown process name or parameter (the message lists the valid ones).
        PiamiValueError: malformed spec or out-of-range value.
        PiamiFileError: ``machine(PATH)`` names a missing or unreadable file, or no machine record.

    Example:
        >>> from_spec("mess3(x=0.05, a=0.85)").spec
        'mess3(x=0.05, a=0.85)'
    """
    if isinstance(spec, GeneralizedHiddenMarkovModel):
        return spec
    if not isinstance(spec, str):
        raise PiamiTypeError(
            "a process spec must be a string like 'mess3(x=0.05, a=0.85)'; got "
            f"{type(spec).__name__}"
        )
    text = spec.strip()
    if not text or len(text) > 1_000_000:
        raise PiamiValueError(f"empty or oversized process spec {spec[:60]!r}; valid: {_usage()}")
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise PiamiValueError(
            f"cannot parse process spec {spec!r}; expected NAME or NAME(KEY=VALUE, ...), "
            f"valid: {_usage()}"
        ) from None
    if isinstance(node, ast.Name):
        name, args, kwargs = node.id, [], {}
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            raise PiamiValueError(f"process spec {spec!r}: no * or ** arguments")
        args = [_literal(a, spec) for a in node.args]
        names = [k.arg for k in node.keywords]
        repeated = sorted({k for k in names if names.count(k) > 1})
        if repeated:
            raise PiamiValueError(
                f"process spec {spec!r}: parameter {repeated[0]!r} given more than once; give "
                "each parameter once"
            )
        kwargs = {k.arg: _literal(k.value, spec) for k in node.keywords}
    else:
        raise PiamiValueError(
            f"process spec {spec!r} is not NAME or NAME(KEY=VALUE, ...); valid: {_usage()}"
        )
    if name not in PROCESSES:
        raise PiamiKeyError(
            f"unknown process {name!r} in spec {spec!r}; valid processes: {', '.join(PROCESSES)}"
        )
    fn = PROCESSES[name]
    params = _params(fn)
    if len(args) > len(params):
        raise PiamiValueError(
            f"process spec {spec!r}: {name} takes at most {len(params)} arguments "
            f"({', '.join(params)}); got {len(args)}"
        )
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise PiamiKeyError(
            f"unknown parameter {unknown[0]!r} of {name} in spec {spec!r}; valid parameters: "
            f"{', '.join(params)}"
        )
    bound = dict(zip(params, args, strict=False))
    dup = [k for k in kwargs if k in bound]
    if dup:
        raise PiamiValueError(f"process spec {spec!r}: parameter {dup[0]!r} given twice")
    bound.update(kwargs)
    required = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.default is inspect.Parameter.empty and p.name not in bound
    ]
    if required:
        raise PiamiValueError(
            f"process spec {spec!r}: {name} needs parameter(s) {', '.join(required)} "
            f"(signature: {name}({', '.join(params)}))"
        )
    return fn(**bound)


def as_process(proc: Any) -> GeneralizedHiddenMarkovModel:
    """A process object from a process or a spec string (same as :func:`from_spec`)."""
    return from_spec(proc)


def catalog_specs() -> list[str]:
    """The spec of every catalog process at its default parameters."""
    return [
        "mess3",
        "rrxor",
        "z1r",
        "golden_mean",
        "even_process",
        "random_hmm(n_states=3, n_symbols=2, seed=0)",
    ]


__all__ = ["PROCESSES", "as_process", "catalog_specs", "from_spec"]
