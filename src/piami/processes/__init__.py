"""piami.processes: generative data models whose exact side lives in :mod:`piami.theory`.

A spec string works wherever a process is expected: ``from_spec("mess3(x=0.05, a=0.85)")``.
"""

from piami.processes.catalog import even_process, golden_mean, mess3, random_hmm, rrxor, z1r
from piami.processes.ghmm import GeneralizedHiddenMarkovModel, HMMSample
from piami.processes.hmm import HiddenMarkovModel
from piami.processes.modular import ModularAddition
from piami.processes.spec import PROCESSES, as_process, catalog_specs, from_spec
from piami.processes.tasks import LinearTeacher, StaircaseTarget, whitened_inputs

__all__ = [
    "PROCESSES",
    "GeneralizedHiddenMarkovModel",
    "HMMSample",
    "HiddenMarkovModel",
    "LinearTeacher",
    "ModularAddition",
    "StaircaseTarget",
    "as_process",
    "catalog_specs",
    "even_process",
    "from_spec",
    "golden_mean",
    "mess3",
    "random_hmm",
    "rrxor",
    "whitened_inputs",
    "z1r",
]
