"""The local learning coefficient of one block on real text (its weights free, the rest fixed).

The LLC ``lambda`` of a minimum ``w*`` measures its degeneracy (Watanabe 2009; Lau et al. 2024,
"The local learning coefficient: a singularity-aware complexity measure", eq. 3 for the
estimator ``lambda_hat = n beta (E_w[L_n(w)] - L_n(w*))`` under the localized, tempered posterior).
Hoogland et al. (TMLR 2025, "Loss landscape degeneracy and stagewise development in
transformers") see it grow over training. Here only one block's ``d`` parameters are sampled: the
rest of the network is fixed, so the block's input (its ``hook_resid_pre`` on the text) is
computed once and cached, and each step runs only that block, the later blocks, the final norm
and the unembedding (:func:`block_tail`), the unembedding at the last :data:`SCORE_LEN` positions
of each piece only (it dominates the cost). A sample is one piece of text (its whole context is
read; its last ``score_len`` next-token losses are scored); ``n`` in ``n beta = n / ln n`` (WBIC,
Watanabe 2013) counts the scored tokens.

Sampler settings (:data:`SGLD`): chosen on SmolLM2's block 28 (pretrained and random weights, the
experiment's text; the experiment scores the last block, 29, which was not run while tuning) by
criteria fixed before any run: split R-hat <= 1.1 across the chains (Gelman et al. 2013), no chain
diverged, every chain's draws flat after burn-in (Geweke |z| <= 3), ``0 < lambda_hat <= d/2``
for the pretrained block, and a cost that fits 90 s per model on 2 CPU cores (which fixed 4
chains, one piece of 8 scored tokens per step, and 100 + 200 steps while tuning; timed on 2
threads, 300 steps took over 90 s, so the counts were cut to 80 + 160, still several relaxation
times ``2 / (step x gamma)`` of burn-in). Tried: ``(step, gamma) =
(1e-5, 1e4)``, ``(1e-4, 1e3)`` and ``(3e-4, 3e2)``, each with ``step x gamma`` small enough for the
localization to relax well within the burn-in; all met the criteria, and the rule fixed
beforehand (the largest step meeting them: fastest mixing, widest exploration) kept the last.
With ``gamma = 1e4`` the chains barely leave ``w*`` and the estimate stayed within its chain
noise of 0. Block 28 rather than a middle block (e.g. 14): a middle block's tail runs 16 blocks
over every position at each step, beyond the time at hand.

Rows (:func:`block_llc_rows`): three sanity rows (the pretrained chains pass R-hat; none diverges
or drifts; its estimate lies in ``(0, d/2]``), the hypothesis ``lambda_hat(pretrained) >
lambda_hat(random)`` and a control: the random-weight block is not at a minimum (its mean
gradient stands out of its sampling noise, :func:`gradient_snr`).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments import LLCEstimator
from piami.instruments.by_layer import causal_lm_loss
from piami.lab import Comparison
from piami.models import collect_activations
from piami.models.device import resolve_device, resolve_dtype

#: The block whose LLC the experiment scores (negative counts from the end).
LLC_BLOCK = -1
#: Positions at the end of each piece whose next-token loss is scored (the unembedding is
#: evaluated there only).
SCORE_LEN = 8
#: SGLD settings (module docstring: how they were chosen). ``batch_size`` counts pieces of text.
SGLD: dict[str, Any] = {
    "step_size": 3e-4,
    "gamma": 300.0,
    "n_beta": None,  # None: n / ln n, n = scored tokens
    "n_chains": 4,
    "n_burnin": 80,
    "n_draws": 160,
    "batch_size": 1,
}
#: Convergence bars (a priori): split R-hat (Gelman et al. 2013, BDA3 sec. 11.4) and the Geweke
#: |z| of each chain's draws.
RHAT_MAX, GEWEKE_MAX = 1.1, 3.0
LLC_REF = (
    "Lau et al. 2024 (AISTATS 2025), The local learning coefficient, eq. 3; Hoogland et al. "
    "(TMLR 2025), Loss landscape degeneracy and stagewise development in transformers"
)


def _positions(T: int, q_from: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary positions ``(queries, keys)`` in a piece of ``T`` tokens whose queries start at
    ``q_from``: ``q_from .. T-1`` and ``0 .. T-1`` (the full model's, no cache)."""
    return torch.arange(q_from, T, device=device), torch.arange(T, device=device)


