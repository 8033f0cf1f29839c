"""Grokking modular addition, read out in the Fourier basis (Nanda et al. 2023).

A one-layer transformer without LayerNorm learns ``(a + b) mod p`` from a fraction of the ``p^2``
pairs, trained full batch by AdamW with strong weight decay. It first memorizes the training pairs
(train loss falls, test loss rises), then -- much later and abruptly -- generalizes. Nanda et al. 2023
("Progress measures for grokking via mechanistic interpretability", ICLR 2023) showed that the
generalizing network computes ``logit(c) ~ sum_k cos(w_k (a + b - c))`` over a few key frequencies
``w_k = 2 pi k / p``. This experiment measures:

- train and test loss and accuracy, every ``eval_every`` epochs;
- the Fourier spectrum of the embedding and its key frequencies
  (:func:`piami.instruments.fourier.key_frequencies`);
- progress measures on saved snapshots (Nanda et al., section 5.1): the *restricted loss* (logits
  kept to the key-frequency waves of ``a + b``, all pairs) and the *excluded loss* (those waves
  removed, training pairs);

and compares: (1) after the test loss has fallen, the key frequencies explain at least 90% of the
logits' variance on the held-out pairs; (2) the rise of test accuracy is sharp. Sharpness is the
width ``(t_90 - t_10) / t_50`` of the test-accuracy rise, ``t_x`` being the first epoch at which the
test accuracy reaches ``x`` (linear interpolation between evaluations). A smooth saturating curve
``1 - exp(-t / tau)`` has width ``(ln 10 - ln(10/9)) / ln 2 = 3.17``; a transition counts as sharp
when its width is at most 0.5, six times narrower. A third comparison checks that generalization
*lags* memorization (the grokking delay).

The width and delay bars conflict unless test accuracy stays below 10% through memorization: if
``t_10 ~ t50(train)``, the width is at least ``1 - 1/delay`` (0.5 at delay 2). A shortcut does
that: with near-uniform attention the output depends on ``W_E[a] + W_E[b]``, so memorizing
``(a, b)`` answers ``(b, a)`` (30% of the held-out pairs have a trained mirror; measured at the
previous default, seed 1: mirror pairs 0.3-0.4 right after memorization, width 0.81).
``qk_init_scale`` starts ``W_Q, W_K`` larger so that attention, and memorization, is
order-specific; the curves split test accuracy into mirror and novel held-out pairs. The model is
smaller than Nanda et al.'s so that it takes minutes on a CPU (per-seed numbers: ``Config``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import DivergenceError, PiamiValueError
from piami.experiments._modular_plots import figures as _figures
from piami.instruments import fourier
from piami.lab import Comparison, Experiment, Result
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.models.transformer import Transformer, TransformerConfig
from piami.processes.modular import ModularAddition

REFERENCE = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability"
SHARP_WIDTH = 0.5  # largest (t90 - t10) / t50 that counts as sharp; 1 - exp(-t/tau) gives 3.17
MIN_FVE = 0.9  # share of held-out logit variance the key frequencies must explain (the bar)
MIN_DELAY = 2.0  # t50(test) / t50(train) at least this: generalization lags memorization
CURVES = ("train_loss", "test_loss", "train_acc", "test_acc", "test_acc_mirror", "test_acc_novel")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the modular-addition grokking run.

    Per seed at the default, ``piami run modular-addition --set seed=S`` (pass: FVE >= 0.9, width
    <= 0.5, delay >= 2; CPU s of training on a 2-core machine shared with other jobs; the whole
    run, progress measures and figures included, took 204-218 s wall). 3 of 5 seeds pass all:

    ====  =====  =====  =====  ==================  ========  =================================
    seed  FVE    width  delay  t10 / t50 / t90     test acc  train CPU s, verdict
    ====  =====  =====  =====  ==================  ========  =================================
    0     0.966  0.168  4.39   591 / 668 / 702     1.000     192, passes
    1     0.961  0.116  9.89   1226 / 1330 / 1380  0.987     196, passes (groks just in time)
    2     0.961  0.393  1.92   169 / 235 / 262     0.995     199, FAILS delay (groks early)
    3     --     0.844  2.28   140 / 248 / 349     0.972     202, FAILS width; no key freqs
    4     0.983  0.223  2.92   293 / 351 / 371     1.000     201, passes
    ====  =====  =====  =====  ==================  ========  =================================

    Seed 3: key_frequencies found none, so FVE was not measured although test accuracy is 0.97.
    Tried, seeds 0-2 (width / delay): lr 3e-3 wd 4.5 qk 1 (the previous default): 0.24/3.0,
    0.81/2.4, 0.20/1.13. lr 4e-3 wd 2.5 qk 4: seed 1 0.23/7.3, seed 2 0.99/2.9. lr 4e-3 wd 2.5
    qk 8: seeds 2, 3 0.26/7.1, 0.32/8.3, seeds 0, 1, 4 not grokked by epoch 1500. Lower wd at qk 1
    (lr 3e-3 wd 2.5; 6e-3 wd 1.5-2; 1e-2 wd 1.2), d_mlp 512, beta2 0.999, init_std 0.07-0.2: the
    mirror shortcut lifts test accuracy at memorization, widths 0.55-0.99. Splitting unordered
    pairs (no mirrors) did not grok in 1500 epochs.
    """

    seed: int = 0  # seeds the train/test split and the initial weights
    p: int = 113  # modulus, as Nanda et al.
    frac_train: float = 0.3  # fraction of the p^2 pairs trained on, as Nanda et al.
    d_model: int = 64  # residual width (Nanda et al.: 128)
    n_heads: int = 4  # attention heads, each of width d_model / n_heads
    d_mlp: int = 256  # MLP hidden width (Nanda et al.: 512)
    init_std: float = 0.1  # std of the initial weights (Nanda et al.: ~1/sqrt(d_model))
    qk_init_scale: float = 8.0  # W_Q, W_K start at std init_std * this: non-uniform attention
    lr: float = 5e-3  # AdamW learning rate (Nanda et al.: 1e-3)
    weight_decay: float = 3.0  # AdamW decoupled weight decay (Nanda et al.: 1.0); see run()
    n_epochs: int = 1500  # full-batch steps (Nanda et al.: 40k)
    eval_every: int = 10  # epochs between evaluations of train and test loss and accuracy
    n_snapshots: int = 40  # weight snapshots kept for the progress measures
    n_threads: int = 1  # torch CPU threads while training: 1 is fastest for a model this small
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype of the weights

    def __post_init__(self) -> None:
        for name in ("p", "d_model", "n_heads", "d_mlp", "n_epochs", "eval_every", "n_snapshots",
                     "n_threads"):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.p < 5:
            raise PiamiValueError(f"p must be >= 5 to have frequencies to find, got {self.p}")
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"
            )
        if not 0.0 < self.frac_train < 1.0:
            raise PiamiValueError(f"frac_train must lie in (0, 1), got {self.frac_train!r}")
        for name in ("init_std", "qk_init_scale", "lr"):
            if not (math.isfinite(v := getattr(self, name)) and v > 0):
                raise PiamiValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise PiamiValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.eval_every > self.n_epochs:
            raise PiamiValueError(
                f"eval_every ({self.eval_every}) must not exceed n_epochs ({self.n_epochs})"
            )
        resolve_device(self.device)
        resolve_dtype(self.dtype)


