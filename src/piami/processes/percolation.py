r"""Critical mean-field percolation clusters as a synthetic data set with a known latent hierarchy.

Brill, "Neural scaling laws rooted in the data distribution" (arXiv 2412.07942, 2024) models natural
data as critical percolation clusters on a high-dimensional lattice; Brill, "Representation learning
on a random lattice" (arXiv 2504.20197, 2025, App. A) reviews the mean-field (Bethe lattice) theory;
Brill and Carlson, "Critical percolation as a synthetic data model for interpretability" (arXiv
2606.20347, 2026) turn it into a data generator: sites of clusters embedded in R^d by a branching
random walk, with target values linear in a hierarchy of binary latents that a *cyclic coalescent*
produces together with the cluster's tree.

**The model implemented here.** A data set is the first ``n_points`` points of an infinite stream
of independent clusters ``c = 0, 1, 2, ...``:

1. *Sizes.* Cluster ``c`` has ``s_c`` sites, drawn i.i.d. from the mean-field critical law of a
   uniformly chosen cluster, ``q(s) = n_s / sum_s n_s = 2 e^{-s} s^{s-2} / s!`` (the number of
   clusters of size ``s`` per site of critical Erdős–Rényi / Bethe percolation is
   ``n_s = e^{-s} s^{s-2}/s!``; ``sum_s n_s = E[1/S] = 1/2`` for the Borel law
   ``P(S = s) = s n_s = e^{-s} s^{s-1}/s!`` of the cluster of a given site). By Stirling
   ``n_s ~ s^{-5/2}/sqrt(2 pi)``: Fisher exponent ``tau = 5/2`` (Brill 2024, eq. 3), and the
   cluster of a random site has ``P(s) ~ s^{-3/2}``. The law is truncated at ``max_cluster_size``
   (tail mass ``~0.53 s_max^{-3/2}``). Brill and Carlson draw sizes with a Simon process of create
   probability 1/3, which has the same ``tau = 1 + 1/(1 - 1/3)`` only asymptotically and whose
   clusters grow with ``N``; independent clusters give the exact ``n_s`` and a data set that is a
   prefix of every larger one drawn with the same seed.
2. *Tree and latents (Brill and Carlson 2026, cyclic coalescent).* The ``s`` sites sit on a cycle,
   each its own block. ``s - 1`` times: pick a site ``u`` uniformly; its block ``A`` merges with
   the next block ``B`` along the cycle through the edge ``(u, v)``, ``v`` uniform in ``B``; the
   merge is a new latent whose two children are the top latents (or sites) of ``A`` and ``B``.
   The edges form a tree whose shape is that of a uniform labelled (Cayley) tree: a Poisson(1)
   Galton–Watson tree conditioned on ``s`` vertices, with degrees ``1 + Bin(s-2, 1/s) ->
   1 + Poisson(1)``; the latents form a binary tree whose leaves are the sites, each latent a
   connected sub-cluster (a component), the top latent the whole cluster (the context).
3. *Order.* A root site is drawn uniformly and the sites are listed breadth first, so every
   prefix of a cluster is connected and ``parent[i] < i``. The last cluster of a data set may be
   cut short; :meth:`PercolationSample.complete` drops it.
4. *Embedding (branching random walk).* ``x_root = o_c + step * xi``, ``x_i = x_parent(i) + step *
   xi_i``, ``xi ~ N(0, I_d)``, cluster origins ``o_c ~ N(0, spread^2 I_d)``. Then
   ``E|x_i - x_j|^2 = d step^2 dist(i, j)`` (``dist`` the chemical distance in the tree):
   Euclidean radius ~ (chemical distance)^{1/2} ~ ``s^{1/4}``, so the mass-radius fractal
   dimension is ``D = 4`` (Brill 2024, sec. 2). The step does not shrink with ``N`` (the
   reference uses ``N^{-1/6}``), which keeps data sets nested.
5. *Labels (Brill and Carlson 2026).* Every latent ``l`` has ``z_l ~ N(0, 1)`` and every site a
   surface feature ``eps_i ~ N(0, 1)``; ``y_i = (sum_{l ∋ i} z_l + eps_i) / sqrt(depth_i + 1)``
   with ``depth_i`` the number of latents containing ``i``: linear in the latent indicator
   features (:meth:`PercolationSample.latent_features`), with unit variance.

Randomness is split by purpose and by chunks of clusters (``numpy.random.SeedSequence`` spawn keys),
so cluster ``c`` gets the same numbers whatever ``n_points`` is. The checks of the exact facts
(``tau``, degrees, Cayley shapes, ``D``) are in :mod:`piami.instruments.percolation`, the exact
laws in :mod:`piami.theory.percolation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.special import gammaln

from piami.errors import PiamiTypeError, PiamiValueError
from piami.theory.percolation import _check_positive

_CHUNK = 1024  # clusters per random stream
_SIZES, _TREES, _VALUES, _ORIGINS, _STEPS, _NOISE = range(6)  # stream purposes


@lru_cache(maxsize=4)
def _size_cdf(s_max: int) -> np.ndarray:
    s = np.arange(1, s_max + 1, dtype=np.float64)
    cdf = np.cumsum(np.exp(np.log(2.0) - s + (s - 2.0) * np.log(s) - gammaln(s + 1.0)))
    return cdf / cdf[-1]


def cyclic_coalescent(size: int, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One cluster's tree and binary latent tree by the cyclic coalescent (Brill and Carlson 2026).

    Args:
        size: number of sites ``s >= 1`` (the cycle positions ``0..s-1``).
        uniforms: at least ``2 (s - 1)`` numbers in [0, 1): the site ``u`` of each merge, then the
            position of ``v`` inside the next block.

    Returns:
        ``edges`` int64 ``(s - 1, 2)``; ``up`` int64 ``(2 s - 1,)``: the parent of node ``k``
        (sites ``0..s-1``, latent ``t`` = merge ``t`` is node ``s + t``), ``-1`` at the top latent;
        ``n_latents_above`` int64 ``(s,)``: number of latents containing each site.

    Example:
        >>> edges, up, depth = cyclic_coalescent(4, np.random.default_rng(0).random(6))
        >>> edges.shape, int((up == -1).sum()), bool(up[6] == -1)
        ((3, 2), 1, True)
    """
    s = int(size)
    uf = list(range(s))  # union-find towards the block's first position (blocks are arcs)
    nxt = [*range(1, s), 0]
    bsize = [1] * s
    rep = list(range(s))  # node at the top of the block that starts at this position
    up = [-1] * (2 * s - 1)
    edges = np.empty((max(s - 1, 0), 2), dtype=np.int64)
    ud = (uniforms[: s - 1] * s).astype(np.int64).tolist()
    vd = uniforms[s - 1 : 2 * (s - 1)].tolist()
    for t in range(s - 1):
        u = x = ud[t]
        while uf[x] != x:
            uf[x] = uf[uf[x]]
            x = uf[x]
        b = nxt[x]
        v = b + int(vd[t] * bsize[b])
        edges[t, 0] = u
        edges[t, 1] = v - s if v >= s else v
        up[rep[x]] = up[rep[b]] = s + t
        rep[x] = s + t
        bsize[x] += bsize[b]
        nxt[x] = nxt[b]
        uf[b] = b - 1 if b else s - 1
    lat = [0] * (2 * s - 1)
    for k in range(2 * s - 3, -1, -1):  # parents have larger node numbers
        lat[k] = lat[up[k]] + 1
    return edges, np.asarray(up, dtype=np.int64), np.asarray(lat[:s], dtype=np.int64)