def _attend_mask(T: int, q_from: int, device: torch.device) -> torch.Tensor:
    """``(T - q_from, T)`` bool: query ``q_from + i`` attends to keys ``j <= q_from + i``."""
    q = torch.arange(q_from, T, device=device)[:, None]
    return torch.arange(T, device=device)[None, :] <= q


def _rms(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """Llama's RMSNorm (Zhang & Sennrich 2019): ``w * x / sqrt(mean(x^2) + eps)``."""
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
    return norm.weight * y.to(x.dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding (Su et al. 2021) in Llama's half-split form."""
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def _lin(x: torch.Tensor, m: nn.Module) -> torch.Tensor:
    return F.linear(x, m.weight, m.bias)


class BlockTail(nn.Module):
    """Block ``block`` and everything after it, as a function of the block's input.

    ``forward(resid)`` maps ``(n, T, d)`` residual-stream inputs of the block to ``(n, k, V)``
    logits at the last ``k = score_len`` positions (all ``T`` when ``score_len`` is None). Only the
    block's own parameters require gradients; later blocks, the final norm and the unembedding
    are frozen copies. Built by :func:`block_tail`.
    """

    def __init__(self, model: nn.Module, block: int, score_len: int | None) -> None:
        super().__init__()
        cfg = model.config
        layers = model.model.layers
        self.block, self.score_len = block, score_len
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.act = layers[block].mlp.act_fn
        self.layers = nn.ModuleList(copy.deepcopy(layers[i]) for i in range(block, len(layers)))
        self.norm = copy.deepcopy(model.model.norm)
        self.lm_head = copy.deepcopy(model.lm_head)
        for p in self.parameters():
            p.requires_grad_(False)
        for p in self.layers[0].parameters():
            p.requires_grad_(True)
        n_ctx = int(cfg.max_position_embeddings)
        ref = next(model.parameters())
        with torch.no_grad():
            pos = torch.arange(n_ctx, device=ref.device)[None]
            cos, sin = model.model.rotary_emb(ref.new_zeros(1, n_ctx, 1), pos)
        self.register_buffer("rope_cos", cos[0].clone(), persistent=False)
        self.register_buffer("rope_sin", sin[0].clone(), persistent=False)

    def _layer(self, layer: nn.Module, h: torch.Tensor, q_from: int) -> torch.Tensor:
        n, T, _ = h.shape
        Tq, attn = T - q_from, layer.self_attn
        q_pos, k_pos = _positions(T, q_from, h.device)
        a = _rms(h, layer.input_layernorm)
        q = _lin(a[:, q_from:], attn.q_proj).view(n, Tq, self.n_heads, self.head_dim)
        k = _lin(a, attn.k_proj).view(n, T, self.n_kv, self.head_dim)
        v = _lin(a, attn.v_proj).view(n, T, self.n_kv, self.head_dim)
        q = _rotate(q.transpose(1, 2), self.rope_cos[q_pos], self.rope_sin[q_pos])
        k = _rotate(k.transpose(1, 2), self.rope_cos[k_pos], self.rope_sin[k_pos])
        rep = self.n_heads // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.transpose(1, 2).repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5
        scores = scores.masked_fill(~_attend_mask(T, q_from, h.device), float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        out = (probs @ v).transpose(1, 2).reshape(n, Tq, self.n_heads * self.head_dim)
        h = h[:, q_from:] + _lin(out, attn.o_proj)
        m, mlp = _rms(h, layer.post_attention_layernorm), layer.mlp
        return h + _lin(self.act(_lin(m, mlp.gate_proj)) * _lin(m, mlp.up_proj), mlp.down_proj)

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        T = resid.shape[-2]
        k = T if self.score_len is None else min(self.score_len, T)
        h = resid
        for i, layer in enumerate(self.layers):
            h = self._layer(layer, h, T - k if i == len(self.layers) - 1 else 0)
        return self.lm_head(_rms(h, self.norm))


def _block_index(model: nn.Module, block: int) -> int:
    layers = getattr(getattr(model, "model", None), "layers", None)
    cfg = getattr(model, "config", None)
    if layers is None or getattr(cfg, "model_type", None) not in ("llama",):
        raise PiamiTypeError(
            "block_tail takes a Hugging Face LlamaForCausalLM (e.g. load_gguf(smollm2_path()) or "
            f"tiny_llama), got {type(model).__name__}"
        )
    n = len(layers)
    if isinstance(block, bool) or not isinstance(block, int) or not -n <= block < n:
        raise PiamiValueError(
            f"block must be an integer in [-{n}, {n - 1}] (the model has {n} blocks; negative "
            f"counts from the end), got {block!r}"
        )
    return block % n


def block_tail(model: nn.Module, block: int, *, score_len: int | None = None) -> BlockTail:
    """The map from block ``block``'s input to the model's logits, only that block trainable.

    Runs block ``block`` and every later block (RMSNorm, rotary attention at positions
    ``0 .. T-1`` with the causal mask and grouped key-value heads, SwiGLU MLP), the final norm and
    the unembedding, as the full model does. With ``score_len`` the last block of the tail
    computes queries, MLP and logits at the last ``score_len`` positions only (keys and values at
    all positions): the same numbers at those positions, at a fraction of the cost.

    Args:
        model: a Hugging Face ``LlamaForCausalLM`` (not modified).
        block: block index; negative counts from the end.
        score_len: positions at the end whose logits are returned; ``None``: all.

    Returns:
        A :class:`BlockTail` on the model's device and dtype.

    Raises:
        PiamiTypeError: not a Llama model. PiamiValueError: ``block`` out of range, or a bad
            ``score_len``.

    Example:
        >>> from piami.models.pretrained import tiny_llama
        >>> tail = block_tail(tiny_llama(vocab_size=8, seed=0), -1, score_len=3)
        >>> tuple(tail(torch.zeros(2, 5, 64)).shape), tail.block
        ((2, 3, 8), 1)
    """
    b = _block_index(model, block)
    if score_len is not None and (
        isinstance(score_len, bool) or not isinstance(score_len, int) or score_len < 1
    ):
        raise PiamiValueError(f"score_len must be an integer >= 1 or None, got {score_len!r}")
    return BlockTail(model, b, score_len).eval()


def gradient_snr(tail: BlockTail, resid: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """How far the block is from a minimum: its mean loss gradient against sampling noise.

    With ``g_i`` the gradient (in the block's parameters) of piece ``i``'s mean scored loss,
    ``g_bar`` their mean over the ``n`` pieces and ``S = tr Cov(g_i)`` (``ddof=1``), the ratio
    ``r = |g_bar|^2 / (S / n)`` has expectation about 1 at a minimum of the expected loss (there
    ``E g_i = 0``, so ``E |g_bar|^2 = tr Cov / n``) and about ``1 + n |E g|^2 / tr Cov`` away from
    one (Fisher's ratio of a mean's square to its variance; for i.i.d. pieces).

    Returns:
        ``grad_snr`` (``r``), ``grad_norm`` (``|g_bar|``) and ``grad_noise`` (``sqrt(S / n)``).
    """
    params = list(tail.layers[0].parameters())
    n = len(resid)
    total = None
    sq = 0.0
    for i in range(n):
        loss = causal_lm_loss(tail(resid[i : i + 1]), targets[i : i + 1])
        g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params)]).double()
        total = g if total is None else total + g
        sq += float(g.square().sum())
    mean = total / n
    m2 = float(mean.square().sum())
    noise = max(n / (n - 1) * (sq / n - m2), 0.0) / n if n > 1 else float("nan")
    ratio = m2 / noise if noise > 0 else float("nan")
    return {"grad_snr": ratio, "grad_norm": m2**0.5, "grad_noise": noise**0.5}


def block_llc(
    model: nn.Module,
    ids: np.ndarray,
    *,
    block: int = LLC_BLOCK,
    seed: int,
    device: str = "auto",
    dtype: str = "float32",
    progress: bool = False,
    score_len: int = SCORE_LEN,
    resid: torch.Tensor | None = None,
    **sgld: Any,
) -> dict[str, Any]:
    """The LLC of block ``block`` of ``model`` on the text ``ids`` (the rest of the model fixed).

    Args:
        model: a Hugging Face ``LlamaForCausalLM`` (not modified).
        ids: ``(n_pieces, len + 1)`` token ids, prefix first (:func:`.depth.text_ids`); the
            inputs are ``ids[:, :-1]``, the targets ``ids[:, 1:]``.
        block: the block sampled (negative counts from the end).
        seed: seeds the minibatches and the SGLD noise.
        device, dtype: where and in what precision the chains run.
        progress: a tqdm bar while sampling.
        score_len: last positions of each piece whose next-token loss is scored.
        resid: the block's cached input ``blocks.{block}.hook_resid_pre`` on ``ids[:, :-1]``, if
            the caller has it (e.g. ``resid_post`` of the block before); else it is collected.
        **sgld: overrides of :data:`SGLD` (``step_size``, ``gamma``, ``n_beta``, ``n_chains``,
            ``n_burnin``, ``n_draws``, ``batch_size``).

    Returns:
        A JSON-ready dict: ``block``, ``llc_mean``, ``llc_std`` (across chains), ``llc_per_chain``,
        ``r_hat``, ``geweke_z``, ``converged`` (per chain), ``diverged`` (per chain),
        ``n_params`` (the block's ``d``), ``n`` (scored tokens), ``n_pieces``, ``score_len``,
        ``n_beta``, ``step_size``, ``gamma``, ``n_chains``, ``n_burnin``, ``n_draws``,
        ``batch_size``, ``reference_loss`` (``L_n(w*)``), ``loss_burnin_mean`` and
        ``loss_draws_mean`` (per chain), ``loss_draws_std`` (per chain, over draws),
        ``seconds_cache``, ``seconds_sampling`` and ``seconds`` (all of it).
    """
    t0 = time.perf_counter()
    unknown = set(sgld) - set(SGLD)
    if unknown:
        raise PiamiValueError(f"unknown SGLD settings {sorted(unknown)}; known: {sorted(SGLD)}")
    settings = {**SGLD, **sgld}
    if settings["n_chains"] < 4:
        raise PiamiValueError(f"n_chains must be >= 4 for R-hat, got {settings['n_chains']}")
    b = _block_index(model, block)
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] < 3 or ids.dtype.kind not in "iu":
        raise PiamiValueError(f"ids must be integer (n_pieces, len + 1 >= 3), got {ids.shape}")
    x = ids[:, :-1]
    if resid is None:
        name = f"blocks.{b}.hook_resid_pre"
        resid = collect_activations(model, x, [name], batch_size=8, device=device)[name]
    resid = torch.as_tensor(resid).detach()
    if tuple(resid.shape[:2]) != x.shape:
        raise PiamiValueError(f"resid must be (n_pieces, len) = {x.shape}, got {resid.shape}")
    k = min(score_len, x.shape[1])
    targets = torch.as_tensor(ids[:, 1:][:, -k:].astype(np.int64))
    t_cache = time.perf_counter() - t0
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    tail = block_tail(model, b, score_len=k).to(device=dev, dtype=dt)
    n_tok = int(targets.numel())
    n_beta = settings["n_beta"] if settings["n_beta"] is not None else n_tok / np.log(n_tok)
    est = LLCEstimator(
        **{**settings, "n_beta": float(n_beta)},
        random_state=seed,
        device=str(dev),
        dtype=dtype,
        progress=progress,
    )
    snr = gradient_snr(tail, resid.to(device=dev, dtype=dt), targets.to(dev))
    est.fit(tail, (resid.to(dt), targets), causal_lm_loss)
    diag, trace, nb = est.diagnostics_, est.loss_trace_, settings["n_burnin"]
    d = sum(p.numel() for p in tail.layers[0].parameters())
    return {
        "block": b,
        "llc_mean": float(est.llc_mean_),
        "llc_std": float(est.llc_std_),
        "llc_per_chain": [float(v) for v in est.llc_per_chain_],
        "r_hat": float(diag["r_hat"]),
        "geweke_z": [float(v) for v in diag["geweke_z"]],
        "converged": [bool(v) for v in diag["converged"]],
        "diverged": [bool(v) for v in diag["diverged"]],
        "n_params": int(d),
        "n": n_tok,
        "n_pieces": int(x.shape[0]),
        "score_len": int(k),
        "n_beta": float(est.n_beta_),
        **{key: settings[key] for key in ("step_size", "gamma", "n_chains", "n_burnin")},
        **{key: settings[key] for key in ("n_draws", "batch_size")},
        "reference_loss": float(est.reference_loss_),
        "loss_burnin_mean": [float(v) for v in np.nanmean(trace[:, :nb], axis=1)] if nb else [],
        "loss_draws_mean": [float(v) for v in np.nanmean(trace[:, nb:], axis=1)],
        "loss_draws_std": [float(v) for v in np.nanstd(trace[:, nb:], axis=1)],
        **snr,
        "seconds_cache": float(t_cache),
        "seconds_sampling": float(diag["seconds"]),
        "seconds": float(time.perf_counter() - t0),
    }


