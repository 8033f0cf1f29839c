"""Percolation data: exact laws (sizes, Cayley shapes, tree distances), the four checks passing on
the generator and failing on broken generators, nestedness, seeds, labels and bad input."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy.special import gammaln

from piami.errors import PiamiError, PiamiTypeError, PiamiValueError
from piami.instruments.percolation import (
    degree_check,
    fit_cluster_exponent,
    mass_radius_dimension,
    tree_shape_check,
)
from piami.processes.percolation import cyclic_coalescent, sample_percolation
from piami.theory.percolation import CAYLEY_SHAPES_6, cluster_size_pmf, mean_tree_distance

N_MODERATE = 30_000


@pytest.fixture(scope="module")
def data():
    return sample_percolation(N_MODERATE, dim=32, rng=11).complete()


# ------------------------------------------------------------------ independent computations
def prufer_edges(code, n):
    """Decode a Prüfer sequence (textbook O(n^2) version) into the edges of a labelled tree."""
    degree = [1] * n
    for a in code:
        degree[a] += 1
    edges = []
    for a in code:
        leaf = min(i for i in range(n) if degree[i] == 1)
        edges.append((leaf, a))
        degree[leaf] -= 1
        degree[a] -= 1
    u, v = (i for i in range(n) if degree[i] == 1)
    return [*edges, (u, v)]


def bfs_parents(n, edges):
    """Parent array in breadth-first order from vertex 0 (points renumbered by visit order)."""
    adj = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    order, par, seen = [0], [-1], {0: 0}
    for head in itertools.count():
        if head == len(order):
            break
        for b in adj[order[head]]:
            if b not in seen:
                seen[b] = len(order)
                order.append(b)
                par.append(head)
    return par


def forest(trees):
    """Concatenate per-tree parent lists into (parent, cluster) arrays."""
    parent, cluster, off = [], [], 0
    for c, par in enumerate(trees):
        parent += [p + off if p >= 0 else -1 for p in par]
        cluster += [c] * len(par)
        off += len(par)
    return np.asarray(parent), np.asarray(cluster)


def distances(n, edges):
    adj = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    total = 0
    for src in range(n):
        dist, queue = {src: 0}, [src]
        for a in queue:  # breadth first; the list grows while it is read
            for b in adj[a]:
                if b not in dist:
                    dist[b] = dist[a] + 1
                    queue.append(b)
        total += sum(dist.values())
    return total / (n * (n - 1))


# ------------------------------------------------------------------------------- exact laws
def test_size_law_normalised_and_borel():
    s = np.arange(1, 200_001)
    q = cluster_size_pmf(s)
    # the tail beyond 2e5 is ~0.53 * (2e5)^(-3/2) ~ 6e-9
    assert q.sum() == pytest.approx(1.0, abs=1e-7)
    borel = np.exp(-s[:50] + (s[:50] - 1) * np.log(s[:50]) - gammaln(s[:50] + 1.0))
    np.testing.assert_allclose(s[:50] * q[:50] / 2, borel, rtol=1e-12)  # P(s) = s n_s


def test_sizes_follow_the_exact_law():
    sizes = sample_percolation(60_000, dim=1, rng=5).complete().cluster_size
    obs = np.bincount(sizes, minlength=6)[1:6]
    exp = sizes.size * cluster_size_pmf(np.arange(1, 6))
    # multinomial standard error ~ sqrt(exp); 5 sigma
    assert np.all(np.abs(obs - exp) < 5 * np.sqrt(exp))


def test_prufer_enumeration_gives_cayley_shape_counts_and_checker_agrees():
    trees = [
        bfs_parents(6, prufer_edges(code, 6)) for code in itertools.product(range(6), repeat=4)
    ]
    parent, cluster = forest(trees)
    check = tree_shape_check(parent, cluster)
    assert sum(CAYLEY_SHAPES_6.values()) == 6**4
    assert check.detail["observed"] == {k: float(v) for k, v in CAYLEY_SHAPES_6.items()}
    assert check.estimate == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [4, 5, 6])
def test_mean_tree_distance_matches_enumeration(n):
    codes = list(itertools.product(range(n), repeat=n - 2))
    brute = np.mean([distances(n, prufer_edges(c, n)) for c in codes])
    assert mean_tree_distance(n) == pytest.approx(brute, rel=1e-12)
    assert mean_tree_distance(4000) == pytest.approx(math.sqrt(math.pi * 4000 / 2), rel=0.02)


def coalescent_trees(size, n_trees, seed):
    rng = np.random.default_rng(seed)
    trees = []
    for _ in range(n_trees):
        edges, _, _ = cyclic_coalescent(size, rng.random(2 * size))
        trees.append(bfs_parents(size, edges.tolist()))
    return trees


def test_cyclic_coalescent_gives_cayley_shapes():
    parent, cluster = forest(coalescent_trees(6, 6000, seed=0))
    assert tree_shape_check(parent, cluster).p_value > 0.01


def test_cyclic_coalescent_latents_form_binary_tree():
    s = 40
    edges, up, n_above = cyclic_coalescent(s, np.random.default_rng(1).random(2 * s))
    assert np.sum(up == -1) == 1 and up[-1] == -1
    children = np.bincount(up[up >= 0], minlength=2 * s - 1)
    np.testing.assert_array_equal(children[:s], 0)  # sites are leaves
    np.testing.assert_array_equal(children[s:], 2)  # each merge joins two blocks
    assert len({tuple(sorted(e)) for e in edges.tolist()}) == s - 1
    assert np.all(n_above >= 1)


# ---------------------------------------------------------------------- checks on the generator
def test_checks_pass_on_generator(data):
    assert fit_cluster_exponent(data.cluster_size).passed(alpha=0.01)
    assert degree_check(data.parent, data.cluster).p_value > 0.01
    assert degree_check(data.parent, data.cluster).estimate < 5e-3
    assert tree_shape_check(data.parent, data.cluster).p_value > 0.01
    assert mass_radius_dimension(data.points, data.cluster).p_value > 0.01


def borel_cluster_sizes(mu, n, seed):
    """Finite-cluster sizes of Poisson(mu) percolation, n_s ∝ Borel_mu(s)/s (own formula)."""
    s = np.arange(1, 20_001, dtype=float)
    logp = -mu * s + (s - 1) * np.log(mu * s) - gammaln(s + 1) - np.log(s)
    p = np.exp(logp - logp.max())
    return np.random.default_rng(seed).choice(s.astype(np.int64), size=n, p=p / p.sum())


@pytest.mark.parametrize("mu", [0.8, 1.2])
def test_tau_fails_off_criticality(mu):
    sizes = borel_cluster_sizes(mu, 100_000, seed=0)
    assert fit_cluster_exponent(sizes).p_value < 1e-3
    critical = borel_cluster_sizes(1.0, 100_000, seed=0)  # same code at mu = 1 passes
    assert fit_cluster_exponent(critical).p_value > 0.01


def broken_trees(data, kind, seed=0):
    rng = np.random.default_rng(seed)
    trees = []
    for s in data.cluster_size.tolist():
        if kind == "path":
            trees.append([-1, *range(s - 1)])
        else:  # random recursive tree: attach to a uniform earlier site
            trees.append([-1] + [int(rng.integers(i)) for i in range(1, s)])
    return forest(trees)


@pytest.mark.parametrize("kind", ["path", "recursive"])
def test_degree_and_shape_checks_fail_on_other_trees(data, kind):
    parent, cluster = broken_trees(data, kind)
    assert degree_check(parent, cluster).p_value < 1e-3
    assert tree_shape_check(parent, cluster).p_value < 1e-3


def test_dimension_fails_for_ballistic_embedding(data):
    rng = np.random.default_rng(0)
    drift = rng.standard_normal((data.cluster_size.size, 32))
    x = np.zeros_like(data.points)
    for i, p in enumerate(data.parent.tolist()):  # parents come first
        x[i] = (x[p] if p >= 0 else 0.0) + drift[data.cluster[i]] + 0.1 * rng.standard_normal(32)
    bad = mass_radius_dimension(x, data.cluster)
    assert bad.p_value < 1e-3 and bad.estimate < 3.0
    assert mass_radius_dimension(data.points, data.cluster).p_value > 0.01


def test_embedding_second_moments_exact(data):
    d, step = data.points.shape[1], 0.1
    kids = data.parent >= 0
    jumps = np.sum((data.points[kids] - data.points[data.parent[kids]]) ** 2, axis=1)
    # E|step|^2 = d step^2; sd of the mean ~ sqrt(2/d)/sqrt(n) < 1%
    assert np.mean(jumps) / (d * step**2) == pytest.approx(1.0, abs=0.02)
    # E R_g^2 = d step^2 (s-1)/(2s) E[dist]; tree fluctuations make each ratio O(1): 800+ clusters
    starts = np.r_[0, np.cumsum(data.cluster_size)]
    ratios = []
    for c, s in enumerate(data.cluster_size.tolist()):
        if s >= 5:
            x = data.points[starts[c] : starts[c + 1]]
            rg2 = np.mean(np.sum((x - x.mean(0)) ** 2, axis=1))
            ratios.append(rg2 / (d * step**2 * (s - 1) / (2 * s) * mean_tree_distance(s)))
    assert len(ratios) > 500
    assert np.mean(ratios) == pytest.approx(1.0, abs=5 * np.std(ratios) / math.sqrt(len(ratios)))


# ------------------------------------------------------------------------- structure, seeds
def test_nested_across_sizes():
    small, big = (sample_percolation(n, dim=6, rng=3) for n in (777, 9000))
    for f in ("points", "labels", "cluster", "parent", "noise", "point_latent", "depth"):
        np.testing.assert_array_equal(getattr(small, f), getattr(big, f)[:777])
    for f in ("cluster_size", "latent_parent", "latent_cluster", "latent_value"):
        a = getattr(small, f)
        np.testing.assert_array_equal(a, getattr(big, f)[: a.size])


def test_seeds_reproducible_and_distinct():
    a = sample_percolation(500, dim=4, rng=7)
    b = sample_percolation(500, dim=4, rng=7)
    c = sample_percolation(500, dim=4, rng=np.random.default_rng(7))
    d = sample_percolation(500, dim=4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(c.labels, d.labels)
    assert not np.array_equal(a.labels, sample_percolation(500, dim=4, rng=8).labels)
    assert not np.array_equal(a.labels, c.labels)


def test_structure_and_labels_linear_in_latents(data):
    n = data.n_points
    assert np.all(data.parent < np.arange(n))
    roots = data.parent < 0
    assert roots.sum() == data.cluster_size.size  # one root per cluster: every cluster a tree
    assert np.all(data.cluster[data.parent[~roots]] == data.cluster[~roots])
    f = data.latent_features()
    np.testing.assert_array_equal(np.asarray(f.sum(axis=1)).ravel(), data.depth)
    lhs = data.labels * np.sqrt(data.depth + 1)
    np.testing.assert_allclose(lhs, f @ data.latent_value + data.noise, atol=1e-10)
    # top latents contain their whole cluster; labels have unit variance by construction
    tops = np.flatnonzero(data.latent_parent < 0)
    col = np.asarray(f[:, tops].sum(axis=0)).ravel()
    np.testing.assert_array_equal(col, data.cluster_size[data.latent_cluster[tops]])
    assert np.var(data.labels) == pytest.approx(1.0, abs=0.05)


def test_cut_cluster_dropped_by_complete():
    full = sample_percolation(1000, dim=2, rng=0)
    done = full.complete()
    assert done.cluster_size.sum() == done.n_points <= 1000
    assert np.array_equal(done.points, full.points[: done.n_points])


@pytest.mark.slow
def test_generation_time_and_checks_at_1e5():
    start = time.process_time()
    d = sample_percolation(100_000, dim=64, rng=0)
    assert time.process_time() - start < 10.0
    d = d.complete()
    assert fit_cluster_exponent(d.cluster_size).p_value > 0.01
    assert mass_radius_dimension(d.points, d.cluster).p_value > 0.01


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"n_points": 0}, PiamiValueError),
        ({"n_points": 2.5}, PiamiTypeError),
        ({"dim": 0}, PiamiValueError),
        ({"step": -1.0}, PiamiValueError),
        ({"step": float("nan")}, PiamiValueError),
        ({"rng": "seed"}, PiamiTypeError),
        ({"rng": -1}, PiamiTypeError),
        ({"max_cluster_size": 0}, PiamiValueError),
    ],
)
def test_bad_generator_input(kwargs, err):
    args = {"n_points": 10, "dim": 2, "rng": 0, **kwargs}
    with pytest.raises(err):
        sample_percolation(args.pop("n_points"), **args)


def test_bad_check_input(data):
    with pytest.raises(PiamiValueError):
        fit_cluster_exponent(np.array([1, 2, 3]))
    with pytest.raises(PiamiTypeError):
        fit_cluster_exponent(np.array([1.5, 2.0]))
    with pytest.raises(PiamiValueError):
        degree_check(data.parent[::-1].copy(), data.cluster)
    with pytest.raises(PiamiValueError):
        tree_shape_check(np.array([-1, 0]), np.array([0, 0]))
    with pytest.raises(PiamiValueError):
        mass_radius_dimension(data.points[:5], data.cluster)
    with pytest.raises(PiamiError):
        cluster_size_pmf(0)
