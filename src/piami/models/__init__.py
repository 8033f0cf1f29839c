"""piami.models: torch modules with TransformerLens hook names.

- :class:`Transformer` / :class:`TransformerConfig`: decoder-only transformer, one readable file.
- :class:`HookPoint` / :class:`HookedModule`: named activations, ``run_with_cache``, ``hooks``.
- :class:`MLP`, :class:`DeepLinearNet`, :class:`TwoLayerNet`: fully connected nets in the
  parameterizations the dynamics and kernel theories use.
- :class:`Bilinear`: the bilinear layer (W x) * (V x) of Pearce et al. (2024).
- :func:`collect_activations` / :func:`residual_stream`: activations by hook name, as arrays.
- :func:`resolve_device` / :func:`resolve_dtype`: the device and dtype settings.
"""

from piami.models.activations import collect_activations, residual_stream
from piami.models.bilinear import Bilinear, BilinearConfig, fit_bilinear
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.models.hooks import HookedModule, HookPoint
from piami.models.mlp import MLP, DeepLinearNet, TwoLayerNet, activation_fn
from piami.models.transformer import Transformer, TransformerConfig

__all__ = [
    "MLP",
    "Bilinear",
    "BilinearConfig",
    "DeepLinearNet",
    "HookPoint",
    "HookedModule",
    "Transformer",
    "TransformerConfig",
    "TwoLayerNet",
    "activation_fn",
    "collect_activations",
    "fit_bilinear",
    "limit_threads",
    "residual_stream",
    "resolve_device",
    "resolve_dtype",
]
