"""One contract, every estimator: scikit-learn's (see :mod:`piami.instruments.contract`).

Each estimator is listed once in ``CASES`` with small settings and a fitting call; every test
below runs over all of them: the constructor stores only its parameters; ``get_params`` round
trips; ``set_params`` sets (and rejects unknown names with a PiamiError); ``sklearn.base.clone``
gives an unfitted copy; ``fit`` returns ``self`` and adds only attributes ending in ``_``;
using an unfitted estimator raises :class:`~piami.instruments.contract.NotFittedError`;
``score`` is a Python float; the same ``random_state`` gives the same numbers.

scikit-learn's own ``check_estimator`` runs on LinearProbe, SparseAutoencoder, TwoNN (both
methods) and LevinaBickelMLE (``k=5``: its checks fit on as few as 10 points, fewer than the
default ``k=20`` needs). The only check it skips is ``check_array_api_input`` (scikit-learn
skips it itself unless ``SCIPY_ARRAY_API=1``; our estimators compute in numpy or torch, not
through the array API). It does not apply to:

* LLCEstimator: ``fit`` takes a model (or a loss function) and its data, not a feature matrix
  ``X``; there is nothing to predict, transform or score (the LLC is a property of one
  minimum), so it has no ``score`` and its estimate is ``llc_mean_``.
* PowerLawFit: ``x`` is one positive coordinate (the checks draw signed feature matrices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from piami.errors import PiamiError, PiamiTypeError, PiamiValueError
from piami.instruments import (
    LevinaBickelMLE,
    LinearProbe,
    LLCEstimator,
    NotFittedError,
    PowerLawFit,
    SparseAutoencoder,
    TwoNN,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny matrices on a shared 2-core machine run faster on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(60, 4))
Y = X @ _RNG.normal(size=(4, 2)) + 0.1 * _RNG.normal(size=(60, 2))
POINTS = _RNG.normal(size=(80, 2)) @ _RNG.normal(size=(2, 5))  # a plane in R^5
XP = np.geomspace(1.0, 1e3, 10)
YP = 1.0 + 2.0 * XP**-0.5 + 0.01 * _RNG.normal(size=10)


def _quadratic(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (w**2).sum(dim=1)


@dataclass(frozen=True)
class Case:
    """One estimator: how to build it small, fit it, use it and read its result."""

    name: str
    make: Callable[..., Any]  # keyword overrides -> unfitted estimator
    fit: Callable[[Any], Any]  # estimator -> whatever fit returned
    result: Callable[[Any], np.ndarray]  # fitted estimator -> its learned numbers
    score: Callable[[Any], Any] | None  # fitted estimator -> score(...), None: no score
    uses: tuple[Callable[[Any], Any], ...] = field(default=())  # calls that need a fit
    change: tuple[str, Any] = ("", None)  # a parameter and a new value for set_params
    random: bool = True  # has a random_state


CASES = [
    Case(
        name="LinearProbe",
        make=lambda **kw: LinearProbe(**kw),
        fit=lambda e: e.fit(X, Y),
        result=lambda e: np.hstack([e.coef_.ravel(), e.intercept_]),
        score=lambda e: e.score(X, Y),
        uses=(
            lambda e: e.predict(X),
            lambda e: e.score(X, Y),
            lambda e: e.score_per_coordinate(X, Y),
        ),
        change=("alpha", 0.5),
        random=False,
    ),
    Case(
        name="SparseAutoencoder",
        make=lambda **kw: SparseAutoencoder(
            **{"n_latents": 8, "k": 2, "n_steps": 10, "batch_size": 16, "device": "cpu", **kw}
        ),
        fit=lambda e: e.fit(X),
        result=lambda e: np.hstack([e.W_dec_.ravel(), e.losses_]),
        score=lambda e: e.score(X),
        uses=(
            lambda e: e.encode(X),
            lambda e: e.transform(X),
            lambda e: e.decode(np.zeros((2, 8))),
            lambda e: e.score(X),
            lambda e: e.health(X),
        ),
        change=("k", 3),
    ),
    Case(
        name="LLCEstimator",
        make=lambda **kw: LLCEstimator(
            **{
                "step_size": 1e-3,
                "n_beta": 100.0,
                "n_chains": 2,
                "n_draws": 8,
                "n_burnin": 2,
                "device": "cpu",
                "dtype": "float64",
                **kw,
            }
        ),
        fit=lambda e: e.fit_flat(_quadratic, torch.zeros(3)),
        result=lambda e: e.loss_trace_,
        score=None,  # no held-out data to score a learning coefficient on
        change=("gamma", 2.0),
    ),
    Case(
        name="TwoNN",
        make=lambda **kw: TwoNN(**kw),
        fit=lambda e: e.fit(POINTS),
        result=lambda e: np.array([e.dimension_, *e.interval_]),
        score=lambda e: e.score(POINTS),
        uses=(lambda e: e.score(POINTS),),
        change=("method", "fit"),
        random=False,
    ),
    Case(
        name="LevinaBickelMLE",
        make=lambda **kw: LevinaBickelMLE(**{"k": 10, **kw}),
        fit=lambda e: e.fit(POINTS),
        result=lambda e: np.array([e.dimension_, *e.interval_]),
        score=lambda e: e.score(POINTS),
        uses=(lambda e: e.score(POINTS),),
        change=("k", 12),
        random=False,
    ),
    Case(
        name="PowerLawFit",
        make=lambda **kw: PowerLawFit(**{"n_boot": 10, **kw}),
        fit=lambda e: e.fit(XP, YP),
        result=lambda e: np.hstack([e.E_, e.A_, e.alpha_, e.boot_.ravel()]),
        score=lambda e: e.score(XP, YP),
        uses=(lambda e: e.predict(XP), lambda e: e.score(XP, YP)),
        change=("ci", 0.9),
    ),
]
RANDOM = [c for c in CASES if c.random]


def cases(which: list[Case] = CASES) -> Any:
    return pytest.mark.parametrize("case", which, ids=[c.name for c in which])


@cases()
def test_constructor_stores_only_its_parameters(case: Case) -> None:
    est = case.make()
    params = est.get_params()
    assert set(vars(est)) == set(params), "__init__ must set exactly its parameters"
    assert not [k for k in vars(est) if k.endswith("_")]
    for name, value in params.items():
        assert getattr(est, name) is value


@cases()
def test_get_params_round_trips_and_set_params_sets(case: Case) -> None:
    est = case.make()
    params = est.get_params()
    assert type(est)(**params).get_params() == params
    name, value = case.change
    assert est.set_params(**{name: value}) is est
    assert est.get_params()[name] == value
    with pytest.raises(PiamiValueError, match="valid"):
        est.set_params(no_such_parameter=1)


@cases()
def test_clone_is_an_unfitted_copy_with_the_same_parameters(case: Case) -> None:
    est = case.make()
    case.fit(est)
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    assert not [k for k in vars(copy) if k.endswith("_")]


@cases()
def test_fit_returns_self_and_adds_only_attributes_ending_in_underscore(case: Case) -> None:
    est = case.make()
    params = est.get_params()
    before = set(vars(est))
    assert case.fit(est) is est
    added = set(vars(est)) - before
    public = [k for k in added if not k.startswith("_")]
    assert public and all(k.endswith("_") for k in public), public
    assert est.get_params() == params, "fit must not change the hyperparameters"


@cases()
def test_unfitted_use_raises_not_fitted_error(case: Case) -> None:
    est = case.make()
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(est)
    for use in case.uses:
        with pytest.raises(NotFittedError, match="not fitted yet") as info:
            use(est)
        assert isinstance(info.value, PiamiError)
        assert isinstance(info.value, SklearnNotFittedError)
    case.fit(est)
    check_is_fitted(est)
    for use in case.uses:
        use(est)


@cases()
def test_score_is_a_float(case: Case) -> None:
    est = case.make()
    case.fit(est)
    if case.score is None:
        assert not hasattr(est, "score")  # the documented exception (module docstring)
        assert type(est.llc_mean_) is float
        return
    value = case.score(est)
    assert type(value) is float and np.isfinite(value)


@cases()
def test_same_random_state_same_numbers(case: Case) -> None:
    if not case.random:  # deterministic: no random_state, and a refit gives the same numbers
        assert "random_state" not in case.make().get_params()
        np.testing.assert_array_equal(
            case.result(case.fit(case.make())), case.result(case.fit(case.make()))
        )
        return
    assert case.make().get_params()["random_state"] == 0  # reproducible by default

    def run(random_state: Any) -> np.ndarray:
        return case.result(case.fit(case.make(random_state=random_state)))

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))
    gen_a, gen_b = run(np.random.default_rng(5)), run(np.random.default_rng(5))
    np.testing.assert_array_equal(gen_a, gen_b)
    # a clone carries a copy of the generator: the clone repeats the original's numbers
    est = case.make(random_state=np.random.default_rng(6))
    twin = clone(est)
    np.testing.assert_array_equal(case.result(case.fit(est)), case.result(case.fit(twin)))


@cases(RANDOM)
@pytest.mark.parametrize(
    "bad, error", [(1.5, PiamiTypeError), (True, PiamiTypeError), (-1, PiamiValueError)]
)
def test_bad_random_state_raises_a_piami_error(case: Case, bad: Any, error: type) -> None:
    with pytest.raises(error, match="random_state"):
        case.fit(case.make(random_state=bad))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SparseAutoencoder(8, n_steps=10, seed=2),
        lambda: LLCEstimator(seed=2),
    ],
    ids=["SparseAutoencoder", "LLCEstimator"],
)
def test_the_old_seed_keyword_warns_and_becomes_random_state(make: Callable[[], Any]) -> None:
    with pytest.warns(DeprecationWarning, match="random_state"):
        est = make()
    assert est.get_params()["random_state"] == 2
    assert "seed" not in est.get_params()


SKLEARN_CHECKED = [
    LinearProbe(),
    LinearProbe(fit_intercept=False, alpha=0.1),
    SparseAutoencoder(8, k=2, n_steps=5, batch_size=16, device="cpu"),
    SparseAutoencoder(8, kind="l1", n_steps=5, batch_size=16, device="cpu"),
    TwoNN(),
    TwoNN(method="fit"),
    LevinaBickelMLE(k=5),
]


@pytest.mark.skipif(
    tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 6),
    reason="check_estimator(on_skip=...) needs scikit-learn >= 1.6",
)
@pytest.mark.parametrize("est", SKLEARN_CHECKED, ids=repr)
def test_scikit_learn_check_estimator(est: Any) -> None:
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(est, on_skip=None, on_fail=None)
    failed = [(r["check_name"], r["exception"]) for r in results if r["status"] == "failed"]
    assert not failed
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}


def test_check_random_state_seeds_passes_generators_through_and_refuses_the_rest() -> None:
    from piami.instruments import check_random_state

    a, b = check_random_state(7), np.random.default_rng(7)
    assert a.random() == b.random()  # an int is default_rng(int)
    gen = np.random.default_rng(1)
    assert check_random_state(gen) is gen  # used as it is, so drawing advances the caller's
    assert isinstance(check_random_state(None), np.random.Generator)
    with pytest.raises(PiamiError):
        check_random_state(-1)
    for bad in (1.5, True, np.random.RandomState(0)):
        with pytest.raises(PiamiError):
            check_random_state(bad)
