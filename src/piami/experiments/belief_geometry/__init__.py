"""Belief-state geometry: a transformer trained on a hidden Markov process linearly represents the
optimal belief states in its residual stream (Shai et al. 2024, "Transformers represent belief
state geometry in their residual stream"; Piotrowski et al. 2025).

Theory. After reading ``x_0 .. x_t`` the optimal predictor of a hidden Markov process holds the
belief ``eta_t = Pr(S_{t+1} | x_0..x_t)``, updated by ``eta' = eta T[x] / (eta T[x] 1)``; the
next-token distribution is ``eta T[x] 1``, and its expected cross-entropy at position t is the
myopic entropy ``h(t+2) = H(t+2) - H(t+1)`` (Crutchfield & Feldman 2003). For Mess3 the set of
beliefs is a fractal in the 2-simplex (Marzen & Crutchfield 2017). A network that predicts
optimally need only carry the next-token distribution; Shai et al. find it carries the whole
belief, linearly.

Measurement (:mod:`.measure`, with the instruments of :mod:`piami.instruments.beliefs`). Train
:class:`~piami.models.Transformer` on fresh samples of the process (:mod:`.train`), then on
held-out sequences: the loss at each position against ``h(t+2)``; KL(exact || model) averaged over
positions; R^2 of a :class:`~piami.instruments.probes.LinearProbe` (fitted on one held-out set,
scored on another) from the residual stream to the exact beliefs at every layer, all layers
concatenated, and the next-token probabilities as a second target; and the best any function of
the position and the last k tokens can do (k = 1..4: a linear probe on their joint one-hot code,
i.e. the mean belief, or the mean next-token distribution, of each (position, k-token window)).

Rows (:mod:`.compare`). Predictions: KL <= 0.002 nats, final-layer R^2 >= 0.985 (issue 3's bars,
the same in the quick variant), and all layers above the 3-token lookup. Controls from the same
run, which a broken system fails: the untrained network (same seed) must exceed the KL bar and
fall below the R^2 bar, the best 3-token lookup must exceed the KL bar, and a probe fitted to
beliefs shuffled across samples must score no R^2. Nothing depends on the wall clock: a
``time_budget_s`` set by the user stops training at a step, and the rows on the trained network
are then not identified (the step is named). ``--quick --set n_steps=2`` fails. Figures:
:mod:`.plots`; settings: :mod:`.config`.

Data mode (:mod:`.data`). With ``data`` set to a symbol file (text, or a ``.npy`` of ids) the
network trains on random windows of the data's head instead of fresh samples, the probe sets are
windows of its held-out tail, and ``process`` is the *stated* machine whose exact belief filter
gives the targets, typically ``machine("DIR/machine.json")`` written by ``piami reconstruct``.
The KL prediction becomes the held-out loss beside the machine's, and every row names the stated
machine (:mod:`.compare`).

Reuse. Other experiments train the same model through::

    from piami.experiments.belief_geometry import Config, train_belief_model
    model, run_dir, history = train_belief_model(Config(), out_dir, progress=True)

which returns the trained :class:`~piami.models.Transformer`, the run folder holding
``checkpoints/step_<8-digit step>/`` at log-spaced steps (load them with
:func:`piami.train.list_checkpoints` and :func:`piami.train.load_checkpoint`) and
``history.json``, and the :class:`~piami.train.TrainHistory`. Calling it again with the same
``out_dir`` resumes (a finished run is returned as it is). :func:`build_model` gives the untrained
network of a config and :func:`process_of` its process. These four names are this package's
public interface; its modules are private to it.
"""

from __future__ import annotations

from piami.experiments.belief_geometry.compare import compare
from piami.experiments.belief_geometry.config import Config, build_model, process_of
from piami.experiments.belief_geometry.measure import BeliefMeasurements, measure
from piami.experiments.belief_geometry.plots import figures
from piami.experiments.belief_geometry.train import train_belief_model
from piami.lab import Experiment
from piami.processes.spec import spec_files


def describe(cfg: Config) -> str:
    """The report's opening paragraph: what is trained, on what, and what it is compared with."""
    if cfg.data is not None:
        return (
            f"Data mode. A {cfg.n_layers}-layer transformer (d_model {cfg.d_model}) is trained on "
            f"random windows of {cfg.n_ctx + 1} symbols of {cfg.data} (the last "
            f"{cfg.data_holdout_frac:g} of every row held out). On held-out windows, linear probes "
            "read from its residual stream the beliefs of the stated machine "
            f"{process_of(cfg).spec}, filtered over each window from its stationary distribution: "
            "these beliefs, its next-token distribution and its optimal loss are the stated "
            "machine's, not a known truth's, and the data need not come from it. The network's "
            "held-out loss is compared with the machine's (predicting the data better than the "
            "machine is a finding about the machine, not a failure). Controls from the same run: "
            "the untrained network must fail the same bars, a probe fitted to shuffled beliefs "
            "must find nothing; a sanity row asks whether the machine describes the held-out "
            "data at all."
        )
    return (
        f"A {cfg.n_layers}-layer transformer (d_model {cfg.d_model}) is trained on fresh samples "
        f"of {process_of(cfg).spec} (context {cfg.n_ctx}). On held-out sequences its next-token "
        "distribution is compared with the exact one and linear probes read the exact belief "
        "states from its residual stream. Controls from the same run: the untrained network must "
        "fail the same bars, a probe fitted to shuffled beliefs must find nothing, and the "
        "trained network must beat the best read-out from the position and the last 3 tokens."
    )


def _inputs(cfg: Config) -> list[str]:
    """The files a run reads (hashed into its id): the data and a ``machine(PATH)`` process."""
    return ([cfg.data] if cfg.data else []) + spec_files(cfg.process)


EXPERIMENT = Experiment(
    name="belief-geometry",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    inputs=_inputs,
    quick={
        "n_layers": 2,
        "d_mlp": 128,
        "n_steps": 400,
        "batch_size": 128,
        "n_probe_seqs": 2000,
        "n_checkpoints": 6,
    },
    summary="transformer on a hidden Markov process: exact beliefs read linearly from the "
    "residual stream",
)

__all__ = [
    "EXPERIMENT",
    "BeliefMeasurements",
    "Config",
    "build_model",
    "compare",
    "describe",
    "figures",
    "measure",
    "process_of",
    "train_belief_model",
]
