"""piami.train: a generic training loop and safetensors checkpoints.

- :func:`train` with :class:`TrainConfig`: AdamW, warm-up + cosine, gradient clipping, fresh samples
  or a fixed training set with a held-out set and early stopping, per-step :class:`TrainHistory`,
  log-spaced checkpoints, resume.
- :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`list_checkpoints`: safetensors weights
  and JSON config; loading never unpickles.
"""

from piami.train.checkpoint import (
    checkpoint_dir,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from piami.train.config import TrainConfig, TrainHistory, checkpoint_steps, lr_factor
from piami.train.loop import evaluate, next_token_loss, train

__all__ = [
    "TrainConfig",
    "TrainHistory",
    "checkpoint_dir",
    "checkpoint_steps",
    "evaluate",
    "list_checkpoints",
    "load_checkpoint",
    "lr_factor",
    "next_token_loss",
    "read_checkpoint_info",
    "save_checkpoint",
    "train",
]
