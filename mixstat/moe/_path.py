r"""Regularisation path and model selection for the Gaussian MoE."""

from __future__ import annotations

import functools
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import check_cv

from .._backend import resolve_backend
from .._validation import (
    Interval,
    _fit_context,
    check_n_components,
    check_random_state,
    check_sample_weight,
    kernel_vector,
    validate_data,
)
from ..primitives import enet_lambda_max
from ..utils import parallel_map
from ._em import MoEState, e_step, run_em, state_from_resp
from ._moe import (
    GaussianMoERegressor,
    _canonical_order,
    _init_resp,
    column_scaling,
    standardize_columns,
    state_to_original,
)

__all__ = ["MoEPath", "moe_path", "GaussianMoERegressorCV"]


class MoEPath(NamedTuple):
    """A regularisation path (index 0 is ``alpha_max``, penalties decrease)."""

    alphas: np.ndarray  # (n_alphas,)
    coef: np.ndarray  # (n_alphas, K, p)
    intercept: np.ndarray  # (n_alphas, K)
    gate_coef: np.ndarray  # (n_alphas, K, p)
    gate_intercept: np.ndarray  # (n_alphas, K)
    noise_variance: np.ndarray  # (n_alphas, K)
    lower_bound: np.ndarray  # penalised objective (mean scale)
    log_likelihood: np.ndarray  # unpenalised, sum over samples
    df: np.ndarray  # degrees of freedom (as GaussianMoERegressor.n_parameters)
    n_iter: np.ndarray
    converged: np.ndarray
    alpha_max: float
    models: list | None = None


def n_parameters(coef, gate_coef, shared_variance):
    """Non-zero expert slopes + K intercepts + non-zero gate slopes (at most K-1
    per feature) + K-1 gate intercepts + the variances."""
    K = coef.shape[0]
    df = int(np.count_nonzero(coef)) + K
    df += int(np.minimum(np.count_nonzero(gate_coef, axis=0), K - 1).sum()) + K - 1
    df += 1 if shared_variance else K
    return df


def _alpha_max(X, y, sw, state, cfg):
    """Smallest ``alpha`` at which every expert slope is zero, at the
    intercept-only fit: the KKT bound of each expert's weighted Lasso."""
    log_resp, _, _ = e_step(X, y, state)
    resp = np.exp(log_resp)
    n_eff = float(sw.sum())
    from ._em import mean_gates, penalty_weights

    wts = penalty_weights(cfg, mean_gates(X, sw, state) if cfg.penalty_power > 0 else None)
    out = 0.0
    if cfg.expert_support is not None:  # expert_features: only those columns enter
        X = np.asfortranarray(X[:, np.asarray(cfg.expert_support[0], dtype=np.int64)])
    for k in range(cfg.n_components):
        w = sw * resp[:, k]
        if w.sum() <= 1e-8 * n_eff or X.shape[1] == 0:
            continue
        g = float(enet_lambda_max(X, y, w))
        scale = np.sqrt(state.var[k]) if cfg.scale_penalty else state.var[k]
        out = max(out, g / (n_eff * scale * wts[k]))
    # a relative margin of 1e-9: at exactly the KKT bound the soft threshold
    # compares two equal numbers that the EM kernels compute in different orders
    # (the compiled loop's Gram-matrix sweep left a slope of 2.6e-16 there)
    return out * (1.0 + 1e-9)


