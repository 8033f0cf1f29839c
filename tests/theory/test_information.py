"""Information measures: known values, brute-force word enumeration and internal consistency."""

import itertools
import math

import numpy as np
import pytest

from piami.errors import DivergentQuantityError
from piami.processes import (
    GeneralizedHiddenMarkovModel,
    HiddenMarkovModel,
    even_process,
    golden_mean,
    mess3,
    random_hmm,
    rrxor,
    z1r,
)
from piami.theory import block_entropies, entropy, statistical_complexity, to_bits

LOG2_6 = math.log2(6)


def h_bits(p):
    return -sum(q * math.log2(q) for q in p if q > 0)


def brute_force_block_entropy(proc, L):
    """H(L) in nats by enumerating every word of length L and its probability pi T[w] r."""
    if L == 0:
        return 0.0
    probs = np.array(
        [
            proc.word_probability(np.array(w))
            for w in itertools.product(range(proc.n_symbols), repeat=L)
        ]
    )
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    return float(entropy(probs))


def ghmm_equivalent(proc, seed=0, scale=2.5):
    """A signed presentation of the same process: c * S^-1 T S with a random invertible S."""
    rng = np.random.default_rng(seed)
    S = np.eye(proc.n_states) + 0.4 * rng.standard_normal((proc.n_states, proc.n_states))
    Si = np.linalg.inv(S)
    return GeneralizedHiddenMarkovModel(scale * np.einsum("ab,xbc,cd->xad", Si, proc.T, S))


CASES = [
    mess3(0.05, 0.85),
    rrxor(),
    z1r(),
    golden_mean(0.3),
    even_process(),
    random_hmm(3, 3, rng=np.random.default_rng(5)),
]


@pytest.mark.parametrize("proc", CASES, ids=lambda p: p.name)
def test_block_entropies_match_enumeration_of_all_words(proc):
    L = 5 if proc.n_symbols == 3 else 7
    H = block_entropies(proc.T, L, root=proc.stationary_distribution())
    for k in range(L + 1):
        assert H[k] == pytest.approx(brute_force_block_entropy(proc, k), abs=1e-11)
    assert proc.block_entropy(L) == pytest.approx(H[-1], abs=1e-12)
    h = proc.optimal_loss(L)
    np.testing.assert_allclose(h, np.diff(H), atol=1e-11)
    assert proc.myopic_entropy(3) == pytest.approx(H[3] - H[2], abs=1e-12)


def test_generalized_hmm_has_the_same_exact_side():
    proc = random_hmm(3, 2, rng=np.random.default_rng(8))
    g = ghmm_equivalent(proc)
    assert (g.T < 0).any()  # genuinely signed
    for L in range(6):
        assert g.block_entropy(L) == pytest.approx(brute_force_block_entropy(proc, L), abs=1e-10)
    tokens = proc.sample(4, 20, rng=np.random.default_rng(0))
    np.testing.assert_allclose(
        g.next_token_probs(tokens), proc.next_token_probs(tokens), atol=1e-10
    )
    kw = {"n_chains": 128, "n_steps": 500, "myopic_depth": 30}
    er, eg = proc.entropy_rate_estimate(**kw), g.entropy_rate_estimate(**kw)
    assert abs(er.value - eg.value) < 5 * math.hypot(er.stderr, eg.stderr) + 1e-9
    assert eg.method == "blackwell" and math.isnan(eg.lower)
    assert g.excess_entropy() == pytest.approx(proc.excess_entropy(), abs=1e-9)


def test_rrxor_known_values():
    proc = rrxor()
    assert to_bits(proc.entropy_rate()) == pytest.approx(2 / 3, abs=1e-12)
    assert to_bits(proc.statistical_complexity()) == pytest.approx(LOG2_6 - 1 / 3, abs=1e-10)
    assert to_bits(proc.excess_entropy()) == pytest.approx(LOG2_6 - 1 / 3, abs=1e-9)


def test_rrxor_c_mu_through_the_mixed_state_route():
    """Passing right = 1 forces the mixed-state route (used for non-unifilar presentations)."""
    proc = rrxor()
    c = statistical_complexity(proc.T, root=proc.stationary_distribution(), right=np.ones(5))
    assert to_bits(c) == pytest.approx(LOG2_6 - 1 / 3, abs=1e-10)


