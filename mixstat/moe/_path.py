r"""Regularisation path and model selection for the Gaussian MoE."""

from __future__ import annotations

import functools
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted

from .._backend import resolve_backend
from .._validation import (
    Interval,
    StrOptions,
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

__all__ = ["MoEPath", "moe_path", "GaussianMoERegressorCV", "ebic_gamma"]


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
    feature_names: np.ndarray | None = None  # the columns of a DataFrame X


def n_parameters(coef, gate_coef, shared_variance):
    """Non-zero expert slopes + K intercepts + non-zero gate slopes (at most K-1
    per feature) + K-1 gate intercepts + the variances."""
    K = coef.shape[0]
    df = int(np.count_nonzero(coef)) + K
    df += int(np.minimum(np.count_nonzero(gate_coef, axis=0), K - 1).sum()) + K - 1
    df += 1 if shared_variance else K
    return df


def _check_penalties(values, name):
    """A non-empty 1-D array of finite, non-negative penalties (``ValueError`` otherwise)."""
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of non-negative numbers, "
                         f"got {values!r}") from None
    if a.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    a = np.atleast_1d(a)
    if a.size == 0:
        raise ValueError(f"{name} must hold at least one value, got {values!r}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {values!r}")
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative (a negative penalty rewards "
                         f"large slopes), got {values!r}")
    return a


def _check_grid(alphas, n_alphas, eps):
    """Validated ``alphas`` (or None) after checking ``n_alphas`` and ``eps``."""
    if alphas is not None:
        return _check_penalties(alphas, "alphas")
    if (not isinstance(n_alphas, Integral) or isinstance(n_alphas, bool)) or n_alphas < 1:
        raise ValueError(f"n_alphas must be an integer >= 1, got {n_alphas!r}")
    if (not isinstance(eps, Real) or isinstance(eps, bool) or not np.isfinite(eps)
            or not 0 < eps <= 1):
        raise ValueError(f"eps (alpha_min / alpha_max) must lie in (0, 1], got {eps!r}")
    return None