#: The random-weight control passes when the block's mean gradient is at least this many times
#: its sampling noise (in squared norm; about 1 at a minimum, a priori: "clearly not a minimum").
SNR_MIN = 4.0


def _chain_note(r: dict[str, Any]) -> str:
    per = ", ".join(f"{v:.4g}" for v in r["llc_per_chain"])
    z = ", ".join(f"{v:.2f}" for v in r["geweke_z"])
    drop = ", ".join(
        f"{a:.4g}/{b:.4g}"
        for a, b in zip(r["loss_burnin_mean"], r["loss_draws_mean"], strict=False)
    )
    return (
        f"block {r['block']} (d = {r['n_params']:,}): per-chain LLC [{per}]; split R-hat "
        f"{r['r_hat']:.3f}; Geweke z [{z}]; diverged {sum(r['diverged'])}/{len(r['diverged'])}; "
        f"L_n(w*) = {r['reference_loss']:.4g} nats, mean loss burn-in/draws per chain [{drop}]; "
        f"n = {r['n']} scored tokens ({r['n_pieces']} pieces x last {r['score_len']}), "
        f"n beta = {r['n_beta']:.4g}, step {r['step_size']:g}, gamma {r['gamma']:g}, "
        f"{r['n_chains']} chains x ({r['n_burnin']} burn-in + {r['n_draws']} draws), "
        f"{r['batch_size']} piece(s) per step; gradient signal-to-noise {r['grad_snr']:.3g}; "
        f"{r['seconds']:.0f} s"
    )


