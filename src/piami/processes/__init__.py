"""piami.processes: generative data models whose exact side lives in :mod:`piami.theory`.

A spec string works wherever a process is expected: ``from_spec("mess3(x=0.05, a=0.85)")``.
"""

from piami.processes.catalog import even_process, golden_mean, mess3, random_hmm, rrxor, z1r
from piami.processes.ghmm import GeneralizedHiddenMarkovModel, HMMSample
from piami.processes.hmm import HiddenMarkovModel
from piami.processes.spec import PROCESSES, as_process, catalog_specs, from_spec

__all__ = [
    "PROCESSES",
    "GeneralizedHiddenMarkovModel",
    "HMMSample",
    "HiddenMarkovModel",
    "as_process",
    "catalog_specs",
    "even_process",
    "from_spec",
    "golden_mean",
    "mess3",
    "random_hmm",
    "rrxor",
    "z1r",
]
