"""Activations from any model: piami's, plain nn.Modules, Hugging Face causal LMs, TransformerLens.

Every Hugging Face check compares with a computation the collector does not share: the model's own
``output_hidden_states``, its embedding matrix indexed by the tokens, or its norm modules applied
to what was collected. The tiny models are built from configs with random weights (no download).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from piami.errors import PiamiError, PiamiFileError, PiamiKeyError, PiamiValueError
from piami.models import (
    ActivationStore,
    Transformer,
    TransformerConfig,
    activation_names,
    collect_activations,
    residual_stream,
)
from piami.models.foreign import summarize_names

transformers = pytest.importorskip("transformers")

N_LAYERS, D, VOCAB = 2, 32, 50
TOKENS = np.random.default_rng(0).integers(0, VOCAB, size=(5, 7))
TL_NAMES = ("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post")
# Hugging Face model types: config class, model class, config settings beside the sizes
HF = {
    "llama": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(intermediate_size=64, num_attention_heads=4, num_key_value_heads=2),
    ),
    "gpt2": (
        "GPT2Config",
        "GPT2LMHeadModel",
        dict(n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0),
    ),
    "gpt_neox": (
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        dict(intermediate_size=64, num_attention_heads=4),
    ),
    "qwen2": (
        "Qwen2Config",
        "Qwen2ForCausalLM",
        dict(intermediate_size=64, num_attention_heads=4, num_key_value_heads=2),
    ),
}


BLOCKS = {"llama": "model.layers", "qwen2": "model.layers", "gpt2": "transformer.h"}
BLOCKS["gpt_neox"] = "gpt_neox.layers"


def _hf_model(kind: str, seed: int = 0) -> nn.Module:
    config_cls, model_cls, extra = HF[kind]
    sizes = (
        dict(n_embd=D, n_layer=N_LAYERS)
        if kind == "gpt2"
        else dict(hidden_size=D, num_hidden_layers=N_LAYERS, max_position_embeddings=64)
    )
    cfg = getattr(transformers, config_cls)(vocab_size=VOCAB, **sizes, **extra)
    with torch.random.fork_rng():  # HF initializes from the global generator; do not leak
        torch.manual_seed(seed)
        model = getattr(transformers, model_cls)(cfg)
    return model.eval()


@pytest.fixture(scope="module", params=sorted(HF))
def hf(request):
    torch.set_num_threads(1)
    model = _hf_model(request.param)
    names = [n for n in activation_names(model) if not n.startswith(model.base_model_prefix)]
    names = [n for n in names if n != "lm_head"]
    return request.param, model, names, collect_activations(model, TOKENS, names)


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# -- Hugging Face: the TransformerLens names sit where HF computes the stream --------------------


def test_resid_stream_equals_hf_hidden_states(hf):
    kind, model, _, acts = hf
    with torch.no_grad():
        hs = model(input_ids=torch.as_tensor(TOKENS), output_hidden_states=True).hidden_states
    assert len(hs) == N_LAYERS + 1
    for i in range(N_LAYERS):  # hidden_states[i] is the input of block i
        torch.testing.assert_close(acts[f"blocks.{i}.hook_resid_pre"], hs[i], rtol=0, atol=1e-6)
    for i in range(N_LAYERS - 1):
        torch.testing.assert_close(
            acts[f"blocks.{i}.hook_resid_post"], hs[i + 1], rtol=0, atol=1e-6
        )
    # the last hidden state is after the final norm (Llama and GPT-2 alike)
    torch.testing.assert_close(acts["ln_final.hook_normalized"], hs[-1], rtol=0, atol=1e-6)
    final_norm = model.get_submodule(
        {"llama": "model.norm", "qwen2": "model.norm", "gpt2": "transformer.ln_f"}.get(
            kind, "gpt_neox.final_layer_norm"
        )
    )
    with torch.no_grad():
        normed = final_norm(acts[f"blocks.{N_LAYERS - 1}.hook_resid_post"])
    torch.testing.assert_close(normed, hs[-1], rtol=0, atol=1e-6)
    assert not torch.allclose(acts[f"blocks.{N_LAYERS - 1}.hook_resid_post"], hs[-1], atol=1e-3)


def test_blocks_add_attention_and_mlp_outputs(hf):
    kind, model, _, acts = hf
    blocks = model.get_submodule(BLOCKS[kind])
    for i in range(N_LAYERS):
        a = {n: acts[f"blocks.{i}.{n}"] for n in TL_NAMES}
        with torch.no_grad():  # mlp_out is the block's MLP applied to its second norm's output
            mlp = blocks[i].mlp(acts[f"blocks.{i}.ln2.hook_normalized"])
        torch.testing.assert_close(a["hook_mlp_out"], mlp, rtol=0, atol=1e-6)
        total = a["hook_resid_pre"] + a["hook_attn_out"] + a["hook_mlp_out"]
        torch.testing.assert_close(total, a["hook_resid_post"], rtol=1e-5, atol=1e-5)
        assert a["hook_attn_out"].abs().max() > 1e-3 and a["hook_mlp_out"].abs().max() > 1e-3
        if f"blocks.{i}.hook_resid_mid" in acts:
            mid = a["hook_resid_pre"] + a["hook_attn_out"]
            torch.testing.assert_close(acts[f"blocks.{i}.hook_resid_mid"], mid, rtol=0, atol=1e-6)
        if i + 1 < N_LAYERS:
            assert torch.equal(a["hook_resid_post"], acts[f"blocks.{i + 1}.hook_resid_pre"])
    assert ("blocks.0.hook_resid_mid" in acts) == (kind != "gpt_neox")  # NeoX: parallel residual


def test_embedding_is_the_embedding_matrix_at_the_tokens(hf):
    kind, model, _, acts = hf
    W_E = model.get_input_embeddings().weight.detach()
    assert torch.equal(acts["hook_embed"], W_E[torch.as_tensor(TOKENS)])
    start = acts["hook_embed"]
    if kind == "gpt2":  # learned positions, broadcast over the batch
        W_pos = model.transformer.wpe.weight.detach()
        assert torch.equal(acts["hook_pos_embed"], W_pos[: TOKENS.shape[1]].expand(5, -1, -1))
        start = start + acts["hook_pos_embed"]
    torch.testing.assert_close(acts["blocks.0.hook_resid_pre"], start, rtol=0, atol=1e-6)


def test_batches_give_the_same_activations(hf):
    _, model, names, acts = hf
    # a different split only changes how the BLAS blocks the products: equal to float32 rounding
    for batch_size in (1, 2):
        again = collect_activations(model, TOKENS, names, batch_size=batch_size)
        assert list(again) == names
        for n in names:
            torch.testing.assert_close(again[n], acts[n], rtol=0, atol=1e-6)


def test_module_paths_work_beside_the_tl_names(hf):
    kind, model, _, acts = hf
    block = {"gpt2": "transformer.h.1", "gpt_neox": "gpt_neox.layers.1"}.get(kind, "model.layers.1")
    got = collect_activations(model, TOKENS, [block, "lm_head"], batch_size=2)
    assert torch.equal(got[block], acts["blocks.1.hook_resid_post"])
    with torch.no_grad():
        logits = model(input_ids=torch.as_tensor(TOKENS)).logits
    torch.testing.assert_close(got["lm_head"], logits, rtol=0, atol=1e-5)


# -- hooks, modes and errors ---------------------------------------------------------------------


def test_hooks_are_removed_after_success_and_after_an_error():
    model = _hf_model("llama").train()
    before = _hook_count(model)
    names = ["blocks.0.hook_resid_pre", "blocks.1.hook_mlp_out", "model.layers.1.mlp.act_fn"]
    collect_activations(model, TOKENS, names, batch_size=2)
    assert _hook_count(model) == before
    assert all(m.training for m in model.modules())  # modes restored

    def boom(*_):
        raise RuntimeError("boom")

    handle = model.model.layers[1].mlp.register_forward_hook(boom)
    with pytest.raises(RuntimeError, match="boom"):
        collect_activations(model, TOKENS, names, batch_size=2)
    assert _hook_count(model) == before + 1
    handle.remove()
    assert _hook_count(model) == before and all(m.training for m in model.modules())


def test_unknown_names_list_the_valid_ones():
    model = _hf_model("gpt2")
    with pytest.raises(PiamiValueError) as info:
        collect_activations(model, TOKENS, ["blocks.7.hook_resid_post"])
    msg = str(info.value)
    assert "blocks.1.hook_resid_post" in msg and "transformer.h.1.mlp" in msg
    folded = summarize_names(activation_names(model), limit=40)  # long lists fold layer indices
    assert "blocks.{0..1}.hook_resid_post" in folded and "transformer.h.{0..1}.mlp" in folded
    assert "Did you mean" in msg and isinstance(info.value, PiamiKeyError)
    gemma_cfg = transformers.GemmaConfig(
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=1, head_dim=8, intermediate_size=64,
    )  # fmt: skip
    with torch.random.fork_rng():
        gemma = transformers.GemmaForCausalLM(gemma_cfg)  # a type with no TransformerLens map
    with pytest.raises(PiamiValueError, match="not 'gemma'"):
        collect_activations(gemma, TOKENS, ["blocks.0.hook_resid_post"])
    got = collect_activations(gemma, TOKENS, ["model.layers.0"], batch_size=2)
    assert got["model.layers.0"].shape == (5, 7, D)
    seq = nn.Sequential(nn.Embedding(VOCAB, 4), nn.Linear(4, 3))
    with pytest.raises(PiamiError, match=r"valid names \(2\): 0, 1"):
        collect_activations(seq, TOKENS, ["2"])


@pytest.mark.parametrize(
    ("tokens", "names", "kwargs"),
    [
        (TOKENS.astype(float), ["hook_embed"], {}),  # not integers
        (TOKENS[0], ["hook_embed"], {}),  # one sequence without a batch axis
        (TOKENS[:, :0], ["hook_embed"], {}),  # empty
        (-TOKENS - 1, ["hook_embed"], {}),  # negative ids
        (TOKENS + VOCAB, ["hook_embed"], {}),  # past the vocabulary
        (TOKENS, [], {}),  # no names
        (TOKENS, [3], {}),  # not a name
        (TOKENS, ["hook_embed"], {"batch_size": 0}),
        (TOKENS, ["hook_embed"], {"batch_size": 1.5}),
        (TOKENS, ["hook_embed"], {"device": "tpu9"}),
        (TOKENS, ["hook_embed"], {"device": "meta"}),  # would strip the weights on the way back
    ],
)
def test_bad_input_is_a_piami_error(tokens, names, kwargs):
    with pytest.raises(PiamiError):
        collect_activations(_hf_model("llama"), tokens, names, **kwargs)


def test_a_result_too_large_for_memory_asks_for_a_folder(monkeypatch, tmp_path):
    import piami.models.activations as activations

    model = _hf_model("llama")
    monkeypatch.setattr(activations, "available_memory", lambda: 1000)
    with pytest.raises(PiamiValueError, match="out=FOLDER"):
        collect_activations(model, TOKENS, ["hook_embed"], batch_size=1)
    store = collect_activations(model, TOKENS, ["hook_embed"], batch_size=1, out=tmp_path / "a")
    assert store.shape("hook_embed") == (5, 7, D)


# -- streaming to disk ---------------------------------------------------------------------------


def test_streamed_store_equals_the_in_memory_result(tmp_path):
    model = _hf_model("llama")
    names = ["blocks.0.hook_resid_post", "ln_final.hook_normalized", "model.layers.1.mlp"]
    ref = collect_activations(model, TOKENS, names)
    store = collect_activations(model, TOKENS, names, batch_size=2, out=tmp_path / "acts")
    assert isinstance(store, ActivationStore) and list(store) == names and store.n_rows == 5
    files = sorted(p.name for p in (tmp_path / "acts").iterdir())
    assert files == ["index.json"] + [f"shard-0000{i}.safetensors" for i in range(math.ceil(5 / 2))]
    reopened = ActivationStore(tmp_path / "acts")
    for n in names:
        assert store.shape(n) == tuple(ref[n].shape)
        torch.testing.assert_close(store[n], ref[n], rtol=0, atol=1e-6)
        assert torch.equal(reopened.rows(n, 1, 4), store[n][1:4])
        assert torch.equal(torch.cat(list(reopened.batches(n))), store[n])
    with pytest.raises(PiamiKeyError):
        store["blocks.1.hook_resid_post"]
    with pytest.raises(PiamiFileError, match="not empty"):
        collect_activations(model, TOKENS, names, out=tmp_path / "acts")


def test_a_failed_collection_leaves_nothing_on_disk(tmp_path):
    model = _hf_model("llama")
    calls = []

    def fail_on_third_batch(*_):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk test")

    handle = model.model.layers[0].register_forward_hook(fail_on_third_batch)
    for out in (tmp_path / "new", tmp_path):  # a folder it creates, and one that was there
        calls.clear()
        with pytest.raises(RuntimeError, match="disk test"):
            collect_activations(model, TOKENS, ["hook_embed"], batch_size=2, out=out)
        assert len(calls) == 3
    handle.remove()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PiamiFileError):
        ActivationStore(tmp_path)


# -- plain modules, piami's Transformer, TransformerLens -------------------------------------------


def test_plain_module_by_module_path():
    torch.set_num_threads(1)
    net = nn.Sequential(nn.Embedding(VOCAB, 6), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    acts = collect_activations(net, TOKENS, ["1", "2", "3"], batch_size=3)
    with torch.no_grad():
        emb = net[0].weight[torch.as_tensor(TOKENS)]
        pre = emb @ net[1].weight.T + net[1].bias
    torch.testing.assert_close(acts["1"], pre, rtol=0, atol=1e-6)
    assert torch.equal(acts["2"], acts["1"].clamp(min=0))
    torch.testing.assert_close(acts["3"], net(torch.as_tensor(TOKENS)).detach(), rtol=0, atol=1e-6)
    assert _hook_count(net) == 0 and activation_names(net) == ["0", "1", "2", "3"]
    shared = nn.Linear(3, 3)
    twice = nn.Sequential(nn.Embedding(VOCAB, 3), shared, shared)
    with pytest.raises(PiamiValueError, match="ran 2 times"):
        collect_activations(twice, TOKENS, ["1"])
    assert _hook_count(twice) == 0


def test_piami_transformer_is_unchanged():
    cfg = TransformerConfig(n_layers=2, d_model=8, d_head=4, d_mlp=8, n_ctx=7, d_vocab=VOCAB)
    model = Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")
    names = ["blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern", "ln_final.hook_normalized"]
    acts = collect_activations(model, TOKENS, names, batch_size=2)
    _, cache = model.run_with_cache(torch.as_tensor(TOKENS), names_filter=names)
    for n in names:
        assert torch.equal(acts[n], cache[n])
    layers, _ = residual_stream(model, TOKENS, batch_size=3)
    assert np.array_equal(layers[-1], acts[names[0]].numpy().reshape(-1, 8))
    by_path = collect_activations(model, TOKENS, ["blocks.0.attn", "blocks.0.hook_attn_out"])
    assert torch.equal(by_path["blocks.0.attn"], by_path["blocks.0.hook_attn_out"])
    assert activation_names(model)[:2] == ["hook_embed", "hook_pos_embed"]


class FakeHookedRoot(nn.Module):
    """The part of TransformerLens's HookedRootModule the collector uses: hook_dict and
    run_with_cache(names_filter=...); the cache holds what the named hook points saw."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 4)
        self.proj = nn.Linear(4, 4)
        self.hook_dict = {"hook_embed": self.embed, "blocks.0.hook_resid_post": self.proj}
        self.filters: list = []

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(tokens))

    def run_with_cache(self, tokens: torch.Tensor, names_filter=None):
        self.filters.append(names_filter)
        cache = {}
        handles = [
            m.register_forward_hook(lambda _m, _i, o, n=n: cache.__setitem__(n, o))
            for n, m in self.hook_dict.items()
            if names_filter is None or n in names_filter
        ]
        try:
            return self(tokens), cache
        finally:
            for h in handles:
                h.remove()