def _mean_interval(r: dict[str, Any]) -> tuple[float, float, int]:
    """Mean LLC, its standard error from the chain spread, and the chains behind it."""
    v = np.asarray(r["llc_per_chain"], dtype=float)
    v = v[np.isfinite(v)]
    se = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(np.mean(v)) if v.size else float("nan"), se, int(v.size)


def block_llc_rows(llc: dict[str, dict[str, Any]]) -> list[Comparison]:
    """Rows of the block LLC: two sanity rows, the hypothesis and the random-weight control.

    Args:
        llc: ``{"model": block_llc(pretrained), "random": block_llc(random weights)}``.

    Rows:
        * sanity: the pretrained chains converge: split R-hat <= :data:`RHAT_MAX`;
        * sanity: no pretrained chain diverged or drifts (Geweke |z| <= :data:`GEWEKE_MAX`);
        * sanity: ``0 < lambda_hat <= d/2`` for the pretrained block (Watanabe 2009: the RLCT of
          a model with ``d`` parameters is at most ``d/2``; outside, the sampler does not
          measure an LLC);
        * prediction: ``lambda_hat(pretrained) - lambda_hat(random) > 0``, decided by its 95%
          Welch interval from the chain spread (not identified when it holds 0, or when either
          set of chains failed R-hat);
        * control: the random-weight block is not at a minimum: its mean loss gradient is at
          least :data:`SNR_MIN` times its sampling noise (:func:`gradient_snr`; about 1 at a
          minimum). Its ``lambda_hat`` is then what the sampler reads, not an LLC (the LLC is
          defined at a minimum).
    """
    from scipy import stats

    m, r = llc["model"], llc["random"]
    d = float(m["n_params"])
    bad = [
        i
        for i, (z, div) in enumerate(zip(m["geweke_z"], m["diverged"], strict=True))
        if div or not (np.isfinite(z) and abs(z) <= GEWEKE_MAX)
    ]
    rhat = Comparison(
        name="block LLC: pretrained chains converge (split R-hat)",
        kind="sanity",
        predicted=RHAT_MAX,
        measured=m["r_hat"],
        tolerance=0.0,
        sense="at_most",
        tolerance_source=f"paper: split R-hat <= {RHAT_MAX} (Gelman et al. 2013, BDA3 11.4)",
        note=_chain_note(m),
    )
    drift = Comparison(
        name="block LLC: pretrained chains neither diverge nor drift (chains failing)",
        kind="sanity",
        predicted=0.0,
        measured=float(len(bad)),
        tolerance=0.0,
        sense="at_most",
        tolerance_source=f"a priori: every chain finite, with Geweke |z| <= {GEWEKE_MAX} on its "
        "draws (Geweke 1992: first 10% vs last 50%)",
        note=f"failing chains {bad}; " + _chain_note(m),
    )
    mean_m, se_m, k_m = _mean_interval(m)
    tq = float(stats.t.ppf(0.975, k_m - 1)) if k_m > 1 else float("nan")
    bounds = Comparison(
        name="block LLC: pretrained estimate lies in (0, d/2]",
        kind="sanity",
        predicted=d / 4.0,
        measured=m["llc_mean"],
        tolerance=d / 4.0,
        sense="within",
        tolerance_source="derived: 0 <= lambda <= d/2 for any model with d parameters "
        "(Watanabe 2009, Thm 7.2 with the regular case as upper bound)",
        measured_interval=(mean_m - tq * se_m, mean_m + tq * se_m) if k_m > 1 else None,
        unit="",
        note=f"d/2 = {d / 2:,.0f}; " + _chain_note(m),
    )
    mean_r, se_r, k_r = _mean_interval(r)
    diff = mean_m - mean_r
    se = float(np.hypot(se_m, se_r))
    # Welch-Satterthwaite degrees of freedom of the difference of two chain means
    df = se**4 / ((se_m**4 / (k_m - 1)) + (se_r**4 / (k_r - 1))) if k_m > 1 and k_r > 1 else 0
    half = float(stats.t.ppf(0.975, df)) * se if df > 0 and np.isfinite(se) else float("nan")
    why = ""
    if not np.isfinite(half):
        why = "fewer than two finite chains, so no interval"
    elif diff - half <= 0.0 <= diff + half:
        why = "the 95% interval of the difference holds 0"
    fails = [f"{w} R-hat {x['r_hat']:.3f}" for w, x in llc.items() if not x["r_hat"] <= RHAT_MAX]
    if fails and not why:
        why = "chains not converged (" + "; ".join(fails) + f" > {RHAT_MAX})"
    hyp = Comparison(
        name="block LLC: pretrained block above the same block with random weights "
        "(difference of LLC estimates)",
        kind="prediction",
        predicted=0.0,
        measured=diff,
        tolerance=0.0,
        sense="at_least",
        tolerance_source="measured noise: 95% Welch t interval of the difference from the spread "
        "of the chains; not identified when it holds 0",
        measured_interval=(diff - half, diff + half) if np.isfinite(half) else None,
        not_identified=why,
        reference="hypothesis: " + LLC_REF + " (the LLC grows during training)",
        note=f"pretrained {mean_m:.4g} +- {se_m:.3g}, random {mean_r:.4g} +- {se_r:.3g} (se over "
        f"chains); random: " + _chain_note(r),
    )
    ctrl = Comparison(
        name="block LLC: the random-weight block is not at a minimum (gradient signal-to-noise)",
        kind="control",
        predicted=SNR_MIN,
        measured=r["grad_snr"],
        tolerance=0.0,
        sense="at_least",
        tolerance_source=f"a priori: |mean gradient|^2 at least {SNR_MIN:g} x its sampling "
        "variance tr Cov / n (expected about 1 at a minimum)",
        note=f"random: |g| = {r['grad_norm']:.3g}, noise {r['grad_noise']:.3g}; pretrained "
        f"(not scored): ratio {m['grad_snr']:.3g}, |g| = {m['grad_norm']:.3g}, noise "
        f"{m['grad_noise']:.3g}; away from a minimum the chains' lambda_hat is what the sampler "
        "reads, not an LLC",
    )
    return [rhat, drift, bounds, hyp, ctrl]


__all__ = [
    "GEWEKE_MAX",
    "LLC_BLOCK",
    "LLC_REF",
    "RHAT_MAX",
    "SCORE_LEN",
    "SGLD",
    "SNR_MIN",
    "BlockTail",
    "block_llc",
    "block_llc_rows",
    "block_tail",
    "gradient_snr",
]
