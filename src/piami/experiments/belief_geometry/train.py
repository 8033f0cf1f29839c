"""Training the belief-geometry network on fresh samples of its process (or on windows of data).

Other experiments train the same model through :func:`train_belief_model` (imported from
:mod:`piami.experiments.belief_geometry`); a second call with the same ``out_dir`` resumes, and a
finished run is returned as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from piami.experiments.belief_geometry.config import Config, build_model, process_of
from piami.experiments.belief_geometry.data import data_eval_set, data_sampler, read_data
from piami.models import Transformer
from piami.train import TrainHistory, train


def train_belief_model(
    cfg: Config, out_dir: str | Path, progress: bool = True
) -> tuple[Transformer, Path, TrainHistory]:
    """Train the network of ``cfg`` on fresh samples; checkpoints go to ``out_dir/checkpoints``.

    The held-out evaluation set (2048 sequences, seed ``[cfg.seed, 2]``) is scored against the
    exact predictor on the same sequences, so the logged gap is the network's excess loss. With
    ``cfg.data`` set the network is trained on random windows of the data's training part
    instead, and the logged gap is its held-out loss minus the stated process's on up to 2048
    windows of the held-out tail (:mod:`.data`): negative when the network predicts the data
    better than the stated machine does.

    Args:
        cfg: the experiment's settings (process, network, schedule).
        out_dir: the run folder; it receives ``checkpoints/step_<8-digit step>/`` at log-spaced
            steps (read them with :func:`piami.train.list_checkpoints` and
            :func:`piami.train.load_checkpoint`) and ``history.json``.
        progress: show a progress bar.

    Returns:
        ``(model, run_dir, history)``: the trained :class:`~piami.models.Transformer`, the run
        folder and the :class:`~piami.train.TrainHistory`.
    """
    proc = process_of(cfg)
    seq_len = cfg.n_ctx + 1
    if cfg.data is not None:  # windows of the data; the stated process only scores them
        split = read_data(cfg, proc)
        sample = data_sampler(cfg, split)
        held_out, held_out_optimal = data_eval_set(proc, cfg, split)
        optimal = float(np.mean(proc.optimal_loss(seq_len)[1:]))
        return _train(cfg, out_dir, sample, held_out, optimal, held_out_optimal, progress)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return proc.sample(n, seq_len, rng=rng)

    optimal = float(np.mean(proc.optimal_loss(seq_len)[1:]))
    held_out = proc.sample(2048, seq_len, rng=np.random.default_rng([cfg.seed, 2]))
    p_exact = proc.next_token_probs(held_out)[:, 1:seq_len]  # Pr(x_{t+1} | x_0..x_t)
    p_seen = np.take_along_axis(p_exact, held_out[:, 1:, None], axis=-1)
    held_out_optimal = float(-np.mean(np.log(p_seen)))  # the exact predictor on the same set
    return _train(cfg, out_dir, sample, held_out, optimal, held_out_optimal, progress)


def _train(
    cfg: Config,
    out_dir: str | Path,
    sample: Any,
    held_out: np.ndarray,
    optimal: float,
    held_out_optimal: float,
    progress: bool,
) -> tuple[Transformer, Path, TrainHistory]:
    model = build_model(cfg)
    run_dir = Path(out_dir)
    hist = train(
        model,
        sample,
        cfg.train_config(),
        eval_data=held_out,
        optimal_loss=optimal,
        eval_optimal_loss=held_out_optimal,
        out_dir=run_dir,
        progress=progress,
        desc="belief-geometry",
    )
    return model, run_dir, hist


__all__ = ["train_belief_model"]
