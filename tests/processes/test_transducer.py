"""Transducers (Barnett & Crutchfield 2015): closed forms, independent block-entropy checks,
normalization errors, and sampling statistics against T."""

from __future__ import annotations

import math

import numpy as np
import pytest

from piami.errors import PiamiError, PiamiShapeError, PiamiTypeError, PiamiValueError
from piami.processes import (
    GeneralizedHiddenMarkovModel,
    HiddenMarkovModel,
    Transducer,
    golden_mean,
)


def hb(p: float) -> float:
    """Binary entropy in nats."""
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def iid(p1: float) -> HiddenMarkovModel:
    """I.i.d. bits with Pr(1) = p1 (one state)."""
    return HiddenMarkovModel(np.array([[[1 - p1]], [[p1]]]), name=f"iid({p1})")


EXAMPLES = [
    Transducer.identity(),
    Transducer.delay(),
    Transducer.noisy_memory(),
    Transducer.odd_not(),
]


# -- closed forms ------------------------------------------------------------------------------
@pytest.mark.parametrize("p1", [0.5, 0.3])
def test_identity_and_delay_driven_by_iid_bits(p1: float) -> None:
    x = iid(p1)
    ident, delay = Transducer.identity(), Transducer.delay()
    # identity: the pair (x, x) is the input relabelled; no memory
    assert ident.drive(x).entropy_rate() == pytest.approx(hb(p1), abs=1e-12)
    assert ident.conditional_entropy_rate(x) == pytest.approx(0.0, abs=1e-12)
    assert ident.statistical_complexity(x) == pytest.approx(0.0, abs=1e-12)
    # delay: y_t = x_{t-1} is known from the past, its one state is the last input
    joint = delay.drive(x)
    assert joint.entropy_rate() == pytest.approx(hb(p1), abs=1e-12)
    assert delay.conditional_entropy_rate(x) == pytest.approx(0.0, abs=1e-12)
    assert delay.statistical_complexity(x) == pytest.approx(hb(p1), abs=1e-12)
    assert delay.state_distribution(x) == pytest.approx([1 - p1, p1], abs=1e-12)
    assert joint.statistical_complexity() == pytest.approx(hb(p1), abs=1e-9)


def test_identity_and_delay_driven_by_the_golden_mean() -> None:
    gm = golden_mean()  # Pr(0) = 1/3, h = 2/3 bit, C_mu = H_b(1/3)
    h, c = 2 / 3 * math.log(2), hb(1 / 3)
    for t, cx in ((Transducer.identity(), 0.0), (Transducer.delay(), c)):
        joint = t.drive(gm)
        assert isinstance(joint, HiddenMarkovModel) and joint.is_unifilar()
        assert joint.entropy_rate() == pytest.approx(h, abs=1e-12)
        assert joint.statistical_complexity() == pytest.approx(c, abs=1e-9)
        assert t.conditional_entropy_rate(gm) == pytest.approx(0.0, abs=1e-12)
        assert t.statistical_complexity(gm) == pytest.approx(cx, abs=1e-12)


@pytest.mark.parametrize("p1", [0.5, 0.2])
def test_noisy_memory_and_odd_not_driven_by_iid_bits(p1: float) -> None:
    x = iid(p1)
    noisy = Transducer.noisy_memory(0.1, 0.4)
    expected = (1 - p1) * hb(0.1) + p1 * hb(0.4)  # flip prob. set by the previous input
    assert noisy.conditional_entropy_rate(x) == pytest.approx(expected, abs=1e-12)
    assert noisy.statistical_complexity(x) == pytest.approx(hb(p1), abs=1e-12)
    odd = Transducer.odd_not()
    assert odd.conditional_entropy_rate(x) == pytest.approx(0.0, abs=1e-12)
    assert odd.statistical_complexity(x) == pytest.approx(math.log(2), abs=1e-12)