def _fit_path(X, y, sw, est, alphas=None, n_alphas=30, eps=1e-2, seed=0,
              return_models=False, cold_starts=0):
    """Warm-started path on validated arrays (X Fortran float64). With
    ``est.standardize`` the path runs on the standardised columns (the
    penalties and ``alpha_max`` are theirs) and reports coefficients on the
    original ones."""
    backend = resolve_backend(est.backend, X, y, allowed=("numpy", "numba"))
    X_orig = X
    scaling = column_scaling(X, sw) if est.standardize else None
    X = standardize_columns(X, scaling)
    cfg = est._make_config(X, y, sw, backend)
    n_eff = float(sw.sum())
    rng = np.random.default_rng(seed)
    # intercept-only MoE (every slope zeroed by an infinite expert penalty)
    cfg0 = cfg.__class__(**{**cfg.__dict__, "alpha": np.inf})
    best = None
    for restart in range(max(1, est.n_init)):
        resp = _init_resp(X, y, sw, cfg0, est.init, rng, restart)
        res = run_em(X, y, sw, state_from_resp(X, y, sw, resp, cfg0, n_eff), cfg0)
        if best is None or res["objective"] > best["objective"]:
            best = res
    state = best["state"]
    a_max = _alpha_max(X, y, sw, state, cfg)
    if alphas is None:
        top = a_max if a_max > 0 else 1.0
        alphas = np.geomspace(top, top * eps, n_alphas)
    alphas = np.sort(np.asarray(alphas, dtype=float))[::-1]
    K, p = cfg.n_components, X.shape[1]
    L = alphas.size
    out = {k: [] for k in ("coef", "intercept", "gate_coef", "gate_intercept",
                           "noise_variance", "lower_bound", "log_likelihood", "df",
                           "n_iter", "converged")}
    models = [] if return_models else None
    for a in alphas:
        cfg_a = cfg.__class__(**{**cfg.__dict__, "alpha": float(a)})
        res = run_em(X, y, sw, state, cfg_a)
        for restart in range(cold_starts):
            # fresh starts beside the warm one: the warm chain from the
            # intercept-only fit can sit in a poor basin (e.g. a scale mixture)
            resp = _init_resp(X, y, sw, cfg_a, est.init, rng, restart)
            cold = run_em(X, y, sw, state_from_resp(X, y, sw, resp, cfg_a, n_eff), cfg_a)
            if cold["objective"] > res["objective"]:
                res = cold
        state = res["state"]
        perm = _canonical_order(X, y, state, res["log_resp"])
        st = state_to_original(state.permute(perm), scaling)
        out["coef"].append(st.coef)
        out["intercept"].append(st.intercept)
        out["gate_coef"].append(st.gate_coef)
        out["gate_intercept"].append(st.gate_intercept)
        out["noise_variance"].append(st.var)
        out["lower_bound"].append(res["objective"])
        out["log_likelihood"].append(res["loglik"])
        out["df"].append(n_parameters(st.coef, st.gate_coef, cfg.shared_variance))
        out["n_iter"].append(res["n_iter"])
        out["converged"].append(res["converged"])
        if return_models:
            m = GaussianMoERegressor(**{**est.get_params(), "alpha": float(a)})
            m.n_features_in_ = p
            m._set_result(X_orig, y, [{**res, "state": st,
                                       "log_resp": res["log_resp"][:, perm]}], backend)
            m._set_features(p, cfg)
            models.append(m)
    arr = {k: np.asarray(v) for k, v in out.items()}
    return MoEPath(alphas=alphas, coef=arr["coef"].reshape(L, K, p),
                   intercept=arr["intercept"], gate_coef=arr["gate_coef"].reshape(L, K, p),
                   gate_intercept=arr["gate_intercept"], noise_variance=arr["noise_variance"],
                   lower_bound=arr["lower_bound"], log_likelihood=arr["log_likelihood"],
                   df=arr["df"], n_iter=arr["n_iter"], converged=arr["converged"],
                   alpha_max=float(a_max), models=models)


def _validate(X, y, sample_weight, n_components):
    X, y = _check_xy(X, y)
    check_n_components(X.shape[0], n_components)
    sw = check_sample_weight(sample_weight, X)
    return np.asfortranarray(X), kernel_vector(y), sw


def _check_xy(X, y):
    from sklearn.utils.validation import check_X_y

    return check_X_y(X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)


