r"""The EM loop on array-API devices (torch, CuPy): backend='torch' / 'cupy'.

The E-step runs through the array-API primitives (:func:`normal_log_density`,
:func:`log_softmax`, :func:`responsibilities`) on the device. The M-step has
two forms, chosen by :func:`choose_solver` (by the number of features and
the device's free memory):

- ``'gram'`` (up to ``p = 2048`` when it fits): the device computes, per
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
- ``'fista'`` (more features, or too little device memory): the expert
  step is a fixed number of steps of the matrix-free proximal-gradient solver
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
from ..primitives._gram import (
    _column_sums,
    gram_enet,
    multinomial_step_gram,
    weighted_gram_stats,
)
from ._em import (
    _EMPTY_FRACTION,
    _FULL_SWEEP_EVERY,
    _gate_step,
    _needs_full,
    _sigma_update,
    gate_columns,
    penalty,
)

# the Gram form up to this many features, the matrix-free FISTA form above
# (see choose_solver)
_GRAM_MAX_FEATURES = 2048
# up to this many features the Gram form whatever n (the host problems are small)
_GRAM_ANY_N_FEATURES = 512
# share of the device's free memory the Gram form may plan to use
_GRAM_MEMORY_SHARE = 0.8


def _free_device_bytes(backend):
    """Free memory of the backend's device in bytes, or None (CPU, unknown)."""
    try:
        if backend.name == "torch":
            import torch

            dev = torch.device(backend.device) if backend.device is not None else None
            if dev is None or dev.type != "cuda":
                return None
            return int(torch.cuda.mem_get_info(dev)[0])
        if backend.name == "cupy":
            import cupy

            return int(cupy.cuda.runtime.memGetInfo()[0])
    except Exception:  # noqa: BLE001 - no answer means no limit known
        return None
    return None


def choose_solver(n, p, K, backend=None):
    r"""The M-step form of the device EM for ``n`` samples, ``p`` features and
    ``K`` experts: ``'gram'`` or ``'fista'``.

    The Gram form costs, per EM iteration, :math:`2K` device GEMMs of
    :math:`n p^2` (experts and gate classes), one transfer of :math:`2Kp^2`
    numbers, and on the host :math:`2K` Cholesky factorisations
    (:math:`p^3/3` each) plus coordinate-descent sweeps of :math:`p^2`; its
    device memory is ``X``, one weighted copy of it and the :math:`Kp^2` Gram
    matrices. The FISTA form costs ``inner_steps`` matrix-vector passes per
    expert on the device (with a few host synchronisations each), and its
    gate step runs on the host over all of ``X`` (:math:`O(npK)` per sweep,
    after copying the responsibilities there): on an H200 at n=1e6, p=100,
    K=4 it took 3.66 s per iteration against 0.015 s for the Gram form.

    Rule: the Gram form while ``p <= 2048`` (at p=2048 each of the :math:`2K`
    host factorisations is about :math:`2.9\times10^9` flops; one
    :func:`~mixstat.primitives._gram.gram_enet` call took 1.4 s of CPU time
    on the loaded 2-core build machine), above 512 features only while
    ``p <= n`` (with fewer samples than features the :math:`p^3` host work
    exceeds the :math:`np^2` device products it replaces), and while its
    memory, :math:`8(2np + 2Kp^2 + 12nK)` bytes, fits in 80% of the device's
    free memory (when the device reports it); the FISTA form otherwise.
    """
    if p > _GRAM_MAX_FEATURES or (p > _GRAM_ANY_N_FEATURES and p > n):
        return "fista"
    need = 8 * (2 * n * p + 2 * K * p * p + 12 * n * K)
    free = None if backend is None else _free_device_bytes(backend)
    if free is not None and need > _GRAM_MEMORY_SHARE * free:
        return "fista"
    return "gram"


def _host_array(a):
    return np.array(to_numpy(a), dtype=np.float64)


def _lipschitz(xp, X, w, v, steps):
    """Power iteration on :math:`X_c^\top W X_c` from ``v`` (warm start across
    EM iterations: the weights move little); returns the Rayleigh quotient (a
    0-d device array: the experts' quotients come to the host together) and
    the vector."""
    xbar = (w @ X) / xp.sum(w)

    def op(b):
        u = w * (X @ b - xp.sum(xbar * b))
        return X.T @ u - xbar * xp.sum(u)

    for _ in range(steps):
        u = op(v)
        v = u / xp.sqrt(xp.sum(u * u))
    return xp.sum(v * op(v)), v


