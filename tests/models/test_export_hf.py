"""Export of piami Transformers to Hugging Face GPT-2: same logits, same residual stream.

Every check compares the exported ``transformers`` model with piami's own forward pass (an
independent computation: different code, different parameterization). float32 agreement is asked
within 1e-5 absolute on logits (rounding of a few thousand float32 operations on O(1) values);
float64 agreement within 1e-10 shows that the mapping itself is exact, not just close.
"""

from __future__ import annotations

import doctest
import json
import math

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from piami.errors import PiamiError, PiamiFileError, PiamiTypeError, PiamiValueError  # noqa: E402
from piami.models import Transformer, TransformerConfig  # noqa: E402
from piami.models import export as export_mod  # noqa: E402
from piami.models.export import (  # noqa: E402
    HF_ACTIVATION,
    fold_unembed_bias,
    gpt2_config,
    hf_head_dim,
    save_huggingface,
    to_huggingface,
)
from piami.train import load_checkpoint, save_checkpoint  # noqa: E402

torch.set_num_threads(1)

SHAPES = {  # name -> TransformerConfig fields
    "mess3-flagship": dict(d_model=64, n_heads=1, d_head=8, d_mlp=32, act_fn="gelu"),
    "full-width": dict(d_model=16, n_heads=2, d_head=8, d_mlp=24, act_fn="relu"),
    "multi-head-padded": dict(d_model=12, n_heads=3, d_head=2, d_mlp=7, act_fn="silu"),
    "attention-only": dict(d_model=16, n_heads=2, d_head=4, d_mlp=0, act_fn="gelu"),
}
N_CTX, D_VOCAB, N_LAYERS = 6, 5, 2
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _model(seed: int = 0, dtype: str = "float32", b_U: bool = True, **fields) -> Transformer:
    """A random Transformer whose biases, LayerNorm gains and b_U are all nonzero."""
    base = dict(n_layers=N_LAYERS, n_ctx=N_CTX, d_vocab=D_VOCAB, init_std=0.2)
    cfg = TransformerConfig(**{**base, **fields})
    g = torch.Generator().manual_seed(seed)
    model = Transformer(cfg, generator=g, device="cpu", dtype=dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.rsplit(".", 1)[-1].startswith("W_"):
                p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))
        if not b_U:
            model.b_U.zero_()
    return model.eval()


def _tokens(seed: int = 1, n: int = 4, pos: int = N_CTX) -> torch.Tensor:
    return torch.randint(0, D_VOCAB, (n, pos), generator=torch.Generator().manual_seed(seed))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_logits_and_residual_stream_match(shape: str, dtype: str) -> None:
    model = _model(dtype=dtype, **SHAPES[shape])
    hf = to_huggingface(model)
    assert isinstance(hf, transformers.GPT2LMHeadModel) and hf.dtype == model.W_E.dtype
    tol = TOL[model.W_E.dtype]
    tokens = _tokens()
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
        out = hf(tokens, output_hidden_states=True)
    assert logits.abs().max() > 0.5  # not a vacuous comparison of near-zero logits
    assert _max_diff(out.logits, logits) <= tol
    assert len(out.hidden_states) == N_LAYERS + 1
    for i in range(N_LAYERS):
        resid = cache[f"blocks.{i}.hook_resid_pre"]
        assert _max_diff(out.hidden_states[i], resid) <= tol * (1 + float(resid.abs().max()))
    # the last hidden state is ln_f's output: piami's normalized stream plus the folded b_U shift
    delta = hf.transformer.ln_f.bias.detach() - model.ln_final.b.detach()
    assert _max_diff(delta.double() @ model.W_U.detach().double(), model.b_U.detach()) <= tol
    assert _max_diff(out.hidden_states[-1], cache["ln_final.hook_normalized"] + delta) <= tol
    # shorter prompts: the causal mask and position embeddings line up at every length
    with torch.no_grad():
        short = tokens[:, :3]
        assert _max_diff(hf(short).logits, model(short)) <= tol