def test_transformer_lens_models_go_through_run_with_cache():
    model = FakeHookedRoot()
    acts = collect_activations(model, TOKENS, ["blocks.0.hook_resid_post"], batch_size=2)
    assert model.filters == [["blocks.0.hook_resid_post"]] * 3
    with torch.no_grad():
        torch.testing.assert_close(
            acts["blocks.0.hook_resid_post"], model(torch.as_tensor(TOKENS)), rtol=0, atol=1e-6
        )
    with pytest.raises(PiamiValueError, match="hook_embed"):
        collect_activations(model, TOKENS, ["embed"])  # a module path, not a TL hook name


def test_real_transformer_lens_hooked_root_module():
    tl = pytest.importorskip("transformer_lens")
    from transformer_lens.hook_points import HookPoint

    class Tiny(tl.HookedRootModule):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(VOCAB, 4)
            self.hook_embed = HookPoint()
            self.mlp = nn.Linear(4, 4)
            self.hook_out = HookPoint()
            self.setup()

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.hook_out(self.mlp(self.hook_embed(self.embed(tokens))))

    model = Tiny()
    acts = collect_activations(model, TOKENS, ["hook_embed", "hook_out"], batch_size=2)
    with torch.no_grad():
        torch.testing.assert_close(acts["hook_out"], model(torch.as_tensor(TOKENS)))
    assert torch.equal(acts["hook_embed"], model.embed.weight.detach()[torch.as_tensor(TOKENS)])
    with pytest.raises(PiamiValueError, match="hook_out"):
        collect_activations(model, TOKENS, ["mlp"])
