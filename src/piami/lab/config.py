"""Config dataclasses: overrides from strings, type-checked against the fields.

Experiment configs are frozen, keyword-only dataclasses. ``--set key=value`` on the command line
arrives here as strings; :func:`parse_value` converts each to its field's type (int, float, bool,
str, tuples, ``None`` for optional fields) and rejects what does not fit, naming the field, the
expected type and the value that came.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Union, get_args, get_origin, get_type_hints

from piami.errors import PiamiKeyError, PiamiTypeError, PiamiValueError


def config_fields(cfg_cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a config dataclass."""
    hints = get_type_hints(cfg_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cfg_cls)}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(text: str | Any, tp: Any, *, key: str = "value") -> Any:
    """Convert ``text`` to type ``tp``; non-strings are checked and passed through.

    Supports int, float, bool, str, ``X | None``, ``Literal[...]``, ``tuple[T, ...]``,
    ``tuple[A, B]``.

    Example:
        >>> parse_value("3", int)
        3
        >>> parse_value("1,2,3", tuple[int, ...])
        (1, 2, 3)
    """
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and (
            text is None or (isinstance(text, str) and text.lower() in ("none", "null"))
        ):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(text, arg, key=key)
            except (PiamiTypeError, PiamiValueError) as exc:
                errors.append(str(exc))
        raise PiamiTypeError(f"{key}: {text!r} is not a valid {_type_name(tp)}")
    if origin is typing.Literal:
        allowed = get_args(tp)
        for a in allowed:
            if text == a or (isinstance(text, str) and str(a) == text):
                return a
        raise PiamiValueError(f"{key}: {text!r} is not one of {', '.join(map(repr, allowed))}")
    if origin is tuple:
        args = get_args(tp)
        if isinstance(text, str):
            items = [s.strip() for s in text.strip("()[] ").split(",") if s.strip()]
        elif isinstance(text, (list, tuple)):
            items = list(text)
        else:
            raise PiamiTypeError(f"{key}: expected a comma-separated list, got {text!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(i, args[0], key=key) for i in items)
        if len(items) != len(args):
            raise PiamiValueError(
                f"{key}: expected {len(args)} values, got {len(items)} ({text!r})"
            )
        return tuple(parse_value(i, a, key=key) for i, a in zip(items, args, strict=True))
    if tp is bool:
        if isinstance(text, bool):
            return text
        if isinstance(text, str) and text.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(text, str) and text.lower() in ("0", "false", "no", "off"):
            return False
        raise PiamiTypeError(f"{key}: expected true/false, got {text!r}")
    if tp is int:
        if isinstance(text, bool):
            raise PiamiTypeError(f"{key}: expected an integer, got {text!r}")
        if isinstance(text, int):
            return text
        if isinstance(text, str):
            try:
                return int(text.replace("_", ""))
            except ValueError:
                try:
                    f = float(text)  # accept "1e4"
                except ValueError:
                    f = None
                if f is not None and f.is_integer():
                    return int(f)
        raise PiamiTypeError(f"{key}: expected an integer, got {text!r}")
    if tp is float:
        if isinstance(text, bool):
            raise PiamiTypeError(f"{key}: expected a number, got {text!r}")
        value = None
        if isinstance(text, (int, float)):
            value = float(text)
        elif isinstance(text, str):
            try:
                value = float(text)
            except ValueError:
                pass
        if value is None:
            raise PiamiTypeError(f"{key}: expected a number, got {text!r}")
        if math.isnan(value):  # NaN passes every `<` check a config makes and fails much later
            raise PiamiValueError(f"{key}: expected a number, got NaN")
        return value
    if tp is str:
        if isinstance(text, str):
            return text
        raise PiamiTypeError(f"{key}: expected a string, got {text!r}")
    if tp is Any:
        return text
    raise PiamiTypeError(
        f"{key}: fields of type {_type_name(tp)} cannot be set from the command line"
    )


#: Seeds are non-negative integers below 2**63 (what numpy and torch generators accept).
MAX_SEED = 2**63 - 1


def check_seed(seed: Any, *, key: str = "seed") -> int:
    """``seed`` as an int in ``[0, 2**63)``, or a :class:`PiamiValueError` saying what came.

    Example:
        >>> check_seed(3)
        3
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PiamiTypeError(f"{key} must be a non-negative integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise PiamiValueError(f"{key} must be an integer in [0, 2**63), got {seed}")
    return seed


def parse_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """Split ``["a=1", "b=x"]`` into ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            raise PiamiValueError(f"override {item!r} must look like key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """Return a copy of the config dataclass ``cfg`` with ``overrides`` (strings or values) applied.

    Unknown keys raise :class:`PiamiKeyError` listing the valid keys; values of the wrong type raise
    :class:`PiamiTypeError`; the config's own ``__post_init__`` validation runs on the result.
    """
    fields = config_fields(type(cfg))
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise PiamiKeyError(
            f"unknown config key {', '.join(map(repr, unknown))} for {type(cfg).__name__}; "
            f"valid keys: {', '.join(fields)}"
        )
    values = {k: parse_value(v, fields[k], key=k) for k, v in overrides.items()}
    if "seed" in values:
        check_seed(values["seed"])
    try:
        return dataclasses.replace(cfg, **values)
    except TypeError as exc:
        raise PiamiTypeError(f"cannot build {type(cfg).__name__}: {exc}") from exc


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (tuples become lists in JSON)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cfg_cls: type, d: dict[str, Any]) -> Any:
    """Rebuild a config from :func:`config_to_dict` output, ignoring nothing silently."""
    fields = config_fields(cfg_cls)
    unknown = [k for k in d if k not in fields]
    if unknown:
        raise PiamiKeyError(
            f"unknown keys {unknown} for {cfg_cls.__name__}; valid: {', '.join(fields)}"
        )
    values = {k: parse_value(v, fields[k], key=k) for k, v in d.items()}
    if "seed" in values:
        check_seed(values["seed"])
    return cfg_cls(**values)
