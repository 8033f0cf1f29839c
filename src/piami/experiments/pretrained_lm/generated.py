"""The statistics of the model's own text beside those of the corpus it is prompted from.

Cagnetta, Raventos, Ganguli and Wyart (2026) read a data set's learnability from two exponents:
token correlations decaying as ``||C(n)|| ~ n**(-beta)`` and conditional entropies as
``H_n - H_inf ~ n**(-gamma)``, which give the data-limited scaling exponent
``alpha_D = gamma / (2 beta)`` (:mod:`piami.instruments.exponents`). A model that has learned the
distribution of its training text should write text with the same exponents; Takahashi &
Tanaka-Ishii (2019, Computational Linguistics 45(3), "Evaluating computational language models with
scaling properties of natural language") found that early language models' text lacked natural
language's long-range correlations. Here:

- ``gen_seqs`` prompts of ``gen_prompt`` tokens of Shakespeare (from :data:`GEN_OFFSET` on, apart
  from the depth geometry's text), each followed in the corpus by ``gen_len`` real tokens;
- the model continues each prompt by ``gen_len`` tokens sampled from its own next-token
  distribution (temperature 1, the whole vocabulary, a seeded generator:
  :func:`sample_continuations`);
- both sets of continuations are decoded to characters, cut to one common length, mapped to the
  four letter classes of :func:`~piami.processes.corpus.map_text` (vowel, consonant, space, other),
  and measured by :func:`~piami.instruments.exponents.measure_statistics`;
- the same generated characters, shuffled across all continuations, are the control: they keep
  the letter frequencies and lose every correlation, so no beta can be fitted to them.

Why letter classes: at the size a 2-core run can generate (tens of thousands of characters), the
full character alphabet leaves no more than four lags above three times the noise floor and too
few trusted entropy orders for gamma (measured on pieces of the corpus only, never on generated
text); four classes keep the floor low enough for both fits.

The rule (:func:`generated_rows`, fixed before any generated text was measured): the exponent of
the generated text equals the corpus's when the 95% interval of their difference (independent
bootstrap draws of the two fits) lies within ``±`` :data:`AGREE_BAND` of the corpus value (the
relative tolerance of scaling-from-statistics' ``alpha_D`` row); they differ when it lies wholly
outside; otherwise not identified. A fit missing for either text makes the row not identified, its
note saying which (a generated text with fewer than three lags above the floor where the same-size
corpus has them lacks its correlations: a finding the note states, not a number to compare).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import nn

from piami.errors import PiamiValueError
from piami.experiments.pretrained_lm.config import Config
from piami.experiments.pretrained_lm.depth import char_ranks
from piami.instruments.beliefs import percentile_interval
from piami.instruments.exponents import ExponentFit, measure_statistics
from piami.lab import Comparison
from piami.processes.corpus import load_text, map_text

#: Characters of the corpus skipped before the prompts (the depth geometry reads from 20,000 on,
#: fewer than 30,000 characters at its defaults).
GEN_OFFSET = 100_000
#: Relative half-width of the band within which two exponents count as equal (a priori: the
#: tolerance of scaling-from-statistics' alpha_D row).
AGREE_BAND = 0.25
#: The statistics' settings (those of ``piami stats``' defaults where they exist).
MAX_LAG, N_LAGS, MAX_ORDER, FLOOR_FACTOR, N_BOOT = 256, 16, 8, 3.0, 200
#: Fewest characters per continuation for the statistics (a lag must fit within a row).
MIN_CHARS = 32
#: The text sets measured: the model's, the corpus's own continuations, the shuffled control.
SETS = ("generated", "corpus", "shuffled")
STAT_REF = (
    "Cagnetta, Raventos, Ganguli & Wyart 2026 (beta, gamma, alpha_D = gamma / (2 beta)); "
    "Takahashi & Tanaka-Ishii 2019 (generated text and the scaling properties of language)"
)


def prompts_and_continuations(
    cfg: Config, tokenizer: Any, vocab_size: int, prefix_id: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The prompts (prefix first) and the corpus's own next ``gen_len`` tokens after each.

    Returns:
        ``(prompts (gen_seqs, gen_prompt + 1), continuations (gen_seqs, gen_len), chars)``, where
        ``chars`` decodes the tokenizer-free ids (empty with a tokenizer).
    """
    stride = cfg.gen_prompt + cfg.gen_len
    need = cfg.gen_seqs * stride
    text = load_text(cfg.text_source, max_chars=GEN_OFFSET + need * (2 if tokenizer is None else 8))
    text = text[GEN_OFFSET:]
    chars: list[str] = []
    if tokenizer is not None:
        ids = np.asarray(tokenizer.encode(text, add_special_tokens=False), dtype=np.int64)
    else:
        rank, chars = char_ranks(text, vocab_size)
        ids = np.asarray([rank[c] for c in text], dtype=np.int64)
    if ids.size < need:
        raise PiamiValueError(
            f"the text after character {GEN_OFFSET} gives {ids.size} tokens, fewer than "
            f"gen_seqs * (gen_prompt + gen_len) = {need}; lower gen_seqs or gen_len"
        )
    pieces = ids[:need].reshape(cfg.gen_seqs, stride)
    prompts = np.concatenate(
        [np.full((cfg.gen_seqs, 1), prefix_id), pieces[:, : cfg.gen_prompt]], axis=1
    )
    return prompts, pieces[:, cfg.gen_prompt :], chars


