"""Settings of the modular-addition grokking experiment and the bars its rows are judged against.

:class:`SeedConfig` is one seed's training run (Nanda et al. 2023's recipe, scaled down; see
:mod:`piami.experiments.modular_addition` for the reasons); :class:`Config` adds ``n_seeds`` for the
whole experiment. The bars (:data:`MIN_TEST_ACC`, :data:`MIN_DELAY`, :data:`SHARP_WIDTH`,
:data:`MIN_FVE`, :data:`RATE_BAR`) were fixed before any run of this design, and
:func:`horizon_epochs` says when a seed that has not generalized counts as decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from piami.errors import PiamiValueError
from piami.models.device import resolve_device, resolve_dtype

REFERENCE = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability"
MIN_TEST_ACC = 0.9  # held-out accuracy at the end that counts as generalized (a priori)
SHARP_WIDTH = 0.5  # largest (t90 - t10) / t50 that counts as sharp; 1 - exp(-t/tau) gives 3.17
MIN_FVE = 0.9  # share of held-out logit variance the key frequencies must explain (the bar)
MIN_DELAY = 2.0  # t50(novel) / t50(train) at least this: generalization lags memorization
HORIZON_LR_WD = 14.0  # grokking is over by 14 / (lr wd) epochs: Nanda et al.'s ~14k at lr wd 1e-3
SEED_EXPERIMENT_NAME = "modular-addition-seed"  # the sub-run that trains one seed
RATE_BAR = 0.8  # least share of seeds with each event (a priori; see the package docstring)

_POSITIVE_INTS = ("p", "d_model", "n_heads", "d_mlp", "n_epochs", "eval_every", "n_snapshots")


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, kw_only=True)
class SeedConfig:
    """Settings of one seed's training run (the parent experiment's config adds ``n_seeds``).

    The defaults are Nanda et al.'s recipe (p = 113, 30% of the pairs, one layer without
    LayerNorm, 4 heads, init std 1/sqrt(d_model), AdamW betas (0.9, 0.98), weight decay 1) scaled
    down to CPU minutes; see :mod:`piami.experiments.modular_addition` for the reasons.
    """

    seed: int = 0  # seeds the train/test split, the initial weights and the label shuffle
    p: int = 113  # modulus, as Nanda et al.
    frac_train: float = 0.3  # fraction of the p^2 pairs trained on, as Nanda et al.
    d_model: int = 64  # residual width (Nanda et al.: 128)
    n_heads: int = 4  # attention heads, each of width d_model / n_heads (Nanda et al.: 4)
    d_mlp: int = 256  # MLP hidden width, 4 d_model (Nanda et al.: 512 = 4 x 128)
    init_std: float | None = None  # std of the initial weights; None: 1/sqrt(d_model), as Nanda
    lr: float = 1e-2  # AdamW learning rate (Nanda et al.: 1e-3; x10 compresses time, see parent)
    weight_decay: float = 1.0  # AdamW decoupled weight decay, as Nanda et al.
    n_epochs: int = 1400  # full-batch steps: the horizon 14 / (lr wd) (Nanda et al.: 40k, lr 1e-3)
    eval_every: int = 10  # epochs between evaluations of losses and accuracies
    n_snapshots: int = 40  # weight snapshots kept for the progress measures
    shuffle_labels: bool = False  # control: answers permuted over all pairs (nothing to learn)
    leak_held_out: bool = False  # broken ingredient: also train on the held-out pairs (a leak)
    n_threads: int = 1  # torch CPU threads while training: 1 is fastest for a model this small
    device: str = "cpu"  # torch device (cpu: the same numbers on every machine)
    dtype: str = "float32"  # torch dtype of the weights

    def __post_init__(self) -> None:
        for name in (*_POSITIVE_INTS, "n_threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PiamiValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.p < 5:
            raise PiamiValueError(f"p must be >= 5 to have frequencies to find, got {self.p}")
        if self.d_model % self.n_heads:
            raise PiamiValueError(
                f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})"
            )
        if not _number(self.frac_train) or not 0.0 < self.frac_train < 1.0:
            raise PiamiValueError(f"frac_train must lie in (0, 1), got {self.frac_train!r}")
        for name in ("init_std", "lr"):
            v = getattr(self, name)
            if (v is not None or name == "lr") and not (_number(v) and v > 0):
                raise PiamiValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (_number(self.weight_decay) and self.weight_decay >= 0):
            raise PiamiValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if self.eval_every > self.n_epochs:
            raise PiamiValueError(
                f"eval_every ({self.eval_every}) must not exceed n_epochs ({self.n_epochs}); "
                "lower eval_every or raise n_epochs"
            )
        for name in ("shuffle_labels", "leak_held_out"):
            if not isinstance(getattr(self, name), bool):
                raise PiamiValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        resolve_device(self.device)
        resolve_dtype(self.dtype)

    @property
    def std(self) -> float:
        """The initial weights' std: ``init_std``, or ``1/sqrt(d_model)`` when that is None."""
        return self.init_std if self.init_std is not None else 1.0 / math.sqrt(self.d_model)


@dataclass(frozen=True, kw_only=True)
class Config(SeedConfig):
    """Settings of the modular-addition experiment: those of one seed (:class:`SeedConfig`, applied
    to every seed), ``n_seeds``, and ``seed``, from which the seeds of the runs derive.

    ``shuffle_labels`` or ``leak_held_out`` set here apply to every seed (broken ingredients that
    the bars and the controls must catch).
    """

    n_seeds: int = 5  # seeds trained: seed * n_seeds + i for i < n_seeds (a rate needs >= 5)

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.n_seeds
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise PiamiValueError(
                f"n_seeds must be an integer >= 1 (5 or more for a rate), got {n!r}"
            )


def horizon_epochs(cfg: SeedConfig) -> float:
    """Epochs within which the recipe should have grokked: ``HORIZON_LR_WD / (lr * weight_decay)``.

    Nanda et al. 2023 find the clean-up phase (test accuracy up, test loss down) over by ~14k
    epochs at ``lr * wd = 1e-3``; the weight-decay time ``1/(lr wd)`` sets when the late, general
    solution wins (Lyu et al. 2024, grokking at ``t ~ log(alpha) / (lr wd)``), so the horizon scales
    as ``1/(lr wd)``. A seed that has not generalized before it is undecided, not a failure.
    Infinite without weight decay.
    """
    if cfg.weight_decay == 0:
        return math.inf
    return round(HORIZON_LR_WD / (cfg.lr * cfg.weight_decay), 6)
