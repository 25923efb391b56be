"""Shallow squared mixtures of 1-D exponential, gamma and beta densities."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._validation import (
    Interval,
    StrOptions,
    _fit_context,
    check_finite,
    check_n_components,
    check_random_state,
    validate_data,
)
from .._backend import resolve_backend
from ..primitives import signed_logsumexp
from ..utils._summary import ModelSummary, SummaryMixin
from ._squared_gmm import _to_host

__all__ = ["SquaredMixture1D"]

_N_SHAPE = {"exponential": 1, "gamma": 2, "beta": 2}


def _unpack(theta, family, K, D=1):
    w = theta[:K]
    r = theta[K:].reshape(K, D, -1)
    # shapes > 1/2 keep every Gram entry finite (k_i + k_j > 1, a_i + a_j > 1)
    pos = np.exp(np.clip(r, -30, 30))
    if family == "exponential":
        return w, (pos[..., 0],)
    if family == "gamma":
        return w, (0.5 + pos[..., 0], pos[..., 1])  # shape k, rate beta: (K, D)
    return w, (0.5 + pos[..., 0], 0.5 + pos[..., 1])  # beta a, b


def _log_f(X, family, p):
    """(n, K): log prod_d f_kd(x_d)."""
    x = X[:, None, :]  # (n, 1, D)
    if family == "exponential":
        (lam,) = p
        out = np.log(lam) - lam * x
    elif family == "gamma":
        k, b = p
        out = k * np.log(b) - gammaln(k) + (k - 1) * np.log(x) - b * x
    else:
        a, b = p
        out = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - betaln(a, b)
    return out.sum(axis=2)


def _log_gram(family, p):
    """(K, K): log prod_d int f_id f_jd."""
    if family == "exponential":
        (lam,) = p
        g = np.log(lam)[:, None] + np.log(lam)[None] - np.log(lam[:, None] + lam[None])
    elif family == "gamma":
        k, b = p
        ks = k[:, None] + k[None] - 1
        kb = k * np.log(b)
        g = (kb[:, None] + kb[None] + gammaln(ks) - gammaln(k)[:, None] - gammaln(k)[None]
             - ks * np.log(b[:, None] + b[None]))
    else:
        a, b = p
        g = (betaln(a[:, None] + a[None] - 1, b[:, None] + b[None] - 1)
             - betaln(a, b)[:, None] - betaln(a, b)[None])
    return g.sum(axis=2)


def _log_density(X, w, family, p):
    if X.ndim == 1:
        X = X[:, None]
    lf = _log_f(X, family, p)
    lc, _ = signed_logsumexp(lf + np.log(np.abs(w))[None], np.sign(w)[None], axis=1)
    aw = np.log(np.abs(w))
    lz, _ = signed_logsumexp((aw[:, None] + aw[None] + _log_gram(family, p)).ravel(),
                             np.outer(np.sign(w), np.sign(w)).ravel(), axis=0)
    return 2 * lc - lz, float(lz)


_PARAM_NAMES = {"exponential": ("rate",), "gamma": ("shape", "rate"), "beta": ("a", "b")}


class SquaredMixture1D(SummaryMixin, DensityMixin, BaseEstimator):
    r"""Squared (subtractive) mixture of exponential, gamma or beta densities.

    .. math:: p(x) = \frac{\big(\sum_k w_k f_k(x)\big)^2}{w^\top G w},\qquad
              G_{ij} = \int f_i f_j, \qquad f_k(x) = \prod_d f_{kd}(x_d)

    (one feature: a squared mixture of univariate densities; several: each
    component a product over the features, and :math:`G_{ij}` the product of
    the univariate Gram entries)
    with closed-form Gram matrices (Loconte et al., ICLR 2024, shallow NMMs):
    exponential :math:`\lambda_i\lambda_j/(\lambda_i+\lambda_j)`; gamma
    :math:`\beta_i^{k_i}\beta_j^{k_j}\Gamma(k_i+k_j-1)/(\Gamma(k_i)\Gamma(k_j)
    (\beta_i+\beta_j)^{k_i+k_j-1})`; beta
    :math:`B(a_i+a_j-1, b_i+b_j-1)/(B(a_i,b_i)B(a_j,b_j))`. Shapes are kept
    above 1/2 so that every entry is finite. Fitted by L-BFGS (numerical
    gradient: a handful of parameters) on the mean negative log-likelihood.
    Exponential and gamma data are divided by a power of two near each
    feature's mean before the fit (the rates are scaled back), so the fit
    is the same at any data scale.

    Parameters
    ----------
    n_components : int, default=2
    family : {'exponential', 'gamma', 'beta'}, default='gamma'
        Support :math:`x \ge 0` (exponential), :math:`x > 0` (gamma) or
        :math:`0 < x < 1` (beta); data outside raise ``ValueError`` in fit and
        get log-density ``-inf`` at score time.
    n_init : int, default=3
    max_iter : int, default=300
    tol : float, default=1e-8
    random_state : int, RandomState or None
    backend : {None, 'auto', 'numpy', 'numba', 'torch', 'cupy'}, default=None
        Resolved as everywhere in mixstat (the parameter, then
        :func:`mixstat.config_context`, then the input's namespace). The fit
        has a handful of parameters and closed-form Gram matrices, so it
        always runs on the host: torch / CuPy arrays are copied there (an
        unavailable backend still raises), and 'numba' runs the NumPy path
        (there is no kernel to compile).

    Attributes
    ----------
    weights_ : ndarray (K,), signed, :math:`\sum|w_k|=1`
    params_ : tuple of ndarrays (K, n_features), the components' parameters
        (rate; shape, rate; a, b)
    log_normalizer_ : float
    lower_bound_ : float
        Mean training log-likelihood.
    n_iter_, converged_
    backend_ : str
        The resolved backend ('numpy' for 'numba': see ``backend``).

    Notes
    -----
    :meth:`summary` tabulates the fitted weights and component parameters;
    it gives no standard errors (the weights are identified only up to scale
    and sign, and no information matrix is computed for this model).
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "family": [StrOptions({"exponential", "gamma", "beta"})],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "backend": [None, StrOptions({"auto", "numpy", "numba", "torch", "cupy"})],
    }

    def __init__(self, n_components=2, *, family="gamma", n_init=3, max_iter=300, tol=1e-8, random_state=None,
                 backend=None):
        self.n_components = n_components
        self.family = family
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.backend = backend

    def _check_support(self, x):
        if self.family == "beta":
            bad = (x <= 0) | (x >= 1)
            where = "(0, 1)"
        elif self.family == "exponential":
            bad = x < 0
            where = "[0, inf)"
        else:
            bad = x <= 0
            where = "(0, inf)"
        if bad.any():
            lead = "Negative values in data passed to SquaredMixture1D: " if (x < 0).any() else ""
            raise ValueError(f"{lead}family={self.family!r} needs data in {where}; {int(bad.sum())} values are outside")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit by maximum likelihood (L-BFGS, ``n_init`` restarts).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        """
        backend = resolve_backend(self.backend, X)
        X = validate_data(self, _to_host(X), dtype=[np.float64, np.float32], ensure_min_samples=2)
        X = np.asarray(X, dtype=np.float64)
        check_finite(X)
        x = X
        self._check_support(x)
        fam = self.family
        # exponential / gamma are scale families: fit x / s (s a power of two near the
        # mean, so the division is exact) and scale the rates back. The log-parameters'
        # clip at +-30 is then relative to the data's scale, not absolute.
        if fam in ("exponential", "gamma"):
            mean = x.mean(axis=0)
            if np.any(mean <= 0):
                raise ValueError(f"family={fam!r}: a feature is identically zero; its "
                                 "rate's maximum-likelihood estimate is infinite")
            scale = 2.0 ** np.round(np.log2(mean))
        else:
            scale = np.ones(x.shape[1])
        x = x / scale
        self.backend_ = "numpy" if backend.name == "numba" else backend.name
        D = X.shape[1]
        K = self.n_components
        check_n_components(len(x), K)
        rng = check_random_state(self.random_state)

        def nll(theta):
            w, p = _unpack(theta, fam, K, D)
            if np.any(w == 0):
                return np.inf
            lp, _ = _log_density(x, w, fam, p)
            v = -float(np.mean(lp))
            return v if np.isfinite(v) else 1e300

        best = None
        m, s = x.mean(axis=0), x.std(axis=0) + 1e-12  # (D,)
        for _ in range(self.n_init):
            w0 = np.abs(rng.standard_normal(K)) + 0.1
            u = lambda lo, hi: rng.uniform(lo, hi, (K, D))  # noqa: E731
            if fam == "exponential":
                r0 = np.log(u(0.3, 3.0) / m)[..., None]
            elif fam == "gamma":
                k0 = np.maximum((m / s) ** 2 * u(0.5, 2.0) - 0.5, 0.05)
                r0 = np.stack([np.log(k0), np.log((k0 + 0.5) / m * u(0.5, 2.0))], axis=-1)
            else:
                c = np.maximum(m * (1 - m) / s**2 - 1, 1.0)
                r0 = np.stack([np.log(np.maximum(m * c * u(0.5, 2) - 0.5, 0.05)),
                               np.log(np.maximum((1 - m) * c * u(0.5, 2) - 0.5, 0.05))], axis=-1)
            th0 = np.concatenate([w0, r0.ravel()])
            if self.max_iter == 0:
                res_x, f, nit, ok = th0, nll(th0), 0, False
            else:
                res = minimize(nll, th0, method="L-BFGS-B", options={"maxiter": self.max_iter, "ftol": self.tol})
                res_x, f, nit, ok = res.x, res.fun, res.nit, res.success
            if best is None or f < best[1]:
                best = (res_x, f, nit, ok)
        theta, f, nit, ok = best
        w, p = _unpack(theta, fam, K, D)
        if fam in ("exponential", "gamma"):  # rates back to the data's scale
            p = p[:-1] + (p[-1] / scale,)
        self.weights_ = w / np.sum(np.abs(w))
        self.params_ = p
        self.log_normalizer_ = _log_density(X[:1], self.weights_, fam, p)[1]
        self.lower_bound_ = -float(f) - float(np.sum(np.log(scale)))
        self.n_iter_ = int(nit)
        self.converged_ = bool(ok)
        if not ok and self.max_iter > 0:
            warnings.warn("L-BFGS did not converge; increase max_iter.", ConvergenceWarning, stacklevel=2)
        return self

    def _n_parameters(self):
        K, D = self.params_[0].shape
        return (K - 1) + K * D * _N_SHAPE[self.family]  # weights up to scale

    _summary_fitted_attribute = "weights_"

    def _summary(self):
        K, D = self.params_[0].shape
        info = {
            "Model": "SquaredMixture1D",
            "Family": self.family,
            "Components": K,
            "Features": D,
            "Mean log-lik (train)": self.lower_bound_,
            "log Z": float(self.log_normalizer_),
            "Negative weights": int(np.sum(self.weights_ < 0)),
            "Df": self._n_parameters(),
            "Iterations": self.n_iter_,
            "Converged": bool(self.converged_),
            "Backend": self.backend_,
        }
        names = [f"component {k}" for k in range(K)]
        cols = ["weight"]
        vals = [self.weights_]
        for pname, arr in zip(_PARAM_NAMES[self.family], self.params_, strict=True):
            cols += [f"{pname} x{j}" for j in range(D)]
            vals.append(arr)
        notes = ["p(x) = c(x)^2 / Z with c(x) = sum_k w_k f_k(x), f_k a product of "
                 f"{self.family} densities over the features, Z = w' G w (closed-form Gram "
                 "matrix); weights are scaled to sum_k |w_k| = 1 (p is invariant to the "
                 "scale and sign of w).",
                 "No standard errors: none are computed for this model "
                 "(SquaredGaussianMixture.summary(X) has them)."]
        return ModelSummary(f"Squared subtractive {self.family} mixture", info,
                            [("Components", names, cols, np.column_stack(vals))], notes)

    def score_samples(self, X):
        """Log-density of each sample (``-inf`` outside the support)."""
        check_is_fitted(self)
        X = validate_data(self, _to_host(X), reset=False, dtype=[np.float64, np.float32])
        X = np.asarray(X, dtype=np.float64)
        check_finite(X)
        x = X
        lo_ok = (x >= 0) if self.family == "exponential" else (x > 0)
        inside = np.all(lo_ok & ((x < 1) if self.family == "beta" else True), axis=1)
        out = np.full(len(x), -np.inf)
        if inside.any():
            out[inside] = _log_density(x[inside], self.weights_, self.family, self.params_)[0]
        return out

    def score(self, X, y=None):
        """Mean log-likelihood."""
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags
