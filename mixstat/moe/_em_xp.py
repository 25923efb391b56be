r"""The EM loop on array-API devices (torch, CuPy): backend='torch' / 'cupy'.

The E-step runs through the array-API primitives (:func:`normal_log_density`,
:func:`log_softmax`, :func:`responsibilities`) on the device; the expert
M-step uses the vectorised proximal-gradient solver
:func:`~mixstat.primitives.weighted_enet_fista` (warm-started, a fixed number
of steps per EM iteration: a generalised M-step); the gate step is the same
proximal-Newton primitive as on the CPU, run on a host copy of ``X`` made once
per fit (it sees only the n x K responsibilities per iteration). The
objective and the updates are those of :mod:`mixstat.moe._em`, so at
convergence both paths reach the same fixed point (tested on torch CPU
tensors).
"""

from __future__ import annotations

import numpy as np

from .._backend import numba_available, to_numpy
from ..primitives import (
    log_softmax,
    normal_log_density,
    penalized_multinomial_update,
    responsibilities,
    weighted_enet_fista,
)
from ._em import _EMPTY_FRACTION, MoEState, _sigma_update, penalty


def _to_device(state, backend):
    return {name: backend.asarray(np.asarray(getattr(state, name), dtype=np.float64))
            for name in ("coef", "intercept", "gate_coef", "gate_intercept", "var")}


def _to_host(st):
    return MoEState(*(np.array(to_numpy(st[k]), dtype=np.float64)
                      for k in ("coef", "intercept", "gate_coef", "gate_intercept", "var")))


def e_step_xp(X, y, st):
    """Device E-step: log-responsibilities, per-sample log-likelihood, means."""
    mu = st["intercept"][None, :] + X @ st["coef"].T
    log_dens = normal_log_density(y[:, None], mu, st["var"][None, :])
    log_g = log_softmax(st["gate_intercept"][None, :] + X @ st["gate_coef"].T, axis=1)
    log_resp, log_norm = responsibilities(log_dens, log_g)
    return log_resp, log_norm, mu


def run_em_xp(X_host, y_host, sw_host, state, cfg, backend, inner_steps=10):
    """Generalised EM on the device of ``backend``; returns the same dict as
    :func:`mixstat.moe._em.run_em` (host NumPy state)."""
    if cfg.penalty_power > 0:
        raise ValueError("penalty_power > 0 runs on the CPU backends ('numpy', 'numba') "
                         "only; use backend='numba' or penalty_power=0")
    xp = backend.xp
    X = backend.asarray(X_host, dtype=None)
    y = backend.asarray(y_host)
    sw = backend.asarray(sw_host)
    st = _to_device(state, backend)
    n_eff = float(sw_host.sum())
    lam = n_eff * cfg.alpha
    K = cfg.n_components
    use_numba = numba_available()

    def objective(log_norm):
        ll = float(xp.sum(sw * log_norm))
        return ll / n_eff - penalty(_to_host(st), cfg), ll

    log_resp, log_norm, mu = e_step_xp(X, y, st)
    obj, ll = objective(log_norm)
    history = [obj]
    converged = False
    n_iter = 0
    for it in range(1, cfg.max_iter + 1):
        n_iter = it
        resp = xp.exp(log_resp)
        Wk = to_numpy(xp.sum(sw[:, None] * resp, axis=0))
        alive = Wk > _EMPTY_FRACTION * n_eff
        var = np.array(to_numpy(st["var"]), dtype=np.float64)
        coefs, icpts = [], []
        for k in range(K):
            if not alive[k]:
                coefs.append(st["coef"][k])
                icpts.append(float(to_numpy(st["intercept"][k])))
                continue
            w = sw * resp[:, k]
            scale = np.sqrt(var[k]) if cfg.scale_penalty else var[k]
            res = weighted_enet_fista(X, y, w, lam1=float(lam * scale), coef=st["coef"][k],
                                      max_iter=inner_steps, tol=0.0, check_every=inner_steps)
            coefs.append(res.coef)
            icpts.append(float(res.intercept))
        st["coef"] = xp.stack(coefs, axis=0)
        st["intercept"] = backend.asarray(np.asarray(icpts, dtype=np.float64))
        mu = st["intercept"][None, :] + X @ st["coef"].T
        rss = to_numpy(xp.sum(sw[:, None] * resp * (y[:, None] - mu) ** 2, axis=0))
        l1 = to_numpy(xp.sum(xp.abs(st["coef"]), axis=1))
        if cfg.shared_variance:
            var[:] = _sigma_update(float(Wk.sum()), float(rss.sum()), float(l1.sum()), lam,
                                   cfg.scale_penalty, cfg.var_floor)
        else:
            for k in range(K):
                if alive[k]:
                    var[k] = _sigma_update(Wk[k], rss[k], l1[k], lam, cfg.scale_penalty,
                                           cfg.var_floor)
        st["var"] = backend.asarray(var)
        if K > 1:
            g = penalized_multinomial_update(
                X_host, np.asarray(to_numpy(resp)), coef=to_numpy(st["gate_coef"]),
                intercept=to_numpy(st["gate_intercept"]), gamma=n_eff * cfg.alpha_gate,
                rho=n_eff * cfg.ridge_gate, sample_weight=sw_host, max_iter=1,
                cd_max_iter=cfg.gate_cd_sweeps, use_numba=use_numba)
            st["gate_coef"] = backend.asarray(np.asarray(g.coef, dtype=np.float64))
            st["gate_intercept"] = backend.asarray(np.asarray(g.intercept, dtype=np.float64))
        log_resp, log_norm, _ = e_step_xp(X, y, st)
        new_obj, ll = objective(log_norm)
        if not np.isfinite(new_obj):
            raise FloatingPointError("the penalised log-likelihood became non-finite")
        history.append(new_obj)
        change = abs(new_obj - obj)
        obj = new_obj
        if change <= cfg.tol * max(1.0, abs(obj)):
            converged = True
            break
    return {"state": _to_host(st), "objective": obj, "loglik": ll, "n_iter": n_iter,
            "converged": converged, "history": np.asarray(history),
            "log_resp": np.asarray(to_numpy(log_resp), dtype=np.float64)}
