r"""Weighted Lasso / elastic net: coordinate descent (Numba kernel and plain
NumPy), proximal gradient (FISTA, array API, for GPU arrays), and the duality gap.

All solvers minimise the same objective, on the *sum* scale that EM needs
(weights are responsibilities times sample weights, not normalised):

.. math::
    \min_{b_0,\beta}\ \tfrac12 \sum_i w_i (y_i - b_0 - x_i^\top\beta)^2
    + \lambda_1 \|\beta\|_1 + \tfrac{\lambda_2}{2}\|\beta\|_2^2 .

scikit-learn's ``Lasso(alpha)`` with ``sample_weight=w`` is this problem with
:math:`\lambda_1 = \alpha \sum_i w_i` (scikit-learn rescales the weights to
sum to ``n_samples`` and divides the loss by it); ``ElasticNet(alpha,
l1_ratio)`` has :math:`\lambda_1 = \alpha\rho\sum w`,
:math:`\lambda_2 = \alpha(1-\rho)\sum w`.

The intercept is never penalised; it is handled exactly by centring on the
weighted means, without copying ``X``: the kernels work on the residual
:math:`r = (y-\bar y) - (X-\bar x)\beta` and update it in place (O(n) per
coordinate). The stop is the duality gap of the centred problem, relative to
:math:`\sum_i w_i (y_i-\bar y)^2` as in scikit-learn.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as array_device
from array_api_compat import is_array_api_obj

from .._backend import has_module, lazy_njit, numba_available, to_numpy

__all__ = [
    "EnetResult",
    "weighted_enet_cd",
    "weighted_enet_fista",
    "enet_duality_gap",
    "enet_lambda_max",
    "soft_threshold",
]


class EnetResult(NamedTuple):
    """Solution of a weighted elastic-net problem."""

    coef: object
    intercept: float
    gap: float
    n_iter: int


def soft_threshold(z, t):
    r"""Soft thresholding :math:`\mathrm{sign}(z)\max(|z|-t, 0)` (array API)."""
    xp = array_namespace(z)
    return xp.sign(z) * xp.clip(xp.abs(z) - t, 0.0, None)


# ----------------------------------------------------------- CD kernel ---
@lazy_njit
def _enet_cd_kernel(X, yc, w, xbar, h, coef, r, lam1, lam2, features,
                    max_sweeps, tol, active_set):  # pragma: no cover - jitted
    """Coordinate descent with residual updates, active sets and a gap stop.

    ``coef`` and ``r`` are updated in place. ``features`` lists the
    coordinates a full sweep visits (the others stay fixed). Returns
    ``(n_sweeps, gap)``; ``gap`` is -1 when ``tol <= 0`` (no gap computed).
    """
    n = X.shape[0]
    n_feat = features.shape[0]
    active = np.empty(n_feat, dtype=np.int64)
    tol_abs = 0.0
    for i in range(n):
        tol_abs += w[i] * yc[i] * yc[i]
    tol_abs *= tol
    n_sweeps = 0
    gap = -1.0
    while n_sweeps < max_sweeps:
        # ---- full sweep over the allowed features
        dmax = 0.0
        cmax = 0.0
        for jj in range(n_feat):
            j = features[jj]
            old = coef[j]
            if h[j] <= 0.0:
                new = 0.0
            else:
                g = 0.0
                xb = xbar[j]
                for i in range(n):
                    g += w[i] * (X[i, j] - xb) * r[i]
                z = g + h[j] * old
                if z > lam1:
                    new = (z - lam1) / (h[j] + lam2)
                elif z < -lam1:
                    new = (z + lam1) / (h[j] + lam2)
                else:
                    new = 0.0
            if new != old:
                d = new - old
                xb = xbar[j]
                for i in range(n):
                    r[i] -= (X[i, j] - xb) * d
                coef[j] = new
                if abs(d) > dmax:
                    dmax = abs(d)
            if abs(new) > cmax:
                cmax = abs(new)
        n_sweeps += 1
        if tol > 0.0:
            # ---- duality gap of the centred problem
            gap = _restricted_gap(X, w, r, xbar, h, coef, features, n_feat, lam1, lam2)
            if gap <= tol_abs:
                break
        if not active_set or n_sweeps >= max_sweeps:
            continue
        # ---- sweeps restricted to the non-zero coordinates
        n_active = 0
        for jj in range(n_feat):
            j = features[jj]
            if coef[j] != 0.0:
                active[n_active] = j
                n_active += 1
        if n_active == 0:
            continue
        while n_sweeps < max_sweeps:
            dmax = 0.0
            cmax = 0.0
            for jj in range(n_active):
                j = active[jj]
                old = coef[j]
                g = 0.0
                xb = xbar[j]
                for i in range(n):
                    g += w[i] * (X[i, j] - xb) * r[i]
                z = g + h[j] * old
                if z > lam1:
                    new = (z - lam1) / (h[j] + lam2)
                elif z < -lam1:
                    new = (z + lam1) / (h[j] + lam2)
                else:
                    new = 0.0
                if new != old:
                    d = new - old
                    for i in range(n):
                        r[i] -= (X[i, j] - xb) * d
                    coef[j] = new
                    if abs(d) > dmax:
                        dmax = abs(d)
                if abs(new) > cmax:
                    cmax = abs(new)
            n_sweeps += 1
            if cmax == 0.0 or dmax <= 1e-3 * max(tol, 1e-10) ** 0.5 * cmax:
                break
    return n_sweeps, gap


def _enet_cd_numpy(X, yc, w, xbar, h, coef, r, lam1, lam2, features,
                   max_sweeps, tol, active_set):
    """The same algorithm as :func:`_enet_cd_kernel`, vectorised over samples
    with NumPy (used when Numba is absent)."""
    tol_abs = tol * float(np.dot(w, yc * yc))
    n_sweeps = 0
    gap = -1.0

    def sweep(idx):
        dmax = 0.0
        cmax = 0.0
        for j in idx:
            old = coef[j]
            if h[j] <= 0.0:
                new = 0.0
            else:
                xc = X[:, j] - xbar[j]
                z = float(np.dot(w * xc, r)) + h[j] * old
                new = np.sign(z) * max(abs(z) - lam1, 0.0) / (h[j] + lam2)
            if new != old:
                d = new - old
                r[:] -= (X[:, j] - xbar[j]) * d
                coef[j] = new
                dmax = max(dmax, abs(d))
            cmax = max(cmax, abs(new))
        return dmax, cmax

    while n_sweeps < max_sweeps:
        sweep(features)
        n_sweeps += 1
        if tol > 0.0:
            gap = _gap_numpy(X, xbar, yc, w, r, coef, h, lam1, lam2, features)
            if gap <= tol_abs:
                break
        if not active_set or n_sweeps >= max_sweeps:
            continue
        active = features[coef[features] != 0.0]
        if active.size == 0:
            continue
        while n_sweeps < max_sweeps:
            dmax, cmax = sweep(active)
            n_sweeps += 1
            if cmax == 0.0 or dmax <= 1e-3 * max(tol, 1e-10) ** 0.5 * cmax:
                break
    return n_sweeps, gap


# ------------------------------------------------ working-set solver -----
_WS_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}  # vectorised sums; inf / NaN kept
_WS_P0 = 10  # first working-set size
_WS_INNER = 0.3  # the subproblem is solved to this fraction of the full gap
_ANDERSON_K = 5  # extrapolation from the last K + 1 iterates; 0: none


@lazy_njit(fastmath=_WS_FASTMATH)
def _enet_ws_inner_kernel(X, w, xbar, h, coef, r, lam1, lam2, ws, max_epochs, tol_abs,
                          anderson):  # pragma: no cover - jitted
    """Coordinate descent on the working set ``ws`` with Anderson extrapolation.

    ``coef`` and ``r`` are updated in place; the coordinates outside ``ws``
    stay fixed. Every ``anderson + 1`` epochs the last iterates are combined
    (Anderson, as in skglm), the combination is kept when it lowers the
    restricted objective, and the duality gap of the restricted problem is
    checked. Returns ``(n_epochs, gap)``.
    """
    n = X.shape[0]
    m = ws.shape[0]
    K = anderson
    block = K + 1 if K > 0 else 5
    hist = np.empty((K + 1, m))
    U = np.empty((K, m))
    C = np.empty((K, K))
    z = np.empty(K)
    c_acc = np.empty(m)
    r_acc = np.empty(n)
    epoch = 0
    gap = np.inf
    while epoch < max_epochs:
        for jj in range(m):
            j = ws[jj]
            old = coef[j]
            xb = xbar[j]
            if h[j] <= 0.0:
                new = 0.0
            else:
                g = 0.0
                for i in range(n):
                    g += w[i] * (X[i, j] - xb) * r[i]
                zj = g + h[j] * old
                if zj > lam1:
                    new = (zj - lam1) / (h[j] + lam2)
                elif zj < -lam1:
                    new = (zj + lam1) / (h[j] + lam2)
                else:
                    new = 0.0
            if new != old:
                d = new - old
                for i in range(n):
                    r[i] -= (X[i, j] - xb) * d
                coef[j] = new
        epoch += 1
        slot = (epoch - 1) % block
        if K > 0:
            for jj in range(m):
                hist[slot, jj] = coef[ws[jj]]
            if slot == K:
                # Anderson: the affine combination of the last K + 1 iterates
                # whose differences cancel best, c = C^-1 1 / 1^T C^-1 1
                for k in range(K):
                    for jj in range(m):
                        U[k, jj] = hist[k + 1, jj] - hist[k, jj]
                for a in range(K):
                    for b in range(a, K):
                        s = 0.0
                        for jj in range(m):
                            s += U[a, jj] * U[b, jj]
                        C[a, b] = s
                        C[b, a] = s
                ok = _solve_spd_ones(C, z)
                if ok:
                    for jj in range(m):
                        s = 0.0
                        for k in range(K):
                            s += z[k] * hist[k + 1, jj]
                        c_acc[jj] = s
                    for i in range(n):
                        r_acc[i] = r[i]
                    for jj in range(m):
                        j = ws[jj]
                        d = c_acc[jj] - coef[j]
                        if d != 0.0:
                            xb = xbar[j]
                            for i in range(n):
                                r_acc[i] -= (X[i, j] - xb) * d
                    f_cur = 0.0
                    f_acc = 0.0
                    for i in range(n):
                        f_cur += w[i] * r[i] * r[i]
                        f_acc += w[i] * r_acc[i] * r_acc[i]
                    l1c = 0.0
                    l1a = 0.0
                    l2c = 0.0
                    l2a = 0.0
                    for jj in range(m):
                        j = ws[jj]
                        l1c += abs(coef[j])
                        l1a += abs(c_acc[jj])
                        l2c += coef[j] * coef[j]
                        l2a += c_acc[jj] * c_acc[jj]
                    f_cur = 0.5 * f_cur + 0.5 * lam2 * l2c
                    f_acc = 0.5 * f_acc + 0.5 * lam2 * l2a
                    if l1c > 0.0:
                        f_cur += lam1 * l1c
                    if l1a > 0.0:
                        f_acc += lam1 * l1a
                    if f_acc < f_cur:
                        for jj in range(m):
                            coef[ws[jj]] = c_acc[jj]
                        for i in range(n):
                            r[i] = r_acc[i]
        if slot == block - 1 or epoch >= max_epochs:
            # ---- duality gap of the problem restricted to ws
            gap = _restricted_gap(X, w, r, xbar, h, coef, ws, m, lam1, lam2)
            if gap <= tol_abs:
                break
    return epoch, gap


@lazy_njit
def _restricted_gap(X, w, r, xbar, h, coef, features, n_feat, lam1,
                    lam2):  # pragma: no cover - jitted
    """Duality gap of the centred weighted elastic net restricted to
    ``features[:n_feat]``, at residuals ``r`` (one pass over those columns).

    The response of the restricted problem is :math:`r + X^c_F b_F`, so
    :math:`\langle r, \text{response}\rangle_w = \|r\|_w^2 + \sum_{j\in F} b_j g_j`.
    """
    n = X.shape[0]
    r2 = 0.0
    for i in range(n):
        r2 += w[i] * r[i] * r[i]
    ry = r2
    dual_norm = 0.0
    l1 = 0.0
    l2 = 0.0
    newton = 0.0
    for jj in range(n_feat):
        j = features[jj]
        g = 0.0
        xb = xbar[j]
        for i in range(n):
            g += w[i] * (X[i, j] - xb) * r[i]
        ry += coef[j] * g
        g -= lam2 * coef[j]
        if abs(g) > dual_norm:
            dual_norm = abs(g)
        if h[j] + lam2 > 0.0:
            newton += g * g / (h[j] + lam2)
        l1 += abs(coef[j])
        l2 += coef[j] * coef[j]
    return _gap_value(r2, ry, dual_norm, l1, l2, newton, lam1, lam2)


@lazy_njit
def _gap_value(r2, ry, dual_norm, l1, l2, newton, lam1,
               lam2):  # pragma: no cover - jitted
    """The duality gap from its sums (see :func:`_restricted_gap`); with
    ``lam1 = inf`` and every slope at 0 the l1 term is 0, not inf * 0."""
    if lam1 > 0.0:
        if dual_norm > lam1:
            const = lam1 / dual_norm
            gap = 0.5 * (r2 + r2 * const * const)
        else:
            const = 1.0
            gap = r2
        return gap + ((lam1 * l1 if l1 > 0.0 else 0.0) - const * ry
                      + 0.5 * lam2 * (1.0 + const * const) * l2)
    return newton


@lazy_njit
def _solve_spd_ones(C, z):  # pragma: no cover - jitted
    """``z = C^-1 1 / (1^T C^-1 1)`` for a small symmetric PSD ``C`` (Cholesky
    with a relative ridge); False when ``C`` is numerically singular."""
    K = C.shape[0]
    tr = 0.0
    for k in range(K):
        tr += C[k, k]
    if not tr > 0.0 or tr == np.inf:
        return False
    L = np.zeros((K, K))
    for a in range(K):
        for b in range(a + 1):
            s = C[a, b] + (1e-10 * tr if a == b else 0.0)
            for k in range(b):
                s -= L[a, k] * L[b, k]
            if a == b:
                if s <= 1e-14 * tr:
                    return False
                L[a, a] = np.sqrt(s)
            else:
                L[a, b] = s / L[b, b]
    for a in range(K):  # L y = 1
        s = 1.0
        for k in range(a):
            s -= L[a, k] * z[k]
        z[a] = s / L[a, a]
    for a in range(K - 1, -1, -1):  # L^T x = y
        s = z[a]
        for k in range(a + 1, K):
            s -= L[k, a] * z[k]
        z[a] = s / L[a, a]
    tot = 0.0
    for k in range(K):
        tot += z[k]
    if tot == 0.0 or not np.isfinite(tot):
        return False
    for k in range(K):
        z[k] /= tot
    return True


def _enet_ws_inner_numpy(X, w, xbar, h, coef, r, lam1, lam2, ws, max_epochs, tol_abs,
                         anderson):
    """The same algorithm as :func:`_enet_ws_inner_kernel`, vectorised over
    samples with NumPy (used when Numba is absent)."""
    K = anderson
    block = K + 1 if K > 0 else 5
    m = ws.size
    hist = np.empty((K + 1, m))
    Xc = [X[:, j] - xbar[j] for j in ws]  # views would not be centred: one column each
    epoch = 0
    gap = np.inf
    while epoch < max_epochs:
        for jj, j in enumerate(ws):
            old = coef[j]
            if h[j] <= 0.0:
                new = 0.0
            else:
                zj = float(np.dot(w * Xc[jj], r)) + h[j] * old
                new = np.sign(zj) * max(abs(zj) - lam1, 0.0) / (h[j] + lam2)
            if new != old:
                r -= Xc[jj] * (new - old)
                coef[j] = new
        epoch += 1
        slot = (epoch - 1) % block
        if K > 0:
            hist[slot] = coef[ws]
            if slot == K:
                U = np.diff(hist, axis=0)
                z = np.empty(K)
                if _solve_spd_ones.py_func(U @ U.T, z):
                    c_acc = z @ hist[1:]
                    d = c_acc - coef[ws]
                    nz = np.flatnonzero(d)
                    r_acc = r.copy()
                    for jj in nz:
                        r_acc -= Xc[jj] * d[jj]
                    c_cur = coef[ws]
                    l1c, l1a = np.abs(c_cur).sum(), np.abs(c_acc).sum()
                    f_cur = 0.5 * np.dot(w * r, r) + 0.5 * lam2 * (c_cur @ c_cur)
                    f_acc = (0.5 * np.dot(w * r_acc, r_acc)
                             + 0.5 * lam2 * (c_acc @ c_acc))
                    f_cur += lam1 * l1c if l1c > 0 else 0.0
                    f_acc += lam1 * l1a if l1a > 0 else 0.0
                    if f_acc < f_cur:
                        coef[ws] = c_acc
                        r[:] = r_acc
        if slot == block - 1 or epoch >= max_epochs:
            gap = _gap_numpy(X, xbar, None, w, r, coef, h, lam1, lam2, ws)
            if gap <= tol_abs:
                break
    return epoch, gap


def _enet_ws_solve(X, yc, w, xbar, h, coef, r, lam1, lam2, features, max_sweeps, tol,
                   use_numba, p0=_WS_P0, anderson=_ANDERSON_K):
    r"""Working-set coordinate descent (Johnson & Guestrin 2015; Massias et al.
    2018, celer; Bertrand et al. 2022, skglm).

    Each outer iteration makes one pass over the allowed columns: the
    gradient :math:`g_j = \sum_i w_i (x_{ij}-\bar x_j) r_i`, the duality gap of
    the whole problem (the stop), and the scores that rank the features: the
    support first, then the zero coefficients by their violation of the
    optimality condition, :math:`|g_j| - \lambda_1`. The working set is the
    best :math:`\max(p_0, 2\,|\mathrm{supp}|)` of them; CD with Anderson
    extrapolation solves the problem restricted to it to a duality gap of
    ``0.3 x`` the current full gap, and the loop goes on. The solution is the
    one of the plain full-sweep CD, to the duality-gap tolerance.

    Same arguments as :func:`_enet_cd_kernel` (``coef`` and ``r`` are
    updated in place). ``n_sweeps`` counts the full passes and the epochs on
    the working sets. Returns ``(n_sweeps, gap)``.
    """
    tol_abs = tol * float(np.dot(w, yc * yc))
    inner = _enet_ws_inner_kernel if use_numba else _enet_ws_inner_numpy
    hpos = h[features] > 0.0
    n_feat = features.size
    n_sweeps = 0
    gap = np.inf
    while True:
        g, gap = _gap_numpy(X, xbar, yc, w, r, coef, h, lam1, lam2, features,
                            return_grad=True)
        n_sweeps += 1
        if gap <= tol_abs or n_sweeps >= max_sweeps:
            break
        cf = coef[features]
        support = cf != 0.0
        score = np.where(support, np.inf, np.abs(g) - lam1)
        score[~hpos & ~support] = -np.inf  # constant columns never move
        size = min(n_feat, max(p0, 2 * int(support.sum())))
        if size < n_feat:
            top = np.argpartition(score, n_feat - size)[n_feat - size:]
            ws = np.sort(features[top])
        else:
            ws = features
        epochs, _ = inner(X, w, xbar, h, coef, r, float(lam1), float(lam2), ws,
                          int(max_sweeps - n_sweeps), _WS_INNER * gap, int(anderson))
        n_sweeps += epochs
    return n_sweeps, gap


def _gap_numpy(X, xbar, yc, w, r, coef, h, lam1, lam2, features=None,
               return_grad=False):
    wr = w * r
    if features is not None and 2 * features.size < X.shape[1]:
        g = X[:, features].T @ wr  # a copy of the few allowed columns only
    else:
        g = X.T @ wr  # no copy of X
        if features is not None:
            g = g[features]
    if features is not None:
        xbar, coef, h = xbar[features], coef[features], h[features]
    g = g - xbar * float(np.sum(wr))
    r2 = float(np.dot(wr, r))
    # the response of the (restricted) problem is r + Xc_F b_F
    ry = r2 + float(coef @ g)
    g = g - lam2 * coef
    dual_norm = float(np.max(np.abs(g))) if g.size else 0.0
    if lam1 > 0.0:
        if dual_norm > lam1:
            const = lam1 / dual_norm
            gap = 0.5 * (r2 + r2 * const * const)
        else:
            const = 1.0
            gap = r2
        l1 = float(np.abs(coef).sum())  # lam1 = inf (every slope held at 0): no inf * 0
        gap += (lam1 * l1 if l1 else 0.0) - const * ry + 0.5 * lam2 * (1 + const**2) * (coef @ coef)
    else:
        denom = h + lam2
        ok = denom > 0
        gap = np.sum(g[ok] ** 2 / denom[ok])
    return (g, float(gap)) if return_grad else float(gap)


@lazy_njit
def _col_stats_kernel(X, w, sw, fit_intercept, xbar, h, raw):  # pragma: no cover - jitted
    """Per column: weighted mean, centred and raw second moments, no temporary.

    One pass (``h = s2 - s^2 / sw``) when that loses at most ~4 digits to
    cancellation; a second, centred pass over the column otherwise.
    """
    n, p = X.shape
    for j in range(p):
        s = 0.0
        s2 = 0.0
        for i in range(n):
            s += w[i] * X[i, j]
            s2 += w[i] * X[i, j] * X[i, j]
        if not fit_intercept:
            xbar[j] = 0.0
            h[j] = s2
            raw[j] = s2
            continue
        m = s / sw
        c = s2 - s * m
        if c <= 1e-4 * s2:
            c = 0.0
            for i in range(n):
                d = X[i, j] - m
                c += w[i] * d * d
        xbar[j] = m
        h[j] = c
        raw[j] = s2


def _weighted_stats(X, y, w, fit_intercept, chunk=256, use_numba=None):
    """Weighted means and centred second moments ``h_j = sum_i w_i (x_ij - xbar_j)^2``.

    ``h`` is computed by the two-pass formula (Numba kernel, or NumPy on
    blocks of columns: no full copy of ``X``); a column that is constant to
    working precision gets ``h_j = 0``, so that its coefficient stays exactly
    zero.
    """
    sw = float(w.sum())
    p = X.shape[1]
    ybar = float(w @ y) / sw if fit_intercept else 0.0
    if use_numba is None:
        use_numba = numba_available()
    if use_numba:
        xbar = np.empty(p)
        h = np.empty(p)
        raw = np.empty(p)
        _col_stats_kernel(X, w, sw, bool(fit_intercept), xbar, h, raw)
        h[h <= 1e-12 * raw] = 0.0
        return xbar, ybar, h
    xbar = (w @ X) / sw if fit_intercept else np.zeros(p)
    h = np.empty(p)
    raw = np.empty(p)
    for j0 in range(0, p, chunk):
        blk = X[:, j0:j0 + chunk]
        raw[j0:j0 + chunk] = w @ (blk * blk)
        if fit_intercept:
            c = blk - xbar[j0:j0 + chunk]
            h[j0:j0 + chunk] = w @ (c * c)
        else:
            h[j0:j0 + chunk] = raw[j0:j0 + chunk]
    # constant to working precision (relative to the raw second moment)
    h[h <= 1e-12 * raw] = 0.0
    return xbar, ybar, h


def weighted_enet_cd(X, y, sample_weight=None, lam1=0.0, lam2=0.0, coef=None,
                     fit_intercept=True, max_iter=1000, tol=1e-4, active_set=True,
                     features=None, use_numba=None, working_set=True):
    r"""Weighted elastic net by coordinate descent (sum-scale objective above).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Fortran order avoids strided access; no copy is made when it is
        already a float64 NumPy array. Other CPU arrays (torch tensors,
        array-api-strict) are converted to NumPy and the coefficients are
        returned in the input's namespace.
    y : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (ones when None).
    lam1, lam2 : float
        :math:`\lambda_1` (l1) and :math:`\lambda_2` (ridge), sum scale.
    coef : ndarray of shape (n_features,), optional
        Warm start (copied).
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Maximum number of sweeps (full and active-set sweeps both count).
        ``max_iter=1`` is one full sweep: the generalised-EM M-step.
    tol : float, default=1e-4
        Stop when the duality gap is below ``tol * sum_i w_i (y_i - ybar)^2``;
        ``tol=0`` computes no gap and runs ``max_iter`` sweeps.
    active_set : bool, default=True
        After each full sweep, iterate on the non-zero coordinates only.
    features : int ndarray, optional
        Coordinates that may move (the others keep their value in ``coef``).
    use_numba : bool, optional
        Use the Numba kernel (default: when Numba is installed and allowed).
    working_set : bool, default=True
        When ``max_iter > 1`` and ``tol > 0``: solve on a growing working set
        of features ranked by their violation of the optimality conditions,
        with Anderson extrapolation of the CD iterates and a full duality-gap
        check between working sets (celer, skglm; see :func:`_enet_ws_solve`).
        Same solution to ``tol``; ``active_set`` is then unused. False: plain
        full sweeps (with ``active_set``), the generalised-EM M-step's
        algorithm.

    Returns
    -------
    EnetResult
        ``coef``, ``intercept``, ``gap`` (-1 when not computed) and ``n_iter``
        (sweeps). With all weights zero, the warm start is returned unchanged
        (intercept 0, ``n_iter=0``).
    """
    back = _namespace_back(X)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    y = np.asarray(to_numpy(y), dtype=np.float64).reshape(-1)
    n, p = X.shape
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}")
    w = (np.ones(n) if sample_weight is None
         else np.asarray(to_numpy(sample_weight), dtype=np.float64).reshape(-1))
    if w.shape[0] != n:
        raise ValueError(f"X has {n} samples but sample_weight has {w.shape[0]}")
    coef = (np.zeros(p) if coef is None
            else np.array(to_numpy(coef), dtype=np.float64, copy=True).reshape(-1))
    if coef.shape[0] != p:
        raise ValueError(f"X has {p} features but the warm start coef has {coef.shape[0]}")
    if not float(w.sum()) > 0.0:
        # no weight at all (e.g. an emptied mixture component): nothing to fit;
        # the warm start is returned unchanged, with a zero intercept
        return EnetResult(back(coef), 0.0, 0.0, 0)
    if use_numba is None or (use_numba and not has_module("numba")):
        use_numba = numba_available()
    xbar, ybar, h = _weighted_stats(X, y, w, fit_intercept, use_numba=use_numba)
    yc = y - ybar
    r = yc - X @ coef + float(xbar @ coef) if coef.any() else yc.copy()
    feats = np.arange(p, dtype=np.int64) if features is None else np.asarray(features, dtype=np.int64)
    if feats.size and (feats.min() < 0 or feats.max() >= p):
        raise ValueError(f"features must index the {p} columns of X")
    if working_set and max_iter > 1 and tol > 0:
        n_iter, gap = _enet_ws_solve(X, yc, w, xbar, h, coef, r, float(lam1),
                                     float(lam2), feats, int(max_iter), float(tol),
                                     use_numba)
    else:
        solver = _enet_cd_kernel if use_numba else _enet_cd_numpy
        n_iter, gap = solver(X, yc, w, xbar, h, coef, r, float(lam1), float(lam2),
                             feats, int(max_iter), float(tol), bool(active_set))
    intercept = ybar - float(xbar @ coef) if fit_intercept else 0.0
    return EnetResult(back(coef), intercept, float(gap), int(n_iter))


def _namespace_back(a):
    """A function that moves a NumPy result back to the namespace (and device)
    of ``a``; the identity for NumPy input."""
    if isinstance(a, np.ndarray) or not is_array_api_obj(a):
        return lambda out: out
    xp = array_namespace(a)
    dev = array_device(a)
    return lambda out: xp.asarray(out, device=dev)


# ------------------------------------------------------ array-API parts ---
def enet_duality_gap(X, y, sample_weight, coef, intercept=None, lam1=0.0, lam2=0.0,
                     fit_intercept=True):
    r"""Duality gap of the weighted elastic net at ``(intercept, coef)`` (array API).

    With ``fit_intercept`` the intercept is profiled out (set to its optimal
    value given ``coef``) and the gap is that of the centred problem, zero
    exactly at the optimum; ``intercept`` is accepted for symmetry and ignored.
    The dual point is the scaled residual, as in scikit-learn's coordinate
    descent, so the gap is an upper bound on the suboptimality of ``coef``.
    For ``lam1 = 0`` it returns the Newton-decrement bound
    :math:`\sum_j g_j^2 / (h_j + \lambda_2)` of the smooth problem instead.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    sample_weight : array of shape (n_samples,) or None
    coef : array of shape (n_features,)
    intercept : ignored
    lam1, lam2 : float
    fit_intercept : bool, default=True

    Returns
    -------
    gap : 0-d array (>= 0 up to rounding)
    """
    xp = array_namespace(X, y, coef)
    w = xp.ones_like(y) if sample_weight is None else sample_weight
    sw = xp.sum(w)
    if fit_intercept:
        xbar = (w @ X) / sw
        ybar = xp.sum(w * y) / sw
    else:
        xbar = xp.zeros_like(coef)
        ybar = xp.zeros_like(sw)
    yc = y - ybar
    r = yc - X @ coef + xp.sum(xbar * coef)
    g = X.T @ (w * r) - xbar * xp.sum(w * r) - lam2 * coef
    r2 = xp.sum(w * r * r)
    ry = xp.sum(w * r * yc)
    dual_norm = xp.max(xp.abs(g))
    if lam1 > 0:
        big = dual_norm > lam1
        safe = xp.where(big, dual_norm, xp.ones_like(dual_norm) * lam1)
        const = lam1 / safe  # 1 when the residual is already dual feasible
        gap = 0.5 * (r2 + r2 * const**2)
        return (gap + lam1 * xp.sum(xp.abs(coef)) - const * ry
                + 0.5 * lam2 * (1 + const**2) * xp.sum(coef * coef))
    raw = w @ (X * X)
    h = raw - sw * xbar * xbar
    h = xp.where(h > 1e-12 * raw, h, xp.zeros_like(h)) + lam2
    ok = h > 0
    return xp.sum(xp.where(ok, g * g, xp.zeros_like(g)) / xp.where(ok, h, xp.ones_like(h)))


def enet_lambda_max(X, y, sample_weight=None, fit_intercept=True):
    r"""Smallest :math:`\lambda_1` for which the weighted Lasso solution is 0:
    :math:`\max_j |\sum_i w_i (x_{ij}-\bar x_j)(y_i-\bar y)|` (array API)."""
    xp = array_namespace(X, y)
    w = xp.ones_like(y) if sample_weight is None else sample_weight
    if fit_intercept:
        sw = xp.sum(w)
        xbar = (w @ X) / sw
        yc = y - xp.sum(w * y) / sw
        g = X.T @ (w * yc) - xbar * xp.sum(w * yc)
    else:
        g = X.T @ (w * y)
    return xp.max(xp.abs(g))


_POWER_ITERATIONS = 30  # for the initial Lipschitz estimate (then backtracked)


def weighted_enet_fista(X, y, sample_weight=None, lam1=0.0, lam2=0.0, coef=None,
                        fit_intercept=True, max_iter=5000, tol=1e-4, check_every=10,
                        lipschitz=None):
    r"""Weighted elastic net by accelerated proximal gradient (FISTA), array API.

    The vectorised solver for GPU arrays (CuPy, torch CUDA): every step is one
    product with :math:`X` and one with :math:`X^\top`. Same objective and
    same duality-gap stop as :func:`weighted_enet_cd`, so the two agree at
    convergence.

    Beck & Teboulle (2009), with the adaptive restart of O'Donoghue &
    Candès (2015). The step size starts from a power-iteration estimate of
    the Lipschitz constant and is backtracked (doubled) whenever the
    quadratic upper bound fails, so a low estimate cannot make it diverge.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
    sample_weight : array of shape (n_samples,), optional
    lam1, lam2 : float
        Sum-scale penalties, as in :func:`weighted_enet_cd`.
    coef : array of shape (n_features,), optional
        Warm start.
    fit_intercept : bool, default=True
    max_iter : int, default=5000
        Maximum number of proximal-gradient steps.
    tol : float, default=1e-4
        Stop when the duality gap is below ``tol * sum_i w_i (y_i - ybar)^2``.
    check_every : int, default=10
        Steps between two evaluations of the duality gap.
    lipschitz : float, optional
        An estimate of the Lipschitz constant of the smooth part (the largest
        eigenvalue of :math:`X_c^\top W X_c` plus ``lam2``), e.g. from a
        previous call on similar weights: it replaces the power iteration (30
        products with :math:`X` and :math:`X^\top`). It is still backtracked,
        so a low estimate costs steps, never correctness.

    Returns
    -------
    EnetResult
        ``coef`` in the input's namespace (and device), ``intercept`` (float),
        ``gap`` and ``n_iter`` (steps).
    """
    xp = array_namespace(X, y)
    n, p = X.shape
    dev = array_device(X)
    w = xp.ones_like(y) if sample_weight is None else sample_weight
    sw = xp.sum(w)
    if not float(sw) > 0.0:
        beta = xp.zeros((p,), dtype=X.dtype, device=dev) if coef is None else xp.asarray(coef, copy=True, device=dev)
        return EnetResult(beta, 0.0, 0.0, 0)
    if fit_intercept:
        xbar = (w @ X) / sw
        ybar = xp.sum(w * y) / sw
    else:
        xbar = xp.zeros((p,), dtype=X.dtype, device=dev)
        ybar = xp.zeros_like(sw)
    yc = y - ybar
    tol_abs = float(tol * xp.sum(w * yc * yc))

    def matvec(b):  # (X - xbar) b
        return X @ b - xp.sum(xbar * b)

    def rmatvec(v):  # (X - xbar)^T v
        return X.T @ v - xbar * xp.sum(v)

    def smooth(Xb, b):  # 1/2 sum w r^2 + lam2/2 |b|^2, with Xb = (X - xbar) b
        r = yc - Xb
        return float(0.5 * xp.sum(w * r * r) + 0.5 * lam2 * xp.sum(b * b))

    if lipschitz is not None and float(lipschitz) > 0:
        L = float(lipschitz)
    else:
        # Lipschitz constant of the smooth part: power iteration on Xc^T W Xc
        v = xp.ones((p,), dtype=X.dtype, device=dev) / (p**0.5)
        for _ in range(_POWER_ITERATIONS):
            u = rmatvec(w * matvec(v))
            nu = xp.sqrt(xp.sum(u * u))
            if float(nu) == 0.0:
                break
            v = u / nu
        L = float(xp.sum(v * rmatvec(w * matvec(v)))) * 1.05 + float(lam2) + 1e-12
    beta = xp.zeros((p,), dtype=X.dtype, device=dev) if coef is None else xp.asarray(coef, copy=True, device=dev)
    Xb = matvec(beta)
    z, Xz = beta, Xb
    t = 1.0
    gap = float("inf")
    it = 0
    for it in range(1, max_iter + 1):
        grad = -rmatvec(w * (yc - Xz)) + lam2 * z
        f_z = smooth(Xz, z)
        for _ in range(60):  # backtracking on L (rarely more than one pass)
            new = soft_threshold(z - grad / L, lam1 / L)
            Xn = matvec(new)
            d = new - z
            bound = f_z + float(xp.sum(grad * d)) + 0.5 * L * float(xp.sum(d * d))
            if smooth(Xn, new) <= bound + 1e-12 * abs(bound):
                break
            L *= 2.0
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        # adaptive restart when the momentum points uphill
        if float(xp.sum((z - new) * (new - beta))) > 0:
            t_new = 1.0
            z, Xz = new, Xn
        else:
            m = (t - 1.0) / t_new
            z = new + m * (new - beta)
            Xz = Xn + m * (Xn - Xb)  # linear: no extra product with X
        beta, Xb, t = new, Xn, t_new
        if it % check_every == 0 or it == max_iter:
            gap = float(enet_duality_gap(X, y, w, beta, None, lam1, lam2,
                                         fit_intercept=fit_intercept))
            if gap <= tol_abs:
                break
            Xb = matvec(beta)  # refresh: no drift from the linear updates
            Xz = Xb if z is beta else matvec(z)
    intercept = float(ybar - xp.sum(xbar * beta)) if fit_intercept else 0.0
    return EnetResult(beta, intercept, gap, it)
