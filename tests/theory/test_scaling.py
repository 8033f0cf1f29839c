"""theory.scaling: alpha_D, the resolvable context and the collapse, against
independent solutions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from piami.errors import PiamiValueError
from piami.theory.scaling import alpha_d, collapse, power_law, predicted_loss, resolvable_context


def test_alpha_d_closed_form_and_published_values():
    assert alpha_d(0.3, 1.5) == pytest.approx(0.1)
    # Cagnetta et al. 2026: TinyStories gamma 0.325, beta 0.88 -> 0.185; WikiText-103 -> 0.141
    assert alpha_d(0.325, 0.88) == pytest.approx(0.185, abs=0.001)
    assert alpha_d(0.265, 0.94) == pytest.approx(0.141, abs=0.001)


def test_resolvable_context_solves_signal_equals_noise():
    for P, beta, amp, noise in [(1e4, 1.4, 0.05, 0.3), (3e7, 0.9, 0.2, 1.0)]:
        n_star = float(resolvable_context(P, beta=beta, amplitude=amp, noise=noise))
        root = brentq(lambda n, a=amp, b=beta, s=noise, p=P: a * n**-b - s * p**-0.5, 1e-9, 1e12)
        assert n_star == pytest.approx(root, rel=1e-9)


def test_predicted_loss_slope_is_alpha_d():
    P = np.geomspace(1e3, 1e9, 50)
    L = predicted_loss(P, h_inf=1.0, a_h=2.0, gamma=0.3, beta=0.9, amplitude=0.1, noise=0.5)
    slope = np.gradient(np.log(L - 1.0), np.log(P))
    np.testing.assert_allclose(slope, -alpha_d(0.3, 0.9), rtol=1e-9)
    np.testing.assert_allclose(power_law(P, 1.0, 2.0, 0.5), 1 + 2 * P**-0.5)


def test_collapse_puts_window_limited_curves_on_one_line():
    """L_n(P) = H_inf + A (min(n, n*(P)))^-gamma: (L - H_inf) n^gamma depends on
    P/n^(2beta) only."""
    gamma, beta, h_inf = 0.35, 1.2, 0.8
    xs, ys = [], []
    for n in (4, 16, 64):
        P = np.geomspace(1e2, 1e8, 40)
        L = h_inf + 1.5 * np.minimum(n, resolvable_context(P, beta=beta)) ** -gamma
        x, y = collapse(L, n, P, h_inf=h_inf, gamma=gamma, beta=beta)
        xs.append(x)
        ys.append(y)
    ref_x, ref_y = xs[0], ys[0]
    for x, y in zip(xs[1:], ys[1:], strict=True):
        inside = (x > ref_x.min()) & (x < ref_x.max())
        np.testing.assert_allclose(
            y[inside],
            np.exp(np.interp(np.log(x[inside]), np.log(ref_x), np.log(ref_y))),
            rtol=0.02,
            err_msg="curves at different n do not collapse",
        )


@pytest.mark.parametrize(
    "call",
    [
        lambda: alpha_d(0.0, 1.0),
        lambda: alpha_d(0.3, -1.0),
        lambda: resolvable_context(-5, beta=1.0),
        lambda: collapse(1.0, 0, 10, h_inf=0.0, gamma=0.3, beta=1.0),
        lambda: predicted_loss(10, h_inf=0, a_h=np.nan, gamma=0.3, beta=1),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(PiamiValueError):
        call()
