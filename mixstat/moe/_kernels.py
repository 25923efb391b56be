"""Numba kernels of the MoE EM (compiled lazily, NumPy fallbacks).

:func:`column_moments` computes weighted column moments on a subset of
columns, so that an expert's coordinate sweep on its active set costs
O(n |A|) and never copies X; the sweep itself is the primitive's kernel
(:func:`mixstat.primitives.weighted_enet_cd`).

The other kernels are the generalised EM of :mod:`mixstat.moe._em` in compiled
code (E-step, M-step, objective and the whole loop), used on the Numba backend
when ``penalty_power == 0`` and no support is fixed; they call the primitives'
kernels (coordinate descent, the proximal-Newton gate step).
"""

from __future__ import annotations

import numpy as np

from .._backend import lazy_njit
from ..primitives._lasso import _enet_cd_kernel
from ..primitives._multinomial import _l1_ridge_penalty_kernel, _prox_newton_kernel


@lazy_njit
def column_moments(X, w, features, xbar, h):  # pragma: no cover - jitted
    """For each ``j`` in ``features``: ``xbar[j] = sum_i w_i x_ij / sum_i w_i`` and
    ``h[j] = sum_i w_i (x_ij - xbar_j)^2`` (two passes over the column, in place).
    Columns constant to working precision get ``h[j] = 0``."""
    n = X.shape[0]
    sw = 0.0
    for i in range(n):
        sw += w[i]
    for jj in range(features.shape[0]):
        j = features[jj]
        s = 0.0
        for i in range(n):
            s += w[i] * X[i, j]
        m = s / sw
        s2 = 0.0
        raw = 0.0
        for i in range(n):
            d = X[i, j] - m
            s2 += w[i] * d * d
            raw += w[i] * X[i, j] * X[i, j]
        xbar[j] = m
        h[j] = s2 if s2 > 1e-12 * raw else 0.0


def column_moments_numpy(X, w, features, xbar, h):
    """NumPy version of :func:`column_moments` (blocks of columns, no full copy)."""
    sw = float(w.sum())
    for j0 in range(0, features.size, 256):
        f = features[j0:j0 + 256]
        blk = X[:, f]
        m = (w @ blk) / sw
        c = blk - m
        s2 = w @ (c * c)
        raw = w @ (blk * blk)
        xbar[f] = m
        h[f] = np.where(s2 > 1e-12 * raw, s2, 0.0)


# ------------------------------------------------ the fused EM (dense, CPU) ---
# One EM iteration of :func:`mixstat.moe._em.run_em` in compiled code, for the
# Numba backend with ``penalty_power == 0`` and no fixed support. The same
# algorithm as the generic path, step for step (tests compare the two): the
# Python overhead of a dozen NumPy calls per iteration dominates at small p.
_LOG_2PI = 1.8378770664093453  # log(2 pi)


@lazy_njit
def expert_means_kernel(X, coef, intercept, mu):  # pragma: no cover - jitted
    """``mu[i, k] = intercept[k] + x_i . coef[k]`` in place (zero slopes skipped)."""
    n, p = X.shape
    K = coef.shape[0]
    for k in range(K):
        b0 = intercept[k]
        for i in range(n):
            mu[i, k] = b0
        for j in range(p):
            c = coef[k, j]
            if c != 0.0:
                for i in range(n):
                    mu[i, k] += X[i, j] * c


