"""`piami measure`: instruments on piami checkpoints and Hugging Face folders; bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from piami.cli import main
from piami.instruments import cka
from piami.instruments.dimension import twonn_dimension
from piami.models import Transformer, TransformerConfig, collect_activations
from piami.train.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def piami_ckpt(tmp_path_factory):
    cfg = TransformerConfig(
        n_layers=3, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=16, d_vocab=5
    )
    model = Transformer(cfg, generator=torch.Generator().manual_seed(0), device="cpu")
    path = tmp_path_factory.mktemp("ckpt") / "model"
    save_checkpoint(model, path)
    return model, path


@pytest.fixture(scope="module")
def ids(tmp_path_factory):
    tokens = np.random.default_rng(0).integers(0, 5, size=(20, 16))
    path = tmp_path_factory.mktemp("ids") / "ids.npy"
    np.save(path, tokens)
    return tokens, path


def test_dimension_on_a_piami_checkpoint_matches_the_instrument(piami_ckpt, ids, tmp_path, capsys):
    model, path = piami_ckpt
    tokens, ids_path = ids
    out = tmp_path / "dim"
    argv = ["measure", str(path), "--instrument", "dimension", "--tokens", str(ids_path)]
    assert main([*argv, "--layers", "0,2", "--out", str(out)]) == 0
    rec = json.loads((out / "measure.json").read_text())
    assert rec["kind"] == "piami" and rec["layers"] == [
        "blocks.0.hook_resid_post",
        "blocks.2.hook_resid_post",
    ]
    # the same number straight from the instrument on the same activations
    acts = collect_activations(model, tokens, ["blocks.2.hook_resid_post"])
    pts = acts["blocks.2.hook_resid_post"].numpy().reshape(-1, 16)
    expected = twonn_dimension(pts).dimension
    got = rec["dimension"]["by_layer"]["blocks.2.hook_resid_post"]
    assert got == pytest.approx(expected, rel=1e-6)
    assert (out / "measure.png").read_bytes()[:4] == b"\x89PNG"
    assert "twonn dimension" in capsys.readouterr().out


def test_cka_on_a_huggingface_folder(ids, tmp_path):
    pytest.importorskip("transformers")
    from piami.models.pretrained import tiny_llama

    tokens, ids_path = ids
    hf = tiny_llama(vocab_size=5, seed=0, n_layers=2, d_model=32, n_heads=4, d_mlp=64, n_ctx=32)
    folder = tmp_path / "hf"
    hf.save_pretrained(folder)
    out = tmp_path / "cka"
    argv = ["measure", str(folder), "--instrument", "cka", "--tokens", str(ids_path)]
    assert main([*argv, "--out", str(out)]) == 0
    rec = json.loads((out / "measure.json").read_text())
    m = np.array(rec["cka"]["matrix"])
    assert rec["kind"] == "huggingface" and m.shape == (2, 2)
    acts = collect_activations(hf, tokens, rec["cka"]["layers"])
    a, b = (acts[n].numpy().reshape(-1, 32) for n in rec["cka"]["layers"])
    assert m[0, 1] == pytest.approx(cka(a, b), rel=1e-6) and np.allclose(np.diag(m), 1)


def test_activations_are_streamed_and_a_stream_is_cut_into_rows(piami_ckpt, tmp_path):
    _, path = piami_ckpt
    stream = tmp_path / "stream.npy"
    np.save(stream, np.arange(100) % 5)
    out = tmp_path / "acts"
    argv = ["measure", str(path), "--instrument", "activations", "--tokens", str(stream)]
    assert main([*argv, "--seq-len", "8", "--n-seqs", "5", "--out", str(out)]) == 0
    rec = json.loads((out / "measure.json").read_text())
    assert rec["n_seqs"] == 5 and rec["seq_len"] == 8
    assert rec["activations"]["blocks.0.hook_resid_post"] == [5, 8, 16]


def test_sae_is_scored_on_held_out_sequences(piami_ckpt, ids, tmp_path):
    from piami.instruments import SparseAutoencoder

    model, path = piami_ckpt
    tokens, ids_path = ids
    out = tmp_path / "sae"
    argv = ["measure", str(path), "--instrument", "sae", "--tokens", str(ids_path)]
    argv += ["--layers", "1", "--sae-steps", "200", "--sae-k", "4"]
    assert main([*argv, "--out", str(out)]) == 0
    got = json.loads((out / "measure.json").read_text())["sae"]["blocks.1.hook_resid_post"]
    # the same SAE by hand: fitted on the first 16 of 20 sequences, scored on the last 4
    acts = collect_activations(model, tokens, ["blocks.1.hook_resid_post"])
    a = acts["blocks.1.hook_resid_post"].numpy()
    sae = SparseAutoencoder(64, k=4, n_steps=200, random_state=0).fit(a[:16].reshape(-1, 16))
    expected = sae.health(a[16:].reshape(-1, 16))
    assert got["explained_variance"] == pytest.approx(expected["explained_variance"], rel=1e-6)
    assert got["l0"] <= 4 and got["n_latents"] == 64


@pytest.mark.slow
def test_llc_on_a_piami_checkpoint(piami_ckpt, ids, tmp_path):
    _, path = piami_ckpt
    _, ids_path = ids
    out = tmp_path / "llc"
    argv = ["measure", str(path), "--instrument", "llc", "--tokens", str(ids_path)]
    argv += ["--llc-draws", "60", "--llc-burnin", "20", "--llc-chains", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    llc = json.loads((out / "measure.json").read_text())["llc"]
    assert np.isfinite(llc["mean"]) and len(llc["per_chain"]) >= 2


def test_bad_input_exits_2_in_one_line(piami_ckpt, ids, tmp_path, capsys):
    _, path = piami_ckpt
    _, ids_path = ids
    text = tmp_path / "t.txt"
    text.write_text("hello")
    floats = tmp_path / "f.npy"
    np.save(floats, np.zeros((3, 4)))
    out = str(tmp_path / "o")
    cases = [
        (
            ["measure", str(tmp_path / "nope"), "--instrument", "cka", "--tokens", str(ids_path)],
            "no model",
        ),
        (["measure", str(path), "--instrument", "cka", "--text", str(text)], "no tokenizer"),
        (["measure", str(path), "--instrument", "cka"], "exactly one of"),
        (["measure", str(path), "--instrument", "cka", "--tokens", str(floats)], "integer ids"),
        (
            [
                "measure",
                str(path),
                "--instrument",
                "cka",
                "--tokens",
                str(ids_path),
                "--layers",
                "7",
            ],
            "blocks are 0..2",
        ),
    ]
    for argv, msg in cases:
        assert main([*argv, "--out", out]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "o" / "measure.json").exists()
