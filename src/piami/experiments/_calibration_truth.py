"""Ground-truth sections of the ``instrument-calibration`` experiment.

Each section takes the config and a generator and returns ``(comparisons, metrics, figure_data)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats

from piami.instruments.dimension import mle_dimension, twonn_dimension
from piami.instruments.geometry import cka
from piami.instruments.sae import SparseAutoencoder, feature_recovery, make_superposition
from piami.instruments.weights import (
    bilinear_eigendecomposition,
    compare_modes,
    effective_rank,
    recovered_features,
)
from piami.lab import Comparison
from piami.models.bilinear import Bilinear, BilinearConfig, fit_bilinear
from piami.theory.fractal import (
    belief_dynamics,
    box_counting_dimension,
    correlation_dimension,
    simplex_coordinates,
)
from piami.theory.natural_latents import (
    best_deterministic_natural_latent,
    deterministic_channel,
    joint_with_latent,
    latent_given_latent_entropy,
    mediation_error,
    redundancy_errors,
)

Section = tuple[list[Comparison], dict[str, Any], dict[str, Any]]


def _orth(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(n, m)))[0]


def cka_section(cfg: Any, rng: np.random.Generator) -> Section:
    X = rng.normal(size=(300, 16))
    comps, worst = [], {}
    for kernel, debiased in (("linear", False), ("rbf", False), ("linear", True)):
        name = f"{kernel}{' debiased' if debiased else ''}"
        dev = max(
            abs(cka(X, s * X @ _orth(rng, 16, 16), kernel=kernel, debiased=debiased) - 1.0)
            for s in (1.0, 1e-3, 50.0)
        )
        worst[name] = dev
        comps.append(
            Comparison(
                name=f"CKA ({name}) of X and c X Q (Q orthogonal, c in 1e-3..50)",
                predicted=1.0, measured=1.0 - dev, tolerance=1e-6,
                reference="Kornblith et al. 2019, section 3",
                note="worst deviation over three scalings and random rotations; 300 x 16 Gaussian X",
            )
        )  # fmt: skip
    Y = rng.normal(size=(300, 16))
    plug, deb = cka(X, Y), cka(X, Y, debiased=True)
    comps.append(
        Comparison(
            name="debiased CKA of independent representations (n=300, d=16)",
            predicted=0.0, measured=deb, tolerance=0.03,
            reference="Song et al. 2012 eq. 5; Nguyen et al. 2021",
            note=f"plug-in CKA of the same pair {plug:.3f}; unbiased HSIC sd ~ 1/n",
        )
    )  # fmt: skip
    noise = np.geomspace(0.01, 10, 12)
    curves = {k: [] for k in ("linear", "rbf", "linear debiased")}
    for s in noise:
        Z = X + s * rng.normal(size=X.shape)
        curves["linear"].append(cka(X, Z))
        curves["rbf"].append(cka(X, Z, kernel="rbf"))
        curves["linear debiased"].append(cka(X, Z, debiased=True))
    return comps, {"invariance_worst_deviation": worst, "independent_plugin": plug, "independent_debiased": deb}, {
        "noise": noise, "curves": curves,
    }  # fmt: skip


def _sphere(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    z = rng.normal(size=(n, d + 1))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def dimension_section(cfg: Any, rng: np.random.Generator) -> Section:
    """TwoNN on ``n_twonn_draws`` independent samples of S^d: the mean tests the bias, the draws the spread."""
    comps, rows, draws_all = [], [], []
    for d in (2, 3, 4, 5, 8):
        draws = [
            twonn_dimension(_sphere(cfg.n_points, d, rng)).dimension
            for _ in range(cfg.n_twonn_draws)
        ]
        X = _sphere(cfg.n_points, d, rng)
        tw, fit, ml = twonn_dimension(X), twonn_dimension(X, method="fit"), mle_dimension(X, k=20)
        rows.append(
            (d, tw.dimension, tw.low, tw.high, fit.dimension, ml.dimension, float(np.mean(draws)))
        )
        if d > 5:
            continue
        draws_all += [x / d - 1 for x in draws]
        comps.append(
            Comparison(
                name=f"TwoNN dimension of S^{d}, mean of {cfg.n_twonn_draws} draws of {cfg.n_points} points",
                predicted=float(d), measured=float(np.mean(draws)), tolerance=cfg.twonn_tolerance,
                relative=True, reference="Facco et al. 2017",
                note="draws: " + ", ".join(f"{x:.3f}" for x in draws) + f"; one more draw: exact 95% interval "
                f"[{tw.low:.3f}, {tw.high:.3f}], line fit {fit.dimension:.3f}, Levina-Bickel (k=20) {ml.dimension:.3f}",
            )
        )  # fmt: skip
    within = float(np.mean(np.abs(draws_all) <= cfg.twonn_tolerance))
    comps.append(
        Comparison(
            name=f"TwoNN: fraction of single {cfg.n_points}-point draws (d = 2..5) within {cfg.twonn_tolerance:.0%}",
            predicted=0.9, measured=within, tolerance=0.0, sense="at_least", reference="Facco et al. 2017",
            note=f"the MLE's relative sd is 1/sqrt(n) = {1 / np.sqrt(cfg.n_points):.1%}, so ~{2 * (1 - stats.norm.cdf(cfg.twonn_tolerance * np.sqrt(cfg.n_points))):.1%} of draws are expected outside; worst {np.max(np.abs(draws_all)):.1%}",
        )
    )  # fmt: skip
    keys = ("d", "twonn", "low", "high", "twonn_fit", "mle", "twonn_mean_of_draws")
    return comps, {"spheres": [dict(zip(keys, r, strict=True)) for r in rows]}, {"rows": rows}


def sierpinski_T() -> np.ndarray:
    """HMM whose belief maps are the chaos game eta -> (eta + e_x)/2: belief set = Sierpinski."""
    T = np.zeros((3, 3, 3))
    for x in range(3):
        A = np.eye(3) / 2
        A[:, x] += 0.5
        T[x] = A / 3
    return T


def fractal_section(cfg: Any, rng: np.random.Generator) -> Section:
    d_true = float(np.log(3) / np.log(2))
    bd = belief_dynamics(
        sierpinski_T(), n_steps=cfg.fractal_steps, n_chains=2 * cfg.fractal_chains, rng=rng
    )
    P = simplex_coordinates(bd.points)
    box, corr = box_counting_dimension(P), correlation_dimension(P)
    comps = [
        Comparison(
            name=f"Sierpinski belief set: {label} dimension", predicted=d_true, measured=val,
            tolerance=tol, relative=True, reference=ref, note=note,
        )
        for label, val, tol, ref, note in (
            ("Lyapunov (information)", bd.lyapunov_dimension, 1e-6, "Jurgens & Crutchfield 2021",
             "exponents -log 2 (x2) and h = log 3 are exact for affine maps"),
            ("box-counting", box.dimension, 0.05, "Hutchinson 1981; log 3 / log 2",
             f"{P.shape[0]} points; fit interval [{box.low:.3f}, {box.high:.3f}]"),
            ("correlation", corr.dimension, 0.05, "Grassberger & Procaccia 1983",
             f"fit interval [{corr.low:.3f}, {corr.high:.3f}]"),
        )
    ]  # fmt: skip
    m = {"lyapunov_exponents": bd.lyapunov_exponents.tolist(), "entropy_rate": bd.entropy_rate,
         "lyapunov_dimension": bd.lyapunov_dimension, "box": box.dimension, "correlation": corr.dimension}  # fmt: skip
    return (
        comps,
        m,
        {"points": P[:: max(1, P.shape[0] // 20000)], "box": box, "corr": corr, "true": d_true},
    )


def weights_section(cfg: Any, rng: np.random.Generator) -> Section:
    comps = []
    s_true = np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    W = _orth(rng, 24, 5) @ np.diag(s_true) @ _orth(rng, 16, 5).T
    p = s_true / s_true.sum()
    er = effective_rank(W)
    comps.append(
        Comparison(
            name="effective rank of a planted spectrum (5, 3, 2, 1, 0.5)", predicted=float(np.exp(-np.sum(p * np.log(p)))),
            measured=er, tolerance=1e-9, reference="Roy & Vetterli 2007", note="exp of the entropy of s / sum s",
        )
    )  # fmt: skip
    # deep linear network W2 W1 from small random init, full-batch gradient descent on a whitened
    # teacher y = M x (loss 0.5 |M - W2 W1|_F^2); its modes should match M's (Saxe et al. 2014)
    d_in, d_h, d_out = 8, 16, 6
    U, V = _orth(rng, d_out, 4), _orth(rng, d_in, 4)
    S = np.array([4.0, 2.5, 1.5, 0.8])
    Mt = U @ np.diag(S) @ V.T
    W1, W2 = 1e-3 * rng.normal(size=(d_h, d_in)), 1e-3 * rng.normal(size=(d_out, d_h))
    lr, traj = 0.02, []
    for step in range(3000):
        E = Mt - W2 @ W1
        W1, W2 = W1 + lr * W2.T @ E, W2 + lr * E @ W1.T
        if step % 30 == 0:
            traj.append(np.linalg.svd(W2 @ W1, compute_uv=False)[:4])
    modes = compare_modes(W2 @ W1, U, S, V)
    comps.append(
        Comparison(
            name="deep linear net: worst |cos| of learned vs teacher singular vectors",
            predicted=1.0, measured=float(min(modes["left_cos"].min(), modes["right_cos"].min())),
            tolerance=1e-3, reference="Saxe et al. 2014", note="2-layer linear net, width 16, 3000 GD steps",
        )
    )  # fmt: skip
    comps.append(
        Comparison(
            name="deep linear net: worst relative error of learned singular values",
            predicted=0.0, measured=float(np.max(np.abs(modes["s_learned"] / modes["s_true"] - 1))),
            tolerance=1e-3, reference="Saxe et al. 2014", note="converged: the learned map equals the teacher",
        )
    )  # fmt: skip
    # bilinear layer on y_o = F_o,1 (f_{2o} . x)^2 - 0.5 (f_{2o+1} . x)^2, orthonormal features f
    d, K, O = 16, 8, 4
    F = _orth(rng, d, K).T
    Lam = np.zeros((O, K))
    for o in range(O):
        Lam[o, 2 * o], Lam[o, 2 * o + 1] = 1.0, -0.5
    X = rng.normal(size=(8192, d))
    Y = ((X @ F.T) ** 2) @ Lam.T
    g = torch.Generator().manual_seed(cfg.seed)
    model = Bilinear(BilinearConfig(d_in=d, d_hidden=16, d_out=O), generator=g, device=cfg.device)
    losses = fit_bilinear(model, X, Y, n_steps=cfg.bilinear_steps, lr=1e-2, generator=g)
    vals, vecs = bilinear_eigendecomposition(*model.weights_numpy())
    cos = np.concatenate([recovered_features(vecs[o, :2], F[[2 * o, 2 * o + 1]]) for o in range(O)])
    eig_err = float(
        np.max(np.abs(vals[:, :2] - Lam[np.arange(O)[:, None], 2 * np.arange(O)[:, None] + [0, 1]]))
    )
    comps.append(
        Comparison(
            name="bilinear layer: worst |cos| of top eigenvectors vs planted features",
            predicted=1.0, measured=float(cos.min()), tolerance=0.01, reference="Pearce et al. 2024",
            note=f"8 orthonormal features in R^16, 4 outputs; final MSE {losses[-20:].mean():.2e} "
            f"(target variance {Y.var():.2f}); worst eigenvalue error {eig_err:.3f}",
        )
    )  # fmt: skip
    m = {"effective_rank": er, "teacher_modes": {k: v.tolist() for k, v in modes.items()},
         "bilinear_cos": cos.tolist(), "bilinear_eigenvalue_error": eig_err, "bilinear_final_mse": float(losses[-20:].mean())}  # fmt: skip
    return comps, m, {"traj": np.array(traj), "S": S, "vals": vals, "Lam": Lam}


def sae_section(cfg: Any, rng: np.random.Generator) -> Section:
    X, _, U = make_superposition(
        cfg.sae_samples, n_features=cfg.sae_features, d=cfg.sae_dim, p_fire=cfg.sae_p_fire, rng=rng
    )
    comps, m, best = [], {}, {}
    for kind, kw in (("topk", {"k": 4}), ("l1", {"l1_coefficient": 2.0})):
        sae = SparseAutoencoder(
            cfg.sae_latents,
            kind=kind,
            n_steps=cfg.sae_steps,
            seed=cfg.seed,
            device=cfg.device,
            **kw,
        ).fit(X)
        rec = feature_recovery(sae.W_dec_, U)
        health = sae.score(X)
        m[kind] = {**rec, **health}
        best[kind] = np.max(np.abs((U @ sae.W_dec_.T) / np.linalg.norm(sae.W_dec_, axis=1)), axis=1)
        comps.append(
            Comparison(
                name=f"{kind} SAE: fraction of known features recovered above cosine 0.9",
                predicted=0.9, measured=rec["recovered"], tolerance=0.0, sense="at_least",
                reference="Elhage et al. 2022; Gao et al. 2024; Bricken et al. 2023",
                note=f"{cfg.sae_features} random unit features in R^{cfg.sae_dim}, Bernoulli p={cfg.sae_p_fire}, "
                f"U(0.5,1.5) magnitudes; {cfg.sae_latents} latents; MMCS {rec['mmcs']:.3f}, MCC {rec['mcc']:.3f}, "
                f"L0 {health['l0']:.2f}, EV {health['explained_variance']:.3f}, dead {health['dead_fraction']:.2%}",
            )
        )  # fmt: skip
    return comps, m, {"best": best}


def natural_latent_section(cfg: Any, rng: np.random.Generator) -> Section:
    lhs, rhs = [], []
    for _ in range(cfg.n_random_tables):
        shape = tuple(int(s) for s in rng.integers(2, 4, size=int(rng.integers(2, 4))))
        PX = rng.dirichlet(np.full(int(np.prod(shape)), 0.5)).reshape(shape)
        ch = rng.dirichlet(np.full(int(rng.integers(2, 5)), 0.3), size=shape)
        f = deterministic_channel(rng.integers(0, 3, size=shape), 3)
        lhs.append(latent_given_latent_entropy(PX, ch, f))
        rhs.append(
            mediation_error(joint_with_latent(PX, ch))
            + 2 * redundancy_errors(joint_with_latent(PX, f)).max()
        )
    lhs, rhs = np.array(lhs), np.array(rhs)
    comps = [
        Comparison(
            name="natural latents: max over random tables of H(L'|L) - (eps_med + 2 eps_red)",
            predicted=0.0, measured=float(np.max(lhs - rhs)), tolerance=1e-10, sense="at_most", unit="nats",
            reference="Wentworth & Lorell 2023-24", note=f"{len(lhs)} random tables, 2-3 observables of 2-3 values",
        )
    ]  # fmt: skip
    PX = np.zeros((4, 4))  # X_j = (shared bit, private bit j)
    for lam, pl in enumerate([0.3, 0.7]):
        for a, pa in enumerate([0.2, 0.8]):
            for b, pb in enumerate([0.6, 0.4]):
                PX[2 * lam + a, 2 * lam + b] += pl * pa * pb
    res = best_deterministic_natural_latent(PX)
    on = PX > 0
    shared = (np.arange(4)[:, None] // 2 + 0 * np.arange(4)[None, :])[on]
    agrees = (
        len(set(zip(res.labels[on].tolist(), shared.tolist(), strict=True))) == 2
        and len(set(res.labels[on].tolist())) == 2
    )
    comps.append(
        Comparison(
            name="natural latents: best deterministic latent of a shared-bit table (score)",
            predicted=0.0, measured=res.score, tolerance=1e-10, unit="nats", reference="Wentworth & Lorell 2023",
            note=f"searched {res.n_candidates} partitions; the best is the shared bit: {agrees}",
        )
    )  # fmt: skip
    m = {
        "bound_tightest_gap": float(np.min(rhs - lhs)),
        "search_candidates": res.n_candidates,
        "search_is_shared_bit": agrees,
    }
    return comps, m, {"lhs": lhs, "rhs": rhs}
