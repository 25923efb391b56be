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


def _column_sums(xp, A, ones):
    r"""Column sums of a tall ``A`` (n, m) as one matrix-vector product.

    ``xp.sum(A, axis=0)`` over the long, strided axis is a poor reduction on
    CuPy (no CUB path for it: its generic kernel gives the m outputs a single
    thread block); cuBLAS' ``gemv`` reads ``A`` at full bandwidth on every
    library."""
    return ones @ A


def _stats_on_device(X, W, Z=None, extra=None, riders=()):
    """Device half of :func:`weighted_gram_stats`: every product, packed into
    one vector so that the host receives it in one transfer (one
    synchronisation); returns the vector and what :func:`_stats_on_host`
    needs to unpack it."""
    xp = array_namespace(X, W)
    n, p = X.shape
    K = W.shape[1]
    cols = [W]
    if Z is not None:
        WZ = W * Z
        cols += [WZ, WZ * Z]
    if extra is not None:
        cols.append(extra)
    C = cols[0] if len(cols) == 1 else xp.concat(cols, axis=1)   # (n, m)
    ones = xp.ones((n,), dtype=X.dtype, device=array_device(X))
    parts = [xp.reshape(X.T @ (W[:, k:k + 1] * X), (-1,)) for k in range(K)]  # K GEMMs
    parts.append(xp.reshape(X.T @ C, (-1,)))         # (p, m): one GEMM
    parts.append(_column_sums(xp, C, ones))         # (m,): one gemv
    parts += [xp.reshape(r, (-1,)) for r in riders]
    layout = (K, p, C.shape[1], Z is not None, [int(np.prod(r.shape)) for r in riders])
    return xp.concat(parts), layout


def _stats_on_host(packed, layout):
    K, p, m, with_z, rider_sizes = layout
    G = packed[:K * p * p].reshape(K, p, p)
    pos = K * p * p
    XtC = packed[pos:pos + p * m].reshape(p, m).T    # (m, p)
    pos += p * m
    sums = packed[pos:pos + m]
    pos += m
    out = {"sw": sums[:K].copy()}
    S = np.maximum(out["sw"], np.finfo(np.float64).tiny)
    xbar = XtC[:K] / S[:, None]                       # (K, p)
    out["raw"] = np.diagonal(G, axis1=1, axis2=2).copy()
    G = G - S[:, None, None] * xbar[:, :, None] * xbar[:, None, :]
    out["xbar"] = xbar
    out["gram"] = 0.5 * (G + np.swapaxes(G, 1, 2))
    used = K
    if with_z:
        zbar = sums[K:2 * K] / S
        szz = sums[2 * K:3 * K]
        out["zbar"] = zbar
        out["cross"] = XtC[K:2 * K] - S[:, None] * xbar * zbar[:, None]
        out["ss"] = np.maximum(szz - S * zbar * zbar, 0.0)
        used = 3 * K
    if m > used:
        out["extra_xt"] = XtC[used:].copy()
        out["extra_sum"] = sums[used:].copy()
    riders = []
    for size in rider_sizes:
        riders.append(packed[pos:pos + size].copy())
        pos += size
    out["riders"] = riders
    return out


def weighted_gram_stats(X, W, Z=None, extra=None):
    r"""Weighted, centred second moments of ``X`` for each column of ``W``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any array-API array (kept where it is: the products run on its device).
    W : array of shape (n_samples, n_weights)
        Non-negative weights, one column per problem.
    Z : array of shape (n_samples, n_weights), optional
        A response per problem.
    extra : array of shape (n_samples, n_extra), optional
        More columns whose products with ``X`` and sums are wanted (they ride
        in the same matrix product and the same transfer).

    Returns
    -------
    dict of NumPy arrays
        ``sw`` (K,): :math:`S_k=\sum_i w_{ik}`; ``xbar`` (K, p): weighted
        means; ``gram`` (K, p, p): :math:`\sum_i w_{ik}(x_i-\bar x_k)
        (x_i-\bar x_k)^\top`; ``raw`` (K, p): :math:`\sum_i w_{ik}x_{ij}^2`
        (to detect constant columns); with ``Z`` also ``zbar`` (K,),
        ``cross`` (K, p): :math:`\sum_i w_{ik}(x_i-\bar x_k)(z_{ik}-\bar z_k)`
        and ``ss`` (K,): :math:`\sum_i w_{ik}(z_{ik}-\bar z_k)^2`; with
        ``extra`` also ``extra_xt`` (n_extra, p): :math:`E^\top X` and
        ``extra_sum`` (n_extra,).

    Notes
    -----
    Device work: K + 1 matrix-matrix products (``K`` of n p^2 for the Gram
    matrices, one of ``X`` with every weighted column at once), one
    matrix-vector product for every column sum, and one transfer of
    :math:`K p^2 + O(pK)` numbers to the host (one synchronisation).
    """
    packed, layout = _stats_on_device(X, W, Z, extra)
    out = _stats_on_host(_host(packed), layout)
    del out["riders"]
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
                           features=feats, working_set=False)
    return np.asarray(res.coef, dtype=np.float64)


