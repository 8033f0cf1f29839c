"""Block LLC of pretrained-lm: the block's tail against the full Hugging Face model (and broken
tails that must differ), its gradient signal-to-noise against gradients of the full model, the
estimate's result on a tiny Llama, and the rows on synthetic results (each fails in its case)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from piami.errors import PiamiTypeError, PiamiValueError
from piami.experiments.pretrained_lm import block_llc as bl
from piami.experiments.pretrained_lm.block_llc import (
    GEWEKE_MAX,
    RHAT_MAX,
    SNR_MIN,
    block_llc,
    block_llc_rows,
    block_tail,
    gradient_snr,
)
from piami.models import collect_activations

pretrained = pytest.importorskip("piami.models.pretrained")
pytest.importorskip("transformers")

V, L, T = 40, 3, 12


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A tiny Llama with weights of unit-scale signal (std 1/sqrt(fan_in)), so that positions and
    the mask change the logits visibly (Hugging Face's std 0.02 leaves attention near-uniform)."""
    torch.set_num_threads(1)
    m = pretrained.tiny_llama(vocab_size=V, seed=0, n_layers=L, d_model=32, n_heads=4, d_mlp=64)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            else:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
    return m


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    return np.random.default_rng(0).integers(0, V, (6, T + 1))


def _resid(m: torch.nn.Module, x: np.ndarray, block: int) -> torch.Tensor:
    name = f"blocks.{block % L}.hook_resid_pre"
    return collect_activations(m, x, [name], device="cpu")[name]


# float32 rounding: every op rounds at ~6e-8 relative; the tail computes the same sums in another
# order over ~L blocks of O(1) activations, so differences stay below 1e-5; a wrong position or a
# missing mask changes logits of O(1) by far more than 1e-3 (checked below).
ATOL = 1e-5


@pytest.mark.parametrize("block", [0, -1, 1])
def test_tail_matches_full_model(model, ids, block):
    x = ids[:, :-1]
    with torch.no_grad():
        full = model(torch.as_tensor(x)).logits
        tail = block_tail(model, block)(_resid(model, x, block))
        last = block_tail(model, block, score_len=4)(_resid(model, x, block))
    assert tail.shape == full.shape
    torch.testing.assert_close(tail, full, atol=ATOL, rtol=0)
    torch.testing.assert_close(last, full[:, -4:], atol=ATOL, rtol=0)
    assert float(full.std()) > 0.3  # logits of O(1): the tolerance is a small share of them


def _arange(a: int, b: int, device: torch.device) -> torch.Tensor:
    return torch.arange(a, b, device=device)


@pytest.mark.parametrize("block", [0, -1])
@pytest.mark.parametrize(
    "broken",
    [
        ("_positions", lambda T, q, dev: (_arange(q + 1, T + 1, dev), _arange(0, T, dev))),
        ("_positions", lambda T, q, dev: (_arange(0, T - q, dev), _arange(0, T, dev))),
        ("_attend_mask", lambda T, q, dev: torch.ones(T - q, T, dtype=torch.bool)),
    ],
    ids=["queries one position late", "scored queries from position 0", "no causal mask"],
)
def test_broken_tail_differs(model, ids, block, broken, monkeypatch):
    x = ids[:, :-1]
    monkeypatch.setattr(bl, broken[0], broken[1])
    with torch.no_grad():
        full = model(torch.as_tensor(x)).logits[:, -4:]
        tail = block_tail(model, block, score_len=4)(_resid(model, x, block))
    assert float((tail - full).abs().max()) > 1e-3


def test_rotary_attention_sees_relative_positions_only(model, ids, monkeypatch):
    """Shifting queries and keys alike changes nothing (rotary scores depend on j - i only): the
    reason a uniform offset cannot be caught, and a check that the tail's attention is rotary."""
    monkeypatch.setattr(
        bl, "_positions", lambda T, q, dev: (_arange(q + 5, T + 5, dev), _arange(5, T + 5, dev))
    )
    x = ids[:, :-1]
    with torch.no_grad():
        full = model(torch.as_tensor(x)).logits
        tail = block_tail(model, 0)(_resid(model, x, 0))
    torch.testing.assert_close(tail, full, atol=1e-4, rtol=0)


def test_only_the_block_is_trainable(model):
    tail = block_tail(model, -2)
    free = {k for k, p in tail.named_parameters() if p.requires_grad}
    assert free and all(k.startswith("layers.0.") for k in free)
    d = sum(p.numel() for k, p in tail.named_parameters() if p.requires_grad)
    assert d == sum(p.numel() for p in model.model.layers[L - 2].parameters())
    assert all(p.requires_grad for p in model.parameters())  # the model itself is untouched
    assert len(tail.layers) == 2


@pytest.mark.parametrize("block", [L, -L - 1, 1.0, True])
def test_block_out_of_range(model, block):
    with pytest.raises(PiamiValueError, match="block"):
        block_tail(model, block)


def test_not_a_llama():
    with pytest.raises(PiamiTypeError, match="Llama"):
        block_tail(torch.nn.Linear(2, 2), 0)


