"""Data mode of belief-geometry: train on a symbol file, probe for a stated machine's beliefs.

With ``Config.data`` set, the network never sees the process: it is trained on random windows of
``n_ctx + 1`` symbols of the *training part* of the data (all but the last ``data_holdout_frac``
of every row; :func:`piami.train.windows.window_sampler`), and the probe sets are disjoint windows
of the held-out tail (its first half fits the probes, its second half scores them). The targets
are those of the *stated* process ``Config.process``, typically a machine that ``piami
reconstruct`` wrote (``machine("DIR/machine.json")``): its exact belief filter
``eta' = eta T[x] / (eta T[x] 1)`` (Shai et al. 2024, eq. 1) run over each window from its
stationary distribution, and its next-token distribution ``eta T[x] 1``.

Those beliefs and that optimal loss belong to the stated machine, not to a known truth: the data
need not come from it, and a network trained on the data may predict it better than the machine
does. A window the machine calls impossible (a symbol of probability zero after its prefix) has no
belief; such windows are left out of the probe sets and their share is reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from piami.errors import PiamiValueError
from piami.processes.hmm import HiddenMarkovModel
from piami.processes.symbols import read_symbols
from piami.theory.beliefs import PROB_FLOOR
from piami.train.windows import as_rows, disjoint_windows, window_sampler

__all__ = [
    "DataSplit",
    "data_eval_set",
    "data_held_out_sets",
    "data_sampler",
    "possible_windows",
    "read_data",
    "sequence_losses",
    "window_targets",
]

#: Windows of the held-out tail used to follow the held-out loss during training.
N_EVAL = 2048


@dataclass(frozen=True, kw_only=True)
class DataSplit:
    """A symbol file cut into its training part and its held-out tail.

    Attributes:
        train: ``(n_rows, n_train)`` symbols the network is trained on (the head of every row).
        held: ``(n_rows, n_held)`` symbols held out for the probes (the tail of every row).
        alphabet: the symbol of each token id, as :func:`~piami.processes.symbols.read_symbols`
            read it.
        source: the file.
        sha256: hash of the file's bytes (the config names the file, not its content).
    """

    train: np.ndarray
    held: np.ndarray
    alphabet: tuple[str, ...]
    source: str
    sha256: str

    def info(self) -> dict[str, Any]:
        """What the run's metrics record about the data."""
        return {
            "source": self.source,
            "sha256": self.sha256,
            "alphabet": list(self.alphabet),
            "n_rows": int(self.train.shape[0]),
            "n_train_symbols": int(self.train.size),
            "n_held_out_symbols": int(self.held.size),
        }


def read_data(cfg: Any, proc: Any) -> DataSplit:
    """Read ``cfg.data`` and cut off its tail; the stated process must share its alphabet.

    Raises:
        PiamiFileError: the file is missing or unreadable (see
            :func:`~piami.processes.symbols.read_symbols`).
        PiamiValueError: the process has another alphabet size (or, for a machine file, other
            symbols) than the data, or a part is shorter than the windows.
    """
    seq = read_symbols(cfg.data)
    if seq.n_symbols != proc.n_symbols:
        raise PiamiValueError(
            f"data {cfg.data} has {seq.n_symbols} symbols ({' '.join(seq.alphabet[:12])}) but "
            f"process {cfg.process} has {proc.n_symbols}; the process must have the data's "
            "alphabet size: reconstruct one from the data with `piami reconstruct DATA --out DIR` "
            "and set process='machine(\"DIR/machine.json\")'"
        )
    labels = getattr(proc, "alphabet", None)
    if labels is not None and tuple(labels) != seq.alphabet:
        raise PiamiValueError(
            f"data {cfg.data} has symbols {' '.join(seq.alphabet[:12])} but the machine of "
            f"{cfg.process} was made for {' '.join(labels[:12])}: token ids would mean different "
            "symbols; reconstruct the machine from data of the same alphabet"
        )
    rows = as_rows(seq.tokens)
    n_held = round(rows.shape[1] * cfg.data_holdout_frac)
    length = cfg.n_ctx + 1
    if rows.shape[1] - n_held < length or n_held < 2 * length:
        raise PiamiValueError(
            f"data {cfg.data}: rows of {rows.shape[1]} symbols split at data_holdout_frac="
            f"{cfg.data_holdout_frac} leave {rows.shape[1] - n_held} to train on and {n_held} "
            f"held out; need >= {length} and >= {2 * length} (windows of n_ctx + 1 = {length}); "
            "give more data or change data_holdout_frac"
        )
    digest = hashlib.sha256(Path(cfg.data).read_bytes()).hexdigest()
    return DataSplit(
        train=rows[:, : rows.shape[1] - n_held],
        held=rows[:, rows.shape[1] - n_held :],
        alphabet=seq.alphabet,
        source=seq.source,
        sha256=digest,
    )


def data_sampler(cfg: Any, split: DataSplit) -> Any:
    """Training batches: ``sample(n, rng)``, ``n`` random windows of the training part."""
    return window_sampler(split.train, cfg.n_ctx + 1)


def possible_windows(proc: Any, windows: np.ndarray) -> np.ndarray:
    """Which windows the process can emit: no symbol of probability zero after its prefix.

    Runs the normalized forward filter ``eta' = eta T[x] / (eta T[x] 1)`` from the stationary
    distribution (Rabiner 1989, eq. 19-20 in edge-emitting form) and flags a window as soon as
    ``eta T[x] 1 <= PROB_FLOOR`` (the floor of :mod:`piami.theory.beliefs`). A process that is
    not a hidden Markov model (a generalized one) has no such test: every window passes.

    Args:
        proc: the stated process.
        windows: ``(n, length)`` int symbols.

    Returns:
        ``(n,)`` bool.
    """
    ok = np.ones(len(windows), dtype=bool)
    if not isinstance(proc, HiddenMarkovModel):
        return ok
    T = proc.T
    eta = np.repeat(proc.stationary_distribution()[None, :], len(windows), axis=0)
    for t in range(windows.shape[1]):
        nxt = np.empty_like(eta)
        for x in range(T.shape[0]):
            rows = windows[:, t] == x
            nxt[rows] = eta[rows] @ T[x]
        z = nxt.sum(axis=1)
        live = z > PROB_FLOOR
        ok &= live
        eta = nxt / np.where(live, z, 1.0)[:, None]
    return ok


