"""Teacher tasks: exact whitening, singular values, staircase targets and their plateaus."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.processes.tasks import LinearTeacher, StaircaseTarget, random_orthogonal, whitened_inputs


def test_whitened_inputs_and_teacher_moments():
    rng = np.random.default_rng(0)
    x = whitened_inputs(50, 7, rng=rng)
    np.testing.assert_allclose(x.T @ x / 50, np.eye(7), atol=1e-12)
    q = random_orthogonal(5, rng=rng)
    np.testing.assert_allclose(q @ q.T, np.eye(5), atol=1e-12)
    t = LinearTeacher([0.5, 3.0, 1.0], 6, 4, rng=rng)
    np.testing.assert_allclose(t.s, [3.0, 1.0, 0.5])
    np.testing.assert_allclose(np.linalg.svd(t.weight, compute_uv=False)[:3], t.s)
    x, y = t.sample(40, rng=rng)
    np.testing.assert_allclose(y.T @ x / 40, t.weight, atol=1e-12)  # Sigma_yx = W*
    np.testing.assert_allclose(t.mode_strengths(t.weight), t.s)


def test_same_seed_same_numbers():
    a = StaircaseTarget.standard(leap=1, d=6).sample(5, rng=np.random.default_rng(3))
    b = StaircaseTarget.standard(leap=1, d=6).sample(5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("leap,levels", [(1, [3, 2, 1, 0]), (2, [2, 1, 0]), (3, [1, 0])])
def test_staircases_leap_and_variance(leap, levels):
    t = StaircaseTarget.standard(leap=leap, d=8)
    assert t.leap == leap
    np.testing.assert_allclose(t.plateau_losses(), levels)
    x, y = t.sample(200_000, rng=np.random.default_rng(0))
    assert set(np.unique(x)) == {-1.0, 1.0}
    # E y^2 = sum c_S^2 (orthonormal parities); Monte Carlo s.e. ~ 0.01 at 2e5 samples
    assert np.mean(y**2) == pytest.approx(levels[0], abs=0.05)
    assert np.mean(y) == pytest.approx(0.0, abs=0.02)


def test_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(PiamiError):
        whitened_inputs(3, 5, rng=rng)
    with pytest.raises(PiamiError):
        whitened_inputs(5, 3, rng=0)
    with pytest.raises(PiamiError):
        LinearTeacher([1.0, -1.0], 3, 3, rng=rng)
    with pytest.raises(PiamiError):
        LinearTeacher([1.0, 1.0, 1.0], 2, 3, rng=rng)
    with pytest.raises(PiamiError):
        StaircaseTarget([(0, 9)], d=5)
    with pytest.raises(PiamiError):
        StaircaseTarget.standard(leap=4, d=5)
    with pytest.raises(PiamiError):
        StaircaseTarget.standard(leap=1, d=5)(np.ones((2, 4)))