def _multinomial_nll(xp, X, T, s, A):
    """Negative log-likelihood of the softmax gate at ``A`` (p + 1, K): the
    slopes transposed (rows ``:p``, C-contiguous for the product) and the
    intercepts (row ``p``); also returns the log-probabilities and the linear
    predictor. The sum over samples is a row sum then a dot product (no long
    strided reduction)."""
    p = X.shape[1]
    eta = A[p, :][None, :] + X @ A[:p, :]
    logp = log_softmax(eta, axis=1)
    terms = xp.where(T != 0, T * logp, xp.zeros_like(logp))
    return -(s @ xp.sum(terms, axis=1)), logp, eta


def _packed(W, b):
    """(p + 1, K) host array: ``W.T`` above the intercepts ``b``."""
    return np.vstack([W.T, b[None, :]])


def multinomial_step_gram(X, targets, coef, intercept, gamma=0.0, rho=0.0,
                          sample_weight=None, cd_max_iter=50, cd_tol=1e-4, features=None,
                          timer=None):
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
    timer : callable, optional
        For profiling: called with ``'gate_stats'`` (device products and their
        transfer), ``'gate_cd'`` (host coordinate descent) and
        ``'gate_search'`` (line search) when each phase ends.

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
    mark = timer if timer is not None else (lambda name: None)

    def dev_(a):
        return xp.asarray(a, dtype=X.dtype, device=dev)

    def pen(W_):
        return gamma * float(np.abs(W_).sum()) + 0.5 * rho * float((W_ * W_).sum())

    def objectives(cands):
        # several candidate points: one upload, one transfer back
        A = dev_(np.stack([_packed(W_, b_) for W_, b_ in cands]))
        vals = xp.stack([_multinomial_nll(xp, X, T, s, A[i, ...])[0]
                         for i in range(len(cands))])
        return [float(v) + pen(W_) for v, (W_, _) in zip(_host(vals), cands)]

    nll, logp, eta = _multinomial_nll(xp, X, T, s, dev_(_packed(W, b)))
    P = xp.exp(logp)
    # a maximum with a 0-d array, not xp.clip: array-api-compat's generic clip
    # (used for CuPy) masks and scatters, with a host synchronisation
    curv = xp.maximum(P * (1.0 - P), xp.asarray(1e-5, dtype=X.dtype, device=dev))
    V = s[:, None] * curv
    Zw = eta - (P - T) / curv
    Gm = s[:, None] * (P - T)
    # the Gram matrices, the gradient (X^T Gm and its column sums) and the
    # objective at the current point come back in one transfer
    packed, layout = _stats_on_device(X, V, Zw, extra=Gm, riders=[xp.reshape(nll, (1,))])
    stats = _stats_on_host(_host(packed), layout)
    f_old = float(stats["riders"][0][0]) + pen(W)
    mark("gate_stats")
    W_new = np.empty_like(W)
    b_new = np.empty_like(b)
    for k in range(K):
        W_new[k] = gram_enet(stats["gram"][k], stats["cross"][k], lam1=gamma, lam2=rho,
                             coef=W[k], raw=stats["raw"][k], ss=stats["ss"][k],
                             max_iter=cd_max_iter, tol=cd_tol, features=features)
        b_new[k] = stats["zbar"][k] - float(stats["xbar"][k] @ W_new[k])
    dW, db = W_new - W, b_new - b
    XtG, sG = stats["extra_xt"], stats["extra_sum"]   # (K, p), (K,)
    pred = float(np.sum(XtG * dW) + sG @ db) + pen(W_new) - pen(W)
    mark("gate_cd")

    def armijo(f, t):
        return f <= f_old + 1e-4 * t * min(pred, 0.0) and np.isfinite(f)

    # the full step and its recentred version are evaluated together (the full
    # step is accepted almost always); then backtracking as in the NumPy path
    t = 1.0
    W_try, b_try = W + dW, b + db
    W_c, b_c = _recentre(W_try, b_try, gamma, rho)
    f_try, f_c = objectives([(W_try, b_try), (W_c, b_c)])
    if not armijo(f_try, t):
        for _ in range(29):
            t *= 0.5
            W_try, b_try = W + t * dW, b + t * db
            (f_try,) = objectives([(W_try, b_try)])
            if armijo(f_try, t):
                break
        else:
            mark("gate_search")
            return W, b, f_old
        W_c, b_c = _recentre(W_try, b_try, gamma, rho)
        (f_c,) = objectives([(W_c, b_c)])
    mark("gate_search")
    if f_c <= f_try:
        W_try, b_try, f_try = W_c, b_c, f_c
    return W_try, b_try, f_try
