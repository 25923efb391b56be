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

from .._backend import lazy_njit, numba_available, to_numpy
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
                                 use_numba=None, features=None):
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
    use_numba : bool, optional
        Run the whole step in one Numba kernel (default: when Numba is
        installed and allowed); otherwise NumPy with
        :func:`~mixstat.primitives.weighted_enet_cd` for each class.
    features : int ndarray, optional
        Columns whose slopes may move (the others keep their value): the
        active set of a generalised EM.

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
    feats = (np.arange(p, dtype=np.int64) if features is None
             else np.asarray(features, dtype=np.int64).reshape(-1))
    if use_numba is None:
        use_numba = numba_available()
    if use_numba:
        f, it = _prox_newton_kernel(np.asfortranarray(X) if not X.flags.f_contiguous and not X.flags.c_contiguous else X,
                                    T, s, W, b, float(gamma), float(rho), feats,
                                    int(max_iter), float(tol), int(cd_max_iter), float(cd_tol),
                                    0.0, np.empty((0, K)))
        return MultinomialResult(back(W), back(b), float(f), int(it))
    all_features = features is None

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
                                   tol=cd_tol, use_numba=False, working_set=False,
                                   features=None if all_features else feats)
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


# --------------------------------------------------------------- kernel ---
@lazy_njit
def _softmax_nll_kernel(eta, T, s, P):  # pragma: no cover - jitted
    """The NLL of soft targets ``T`` under softmax(``eta``), and the
    probabilities into ``P``. (A kernel of its own, not a closure of
    :func:`_prox_newton_kernel`: Numba inlines a closure at every call site,
    which made that kernel take twice as long to compile.)"""
    n_, K_ = eta.shape
    f = 0.0
    for i in range(n_):
        m = eta[i, 0]
        for k in range(1, K_):
            if eta[i, k] > m:
                m = eta[i, k]
        acc = 0.0
        for k in range(K_):
            P[i, k] = np.exp(eta[i, k] - m)
            acc += P[i, k]
        lse = m + np.log(acc)
        row = 0.0
        for k in range(K_):
            P[i, k] /= acc
            if T[i, k] != 0.0:
                row += T[i, k] * (eta[i, k] - lse)
        f -= s[i] * row
    return f


@lazy_njit
def _l1_ridge_penalty_kernel(W, gamma, rho):  # pragma: no cover - jitted
    """gamma * ||W||_1 + rho / 2 * ||W||_2^2."""
    a = 0.0
    q = 0.0
    for k in range(W.shape[0]):
        for j in range(W.shape[1]):
            a += abs(W[k, j])
            q += W[k, j] * W[k, j]
    return gamma * a + 0.5 * rho * q