def test_gpt2_config_and_head_width() -> None:
    model = _model(**SHAPES["attention-only"])
    assert hf_head_dim(model) == 8  # d_model / n_heads = 16 / 2, padded from d_head = 4
    config = gpt2_config(model)
    assert (config.n_embd, config.n_head, config.n_layer) == (16, 2, N_LAYERS)
    assert (config.n_positions, config.vocab_size, config.n_inner) == (N_CTX, D_VOCAB, 1)
    assert config.layer_norm_epsilon == model.ln_final.eps
    assert config.activation_function == "gelu" and config.tie_word_embeddings is False


def test_fold_unembed_bias_solves_the_linear_system() -> None:
    g = torch.Generator().manual_seed(3)
    shapes = [(6, 4), (4,), (6,)]
    W_U, b_U, beta = (torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes)
    folded = fold_unembed_bias(W_U, b_U, beta, dtype=torch.float64)
    assert _max_diff(folded @ W_U, beta @ W_U + b_U) <= 1e-12
    assert torch.equal(fold_unembed_bias(W_U, 0 * b_U, beta, dtype=torch.float64), beta)
    with pytest.raises(PiamiValueError, match="rank 3"):  # rank-deficient W_U: no solution
        fold_unembed_bias(W_U[:, [0, 1, 2, 2]], b_U, beta, dtype=torch.float64)


def test_ln_final_equals_hf_last_hidden_state_without_unembed_bias() -> None:
    model = _model(b_U=False, **SHAPES["mess3-flagship"])
    hf = to_huggingface(model)
    tokens = _tokens()
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        out = hf(tokens, output_hidden_states=True)
    assert torch.equal(hf.transformer.ln_f.bias, model.ln_final.b)
    assert _max_diff(out.hidden_states[-1], cache["ln_final.hook_normalized"]) <= 1e-5


def test_query_scale_matters() -> None:
    """GPT-2 divides by sqrt(d_model / n_heads), not sqrt(d_head): without W_Q's scale, wrong."""
    fields = SHAPES["mess3-flagship"]
    model = _model(init_std=0.5, dtype="float64", **fields)  # scores large enough to show it
    hf = to_huggingface(model)
    tokens = _tokens()
    with torch.no_grad():
        good = _max_diff(hf(tokens).logits, model(tokens))
        s = math.sqrt((fields["d_model"] // fields["n_heads"]) / fields["d_head"])
        for block in hf.transformer.h:  # undo the scale: the first third of c_attn is Q
            block.attn.c_attn.weight[:, : fields["d_model"]] /= s
            block.attn.c_attn.bias[: fields["d_model"]] /= s
        broken = _max_diff(hf(tokens).logits, model(tokens))
    assert good <= 1e-10
    assert broken > 1e-3


def test_unembed_bias_fold_matters_and_embeddings_are_untied() -> None:
    model = _model(**SHAPES["full-width"])
    hf = to_huggingface(model)
    assert hf.config.tie_word_embeddings is False
    assert hf.lm_head.weight.data_ptr() != hf.transformer.wte.weight.data_ptr()
    tokens = _tokens()
    with torch.no_grad():
        logits = model(tokens)
        hf.transformer.ln_f.bias.copy_(model.ln_final.b)  # no fold: logits lose exactly b_U
        assert _max_diff(hf(tokens).logits, logits - model.b_U) <= 1e-5
        assert float(model.b_U.abs().max()) > 1e-2
        hf.lm_head.weight = hf.transformer.wte.weight  # GPT-2's default tying: wrong logits
        assert _max_diff(hf(tokens).logits, logits) > 1e-2


@pytest.mark.parametrize("act", sorted(HF_ACTIVATION))
def test_activation_map_is_exact(act: str) -> None:
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    piami = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu}[act]
    hf_act = transformers.activations.ACT2FN[HF_ACTIVATION[act]]
    assert torch.equal(hf_act(x), piami(x))
    assert float(hf_act(torch.zeros(3, dtype=torch.float64)).abs().max()) == 0.0  # zero MLP
    if act == "gelu":  # GPT-2's own tanh GELU would be a different function
        assert _max_diff(transformers.activations.ACT2FN["gelu_new"](x), piami(x)) > 1e-5


def test_attention_only_blocks_get_a_zero_mlp() -> None:
    model = _model(**SHAPES["attention-only"])
    hf = to_huggingface(model)
    for block in hf.transformer.h:
        for p in block.mlp.parameters():
            assert p.numel() > 0 and not torch.any(p)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_reload_through_auto_model(tmp_path, dtype: str) -> None:
    model = _model(dtype=dtype, **SHAPES["mess3-flagship"])
    out = save_huggingface(model, tmp_path / "hf")
    assert {"config.json", "model.safetensors", "piami_export.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_positions"] == N_CTX
    assert config["tie_word_embeddings"] is False
    info = json.loads((out / "piami_export.json").read_text())
    assert TransformerConfig.from_dict(info["model_config"]) == model.cfg
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert isinstance(reloaded, transformers.GPT2LMHeadModel)
    tokens = _tokens()
    with torch.no_grad():
        assert _max_diff(reloaded(tokens).logits, model(tokens)) <= TOL[model.W_E.dtype]


def test_save_is_all_or_nothing(tmp_path, monkeypatch) -> None:
    model = _model(**SHAPES["full-width"])
    target = tmp_path / "hf"
    save_huggingface(model, target)
    with pytest.raises(PiamiFileError, match="overwrite=True"):
        save_huggingface(model, target)
    other = _model(seed=5, **SHAPES["full-width"])
    save_huggingface(other, target, overwrite=True)
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(target)
    with torch.no_grad():
        assert _max_diff(reloaded(_tokens()).logits, other(_tokens())) <= 1e-5

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.GPT2LMHeadModel, "save_pretrained", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_huggingface(model, tmp_path / "new")
    with pytest.raises(RuntimeError, match="disk full"):
        save_huggingface(model, target, overwrite=True)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # old folder kept, no temporaries
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(target)
    with torch.no_grad():
        assert _max_diff(reloaded(_tokens()).logits, other(_tokens())) <= 1e-5


def test_checkpoint_to_huggingface_round_trip(tmp_path) -> None:
    model = _model(**SHAPES["mess3-flagship"])
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "step_00000000"))
    hf = to_huggingface(loaded, tmp_path / "hf")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    tokens = _tokens()
    with torch.no_grad():
        assert _max_diff(hf(tokens).logits, model(tokens)) <= 1e-5
        assert _max_diff(reloaded(tokens).logits, model(tokens)) <= 1e-5


