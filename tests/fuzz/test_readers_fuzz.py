"""Every reader of a file piami writes treats it as untrusted: success or one PiamiError."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError
from piami.lab import Result
from piami.runs.store import RunStore
from piami.train import load_checkpoint, read_checkpoint_info, save_checkpoint

from .conftest import case, examples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
#: what a damaged file may hold: raw bytes, JSON of any shape, or a near-miss of the real layout
contents = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"NaN", b"Infinity", b"[1, 2", b"\xff\xfe{}", b"", b"{}", b"null"]),
)
SETTINGS = dict(deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _near_result(d: dict) -> bytes:
    base = {"experiment": "x", "config": {"seed": 0}, "seed": 0, "comparisons": [d]}
    return json.dumps(base).encode()


@settings(max_examples=examples(250), **SETTINGS)
@given(
    data=st.one_of(
        contents, st.dictionaries(st.text(max_size=12), json_values, max_size=6).map(_near_result)
    )
)
def test_result_json_readers(tmp_path_factory, data):
    with case():
        d = tmp_path_factory.mktemp("res")
        (d / "result.json").write_bytes(data)
        try:
            Result.load(d)
        except PiamiError:
            pass


@settings(max_examples=examples(250), **SETTINGS)
@given(spec=contents, error=contents, result=contents)
def test_run_store_readers(tmp_path_factory, spec, error, result):
    with case():
        root = tmp_path_factory.mktemp("store")
        run = root / "0123abcd"
        run.mkdir()
        (run / "spec.json").write_bytes(spec)
        (run / "error.json").write_bytes(error)
        (run / "result.json").write_bytes(result)
        store = RunStore(root)
        store.list()
        store.damaged()
        store.is_finished("0123abcd")
        for read in (store.spec, store.error, store.result):
            try:
                read("0123abcd")
            except PiamiError:
                pass


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from piami.models import Transformer, TransformerConfig

    model = Transformer(
        TransformerConfig(n_layers=1, d_model=8, d_head=4, d_mlp=8, n_ctx=4, d_vocab=3),
        generator=torch.Generator().manual_seed(0),
        device="cpu",
    )
    path = save_checkpoint(model, tmp_path_factory.mktemp("ck") / "step_00000000")
    return path, json.loads((path / "config.json").read_text())


@settings(max_examples=examples(200), **SETTINGS)
@given(
    raw=contents,
    changes=st.dictionaries(
        st.sampled_from(["model_class", "model_config", "metadata", "optimizer", "format"]),
        json_values,
        max_size=3,
    ),
    use_raw=st.booleans(),
)
def test_checkpoint_readers(tmp_path_factory, checkpoint, raw, changes, use_raw):
    import shutil

    with case():
        src, info = checkpoint
        path = tmp_path_factory.mktemp("ck") / "step"
        shutil.copytree(src, path)
        text = raw if use_raw else json.dumps(info | changes).encode()
        (path / "config.json").write_bytes(text)
        try:
            read_checkpoint_info(path)
            load_checkpoint(path)
        except PiamiError:
            pass


@settings(max_examples=examples(100), **SETTINGS)
@given(weights=st.binary(max_size=300))
def test_forged_weight_files(tmp_path_factory, checkpoint, weights):
    import shutil

    with case():
        src, _ = checkpoint
        path = tmp_path_factory.mktemp("ck") / "step"
        shutil.copytree(src, path)
        (path / "model.safetensors").write_bytes(weights)
        with pytest.raises(PiamiError):
            load_checkpoint(path)