def moe_path(X, y, *, alphas=None, n_alphas=30, eps=1e-2, sample_weight=None,
             return_models=False, cold_starts=0, random_state=0, **params):
    r"""Warm-started regularisation path of :class:`GaussianMoERegressor`.

    The path starts at ``alpha_max``, the smallest expert penalty at which
    every expert slope is zero (the KKT bound
    :math:`\max_k \|\sum_i s_i\tau_{ik}(x_i-\bar x_k)(y_i-\bar y_k)\|_\infty
    / (N\sigma_k^{c})`, with :math:`c=1` for the scaled penalty and 2
    otherwise, at the intercept-only mixture of experts), and decreases on a
    log grid down to ``eps * alpha_max``; each fit starts from the previous
    one (one EM run per penalty).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    alphas : array-like, optional
        The expert penalties (sorted decreasing); by default a log grid.
    n_alphas : int, default=30
    eps : float, default=1e-2
        ``alpha_min / alpha_max``.
    sample_weight : array-like of shape (n_samples,), optional
    return_models : bool, default=False
        Also return a fitted :class:`GaussianMoERegressor` per penalty.
    cold_starts : int, default=0
        Fresh initialisations tried at every penalty beside the warm start
        (the best penalised objective continues the path).
    random_state : int, default=0
        Seed of the initialisation of the intercept-only fit.
    **params
        Any other parameter of :class:`GaussianMoERegressor`
        (``n_components``, ``alpha_gate``, ``scale_penalty``, ...).

    Returns
    -------
    MoEPath
        Named tuple with ``alphas``, ``coef`` (n_alphas, K, p), ``intercept``,
        ``gate_coef``, ``gate_intercept``, ``noise_variance``,
        ``lower_bound``, ``log_likelihood`` (unpenalised), ``df``, ``n_iter``,
        ``converged``, ``alpha_max`` and ``models``.
    """
    est = GaussianMoERegressor(**params)
    est._validate_params()
    X, y, sw = _validate(X, y, sample_weight, est.n_components)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    return _fit_path(X, y, sw, est, alphas=alphas, n_alphas=n_alphas, eps=eps, seed=seed,
                     return_models=return_models, cold_starts=cold_starts)


_MAX_SUPPORT_FRACTION = 0.5  # as relaxed_bic_path's default


def _admissible(X, y, sw, path, i, min_variance):
    """Whether grid point ``i`` of ``path`` may be chosen by BIC: no noise
    variance on the floor ``min_variance * var(y)`` and every expert's support
    below ``_MAX_SUPPORT_FRACTION`` of its effective size :math:`N_k` (beyond
    that the unpenalised likelihood rewards interpolation)."""
    n_eff = float(sw.sum())
    ybar = float(sw @ y) / n_eff
    var_y = float(sw @ (y - ybar) ** 2) / n_eff
    floor = float(min_variance) * (var_y if var_y > 0 else 1.0)
    st = MoEState(path.coef[i], path.intercept[i], path.gate_coef[i], path.gate_intercept[i],
                  path.noise_variance[i])
    log_resp, _, _ = e_step(X, y, st)
    nk = sw @ np.exp(log_resp)
    supp = np.count_nonzero(path.coef[i], axis=1)
    return bool(np.all(path.noise_variance[i] > floor * (1 + 1e-9))
                and np.all(supp < _MAX_SUPPORT_FRACTION * nk))


def _refit_admissible(ref, X, y, sw, max_support_fraction=_MAX_SUPPORT_FRACTION):
    """Whether an unpenalised refit may be chosen by BIC: every expert's
    support below ``max_support_fraction`` of its effective size :math:`N_k`
    and no noise variance on the floor."""
    nk = sw @ ref.predict_posterior(X, y)
    supp = np.count_nonzero(ref.coef_, axis=1)
    return bool(np.all(supp < max_support_fraction * nk)
                and np.all(ref.noise_variance_ > ref._var_floor * (1 + 1e-9)))


