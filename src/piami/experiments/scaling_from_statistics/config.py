"""The settings of ``scaling-from-statistics``: the corpus, the statistics, the training points.

Execution settings (store, workers) are not here: they do not change the numbers. Neither are the
bars of the comparison rows (:mod:`piami.experiments.scaling_from_statistics.compare`): a user
cannot widen a tolerance until a row passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piami.errors import PiamiValueError
from piami.experiments.scaling_from_statistics.point import PointConfig

#: Config fields handed to every training point.
#: Lags count as resolved above this multiple of the noise floor (beta fit, n*, control).
FLOOR_FACTOR = 3.0

POINT_FIELDS = (
    "source",
    "tokenizer",
    "max_chars",
    "test_tokens",
    "shuffle_train",
    "n_ctx",
    "n_layers",
    "d_model",
    "d_mlp",
    "n_steps",
    "batch_size",
    "lr",
    "eval_every",
    "eval_stride",
    "device",
)


@dataclass(frozen=True, kw_only=True)
class Config:
    seed: int = 0  # seeds the statistics, the bootstrap, the RHM and every training run
    source: str = "shakespeare"  # 'shakespeare', a text file, or a folder of .txt
    tokenizer: str = "char"  # 'char', 'byte', 'bpe' or 'bpe:N'
    max_chars: int | None = 2_000_000  # characters of the source used (None: all)
    test_tokens: int = 100_000  # validation and test parts (each), taken from the end
    n_max_lag: int = 256  # largest lag of the correlation profile
    n_lags: int = 16  # log-spaced lags measured
    n_max_entropy: int = 8  # largest context length of the n-gram H_n (kept for reference)
    p_min: int = 10_000  # smallest training set (tokens)
    p_max: int = 1_000_000  # largest training set (tokens)
    n_sizes: int = 6  # log-spaced training-set sizes between p_min and p_max
    shuffle_train: bool = False  # broken ingredient: train on permuted tokens (the run must fail)
    n_ctx: int = 64  # transformer context
    n_layers: int = 2  # transformer blocks
    d_model: int = 64  # residual width
    d_mlp: int = 256  # MLP width
    n_steps: int = 1500  # longest schedule per run (early stopping usually ends sooner)
    batch_size: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate
    eval_every: int = 50  # steps between validation evaluations
    eval_stride: int | None = 8  # a test window every so many tokens (None: n_ctx)
    n_boot: int = 200  # bootstrap replicates of every fit
    device: str = "auto"  # torch device of the training runs

    def __post_init__(self) -> None:
        for name in ("p_min", "p_max", "n_sizes", "n_max_lag", "n_lags", "test_tokens", "n_ctx"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise PiamiValueError(f"{name} must be an int >= 1, got {v!r}")
        if self.n_sizes < 6:
            raise PiamiValueError(f"n_sizes must be >= 6 for a 3-parameter fit, got {self.n_sizes}")
        if not self.p_min < self.p_max:
            raise PiamiValueError(f"need p_min < p_max, got {self.p_min} >= {self.p_max}")
        if self.n_max_entropy < 4:
            raise PiamiValueError(f"n_max_entropy must be >= 4, got {self.n_max_entropy}")
        if self.n_ctx < 8:
            raise PiamiValueError(
                f"n_ctx must be >= 8 (gamma needs 4 context lengths), got {self.n_ctx}"
            )
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 20:
            raise PiamiValueError(
                f"n_boot must be an int >= 20 for 95% intervals, got {self.n_boot!r}"
            )
        # what the training points get is checked now, not when the plan runs
        PointConfig(**{k: getattr(self, k) for k in POINT_FIELDS}, n_train_tokens=self.p_max)

    def sizes(self) -> list[int]:
        """The training-set sizes, log-spaced and distinct."""
        s = np.unique(np.round(np.geomspace(self.p_min, self.p_max, self.n_sizes)).astype(int))
        return [int(v) for v in s]