def test_gradient_snr_matches_full_model_gradients(model, ids):
    k, block = 5, -1
    x, y = torch.as_tensor(ids[:, :-1]), torch.as_tensor(ids[:, 1:])
    got = gradient_snr(
        block_tail(model, block, score_len=k), _resid(model, ids[:, :-1], block), y[:, -k:]
    )
    params = list(model.model.layers[block].parameters())
    gs = []
    for i in range(len(x)):
        logits = model(x[i : i + 1]).logits[:, -k:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y[i, -k:])
        gs.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]).double())
    G = torch.stack(gs).numpy()
    mean = G.mean(axis=0)
    noise = np.sum(G.var(axis=0, ddof=1)) / len(G)
    assert got["grad_norm"] == pytest.approx(np.linalg.norm(mean), rel=1e-4)
    assert got["grad_snr"] == pytest.approx(mean @ mean / noise, rel=1e-4)


def test_block_llc_on_tiny_llama(model, ids):
    out = block_llc(
        model, ids, block=-1, seed=0, device="cpu", score_len=4, n_burnin=20, n_draws=40
    )
    json.dumps(out)
    assert out["n_params"] == sum(p.numel() for p in model.model.layers[L - 1].parameters())
    assert out["block"] == L - 1 and out["n"] == len(ids) * 4 and out["n_chains"] >= 4
    assert out["n_beta"] == pytest.approx(out["n"] / math.log(out["n"]))
    assert len(out["llc_per_chain"]) == len(out["geweke_z"]) == out["n_chains"]
    for key in ("llc_mean", "llc_std", "r_hat", "reference_loss", "grad_snr", "seconds"):
        assert np.isfinite(out[key]), key
    assert not any(out["diverged"])
    # the reference loss is the mean next-token loss of the last 4 positions of the full model
    with torch.no_grad():
        logits = model(torch.as_tensor(ids[:, :-1])).logits[:, -4:]
    ref = torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), torch.as_tensor(ids[:, -4:]).reshape(-1)
    )
    assert out["reference_loss"] == pytest.approx(float(ref), rel=1e-5)
    assert np.mean(out["llc_per_chain"]) == pytest.approx(out["llc_mean"])


def test_block_llc_bad_settings(model, ids):
    with pytest.raises(PiamiValueError, match="unknown"):
        block_llc(model, ids, seed=0, device="cpu", step=1.0)
    with pytest.raises(PiamiValueError, match="n_chains"):
        block_llc(model, ids, seed=0, device="cpu", n_chains=2)


# -- rows on synthetic results ----------------------------------------------------------------


def _fake(llc: list[float], **kw) -> dict:
    c = len(llc)
    out = {
        "block": 29,
        "llc_mean": float(np.mean(llc)),
        "llc_std": float(np.std(llc, ddof=1)),
        "llc_per_chain": list(llc),
        "r_hat": 1.01,
        "geweke_z": [0.5] * c,
        "converged": [True] * c,
        "diverged": [False] * c,
        "n_params": 1000,
        "n": 192,
        "n_pieces": 24,
        "score_len": 8,
        "n_beta": 36.5,
        "step_size": 1e-5,
        "gamma": 1e4,
        "n_chains": c,
        "n_burnin": 100,
        "n_draws": 200,
        "batch_size": 1,
        "reference_loss": 3.0,
        "loss_burnin_mean": [3.1] * c,
        "loss_draws_mean": [3.2] * c,
        "loss_draws_std": [0.1] * c,
        "grad_snr": 1.2,
        "grad_norm": 0.1,
        "grad_noise": 0.09,
        "seconds": 60.0,
    }
    out.update(kw)
    return out


def _passed(rows) -> list:
    return [r.passed for r in rows]


GOOD = {
    "model": _fake([50.0, 52.0, 49.0, 51.0]),
    "random": _fake([5.0, 6.0, 4.0, 5.5], grad_snr=40.0),
}


def test_rows_pass_on_good_results():
    rows = block_llc_rows(GOOD)
    assert [r.kind for r in rows] == ["sanity", "sanity", "sanity", "prediction", "control"]
    assert _passed(rows) == [True] * 5
    assert "per-chain LLC [50, 52, 49, 51]" in rows[0].note


def test_rows_fail_on_bad_rhat():
    rows = block_llc_rows({**GOOD, "model": {**GOOD["model"], "r_hat": 1.5}})
    assert rows[0].passed is False and RHAT_MAX < 1.5
    assert rows[3].passed is None and "R-hat" in rows[3].not_identified


@pytest.mark.parametrize(
    "change", [{"diverged": [True, False, False, False]}, {"geweke_z": [0.1, GEWEKE_MAX + 1, 0, 0]}]
)
def test_rows_fail_on_a_bad_chain(change):
    rows = block_llc_rows({**GOOD, "model": {**GOOD["model"], **change}})
    assert rows[1].passed is False and rows[1].measured == 1


@pytest.mark.parametrize("llc", [[600.0, 601.0, 602.0, 603.0], [-3.0, -2.0, -4.0, -3.5]])
def test_rows_fail_outside_zero_to_half_d(llc):
    rows = block_llc_rows({**GOOD, "model": _fake(llc)})  # d/2 = 500
    assert rows[2].passed is False


def test_prediction_fails_and_is_not_identified():
    below = block_llc_rows({**GOOD, "random": _fake([80.0, 81.0, 79.0, 80.5], grad_snr=40.0)})
    assert below[3].passed is False
    overlap = block_llc_rows({**GOOD, "random": _fake([30.0, 70.0, 45.0, 55.0], grad_snr=40.0)})
    assert overlap[3].passed is None and "holds 0" in overlap[3].not_identified


def test_control_fails_at_a_minimum():
    rows = block_llc_rows({**GOOD, "random": {**GOOD["random"], "grad_snr": 1.1}})
    assert rows[4].passed is False and SNR_MIN > 1.1