def _refit(model, X, y, sw):
    """:meth:`GaussianMoERegressor.refit`, its convergence warnings silenced
    (a grid point's refit is one candidate among many)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.refit(X, y, sample_weight=sw)


def _refits(X, y, sw, path):
    """The unpenalised refit of every grid point of ``path`` (fitted with
    ``return_models``). A support met before (the grid repeats supports)
    reuses the refit of its first (largest-penalty) grid point."""
    done, out = {}, []
    for m in path.models:
        key = ((m.coef_ != 0).tobytes(), np.any(m.gate_coef_ != 0, axis=0).tobytes())
        if key not in done:
            done[key] = _refit(m, X, y, sw)
        out.append(done[key])
    return out


def _heldout_loglik(X, y, sw, st):
    _, log_norm, _ = e_step(X, y, st)
    return float(sw @ log_norm) / float(sw.sum())


def _grid_job(job, X, y, sw, est_params, alphas_by_key, n_alphas, eps, folds, relax=False):
    """One (n_components, alpha_gate[, fold]) path; returns what selection needs.
    With ``relax`` every grid point is replaced by its unpenalised refit before
    it is scored."""
    K, ag, fold, seed = job
    est = GaussianMoERegressor(**{**est_params, "n_components": K, "alpha_gate": ag})
    alphas = alphas_by_key.get((K, ag)) if alphas_by_key is not None else None
    if fold is None:
        path = _fit_path(X, y, sw, est, alphas=alphas, n_alphas=n_alphas, eps=eps, seed=seed,
                         cold_starts=est.n_init - 1, return_models=relax)
        n_eff = float(sw.sum())
        if relax:
            refits = _refits(X, y, sw, path)
            bic = np.array([-2.0 * float(sw @ r.score_samples(X, y))
                            + r.n_parameters() * np.log(n_eff) for r in refits])
            ok = np.array([_refit_admissible(r, X, y, sw) for r in refits])
            return {"key": (K, ag), "path": path._replace(models=None), "bic": bic,
                    "refits": refits, "admissible": ok}
        bic = -2.0 * path.log_likelihood + path.df * np.log(n_eff)
        return {"key": (K, ag), "path": path, "bic": bic}
    train, test = folds[fold]
    Xtr = np.asfortranarray(X[train])
    path = _fit_path(Xtr, y[train], sw[train], est, alphas=alphas, n_alphas=n_alphas,
                     eps=eps, seed=seed, cold_starts=est.n_init - 1, return_models=relax)
    Xte, yte, ste = X[test], y[test], sw[test]
    if relax:
        states = [r._state() for r in _refits(Xtr, y[train], sw[train], path)]
    else:
        states = [MoEState(path.coef[i], path.intercept[i], path.gate_coef[i],
                           path.gate_intercept[i], path.noise_variance[i])
                  for i in range(path.alphas.size)]
    scores = [_heldout_loglik(Xte, yte, ste, st) for st in states]
    return {"key": (K, ag), "fold": fold, "alphas": path.alphas, "score": np.asarray(scores)}


class GaussianMoERegressorCV(GaussianMoERegressor):
    r"""Gaussian MoE with ``(alpha, alpha_gate, n_components)`` chosen on a grid.

    For each ``n_components`` and ``alpha_gate`` a warm-started path over
    ``alpha`` (:func:`moe_path`) is computed; the triple minimising the BIC

    .. math:: BIC = -2 \sum_i s_i \log p(y_i|x_i;\hat\theta) + df \log N

    with the *unpenalised* log-likelihood and :math:`df` = non-zero expert and
    gate slopes + intercepts + variances (the modified BIC of Chamroukhi &
    Huynh 2019) is kept. Degenerate grid points -- a noise variance on the
    floor ``min_variance * var(y)``, or an expert with at least half as many
    non-zero slopes as its effective size :math:`N_k = \sum_i s_i\tau_{ik}`,
    where the unpenalised likelihood rewards interpolation (:math:`p > n`) --
    are left out of the BIC choice, as in :func:`relaxed_bic_path`, unless
    every grid point is degenerate. When ``cv`` is given, the mean held-out
    log-likelihood over the folds decides instead and the chosen triple is
    refitted on all the data. The grid runs in parallel through joblib
    (``n_jobs``), with a progress bar under ``verbose``.

    With ``relax=True`` every grid point's support is refitted without
    penalty (:meth:`GaussianMoERegressor.refit`, the relaxed Lasso of
    Meinshausen 2007 at :math:`\phi = 0`) and the refit is scored (BIC, or
    held-out log-likelihood with ``cv``); the selected model is that refit.
    The Lasso's shrinkage lowers the likelihood of sparse fits, so BIC of the
    penalised fits leans to small penalties and keeps false positives; the
    refit removes the shrinkage (measured on the Khalili design:
    ``benchmarks/results/moe_fidelity.md``). Refits with a noise variance on
    the floor or an expert support of at least :math:`N_k/2` are left out of
    the BIC choice, as above. It is meant for :math:`p < n`: at
    :math:`p = 500 > n = 200` BIC of the refits over-selects (81 slopes, 76
    of them false, ``benchmarks/results/moe_peers.md``); use
    :func:`relaxed_bic_path` when :math:`p \gg n`.

    Parameters
    ----------
    n_components : int or sequence of int, default=(1, 2, 3)
        Candidate numbers of experts.
    alphas : array-like, optional
        Expert penalties; by default ``n_alphas`` values on a log grid from
        each path's ``alpha_max`` down to ``eps * alpha_max``.
    n_alphas : int, default=20
    eps : float, default=1e-2
    alpha_gates : sequence of float, default=(0.01,)
        Candidate gate penalties.
    cv : int, cross-validation generator or None, default=None
        None selects by BIC.
    relax : bool, default=False
        Score the unpenalised refit on each grid point's support instead of
        the penalised fit, and return the selected refit (``alpha_`` and
        ``alpha_gate_`` then name the penalties whose support was refitted).
        False is the modified BIC of Chamroukhi & Huynh (2019).
    n_init : int, default=3
        Restarts of the intercept-only fit that starts each path, and
        ``n_init - 1`` fresh starts tried beside the warm start at every
        penalty (the best penalised objective is kept).
    ridge_gate, scale_penalty, variance, min_variance, init,
    max_iter, tol, random_state, backend, verbose, n_jobs
        As in :class:`GaussianMoERegressor`.

    Attributes
    ----------
    alpha_, alpha_gate_, n_components_ : the selected values
    criterion_ : dict
        ``n_components``, ``alpha_gate``, ``alpha`` and ``bic`` (or ``cv_loglik``)
        of every grid point; with BIC also ``admissible`` (not degenerate).
    best_estimator_ : GaussianMoERegressor
        The selected fit (with ``relax=True`` the refit, which
        also has ``support_`` and ``gate_support_``); its fitted attributes
        (``coef_``, ``gate_coef_``, ...) are also set on this object.
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in GaussianMoERegressor._parameter_constraints.items()
           if k not in ("n_components", "alpha", "alpha_gate", "warm_start")},
        "n_components": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "alphas": [None, "array-like"],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, 1, closed="right")],
        "alpha_gates": ["array-like"],
        "cv": [None, "cv_object"],
        "relax": ["boolean"],
    }

    def __init__(self, n_components=(1, 2, 3), *, alphas=None, n_alphas=20, eps=1e-2,
                 alpha_gates=(0.01,), cv=None, relax=False, ridge_gate=0.0, scale_penalty=True,
                 penalty_power=0.0, variance="per-expert", min_variance=1e-3, n_init=3, init="residuals",
                 max_iter=500, tol=1e-6, random_state=None, backend=None, verbose=0,
                 n_jobs=None):
        self.n_components = n_components
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.alpha_gates = alpha_gates
        self.cv = cv
        self.relax = relax
        self.ridge_gate = ridge_gate
        self.scale_penalty = scale_penalty
        self.penalty_power = penalty_power
        self.variance = variance
        self.min_variance = min_variance
        self.n_init = n_init
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose
        self.n_jobs = n_jobs

    _supports_partial_fit = False

    def _base_params(self):
        keys = ("ridge_gate", "scale_penalty", "penalty_power", "variance", "min_variance", "n_init", "init",
                "max_iter", "tol", "backend")
        return {k: getattr(self, k) for k in keys}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the grid of paths and keep the selected model.

        Returns
        -------
        self
        """
        backend = resolve_backend(self.backend, X, y, allowed=("numpy", "numba"))
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True,
                             ensure_min_samples=2)
        Ks = np.atleast_1d(np.asarray(self.n_components, dtype=int)).tolist()
        ags = np.atleast_1d(np.asarray(self.alpha_gates, dtype=float)).tolist()
        if any(a < 0 for a in ags):
            raise ValueError("alpha_gates must be non-negative")
        check_n_components(X.shape[0], max(Ks))
        sw = check_sample_weight(sample_weight, X)
        X = np.asfortranarray(X)
        y = kernel_vector(y)
        rng = check_random_state(self.random_state)
        params = self._base_params()
        keys = [(K, ag) for K in Ks for ag in ags]
        seeds = {key: int(rng.randint(np.iinfo(np.int32).max)) for key in keys}
        alphas = None if self.alphas is None else np.asarray(self.alphas, dtype=float)
        if self.cv is None:
            jobs = [(K, ag, None, seeds[(K, ag)]) for K, ag in keys]
            fn = functools.partial(_grid_job, X=X, y=y, sw=sw, est_params=params,
                                   alphas_by_key=None if alphas is None
                                   else {k: alphas for k in keys},
                                   n_alphas=self.n_alphas, eps=self.eps, folds=None,
                                   relax=self.relax)
            results = parallel_map(fn, jobs, n_jobs=self.n_jobs, verbose=self.verbose,
                                   desc="GaussianMoERegressorCV grid")
            rows = []
            for res in results:
                K, ag = res["key"]
                for i, a in enumerate(res["path"].alphas):
                    rows.append((K, ag, float(a), float(res["bic"][i]), res, i))
            ok = np.array([r[4]["admissible"][r[5]] if self.relax
                           else _admissible(X, y, sw, r[4]["path"], r[5], self.min_variance)
                           for r in rows])
            # degenerate fits (which the unpenalised likelihood rewards) are left
            # out of the choice unless every grid point is degenerate
            best = min((r for r, good in zip(rows, ok) if good or not ok.any()),
                       key=lambda r: r[3])
            self.criterion_ = {
                "n_components": np.array([r[0] for r in rows]),
                "alpha_gate": np.array([r[1] for r in rows]),
                "alpha": np.array([r[2] for r in rows]),
                "bic": np.array([r[3] for r in rows]),
                "admissible": ok,
            }
            K, ag, a, _, res, i = best
            if self.relax:
                model = res["refits"][i]
            else:
                model = GaussianMoERegressor(**{**params, "n_components": K, "alpha": a,
                                                "alpha_gate": ag})
                model.n_features_in_ = X.shape[1]
                path = res["path"]
                st = MoEState(path.coef[i], path.intercept[i], path.gate_coef[i],
                              path.gate_intercept[i], path.noise_variance[i])
                log_resp, log_norm, _ = e_step(X, y, st)
                model._set_result(X, y, [{
                    "state": st, "objective": float(path.lower_bound[i]),
                    "loglik": float(path.log_likelihood[i]), "n_iter": int(path.n_iter[i]),
                    "converged": bool(path.converged[i]),
                    "history": np.array([path.lower_bound[i]]), "log_resp": log_resp}], backend)
        else:
            cv = check_cv(self.cv)
            folds = list(cv.split(X, y))
            # a common grid per (K, alpha_gate): alpha_max of the full data
            grid = {}
            for key in keys:
                if alphas is not None:
                    grid[key] = alphas
                    continue
                est = GaussianMoERegressor(**{**params, "n_components": key[0],
                                              "alpha_gate": key[1]})
                p0 = _fit_path(X, y, sw, est, alphas=[np.inf], seed=seeds[key])
                top = p0.alpha_max if p0.alpha_max > 0 else 1.0
                grid[key] = np.geomspace(top, top * self.eps, self.n_alphas)
            jobs = [(K, ag, f, seeds[(K, ag)]) for K, ag in keys for f in range(len(folds))]
            fn = functools.partial(_grid_job, X=X, y=y, sw=sw, est_params=params,
                                   alphas_by_key=grid, n_alphas=self.n_alphas, eps=self.eps,
                                   folds=folds, relax=self.relax)
            results = parallel_map(fn, jobs, n_jobs=self.n_jobs, verbose=self.verbose,
                                   desc="GaussianMoERegressorCV folds")
            rows = []
            for key in keys:
                sc = np.mean([r["score"] for r in results if r["key"] == key], axis=0)
                a_grid = np.sort(grid[key])[::-1]
                for i, a in enumerate(a_grid):
                    rows.append((key[0], key[1], float(a), float(sc[i])))
            self.criterion_ = {
                "n_components": np.array([r[0] for r in rows]),
                "alpha_gate": np.array([r[1] for r in rows]),
                "alpha": np.array([r[2] for r in rows]),
                "cv_loglik": np.array([r[3] for r in rows]),
            }
            K, ag, a, _ = max(rows, key=lambda r: r[3])
            a_grid = np.sort(grid[(K, ag)])[::-1]
            est = GaussianMoERegressor(**{**params, "n_components": K, "alpha_gate": ag})
            path = _fit_path(X, y, sw, est, alphas=a_grid[a_grid >= a], seed=seeds[(K, ag)],
                             return_models=True, cold_starts=est.n_init - 1)
            model = path.models[-1]
            if self.relax:
                model = _refit(model, X, y, sw)
        self.alpha_ = float(a)
        self.alpha_gate_ = float(ag)
        self.n_components_ = int(K)
        self.best_estimator_ = model
        for name in ("coef_", "intercept_", "gate_coef_", "gate_intercept_",
                     "noise_variance_", "lower_bound_", "lower_bounds_", "log_likelihood_",
                     "n_iter_", "converged_", "backend_"):
            setattr(self, name, getattr(model, name))
        return self

    def n_parameters(self):
        """Degrees of freedom of the selected model."""
        return self.best_estimator_.n_parameters()
