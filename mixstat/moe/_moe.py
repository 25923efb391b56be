r"""Lasso-penalised Gaussian mixture-of-experts regression (scikit-learn estimator)."""

from __future__ import annotations

import functools
import threading
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
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
from ..primitives import enet_lambda_max, warm_kmeans, weighted_enet_cd
from ..utils import parallel_map
from ._em import (
    EMConfig,
    MoEState,
    e_step,
    expert_means,
    gate_log_probs,
    run_em,
    state_from_resp,
)

__all__ = ["GaussianMoERegressor"]

_BACKENDS = ("numpy", "numba", "torch", "cupy")


def _torch_asked(backend):
    """Whether torch was asked for by name (the parameter or the config)."""
    from .._config import get_config

    return backend == "torch" or (backend in (None, "auto")
                                  and get_config()["backend"] == "torch")


def _to_host(a):
    from .._backend import to_numpy

    return None if a is None else to_numpy(a)


# --------------------------------------------------------- restart seeds ---
_SEEDER = threading.local()


def _restart_seeds(random_state, n_init):
    """Seeds of the ``n_init`` restarts:
    ``check_random_state(random_state).randint(2**31 - 1, size=n_init)``.

    For an int ``random_state`` the draws come from one generator per thread,
    re-seeded with :meth:`numpy.random.RandomState.seed` (the same legacy
    seeding, so the same seeds): building a new ``RandomState`` first seeds a
    Mersenne Twister from OS entropy, about 0.25 ms, a thirtieth of a small fit.
    """
    high = np.iinfo(np.int32).max
    if isinstance(random_state, (Integral, np.integer)) and not isinstance(random_state, bool):
        rs = getattr(_SEEDER, "rs", None)
        if rs is None:
            rs = _SEEDER.rs = np.random.RandomState(0)
        rs.seed(int(random_state))
        return rs.randint(high, size=n_init)
    return check_random_state(random_state).randint(high, size=n_init)


# --------------------------------------------------------- initialisation ---
def _soften(labels, K, eps=0.1):
    resp = np.full((labels.shape[0], K), eps / K)
    resp[np.arange(labels.shape[0]), labels] += 1.0 - eps
    return resp


# init='auto': the strategy of restart r is _AUTO_*[r % 4]. Below p < n the three
# differ in kind (a residual split, a clustering of (x, y), random memberships),
# so that one bad basin does not catch every restart (flexmix's NPreg: the
# residual split alone ends at -692.1 from every seed, k-means and random
# starts at the optimum -640.3). At p >= n random and k-means memberships are
# noise (ARI ~ 0), so the restarts vary the residual split and screen instead.
_AUTO_LOW_DIM = ("residuals", "kmeans", "random", "random")
_AUTO_HIGH_DIM = ("residuals", "screen", "residuals", "residuals")


def init_strategy(init, restart, n_samples, n_features):
    """The initialisation strategy of restart ``restart`` (resolves 'auto')."""
    if init != "auto":
        return init
    table = _AUTO_LOW_DIM if n_features < n_samples else _AUTO_HIGH_DIM
    return table[restart % len(table)]


def _init_resp(X, y, sw, cfg, init, rng, restart):
    """Initial responsibilities for one restart."""
    n = X.shape[0]
    K = cfg.n_components
    if K == 1:
        return np.ones((n, 1))
    init = init_strategy(init, restart, n, X.shape[1])
    if init == "random":
        return rng.dirichlet(np.ones(K), size=n)
    if init == "kmeans":
        # Lloyd's iterations from k-means++ seeds (the primitive; unweighted:
        # this is only a start); scikit-learn's KMeans spent more in its thread
        # pool than the whole EM at small n on a loaded machine
        Z = np.column_stack([X, y])
        sd = Z.std(axis=0)
        Z = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        Z[:, -1] *= np.sqrt(max(X.shape[1], 1))  # the response weighs as much as x
        km = warm_kmeans(Z, K, init="k-means++", distance="euclidean", max_iter=100,
                         random_state=int(rng.integers(2**31 - 1)))
        if km.labels is None:  # an empty cluster: fall back to random memberships
            return rng.dirichlet(np.ones(K), size=n)
        return _soften(np.asarray(km.labels), K)
    if init == "screen":
        return _screen_resp(X, y, sw, cfg, rng, restart)
    # 'residuals': split the residuals of a global Lasso (works when p >> n)
    n_eff = float(sw.sum())
    ybar = float(sw @ y) / n_eff
    sd_y = np.sqrt(max(float(sw @ (y - ybar) ** 2) / n_eff, 1e-300))
    lam_max = float(enet_lambda_max(X, y, sw))
    lam = n_eff * cfg.alpha * (sd_y if cfg.scale_penalty else sd_y**2)
    lam = max(lam, 0.05 * lam_max)
    fit = weighted_enet_cd(X, y, sw, lam1=lam, max_iter=200, tol=1e-4,
                           use_numba=cfg.use_numba, working_set=False)
    r = y - fit.intercept - X @ fit.coef
    order = np.argsort(r, kind="stable")
    if restart == 0:
        props = np.full(K, 1.0 / K)
    else:
        props = rng.dirichlet(np.full(K, 4.0))
    cuts = np.round(np.cumsum(props)[:-1] * n).astype(int)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.searchsorted(cuts, np.arange(n), side="right")
    return _soften(labels, K)


