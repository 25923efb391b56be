"""Data for mixture proportion estimation (``mixstat.mpe``).

- :func:`make_sumpe_synthetic`: the synthetic settings of Zhu et al. (ICML
  2023): H = N(0, 1), G = 0.8 N(3, 2^2) + 0.2 N(4, 1) (domain adaptation,
  with a labeled source whose G has N(5, 1) instead of N(4, 1), truncated to
  x < 2), the Laplace variant, and the irreducible variant G = N(2, 1);
  with the population kappa(F|H) computed numerically.
- :func:`load_mpe_digits`: a reported-at-random benchmark from scikit-learn's
  bundled digits (1 vs 7), standing in for the paper's UCI / MNIST data.
- :func:`population_kappa`, :func:`subsampled_population_kappa`: the
  population quantities kappa(F|H) = ess inf f/h and, after rejection
  sampling with alpha, c = E_F[alpha] and kappa(F~|H).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar
from sklearn.utils import Bunch, check_random_state

from ..primitives import logsumexp

__all__ = [
    "make_sumpe_synthetic",
    "load_mpe_digits",
    "population_kappa",
    "subsampled_population_kappa",
]


def population_kappa(log_f, log_h, lo=-20.0, hi=30.0, n_grid=50001):
    r"""Population :math:`\kappa(F|H) = \operatorname{ess\,inf}_x f(x)/h(x)`
    for 1-D densities given as log-density callables.

    The infimum is searched over a grid on [lo, hi] (where h is not
    negligible), then refined by bounded scalar minimisation of
    :math:`\log f - \log h`. Returns ``(kappa, argmin)``.
    """
    x = np.linspace(lo, hi, n_grid)
    lr = log_f(x) - log_h(x)
    i = int(np.argmin(lr))
    a, b = x[max(i - 1, 0)], x[min(i + 1, n_grid - 1)]
    res = minimize_scalar(lambda t: float(log_f(np.array([t]))[0] - log_h(np.array([t]))[0]),
                          bounds=(a, b), method="bounded", options={"xatol": 1e-10})
    best = min(lr[i], res.fun)
    return float(min(np.exp(best), 1.0)), float(res.x if res.fun <= lr[i] else x[i])


def subsampled_population_kappa(log_f, log_h, alpha, lo=-20.0, hi=30.0, n_grid=50001):
    r"""Population quantities of SuMPE for an acceptance :math:`\alpha`.

    Returns ``(c, kappa_tilde, c * kappa_tilde)`` with
    :math:`c = \int \alpha f` (numerical integration) and
    :math:`\kappa(\tilde F|H) = \operatorname{ess\,inf} \alpha f/(c h)`,
    so that the last value is :math:`\operatorname{ess\,inf} \alpha f/h`.
    """
    x = np.linspace(lo, hi, n_grid)
    a = np.clip(np.asarray(alpha(x), dtype=float), 0, 1)
    f = np.exp(log_f(x))
    c = float(np.trapezoid(a * f, x))
    with np.errstate(divide="ignore"):
        lr = np.log(a) + log_f(x) - log_h(x)
    kt = float(np.exp(lr.min()) / c)
    return c, kt, c * kt


def _family(distribution):
    if distribution == "normal":
        return stats.norm, (lambda rng, mu, s, n: rng.normal(mu, s, n))
    if distribution == "laplace":
        return stats.laplace, (lambda rng, mu, s, n: rng.laplace(mu, s, n))
    raise ValueError(f"distribution must be 'normal' or 'laplace', got {distribution!r}")


def _mix_logpdf(dist, parts):
    """log of sum_k w_k dist(mu_k, s_k), parts = [(w, mu, s), ...]."""
    parts = [p for p in parts if p[0] > 0]

    def logpdf(x):
        x = np.asarray(x, dtype=float)
        ll = np.stack([np.log(w) + dist.logpdf(x, mu, s) for w, mu, s in parts], axis=-1)
        return logsumexp(ll, axis=-1)

    return logpdf


def make_sumpe_synthetic(kappa_star=0.25, *, n_component=1000, n_mixture=1000,
                         scenario="domain_adaptation", distribution="normal",
                         n_source=4000, random_state=None):
    r"""The synthetic setting of Zhu et al. (ICML 2023), ``experiments_synth_SuMPE.py``.

    - component :math:`H = N(0, 1)`;
    - ``scenario='domain_adaptation'``: :math:`G = 0.8\,N(3, 2^2) + 0.2\,N(4, 1)`
      (its wide part holds some H, so :math:`\kappa(F|H) > \kappa^*`); the
      labeled source sample (``n_source`` points before truncation, class
      proportion :math:`\kappa^*`) has :math:`G_{src} = 0.8\,N(3,2^2) + 0.2\,N(5,1)`
      and keeps only :math:`x < 2` (``region``);
    - ``scenario='irreducible'``: :math:`G = N(2, 1)`, source untruncated;
    - ``distribution='laplace'``: the same locations and scales with Laplace laws.

    The mixture holds exactly ``int(n kappa*)`` component points, as in the
    authors' script.

    Returns
    -------
    Bunch with X (n, 1), y (1 = component sample, 0 = mixture sample),
    kappa_star, kappa_max (population :math:`\kappa(F|H)`), X_source, y_source
    (1 = H, 0 = G), region (callable or None), posterior (callable
    :math:`\tau = \kappa^* h/f`), source_posterior (exact source posterior),
    log_h, log_f, log_g, is_component (for the points of X: drawn from H).
    """
    if not 0 <= kappa_star <= 1:
        raise ValueError(f"kappa_star must lie in [0, 1], got {kappa_star}")
    rng = check_random_state(random_state)
    dist, draw = _family(distribution)
    if scenario == "domain_adaptation":
        g_parts = [(0.8, 3.0, 2.0), (0.2, 4.0, 1.0)]
        src_parts = [(0.8, 3.0, 2.0), (0.2, 5.0, 1.0)]
        cut = 2.0
    elif scenario == "irreducible":
        g_parts = [(1.0, 2.0, 1.0)]
        src_parts = [(1.0, 2.0, 1.0)]
        cut = None
    else:
        raise ValueError(f"scenario must be 'domain_adaptation' or 'irreducible', got {scenario!r}")
    k = float(kappa_star)
    log_h = _mix_logpdf(dist, [(1.0, 0.0, 1.0)])
    log_g = _mix_logpdf(dist, g_parts)
    log_gs = _mix_logpdf(dist, src_parts)

    def log_f(x):
        parts = [np.log(k) + log_h(x) if k > 0 else np.full(np.shape(x), -np.inf),
                 np.log1p(-k) + log_g(x) if k < 1 else np.full(np.shape(x), -np.inf)]
        return logsumexp(np.stack(parts, -1), axis=-1)

    def posterior(x):
        x = np.asarray(x, dtype=float).reshape(-1)
        return np.exp(np.log(k) + log_h(x) - log_f(x)) if k > 0 else np.zeros_like(x)

    def source_posterior(x):
        x = np.asarray(x, dtype=float).reshape(-1)
        a = np.log(k) + log_h(x)
        b = np.log1p(-k) + log_gs(x)
        return np.exp(a - np.logaddexp(a, b))

    def sample(parts, n):
        counts = [int(n * w) for w, _, _ in parts]
        counts[-1] = n - sum(counts[:-1])
        return np.concatenate([draw(rng, mu, s, c) for (_, mu, s), c in zip(parts, counts)])

    n_h = int(n_mixture * k)
    x_mix = np.r_[draw(rng, 0.0, 1.0, n_h), sample(g_parts, n_mixture - n_h)]
    is_comp_mix = np.r_[np.ones(n_h, bool), np.zeros(n_mixture - n_h, bool)]
    x_comp = draw(rng, 0.0, 1.0, n_component)
    X = np.r_[x_comp, x_mix][:, None]
    y = np.r_[np.ones(n_component, int), np.zeros(n_mixture, int)]
    is_comp = np.r_[np.ones(n_component, bool), is_comp_mix]
    perm = rng.permutation(len(y))
    X, y, is_comp = X[perm], y[perm], is_comp[perm]

    n_sp = int(n_source * k)
    xs = np.r_[draw(rng, 0.0, 1.0, n_sp), sample(src_parts, n_source - n_sp)]
    ys = np.r_[np.ones(n_sp, int), np.zeros(n_source - n_sp, int)]
    if cut is not None:
        keep = xs < cut
        xs, ys = xs[keep], ys[keep]
    region = (lambda Z: np.asarray(Z)[:, 0] < cut) if cut is not None else None
    kappa_max, x_at = population_kappa(log_f, log_h)
    return Bunch(X=X, y=y, kappa_star=k, kappa_max=kappa_max, kappa_max_at=x_at,
                 X_source=xs[:, None], y_source=ys, region=region, posterior=posterior,
                 source_posterior=source_posterior, log_h=log_h, log_f=log_f, log_g=log_g,
                 is_component=is_comp, scenario=scenario, distribution=distribution)


def load_mpe_digits(kappa_star=0.25, *, report_prob=0.9, n_component=50, n_propensity=40,
                    random_state=None):
    r"""Reported-at-random benchmark from scikit-learn's digits (1 vs 7).

    Positives are the 1s (182 images), negatives the 7s (179). The component
    sample holds ``n_component`` reported 1s. In the mixture, each 1 is
    reported with probability ``report_prob``; the reported 1s are the
    component part H (proportion :math:`\kappa^*`), the unreported 1s join
    the 7s in G, so G contains H and :math:`\kappa(F|H)` is the fraction of
    all 1s in the mixture (:math:`\approx \kappa^*/0.9`). A separate set of
    ``n_propensity`` 1s with their reported flags trains the propensity
    (the SuMPE acceptance). Pixels are scaled to [0, 1].

    Returns
    -------
    Bunch with X, y (1 = component sample), kappa_star (realised),
    kappa_max (realised fraction of 1s in the mixture), X_propensity,
    y_propensity (1 = reported), reported (for the mixture points).
    """
    from sklearn.datasets import load_digits

    if not 0 < kappa_star < report_prob:
        raise ValueError(f"kappa_star must lie in (0, report_prob={report_prob}), got {kappa_star}")
    rng = check_random_state(random_state)
    d = load_digits()
    X = d.data / 16.0
    ones = rng.permutation(np.flatnonzero(d.target == 1))
    sevens = rng.permutation(np.flatnonzero(d.target == 7))
    comp = ones[:n_component]
    prop = ones[n_component:n_component + n_propensity]
    pool_pos = ones[n_component + n_propensity:]
    pf = kappa_star / report_prob
    n = int(min(len(pool_pos) / pf, len(sevens) / (1 - pf)))
    n_pos = int(round(pf * n))
    mix = np.r_[pool_pos[:n_pos], sevens[:n - n_pos]]
    reported = np.r_[rng.uniform(size=n_pos) < report_prob, np.zeros(n - n_pos, bool)]
    y_prop = (rng.uniform(size=len(prop)) < report_prob).astype(int)
    Xall = np.vstack([X[comp], X[mix]])
    y = np.r_[np.ones(len(comp), int), np.zeros(len(mix), int)]
    return Bunch(X=Xall, y=y, kappa_star=float(reported.mean()), kappa_max=n_pos / n,
                 X_propensity=X[prop], y_propensity=y_prop, reported=reported,
                 report_prob=report_prob)
