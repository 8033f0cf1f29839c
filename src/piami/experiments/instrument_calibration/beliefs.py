"""Belief-geometry section of ``instrument-calibration``: a belief set's dimension, probe-free.

For each Mess3 setting (:func:`measure_beliefs` measures, :mod:`.belief_rows` compares):

* **theory**: the Lyapunov (information) dimension of the long-run belief measure and its
  correlation dimension, from exact belief trajectories (:mod:`piami.theory.fractal`);
* **measurement, without a probe**: the correlation dimension (Grassberger & Procaccia 1983) of the
  trained network's own final residual stream at the last context position (one position, so that
  the position code adds no clusters), one point per held-out context. If the network represents
  its belief state and little else there (Shai et al. 2024), a bi-Lipschitz image of the belief set,
  the slope of ``log C(r)`` is the belief set's. Every cloud (long-run beliefs, exact beliefs of
  the held-out contexts, residual streams) is measured the same way: radii at the quantiles
  ``dimension_quantiles`` of its own pair distances, ``n_subsets`` disjoint subsets for a
  t-interval.
* **resolution**: the measurement tests the theory only at scales the network resolves, checked
  in two ways, both probe-free (see the history below for when each was stated):
  (1) *precision*: the beliefs implied by the network's own next-token output (``eta E = q`` with
  the process's emission matrix ``E``) err by ``eps`` RMS; the smallest belief radius must exceed
  ``3 sqrt(2) eps`` (pair distances then move by under 6% in ``log r``); (2) *other content*:
  distinct contexts whose exact beliefs agree to a tenth of the smallest belief radius must lie
  closer in the residual stream than its smallest radius (median ratio at most 1). Failing either,
  the row is not identified, with the numbers.
* **controls**: the untrained network (same initialization) must miss the theory's dimension by
  more than the tolerance, and training must remove at least half of its excess loss.
* an SAE on the residual stream: R^2 of the exact beliefs from its latents beside the direct probe's
  (in the metrics only: no theory gives it a bar).

Intervals: mean +- t sd / sqrt(K) over K disjoint subsets (of sequences or of chains).

History (``piami run instrument-calibration``, seed 0, full size, 2026-12-03): with check (2) alone,
both full-size networks counted as resolved and their residual streams read 0.99 (theory 0.22,
Mess3(0.05, 0.85)) and 1.44 (theory 1.23, Mess3(0.15, 0.6)): between 1% and 10% of pairs the
belief radii of the first span four decades, the residual radii one; a network of finite
precision cannot map belief differences far below its own error faithfully. Check (1) was added
for that reason; with it both rows are not identified (beliefs err by 0.027 and 0.025 RMS against
smallest radii of 1e-4 and 0.021).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

from piami.errors import PiamiValueError
from piami.experiments import belief_geometry as bg
from piami.instruments.probes import LinearProbe
from piami.instruments.sae import SparseAutoencoder
from piami.models import residual_stream
from piami.processes import mess3
from piami.theory.fractal import belief_dynamics, correlation_dimension, simplex_coordinates

#: (mean, low, high) of a dimension over disjoint subsets
Interval3 = tuple[float, float, float]


@dataclass(kw_only=True)
class BeliefMeasured:
    """What one Mess3 setting measured.

    Attributes:
        x, a: the Mess3 parameters.
        theory: the long-run belief measure: ``lyapunov_exponents``, ``entropy_rate`` (nats),
            ``lyapunov_dimension`` and ``correlation`` (each ``[mean, low, high]`` over subsets).
        dims: cloud -> correlation dimension ``(mean, low, high)``, for ``theory_long_run``,
            ``exact_context`` (exact beliefs of the held-out contexts), ``trained`` and
            ``untrained`` (final residual stream at the last position).
        kl: network -> KL(exact || model) at the last position (nats).
        resolution: :func:`resolution` of the trained network.
        sae: :func:`sae_metrics` (probe and SAE R^2, SAE health; metrics only).
        train_steps, train_stop_reason: where training stopped, and why ("" at ``train_steps``).
        points: clouds for the figure (simplex or top two principal components).
        train_wall_s: wall time of training (timing, not science).
    """

    x: float
    a: float
    theory: dict[str, Any]
    dims: dict[str, Interval3]
    kl: dict[str, float]
    resolution: dict[str, float]
    sae: dict[str, Any]
    train_steps: int
    train_stop_reason: str
    points: dict[str, np.ndarray]
    train_wall_s: float = 0.0

    @property
    def tag(self) -> str:
        """The setting as row names show it, e.g. ``Mess3(0.15, 0.6)``."""
        return f"Mess3({self.x:g}, {self.a:g})"

    @property
    def key(self) -> str:
        """The setting as metrics show it, e.g. ``mess3(0.15,0.6)``."""
        return f"mess3({self.x:g},{self.a:g})"

    def metrics(self) -> dict[str, Any]:
        return {
            "theory": self.theory,
            "correlation_dimension": {k: list(v) for k, v in self.dims.items()},
            "resolution": self.resolution,
            "kl_last_position": self.kl,
            **self.sae,
            "train_steps": self.train_steps,
            "train_stop_reason": self.train_stop_reason,
        }


def subset_interval(values: list[float], level: float = 0.95) -> Interval3:
    """(mean, low, high): t-interval of the mean over independent subsets (NaN when < 2 finite)."""
    v = np.asarray([x for x in values if np.isfinite(x)])
    if v.size < 2:
        return float("nan"), float("nan"), float("nan")
    m, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
    t = stats.t.ppf(0.5 + level / 2, v.size - 1)
    return m, m - t * se, m + t * se


def _corr(P: np.ndarray, q: tuple[float, float]) -> float:
    try:
        return correlation_dimension(P, c_range=q).dimension
    except PiamiValueError:  # too few distinct points for a scaling range: no value
        return float("nan")


def cloud_dimension(P: np.ndarray, q: tuple[float, float], K: int) -> Interval3:
    """Correlation dimension of ``P`` over ``K`` disjoint contiguous subsets: (mean, low, high)."""
    return subset_interval([_corr(P[c], q) for c in np.array_split(np.arange(P.shape[0]), K)])


def theory_dimensions(T: np.ndarray, cfg: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Lyapunov and correlation dimensions of the long-run belief measure, with intervals."""
    dls, corr, pts, lams, hs = [], [], [], [], []
    for _ in range(cfg.n_subsets):
        bd = belief_dynamics(T, n_steps=cfg.fractal_steps, n_chains=cfg.fractal_chains, rng=rng)
        lams.append(bd.lyapunov_exponents)
        hs.append(bd.entropy_rate)
        dls.append(bd.lyapunov_dimension)
        P = simplex_coordinates(bd.points)
        pts.append(P)
        corr.append(_corr(P, cfg.dimension_quantiles))
    dl = subset_interval(dls)
    return {
        "lyapunov_exponents": np.mean(lams, 0).tolist(),
        "entropy_rate": float(np.mean(hs)),
        "lyapunov_dimension": list(dl),
        "correlation": list(subset_interval(corr)),
        "points": np.concatenate(pts),
    }