@torch.no_grad()
def sample_continuations(
    model: nn.Module,
    prompts: np.ndarray,
    n_new: int,
    *,
    seed: int,
    batch_size: int,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """``n_new`` tokens sampled after each prompt from the model's own distribution.

    Temperature 1 over the whole vocabulary (no top-k, no nucleus), with the key-value cache; the
    draws come from a ``torch.Generator`` seeded by ``seed``, so the same seed gives the same
    text whatever else runs in the process (for a given batch size).

    Args:
        model: a Hugging Face causal LM.
        prompts: ``(n, p)`` int token ids, all of one length.
        n_new: tokens to add.
        seed: seeds the sampling.
        batch_size: prompts continued at once.
        device: where the model lives.

    Returns:
        ``(n, n_new)`` int64 sampled ids.
    """
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    dev = torch.device(device)
    # transformers 5 renamed the key-value cache argument and output from past_key_values to cache
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    for start in range(0, len(prompts), batch_size):
        ids = torch.as_tensor(prompts[start : start + batch_size], dtype=torch.long, device=dev)
        res = model(input_ids=ids, use_cache=True)
        past, new = getattr(res, key), []
        for _ in range(n_new):
            probs = torch.softmax(res.logits[:, -1].double().cpu(), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)
            new.append(nxt)
            res = model(input_ids=nxt.to(dev), use_cache=True, **{key: past})
            past = getattr(res, key)
        out.append(torch.cat(new, dim=1).numpy())
    return np.concatenate(out).astype(np.int64)


def decode(ids: np.ndarray, tokenizer: Any, chars: list[str]) -> list[str]:
    """Each row of ids as text (special tokens dropped; tokenizer-free ids through ``chars``)."""
    if tokenizer is not None:
        return [tokenizer.decode(row.tolist(), skip_special_tokens=True) for row in ids]
    return ["".join(chars[i] for i in row) for row in ids]


def _fit_dict(fit: ExponentFit | str) -> dict[str, Any]:
    if isinstance(fit, str):
        return {"error": fit}
    return {
        "value": fit.value,
        "ci": list(fit.ci),
        "boot": fit.boot.tolist(),
        "at_bound": bool(fit.at_bound),
        "n_points": int(fit.x.size),
        "offset": fit.offset,
        "offset_at_bound": bool(fit.offset_at_bound),
    }


def _alpha_dict(beta: dict[str, Any], gamma: dict[str, Any]) -> dict[str, Any]:
    if "error" in beta or "error" in gamma:
        return {"error": beta.get("error") or gamma.get("error")}
    if not (beta["value"] > 0 and gamma["value"] > 0):
        return {
            "error": f"alpha_D = gamma / (2 beta) needs both > 0, got beta "
            f"{beta['value']:.3g}, gamma {gamma['value']:.3g}"
        }
    k = min(len(beta["boot"]), len(gamma["boot"]))
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = np.asarray(gamma["boot"][:k]) / (2.0 * np.asarray(beta["boot"][:k]))
    draws = draws[np.isfinite(draws)]
    lo, hi = percentile_interval(draws) if draws.size else (np.nan, np.nan)
    return {
        "value": gamma["value"] / (2.0 * beta["value"]),
        "ci": [lo, hi],
        "boot": draws.tolist(),
        "at_bound": beta["at_bound"] or gamma["at_bound"],
        "offset_at_bound": False,
    }


def text_statistics(texts: dict[str, list[str]], seed: int) -> dict[str, Any]:
    """beta, gamma and alpha_D of each set of texts, every text cut to one common length.

    Args:
        texts: set name -> list of texts (rows; pairs and n-grams stay within a row).
        seed: seeds the shuffle floor and the bootstraps (the same for every set).

    Returns:
        ``chars`` (the common row length), and per set: ``beta``, ``gamma``, ``alpha_d`` (value,
        ci, bootstrap draws, or ``error``), ``lags``, ``top_sv``, ``floor`` and ``H_n`` (NSB, nats)
        for the figure; ``{"chars": n, "error": why}`` when the rows are too short.
    """
    n_chars = min(len(t) for rows in texts.values() for t in rows)
    if n_chars < MIN_CHARS:
        return {
            "chars": n_chars,
            "error": f"the shortest text has {n_chars} characters, fewer "
            f"than the {MIN_CHARS} the statistics need; raise gen_len",
        }
    out: dict[str, Any] = {"chars": n_chars}
    for name, rows in texts.items():
        codes = np.stack([map_text(t[:n_chars]) for t in rows])
        st = measure_statistics(
            codes,
            n_vocab=4,
            n_max_lag=min(MAX_LAG, n_chars - 1),
            n_lags=N_LAGS,
            n_max_entropy=min(MAX_ORDER, n_chars - 2),
            factor=FLOOR_FACTOR,
            n_boot=N_BOOT,
            rng=np.random.default_rng(seed),
        )
        beta, gamma = _fit_dict(st["beta"]), _fit_dict(st["gamma"])
        corr, ent = st["correlations"], st["entropies"]
        out[name] = {
            "beta": beta,
            "gamma": gamma,
            "alpha_d": _alpha_dict(beta, gamma),
            "lags": corr.lags.tolist(),
            "top_sv": corr.top_sv.tolist(),
            "floor": corr.floor_top_sv.tolist(),
            "H_n": ent.nsb.tolist(),
            "H_n_trusted": (~ent.sparse).tolist(),
        }
    return out


def shuffle_rows(texts: list[str], rng: np.random.Generator) -> list[str]:
    """The texts' characters permuted across all of them, then cut back into rows of the same
    lengths: the pooled letter frequencies kept, every order lost.

    Permuting within each text only would keep each row's own letter mix, and rows that differ
    in their mix correlate every pair of positions within a row at every lag.

    Example:
        >>> out = shuffle_rows(["aab", "bbb"], np.random.default_rng(0))
        >>> [len(t) for t in out], sorted("".join(out)) == sorted("aabbbb")
        ([3, 3], True)
    """
    pooled = np.asarray(list("".join(texts)))[rng.permutation(sum(map(len, texts)))]
    cuts = np.cumsum([len(t) for t in texts])[:-1]
    return ["".join(part) for part in np.split(pooled, cuts)]


def generated_statistics(
    model: nn.Module, tokenizer: Any, cfg: Config, prefix_id: int, seed: int
) -> dict[str, Any]:
    """Generate from the corpus prompts and measure the three sets of :data:`SETS`."""
    vocab_size = int(model.config.vocab_size)
    prompts, real, chars = prompts_and_continuations(cfg, tokenizer, vocab_size, prefix_id)
    streams = np.random.SeedSequence(seed).spawn(2)
    new = sample_continuations(
        model,
        prompts,
        cfg.gen_len,
        seed=int(streams[0].generate_state(1)[0]),
        batch_size=cfg.batch_size,
        device=cfg.device if cfg.device != "auto" else next(model.parameters()).device,
    )
    generated = decode(new, tokenizer, chars)
    texts = {
        "generated": generated,
        "corpus": decode(real, tokenizer, chars),
        "shuffled": shuffle_rows(generated, np.random.default_rng(streams[1])),
    }
    stats = text_statistics(texts, seed)
    stats["samples"] = {k: [t[:240] for t in v[:2]] for k, v in texts.items() if k != "shuffled"}
    stats["n_tokens"] = int(new.size)
    return stats


def _agreement(
    stats: dict[str, Any], which: str, exponent: str
) -> tuple[float | None, float | None, tuple[float, float] | None, str, str]:
    """``(corpus value, text value, difference interval, why not identified, note)``."""
    c, t = stats["corpus"][exponent], stats[which][exponent]
    if "error" in c:
        return None, None, None, f"the same-size corpus sample gives no fit ({c['error']})", ""
    if "error" in t:
        note = f"no fit for this text ({t['error']}) where the same-size corpus has one"
        return c["value"], None, None, "", note
    bound = [n for n, d in (("corpus", c), (which, t)) if d["at_bound"]]
    k = min(len(c["boot"]), len(t["boot"]))
    lo, hi = percentile_interval(np.asarray(t["boot"][:k]) - np.asarray(c["boot"][:k]))
    band = AGREE_BAND * abs(c["value"])
    why = ""
    if bound:
        why = f"the fit of {' and '.join(bound)} sits on a bound of the fit"
    elif not (-band <= lo and hi <= band) and not (hi < -band or lo > band):
        why = (
            f"the 95% interval of the difference [{lo:.3g}, {hi:.3g}] straddles the edge of the "
            f"band ±{band:.3g}"
        )
    note = (
        f"{which} {t['value']:.3f} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}] vs corpus "
        f"{c['value']:.3f} [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]; difference interval "
        f"[{lo:.3g}, {hi:.3g}]"
    )
    return c["value"], t["value"], (c["value"] + lo, c["value"] + hi), why, note


def generated_rows(stats: dict[str, Any]) -> list[Comparison]:
    """Per exponent the hypothesis (generated = corpus); one control on the shuffled text."""
    rule = (
        f"a priori: equal when the 95% interval of the difference lies within ±{AGREE_BAND:g} x "
        "the corpus value (scaling-from-statistics' alpha_D tolerance), different when it lies "
        "wholly outside, else not identified"
    )
    size = (
        f"{stats.get('n_tokens', 0)} generated tokens; rows of {stats['chars']} characters in "
        "four letter classes"
    )
    rows = []
    for exponent in ("beta", "gamma", "alpha_d"):
        if "error" in stats:
            pred = meas = iv = None
            why, note = stats["error"], ""
        else:
            pred, meas, iv, why, note = _agreement(stats, "generated", exponent)
        rows.append(
            Comparison(
                name=f"its own text: {exponent} of generated text equals the corpus's",
                kind="prediction",
                predicted=pred,
                measured=meas,
                tolerance=AGREE_BAND,
                relative=True,
                tolerance_source=rule,
                measured_interval=iv,
                not_identified=why or (note if meas is None else ""),
                reference="hypothesis: " + STAT_REF,
                note=f"{note}; {size}" if note else size,
            )
        )
    above = None
    if "error" not in stats:
        sh = stats["shuffled"]
        above = int(np.sum(np.asarray(sh["top_sv"]) > FLOOR_FACTOR * np.asarray(sh["floor"])))
    rows.append(
        Comparison(
            name=f"its own text, shuffled: lags whose correlation exceeds {FLOOR_FACTOR:g} x the "
            "noise floor (too few for a beta)",
            kind="control",
            predicted=2.0,
            measured=above,
            tolerance=0.0,
            sense="at_most",
            tolerance_source="a priori: the beta fit needs 3 lags above the floor; shuffling "
            "the characters across all continuations keeps the letter frequencies and removes "
            "every correlation",
            not_identified=stats.get("error", ""),
            note=size,
        )
    )
    return rows


__all__ = [
    "AGREE_BAND",
    "GEN_OFFSET",
    "SETS",
    "decode",
    "generated_rows",
    "generated_statistics",
    "prompts_and_continuations",
    "sample_continuations",
    "shuffle_rows",
    "text_statistics",
]
