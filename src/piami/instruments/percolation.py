r"""Checks of a percolation data set against its exact laws: Fisher exponent, degree law, Cayley
tree shapes and mass-radius dimension (:mod:`piami.processes.percolation` generates the data,
:mod:`piami.theory.percolation` holds the laws).

Each check returns a :class:`PercolationCheck`: an estimate beside its prediction, an interval or a
statistic, and a p-value under the theory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from piami.errors import PiamiTypeError, PiamiValueError
from piami.processes.percolation import _entropy
from piami.theory.percolation import (
    CAYLEY_SHAPES_6,
    _check_positive,
    mean_tree_distance,
)


@dataclass(frozen=True, kw_only=True)
class PercolationCheck:
    """One exact check: an estimate beside its prediction, a statistic and a p-value.

    Attributes:
        name: what was checked.
        estimate: measured value (``tau``, a KL divergence in nats, a chi-square, ``D``).
        predicted: the theory's value for ``estimate``.
        interval: 95% interval of ``estimate`` (``None`` where it does not apply).
        statistic: the test statistic (z or chi-square).
        p_value: probability, under the theory, of a statistic at least this extreme.
        n: number of units the estimate rests on (clusters or points).
        detail: further numbers (observed and expected counts, standard error, ...).
    """

    name: str
    estimate: float
    predicted: float
    interval: tuple[float, float] | None
    statistic: float
    p_value: float
    n: int
    detail: dict

    def passed(self, alpha: float = 0.01) -> bool:
        """Whether the theory survives the test at level ``alpha``."""
        return bool(self.p_value >= alpha)


def _int_array(name: str, a: object) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise PiamiTypeError(f"{name} must be a 1-d integer array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _tree_arrays(parent: object, cluster: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    par, cl = _int_array("parent", parent), _int_array("cluster", cluster)
    n = par.size
    if cl.size != n or n == 0:
        raise PiamiValueError(
            f"parent and cluster need the same non-zero length, got {n}, {cl.size}"
        )
    if np.any(np.diff(cl) < 0) or np.any(par >= np.arange(n)) or np.any(par < -1):
        raise PiamiValueError(
            "need points grouped by cluster (non-decreasing cluster) with -1 <= parent[i] < i; "
            "pass sample.complete().parent and .cluster"
        )
    if np.any((par >= 0) & (cl[np.maximum(par, 0)] != cl)):
        raise PiamiValueError("a parent lies in another cluster; pass arrays of one sample")
    size = np.bincount(cl - cl[0])[cl - cl[0]]
    return par, cl, size


def _z_test(est: float, se: float, predicted: float) -> tuple[float, float]:
    from scipy.stats import norm

    z = (est - predicted) / se
    return float(z), float(2 * norm.sf(abs(z)))


def fit_cluster_exponent(
    sizes: object, *, s_min: int = 10, predicted: float = 2.5
) -> PercolationCheck:
    """Fisher exponent ``tau`` by maximum likelihood on cluster sizes ``s >= s_min``.

    The discrete power law ``P(s) = s^{-tau} / zeta(tau, s_min)`` (Clauset, Shalizi and Newman
    2009, eq. 3.5; Hurwitz zeta) is fitted to the sizes; the standard error is the inverse root of
    the Fisher information ``n d^2 log zeta / d tau^2``. Mean-field percolation: ``tau = 5/2``
    (Brill 2024, eq. 3), up to ``O(1/s_min)`` corrections of ``n_s``.

    Args:
        sizes: sizes of complete clusters (integers ``>= 1``), e.g.
            ``sample.complete().cluster_size``.
        s_min: smallest size fitted (``>= 1``).
        predicted: the exponent tested against.

    Returns:
        A :class:`PercolationCheck` with the estimate, a 95% interval, z and its p-value.

    Example:
        >>> from piami.processes import sample_percolation
        >>> s = sample_percolation(20_000, dim=2, rng=1).complete().cluster_size
        >>> abs(fit_cluster_exponent(s).estimate - 2.5) < 0.3
        True
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import zeta

    s = _int_array("sizes", sizes)
    _check_positive("s_min", s_min, 1, True)
    s = s[s >= s_min]
    if s.size < 10:
        raise PiamiValueError(
            f"fit_cluster_exponent needs >= 10 clusters of size >= s_min={s_min}, got {s.size}; "
            "draw more points or lower s_min"
        )
    n, mean_log = s.size, float(np.mean(np.log(s)))

    def nll(tau: float) -> float:
        return tau * mean_log + float(np.log(zeta(tau, s_min)))

    tau = float(minimize_scalar(nll, bounds=(1.0001, 8.0), method="bounded").x)
    h = 1e-3
    curv = (nll(tau + h) - 2 * nll(tau) + nll(tau - h)) / h**2
    se = 1.0 / np.sqrt(n * curv)
    z, p = _z_test(tau, se, predicted)
    ci = (tau - 1.96 * se, tau + 1.96 * se)
    return PercolationCheck(
        name="tau",
        estimate=tau,
        predicted=predicted,
        interval=(float(ci[0]), float(ci[1])),
        statistic=z,
        p_value=p,
        n=n,
        detail={"stderr": float(se), "s_min": int(s_min)},
    )