def _bfs(s: int, edges: np.ndarray, root: int) -> tuple[list[int], list[int]]:
    adj: list[list[int]] = [[] for _ in range(s)]
    for a, b in edges.tolist():
        adj[a].append(b)
        adj[b].append(a)
    order, par = [root], [-1]
    rank = [-1] * s
    rank[root] = 0
    head = 0
    while head < len(order):
        a = order[head]
        for b in adj[a]:
            if rank[b] < 0:
                rank[b] = len(order)
                order.append(b)
                par.append(head)
        head += 1
    return order, par


@dataclass(frozen=True, kw_only=True)
class PercolationSample:
    """Points, trees and latents of a percolation data set (see the module docstring).

    Points are grouped by cluster (``cluster`` is non-decreasing) and listed breadth first inside
    a cluster. Latents are numbered cluster by cluster, in merge order.

    Attributes:
        points: float64 ``(n_points, dim)`` embedded sites.
        labels: float64 ``(n_points,)`` targets ``y``.
        cluster: int64 ``(n_points,)`` cluster of each point.
        parent: int64 ``(n_points,)`` tree parent (a point index), ``-1`` at a cluster's root.
        cluster_size: int64 ``(n_clusters,)`` drawn size of each cluster (the last may be cut).
        noise: float64 ``(n_points,)`` surface features ``eps``.
        point_latent: int64 ``(n_points,)`` smallest latent containing the point, ``-1`` alone.
        latent_parent: int64 ``(n_latents,)`` parent latent, ``-1`` for a cluster's top latent.
        latent_cluster: int64 ``(n_latents,)`` cluster of each latent.
        latent_value: float64 ``(n_latents,)`` latent values ``z``.
        depth: int64 ``(n_points,)`` number of latents containing each point.
    """

    points: np.ndarray
    labels: np.ndarray
    cluster: np.ndarray
    parent: np.ndarray
    cluster_size: np.ndarray
    noise: np.ndarray
    point_latent: np.ndarray
    latent_parent: np.ndarray
    latent_cluster: np.ndarray
    latent_value: np.ndarray
    depth: np.ndarray

    @property
    def n_points(self) -> int:
        """Number of points."""
        return int(self.cluster.size)

    def complete(self) -> PercolationSample:
        """The same data without a last cluster that was cut short (a prefix of the points)."""
        n_c = int(np.searchsorted(np.cumsum(self.cluster_size), self.n_points, side="right"))
        n = int(self.cluster_size[:n_c].sum())
        n_l = int(np.searchsorted(self.latent_cluster, n_c))
        cut = {f: getattr(self, f)[:n] for f in ("points", "labels", "cluster", "parent", "noise")}
        return PercolationSample(
            **cut,
            cluster_size=self.cluster_size[:n_c],
            point_latent=self.point_latent[:n],
            latent_parent=self.latent_parent[:n_l],
            latent_cluster=self.latent_cluster[:n_l],
            latent_value=self.latent_value[:n_l],
            depth=self.depth[:n],
        )

    def latent_features(self) -> sparse.csr_matrix:
        """Indicator matrix ``F[i, l] = 1`` when latent ``l`` contains point ``i``.

        Returns:
            scipy CSR ``(n_points, n_latents)``; ``labels == (F @ latent_value + noise) /
            sqrt(depth + 1)`` exactly.
        """
        rows, cols = [], []
        cur = self.point_latent.copy()
        idx = np.arange(self.n_points)
        while True:
            alive = cur >= 0
            if not alive.any():
                break
            rows.append(idx[alive])
            cols.append(cur[alive])
            cur = np.where(alive, self.latent_parent[np.maximum(cur, 0)], -1)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        shape = (self.n_points, self.latent_parent.size)
        return sparse.csr_matrix((np.ones(r.size), (r, c)), shape=shape)


