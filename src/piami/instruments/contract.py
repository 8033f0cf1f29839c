"""The estimator contract every fitted instrument follows: scikit-learn's.

An *estimator* turns data into learned numbers. Following scikit-learn (Buitinck et al. 2013,
"API design for machine learning software"), every one here

* stores its hyperparameters in ``__init__`` and does nothing else there, so ``get_params``,
  ``set_params`` and :func:`sklearn.base.clone` work (the estimators subclass
  :class:`sklearn.base.BaseEstimator` through :class:`PiamiEstimator`);
* validates its input in ``fit``, learns, stores what it learned in attributes ending in ``_``
  and returns ``self``;
* raises :class:`NotFittedError` (a :class:`~piami.errors.PiamiError` and scikit-learn's
  ``NotFittedError``) when a fitted attribute is needed before ``fit``;
* gives ``score`` as one float (higher is better) where a score is defined;
* takes its randomness from one constructor parameter, ``random_state``: an ``int`` seed (the
  same seed gives the same numbers), a :class:`numpy.random.Generator` (used, and advanced,
  as it is) or ``None`` (fresh entropy from the operating system: not reproducible).

Estimators: :class:`~piami.instruments.probes.LinearProbe`,
:class:`~piami.instruments.learning_coefficient.LLCEstimator`,
:class:`~piami.instruments.sae.SparseAutoencoder`,
:class:`~piami.instruments.dimension.TwoNN`,
:class:`~piami.instruments.dimension.LevinaBickelMLE` and
:class:`~piami.instruments.scaling.PowerLawFit`; ``tests/instruments/test_estimator_contract.py``
checks the contract on all of them (and scikit-learn's ``check_estimator`` where it applies).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import scipy.sparse
import sklearn.exceptions
from sklearn.base import BaseEstimator

from piami.errors import PiamiShapeError, PiamiTypeError, PiamiValueError

__all__ = [
    "NotFittedError",
    "PiamiEstimator",
    "RandomState",
    "as_2d_array",
    "check_random_state",
    "renamed_keywords",
    "torch_seed",
]

_Init = TypeVar("_Init", bound=Callable[..., None])

#: What ``random_state`` accepts: an int seed, a numpy Generator, or None (fresh entropy).
RandomState = int | np.random.Generator | None


class NotFittedError(PiamiValueError, sklearn.exceptions.NotFittedError):
    """An estimator was used before ``fit``; the message names the call to make first."""


class PiamiEstimator(BaseEstimator):
    """scikit-learn's ``BaseEstimator`` with piami's errors and a fitted-state check.

    ``get_params`` reads the constructor's signature; ``set_params`` raises
    :class:`~piami.errors.PiamiValueError` (a ``ValueError``) for unknown names, listing the
    valid ones.
    """

    def set_params(self, **params: Any) -> PiamiEstimator:
        """Set hyperparameters by name; unknown names raise PiamiValueError."""
        valid = self._get_param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise PiamiValueError(
                f"unknown {type(self).__name__} parameter(s) {unknown}; valid: {valid}"
            )
        return super().set_params(**params)

    def _check_fitted(self, attribute: str, how: str = "fit(...)") -> None:
        """Raise :class:`NotFittedError` unless ``attribute`` was set by ``fit``."""
        if not hasattr(self, attribute):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call {how} first")


def as_2d_array(a: Any, what: str = "X", *, column: bool = True) -> np.ndarray:
    """``a`` as a finite float64 ``(n_samples, n_columns)`` array, or a PiamiError saying why not.

    Args:
        a: numpy array, torch tensor (detached, moved to the CPU) or nested lists.
        what: the argument's name, for the messages.
        column: read a 1-D array as one column (targets); False requires 2-D (features).

    The messages follow scikit-learn's where its ``check_estimator`` looks for them (complex,
    sparse, empty, 1-D input).
    """
    if hasattr(a, "detach"):  # torch tensor, without importing torch here
        a = a.detach().cpu().numpy()
    if scipy.sparse.issparse(a):
        raise PiamiTypeError(
            f"{what} is a sparse matrix: sparse input is not supported; pass {what}.toarray()"
        )
    try:
        a = np.asarray(a)
        if np.iscomplexobj(a):
            raise PiamiValueError(f"Complex data not supported: {what} must be real")
        a = a.astype(np.float64)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, PiamiValueError):
            raise
        raise PiamiTypeError(
            f"{what} must be a numeric array, got {type(a).__name__} ({exc})"
        ) from exc
    if a.ndim == 1 and column:
        a = a[:, None]
    if a.ndim != 2:
        hint = "" if column else "; Reshape your data: a single feature is X.reshape(-1, 1)"
        raise PiamiShapeError(
            f"{what} must be 2-D (n_samples, n_columns), got shape {a.shape}{hint}"
        )
    for axis, name in ((0, "sample(s)"), (1, "feature(s)")):
        if a.shape[axis] == 0:
            raise PiamiShapeError(
                f"{what} has 0 {name} (shape={a.shape}) while a minimum of 1 is required."
            )
    if not np.isfinite(a).all():
        raise PiamiValueError(f"{what} holds NaN or infinite values; clean the activations first")
    return a


def check_random_state(random_state: RandomState) -> np.random.Generator:
    """The numpy Generator that ``random_state`` stands for.

    Args:
        random_state: an int >= 0 (``np.random.default_rng(seed)``), a ``np.random.Generator``
            (returned as it is, so drawing from it advances the caller's generator) or ``None``
            (a generator seeded from fresh operating-system entropy).

    Raises:
        PiamiTypeError: for anything else (a float, a bool, a legacy ``RandomState``, ...).
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise PiamiValueError(f"random_state must be an int >= 0, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise PiamiTypeError(
        "random_state must be an int >= 0, a numpy Generator (np.random.default_rng(seed)) or "
        f"None, got {type(random_state).__name__} {random_state!r}"
    )


def torch_seed(random_state: RandomState) -> int:
    """A seed for ``torch.Generator().manual_seed`` from ``random_state``.

    An int is used as it is (so ``random_state=s`` gives the numbers the former ``seed=s`` gave);
    a Generator or ``None`` gives a 63-bit integer drawn from :func:`check_random_state`.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        check_random_state(random_state)  # validates the range
        return int(random_state)
    return int(check_random_state(random_state).integers(2**63 - 1))


def renamed_keywords(**renames: str) -> Callable[[_Init], _Init]:
    """Decorate ``__init__`` so that deprecated keyword names still work, with a warning.

    ``@renamed_keywords(seed="random_state")`` lets ``Estimator(seed=3)`` mean
    ``Estimator(random_state=3)`` and warn (``DeprecationWarning``); passing both names is a
    :class:`~piami.errors.PiamiTypeError`. The constructor's signature (what ``get_params``
    and ``clone`` read) shows only the current names.
    """

    def decorate(init: _Init) -> _Init:
        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            owner = type(self).__name__
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise PiamiTypeError(f"{owner}: pass {new}= only ({old}= is its old name)")
                warnings.warn(
                    f"{owner}({old}=...) is deprecated: use {new}=... (the same numbers)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            init(self, *args, **kwargs)

        return wrapper

    return decorate
