"""The training loop and checkpoints: schedule, both data regimes, early
stopping, resume, safety."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import DivergenceError, PiamiError, PiamiFileError, PiamiValueError
from piami.models import Transformer, TransformerConfig
from piami.train import (
    TrainConfig,
    checkpoint_steps,
    evaluate,
    list_checkpoints,
    load_checkpoint,
    lr_factor,
    next_token_loss,
    save_checkpoint,
    train,
)

TINY = TransformerConfig(n_layers=1, d_model=16, n_heads=1, d_head=8, d_mlp=32, n_ctx=6, d_vocab=3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make(seed: int = 0) -> Transformer:
    return Transformer(TINY, generator=torch.Generator().manual_seed(seed), device="cpu")


def markov_sampler(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Markov chain on {0,1,2}: stay with prob 0.8, else move to (x+1) mod 3."""
    x = np.empty((n, 7), dtype=np.int64)
    x[:, 0] = rng.integers(0, 3, n)
    for t in range(1, 7):
        x[:, t] = (x[:, t - 1] + (rng.random(n) > 0.8)) % 3
    return x


MARKOV_OPT = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))  # entropy rate, nats (every position)


def cfg(**kw) -> TrainConfig:
    base = {"n_steps": 30, "batch_size": 64, "lr": 1e-2, "device": "cpu", "n_checkpoints": 0}
    return TrainConfig(**(base | kw))


def test_lr_schedule_warmup_and_cosine_closed_form():
    c = TrainConfig(warmup_frac=0.2, min_lr_frac=0.1)
    assert lr_factor(0.1, c) == pytest.approx(0.5)
    assert lr_factor(0.2, c) == pytest.approx(1.0)
    assert lr_factor(0.6, c) == pytest.approx(0.1 + 0.9 * 0.5)  # cosine midpoint
    assert lr_factor(1.0, c) == pytest.approx(0.1)
    assert lr_factor(0.7, TrainConfig(schedule="constant", warmup_frac=0.0)) == 1.0
    steps = checkpoint_steps(10_000, 5)
    assert steps == [0, 1, 10, 100, 1000, 10_000]
    assert checkpoint_steps(10, 0) == []


def test_fresh_samples_reach_the_entropy_rate():
    model = make()
    hist = train(model, markov_sampler, cfg(n_steps=80), optimal_loss=MARKOV_OPT, progress=False)
    held = torch.as_tensor(markov_sampler(4000, np.random.default_rng(9)))
    gap = evaluate(model, held, next_token_loss) - MARKOV_OPT
    assert abs(gap) < 0.03  # Monte Carlo SE of the held-out mean ~0.005
    assert hist.gap is not None and hist.gap[0] > 0.5  # started near log 3
    assert hist.tokens_seen[-1] == 80 * 64 * 6
    assert hist.step == list(range(1, 81)) and len(hist.lr) == 80


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    c = cfg(n_steps=24, n_checkpoints=5)
    a = make()
    ha = train(a, markov_sampler, c, out_dir=tmp_path / "a", progress=False)
    steps = [s for s, _ in list_checkpoints(tmp_path / "a")]
    assert steps == checkpoint_steps(24, 5)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for s, path in list_checkpoints(tmp_path / "b"):
        if s > 5:
            shutil.rmtree(path)  # as if killed after step 5's checkpoint
    b = make(seed=7)  # other initial weights: all state must come from the checkpoint
    hb = train(b, markov_sampler, c, out_dir=tmp_path / "b", progress=False)
    assert ha.loss == hb.loss
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    saved = json.loads((tmp_path / "a" / "history.json").read_text())
    assert saved["loss"] == ha.loss
    with pytest.raises(PiamiValueError, match="another training config"):
        train(make(), markov_sampler, cfg(n_steps=25, n_checkpoints=5), out_dir=tmp_path / "a")


def test_fixed_set_with_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    train_set = markov_sampler(8, rng)  # 8 sequences: the network memorizes them
    held = markov_sampler(1000, rng)
    c = cfg(n_steps=3000, batch_size=4, lr=3e-3, eval_every=5, early_stopping_patience=4)
    model = make()
    hist = train(model, train_set, c, eval_data=held, eval_optimal_loss=0.5, progress=False)
    assert hist.stopped_early and hist.step[-1] < 3000
    assert hist.eval_gap == [e - 0.5 for e in hist.eval_loss]
    assert hist.best_eval_loss == min(hist.eval_loss)
    assert evaluate(model, torch.as_tensor(held), next_token_loss) == pytest.approx(
        hist.best_eval_loss, abs=1e-6
    )
    assert hist.loss[-1] < hist.best_eval_loss  # it was overfitting when stopped


