"""Settings and fixed choices of the pretrained-lm experiment (all stated before the first run)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from piami.errors import PiamiValueError
from piami.experiments.pretrained_lm.block_llc import LLC_BLOCK, SGLD
from piami.processes import from_spec
from piami.processes.hmm import HiddenMarkovModel

#: Relative ridge penalties tried for every layer's probe (features standardized on the fitting
#: sequences, so the penalty is in units of the mean eigenvalue); chosen on held-back fitting
#: sequences, never on the scoring ones.
RIDGE_GRID = (1e-5, 1e-3, 1e-1, 10.0)
#: Share of the fitting sequences held back to choose each layer's penalty and the best layer.
SELECT_FRAC = 0.25
#: Bootstrap replicates of the R² differences (whole scoring sequences resampled).
N_BOOT = 400
#: Largest window the position + last-k read-outs are reported for (metrics and figure).
MAX_K = 6
#: Lengths K of the linear read-outs from one-hot codes of the last K symbols (metrics, figure).
HISTORY_K = (3, 6, 12, 24)
#: Least share of the belief's variance the position + last-k read-out must leave unexplained for
#: the data to tell belief geometry from the window (a priori): Mess3(0.05, 0.85)'s last 3 symbols
#: already explain 98.6% of its belief, so no probe could show more there.
MIN_LEFT = 0.05
#: Largest held-out R² a probe on shuffled beliefs may score (belief-geometry's bar, a priori).
SHUFFLED_BAR = 0.01
#: Sequences whose full-vocabulary softmax is computed (probability left on the alphabet).
N_MASS_SEQS = 16
#: Token id of the prefix and the first symbol in the tokenizer-free vocabulary of ``model="tiny"``.
TINY_PREFIX_ID, TINY_FIRST_SYMBOL = 0, 1
#: Tokens the tiny model's vocabulary holds beyond the prefix and the symbols (never used: the
#: loss is renormalized over the alphabet, as on a real vocabulary).
TINY_SPARE = 4
#: Learning rate and batch of the optional in-distribution training (``train_steps``).
TRAIN_LR, TRAIN_BATCH = 1e-2, 32
REF = "Shai et al. 2024, Transformers represent belief state geometry in their residual stream"
HYPOTHESIS = (
    "hypothesis (issue 16): " + REF + ", carried to a pretrained LM that meets the process only "
    "in its context"
)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Settings of the pretrained-lm experiment (every bad value raises
    :class:`~piami.errors.PiamiValueError`)."""

    seed: int = 0  # seeds the sequences, the random-weight control and the bootstrap
    model: str = "smollm2"  # "smollm2", "tiny" (small random Llama, no download) or a .gguf path
    processes: str = "mess3(x=0.02, a=0.7); rrxor(p1=0.5, p2=0.5)"  # specs, ';'-separated
    symbols: str = "A B C"  # symbol i is written ' ' + the i-th word (one token each)
    prefix: str = "<|endoftext|>"  # token before every sequence (SmolLM2's document separator)
    n_seqs: int = 128  # sequences per process: half fit the probes, half score them
    seq_len: int = 128  # symbols per sequence
    control_k: int = 3  # the position + last-k read-out the belief probe must beat
    train_steps: int = 0  # in-distribution training steps before measuring (quick's tiny model)
    batch_size: int = 16  # sequences per forward pass (results do not depend on it)
    depth_geometry: bool = True  # geometry by depth on real text (TwoNN, adjacent CKA; .depth)
    text_source: str = "shakespeare"  # corpus of the depth geometry (load_text: name or path)
    text_seqs: int = 24  # pieces of text read for the depth geometry
    text_len: int = 128  # tokens per piece
    geometry_rows: int = 2000  # points per layer for TwoNN and CKA (instrument-calibration's n)
    generated_stats: bool = True  # beta, gamma, alpha_D of the model's own text (.generated)
    gen_seqs: int = 32  # prompts continued by the model
    gen_prompt: int = 32  # tokens of Shakespeare per prompt
    gen_len: int = 256  # tokens the model adds to each prompt (and the corpus's own after it)
    block_llc: bool = True  # the LLC of one block on the depth geometry's text (.block_llc)
    llc_block: int = LLC_BLOCK  # the block sampled (negative counts from the end)
    llc_burnin: int = SGLD["n_burnin"]  # SGLD steps per chain before the draws
    llc_draws: int = SGLD["n_draws"]  # SGLD draws per chain that enter the estimate
    shuffle_beliefs: bool = False  # broken ingredient: belief targets permuted across rows
    device: str = "auto"  # torch device
    dtype: str = "float32"  # torch dtype of the models
    n_threads: int | None = 1  # torch CPU threads (1 is fastest on a shared 2-core machine)

    def __post_init__(self) -> None:
        for name, low in (
            ("n_seqs", 8),
            ("seq_len", 8),
            ("control_k", 1),
            ("batch_size", 1),
            ("text_seqs", 1),
            ("text_len", 4),
            ("geometry_rows", 4),
            ("gen_seqs", 1),
            ("gen_prompt", 1),
            ("gen_len", 8),
            ("llc_burnin", 0),
            ("llc_draws", 4),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise PiamiValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if isinstance(self.train_steps, bool) or not (
            isinstance(self.train_steps, int) and self.train_steps >= 0
        ):
            raise PiamiValueError(f"train_steps must be an integer >= 0, got {self.train_steps!r}")
        if self.control_k >= self.seq_len:
            raise PiamiValueError(
                f"control_k ({self.control_k}) must be below seq_len ({self.seq_len}): a window "
                "as long as the sequence holds the whole past, the belief itself"
            )
        if not self.prefix:
            raise PiamiValueError("prefix must name a token, e.g. '<|endoftext|>'")
        if self.model not in ("smollm2", "tiny") and not self.model.endswith(".gguf"):
            raise PiamiValueError(
                f"model must be 'smollm2', 'tiny' or the path of a .gguf file, got {self.model!r}"
            )
        if self.model.endswith(".gguf") and not Path(self.model).is_file():
            raise PiamiValueError(f"model: no GGUF file at {self.model}")
        words = self.symbol_words()
        if len(set(words)) != len(words):
            raise PiamiValueError(f"symbols must be distinct words, got {self.symbols!r}")
        procs = self.process_list()
        for proc in procs.values():
            if proc.n_symbols > len(words):
                raise PiamiValueError(
                    f"{proc.spec} has {proc.n_symbols} symbols but symbols={self.symbols!r} "
                    f"names {len(words)}; give at least {proc.n_symbols} words"
                )

    def symbol_words(self) -> list[str]:
        """The words the symbols are written as (without the leading space)."""
        words = self.symbols.split()
        if not words:
            raise PiamiValueError("symbols must hold at least two words, e.g. 'A B C'")
        return words

    def process_list(self) -> dict[str, HiddenMarkovModel]:
        """The processes by short name (``mess3``, ``rrxor``, ...), in the order given."""
        specs = [s.strip() for s in self.processes.split(";") if s.strip()]
        if not specs:
            raise PiamiValueError("processes must name at least one process spec")
        out: dict[str, HiddenMarkovModel] = {}
        for spec in specs:
            proc = from_spec(spec)
            if not isinstance(proc, HiddenMarkovModel):
                raise PiamiValueError(
                    f"{spec!r} must be a hidden Markov model (exact beliefs by filtering)"
                )
            name = re.sub(r"\W+", "_", spec.split("(")[0]).strip("_") or "process"
            if name in out:
                name = f"{name}_{len(out)}"
            out[name] = proc
        return out

    def n_symbols(self) -> int:
        """Largest alphabet among the processes (the symbols every model must know)."""
        return max(p.n_symbols for p in self.process_list().values())


__all__ = [
    "HISTORY_K",
    "HYPOTHESIS",
    "MAX_K",
    "MIN_LEFT",
    "N_BOOT",
    "N_MASS_SEQS",
    "REF",
    "RIDGE_GRID",
    "SELECT_FRAC",
    "SHUFFLED_BAR",
    "Config",
]
