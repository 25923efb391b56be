r"""Penalised multinomial-logistic (softmax gating) update with soft targets.

Minimises, over gate slopes :math:`W` (K x p) and intercepts :math:`b` (K,),

.. math::
    F(W, b) = -\sum_i s_i \sum_k T_{ik} \log \mathrm{softmax}(b + W x_i)_k
              + \gamma \sum_k \|W_k\|_1 + \tfrac{\rho}{2}\sum_k \|W_k\|_2^2 ,

where :math:`T` are soft targets (the E-step's responsibilities, rows summing
to one) and :math:`s` sample weights. All K gates are free (the symmetric
parameterisation of glmnet's multinomial model, Friedman, Hastie & Tibshirani
2010), so the penalty does not depend on a reference class. The likelihood is
invariant to adding a vector to every :math:`W_k`; after each step the
per-feature shift that lowers the penalty is removed (the mean for a ridge,
the median for the Lasso).

The solver is a proximal Newton method: each class gets the quadratic model
with its diagonal block of the Hessian (weights :math:`s_i p_{ik}(1-p_{ik})`,
clipped at 1e-5), solved by weighted coordinate descent
(:func:`~mixstat.primitives.weighted_enet_cd`); the joint step is then
backtracked (halving) until the objective decreases (Armijo).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._backend import to_numpy
from ._lasso import _namespace_back, weighted_enet_cd
from ._logsumexp import log_softmax

__all__ = ["MultinomialResult", "multinomial_objective", "penalized_multinomial_update"]


class MultinomialResult(NamedTuple):
    coef: np.ndarray  # (K, p)
    intercept: np.ndarray  # (K,)
    objective: float
    n_iter: int


def multinomial_objective(X, targets, coef, intercept, gamma=0.0, rho=0.0,
                          sample_weight=None):
    """Penalised negative log-likelihood ``F(W, b)`` of the module docstring."""
    X, targets, coef, intercept = (np.asarray(to_numpy(a), dtype=np.float64)
                                   for a in (X, targets, coef, intercept))
    logp = log_softmax(intercept[None, :] + X @ coef.T, axis=1)
    s = (np.ones(X.shape[0]) if sample_weight is None
         else np.asarray(to_numpy(sample_weight), dtype=np.float64))
    # 0 * log 0 = 0 (a class with zero target and zero probability)
    terms = np.where(targets != 0, targets * logp, 0.0)
    nll = -float(np.sum(s[:, None] * terms))
    return nll + gamma * float(np.abs(coef).sum()) + 0.5 * rho * float((coef * coef).sum())


def _recentre(coef, intercept, gamma, rho):
    intercept = intercept - intercept.mean()
    if gamma > 0 and rho == 0:
        shift = np.median(coef, axis=0)
    elif gamma == 0:
        shift = coef.mean(axis=0)
    else:
        return coef, intercept
    return coef - shift[None, :], intercept


def penalized_multinomial_update(X, targets, coef=None, intercept=None, gamma=0.0,
                                 rho=0.0, sample_weight=None, max_iter=1,
                                 tol=1e-6, cd_max_iter=50, cd_tol=1e-4,
                                 use_numba=None):
    r"""Proximal-Newton steps for the penalised softmax gate with soft targets.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    targets : ndarray of shape (n_samples, n_classes)
        Soft targets (rows sum to one), e.g. responsibilities.
    coef : ndarray of shape (n_classes, n_features), optional
        Warm start (zeros when None).
    intercept : ndarray of shape (n_classes,), optional
    gamma : float
        l1 penalty :math:`\gamma` on the slopes (sum scale).
    rho : float
        Ridge penalty :math:`\rho` on the slopes.
    sample_weight : ndarray of shape (n_samples,), optional
    max_iter : int, default=1
        Newton steps (1 inside a generalised EM).
    tol : float
        Stop when the relative decrease of the objective is below ``tol``.
    cd_max_iter, cd_tol : int, float
        Budget of the inner coordinate descent for each class.

    Returns
    -------
    MultinomialResult
        ``coef``, ``intercept``, ``objective`` (penalised NLL at the result) and
        ``n_iter``. The objective never increases from the starting point.
        Other CPU arrays (torch, array-api-strict) are converted to NumPy and
        ``coef`` / ``intercept`` come back in the input's namespace.
    """
    back = _namespace_back(X)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    T = np.asarray(to_numpy(targets), dtype=np.float64)
    n, p = X.shape
    if T.ndim != 2 or T.shape[0] != n:
        raise ValueError(
            f"targets must have shape (n_samples={n}, n_classes), got {T.shape}"
        )
    K = T.shape[1]
    s = (np.ones(n) if sample_weight is None
         else np.asarray(to_numpy(sample_weight), dtype=np.float64).reshape(-1))
    W = (np.zeros((K, p)) if coef is None
         else np.array(to_numpy(coef), dtype=np.float64, copy=True).reshape(K, p))
    b = (np.zeros(K) if intercept is None
         else np.array(to_numpy(intercept), dtype=np.float64, copy=True).reshape(K))
    if K == 1:
        return MultinomialResult(back(np.zeros((1, p))), back(np.zeros(1)), 0.0, 0)

    def objective(W_, b_):
        return multinomial_objective(X, T, W_, b_, gamma, rho, s)

    def penalty(W_):
        return gamma * float(np.abs(W_).sum()) + 0.5 * rho * float((W_ * W_).sum())

    f_old = objective(W, b)
    it = 0
    for it in range(1, max_iter + 1):
        eta = b[None, :] + X @ W.T
        P = np.exp(log_softmax(eta, axis=1))
        G = s[:, None] * (P - T)  # gradient of the NLL w.r.t. eta
        W_new = np.empty_like(W)
        b_new = np.empty_like(b)
        for k in range(K):
            curv = np.clip(P[:, k] * (1.0 - P[:, k]), 1e-5, None)
            v = s * curv
            # working response (without dividing by s: zero weights are allowed)
            z = eta[:, k] - (P[:, k] - T[:, k]) / curv
            # shift the working response by -b_k: the CD solves for the slopes
            res = weighted_enet_cd(X, z, v, lam1=gamma, lam2=rho, coef=W[k],
                                   fit_intercept=True, max_iter=cd_max_iter,
                                   tol=cd_tol, use_numba=use_numba)
            W_new[k] = res.coef
            b_new[k] = res.intercept
        dW, db = W_new - W, b_new - b
        # Armijo backtracking on the proximal-Newton direction
        pred = float(np.sum(G.T @ X * dW) + np.sum(G, axis=0) @ db) + penalty(W_new) - penalty(W)
        t = 1.0
        accepted = False
        for _ in range(30):
            W_try, b_try = W + t * dW, b + t * db
            f_try = objective(W_try, b_try)
            if f_try <= f_old + 1e-4 * t * min(pred, 0.0) and np.isfinite(f_try):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        W_c, b_c = _recentre(W_try, b_try, gamma, rho)
        f_c = objective(W_c, b_c)
        if f_c <= f_try:
            W_try, b_try, f_try = W_c, b_c, f_c
        decrease = f_old - f_try
        W, b, f_old = W_try, b_try, f_try
        if decrease <= tol * max(abs(f_old), 1.0):
            break
    return MultinomialResult(back(W), back(b), f_old, it)