def _entropy(rng: object) -> list[int]:
    if isinstance(rng, np.random.Generator):
        return [int(x) for x in rng.integers(0, 2**63, size=4)]
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return [int(rng)]
    raise PiamiTypeError(
        f"sample_percolation: rng must be a numpy Generator or a non-negative int seed, got {rng!r}"
    )


def sample_percolation(
    n_points: int,
    *,
    dim: int,
    rng: np.random.Generator | int,
    step: float = 0.1,
    spread: float = 1.0,
    max_cluster_size: int = 2**20,
) -> PercolationSample:
    """Draw the first ``n_points`` points of the percolation data stream (module docstring).

    Args:
        n_points: number of points ``N >= 1``.
        dim: embedding dimension ``d >= 1`` (``d`` of order 100 keeps tree neighbours nearest).
        rng: a seed (``int``) or a numpy Generator (4 integers are drawn from it). With the same
            seed, a data set of ``N`` points is the prefix of one of ``N' > N`` points.
        step: standard deviation per coordinate of one random-walk step.
        spread: standard deviation per coordinate of the cluster origins.
        max_cluster_size: the size law is truncated here (``>= 1``).

    Returns:
        A :class:`PercolationSample`.

    The cost is linear in ``N`` plus the full size of the last cluster (its tree is drawn whole so
    that it matches larger data sets): a size-biased draw, ``P(> M) ~ 0.8 / sqrt(M)``, about 10 s
    at ``M = 2**20``.

    Example:
        >>> a = sample_percolation(300, dim=8, rng=0)
        >>> b = sample_percolation(500, dim=8, rng=0)
        >>> a.points.shape, bool(np.array_equal(a.labels, b.labels[:300]))
        ((300, 8), True)
        >>> bool(np.all(a.parent < np.arange(300)))
        True
    """
    _check_positive("n_points", n_points, 1, True)
    _check_positive("dim", dim, 1, True)
    _check_positive("step", step, 0.0, False)
    _check_positive("spread", spread, 0.0, False)
    _check_positive("max_cluster_size", max_cluster_size, 1, True)
    if n_points > 10**8 or max_cluster_size > 2**22:
        raise PiamiValueError(
            f"sample_percolation: n_points <= 1e8 and max_cluster_size <= 2**22 supported, "
            f"got {n_points} and {max_cluster_size}"
        )
    entropy, cdf = _entropy(rng), _size_cdf(int(max_cluster_size))

    def stream(chunk: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(chunk, purpose)))

    sizes: list[np.ndarray] = []
    total, chunk = 0, 0
    while total < n_points:  # sizes, a chunk of clusters at a time
        u = stream(chunk, _SIZES).random(_CHUNK)
        sizes.append(np.searchsorted(cdf, u, side="right").astype(np.int64) + 1)
        total += int(sizes[-1].sum())
        chunk += 1
    size = np.concatenate(sizes)
    n_clusters = int(np.searchsorted(np.cumsum(size), n_points)) + 1
    size = size[:n_clusters]
    start = np.concatenate([[0], np.cumsum(size)])
    lstart = np.concatenate([[0], np.cumsum(size - 1)])
    present = np.minimum(size, n_points - start[:-1])

    parent = np.empty(n_points, np.int64)
    point_latent = np.full(n_points, -1, np.int64)
    depth = np.zeros(n_points, np.int64)
    latent_parent = np.empty(int(lstart[-1]), np.int64)
    z = np.empty(int(lstart[-1]))
    x0 = np.empty((n_clusters, dim))
    steps = np.empty((n_points, dim))
    noise = np.empty(n_points)
    for k in range(chunk):
        lo, hi = k * _CHUNK, min((k + 1) * _CHUNK, n_clusters)
        if lo >= hi:
            break
        p0, p1, l0, l1 = start[lo], start[lo] + present[lo:hi].sum(), lstart[lo], lstart[hi]
        w = stream(k, _TREES).random(int(3 * size[lo:hi].sum()))
        z[l0:l1] = stream(k, _VALUES).standard_normal(int(l1 - l0))
        x0[lo:hi] = spread * stream(k, _ORIGINS).standard_normal((hi - lo, dim))
        steps[p0:p1] = step * stream(k, _STEPS).standard_normal((int(p1 - p0), dim))
        noise[p0:p1] = stream(k, _NOISE).standard_normal(int(p1 - p0))
        off = 0
        for c in range(lo, hi):
            s, m, p, q = int(size[c]), int(present[c]), int(start[c]), int(lstart[c])
            wc = w[off : off + 3 * s]
            off += 3 * s
            if s == 1:
                parent[p] = -1
                continue
            edges, up, lat = cyclic_coalescent(s, wc)
            order, par = _bfs(s, edges, int(wc[3 * s - 1] * s))
            order_m = np.asarray(order[:m])
            parent[p : p + m] = np.asarray(par[:m]) + p
            parent[p] = -1
            point_latent[p : p + m] = up[order_m] - s + q
            depth[p : p + m] = lat[order_m]
            lp = up[s:] - s + q
            lp[-1] = -1
            latent_parent[q : q + s - 1] = lp
    cluster = np.repeat(np.arange(n_clusters), present)
    points = _walk(parent, steps, cluster.size) + x0[cluster]
    latent_cluster = np.repeat(np.arange(n_clusters), size - 1)
    path = _path_sums(latent_parent, z)
    lsum = np.where(point_latent >= 0, path[np.maximum(point_latent, 0)], 0.0)
    labels = (lsum + noise) / np.sqrt(depth + 1.0)
    return PercolationSample(
        points=points,
        labels=labels,
        cluster=cluster,
        parent=parent,
        cluster_size=size,
        noise=noise,
        point_latent=point_latent,
        latent_parent=latent_parent,
        latent_cluster=latent_cluster,
        latent_value=z,
        depth=depth,
    )


def _walk(parent: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """Branching random walk: add each point's ancestors' steps (``parent[i] < i``)."""
    level = np.zeros(n, np.int64)
    for i in np.flatnonzero(parent >= 0).tolist():  # parents come first
        level[i] = level[parent[i]] + 1
    order = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[order], np.arange(level.max() + 2))
    for k in range(1, level.max() + 1):
        idx = order[bounds[k] : bounds[k + 1]]
        x[idx] += x[parent[idx]]
    return x


def _path_sums(latent_parent: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``sum of z`` from each latent up to its cluster's top latent (parents have larger index)."""
    out = z.copy()
    lp = latent_parent.tolist()
    for k in range(len(lp) - 1, -1, -1):
        if lp[k] >= 0:
            out[k] += out[lp[k]]
    return out


__all__ = ["PercolationSample", "cyclic_coalescent", "sample_percolation"]
