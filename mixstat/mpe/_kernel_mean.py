"""KM1 / KM2: mixture proportion estimation by kernel mean embeddings
(Ramaswamy, Scott & Tewari, ICML 2016).

The QP "distance from a point to the convex hull of the embedded sample" is
solved exactly by Wolfe's minimum-norm-point active-set algorithm on a
finite-dimensional factor ``K ~= Z Z^T`` of the kernel matrix (an exact
pivoted Cholesky factor for moderate samples, a low-rank Nystroem factor for
large ones, its landmarks chosen by randomly pivoted Cholesky by default),
warm-started along the bisection over lambda; for a full-rank factor the QPs
read inner products from the Gram matrix ``Z Z^T``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device
from scipy.optimize import nnls
from scipy.spatial.distance import cdist
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from .._backend import lazy_njit, resolve_backend, to_numpy
from .._config import config_context
from .._validation import Interval, StrOptions
from ._base import BOOTSTRAP_DOC, BaseMPE


# ----------------------------------------------------------------- kernel ---
# The kernel matrices are written against the array API: NumPy arrays take
# the exact ``cdist`` path, torch / CuPy arrays (``backend='torch'`` or
# ``'cupy'``) compute them on their device; the small QP and the r x r
# eigendecomposition of the Nystroem factor run on the host.
def _sqdist(A, B):
    if isinstance(A, np.ndarray):
        return cdist(A, B, "sqeuclidean")
    xp = array_namespace(A, B)
    aa = xp.sum(A * A, axis=1)
    bb = xp.sum(B * B, axis=1)
    d = aa[:, None] + bb[None, :] - 2.0 * (A @ xp.permute_dims(B, (1, 0)))
    return xp.where(d > 0, d, xp.zeros_like(d))


def _take_rows(X, idx):
    """``X[idx]`` for host integer indices ``idx`` on any namespace."""
    if isinstance(X, np.ndarray):
        return X[idx]
    xp = array_namespace(X)
    return xp.take(X, xp.asarray(np.asarray(idx, dtype=np.int64), device=array_device(X)), axis=0)


def rbf_kernel(A, B, width):
    """``exp(-||a - b||^2 / (2 width^2))`` (on the namespace / device of ``A``)."""
    xp = array_namespace(A, B)
    return xp.exp(-_sqdist(A, B) / (2.0 * width * width))


def median_distance(X, rng, max_points=1000):
    """Median of the pairwise distances (distinct pairs) of a subsample of X."""
    if X.shape[0] > max_points:
        X = _take_rows(X, rng.choice(X.shape[0], max_points, replace=False))
    n = X.shape[0]
    d = to_numpy(_sqdist(X, X))[np.triu_indices(n, 1)]
    d = d[d > 0]
    if d.size == 0:
        raise ValueError("All points are identical: the kernel width is undefined.")
    return float(np.sqrt(np.median(d)))


def mmd_width(X_component, X_mixture, factors, rng, max_points=500):
    r"""Width maximising the MMD between the samples over
    ``factors * median distance`` (the KM reference rule).

    The criterion is the *unbiased* estimate (Gretton et al., JMLR 2012)

    .. math:: \widehat{\mathrm{MMD}}_u^2 = \frac{\sum_{i\ne j} k(x_i, x_j)}{n(n-1)}
              + \frac{\sum_{i\ne j} k(z_i, z_j)}{m(m-1)}
              - \frac{2}{nm}\sum_{i,j} k(x_i, z_j).

    The biased estimate keeps the diagonal terms :math:`k(x, x) = 1`, which
    add :math:`1/n + 1/m` minus the off-diagonal mass: when the two samples
    come from the same law (kappa = 1) it is largest for the smallest width,
    where every point is only similar to itself, and the KM estimate built on
    that width is noise (KM2 gave 0.59-0.65 at kappa = 1, m = n = 1000).
    When no factor gives a positive unbiased MMD (the samples are not told
    apart at any width), the factor closest to 1 (the median heuristic) is
    returned.
    """
    m, n = X_component.shape[0], X_mixture.shape[0]
    Xh = X_component if m <= max_points else _take_rows(
        X_component, rng.choice(m, max_points, replace=False))
    Xf = X_mixture if n <= max_points else _take_rows(
        X_mixture, rng.choice(n, max_points, replace=False))
    m, n = Xh.shape[0], Xf.shape[0]
    xp = array_namespace(Xh, Xf)
    med = median_distance(xp.concat([Xh, Xf], axis=0), rng, max_points=1000)
    dff, dhh, dfh = _sqdist(Xf, Xf), _sqdist(Xh, Xh), _sqdist(Xf, Xh)
    factors = np.asarray(factors, dtype=float)
    best, best_mmd = None, 0.0
    for f in factors:
        s2 = 2.0 * (f * med) ** 2
        mmd2 = float((xp.sum(xp.exp(-dff / s2)) - n) / (n * (n - 1))
                     + (xp.sum(xp.exp(-dhh / s2)) - m) / (m * (m - 1))
                     - 2 * xp.mean(xp.exp(-dfh / s2)))
        if mmd2 > best_mmd:
            best, best_mmd = f * med, mmd2
    if best is None:
        best = float(factors[np.argmin(np.abs(np.log(factors)))]) * med
    return float(best)


def pivoted_cholesky_features(X, width, tol=1e-10, max_rank=None, pivoting="greedy",
                              random_state=None):
    """Pivoted (incomplete) Cholesky factor ``Z`` (n x r) with ``K ~= Z Z^T``.

    Each step takes a pivot ``i``, the column ``K[:, i]`` minus its part in
    the factor so far, scaled by the square root of the residual diagonal
    ``d_i``; ``Z Z^T`` is then the Nystroem approximation on the pivots, and
    ``d`` is kept as ``diag(K - Z Z^T)``. The pivot is

    - ``pivoting='greedy'``: the point of largest residual diagonal (Fine &
      Scheinberg 2001, Bach & Jordan 2005);
    - ``pivoting='random'``: drawn with probability proportional to ``d``
      (randomly pivoted Cholesky, Chen, Epperly, Tropp & Webber, CPAM 2025;
      ``random_state`` seeds the draws), whose expected residual trace is
      within a small factor of the best rank-r approximation's.

    Stops when the largest residual diagonal entry is below ``tol`` (then
    ``|K - Z Z^T|`` is below ``tol`` entrywise, as the residual is PSD) or at
    ``max_rank``. Returns ``(Z, residual_trace)``; ``Z`` is on the namespace
    and device of ``X``. Cost O(n r^2 + n r d), memory O(n r).
    """
    if pivoting not in ("greedy", "random"):
        raise ValueError(f"pivoting must be 'greedy' or 'random', got {pivoting!r}")
    if isinstance(X, np.ndarray) and pivoting == "greedy" and max_rank is None:
        return _lapack_pivoted_cholesky(X, width, tol)
    xp = array_namespace(X)
    dev = array_device(X)
    n = X.shape[0]
    max_rank = n if max_rank is None else min(int(max_rank), n)
    rng = check_random_state(random_state) if pivoting == "random" else None
    d = xp.ones(n, dtype=X.dtype, device=dev)
    L = xp.zeros((n, min(max_rank, 64)), dtype=X.dtype, device=dev)
    k = 0
    while k < max_rank:
        if rng is None:
            i = int(xp.argmax(d))
        else:
            p = np.asarray(to_numpy(d), dtype=np.float64)
            if p.max() <= tol:
                break
            i = int(rng.choice(n, p=p / p.sum()))
        di = float(d[i])
        if di <= tol:
            break
        if k >= L.shape[1]:
            L = xp.concat([L, xp.zeros_like(L)], axis=1)
        col = rbf_kernel(X, X[i:i + 1, :], width)[:, 0]
        if k:
            col = col - L[:, :k] @ L[i, :k]
        col = col / np.sqrt(di)
        L[:, k] = col
        d = d - col * col
        d = xp.where(d > 0, d, xp.zeros_like(d))
        d[i] = 0.0
        k += 1
    return L[:, :k], float(xp.sum(d))


def _lapack_pivoted_cholesky(X, width, tol):
    """The complete greedy pivoted Cholesky factor of the kernel matrix by
    LAPACK's ``dpstrf`` (same pivot rule and stopping rule as the loop of
    :func:`pivoted_cholesky_features`: the largest residual diagonal, stop
    when it is at most ``tol``), on the host: it forms the n x n kernel
    matrix (8 n^2 bytes) and runs compiled, blocked code instead of n Python
    steps (digits, n = 1797: 0.9 s against 28 s on the loaded 2-core VM)."""
    from scipy.linalg import lapack

    K = rbf_kernel(X, X, width)
    U, piv, rank, info = lapack.dpstrf(K, lower=0, tol=tol)
    if info < 0:  # pragma: no cover - argument error
        raise ValueError(f"dpstrf failed (info={info})")
    Z = np.empty((X.shape[0], rank))
    Z[piv - 1] = np.triu(U[:rank]).T
    return Z, float(max(X.shape[0] - np.einsum("ij,ij->", Z, Z), 0.0))


def nystroem_features(X, width, n_landmarks, rng):
    """Nystroem factor on ``n_landmarks`` uniformly drawn landmarks:
    ``Z = K_{n,r} U S^{-1/2}`` with ``K_{r,r} = U S U^T`` (``K_{n,r}`` on the
    device of ``X``, the r x r eigendecomposition on the host)."""
    n = X.shape[0]
    r = min(int(n_landmarks), n)
    idx = rng.choice(n, r, replace=False)
    Knr = rbf_kernel(X, _take_rows(X, idx), width)
    s, U = np.linalg.eigh(to_numpy(_take_rows(Knr, idx)))
    keep = s > 1e-10 * s.max()
    W = U[:, keep] / np.sqrt(s[keep])
    if isinstance(Knr, np.ndarray):
        return Knr @ W
    xp = array_namespace(Knr)
    return Knr @ xp.asarray(W, dtype=Knr.dtype, device=array_device(Knr))


# -------------------------------------------------------------- the QP ---
@lazy_njit
def _wolfe_kernel(Z, b, G, S0, w0, R0, tol, max_iter):
    """Wolfe's minimum-norm-point algorithm with an updated Cholesky factor
    (Numba kernel; see :func:`simplex_nearest_point`).

    Keeps ``R`` upper triangular with ``R^T R = 1 1^T + A A^T`` over the
    active points (rows ``a_t = z_t - b`` of ``A``), as in Wolfe (1976): a
    point enters by one triangular solve, leaves by Givens rotations, and the
    affine minimiser ``w ~ (R^T R)^{-1} 1`` costs two triangular solves, so an
    iteration is O(k^2 + N r) instead of the O(k^2 r + k^3) of re-forming and
    re-solving the system. Returns (dist2, S, w, n_iter).

    ``G`` is the Gram matrix ``Z Z^T`` or an empty (0 x 0) array: with it, the
    inner products ``a_s . a_j = G_sj - (Zb)_s - (Zb)_j + b.b`` that a point's
    entry needs cost O(1) each instead of O(r). ``R0`` is the factor of the
    warm start ``S0`` (computed by BLAS / LAPACK in the caller) or empty: then
    the start's points are inserted one by one, as points enter later.
    """
    N, r = Z.shape
    bb = 0.0
    for t in range(r):
        bb += b[t] * b[t]
    Zb = Z @ b
    scale = 1e-300
    for i in range(N):
        v = 0.0
        for t in range(r):
            v += Z[i, t] * Z[i, t]
        v = v - 2.0 * Zb[i] + bb
        if v > scale:
            scale = v
    cap = min(N, r + 2)
    S = np.empty(cap, np.int64)
    w = np.zeros(cap)
    R = np.zeros((cap, cap))
    k = 0

    x = np.zeros(r)
    use_g = G.shape[0] > 0
    tot = 0.0
    k0 = len(S0)
    if R0.shape[0] == k0 and 0 < k0 <= cap:
        # --- warm start with its factor given
        for t in range(k0):
            S[t] = S0[t]
            w[t] = w0[t]
            tot += w0[t]
            for u in range(t + 1):
                R[u, t] = R0[u, t]
        k = k0
        S0 = S0[:0]
    # --- warm start: insert the given points one by one
    for q in range(len(S0)):
        if k == cap:
            break
        j = S0[q]
        aj = Z[j] - b
        c = np.empty(k)
        for t in range(k):
            if use_g:
                c[t] = 1.0 + G[S[t], j] - Zb[S[t]] - Zb[j] + bb
            else:
                c[t] = 1.0 + np.dot(Z[S[t]] - b, aj)
        rr = np.empty(k)
        for t in range(k):  # forward substitution R^T rr = c
            s_ = c[t]
            for u in range(t):
                s_ -= R[u, t] * rr[u]
            rr[t] = s_ / R[t, t]
        rho2 = 1.0 + np.dot(aj, aj) - np.dot(rr, rr)
        if rho2 <= 1e-12 * (1.0 + np.dot(aj, aj)):
            continue
        for t in range(k):
            R[t, k] = rr[t]
        R[k, k] = np.sqrt(rho2)
        S[k] = j
        w[k] = w0[q]
        tot += w0[q]
        k += 1
    if k == 0:  # cannot happen for a single point; guard anyway
        S[0] = S0[0]
        R[0, 0] = np.sqrt(1.0 + np.dot(Z[S0[0]] - b, Z[S0[0]] - b))
        w[0] = 1.0
        tot = 1.0
        k = 1
    for t in range(k):
        w[t] /= tot
    need_minor = k > 1
    prev_xx = np.inf
    n_iter = 0
    for it in range(max_iter):
        n_iter = it + 1
        if need_minor:
            while True:
                # affine minimiser: v = (R^T R)^{-1} 1, normalised
                y = np.empty(k)
                for t in range(k):
                    s_ = 1.0
                    for u in range(t):
                        s_ -= R[u, t] * y[u]
                    y[t] = s_ / R[t, t]
                v = np.empty(k)
                for t in range(k - 1, -1, -1):
                    s_ = y[t]
                    for u in range(t + 1, k):
                        s_ -= R[t, u] * v[u]
                    v[t] = s_ / R[t, t]
                sv = 0.0
                for t in range(k):
                    sv += v[t]
                for t in range(k):
                    v[t] /= sv
                allpos = True
                for t in range(k):
                    if v[t] <= 1e-14:
                        allpos = False
                if allpos:
                    for t in range(k):
                        w[t] = v[t]
                    break
                theta = np.inf
                for t in range(k):
                    if v[t] <= 1e-14:
                        q_ = w[t] / (w[t] - v[t])
                        if q_ < theta:
                            theta = q_
                for t in range(k):
                    w[t] = w[t] + theta * (v[t] - w[t])
                # drop the points whose weight reached 0, one at a time
                t = 0
                while t < k:
                    if w[t] > 1e-14:
                        t += 1
                        continue
                    # delete column t of R, re-triangularise by Givens rotations
                    for u in range(t, k - 1):
                        for row in range(u + 2):
                            R[row, u] = R[row, u + 1]
                        S[u] = S[u + 1]
                        w[u] = w[u + 1]
                    for row in range(k):
                        R[row, k - 1] = 0.0
                    for u in range(t, k - 1):
                        a_ = R[u, u]
                        b_ = R[u + 1, u]
                        h = np.hypot(a_, b_)
                        if h == 0.0:
                            continue
                        cs = a_ / h
                        sn = b_ / h
                        for col in range(u, k - 1):
                            r1 = R[u, col]
                            r2 = R[u + 1, col]
                            R[u, col] = cs * r1 + sn * r2
                            R[u + 1, col] = -sn * r1 + cs * r2
                        R[u + 1, u] = 0.0
                    for col in range(k):
                        R[k - 1, col] = 0.0
                    k -= 1
                tot = 0.0
                for t in range(k):
                    tot += w[t]
                for t in range(k):
                    w[t] /= tot
                for t in range(k):  # keep the diagonal positive after rotations
                    if R[t, t] < 0:
                        for col in range(t, k):
                            R[t, col] = -R[t, col]
            need_minor = False
        bx = 0.0
        xx = 0.0
        if use_g:
            # g = Z x = G u - Zb (k rows of G), b.x = u.Zb - b.b,
            # x.x = u.(G u) - 2 u.Zb + b.b
            g = -Zb
            for t in range(k):
                wt = w[t]
                st = S[t]
                for i in range(N):
                    g[i] += wt * G[st, i]
            for t in range(k):
                bx += w[t] * Zb[S[t]]
                xx += w[t] * (g[S[t]] - Zb[S[t]])
            xx += bb
            bx -= bb
        if not use_g or xx < 1e-8 * scale:
            # x itself once x.x is this small: the G-based x.x has an error
            # ~1e-16 scale (cancellation), which would stop the descent at a
            # distance ~1e-8 instead of the tolerance
            bx = 0.0
            xx = 0.0
            for t in range(r):
                x[t] = -b[t]
            for t in range(k):
                x += w[t] * Z[S[t]]
            g = Z @ x
            for t in range(r):
                bx += b[t] * x[t]
                xx += x[t] * x[t]
        j = 0
        best = np.inf
        for i in range(N):
            if g[i] < best:
                best = g[i]
                j = i
        nx = np.sqrt(xx)
        low = (best - bx) / nx if nx > 0 else 0.0
        if low < 0.0:
            low = 0.0
        if xx - (best - bx) <= 1e-14 * scale or nx - low <= tol:
            break
        if xx >= prev_xx * (1.0 - 1e-13):
            break
        prev_xx = xx
        present = False
        for t in range(k):
            if S[t] == j:
                present = True
        if present or k == cap:
            break
        aj = Z[j] - b
        rr = np.empty(k)
        for t in range(k):
            if use_g:
                s_ = 1.0 + G[S[t], j] - Zb[S[t]] - Zb[j] + bb
            else:
                s_ = 1.0 + np.dot(Z[S[t]] - b, aj)
            for u in range(t):
                s_ -= R[u, t] * rr[u]
            rr[t] = s_ / R[t, t]
        rho2 = 1.0 + np.dot(aj, aj) - np.dot(rr, rr)
        if rho2 <= 1e-12 * (1.0 + np.dot(aj, aj)):
            break  # affinely dependent: x is (numerically) optimal
        for t in range(k):
            R[t, k] = rr[t]
        R[k, k] = np.sqrt(rho2)
        S[k] = j
        w[k] = 0.0
        k += 1
        need_minor = True
    # the distance from x = Z^T u - b itself (no cancellation near 0)
    for t in range(r):
        x[t] = -b[t]
    for t in range(k):
        x += w[t] * Z[S[t]]
    xx = 0.0
    for t in range(r):
        xx += x[t] * x[t]
    return xx, S[:k].copy(), w[:k].copy(), n_iter


def _nnls_nearest(Z, b, max_iter=None):
    r"""Distance from ``b`` to the convex hull of the rows of ``Z`` by one
    non-negative least-squares problem (SciPy's compiled Lawson-Hanson).

    With :math:`P = Z - b` (rows :math:`p_i`) and :math:`D` the distance,

    .. math:: \min_{v\ge 0}\ \|P^\top v\|^2 + (1 - \mathbf 1^\top v)^2
              = \min_{s\ge 0}\ s^2 D^2 + (1-s)^2,

    because :math:`v = s u` with :math:`u` in the simplex; the minimiser has
    :math:`s = 1/(1 + D^2)` and :math:`u = v/s` is the nearest point's
    weights: an exact reformulation (no penalty weight).
    """
    N, r = Z.shape
    A = np.empty((r + 1, N))
    A[:r] = (Z - b).T
    A[r] = 1.0
    rhs = np.zeros(r + 1)
    rhs[r] = 1.0
    v, _ = nnls(A, rhs, maxiter=max_iter if max_iter is not None else 10 * N)
    tot = float(v.sum())
    if tot <= 0:
        raise np.linalg.LinAlgError("NNLS returned no weight: degenerate QP")
    S = np.flatnonzero(v > 0).astype(np.int64)
    w = v[S] / tot
    x = Z[S].T @ w - b
    return float(x @ x), S, w


def _start_factor(Z, b, G, S0):
    """Upper factor ``R`` with ``R^T R = 1 1^T + A A^T``, ``A = Z[S0] - b``
    (the warm start's system), by one BLAS product (or a look-up in the Gram
    matrix ``G = Z Z^T``) and LAPACK's Cholesky; an empty array when the start
    is not affinely independent to the kernel's tolerance (the kernel then
    inserts its points one by one and skips the dependent ones)."""
    empty = np.zeros((0, 0))
    if len(S0) < 2 or len(S0) > min(Z.shape[0], Z.shape[1] + 2):
        return empty
    A = Z[S0] - b
    M = A @ A.T + 1.0
    try:
        L = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        return empty
    if np.min(np.diag(L) ** 2 / np.diag(M)) <= 1e-12:
        return empty
    return np.ascontiguousarray(L.T)


def simplex_nearest_point(Z, b, start=None, tol=1e-9, max_iter=10_000, method="wolfe",
                          gram=None):
    r"""Distance from ``b`` to the convex hull of the rows of ``Z``.

    Solves :math:`\min_{u \in \Delta} \|Z^\top u - b\|^2` exactly, by

    - ``method='wolfe'``: Wolfe's minimum-norm-point algorithm, an active-set
      method (the active set holds at most ``r + 1`` affinely independent
      points), Numba-compiled when Numba is installed, warm-started from
      ``start``; the active set's Cholesky factor is updated as points enter
      and leave (Wolfe 1976), so an iteration costs O(k^2 + n r);
    - ``method='nnls'``: one non-negative least-squares problem on the
      ``(r + 1) x n`` matrix :math:`[(Z - b)^\top; \mathbf 1^\top]` (SciPy's
      compiled Lawson-Hanson), an exact reformulation; no warm start.

    Parameters
    ----------
    Z : ndarray (n, r)
    b : ndarray (r,)
    start : (indices, weights) or None
        A warm start for 'wolfe' (any convex combination of rows).
    tol : float
        'wolfe': absolute accuracy of the distance: stop when the duality gap
        ``|x| - max(0, min_j x.(z_j - b) / |x|)`` (an upper bound of
        ``|x| - d*``) is below ``tol``.
    method : {'wolfe', 'nnls'}
    gram : ndarray (n, n) or None
        ``Z Z^T``, when the caller has it ('wolfe'): inner products of rows
        are then read from it (O(1) instead of O(r)), and the warm start's
        factor comes from its rows. Same result to rounding.

    Returns
    -------
    dist : float
    state : (indices, weights)
        The active set and its weights (a warm start for the next call).
    n_iter : int
        Wolfe iterations (1 for 'nnls').
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    if method == "nnls":
        d2, S, w = _nnls_nearest(Z, b)
        return float(np.sqrt(max(d2, 0.0))), (S, w), 1
    if method != "wolfe":
        raise ValueError(f"method must be 'wolfe' or 'nnls', got {method!r}")
    if start is None:
        norms2 = np.einsum("ij,ij->i", Z - b, Z - b)
        S0, w0 = np.array([int(np.argmin(norms2))], dtype=np.int64), np.ones(1)
    else:
        S0 = np.asarray(start[0], dtype=np.int64)
        w0 = np.asarray(start[1], dtype=np.float64)
    G = np.zeros((0, 0)) if gram is None else np.ascontiguousarray(gram, np.float64)
    R0 = _start_factor(Z, b, gram, S0)
    d2, S, w, it = _wolfe_kernel(Z, b, G, S0, w0, R0, float(tol), int(max_iter))
    return float(np.sqrt(max(d2, 0.0))), (S, w), int(it)


