"""piami.models: torch modules with TransformerLens hook names.

- :class:`Transformer` / :class:`TransformerConfig`: decoder-only transformer, one readable file.
- :class:`HookPoint` / :class:`HookedModule`: named activations, ``run_with_cache``, ``hooks``.
- :func:`resolve_device` / :func:`resolve_dtype`: the device and dtype settings.
"""

from piami.models.device import resolve_device, resolve_dtype
from piami.models.hooks import HookedModule, HookPoint
from piami.models.transformer import Transformer, TransformerConfig

__all__ = [
    "HookPoint",
    "HookedModule",
    "Transformer",
    "TransformerConfig",
    "resolve_device",
    "resolve_dtype",
]
