"""Activations of models piami did not build: module paths, Hugging Face names, TransformerLens.

An *activation* is a tensor a model computes at a named place in its forward pass. piami's own
models mark those places with TransformerLens hook names (:mod:`piami.models.hooks`). A foreign
model has no such marks, but every ``torch.nn.Module`` is a tree of submodules, each with a dotted
*module path* (``model.layers.3.mlp``); a forward hook reads a submodule's output (or a pre-hook
its input) without touching the model's code, and is removed again afterwards.

For a decoder-only transformer the places that matter are the residual stream and what each block
writes into it (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", sec. 2):

    resid_post[l] = resid_pre[l] + attn_out[l] + mlp_out[l],    resid_pre[l+1] = resid_post[l].

A Hugging Face causal LM computes the same stream under its own names: block ``l`` is
``model.layers[l]`` (Llama, Mistral, Qwen2, Qwen3, GPT-NeoX) or ``transformer.h[l]`` (GPT-2), its
input is ``resid_pre``, its output ``resid_post``, and the outputs of its attention and MLP modules
are exactly what it adds to the stream. :func:`hf_hook_sites` writes this correspondence down per
architecture, so the TransformerLens names (``hook_embed``, ``blocks.{l}.hook_resid_pre``,
``blocks.{l}.hook_attn_out``, ``blocks.{l}.hook_mlp_out``, ``blocks.{l}.hook_resid_post``,
``ln_final.hook_normalized``, ...) work on those models too. Only architectures whose blocks add
the attention and MLP outputs unchanged are listed; others (Gemma, OLMo-2: outputs normalized
before the sum) keep module paths, which work on every model.

A TransformerLens ``HookedRootModule`` (or its 4.x ``TransformerBridge``) names its hook points
itself; it is recognised by duck typing (a ``hook_dict`` and a ``run_with_cache``), so
``transformer_lens`` is never imported here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from piami.errors import PiamiKeyError, PiamiTypeError, PiamiValueError
from piami.models.hooks import HookedModule


class UnknownActivationError(PiamiKeyError, PiamiValueError):
    """A requested activation name that the model does not have (the message lists valid ones)."""


@dataclass(frozen=True, kw_only=True)
class Site:
    """Where an activation is read: a submodule and which side of its forward call."""

    path: str  # module path, as for ``model.get_submodule``
    side: Literal["output", "input"] = "output"  # output of forward, or its first input
    expand_batch: bool = False  # broadcast a leading 1 to the batch (GPT-2 position embedding)


@dataclass(frozen=True, kw_only=True)
class _Layout:
    """Submodule names of one Hugging Face architecture, relative to its base model."""

    blocks: str  # the ModuleList of decoder blocks
    embed: str  # token embedding
    final_norm: str  # norm after the last block
    ln1: str  # norm before attention
    attn: str  # attention; its output is added to the stream
    ln2: str  # norm before the MLP; its input is resid_mid (sequential blocks)
    mlp: str  # MLP; its output is added to the stream
    pos_embed: str | None = None  # learned position embedding, if any


_LLAMA = _Layout(
    blocks="layers",
    embed="embed_tokens",
    final_norm="norm",
    ln1="input_layernorm",
    attn="self_attn",
    ln2="post_attention_layernorm",
    mlp="mlp",
)
_LAYOUTS: dict[str, _Layout] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gpt2": _Layout(
        blocks="h",
        embed="wte",
        pos_embed="wpe",
        final_norm="ln_f",
        ln1="ln_1",
        attn="attn",
        ln2="ln_2",
        mlp="mlp",
    ),
    "gpt_neox": _Layout(
        blocks="layers",
        embed="embed_in",
        final_norm="final_layer_norm",
        ln1="input_layernorm",
        attn="attention",
        ln2="post_attention_layernorm",
        mlp="mlp",
    ),
}


def is_hf_model(model: Any) -> bool:
    """Whether ``model`` is a Hugging Face ``transformers`` model (checked without importing it)."""
    from_hf = any(c.__module__.startswith("transformers.") for c in type(model).__mro__)
    return from_hf and hasattr(getattr(model, "config", None), "model_type")


def is_transformer_lens(model: Any) -> bool:
    """Whether ``model`` looks like a TransformerLens model (``HookedRootModule``, bridge)."""
    if isinstance(model, HookedModule):
        return False
    hook_dict = getattr(model, "hook_dict", None)
    return isinstance(hook_dict, Mapping) and callable(getattr(model, "run_with_cache", None))


def hf_hook_sites(model: nn.Module) -> dict[str, Site]:
    """TransformerLens names of a Hugging Face causal LM, mapped to where it computes them.

    Args:
        model: a ``transformers`` model of a type in the layout table (``llama``, ``mistral``,
            ``qwen2``, ``qwen3``, ``gpt2``, ``gpt_neox``), with or without its LM head.

    Returns:
        ``name -> Site``: ``hook_embed`` (token embedding; ``hook_pos_embed`` for GPT-2), per block
        ``l``: ``hook_resid_pre`` (block input), ``ln1.hook_normalized``, ``hook_attn_out``,
        ``hook_resid_mid`` (sequential blocks only), ``ln2.hook_normalized``, ``hook_mlp_out``,
        ``hook_resid_post`` (block output); then ``ln_final.hook_normalized``. Empty for other
        model types.

    Raises:
        PiamiValueError: the model type is listed but its modules are not where the table says
            (a ``transformers`` version that renamed them).
    """
    layout = _LAYOUTS.get(getattr(model.config, "model_type", None))
    if layout is None:
        return {}
    prefix = _base_prefix(model)
    blocks = _submodule(model, prefix + layout.blocks)
    parallel = getattr(model.config, "use_parallel_residual", False) or getattr(
        model.config, "add_cross_attention", False
    )
    sites = {"hook_embed": Site(path=prefix + layout.embed)}
    if layout.pos_embed is not None:
        sites["hook_pos_embed"] = Site(path=prefix + layout.pos_embed, expand_batch=True)
    for i in range(len(blocks) if isinstance(blocks, nn.ModuleList) else 0):
        block, tl = f"{prefix}{layout.blocks}.{i}", f"blocks.{i}."
        sites[tl + "hook_resid_pre"] = Site(path=block, side="input")
        sites[tl + "ln1.hook_normalized"] = Site(path=f"{block}.{layout.ln1}")
        sites[tl + "hook_attn_out"] = Site(path=f"{block}.{layout.attn}")
        if not parallel:
            sites[tl + "hook_resid_mid"] = Site(path=f"{block}.{layout.ln2}", side="input")
        sites[tl + "ln2.hook_normalized"] = Site(path=f"{block}.{layout.ln2}")
        sites[tl + "hook_mlp_out"] = Site(path=f"{block}.{layout.mlp}")
        sites[tl + "hook_resid_post"] = Site(path=block)
    sites["ln_final.hook_normalized"] = Site(path=prefix + layout.final_norm)
    missing = sorted({s.path for s in sites.values() if _submodule(model, s.path) is None})
    if missing or not isinstance(blocks, nn.ModuleList):
        raise PiamiValueError(
            f"this {type(model).__name__} ({model.config.model_type}) has no module(s) "
            f"{missing or [prefix + layout.blocks]} where piami expects them (a transformers "
            "version that renamed them?); ask for module paths instead (activation_names(model))"
        )
    return sites


def _base_prefix(model: nn.Module) -> str:
    """Module path (with a final dot) of a HF model's base model: ``"model."``, or ``""``."""
    base = getattr(model, "base_model", model)
    return next((f"{n}." for n, m in model.named_modules() if m is base and n), "")


