"""A decoder-only transformer in one readable file, with TransformerLens hook names.

The model (Vaswani et al. 2017; GPT-2 layout, Radford et al. 2019) maps tokens ``x_0 .. x_{n-1}`` to
logits for the next token at every position. With pre-LayerNorm blocks the residual stream is

    resid_pre[0]  = W_E[x] + W_pos[t]                               (hook_embed + hook_pos_embed)
    resid_mid[l]  = resid_pre[l] + Attn_l(LN(resid_pre[l]))          (blocks.l.hook_attn_out)
    resid_post[l] = resid_mid[l] + MLP_l(LN(resid_mid[l]))           (blocks.l.hook_mlp_out)
    logits        = LN(resid_post[L-1]) W_U + b_U                    (ln_final.hook_normalized)

and attention is causal: position t reads positions 0..t only, so the residual stream at t is a
function of the prefix ``x_0 .. x_t`` -- which is what lets a probe compare it with the belief state
after that prefix (Shai et al. 2024).

Weights are stored per head as in TransformerLens (``W_Q: (n_heads, d_model, d_head)``,
``W_O: (n_heads, d_head, d_model)``), so circuits can be read off without reshaping. Hook points
(see :mod:`piami.models.hooks`): ``hook_embed``, ``hook_pos_embed``, and per block ``l``:
``blocks.l.hook_resid_pre``, ``blocks.l.ln1.hook_normalized``, ``blocks.l.attn.hook_q/k/v``,
``blocks.l.attn.hook_attn_scores``, ``blocks.l.attn.hook_pattern``, ``blocks.l.attn.hook_z``,
``blocks.l.hook_attn_out``, ``blocks.l.hook_resid_mid``, ``blocks.l.ln2.hook_normalized``,
``blocks.l.mlp.hook_pre``, ``blocks.l.mlp.hook_post``, ``blocks.l.hook_mlp_out``,
``blocks.l.hook_resid_post``; then ``ln_final.hook_normalized``.

Example:
    >>> cfg = TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=5,
    ...                         d_vocab=3)
    >>> model = Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")
    >>> logits, cache = model.run_with_cache(torch.zeros(4, 5, dtype=torch.long))
    >>> tuple(logits.shape), tuple(cache["blocks.1.hook_resid_post"].shape)
    ((4, 5, 3), (4, 5, 16))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.models.device import resolve_device, resolve_dtype
from piami.models.hooks import HookedModule, HookPoint
from piami.typing import Float, Int

_ACTS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu}


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """Shape of a decoder-only transformer; saved into every checkpoint as JSON."""

    n_layers: int = 4  # number of blocks
    d_model: int = 64  # width of the residual stream
    n_heads: int = 1  # attention heads per block
    d_head: int = 8  # width of each head's query/key/value
    d_mlp: int = 256  # hidden width of each MLP; 0 for attention-only blocks
    n_ctx: int = 10  # longest context (learned positional embeddings)
    d_vocab: int = 3  # vocabulary size (input and output)
    act_fn: Literal["gelu", "relu", "silu"] = "gelu"  # MLP nonlinearity
    normalization: Literal["ln", "none"] = "ln"  # pre-LayerNorm, or no normalization at all
    init_std: float = 0.02  # std of the normal initialization of every weight matrix

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "d_head", "n_ctx", "d_vocab"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(
                    f"TransformerConfig.{name} must be an integer >= 1, got {v!r}"
                )
        if not isinstance(self.d_mlp, int) or isinstance(self.d_mlp, bool) or self.d_mlp < 0:
            raise PiamiValueError(
                f"TransformerConfig.d_mlp must be an integer >= 0 (0: no MLP), got {self.d_mlp!r}"
            )
        if self.act_fn not in _ACTS:
            raise PiamiValueError(
                f"TransformerConfig.act_fn must be one of {sorted(_ACTS)}, got {self.act_fn!r}"
            )
        if self.normalization not in ("ln", "none"):
            raise PiamiValueError(
                "TransformerConfig.normalization must be 'ln' or 'none', got "
                f"{self.normalization!r}"
            )
        if not (isinstance(self.init_std, (int, float)) and 0 < self.init_std < math.inf):
            raise PiamiValueError(f"TransformerConfig.init_std must be > 0, got {self.init_std!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise PiamiValueError naming the valid ones."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise PiamiValueError(
                f"unknown TransformerConfig keys {unknown}; valid: {', '.join(sorted(valid))}"
            )
        return cls(**d)


class LayerNorm(nn.Module):
    """LayerNorm with a ``hook_normalized`` point; the identity when ``normalization='none'``."""

    def __init__(self, d_model: int, enabled: bool, eps: float = 1e-5) -> None:
        super().__init__()
        self.enabled, self.eps = enabled, eps
        if enabled:
            self.w = nn.Parameter(torch.ones(d_model))
            self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_normalized = HookPoint()

    def forward(self, x: Float[torch.Tensor, "batch pos d_model"]) -> torch.Tensor:
        if self.enabled:
            x = F.layer_norm(x, (x.shape[-1],), self.w, self.b, self.eps)
        return self.hook_normalized(x)


class Attention(nn.Module):
    """Causal multi-head self-attention, weights stored per head."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        self.b_Q = nn.Parameter(torch.zeros(h, dh))
        self.b_K = nn.Parameter(torch.zeros(h, dh))
        self.b_V = nn.Parameter(torch.zeros(h, dh))
        self.b_O = nn.Parameter(torch.zeros(d))
        mask = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)
        self.scale = 1.0 / math.sqrt(dh)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_attn_scores = HookPoint()  # (batch, head, query_pos, key_pos), masked
        self.hook_pattern = HookPoint()  # softmax of the scores
        self.hook_z = HookPoint()  # (batch, pos, head, d_head): pattern-weighted values

    def forward(self, x: Float[torch.Tensor, "batch pos d_model"]) -> torch.Tensor:
        n = x.shape[1]
        q = self.hook_q(torch.einsum("bpd,hde->bphe", x, self.W_Q) + self.b_Q)
        k = self.hook_k(torch.einsum("bpd,hde->bphe", x, self.W_K) + self.b_K)
        v = self.hook_v(torch.einsum("bpd,hde->bphe", x, self.W_V) + self.b_V)
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) * self.scale
        scores = scores.masked_fill(~self.mask[:n, :n], float("-inf"))
        pattern = self.hook_pattern(torch.softmax(self.hook_attn_scores(scores), dim=-1))
        z = self.hook_z(torch.einsum("bhqk,bkhe->bqhe", pattern, v))
        return torch.einsum("bqhe,hed->bqd", z, self.W_O) + self.b_O