def test_tuple_dataset_full_batch_with_custom_loss():
    """Full-batch classification (modular-addition style) through a custom loss_fn."""
    a, b = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    inputs = np.stack([a.ravel(), b.ravel()], 1)
    targets = (a + b).ravel() % 3

    def loss_fn(model, batch):
        x, y = batch
        return F.cross_entropy(model(x)[:, -1], y)

    hist = train(
        make(),
        (inputs, targets),
        cfg(n_steps=150, batch_size=None, lr=1e-2, weight_decay=0.1),
        loss_fn=loss_fn,
        progress=False,
    )
    assert hist.loss[0] > 1.0 and hist.loss[-1] < 0.05
    assert hist.tokens_seen[-1] == 150 * inputs.size


def test_time_budget_stops_and_divergence_raises():
    hist = train(make(), markov_sampler, cfg(n_steps=10**6, time_budget_s=0.3), progress=False)
    assert hist.stopped_early and hist.step[-1] < 10**6 and hist.stop_reason == "time budget"
    # the budget cuts the run; it never bends the schedule, which depends on the step alone
    c = cfg(n_steps=10**6, time_budget_s=0.3)
    assert hist.lr == [c.lr * lr_factor(s / c.n_steps, c) for s in hist.step]
    with pytest.raises(DivergenceError, match="lr"):
        train(make(), markov_sampler, cfg(), loss_fn=lambda m, b: m(b[:, :-1]).sum() * math.nan)


def test_checkpoint_round_trip_never_unpickles(tmp_path, monkeypatch):
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    next_token_loss(model, torch.as_tensor(markov_sampler(4, np.random.default_rng(0)))).backward()
    opt.step()
    path = save_checkpoint(model, tmp_path / "ck", metadata={"step": 3}, optimizer=opt)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "model.safetensors",
        "optimizer.safetensors",
    ]

    def no_pickle(*a, **k):
        raise AssertionError("unpickled")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr("pickle.loads", no_pickle)
    opt2 = torch.optim.AdamW(make(seed=1).parameters(), lr=5.0)
    loaded, meta = load_checkpoint(path)
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=5.0)
    load_checkpoint(path, model=loaded, optimizer=opt2)
    assert meta == {"step": 3} and loaded.cfg == model.cfg
    for x, y in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 1e-3
    for i in s1["state"]:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s1["state"][i][key], s2["state"][i][key])


def test_checkpoints_refuse_foreign_classes_and_missing_files(tmp_path):
    path = save_checkpoint(make(), tmp_path / "ck")
    info = json.loads((path / "config.json").read_text())
    info["model_class"] = "os:system"
    (path / "config.json").write_text(json.dumps(info))
    with pytest.raises(PiamiValueError, match="piami rebuilds only"):
        load_checkpoint(path)
    load_checkpoint(path, model=make())  # weights alone still load into a model you build
    with pytest.raises(PiamiFileError):
        load_checkpoint(tmp_path / "nothing")
    (path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PiamiFileError):
        load_checkpoint(path, model=make())
    other = Transformer(
        TransformerConfig(n_layers=2, d_model=16, d_head=8, d_mlp=32, n_ctx=6), device="cpu"
    )
    good = save_checkpoint(make(), tmp_path / "ck2")
    with pytest.raises(PiamiValueError, match="does not fit"):
        load_checkpoint(good, model=other)
    assert list_checkpoints(tmp_path / "none") == []


def test_bad_calls_raise():
    with pytest.raises(PiamiValueError, match="eval_data"):
        train(make(), markov_sampler, cfg(early_stopping_patience=2))
    with pytest.raises(PiamiError):
        train(make(), np.zeros((0, 7), dtype=np.int64), cfg())
    with pytest.raises(PiamiError):
        train(make(), (np.zeros((4, 2)), np.zeros(3)), cfg())
    with pytest.raises(PiamiError):
        train("model", markov_sampler, cfg())
    with pytest.raises(PiamiValueError):
        train(make(), markov_sampler, cfg(batch_size=None))


