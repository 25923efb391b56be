r"""MixERRegressor: hard top-1 mixture of regressors with MixER's closed-form gate."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_array, check_is_fitted

from .._backend import resolve_backend, to_numpy
from .._validation import (
    Interval,
    StrOptions,
    _fit_context,
    check_finite,
    check_n_components,
    check_random_state,
    validate_data,
)
from ..primitives._gram import weighted_gram_stats
from ..primitives._kmeans import kmeans_lstsq_gate, lstsq_gate_logits
from ..utils import parallel_map
from ..utils._summary import ModelSummary, SummaryMixin

__all__ = ["MixERRegressor"]


_BACKENDS = ("numpy", "numba", "torch", "cupy")


def _fit_one(args):
    est, X, y = args
    return est.fit(X, y)


def _to_host(a):
    """A device array (torch, CuPy, array-api-strict) as NumPy; anything else
    (NumPy, pandas, lists) unchanged, so that scikit-learn's validation still
    sees a DataFrame's column names."""
    if a is None or isinstance(a, np.ndarray):
        return a
    from array_api_compat import is_array_api_obj

    return to_numpy(a) if is_array_api_obj(a) else a


def _best_bias(L, k, target):
    """Bias shift of logit column ``k`` that best agrees with ``target`` while
    giving ``k`` at least one row of its cluster: (agreement, shift)."""
    other = L.copy()
    other[:, k] = -np.inf
    alt = np.argmax(other, axis=1)
    m = other[np.arange(L.shape[0]), alt] - L[:, k]  # k wins iff shift > m
    order = np.argsort(m, kind="stable")
    ms, in_k = m[order], target[order] == k
    ok_alt = (~in_k) & (alt[order] == target[order])
    got_k = np.cumsum(in_k)
    agree = got_k + (ok_alt.sum() - np.cumsum(ok_alt))  # threshold just above ms[j]
    # thresholds between distinct margins (a tie group moves together) that
    # give k at least one row of its cluster
    last = np.r_[ms[1:] > ms[:-1], True]
    cand = np.flatnonzero(last & (got_k > 0))
    j = cand[np.argmax(agree[cand])]
    shift = 0.5 * (ms[j] + ms[j + 1]) if j + 1 < ms.size else ms[j] + 1.0
    return int(agree[j]), shift


def unmask_gate(Z, coef, target):
    r"""Re-seed the gate column of every expert that the least-squares gate leaves empty.

    The least-squares gate regresses one-hot targets on :math:`[z, 1]`; with
    three or more classes its argmax can give a class no row at all, even when
    that class is a non-empty K-means cluster: the *masking* of linear
    regression of an indicator matrix (Hastie, Tibshirani & Friedman 2009,
    ESL section 4.2), which also hides small clusters at the edge of the data.
    For every expert :math:`k` that the argmax leaves empty while the target
    gives it rows, its column :math:`w_k` is replaced by the class-balanced
    least-squares fit of the indicator of :math:`k` (weights :math:`1/(2n_k)`
    on its rows and :math:`1/(2(n-n_k))` on the others), scaled so that its
    slopes compete with the other columns' (:math:`2^{-2}, \dots, 2^{10}`
    times the largest slope norm of the gate), with its bias shifted by the
    value that maximises the agreement of the new argmax with the target
    among the shifts that route at least one row of cluster :math:`k` to
    :math:`k` (one sort: row :math:`i` goes to :math:`k` exactly when the
    shift exceeds :math:`\max_{j\ne k}\ell_{ij} - \ell_{ik}`). The scale, or
    the original column with its best shift, that agrees best is kept
    (agreement: rows whose argmax equals the target). The gate stays linear
    (each expert's region a convex polyhedron); the other columns are not
    changed.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        The (standardised) gate features of the update.
    coef : ndarray of shape (n_features + 1, n_experts)
        The least-squares gate (last row: bias).
    target : ndarray of shape (n_samples,)
        The expert of every row in the K-means target of the update.

    Returns
    -------
    coef : ndarray of shape (n_features + 1, n_experts)
        A corrected copy.
    reseeded : list of int
        The experts whose column changed.
    """
    Z = np.asarray(Z, dtype=np.float64)
    W = np.array(coef, dtype=np.float64)
    target = np.asarray(target)
    n, K = Z.shape[0], W.shape[1]
    D = np.column_stack([Z, np.ones(n)])
    reseeded = []
    for _ in range(2 * K):  # a correction can empty an expert fixed before
        counts = np.bincount(np.argmax(D @ W, axis=1), minlength=K)
        empty = [k for k in range(K) if counts[k] == 0 and np.any(target == k)]
        if not empty:
            break
        for k in empty:
            L = D @ W
            agree0, shift0 = _best_bias(L, k, target)
            ind = (target == k).astype(np.float64)
            nk = ind.sum()
            sw = np.sqrt(np.where(ind > 0, 1.0 / (2 * nk), 1.0 / (2 * max(n - nk, 1.0))))
            wk = np.linalg.lstsq(D * sw[:, None], ind * sw, rcond=None)[0]
            # its slopes must compete with the other columns': try scales
            # relative to the largest slope norm of the gate
            ref = max(float(np.max(np.linalg.norm(W[:-1], axis=0))), 1e-12)
            base = wk * ref / max(float(np.linalg.norm(wk[:-1])), 1e-12)
            bias = np.r_[np.zeros(W.shape[0] - 1), 1.0]
            best = (agree0, W[:, k] + shift0 * bias)
            for scale in 2.0 ** np.arange(-2, 11):
                L[:, k] = D @ (scale * base)
                agree, shift = _best_bias(L, k, target)
                if agree > best[0]:
                    best = (agree, scale * base + shift * bias)
            W[:, k] = best[1]
            reseeded.append(k)
    return W, sorted(set(reseeded))