def _check_components_grid(n_components):
    """The candidate numbers of experts as a sorted list of distinct ints >= 1."""
    a = np.asarray(n_components)
    if a.ndim > 1 or a.size == 0:
        raise ValueError("n_components must be an int or a non-empty 1-D sequence of ints, "
                         f"got {n_components!r}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"n_components must hold integers, got {n_components!r}")
    a = np.atleast_1d(a)
    if np.any(a < 1):
        raise ValueError(f"n_components must be >= 1, got {n_components!r}")
    return sorted({int(k) for k in a})


def ebic_gamma(n_samples, n_features):
    r"""The exponent :math:`\gamma` of the extended BIC for :math:`p = O(n^\kappa)`.

    Chen & Chen (2008, Theorem 1) show the EBIC selection consistent when
    :math:`p = O(n^\kappa)` and :math:`\gamma > 1 - 1/(2\kappa)`; with
    :math:`\kappa = \log p/\log n` this is the boundary

    .. math:: \gamma = 1 - \frac{\log n}{2\log p},

    clipped to :math:`[0, 1]`. It is 0 (the BIC) while :math:`p \le \sqrt n`
    and grows toward 1 as :math:`p` outgrows :math:`n`
    (:math:`n = 300, p = 6`: 0; :math:`n = 200, p = 500`: 0.57).
    """
    n, p = float(n_samples), float(n_features)
    if p <= 1 or n <= 1:
        return 0.0
    return float(np.clip(1.0 - np.log(n) / (2.0 * np.log(p)), 0.0, 1.0))


def _log_binom(p, s):
    from scipy.special import gammaln

    return float(gammaln(p + 1) - gammaln(s + 1) - gammaln(p - s + 1))


def model_space_size(coef, gate_coef, n_features=None, n_gate_features=None):
    r"""Log-size :math:`\sum_k \log\binom{p}{s_k} + (K-1)\log\binom{p_g}{s_g}` of
    the models with the supports of ``coef`` (expert :math:`k`: :math:`s_k`
    non-zero slopes among :math:`p` = ``n_features`` candidate columns) and
    ``gate_coef`` (:math:`s_g` columns with a non-zero gate slope, shared by the
    :math:`K-1` free gates, among :math:`p_g` = ``n_gate_features``, by default
    :math:`p`): the extended BIC's prior term, counted per block."""
    coef = np.asarray(coef)
    K, p = coef.shape
    p = p if n_features is None else n_features
    p_g = p if n_gate_features is None else n_gate_features
    out = sum(_log_binom(p, int(np.count_nonzero(coef[k]))) for k in range(K))
    if K > 1:
        s_g = int(np.count_nonzero(np.any(np.asarray(gate_coef) != 0, axis=0)))
        out += (K - 1) * _log_binom(p_g, s_g)
    return out


def _candidate_counts(est, n_features):
    """Numbers of candidate expert and gate columns of ``est``'s features."""
    ecols, gcols = est._feature_columns(n_features)
    return (n_features if ecols is None else ecols.size,
            n_features if gcols is None else gcols.size)


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


def _feature_names(columns, p):
    """Column names of a DataFrame as scikit-learn stores them (all strings), else None."""
    if columns is None:
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size != p or not all(isinstance(c, str) for c in names):
        return None
    return names


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
    n_alphas : int >= 1, default=30
    eps : float in (0, 1], default=1e-2
        ``alpha_min / alpha_max``.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative, finite, one per sample.
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
        ``converged``, ``alpha_max``, ``models`` and ``feature_names`` (the
        columns of a pandas ``X``, else None; the models then have
        ``feature_names_in_``).

    Raises
    ------
    ValueError
        For negative, NaN or infinite ``alphas``, an empty ``alphas``,
        ``n_alphas < 1``, ``eps`` outside (0, 1], ``cold_starts < 0``, any
        invalid :class:`GaussianMoERegressor` parameter, or invalid
        ``sample_weight``.
    """
    alphas = _check_grid(alphas, n_alphas, eps)
    if not isinstance(cold_starts, Integral) or isinstance(cold_starts, bool) or cold_starts < 0:
        raise ValueError(f"cold_starts must be an integer >= 0, got {cold_starts!r}")
    feature_names = getattr(X, "columns", None)
    est = GaussianMoERegressor(**params)
    est._validate_params()
    X, y, sw = _validate(X, y, sample_weight, est.n_components)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    path = _fit_path(X, y, sw, est, alphas=alphas, n_alphas=n_alphas, eps=eps, seed=seed,
                     return_models=bool(return_models), cold_starts=cold_starts)
    names = _feature_names(feature_names, X.shape[1])
    if names is not None and path.models:
        for m in path.models:
            m.feature_names_in_ = names
    return path._replace(feature_names=names)


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
        pe, pg = _candidate_counts(est, X.shape[1])
        if relax:
            refits = _refits(X, y, sw, path)
            return {"key": (K, ag), "path": path._replace(models=None),
                    "loglik": np.array([float(sw @ r.score_samples(X, y)) for r in refits]),
                    "df": np.array([r.n_parameters() for r in refits]),
                    "space": np.array([model_space_size(r.coef_, r.gate_coef_, pe, pg)
                                       for r in refits]),
                    "n_nonzero": np.array([np.count_nonzero(r.coef_) for r in refits]),
                    "refits": refits,
                    "admissible": np.array([_refit_admissible(r, X, y, sw) for r in refits])}
        L = path.alphas.size
        return {"key": (K, ag), "path": path, "loglik": path.log_likelihood,
                "df": path.df,
                "space": np.array([model_space_size(path.coef[i], path.gate_coef[i], pe, pg)
                                   for i in range(L)]),
                "n_nonzero": np.array([np.count_nonzero(path.coef[i]) for i in range(L)])}
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


# parameters of GaussianMoERegressor that the grid sets, or that the CV object
# uses for itself (its own seed, progress bar and parallel grid)
_GRID_OWN = ("n_components", "alpha", "alpha_gate", "warm_start", "random_state", "verbose",
             "n_jobs")

# methods answered by the selected model
_DELEGATED = ("predict", "predict_gates", "predict_experts", "predict_posterior",
              "predict_label", "score_samples", "log_likelihood", "score", "n_parameters",
              "bic", "aic", "sample", "refit", "inference")


def _delegate(name):
    target = getattr(GaussianMoERegressor, name)

    @functools.wraps(target)
    def method(self, *args, **kwargs):
        check_is_fitted(self, "best_estimator_")
        return getattr(self.best_estimator_, name)(*args, **kwargs)

    method.__doc__ = (f"``best_estimator_.{name}``: :meth:`GaussianMoERegressor.{name}` of "
                      "the selected model.\n\n" + (target.__doc__ or ""))
    return method


class GaussianMoERegressorCV(RegressorMixin, BaseEstimator):
    r"""Gaussian MoE with ``(alpha, alpha_gate, n_components)`` chosen on a grid.

    For each ``n_components`` and ``alpha_gate`` a warm-started path over
    ``alpha`` (:func:`moe_path`) is computed. By default (``relax=True``)
    every grid point's support is refitted without penalty
    (:meth:`GaussianMoERegressor.refit`, the relaxed Lasso of Meinshausen 2007
    at :math:`\phi = 0`; grid points that share a support share one refit)
    and the refit minimising the extended BIC of Chen & Chen (2008)

    .. math::
        \mathrm{EBIC}_\gamma = -2 \sum_i s_i \log p(y_i|x_i;\hat\theta)
        + df \log N + 2\gamma\Big(\sum_k \log\binom{p}{s_k}
        + (K-1)\log\binom{p}{s_g}\Big)

    is returned: the unpenalised log-likelihood, :math:`df` = non-zero expert
    and gate slopes + intercepts + variances (as
    :meth:`GaussianMoERegressor.n_parameters`), :math:`s_k` the non-zero
    slopes of expert :math:`k` and :math:`s_g` the gate columns, so the
    model-space term is counted per block. ``ebic_gamma='auto'`` takes
    :math:`\gamma = 1 - \log N / (2\log p)` clipped to :math:`[0, 1]`
    (:func:`ebic_gamma`: Chen & Chen's consistency bound for
    :math:`p = O(N^\kappa)`), which is 0 -- the BIC -- while
    :math:`p \le \sqrt N`.

    Why this default (measured, ``benchmarks/results/moe_cv_selection.md``):
    the Lasso's shrinkage lowers the likelihood of sparse fits, so BIC of the
    penalised fits (the modified BIC of Chamroukhi & Huynh 2019,
    ``relax=False, criterion='bic'``) leans to small penalties and keeps false
    slopes (Khalili design, 20 data sets: 1.85/4, 1.85/3 and 2.75/4 true zeros,
    fewer than the authors' RMoE with 2.45/2.20/3.15); scoring the refits
    removes the shrinkage, and on that design (:math:`\gamma = 0`) the default
    finds more true zeros than RMoE. With :math:`p \gg N` the :math:`\log N`
    per slope does not pay for the search over :math:`p` features (at
    :math:`N = 200, p = 500` BIC of the refits keeps 81 slopes, 76 false); the
    EBIC's :math:`\gamma = 0.57` there removes that over-selection.

    Grid points whose fit is degenerate -- a noise variance on the floor
    ``min_variance * var(y)``, or an expert with at least half as many
    non-zero slopes as its effective size :math:`N_k = \sum_i s_i\tau_{ik}`,
    where the unpenalised likelihood rewards interpolation -- are left out of
    the choice unless every grid point is degenerate. When ``cv`` is given,
    the mean held-out log-likelihood over the folds decides instead and the
    chosen triple is refitted on all the data. The grid runs in parallel
    through joblib (``n_jobs``), with a progress bar under ``verbose``.

    The object delegates to the selected model, ``best_estimator_`` (a
    :class:`GaussianMoERegressor`): ``predict``, ``predict_gates``,
    ``predict_experts``, ``predict_posterior``, ``predict_label``,
    ``score_samples``, ``log_likelihood``, ``score``, ``n_parameters``,
    ``bic``, ``aic``, ``sample``, ``refit``, ``inference`` and ``summary``
    (which adds the selection to the selected model's summary).

    Parameters
    ----------
    n_components : int or sequence of int, default=(1, 2, 3)
        Candidate numbers of experts.
    alphas : array-like, optional
        Expert penalties (finite, non-negative); by default ``n_alphas``
        values on a log grid from each path's ``alpha_max`` down to
        ``eps * alpha_max``.
    n_alphas : int, default=20
    eps : float in (0, 1], default=1e-2
    alpha_gates : sequence of float, default=(0.015,)
        Candidate gate penalties (finite, non-negative). The default was
        measured on the Khalili design (20 data sets, and 20 more to check):
        0.01 leaves false gate slopes (2.75/4 true zeros), 0.02 or a grid
        such as (0.01, 0.03) lets the criterion drop a true gate slope in
        1-2 of 20 data sets; 0.015 does neither
        (``benchmarks/results/moe_cv_selection.md``).
    cv : int, cross-validation generator or None, default=None
        None selects by ``criterion``.
    relax : bool, default=True
        Score the unpenalised refit on each grid point's support instead of
        the penalised fit, and return the selected refit (``alpha_`` and
        ``alpha_gate_`` then name the penalties whose support was refitted;
        the refit has ``support_`` and ``gate_support_``, and its
        :meth:`summary` has standard errors conditional on the selection).
        False scores the penalised fits.
    criterion : {'ebic', 'bic'}, default='ebic'
        The extended BIC above, or the BIC (:math:`\gamma = 0`). Ignored
        with ``cv``.
    ebic_gamma : 'auto' or float in [0, 1], default='auto'
        :math:`\gamma` of the extended BIC; 'auto' is :func:`ebic_gamma`.
    n_init : int, default=3
        Restarts of the intercept-only fit that starts each path, and
        ``n_init - 1`` fresh starts tried beside the warm start at every
        penalty (the best penalised objective is kept).
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    n_jobs : int or None, default=None
        The grid's paths run in parallel through joblib.
    **other parameters
        Every other parameter of :class:`GaussianMoERegressor`
        (``ridge_gate``, ``scale_penalty``, ``penalty_power``, ``variance``,
        ``min_variance``, ``init``, ``max_iter``, ``tol``, ``backend``, ...)
        is passed to each fit of the grid.

    Attributes
    ----------
    cv_results_ : dict of ndarray
        One entry per grid point (as scikit-learn's ``GridSearchCV``):
        ``params`` (list of dicts), ``param_n_components``,
        ``param_alpha_gate``, ``param_alpha`` (also as ``n_components``,
        ``alpha_gate``, ``alpha``), ``score`` (greater is better:
        ``-ebic`` / ``-bic``, or the mean held-out log-likelihood per
        sample with ``cv``) and ``rank_score`` (1 = selected). Without
        ``cv`` also ``log_likelihood``, ``df``, ``n_nonzero`` (expert
        slopes), ``bic``, ``ebic`` and ``admissible`` (not degenerate);
        with ``cv`` also ``cv_loglik`` and ``split_scores`` (grid points x
        folds).
    criterion_ : dict
        The same dict as ``cv_results_`` (the earlier name).
    best_params_ : dict
        ``n_components``, ``alpha`` and ``alpha_gate`` of the selected point.
    best_score_ : float
        Its ``score``.
    best_index_ : int
        Its row in ``cv_results_``.
    best_estimator_ : GaussianMoERegressor
        The selected fit (with ``relax=True`` the unpenalised refit); its
        fitted attributes (``coef_``, ``gate_coef_``, ...) are also set on
        this object. It has ``feature_names_in_`` when ``X`` had them.
    alpha_, alpha_gate_, n_components_ : the selected values
    ebic_gamma_ : float
        :math:`\gamma` used (0 with ``criterion='bic'``, NaN with ``cv``).
    n_features_in_, feature_names_in_

    References
    ----------
    J. Chen, Z. Chen, "Extended Bayesian information criteria for model
    selection with large model spaces", Biometrika 95(3), 2008.
    N. Meinshausen, "Relaxed Lasso", Comput. Stat. Data Anal. 52(1), 2007.
    F. Chamroukhi, B.-T. Huynh, "Regularized maximum likelihood estimation and
    feature selection in mixtures-of-experts models", J. SFdS 160(1), 2019.
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
        "criterion": [StrOptions({"ebic", "bic"})],
        "ebic_gamma": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, n_components=(1, 2, 3), *, alphas=None, n_alphas=20, eps=1e-2,
                 alpha_gates=(0.015,), cv=None, relax=True, criterion="ebic",
                 ebic_gamma="auto", ridge_gate=0.0, standardize=True, gate="softmax",
                 expert_features=None, gate_features=None, scale_penalty=True,
                 penalty_power=0.0,
                 variance="per-expert", min_variance=1e-3, n_init=3, init="residuals",
                 max_iter=500, tol=1e-6, random_state=None, backend=None, verbose=0,
                 n_jobs=None):
        self.n_components = n_components
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.alpha_gates = alpha_gates
        self.cv = cv
        self.relax = relax
        self.criterion = criterion
        self.ebic_gamma = ebic_gamma
        self.ridge_gate = ridge_gate
        self.standardize = standardize
        self.gate = gate
        self.expert_features = expert_features
        self.gate_features = gate_features
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

    def _base_params(self):
        """Every parameter of :class:`GaussianMoERegressor` that this object also
        has, except those the grid sets or that the CV object uses itself."""
        shared = set(GaussianMoERegressor._get_param_names()) & set(self._get_param_names())
        return {k: getattr(self, k) for k in sorted(shared - set(_GRID_OWN))}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the grid of paths and keep the selected model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For an invalid grid (``n_components`` not integers >= 1,
            ``alphas`` or ``alpha_gates`` empty, negative or not finite,
            ``n_alphas < 1``, ``eps`` outside (0, 1]) or invalid data.
        """
        Ks = _check_components_grid(self.n_components)
        ags = _check_penalties(self.alpha_gates, "alpha_gates").tolist()
        alphas = _check_grid(self.alphas, self.n_alphas, self.eps)
        backend = resolve_backend(self.backend, X, y, allowed=("numpy", "numba"))
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True,
                             ensure_min_samples=2)
        check_n_components(X.shape[0], max(Ks))
        sw = check_sample_weight(sample_weight, X)
        X = np.asfortranarray(X)
        y = kernel_vector(y)
        rng = check_random_state(self.random_state)
        params = self._base_params()
        # column subsets by name: resolved here, the grid's fits see arrays
        ecols, gcols = GaussianMoERegressor(**params)._feature_columns(
            X.shape[1], getattr(self, "feature_names_in_", None))
        params["expert_features"] = None if ecols is None else ecols.tolist()
        if params["gate"] != "constant":
            params["gate_features"] = None if gcols is None else gcols.tolist()
        keys = [(K, ag) for K in Ks for ag in ags]
        seeds = {key: int(rng.randint(np.iinfo(np.int32).max)) for key in keys}
        if self.cv is None:
            rows, best, model = self._select_ic(X, y, sw, params, keys, seeds, alphas, backend)
        else:
            rows, best, model = self._select_cv(X, y, sw, params, keys, seeds, alphas)
        K, ag, a = (int(rows["param_n_components"][best]), float(rows["param_alpha_gate"][best]),
                    float(rows["param_alpha"][best]))
        model.n_features_in_ = X.shape[1]
        if hasattr(self, "feature_names_in_"):
            model.feature_names_in_ = self.feature_names_in_
        else:
            model.__dict__.pop("feature_names_in_", None)
        self.cv_results_ = rows
        self.criterion_ = rows
        self.best_index_ = int(best)
        self.best_params_ = {"n_components": K, "alpha": a, "alpha_gate": ag}
        self.best_score_ = float(rows["score"][best])
        self.alpha_ = a
        self.alpha_gate_ = ag
        self.n_components_ = K
        self.best_estimator_ = model
        for name in ("coef_", "intercept_", "gate_coef_", "gate_intercept_",
                     "noise_variance_", "lower_bound_", "lower_bounds_", "log_likelihood_",
                     "n_iter_", "converged_", "backend_", "support_", "gate_support_"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))
            else:
                self.__dict__.pop(name, None)
        return self

    @staticmethod
    def _grid_rows(entries):
        """``cv_results_`` skeleton from (K, alpha_gate, alpha) triples."""
        K = np.array([e[0] for e in entries], dtype=int)
        ag = np.array([e[1] for e in entries], dtype=float)
        a = np.array([e[2] for e in entries], dtype=float)
        return {"params": [{"n_components": int(k), "alpha": float(x), "alpha_gate": float(g)}
                           for k, g, x in zip(K, ag, a, strict=True)],
                "param_n_components": K, "param_alpha_gate": ag, "param_alpha": a,
                "n_components": K, "alpha_gate": ag, "alpha": a}

    @staticmethod
    def _rank(score, eligible):
        """1 for the best eligible score, ties broken by grid order; ineligible last."""
        key = np.where(eligible, -score, np.inf)
        order = np.lexsort((np.arange(score.size), key))
        rank = np.empty(score.size, dtype=int)
        rank[order] = np.arange(1, score.size + 1)
        return rank

    def _select_ic(self, X, y, sw, params, keys, seeds, alphas, backend):
        """Selection by (E)BIC over the penalised fits or their refits."""
        fn = functools.partial(_grid_job, X=X, y=y, sw=sw, est_params=params,
                               alphas_by_key=None if alphas is None
                               else {k: alphas for k in keys},
                               n_alphas=self.n_alphas, eps=self.eps, folds=None,
                               relax=self.relax)
        jobs = [(K, ag, None, seeds[(K, ag)]) for K, ag in keys]
        results = parallel_map(fn, jobs, n_jobs=self.n_jobs, verbose=self.verbose,
                               desc="GaussianMoERegressorCV grid")
        where = [(res, i) for res in results for i in range(res["path"].alphas.size)]
        rows = self._grid_rows([(*res["key"], float(res["path"].alphas[i]))
                                for res, i in where])
        n_eff = float(sw.sum())
        ll = np.concatenate([res["loglik"] for res in results]).astype(float)
        df = np.concatenate([res["df"] for res in results]).astype(int)
        space = np.concatenate([res["space"] for res in results]).astype(float)
        if self.relax:
            ok = np.concatenate([res["admissible"] for res in results]).astype(bool)
        else:
            ok = np.array([_admissible(X, y, sw, res["path"], i, self.min_variance)
                           for res, i in where], dtype=bool)
        gamma = 0.0
        if self.criterion == "ebic":
            n_cand = _candidate_counts(GaussianMoERegressor(**params), X.shape[1])[0]
            gamma = (ebic_gamma(n_eff, n_cand) if self.ebic_gamma == "auto"
                     else float(self.ebic_gamma))
        bic = -2.0 * ll + df * np.log(n_eff)
        ebic = bic + 2.0 * gamma * space
        score = -(ebic if self.criterion == "ebic" else bic)
        # degenerate fits (which the unpenalised likelihood rewards) are left
        # out of the choice unless every grid point is degenerate
        eligible = ok if ok.any() else np.ones_like(ok)
        rank = self._rank(score, eligible)
        best = int(np.argmin(rank))
        rows.update(log_likelihood=ll, df=df,
                    n_nonzero=np.concatenate([res["n_nonzero"] for res in results]).astype(int),
                    bic=bic, ebic=ebic, admissible=ok, score=score, rank_score=rank)
        self.ebic_gamma_ = float(gamma)
        res, i = where[best]
        if self.relax:
            return rows, best, res["refits"][i]
        K, ag = res["key"]
        model = GaussianMoERegressor(**{**params, "n_components": K,
                                        "alpha": float(res["path"].alphas[i]),
                                        "alpha_gate": ag})
        model.n_features_in_ = X.shape[1]
        path = res["path"]
        st = MoEState(path.coef[i], path.intercept[i], path.gate_coef[i],
                      path.gate_intercept[i], path.noise_variance[i])
        log_resp, _, _ = e_step(X, y, st)
        model._set_result(X, y, [{
            "state": st, "objective": float(path.lower_bound[i]),
            "loglik": float(path.log_likelihood[i]), "n_iter": int(path.n_iter[i]),
            "converged": bool(path.converged[i]),
            "history": np.array([path.lower_bound[i]]), "log_resp": log_resp}], backend)
        model._set_features(X.shape[1], model._make_config(X, y, sw, backend))
        model._n_train = n_eff
        return rows, best, model

    def _select_cv(self, X, y, sw, params, keys, seeds, alphas):
        """Selection by the mean held-out log-likelihood over the folds."""
        cv = check_cv(self.cv)
        folds = list(cv.split(X, y))
        # a common grid per (K, alpha_gate): alpha_max of the full data
        grid = {}
        for key in keys:
            if alphas is not None:
                grid[key] = np.sort(alphas)[::-1]
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
        entries, split = [], []
        for key in keys:
            sc = np.array([r["score"] for r in sorted(
                (r for r in results if r["key"] == key), key=lambda r: r["fold"])])
            for i, a in enumerate(np.sort(grid[key])[::-1]):
                entries.append((key[0], key[1], float(a)))
                split.append(sc[:, i])
        rows = self._grid_rows(entries)
        split = np.array(split)
        score = split.mean(axis=1)
        rank = self._rank(score, np.isfinite(score))
        best = int(np.argmin(rank))
        rows.update(cv_loglik=score, split_scores=split, score=score, rank_score=rank)
        self.ebic_gamma_ = float("nan")
        K, ag, a = entries[best]
        a_grid = np.sort(grid[(K, ag)])[::-1]
        est = GaussianMoERegressor(**{**params, "n_components": K, "alpha_gate": ag})
        path = _fit_path(X, y, sw, est, alphas=a_grid[a_grid >= a], seed=seeds[(K, ag)],
                         return_models=True, cold_starts=est.n_init - 1)
        model = path.models[-1]
        model._n_train = float(sw.sum())
        if self.relax:
            model = _refit(model, X, y, sw)
        return rows, best, model

    def summary(self, X=None, y=None, sample_weight=None, **kwargs):
        """The selected model's :meth:`GaussianMoERegressor.summary`, with the
        selection (criterion, grid size, chosen triple) added.

        With ``relax=True`` (the default) the selected model is an unpenalised
        refit: given ``X, y`` the tables have standard errors, conditional on
        the selected support."""
        try:
            check_is_fitted(self, "best_estimator_")
        except NotFittedError:
            raise NotFittedError("summary() needs a fitted GaussianMoERegressorCV: call "
                                 "fit(X, y) first") from None
        s = self.best_estimator_.summary(X, y, sample_weight, **kwargs)
        if self.cv is not None:
            how = "held-out log-likelihood"
        elif self.criterion == "ebic":
            how = f"EBIC (gamma={self.ebic_gamma_:.3g})"
        else:
            how = "BIC"
        s.title = "Gaussian mixture of experts (selected by GaussianMoERegressorCV)"
        s.info.update({"Selected by": how + (" of refits" if self.relax else ""),
                       "Grid points": len(self.cv_results_["params"])})
        s.notes.insert(0, f"Selected n_components={self.n_components_}, "
                          f"alpha={self.alpha_:.4g}, alpha_gate={self.alpha_gate_:.4g} "
                          f"(cv_results_ row {self.best_index_}).")
        return s


for _name in _DELEGATED:
    setattr(GaussianMoERegressorCV, _name, _delegate(_name))
del _name
