"""Public instruments on generated arrays: a finite answer or a PiamiError, never a silent NaN.

Arrays come with extreme scales (1e-300 to 1e300), NaN and inf entries, duplicated points, too
few rows, wrong ranks and integer dtypes: what a user's activations or token files may hold.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from piami.errors import PiamiError
from piami.instruments import (
    LinearProbe,
    PowerLawFit,
    cka,
    effective_rank,
    entropy_nsb,
    entropy_plugin,
    mle_dimension,
    singular_spectrum,
    twonn_dimension,
)

from .conftest import case, examples

SETTINGS = dict(deadline=10_000, suppress_health_check=list(HealthCheck))
scales = st.sampled_from([1.0, 1e-300, 1e300, 1e-20, 1e20, -1.0, 0.0])
specials = st.sampled_from([None, np.nan, np.inf, -np.inf])


@st.composite
def point_clouds(draw):
    n = draw(st.integers(0, 60))
    d = draw(st.integers(0, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((n, d)) * draw(scales)
    if n and d and draw(st.booleans()):
        X[draw(st.integers(0, n - 1))] = X[0]  # a duplicated point
    special = draw(specials)
    if special is not None and X.size:
        X.flat[draw(st.integers(0, X.size - 1))] = special
    shape = draw(st.sampled_from(["2d", "1d", "3d", "int", "list"]))
    if shape == "1d":
        return X.ravel()
    if shape == "3d":
        return X[None]
    if shape == "int":
        return X.astype(np.int64) if np.isfinite(X).all() and np.abs(X).max(initial=0) < 1e15 else X
    if shape == "list":
        return X.tolist()
    return X


def finite(x) -> bool:
    vals = np.asarray(x, dtype=float).ravel()
    return bool(np.all(np.isfinite(vals)))


def run(fn, *args, **kw):
    """Call ``fn``: a PiamiError is a fine answer; anything else returned must be finite."""
    try:
        out = fn(*args, **kw)
    except PiamiError:
        return None
    return out


@settings(max_examples=examples(200), **SETTINGS)
@given(X=point_clouds(), which=st.sampled_from(["twonn", "twonn_fit", "mle"]))
def test_dimension_estimators(X, which):
    with case():
        if which == "mle":
            est = run(mle_dimension, X, k=5)
        else:
            est = run(twonn_dimension, X, method="fit" if which == "twonn_fit" else "mle")
        if est is not None:
            assert math.isfinite(est.dimension) and est.dimension >= 0, (which, est)
            assert math.isfinite(est.low) and math.isfinite(est.high), (which, est)


@settings(max_examples=examples(150), **SETTINGS)
@given(
    X=point_clouds(),
    Y=point_clouds(),
    kernel=st.sampled_from(["linear", "rbf"]),
    debiased=st.booleans(),
)
def test_cka(X, Y, kernel, debiased):
    with case():
        out = run(cka, X, Y, kernel=kernel, debiased=debiased)
        if out is not None:
            assert math.isfinite(out), out


@settings(max_examples=examples(150), **SETTINGS)
@given(W=point_clouds(), method=st.sampled_from(["entropy", "stable", "participation", "bogus"]))
def test_weight_spectra(W, method):
    with case():
        s = run(singular_spectrum, W)
        if s is not None:
            assert finite(s)
        r = run(effective_rank, W, method=method)
        if r is not None:
            assert math.isfinite(r) and r >= 0, r


@settings(max_examples=examples(150), **SETTINGS)
@given(X=point_clouds(), Y=point_clouds(), alpha=st.sampled_from([0.0, 1e-3, -1.0, np.nan]))
def test_linear_probe(X, Y, alpha):
    with case():
        try:
            probe = LinearProbe(alpha=alpha).fit(X, Y)
            score = probe.score(X, Y)
        except PiamiError:
            return
        assert math.isfinite(score) or score == -math.inf, score


@settings(max_examples=examples(150), **SETTINGS)
@given(
    counts=hnp.arrays(
        np.float64,
        st.integers(0, 12),
        elements=st.sampled_from([0.0, 1.0, 3.0, 1e12, -1.0, 0.5, np.nan]),
    ),
    n_bins=st.sampled_from([1, 2, 10, 0, -3, 1e9]),
)
def test_entropy_estimators(counts, n_bins):
    with case():
        h = run(entropy_plugin, counts)
        if h is not None:
            assert math.isfinite(h) and h >= 0
        out = run(entropy_nsb, counts, n_bins)
        if out is not None:
            assert all(math.isfinite(v) for v in out), out


@settings(max_examples=examples(100), **SETTINGS)
@given(
    n=st.integers(0, 9),
    scale=scales,
    noise=st.sampled_from([0.0, 0.01, 1.0]),
    special=specials,
    seed=st.integers(0, 2**16),
)
def test_power_law_fit(n, scale, noise, special, seed):
    with case():
        rng = np.random.default_rng(seed)
        x = np.geomspace(10, 1e5, n)
        y = (1.0 + 5.0 * x**-0.4 + noise * rng.standard_normal(n)) * scale
        if special is not None and n:
            y[0] = special
        try:
            fit = PowerLawFit(n_boot=5, random_state=rng).fit(x, y)
        except PiamiError:
            return
        assert math.isfinite(fit.alpha_), fit.alpha_
