"""Hook points: named places in a model where activations can be read or changed.

A :class:`HookPoint` is an identity module. Placing one after each interesting computation gives
every activation a stable dotted name (its attribute path in the module tree, e.g.
``blocks.0.hook_resid_post``), following the TransformerLens vocabulary, so instruments can ask for
activations by name without knowing the model's code.

:class:`HookedModule` is a base class for piami models. It adds:

- :meth:`HookedModule.hook_points`: name -> HookPoint, in forward order;
- :meth:`HookedModule.run_with_cache`: run the model and keep the activations whose names pass a
  filter, as ``(output, cache)`` with ``cache[name]`` a detached tensor;
- :meth:`HookedModule.hooks`: a context manager that applies functions ``fn(activation, name)`` at
  named hook points (return a tensor to replace the activation, or ``None`` to leave it) -- the tool
  for ablations, steering and patching.

Models that are not piami's can be measured the same way through plain ``register_forward_hook``:
instruments take activations, not our classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from piami.errors import PiamiKeyError, PiamiTypeError

NamesFilter = str | Sequence[str] | Callable[[str], bool] | None
HookFn = Callable[[torch.Tensor, str], torch.Tensor | None]


class HookPoint(nn.Module):
    """Identity module marking a named activation; forward hooks attach here.

    Its ``name`` is filled in by :meth:`HookedModule.setup_hooks` with the dotted attribute path.

    Example:
        >>> hp = HookPoint()
        >>> x = torch.ones(2)
        >>> bool(torch.equal(hp(x), x))
        True
    """

    def __init__(self) -> None:
        super().__init__()
        self.name: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _make_filter(names_filter: NamesFilter, valid: Sequence[str]) -> Callable[[str], bool]:
    """Turn a names filter into a predicate; exact names that do not exist raise PiamiKeyError."""
    if names_filter is None:
        return lambda name: True
    if callable(names_filter):
        return names_filter
    if isinstance(names_filter, str):
        names_filter = [names_filter]
    if not isinstance(names_filter, Sequence) or not all(isinstance(n, str) for n in names_filter):
        raise PiamiTypeError(
            "names_filter must be None, a hook name, a list of hook names or a callable "
            f"name -> bool; got {type(names_filter).__name__}"
        )
    wanted = set(names_filter)
    unknown = sorted(wanted - set(valid))
    if unknown:
        raise PiamiKeyError(
            f"unknown hook name(s) {unknown}; valid: {', '.join(valid)}. "
            "Use a callable filter (e.g. lambda n: n.endswith('hook_resid_post')) "
            "to match patterns."
        )
    return wanted.__contains__


class HookedModule(nn.Module):
    """Base class of models with named :class:`HookPoint` s.

    Subclasses build their layers in ``__init__`` and call :meth:`setup_hooks` at its end.
    """

    def setup_hooks(self) -> None:
        """Name every HookPoint after its attribute path (call once, after building the layers)."""
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name

    def hook_points(self) -> dict[str, HookPoint]:
        """All hook points by name, in the order they were created (forward order
        in piami models)."""
        return {n: m for n, m in self.named_modules() if isinstance(m, HookPoint)}

    def hook_names(self, pattern: str | None = None) -> list[str]:
        """Hook names, optionally those matching the regular expression
        ``pattern`` (``re.search``)."""
        names = list(self.hook_points())
        if pattern is None:
            return names
        rx = re.compile(pattern)
        return [n for n in names if rx.search(n)]

    @contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[str, HookFn]]) -> Iterator[HookedModule]:
        """Apply ``fn(activation, name)`` at the named hook points while the context is open.

        Args:
            fwd_hooks: pairs ``(hook_name, fn)``; ``fn`` returns a replacement tensor of the same
                shape, or ``None`` to leave the activation unchanged.

        Example:
            >>> # zero-ablate the first attention layer's output
            >>> # with model.hooks([("blocks.0.hook_attn_out", lambda a, n: torch.zeros_like(a))]):
            >>> #     logits = model(tokens)
        """
        points = self.hook_points()
        handles = []
        try:
            for name, fn in fwd_hooks:
                if name not in points:
                    raise PiamiKeyError(f"unknown hook name {name!r}; valid: {', '.join(points)}")
                if not callable(fn):
                    raise PiamiTypeError(f"hook for {name!r} must be callable, got {fn!r}")

                def _hook(_mod: nn.Module, _inp: Any, out: torch.Tensor, fn=fn, name=name) -> Any:
                    return fn(out, name)

                handles.append(points[name].register_forward_hook(_hook))
            yield self
        finally:
            for h in handles:
                h.remove()

    def run_with_cache(
        self, *args: Any, names_filter: NamesFilter = None, **kwargs: Any
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        """Run the model and return ``(output, cache)`` with the activations that pass the filter.

        Args:
            *args: the model's forward arguments (tokens for a transformer).
            names_filter: ``None`` (all hook points), a name, a list of names, or a predicate
                ``name -> bool``.
            **kwargs: further forward keyword arguments.

        Returns:
            The forward output and a dict ``name -> tensor`` (detached, on the model's device), in
            forward order.
        """
        keep = _make_filter(names_filter, list(self.hook_points()))
        cache: dict[str, torch.Tensor] = {}

        def _store(act: torch.Tensor, name: str) -> None:
            cache[name] = act.detach()

        with self.hooks([(n, _store) for n in self.hook_points() if keep(n)]):
            out = self(*args, **kwargs)
        return out, cache


__all__ = ["HookFn", "HookPoint", "HookedModule", "NamesFilter"]