def lstsq_experts(X, routes, y, n_experts, previous=None):
    r"""Least-squares experts (with intercept) on their routed rows, array API.

    Expert :math:`k` is the ordinary least-squares fit of ``y`` on ``X`` over
    the rows with ``routes == k`` (the minimum-norm solution when the design is
    rank deficient, as :class:`~sklearn.linear_model.LinearRegression`). The
    data enter through their centred Gram matrices per expert, computed on the
    device of ``X`` (one product per expert,
    :func:`mixstat.primitives._gram.weighted_gram_stats`); the (p x p) solves
    run on the host.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any array-API array (torch on any device, CuPy, NumPy, array-api-strict).
    routes : ndarray of shape (n_samples,)
        Expert of every row (NumPy integers).
    y : array of shape (n_samples,)
        Same namespace and device as ``X``.
    n_experts : int
    previous : tuple (coef, intercept), optional
        An expert that receives no row keeps these values; without it, it is
        fitted on every row.

    Returns
    -------
    coef : ndarray of shape (n_experts, n_features)
    intercept : ndarray of shape (n_experts,)
    """
    from array_api_compat import array_namespace
    from array_api_compat import device as array_device

    xp = array_namespace(X, y)
    routes = np.asarray(routes)
    counts = np.bincount(routes, minlength=n_experts)
    onehot = np.eye(n_experts)[routes]
    onehot[:, counts == 0] = 1.0 if previous is None else 0.0
    Wd = xp.asarray(onehot, dtype=X.dtype, device=array_device(X))
    st = weighted_gram_stats(X, Wd, y[:, None])
    coef = np.zeros((n_experts, X.shape[1]))
    intercept = np.zeros(n_experts)
    for k in range(n_experts):
        if counts[k] == 0 and previous is not None:
            coef[k], intercept[k] = previous[0][k], previous[1][k]
            continue
        # normal equations: singular values of G are those of the centred
        # design squared, hence the cut-off 1e-12 (1e-6 on the design)
        coef[k] = np.linalg.lstsq(st["gram"][k], st["cross"][k], rcond=1e-12)[0]
        intercept[k] = st["zbar"][k] - float(st["xbar"][k] @ coef[k])
    return coef, intercept


def _as_linear_regression(coef, intercept, n_features):
    """A fitted :class:`~sklearn.linear_model.LinearRegression` holding the
    coefficients of a device least-squares fit (NumPy attributes)."""
    est = LinearRegression()
    est.coef_ = np.asarray(coef, dtype=np.float64).copy()
    est.intercept_ = float(intercept)
    est.n_features_in_ = int(n_features)
    est.rank_ = None
    est.singular_ = None
    return est


