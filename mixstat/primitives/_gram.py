r"""Covariance-form (Gram) steps for device arrays (torch CUDA, CuPy).

On a GPU a product with a tall matrix :math:`X` (n x p) is cheap only as a
matrix-matrix product (GEMM); a sequence of matrix-vector products, one kernel
launch and one host synchronisation each, leaves the device idle. For a
weighted least-squares problem with few features the data enter only through
the weighted Gram matrix :math:`X^\top W X` and :math:`X^\top W z`, so a step
of the weighted elastic net (and of the proximal-Newton gate, whose quadratic
model is a weighted least-squares problem per class) costs one GEMM per weight
vector on the device plus a p x p problem on the host:

- :func:`weighted_gram_stats` computes, for each column of a weight matrix
  ``W`` (n, K) and response ``Z`` (n, K), the centred Gram matrix, the centred
  cross-products and the weighted means (K GEMMs of n p^2 and two of n p K),
  and returns them as NumPy arrays (one transfer of K p^2 numbers);
- :func:`gram_enet` runs the coordinate descent of
  :func:`~mixstat.primitives.weighted_enet_cd` on that p x p problem, through
  a Cholesky factor :math:`R^\top R = G + \delta I` (the ridge shift
  :math:`\delta` is taken back out of :math:`\lambda_2`, so the coordinate
  updates are exactly those of the n x p problem);
- :func:`multinomial_step_gram` is one proximal-Newton step of the penalised
  softmax gate (the algorithm of the NumPy path of
  :func:`~mixstat.primitives.penalized_multinomial_update`: per-class
  quadratic model, coordinate descent, Armijo backtracking, recentring) with
  the passes over ``X`` on the device.

Each is tested to give the result of the n x p computation on NumPy, torch
CPU tensors and array-api-strict.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device

from .._backend import to_numpy
from ._lasso import weighted_enet_cd
from ._logsumexp import log_softmax
from ._multinomial import _recentre


def _host(a):
    return np.asarray(to_numpy(a), dtype=np.float64)


def weighted_gram_stats(X, W, Z=None):
    r"""Weighted, centred second moments of ``X`` for each column of ``W``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any array-API array (kept where it is: the products run on its device).
    W : array of shape (n_samples, n_weights)
        Non-negative weights, one column per problem.
    Z : array of shape (n_samples, n_weights), optional
        A response per problem.

    Returns
    -------
    dict of NumPy arrays
        ``sw`` (K,): :math:`S_k=\sum_i w_{ik}`; ``xbar`` (K, p): weighted
        means; ``gram`` (K, p, p): :math:`\sum_i w_{ik}(x_i-\bar x_k)
        (x_i-\bar x_k)^\top`; ``raw`` (K, p): :math:`\sum_i w_{ik}x_{ij}^2`
        (to detect constant columns); with ``Z`` also ``zbar`` (K,),
        ``cross`` (K, p): :math:`\sum_i w_{ik}(x_i-\bar x_k)(z_{ik}-\bar z_k)`
        and ``ss`` (K,): :math:`\sum_i w_{ik}(z_{ik}-\bar z_k)^2`.
    """
    xp = array_namespace(X, W)
    K = W.shape[1]
    sw = xp.sum(W, axis=0)                           # (K,)
    XtW = X.T @ W                                    # (p, K): one GEMM
    grams = [X.T @ (W[:, k:k + 1] * X) for k in range(K)]  # K GEMMs, n p^2 each
    out = {"sw": _host(sw)}
    S = np.maximum(out["sw"], np.finfo(np.float64).tiny)
    xbar = _host(XtW).T / S[:, None]                 # (K, p)
    G = _host(xp.stack(grams, axis=0))               # (K, p, p)
    out["raw"] = np.diagonal(G, axis1=1, axis2=2).copy()
    G -= S[:, None, None] * xbar[:, :, None] * xbar[:, None, :]
    out["xbar"] = xbar
    out["gram"] = 0.5 * (G + np.swapaxes(G, 1, 2))
    if Z is not None:
        WZ = W * Z
        XtWZ = _host(X.T @ WZ).T                     # (K, p)
        szz = _host(xp.sum(WZ * Z, axis=0))
        zbar = _host(xp.sum(WZ, axis=0)) / S
        out["zbar"] = zbar
        out["cross"] = XtWZ - S[:, None] * xbar * zbar[:, None]
        out["ss"] = np.maximum(szz - S * zbar * zbar, 0.0)
    return out


def gram_enet(gram, cross, lam1=0.0, lam2=0.0, coef=None, raw=None, ss=None,
              max_iter=1000, tol=1e-4, features=None):
    r"""Weighted elastic net from its centred Gram matrix (coordinate descent).

    Minimises :math:`\tfrac12\beta^\top G\beta - c^\top\beta
    + \lambda_1\|\beta\|_1 + \tfrac{\lambda_2}{2}\|\beta\|_2^2`, which is the
    objective of :func:`~mixstat.primitives.weighted_enet_cd` (intercept
    profiled out) up to a constant when :math:`G` and :math:`c` are the centred
    weighted Gram matrix and cross-products. The coordinate updates are those
    of the n x p problem, in the same order.

    Parameters
    ----------
    gram : ndarray of shape (p, p)
    cross : ndarray of shape (p,)
    lam1, lam2 : float
    coef : ndarray of shape (p,), optional
        Warm start.
    raw : ndarray of shape (p,), optional
        Uncentred :math:`\sum_i w_i x_{ij}^2`: a column whose centred second
        moment is below ``1e-12 * raw`` is constant and its coefficient is 0,
        as in :func:`weighted_enet_cd`.
    ss : float, optional
        :math:`\sum_i w_i (z_i-\bar z)^2`: with it the duality gap and the
        base of the relative tolerance are those of :func:`weighted_enet_cd`
        on the n x p problem (without it, the tolerance is relative to the
        explained part :math:`c^\top G^{-1} c`).
    max_iter, tol, features
        As in :func:`weighted_enet_cd` (sweeps; relative duality gap of the
        p x p problem; coordinates allowed to move).

    Returns
    -------
    ndarray of shape (p,)
    """
    G = np.array(gram, dtype=np.float64)
    c = np.array(cross, dtype=np.float64)
    p = c.shape[0]
    beta = np.zeros(p) if coef is None else np.array(coef, dtype=np.float64).reshape(p)
    d = np.diag(G).copy()
    dead = d <= (1e-12 * np.asarray(raw) if raw is not None else 0.0)
    feats = np.arange(p) if features is None else np.asarray(features, dtype=np.int64)
    if dead.any():
        beta[dead] = 0.0
        G[dead, :] = 0.0
        G[:, dead] = 0.0
        c[dead] = 0.0
        feats = feats[~dead[feats]]
    if feats.size == 0:
        return beta
    scale = max(float(d.max()), 1e-300)
    delta = 1e-10 * scale
    for _ in range(8):
        try:
            Lc = np.linalg.cholesky(G + delta * np.eye(p))
            break
        except np.linalg.LinAlgError:
            delta *= 100.0
    else:  # pragma: no cover - G is symmetric PSD up to rounding
        raise np.linalg.LinAlgError("the Gram matrix could not be factorised")
    from scipy.linalg import solve_triangular

    R = Lc.T                                         # G + delta I = R^T R
    yt = solve_triangular(Lc, c, lower=True)         # R^T yt = c
    if ss is not None:
        # one more row carries the part of the response that no beta explains,
        # sqrt(ss - |yt|^2): the residual norm, the duality gap and the base of
        # the relative tolerance are then those of the n x p problem
        R = np.vstack([R, np.zeros((1, p))])
        yt = np.append(yt, np.sqrt(max(float(ss) - float(yt @ yt), 0.0)))
    R = np.asfortranarray(R)
    # the shift delta is taken out of lam2: h_j + lam2 is that of the n x p problem
    res = weighted_enet_cd(R, yt, None, lam1=lam1, lam2=lam2 - delta, coef=beta,
                           fit_intercept=False, max_iter=max_iter, tol=tol,
                           features=feats)
    return np.asarray(res.coef, dtype=np.float64)


def _multinomial_nll(xp, X, T, s, W, b):
    logp = log_softmax(b[None, :] + X @ W.T, axis=1)
    terms = xp.where(T != 0, T * logp, xp.zeros_like(logp))
    return -xp.sum(s[:, None] * terms), logp


def multinomial_step_gram(X, targets, coef, intercept, gamma=0.0, rho=0.0,
                          sample_weight=None, cd_max_iter=50, cd_tol=1e-4, features=None):
    r"""One proximal-Newton step of the penalised softmax gate, passes over ``X``
    on its device.

    The step of the NumPy path of
    :func:`~mixstat.primitives.penalized_multinomial_update` with
    ``max_iter=1``: for each class, the weighted least-squares model of the
    negative log-likelihood (working response, curvature
    :math:`p_k(1-p_k)`) solved by coordinate descent from ``coef`` (here in
    covariance form, :func:`gram_enet`), then Armijo backtracking on the
    penalised objective and recentring of the symmetric parameterisation.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    targets : array of shape (n_samples, n_classes)
        Soft targets, same namespace and device as ``X``.
    coef : ndarray of shape (n_classes, n_features)
        Current slopes (NumPy).
    intercept : ndarray of shape (n_classes,)
    gamma, rho : float
        l1 and ridge penalties on the slopes (sum scale).
    sample_weight : array of shape (n_samples,), optional
    cd_max_iter, cd_tol : int, float
        Budget of the coordinate descent for each class.
    features : int ndarray, optional
        Columns whose slopes may move.

    Returns
    -------
    coef, intercept : ndarray
        NumPy arrays (the step never increases the penalised objective).
    objective : float
    """
    xp = array_namespace(X, targets)
    dev = array_device(X)
    n, p = X.shape
    K = targets.shape[1]
    W = np.array(coef, dtype=np.float64).reshape(K, p)
    b = np.array(intercept, dtype=np.float64).reshape(K)
    s = (xp.ones((n,), dtype=X.dtype, device=dev) if sample_weight is None
         else sample_weight)
    T = targets

    def dev_(a):
        return xp.asarray(a, dtype=X.dtype, device=dev)

    def pen(W_):
        return gamma * float(np.abs(W_).sum()) + 0.5 * rho * float((W_ * W_).sum())

    def objective(W_, b_):
        return float(_multinomial_nll(xp, X, T, s, dev_(W_), dev_(b_))[0]) + pen(W_)

    nll, logp = _multinomial_nll(xp, X, T, s, dev_(W), dev_(b))
    f_old = float(nll) + pen(W)
    eta = dev_(b)[None, :] + X @ dev_(W).T
    P = xp.exp(logp)
    curv = xp.clip(P * (1.0 - P), 1e-5, None)
    V = s[:, None] * curv
    Zw = eta - (P - T) / curv
    stats = weighted_gram_stats(X, V, Zw)
    W_new = np.empty_like(W)
    b_new = np.empty_like(b)
    for k in range(K):
        W_new[k] = gram_enet(stats["gram"][k], stats["cross"][k], lam1=gamma, lam2=rho,
                             coef=W[k], raw=stats["raw"][k], ss=stats["ss"][k],
                             max_iter=cd_max_iter, tol=cd_tol, features=features)
        b_new[k] = stats["zbar"][k] - float(stats["xbar"][k] @ W_new[k])
    dW, db = W_new - W, b_new - b
    Gm = s[:, None] * (P - T)
    XtG = _host(X.T @ Gm).T                           # (K, p)
    sG = _host(xp.sum(Gm, axis=0))
    pred = float(np.sum(XtG * dW) + sG @ db) + pen(W_new) - pen(W)
    t = 1.0
    for _ in range(30):
        W_try, b_try = W + t * dW, b + t * db
        f_try = objective(W_try, b_try)
        if f_try <= f_old + 1e-4 * t * min(pred, 0.0) and np.isfinite(f_try):
            break
        t *= 0.5
    else:
        return W, b, f_old
    W_c, b_c = _recentre(W_try, b_try, gamma, rho)
    f_c = objective(W_c, b_c)
    if f_c <= f_try:
        W_try, b_try, f_try = W_c, b_c, f_c
    return W_try, b_try, f_try
