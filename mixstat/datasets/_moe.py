r"""Generators for the Gaussian mixture-of-experts benchmarks.

- :func:`make_khalili_moe`: the simulation of Khalili (2010) used by
  Chamroukhi & Huynh (2019): :math:`n=300`, :math:`p=6`, :math:`K=2`,
  :math:`x \sim N(0, S)` with :math:`S_{ij} = 0.5^{|i-j|}`,
  :math:`b_1 = (0; 0, 1.5, 0, 0, 0, 1)`, :math:`b_2 = (0; 1, -1.5, 0, 0, 2, 0)`,
  gate :math:`w_1 = (1; 2, 0, 0, -1, 0, 0)`, :math:`w_2 = 0`, :math:`\sigma = 1`.
- :func:`make_sparse_moe`: a high-dimensional sparse design (default
  :math:`n=500`, :math:`p=2000`, :math:`K=3`, 3 to 5 non-zero slopes per expert).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ..primitives import softmax

__all__ = ["make_khalili_moe", "make_moe_regression", "make_sparse_moe", "sample_moe"]


def sample_moe(X, coef, intercept, gate_coef, gate_intercept, noise_variance,
               random_state=None):
    """Draw ``y`` from a Gaussian MoE at the rows of ``X``.

    Returns
    -------
    y : ndarray of shape (n_samples,)
    labels : ndarray of shape (n_samples,)
    """
    rng = check_random_state(random_state)
    g = softmax(X @ np.asarray(gate_coef).T + np.asarray(gate_intercept)[None, :], axis=1)
    u = rng.uniform(size=(X.shape[0], 1))
    labels = np.minimum((np.cumsum(g, axis=1) < u).sum(axis=1), g.shape[1] - 1)
    mu = X @ np.asarray(coef).T + np.asarray(intercept)[None, :]
    sd = np.sqrt(np.asarray(noise_variance, dtype=float))
    y = mu[np.arange(X.shape[0]), labels] + sd[labels] * rng.standard_normal(X.shape[0])
    return y, labels


def _draw(X, coef, intercept, gate_coef, gate_intercept, var, rng, return_params):
    """``X, y`` (and the parameters with the labels) of a simulated MoE."""
    y, labels = sample_moe(X, coef, intercept, gate_coef, gate_intercept, var, rng)
    if return_params:
        return X, y, dict(coef=coef, intercept=intercept, gate_coef=gate_coef,
                          gate_intercept=gate_intercept, noise_variance=var, labels=labels)
    return X, y


def make_khalili_moe(n_samples=300, random_state=None, return_params=False):
    """The K=2, p=6 simulation of Khalili (2010) / Chamroukhi & Huynh (2019).

    Parameters
    ----------
    n_samples : int, default=300
    random_state : int, RandomState or None
    return_params : bool, default=False
        Also return the true parameters and labels.

    Returns
    -------
    X : ndarray of shape (n_samples, 6)
    y : ndarray of shape (n_samples,)
    params : dict, only when ``return_params``
        ``coef`` (2, 6), ``intercept`` (2,), ``gate_coef`` (2, 6) and
        ``gate_intercept`` (2,) (reference parameterisation, second gate 0),
        ``noise_variance`` (2,), ``labels`` (n_samples,).
    """
    rng = check_random_state(random_state)
    p = 6
    idx = np.arange(p)
    S = 0.5 ** np.abs(idx[:, None] - idx[None, :])
    X = rng.multivariate_normal(np.zeros(p), S, size=n_samples)
    coef = np.array([[0, 1.5, 0, 0, 0, 1.0], [1.0, -1.5, 0, 0, 2.0, 0]])
    intercept = np.zeros(2)
    gate_coef = np.array([[2.0, 0, 0, -1.0, 0, 0], np.zeros(p)])
    gate_intercept = np.array([1.0, 0.0])
    var = np.ones(2)
    return _draw(X, coef, intercept, gate_coef, gate_intercept, var, rng, return_params)


def make_sparse_moe(n_samples=500, n_features=2000, n_components=3, n_informative=(3, 5),
                    n_gate_informative=2, noise=1.0, signal=2.0, gate_strength=2.0,
                    correlation=0.0, random_state=None, return_params=False):
    """A sparse high-dimensional Gaussian MoE.

    Each expert has between ``n_informative[0]`` and ``n_informative[1]``
    non-zero slopes (disjoint supports when there are enough features, magnitudes ``signal * U(0.75, 1.25)``
    with random signs) and an intercept spread over ``[-signal, signal]``; the
    gates use ``n_gate_informative`` features each. ``x`` is standard normal
    with AR(1) correlation ``correlation``.

    Returns
    -------
    X, y[, params] : as :func:`make_khalili_moe`.
    """
    rng = check_random_state(random_state)
    K, p = n_components, n_features
    lo, hi = (n_informative, n_informative) if np.isscalar(n_informative) else n_informative
    Z = rng.standard_normal((n_samples, p))
    if correlation:
        X = np.empty_like(Z)
        X[:, 0] = Z[:, 0]
        c = float(correlation)
        for j in range(1, p):
            X[:, j] = c * X[:, j - 1] + np.sqrt(1 - c * c) * Z[:, j]
    else:
        X = Z
    perm = rng.permutation(p)
    coef = np.zeros((K, p))
    start = 0
    disjoint = K * (hi + n_gate_informative) <= p
    for k in range(K):
        s = int(rng.randint(lo, hi + 1))
        if disjoint:
            support = perm[start:start + s]
            start += s
        else:  # too few features for disjoint supports: independent draws
            support = rng.choice(p, size=min(s, p), replace=False)
            s = support.size
        coef[k, support] = signal * rng.uniform(0.75, 1.25, size=s) * rng.choice([-1, 1], size=s)
    intercept = np.linspace(-signal, signal, K) if K > 1 else np.zeros(1)
    gate_coef = np.zeros((K, p))
    for k in range(K):
        if disjoint:
            feats = perm[start:start + n_gate_informative]
            start += n_gate_informative
        else:
            feats = rng.choice(p, size=min(n_gate_informative, p), replace=False)
        gate_coef[k, feats] = gate_strength
    gate_intercept = np.zeros(K)
    var = np.full(K, float(noise) ** 2)
    return _draw(X, coef, intercept, gate_coef, gate_intercept, var, rng, return_params)


def make_moe_regression(n_samples=300, n_components=2, n_features=1, separation=3.0,
                        noise=0.5, gate_strength=2.0, random_state=None, return_params=False):
    r"""A small, well-separated Gaussian MoE (for inference and model-selection checks).

    :math:`x \sim N(0, I_p)`; expert :math:`k` has intercept
    ``separation * (k - (K-1)/2)``, slope ``(-1)^k`` on the first feature (0 on
    the others) and noise standard deviation ``noise``; gate :math:`k` has
    slope ``gate_strength * (k - (K-1)/2)`` on the first feature and
    intercept 0 (so the experts take turns along :math:`x_1`).
    ``n_components=1`` is the linear model.

    Returns
    -------
    X, y[, params] : as :func:`make_khalili_moe`.
    """
    rng = check_random_state(random_state)
    K, p = int(n_components), int(n_features)
    X = rng.standard_normal((n_samples, p))
    c = np.arange(K) - (K - 1) / 2.0
    coef = np.zeros((K, p))
    coef[:, 0] = (-1.0) ** np.arange(K)
    intercept = separation * c
    gate_coef = np.zeros((K, p))
    gate_coef[:, 0] = gate_strength * c
    gate_intercept = np.zeros(K)
    var = np.full(K, float(noise) ** 2)
    return _draw(X, coef, intercept, gate_coef, gate_intercept, var, rng, return_params)