def _submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def _first_tensor(value: Any, where: str) -> torch.Tensor:
    """The tensor a module produced: itself, or the first item of a tuple / model output."""
    if isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "to_tuple"):  # a transformers ModelOutput
        value = value.to_tuple()
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise PiamiTypeError(
        f"module {where!r} produced a {type(value).__name__}, not a tensor; "
        "ask for a submodule that returns a tensor"
    )


def to_host(t: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy; float16/bfloat16 become float32 (numpy has no bfloat16)."""
    half = t.dtype in (torch.float16, torch.bfloat16)
    return t.detach().to(device="cpu", dtype=torch.float32 if half else t.dtype, copy=True)


def _grab_output(store: list, path: str, _mod: nn.Module, _args: Any, output: Any) -> None:
    store.append(to_host(_first_tensor(output, path)))


def _grab_input(store: list, path: str, _mod: nn.Module, args: tuple, kwargs: dict) -> None:
    value = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values()), None))
    store.append(to_host(_first_tensor(value, path)))


class ModuleAdapter:
    """Activations of any ``nn.Module`` by module path, through forward hooks.

    Args:
        model: the module.
        call: how to run it on a ``(batch, pos)`` token tensor (default ``model(tokens)``).
        aliases: extra names mapped to :class:`Site` s (TransformerLens names of a HF model).
        note: a sentence added to unknown-name errors.
        vocab_size: token ids must lie in ``[0, vocab_size)`` (``None``: not checked here).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        call: Callable[[torch.Tensor], Any] | None = None,
        aliases: Mapping[str, Site] | None = None,
        note: str = "",
        vocab_size: int | None = None,
    ) -> None:
        self.model, self.aliases, self.note = model, dict(aliases or {}), note
        self.vocab_size = vocab_size
        self.call = call if call is not None else model

    def names(self) -> list[str]:
        """Aliases, then hook points (paths ending in ``hook_*``), then every other module path."""
        paths = [n for n, _ in self.model.named_modules() if n]
        hooks = [p for p in paths if p.rsplit(".", 1)[-1].startswith("hook_")]
        is_hook = set(hooks)
        return [*self.aliases, *hooks, *(p for p in paths if p not in is_hook)]

    def site(self, name: str) -> Site | None:
        """Where ``name`` is read, or ``None`` when the model has no such alias or submodule."""
        if name in self.aliases:
            return self.aliases[name]
        return Site(path=name) if name and _submodule(self.model, name) is not None else None

    def run(self, tokens: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """One forward pass on ``tokens``; ``name -> CPU tensor``. Hooks are gone afterwards."""
        sites = {n: self.site(n) for n in names}
        got: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        handles = []
        try:
            for n, s in sites.items():
                module = self.model.get_submodule(s.path)
                if s.side == "input":
                    hook = partial(_grab_input, got[n], s.path)
                    handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
                else:
                    handles.append(
                        module.register_forward_hook(partial(_grab_output, got[n], s.path))
                    )
            self.call(tokens)
        finally:
            for h in handles:
                h.remove()
        out = {}
        for n, s in sites.items():
            if len(got[n]) != 1:
                raise PiamiValueError(
                    f"module {s.path!r} (for {n!r}) ran {len(got[n])} times in one forward pass; "
                    "ask for a submodule that runs exactly once"
                )
            t = got[n][0]
            out[n] = t.expand(len(tokens), *t.shape[1:]).contiguous() if s.expand_batch else t
        return out


class TransformerLensAdapter:
    """Activations of a TransformerLens model through its own ``run_with_cache``."""

    note = ""
    vocab_size = None

    def __init__(self, model: Any) -> None:
        self.model = model

    def names(self) -> list[str]:
        """The model's hook points (``hook_dict``)."""
        return list(self.model.hook_dict)

    def site(self, name: str) -> str | None:
        """``name`` when it is a hook point of the model, else ``None``."""
        return name if name in self.model.hook_dict else None

    def run(self, tokens: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """``run_with_cache(tokens, names_filter=names)``; ``name -> CPU tensor``."""
        _, cache = self.model.run_with_cache(tokens, names_filter=list(names))
        return {n: to_host(cache[n]) for n in names}


Adapter = ModuleAdapter | TransformerLensAdapter


def _hf_call(model: nn.Module, sites: Sequence[Site]) -> Callable[[torch.Tensor], Any]:
    """Run the base model alone (no LM head, no logits) when every site lies inside it."""
    prefix = _base_prefix(model)
    inside = all(s.path.startswith(prefix) for s in sites)
    target = getattr(model, "base_model", model) if inside else model
    return lambda tokens: target(input_ids=tokens, use_cache=False)


def adapter_for(model: Any, names: Sequence[str] = ()) -> Adapter:
    """The adapter for ``model``: TransformerLens, Hugging Face, or plain module (piami's too)."""
    if is_transformer_lens(model):
        return TransformerLensAdapter(model)
    if not isinstance(model, nn.Module):
        raise PiamiTypeError(
            f"collect_activations takes a torch.nn.Module (piami, Hugging Face, TransformerLens "
            f"or your own), got {type(model).__name__}"
        )
    if is_hf_model(model):
        aliases = hf_hook_sites(model)
        kind, mapped = model.config.model_type, sorted(_LAYOUTS)
        note = "" if aliases else f" TransformerLens names are mapped for {mapped}, not {kind!r}."
        embed = model.get_input_embeddings()
        vocab = getattr(embed, "num_embeddings", None)
        adapter = ModuleAdapter(model, aliases=aliases, note=note, vocab_size=vocab)
        sites = [s for s in (adapter.site(n) for n in names) if s is not None]
        adapter.call = _hf_call(model, sites)
        return adapter
    return ModuleAdapter(model)


def check_names(adapter: Adapter, names: Sequence[str]) -> None:
    """Raise :class:`UnknownActivationError` naming the valid names when any name is unknown."""
    unknown = [n for n in names if adapter.site(n) is None]
    if not unknown:
        return
    valid = adapter.names()
    close = sorted({m for u in unknown for m in difflib.get_close_matches(u, valid, n=3)})
    hint = f" Did you mean {close}?" if close else ""
    raise UnknownActivationError(
        f"unknown activation name(s) {unknown} for this {type(adapter.model).__name__}; valid "
        f"names ({len(valid)}): {summarize_names(valid)}.{hint}{adapter.note}"
    )


def summarize_names(names: Sequence[str], limit: int = 60) -> str:
    """Every name when there are at most ``limit``; else runs of layer indices folded
    (``blocks.{0..29}.hook_resid_pre``) and at most ``limit`` entries shown.

    Example:
        >>> summarize_names(["embed", "blocks.0.out", "blocks.1.out", "blocks.2.out"], limit=3)
        'embed, blocks.{0..2}.out'
    """
    if len(names) <= limit:
        return ", ".join(names)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(re.sub(r"(?:(?<=\.)|^)\d+(?=\.|$)", "{i}", n, count=1), []).append(n)
    shown = []
    for key, members in groups.items():
        if len(members) == 1 or key == "{i}":  # nothing but an index: list them as they are
            shown.extend(members)
            continue
        idx = sorted(int(re.search(r"(?:(?<=\.)|^)(\d+)(?=\.|$)", m).group(1)) for m in members)
        contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
        span = f"{idx[0]}..{idx[-1]}" if contiguous else ",".join(map(str, idx))
        shown.append(key.replace("{i}", "{" + span + "}"))
    more = f", ... and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def activation_names(model: Any) -> list[str]:
    """Every name :func:`~piami.models.collect_activations` accepts for ``model``.

    TransformerLens names first (Hugging Face models of a mapped type), then hook points, then every
    module path.

    Example:
        >>> activation_names(nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 2)))
        ['0', '1']
    """
    return adapter_for(model).names()


__all__ = [
    "ModuleAdapter",
    "Site",
    "TransformerLensAdapter",
    "UnknownActivationError",
    "activation_names",
    "adapter_for",
    "check_names",
    "hf_hook_sites",
    "is_hf_model",
    "is_transformer_lens",
    "summarize_names",
    "to_host",
]