def test_golden_mean_and_even_process_known_values():
    hb = h_bits([1 / 3, 2 / 3])
    g, e = golden_mean(), even_process()
    assert to_bits(g.entropy_rate()) == pytest.approx(2 / 3, abs=1e-12)
    assert to_bits(e.entropy_rate()) == pytest.approx(2 / 3, abs=1e-12)
    assert to_bits(g.statistical_complexity()) == pytest.approx(hb, abs=1e-12)
    assert to_bits(e.statistical_complexity()) == pytest.approx(hb, abs=1e-12)
    # golden mean is Markov order 1: E = H(1) - h; the even process has E = C_mu
    assert to_bits(g.excess_entropy()) == pytest.approx(hb - 2 / 3, abs=1e-10)
    assert to_bits(e.excess_entropy()) == pytest.approx(hb, abs=1e-9)


def test_z1r_excess_entropy_matches_words():
    proc = z1r(0.3)
    h = proc.entropy_rate()
    assert h == pytest.approx(entropy([0.3, 0.7]) / 3, abs=1e-14)
    # h(L) = h exactly from L = 4 on (synchronized), so E = H(L) - L h there
    L = 6
    assert proc.excess_entropy() == pytest.approx(
        brute_force_block_entropy(proc, L) - L * h, abs=1e-10
    )
    assert to_bits(proc.statistical_complexity()) == pytest.approx(math.log2(3), abs=1e-12)


@pytest.mark.parametrize(
    ("x", "a", "bits", "max_se"), [(0.05, 0.85, 1.1447, 3e-4), (0.15, 0.6, 1.5709, 2e-5)]
)
def test_mess3_entropy_rate_known_values(x, a, bits, max_se):
    proc = mess3(x, a)
    est = proc.entropy_rate_estimate(rng=np.random.default_rng(1), n_steps=2000, myopic_depth=128)
    assert est.method == "blackwell"
    assert est.stderr < max_se
    # published to 4 decimals: +-5e-5 bit rounding, plus 4 standard errors of the time average
    assert to_bits(est.value) == pytest.approx(bits, abs=5e-5 + 4 * to_bits(est.stderr))
    # the mixed-state layers give an independent upper bound; it is tight (h(L) - h ~ 0.85^L)
    assert to_bits(est.myopic_bound) == pytest.approx(bits, abs=5e-5)
    assert est.value <= est.myopic_bound + 4 * est.stderr
    assert abs(est.value - est.myopic_bound) < 4 * est.stderr + 1e-6
    assert est.lower <= est.value <= est.upper
    # the unifilar formula H[X|S] is wrong for Mess3 (the trap): it is a strict lower bound here
    assert est.value - est.lower > 0.02
    loss = proc.optimal_loss(60)
    assert np.all(np.diff(loss) <= 1e-15)  # h(L) never increases
    assert loss[-1] == pytest.approx(est.myopic_bound, abs=1e-9)


def test_mess3_statistical_complexity_diverges_clearly():
    with pytest.raises(DivergentQuantityError, match="diverges"):
        mess3().statistical_complexity(max_states=500)


def test_statistical_complexity_lumps_redundant_and_non_unifilar_presentations():
    hb = math.log(3) - (2 / 3) * math.log(2)  # H(1/3, 2/3) in nats
    g = golden_mean().T
    # unifilar but redundant: state A duplicated (A, A', B), each copy with the same future
    T = np.zeros((2, 3, 3))
    for a in (0, 1):
        T[1, a, 0], T[0, a, 2] = 0.25, 0.5
        T[1, a, 1] = 0.25  # 1 from A goes to A or A' -- non-unifilar but same predictions
    T[1, 2, 0] = 1.0
    proc = HiddenMarkovModel(T)
    assert not proc.is_unifilar()
    assert proc.statistical_complexity() == pytest.approx(hb, abs=1e-10)
    dup = np.zeros((2, 3, 3))
    dup[1, 0, 1], dup[0, 0, 2] = 0.5, 0.5
    dup[1, 1, 0], dup[0, 1, 2] = 0.5, 0.5
    dup[1, 2, 0] = 1.0
    assert HiddenMarkovModel(dup).is_unifilar()
    assert HiddenMarkovModel(dup).statistical_complexity() == pytest.approx(hb, abs=1e-12)
    assert HiddenMarkovModel(g).statistical_complexity() == pytest.approx(hb, abs=1e-12)


def test_bounds_hold_for_random_processes():
    for seed in range(3):
        proc = random_hmm(3, 2, rng=np.random.default_rng(seed))
        est = proc.entropy_rate_estimate(n_chains=128, n_steps=500, myopic_depth=40)
        assert est.lower - 4 * est.stderr <= est.value <= est.upper + 4 * est.stderr
        assert abs(est.value - est.myopic_bound) < 4 * est.stderr + 1e-6


def test_to_bits():
    assert to_bits(math.log(2)) == pytest.approx(1.0)
    np.testing.assert_allclose(to_bits(np.array([math.log(4), 0.0])), [2.0, 0.0])
