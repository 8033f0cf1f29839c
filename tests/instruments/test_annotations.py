"""The instruments' jaxtyping shape annotations, checked at run time.

piami annotates arrays with jaxtyping (``Float[np.ndarray, "n d"]``) but never checks them in the
library (jaxtyping and beartype are dev dependencies). Here a few public functions and methods
are wrapped in ``jaxtyped(typechecker=beartype)``: called on well-shaped numpy input, their
arguments and results must satisfy the annotations (so the annotations say what the code does);
called on inconsistent shapes, the checker must reject the call (so the annotations say
something). Every annotation in the instruments must also resolve.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

jaxtyping = pytest.importorskip("jaxtyping")
beartype = pytest.importorskip("beartype")

from piami.instruments import geometry  # noqa: E402
from piami.instruments.dimension import mle_dimension, twonn_dimension  # noqa: E402
from piami.instruments.probes import LinearProbe  # noqa: E402
from piami.instruments.sae import SparseAutoencoder  # noqa: E402
from piami.instruments.scaling import PowerLawFit  # noqa: E402


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its jaxtyping annotations checked on every call."""
    return jaxtyping.jaxtyped(typechecker=beartype.beartype)(fn)


RNG = np.random.default_rng(0)
A = RNG.normal(size=(12, 3))  # n = 12 points in 3 dims
B = RNG.normal(size=(12, 5))  # the same 12 inputs, another representation
C = RNG.normal(size=(9, 5))  # 9 other inputs
K = A @ A.T


@pytest.mark.parametrize(
    "fn, good, bad",
    [
        (geometry.squared_distances, (A,), (np.arange(6),)),  # not (n, d)
        (geometry.kernel_matrix, (A,), (A.astype(np.int64),)),  # not float
        (geometry.center_kernel, (K,), (A,)),  # not square (n, n)
        (geometry.hsic, (K, B @ B.T), (K, C @ C.T)),  # kernels of different n
        (geometry.cka_from_kernels, (K, B @ B.T), (K, C @ C.T)),
        (geometry.cka, (A, B), (A, C)),  # representations of different inputs
        (twonn_dimension, (RNG.normal(size=(50, 2)),), (np.ones(50),)),
        (mle_dimension, (RNG.normal(size=(50, 2)),), (np.ones(50),)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_functions_honour_their_shape_annotations(fn: Any, good: tuple, bad: tuple) -> None:
    checked(fn)(*good)
    with pytest.raises(jaxtyping.TypeCheckError):
        checked(fn)(*bad)


def test_linear_probe_methods_honour_their_shape_annotations() -> None:
    probe = checked(LinearProbe.fit)(LinearProbe(), A, B)
    out = checked(LinearProbe.predict)(probe, RNG.normal(size=(7, 3)))
    assert out.shape == (7, 5)
    checked(LinearProbe.score)(probe, A, B)
    checked(LinearProbe.score_per_coordinate)(probe, A, B)
    one = checked(LinearProbe.fit)(LinearProbe(), A, B[:, 0])  # a 1-D target: " n *n_targets"
    assert checked(LinearProbe.predict)(one, A).shape == (12,)
    with pytest.raises(jaxtyping.TypeCheckError):
        checked(LinearProbe.fit)(LinearProbe(), A, C)  # 12 rows of X, 9 of y
    with pytest.raises(jaxtyping.TypeCheckError):
        checked(LinearProbe.fit)(LinearProbe(), A, B, np.ones(9))  # 9 weights for 12 rows


def test_sparse_autoencoder_methods_honour_their_shape_annotations() -> None:
    sae = SparseAutoencoder(6, k=2, n_steps=3, batch_size=4, device="cpu").fit(B)
    Z = checked(SparseAutoencoder.encode)(sae, B)
    assert Z.shape == (12, 6)
    assert checked(SparseAutoencoder.decode)(sae, Z).shape == B.shape
    assert checked(SparseAutoencoder.reconstruct)(sae, B).shape == B.shape
    with pytest.raises(jaxtyping.TypeCheckError):
        checked(SparseAutoencoder.encode)(sae, B[0])  # one vector, not (n, d_model)


def test_power_law_fit_honours_its_shape_annotations() -> None:
    x = np.geomspace(1.0, 100.0, 8)
    fit = checked(PowerLawFit.fit)(PowerLawFit(n_boot=0), x, 1.0 + x**-0.5)
    assert checked(PowerLawFit.predict)(fit, x).shape == (8,)
    with pytest.raises(jaxtyping.TypeCheckError):
        checked(PowerLawFit.fit)(PowerLawFit(n_boot=0), x, np.ones(7))


MODULES = [
    "probes",
    "learning_coefficient",
    "sgld",
    "llc_gradients",
    "sae",
    "dimension",
    "geometry",
    "weights",
    "statistics",
    "entropy",
    "exponents",
    "scaling",
    "curves",
    "contract",
]


def _public_callables(module: Any) -> list[tuple[str, Any]]:
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            out.append((name, obj))
        elif inspect.isclass(obj):
            out += [
                (f"{name}.{m}", f)
                for m, f in vars(obj).items()
                if inspect.isfunction(f) and (not m.startswith("_") or m == "__init__")
            ]
    return out


@pytest.mark.parametrize("module", MODULES)
def test_every_public_annotation_resolves_and_is_complete(module: str) -> None:
    mod = importlib.import_module(f"piami.instruments.{module}")
    for name, fn in _public_callables(mod):
        hints = typing.get_type_hints(fn, include_extras=True)  # raises if one does not resolve
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        missing = [p.name for p in params if p.name not in hints]
        assert not missing, f"{module}.{name}: parameters without a type: {missing}"
        assert "return" in hints, f"{module}.{name}: no return type"
