"""Instrument calibration on belief geometry: fractal dimensions and SAEs on a trained transformer.

Part of the ``instrument-calibration`` experiment. For each Mess3 setting:

* theory: the Lyapunov (information) dimension of the belief measure, and its correlation and
  box-counting dimensions from a long exact belief trajectory (:mod:`piami.theory.fractal`);
* the same correlation dimension, over one fixed range of radii, of (a) the exact beliefs after the
  prefixes of held-out sequences (what a context-``n_ctx`` network can represent) and (b) the
  residual stream of the ``belief-geometry`` network mapped into the simplex by its linear probe;
* an SAE on the same residual stream: R^2 of the exact beliefs from its latents against the direct
  linear probe.

Intervals: the spread over disjoint subsets of the points (sequences, or chains), mean +- t sd/sqrt(K).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree

from piami.experiments import _belief_measure as M
from piami.experiments import belief_geometry as bg
from piami.instruments.dimension import twonn_dimension
from piami.instruments.probes import LinearProbe
from piami.instruments.sae import SparseAutoencoder
from piami.lab import Comparison
from piami.processes import mess3
from piami.theory.fractal import (
    belief_dynamics,
    box_counting_dimension,
    correlation_dimension,
    lyapunov_dimension,
    simplex_coordinates,
)

REF_FRACTAL = "Jurgens & Crutchfield 2021 (Chaos 31, 083114); Grassberger & Procaccia 1983"
REF_BELIEF = "Shai et al. 2024; Marzen & Crutchfield 2017"


def corr_slope(P: np.ndarray, radii: np.ndarray) -> float:
    """Slope of log C(r) vs log r at fixed radii (pairs of distinct rows, duplicates included)."""
    n = P.shape[0]
    tree = cKDTree(P)
    C = (tree.count_neighbors(tree, radii) - n) / (n * (n - 1.0))
    ok = C > 0
    if ok.sum() < 3:
        return float("nan")
    return float(stats.linregress(np.log(radii[ok]), np.log(C[ok])).slope)


def subset_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): t-interval of the mean over independent subsets."""
    v = np.asarray([x for x in values if np.isfinite(x)])
    if v.size < 2:
        return float("nan"), float("nan"), float("nan")
    m, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
    t = stats.t.ppf(0.5 + level / 2, v.size - 1)
    return m, m - t * se, m + t * se