def _screen_resp(X, y, sw, cfg, rng, restart):
    """'screen': the features a global Lasso selects, then a mixture of experts
    on those few columns (cheap: low-dimensional) from a k-means (first restart)
    or random (others) start; its responsibilities start the full fit."""
    from dataclasses import replace

    n, p = X.shape
    lam_max = float(enet_lambda_max(X, y, sw))
    fit = weighted_enet_cd(X, y, sw, lam1=0.05 * lam_max, max_iter=200, tol=1e-4,
                           use_numba=cfg.use_numba, working_set=False)
    cap = max(2, min(n // 4, 50))
    support = np.flatnonzero(fit.coef)
    if support.size > cap:
        support = support[np.argsort(-np.abs(fit.coef[support]), kind="stable")[:cap]]
    if support.size == 0:
        return _init_resp(X, y, sw, cfg, "random", rng, restart)
    Xs = np.asfortranarray(X[:, np.sort(support)])
    low = replace(cfg, max_iter=min(cfg.max_iter, 200), tol=max(cfg.tol, 1e-6))
    resp0 = _init_resp(Xs, y, sw, low, "kmeans" if restart == 0 else "random", rng, restart)
    n_eff = float(sw.sum())
    res = run_em(Xs, y, sw, state_from_resp(Xs, y, sw, resp0, low, n_eff), low)
    return np.exp(res["log_resp"])


def _single_fit(seed_restart, X, y, sw, cfg, init, device_backend=None):
    """One restart: initialise, then EM. Module level so joblib can pickle it.

    With ``device_backend`` (torch / CuPy) the initialisation runs on the host
    and the EM loop on the device (:func:`mixstat.moe._em_xp.run_em_xp`)."""
    seed, restart = seed_restart
    rng = np.random.default_rng(seed)
    n_eff = float(sw.sum())
    try:
        resp = _init_resp(X, y, sw, cfg, init, rng, restart)
        state = state_from_resp(X, y, sw, resp, cfg, n_eff)
        if device_backend is not None:
            from ._em_xp import run_em_xp

            return run_em_xp(X, y, sw, state, cfg, device_backend)
        return run_em(X, y, sw, state, cfg)
    except (FloatingPointError, np.linalg.LinAlgError) as exc:
        return {"error": str(exc), "objective": -np.inf}


def _resolve_columns(spec, n_features, names, param):
    """Column subset ``spec`` (None, ints, a boolean mask or feature names) as a
    sorted int array, or None for every column."""
    if spec is None:
        return None
    arr = np.asarray(spec)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{param} must be a 1-d list of columns, got shape {arr.shape}")
    if arr.dtype == bool:
        if arr.size != n_features:
            raise ValueError(f"{param} as a boolean mask needs {n_features} entries, "
                             f"got {arr.size}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.dtype.kind in "USO":
        if names is None:
            raise ValueError(f"{param} names columns ({list(arr)!r}) but X has no feature "
                             "names: fit on a pandas DataFrame, or give column indices")
        lookup = {str(n): i for i, n in enumerate(names)}
        missing = [str(a) for a in arr if str(a) not in lookup]
        if missing:
            raise ValueError(f"{param}: no column named {missing!r} in X "
                             f"(columns: {list(lookup)!r})")
        cols = np.array([lookup[str(a)] for a in arr], dtype=np.int64)
    elif arr.dtype.kind in "iu" or (arr.size == 0):
        cols = arr.astype(np.int64)
        if cols.size and (cols.min() < -n_features or cols.max() >= n_features):
            raise ValueError(f"{param} has a column index outside [0, {n_features}): "
                             f"{list(arr)!r}")
        cols = np.where(cols < 0, cols + n_features, cols)
    else:
        raise ValueError(f"{param} must hold column indices, a boolean mask or feature "
                         f"names, got dtype {arr.dtype}")
    cols = np.unique(cols)
    return None if cols.size == n_features else cols


# ------------------------------------------------------ standardisation ---
def column_scaling(X, sw):
    """Weighted column means and standard deviations of ``X`` (the scaling of
    ``standardize=True``). A column whose deviation is zero, or below 1e-12 of
    its mean's magnitude (constant up to rounding), keeps the scale 1: it is
    centred to zero and its slope stays zero."""
    n_eff = float(sw.sum())
    mean = (sw @ X) / n_eff
    sd = np.sqrt(np.maximum(sw @ (X - mean) ** 2 / n_eff, 0.0))
    const = ~(sd > 1e-12 * np.abs(mean)) | (sd == 0)
    return mean, np.where(const, 1.0, sd)


def standardize_columns(X, scaling):
    """``(X - mean) / scale`` (Fortran order), or ``X`` when ``scaling`` is None."""
    if scaling is None:
        return X
    mean, scale = scaling
    return np.asfortranarray((X - mean) / scale)


def state_to_standardized(state, scaling):
    r"""Parameters on the original columns -> on the standardised ones
    (:math:`b^s = b \odot s`, :math:`b^s_0 = b_0 + b^\top m`; gates likewise)."""
    if scaling is None:
        return state
    mean, scale = scaling
    return MoEState(state.coef * scale, state.intercept + state.coef @ mean,
                    state.gate_coef * scale, state.gate_intercept + state.gate_coef @ mean,
                    state.var.copy())


def state_to_original(state, scaling):
    r"""Parameters on the standardised columns -> on the original ones
    (:math:`b = b^s / s`, :math:`b_0 = b^s_0 - b^\top m`; gates likewise, their
    intercepts re-centred to sum to zero, which leaves the softmax unchanged)."""
    if scaling is None:
        return state
    mean, scale = scaling
    coef = state.coef / scale
    gate_coef = state.gate_coef / scale
    gate_intercept = state.gate_intercept - gate_coef @ mean
    return MoEState(coef, state.intercept - coef @ mean, gate_coef,
                    gate_intercept - gate_intercept.mean(), state.var.copy())


def _canonical_order(X, y, state, log_resp):
    """Components sorted by their mean response (posterior-weighted mean of the
    expert's fitted values), then by noise variance: a label-switching-free order."""
    resp = np.exp(log_resp)
    mu = expert_means(X, state)
    wk = resp.sum(axis=0)
    m = (resp * mu).sum(axis=0) / np.maximum(wk, 1e-300)
    m = np.where(wk > 0, m, state.intercept)
    return np.lexsort((state.var, np.round(m, 10)))


class GaussianMoERegressor(RegressorMixin, BaseEstimator):
    r"""Lasso-penalised Gaussian mixture of experts with softmax gates.

    The conditional density of the response is

    .. math::
        p(y \mid x) = \sum_{k=1}^K g_k(x)\, N(y;\ b_{k0} + x^\top b_k,\ \sigma_k^2),
        \qquad
        g_k(x) = \frac{\exp(w_{k0} + x^\top w_k)}{\sum_l \exp(w_{l0} + x^\top w_l)} ,

    fitted by maximising the penalised log-likelihood (mean scale,
    :math:`N = \sum_i s_i` with sample weights :math:`s_i`)

    .. math::
        \frac1N \sum_i s_i \log p(y_i \mid x_i)
        - \alpha \sum_k \pi_k^\gamma \frac{\|b_k\|_1}{\sigma_k^{c}}
        - \alpha_g \sum_k \|w_k\|_1 - \frac{\rho_g}{2} \sum_k \|w_k\|_2^2 ,

    with :math:`c=1` when ``scale_penalty`` is on and :math:`c=0` otherwise,
    by a generalised EM algorithm (one coordinate-descent sweep per expert and
    one proximal-Newton gate step per iteration; the penalised objective never
    decreases).

    This is the EM-Lasso of Chamroukhi & Huynh (2019) and Khalili (2010)
    studied by Nguyen, Nguyen, Chamroukhi & McLachlan; on their sum scale the
    penalties are :math:`\lambda = N\alpha` and :math:`\gamma = N\alpha_g`.

    Parameters
    ----------
    n_components : int, default=2
        Number of experts :math:`K`.
    alpha : float, default=0.01
        l1 penalty on the expert slopes (mean scale; on the standardised
        columns when ``standardize``).
    alpha_gate : float, default=0.01
        l1 penalty on the gate slopes (mean scale; likewise).
    ridge_gate : float, default=0.0
        Ridge penalty :math:`\rho_g` on the gate slopes (Khalili's elastic net).
    standardize : bool, default=True
        Penalise the slopes of the standardised columns
        :math:`(x_j - \bar x_j)/s_j` (weighted mean and standard deviation),
        as glmnet does, so that the penalties do not depend on the units of
        ``X``: the fit on :math:`cX` equals the fit on :math:`X` with slopes
        divided by :math:`c`. Coefficients are always reported on the original
        scale; intercepts are never penalised. Off, the penalties apply to the
        raw slopes (the papers' setting when :math:`X` is already
        standardised; the fidelity benchmarks use it). An unpenalised fit
        (``alpha = alpha_gate = 0``) is the same either way.
    gate : {'softmax', 'constant'}, default='softmax'
        'softmax' gates depend on ``x`` (a mixture of experts); 'constant'
        gates are mixing proportions :math:`\pi_k` that do not depend on
        ``x``: a finite mixture of regressions (mixtools' ``regmixEM``,
        flexmix without a concomitant model).
    expert_features, gate_features : array-like of int, bool or str, optional
        The columns the experts and the gates use (indices, a boolean mask,
        or names of ``feature_names_in_`` when ``X`` is a DataFrame); by
        default every column (flexmix's ``y ~ x`` experts and
        ``concomitant = FLXPmultinom(~ z)`` gates). The other slopes are held
        at zero. ``gate_features`` cannot be combined with
        ``gate='constant'`` (which uses none).
    scale_penalty : bool, default=True
        Penalise :math:`\|b_k\|_1/\sigma_k` (Städler, Bühlmann & van de Geer
        2010), which keeps the objective bounded when :math:`p \ge n_k`; off
        gives the plain objective :math:`\alpha\sum_k\|b_k\|_1`.
    penalty_power : float in [0, 1], default=0.0
        Städler et al.'s :math:`\gamma`: expert :math:`k`'s penalty is
        weighted by :math:`\pi_k^\gamma`, with :math:`\pi_k = \frac1N\sum_i
        s_i g_k(x_i)` the average gate (their mixing weight; they consider
        :math:`\gamma \in \{0, 1/2, 1\}`). With :math:`\gamma = 0` every
        expert pays its full penalty although it carries only about
        :math:`N_k/N` of the log-likelihood; :math:`\gamma = 1` makes the
        penalty proportional to the expert's share and is recommended when
        :math:`p \gg n` (see :func:`relaxed_bic_path`). The gate step is then
        followed by a line search on the full objective (still monotone).
        CPU backends only.
    variance : {'per-expert', 'shared'}, default='per-expert'
        One noise variance per expert, or one for all.
    min_variance : float, default=1e-3
        Floor on every :math:`\sigma_k^2`, as a fraction of the variance of
        ``y`` (the bounded parameter space of the oracle inequality).
    n_init : int, default=4
        Number of restarts; the one with the best penalised objective is kept,
        among those whose noise variances stay above the floor when there are
        any (a variance on the floor is a degenerate spike component). A
        ``UserWarning`` says when the best value was reached by one restart
        only and the others ended more than 1 nat (log-likelihood scale)
        lower: the optimum may then be local, and more restarts are advised.
    init : {'auto', 'residuals', 'screen', 'kmeans', 'random'}, default='auto'
        'residuals' splits the sorted residuals of a global Lasso into
        :math:`K` groups (equal groups for the first restart, random
        proportions for the others); 'kmeans' clusters the standardised
        :math:`(x, y)`; 'random' draws Dirichlet responsibilities; 'screen'
        fits a small mixture of experts on the columns a global Lasso selects.
        'auto' varies the kind of start over the restarts: residuals, k-means,
        random, random (repeating) when :math:`p < n`; residuals, screen,
        residuals with random proportions (twice) when :math:`p \ge n`, where
        random memberships carry no signal. Several kinds of start guard against a
        basin that catches every start of one kind (short runs from varied
        starts: Biernacki, Celeux & Govaert 2003).
    max_iter : int, default=500
        Maximum number of EM iterations per restart.
    tol : float, default=1e-6
        Stop when the relative change of the penalised objective after an
        iteration with a full coordinate sweep is below ``tol``.
    warm_start : bool, default=False
        Start from the previous fit (one run, no restarts).
    random_state : int, RandomState instance or None, default=None
    backend : {'auto', 'numpy', 'numba', 'torch', 'cupy'} or None, default=None
        Resolved by :func:`mixstat._backend.resolve_backend`; 'numba' runs the
        Lasso sweeps in the Numba kernel; 'torch' / 'cupy' run the EM loop on
        the device (:mod:`mixstat.moe._em_xp`): up to 512 features, the
        E-step, the weighted Gram matrices of the expert and gate steps and
        the gate's line search on the device and the p x p coordinate descent
        on the host (the iterates of the CPU path); above, the expert steps by
        :func:`~mixstat.primitives.weighted_enet_fista` and the gate step on
        the host. Fitted attributes are NumPy arrays in every case.
    verbose : int, default=0
        Progress bar over the restarts when > 0.
    n_jobs : int or None, default=None
        Restarts run in parallel through joblib.

    Attributes
    ----------
    coef_ : ndarray of shape (n_components, n_features)
        Expert slopes :math:`b_k`.
    intercept_ : ndarray of shape (n_components,)
        Expert intercepts :math:`b_{k0}`.
    gate_coef_ : ndarray of shape (n_components, n_features)
        Gate slopes :math:`w_k` (symmetric parameterisation: all :math:`K`
        gates free, the penalty does not depend on a reference class).
    gate_intercept_ : ndarray of shape (n_components,)
        Gate intercepts (centred to sum to zero).
    noise_variance_ : ndarray of shape (n_components,)
        :math:`\sigma_k^2`.
    expert_features_, gate_features_ : ndarray of int
        The columns the experts and the gates use (``gate_features_`` is
        empty for ``gate='constant'``).
    restart_objectives_ : ndarray of shape (n_init,)
        Penalised objective (mean scale) reached by each restart (-inf for a
        restart that failed numerically), in the order of the restarts.
    lower_bound_ : float
        Penalised objective (mean scale) at the solution.
    lower_bounds_ : ndarray
        Its value after every iteration of the kept run (non-decreasing).
    log_likelihood_ : float
        Unpenalised training log-likelihood :math:`\sum_i s_i \log p(y_i|x_i)`.
    n_iter_ : int
    converged_ : bool
    backend_ : str
    n_features_in_ : int

    Notes
    -----
    Components are returned in a canonical order: increasing posterior mean of
    the expert's fitted values, so refits and permuted data give the same
    labels.

    References
    ----------
    T. Nguyen, H. D. Nguyen, F. Chamroukhi, G. J. McLachlan, "Non-asymptotic
    oracle inequalities for the Lasso in high-dimensional mixture of experts",
    arXiv:2009.10622.
    F. Chamroukhi, B.-T. Huynh, "Regularized maximum likelihood estimation and
    feature selection in mixtures-of-experts models", J. SFdS 160(1), 2019.
    A. Khalili, "New estimation and feature selection methods in
    mixture-of-experts models", Can. J. Stat. 38(4), 2010.
    N. Städler, P. Bühlmann, S. van de Geer, "l1-penalization for mixture
    regression models", TEST 19, 2010.
    C. Biernacki, G. Celeux, G. Govaert, "Choosing starting values for the EM
    algorithm for getting the highest likelihood in multivariate Gaussian
    mixture models", Comput. Stat. Data Anal. 41, 2003.
    J. Friedman, T. Hastie, R. Tibshirani, "Regularization paths for
    generalized linear models via coordinate descent", J. Stat. Softw. 33,
    2010 (glmnet's standardisation).
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "alpha_gate": [Interval(Real, 0, None, closed="left")],
        "ridge_gate": [Interval(Real, 0, None, closed="left")],
        "scale_penalty": ["boolean"],
        "penalty_power": [Interval(Real, 0, 1, closed="both")],
        "variance": [StrOptions({"per-expert", "shared"})],
        "min_variance": [Interval(Real, 0, None, closed="neither")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"auto", "residuals", "screen", "kmeans", "random"})],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "backend": [None, StrOptions({"auto", "numpy", "numba", "torch", "cupy"})],
        "verbose": ["verbose"],
        "n_jobs": [None, Integral],
        "standardize": ["boolean"],
        "gate": [StrOptions({"softmax", "constant"})],
        "expert_features": [None, "array-like"],
        "gate_features": [None, "array-like"],
    }

    def __init__(self, n_components=2, *, alpha=0.01, alpha_gate=0.01, ridge_gate=0.0,
                 standardize=True, gate="softmax", expert_features=None, gate_features=None,
                 scale_penalty=True, penalty_power=0.0, variance="per-expert", min_variance=1e-3, n_init=4,
                 init="auto", max_iter=500, tol=1e-6, warm_start=False,
                 random_state=None, backend=None, verbose=0, n_jobs=None):
        self.n_components = n_components
        self.alpha = alpha
        self.alpha_gate = alpha_gate
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
        self.warm_start = warm_start
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose
        self.n_jobs = n_jobs

    @classmethod
    def from_formula(cls, formula, data, sample_weight=None, **params):
        """Fit from an R-style formula on a DataFrame (needs formulaic).

        ``"y ~ x + I(x**2) | z"``: experts on ``x`` and ``x^2``, gates on
        ``z`` (flexmix's ``concomitant = FLXPmultinom(~ z)``); ``| 1`` for a
        constant gate. See :func:`mixstat.moe.design_from_formula`, which
        also builds the design matrix of new data for ``predict``.

        Returns
        -------
        GaussianMoERegressor
            Fitted, with ``formula_``; its tables and plots name the
            formula's columns.
        """
        from ._formula import design_from_formula

        X, y, fparams = design_from_formula(formula, data)
        if y is None:
            raise ValueError(f"the response of {formula!r} is not in data")
        est = cls(**{**fparams, **params}).fit(X, y, sample_weight=sample_weight)
        est.formula_ = formula
        return est

    # ------------------------------------------------------------- fit ---
    def _validate_fit_data(self, X, y, sample_weight):
        backend = resolve_backend(self.backend, X, y, allowed=_BACKENDS)
        if backend.name == "torch" and backend.device.type == "cpu" and not _torch_asked(
                self.backend):
            # torch CPU tensors: the compiled host path. The torch path's device
            # steps and the host coordinate descent take turns on the same cores
            # (its OpenMP pool spinning between them): 15 iterations at n=2e4,
            # p=20 took 3.1 s against 0.21 s from NumPy input (issue #21)
            X, y, sample_weight = _to_host(X), _to_host(y), _to_host(sample_weight)
            backend = resolve_backend(None, X, y, allowed=_BACKENDS)
        if backend.name in ("torch", "cupy"):
            X, y = _to_host(X), _to_host(y)
            sample_weight = _to_host(sample_weight)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True,
                             ensure_min_samples=2)
        check_n_components(X.shape[0], self.n_components)
        # (no weights: the ones that check_sample_weight would return, without its checks)
        sw = (np.ones(X.shape[0]) if sample_weight is None
              else check_sample_weight(sample_weight, X))
        X = np.asfortranarray(X)  # stored once per fit, column access in the sweeps
        y = kernel_vector(y)
        return X, y, sw, backend

    def _feature_columns(self, n_features, names=None):
        """The expert and gate columns as sorted int arrays (``None``: every
        column), from ``expert_features``, ``gate_features`` and ``gate``."""
        if names is None:
            names = getattr(self, "feature_names_in_", None)
        ecols = _resolve_columns(self.expert_features, n_features, names, "expert_features")
        if self.gate == "constant":
            if self.gate_features is not None:
                raise ValueError("gate='constant' uses no gate features; "
                                 f"got gate_features={self.gate_features!r}")
            gcols = np.zeros(0, dtype=np.int64)
        else:
            gcols = _resolve_columns(self.gate_features, n_features, names, "gate_features")
        return ecols, gcols

    def _make_config(self, X, y, sw, backend, n_components=None):
        from .._backend import numba_available

        K = int(n_components or self.n_components)
        ecols, gcols = self._feature_columns(X.shape[1])
        n_eff = float(sw.sum())
        ybar = float(sw @ y) / n_eff
        var_y = float(sw @ (y - ybar) ** 2) / n_eff
        if not var_y > 0:
            var_y = 1.0
        return EMConfig(
            n_components=K, alpha=float(self.alpha),
            expert_support=None if ecols is None else tuple(ecols for _ in range(K)),
            gate_support=gcols if K > 1 else None,
            alpha_gate=float(self.alpha_gate), ridge_gate=float(self.ridge_gate),
            scale_penalty=bool(self.scale_penalty),
            penalty_power=float(self.penalty_power),
            shared_variance=self.variance == "shared",
            var_floor=float(self.min_variance) * var_y, max_iter=int(self.max_iter),
            tol=float(self.tol),
            use_numba=backend.name == "numba"
            or (backend.name in ("torch", "cupy") and numba_available()))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the mixture of experts by generalised EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        X, y, sw, backend = self._validate_fit_data(X, y, sample_weight)
        scaling = column_scaling(X, sw) if self.standardize else None
        Xw = standardize_columns(X, scaling)  # the columns the penalties see
        cfg = self._make_config(Xw, y, sw, backend)
        self._var_floor = cfg.var_floor
        for name in ("_suff", "_t", "_online_cfg", "n_samples_seen_", "_x_scaling"):
            self.__dict__.pop(name, None)  # fit restarts the online statistics
        warm = (self.warm_start and hasattr(self, "coef_")
                and self.coef_.shape == (cfg.n_components, X.shape[1]))
        device = backend if backend.name in ("torch", "cupy") else None
        if warm:
            state = state_to_standardized(self._state(), scaling)
            if device is not None:
                from ._em_xp import run_em_xp

                results = [run_em_xp(Xw, y, sw, state, cfg, device)]
            else:
                results = [run_em(Xw, y, sw, state, cfg)]
        else:
            seeds = _restart_seeds(self.random_state, self.n_init)
            job = functools.partial(_single_fit, X=Xw, y=y, sw=sw, cfg=cfg, init=self.init,
                                    device_backend=device)
            tasks = [(int(s), r) for r, s in enumerate(seeds)]
            if len(tasks) == 1 and not self.verbose:
                results = [job(tasks[0])]  # one restart: no pool to set up
            else:
                # the device path keeps its restarts in this process (one device)
                results = parallel_map(job, tasks,
                                       n_jobs=1 if device is not None else self.n_jobs,
                                       verbose=self.verbose,
                                       desc="GaussianMoERegressor restarts")
        self._set_result(Xw, y, results, backend, scaling=scaling,
                         check_restarts=float(sw.sum()) if not warm else None)
        self._set_features(X.shape[1], cfg)
        self._n_train = float(sw.sum())
        for name in ("support_", "gate_support_"):
            self.__dict__.pop(name, None)  # a refit's support does not survive a new fit
        return self

    def _set_features(self, n_features, cfg):
        every = np.arange(n_features, dtype=np.int64)
        self.expert_features_ = (every if cfg.expert_support is None
                                 else np.asarray(cfg.expert_support[0], dtype=np.int64))
        self.gate_features_ = (every if cfg.gate_support is None
                               else np.asarray(cfg.gate_support, dtype=np.int64))

    def _set_result(self, X, y, results, backend, scaling=None, check_restarts=None):
        """Keep the best of ``results`` (EM runs on ``X``; with ``scaling`` the
        standardised columns, and the kept parameters are mapped back to the
        original ones). ``check_restarts`` (the effective sample size) records
        ``restart_objectives_`` and warns when the restarts disagree."""
        ok = [r for r in results if "error" not in r]
        if not ok:
            raise ValueError(
                "every EM run failed numerically (" + results[0]["error"] + "); "
                "increase min_variance or alpha, or standardise X and y")
        floor = getattr(self, "_var_floor", 0.0)

        def collapsed(r):
            return bool(np.any(r["state"].var <= floor * (1 + 1e-9)))

        # restarts whose noise variance sits on the floor (a spike component,
        # the degeneracy of p >= n_k) lose against any that does not
        best = max(ok, key=lambda r: (not collapsed(r), r["objective"]))
        if collapsed(best):
            warnings.warn(
                "a noise variance of GaussianMoERegressor reached the floor "
                f"min_variance * var(y) = {floor:.3g} in every restart: the fit is "
                "degenerate (a component interpolates its points); increase alpha, "
                "min_variance or n_init.", UserWarning, stacklevel=3)
        state = best["state"]
        perm = _canonical_order(X, y, state, best["log_resp"])
        state = state_to_original(state.permute(perm), scaling)
        self._x_scaling = scaling
        if check_restarts is not None:
            self._check_restarts(results, best, collapsed, check_restarts)
        self.coef_ = state.coef
        self.intercept_ = state.intercept
        self.gate_coef_ = state.gate_coef
        self.gate_intercept_ = state.gate_intercept
        self.noise_variance_ = state.var
        self.lower_bound_ = float(best["objective"])
        self.lower_bounds_ = best["history"]
        self.log_likelihood_ = float(best["loglik"])
        self.n_iter_ = int(best["n_iter"])
        self.converged_ = bool(best["converged"])
        self.backend_ = backend.name
        self._perm = perm
        for name in ("coef_", "intercept_", "gate_coef_", "gate_intercept_", "noise_variance_"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"the fit produced non-finite {name}; "
                                 "increase min_variance or the penalties")
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"GaussianMoERegressor did not converge in max_iter={self.max_iter} "
                "iterations; increase max_iter or tol.", ConvergenceWarning, stacklevel=3)

    def _check_restarts(self, results, best, collapsed, n_eff):
        """``restart_objectives_``; a warning when the best value was reached
        by one restart only and every other ended more than 1 nat lower."""
        objs = np.array([r["objective"] if "error" not in r else -np.inf for r in results])
        self.restart_objectives_ = objs
        fair = [r for r in results if "error" not in r and not collapsed(r)]
        if len(fair) < 2 or collapsed(best):
            return
        gaps = np.sort([n_eff * (best["objective"] - r["objective"]) for r in fair])
        if gaps[1] > 1.0:
            warnings.warn(
                f"only one of the {len(results)} restarts of GaussianMoERegressor reached "
                f"the best penalised log-likelihood; the next best ended {gaps[1]:.3g} "
                "nats lower: the optimum may be local. Increase n_init (see "
                "restart_objectives_).", UserWarning, stacklevel=3)

    # --------------------------------------------------- partial_fit ---
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        r"""One step of mini-batch stepwise EM (Liang & Klein 2009) on a batch.

        The first call fits the batch by EM (``init``, ``n_init`` restarts)
        and starts the running sufficient statistics. Every later call runs
        the E-step of the batch at the current parameters and moves the
        per-sample sufficient statistics of each expert
        (:math:`\bar n_k, \overline{\tau x}, \overline{\tau y},
        \overline{\tau x x^\top}, \overline{\tau x y}, \overline{\tau y^2}`) by
        :math:`s \leftarrow (1-\eta_t)s + \eta_t \hat s_{batch}` with
        :math:`\eta_t = (t+2)^{-0.6}` (Liang & Klein's stepwise EM; the
        exponent lies in their range (0.5, 1]); the experts' M-step is then
        exact on the statistics (weighted least squares, or the Lasso with the
        scaled penalty solved by coordinate descent on a Cholesky factor of
        the centred Gram matrix) with the closed-form variance. The softmax
        gates have no finite sufficient statistics: they take one
        proximal-Newton step on the batch's responsibilities, damped by the
        same :math:`\eta_t` (a stochastic-approximation step). Memory is
        :math:`O(K p^2)`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self

        References
        ----------
        P. Liang, D. Klein, "Online EM for unsupervised models", NAACL 2009.
        """
        if not hasattr(self, "_suff"):
            self.__dict__.pop("coef_", None)
            X, y, sw, backend = self._validate_fit_data(X, y, sample_weight)
            # the first batch's column scaling stays fixed for the later ones
            scaling = column_scaling(X, sw) if self.standardize else None
            X = standardize_columns(X, scaling)
            cfg = self._make_config(X, y, sw, backend)
            self._var_floor = cfg.var_floor
            self._online_cfg = cfg
            seeds = _restart_seeds(self.random_state, self.n_init)
            results = [_single_fit((int(sd), r), X, y, sw, cfg, self.init)
                       for r, sd in enumerate(seeds)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self._set_result(X, y, results, backend, scaling=scaling)
            self._set_features(X.shape[1], cfg)
            self._n_train = float(sw.sum())
            self._suff = self._batch_stats(X, y, sw, state_to_standardized(self._state(), scaling))
            self.n_samples_seen_ = X.shape[0]
            self._t = 0
            return self
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=False)
        y = kernel_vector(y)
        sw = check_sample_weight(sample_weight, X)
        scaling = self._x_scaling
        X = standardize_columns(np.asfortranarray(X), scaling)
        cfg = self._online_cfg
        self._t += 1
        eta = (self._t + 2.0) ** -0.6
        current = state_to_standardized(self._state(), scaling)
        batch = self._batch_stats(X, y, sw, current)
        self._suff = {k: (1 - eta) * v + eta * batch[k] for k, v in self._suff.items()}
        state = current.copy()
        self._stepwise_m_step(state, cfg)
        if state.coef.shape[0] > 1:
            from ._em import _gate_step

            resp = np.exp(e_step(X, y, current)[0])
            new = state.copy()
            _gate_step(X, sw, resp, new, cfg, float(sw.sum()), full=True, steps=1)
            state.gate_coef = (1 - eta) * state.gate_coef + eta * new.gate_coef
            state.gate_intercept = (1 - eta) * state.gate_intercept + eta * new.gate_intercept
        from ._em import objective

        _, log_norm, _ = e_step(X, y, state)
        out = state_to_original(state, scaling)
        self.coef_, self.intercept_ = out.coef, out.intercept
        self.gate_coef_, self.gate_intercept_ = out.gate_coef, out.gate_intercept
        self.noise_variance_ = out.var
        pi = None
        if cfg.penalty_power > 0:
            from ._em import mean_gates

            pi = mean_gates(X, sw, state)
        obj, ll = objective(log_norm, sw, float(sw.sum()), state, cfg, pi=pi)
        self.lower_bound_, self.log_likelihood_ = float(obj), float(ll)
        self.n_iter_ = self._t
        self.n_samples_seen_ += X.shape[0]
        return self

    def _batch_stats(self, X, y, sw, state):
        """Per-sample (mean-scale) expert sufficient statistics of a batch."""
        resp = np.exp(e_step(X, y, state)[0]) * sw[:, None]
        N = float(sw.sum())
        return {"n": resp.sum(axis=0) / N, "mx": resp.T @ X / N, "my": resp.T @ y / N,
                "Sxx": np.einsum("ik,ij,il->kjl", resp, X, X, optimize=True) / N,
                "Sxy": (resp * y[:, None]).T @ X / N, "Syy": resp.T @ (y * y) / N}

    def _stepwise_m_step(self, state, cfg):
        """Experts and variances from the running statistics (in place)."""
        from ._em import _sigma_update, penalty_weights

        s = self._suff
        K, p = state.coef.shape
        wts = penalty_weights(cfg, s["n"] if cfg.penalty_power > 0 else None)
        for k in range(K):
            nk = float(s["n"][k])
            if nk <= 1e-10:
                continue
            # the expert's columns (expert_features); the others stay at zero
            cols = (np.arange(p) if cfg.expert_support is None
                    else np.asarray(cfg.expert_support[k], dtype=np.int64))
            xbar = s["mx"][k][cols] / nk
            ybar = float(s["my"][k]) / nk
            C = s["Sxx"][k][np.ix_(cols, cols)] - nk * np.outer(xbar, xbar)
            c = s["Sxy"][k][cols] - nk * xbar * ybar
            syy = float(s["Syy"][k]) - nk * ybar * ybar
            scale = np.sqrt(state.var[k]) if cfg.scale_penalty else state.var[k]
            lam = cfg.alpha * wts[k]
            jitter = 1e-10 * max(float(np.trace(C)), 1e-300)
            eye = np.eye(cols.size)
            if lam > 0 and cols.size:
                R = np.linalg.cholesky(C + jitter * eye)
                u = np.linalg.solve(R, c)
                fit = weighted_enet_cd(np.asfortranarray(R.T), u, None, lam1=lam * scale,
                                       coef=state.coef[k][cols], fit_intercept=False,
                                       max_iter=200, tol=1e-8, use_numba=cfg.use_numba,
                                       working_set=False)
                b = np.asarray(fit.coef, dtype=float)
            else:
                b = np.linalg.solve(C + jitter * eye, c)
            rss = max(syy - 2 * float(b @ c) + float(b @ C @ b), 0.0)
            state.coef[k] = 0.0
            state.coef[k][cols] = b
            state.intercept[k] = ybar - float(xbar @ b)
            state.var[k] = _sigma_update(nk, rss, float(np.abs(b).sum()), lam,
                                         cfg.scale_penalty, cfg.var_floor)
        if cfg.shared_variance:
            state.var[:] = float(s["n"] @ state.var / s["n"].sum())

    def _state(self):
        return MoEState(self.coef_.copy(), self.intercept_.copy(), self.gate_coef_.copy(),
                        self.gate_intercept_.copy(), self.noise_variance_.copy())

    # ------------------------------------------------------ prediction ---
    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X

    def _check_Xy(self, X, y):
        check_is_fitted(self)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=False)
        return X, kernel_vector(y)

    def predict_gates(self, X):
        """Gate probabilities :math:`g_k(x)`, shape (n_samples, n_components)."""
        X = self._check_X(X)
        return np.exp(gate_log_probs(X, self._state()))

    def predict_experts(self, X):
        """Expert means :math:`b_{k0} + x^\\top b_k`, shape (n_samples, n_components)."""
        X = self._check_X(X)
        return expert_means(X, self._state())

    def predict(self, X):
        """Mixture mean :math:`E[y|x] = \\sum_k g_k(x)(b_{k0} + x^\\top b_k)`."""
        X = self._check_X(X)
        state = self._state()
        return np.sum(np.exp(gate_log_probs(X, state)) * expert_means(X, state), axis=1)

    def predict_posterior(self, X, y):
        """Responsibilities :math:`P(z=k \\mid x, y)`, rows summing to one."""
        X, y = self._check_Xy(X, y)
        log_resp, _, _ = e_step(X, y, self._state())
        return np.exp(log_resp)

    def predict_label(self, X, y):
        """Most probable expert for each ``(x, y)`` (MAP clustering)."""
        return np.argmax(self.predict_posterior(X, y), axis=1)

    def score_samples(self, X, y):
        """Conditional log-density :math:`\\log p(y_i \\mid x_i)` of each sample."""
        X, y = self._check_Xy(X, y)
        _, log_norm, _ = e_step(X, y, self._state())
        return log_norm

    def log_likelihood(self, X, y, sample_weight=None):
        """Unpenalised log-likelihood :math:`\\sum_i s_i \\log p(y_i|x_i)`.

        ``sample_weight`` must be finite, non-negative, one per sample and not
        all zero (``ValueError`` otherwise)."""
        ll = self.score_samples(X, y)
        if sample_weight is None:
            return float(ll.sum())
        return float(check_sample_weight(sample_weight, ll[:, None]) @ ll)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination :math:`R^2` of :meth:`predict`
        (scikit-learn's ``RegressorMixin.score``), with ``sample_weight``
        checked as in :meth:`log_likelihood`."""
        if sample_weight is not None:
            from sklearn.utils.validation import _num_samples

            sample_weight = check_sample_weight(sample_weight,
                                                np.empty((_num_samples(X), 0)))
        return super().score(X, y, sample_weight=sample_weight)

    def n_parameters(self):
        r"""Degrees of freedom: non-zero expert slopes, non-zero gate slopes
        (at most :math:`K-1` per feature, the free gate dimensions), :math:`K`
        expert intercepts, :math:`K-1` gate intercepts and the variances."""
        check_is_fitted(self)
        K = self.coef_.shape[0]
        df = int(np.count_nonzero(self.coef_)) + K
        df += int(np.minimum(np.count_nonzero(self.gate_coef_, axis=0), K - 1).sum()) + K - 1
        df += 1 if (self.variance == "shared") else K
        return df

    def bic(self, X, y):
        """Bayesian information criterion :math:`-2\\log L + df\\log n` (lower is better),
        with the unpenalised log-likelihood."""
        n = np.asarray(X).shape[0]
        return -2.0 * self.log_likelihood(X, y) + self.n_parameters() * np.log(n)

    def aic(self, X, y):
        """Akaike information criterion :math:`-2\\log L + 2\\,df` (lower is better)."""
        return -2.0 * self.log_likelihood(X, y) + 2.0 * self.n_parameters()

    # ------------------------------------------------------ inference ---
    def _is_penalised(self):
        return self.alpha > 0 or self.alpha_gate > 0 or self.ridge_gate > 0

    def _layout(self, shape=None):
        from ._inference import ParamLayout

        K, p = self.coef_.shape if shape is None else shape
        sup = getattr(self, "support_", None)
        if sup is None:
            every = np.arange(p, dtype=np.int64)
            supports = [getattr(self, "expert_features_", every)] * K
            gate_support = (getattr(self, "gate_features_", every) if K > 1
                            else np.zeros(0, np.int64))
        else:
            supports = [np.flatnonzero(sup[k]).astype(np.int64) for k in range(K)]
            gate_support = np.flatnonzero(self.gate_support_).astype(np.int64)
        return ParamLayout(K, p, supports, gate_support, self.variance == "shared",
                           feature_names=getattr(self, "feature_names_in_", None))

    def _support_config(self, X, y, sw, layout, backend=None):
        from dataclasses import replace

        if backend is None:
            backend = resolve_backend(None, X, y, allowed=("numpy", "numba"))
        cfg = self._make_config(X, y, sw, backend)
        return replace(cfg, alpha=0.0, alpha_gate=0.0, ridge_gate=0.0, penalty_power=0.0,
                       expert_support=tuple(layout.supports), gate_support=layout.gate_support)

    def refit(self, X, y, sample_weight=None):
        """Unpenalised refit on the selected support (the relaxed Lasso).

        The experts' non-zero slopes and the gate columns with a non-zero
        slope are refitted by maximum likelihood (generalised EM started from
        this fit, the other slopes held at zero). The result is a new
        unpenalised estimator (``alpha = alpha_gate = ridge_gate = 0``) with
        ``support_`` (K x p bool) and ``gate_support_`` (p bool), on which
        :meth:`inference` and :meth:`summary` give standard errors; the
        intervals are conditional on the selected support (post-selection
        inference is not accounted for).
        """
        from sklearn.base import clone

        check_is_fitted(self)
        new = clone(self).set_params(alpha=0.0, alpha_gate=0.0, ridge_gate=0.0,
                                     warm_start=False)
        X, y, sw, backend = new._validate_fit_data(X, y, sample_weight)
        if X.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the fit had {self.coef_.shape[1]}")
        support = self.coef_ != 0
        gate_support = (np.any(self.gate_coef_ != 0, axis=0) if self.coef_.shape[0] > 1
                        else np.zeros(X.shape[1], dtype=bool))
        new.support_, new.gate_support_ = support, gate_support
        layout = new._layout(self.coef_.shape)
        cfg = new._support_config(X, y, sw, layout)
        new._var_floor = cfg.var_floor
        st = self._state()
        st.coef[~support] = 0.0
        st.gate_coef[:, ~gate_support] = 0.0
        from ._em import run_em

        new._set_result(X, y, [run_em(X, y, sw, st, cfg)], backend)
        new._n_train = float(sw.sum())
        new.support_ = support[new._perm]
        return new

    def inference(self, X, y, sample_weight=None, *, method="observed", level=0.95,
                  n_bootstrap=200, random_state=None, n_jobs=None):
        r"""Standard errors, z, p-values and confidence intervals of the fit.

        Defined for an unpenalised fit (``alpha = alpha_gate = ridge_gate =
        0``) or a :meth:`refit` on a selected support: Lasso estimates are
        biased toward zero and have no valid Wald distribution.

        Parameters
        ----------
        X, y : the data the model was fitted on.
        sample_weight : array-like, optional (frequency weights).
        method : {'observed', 'sandwich', 'bootstrap', 'parametric-bootstrap'}
            'observed': inverse observed information (exact Hessian of the
            log-likelihood, central differences of the analytic score);
            'sandwich': :math:`I^{-1} J I^{-1}` with :math:`J` the outer product
            of the per-sample scores; 'bootstrap': resampled rows, refitted by
            EM from this fit, percentile intervals; 'parametric-bootstrap':
            responses redrawn from the fitted model.
        level : float, default=0.95
        n_bootstrap : int, default=200
        random_state, n_jobs : for the bootstrap (joblib through
            :func:`mixstat.primitives._bootstrap.bootstrap_replicates`).

        Returns
        -------
        MoEInference
            ``names`` ((block, term) pairs: experts' intercept, slopes on the
            support, variance; gate contrasts against the last expert, the
            reference class that makes the gates identifiable), ``params``,
            ``se``, ``z``, ``pvalue``, ``ci_low``, ``ci_high``, ``cov``.
        """
        from ..primitives._inference import invert_information
        from ._inference import (
            _NOT_IDENTIFIED,
            observed_information,
            per_sample_scores,
            wald,
        )

        check_is_fitted(self)
        if self._is_penalised():
            raise ValueError(
                "standard errors and intervals are not defined for a penalised fit "
                f"(alpha={self.alpha}, alpha_gate={self.alpha_gate}, ridge_gate="
                f"{self.ridge_gate}): the Lasso estimates are shrunk toward zero and "
                "selected by the data, so Wald or bootstrap intervals around them do not "
                "cover. Call model.refit(X, y) (unpenalised refit on the selected support) "
                "and ask the refitted model, or fit with alpha=alpha_gate=0.")
        if method not in ("observed", "sandwich", "bootstrap", "parametric-bootstrap"):
            raise ValueError("method must be 'observed', 'sandwich', 'bootstrap' or "
                             f"'parametric-bootstrap', got {method!r}")
        X, y = self._check_Xy(X, y)
        sw = check_sample_weight(sample_weight, X)
        X = np.asfortranarray(X)
        layout = self._layout()
        theta = layout.pack(self._state())
        if method in ("observed", "sandwich"):
            info = observed_information(theta, layout, X, y, sw)
            cov = invert_information(info, hint=_NOT_IDENTIFIED)
            if method == "sandwich":
                S, _ = per_sample_scores(theta, layout, X, y)
                cov = cov @ (S.T @ (sw[:, None] * S)) @ cov
            return wald(layout, theta, cov, method, level)
        return self._bootstrap(X, y, sw, layout, theta, method, level, n_bootstrap,
                               random_state, n_jobs)

    def _bootstrap(self, X, y, sw, layout, theta, method, level, n_bootstrap, random_state,
                   n_jobs):
        from ..primitives._bootstrap import bootstrap_replicates
        from ._inference import MoEInference, bootstrap_statistic

        cfg = self._support_config(X, y, sw, layout)
        kind = "parametric" if method == "parametric-bootstrap" else "nonparametric"
        stat = functools.partial(bootstrap_statistic, X=X, y=y, sw=sw, state=self._state(),
                                 cfg=cfg, layout=layout, kind=kind, model=self)
        reps = np.asarray(bootstrap_replicates(stat, np.zeros(X.shape[0]), int(n_bootstrap),
                                               random_state=random_state, n_jobs=n_jobs,
                                               verbose=self.verbose, desc="MoE bootstrap"))
        return MoEInference.from_replicates(
            layout.names, theta, reps, method, level,
            hint="refits diverged or a variance hit the floor; increase min_variance or use "
                 "method='observed'")

    def summary(self, X=None, y=None, sample_weight=None, *, method="observed", level=0.95,
                n_bootstrap=200, random_state=None, n_jobs=None):
        """A statsmodels-style summary (:class:`mixstat.utils.ModelSummary`).

        With ``X, y`` (the training data) of an unpenalised fit or a
        :meth:`refit`, each expert's and each gate contrast's table has the
        coefficient, standard error, z, p-value (below 1e-16 printed
        ``<1e-16``) and interval (see :meth:`inference` for ``method``; the
        variances' intervals are on the log scale); otherwise the tables
        list the estimates (for a penalised fit, the non-zero ones) and a
        note says why there are no standard errors. It always prints: where
        the observed information is singular (small samples, an almost empty
        expert, separable gates) or every bootstrap replicate fails, the
        tables hold the estimates and a note gives the reason. Rows are
        named by the columns of a DataFrame ``X`` (``feature_names_in_``),
        else ``x0, x1, ...``; experts and gates are numbered from 0, as in
        ``coef_``.
        """
        from sklearn.exceptions import NotFittedError

        from ..utils import ModelSummary

        try:
            check_is_fitted(self)
        except NotFittedError:
            raise NotFittedError("summary() needs a fitted GaussianMoERegressor: call "
                                 "fit(X, y) first") from None
        K, p = self.coef_.shape
        inf = None
        notes = []
        if method not in ("observed", "sandwich", "bootstrap", "parametric-bootstrap"):
            raise ValueError("method must be 'observed', 'sandwich', 'bootstrap' or "
                             f"'parametric-bootstrap', got {method!r}")
        if X is not None and y is not None and not self._is_penalised():
            try:
                inf = self.inference(X, y, sample_weight, method=method, level=level,
                                     n_bootstrap=n_bootstrap, random_state=random_state,
                                     n_jobs=n_jobs)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                if (not isinstance(exc, (np.linalg.LinAlgError, FloatingPointError))
                        and "bootstrap failed" not in str(exc)):
                    raise  # bad data: the caller's error, not the model's
                notes.append("Estimates only, no standard errors: " + str(exc).rstrip(".")
                             + ".")
        elif self._is_penalised():
            notes.append("Penalised (Lasso) fit: estimates only, non-zero slopes listed; "
                         "standard errors need an unpenalised refit: model.refit(X, y)"
                         ".summary(X, y).")
        else:
            notes.append("No standard errors: pass the training data, summary(X, y).")
        n = float(np.asarray(X).shape[0]) if X is not None else getattr(self, "_n_train", None)
        ll = self.log_likelihood(X, y, sample_weight) if (X is not None and y is not None) \
            else self.log_likelihood_
        df = self.n_parameters()
        info = {"Model": "GaussianMoERegressor", "Experts": K, "Observations": n,
                "Log-likelihood": ll, "Df": df, "AIC": -2 * ll + 2 * df,
                "BIC": -2 * ll + df * np.log(n) if n else None,
                "Iterations": self.n_iter_, "Converged": self.converged_,
                "Backend": self.backend_, "alpha": self.alpha, "alpha_gate": self.alpha_gate,
                "Covariance": inf.method if inf is not None else "none"}
        layout = self._layout()
        tables = []
        q = (1 - level) / 2
        if inf is not None:
            cols = ["coef", "std err", "z", "P>|z|", f"[{q:.3g}", f"{1 - q:.3g}]"]
            for block in dict.fromkeys(b for b, _ in inf.names):
                idx = inf.rows(block)
                rows = [inf.names[i][1] for i in idx]
                vals = np.column_stack([inf.params[idx], inf.se[idx], inf.z[idx],
                                        inf.pvalue[idx], inf.ci_low[idx], inf.ci_high[idx]])
                tables.append((block, rows, cols, vals))
            if inf.n_failed:
                notes.append(f"{inf.n_failed} of {inf.n_bootstrap} bootstrap replicates failed.")
            if K > 1:
                notes.append(f"Gates: contrasts w_k - w_{K - 1} (expert {K - 1} is the reference "
                             "class that makes the softmax gates identifiable).")
            if getattr(self, "support_", None) is not None:
                notes.append("Refit on the selected support: intervals are conditional on "
                             "the selection.")
            if inf.cov is not None:
                notes.append("Intervals of sigma^2: Wald intervals of log sigma^2 (delta "
                             "method) mapped back, never negative.")
        else:
            theta = layout.pack(self._state())
            for block in dict.fromkeys(b for b, _ in layout.names):
                idx = [i for i, (b, _) in enumerate(layout.names) if b == block]
                keep = [i for i in idx if layout.names[i][1] in ("intercept", "sigma^2")
                        or theta[i] != 0]
                tables.append((block, [layout.names[i][1] for i in keep], ["coef"],
                               theta[keep][:, None]))
        return ModelSummary("Gaussian mixture of experts", info, tables, notes)

    def sample(self, X, random_state=None):
        """Draw one response per row of ``X`` from the fitted conditional density.

        Returns
        -------
        y : ndarray of shape (n_samples,)
        labels : ndarray of shape (n_samples,)
            The expert each draw came from.
        """
        X = self._check_X(X)
        rng = check_random_state(random_state)
        state = self._state()
        g = np.exp(gate_log_probs(X, state))
        u = rng.uniform(size=(X.shape[0], 1))
        labels = np.minimum((np.cumsum(g, axis=1) < u).sum(axis=1), g.shape[1] - 1)
        mu = expert_means(X, state)[np.arange(X.shape[0]), labels]
        y = mu + np.sqrt(state.var[labels]) * rng.standard_normal(X.shape[0])
        return y, labels
