"""Does a pretrained language model form the belief state of a process it meets only in context?

(issue 16, item 4.) Sequences of hidden Markov processes whose beliefs are known exactly (Mess3 and
RRXOR by default) are written as tokens a pretrained LM knows (``" A"``, ``" B"``, ``" C"``) and fed
to SmolLM2-135M-Instruct (:func:`~piami.models.pretrained.smollm2_path`), which never saw them in
training. Two questions, each against the same architecture with random weights:

- **loss by context position**: the model's next-symbol loss (its prediction restricted to the
  alphabet and renormalized) against the exact optimal loss ``h(t + 1)`` and the unigram
  baselines: does it approach the optimum beyond what symbol frequencies allow?
- **belief geometry in context**: ridge probes of every layer's residual stream for the exact
  belief (Shai et al. 2024 found it linearly in networks *trained* on the process), beside the
  best read-out from the position and the last k symbols: a probe that only matches that
  read-out shows no belief geometry, since the belief is a function of the whole past.

The predictions are hypotheses that can come out either way, each decided by its 95% interval
(:mod:`.compare`); the random-weight model is the control that must fail them.

- **geometry by depth on real text** (``depth_geometry``, :mod:`.depth`): TwoNN intrinsic
  dimension of every layer's residual stream on Shakespeare (the Levina-Bickel MLE beside it), and
  the CKA between adjacent layers; does the profile rise and fall (Valeriani et al. 2023; Cheng et
  al. 2025) where random weights do not?
- **the statistics of its own text** (``generated_stats``, :mod:`.generated`): the correlation
  and entropy exponents beta, gamma and alpha_D (Cagnetta et al. 2026) of text the model samples
  after Shakespeare prompts, beside those of the corpus's own continuations of the same prompts.
- **the LLC of a block** (``block_llc``, :mod:`.block_llc`): the local learning coefficient of the
  last block on the depth geometry's text, the rest of the network fixed, with split R-hat and
  Geweke diagnostics, beside the same block at random weights (Lau et al. 2024; Hoogland et al.
  2025).

``--quick`` runs a tiny Llama built from a config (no download), trained for 200 steps on Mess3
itself, a positive control: a network trained on a process carries its belief (Shai et al. 2024),
so the rows pass; with ``train_steps=0`` (the broken ingredient) they do not. (RRXOR is left out
of the quick variant: so small a network learns it too slowly for a test to rely on.) Its depth
geometry reads characters of Shakespeare, one id per character by frequency rank; with three layers
its two depth rows are not identified by rule (:data:`~.depth.DEPTH_MIN_LAYERS`). The block LLC is
off there: the tiny model is trained on Mess3, so the text is no minimum of its loss and the sanity
row that asks for ``0 < lambda_hat`` would fail by construction (``--set block_llc=true`` runs it,
with 20 + 40 steps per chain).
"""

from __future__ import annotations

from piami.experiments.pretrained_lm.compare import compare, process_rows
from piami.experiments.pretrained_lm.config import Config
from piami.experiments.pretrained_lm.measure import PLMMeasurements, measure
from piami.experiments.pretrained_lm.plots import figures
from piami.experiments.pretrained_lm.targets import (
    belief_targets,
    onehot_history,
    reference_losses,
    symbol_marginal,
    window_beliefs,
)
from piami.lab import Experiment


def describe(cfg: Config) -> str:
    """The report's opening paragraph."""
    who = {
        "smollm2": "SmolLM2-135M-Instruct (Q4_1 GGUF, loaded offline)",
        "tiny": f"a tiny Llama trained {cfg.train_steps} steps on the processes themselves "
        "(positive control)"
        if cfg.train_steps
        else "a tiny untrained Llama",
    }.get(cfg.model, cfg.model)
    procs = ", ".join(p.spec for p in cfg.process_list().values())
    return (
        f"{cfg.n_seqs} sequences of {cfg.seq_len} symbols from each of {procs}, written as the "
        f"tokens {', '.join(repr(' ' + w) for w in cfg.symbol_words())} after {cfg.prefix!r}, are "
        f"read by {who} and by the same architecture with random weights. Rows: the in-context "
        "loss against the exact optimum and the unigram entropy, and ridge probes of every "
        "layer for the exact belief against the best position + last-"
        f"{cfg.control_k}-symbol read-out; hypotheses decided by their 95% intervals."
        + (
            f" Geometry by depth: {cfg.text_seqs} pieces of {cfg.text_len} tokens of "
            f"{cfg.text_source}, TwoNN by layer and adjacent-layer CKA, against random weights."
            if cfg.depth_geometry
            else ""
        )
        + (
            f" Its own text: {cfg.gen_seqs} continuations of {cfg.gen_len} tokens sampled after "
            "Shakespeare prompts, their correlation and entropy exponents (beta, gamma, alpha_D) "
            "beside the corpus's own continuations and a shuffled control."
            if cfg.generated_stats
            else ""
        )
        + (
            f" The LLC of block {cfg.llc_block} on the same text (its weights free, the rest "
            "fixed), with chain diagnostics, against the same block at random weights."
            if cfg.block_llc
            else ""
        )
    )


EXPERIMENT = Experiment(
    name="pretrained-lm",
    config_cls=Config,
    measure=measure,
    compare=compare,
    figures=figures,
    describe=describe,
    quick={
        "model": "tiny",
        "processes": "mess3(x=0.02, a=0.7)",
        "n_seqs": 64,
        "seq_len": 48,
        "train_steps": 200,
        "text_seqs": 8,
        "text_len": 64,
        "geometry_rows": 512,
        "gen_seqs": 8,
        "gen_prompt": 16,
        "gen_len": 96,
        "block_llc": False,
        "llc_burnin": 20,
        "llc_draws": 40,
    },
    summary="a pretrained LM (SmolLM2) in context on Mess3 and RRXOR: loss by position and "
    "belief probes against exact beliefs, last-k read-outs and random weights",
)

__all__ = [
    "EXPERIMENT",
    "Config",
    "PLMMeasurements",
    "belief_targets",
    "compare",
    "describe",
    "figures",
    "measure",
    "onehot_history",
    "process_rows",
    "reference_losses",
    "symbol_marginal",
    "window_beliefs",
]