def _chi2(obs: np.ndarray, exp: np.ndarray) -> float:
    return float(np.sum((obs - exp) ** 2 / exp))


def degree_check(parent: object, cluster: object, *, s_min: int = 50) -> PercolationCheck:
    """Degrees against ``1 + Poisson(1)``: KL divergence and an exact finite-size chi-square.

    In a uniform labelled tree on ``s`` vertices a vertex has degree ``1 + Bin(s - 2, 1/s)``
    (Moon 1970, from Prüfer codes), which tends to ``1 + Poisson(1)``. The estimate is
    ``KL(empirical || 1 + Poisson(1))`` in nats over the sites of clusters with ``s >= s_min``;
    the p-value is a chi-square of the same counts against the exact binomial mixture (bins with
    expected count < 5 pooled; degrees of one tree are weakly dependent, so it is approximate).

    Args:
        parent: tree parents, ``-1`` at roots (complete clusters, grouped by cluster).
        cluster: cluster of each point.
        s_min: smallest cluster whose sites count (``>= 2``).

    Returns:
        A :class:`PercolationCheck`; ``detail`` holds the counts.

    Example:
        >>> from piami.processes import sample_percolation
        >>> d = sample_percolation(20_000, dim=2, rng=2).complete()
        >>> degree_check(d.parent, d.cluster).estimate < 0.01
        True
    """
    from scipy.stats import binom, chi2, poisson

    par, _, size = _tree_arrays(parent, cluster)
    _check_positive("s_min", s_min, 2, True)
    deg = np.bincount(par[par >= 0], minlength=par.size) + (par >= 0)
    keep = size >= s_min
    if keep.sum() < 20:
        raise PiamiValueError(f"degree_check needs >= 20 sites in clusters >= {s_min}")
    kmax = int(deg[keep].max()) + 1
    obs = np.bincount(deg[keep], minlength=kmax + 1)[1:].astype(float)
    k = np.arange(1, kmax + 1)
    ref = poisson.pmf(k - 1, 1.0)
    emp = obs / obs.sum()
    kl = float(np.sum(emp[emp > 0] * np.log(emp[emp > 0] / ref[emp > 0])))
    us, cnt = np.unique(size[keep], return_counts=True)  # cnt = sites in clusters of size us
    exp = sum(c * binom.pmf(k - 1, u - 2, 1.0 / u) for u, c in zip(us, cnt, strict=True))
    exp[-1] += obs.sum() - exp.sum()  # the tail beyond kmax
    o, e = _pool(obs, exp)
    stat = _chi2(o, e)
    p = float(chi2.sf(stat, max(o.size - 1, 1)))
    return PercolationCheck(
        name="degrees",
        estimate=kl,
        predicted=0.0,
        interval=None,
        statistic=stat,
        p_value=p,
        n=int(obs.sum()),
        detail={"observed": obs.tolist(), "expected": exp.tolist()},
    )