def test_collect_activations_on_export_matches_native_hooks() -> None:
    from piami.models import collect_activations, foreign

    if not hasattr(foreign, "hf_hook_sites"):
        pytest.skip("collect_activations does not map TransformerLens names on HF models yet")
    model = _model(**SHAPES["multi-head-padded"])
    hf = to_huggingface(model)
    tokens = _tokens(n=6)
    names = [f"blocks.{i}.hook_resid_post" for i in range(N_LAYERS)]
    got = collect_activations(hf, tokens, names, device="cpu")
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    for name in names:
        assert got[name].shape == cache[name].shape
        assert _max_diff(got[name], cache[name]) <= 1e-5 * (1 + float(cache[name].abs().max()))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(d_model=8, n_heads=2, d_head=8), "d_head=8"),  # heads wider than d_model / n_heads
        (dict(d_model=10, n_heads=3, d_head=3), "divisible"),
        (dict(d_model=8, n_heads=1, d_head=8, normalization="none"), "normalization"),
        (dict(d_model=4, n_heads=1, d_head=4, d_vocab=7), "b_U"),  # d_vocab > d_model
    ],
)
def test_unexportable_models_raise(fields: dict, match: str) -> None:
    model = _model(**fields)
    with pytest.raises(PiamiValueError, match=match):
        to_huggingface(model)


def test_large_vocab_exports_when_unembed_bias_is_zero() -> None:
    model = _model(b_U=False, d_model=4, n_heads=1, d_head=4, d_vocab=7)
    hf = to_huggingface(model)
    tokens = torch.randint(0, 7, (3, N_CTX), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert _max_diff(hf(tokens).logits, model(tokens)) <= 1e-5


def test_not_a_transformer_raises() -> None:
    with pytest.raises(PiamiTypeError, match="piami Transformer"):
        to_huggingface(torch.nn.Linear(2, 2))
    assert issubclass(PiamiTypeError, PiamiError)


def test_module_docstring_example_runs() -> None:
    result = doctest.testmod(export_mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