def test_conditional_rate_is_the_stepwise_form_and_the_block_limit() -> None:
    """h(Y|X) = h(X,Y) - h(X) against two independent computations, on a driven product with
    memory on both sides (noisy memory driven by the golden mean)."""
    gm, t = golden_mean(), Transducer.noisy_memory(0.1, 0.4)
    h = t.conditional_entropy_rate(gm)
    # stepwise form: sum_{i,x} Pr(S=i, X=x) H_b(q_i); after a 0 the golden mean emits 1, so
    # Pr(prev=0, x=1) = 1/3 and Pr(prev=1, x=0) = Pr(prev=1, x=1) = 1/3
    assert h == pytest.approx(hb(0.1) / 3 + 2 * hb(0.4) / 3, abs=1e-12)
    # block limit: H[Y_{0:L} | X_{0:L}] = H_joint(L) - H_input(L), by word enumeration; its
    # increments fall to h(Y|X) once the first input has fixed the state
    joint = t.drive(gm)
    cond = [joint.block_entropy(L) - gm.block_entropy(L) for L in range(8)]
    inc = np.diff(cond)
    assert inc[-1] == pytest.approx(h, abs=1e-9)
    # the first step does not know the previous input: H[Y_0 | X_0], where x_0 = 0 follows a 1
    # and x_0 = 1 follows a 0 or a 1 with equal odds (flip probability 0.25)
    assert inc[0] == pytest.approx(hb(0.4) / 3 + 2 * hb(0.25) / 3, abs=1e-12)
    assert abs(inc[0] - h) > 1e-2


def test_output_process_block_entropies() -> None:
    gm = golden_mean()
    delayed = Transducer.delay().output_process(gm)  # the golden mean shifted by one step
    for L in range(1, 6):
        assert delayed.block_entropy(L) == pytest.approx(gm.block_entropy(L), abs=1e-12)
    # fair inputs XOR independent noise: fair, independent outputs whatever the memory
    noisy = Transducer.noisy_memory(0.1, 0.4).output_process(iid(0.5))
    assert noisy.block_entropy(5) == pytest.approx(5 * math.log(2), abs=1e-12)
    # biased inputs: Pr(y=1) = 0.2 * (1 - q_prev) + 0.8 * q_prev, mixed over the previous input
    p = 0.2 * (0.8 * 0.9 + 0.2 * 0.6) + 0.8 * (0.8 * 0.1 + 0.2 * 0.4)
    out = Transducer.noisy_memory(0.1, 0.4).output_process(iid(0.2))
    assert out.block_entropy(1) == pytest.approx(hb(p), abs=1e-12)


def test_drive_with_a_generalized_input_and_a_non_unifilar_one() -> None:
    coin = GeneralizedHiddenMarkovModel(2 * np.array([[[0.5]], [[0.5]]]))
    joint = Transducer.noisy_memory().drive(coin)
    assert type(joint) is GeneralizedHiddenMarkovModel
    expected = math.log(2) + (hb(0.1) + hb(0.4)) / 2
    assert joint.entropy_rate() == pytest.approx(expected, abs=1e-3)
    assert Transducer.delay().statistical_complexity(coin) == pytest.approx(math.log(2))


@pytest.mark.slow
def test_non_unifilar_input_uses_blackwell_rates() -> None:
    """Mess3 (non-unifilar, 3 symbols) through a 3-symbol delay: h(Y|X) = 0 up to the Blackwell
    estimates' noise (their standard errors are ~1e-5 nats; 1e-3 leaves room)."""
    from piami.processes import mess3

    m = mess3()
    h = Transducer.delay(3).conditional_entropy_rate(m, rng=np.random.default_rng(0))
    assert abs(h) < 1e-3


def test_is_unifilar_and_repr() -> None:
    assert all(t.is_unifilar() for t in EXAMPLES)
    T = np.zeros((1, 1, 2, 2))
    T[0, 0] = 0.5  # one symbol, two next states from each state
    assert not Transducer(T).is_unifilar()
    assert "n_states=2" in repr(Transducer.delay())
    law = Transducer.noisy_memory(0.1, 0.4).output_law()
    assert law.shape == (2, 2, 2) and law[0, 1] == pytest.approx([0.6, 0.4])