def _draw(
    proc: Any, rows: np.ndarray, n: int, length: int, rng: np.random.Generator, what: str
) -> tuple[np.ndarray, int, int]:
    """``n`` disjoint windows the process can emit, drawn at random; and the counts seen."""
    slots = disjoint_windows(rows, length)
    ok = possible_windows(proc, slots)
    kept = slots[ok]
    if len(kept) < n:
        raise PiamiValueError(
            f"{what} holds {len(slots)} disjoint windows of n_ctx + 1 = {length} symbols, "
            f"{len(kept)} of them possible under the stated process; need n_probe_seqs={n}: "
            "lower n_probe_seqs, raise data_holdout_frac, or give more data"
        )
    return kept[rng.choice(len(kept), size=n, replace=False)], len(slots), int((~ok).sum())


def window_targets(proc: Any, windows: np.ndarray) -> dict[str, np.ndarray]:
    """Inputs, next symbols, and the stated process's belief and next-token distribution after
    every prefix: the same dict as :func:`~.measure.held_out_sets` gives for sampled sequences.

    Args:
        proc: the stated process.
        windows: ``(n, n_ctx + 1)`` symbols.

    Returns:
        ``inputs`` and ``targets`` ``(n, n_ctx)``, ``beliefs`` ``(n * n_ctx, n_states)`` and
        ``probs`` ``(n * n_ctx, n_symbols)``.
    """
    L = windows.shape[1] - 1
    inputs = np.ascontiguousarray(windows[:, :L])
    return {
        "inputs": inputs,
        "targets": np.ascontiguousarray(windows[:, 1:]),
        "beliefs": proc.beliefs(inputs)[:, 1:].reshape(-1, proc.n_states),
        "probs": proc.next_token_probs(inputs)[:, 1:].reshape(-1, proc.n_symbols),
    }


def data_held_out_sets(
    proc: Any, cfg: Any, split: DataSplit
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """The two probe sets, cut from the held-out tail: the first half fits, the second scores.

    Returns:
        ``(fit, test, info)``: two dicts as :func:`window_targets` gives, and the number of
        disjoint windows in the tail and of those the stated process calls impossible.
    """
    rng = np.random.default_rng([cfg.seed, 1])
    half = split.held.shape[1] // 2
    length = cfg.n_ctx + 1
    sets, slots, impossible = [], 0, 0
    for part, what in ((split.held[:, :half], "fitting"), (split.held[:, half:], "scoring")):
        w, n_slots, n_bad = _draw(
            proc, part, cfg.n_probe_seqs, length, rng, f"the held-out tail's {what} half"
        )
        sets.append(window_targets(proc, w))
        slots, impossible = slots + n_slots, impossible + n_bad
    info = {"held_out_windows": slots, "held_out_windows_impossible_under_process": impossible}
    return sets[0], sets[1], info


def data_eval_set(proc: Any, cfg: Any, split: DataSplit) -> tuple[np.ndarray, float]:
    """Held-out windows to follow training (up to :data:`N_EVAL`, from the whole tail), and the
    stated process's log-loss on them (nats per symbol)."""
    length = cfg.n_ctx + 1
    slots = disjoint_windows(split.held, length)
    slots = slots[possible_windows(proc, slots)]
    if len(slots) == 0:
        raise PiamiValueError(
            f"no window of the held-out tail of {cfg.data} is possible under {cfg.process}: the "
            "stated process cannot have generated these data; give the machine reconstructed "
            "from them"
        )
    rng = np.random.default_rng([cfg.seed, 2])
    w = slots[rng.choice(len(slots), size=min(N_EVAL, len(slots)), replace=False)]
    p = proc.next_token_probs(w[:, :-1])[:, 1:]
    p_seen = np.take_along_axis(p, w[:, 1:, None], axis=-1)
    return w, float(-np.mean(np.log(p_seen)))


def sequence_losses(
    fit: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    logq: np.ndarray,
    logq_untrained: np.ndarray,
) -> dict[str, np.ndarray]:
    """Cross-entropy on the data's next tokens, mean over positions, per window of both sets.

    Args:
        fit: the fitting set (:func:`window_targets`); its ``probs`` are the stated process's.
        test: the scoring set, likewise.
        logq: the trained network's log-probabilities on the windows of ``fit`` then ``test``,
            ``(n_seqs, n_ctx, n_symbols)``.
        logq_untrained: the same for the untrained network.

    Returns:
        ``{"trained", "untrained", "stated"}``, each ``(n_seqs,)`` in nats.
    """
    targets = np.concatenate([fit["targets"], test["targets"]])[..., None]
    p = np.concatenate([fit["probs"], test["probs"]]).reshape(logq.shape)
    p_seen = np.take_along_axis(p, targets, -1)[..., 0]
    return {
        "trained": -np.take_along_axis(logq, targets, -1)[..., 0].mean(axis=1),
        "untrained": -np.take_along_axis(logq_untrained, targets, -1)[..., 0].mean(axis=1),
        "stated": -np.log(np.maximum(p_seen, 1e-300)).mean(axis=1),
    }