def resolution(
    inputs: np.ndarray,
    exact: np.ndarray,
    resid: np.ndarray,
    implied: np.ndarray | None,
    q_lo: float,
) -> dict[str, float]:
    """How finely the network resolves its belief set, against the smallest radius measured.

    Args:
        inputs: ``(n, n_ctx)`` contexts; exact: their exact beliefs in simplex coordinates.
        resid: the residual vectors of those contexts.
        implied: the beliefs implied by the network's own next-token output (simplex coordinates),
            or None when the output does not determine the belief.
        q_lo: the lower pair-distance quantile of the radii.

    Returns:
        ``belief_radius`` (the smallest radius among the exact beliefs of distinct contexts);
        ``belief_error`` (RMS error of ``implied``, NaN when None); ``ratio`` (median residual
        distance of distinct contexts with beliefs equal to a tenth of ``belief_radius``, over the
        smallest residual radius; NaN without such pairs) and ``pairs`` (how many).
    """
    _, uniq = np.unique(inputs, axis=0, return_index=True)
    uniq = np.sort(uniq)

    def radius(P: np.ndarray) -> float:
        d = pdist(P[uniq[:2000]])
        return float(np.quantile(d[d > 0], q_lo)) if np.any(d > 0) else 0.0

    r_belief, r_resid = radius(exact), radius(resid)
    dist, nn = cKDTree(exact[uniq]).query(exact[uniq], k=2)
    close = dist[:, 1] < r_belief / 10
    ratio = float("nan")
    if close.any() and r_resid > 0:
        spread = np.linalg.norm(resid[uniq[close]] - resid[uniq[nn[close, 1]]], axis=1)
        ratio = float(np.median(spread) / r_resid)
    err = float("nan")
    if implied is not None:
        err = float(np.sqrt(np.mean(np.sum((implied - exact) ** 2, axis=1))))
    return {
        "belief_radius": r_belief,
        "belief_error": err,
        "ratio": ratio,
        "pairs": int(close.sum()),
    }


def implied_beliefs(T: np.ndarray, logq: np.ndarray) -> np.ndarray | None:
    """Beliefs that give the network's next-token output: ``eta E = q``, ``E[i, x] = Pr(x | i)``.

    Probe-free: ``E`` is the process's emission matrix. None when ``E`` has rank below the number
    of states (the output then does not determine the belief).
    """
    E = np.asarray(T).sum(axis=2).T  # (n_states, n_symbols)
    if np.linalg.matrix_rank(E) < E.shape[0]:
        return None
    return simplex_coordinates(np.exp(logq) @ np.linalg.pinv(E))


