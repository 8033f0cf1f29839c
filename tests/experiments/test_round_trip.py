"""The round-trip experiment: compare() on synthetic measurements (every row passes, each fails in
its own case), the export map inside the LLC's loss against piami.models.export (bit for bit, and
its gradients against piami's), the broken export, the settings; and, slow, the quick run passes
while the broken export fails the prediction rows it is run through."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from piami.errors import PiamiError
from piami.experiments import belief_geometry as bg
from piami.experiments.round_trip import (
    EXPERIMENT,
    Config,
    RoundTripMeasurements,
    compare,
    control_rows,
    figures,
    measure,
    path_rows,
)
from piami.experiments.round_trip.config import QUICK
from piami.experiments.round_trip.export_map import (
    ThroughExport,
    broken_export,
    gpt2_weights,
    q_scale_of,
)
from piami.instruments import causal_lm_loss
from piami.lab.config import apply_overrides
from piami.models import Transformer, TransformerConfig, to_huggingface
from piami.models.export import gpt2_state_dict

transformers = pytest.importorskip("transformers")


def _reading(shift: float) -> dict:
    return {
        "r2": {"a": 0.8 + shift, "b": 0.99 + shift, "all": 0.995 + shift},
        "kl": 0.001 + shift,
        "cka": [[1.0, 0.5 + shift], [0.5 + shift, 1.0]],
        "twonn": {"a": 3.0 + shift, "b": 2.0 + shift},
    }


def synthetic(**changes) -> RoundTripMeasurements:
    """A run that passes every row: float64 twins 1e-9 from float32, HF 5e-10 from piami, the
    broken export 1e-2 off; ``changes`` edit it (dotted paths into the dicts)."""
    m = RoundTripMeasurements(
        names=["a", "b"],
        readings={
            "piami": {"float32": _reading(0.0), "float64": _reading(1e-9)},
            "hf": {"float32": _reading(5e-10), "float64": _reading(1e-9)},
            "broken": {"float32": _reading(1e-2), "float64": _reading(1e-2 + 1e-9)},
        },
        act={
            "piami": {"rounding": 1e-6, "scale": 3.0},
            "hf": {"rounding": 1e-6, "scale": 3.0, "diff": 9e-7, "diff64": 1e-15},
            "broken": {"rounding": 1e-6, "scale": 3.0, "diff": 1.5, "diff64": 1.5},
        },
        llc={
            "piami": {"mean": 8.0, "std": 0.8, "per_chain": [7.0, 8.0, 9.0, 8.0], "batching": "x"},
            "hf": {
                "mean": 8.000001,
                "std": 0.8,
                "per_chain": [7.0, 8.0, 9.0, 8.0],
                "batching": "x",
            },
            "broken": {"mean": 6.0, "std": 0.8, "per_chain": [5.0, 6.0, 7.0, 6.0], "batching": "x"},
        },
        map_error=0.0,
    )
    m = copy.deepcopy(m)
    for path, value in changes.items():
        *keys, last = path.split(".")
        target = m
        for k in keys:
            target = getattr(target, k) if isinstance(target, RoundTripMeasurements) else target[k]
        if isinstance(target, RoundTripMeasurements):
            setattr(target, last, value)
        else:
            target[last] = value
    return m


ROWS = [c.name for c in compare(Config(), synthetic())]
ACT, R2, KL, CKA, TWONN, LLC, C_ACT, C_KL, C_R2, S_MAP, S_64 = ROWS


def test_compare_passes_every_row_of_a_good_run():
    rows = compare(Config(), synthetic())
    assert len(rows) == 11 and all(c.passed is True for c in rows), [c.name for c in rows]
    kinds = [c.kind for c in rows]
    assert kinds == ["prediction"] * 6 + ["control"] * 3 + ["sanity"] * 2
    assert all(c.tolerance_source for c in rows)


def _off(reading: str, value) -> dict:
    """The HF path off by a real difference: at both precisions (not a rounding gap)."""
    return {f"readings.hf.{prec}.{reading}": value for prec in ("float32", "float64")}


FAILING = {
    ACT: {"act.hf.diff": 1e-4},
    R2: _off("r2", {"a": 0.8, "b": 0.99 + 1e-6, "all": 0.995}),
    KL: _off("kl", 0.001 + 1e-7),
    CKA: _off("cka", [[1.0, 0.5 + 1e-7], [0.5 + 1e-7, 1.0]]),
    TWONN: _off("twonn", {"a": 3.0, "b": 2.0 + 1e-6}),
    LLC: {"llc.hf.mean": 9.5},
    C_ACT: {"act.broken.diff": 1e-7},
    C_KL: {"readings.broken.float32.kl": 0.001},
    C_R2: {"readings.broken.float32.r2": _reading(0.0)["r2"]},
    S_MAP: {"map_error": 1e-7},
    S_64: {"act.hf.diff64": 1e-10},
}


@pytest.mark.parametrize("row", list(FAILING))
def test_each_row_fails_in_its_own_case(row):
    rows = {c.name: c for c in compare(Config(), synthetic(**FAILING[row]))}
    failed = [name for name, c in rows.items() if c.passed is False]
    assert failed == [row]


def test_tolerances_are_derived_from_the_measured_rounding():
    m = synthetic()
    rows = {c.name: c for c in compare(Config(), m)}
    assert rows[ACT].tolerance == pytest.approx(2 * (1e-6 + 1e-6))
    assert rows[KL].tolerance == pytest.approx(2 * (5e-10 + 1e-9), rel=1e-6)
    assert rows[LLC].tolerance == pytest.approx(1.959963984540054 * math.sqrt(2) * 0.8 / 2)
    assert rows[C_ACT].predicted == rows[ACT].tolerance


def test_the_broken_path_fails_the_prediction_rows():
    rows = {
        c.name.replace("broken export", "HF"): c for c in path_rows(Config(), synthetic(), "broken")
    }
    assert [n for n, c in rows.items() if c.passed is False] == [ACT, R2, KL, CKA, TWONN, LLC]
    assert all(c.passed for c in control_rows(Config(), synthetic()))


# -- the export map ------------------------------------------------------------------------------


def _model(**fields) -> Transformer:
    cfg = TransformerConfig(
        **{"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 4, "d_mlp": 8, "n_ctx": 6} | fields
    )
    model = Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")
    with torch.no_grad():  # biases and gains away from their initial values, as after training
        g = torch.Generator().manual_seed(1)
        for name, p in model.named_parameters():
            if not name.rsplit(".", 1)[-1].startswith("W_"):
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model


def test_export_map_reproduces_gpt2_state_dict_bit_for_bit():
    model = _model()
    ref = gpt2_state_dict(model)
    with torch.no_grad():
        mine = gpt2_weights(
            dict(model.named_parameters()), model.cfg, q_scale=q_scale_of(model.cfg)
        )
    assert sorted(mine) == sorted(ref)
    assert all(torch.equal(mine[k], ref[k]) for k in ref)
    assert q_scale_of(model.cfg) == math.sqrt(8 / 4)
    with torch.no_grad():
        broken = gpt2_weights(dict(model.named_parameters()), model.cfg, q_scale=1.0)
    differ = [k for k in ref if not torch.equal(broken[k], ref[k])]
    assert differ == [
        f"transformer.h.{i}.attn.c_attn.{w}" for i in range(2) for w in ("weight", "bias")
    ]


def test_through_export_has_piamis_parameters_logits_and_gradients():
    model = _model(init_std=0.3)
    wrapped = ThroughExport(
        model, to_huggingface(copy.deepcopy(model)), q_scale=q_scale_of(model.cfg)
    )
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable == [f"piami.{n}" for n, _ in model.named_parameters()]
    tokens = torch.randint(0, model.cfg.d_vocab, (5, 7), generator=torch.Generator().manual_seed(2))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    assert (wrapped(inputs) - model(inputs)).abs().max() < 1e-5
    causal_lm_loss(wrapped(inputs), targets).backward()  # the same parameters: gradients add up
    via_hf = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    causal_lm_loss(model(inputs), targets).backward()
    for n, p in model.named_parameters():
        assert torch.allclose(via_hf[n], p.grad, atol=1e-6, rtol=1e-4), n


def test_broken_export_differs_only_by_the_query_scale():
    model = _model(init_std=0.5)
    exact, broken = to_huggingface(model), broken_export(model)
    tokens = torch.randint(0, model.cfg.d_vocab, (4, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (exact(tokens).logits - model(tokens)).abs().max() < 1e-5
        assert (broken(tokens).logits - model(tokens)).abs().max() > 1e-3
        s, w = q_scale_of(model.cfg), model.cfg.d_model  # undo the missing scale: exact again
        for block in broken.transformer.h:
            block.attn.c_attn.weight[:, :w] *= s
            block.attn.c_attn.bias[:w] *= s
        assert (broken(tokens).logits - model(tokens)).abs().max() < 1e-5


# -- settings ------------------------------------------------------------------------------------


def test_quick_variant_is_belief_geometrys_quick_network():
    cfg = EXPERIMENT.make_config(quick=True)
    bq = bg.EXPERIMENT.make_config(quick=True)
    assert all(getattr(cfg, k) == getattr(bq, k) for k in bg.EXPERIMENT.quick)
    assert cfg.belief_config() == dataclasses.replace(bq, device=cfg.device)
    assert Config().belief_config() == dataclasses.replace(bg.Config(), device="auto")
    assert set(QUICK) <= {f.name for f in dataclasses.fields(Config)}


@pytest.mark.parametrize(
    "field, value",
    [
        ("llc_chains", 1),
        ("llc_draws", 2),
        ("llc_burnin", -1),
        ("llc_step_size", 0.0),
        ("llc_gamma", float("nan")),
        ("geometry_rows", 5),
        ("llc_seqs", True),
        ("n_layers", 0),
        ("n_probe_seqs", 10),
    ],
)
def test_bad_settings_raise(field, value):
    with pytest.raises(PiamiError):
        apply_overrides(Config(), {field: value})


# -- the run -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quick_run_passes_and_the_broken_export_fails_the_same_rows():
    cfg = EXPERIMENT.make_config(quick=True)
    m = measure(cfg, progress=False)
    rows = compare(cfg, m)
    assert all(c.passed is True for c in rows), [
        (c.name, c.measured, c.tolerance) for c in rows if not c.passed
    ]
    broken = {c.name: c for c in path_rows(cfg, m, "broken")}
    failed = {name for name, c in broken.items() if c.passed is False}
    assert {ACT, R2, KL}.issubset({n.replace("broken export", "HF") for n in failed}), failed
    # the piami path reads what belief-geometry reads on the same sequences and network
    assert (
        m.readings["piami"]["float32"]["r2"]["blocks.0.hook_resid_pre"]
        < 0.9
        < m.readings["piami"]["float32"]["r2"]["all"]
    )
    assert m.llc["hf"]["n_params"] == m.llc["piami"]["n_params"] < m.llc["hf_native"]["n_params"]
    assert np.isfinite(m.llc["hf_native"]["mean"])
    assert [f.name for f in figures(cfg, m)] == ["round_trip"]