@dataclass(kw_only=True)
class GrokkingRun:
    """What :func:`train` returns: the trained model, its curves and snapshots."""

    model: Transformer  # the network after the last epoch
    task: ModularAddition  # the data set
    train_mask: np.ndarray  # (p, p) bool: the training pairs
    epochs: np.ndarray  # (n_evals,) epochs at which the curves were measured
    curves: dict[str, np.ndarray]  # per eval: train/test loss (nats) and accuracy, and the test
    # accuracy on held-out pairs whose mirror (b, a) was trained on / was not (mirror, novel)
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    wall_s: float = 0.0  # seconds spent training (wall clock)
    cpu_s: float = 0.0  # CPU seconds spent training, all threads (less sensitive to machine load)


def logit_table(model: Transformer, task: ModularAddition) -> np.ndarray:
    """Logits ``[a, b, c]`` (float64, shape ``(p, p, p)``) at the ``'='`` position, answers only."""
    tokens, _ = task.all_pairs()
    with torch.no_grad():
        out = model(torch.as_tensor(tokens, device=model.device))[:, -1, : task.p]
    return out.double().cpu().numpy().reshape(task.p, task.p, task.p)


def train(cfg: Config, *, progress: bool = False) -> GrokkingRun:
    """Train the one-layer transformer full batch and record its curves (see the module docstring).

    Uses ``cfg.n_threads`` torch CPU threads and restores the previous setting afterwards.
    """
    with limit_threads(cfg.n_threads):
        return _train(cfg, progress=progress)