@lazy_njit
def e_step_kernel(X, y, sw, mu, var, gate_coef, gate_intercept, log_resp, resp,
                  gate_prob):  # pragma: no cover - jitted
    """E-step in place: log-responsibilities ``log_resp``, responsibilities
    ``resp`` and gate probabilities ``gate_prob`` (all (n, K)). Returns
    ``(loglik, gate_nll)``: the weighted log-likelihood
    :math:`\\sum_i s_i \\log p(y_i|x_i)` and the gate step's starting NLL
    :math:`-\\sum_i s_i \\sum_k \\tau_{ik} \\log g_k(x_i)`. A row whose
    likelihood is zero under every expert gets uniform responsibilities (the
    log-likelihood is then -inf or NaN)."""
    n = X.shape[0]
    K = var.shape[0]
    # gate scores, column by column (X is Fortran-ordered)
    expert_means_kernel(X, gate_coef, gate_intercept, gate_prob)
    log_var = np.empty(K)
    for k in range(K):
        log_var[k] = np.log(var[k])
    eta = np.empty(K)
    ll = 0.0
    gate_nll = 0.0
    for i in range(n):
        # log-softmax of the gate scores (as the gate step computes it)
        # (the term of the maximum is exp(0) = 1: not computed when the
        # maximum is finite, which saves one exp of K per row, exactly)
        m = gate_prob[i, 0]
        km = 0
        for k in range(K):
            eta[k] = gate_prob[i, k]
            if eta[k] > m:
                m = eta[k]
                km = k
        skip = km if np.isfinite(m) else -1
        acc = 0.0
        for k in range(K):
            gate_prob[i, k] = 1.0 if k == skip else np.exp(eta[k] - m)
            acc += gate_prob[i, k]
        lse = m + np.log(acc)
        # joint log-density of (expert k, y_i), then its log-sum-exp over k
        M = -np.inf
        kM = -1
        for k in range(K):
            d = y[i] - mu[i, k]
            log_resp[i, k] = (-0.5 * (_LOG_2PI + log_var[k] + d * d / var[k])
                              + (eta[k] - lse))
            if log_resp[i, k] > M:
                M = log_resp[i, k]
                kM = k
        if not np.isfinite(M):
            M = 0.0
            kM = -1
        S = 0.0
        for k in range(K):
            resp[i, k] = 1.0 if k == kM else np.exp(log_resp[i, k] - M)
            S += resp[i, k]
        norm = M + np.log(S)
        row = 0.0
        if np.isfinite(norm):
            for k in range(K):
                log_resp[i, k] -= norm
                resp[i, k] /= S
                gate_prob[i, k] /= acc
                if resp[i, k] != 0.0:
                    row += resp[i, k] * (eta[k] - lse)
        else:
            for k in range(K):
                log_resp[i, k] = -np.log(K)
                resp[i, k] = 1.0 / K
                gate_prob[i, k] /= acc
                row += resp[i, k] * (eta[k] - lse)
        gate_nll -= sw[i] * row
        ll += sw[i] * norm
    return ll, gate_nll


@lazy_njit
def penalty_kernel(coef, var, gate_coef, alpha, alpha_gate, ridge_gate,
                   scale_penalty):  # pragma: no cover - jitted
    """The penalty of the mean-scale objective (``penalty_power == 0``), as
    :func:`mixstat.moe._em.penalty`."""
    K, p = coef.shape
    expert = 0.0
    for k in range(K):
        l1 = 0.0
        for j in range(p):
            l1 += abs(coef[k, j])
        if scale_penalty:
            if l1 > 0.0:
                expert += l1 / np.sqrt(var[k])
        else:
            expert += l1
    pen = 0.0
    if alpha > 0.0 and expert > 0.0:
        pen += alpha * expert
    if alpha_gate > 0.0 or ridge_gate > 0.0:
        pen += _l1_ridge_penalty_kernel(gate_coef, alpha_gate, ridge_gate)
    return pen


@lazy_njit
def _sigma_update_kernel(W, rss, l1, lam, scale, floor):  # pragma: no cover - jitted
    if scale:
        B = lam * l1 if l1 > 0.0 else 0.0
        sigma = (B + np.sqrt(B * B + 4.0 * W * rss)) / (2.0 * W)
        v = sigma * sigma
    else:
        v = rss / W
    return v if v > floor else floor


