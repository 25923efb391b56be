r"""The EM loop on array-API devices (torch, CuPy): backend='torch' / 'cupy'.

The E-step runs through the array-API primitives (:func:`normal_log_density`,
:func:`log_softmax`, :func:`responsibilities`) on the device. The M-step has
two forms, chosen by the number of features:

- ``'gram'`` (``p <= 512``, the default there): the device computes, per
  expert and per gate class, the weighted Gram matrix :math:`X^\top W_k X`
  and cross-products (matrix-matrix products, which a GPU runs at full
  speed; :func:`mixstat.primitives._gram.weighted_gram_stats`) and the host
  solves the p x p problems by the coordinate descent of the CPU path
  (:func:`~mixstat.primitives._gram.gram_enet`); the gate step is the
  proximal-Newton step of the CPU path with its passes over ``X`` on the
  device (:func:`~mixstat.primitives._gram.multinomial_step_gram`). The
  updates, active sets and stopping rule are those of
  :func:`mixstat.moe._em.run_em` (with the NumPy gate path), so both paths
  follow the same iterates up to rounding (tested on torch CPU tensors and
  array-api-strict). ``X`` is centred once on the device (better conditioned
  Gram matrices); the intercepts are moved back at the end.
- ``'fista'`` (more features): the expert step is a fixed number of steps of
  the matrix-free proximal-gradient solver
  :func:`~mixstat.primitives.weighted_enet_fista` (warm-started: a
  generalised M-step; its step size from 3 power iterations per expert,
  warm-started from the previous EM iteration's vector, instead of 30 per
  call), the gate step the CPU step on a host copy of ``X``.

The objective is that of :mod:`mixstat.moe._em`, so at convergence both paths
reach the same fixed point.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import device as array_device

from .._backend import to_numpy
from ..primitives import (
    log_softmax,
    normal_log_density,
    responsibilities,
    weighted_enet_fista,
)
from ..primitives._gram import gram_enet, multinomial_step_gram, weighted_gram_stats
from ._em import (
    _EMPTY_FRACTION,
    _FULL_SWEEP_EVERY,
    _gate_step,
    _needs_full,
    _sigma_update,
    gate_columns,
    penalty,
)

# the Gram form up to this many features (K GEMMs of n p^2 and K p x p host
# problems per block and iteration), the matrix-free FISTA form above
_GRAM_MAX_FEATURES = 512


def _host_array(a):
    return np.array(to_numpy(a), dtype=np.float64)


def _lipschitz(xp, X, w, v, steps):
    """Power iteration on :math:`X_c^\top W X_c` from ``v`` (warm start across
    EM iterations: the weights move little); returns 1.05 x the Rayleigh
    quotient and the vector."""
    xbar = (w @ X) / xp.sum(w)

    def op(b):
        u = w * (X @ b - xp.sum(xbar * b))
        return X.T @ u - xbar * xp.sum(u)

    for _ in range(steps):
        u = op(v)
        v = u / xp.sqrt(xp.sum(u * u))
    return 1.05 * float(xp.sum(v * op(v))), v


def e_step_xp(X, y, st):
    """Device E-step: log-responsibilities, per-sample log-likelihood, means."""
    mu = st["intercept"][None, :] + X @ st["coef"].T
    log_dens = normal_log_density(y[:, None], mu, st["var"][None, :])
    log_g = log_softmax(st["gate_intercept"][None, :] + X @ st["gate_coef"].T, axis=1)
    log_resp, log_norm = responsibilities(log_dens, log_g)
    return log_resp, log_norm, mu


def run_em_xp(X_host, y_host, sw_host, state, cfg, backend, inner_steps=10, solver="auto"):
    """Generalised EM on the device of ``backend``; returns the same dict as
    :func:`mixstat.moe._em.run_em` (host NumPy state).

    ``solver`` is ``'auto'`` (``'gram'`` up to 512 features, ``'fista'``
    above), ``'gram'`` or ``'fista'``; ``inner_steps`` is the number of FISTA
    steps per expert and iteration in the ``'fista'`` form.
    """
    if cfg.penalty_power > 0:
        raise ValueError("penalty_power > 0 runs on the CPU backends ('numpy', 'numba') "
                         "only; use backend='numba' or penalty_power=0")
    xp = backend.xp
    n, p = X_host.shape
    if solver == "auto":
        solver = "gram" if p <= _GRAM_MAX_FEATURES else "fista"
    if solver not in ("gram", "fista"):
        raise ValueError(f"solver must be 'auto', 'gram' or 'fista', got {solver!r}")
    gram = solver == "gram"
    X = backend.asarray(X_host, dtype=None)
    y = backend.asarray(y_host)
    sw = backend.asarray(sw_host)
    n_eff = float(sw_host.sum())
    lam = n_eff * cfg.alpha
    K = cfg.n_components
    hs = state.copy()  # host parameters (in the centred coordinates below)
    if gram:  # centre X once on the device; intercepts follow
        shift = _host_array(sw @ X) / n_eff
        X = X - backend.asarray(shift)
        hs.intercept = hs.intercept + hs.coef @ shift
        hs.gate_intercept = hs.gate_intercept + hs.gate_coef @ shift
    else:
        shift = np.zeros(p)
    names = ("coef", "intercept", "gate_coef", "gate_intercept", "var")

    def to_device(*which):
        for name in which:
            st[name] = backend.asarray(np.asarray(getattr(hs, name), dtype=np.float64))

    st = {}
    to_device(*names)
    power = [None] * K  # FISTA form: power-iteration vectors, one per expert

    def objective(log_norm):
        ll = float(xp.sum(sw * log_norm))
        return ll / n_eff - penalty(hs, cfg), ll

    log_resp, log_norm, mu = e_step_xp(X, y, st)
    obj, ll = objective(log_norm)
    history = [obj]
    converged = False
    n_iter = 0
    for it in range(1, cfg.max_iter + 1):
        n_iter = it
        resp = xp.exp(log_resp)
        full = (it % _FULL_SWEEP_EVERY == 1) or _needs_full(history, cfg.tol)
        if cfg.expert_support is not None:
            features = [np.asarray(f, dtype=np.int64) for f in cfg.expert_support]
        elif full or cfg.alpha == 0 or not gram:
            features = None
        else:
            features = [np.flatnonzero(hs.coef[k]).astype(np.int64) for k in range(K)]
            if all(f.size == p for f in features):
                features = None
        Wr = sw[:, None] * resp
        if gram:
            stats = weighted_gram_stats(X, Wr, y[:, None])
            Wk = stats["sw"]
        else:
            Wk = _host_array(xp.sum(Wr, axis=0))
        alive = Wk > _EMPTY_FRACTION * n_eff
        for k in range(K):
            if not alive[k]:
                continue
            scale = np.sqrt(hs.var[k]) if cfg.scale_penalty else hs.var[k]
            if gram:
                feats = None if features is None else features[k]
                if feats is None or feats.size:
                    hs.coef[k] = gram_enet(stats["gram"][k], stats["cross"][k],
                                           lam1=float(lam * scale), coef=hs.coef[k],
                                           raw=stats["raw"][k], max_iter=1, tol=0.0,
                                           features=feats)
                hs.intercept[k] = stats["zbar"][k] - float(stats["xbar"][k] @ hs.coef[k])
            else:
                if power[k] is None:
                    power[k] = xp.ones((p,), dtype=X.dtype, device=array_device(X)) / p**0.5
                L, power[k] = _lipschitz(xp, X, Wr[:, k], power[k], 3 if it > 1 else 20)
                res = weighted_enet_fista(X, y, Wr[:, k], lam1=float(lam * scale),
                                          coef=st["coef"][k], max_iter=inner_steps, tol=0.0,
                                          check_every=inner_steps, lipschitz=L)
                hs.coef[k] = _host_array(res.coef)
                hs.intercept[k] = float(res.intercept)
        to_device("coef", "intercept")
        mu = st["intercept"][None, :] + X @ st["coef"].T
        rss = _host_array(xp.sum(Wr * (y[:, None] - mu) ** 2, axis=0))
        l1 = np.abs(hs.coef).sum(axis=1)
        if cfg.shared_variance:
            nz = l1 > 0
            hs.var[:] = _sigma_update(float(Wk.sum()), float(rss.sum()),
                                      float(np.sum(lam * l1[nz])), 1.0, cfg.scale_penalty,
                                      cfg.var_floor)
        else:
            for k in range(K):
                if alive[k]:
                    hs.var[k] = _sigma_update(Wk[k], rss[k], l1[k], lam, cfg.scale_penalty,
                                              cfg.var_floor)
        to_device("var")
        if K > 1:
            gate_full = features is None
            if gram:
                cols = gate_columns(cfg, hs.gate_coef, gate_full)
                hs.gate_coef, hs.gate_intercept, _ = multinomial_step_gram(
                    X, resp, hs.gate_coef, hs.gate_intercept, gamma=n_eff * cfg.alpha_gate,
                    rho=n_eff * cfg.ridge_gate, sample_weight=sw,
                    cd_max_iter=cfg.gate_cd_sweeps, features=cols)
            else:  # the CPU gate step on the host copy (its own active set)
                _gate_step(X_host, sw_host, _host_array(resp), hs, cfg, n_eff,
                           full=gate_full)
            to_device("gate_coef", "gate_intercept")
        log_resp, log_norm, mu = e_step_xp(X, y, st)
        new_obj, ll = objective(log_norm)
        if not np.isfinite(new_obj):
            raise FloatingPointError("the penalised log-likelihood became non-finite")
        history.append(new_obj)
        full_last = features is None or cfg.expert_support is not None
        change = abs(new_obj - obj)
        obj = new_obj
        if full_last and change <= cfg.tol * max(1.0, abs(obj)):
            converged = True
            break
    out = hs.copy()
    out.intercept = hs.intercept - hs.coef @ shift
    out.gate_intercept = hs.gate_intercept - hs.gate_coef @ shift
    return {"state": out, "objective": obj, "loglik": ll, "n_iter": n_iter,
            "converged": converged, "history": np.asarray(history),
            "log_resp": _host_array(log_resp)}