def _train(cfg: Config, *, progress: bool) -> GrokkingRun:
    from tqdm.auto import tqdm

    task = ModularAddition(p=cfg.p)
    train_idx, test_idx = task.split(cfg.frac_train, rng=np.random.default_rng(cfg.seed))
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    tcfg = TransformerConfig(
        n_layers=1,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        d_head=cfg.d_model // cfg.n_heads,
        d_mlp=cfg.d_mlp,
        n_ctx=3,
        d_vocab=task.d_vocab,
        act_fn="relu",
        normalization="none",
        init_std=cfg.init_std,
    )
    model = Transformer(
        tcfg, generator=torch.Generator().manual_seed(cfg.seed), device=device, dtype=dtype
    )
    with torch.no_grad():  # uniform attention makes the net symmetric in a, b (see module doc)
        model.blocks[0].attn.W_Q.mul_(cfg.qk_init_scale)
        model.blocks[0].attn.W_K.mul_(cfg.qk_init_scale)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )  # betas as in Nanda et al.
    tokens, answers = (torch.as_tensor(t, device=device) for t in task.all_pairs())
    tr = torch.as_tensor(train_idx, device=device)
    te = torch.as_tensor(test_idx, device=device)
    train_mask = task.mask(train_idx)
    mirror = (train_mask.T & ~train_mask).ravel()  # held out, but (b, a) is a training pair
    mi, no = (
        torch.as_tensor(np.flatnonzero(m), device=device)
        for m in (mirror, ~train_mask.ravel() & ~mirror)
    )
    x_tr, y_tr = tokens[tr], answers[tr]
    snap_every = cfg.eval_every * max(1, cfg.n_epochs // (cfg.n_snapshots * cfg.eval_every))
    epochs, rows, snapshots = [], [], []

    def evaluate(epoch: int) -> None:
        with torch.no_grad():
            logits = model(tokens)[:, -1, : task.p]
            loss = F.cross_entropy(logits, answers, reduction="none")
            hit = (logits.argmax(-1) == answers).to(logits.dtype)
        if not torch.isfinite(loss).all():
            raise DivergenceError(
                f"modular-addition diverged by epoch {epoch} (non-finite loss); lower lr={cfg.lr}"
            )
        epochs.append(epoch)
        parts = (loss[tr], loss[te], hit[tr], hit[te], hit[mi], hit[no])
        rows.append([float(x.mean()) if x.numel() else math.nan for x in parts])
        if epoch % snap_every == 0 or epoch == cfg.n_epochs:
            snapshots.append(
                (epoch, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
            )

    t0, c0 = time.perf_counter(), time.process_time()
    evaluate(0)
    bar = tqdm(range(1, cfg.n_epochs + 1), disable=not progress, desc="modular-addition")
    for epoch in bar:
        loss = F.cross_entropy(model(x_tr)[:, -1, : task.p], y_tr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if epoch % cfg.eval_every == 0 or epoch == cfg.n_epochs:
            evaluate(epoch)
            if progress:
                bar.set_postfix(
                    train=f"{rows[-1][0]:.3g}", test=f"{rows[-1][1]:.3g}", acc=f"{rows[-1][3]:.2f}"
                )
    cols = np.asarray(rows)
    curves = {k: cols[:, i] for i, k in enumerate(CURVES)}
    return GrokkingRun(
        model=model,
        task=task,
        train_mask=train_mask,
        epochs=np.asarray(epochs),
        curves=curves,
        snapshots=snapshots,
        wall_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
    )


def crossing_epoch(epochs: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """First epoch at which ``values`` reaches ``level``, interpolated linearly between evaluations.

    Returns ``None`` when the curve never reaches ``level``.
    """
    above = np.flatnonzero(values >= level)
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(epochs[0])
    v0, v1 = float(values[i - 1]), float(values[i])
    return float(epochs[i - 1] + (level - v0) / (v1 - v0) * (epochs[i] - epochs[i - 1]))


def progress_measures(run: GrokkingRun, keys: np.ndarray) -> dict[str, list[float]]:
    """Restricted loss (all pairs), excluded loss (training pairs) and held-out FVE per snapshot."""
    model = Transformer(  # weights overwritten below; own generator leaves torch's global RNG be
        run.model.cfg,
        generator=torch.Generator(),
        device=run.model.device,
        dtype=run.model.W_E.dtype,
    )
    test_mask = ~run.train_mask
    out: dict[str, list[float]] = {"epoch": [], "restricted_loss": [], "excluded_loss": []}
    out["test_fve"] = []
    for epoch, state in run.snapshots:
        model.load_state_dict(state)
        logits = logit_table(model, run.task)
        out["epoch"].append(epoch)
        out["restricted_loss"].append(fourier.restricted_loss(logits, keys))
        out["excluded_loss"].append(fourier.excluded_loss(logits, keys, run.train_mask))
        out["test_fve"].append(fourier.logit_variance_explained(logits, keys, test_mask))
    return out


def run(cfg: Config, *, progress: bool = True) -> Result:
    """Train, read the network out in the Fourier basis, and compare (see the module docstring)."""
    result = Result(
        experiment="modular-addition",
        config={},
        seed=cfg.seed,
        description=(
            f"A one-layer ReLU transformer without LayerNorm (d_model {cfg.d_model}, {cfg.n_heads} "
            f"heads, d_mlp {cfg.d_mlp}) learns (a + b) mod {cfg.p} from {cfg.frac_train:.0%} of the "
            f"pairs, full batch, AdamW lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, W_Q/W_K "
            f"init x{cfg.qk_init_scale:g}, {cfg.n_epochs} epochs. Nanda et al. 2023 (p = 113, 30%, "
            "d_model 128, lr 1e-3, wd 1) grok after ~10k epochs; the default halves the width and "
            "takes lr x wd 15x larger. Near-uniform attention lets memorizing (a, b) answer (b, a), "
            "which lifts test accuracy past 10% at memorization and forces width >= 1 - 1/delay; "
            "larger W_Q/W_K at init suppress it (test accuracy is also reported on mirror and novel "
            "held-out pairs). Grokking time is strongly seed-dependent (t90 from 260 to 1380 "
            "epochs): seeds 0, 1, 4 pass all bars, seed 2 has delay 1.92 and seed 3 width 0.84 "
            "(see Config). Key frequencies "
            "come from the embedding's spectrum; progress measures use them on snapshots."
        ),
    )
    run_ = train(cfg, progress=progress)
    spec = fourier.embedding_spectrum(run_.model.W_E, cfg.p)
    keys = fourier.key_frequencies(spec)
    prog = {k: [] for k in ("epoch", "restricted_loss", "excluded_loss", "test_fve")}
    with limit_threads(cfg.n_threads):
        logits = logit_table(run_.model, run_.task)
        if keys.size:
            prog = progress_measures(run_, keys)
    test_mask = ~run_.train_mask
    e, c = run_.epochs, run_.curves
    t10, t50, t90 = (crossing_epoch(e, c["test_acc"], x) for x in (0.1, 0.5, 0.9))
    t50_train = crossing_epoch(e, c["train_acc"], 0.5)
    grokked = t90 is not None and c["test_acc"][-1] >= 0.9
    fve = fourier.logit_variance_explained(logits, keys, test_mask) if keys.size else None
    width = (t90 - t10) / t50 if None not in (t10, t50, t90) and t50 > 0 else None
    delay = t50 / t50_train if t50 is not None and t50_train else None

    def compare(name: str, bar: float, measured, sense: str, note: str, ref: str = "") -> None:
        result.comparisons.append(
            Comparison(name=name, predicted=bar, measured=measured, tolerance=0.0, sense=sense,
                       reference=REFERENCE + ref, note=note)
        )  # fmt: skip

    compare(
        "share of held-out logit variance in the key frequencies, after the test loss fell",
        MIN_FVE,
        fve if grokked else None,
        "at_least",
        "The generalizing circuit writes logits as sum_k alpha_k cos(w_k (a+b-c)); the 90% bar is "
        "the issue's. Measured at the last epoch on the held-out pairs, with key frequencies read "
        "off the embedding (not fitted to the logits)."
        if grokked and keys.size
        else "Not measured: the embedding spectrum gave no key frequency."
        if grokked
        else "Not measured: the test accuracy never reached 90%, so the test loss did not fall.",
        ", eq. 1 and section 5.1",
    )
    compare(
        "width of the test-accuracy rise, (t90 - t10) / t50",
        SHARP_WIDTH,
        width,
        "at_most",
        "t_x: first epoch the test accuracy reaches x (linear interpolation between evaluations "
        f"every {cfg.eval_every} epochs). A smooth 1 - exp(-t/tau) has width 3.17; a sharp "
        "transition is at least six times narrower (<= 0.5).",
        "; Power et al. 2022",
    )
    compare(
        "grokking delay, t50(test accuracy) / t50(train accuracy)",
        MIN_DELAY,
        delay,
        "at_least",
        "Generalization lags memorization: test accuracy reaches 50% at least twice as late as "
        "train accuracy.",
        "; Power et al. 2022",
    )
    m = result.metrics
    m["key_frequencies"] = keys.tolist()
    m["embedding_energy_in_key_frequencies"] = float(spec[keys].sum() / spec.sum())
    m["embedding_spectrum"] = (spec / spec.sum()).tolist()
    m["test_fve_final"] = fve
    m["epochs_test_acc_10_50_90"] = [t10, t50, t90]
    m["epoch_train_acc_50"] = t50_train
    m["final"] = {k: float(v[-1]) for k, v in c.items()}
    m["final_restricted_loss"] = fourier.restricted_loss(logits, keys) if keys.size else None
    m["final_excluded_loss_train"] = (
        fourier.excluded_loss(logits, keys, run_.train_mask) if keys.size else None
    )
    m["train_wall_s"] = run_.wall_s
    m["train_cpu_s"] = run_.cpu_s
    m["epochs_per_s"] = cfg.n_epochs / run_.wall_s
    m["progress_measures"] = prog
    step = max(1, len(e) // 200)
    m["curves"] = {"epoch": e[::step].tolist(), **{k: v[::step].tolist() for k, v in c.items()}}
    _figures(result, run_, prog, spec, keys, {"t10": t10, "t50": t50, "t90": t90})
    return result


QUICK = dict(p=31, frac_train=0.5, d_model=32, d_mlp=128, lr=5e-3, weight_decay=3.0, n_epochs=600)
QUICK["qk_init_scale"] = 1.0  # as validated before the default moved to 8; 8 is untested here

EXPERIMENT = Experiment(
    name="modular-addition",
    config_cls=Config,
    run=run,
    quick={**QUICK, "eval_every": 10},  # p = 31, half the pairs: learns, not groks
    summary="Grokking (a + b) mod p: Fourier key frequencies, progress measures, sharp transition",
)
