"""The model side of pretrained-lm: which model, how symbols become its tokens, what it computes.

Symbols are written as words the model knows: symbol ``i`` is ``' ' + word_i`` (``" A"``, ``" B"``,
``" C"`` by default), each a single token of the tokenizer, so a sequence is the text
``" A C C B ..."`` exactly as the tokenizer would cut it (checked: :class:`Vocabulary`). Every
sequence starts with a prefix token (SmolLM2's document separator ``<|endoftext|>``), so the model
predicts every symbol, the first included.

The model's prediction of symbol ``t`` is its next-token distribution at the token before it,
restricted to the process's alphabet and renormalized: ``q(x) = softmax_x(h W[id(x)])`` with ``h``
the final normalized residual stream (``ln_final.hook_normalized``) and ``W`` the unembedding;
the probability it leaves on the alphabet before renormalizing is reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from piami.errors import PiamiValueError
from piami.experiments.pretrained_lm.config import (
    N_MASS_SEQS,
    TINY_FIRST_SYMBOL,
    TINY_PREFIX_ID,
    TINY_SPARE,
    TRAIN_BATCH,
    TRAIN_LR,
    Config,
)
from piami.models import collect_activations, resolve_dtype
from piami.models.pretrained import load_gguf, smollm2_path, tiny_llama
from piami.processes.hmm import HiddenMarkovModel
from piami.train import TrainConfig, train


@dataclass(frozen=True, kw_only=True)
class Vocabulary:
    """How symbols are written for one model.

    Attributes:
        prefix_id: token id before every sequence.
        symbol_ids: token id of each symbol, ``symbol_ids[i]`` for symbol ``i``.
        texts: the text of each symbol (``" A"``), or the tiny model's ids as labels.
        round_trip: share of the sampled sequences whose text (prefix included) the tokenizer
            cuts back into exactly these ids; ``None`` without a tokenizer.
    """

    prefix_id: int
    symbol_ids: tuple[int, ...]
    texts: tuple[str, ...]
    round_trip: float | None = None

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        """``(n, L)`` symbols -> ``(n, L + 1)`` token ids, the prefix first."""
        ids = np.asarray(self.symbol_ids, dtype=np.int64)[tokens]
        return np.concatenate([np.full((len(tokens), 1), self.prefix_id), ids], axis=1)


def load_subject(cfg: Config) -> tuple[nn.Module, Any, str]:
    """The model ``cfg.model`` names, its tokenizer (``None`` for ``"tiny"``) and a label."""
    if cfg.model == "tiny":
        vocab = TINY_FIRST_SYMBOL + len(cfg.symbol_words()) + TINY_SPARE
        model = tiny_llama(vocab_size=vocab, seed=cfg.seed, n_ctx=max(512, cfg.seq_len + 1))
        return model.to(dtype=resolve_dtype(cfg.dtype)), None, "tiny random Llama"
    path = smollm2_path() if cfg.model == "smollm2" else cfg.model
    model, tokenizer = load_gguf(path, device=cfg.device, dtype=cfg.dtype)
    label = "SmolLM2-135M-Instruct (Q4_1)" if cfg.model == "smollm2" else str(path)
    return model, tokenizer, label


def _single_token(tokenizer: Any, text: str, what: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise PiamiValueError(
            f"{what} {text!r} is {len(ids)} tokens {ids} for this tokenizer, not one; choose "
            "words that are single tokens (e.g. symbols='A B C', prefix='<|endoftext|>')"
        )
    return int(ids[0])


def vocabulary(
    cfg: Config, tokenizer: Any, samples: Mapping[str, np.ndarray] | None = None
) -> Vocabulary:
    """The token ids of the prefix and the symbols, and the round-trip check on ``samples``.

    Raises:
        PiamiValueError: a symbol or the prefix is not a single token, or two symbols share one.
    """
    words = cfg.symbol_words()
    if tokenizer is None:
        ids = tuple(range(TINY_FIRST_SYMBOL, TINY_FIRST_SYMBOL + len(words)))
        return Vocabulary(prefix_id=TINY_PREFIX_ID, symbol_ids=ids, texts=tuple(map(str, ids)))
    texts = tuple(" " + w for w in words)
    ids = tuple(_single_token(tokenizer, t, "symbol") for t in texts)
    prefix = _single_token(tokenizer, cfg.prefix, "prefix")
    if len(set(ids)) != len(ids) or prefix in ids:
        raise PiamiValueError(f"symbols {texts} and prefix {cfg.prefix!r} must be distinct tokens")
    vocab = Vocabulary(prefix_id=prefix, symbol_ids=ids, texts=texts)
    if not samples:
        return vocab
    ok = total = 0
    for tokens in samples.values():
        for row, want in zip(tokens, vocab.encode(tokens), strict=True):
            text = cfg.prefix + "".join(texts[x] for x in row)
            ok += tokenizer.encode(text, add_special_tokens=False) == want.tolist()
            total += 1
    return Vocabulary(prefix_id=prefix, symbol_ids=ids, texts=texts, round_trip=ok / total)


def train_in_distribution(
    model: nn.Module,
    cfg: Config,
    procs: Mapping[str, HiddenMarkovModel],
    vocab: Vocabulary,
    *,
    progress: bool,
) -> list[float]:
    """Train ``model`` in place on fresh sequences of the processes (equal shares per batch).

    A positive control for the quick variant: a network trained on a process carries its belief
    (Shai et al. 2024), so the rows must pass for it, and fail for the same network untrained.

    Returns:
        The training loss by step (nats, next token over the whole vocabulary).
    """
    items = list(procs.values())

    def sample(batch: int, rng: np.random.Generator) -> torch.Tensor:
        share = [batch // len(items) + (i < batch % len(items)) for i in range(len(items))]
        rows = [
            vocab.encode(p.sample(s, cfg.seq_len, rng=rng))
            for p, s in zip(items, share, strict=True)
            if s
        ]
        return torch.from_numpy(np.concatenate(rows))

    def loss_fn(net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        logits = net(input_ids=batch[:, :-1], use_cache=False).logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))

    tcfg = TrainConfig(
        n_steps=cfg.train_steps,
        batch_size=TRAIN_BATCH,
        lr=TRAIN_LR,
        warmup_frac=0.1,
        n_checkpoints=0,
        seed=cfg.seed,
        device=cfg.device,
        dtype=cfg.dtype,
        n_threads=cfg.n_threads,
    )
    model.train()
    history = train(model, sample, tcfg, loss_fn=loss_fn, progress=progress, desc="pretrain")
    model.eval()
    return [float(v) for v in history.loss]


def layer_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """The activation names probed (embedding, then each block's output) and their labels."""
    n = int(model.config.num_hidden_layers)
    names = ["hook_embed"] + [f"blocks.{i}.hook_resid_post" for i in range(n)]
    return names, ["embed"] + [f"L{i}" for i in range(n)]


@torch.no_grad()
def run_model(
    model: nn.Module, ids: np.ndarray, vocab: Vocabulary, n_symbols: int, cfg: Config
) -> dict[str, Any]:
    """One model on one process's token ids: the residual stream and its alphabet predictions.

    Args:
        model: a Hugging Face causal LM.
        ids: ``(n_seqs, seq_len + 1)`` token ids, the prefix first.
        vocab: the symbols' token ids.
        n_symbols: the process's alphabet size (its first ``n_symbols`` symbols).
        cfg: batch size and device.

    Returns:
        ``layers``: one ``(n_seqs, seq_len, d_model)`` float32 array per probed layer, the rows at
        the symbols' tokens (the prefix dropped); ``loss``: ``(n_seqs, seq_len)`` loss of each
        symbol under the alphabet-renormalized prediction (nats); ``mass``: the mean probability
        the full softmax puts on the alphabet (first :data:`N_MASS_SEQS` sequences).
    """
    names, _ = layer_names(model)
    acts = collect_activations(
        model,
        ids,
        [*names, "ln_final.hook_normalized"],
        batch_size=cfg.batch_size,
        device=cfg.device,
    )
    h = acts.pop("ln_final.hook_normalized")[:, :-1].to(torch.float64)  # predicts x_0 .. x_{L-1}
    head = model.get_output_embeddings()
    W = head.weight.detach().to("cpu", torch.float64)
    bias = None if getattr(head, "bias", None) is None else head.bias.detach().cpu().double()
    alpha = list(vocab.symbol_ids[:n_symbols])
    logits = h @ W[alpha].T + (0.0 if bias is None else bias[alpha])
    logq = torch.log_softmax(logits, dim=-1)
    pos = torch.as_tensor(_symbols_of(ids[:, 1:], vocab, n_symbols))
    loss = -torch.gather(logq, -1, pos[..., None])[..., 0]
    layers = [acts[n][:, 1:].numpy().astype(np.float32, copy=False) for n in names]
    return {"layers": layers, "loss": loss.numpy(), "mass": _alphabet_mass(h, W, bias, alpha)}


def _symbols_of(ids: np.ndarray, vocab: Vocabulary, n_symbols: int) -> np.ndarray:
    """Token ids back to symbol indices ``0 .. n_symbols - 1``."""
    lookup = {t: i for i, t in enumerate(vocab.symbol_ids[:n_symbols])}
    return np.vectorize(lookup.__getitem__, otypes=[np.int64])(ids)


def _alphabet_mass(
    h: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None, alpha: list[int]
) -> float:
    """Mean full-softmax probability of the alphabet tokens over the first sequences' positions."""
    rows = h[:N_MASS_SEQS].reshape(-1, h.shape[-1]).to(torch.float32)
    Wf = W.to(torch.float32)
    mass = []
    for chunk in rows.split(256):
        logits = chunk @ Wf.T + (0.0 if bias is None else bias.to(torch.float32))
        lse = torch.logsumexp(logits, dim=-1)
        mass.append(torch.exp(torch.logsumexp(logits[:, alpha], dim=-1) - lse))
    return float(torch.cat(mass).mean())


__all__ = [
    "Vocabulary",
    "layer_names",
    "load_subject",
    "run_model",
    "train_in_distribution",
    "vocabulary",
]