def theory_dimensions(T: np.ndarray, cfg: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Lyapunov, correlation and box dimensions of the long-run belief measure, with intervals."""
    K = cfg.n_subsets
    dls, corr, box = [], [], []
    pts = []
    lams, hs = [], []
    for _ in range(K):
        bd = belief_dynamics(T, n_steps=cfg.fractal_steps, n_chains=cfg.fractal_chains, rng=rng)
        lams.append(bd.lyapunov_exponents)
        hs.append(bd.entropy_rate)
        dls.append(bd.lyapunov_dimension)
        P = simplex_coordinates(bd.points)
        pts.append(P)
        corr.append(correlation_dimension(P).dimension)
        box.append(box_counting_dimension(P).dimension)
    lam = np.mean(lams, 0)
    return {
        "lyapunov_exponents": lam.tolist(),
        "entropy_rate": float(np.mean(hs)),
        "lyapunov_dimension": lyapunov_dimension(lam, float(np.mean(hs))),
        "lyapunov_dimension_ci": subset_interval(dls)[1:],
        "correlation": subset_interval(corr),
        "box": subset_interval(box),
        "points": np.concatenate(pts),
    }


def _sets(proc: Any, cfg: Any, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    out = []
    L = cfg.n_ctx
    for _ in range(2):  # probe-fit set, test set
        s = proc.sample(cfg.n_probe_seqs, L + 1, rng=rng, return_beliefs=True)
        out.append({"inputs": s.tokens[:, :L], "beliefs": s.beliefs[:, 1 : L + 1].reshape(-1, 3)})
    return out


def network_section(
    x: float, a: float, cfg: Any, rng: np.random.Generator, progress: bool
) -> tuple[list[Comparison], dict[str, Any], dict[str, np.ndarray]]:
    """Train the belief-geometry model on Mess3(x, a); compare dimensions; fit an SAE."""
    proc = mess3(x=x, a=a)
    tag = f"Mess3({x:g}, {a:g})"
    theory = theory_dimensions(proc.T, cfg, rng)
    bcfg = bg.Config(
        seed=cfg.seed,
        process=proc.spec,
        n_ctx=cfg.n_ctx,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_mlp=4 * cfg.d_model,
        n_steps=cfg.train_steps,
        batch_size=cfg.batch_size,
        time_budget_s=cfg.train_budget_s,
        n_probe_seqs=max(cfg.n_probe_seqs, 100),
        n_checkpoints=2,
        device=cfg.device,
        dtype=cfg.dtype,
        n_threads=cfg.n_threads,
    )
    with tempfile.TemporaryDirectory(prefix="piami-calib-") as tmp:
        model, _, hist = bg.train_belief_model(bcfg, Path(tmp), progress=progress)
    fit, test = _sets(proc, cfg, rng)
    a_fit, _ = M.activations(model, fit["inputs"])
    a_test, _ = M.activations(model, test["inputs"])
    r_fit, r_test = a_fit[-1], a_test[-1]  # final residual stream (n * pos, d_model)
    probe = LinearProbe().fit(r_fit, fit["beliefs"])
    probe_r2 = float(probe.score(r_test, test["beliefs"]))
    # the map into the simplex uses all layers concatenated: the sharpest linear image
    cat = LinearProbe().fit(np.hstack(a_fit), fit["beliefs"])
    cat_r2 = float(cat.score(np.hstack(a_test), test["beliefs"]))
    exact = simplex_coordinates(test["beliefs"])
    mapped = simplex_coordinates(cat.predict(np.hstack(a_test)))
    rmse = float(np.sqrt(np.mean(np.sum((mapped - exact) ** 2, 1))))
    diam = float(np.max(np.ptp(exact, axis=0)))
    r_lo = max(2.0 * rmse, 0.02 * diam)  # below ~2 x probe error the image is probe noise
    r_hi = 0.5 * diam
    radii = np.geomspace(r_lo, r_hi, 10) if r_hi > 1.5 * r_lo else np.array([])

    # correlation slope at these radii: long-run theory, exact finite-context beliefs, network
    K, L = cfg.n_subsets, cfg.n_ctx
    seq_groups = np.array_split(np.arange(cfg.n_probe_seqs), K)
    rows = [(g[:, None] * L + np.arange(L)).ravel() for g in seq_groups]
    long_pts = theory["points"]
    chunks = np.array_split(np.arange(long_pts.shape[0]), K)
    res: dict[str, tuple[float, float, float]] = {}
    if radii.size:
        res["theory_long_run"] = subset_interval([corr_slope(long_pts[c], radii) for c in chunks])
        res["exact_context"] = subset_interval([corr_slope(exact[r], radii) for r in rows])
        res["network"] = subset_interval([corr_slope(mapped[r], radii) for r in rows])
    twonn_resid = twonn_dimension(r_test[:: max(1, r_test.shape[0] // 4000)])

    comps = []
    pairs = (
        ("exact_context", "exact beliefs, same prefixes"),
        ("theory_long_run", "long-run measure"),
    )
    for key, label in pairs:
        pred = res.get(key, (None,) * 3)
        meas = res.get("network", (None,) * 3)
        comps.append(
            Comparison(
                name=f"{tag}: correlation dimension through the network vs {label}",
                predicted=pred[0],
                measured=meas[0],
                tolerance=cfg.dimension_tolerance,
                reference=REF_FRACTAL,
                note=(
                    f"radii {r_lo:.3g}..{r_hi:.3g} (>= 2x the probe's RMSE {rmse:.3g} in the simplex; "
                    f"concatenated-layer probe R² {cat_r2:.4f}); 95% intervals over "
                    f"{K} disjoint subsets: predicted [{pred[1]:.3g}, {pred[2]:.3g}], measured "
                    f"[{meas[1]:.3g}, {meas[2]:.3g}]"
                    if radii.size and meas[0] is not None
                    else f"probe RMSE {rmse:.3g} leaves no scaling range below half the diameter"
                ),
            )
        )

    # SAE on the residual stream: beliefs from latents vs the direct probe
    sae_r2 = {}
    sae_health = {}
    for k in cfg.sae_belief_k:
        sae = SparseAutoencoder(
            cfg.sae_belief_latents,
            kind="topk",
            k=int(k),
            n_steps=cfg.sae_steps,
            seed=cfg.seed,
            device=cfg.device,
        ).fit(r_fit)
        z_fit, z_test = sae.encode(r_fit), sae.encode(r_test)
        sae_r2[int(k)] = float(
            LinearProbe().fit(z_fit, fit["beliefs"]).score(z_test, test["beliefs"])
        )
        sae_health[int(k)] = sae.score(r_test)
    for k, r2_k in sae_r2.items():
        comps.append(
            Comparison(
                name=f"{tag}: R² of beliefs from TopK SAE latents (k={k}) vs direct linear probe",
                predicted=probe_r2,
                measured=r2_k,
                tolerance=0.01,
                sense="at_least",
                reference="Shai et al. 2024; sparse dictionary hypothesis (Elhage et al. 2022)",
                note=(
                    f"final residual stream; linear regression from {cfg.sae_belief_latents} SAE latents "
                    f"(fit set) scored on the test set; SAE explained variance "
                    f"{sae_health[k]['explained_variance']:.4f}, dead latents "
                    f"{sae_health[k]['dead_fraction']:.0%}"
                ),
            )
        )
    metrics = {
        "probe_r2_final_layer": probe_r2,
        "probe_r2_concatenated": cat_r2,
        "probe_rmse_simplex": rmse,
        "radii": [float(r_lo), float(r_hi)],
        "correlation_slopes": {k: list(v) for k, v in res.items()},
        "theory": {k: v for k, v in theory.items() if k != "points"},
        "twonn_residual_stream": [twonn_resid.dimension, twonn_resid.low, twonn_resid.high],
        "sae_r2_by_k": sae_r2,
        "sae_health_by_k": sae_health,
        "train_steps": hist.step[-1] if hist.step else 0,
        "train_wall_s": hist.wall_s[-1] if hist.wall_s else 0.0,
    }
    pts = {
        "theory": long_pts[:: max(1, long_pts.shape[0] // 20000)],
        "exact": exact,
        "network": mapped,
    }
    return comps, metrics, pts