@lazy_njit
def m_step_kernel(X, y, sw, resp, coef, intercept, gate_coef, gate_intercept, var, mu,
                  lam, scale_penalty, shared, var_floor, empty_fraction, active_only,
                  n_sweeps, update_gates, gate_steps, gamma, rho, gate_cd_sweeps,
                  gate_nll, gate_prob):  # pragma: no cover - jitted
    """One generalised M-step in place (as :func:`mixstat.moe._em.m_step` with
    ``penalty_power == 0``): per expert, ``n_sweeps`` coordinate-descent sweeps
    of the weighted Lasso at penalty ``lam`` (sum scale) -- on the expert's
    non-zero slopes when ``active_only``, else on all --, then the variances,
    then ``gate_steps`` proximal-Newton steps of the gates (``gamma``, ``rho``:
    sum-scale penalties). ``mu`` holds the current expert means and is updated.
    ``gate_nll`` and ``gate_prob``: the gates' NLL and probabilities at the
    current gates, from the E-step that gave ``resp`` (``gate_nll`` NaN when
    unknown: then the gate step computes them)."""
    n, p = X.shape
    K = coef.shape[0]
    n_eff = 0.0
    for i in range(n):
        n_eff += sw[i]
    Wk = np.zeros(K)
    for i in range(n):
        for k in range(K):
            Wk[k] += sw[i] * resp[i, k]
    w = np.empty(n)
    yc = np.empty(n)
    r = np.empty(n)
    xbar = np.empty(p)
    h = np.empty(p)
    all_feats = np.arange(p)
    cd_tol = 0.0 if n_sweeps == 1 else 1e-4
    for k in range(K):
        if not Wk[k] > empty_fraction * n_eff:
            continue
        if active_only:
            nnz = 0
            for j in range(p):
                if coef[k, j] != 0.0:
                    nnz += 1
            feats = np.empty(nnz, dtype=np.int64)
            nnz = 0
            for j in range(p):
                if coef[k, j] != 0.0:
                    feats[nnz] = j
                    nnz += 1
        else:
            feats = all_feats
        scale = np.sqrt(var[k]) if scale_penalty else var[k]
        for i in range(n):
            w[i] = sw[i] * resp[i, k]
        for j in range(p):
            xbar[j] = 0.0
            h[j] = 0.0
        if feats.shape[0] > 0:
            column_moments(X, w, feats, xbar, h)
        ybar = 0.0
        for i in range(n):
            ybar += w[i] * y[i]
        ybar /= Wk[k]
        xb_coef = 0.0
        for j in range(p):
            xb_coef += xbar[j] * coef[k, j]
        for i in range(n):
            yc[i] = y[i] - ybar
            r[i] = yc[i] - (mu[i, k] - intercept[k]) + xb_coef
        if feats.shape[0] > 0:
            _enet_cd_kernel(X, yc, w, xbar, h, coef[k], r, lam * scale, 0.0, feats,
                            n_sweeps, cd_tol, n_sweeps > 1)
        xb_coef = 0.0
        for j in range(p):
            xb_coef += xbar[j] * coef[k, j]
        intercept[k] = ybar - xb_coef
        for i in range(n):
            mu[i, k] = y[i] - r[i]
    if not active_only:
        expert_means_kernel(X, coef, intercept, mu)  # exact refresh
    rss = np.zeros(K)
    for i in range(n):
        for k in range(K):
            d = y[i] - mu[i, k]
            rss[k] += sw[i] * resp[i, k] * d * d
    if shared:
        W_all = 0.0
        rss_all = 0.0
        pen_all = 0.0
        for k in range(K):
            W_all += Wk[k]
            rss_all += rss[k]
            l1 = 0.0
            for j in range(p):
                l1 += abs(coef[k, j])
            if l1 > 0.0:
                pen_all += lam * l1
        v = _sigma_update_kernel(W_all, rss_all, pen_all, 1.0, scale_penalty, var_floor)
        for k in range(K):
            var[k] = v
    else:
        for k in range(K):
            if Wk[k] > empty_fraction * n_eff:
                l1 = 0.0
                for j in range(p):
                    l1 += abs(coef[k, j])
                var[k] = _sigma_update_kernel(Wk[k], rss[k], l1, lam, scale_penalty,
                                              var_floor)
    if update_gates and K > 1:
        # on active-set iterations only the gate columns with a non-zero slope move
        nz = 0
        if active_only:
            for j in range(p):
                for k in range(K):
                    if gate_coef[k, j] != 0.0:
                        nz += 1
                        break
        if active_only and 2 * nz < p:
            gfeats = np.empty(nz, dtype=np.int64)
            nz = 0
            for j in range(p):
                for k in range(K):
                    if gate_coef[k, j] != 0.0:
                        gfeats[nz] = j
                        nz += 1
                        break
        else:
            gfeats = all_feats
        # (gate_nll NaN: not known, an empty P0 tells the gate step to compute it)
        known = not np.isnan(gate_nll)
        _prox_newton_kernel(X, resp, sw, gate_coef, gate_intercept, gamma, rho, gfeats,
                            gate_steps, 1e-6, gate_cd_sweeps, 1e-4,
                            gate_nll if known else 0.0,
                            gate_prob if known else np.empty((0, K)))



