"""pretrained-lm's statistics of the model's own text: prompts and the corpus's continuations cut
from the text itself, sampling with the key-value cache against sampling without it, the shuffle
that must remove every correlation, and the rows on synthetic statistics (each outcome in its own
case)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from piami.experiments.pretrained_lm import Config
from piami.experiments.pretrained_lm.generated import (
    AGREE_BAND,
    GEN_OFFSET,
    decode,
    generated_rows,
    prompts_and_continuations,
    sample_continuations,
    shuffle_rows,
    text_statistics,
)
from piami.processes.corpus import load_text

EXPONENTS = ("beta", "gamma", "alpha_d")
ROWS = {e: f"its own text: {e} of generated text equals the corpus's" for e in EXPONENTS}
CONTROL = (
    "its own text, shuffled: lags whose correlation exceeds 3 x the noise floor "
    "(too few for a beta)"
)


class Codepoints:
    """One id per character: the ids spell the text itself."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(map(chr, ids))


def test_prompts_are_followed_by_the_corpus_own_continuations():
    cfg = Config(model="tiny", gen_seqs=3, gen_prompt=5, gen_len=8)
    prompts, real, chars = prompts_and_continuations(cfg, Codepoints(), 10**6, prefix_id=-1)
    assert prompts.shape == (3, 6) and real.shape == (3, 8) and chars == []
    assert (prompts[:, 0] == -1).all()
    want = load_text("shakespeare", max_chars=GEN_OFFSET + 39)[GEN_OFFSET:]
    got = "".join(chr(i) for p, r in zip(prompts[:, 1:], real, strict=True) for i in [*p, *r])
    assert got == want
    assert decode(real, Codepoints(), []) == [want[5:13], want[18:26], want[31:39]]


def test_tokenizer_free_ids_decode_through_the_frequency_ranks():
    cfg = Config(model="tiny", gen_seqs=2, gen_prompt=4, gen_len=8)
    prompts, real, chars = prompts_and_continuations(cfg, None, 200, prefix_id=0)
    want = load_text("shakespeare", max_chars=GEN_OFFSET + 24)[GEN_OFFSET:]
    texts = decode(np.concatenate([prompts[:, 1:], real], axis=1), None, chars)
    assert "".join(texts) == want  # 200 ids: every character of the corpus keeps its own


def _tiny():
    pytest.importorskip("transformers")
    from piami.models.pretrained import tiny_llama

    return tiny_llama(vocab_size=11, seed=3, n_ctx=64).eval()


def _sample_without_cache(model, prompts: np.ndarray, n_new: int, seed: int) -> np.ndarray:
    """The same draws, recomputing the whole sequence at every step."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(prompts)
    with torch.no_grad():
        for _ in range(n_new):
            probs = torch.softmax(model(input_ids=ids).logits[:, -1].double(), dim=-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=gen)], dim=1)
    return ids[:, prompts.shape[1] :].numpy()


def test_cached_sampling_equals_sampling_without_the_cache_and_follows_its_seed():
    model = _tiny()
    prompts = np.random.default_rng(0).integers(0, 11, (4, 5))
    got = sample_continuations(model, prompts, 12, seed=7, batch_size=4)
    assert got.shape == (4, 12) and got.dtype == np.int64
    np.testing.assert_array_equal(got, _sample_without_cache(model, prompts, 12, 7))
    again = sample_continuations(model, prompts, 12, seed=7, batch_size=4)
    np.testing.assert_array_equal(got, again)
    assert not np.array_equal(got, sample_continuations(model, prompts, 12, seed=8, batch_size=4))


def test_the_shuffle_keeps_letters_and_lengths_and_removes_the_correlations():
    text = load_text("shakespeare", max_chars=GEN_OFFSET + 40_000)[GEN_OFFSET:]
    rows = [text[i : i + 2000] for i in range(0, 40_000, 2000)]
    mixed = shuffle_rows(rows, np.random.default_rng(0))
    assert [len(t) for t in mixed] == [len(t) for t in rows]
    assert sorted("".join(mixed)) == sorted("".join(rows))
    stats = text_statistics({"corpus": rows, "shuffled": mixed}, seed=0)
    above = {
        k: int(np.sum(np.asarray(v["top_sv"]) > 3 * np.asarray(v["floor"])))
        for k, v in stats.items()
        if k != "chars"
    }
    assert above["corpus"] >= 3 and above["shuffled"] <= 2, above


def test_rows_too_short_are_not_identified():
    got = text_statistics({"a": ["abc" * 10], "b": ["xyz" * 30]}, seed=0)
    assert got["chars"] == 30 and "raise gen_len" in got["error"]
    rows = generated_rows(got | {"n_tokens": 8})
    assert [c.passed for c in rows] == [None] * 4


# -- the rows on synthetic statistics ----------------------------------------------------------
def fit(value: float, spread: float, seed: int = 0, at_bound: bool = False) -> dict:
    boot = value + spread * np.random.default_rng(seed).standard_normal(400)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": value, "ci": [lo, hi], "boot": boot.tolist(), "at_bound": at_bound}


def stats(gen: dict, corpus: dict, shuffled_above: int = 0) -> dict:
    lags = list(range(1, 9))
    floor = [0.01] * 8
    top = [0.05] * shuffled_above + [0.001] * (8 - shuffled_above)
    sets = {
        "generated": {k: dict(gen) for k in ("beta", "gamma", "alpha_d")},
        "corpus": {k: dict(corpus) for k in ("beta", "gamma", "alpha_d")},
        "shuffled": {"lags": lags, "top_sv": top, "floor": floor},
    }
    return {"chars": 1000, "n_tokens": 256, **sets}


@pytest.mark.parametrize(
    ("gen", "corpus", "passed", "why"),
    [
        (fit(1.02, 0.02), fit(1.0, 0.02, 1), True, ""),  # difference well inside ±25%
        (fit(2.0, 0.02), fit(1.0, 0.02, 1), False, ""),  # wholly outside
        (fit(1.25, 0.1), fit(1.0, 0.02, 1), None, "straddles"),  # interval crosses the band
        (fit(1.0, 0.02, at_bound=True), fit(1.0, 0.02, 1), None, "bound"),
        ({"error": "only 1 lags"}, fit(1.0, 0.02, 1), None, "no fit for this text"),
        (fit(1.0, 0.02), {"error": "only 2 lags"}, None, "same-size corpus"),
    ],
)
def test_each_agreement_outcome_in_its_own_case(gen, corpus, passed, why):
    got = {c.name: c for c in generated_rows(stats(gen, corpus))}
    for name in ROWS.values():
        assert got[name].passed is passed, (name, got[name].not_identified)
        assert why in got[name].not_identified
        assert got[name].kind == "prediction" and got[name].tolerance == AGREE_BAND
    assert got[CONTROL].passed is True


def test_a_shuffle_that_keeps_correlations_fails_the_control():
    got = {c.name: c for c in generated_rows(stats(fit(1.0, 0.02), fit(1.0, 0.02, 1), 3))}
    assert got[CONTROL].passed is False and got[CONTROL].kind == "control"
