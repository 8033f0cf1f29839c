"""Export a piami :class:`~piami.models.Transformer` as a Hugging Face GPT-2 with the same outputs.

piami's transformer has the GPT-2 layout (Radford et al. 2019): learned token and position
embeddings, pre-LayerNorm blocks of causal attention and an MLP, a final LayerNorm, an unembedding.
The same function can therefore be written as a ``transformers.GPT2LMHeadModel``, so that any tool
that reads Hugging Face folders can measure a model piami trained -- and a reading there can be
checked against piami's native hooks. Four differences between the two parameterizations are
bridged exactly (in exact arithmetic; in float32 the logits agree to rounding):

1. **Head width.** GPT-2 splits ``n_embd`` evenly: head width ``D = n_embd / n_head``. piami allows
   any ``d_head <= D`` (the Mess3 flagship: ``d_model = 64``, one head of ``d_head = 8``). Each
   head's query, key and value get ``D - d_head`` zero columns, and the rows of the output
   projection that read them are zero, so the padding carries nothing. GPT-2 scales the attention
   logits by ``1/sqrt(D)`` where piami uses ``1/sqrt(d_head)`` (Vaswani et al. 2017, eq. 1), so
   ``W_Q`` and ``b_Q`` are multiplied by ``s = sqrt(D / d_head)``: ``(s q) . k / sqrt(D) = q . k /
   sqrt(d_head)``. A head wider than ``D`` cannot be represented (PiamiValueError).
2. **Tied embeddings.** GPT-2 ties ``lm_head`` to ``wte`` by default; piami's ``W_U`` is free, so
   the config sets ``tie_word_embeddings=False``.
3. **Unembedding bias.** GPT-2's ``lm_head`` has no bias. piami's logits are
   ``(n(x) w + beta) W_U + b_U`` with ``n(x)`` the normalized residual; choosing the final
   LayerNorm's bias ``beta' = beta + delta`` with ``delta W_U = b_U`` gives the same logits. The
   minimum-norm ``delta = b_U pinv(W_U)`` solves it whenever ``W_U`` has full column rank (possible
   only for ``d_vocab <= d_model``); otherwise a nonzero ``b_U`` raises PiamiValueError. The price:
   the exported ``ln_f`` output is piami's ``ln_final.hook_normalized`` plus ``delta`` (equal when
   ``b_U = 0``); the residual stream itself is untouched.
4. **Block details.** piami's GELU is the exact (erf) one, Hugging Face's ``"gelu"``
   (``"gelu_new"`` is the tanh approximation); ``"relu"`` and ``"silu"`` map to themselves.
   Attention-only blocks (``d_mlp = 0``): GPT-2 always has an MLP, so the export gives it width one
   and all-zero weights and biases; every supported activation maps 0 to 0, so it adds exactly
   zero. Biases are copied, dropout is 0, ``layer_norm_epsilon`` is piami's, ``n_positions =
   n_ctx``, and GPT-2's causal mask is piami's. ``normalization="none"`` has no GPT-2 equivalent
   (GPT-2 always normalizes) and raises.

The residual stream is the same tensor in both: Hugging Face's ``output_hidden_states[l]`` is
``blocks.{l}.hook_resid_pre`` for ``l < n_layers``, and its last entry is the ``ln_f`` output.

TransformerLens is not a target: its 4.x releases removed ``HookedTransformer`` (what
``from_pretrained`` conversions produced), and its ``TransformerBridge`` wraps a Hugging Face model,
so the GPT-2 folder written here is also the way into TransformerLens.

Example:
    >>> import torch
    >>> from piami.models import Transformer, TransformerConfig
    >>> cfg = TransformerConfig(n_layers=1, d_model=8, n_heads=1, d_head=4, d_mlp=8, n_ctx=4)
    >>> model = Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")
    >>> hf = to_huggingface(model)
    >>> tokens = torch.tensor([[0, 1, 2, 1]])
    >>> bool(torch.allclose(hf(tokens).logits, model(tokens), atol=1e-5))
    True
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from piami._io import atomic_write_json
from piami.errors import PiamiError, PiamiFileError, PiamiTypeError, PiamiValueError
from piami.models.transformer import Transformer, TransformerConfig

#: piami's ``act_fn`` -> GPT-2's ``activation_function`` (exact erf GELU is HF's "gelu").
HF_ACTIVATION = {"gelu": "gelu", "relu": "relu", "silu": "silu"}
_EXPORT_FILE = "piami_export.json"


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise PiamiError(
            "exporting to Hugging Face needs the optional 'transformers' package: "
            "pip install 'piami[hf]'"
        ) from exc
    return transformers


def hf_head_dim(model: Transformer) -> int:
    """GPT-2's head width ``d_model / n_heads`` for ``model``, after checking it can be exported.

    Raises:
        PiamiTypeError: ``model`` is not a piami Transformer.
        PiamiValueError: ``normalization="none"``, ``d_model`` not divisible by ``n_heads``, or
            ``d_head`` wider than ``d_model / n_heads``.
    """
    if not isinstance(model, Transformer):
        raise PiamiTypeError(
            f"to_huggingface exports a piami Transformer, got {type(model).__name__}"
        )
    cfg = model.cfg
    if cfg.normalization != "ln":
        raise PiamiValueError(
            "GPT-2 applies LayerNorm in every block; a Transformer with normalization="
            f"{cfg.normalization!r} has no GPT-2 equivalent (train with normalization='ln')"
        )
    if cfg.d_model % cfg.n_heads:
        raise PiamiValueError(
            f"GPT-2 splits n_embd evenly over its heads, but d_model={cfg.d_model} is not "
            f"divisible by n_heads={cfg.n_heads}; choose d_model a multiple of n_heads"
        )
    width = cfg.d_model // cfg.n_heads
    if cfg.d_head > width:
        raise PiamiValueError(
            f"GPT-2 heads have width d_model / n_heads = {width}, narrower than d_head="
            f"{cfg.d_head}: a head can be padded with zeros up to GPT-2's width, never cut. "
            f"Use n_heads * d_head <= d_model (here <= {cfg.d_model})"
        )
    return width


def gpt2_config(model: Transformer) -> Any:
    """The ``transformers.GPT2Config`` of the export of ``model`` (see the module docstring)."""
    transformers = _import_transformers()
    hf_head_dim(model)
    cfg = model.cfg
    eps = {m.eps for m in model.modules() if hasattr(m, "hook_normalized")}
    if len(eps) != 1:
        raise PiamiValueError(f"GPT-2 has one layer_norm_epsilon; this model uses {sorted(eps)}")
    return transformers.GPT2Config(
        vocab_size=cfg.d_vocab,
        n_positions=cfg.n_ctx,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        n_inner=cfg.d_mlp if cfg.d_mlp > 0 else 1,  # attention-only: a zero MLP of width 1
        activation_function=HF_ACTIVATION[cfg.act_fn],
        layer_norm_epsilon=eps.pop(),
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False,
        reorder_and_upcast_attn=False,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
    )


def fold_unembed_bias(
    W_U: torch.Tensor, b_U: torch.Tensor, beta: torch.Tensor, *, dtype: torch.dtype
) -> torch.Tensor:
    """The final LayerNorm bias ``beta'`` with ``beta' W_U = beta W_U + b_U`` (float64 solve).

    Args:
        W_U: ``(d_model, d_vocab)`` unembedding.
        b_U: ``(d_vocab,)`` unembedding bias.
        beta: ``(d_model,)`` final LayerNorm bias.
        dtype: the dtype ``beta'`` is returned in; the fold is checked after rounding to it.

    Raises:
        PiamiValueError: ``b_U`` is not in the row space of ``W_U`` (``W_U`` has rank below
            ``d_vocab``, e.g. ``d_vocab > d_model``), so GPT-2's bias-free head cannot produce it.
    """
    W, b, be = W_U.double().cpu(), b_U.double().cpu(), beta.double().cpu()
    if not torch.any(b):
        return beta.detach().to(dtype=dtype).clone()
    delta = b @ torch.linalg.pinv(W)  # minimum-norm solution of delta W = b
    folded = (be + delta).to(dtype)
    err = float(((folded.double() - be) @ W - b).abs().max())
    tol = 1e-5 * (1.0 + float(b.abs().max()))
    if not err <= tol:
        rank = int(torch.linalg.matrix_rank(W))
        raise PiamiValueError(
            f"GPT-2's lm_head has no bias, and b_U cannot be moved into the final LayerNorm bias: "
            f"W_U is {tuple(W.shape)} of rank {rank} (d_vocab={W.shape[1]} needs rank "
            f"{W.shape[1]}), residual {err:.3g} > {tol:.3g}. Export a model with b_U = 0 or "
            "d_vocab <= d_model with W_U of full column rank"
        )
    return folded.to(beta.device)


def gpt2_weights(
    params: Mapping[str, torch.Tensor], cfg: TransformerConfig, *, q_scale: float | None = None
) -> dict[str, torch.Tensor]:
    """GPT-2 weights (Hugging Face names) of piami parameters, as a differentiable map.

    Conv1D weights are ``(in, out)`` as in GPT-2: ``c_attn = [Q | K | V]``, head ``h`` in columns
    ``h*D .. h*D + d_head`` of each third, zero beyond; ``c_proj`` reads the same rows. Autograd
    flows through every entry (the fold of ``b_U`` included), so a sampler that moves piami's
    parameters can run the Hugging Face forward pass at each sample (the round-trip experiment's
    LLC). Shapes are not checked here: :func:`gpt2_state_dict` checks them.

    Args:
        params: a piami :class:`~piami.models.Transformer`'s ``named_parameters``, by name.
        cfg: its shape.
        q_scale: the factor on ``W_Q`` and ``b_Q``; default ``sqrt((d_model / n_heads) /
            d_head)``, which keeps piami's ``1 / sqrt(d_head)`` logit scale (another value gives a
            deliberately broken export, for controls).

    Returns:
        The state dict, tensors sharing autograd history with ``params``.
    """
    width = cfg.d_model // cfg.n_heads
    s = math.sqrt(width / cfg.d_head) if q_scale is None else float(q_scale)

    def heads(W: torch.Tensor, scale: float = 1.0) -> torch.Tensor:  # (h, d, dh) -> (d, h*width)
        h, d, dh = W.shape
        return F.pad(W.permute(1, 0, 2) * scale, (0, width - dh)).reshape(d, h * width)

    def head_bias(b: torch.Tensor, scale: float = 1.0) -> torch.Tensor:  # (h, dh) -> (h*width,)
        return F.pad(b * scale, (0, width - b.shape[-1])).reshape(-1)

    W_U, b_U, beta = params["W_U"], params["b_U"], params["ln_final.b"]
    delta = b_U.double().cpu() @ torch.linalg.pinv(W_U.double().cpu())  # delta W_U = b_U
    out = {
        "transformer.wte.weight": params["W_E"],
        "transformer.wpe.weight": params["W_pos"],
        "transformer.ln_f.weight": params["ln_final.w"],
        "transformer.ln_f.bias": (beta.double().cpu() + delta).to(beta.dtype).to(beta.device),
        "lm_head.weight": W_U.T,
    }
    for i in range(cfg.n_layers):
        p, q = f"blocks.{i}.", f"transformer.h.{i}."
        out[q + "ln_1.weight"], out[q + "ln_1.bias"] = params[p + "ln1.w"], params[p + "ln1.b"]
        scales = {"Q": s, "K": 1.0, "V": 1.0}
        out[q + "attn.c_attn.weight"] = torch.cat(
            [heads(params[p + f"attn.W_{x}"], scales[x]) for x in "QKV"], 1
        )
        out[q + "attn.c_attn.bias"] = torch.cat(
            [head_bias(params[p + f"attn.b_{x}"], scales[x]) for x in "QKV"]
        )
        W_O = params[p + "attn.W_O"]  # (h, dh, d): rows padded to width
        out[q + "attn.c_proj.weight"] = F.pad(W_O, (0, 0, 0, width - cfg.d_head)).reshape(
            -1, W_O.shape[-1]
        )
        out[q + "attn.c_proj.bias"] = params[p + "attn.b_O"]
        if cfg.d_mlp > 0:
            out[q + "ln_2.weight"], out[q + "ln_2.bias"] = params[p + "ln2.w"], params[p + "ln2.b"]
            out[q + "mlp.c_fc.weight"] = params[p + "mlp.W_in"]
            out[q + "mlp.c_fc.bias"] = params[p + "mlp.b_in"]
            out[q + "mlp.c_proj.weight"] = params[p + "mlp.W_out"]
            out[q + "mlp.c_proj.bias"] = params[p + "mlp.b_out"]
        else:  # a width-1 MLP with zero weights: act(0) = 0 for gelu, relu, silu
            z, d = W_U.new_zeros, cfg.d_model
            out[q + "ln_2.weight"], out[q + "ln_2.bias"] = z(d) + 1, z(d)
            out[q + "mlp.c_fc.weight"], out[q + "mlp.c_fc.bias"] = z(d, 1), z(1)
            out[q + "mlp.c_proj.weight"], out[q + "mlp.c_proj.bias"] = z(1, d), z(d)
    return out


@torch.no_grad()
def gpt2_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """The ``GPT2LMHeadModel`` state dict (Hugging Face names) that computes ``model``'s logits.

    :func:`gpt2_weights` at the model's weights, after checking the model can be exported (and
    that ``b_U`` can be folded into the final LayerNorm bias), detached. See the module docstring.
    """
    hf_head_dim(model)
    fold_unembed_bias(model.W_U, model.b_U, model.ln_final.b, dtype=model.W_U.dtype)  # checks
    params = dict(model.named_parameters())
    return {k: v.detach().clone().contiguous() for k, v in gpt2_weights(params, model.cfg).items()}


def to_huggingface(model: Transformer, out_dir: str | os.PathLike | None = None) -> Any:
    """A ``transformers.GPT2LMHeadModel`` that computes the same logits as ``model``.

    Args:
        model: a piami :class:`~piami.models.Transformer` with ``normalization="ln"``,
            ``n_heads * d_head <= d_model`` and ``d_model`` divisible by ``n_heads``.
        out_dir: when given, the export is also saved there (see :func:`save_huggingface`).

    Returns:
        The Hugging Face model in eval mode, on ``model``'s device and in its dtype.

    Raises:
        PiamiTypeError, PiamiValueError: a model GPT-2 cannot represent (the message says why).
    """
    transformers = _import_transformers()
    config = gpt2_config(model)
    state = gpt2_state_dict(model)
    with torch.device("meta"):  # shapes only; the weights come from ``state``
        hf = transformers.GPT2LMHeadModel(config)
    hf.load_state_dict(state, strict=True, assign=True)
    hf.eval()
    if out_dir is not None:
        _save(hf, model, Path(out_dir))
    return hf


def save_huggingface(
    model: Transformer, out_dir: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Save ``model`` as a Hugging Face GPT-2 folder (``config.json``, ``model.safetensors``).

    The folder is written under a temporary name beside ``out_dir`` and renamed into place, so
    ``out_dir`` is either absent or complete. It also holds ``piami_export.json`` (the piami
    config and version, the padding and scale used). Reload it with
    ``transformers.AutoModelForCausalLM.from_pretrained(out_dir)``.

    Args:
        model: as for :func:`to_huggingface`.
        out_dir: the folder to create.
        overwrite: replace an existing non-empty ``out_dir`` (otherwise PiamiFileError).

    Returns:
        ``out_dir`` as a Path.
    """
    return _save(to_huggingface(model), model, Path(out_dir), overwrite=overwrite)


