"""Conditional entropies ``H_n`` of a token stream, with three estimators.

``H_n = H(X_{n+1} | X_1 ... X_n) = S(n+1) - S(n)``, where ``S(k)`` is the entropy of the k-gram
distribution (``S(0) = 0``, so ``H_0`` is the unigram entropy). ``H_n`` falls with context length
towards the entropy rate ``H_inf``; in text ``H_n - H_inf ~ n**(-gamma)`` (Cagnetta, Raventos,
Ganguli and Wyart 2026). All values are in nats.

k-gram entropies are estimated from the counts of distinct k-grams, which
:func:`piami.instruments.counting.count_spectra` delivers for all orders at once, exactly (k-gram
groups refined by the next token; contexts seen once leave the work). Every estimator below needs
only the count spectrum ``N_r`` (how many k-grams were seen ``r`` times).

Estimators of the entropy of a distribution over ``K`` outcomes from ``N`` samples with counts
``n_i``:

* plug-in ``-sum (n_i/N) ln(n_i/N)``: biased low by about ``(K_obs - 1) / (2N)``;
* Miller-Madow: plug-in ``+ (K_obs - 1) / (2N)`` (Miller 1955);
* NSB (Nemenman, Shafee and Bialek 2002, "Entropy and inference, revisited"): the posterior mean of
  the entropy under a mixture of symmetric Dirichlet priors ``Dir(beta)`` weighted by
  ``d xi / d beta``, with ``xi(beta) = psi(K beta + 1) - psi(beta + 1)`` the prior mean entropy
  (eq. 8-10), so that the induced prior on the entropy is nearly flat. The posterior mean and
  variance at fixed ``beta`` are those of Wolpert and Wolf (1995). Here the integral runs over
  ``kappa = K beta`` on a log grid, which stays finite when ``K = V**k`` is astronomically large.

A k-gram profile is *sparse* (flagged, not trusted) when the Good-Turing estimate of the unseen
probability mass, ``n_1 / N`` (singletons over samples), exceeds ``max_unseen``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, polygamma, psi

from piami.errors import PiamiValueError
from piami.instruments.counting import (
    CountSpectrum,
    check_tokens,
    count_spectra,
    count_values,
    ngram_codes,
)

__all__ = [
    "EntropyProfile",
    "conditional_entropies",
    "count_values",
    "entropy_miller_madow",
    "entropy_nsb",
    "entropy_plugin",
    "ngram_codes",
]


def _check_counts(counts: object) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1 or c.dtype.kind not in "iuf" or c.size == 0:
        raise PiamiValueError(f"counts must be a non-empty 1-D array of counts, got {c!r}")
    if np.any(c < 0) or not np.all(np.isfinite(c)) or c.sum() <= 0:
        raise PiamiValueError("counts must be finite, >= 0, with a positive total")
    return c[c > 0].astype(np.float64)


def entropy_plugin(counts: object) -> float:
    """Plug-in (maximum-likelihood) entropy in nats."""
    c = _check_counts(counts)
    p = c / c.sum()
    return float(-(p @ np.log(p)))


def _plugin_from_spectrum(spec: CountSpectrum) -> float:
    """Plug-in entropy from the count spectrum: ``-sum_r N_r (r/N) ln(r/N)``."""
    p = spec.r.astype(np.float64) / spec.n_samples
    return float(-((spec.n_r * p) @ np.log(p)))


def entropy_miller_madow(counts: object) -> float:
    """Miller-Madow entropy: plug-in ``+ (K_obs - 1) / (2 N)`` nats (Miller 1955)."""
    c = _check_counts(counts)
    return entropy_plugin(c) + (c.size - 1) / (2.0 * c.sum())


def _fixed_beta_moments(
    vals: np.ndarray, mult: np.ndarray, n_unseen: float, beta: float, big_n: float, kappa: float
) -> tuple[float, float]:
    """Posterior mean and variance of the entropy under ``Dir(n + beta)`` (Wolpert-Wolf 1995).

    ``vals``/``mult``: distinct observed counts and how many bins have each; ``n_unseen`` bins
    have count zero. Sums over bins are sums over these groups.
    """
    a = np.append(vals + beta, beta)  # a_i = n_i + beta
    w = np.append(mult, n_unseen)  # bins per group
    big_a = big_n + kappa  # = sum_i a_i
    mean = psi(big_a + 1) - np.sum(w * a * psi(a + 1)) / big_a
    u = psi(a + 1) - psi(big_a + 2)
    sum_au = np.sum(w * a * u)
    sum_a2u2 = np.sum(w * a * a * u * u)
    sum_a2 = np.sum(w * a * a)
    t1 = sum_au**2 - sum_a2u2 - polygamma(1, big_a + 2) * (big_a**2 - sum_a2)
    d = psi(a + 2) - psi(big_a + 2)
    t2 = np.sum(w * a * (a + 1) * (d * d + polygamma(1, a + 2) - polygamma(1, big_a + 2)))
    second = (t1 + t2) / (big_a * (big_a + 1))
    return float(mean), float(max(second - mean * mean, 0.0))


def entropy_nsb(counts: object, n_bins: float, *, n_grid: int = 200) -> tuple[float, float]:
    """NSB posterior mean and standard deviation of the entropy (nats).

    Args:
        counts: counts of the observed outcomes (zeros allowed and ignored).
        n_bins: the number ``K`` of possible outcomes (``>=`` number observed); may be huge
            (e.g. ``V**k`` for k-grams) -- it enters only through ``kappa = K beta``.
        n_grid: points of the log grid in ``kappa`` for the integral over the prior mixture.

    Returns:
        ``(mean, std)`` in nats. Reference: Nemenman, Shafee and Bialek 2002, eq. 8-12.
    """
    c = _check_counts(counts)
    vals, mult = np.unique(c, return_counts=True)
    return _nsb_from_spectrum(vals, mult.astype(np.float64), n_bins, n_grid=n_grid)


def _nsb_from_spectrum(
    vals: np.ndarray, mult: np.ndarray, n_bins: float, *, n_grid: int = 200
) -> tuple[float, float]:
    """NSB mean and std from the count spectrum: ``mult[i]`` outcomes seen ``vals[i]`` times."""
    k = float(n_bins)
    n_seen = float(mult.sum())
    if not np.isfinite(k) or k < n_seen:
        raise PiamiValueError(f"n_bins must be >= the {n_seen:.0f} observed outcomes, got {n_bins}")
    big_n = float(vals @ mult)
    n_unseen = k - n_seen
    kappas = np.geomspace(1e-3, 1e3 * max(big_n, k if k < 1e12 else 1.0) + 10.0, n_grid)
    log_post = np.empty(n_grid)
    for g, kappa in enumerate(kappas):
        beta = kappa / k
        # evidence of Dir(beta) (eq. 9) in log form, and the NSB prior weight d xi / d kappa
        loglik = gammaln(kappa) - gammaln(big_n + kappa)
        loglik += np.sum(mult * (gammaln(vals + beta) - gammaln(beta)))
        dxi = polygamma(1, kappa + 1) - polygamma(1, beta + 1) / k
        log_post[g] = (
            loglik + np.log(max(dxi, 1e-300)) + np.log(kappa)
        )  # d kappa = kappa d ln kappa
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    keep = w > 1e-12 * w.max()
    means, vars_ = np.zeros(n_grid), np.zeros(n_grid)
    for g in np.flatnonzero(keep):
        means[g], vars_[g] = _fixed_beta_moments(
            vals, mult, n_unseen, kappas[g] / k, big_n, kappas[g]
        )
    mean = float(w[keep] @ means[keep])
    var = float(w[keep] @ (vars_[keep] + means[keep] ** 2)) - mean**2
    return mean, float(math.sqrt(max(var, 0.0)))


@dataclass(frozen=True, kw_only=True)
class EntropyProfile:
    """Conditional entropies ``H_n`` (nats) for ``n = 0..n_max`` by three estimators.

    Attributes:
        n: ``(n_max+1,)`` context lengths.
        plugin, miller_madow, nsb: ``(n_max+1,)`` ``H_n`` estimates.
        nsb_std: ``(n_max+1,)`` NSB posterior std of ``H_n`` (from the two block entropies, added
            in quadrature: an upper bound, since they are positively correlated).
        block_plugin: ``(n_max+2,)`` plug-in block entropies ``S(k)``, ``k = 0..n_max+1``.
        unseen_mass: ``(n_max+1,)`` Good-Turing unseen mass of the (n+1)-grams.
        sparse: ``(n_max+1,)`` bool, True where ``unseen_mass > max_unseen``: do not trust.
        n_samples: ``(n_max+1,)`` number of (n+1)-grams counted.
        n_vocab: ``V``.
    """

    n: np.ndarray
    plugin: np.ndarray
    miller_madow: np.ndarray
    nsb: np.ndarray
    nsb_std: np.ndarray
    block_plugin: np.ndarray
    unseen_mass: np.ndarray
    sparse: np.ndarray
    n_samples: np.ndarray
    n_vocab: int

    def get(self, estimator: str) -> np.ndarray:
        """``H_n`` of one estimator: ``"plugin"``, ``"miller_madow"`` or ``"nsb"``."""
        if estimator not in ("plugin", "miller_madow", "nsb"):
            raise PiamiValueError(
                f"estimator must be 'plugin', 'miller_madow' or 'nsb', got {estimator!r}"
            )
        return getattr(self, estimator)

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}


def conditional_entropies(
    tokens: object,
    n_max: int = 8,
    *,
    n_vocab: int | None = None,
    max_unseen: float = 0.2,
    nsb: bool = True,
    progress: bool = False,
) -> EntropyProfile:
    """``H_n`` for ``n = 0..n_max`` from the (n+1)-gram counts of a stream or of rows.

    Args:
        tokens: int ids, 1-D stream or ``(n_seqs, seq_len)`` (n-grams stay within rows).
        n_max: largest context length.
        n_vocab: vocabulary size ``V`` (default ``max + 1``); the NSB alphabet of k-grams is
            ``V**k``.
        max_unseen: Good-Turing unseen mass above which an order is flagged sparse.
        nsb: compute the NSB estimate (the slowest part at large ``N``); NaN when False.
        progress: show a tqdm bar.

    Returns:
        an :class:`EntropyProfile`.

    Example:
        >>> x = np.random.default_rng(0).integers(0, 2, 100_000)
        >>> prof = conditional_entropies(x, 3)
        >>> bool(abs(prof.miller_madow[3] - np.log(2)) < 0.01)
        True
    """
    tokens, v = check_tokens(tokens, n_vocab)
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 0:
        raise PiamiValueError(f"n_max must be an int >= 0, got {n_max!r}")
    if n_max + 1 > tokens.shape[-1]:
        raise PiamiValueError(
            f"n_max={n_max} needs (n_max+1)-grams but sequences have {tokens.shape[-1]} tokens"
        )
    if not 0 < max_unseen <= 1:
        raise PiamiValueError(f"max_unseen must be in (0, 1], got {max_unseen}")
    spectra = count_spectra(tokens, n_max + 1, v)
    orders = range(1, n_max + 2)
    if progress:
        from tqdm.auto import tqdm

        orders = tqdm(orders, desc="n-gram entropies", leave=False)
    s_pi, s_mm, s_nsb, s_std = [0.0], [0.0], [0.0], [0.0]
    unseen, n_samp = [], []
    for k in orders:
        spec = spectra[k - 1]
        big_n = spec.n_samples
        plugin = _plugin_from_spectrum(spec)
        s_pi.append(plugin)
        s_mm.append(plugin + (spec.n_distinct - 1) / (2.0 * big_n))
        if nsb:
            m, sd = _nsb_from_spectrum(
                spec.r.astype(np.float64), spec.n_r.astype(np.float64), float(v) ** k
            )
        else:
            m, sd = np.nan, np.nan
        s_nsb.append(m)
        s_std.append(sd)
        unseen.append(spec.n_singletons / big_n)
        n_samp.append(big_n)
    s_pi, s_mm, s_nsb, s_std = map(np.asarray, (s_pi, s_mm, s_nsb, s_std))
    unseen = np.asarray(unseen)
    return EntropyProfile(
        n=np.arange(n_max + 1),
        plugin=np.diff(s_pi),
        miller_madow=np.diff(s_mm),
        nsb=np.diff(s_nsb),
        nsb_std=np.sqrt(s_std[1:] ** 2 + s_std[:-1] ** 2),
        block_plugin=s_pi,
        unseen_mass=unseen,
        sparse=unseen > max_unseen,
        n_samples=np.asarray(n_samp, dtype=np.int64),
        n_vocab=v,
    )
