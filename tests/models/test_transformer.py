"""The transformer: hook names, caching, causality, and agreement with an
independent forward pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError, PiamiKeyError, PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.models import HookPoint, Transformer, TransformerConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on a shared CPU, spinning worker threads slow small ops tenfold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMALL = TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=6, d_vocab=4)


def make(cfg: TransformerConfig = SMALL, seed: int = 0, **kw) -> Transformer:
    return Transformer(cfg, generator=torch.Generator().manual_seed(seed), device="cpu", **kw)


def tokens(n: int = 5, L: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 4, (n, L), generator=torch.Generator().manual_seed(seed))


def test_transformerlens_hook_names_and_cache_shapes():
    model = make()
    logits, cache = model.run_with_cache(tokens())
    assert logits.shape == (5, 6, 4)
    for name in ["hook_embed", "hook_pos_embed", "ln_final.hook_normalized"] + [
        f"blocks.{l}.{h}"
        for l in range(2)
        for h in (
            "hook_resid_pre",
            "attn.hook_pattern",
            "hook_attn_out",
            "hook_mlp_out",
            "hook_resid_post",
        )
    ]:
        assert name in cache, name
    assert cache["blocks.1.hook_resid_post"].shape == (5, 6, 16)
    assert cache["blocks.0.attn.hook_pattern"].shape == (5, 2, 6, 6)
    assert cache["hook_pos_embed"].shape == (6, 16)
    assert not any(t.requires_grad for t in cache.values())
    # forward order: the residual stream flows pre -> post block by block
    names = list(cache)
    assert names.index("blocks.0.hook_resid_pre") < names.index("blocks.0.hook_resid_post")
    assert names.index("blocks.0.hook_resid_post") < names.index("blocks.1.hook_resid_pre")
    assert names[-1] == "ln_final.hook_normalized"
    assert all(isinstance(h, HookPoint) and h.name == n for n, h in model.hook_points().items())


def test_cache_is_consistent_with_the_residual_equations():
    model = make()
    logits, c = model.run_with_cache(tokens())
    resid0 = c["hook_embed"] + c["hook_pos_embed"]
    torch.testing.assert_close(c["blocks.0.hook_resid_pre"], resid0)
    for l in range(2):
        post = c[f"blocks.{l}.hook_resid_pre"] + c[f"blocks.{l}.hook_attn_out"]
        post = post + c[f"blocks.{l}.hook_mlp_out"]
        torch.testing.assert_close(c[f"blocks.{l}.hook_resid_post"], post)
    torch.testing.assert_close(logits, c["ln_final.hook_normalized"] @ model.W_U + model.b_U)
    pattern = c["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(5, 2, 6))
    assert torch.all(pattern.triu(1) == 0)  # causal mask


def _reference_forward(model: Transformer, toks: torch.Tensor) -> torch.Tensor:
    """An independent forward pass: fused QKV and torch's scaled_dot_product_attention."""
    cfg = model.cfg
    x = model.W_E[toks] + model.W_pos[: toks.shape[1]]
    for blk in model.blocks:
        h = F.layer_norm(x, (cfg.d_model,), blk.ln1.w, blk.ln1.b, 1e-5)
        a = blk.attn
        q, k, v = (
            (h @ W.permute(1, 0, 2).reshape(cfg.d_model, -1) + b.reshape(-1))
            .unflatten(-1, (cfg.n_heads, cfg.d_head))
            .transpose(1, 2)
            for W, b in ((a.W_Q, a.b_Q), (a.W_K, a.b_K), (a.W_V, a.b_V))
        )
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (b, h, p, e)
        x = x + z.transpose(1, 2).reshape(*x.shape[:2], -1) @ a.W_O.reshape(-1, cfg.d_model) + a.b_O
        h = F.layer_norm(x, (cfg.d_model,), blk.ln2.w, blk.ln2.b, 1e-5)
        m = blk.mlp
        x = x + F.gelu(h @ m.W_in + m.b_in) @ m.W_out + m.b_out
    x = F.layer_norm(x, (cfg.d_model,), model.ln_final.w, model.ln_final.b, 1e-5)
    return x @ model.W_U + model.b_U


def test_forward_matches_an_independent_implementation():
    model = make(dtype="float64")
    with torch.no_grad():  # random biases and gains, so every parameter matters
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    toks = tokens()
    torch.testing.assert_close(model(toks), _reference_forward(model, toks), rtol=1e-10, atol=1e-10)