def _pool(obs: np.ndarray, exp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge tail bins until every expected count is >= 5."""
    o, e = list(obs), list(exp)
    while len(e) > 2 and e[-1] < 5:
        last_e, last_o = e.pop(), o.pop()
        e[-1] += last_e
        o[-1] += last_o
    return np.asarray(o), np.asarray(e)


def _shape_6(deg: np.ndarray, par: np.ndarray, idx: np.ndarray) -> str:
    seq = sorted(deg.tolist(), reverse=True)
    if seq[0] == 5:
        return "star"
    if seq[0] == 4:
        return "spider_2111"
    if seq[:2] == [3, 3]:
        return "double_star"
    if seq[0] == 2:
        return "path"
    a, b = idx[deg == 2]
    return "spider_311" if par[a] == b or par[b] == a else "spider_221"


def tree_shape_check(
    parent: object, cluster: object, *, rng: np.random.Generator | int = 0, n_sim: int = 20_000
) -> PercolationCheck:
    """Chi-square of the shapes of 6-site clusters against Cayley's labelled-tree counts.

    A Poisson(1) Galton–Watson tree conditioned on 6 vertices is a uniform labelled tree, so the
    six unlabelled shapes occur with probabilities ``CAYLEY_SHAPES_6[shape] / 6^4``. The p-value
    is Monte Carlo (``n_sim`` multinomial draws from ``rng``) when an expected count is under 5,
    else the chi-square law with 5 degrees of freedom.

    Args:
        parent: tree parents, ``-1`` at roots (complete clusters, grouped by cluster).
        cluster: cluster of each point.
        rng: seed or Generator of the Monte Carlo p-value.
        n_sim: Monte Carlo draws (``>= 100``).

    Returns:
        A :class:`PercolationCheck` whose estimate is the chi-square.

    Example:
        >>> from piami.processes import sample_percolation
        >>> d = sample_percolation(20_000, dim=2, rng=3).complete()
        >>> tree_shape_check(d.parent, d.cluster).detail["n_trees"] > 30
        True
    """
    from scipy.stats import chi2

    par, cl, size = _tree_arrays(parent, cluster)
    _check_positive("n_sim", n_sim, 100, True)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(_entropy(rng))
    deg = np.bincount(par[par >= 0], minlength=par.size) + (par >= 0)
    firsts = np.flatnonzero((size == 6) & (np.r_[True, np.diff(cl) != 0]))
    if firsts.size < 5:
        raise PiamiValueError(f"tree_shape_check needs >= 5 clusters of size 6, got {firsts.size}")
    names = list(CAYLEY_SHAPES_6)
    obs = np.zeros(len(names))
    for f in firsts.tolist():
        idx = np.arange(f, f + 6)
        obs[names.index(_shape_6(deg[idx], par, idx))] += 1
    prob = np.array([CAYLEY_SHAPES_6[k] for k in names]) / 6**4
    exp = firsts.size * prob
    stat = _chi2(obs, exp)
    if exp.min() >= 5:
        p = float(chi2.sf(stat, len(names) - 1))
    else:
        sims = gen.multinomial(firsts.size, prob, size=n_sim)
        p = float((1 + np.sum(((sims - exp) ** 2 / exp).sum(axis=1) >= stat)) / (n_sim + 1))
    return PercolationCheck(
        name="cayley_shapes_6",
        estimate=stat,
        predicted=float(len(names) - 1),
        interval=None,
        statistic=stat,
        p_value=p,
        n=int(firsts.size),
        detail={
            "n_trees": int(firsts.size),
            "observed": dict(zip(names, obs.tolist(), strict=True)),
            "expected": dict(zip(names, exp.tolist(), strict=True)),
        },
    )


def mass_radius_dimension(
    points: object,
    cluster: object,
    *,
    s_min: int = 10,
    predicted: float = 4.0,
    finite_size: bool = True,
) -> PercolationCheck:
    """Fractal dimension ``D`` from the radius of gyration of each cluster, ``R_g ~ s^{1/D}``.

    For every complete cluster with ``s >= s_min``, ``R_g^2 = (1/s) sum_i |x_i - xbar|^2``; an
    ordinary least-squares line of ``log R_g^2`` on ``log s`` has slope ``2/D``. A branching random
    walk on a uniform tree has ``E R_g^2 = d step^2 (s-1)/(2s) E[dist]`` with ``E[dist] ~
    sqrt(pi s/2)`` (:func:`mean_tree_distance`), so ``D = 4`` (Brill 2024, sec. 2). With
    ``finite_size`` the regressor is ``log h(s)``, ``h = (s-1)/s E[dist]`` (``~ s^{1/2}``), and
    ``D = 4 / slope``, which removes the ``O(s^{-1/2})`` bias of small clusters.

    Args:
        points: float ``(n_points, dim)`` (complete clusters, grouped by cluster).
        cluster: cluster of each point.
        s_min: smallest cluster used (``>= 3``).
        predicted: the dimension tested against.
        finite_size: regress on the exact finite-size ``h(s)`` instead of ``s``.

    Returns:
        A :class:`PercolationCheck` with ``D``, a 95% delta-method interval, z and p-value.

    Example:
        >>> from piami.processes import sample_percolation
        >>> d = sample_percolation(20_000, dim=16, rng=4).complete()
        >>> 3.0 < mass_radius_dimension(d.points, d.cluster).estimate < 5.5
        True
    """
    x = np.asarray(points, dtype=np.float64)
    cl = _int_array("cluster", cluster)
    if x.ndim != 2 or x.shape[0] != cl.size or not np.isfinite(x).all():
        raise PiamiValueError(f"points must be finite (n, dim) with n = {cl.size}, got {x.shape}")
    _check_positive("s_min", s_min, 3, True)
    _, inv, size = np.unique(cl, return_inverse=True, return_counts=True)
    ind = sparse.csr_matrix((np.ones(cl.size), (inv, np.arange(cl.size))))
    mean = (ind @ x) / size[:, None]
    rg2 = np.bincount(inv, weights=np.sum((x - mean[inv]) ** 2, axis=1)) / size
    keep = size >= s_min
    if keep.sum() < 10:
        raise PiamiValueError(f"mass_radius_dimension needs >= 10 clusters of size >= {s_min}")
    if finite_size:
        h = {u: (u - 1) / u * mean_tree_distance(int(u)) for u in np.unique(size[keep])}
        reg = np.log([h[u] for u in size[keep]])
        scale = 4.0
    else:
        reg, scale = np.log(size[keep].astype(float)), 2.0
    y = np.log(rg2[keep])
    xc = reg - reg.mean()
    slope = float(xc @ (y - y.mean()) / (xc @ xc))
    resid = y - y.mean() - slope * xc
    se_b = float(np.sqrt(resid @ resid / (y.size - 2) / (xc @ xc)))
    dim_hat, se = scale / slope, scale * se_b / slope**2
    z, p = _z_test(dim_hat, se, predicted)
    return PercolationCheck(
        name="mass_radius_D",
        estimate=dim_hat,
        predicted=predicted,
        interval=(float(dim_hat - 1.96 * se), float(dim_hat + 1.96 * se)),
        statistic=z,
        p_value=p,
        n=int(keep.sum()),
        detail={"stderr": se, "slope": slope, "finite_size": finite_size},
    )


__all__ = [
    "PercolationCheck",
    "degree_check",
    "fit_cluster_exponent",
    "mass_radius_dimension",
    "tree_shape_check",
]
