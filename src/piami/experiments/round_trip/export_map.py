"""The export to GPT-2 as a differentiable map of piami's parameters (the LLC's Hugging Face path).

:func:`piami.models.to_huggingface` writes GPT-2 weights once, from the trained weights ``w*``. The
local learning coefficient samples weights ``w`` around ``w*`` (Lau et al. 2023, eq. 3), and it is
a property of the model *with its parameterization*: the GPT-2 export adds parameters (each head's
query, key and value padded from ``d_head`` to ``d_model / n_heads`` columns, all zero at ``w*``),
scales ``W_Q`` by ``s = sqrt(d_model / (n_heads d_head))`` and drops ``b_U`` into the final
LayerNorm's bias. SGLD in GPT-2's own coordinates therefore samples a different posterior (more
parameters, one direction stretched by ``s``), and its LLC need not be piami's.

To put the *same* quantity through the Hugging Face forward pass, :class:`ThroughExport` keeps
piami's parameters as its own and computes its logits as the Hugging Face model's at
``gpt2_weights(w)``: the export map applied to every sampled ``w``. SGLD then moves the same
coordinates with the same noise on both paths, and the two LLC estimates differ only by how the
two forward passes round. :func:`gpt2_weights` repeats the operations of
:func:`piami.models.export.gpt2_state_dict` (without ``no_grad``), so at ``w*`` it reproduces the
exported weights bit for bit (a sanity row checks it); ``q_scale=1`` gives the deliberately broken
export the controls use (``W_Q`` not rescaled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from piami.models import Transformer, TransformerConfig
from piami.models.export import gpt2_config


def q_scale_of(cfg: TransformerConfig) -> float:
    """The export's query scale ``sqrt(d_model / n_heads / d_head)`` (1 when no padding)."""
    return math.sqrt((cfg.d_model // cfg.n_heads) / cfg.d_head)


def gpt2_weights(
    params: Mapping[str, torch.Tensor], cfg: TransformerConfig, *, q_scale: float
) -> dict[str, torch.Tensor]:
    """GPT-2 weights (Hugging Face names) of piami parameters ``params``, differentiably.

    Args:
        params: a piami :class:`~piami.models.Transformer`'s ``named_parameters``, by name.
        cfg: its shape (layer norm ``"ln"``, ``n_heads * d_head <= d_model``).
        q_scale: the factor on ``W_Q`` and ``b_Q``: :func:`q_scale_of` for the exact export, 1
            for the broken one.

    Returns:
        The state dict :func:`~piami.models.export.gpt2_state_dict` gives at the same weights
        (for ``q_scale = q_scale_of(cfg)``).
    """
    width = cfg.d_model // cfg.n_heads

    def heads(W: torch.Tensor, scale: float = 1.0) -> torch.Tensor:  # (h, d, dh) -> (d, h*width)
        h, d, dh = W.shape
        return F.pad(W.permute(1, 0, 2) * scale, (0, width - dh)).reshape(d, h * width)

    def head_bias(b: torch.Tensor, scale: float = 1.0) -> torch.Tensor:  # (h, dh) -> (h*width,)
        return F.pad(b * scale, (0, width - b.shape[-1])).reshape(-1)

    W_U, b_U, beta = params["W_U"], params["b_U"], params["ln_final.b"]
    fold = b_U.double().cpu() @ torch.linalg.pinv(W_U.double().cpu())  # delta W_U = b_U
    out = {
        "transformer.wte.weight": params["W_E"],
        "transformer.wpe.weight": params["W_pos"],
        "transformer.ln_f.weight": params["ln_final.w"],
        "transformer.ln_f.bias": (beta.double().cpu() + fold).to(beta.dtype).to(beta.device),
        "lm_head.weight": W_U.T,
    }
    for i in range(cfg.n_layers):
        p, q = f"blocks.{i}.", f"transformer.h.{i}."
        out[q + "ln_1.weight"], out[q + "ln_1.bias"] = params[p + "ln1.w"], params[p + "ln1.b"]
        out[q + "attn.c_attn.weight"] = torch.cat(
            [heads(params[p + f"attn.W_{x}"], q_scale if x == "Q" else 1.0) for x in "QKV"], 1
        )
        out[q + "attn.c_attn.bias"] = torch.cat(
            [head_bias(params[p + f"attn.b_{x}"], q_scale if x == "Q" else 1.0) for x in "QKV"]
        )
        W_O = params[p + "attn.W_O"]  # (h, dh, d): rows padded to width
        out[q + "attn.c_proj.weight"] = F.pad(W_O, (0, 0, 0, width - cfg.d_head)).reshape(
            -1, W_O.shape[-1]
        )
        out[q + "attn.c_proj.bias"] = params[p + "attn.b_O"]
        out[q + "ln_2.weight"], out[q + "ln_2.bias"] = params[p + "ln2.w"], params[p + "ln2.b"]
        out[q + "mlp.c_fc.weight"], out[q + "mlp.c_fc.bias"] = (
            params[p + "mlp.W_in"],
            params[p + "mlp.b_in"],
        )
        out[q + "mlp.c_proj.weight"] = params[p + "mlp.W_out"]
        out[q + "mlp.c_proj.bias"] = params[p + "mlp.b_out"]
    return out


class ThroughExport(nn.Module):
    """piami's parameters, the Hugging Face model's forward pass (see the module docstring).

    Its trainable parameters are those of ``model``, in the same order (names prefixed
    ``piami.``), so :class:`~piami.instruments.LLCEstimator` gives it the same ``w*`` and, with
    the same seed, the same noise as ``model``; ``hf``'s own weights are frozen and unused.

    Args:
        model: the piami transformer (with MLPs: the map copies them).
        hf: a ``GPT2LMHeadModel`` of the export's shape (e.g. reloaded from its folder).
        q_scale: the factor on ``W_Q`` (:func:`q_scale_of` exact, 1 broken).
    """

    def __init__(self, model: Transformer, hf: nn.Module, *, q_scale: float) -> None:
        super().__init__()
        self.piami = model
        self.hf = hf
        for p in self.hf.parameters():
            p.requires_grad_(False)
        self.q_scale = q_scale

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The logits ``(batch, pos, d_vocab)`` of the export of the current parameters."""
        params = dict(self.piami.named_parameters())
        state = gpt2_weights(params, self.piami.cfg, q_scale=self.q_scale)
        return functional_call(self.hf, state, (tokens,)).logits


@torch.no_grad()
def broken_export(model: Transformer) -> nn.Module:
    """The deliberately broken export: :func:`~piami.models.to_huggingface` but ``W_Q`` and
    ``b_Q`` not rescaled (GPT-2 then divides the attention logits by ``sqrt(d_model / n_heads)``
    instead of ``sqrt(d_head)``). A ``GPT2LMHeadModel`` in eval mode, on ``model``'s device."""
    import transformers

    params = dict(model.named_parameters())
    state = {
        k: v.detach().clone().contiguous()
        for k, v in gpt2_weights(params, model.cfg, q_scale=1.0).items()
    }
    with torch.device("meta"):  # shapes only; the weights come from ``state``
        hf = transformers.GPT2LMHeadModel(gpt2_config(model))
    hf.load_state_dict(state, strict=True, assign=True)
    return hf.eval()