@lazy_njit
def _prox_newton_kernel(X, T, s, W, b, gamma, rho, features, max_iter, tol,
                        cd_max_iter, cd_tol, nll0, P0):  # pragma: no cover - jitted
    """The proximal-Newton step of :func:`penalized_multinomial_update` in one
    kernel: per-class weighted CD with residual updates on ``features``,
    Armijo backtracking on the joint step, recentring. ``W`` and ``b`` are
    updated in place; returns ``(objective, n_iter)``. When the caller already
    has the (unpenalised) NLL ``nll0`` and the probabilities ``P0`` (n, K) at
    the starting ``W``, ``b`` (an E-step computes both), they are not
    recomputed; an empty ``P0`` (0 rows) means they are not known (``nll0``
    is then not read). Every argument is required and ``P0`` is always an
    array, so that all callers share one compiled specialisation (compiling
    this kernel takes about 13 s)."""
    n, p = X.shape
    K = T.shape[1]
    nf = features.shape[0]
    eta = np.empty((n, K))
    for i in range(n):
        for k in range(K):
            eta[i, k] = b[k]
    for k in range(K):
        for j in range(p):
            wkj = W[k, j]
            if wkj != 0.0:
                for i in range(n):
                    eta[i, k] += X[i, j] * wkj
    P = np.empty((n, K))
    P_try = np.empty((n, K))
    if P0.shape[0] == 0:
        f_old = _softmax_nll_kernel(eta, T, s, P) + _l1_ridge_penalty_kernel(W, gamma, rho)
    else:
        f_old = nll0 + _l1_ridge_penalty_kernel(W, gamma, rho)
        for i in range(n):
            for k in range(K):
                P[i, k] = P0[i, k]
    Wn = W.copy()
    bn = b.copy()
    deta = np.empty((n, K))
    eta_try = np.empty((n, K))
    W_try = W.copy()
    v = np.empty(n)
    z = np.empty(n)
    r = np.empty(n)
    xbar = np.empty(nf)
    h = np.empty(nf)
    # Gram-matrix CD when it is cheaper than cd_max_iter residual sweeps
    gram = nf + 1 <= 4 * min(cd_max_iter, 5)
    Xc = np.empty((n, nf if gram else 0))
    G = np.empty((nf, nf) if gram else (0, 0))
    cz = np.empty(nf)
    Gw = np.empty(nf)
    it = 0
    for it in range(1, max_iter + 1):
        # P holds softmax(eta): from the start, then from the accepted line-search step
        pred = 0.0
        for k in range(K):
            # working response on the free columns: z = b_k + X_F W_kF - (P - T) / curv
            sw = 0.0
            zbar = 0.0
            for i in range(n):
                curv = P[i, k] * (1.0 - P[i, k])
                if curv < 1e-5:
                    curv = 1e-5
                v[i] = s[i] * curv
                q = b[k]
                for jj in range(nf):
                    q += X[i, features[jj]] * W[k, features[jj]]
                z[i] = q - (P[i, k] - T[i, k]) / curv
                sw += v[i]
                zbar += v[i] * z[i]
            for jj in range(nf):
                Wn[k, features[jj]] = W[k, features[jj]]
            if sw <= 0.0:
                bn[k] = b[k]
                continue
            zbar /= sw
            if gram:
                # few free columns: coordinate descent on the weighted Gram
                # matrix of the centred columns (O(n nf^2) once, then O(nf^2)
                # per sweep), the same iterates as the residual form below
                for jj in range(nf):
                    j = features[jj]
                    a = 0.0
                    for i in range(n):
                        a += v[i] * X[i, j]
                    xbar[jj] = a / sw
                    for i in range(n):
                        Xc[i, jj] = X[i, j] - xbar[jj]
                for jj in range(nf):
                    a = 0.0
                    for i in range(n):
                        a += v[i] * Xc[i, jj] * (z[i] - zbar)
                    cz[jj] = a
                    for ll in range(jj, nf):
                        a = 0.0
                        for i in range(n):
                            a += v[i] * Xc[i, jj] * Xc[i, ll]
                        G[jj, ll] = a
                        G[ll, jj] = a
                    h[jj] = G[jj, jj]
                for jj in range(nf):
                    a = 0.0
                    for ll in range(nf):
                        a += G[jj, ll] * Wn[k, features[ll]]
                    Gw[jj] = a
                for sweep in range(cd_max_iter):
                    dmax = 0.0
                    cmax = 0.0
                    for jj in range(nf):
                        j = features[jj]
                        old = Wn[k, j]
                        if h[jj] <= 1e-12 * sw:
                            new = 0.0
                        else:
                            zz = cz[jj] - Gw[jj] + h[jj] * old
                            if zz > gamma:
                                new = (zz - gamma) / (h[jj] + rho)
                            elif zz < -gamma:
                                new = (zz + gamma) / (h[jj] + rho)
                            else:
                                new = 0.0
                        if new != old:
                            dd = new - old
                            for ll in range(nf):
                                Gw[ll] += G[ll, jj] * dd
                            Wn[k, j] = new
                            if abs(dd) > dmax:
                                dmax = abs(dd)
                        if abs(new) > cmax:
                            cmax = abs(new)
                    if cmax == 0.0 or dmax <= cd_tol * cmax:
                        break
                a = zbar
                for jj in range(nf):
                    a -= xbar[jj] * Wn[k, features[jj]]
                bn[k] = a
                continue
            for jj in range(nf):
                j = features[jj]
                a = 0.0
                for i in range(n):
                    a += v[i] * X[i, j]
                xbar[jj] = a / sw
                a = 0.0
                for i in range(n):
                    d = X[i, j] - xbar[jj]
                    a += v[i] * d * d
                h[jj] = a
            for i in range(n):
                r[i] = z[i] - zbar
            for jj in range(nf):
                j = features[jj]
                wkj = Wn[k, j]
                if wkj != 0.0:
                    for i in range(n):
                        r[i] -= (X[i, j] - xbar[jj]) * wkj
            for sweep in range(cd_max_iter):
                dmax = 0.0
                cmax = 0.0
                for jj in range(nf):
                    j = features[jj]
                    old = Wn[k, j]
                    if h[jj] <= 1e-12 * sw:
                        new = 0.0
                    else:
                        g = 0.0
                        for i in range(n):
                            g += v[i] * (X[i, j] - xbar[jj]) * r[i]
                        zz = g + h[jj] * old
                        if zz > gamma:
                            new = (zz - gamma) / (h[jj] + rho)
                        elif zz < -gamma:
                            new = (zz + gamma) / (h[jj] + rho)
                        else:
                            new = 0.0
                    if new != old:
                        dd = new - old
                        for i in range(n):
                            r[i] -= (X[i, j] - xbar[jj]) * dd
                        Wn[k, j] = new
                        if abs(dd) > dmax:
                            dmax = abs(dd)
                    if abs(new) > cmax:
                        cmax = abs(new)
                if cmax == 0.0 or dmax <= cd_tol * cmax:
                    break
            a = zbar
            for jj in range(nf):
                a -= xbar[jj] * Wn[k, features[jj]]
            bn[k] = a
        # direction in eta and the predicted decrease (gradient . step + penalty change)
        for i in range(n):
            for k in range(K):
                dv = bn[k] - b[k]
                for jj in range(nf):
                    j = features[jj]
                    dv += X[i, j] * (Wn[k, j] - W[k, j])
                deta[i, k] = dv
                pred += s[i] * (P[i, k] - T[i, k]) * dv
        pen_old = _l1_ridge_penalty_kernel(W, gamma, rho)
        pred += _l1_ridge_penalty_kernel(Wn, gamma, rho) - pen_old
        if pred > 0.0:
            pred = 0.0
        t = 1.0
        accepted = False
        f_try = f_old
        nll_try = 0.0
        for ls in range(30):
            for i in range(n):
                for k in range(K):
                    eta_try[i, k] = eta[i, k] + t * deta[i, k]
            for k in range(K):
                for j in range(p):
                    W_try[k, j] = W[k, j] + t * (Wn[k, j] - W[k, j])
            nll_try = _softmax_nll_kernel(eta_try, T, s, P_try)
            f_try = nll_try + _l1_ridge_penalty_kernel(W_try, gamma, rho)
            if np.isfinite(f_try) and f_try <= f_old + 1e-4 * t * pred:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        for k in range(K):
            b[k] = b[k] + t * (bn[k] - b[k])
            for j in range(p):
                W[k, j] = W_try[k, j]
        for i in range(n):
            for k in range(K):
                eta[i, k] = eta_try[i, k]
                P[i, k] = P_try[i, k]
        # recentre: a per-feature shift of every W_k (and of every b_k) leaves
        # the likelihood unchanged; remove the one that lowers the penalty
        mb = 0.0
        for k in range(K):
            mb += b[k]
        mb /= K
        for k in range(K):
            b[k] -= mb
        if gamma == 0.0 or rho == 0.0:
            for jj in range(nf):
                j = features[jj]
                if gamma == 0.0:
                    c = 0.0
                    for k in range(K):
                        c += W[k, j]
                    c /= K
                else:
                    c = np.median(W[:, j])
                for k in range(K):
                    W[k, j] -= c
            # eta changes by a row constant only: the probabilities do not move
        # (eta is not recomputed, so its NLL is the line search's nll_try)
        f_new = nll_try + _l1_ridge_penalty_kernel(W, gamma, rho)
        decrease = f_old - f_new
        f_old = f_new
        if decrease <= tol * max(abs(f_old), 1.0):
            break
    return f_old, it
