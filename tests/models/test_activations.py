"""Activations by hook name: the same numbers as run_with_cache, in any batch size."""

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.models import Transformer, TransformerConfig, collect_activations, residual_stream


@pytest.fixture(scope="module")
def model():
    cfg = TransformerConfig(n_layers=2, d_model=8, d_head=4, d_mlp=8, n_ctx=5, d_vocab=3)
    return Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")


def test_batches_give_the_same_activations_as_one_pass(model):
    tokens = np.random.default_rng(0).integers(0, 3, size=(7, 5))
    names = ["blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern"]
    one = collect_activations(model, tokens, names, batch_size=7)
    many = collect_activations(model, tokens, names, batch_size=2)
    for n in names:
        assert torch.equal(one[n], many[n])
    _, cache = model.run_with_cache(torch.as_tensor(tokens), names_filter=names)
    assert torch.equal(one[names[0]], cache[names[0]])
    layers, logits = residual_stream(model, tokens, batch_size=3)
    assert len(layers) == 3 and layers[0].shape == (35, 8) and logits.shape == (7, 5, 3)
    assert np.allclose(layers[-1], one[names[0]].numpy().reshape(-1, 8))


def test_unknown_names_list_the_valid_ones(model):
    with pytest.raises(PiamiError, match=r"blocks\.0\.hook_resid_pre"):
        collect_activations(model, np.zeros((1, 5), int), ["blocks.9.hook_resid_post"])
    with pytest.raises(PiamiError):
        collect_activations(model, np.zeros((1, 5), int), [], batch_size=0)
