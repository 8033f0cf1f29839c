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
The default is smaller than Nanda et al.'s run so that it takes minutes on a CPU (see ``Config``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from piami.errors import DivergenceError, PiamiValueError
from piami.experiments.registry import Experiment
from piami.experiments.result import Comparison, Result
from piami.instruments import fourier
from piami.models.device import limit_threads, resolve_device, resolve_dtype
from piami.models.transformer import Transformer, TransformerConfig
from piami.processes.modular import ModularAddition

REFERENCE = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability"
SHARP_WIDTH = 0.5  # largest (t90 - t10) / t50 that counts as sharp; 1 - exp(-t/tau) gives 3.17
MIN_FVE = 0.9  # share of held-out logit variance the key frequencies must explain (the bar)
MIN_DELAY = 2.0  # t50(test) / t50(train) at least this: generalization lags memorization


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the modular-addition grokking run."""

    seed: int = 0  # seeds the train/test split and the initial weights
    p: int = 113  # modulus, as Nanda et al.
    frac_train: float = 0.3  # fraction of the p^2 pairs trained on, as Nanda et al.
    d_model: int = 64  # residual width (Nanda et al.: 128)
    n_heads: int = 4  # attention heads, each of width d_model / n_heads
    d_mlp: int = 256  # MLP hidden width (Nanda et al.: 512)
    init_std: float = 0.1  # std of the initial weights (Nanda et al.: ~1/sqrt(d_model))
    lr: float = 3e-3  # AdamW learning rate (Nanda et al.: 1e-3)
    weight_decay: float = 4.5  # AdamW decoupled weight decay (Nanda et al.: 1.0); see run()
    n_epochs: int = 900  # full-batch steps (Nanda et al.: 40k)
    eval_every: int = 20  # epochs between evaluations of train and test loss and accuracy
    n_snapshots: int = 40  # weight snapshots kept for the progress measures
    n_threads: int = 1  # torch CPU threads while training: 1 is fastest for a model this small
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype of the weights

    def __post_init__(self) -> None:
        ints = ("p", "d_model", "n_heads", "d_mlp", "n_epochs", "eval_every", "n_snapshots")
        ints += ("n_threads",)
        for name in ints:
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
        for name in ("init_std", "lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise PiamiValueError(
                    f"{name} must be a finite number > 0, got {getattr(self, name)!r}"
                )
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
    curves: dict[str, np.ndarray]  # train_loss, test_loss (nats), train_acc, test_acc per eval
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
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )  # betas as in Nanda et al.
    tokens, answers = (torch.as_tensor(t, device=device) for t in task.all_pairs())
    tr = torch.as_tensor(train_idx, device=device)
    te = torch.as_tensor(test_idx, device=device)
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
        rows.append([float(x.mean()) for x in (loss[tr], loss[te], hit[tr], hit[te])])
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
    curves = {
        k: cols[:, i] for i, k in enumerate(("train_loss", "test_loss", "train_acc", "test_acc"))
    }
    return GrokkingRun(
        model=model,
        task=task,
        train_mask=task.mask(train_idx),
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


def _figures(result: Result, run: GrokkingRun, prog: dict, spec: np.ndarray, keys, marks) -> None:
    import matplotlib.pyplot as plt

    c, e = run.curves, run.epochs
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.semilogy(e, c["train_loss"], label="train loss")
    ax1.semilogy(e, c["test_loss"], label="test loss")
    ax1.semilogy(prog["epoch"], prog["restricted_loss"], "o-", ms=3, label="restricted loss")
    ax1.semilogy(prog["epoch"], prog["excluded_loss"], "s-", ms=3, label="excluded loss (train)")
    ax1.set(xlabel="epoch", ylabel="cross entropy (nats)", title="losses and progress measures")
    ax2.plot(e, c["train_acc"], label="train accuracy")
    ax2.plot(e, c["test_acc"], label="test accuracy")
    ax2.plot(prog["epoch"], prog["test_fve"], "o-", ms=3, label="key-frequency FVE (test)")
    for name, t in marks.items():
        if t is not None:
            ax2.axvline(t, color="gray", lw=0.8, ls=":")
            ax2.text(t, 0.02, name, rotation=90, fontsize=7, color="gray")
    ax2.set(xlabel="epoch", ylim=(-0.05, 1.05), title="accuracy and variance explained")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7)
    result.add_figure(
        "curves",
        fig,
        "Left: train and test loss; restricted loss (logits kept to the key-frequency waves, all "
        "pairs) and excluded loss (those waves removed, training pairs). Right: accuracies, the "
        "share of held-out logit variance in the key frequencies, and t10/t50/t90 of test accuracy.",
    )
    fig, ax = plt.subplots(figsize=(8, 3))
    colors = ["C3" if i in set(keys.tolist()) else "C0" for i in range(spec.size)]
    ax.bar(np.arange(spec.size), spec / spec.sum(), color=colors)
    ax.set(xlabel="frequency k (w = 2 pi k / p)", ylabel="share of ||W_E||^2", title="embedding")
    result.add_figure(
        "embedding_spectrum",
        fig,
        f"Energy of the number embeddings per frequency; key frequencies {keys.tolist()} in red.",
    )


def run(cfg: Config, *, progress: bool = True) -> Result:
    """Train, read the network out in the Fourier basis, and compare (see the module docstring)."""
    result = Result(
        experiment="modular-addition",
        config={},
        seed=cfg.seed,
        description=(
            f"A one-layer ReLU transformer without LayerNorm (d_model {cfg.d_model}, {cfg.n_heads} "
            f"heads, d_mlp {cfg.d_mlp}) learns (a + b) mod {cfg.p} from {cfg.frac_train:.0%} of the "
            f"pairs, full batch, AdamW lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, "
            f"{cfg.n_epochs} epochs. Nanda et al. 2023 (p = 113, 30% of pairs, d_model 128, lr 1e-3, "
            "wd 1) grok after ~10k epochs, beyond minutes on a CPU. The default keeps p = 113 and "
            "30% but halves the width and takes lr x wd 13.5x larger (decay time 1 / (lr wd)). "
            "Tuned at seed 0; sharpness is seed-dependent: seed 1 groks with width 0.81 (not "
            "sharp). Wd 4.0 had not grokked by epoch 800, 5.0 generalized without memorizing first; "
            "p = 59 on 30-40% of the pairs grokked after a slow creep (width 0.7-1.0). Key "
            "frequencies are read off the embedding's Fourier spectrum; progress measures use the "
            "final key frequencies on snapshots taken during training."
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

EXPERIMENT = Experiment(
    name="modular-addition",
    config_cls=Config,
    run=run,
    quick={**QUICK, "eval_every": 10},  # p = 31, half the pairs: learns, not groks
    summary="Grokking (a + b) mod p: Fourier key frequencies, progress measures, sharp transition",
)