class _HullDistance:
    """``d(lambda) = dist(lambda mu_F + (1 - lambda) mu_H, conv{phi(x_i)})``,
    cached and warm-started."""

    def __init__(self, Z, n_mixture, method="wolfe", gram_max=5000):
        self.Z = Z = np.ascontiguousarray(Z, dtype=np.float64)
        self.method = method
        # the Gram matrix Z Z^T of a full-rank factor (N x N, the exact
        # kernel; 8 N^2 bytes, one BLAS product) makes each inner product of
        # the QPs O(1) instead of O(N). Not for a low-rank factor: its points
        # are affinely dependent, and telling which needs inner products of
        # the rows themselves (the O(1) ones carry cancellation errors); its
        # inner products are cheap anyway
        N, r = Z.shape
        full = method == "wolfe" and r >= N and gram_max >= N
        self.gram = Z @ Z.T if full else None
        self.mu_f = Z[:n_mixture].mean(axis=0)
        self.mu_h = Z[n_mixture:].mean(axis=0)
        # lambda = 1 is mu_F itself, the uniform combination of the mixture
        # points: the exact solution there (distance 0). Each QP starts from
        # the solution at the nearest lambda solved so far, nearest in
        # log(lambda) (this one included): near lambda = 1 the nearest
        # point's support is large (865 of 1797 points on digits), far from
        # it small (1-30 points), and a start's surplus points leave one per
        # Wolfe minor cycle (0.3 s from 824 points to 3 on digits); with no
        # solved lambda within a factor e, the QP starts cold (one vertex)
        self.start = (np.arange(n_mixture, dtype=np.int64), np.full(n_mixture, 1.0 / n_mixture))
        self.state = None
        self.states = {1.0: self.start}
        self.cache = {}
        self.n_qp = 0

    def __call__(self, lam):
        if lam in self.cache:
            return self.cache[lam]
        b = lam * self.mu_f + (1.0 - lam) * self.mu_h
        start = self.state
        # mu_F's support (all n mixture points) is a good start only near
        # lambda = 1; far from it the QP would insert n points to drop them
        near = [s for s in self.states if s != 1.0 or lam <= 1.25]
        if near:
            best = min(near, key=lambda s: abs(np.log(s / lam)))
            start = self.states[best] if abs(np.log(best / lam)) <= 1.0 else None
        d, self.state, _ = simplex_nearest_point(
            self.Z, b, start=start, method=self.method, gram=self.gram)
        self.states[lam] = self.state
        self.n_qp += 1
        self.cache[lam] = d
        return d


