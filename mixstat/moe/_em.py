r"""Generalised EM for the Lasso-penalised Gaussian mixture of experts.

Everything here is NumPy (CPU; the Lasso sweeps run in the Numba kernel of
:func:`mixstat.primitives.weighted_enet_cd` when the backend is 'numba').
The estimator classes live in :mod:`mixstat.moe._moe`.

Objective (mean scale, :math:`N = \sum_i s_i`):

.. math::
    PL(\theta) = \frac1N \sum_i s_i \log \sum_k g_k(x_i)\,
        N(y_i;\ b_{k0} + x_i^\top b_k,\ \sigma_k^2)
      - \alpha \sum_k \pi_k^\gamma \frac{\|b_k\|_1}{\sigma_k^{c}}
      - \alpha_g \sum_k \|w_k\|_1 - \frac{\rho}{2}\sum_k \|w_k\|_2^2

with :math:`c = 1` when ``scale_penalty`` (Städler, Bühlmann & van de Geer
2010) and :math:`c = 0` otherwise; :math:`\gamma` = ``penalty_power`` and
:math:`\pi_k = \frac1N\sum_i s_i g_k(x_i)` (Städler's mixing weight, the
average gate; held fixed in the expert step, the gate step is line-searched on
the full objective when :math:`\gamma > 0`).

One iteration (generalised EM, each block increases :math:`PL`):

1. E-step: :math:`\tau_{ik}` from :func:`~mixstat.primitives.responsibilities`.
2. Experts: one coordinate-descent sweep of the weighted Lasso
   :math:`\tfrac12\sum_i s_i\tau_{ik} r_{ik}^2 + N\alpha\,\sigma_k^{2-c}\|b_k\|_1`
   at the current :math:`\sigma_k` (on the active set, with a full sweep every
   few iterations), then the closed-form :math:`\sigma_k` maximising the
   expected complete penalised log-likelihood:
   :math:`\sigma_k^2 = RSS_k / N_k` (plain) or
   :math:`\sigma_k = (B_k + \sqrt{B_k^2 + 4 N_k RSS_k}) / (2 N_k)` with
   :math:`B_k = N\alpha\|b_k\|_1` (scaled), floored at ``min_variance``.
3. Gates: one proximal-Newton step of
   :func:`~mixstat.primitives.penalized_multinomial_update` with the
   responsibilities as soft targets (symmetric K-gate parameterisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..primitives import (
    log_softmax,
    normal_log_density,
    penalized_multinomial_update,
    responsibilities,
)
from ..primitives._lasso import _enet_cd_kernel, _enet_cd_numpy
from ._kernels import (
    column_moments,
    column_moments_numpy,
    em_loop_kernel,
    init_m_steps_kernel,
    m_step_kernel,
)

# a full coordinate sweep over every feature at least this often (iterations)
_FULL_SWEEP_EVERY = 5
# a component whose effective size falls below this fraction of N is frozen
_EMPTY_FRACTION = 1e-8


@dataclass
class EMConfig:
    """Settings of one EM run (mean-scale penalties; N = sum of weights)."""

    n_components: int
    alpha: float
    alpha_gate: float
    ridge_gate: float
    scale_penalty: bool
    shared_variance: bool
    var_floor: float
    max_iter: int
    tol: float
    use_numba: bool
    init_sweeps: int = 50
    init_rounds: int = 5
    gate_cd_sweeps: int = 5
    penalty_power: float = 0.0  # Städler's gamma: weight pi_k^gamma on expert k's penalty
    # refit on a selected support: per-expert int arrays of the slopes allowed to
    # move (the others stay zero), and the gate columns allowed to move
    expert_support: tuple | None = None
    gate_support: np.ndarray | None = None
    # the compiled EM (mixstat.moe._kernels) where it applies (see uses_fused);
    # False forces the step-by-step NumPy/Numba path (the two agree, tested)
    fused: bool = True

    def uses_fused(self):
        """Whether the EM runs as one compiled loop: Numba backend,
        ``penalty_power == 0`` and no fixed support."""
        return (self.fused and self.use_numba and self.penalty_power == 0
                and self.expert_support is None and self.gate_support is None)


@dataclass
class MoEState:
    """Parameters of a Gaussian MoE (NumPy, float64)."""

    coef: np.ndarray  # (K, p)
    intercept: np.ndarray  # (K,)
    gate_coef: np.ndarray  # (K, p)
    gate_intercept: np.ndarray  # (K,)
    var: np.ndarray  # (K,)

    def copy(self):
        return MoEState(self.coef.copy(), self.intercept.copy(), self.gate_coef.copy(),
                        self.gate_intercept.copy(), self.var.copy())

    def permute(self, perm):
        return MoEState(self.coef[perm], self.intercept[perm], self.gate_coef[perm],
                        self.gate_intercept[perm], self.var[perm])


# ------------------------------------------------------------- E-step ---
def expert_means(X, state):
    """(n, K) expert means :math:`b_{k0} + x_i^\\top b_k` (one pass over X)."""
    return state.intercept[None, :] + X @ state.coef.T


def gate_log_probs(X, state):
    """(n, K) log gate probabilities (log-softmax of the gate scores)."""
    return log_softmax(state.gate_intercept[None, :] + X @ state.gate_coef.T, axis=1)


def e_step(X, y, state, mu=None):
    """Log-responsibilities, per-sample log-likelihood and expert means."""
    if mu is None:
        mu = expert_means(X, state)
    log_dens = normal_log_density(y[:, None], mu, state.var[None, :])
    log_resp, log_norm = responsibilities(log_dens, gate_log_probs(X, state))
    return log_resp, log_norm, mu


def mean_gates(X, sw, state):
    r"""Mixing proportions :math:`\pi_k = \frac1N\sum_i s_i g_k(x_i)` (the
    average gate), which weigh the expert penalties when ``penalty_power > 0``."""
    if state.coef.shape[0] == 1:
        return np.ones(1)
    return (sw @ np.exp(gate_log_probs(X, state))) / float(sw.sum())


def penalty_weights(cfg, pi):
    r"""Per-expert weights :math:`\pi_k^\gamma` of the expert penalty."""
    if cfg.penalty_power == 0 or pi is None:
        return np.ones(cfg.n_components)
    return np.maximum(np.asarray(pi, dtype=float), 1e-300) ** cfg.penalty_power


def penalty(state, cfg, n_eff=None, pi=None):
    """Penalty of the mean-scale objective (``pi``: mixing proportions, needed
    when ``cfg.penalty_power > 0``)."""
    if cfg.penalty_power > 0 and pi is None:
        raise ValueError("penalty_power > 0 needs the mixing proportions pi")
    l1 = np.abs(state.coef).sum(axis=1) * penalty_weights(cfg, pi)
    if cfg.scale_penalty:
        expert = float(np.sum(l1[l1 > 0] / np.sqrt(state.var[l1 > 0])))
    else:
        expert = float(l1.sum())
    pen = 0.0
    if cfg.alpha > 0 and expert > 0:
        pen += cfg.alpha * expert
    if cfg.alpha_gate > 0:
        pen += cfg.alpha_gate * float(np.abs(state.gate_coef).sum())
    if cfg.ridge_gate > 0:
        pen += 0.5 * cfg.ridge_gate * float((state.gate_coef ** 2).sum())
    return pen


def objective(log_norm, sw, n_eff, state, cfg, pi=None):
    """Penalised log-likelihood (mean scale) and the plain log-likelihood (sum)."""
    ll = float(sw @ log_norm)
    return ll / n_eff - penalty(state, cfg, pi=pi), ll


# ------------------------------------------------------------- M-step ---
def _sigma_update(W, rss, l1, lam, scale, floor):
    """Closed-form maximiser of the expected complete penalised log-likelihood
    in the noise variance (see the module docstring), floored."""
    if scale:
        B = lam * l1 if l1 > 0 else 0.0  # lam may be inf (intercept-only fit)
        sigma = (B + np.sqrt(B * B + 4.0 * W * rss)) / (2.0 * W)
        var = sigma * sigma
    else:
        var = rss / W
    return np.maximum(var, floor)


def m_step(X, y, sw, resp, state, cfg, n_eff, mu=None, features=None, n_sweeps=1,
           update_gates=True, gate_steps=1, y_obj=None):
    """One generalised M-step from responsibilities ``resp`` (n, K).

    ``features`` is None (full sweeps) or a list of K int arrays (the coordinates
    each expert may move; they must contain the non-zero ones). ``mu`` holds the
    current expert means (computed when None). Returns the new state and the
    new expert means.
    """
    if features is None and cfg.uses_fused():
        return _m_step_fused(X, y, sw, resp, state, cfg, n_eff, mu, n_sweeps, update_gates,
                             gate_steps)
    K = cfg.n_components
    p = X.shape[1]
    new = state.copy()
    pi = mean_gates(X, sw, state) if cfg.penalty_power > 0 else None
    lam_k = n_eff * cfg.alpha * penalty_weights(cfg, pi)  # pi_k fixed in the expert step
    if mu is None:
        mu = expert_means(X, state)
    mu = mu.copy()
    Wk = sw @ resp  # (K,)
    alive = Wk > _EMPTY_FRACTION * n_eff
    solver = _enet_cd_kernel if cfg.use_numba else _enet_cd_numpy
    moments = column_moments if cfg.use_numba else column_moments_numpy
    all_feats = np.arange(p, dtype=np.int64)
    for k in range(K):
        if not alive[k]:
            continue
        w = sw * resp[:, k]
        feats = all_feats if features is None else features[k]
        scale = np.sqrt(new.var[k]) if cfg.scale_penalty else new.var[k]
        xbar = np.zeros(p)
        h = np.zeros(p)
        if feats.size:
            moments(X, w, feats, xbar, h)
        ybar = float(w @ y) / Wk[k]
        yc = y - ybar
        coef = new.coef[k].copy()
        r = yc - (mu[:, k] - new.intercept[k]) + float(xbar @ coef)
        if feats.size:
            solver(X, yc, w, xbar, h, coef, r, float(lam_k[k] * scale), 0.0, feats,
                   int(n_sweeps), 0.0 if n_sweeps == 1 else 1e-4, n_sweeps > 1)
        new.coef[k] = coef
        new.intercept[k] = ybar - float(xbar @ coef)
        mu[:, k] = y - r
    if features is None or cfg.expert_support is not None:
        mu = expert_means(X, new)  # exact refresh (no drift from the residual updates)
    resid2 = (y[:, None] - mu) ** 2
    rss = (sw[:, None] * resp * resid2).sum(axis=0)
    l1 = np.abs(new.coef).sum(axis=1)
    if cfg.shared_variance:
        nz = l1 > 0
        v = _sigma_update(float(Wk.sum()), float(rss.sum()), float(np.sum(lam_k[nz] * l1[nz])), 1.0,
                          cfg.scale_penalty, cfg.var_floor)
        new.var[:] = v
    else:
        for k in range(K):
            if alive[k]:
                new.var[k] = _sigma_update(Wk[k], rss[k], l1[k], lam_k[k], cfg.scale_penalty,
                                           cfg.var_floor)
    if update_gates and K > 1:
        if cfg.penalty_power > 0 and y_obj is not None:
            _gate_step_checked(X, y, sw, resp, new, cfg, n_eff, mu, features is None,
                               gate_steps)
        else:
            _gate_step(X, sw, resp, new, cfg, n_eff, full=features is None, steps=gate_steps)
    return new, mu


def _contiguous_copy(state):
    return MoEState(*(np.array(a, dtype=np.float64, order="C", copy=True)
                      for a in (state.coef, state.intercept, state.gate_coef,
                                state.gate_intercept, state.var)))


def _m_step_fused(X, y, sw, resp, state, cfg, n_eff, mu, n_sweeps, update_gates, gate_steps):
    """:func:`m_step` with full sweeps in one compiled call
    (:func:`mixstat.moe._kernels.m_step_kernel`)."""
    new = _contiguous_copy(state)
    mu = np.array(expert_means(X, state) if mu is None else mu, dtype=np.float64, order="C")
    m_step_kernel(X, y, sw, np.ascontiguousarray(resp, dtype=np.float64), new.coef,
                  new.intercept, new.gate_coef, new.gate_intercept, new.var, mu,
                  n_eff * cfg.alpha, cfg.scale_penalty, cfg.shared_variance, cfg.var_floor,
                  _EMPTY_FRACTION, False, int(n_sweeps), bool(update_gates), int(gate_steps),
                  n_eff * cfg.alpha_gate, n_eff * cfg.ridge_gate, int(cfg.gate_cd_sweeps),
                  np.nan, mu)  # (mu: an unused stand-in for the gate probabilities)
    return new, mu


def _full_objective(X, y, sw, state, cfg, n_eff, mu):
    _, log_norm, _ = e_step(X, y, state, mu=mu)
    pi = mean_gates(X, sw, state) if cfg.penalty_power > 0 else None
    return objective(log_norm, sw, n_eff, state, cfg, pi=pi)[0]


def _gate_step_checked(X, y, sw, resp, state, cfg, n_eff, mu, full, steps):
    r"""Gate step when the expert penalties depend on the gates (``penalty_power
    > 0``, :math:`\pi_k^\gamma`): the proximal-Newton step of the gate
    surrogate, then a backtracking line search on the full penalised objective
    toward the previous gates, so that the objective never decreases (a
    generalised EM step)."""
    old_w, old_b = state.gate_coef.copy(), state.gate_intercept.copy()
    f0 = _full_objective(X, y, sw, state, cfg, n_eff, mu)
    _gate_step(X, sw, resp, state, cfg, n_eff, full=full, steps=steps)
    new_w, new_b = state.gate_coef.copy(), state.gate_intercept.copy()
    t = 1.0
    for _ in range(10):
        state.gate_coef = old_w + t * (new_w - old_w)
        state.gate_intercept = old_b + t * (new_b - old_b)
        if _full_objective(X, y, sw, state, cfg, n_eff, mu) >= f0 - 1e-12 * max(1.0, abs(f0)):
            return
        t *= 0.5
    state.gate_coef, state.gate_intercept = old_w, old_b


def gate_columns(cfg, gate_coef, full):
    """The columns the gate step may move: the fixed gate support, else (on
    active-set iterations, ``full=False``) the columns with a non-zero slope
    when they are fewer than half; ``None`` means every column."""
    p = gate_coef.shape[1]
    if cfg.gate_support is not None:
        cols = np.asarray(cfg.gate_support, dtype=np.int64)
        return None if cols.size == p else cols
    if not full:
        nz = np.flatnonzero(np.any(gate_coef != 0, axis=0))
        if 2 * nz.size < p:
            return nz
    return None


def _gate_step(X, sw, resp, state, cfg, n_eff, full=True, steps=1):
    """Proximal-Newton step(s) of the penalised softmax gate (in place on ``state``).

    On active-set iterations only the columns with a non-zero gate slope may
    move: the primitive then sees those columns alone (the others are zero in
    every class, so the objective restricted to them is the same problem).
    """
    cols = gate_columns(cfg, state.gate_coef, full)
    kw = dict(gamma=n_eff * cfg.alpha_gate, rho=n_eff * cfg.ridge_gate, sample_weight=sw,
              max_iter=steps, cd_max_iter=cfg.gate_cd_sweeps, use_numba=cfg.use_numba)
    if cols is None:
        g = penalized_multinomial_update(X, resp, coef=state.gate_coef,
                                         intercept=state.gate_intercept, **kw)
        state.gate_coef = np.asarray(g.coef, dtype=np.float64)
    else:
        g = penalized_multinomial_update(np.asfortranarray(X[:, cols]), resp,
                                         coef=state.gate_coef[:, cols],
                                         intercept=state.gate_intercept, **kw)
        state.gate_coef = np.zeros_like(state.gate_coef)
        state.gate_coef[:, cols] = np.asarray(g.coef, dtype=np.float64)
    state.gate_intercept = np.asarray(g.intercept, dtype=np.float64)


def state_from_resp(X, y, sw, resp, cfg, n_eff):
    """Initial parameters from (soft or hard) responsibilities: a near-converged
    M-step (several sweeps) from zero slopes."""
    K = cfg.n_components
    p = X.shape[1]
    Wk = np.maximum(sw @ resp, 1e-300)
    means = (sw @ (resp * y[:, None])) / Wk
    var = (sw @ (resp * (y[:, None] - means[None, :]) ** 2)) / Wk
    var = np.maximum(var, cfg.var_floor)
    if cfg.shared_variance:
        var[:] = max(float(Wk @ var / Wk.sum()), cfg.var_floor)
    state = MoEState(np.zeros((K, p)), means, np.zeros((K, p)), np.zeros(K), var)
    # gates start at log of the mixing proportions
    props = Wk / Wk.sum()
    state.gate_intercept = np.log(np.maximum(props, 1e-12))
    state.gate_intercept -= state.gate_intercept.mean()
    # alternate (slopes, variances) a few times at fixed responsibilities: the
    # first threshold uses the slope-free variance, which is far too large
    if cfg.uses_fused():
        # the same M-steps as the loop below, in one compiled call
        st = _contiguous_copy(state)
        init_m_steps_kernel(X, y, sw, np.ascontiguousarray(resp, dtype=np.float64), st.coef,
                            st.intercept, st.gate_coef, st.gate_intercept, st.var,
                            np.empty((X.shape[0], K)), n_eff * cfg.alpha, cfg.scale_penalty,
                            cfg.shared_variance, cfg.var_floor, _EMPTY_FRACTION,
                            int(cfg.init_rounds), int(cfg.init_sweeps), 3,
                            n_eff * cfg.alpha_gate, n_eff * cfg.ridge_gate,
                            int(cfg.gate_cd_sweeps))
        return st
    for r in range(cfg.init_rounds):
        feats = None if cfg.expert_support is None else list(cfg.expert_support)
        state, _ = m_step(X, y, sw, resp, state, cfg, n_eff, n_sweeps=cfg.init_sweeps,
                          features=feats,
                          update_gates=r == cfg.init_rounds - 1, gate_steps=3)
    return state


# ------------------------------------------------------------ the loop ---
def run_em(X, y, sw, state, cfg, callback=None):
    """Generalised EM from ``state``.

    Returns
    -------
    dict with keys state, objective, loglik, n_iter, converged, history.
    """
    if callback is None and cfg.uses_fused():
        return _run_em_fused(X, y, sw, state, cfg)
    n_eff = float(sw.sum())
    K = cfg.n_components
    p = X.shape[1]
    log_resp, log_norm, mu = e_step(X, y, state)
    obj, ll = objective(log_norm, sw, n_eff, state, cfg, pi=_pi(X, sw, state, cfg))
    history = [obj]
    converged = False
    n_iter = 0
    for it in range(1, cfg.max_iter + 1):
        n_iter = it
        resp = np.exp(log_resp)
        full = (it % _FULL_SWEEP_EVERY == 1) or _needs_full(history, cfg.tol)
        if cfg.expert_support is not None:
            features = list(cfg.expert_support)
        elif full or cfg.alpha == 0:
            features = None
        else:
            features = [np.flatnonzero(state.coef[k]).astype(np.int64) for k in range(K)]
            if all(f.size == p for f in features):
                features = None
        state, mu = m_step(X, y, sw, resp, state, cfg, n_eff, mu=mu, features=features,
                           y_obj=True)
        log_resp, log_norm, _ = e_step(X, y, state, mu=mu)
        new_obj, ll = objective(log_norm, sw, n_eff, state, cfg, pi=_pi(X, sw, state, cfg))
        if not np.isfinite(new_obj):
            raise FloatingPointError("the penalised log-likelihood became non-finite")
        history.append(new_obj)
        full_last = features is None or cfg.expert_support is not None
        if callback is not None:
            callback(it, state, new_obj)
        change = abs(new_obj - obj)
        obj = new_obj
        if full_last and change <= cfg.tol * max(1.0, abs(obj)):
            converged = True
            break
    return {"state": state, "objective": obj, "loglik": ll, "n_iter": n_iter,
            "converged": converged, "history": np.asarray(history),
            "log_resp": log_resp}


def _run_em_fused(X, y, sw, state, cfg):
    """:func:`run_em` as one compiled loop
    (:func:`mixstat.moe._kernels.em_loop_kernel`): the same steps and stopping
    rule, without the Python overhead of each step."""
    st = _contiguous_copy(state)
    history = np.empty(cfg.max_iter + 1)
    log_resp = np.empty((X.shape[0], cfg.n_components))
    n_iter, converged, obj, ll, ok = em_loop_kernel(
        X, y, sw, st.coef, st.intercept, st.gate_coef, st.gate_intercept, st.var,
        float(cfg.alpha), float(cfg.alpha_gate), float(cfg.ridge_gate), bool(cfg.scale_penalty),
        bool(cfg.shared_variance), float(cfg.var_floor), int(cfg.max_iter), float(cfg.tol),
        int(cfg.gate_cd_sweeps), _FULL_SWEEP_EVERY, _EMPTY_FRACTION, history, log_resp)
    if not ok:
        raise FloatingPointError("the penalised log-likelihood became non-finite")
    return {"state": st, "objective": float(obj), "loglik": float(ll), "n_iter": int(n_iter),
            "converged": bool(converged), "history": history[:n_iter + 1].copy(),
            "log_resp": log_resp}


def _pi(X, sw, state, cfg):
    return mean_gates(X, sw, state) if cfg.penalty_power > 0 else None


def _needs_full(history, tol):
    """A full sweep when the objective has (nearly) stopped moving on the
    active set, so that convergence is only declared after a full sweep."""
    if len(history) < 2:
        return True
    return abs(history[-1] - history[-2]) <= tol * max(1.0, abs(history[-1]))