def _last_position(model: Any, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Final residual stream and next-token log-probabilities at the last context position."""
    acts, logits = residual_stream(model, inputs)
    n, L = inputs.shape
    last = logits.reshape(n, L, -1)[:, -1].astype(np.float64)
    logq = last - last.max(1, keepdims=True)
    logq -= np.log(np.exp(logq).sum(1, keepdims=True))
    return acts[-1].reshape(n, L, -1)[:, -1].astype(np.float64), logq


def _train(proc: Any, cfg: Any, progress: bool) -> tuple[Any, Any, Any]:
    """The trained and the untrained network of one setting (same initialization), and history."""
    bcfg = bg.Config(
        seed=cfg.seed,
        process=proc.spec,
        n_ctx=cfg.n_ctx,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_mlp=4 * cfg.d_model,
        n_steps=cfg.train_steps,
        batch_size=cfg.batch_size,
        time_budget_s=None,
        n_probe_seqs=max(cfg.n_probe_seqs, 100),
        n_checkpoints=2,
        device=cfg.device,
        dtype=cfg.dtype,
        n_threads=cfg.n_threads,
    )
    with tempfile.TemporaryDirectory(prefix="piami-calib-") as tmp:
        model, _, hist = bg.train_belief_model(bcfg, Path(tmp), progress=progress)
    return model, bg.build_model(bcfg), hist


def measure_beliefs(cfg: Any, rng: np.random.Generator, progress: bool) -> list[BeliefMeasured]:
    """Every Mess3 setting of ``cfg``, one after another on the same generator."""
    return [
        measure_belief(x, a, cfg, rng, progress)
        for x, a in zip(cfg.mess3_x, cfg.mess3_a, strict=True)
    ]


def measure_belief(
    x: float, a: float, cfg: Any, rng: np.random.Generator, progress: bool
) -> BeliefMeasured:
    """Train the belief-geometry model on Mess3(x, a); its residual stream's dimension; an SAE."""
    proc = mess3(x=x, a=a)
    theory = theory_dimensions(proc.T, cfg, rng)
    model, untrained, hist = _train(proc, cfg, progress)
    s = proc.sample(cfg.n_dim_seqs, cfg.n_ctx, rng=rng, return_beliefs=True, return_probs=True)
    exact = simplex_coordinates(s.beliefs[:, cfg.n_ctx])
    p = s.next_token_probs[:, cfg.n_ctx]
    q, K = cfg.dimension_quantiles, cfg.n_subsets
    dims = {
        "theory_long_run": tuple(theory["correlation"]),
        "exact_context": cloud_dimension(exact, q, K),
    }
    logp = np.log(np.maximum(p, 1e-300))
    kl, clouds, logqs = {}, {}, {}
    for name, net in (("trained", model), ("untrained", untrained)):
        resid, logqs[name] = _last_position(net, s.tokens)
        kl[name] = float(np.mean(np.sum(p * (logp - logqs[name]), axis=1)))
        dims[name] = cloud_dimension(resid, q, K)
        clouds[name] = resid
    implied = implied_beliefs(proc.T, logqs["trained"])
    res = resolution(s.tokens, exact, clouds["trained"], implied, q[0])
    sae = sae_metrics(proc, model, cfg, rng)
    long_pts = theory.pop("points")
    pts = {"theory": long_pts[:: max(1, long_pts.shape[0] // 20000)], "exact": exact}
    for name, r in clouds.items():  # top two principal components: a picture, not a measurement
        rc = r - r.mean(0)
        pts[name] = rc @ np.linalg.svd(rc, full_matrices=False)[2][:2].T
    return BeliefMeasured(
        x=x,
        a=a,
        theory=theory,
        dims=dims,
        kl=kl,
        resolution=res,
        sae=sae,
        train_steps=int(hist.step[-1]) if hist.step else 0,
        train_stop_reason=hist.stop_reason,
        points=pts,
        train_wall_s=float(hist.wall_s[-1]) if hist.wall_s else 0.0,
    )


def sae_metrics(proc: Any, model: Any, cfg: Any, rng: np.random.Generator) -> dict[str, Any]:
    """TopK SAEs on the final residual stream: R^2 of beliefs from their latents, beside the probe.

    Reported, not scored: no theory states how much of a continuous belief state a sparse code of
    ``k`` latents keeps for a linear read-out, so there is no bar with a source to hold it to.
    """
    L, sets = cfg.n_ctx, []
    for _ in range(2):  # probe-fit set, test set (all positions)
        s = proc.sample(cfg.n_probe_seqs, L, rng=rng, return_beliefs=True)
        sets.append((residual_stream(model, s.tokens)[0][-1], s.beliefs[:, 1:].reshape(-1, 3)))
    (r_fit, b_fit), (r_test, b_test) = sets
    probe_r2 = float(LinearProbe().fit(r_fit, b_fit).score(r_test, b_test))
    r2, health = {}, {}
    for k in cfg.sae_belief_k:
        sae = SparseAutoencoder(
            cfg.sae_belief_latents,
            kind="topk",
            k=int(k),
            n_steps=cfg.sae_steps,
            random_state=cfg.seed,
            device=cfg.device,
        ).fit(r_fit)
        z_fit, z_test = sae.encode(r_fit), sae.encode(r_test)
        r2[int(k)] = float(LinearProbe().fit(z_fit, b_fit).score(z_test, b_test))
        health[int(k)] = sae.health(r_test)
    return {"probe_r2_final_layer": probe_r2, "sae_r2_by_k": r2, "sae_health_by_k": health}
