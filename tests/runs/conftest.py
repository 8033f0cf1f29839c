"""Make the toy experiment known to the tests of this folder and to their workers, and only to them.

While a module of this folder runs: ``tests/runs`` is importable (``sys.path`` here and in spawned
pool workers, ``PYTHONPATH`` for subprocesses and Ray workers), ``$PIAMI_PLUGINS`` names the toy
(for a CLI in a subprocess), and the toy is registered in this process. All is undone afterwards,
so the rest of the suite never sees ``toy-runs`` in the registry.
"""

import os
import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)


@pytest.fixture(autouse=True, scope="module")
def toy_experiment_known():
    from piami.lab import register, registry

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "PIAMI_PLUGINS")}
    sys.path.insert(0, HERE)
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [saved["PYTHONPATH"]])])
    os.environ["PIAMI_PLUGINS"] = ",".join(
        [*filter(None, [saved["PIAMI_PLUGINS"]]), "toy_experiment"]
    )
    import toy_experiment

    register(toy_experiment.EXPERIMENT)
    yield
    registry._REGISTRY.pop(toy_experiment.EXPERIMENT.name, None)
    sys.path.remove(HERE)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