@lazy_njit
def init_m_steps_kernel(X, y, sw, resp, coef, intercept, gate_coef, gate_intercept, var, mu,
                        lam, scale_penalty, shared, var_floor, empty_fraction, rounds,
                        n_sweeps, gate_steps, gamma, rho,
                        gate_cd_sweeps):  # pragma: no cover - jitted
    """The initial M-steps of :func:`mixstat.moe._em.state_from_resp` in one
    call, in place: ``rounds`` full :func:`m_step_kernel` calls at fixed
    responsibilities ``resp`` (``n_sweeps`` sweeps each), the gates updated
    (``gate_steps`` proximal-Newton steps) in the last round only. ``mu``
    (n, K) is work space; it ends with the expert means of the result."""
    expert_means_kernel(X, coef, intercept, mu)
    for r in range(rounds):
        # mu: the exact means of the current state (m_step_kernel refreshes
        # them after full sweeps); it also stands in for the unused gate
        # probabilities (gate_nll is NaN: the gate step computes its own)
        # (np.bool_: a non-literal bool, so that this call and the others
        # share one compiled m_step_kernel)
        m_step_kernel(X, y, sw, resp, coef, intercept, gate_coef, gate_intercept, var, mu,
                      lam, scale_penalty, shared, var_floor, empty_fraction, np.bool_(False),
                      n_sweeps, r == rounds - 1, gate_steps, gamma, rho, gate_cd_sweeps,
                      np.nan, mu)


@lazy_njit
def em_loop_kernel(X, y, sw, coef, intercept, gate_coef, gate_intercept, var,
                   alpha, alpha_gate, ridge_gate, scale_penalty, shared, var_floor,
                   max_iter, tol, gate_cd_sweeps, full_every, empty_fraction,
                   history, log_resp):  # pragma: no cover - jitted
    """The loop of :func:`mixstat.moe._em.run_em` (``penalty_power == 0``) in
    place on the parameters: E-step, :func:`m_step_kernel` (a full sweep every
    ``full_every`` iterations and whenever the objective stalls, else on the
    active set), E-step, objective; stops when the change of the penalised
    objective after a full sweep is below ``tol * max(1, |objective|)``.

    ``history`` (length ``max_iter + 1``) receives the objectives and
    ``log_resp`` (n, K) the last log-responsibilities. Returns ``(n_iter,
    converged, objective, loglik, ok)``; ``ok`` is False when the objective
    became non-finite (the parameters are then those of the failed step)."""
    n, p = X.shape
    K = coef.shape[0]
    n_eff = 0.0
    for i in range(n):
        n_eff += sw[i]
    lam = n_eff * alpha
    gamma = n_eff * alpha_gate
    rho = n_eff * ridge_gate
    mu = np.empty((n, K))
    resp = np.empty((n, K))
    gate_prob = np.empty((n, K))
    expert_means_kernel(X, coef, intercept, mu)
    ll, gate_nll = e_step_kernel(X, y, sw, mu, var, gate_coef, gate_intercept, log_resp, resp,
                                 gate_prob)
    obj = ll / n_eff - penalty_kernel(coef, var, gate_coef, alpha, alpha_gate, ridge_gate,
                                      scale_penalty)
    history[0] = obj
    n_iter = 0
    converged = False
    for it in range(1, max_iter + 1):
        n_iter = it
        full = it % full_every == 1
        if not full:
            if it < 2:
                full = True
            else:
                last = history[it - 1]
                full = abs(last - history[it - 2]) <= tol * max(1.0, abs(last))
        active_only = np.bool_(False)  # non-literal: one m_step_kernel for all callers
        if not full and alpha != 0.0:
            for k in range(K):
                for j in range(p):
                    if coef[k, j] == 0.0:
                        active_only = True
        # (np.int64 / np.bool_: non-literal constants, so that this call and the
        # others share one compiled m_step_kernel; a literal 1 or True would
        # compile a specialisation of its own, about 30 s)
        m_step_kernel(X, y, sw, resp, coef, intercept, gate_coef, gate_intercept, var, mu,
                      lam, scale_penalty, shared, var_floor, empty_fraction, active_only,
                      np.int64(1), np.bool_(True), np.int64(1), gamma, rho, gate_cd_sweeps,
                      gate_nll, gate_prob)
        ll, gate_nll = e_step_kernel(X, y, sw, mu, var, gate_coef, gate_intercept, log_resp,
                                     resp, gate_prob)
        new_obj = ll / n_eff - penalty_kernel(coef, var, gate_coef, alpha, alpha_gate,
                                              ridge_gate, scale_penalty)
        if not np.isfinite(new_obj):
            return n_iter, False, new_obj, ll, False
        history[it] = new_obj
        change = abs(new_obj - obj)
        obj = new_obj
        if not active_only and change <= tol * max(1.0, abs(obj)):
            converged = True
            break
    return n_iter, converged, obj, ll, True
