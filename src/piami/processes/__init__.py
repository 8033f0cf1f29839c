"""piami.processes: generative data models whose exact side lives in :mod:`piami.theory`.

A spec string works wherever a process is expected: ``from_spec("mess3(x=0.05, a=0.85)")``.
"""

from piami.processes.catalog import even_process, golden_mean, mess3, random_hmm, rrxor, z1r
from piami.processes.corpus import (
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    load_text,
    split,
    tokenize,
)
from piami.processes.ghmm import GeneralizedHiddenMarkovModel, HMMSample
from piami.processes.hmm import HiddenMarkovModel
from piami.processes.machine_file import load_machine, machine_spec, save_machine
from piami.processes.modular import ModularAddition
from piami.processes.pcfg import PCFG
from piami.processes.percolation import PercolationSample, cyclic_coalescent, sample_percolation
from piami.processes.rhm import RandomHierarchyModel
from piami.processes.spec import PROCESSES, as_process, catalog_specs, from_spec
from piami.processes.tasks import LinearTeacher, StaircaseTarget, whitened_inputs
from piami.processes.transducer import Transducer

__all__ = [
    "PCFG",
    "PROCESSES",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "GeneralizedHiddenMarkovModel",
    "HMMSample",
    "HiddenMarkovModel",
    "LinearTeacher",
    "ModularAddition",
    "PercolationSample",
    "RandomHierarchyModel",
    "StaircaseTarget",
    "Transducer",
    "as_process",
    "catalog_specs",
    "cyclic_coalescent",
    "even_process",
    "from_spec",
    "golden_mean",
    "load_machine",
    "load_text",
    "machine_spec",
    "mess3",
    "random_hmm",
    "rrxor",
    "sample_percolation",
    "save_machine",
    "split",
    "tokenize",
    "whitened_inputs",
    "z1r",
]