def _embedding_noise(mu_f, mu_h, n, m):
    r"""Root mean square sampling error of :math:`\hat\mu_F - \hat\mu_H`.

    With :math:`a_F` the mean off-diagonal kernel value of the mixture sample,
    :math:`\|\hat\mu_F\|^2 = (1 + (n-1)a_F)/n`, so
    :math:`E\|\hat\mu_F - \mu_F\|^2 = (1 - a_F)/n` is read off the factor;
    the noise is :math:`\sqrt{(1-a_F)/n + (1-a_H)/m}`, the part of
    :math:`\|\hat\mu_F - \hat\mu_H\|^2` that the unbiased MMD removes.
    """
    a_f = (n * float(mu_f @ mu_f) - 1.0) / max(n - 1, 1)
    a_h = (m * float(mu_h @ mu_h) - 1.0) / max(m - 1, 1)
    return float(np.sqrt(max((1.0 - a_f) / n + (1.0 - a_h) / m, 0.0)))


def _bisect(dist, nu, eps, lam_max):
    """Smallest lambda in [1, lam_max] where the slope of d exceeds nu
    (bisection to width eps; the slope by a forward difference of eps/2)."""
    lo, hi = 1.0, float(lam_max)
    while hi - lo > eps:
        mid = 0.5 * (lo + hi)
        slope = (dist(mid + eps / 2) - dist(mid)) / (eps / 2)
        if slope > nu:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