class MixERRegressor(SummaryMixin, RegressorMixin, BaseEstimator):
    r"""Hard top-1 mixture of regressors whose gate is MixER's closed-form update.

    The model routes each sample to one expert by a linear gate on the gate
    features :math:`z` (columns of ``X``, or a separate matrix ``Z``):

    .. math::
        k(z) = \arg\max_k \, ([z, 1] W)_k, \qquad \hat y(x, z) = f_{k(z)}(x).

    Fitting alternates (a classification-EM-like clusterwise regression whose
    partition lives on the gate features) for ``n_rounds`` rounds:

    1. fit expert :math:`k` on the samples routed to it;
    2. every ``gate_every`` rounds, the MixER gate update of Nzoyem, Barton &
       Deakin (2025) on the standardised gate features with the per-sample
       squared errors of every expert as ``expert_loss``: warm-started
       K-means (:math:`K` = ``n_experts``), median loss of each expert on each
       cluster, one-to-one cluster-to-expert matching, and
       :math:`W = \arg\min\|[Z+\varepsilon, 1]W - Y\|_F` for the one-hot
       targets :math:`Y` (see :func:`mixstat.primitives._kmeans.kmeans_lstsq_gate`).
       The update is skipped when K-means leaves a cluster empty or does not
       converge (then K-means restarts next time). An expert whose cluster is
       not empty but whom the least-squares gate's argmax gives no sample
       (the *masking* of indicator regression, ESL 4.2, frequent with
       :math:`K \ge 3` on one skewed feature) gets its gate column re-seeded
       by :func:`unmask_gate`, so that (almost always) every expert keeps
       samples.

    It stops when the routing of the training set no longer changes after a
    successful gate update (``converged_``; never True while an expert
    receives no training sample: that case, left when no gate update
    succeeded or the re-seeding could not give the expert samples, raises a
    :class:`ConvergenceWarning`). The gate starts as the reference's random gate,
    :math:`W \sim U(\pm 1/\sqrt{p+1})`. With fixed gate features the
    partition is the K-means partition (through the least-squares gate's
    argmax); the experts decide which expert takes which cluster.

    Parameters
    ----------
    n_experts : int, default=2
    expert : regressor, default=None
        Any scikit-learn regressor, cloned for every expert;
        None means :class:`~sklearn.linear_model.LinearRegression`.
    gate_features : None or array-like of int, default=None
        Columns of ``X`` the gate sees; None: all columns (unless ``Z`` is given
        to ``fit``).
    n_rounds : int, default=20
        Maximum number of alternations.
    gate_every : int, default=1
        Gate update every this many rounds.
    distance : {'l1-mean', 'euclidean'}, default='l1-mean'
        K-means distance (the reference uses the mean absolute difference).
    match : {'greedy', 'hungarian'}, default='greedy'
    kmeans_init : {'k-means++', 'uniform'}, default='k-means++'
        Initial K-means centres when there is no previous successful update.
        'uniform' is the reference's :math:`U(\pm 10^{-3})` (suited to
        contexts that start at zero); 'k-means++' is our default for tabular
        data (a documented deviation).
    kmeans_max_iter : int, default=20
    tol : float, default=1e-4
        K-means convergence tolerance.
    noise : float, default=1e-4
        Jitter of the least-squares design.
    random_state : int, RandomState or None, default=None
    n_jobs : int or None, default=None
        Experts are fitted in parallel through :func:`mixstat.utils.parallel_map`.
    backend : {None, 'auto', 'numpy', 'numba', 'torch', 'cupy'}, default=None
        Where the fit runs, resolved in ``fit`` by
        :func:`mixstat._backend.resolve_backend` (the parameter, then
        :func:`mixstat.config_context`, then the input's namespace, then the
        host). 'numpy' and 'numba' run on the host (MixER has no Numba kernel:
        both record ``backend_='numpy'``). 'torch' (any device) and 'cupy' run
        the K-means and least-squares gate on the device, and with
        ``expert=None`` the least-squares experts too (their Gram matrices on
        the device, :func:`lstsq_experts`); a user-given ``expert`` is fitted
        on the host. The fitted attributes are NumPy arrays and scikit-learn
        objects whatever the backend; ``predict`` returns NumPy.

    Attributes
    ----------
    experts_ : list of fitted regressors
    gate_coef_ : ndarray of shape (n_gate_features + 1, n_experts)
        Gate weights in the units of the raw gate features (last row: bias).
    cluster_centers_ : ndarray of shape (n_experts, n_gate_features) or None
        K-means centres of the last successful update (raw units).
    labels_ : ndarray of shape (n_samples,)
        Expert of every training sample.
    n_gate_updates_ : int
        Successful gate updates.
    n_unmasked_updates_ : int
        Gate updates in which :func:`unmask_gate` re-seeded a masked expert.
    expert_n_samples_ : ndarray of shape (n_experts,)
        Training samples routed to each expert.
    expert_mse_ : ndarray of shape (n_experts,)
        Training mean squared error of each expert on its routed samples
        (nan for an expert that receives none, which is warned about).
    backend_ : str
        What ran: ``'numpy'`` (host), ``'torch'`` or ``'cupy'``.
    n_iter_ : int
    converged_ : bool
    n_features_in_ : int

    References
    ----------
    Nzoyem, Barton & Deakin (2025), "Towards Foundational Models for Dynamical
    System Reconstruction: Hierarchical Meta-Learning via Mixture of Experts",
    arXiv:2502.05335. Späth (1979), "Algorithm 39: clusterwise linear
    regression", Computing 22. Hastie, Tibshirani & Friedman (2009), ESL 4.2.
    """

    _parameter_constraints: dict = {
        "n_experts": [Interval(numbers.Integral, 1, None, closed="left")],
        "expert": [None, HasMethods(["fit", "predict"])],
        "gate_features": [None, "array-like"],
        "n_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
        "gate_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "distance": [StrOptions({"l1-mean", "euclidean"})],
        "match": [StrOptions({"greedy", "hungarian"})],
        "kmeans_init": [StrOptions({"k-means++", "uniform"})],
        "kmeans_max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "noise": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [None, numbers.Integral],
        "backend": [None, StrOptions({"auto", *_BACKENDS})],
    }

    def __init__(self, n_experts=2, expert=None, gate_features=None, n_rounds=20,
                 gate_every=1, distance="l1-mean", match="greedy", kmeans_init="k-means++",
                 kmeans_max_iter=20, tol=1e-4, noise=1e-4, random_state=None, n_jobs=None,
                 backend=None):
        self.n_experts = n_experts
        self.expert = expert
        self.gate_features = gate_features
        self.n_rounds = n_rounds
        self.gate_every = gate_every
        self.distance = distance
        self.match = match
        self.kmeans_init = kmeans_init
        self.kmeans_max_iter = kmeans_max_iter
        self.tol = tol
        self.noise = noise
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.backend = backend

    # ------------------------------------------------------------------ helpers
    def _gate_input(self, X, Z, fitting):
        if Z is not None:
            if self.gate_features is not None:
                raise ValueError("Give either gate_features or Z, not both.")
            Z = check_array(Z, dtype=np.float64, ensure_all_finite=False)
            check_finite(Z, "Z")
            if Z.shape[0] != X.shape[0]:
                raise ValueError(
                    f"Z has {Z.shape[0]} rows but X has {X.shape[0]}: they must match."
                )
            if not fitting:
                if not self._separate_z:
                    raise ValueError("This model was fitted without Z; do not pass Z.")
                if Z.shape[1] != self.n_gate_features_:
                    raise ValueError(
                        f"Z has {Z.shape[1]} columns, the model was fitted with "
                        f"{self.n_gate_features_}."
                    )
            return Z
        if not fitting and self._separate_z:
            raise ValueError("This model was fitted with a separate Z: pass Z as well.")
        if self.gate_features is None:
            return X
        return X[:, self._gate_columns(X.shape[1])]

    def _gate_columns(self, p):
        cols = np.asarray(self.gate_features)
        if cols.ndim != 1 or cols.size == 0:
            raise ValueError("gate_features must be a non-empty 1-D list of column indices.")
        if cols.dtype == bool:
            if cols.size != p:
                raise ValueError("A boolean gate_features mask must have n_features entries.")
            cols = np.flatnonzero(cols)
        if not np.issubdtype(cols.dtype, np.integer) or cols.min() < -p or cols.max() >= p:
            raise ValueError(
                f"gate_features must be column indices in [0, {p}), got {cols.tolist()}"
            )
        return cols

    def _logits_std(self, Zs, W):
        return lstsq_gate_logits(Zs, W)

    def _fit_experts(self, X, y, routes, previous, template):
        jobs = []
        for k in range(self.n_experts):
            idx = routes == k
            if idx.sum() == 0:
                if previous is not None:
                    jobs.append(None)
                    continue
                idx = np.ones_like(idx)  # never routed yet: fit on all data
            jobs.append((clone(template), X[idx], y[idx]))
        todo = [j for j in jobs if j is not None]
        fitted = iter(parallel_map(_fit_one, todo, n_jobs=self.n_jobs))
        return [next(fitted) if j is not None else previous[k] for k, j in enumerate(jobs)]

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, Z=None):
        """Fit the experts and the gate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        Z : array-like of shape (n_samples, n_gate_features), optional
            Separate gate features (then ``gate_features`` must be None).

        Returns
        -------
        self
        """
        backend = resolve_backend(self.backend, X, y, Z, allowed=_BACKENDS)
        device = backend.name in ("torch", "cupy")
        if device:  # one host copy for scikit-learn's validation
            X, y, Z = _to_host(X), _to_host(y), _to_host(Z)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        check_n_components(X.shape[0], self.n_experts, "n_experts")
        self._separate_z = Z is not None
        z_names = getattr(Z, "columns", None)
        Zraw = self._gate_input(X, Z, fitting=True)
        # names for the summary: the DataFrame columns when there are some
        x_names = [str(c) for c in getattr(self, "feature_names_in_", [])] or \
            [f"x{j}" for j in range(X.shape[1])]
        if Z is not None:
            self._gate_names = [str(c) for c in z_names] if z_names is not None \
                else [f"z{j}" for j in range(Zraw.shape[1])]
        elif self.gate_features is None:
            self._gate_names = list(x_names)
        else:
            cols = np.arange(X.shape[1])[self._gate_columns(X.shape[1])]
            self._gate_names = [x_names[j] for j in cols]
        self._feature_names = x_names
        self.n_gate_features_ = Zraw.shape[1]
        rng = check_random_state(self.random_state)
        template = LinearRegression() if self.expert is None else self.expert
        K = self.n_experts

        mean = Zraw.mean(axis=0)
        scale = Zraw.std(axis=0)
        scale[scale <= 1e-12 * max(1.0, float(np.abs(Zraw).max()))] = 1.0
        Zs = (Zraw - mean) / scale
        self._z_mean, self._z_scale = mean, scale
        p = Zs.shape[1]
        bound = 1.0 / np.sqrt(p + 1)
        W = rng.uniform(-bound, bound, size=(p + 1, K))
        centers = None
        n_updates = 0
        n_unmasked = 0
        routes = np.argmax(lstsq_gate_logits(Zs, W), axis=1)
        # the device arrays: gate features always, data when the experts are
        # least squares (expert=None); otherwise the experts fit on the host
        device_experts = device and self.expert is None
        Zg = backend.asarray(Zs) if device else Zs
        if device_experts:
            # torch warns on read-only arrays (e.g. from a pandas Series)
            Xd = backend.asarray(X if X.flags.writeable else X.copy())
            yd = backend.asarray(y if y.flags.writeable else y.copy())
        experts = None
        lin = None  # (coef, intercept) of the device least-squares experts
        converged = False
        n_iter = 0
        for r in range(1, self.n_rounds + 1):
            n_iter = r
            if device_experts:
                lin = lstsq_experts(Xd, routes, yd, K, previous=lin)
            else:
                experts = self._fit_experts(X, y, routes, experts, template)
            if (r - 1) % self.gate_every != 0:
                continue
            if device_experts:
                preds = Xd @ backend.asarray(lin[0]).T + backend.asarray(lin[1])[None, :]
                xp = backend.xp
                losses = (preds - yd[:, None]) ** 2
                big = xp.full_like(losses, np.finfo(float).max)
                losses = xp.where(xp.isfinite(losses), losses, big)
            else:
                preds = np.column_stack([e.predict(X) for e in experts])
                losses = (preds - y[:, None]) ** 2
                losses = np.where(np.isfinite(losses), losses, np.finfo(float).max)
            res = kmeans_lstsq_gate(
                Zg, losses, distance=self.distance, match=self.match, noise=self.noise,
                max_iter=self.kmeans_max_iter, tol=self.tol,
                init=centers if centers is not None else self.kmeans_init, random_state=rng,
            )
            if not res.updated:
                centers = None
                continue
            n_updates += 1
            W, centers = res.coef, res.centers
            # an expert of a non-empty cluster that the least-squares gate
            # masks gets a bias correction (ESL 4.2's masking) is re-seeded
            W_host, reseeded = unmask_gate(Zs, to_numpy(W), to_numpy(res.labels))
            if reseeded:
                n_unmasked += 1
                W = backend.asarray(W_host, dtype=Zg.dtype) if device else W_host
            new_routes = np.asarray(to_numpy(backend.xp.argmax(lstsq_gate_logits(Zg, W),
                                                               axis=1)
                                             if device else
                                             np.argmax(lstsq_gate_logits(Zg, W), axis=1)))
            new_routes = new_routes.astype(np.intp)
            if np.array_equal(new_routes, routes):
                converged = True
                break
            routes = new_routes
        if not converged:
            if device_experts:
                lin = lstsq_experts(Xd, routes, yd, K, previous=lin)
            else:
                experts = self._fit_experts(X, y, routes, experts, template)
            if self.n_rounds > 1:
                warnings.warn(
                    f"MixERRegressor: routing still changing after n_rounds={self.n_rounds} "
                    f"({n_updates} successful gate updates); increase n_rounds.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        counts = np.bincount(routes, minlength=K)
        if np.any(counts == 0):
            # no successful gate update since the routing left an expert
            # empty, or one that unmask_gate could not repair (rare)
            converged = False
            warnings.warn(
                f"MixERRegressor: expert(s) {np.flatnonzero(counts == 0).tolist()} receive "
                f"no training sample ({n_updates} successful gate updates in "
                f"{n_iter} rounds); they keep their last fit and expert_mse_ is nan for "
                "them. Try fewer n_experts, more n_rounds or another random_state.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if device_experts:
            experts = [_as_linear_regression(lin[0][k], lin[1][k], X.shape[1])
                       for k in range(K)]
        W = np.asarray(to_numpy(W), dtype=np.float64)
        if centers is not None:
            centers = np.asarray(to_numpy(centers), dtype=np.float64)
        self.experts_ = experts
        self.labels_ = routes
        self.expert_n_samples_ = np.bincount(routes, minlength=K)
        mse = np.full(K, np.nan)
        for k in range(K):
            idx = routes == k
            if idx.any():
                mse[k] = float(np.mean((experts[k].predict(X[idx]) - y[idx]) ** 2))
        self.expert_mse_ = mse
        self.backend_ = backend.name if device else "numpy"
        self.n_gate_updates_ = n_updates
        self.n_unmasked_updates_ = n_unmasked
        self.n_iter_ = n_iter
        self.converged_ = converged
        # gate in raw units: [(z - m)/s, 1] W = [z, 1] W_raw
        W_raw = np.empty_like(W)
        W_raw[:-1] = W[:-1] / scale[:, None]
        W_raw[-1] = W[-1] - (mean / scale) @ W[:-1]
        self.gate_coef_ = W_raw
        self._W_std = W
        self.cluster_centers_ = None if centers is None else centers * scale + mean
        return self

    # ----------------------------------------------------------------- summary
    _summary_fitted_attribute = "experts_"

    def _summary(self):
        K = self.n_experts
        n = int(self.expert_n_samples_.sum())
        ok = np.isfinite(self.expert_mse_)
        total_mse = float(np.sum(self.expert_mse_[ok] * self.expert_n_samples_[ok]) / max(n, 1))
        info = {
            "Model": "MixERRegressor",
            "Experts": K,
            "Samples": n,
            "Features": self.n_features_in_,
            "Gate features": self.n_gate_features_,
            "Training MSE": total_mse,
            "Rounds": self.n_iter_,
            "Converged": bool(self.converged_),
            "Gate updates": self.n_gate_updates_,
            "Backend": self.backend_,
        }
        names = [f"expert {k}" for k in range(K)]
        tables = [("Experts (hard top-1 routing)", names,
                   ["routed samples", "share", "training MSE", "model"],
                   [[int(self.expert_n_samples_[k]), self.expert_n_samples_[k] / max(n, 1),
                     float(self.expert_mse_[k]), type(self.experts_[k]).__name__]
                    for k in range(K)])]
        linear = all(hasattr(e, "coef_") and hasattr(e, "intercept_") and
                     np.ravel(e.coef_).size == self.n_features_in_ for e in self.experts_)
        notes = []
        if linear:
            feats = list(self._names("_feature_names", "x", self.n_features_in_)) + \
                ["intercept"]
            vals = np.column_stack([np.r_[np.ravel(e.coef_), float(np.ravel(e.intercept_)[0])]
                                    for e in self.experts_])
            tables.append(("Expert coefficients", feats, names, vals))
        else:
            notes.append("The experts are not linear models: no coefficient table.")
        gate_rows = list(self._names("_gate_names", "z", self.n_gate_features_)) + ["bias"]
        tables.append(("Gate coefficients (logits, raw gate-feature units)", gate_rows, names,
                       self.gate_coef_))
        notes.append("Each sample is routed to the expert with the largest gate logit; "
                     "the gate is the least-squares fit of K-means labels of the experts' "
                     "losses (MixER, Nzoyem et al. 2025). Training MSE is in-sample; no "
                     "standard errors are given (the routing is data-dependent).")
        if not self.converged_:
            notes.append(f"The routing was still changing after {self.n_iter_} rounds.")
        return ModelSummary("MixERRegressor: mixture of experts with K-means gate", info,
                            tables, notes)

    def _names(self, attr, prefix, n):
        names = getattr(self, attr, None)  # absent in models pickled before it existed
        return names if names is not None and len(names) == n else \
            [f"{prefix}{j}" for j in range(n)]

    # ----------------------------------------------------------------- predict
    def route(self, X, Z=None):
        """Expert index of every sample (top-1 of the gate).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Z : array-like, optional
            The separate gate features, when the model was fitted with them.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, _to_host(X), reset=False, dtype=np.float64)
        return self._route(X, _to_host(Z))

    def _route(self, X, Z):
        Zraw = self._gate_input(X, Z, fitting=False)
        Zs = (Zraw - self._z_mean) / self._z_scale
        return np.argmax(lstsq_gate_logits(Zs, self._W_std), axis=1)

    def predict(self, X, Z=None):
        """Prediction of the routed expert for every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Z : array-like, optional

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, _to_host(X), reset=False, dtype=np.float64)
        Z = _to_host(Z)
        routes = self._route(X, Z)
        out = np.empty(X.shape[0])
        for k in np.unique(routes):
            idx = routes == k
            out[idx] = np.ravel(self.experts_[k].predict(X[idx]))
        return out

    def predict_experts(self, X):
        """Prediction of every expert for every sample (whatever the routing).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_experts)
            Column ``k`` is ``experts_[k].predict(X)``; ``predict`` takes, in
            every row, the column of the routed expert.
        """
        check_is_fitted(self)
        X = validate_data(self, _to_host(X), reset=False, dtype=np.float64)
        return np.column_stack([np.ravel(e.predict(X)) for e in self.experts_])

    def score(self, X, y, Z=None, sample_weight=None):
        """Coefficient of determination :math:`R^2` of ``predict(X, Z)``."""
        return r2_score(_to_host(y), self.predict(X, Z), sample_weight=_to_host(sample_weight))
