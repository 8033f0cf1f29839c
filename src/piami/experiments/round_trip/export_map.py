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
two forward passes round. :func:`piami.models.export.gpt2_weights` is the differentiable map that
:func:`~piami.models.export.gpt2_state_dict` itself applies, so at ``w*`` it reproduces the
exported weights bit for bit (a sanity row checks it); ``q_scale=1`` gives the deliberately broken
export the controls use (``W_Q`` not rescaled).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from piami.models import Transformer, TransformerConfig
from piami.models.export import gpt2_config, gpt2_weights


def q_scale_of(cfg: TransformerConfig) -> float:
    """The export's query scale ``sqrt(d_model / n_heads / d_head)`` (1 when no padding)."""
    return math.sqrt((cfg.d_model // cfg.n_heads) / cfg.d_head)


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