# -- errors ------------------------------------------------------------------------------------
def test_normalization_and_shape_errors() -> None:
    T = Transducer.noisy_memory().T.copy()
    T[1, 0, 1, 1] -= 0.05  # input 1, state 1 sums to 0.95
    with pytest.raises(PiamiValueError, match="input 1, state 1"):
        Transducer(T)
    T = Transducer.delay().T.copy()
    T[0, 0, 0, 0] = -0.5
    with pytest.raises(PiamiValueError, match="not a probability"):
        Transducer(T)
    T[0, 0, 0, 0] = np.nan
    with pytest.raises(PiamiValueError):
        Transducer(T)
    with pytest.raises(PiamiShapeError, match="n_inputs, n_outputs"):
        Transducer(np.ones((2, 2, 2)))
    with pytest.raises(PiamiShapeError):
        Transducer(np.ones((1, 1, 2, 3)) / 3)
    with pytest.raises(PiamiTypeError):
        Transducer("not an array")
    with pytest.raises(PiamiValueError):
        Transducer.noisy_memory(1.5)
    with pytest.raises(PiamiTypeError):
        Transducer.noisy_memory("a")


def test_bad_inputs_raise_piami_errors() -> None:
    t = Transducer.delay()
    with pytest.raises(PiamiTypeError, match="input_process"):
        t.drive(np.zeros(3))
    with pytest.raises(PiamiValueError, match="reads 2"):
        t.drive(HiddenMarkovModel(np.full((3, 1, 1), 1 / 3)))
    rng = np.random.default_rng(0)
    with pytest.raises(PiamiValueError):
        t.sample([0, 1, 2], rng)
    with pytest.raises(PiamiTypeError):
        t.sample([0, 1], 0)
    with pytest.raises(PiamiValueError):
        t.sample([0, 1], rng, initial_state=2)
    with pytest.raises(PiamiError):
        t.joint_symbols([0, 1], [0])


# -- sampling ----------------------------------------------------------------------------------
def test_deterministic_examples_sample_their_definition() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(4, 300))
    y = Transducer.delay().sample(x, rng, initial_state=1)
    assert np.array_equal(y[:, 1:], x[:, :-1]) and (y[:, 0] == 1).all()
    y = Transducer.odd_not().sample(x, rng, initial_state=0)
    parity = (np.cumsum(x, axis=1) - x) % 2  # 1s strictly before t
    assert np.array_equal(y, x ^ parity)
    assert np.array_equal(Transducer.identity().sample(x[0], rng), x[0])
    z = Transducer.delay().joint_symbols(x, y)
    assert np.array_equal(z, 2 * x + y)


def test_sample_statistics_match_T() -> None:
    """Empirical Pr(y, j | x, i) over 2e5 steps within 5 binomial standard errors of T."""
    t = Transducer.noisy_memory(0.1, 0.4)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(50, 4000))
    y, s = t.sample(x, rng, return_states=True)
    assert y.shape == x.shape and s.shape == (50, 4001)
    xi, si, yi, sj = x.ravel(), s[:, :-1].ravel(), y.ravel(), s[:, 1:].ravel()
    counts = np.zeros(t.T.shape)
    np.add.at(counts, (xi, yi, si, sj), 1)
    n = counts.sum(axis=(1, 3), keepdims=True)
    p_hat = counts / n
    se = np.sqrt(t.T * (1 - t.T) / n)
    assert np.all(np.abs(p_hat - t.T) <= 5 * se + 1e-12)
    # a channel whose outputs ignored T would fail: the flip rates differ by state
    assert abs(p_hat[0, 1, 0, 0] - p_hat[0, 1, 1, 0]) > 0.2
    one, states = t.sample(x[0], rng, return_states=True)
    assert one.shape == (4000,) and states.shape == (4001,)


def test_the_python_and_numpy_sampling_loops_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same seed, same outputs, whichever loop runs (few rows: plain Python; many: numpy)."""
    import piami.processes.transducer as module

    t = Transducer.noisy_memory(0.1, 0.4)
    x = np.random.default_rng(1).integers(0, 2, size=(3, 500))
    few = t.sample(x, np.random.default_rng(7), return_states=True)
    monkeypatch.setattr(module, "_FEW_ROWS", 0)
    many = t.sample(x, np.random.default_rng(7), return_states=True)
    assert all(np.array_equal(a, b) for a, b in zip(few, many, strict=True))