def _save(hf: Any, model: Transformer, out: Path, *, overwrite: bool = False) -> Path:
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise PiamiFileError(f"{out} exists and is not empty; pass overwrite=True to replace it")
    from piami import __version__

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}.", dir=out.parent))
    old = None
    try:
        hf.save_pretrained(tmp)
        width = hf_head_dim(model)
        info = {
            "format": "piami-hf-export-1",
            "piami_version": __version__,
            "model_config": model.cfg.to_dict(),
            "architecture": "GPT2LMHeadModel",
            "head_width": width,
            "q_scale": math.sqrt(width / model.cfg.d_head),
            "b_U_folded_into_ln_f": bool(torch.any(model.b_U)),
            "mlp": "zero weights, width 1" if model.cfg.d_mlp == 0 else "copied",
        }
        atomic_write_json(tmp / _EXPORT_FILE, info)
        if out.exists():
            if out.is_dir() and not any(out.iterdir()):
                out.rmdir()
            else:
                old = Path(tempfile.mkdtemp(prefix=f".tmp-old-{out.name}.", dir=out.parent))
                os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old / out.name, out)  # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


__all__ = [
    "HF_ACTIVATION",
    "fold_unembed_bias",
    "gpt2_config",
    "gpt2_state_dict",
    "hf_head_dim",
    "save_huggingface",
    "to_huggingface",
]