def test_causality_future_tokens_change_nothing_before_them():
    model = make()
    a = tokens()
    b = a.clone()
    b[:, 3:] = (b[:, 3:] + 1) % 4
    _, ca = model.run_with_cache(a)
    _, cb = model.run_with_cache(b)
    for name in ("blocks.1.hook_resid_post", "ln_final.hook_normalized"):
        torch.testing.assert_close(ca[name][:, :3], cb[name][:, :3])
        assert not torch.allclose(ca[name][:, 3:], cb[name][:, 3:])


def test_names_filter_forms_and_unknown_names():
    model = make()
    toks = tokens()
    _, c1 = model.run_with_cache(toks, names_filter="blocks.0.hook_resid_post")
    assert list(c1) == ["blocks.0.hook_resid_post"]
    _, c2 = model.run_with_cache(toks, names_filter=lambda n: n.endswith("resid_post"))
    assert list(c2) == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    assert model.hook_names(r"resid_post$") == list(c2)
    with pytest.raises(PiamiKeyError, match="valid"):
        model.run_with_cache(toks, names_filter=["blocks.9.hook_resid_post"])
    with pytest.raises(PiamiTypeError):
        model.run_with_cache(toks, names_filter=3)


def test_hooks_can_ablate_and_are_removed_afterwards():
    model = make()
    toks = tokens()
    base = model(toks)
    ablate = [(f"blocks.{l}.hook_attn_out", lambda a, n: torch.zeros_like(a)) for l in range(2)]
    with model.hooks(ablate):
        ablated, cache = model.run_with_cache(toks)
    assert torch.all(cache["blocks.0.hook_attn_out"] == 0)
    assert not torch.allclose(ablated, base)
    torch.testing.assert_close(model(toks), base)  # hooks gone
    with model.hooks([("hook_embed", lambda a, n: None)]):  # None leaves the activation
        torch.testing.assert_close(model(toks), base)
    with pytest.raises(PiamiKeyError):
        with model.hooks([("nope", lambda a, n: a)]):
            pass


def test_same_seed_same_weights_and_init_statistics():
    a, b, c = make(seed=0), make(seed=0), make(seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.W_E, c.W_E)
    big = Transformer(
        TransformerConfig(n_layers=1, d_model=256, d_mlp=512),
        device="cpu",
        generator=torch.Generator().manual_seed(0),
    )
    assert abs(float(big.blocks[0].mlp.W_in.detach().std()) - 0.02) < 0.001  # 131k draws: SE 4e-5
    assert torch.all(big.blocks[0].mlp.b_in == 0) and torch.all(big.ln_final.w == 1)


def test_variants_no_layernorm_attention_only_and_float64():
    cfg = TransformerConfig(n_layers=1, d_model=8, d_head=4, d_mlp=0, normalization="none", n_ctx=4)
    model = make(cfg, dtype="float64")
    logits, cache = model.run_with_cache(torch.zeros(2, 4, dtype=torch.long))
    assert logits.dtype == torch.float64 and "blocks.0.hook_mlp_out" not in cache
    torch.testing.assert_close(cache["ln_final.hook_normalized"], cache["blocks.0.hook_resid_post"])
    assert model(torch.tensor([0, 1, 2])).shape == (1, 3, 3)  # 1-D tokens: a batch of one
    assert TransformerConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_tokens_raise_piami_errors():
    model = make()
    with pytest.raises(PiamiTypeError):
        model(torch.zeros(2, 3))  # float ids
    with pytest.raises(PiamiTypeError):
        model([[0, 1]])
    with pytest.raises(PiamiShapeError, match="n_ctx=6"):
        model(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(PiamiValueError, match=r"\[0, 4\)"):
        model(torch.full((2, 3), 4))
    with pytest.raises(PiamiTypeError):
        Transformer({"n_layers": 1})


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from(
        ["n_layers", "d_model", "n_heads", "d_head", "n_ctx", "d_vocab", "d_mlp"]
    ),
    value=st.one_of(
        st.integers(-5, 0), st.sampled_from([1.5, 2.0, math.nan, math.inf, "3", None, True])
    ),
)
def test_bad_configs_raise(field, value):
    if field == "d_mlp" and value == 0:
        return  # attention-only is valid
    with pytest.raises(PiamiError):
        TransformerConfig(**{field: value})


def test_bad_activation_and_normalization():
    with pytest.raises(PiamiValueError, match="act_fn"):
        TransformerConfig(act_fn="tanh")
    with pytest.raises(PiamiValueError, match="normalization"):
        TransformerConfig(normalization="rms")
    with pytest.raises(PiamiValueError, match="unknown"):
        TransformerConfig.from_dict({"n_layer": 2})