_KM_BACKENDS = ("numpy", "numba", "torch", "cupy")


def _float64(backend):
    if backend.name == "torch":
        import torch

        return torch.float64
    return np.float64


class KernelMeanMPE(BaseMPE):
    __doc__ = r"""Kernel-mean mixture proportion estimator KM1 / KM2.

    Ramaswamy, Scott & Tewari, "Mixture Proportion Estimation via Kernel
    Embedding of Distributions", ICML 2016.

    With the RBF embeddings :math:`\hat\mu_F, \hat\mu_H` of the two samples
    and :math:`\mathcal C` the convex hull of the embedded points of both
    samples, let

    .. math:: \hat d(\lambda) = \min_{w\in\mathcal C}
              \|\lambda\hat\mu_F + (1-\lambda)\hat\mu_H - w\|,\quad \lambda\ge 1.

    :math:`d(\lambda) = 0` as long as :math:`\lambda F + (1-\lambda) H` is a
    distribution, i.e. up to :math:`\lambda^* = 1/(1-\kappa(F|H))`, and grows
    linearly after. The estimate is :math:`\hat\kappa = 1 - 1/\hat\lambda`
    where :math:`\hat\lambda` is found by bisection on the slope of
    :math:`\hat d` (forward differences of step ``epsilon``):

    - KM1 (value/gradient threshold): first :math:`\lambda` whose slope exceeds
      :math:`\nu_1 = 1/\sqrt{\min(m, n)}`;
    - KM2 (gradient rule): slope exceeds
      :math:`\nu_2 = 0.8\,\hat d'(1) + 0.2\,\|\hat\mu_F - \hat\mu_H\|`
      (0.2 weight of the asymptotic slope).

    Each distance is a QP, solved exactly by Wolfe's minimum-norm-point
    active-set method on a factor :math:`K\approx ZZ^\top` (pivoted Cholesky
    to ``1e-10``: exact; a rank-``n_landmarks`` Nystroem factor for large
    samples, its landmarks chosen by ``landmarks``), warm-started across
    :math:`\lambda`. How the QPs are computed (not what): for a full-rank
    (exact) factor the QPs read the inner products of the points from the
    Gram matrix :math:`ZZ^\top` (O(1) each, O(N k) per Wolfe iteration over a
    support of k points, instead of O(r) and O(N r)); a warm start's Cholesky
    factor is computed at once by BLAS / LAPACK instead of point by point;
    each QP starts from the solution at the solved :math:`\lambda` nearest in
    :math:`\log\lambda` (cold when none is within a factor e); the distance
    returned is still :math:`\|Z^\top u - b\|` of the factor itself. Same
    bisection, same estimates (digits, 1797 x 64: KM1 0.015015, KM2 0.143600
    in 1.3-1.9 s instead of 9.2 s, ``benchmarks/results/mpe_speed_realsize.md``).

    Unlike the reference code (search range :math:`\lambda\le 8`, hence
    :math:`\hat\kappa\le 0.875`), the range here is
    :math:`\lambda\le` ``lambda_max`` (default 1000, :math:`\hat\kappa\le 0.999`).

    Parameters
    ----------
    variant : {'KM1', 'KM2'}, default='KM2'
    kernel_width : float or None
        RBF width :math:`\sigma` of :math:`\exp(-\|x-x'\|^2/2\sigma^2)`;
        None selects it by maximum MMD over ``width_factors`` x median distance.
    width_factors : tuple of float
    epsilon : float, default=0.04
        Bisection tolerance and slope step in :math:`\lambda`.
    lambda_max : float, default=1000
    approximation : {'auto', 'exact', 'nystroem'}, default='auto'
        'auto' is 'exact' up to 5000 points in all, else 'nystroem'.
    n_landmarks : int, default=500
        Rank of the low-rank factor ('nystroem'). Check
        ``residual_trace_ / N`` (N = m + n) after a fit; see
        ``benchmarks/results/mpe_nystroem.md`` and the docs page for what
        residual kept KM1 / KM2 how close to the exact estimates.
    landmarks : {'rpcholesky', 'pivoted', 'uniform'}, default='rpcholesky'
        How the rank-``n_landmarks`` factor is built (all three are the
        Nystroem approximation on a set of landmark points; they differ in
        the choice of the points):

        - 'rpcholesky': randomly pivoted Cholesky (Chen, Epperly, Tropp &
          Webber, CPAM 2025): each landmark drawn with probability
          proportional to the residual diagonal of the kernel matrix;
        - 'pivoted': greedy pivoted (incomplete) Cholesky (Fine & Scheinberg
          2001; Bach & Jordan 2005): each landmark the point of largest
          residual diagonal;
        - 'uniform': landmarks drawn uniformly at random (the classic
          Nystroem method).

        The two pivoted rules stop early, at a smaller rank, once every
        residual diagonal entry is below 1e-10 (the factor is then exact).
    qp_solver : {'wolfe', 'nnls'}, default='wolfe'
        How each distance QP is solved (:func:`simplex_nearest_point`):
        Wolfe's active-set method with Cholesky updates, warm-started along
        the bisection, or one SciPy NNLS problem per distance. Both are exact;
        Wolfe was faster in every case of ``benchmarks/results/mpe_qp.md``.
    backend : {'auto', 'numpy', 'numba', 'torch', 'cupy'} or None, default=None
        Where the kernel matrices (the MMD width grid, the pivoted Cholesky
        columns or the Nystroem block :math:`K_{n,r}`) are computed, resolved
        by :func:`mixstat._backend.resolve_backend` (the parameter, then
        ``mixstat.config_context``, then the input's namespace, then Numba,
        then NumPy). 'torch' / 'cupy' compute them on the device (torch:
        the input tensors' device, else ``config_context(device=...)``, else
        CUDA when available), in float64; the kernel factor then comes back to
        the host, where the QPs (Wolfe's algorithm, Numba-compiled when Numba
        is installed, whatever the backend) and the r x r eigendecomposition
        run. 'numpy' and 'numba' compute the kernels with SciPy's ``cdist``.
        Inputs may be torch / CuPy arrays; every fitted attribute is a Python
        float or NumPy array.
    """ + BOOTSTRAP_DOC + """

    Attributes
    ----------
    proportion_ : float
    km1_, km2_ : float
        Both estimates (``proportion_`` is the chosen one).
    kernel_width_ : float
    lambda_ : float
    thresholds_ : dict
    distance_ : float
        :math:`\\|\\hat\\mu_F - \\hat\\mu_H\\|`.
    rank_ : int
        Columns of the kernel factor.
    n_qp_ : int
        Number of QPs solved.
    qp_solver_ : str
    residual_trace_ : float
        :math:`\\operatorname{tr}(K - ZZ^\\top)`, the kernel mass the factor
        leaves out (0 up to 1e-10 per point for 'exact').
    backend_ : str
        The backend the kernel matrices were computed on.
    proportion_interval_ : tuple, when ``n_bootstrap > 0``
    """

    _summary_fields = (("KM1 estimate", "km1_"), ("KM2 estimate", "km2_"), ("lambda at the threshold", "lambda_"), ("kernel width", "kernel_width_"), ("||mu_F - mu_H|| (RKHS)", "distance_"), ("kernel factor rank", "rank_"), ("approximation", "approximation_"), ("QPs solved", "n_qp_"))
    _parameter_constraints = {
        **BaseMPE._parameter_constraints,
        "variant": [StrOptions({"KM1", "KM2"})],
        "kernel_width": [None, Interval(Real, 0, None, closed="neither")],
        "width_factors": ["array-like"],
        "epsilon": [Interval(Real, 0, 1, closed="neither")],
        "lambda_max": [Interval(Real, 1, None, closed="neither")],
        "approximation": [StrOptions({"auto", "exact", "nystroem"})],
        "n_landmarks": [Interval(Integral, 2, None, closed="left")],
        "landmarks": [StrOptions({"pivoted", "rpcholesky", "uniform"})],
        "qp_solver": [StrOptions({"wolfe", "nnls"})],
        "noise_floor": [Interval(Real, 0, None, closed="left")],
        "backend": [None, StrOptions({"auto", "numpy", "numba", "torch", "cupy"})],
    }

    def __init__(self, variant="KM2", *, kernel_width=None,
                 width_factors=(0.1, 10**-0.5, 1.0, 10**0.5, 10.0), epsilon=0.04,
                 lambda_max=1000.0, approximation="auto", n_landmarks=500,
                 landmarks="rpcholesky", qp_solver="wolfe", noise_floor=1.0, backend=None,
                 n_bootstrap=0,
                 confidence=0.95, n_jobs=None, verbose=0,
                 random_state=None):
        self.variant = variant
        self.kernel_width = kernel_width
        self.width_factors = width_factors
        self.epsilon = epsilon
        self.lambda_max = lambda_max
        self.approximation = approximation
        self.n_landmarks = n_landmarks
        self.landmarks = landmarks
        self.qp_solver = qp_solver
        self.noise_floor = noise_floor
        self.backend = backend
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _bootstrap(self, X_h, X_f, rng):
        # the refits resolve ``backend`` again: keep them on the fit's backend
        device = getattr(self, "_device", None)
        with config_context(backend=self.backend_,
                            device=device if self.backend_ == "torch" else None):
            super()._bootstrap(X_h, X_f, rng)

    def _features(self, X, width, rng):
        approx = self.approximation
        if approx == "auto":
            approx = "exact" if X.shape[0] <= 5000 else "nystroem"
        self.approximation_ = approx
        if approx == "exact":
            Z, self.residual_trace_ = pivoted_cholesky_features(X, width)
            Z = to_numpy(Z)
        elif self.landmarks in ("pivoted", "rpcholesky"):
            Z, self.residual_trace_ = pivoted_cholesky_features(
                X, width, max_rank=self.n_landmarks,
                pivoting="greedy" if self.landmarks == "pivoted" else "random",
                random_state=rng)
            Z = to_numpy(Z)
        else:
            Z = to_numpy(nystroem_features(X, width, self.n_landmarks, rng))
            self.residual_trace_ = float(X.shape[0] - np.einsum("ij,ij->", Z, Z))
        return Z

    def _estimate(self, X_h, X_f, rng):
        backend = self.__dict__.pop("_fit_backend", None)
        if backend is None:  # a bootstrap refit, or a direct call
            backend = resolve_backend(self.backend, allowed=_KM_BACKENDS)
        self.backend_ = backend.name
        self._device = None if backend.device is None else str(backend.device)
        n, m = len(X_f), len(X_h)
        if backend.name in ("torch", "cupy"):
            X_h = backend.asarray(X_h, dtype=_float64(backend))
            X_f = backend.asarray(X_f, dtype=_float64(backend))
        factors = np.asarray(self.width_factors, dtype=float).reshape(-1)
        if factors.size == 0 or not np.all(np.isfinite(factors)) or np.any(factors <= 0):
            raise ValueError("width_factors must be a non-empty sequence of positive numbers; "
                             f"got {self.width_factors!r}.")
        if self.kernel_width is None:
            width = mmd_width(X_h, X_f, np.asarray(self.width_factors, float), rng)
        else:
            width = float(self.kernel_width)
        xp = array_namespace(X_f, X_h)
        X = xp.concat([X_f, X_h], axis=0) if backend.name in ("torch", "cupy") \
            else np.vstack([X_f, X_h])
        Z = self._features(X, width, rng)
        self.qp_solver_ = self.qp_solver
        dist = _HullDistance(Z, n, method=self.qp_solver)
        gap = float(np.linalg.norm(dist.mu_f - dist.mu_h))
        if gap <= 1e-10:
            raise ValueError("The kernel means of the two samples coincide: "
                             "the proportion is not identifiable from them.")
        eps = float(self.epsilon)
        # the QPs are many small BLAS calls: threads only add synchronisation
        with threadpool_limits(limits=1, user_api="blas"):
            return self._bisections(dist, gap, eps, m, n, width, Z)

    def _bisections(self, dist, gap, eps, m, n, width, Z):
        init_slope = (dist(1.0 + eps) - dist(1.0)) / eps
        noise = _embedding_noise(dist.mu_f, dist.mu_h, n, m)
        nu2 = max(0.8 * init_slope + 0.2 * gap, self.noise_floor * noise)
        nu1 = 1.0 / np.sqrt(min(m, n))
        if nu1 >= gap:
            warnings.warn(
                f"KM1 threshold 1/sqrt(min(m, n)) = {nu1:.3g} is above the largest "
                f"possible slope {gap:.3g}: KM1 falls back to the KM2 threshold.",
                UserWarning, stacklevel=3)
            nu1 = nu2
        lam1 = _bisect(dist, nu1, eps, self.lambda_max)
        lam2 = _bisect(dist, nu2, eps, self.lambda_max)
        self.km1_ = float(np.clip(1.0 - 1.0 / lam1, 0.0, 1.0))
        self.km2_ = float(np.clip(1.0 - 1.0 / lam2, 0.0, 1.0))
        self.lambda_ = lam1 if self.variant == "KM1" else lam2
        self.kernel_width_ = width
        self.thresholds_ = {"KM1": float(nu1), "KM2": float(nu2)}
        self.embedding_noise_ = float(noise)
        self.distance_ = gap
        self.rank_ = int(Z.shape[1])
        self.n_qp_ = dist.n_qp
        return self.km1_ if self.variant == "KM1" else self.km2_
