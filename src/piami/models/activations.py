"""Collecting activations by name from any model, in batches, in memory or streamed to disk.

Instruments take arrays, not models; this module is where a model's activations become tensors.
:func:`collect_activations` runs a model over token sequences in batches and keeps the named
activations. The names depend on the model (:mod:`piami.models.foreign`):

- piami models (:class:`~piami.models.HookedModule`): TransformerLens hook names
  (``blocks.0.hook_resid_post``), or any module path;
- Hugging Face causal LMs (Llama, Mistral, Qwen2/3, GPT-2, GPT-NeoX): the same TransformerLens
  names, mapped onto the model's modules, or any module path;
- TransformerLens models: their hook names, through ``run_with_cache``;
- any other ``torch.nn.Module``: module paths (``model.get_submodule``), read by forward hooks.

:func:`residual_stream` is the common case of a :class:`~piami.models.Transformer`: the residual
stream after the embedding and after every block, one ``(n_seqs * pos, d_model)`` array per layer,
with the logits.
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from piami.errors import PiamiKeyError, PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.models.activation_store import ActivationWriter
from piami.models.device import resolve_device
from piami.models.foreign import adapter_for, check_names
from piami.models.hooks import HookedModule

#: the in-memory result may take at most this share of the memory available when it starts
MEMORY_SHARE = 0.8


@torch.no_grad()
def collect_activations(
    model: nn.Module,
    tokens: np.ndarray | torch.Tensor,
    names: str | Sequence[str],
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    out: str | os.PathLike | None = None,
) -> Mapping[str, torch.Tensor]:
    """Activations at ``names`` for every sequence of ``tokens``, from any model.

    The model runs in eval mode without gradients; its previous modes are restored afterwards, and
    every hook this function adds is removed, also when the forward pass raises.

    Args:
        model: a piami model, a Hugging Face ``transformers`` model, a TransformerLens model, or any
            ``torch.nn.Module`` called as ``model(tokens)``.
        tokens: ``(n_seqs, seq_len)`` integer token ids (numpy array or tensor).
        names: activation names (see the module docstring; :func:`~piami.models.activation_names`
            lists a model's).
        batch_size: sequences per forward pass; ``None``: all at once. The result does not depend
            on it.
        device: where the forward passes run: ``"auto"`` (CUDA, else MPS, else CPU; see
            :func:`~piami.models.resolve_device`), ``"cpu"``, ``"cuda"``, ... A model elsewhere is
            moved there for the collection and moved back after; a model spread over several
            devices stays where it is (``"auto"`` only).
        out: a new or empty folder: each batch is written there as a safetensors shard and an
            :class:`~piami.models.ActivationStore` is returned instead of tensors in memory.

    Returns:
        ``name -> tensor`` in the order of ``names``: CPU tensors ``(n_seqs, ...)`` (float16 and
        bfloat16 become float32), or with ``out`` the same as a lazy :class:`ActivationStore`.

    Raises:
        PiamiKeyError, PiamiValueError: an unknown name (the error is both; it lists the valid
            names), bad tokens or settings, or a result too large for memory without ``out``.

    Example:
        >>> net = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 2))
        >>> acts = collect_activations(net, np.array([[0, 1, 2], [3, 4, 0]]), ["0", "1"])
        >>> tuple(acts["0"].shape), tuple(acts["1"].shape)
        ((2, 3, 4), (2, 3, 2))
    """
    ids = _as_tokens(tokens)
    wanted = _as_names(names)
    size = _as_batch_size(batch_size, len(ids))
    adapter = adapter_for(model, wanted)
    check_names(adapter, wanted)
    if adapter.vocab_size is not None and int(ids.max()) >= adapter.vocab_size:
        raise PiamiValueError(
            f"token ids must lie in [0, {adapter.vocab_size}) for this model, got up to "
            f"{int(ids.max())}"
        )
    sink: ActivationWriter | _MemorySink = (
        ActivationWriter(out) if out is not None else _MemorySink(len(ids))
    )
    split = size < len(ids)
    try:
        with _placed(model, device) as dev, _eval_mode(model):
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                acts = adapter.run(chunk.to(dev), wanted)
                if split or out is not None:
                    _check_leading(acts, len(chunk))
                sink.add(acts, rows=len(chunk))
    except BaseException:
        if isinstance(sink, ActivationWriter):
            sink.abort()
        raise
    return sink.finish()


class _MemorySink:
    """Batches copied into tensors allocated once, after the first batch has shown the sizes;
    a result projected past the available memory is refused (with advice) before allocating."""

    def __init__(self, n_seqs: int) -> None:
        self.n_seqs, self.row = n_seqs, 0
        self.result: dict[str, torch.Tensor] | None = None

    def add(self, acts: Mapping[str, torch.Tensor], rows: int) -> None:
        if self.result is None and rows == self.n_seqs:  # one batch: nothing to join
            self.result, self.row = dict(acts), rows
            return
        if self.result is None:
            need = sum(t.nbytes for t in acts.values()) * self.n_seqs / rows
            have = available_memory()
            if have is not None and need > MEMORY_SHARE * have:
                raise PiamiValueError(
                    f"these activations would take {need / 2**30:.2f} GiB, more than "
                    f"{MEMORY_SHARE:.0%} of the {have / 2**30:.2f} GiB of memory available; "
                    "pass out=FOLDER to stream them to disk, or ask for fewer names or sequences"
                )
            self.result = {n: t.new_empty((self.n_seqs, *t.shape[1:])) for n, t in acts.items()}
        for n, t in acts.items():
            self.result[n][self.row : self.row + rows] = t
        self.row += rows

    def finish(self) -> dict[str, torch.Tensor]:
        return self.result or {}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``); ``None``: unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_leading(acts: Mapping[str, torch.Tensor], rows: int) -> None:
    for n, t in acts.items():
        if t.ndim == 0 or t.shape[0] != rows:
            raise PiamiShapeError(
                f"activation {n!r} has shape {tuple(t.shape)}, not (batch={rows}, ...): batches "
                "cannot be joined; pass batch_size=None (and no out) for activations whose first "
                "axis is not the batch"
            )


def _as_tokens(tokens: object) -> torch.Tensor:
    """``(n_seqs, seq_len)`` int64 CPU tensor, or a PiamiError saying what is wrong."""
    if isinstance(tokens, torch.Tensor):
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise PiamiTypeError(f"tokens must be integer ids, got a tensor of {tokens.dtype}")
        ids = tokens.detach().to(device="cpu", dtype=torch.long)
    else:
        arr = np.asarray(tokens)
        if arr.dtype.kind not in "iu":
            raise PiamiTypeError(f"tokens must be integer ids, got an array of {arr.dtype}")
        ids = torch.as_tensor(arr.astype(np.int64))
    if ids.ndim != 2 or 0 in ids.shape:
        raise PiamiShapeError(
            f"tokens must have shape (n_seqs, seq_len) with both >= 1, got {tuple(ids.shape)}; "
            "for one sequence pass tokens[None]"
        )
    if int(ids.min()) < 0:
        raise PiamiValueError(f"token ids must be >= 0, got {int(ids.min())}")
    return ids


def _as_names(names: object) -> list[str]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise PiamiTypeError(
            f"names must be a name or a list of names (strings), got {type(names).__name__}"
        )
    if not names:
        raise PiamiValueError("names is empty; ask for at least one activation name")
    return list(dict.fromkeys(names))


def _as_batch_size(batch_size: object, n_seqs: int) -> int:
    if batch_size is None:
        return n_seqs
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise PiamiValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
    if batch_size < 1:
        raise PiamiValueError(f"batch_size must be an integer >= 1 or None, got {batch_size!r}")
    return min(int(batch_size), n_seqs)


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


@contextlib.contextmanager
def _placed(model: nn.Module, device: str | torch.device) -> Iterator[torch.device]:
    """Run on ``device``: move the model there for the block and back after, if it is elsewhere."""
    target = resolve_device(device)
    if target.type == "meta":
        raise PiamiValueError("device 'meta' holds no data; use 'auto', 'cpu' or 'cuda'")
    held = {t.device for t in itertools.chain(model.parameters(), model.buffers())}
    if not held:
        yield target
    elif len(held) > 1:
        if not (isinstance(device, str) and device == "auto"):
            raise PiamiValueError(
                f"the model is spread over devices {sorted(map(str, held))}; pass device='auto' "
                "to run it where it is"
            )
        yield next(itertools.chain(model.parameters(), model.buffers())).device
    else:
        (here,) = held
        if _same_device(here, target):
            yield here
        else:
            model.to(target)
            try:
                yield target
            finally:
                model.to(here)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; every submodule's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def _hooked_arrays(
    model: HookedModule, tokens: np.ndarray, names: Sequence[str], *, batch_size: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Hook-point activations and outputs of a piami model as float32 arrays (residual_stream)."""
    valid = list(model.hook_points())
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise PiamiKeyError(f"unknown hook point(s) {unknown}; valid: {', '.join(valid)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise PiamiValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    model.eval()
    device = next(model.parameters()).device
    acts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    outputs = []
    for start in range(0, len(tokens), batch_size):
        chunk = torch.as_tensor(tokens[start : start + batch_size], device=device)
        out, cache = model.run_with_cache(chunk, names_filter=list(names))
        outputs.append(out.float().cpu().numpy())
        for n in names:
            acts[n].append(cache[n].float().cpu().numpy())
    return {n: np.concatenate(a) for n, a in acts.items()}, np.concatenate(outputs)


def residual_stream(
    model: HookedModule, tokens: np.ndarray, *, batch_size: int = 4096
) -> tuple[list[np.ndarray], np.ndarray]:
    """The residual stream of a transformer at every layer, flattened over positions.

    Args:
        model: a :class:`~piami.models.Transformer` (``cfg.n_layers``, ``cfg.d_model``); it is left
            in eval mode.
        tokens: ``(n_seqs, pos)`` token ids.
        batch_size: sequences per forward pass.

    Returns:
        ``([embed, after block 0, ..., after block L-1], logits)``: each layer an array
        ``(n_seqs * pos, d_model)`` (float32), the logits ``(n_seqs, pos, d_vocab)``.
    """
    names = ["blocks.0.hook_resid_pre"] + [
        f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)
    ]
    acts, logits = _hooked_arrays(model, tokens, names, batch_size=batch_size)
    return [acts[n].reshape(-1, model.cfg.d_model) for n in names], logits