@settings(max_examples=30, deadline=None)
@given(
    field=st.sampled_from(
        [
            "n_steps",
            "batch_size",
            "lr",
            "warmup_frac",
            "min_lr_frac",
            "grad_clip",
            "eval_every",
            "early_stopping_patience",
            "n_checkpoints",
            "time_budget_s",
            "n_threads",
        ]
    ),
    value=st.sampled_from([0, -1, 1.5, math.nan, math.inf, 2.0]),
)
def test_bad_train_configs_raise(field, value):
    ok = {
        ("lr", 1.5),
        ("lr", 2.0),
        ("grad_clip", 1.5),
        ("grad_clip", 2.0),
        ("grad_clip", math.inf),
        ("time_budget_s", 1.5),
        ("time_budget_s", 2.0),
        ("time_budget_s", math.inf),
        ("eval_every", 0),
        ("n_checkpoints", 0),
        ("warmup_frac", 0),
        ("min_lr_frac", 0),
    }
    if (field, value) in ok:
        TrainConfig(**{field: value})
        return
    with pytest.raises(PiamiError):
        TrainConfig(**{field: value})


def _crafted(tmp_path, name, **changes):
    """A valid checkpoint whose config.json is then changed (or replaced by raw bytes)."""
    path = save_checkpoint(make(), tmp_path / name)
    if "raw" in changes:
        (path / "config.json").write_bytes(changes["raw"])
        return path
    info = json.loads((path / "config.json").read_text())
    info.update(changes)
    (path / "config.json").write_text(json.dumps(info))
    return path


def test_a_crafted_checkpoint_imports_nothing(tmp_path, monkeypatch):
    """model_class is looked up in a registry; no string from a file reaches import_module."""
    import builtins
    import importlib

    imported = []
    real_import_module, real_import = importlib.import_module, builtins.__import__

    def spy_import_module(name, *a, **k):
        imported.append(name)
        return real_import_module(name, *a, **k)

    def spy_import(name, *a, **k):
        if name.startswith("piami.cli") or name in ("os", "subprocess"):
            imported.append(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", spy_import_module)
    monkeypatch.setattr(builtins, "__import__", spy_import)
    for cls in ("piami.cli.__main__:main", "piami.cli:main", "os:system", "", 7, None):
        path = _crafted(tmp_path, f"ck{len(imported)}_{abs(hash(str(cls)))}", model_class=cls)
        with pytest.raises(PiamiError):
            load_checkpoint(path)
    assert imported == []


def test_a_crafted_checkpoint_cannot_allocate_past_the_limit(tmp_path, monkeypatch):
    """A config asking for 10^9-wide layers is refused before any real tensor is allocated."""
    huge = {**json.loads((save_checkpoint(make(), tmp_path / "m") / "config.json").read_text())}
    cfg = dict(huge["model_config"], d_model=10**9, d_mlp=10**9)
    path = _crafted(tmp_path, "huge", model_config=cfg)
    with pytest.raises(PiamiValueError, match="over the limit"):
        load_checkpoint(path)
    monkeypatch.setenv("PIAMI_MEMORY_LIMIT_GB", "1e12")  # within the limit: the shapes refuse it
    with pytest.raises(PiamiValueError, match="does not fit"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "changes",
    [
        {"raw": b"[1, 2, 3]"},
        {"raw": b"null"},
        {"raw": b"\xff\xfe not utf-8"},
        {"raw": b'{"model_class": "piami.models.transformer:Transformer", "x": Infinity}'},
        {"raw": b""},
        {"model_config": [1, 2]},
        {"model_config": {"n_layers": "two"}},
        {"model_config": {"no_such_field": 1}},
        {"metadata": "not a dict"},
    ],
    ids=[
        "list",
        "null",
        "not-utf8",
        "infinity",
        "empty",
        "config-list",
        "config-type",
        "config-key",
        "metadata",
    ],
)
def test_damaged_checkpoint_configs_raise_piami_errors(tmp_path, changes):
    path = _crafted(tmp_path, "ck", **changes)
    with pytest.raises(PiamiError):
        load_checkpoint(path)


def test_a_folder_where_the_config_belongs_is_a_piami_error(tmp_path):
    path = save_checkpoint(make(), tmp_path / "ck")
    (path / "config.json").unlink()
    (path / "config.json").mkdir()
    with pytest.raises(PiamiFileError, match="folder"):
        load_checkpoint(path)
