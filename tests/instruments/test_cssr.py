"""CSSR (Shalizi & Klinkner 2004) against exact process quantities and against sofic's CSSR."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiTypeError, PiamiValueError
from piami.instruments.reconstruction.cssr import cssr
from piami.instruments.reconstruction.result import Reconstruction
from piami.processes import HiddenMarkovModel, from_spec

LN2 = np.log(2)


def bits(nats: float) -> float:
    return float(nats) / LN2


def unifilar3() -> HiddenMarkovModel:
    """A random 3-state binary unifilar machine (rows drawn once from Dirichlet(2), seed 31,
    rounded): P(0 | state) = 0.26, 0.74, 0.58; it synchronizes after 2 symbols."""
    delta = [[1, 2], [1, 0], [1, 2]]
    p0 = [0.26, 0.74, 0.58]
    T = np.zeros((2, 3, 3))
    for i in range(3):
        T[0, i, delta[i][0]] = p0[i]
        T[1, i, delta[i][1]] = 1.0 - p0[i]
    return HiddenMarkovModel(T, name="unifilar3")


def heldout_loss_bits(machine: HiddenMarkovModel, y: np.ndarray, burn: int = 50) -> float:
    """Mean -log2 Pr(y_t | y_<t) under ``machine`` after ``burn`` symbols (raises on Pr = 0)."""
    p = machine.next_token_probs(y)[:, :-1, :]
    q = np.take_along_axis(p, y[..., None], axis=-1)[..., 0][:, burn:]
    return float(np.mean(-np.log2(q)))


# -- exactly synchronizable processes: right states, C_mu ------------------------------------------
@pytest.mark.parametrize("spec", ["golden_mean", "even_process"])
@pytest.mark.parametrize("test", ["chi2", "ks"])
def test_two_state_processes_at_1e4(spec: str, test: str) -> None:
    proc = from_spec(spec)
    x = proc.sample(1, 10_000, rng=np.random.default_rng(0))[0]
    rec = cssr(x, max_length=4, test=test)
    assert isinstance(rec, Reconstruction)
    assert rec.method == "cssr" and rec.max_length == 4 and rec.n_samples == 10_000
    assert rec.n_states == 2
    assert rec.machine.is_unifilar()
    # C_mu sampling error at N = 1e4 is ~0.0025 bit (sd over 40 seeds), so 0.005 is ~2 sd;
    # seed 0 gives 0.0005 (golden mean) and 0.0044 (even)
    c_exact = bits(proc.statistical_complexity())
    assert abs(bits(rec.machine.statistical_complexity()) - c_exact) <= 0.005
    assert abs(bits(rec.machine.entropy_rate()) - bits(proc.entropy_rate())) <= 0.01
    assert rec.details["test"] == test and rec.details["alpha"] == 0.001
    words = [w for h in rec.details["histories"] for w in h]
    assert len(words) == len(set(words)) and all(len(w) == 4 for w in words)


def test_golden_mean_states_are_the_last_symbol() -> None:
    """Golden mean: the causal state is the last symbol (after 0 a 1 must follow)."""
    x = from_spec("golden_mean").sample(1, 10_000, rng=np.random.default_rng(1))[0]
    rec = cssr(x, max_length=2)
    last = sorted("".join(sorted({w[-1] for w in h})) for h in rec.details["histories"])
    assert last == ["0", "1"]
    after0 = next(i for i, h in enumerate(rec.details["histories"]) if h[0][-1] == "0")
    assert rec.machine.T[0, after0].sum() == 0.0  # "00" is forbidden
    assert sum(rec.details["state_counts"]) == rec.details["n_windows"]


def test_rows_do_not_share_histories() -> None:
    """Rows glued together would create the forbidden word 00; 2-D rows must never see it."""
    x = from_spec("golden_mean").sample(400, 30, rng=np.random.default_rng(2))
    assert np.any((x[:-1, -1] == 0) & (x[1:, 0] == 0))  # the seams would hold "00"
    rec = cssr(x, max_length=2)
    assert rec.n_states == 2
    assert rec.machine.word_probability([0, 0]) == 0.0


# -- processes without finite synchronization ---------------------------------------------------
def test_mess3_entropy_rate_at_1e6() -> None:
    x = from_spec("mess3(x=0.05, a=0.85)").sample(1000, 1000, rng=np.random.default_rng(3))
    rec = cssr(x, max_length=6)
    h = bits(rec.machine.entropy_rate())
    assert abs(h - 1.1447) <= 0.005  # measured: -0.002 bit (160 states)
    assert rec.n_samples == 10**6


def test_rrxor_entropy_rate_falls_with_length() -> None:
    """RRXOR has no finite synchronizing word: h(L) stays above 2/3 bit and falls with L."""
    proc = from_spec("rrxor")
    x = proc.sample(100, 10_000, rng=np.random.default_rng(4))
    hs, ns = [], []
    for L in (3, 4, 5, 6):
        rec = cssr(x, max_length=L)
        hs.append(bits(rec.machine.entropy_rate()))
        ns.append(rec.n_states)
    # measured: h = 0.907, 0.864, 0.764, 0.739 bit; 8, 16, 16, 23 states
    assert min(hs) >= 2 / 3 - 0.005
    assert np.all(np.diff(hs) <= 0.002)
    assert hs[-1] < hs[0] - 0.1
    assert np.all(np.diff(ns) >= 0) and ns[-1] > 5


def test_rrxor_machine_predicts_at_its_own_entropy_rate() -> None:
    """Calibration: held-out true data cost what the machine claims (and no symbol gets
    probability 0), and never less than the exact optimal loss."""
    proc = from_spec("rrxor")
    x = proc.sample(100, 10_000, rng=np.random.default_rng(5))
    y = proc.sample(200, 300, rng=np.random.default_rng(6))
    rec = cssr(x, max_length=5)
    loss = heldout_loss_bits(rec.machine, y)
    exact = heldout_loss_bits(proc, y)
    assert abs(loss - bits(rec.machine.entropy_rate())) <= 0.01
    assert loss >= exact - 0.005


# -- controls and edge cases ----------------------------------------------------------------------
def test_shuffled_sequence_is_one_state() -> None:
    rng = np.random.default_rng(7)
    x = from_spec("golden_mean").sample(1, 10_000, rng=rng)[0]
    xs = rng.permutation(x)
    for L in (1, 3, 6):
        rec = cssr(xs, max_length=L)
        assert rec.n_states == 1
        p1 = xs.mean()
        h_iid = -(p1 * np.log2(p1) + (1 - p1) * np.log2(1 - p1))
        assert abs(bits(rec.machine.entropy_rate()) - h_iid) < 1e-3


def test_bonferroni_keeps_iid_data_at_one_state() -> None:
    """Multiple testing: at alpha = 0.001 per test, about alpha * k**(L+1) suffixes split off
    from i.i.d. data by chance (predictions unaffected: every state has the same morph);
    dividing alpha by the number of suffixes tested at each length removes them."""
    x = np.random.default_rng(11).integers(0, 4, 1_000_000)
    plain = cssr(x, max_length=6)
    assert abs(bits(plain.machine.entropy_rate()) - 2.0) < 2e-3
    rec = cssr(x, max_length=6, correction="bonferroni")
    assert rec.n_states == 1 and rec.details["correction"] == "bonferroni"
    assert abs(bits(rec.machine.entropy_rate()) - 2.0) < 2e-4


@pytest.mark.parametrize("n_symbols", [None, 3])
def test_constant_sequence(n_symbols: int | None) -> None:
    rec = cssr(np.zeros(200, dtype=np.int64), max_length=2, n_symbols=n_symbols)
    assert rec.n_states == 1
    assert rec.machine.entropy_rate() == 0.0
    assert rec.machine.statistical_complexity() == 0.0
    assert rec.n_symbols == (n_symbols or 1)


@pytest.mark.parametrize("period", [2, 3, 4])
def test_periodic_sequence_is_a_cycle(period: int) -> None:
    x = np.tile(np.arange(period), 200)
    for L in (1, 2):
        rec = cssr(x, max_length=L)
        assert rec.n_states == period
        assert rec.machine.entropy_rate() == 0.0
        assert abs(bits(rec.machine.statistical_complexity()) - np.log2(period)) < 1e-9
        # a cycle: each state has one successor, and period steps return to the start
        step = rec.machine.T.sum(axis=0)
        assert np.all(step.max(axis=1) == 1.0)
        assert np.allclose(np.linalg.matrix_power(step, period), np.eye(period))


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input() -> None:
    x = np.random.default_rng(8).integers(0, 2, 1000)
    with pytest.raises(PiamiTypeError, match="integer"):
        cssr(x.astype(float), max_length=2)
    with pytest.raises(PiamiTypeError, match="max_length"):
        cssr(x, max_length=2.0)
    with pytest.raises(PiamiValueError, match="max_length must be >= 1"):
        cssr(x, max_length=0)
    with pytest.raises(PiamiValueError, match=r"too few symbols.*max_length <= 8"):
        cssr(x, max_length=12)
    with pytest.raises(PiamiValueError, match="alphabet of 200 symbols is too large"):
        cssr(np.random.default_rng(9).integers(0, 200, 1000), max_length=1)
    with pytest.raises(PiamiValueError, match="rows of at least 6"):
        cssr(x.reshape(250, 4), max_length=4)
    with pytest.raises(PiamiValueError, match="alpha"):
        cssr(x, max_length=2, alpha=1.5)
    with pytest.raises(PiamiValueError, match="test must be one of"):
        cssr(x, max_length=2, test="g")
    with pytest.raises(PiamiValueError, match="correction must be one of"):
        cssr(x, max_length=2, correction="holm")
    with pytest.raises(PiamiValueError, match=">= 0"):
        cssr(x - 1, max_length=2)
    with pytest.raises(PiamiValueError, match="n_vocab"):
        cssr(x, max_length=2, n_symbols=1)


# -- sofic as an independent oracle ---------------------------------------------------------------
@pytest.mark.parametrize(("name", "L"), [("golden_mean", 3), ("even_process", 3), ("unifilar3", 3)])
def test_agrees_with_sofic(name: str, L: int) -> None:
    sofic = pytest.importorskip("sofic.generators")
    proc = unifilar3() if name == "unifilar3" else from_spec(name)
    x = proc.sample(1, 20_000, rng=np.random.default_rng(10))[0]
    rec = cssr(x, max_length=L)
    m = sofic.cssr(x.tolist(), alphabet=[0, 1], Lmax=L, alpha=0.001, test="chi2")
    assert rec.n_states == len(list(m.states())) == proc.n_states
    h_sofic = float(m.entropy_rate())  # bits
    assert abs(bits(rec.machine.entropy_rate()) - h_sofic) <= 0.002
    assert abs(h_sofic - bits(proc.entropy_rate())) <= 0.01
