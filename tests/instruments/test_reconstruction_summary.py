"""machine.json measures, the block bootstrap, and the state diagram, on machines known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.instruments.reconstruction.result import Reconstruction
from piami.instruments.reconstruction.summary import (
    block_bootstrap,
    machine_measures,
    machine_record,
    state_diagram_dot,
)
from piami.processes import from_spec
from piami.processes.hmm import HiddenMarkovModel


def iid_fit(tokens: np.ndarray) -> Reconstruction:
    """A one-state 'reconstruction': the unigram frequencies (a method whose spread is known)."""
    p = np.bincount(tokens.ravel(), minlength=2) / tokens.size
    return Reconstruction(
        method="iid",
        machine=HiddenMarkovModel(p[:, None, None]),
        n_symbols=2,
        n_samples=tokens.size,
    )


def test_bootstrap_interval_covers_the_binary_entropy_of_a_biased_coin_at_its_rate():
    """A 95% interval misses on about 1 draw in 20: the test is a coverage rate over 40 seeds."""
    h = -(0.3 * math.log2(0.3) + 0.7 * math.log2(0.7))
    se = math.sqrt(0.3 * 0.7 / 20_000) * abs(math.log2(0.3 / 0.7))
    covered, widths = 0, []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        tokens = (rng.random(20_000) < 0.3).astype(np.int64)
        m = machine_measures(iid_fit(tokens), tokens, iid_fit, n_boot=40, rng=rng)
        covered += m["entropy_rate"]["low"] <= h <= m["entropy_rate"]["high"]
        widths.append(m["entropy_rate"]["high"] - m["entropy_rate"]["low"])
        assert m["statistical_complexity"]["value"] == pytest.approx(0.0, abs=1e-12)
    # at a true 95%, 40 draws cover >= 34 times with probability 0.99 (binomial)
    assert covered >= 34, covered
    # and the width is that of a binomial proportion's entropy: about 4 standard errors
    assert 2.5 * se < float(np.median(widths)) < 6 * se


def test_measures_of_the_golden_mean_are_exact_in_bits():
    gm = from_spec("golden_mean")
    recon = Reconstruction(method="exact", machine=gm, n_symbols=2, n_samples=0)
    m = machine_measures(recon, np.zeros(10, np.int64), None, rng=np.random.default_rng(0))
    assert m["entropy_rate"]["value"] == pytest.approx(2 / 3, abs=1e-9)
    # C_mu = H(2/3, 1/3) bits for the golden mean's two causal states
    c = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert m["statistical_complexity"]["value"] == pytest.approx(c, abs=1e-9)
    assert math.isnan(m["entropy_rate"]["low"])  # no refit: no interval


def test_record_and_dot_name_every_edge_once():
    gm = from_spec("golden_mean")
    recon = Reconstruction(method="exact", machine=gm, n_symbols=2, n_samples=0)
    m = machine_measures(recon, np.zeros(10, np.int64), None, rng=np.random.default_rng(0))
    rec = machine_record(recon, ("a", "b"), m, source="test")
    n_edges = int(np.count_nonzero(gm.T))
    assert len(rec["transitions"]) == n_edges == 3
    probs = {}
    for e in rec["transitions"]:
        probs[e["from"]] = probs.get(e["from"], 0.0) + e["probability"]
    assert all(v == pytest.approx(1.0) for v in probs.values())
    dot = state_diagram_dot(recon, ("a", "b"))
    assert dot.startswith("digraph") and dot.count("->") == n_edges


def test_block_bootstrap_keeps_blocks_contiguous_and_refuses_too_few_symbols():
    tokens = np.arange(100)
    draws = block_bootstrap(tokens, n_blocks=10, n_boot=3, rng=np.random.default_rng(1))
    for d in draws:
        assert d.shape == (10, 10)
        assert np.all(np.diff(d, axis=1) == 1)  # each row a contiguous stretch
    with pytest.raises(PiamiError):
        block_bootstrap(np.arange(5), n_blocks=10, n_boot=1, rng=np.random.default_rng(0))


def test_default_max_length_keeps_k_to_the_3l_below_n():
    from piami.instruments.reconstruction import default_max_length

    for n, k in ((10_000, 2), (10**6, 3), (50, 2), (10**9, 2)):
        L = default_max_length(n, k)
        assert 1 <= L <= 10
        assert L == 1 or k ** (3 * L) <= n < k ** (3 * (L + 1)) or L == 10
    assert default_max_length(10, 1) == 1