class MLP(nn.Module):
    """Two-layer perceptron applied at each position."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act = _ACTS[cfg.act_fn]
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()

    def forward(self, x: Float[torch.Tensor, "batch pos d_model"]) -> torch.Tensor:
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        return self.hook_post(self.act(pre)) @ self.W_out + self.b_out


class Block(nn.Module):
    """Pre-LN residual block: attention, then MLP, each added to the residual stream."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        ln = cfg.normalization == "ln"  # submodules in forward order, so hook_points() is too
        self.hook_resid_pre = HookPoint()
        self.ln1 = LayerNorm(cfg.d_model, ln)
        self.attn = Attention(cfg)
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.has_mlp = cfg.d_mlp > 0
        if self.has_mlp:
            self.ln2 = LayerNorm(cfg.d_model, ln)
            self.mlp = MLP(cfg)
            self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: Float[torch.Tensor, "batch pos d_model"]) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)
        resid = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(self.ln1(resid))))
        if self.has_mlp:
            resid = resid + self.hook_mlp_out(self.mlp(self.ln2(resid)))
        return self.hook_resid_post(resid)


class Transformer(HookedModule):
    """Decoder-only transformer (see the module docstring for the equations and hook names).

    Args:
        cfg: the shape.
        generator: source of the initial weights (drawn on the CPU, so the same seed gives the same
            weights on every device); ``None`` uses torch's global generator.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...; see
            :func:`piami.models.device.resolve_device`.
        dtype: ``"float32"`` (default), ``"float64"``, ...
    """

    config_class = TransformerConfig  # what piami.train.load_checkpoint rebuilds the config with

    def __init__(
        self,
        cfg: TransformerConfig,
        *,
        generator: torch.Generator | None = None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "float32",
    ) -> None:
        super().__init__()
        if not isinstance(cfg, TransformerConfig):
            raise PiamiTypeError(f"Transformer takes a TransformerConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(cfg.d_model, cfg.normalization == "ln")
        self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))
        self.reset_parameters(generator=generator)
        self.setup_hooks()
        self.to(device=resolve_device(device), dtype=resolve_dtype(dtype))

    @torch.no_grad()
    def reset_parameters(self, *, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std^2), biases 0, LayerNorm gains 1 (GPT-2 initialization)."""
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf.startswith("W_"):
                buf = torch.empty(p.shape, dtype=torch.float32)
                nn.init.normal_(buf, 0.0, self.cfg.init_std, generator=generator)
                p.copy_(buf)
            elif leaf == "w":
                p.fill_(1.0)
            else:
                p.zero_()

    @property
    def device(self) -> torch.device:
        return self.W_E.device

    def forward(
        self, tokens: Int[torch.Tensor, "batch pos"]
    ) -> Float[torch.Tensor, "batch pos d_vocab"]:
        """Logits for the next token at each position.

        Args:
            tokens: int64 token ids in ``[0, d_vocab)``, shape ``(batch, pos)`` with
                ``pos <= n_ctx`` (or ``(pos,)``, treated as a batch of one).
        """
        return self.checked_forward(self._check_tokens(tokens))

    def checked_forward(
        self, tokens: Int[torch.Tensor, "batch pos"]
    ) -> Float[torch.Tensor, "batch pos d_vocab"]:
        """:meth:`forward` on ids already checked: no value-dependent branch, so
        ``torch.func.vmap`` can batch it (an SGLD sampler's per-chain minibatches)."""
        n = tokens.shape[-1]
        embed = self.hook_embed(self.W_E[tokens])  # (batch, pos, d_model)
        pos_embed = self.hook_pos_embed(self.W_pos[:n]).unsqueeze(0)  # (1, pos, d_model)
        resid = embed + pos_embed
        for block in self.blocks:
            resid = block(resid)
        return self.ln_final(resid) @ self.W_U + self.b_U

    def _check_tokens(self, tokens: Any) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor):
            raise PiamiTypeError(
                f"tokens must be a torch.Tensor of int64 ids, got {type(tokens).__name__}; "
                "wrap numpy arrays with torch.as_tensor"
            )
        if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise PiamiTypeError(f"tokens must be integer ids, got dtype {tokens.dtype}")
        if tokens.ndim == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.ndim != 2 or tokens.shape[1] == 0 or tokens.shape[1] > self.cfg.n_ctx:
            raise PiamiShapeError(
                f"tokens must have shape (batch, pos) with 1 <= pos <= n_ctx={self.cfg.n_ctx}, "
                f"got {tuple(tokens.shape)}"
            )
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.cfg.d_vocab):
            raise PiamiValueError(
                f"token ids must lie in [0, {self.cfg.d_vocab}), got range "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
        return tokens.to(device=self.device, dtype=torch.long)


__all__ = ["MLP", "Attention", "Block", "LayerNorm", "Transformer", "TransformerConfig"]