def e_step_xp(X, y, st, mu=None):
    """Device E-step: log-responsibilities, per-sample log-likelihood, means
    (``mu``, the experts' means, when they are already computed)."""
    if mu is None:
        mu = st["intercept"][None, :] + X @ st["coef"].T
    log_dens = normal_log_density(y[:, None], mu, st["var"][None, :])
    log_g = log_softmax(st["gate_intercept"][None, :] + X @ st["gate_coef"].T, axis=1)
    log_resp, log_norm = responsibilities(log_dens, log_g)
    return log_resp, log_norm, mu


def run_em_xp(X_host, y_host, sw_host, state, cfg, backend, inner_steps=10, solver="auto",
              timer=None):
    """Generalised EM on the device of ``backend``; returns the same dict as
    :func:`mixstat.moe._em.run_em` (host NumPy state).

    ``solver`` is ``'auto'`` (see :func:`choose_solver`), ``'gram'`` or
    ``'fista'``; ``inner_steps`` is the number of FISTA steps per expert and
    iteration in the ``'fista'`` form. ``timer``, for profiling, is called
    with the name of each phase when it ends (``'setup'``, then per
    iteration ``'expert_stats'``, ``'expert_solve'``, ``'variance'``,
    ``'gate'`` -- or ``'gate_stats'``, ``'gate_cd'``, ``'gate_search'`` in the
    Gram form -- and ``'e_step'``); it should synchronise the device.
    """
    if cfg.penalty_power > 0:
        raise ValueError("penalty_power > 0 runs on the CPU backends ('numpy', 'numba') "
                         "only; use backend='numba' or penalty_power=0")
    xp = backend.xp
    n, p = X_host.shape
    if solver == "auto":
        solver = choose_solver(n, p, cfg.n_components, backend)
    if solver not in ("gram", "fista"):
        raise ValueError(f"solver must be 'auto', 'gram' or 'fista', got {solver!r}")
    gram = solver == "gram"
    mark = timer if timer is not None else (lambda name: None)
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
    ones = xp.ones((n,), dtype=X.dtype, device=array_device(X))
    power = [None] * K  # FISTA form: power-iteration vectors, one per expert

    def objective(log_norm):
        ll = float(sw @ log_norm)  # a dot product: no long reduction kernel
        return ll / n_eff - penalty(hs, cfg), ll

    log_resp, log_norm, mu = e_step_xp(X, y, st)
    obj, ll = objective(log_norm)
    history = [obj]
    mark("setup")
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
            Wk = _host_array(_column_sums(xp, Wr, ones))
        alive = Wk > _EMPTY_FRACTION * n_eff
        if not gram:  # step sizes: power iterations on the device, one transfer
            quotients = []
            for k in np.flatnonzero(alive):
                if power[k] is None:
                    power[k] = xp.ones((p,), dtype=X.dtype, device=array_device(X)) / p**0.5
                q, power[k] = _lipschitz(xp, X, Wr[:, k], power[k], 3 if it > 1 else 20)
                quotients.append(q)
            lipschitz = dict(zip(np.flatnonzero(alive).tolist(),
                                 (1.05 * _host_array(xp.stack(quotients))).tolist()
                                 if quotients else []))
            new_coef = {}
        mark("expert_stats")
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
                res = weighted_enet_fista(X, y, Wr[:, k], lam1=float(lam * scale),
                                          coef=st["coef"][k], max_iter=inner_steps, tol=0.0,
                                          check_every=inner_steps, lipschitz=lipschitz[k])
                new_coef[k] = res.coef
                hs.intercept[k] = float(res.intercept)
        if not gram and new_coef:  # the experts' slopes in one transfer
            ks = sorted(new_coef)
            hs.coef[ks] = _host_array(xp.stack([new_coef[k] for k in ks]))
        to_device("coef", "intercept")
        mark("expert_solve")
        mu = st["intercept"][None, :] + X @ st["coef"].T
        r = y[:, None] - mu
        rss = _host_array(_column_sums(xp, Wr * (r * r), ones))
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
        mark("variance")
        if K > 1:
            gate_full = features is None
            if gram:
                cols = gate_columns(cfg, hs.gate_coef, gate_full)
                hs.gate_coef, hs.gate_intercept, _ = multinomial_step_gram(
                    X, resp, hs.gate_coef, hs.gate_intercept, gamma=n_eff * cfg.alpha_gate,
                    rho=n_eff * cfg.ridge_gate, sample_weight=sw,
                    cd_max_iter=cfg.gate_cd_sweeps, features=cols, timer=timer)
            else:  # the CPU gate step on the host copy (its own active set)
                _gate_step(X_host, sw_host, _host_array(resp), hs, cfg, n_eff,
                           full=gate_full)
            to_device("gate_coef", "gate_intercept")
            mark("gate")
        # the experts' means did not change since the variance step: reused
        log_resp, log_norm, mu = e_step_xp(X, y, st, mu)
        new_obj, ll = objective(log_norm)
        mark("e_step")
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
