r"""Regression with a latent cluster structure of single-index models.

The data model of Kawata, Matsutani, Kinoshita, Nishikawa & Suzuki (2025),
"Mixture of experts provably detect and learn the latent cluster structure in
gradient-based learning", ICML, PMLR 267:29390-29448 (arXiv:2506.01656):
a cluster :math:`c \sim \mathrm{Unif}\{1..C\}`, then

.. math::
    x \sim N(\rho\, v_c, I_d),\qquad
    y = f_c(w_c^\top x) + s_c\, g(w_g^\top x) + \nu,\quad \nu \sim N(0, \zeta^2),

with :math:`f_c(z) = \sum_{i=k^*}^{p^*} \beta_{c,i}\,\mathrm{He}_i(z)/\sqrt{i!}`,
:math:`g(z) = \sum_{i=k^*}^{p^*} \gamma_i\,\mathrm{He}_i(z)/\sqrt{i!}`
(probabilists' Hermite polynomials; both of information exponent
:math:`k^*`), :math:`|\beta_{c,k^*}| = |\gamma_{k^*}|` and global
coefficients with :math:`\sum_c s_c = 0`. Each cluster alone is a
single-index model of information exponent :math:`k^*` (learnable by one
expert); the cancelling global task makes the problem as a whole harder for
one network trained by SGD, while an MoE whose router separates the
clusters (through the means :math:`\rho v_c`) splits it into the easy parts.

Here the directions :math:`v_c, w_c, w_g` are orthonormal (the paper assumes
low correlations), so :math:`w_c^\top x` and :math:`w_g^\top x` are exactly
standard normal within every cluster.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.hermite_e import hermeval
from sklearn.utils import check_random_state

__all__ = ["make_latent_cluster_regression"]


def _hermite_link(coefs, k_star, z):
    """sum_i coefs[i - k*] He_i(z) / sqrt(i!) for i = k*..p*."""
    full = np.zeros(k_star + len(coefs))
    for j, b in enumerate(coefs):
        i = k_star + j
        full[i] = b / math.sqrt(math.factorial(i))
    return hermeval(z, full)


def make_latent_cluster_regression(
    n_samples=2000,
    n_features=32,
    n_clusters=4,
    cluster_scale=3.0,
    information_exponent=3,
    degree=None,
    global_task=True,
    noise=0.1,
    random_state=None,
    return_params=False,
):
    r"""Kawata et al. (2025)'s clustered single-index regression (module docstring).

    Parameters
    ----------
    n_samples : int, default=2000
    n_features : int, default=32
        :math:`d`; must be at least ``2 * n_clusters + 1`` (orthonormal
        :math:`v_c, w_c, w_g`).
    n_clusters : int, default=4
        :math:`C \ge 2`.
    cluster_scale : float, default=3.0
        :math:`\rho`, the norm of the cluster means.
    information_exponent : int, default=3
        :math:`k^* \ge 1` (the paper's theory takes :math:`k^* > 2`).
    degree : int or None, default=None
        :math:`p^* \ge k^*`; None means :math:`k^*` (pure Hermite links).
        Coefficients above :math:`k^*` are drawn :math:`N(0, 1/4)`.
    global_task : bool, default=True
        Add :math:`s_c\, g(w_g^\top x)` with :math:`s_c = \pm 1` alternating
        (even :math:`C`) or :math:`\cos(2\pi c/C)` (odd :math:`C`), so
        :math:`\sum_c s_c = 0`.
    noise : float, default=0.1
        :math:`\zeta`.
    random_state : int, RandomState or None
    return_params : bool, default=False

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    params : dict, only when ``return_params``
        ``labels`` (n_samples,), ``cluster_means`` (C, d) :math:`=\rho v_c`,
        ``local_directions`` (C, d) :math:`w_c`, ``global_direction`` (d,)
        :math:`w_g`, ``local_coefs`` (C, p*-k*+1) :math:`\beta`,
        ``global_coefs`` (p*-k*+1,) :math:`\gamma`, ``global_signs`` (C,)
        :math:`s`, ``information_exponent``, ``noise``.
    """
    n, d, C = int(n_samples), int(n_features), int(n_clusters)
    k_star = int(information_exponent)
    p_star = k_star if degree is None else int(degree)
    if n < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if C < 2:
        raise ValueError(f"n_clusters must be >= 2, got {n_clusters}")
    if d < 2 * C + 1:
        raise ValueError(
            f"n_features must be >= 2 * n_clusters + 1 = {2 * C + 1} (orthonormal "
            "cluster "
            f"means and feature directions), got {n_features}"
        )
    if k_star < 1 or p_star < k_star:
        raise ValueError(
            "need 1 <= information_exponent <= degree, got "
            f"{information_exponent}, {degree}"
        )
    if not (cluster_scale >= 0 and noise >= 0):
        raise ValueError("cluster_scale and noise must be >= 0")
    rng = check_random_state(random_state)
    Q, _ = np.linalg.qr(rng.standard_normal((d, 2 * C + 1)))
    V, W, wg = Q[:, :C].T, Q[:, C : 2 * C].T, Q[:, 2 * C]
    n_coef = p_star - k_star + 1
    beta = np.zeros((C, n_coef))
    beta[:, 0] = rng.choice([-1.0, 1.0], size=C)
    beta[:, 1:] = 0.5 * rng.standard_normal((C, n_coef - 1))
    gamma = np.zeros(n_coef)
    gamma[0] = 1.0
    gamma[1:] = 0.5 * rng.standard_normal(n_coef - 1)
    if C % 2 == 0:
        s = np.where(np.arange(C) % 2 == 0, 1.0, -1.0)
    else:
        s = np.cos(2 * np.pi * np.arange(C) / C)
    if not global_task:
        s = np.zeros(C)
    labels = rng.randint(0, C, size=n)
    X = rng.standard_normal((n, d)) + cluster_scale * V[labels]
    y = np.empty(n)
    for c in range(C):
        m = labels == c
        y[m] = _hermite_link(beta[c], k_star, X[m] @ W[c])
        if s[c] != 0:
            y[m] += s[c] * _hermite_link(gamma, k_star, X[m] @ wg)
    y += noise * rng.standard_normal(n)
    if return_params:
        return (
            X,
            y,
            dict(
                labels=labels,
                cluster_means=cluster_scale * V,
                local_directions=W,
                global_direction=wg,
                local_coefs=beta,
                global_coefs=gamma,
                global_signs=s,
                information_exponent=k_star,
                noise=float(noise),
            ),
        )
    return X, y
