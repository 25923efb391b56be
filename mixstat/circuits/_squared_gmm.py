"""Shallow squared (subtractive) Gaussian mixtures, fitted by L-BFGS."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.optimize import Bounds, minimize
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

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
from ..primitives import gaussian_log_density, gaussian_product_log_integral, signed_logsumexp
from ..utils._summary import ModelSummary, SummaryMixin

__all__ = ["SquaredGaussianMixture", "SquaredMixtureMarginal"]


# ------------------------------------------------------------ the model ---
def _log_c(X, w, means, cov, ctype):
    """(log|c(x)|, sign c(x), log f) for c(x) = sum_k w_k N(x; mu_k, S_k)."""
    logf = gaussian_log_density(X, means, cov, ctype)
    lc, sc = signed_logsumexp(logf + np.log(np.abs(w))[None, :], np.sign(w)[None, :], axis=1)
    return lc, sc, logf


def _log_z(w, means, cov, ctype, logG=None, *, with_sign=False):
    """log Z = log |w^T G w| and log G (and the sign of w^T G w with ``with_sign``).

    Z > 0 in exact arithmetic (G is positive definite); a sign <= 0 means the
    weights cancel below rounding (near-equal components of opposite sign).
    """
    if logG is None:
        logG = gaussian_product_log_integral(means, cov, means, cov, ctype)
    aw = np.log(np.abs(w))
    lz, sz = signed_logsumexp((aw[:, None] + aw[None, :] + logG).ravel(), np.outer(np.sign(w), np.sign(w)).ravel(), axis=0)
    if with_sign:
        return float(lz), logG, float(sz)
    return float(lz), logG


# The box that keeps L-BFGS-B's trial points finite (``_Param.bounds``): means
# within the data's bounding box widened by _BOX_WIDE spans per side, standard
# deviations (per feature) between _BOX_NARROW and _BOX_WIDE spans. A fit that
# sits on these faces is degenerate anyway; inside them exp() cannot overflow.
_BOX_WIDE = 1e3
_BOX_NARROW = 1e-8
# log|f_k(x) / c(x)| above this means c(x) cancelled to (numerically) zero at a
# data point: the objective is treated as +inf there (a line-search rejection).
_LOG_RATIO_MAX = 600.0
# sample(): below this acceptance rate rejection sampling is refused (it would
# need more than a million proposals per sample; before, it ran on silently)
_MIN_ACCEPTANCE = 1e-6


def _data_spans(X):
    """Per-feature extent (max - min) of the data, never zero."""
    X = np.asarray(X, dtype=np.float64)
    span = np.ptp(X, axis=0)
    pos = span[span > 0]
    fallback = float(np.max(pos)) if pos.size else float(max(np.max(np.abs(X)), 1.0))
    return np.where(span > 0, span, fallback)


def _data_cov(X, reg):
    """The data's (d, d) covariance plus ``reg`` on the diagonal (the scale of
    the k-means, random and 'hole' starts)."""
    d = X.shape[1]
    return np.cov(X.T).reshape(d, d) + reg * np.eye(d)


def _unit(X):
    r"""The power of two, :math:`256^j`, nearest the data's scale (the root mean
    per-feature variance) in :math:`\log_{256}`: 1 for data whose scale lies
    within a factor 16 of 1. :meth:`SquaredGaussianMixture.fit` divides the
    data by it (exactly: a power of two) so that L-BFGS sees means and
    log-variances on comparable scales whatever the data's units; at 1e-6 or
    1e6 its first steps otherwise move only the means or only the variances,
    and it stops early.
    """
    X = np.asarray(X, dtype=np.float64)
    scale = float(np.sqrt(np.mean(np.var(X, axis=0))))
    if not np.isfinite(scale) or scale <= 0:
        scale = float(np.max(_data_spans(X)))
    return float(2.0 ** (8 * np.round(np.log2(scale) / 8)))


class _Param:
    """Packing of (w, means, covariance factors) into one vector.

    Covariances: 'spherical' v = e^s + reg, 'diag' v_d = e^{s_d} + reg,
    'full' S = L L^T + reg I with L lower triangular, diagonal e^{l}.
    With ``X`` (the data, on the host) the parameters get L-BFGS-B bounds
    (:meth:`bounds`) from the data's extent.
    """

    def __init__(self, K, d, ctype, reg, X=None):
        self.K, self.d, self.ctype, self.reg = K, d, ctype, reg
        self.tril = np.tril_indices(d)
        self.diag_pos = np.array([i for i, (r, c) in enumerate(zip(*self.tril, strict=True)) if r == c])
        n_cov = {"spherical": 1, "diag": d, "full": d * (d + 1) // 2}[ctype]
        self.sizes = [K, K * d, K * n_cov]
        self.box, self._bounds = None, None
        if X is not None:
            self.set_box(X)

    def set_box(self, X):
        """Record the data's extent (per-feature min, max and span)."""
        X = np.asarray(X, dtype=np.float64)
        self.box = (np.min(X, axis=0), np.max(X, axis=0), _data_spans(X))
        self._bounds = None

    def outside(self, theta):
        """Whether ``theta`` leaves the box (False without one)."""
        b = self.bounds()
        return b is not None and bool(np.any(theta < b[0]) or np.any(theta > b[1]))

    def bounds(self):
        """(lower, upper) arrays for L-BFGS-B, or None without a box.

        Weights are free (they enter through log|w| and signs). Means: the
        data's box widened by ``1e3`` spans per side. Log-variances
        (spherical, diag) and the log of the Cholesky diagonal (full) keep
        every standard deviation between ``1e-8`` and ``1e3`` spans of its
        feature; the Cholesky off-diagonal entries stay within ``1e3``
        spans. A step of L-BFGS cannot overflow ``exp`` inside this box, and
        none of its faces is near a sensible fit.
        """
        if self.box is None:
            return None
        if self._bounds is not None:
            return self._bounds
        K = self.K
        lo_x, hi_x, span = self.box
        lo_w, hi_w = np.full(K, -np.inf), np.full(K, np.inf)
        lo_m = np.tile(lo_x - _BOX_WIDE * span, K)
        hi_m = np.tile(hi_x + _BOX_WIDE * span, K)
        if self.ctype == "spherical":
            lo_c = np.full(K, 2.0 * np.log(_BOX_NARROW * np.min(span)))
            hi_c = np.full(K, 2.0 * np.log(_BOX_WIDE * np.max(span)))
        elif self.ctype == "diag":
            lo_c = np.tile(2.0 * np.log(_BOX_NARROW * span), K)
            hi_c = np.tile(2.0 * np.log(_BOX_WIDE * span), K)
        else:
            rows = self.tril[0]
            is_diag = self.tril[0] == self.tril[1]
            lo1 = np.where(is_diag, np.log(_BOX_NARROW * span[rows]), -_BOX_WIDE * span[rows])
            hi1 = np.where(is_diag, np.log(_BOX_WIDE * span[rows]), _BOX_WIDE * span[rows])
            lo_c, hi_c = np.tile(lo1, K), np.tile(hi1, K)
        self._bounds = np.concatenate([lo_w, lo_m, lo_c]), np.concatenate([hi_w, hi_m, hi_c])
        return self._bounds

    def unpack(self, theta):
        K, d = self.K, self.d
        w = theta[:K]
        means = theta[K : K + K * d].reshape(K, d)
        c = theta[K + K * d :]
        if self.ctype == "spherical":
            return w, means, np.exp(c) + self.reg, c
        if self.ctype == "diag":
            c = c.reshape(K, d)
            return w, means, np.exp(c) + self.reg, c
        c = c.reshape(K, -1)
        L = np.zeros((K, d, d))
        vals = c.copy()
        vals[:, self.diag_pos] = np.exp(vals[:, self.diag_pos])
        L[:, self.tril[0], self.tril[1]] = vals
        cov = L @ np.transpose(L, (0, 2, 1)) + self.reg * np.eye(d)
        return w, means, cov, L

    def pack(self, w, means, cov):
        d = self.d
        if self.ctype in ("spherical", "diag"):
            c = np.log(np.maximum(cov - self.reg, 1e-12 * np.maximum(cov, 1e-300)))
        else:
            # jitter 1e-12, relative for covariances below unit scale (tiny-scale data)
            top = np.max(np.diagonal(cov, axis1=1, axis2=2), axis=1)
            jit = 1e-12 * np.minimum(1.0, top)[:, None, None]
            L = np.linalg.cholesky(cov - self.reg * np.eye(d) + jit * np.eye(d))
            vals = L[:, self.tril[0], self.tril[1]].copy()
            vals[:, self.diag_pos] = np.log(vals[:, self.diag_pos])
            c = vals
        return np.concatenate([w, means.ravel(), np.ravel(c)])


def _nll_and_grad(theta, X, par):
    r"""Mean negative log-likelihood and its closed-form gradient.

    With :math:`q_{nk} = w_k f_k(x_n)/c(x_n)` and
    :math:`P_{kj} = w_k w_j G_{kj}/Z` (both sum to one over k, resp. (k, j)),

    .. math:: \partial_{\theta_k} \mathcal{L} = -\tfrac{2}{N}\sum_n q_{nk}
        \partial_{\theta_k}\log f_k(x_n) + 2\sum_j P_{kj}\,
        \partial_{\theta_k} \log G(\theta_k, \theta_j),

    :math:`\partial_{w_k}\mathcal L = -\tfrac2N\sum_n f_k(x_n)/c(x_n) + 2(Gw)_k/Z`.
    """
    d, ctype = par.d, par.ctype
    infeasible = np.inf, np.zeros_like(theta)
    if par.outside(theta):  # exp() of a log-variance could overflow out there
        return infeasible
    w, means, cov, fac = par.unpack(theta)
    if np.any(w == 0):
        w = np.where(w == 0, 1e-300, w)
    n = X.shape[0]
    try:
        lc, sc, logf = _log_c(X, w, means, cov, ctype)
        lz, logG, sz = _log_z(w, means, cov, ctype, with_sign=True)
    except np.linalg.LinAlgError:  # a covariance not numerically positive definite
        return infeasible
    nll = -2.0 * float(np.mean(lc)) + lz
    if not np.isfinite(nll) or sz <= 0:
        return infeasible
    # ratios in log space: f_k/|c| (n, K), |G_kj w_j|/Z and |w_k w_j G_kj|/Z (K, K);
    # one beyond e^600 means c (or Z) cancelled to rounding: +inf for the line search
    aw, sw = np.log(np.abs(w)), np.sign(w)
    lr = logf - lc[:, None]
    lgw = logG + aw[None, :] - lz
    lpm = aw[:, None] + lgw
    if max(np.max(lr), np.max(lgw), np.max(lpm)) > _LOG_RATIO_MAX:
        return infeasible
    r = sc[:, None] * np.exp(lr)  # f_k / c   (n, K)
    q = r * w[None, :]  # signed responsibilities
    Pm = np.outer(sw, sw) * np.exp(lpm)  # w_k w_j G_kj / Z  (K, K)
    g_w = -2.0 * r.mean(axis=0) + 2.0 * np.sum(sw[None, :] * np.exp(lgw), axis=1)
    diff = X[:, None, :] - means[None, :, :]  # (n, K, d)
    e = means[:, None, :] - means[None, :, :]  # (K, K, d)  mu_k - mu_j
    if ctype in ("diag", "spherical"):
        v = cov if ctype == "diag" else cov[:, None] * np.ones((1, d))
        s = v[:, None, :] + v[None, :, :]  # (K, K, d)
        g_mu = -(2.0 / n) * np.einsum("nk,nkd->kd", q, diff / v[None]) + 2.0 * np.einsum("kj,kjd->kd", Pm, -e / s)
        dv_data = 0.5 * (diff**2 / v[None] ** 2 - 1.0 / v[None])  # (n, K, d)
        dv_z = 0.5 * (e**2 / s**2 - 1.0 / s)  # (K, K, d)
        g_v = -(2.0 / n) * np.einsum("nk,nkd->kd", q, dv_data) + 2.0 * np.einsum("kj,kjd->kd", Pm, dv_z)
        if ctype == "spherical":
            g_v = g_v.sum(axis=1)
        g_c = g_v * np.exp(fac)
    else:
        prec = np.linalg.inv(cov)  # (K, d, d)
        pd = np.transpose(np.transpose(diff, (1, 0, 2)) @ prec, (1, 0, 2))  # (n, K, d), prec symmetric
        Sinv = np.linalg.inv(cov[:, None] + cov[None, :])  # (K, K, d, d)
        se = np.einsum("kjab,kjb->kja", Sinv, e)
        g_mu = -(2.0 / n) * np.einsum("nk,nkd->kd", q, pd, optimize=True) + 2.0 * np.einsum("kj,kjd->kd", Pm, -se)
        qs = q.sum(axis=0)
        pdk = np.transpose(pd, (1, 0, 2))  # (K, n, d)
        scatter = np.transpose(pdk * q.T[:, :, None], (0, 2, 1)) @ pdk  # sum_n q pd pd^T
        g_S = -(1.0 / n) * (scatter - qs[:, None, None] * prec)
        g_S += np.einsum("kj,kjab->kab", Pm, np.einsum("kja,kjb->kjab", se, se) - Sinv)
        g_L = 2.0 * g_S @ fac  # (K, d, d), symmetric g_S
        g_c = g_L[:, par.tril[0], par.tril[1]].copy()
        g_c[:, par.diag_pos] *= np.exp(np.log(fac[:, par.tril[0][par.diag_pos], par.tril[1][par.diag_pos]]))
    grad = np.concatenate([g_w, g_mu.ravel(), np.ravel(g_c)])
    if not np.all(np.isfinite(grad)):
        return np.inf, np.zeros_like(theta)
    return nll, grad


def _nll_torch(theta, X, par):
    """The same objective with torch autograd (``backend='torch'``).

    ``X`` is a float64 torch tensor on any device (a NumPy array is moved to
    a CPU tensor); ``theta`` (NumPy) is moved to ``X``'s device, the loss and
    its gradient come back to the host for L-BFGS.
    """
    import torch

    if par.outside(theta):  # the NumPy path's box, checked on the host
        return np.inf, np.zeros_like(theta)
    if not isinstance(X, torch.Tensor):
        X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    dev, f64 = X.device, torch.float64
    t = torch.as_tensor(theta, dtype=f64, device=dev).requires_grad_(True)
    K, d = par.K, par.d
    w = t[:K]
    means = t[K : K + K * d].reshape(K, d)
    c = t[K + K * d :]
    if par.ctype == "spherical":
        cov = torch.exp(c) + par.reg
    elif par.ctype == "diag":
        cov = torch.exp(c.reshape(K, d)) + par.reg
    else:
        c = c.reshape(K, -1)
        L = torch.zeros(K, d, d, dtype=f64, device=dev)
        dp = torch.as_tensor(par.diag_pos, device=dev)
        vals = c.clone()
        vals[:, dp] = torch.exp(c[:, dp])
        L[:, torch.as_tensor(par.tril[0], device=dev), torch.as_tensor(par.tril[1], device=dev)] = vals
        cov = L @ L.transpose(1, 2) + par.reg * torch.eye(d, dtype=f64, device=dev)
    logf = gaussian_log_density(X, means, cov, par.ctype)
    lc, _ = signed_logsumexp(logf + torch.log(torch.abs(w))[None], torch.sign(w).detach()[None], axis=1)
    logG = gaussian_product_log_integral(means, cov, means, cov, par.ctype)
    aw = torch.log(torch.abs(w))
    lz, sz = signed_logsumexp((aw[:, None] + aw[None] + logG).reshape(-1), torch.outer(torch.sign(w), torch.sign(w)).detach().reshape(-1), axis=0)
    loss = -2.0 * lc.mean() + lz
    loss.backward()
    # one device-to-host copy per evaluation: the loss and Z's sign ride with the gradient
    out = torch.cat([loss.detach().reshape(1), sz.detach().reshape(1).to(f64), t.grad]).cpu().numpy()
    f, g = float(out[0]), out[2:].copy()
    # torch reports overflow as inf/NaN without a warning; same rule as the NumPy path
    if not (np.isfinite(f) and out[1] > 0 and np.all(np.isfinite(g))):
        return np.inf, np.zeros_like(theta)
    return f, g


def _to_host(X):
    """NumPy copy of a torch tensor (any device) or CuPy array for scikit-learn's
    checks; anything else (lists, DataFrames: their column names) as it is."""
    if type(X).__module__.split(".")[0] in ("torch", "cupy"):
        return to_numpy(X)
    return X


# ------------------------------------------------------------ estimator ---
class SquaredGaussianMixture(SummaryMixin, DensityMixin, BaseEstimator):
    r"""Squared subtractive Gaussian mixture (NGMM²).

    A mixture with real, possibly negative, weights made non-negative by
    squaring (Loconte et al., "Subtractive Mixture Models via Squaring:
    Representation and Learning", ICLR 2024):

    .. math:: c(x) = \sum_{k=1}^K w_k\, N(x; \mu_k, \Sigma_k), \qquad
              p(x) = \frac{c(x)^2}{Z}, \qquad Z = w^\top G w,
              \quad G_{ij} = N(\mu_i; \mu_j, \Sigma_i + \Sigma_j).

    Negative components carve holes in the density (a ring is a broad bump
    minus a narrow one), which additive mixtures of the same size cannot.
    :math:`p` is invariant to :math:`w \to \alpha w`; the fitted ``weights_``
    are scaled so that :math:`\sum_k |w_k| = 1` and the largest is positive.
    :meth:`inference` and :meth:`summary` give standard errors and intervals
    (observed information, sandwich, bootstrap) in an identified
    parameterisation (weight ratios to a reference component).

    Fitted by maximum likelihood (EM does not apply to signed weights) with
    L-BFGS on the closed-form gradient (``backend='numpy'``), or on a torch
    autograd gradient of the same objective (``backend='torch'``).

    Numerics: L-BFGS-B runs inside a box set by the data's extent (means
    within 1e3 spans of the data, standard deviations between 1e-8 and 1e3
    spans of each feature), so no trial step overflows ``exp``; a trial point
    where :math:`c(x)` or :math:`Z` cancels to rounding gets the objective
    :math:`+\infty` (the line search steps back), never NaN. The data are
    divided by the power of 256 nearest their scale before the fit (1 for
    data within a factor 16 of unit scale), so data in 1e-6 or 1e6 units fit
    like unit data; ``reg_covar`` stays in the data's units, as in
    ``GaussianMixture`` (at scale 1e-6 the default 1e-6 is a floor far
    above the data's variance: pass a smaller one).

    Parameters
    ----------
    n_components : int, default=2
    covariance_type : {'full', 'diag', 'spherical'}, default='full'
    init : {'auto', 'kmeans', 'hole', 'random'}, default='auto'
        'kmeans': K-means clusters, covariances twice the cluster covariances
        (squaring halves them), positive weights; 'hole': greedy insertion of
        one signed component into a fitted (K-1)-component model, at the
        centre, width and weight (a hole, or a sign change with a bump between
        two zeros) of highest starting likelihood among candidates placed
        where the data are sparser than that model predicts (k-nearest-
        neighbour estimate) and at random data points; the best hole and the
        best sign-change candidate are both optimised; 'auto': the 'kmeans'
        start and the 'hole' starts, the best likelihood kept (about four
        L-BFGS runs per restart); 'random': means drawn around the data mean
        (:math:`N(\bar x, \hat\Sigma/4)`), covariances the data covariance
        times :math:`e^{U(-1.5, 1)}`, weights :math:`N(0,1)` (signed).
        :meth:`partial_fit` starts 'auto' and 'hole' from 'kmeans'.
    n_init : int, default=1
        Restarts (each with its own starts, see ``init``); the one with the
        best training likelihood is kept.
    max_iter : int, default=200
        L-BFGS iterations per restart.
    tol : float, default=1e-6
        L-BFGS tolerance on the relative decrease of the objective.
    reg_covar : float, default=1e-6
        Added to every covariance's diagonal.
    random_state : int, RandomState or None
    backend : {None, 'auto', 'numpy', 'numba', 'torch', 'cupy'}, default=None
        Resolved in ``fit`` (the parameter, ``config_context``, the input's
        namespace, then NumPy / Numba). 'torch' computes the loss and its
        autograd gradient on a torch device (a tensor's own device; for NumPy
        input ``config_context(device=...)``, else CUDA when torch sees it,
        else the CPU), with L-BFGS steps on the host; the others use the
        closed-form gradient on the host. 'cupy' raises a ``ValueError`` (no
        CuPy path: use 'torch' on a GPU).
    learning_rate : float, default=0.01
        Step size of the Adam steps taken by :meth:`partial_fit`.

    Attributes
    ----------
    weights_ : ndarray (K,), signed, :math:`\sum|w_k| = 1`, the largest positive
    means_ : ndarray (K, d)
    covariances_ : ndarray, shape as in ``GaussianMixture``
    log_normalizer_ : float, :math:`\log Z`
    converged_, n_iter_, lower_bound_ (mean training log-likelihood), backend_
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"full", "diag", "spherical"})],
        "init": [StrOptions({"auto", "kmeans", "hole", "random"})],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "reg_covar": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "backend": [StrOptions({"auto", "numpy", "numba", "torch", "cupy"}), None],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        covariance_type="full",
        init="auto",
        n_init=1,
        max_iter=200,
        tol=1e-6,
        reg_covar=1e-6,
        random_state=None,
        backend=None,
        learning_rate=0.01,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.backend = backend
        self.learning_rate = learning_rate

    # ---------------------------------------------------------------- init
    def _native_cov(self, covs, reg):
        """(K, d, d) covariances -> this covariance type, plus ``reg``."""
        d = covs.shape[1]
        if self.covariance_type == "diag":
            return np.stack([np.diag(c) for c in covs]) + reg
        if self.covariance_type == "spherical":
            return np.array([np.trace(c) / d for c in covs]) + reg
        return covs + reg * np.eye(d)

    def _initial(self, X, par, rng, init=None):
        """A start for ``init`` in {'kmeans', 'random'} (packed theta)."""
        K, d = par.K, par.d
        n = X.shape[0]
        ctype = self.covariance_type
        init = self.init if init is None else init
        glob = _data_cov(X, par.reg)
        if init in ("kmeans", "auto", "hole"):  # partial_fit: 'auto'/'hole' start from k-means
            from sklearn.cluster import KMeans

            labels = KMeans(K, n_init=1, random_state=rng.randint(2**31 - 1)).fit(X).labels_
            means = np.zeros((K, d))
            covs = np.zeros((K, d, d))
            counts = np.zeros(K)
            for k in range(K):
                Xk = X[labels == k]
                counts[k] = len(Xk)
                means[k] = Xk.mean(axis=0) if len(Xk) else X[rng.randint(n)]
                covs[k] = (np.cov(Xk.T).reshape(d, d) if len(Xk) > d else glob / K) + 1e-3 * np.diag(np.diag(glob))
            covs = 2.0 * covs  # squaring halves a Gaussian's covariance
            w = np.sqrt(np.maximum(counts, 1) / n)
        else:
            chol = np.linalg.cholesky(glob)
            means = X.mean(axis=0) + 0.5 * rng.standard_normal((K, d)) @ chol.T
            covs = glob[None] * np.exp(rng.uniform(-1.5, 1.0, K))[:, None, None]
            w = rng.standard_normal(K)
        cov = self._native_cov(covs, par.reg)
        # scale weights so that each component's square carries its share
        lz_diag = np.diag(gaussian_product_log_integral(means, cov, means, cov, ctype))
        w = w * np.exp(-0.5 * lz_diag)
        return par.pack(w, means, cov)

    def _hole_starts(self, X, par, rng, fun, Xarg):
        r"""'hole' starts: a fitted (K-1)-component model plus one signed
        component placed where it raises the likelihood most (greedy insertion).

        1. Fit K-1 components by L-BFGS from a k-means start: :math:`c_+`.
        2. Candidate centres: 8 points inside the data's convex hull where the
           fitted density most exceeds a k-nearest-neighbour density estimate
           (k = ceil(sqrt(n)); candidates drawn on segments between random pairs
           of data points, which fill a ring's centre), and 8 random data points.
        3. Candidate component :math:`N(h, t^2\hat\Sigma)` (:math:`\hat\Sigma`
           the data covariance, t in {0.15, 0.25, 0.4, 0.6}) with the weight that
           sets :math:`c(h) = (1 - a)\,c_+(h)`, a in {0.5, 0.9, 1.5, 2.5}: a hole
           (a < 1) or a sign change with a bump between two zeros (a > 1).
        4. Returned: the candidate of highest starting likelihood (exact, in
           closed form for all candidates at once) with a < 1 and the one with
           a > 1.
        """
        from scipy.special import gammaln
        from sklearn.neighbors import NearestNeighbors

        K, d = par.K, par.d
        n = X.shape[0]
        ctype = self.covariance_type
        if K == 1:
            return [self._initial(X, par, rng, "kmeans")]
        par1 = _Param(K - 1, d, ctype, par.reg, X)
        th1, _, _, _ = self._minimise(fun, self._initial(X, par1, rng, "kmeans"), Xarg, par1)
        w1, mu1, cov1, _ = par1.unpack(th1)
        # candidate centres
        n_cand = min(2000, 2 * n)
        i, j = rng.randint(n, size=(2, n_cand))
        C = X[i] + rng.uniform(size=(n_cand, 1)) * (X[j] - X[i])
        k = min(n - 1, int(np.ceil(np.sqrt(n))))
        r = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(C)[0][:, -1]
        r = np.maximum(r, 1e-12 * np.max(_data_spans(X)))  # duplicates: relative floor
        log_knn = np.log(k / n) - (0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)) - d * np.log(r)
        lcC, _, _ = _log_c(C, w1, mu1, cov1, ctype)
        excess = 2.0 * lcC - log_knn
        H = np.vstack([C[np.argsort(-excess)[:16]], X[rng.choice(n, min(32, n), replace=False)]])
        glob = _data_cov(X, par.reg)
        scales = np.array([0.1, 0.15, 0.2, 0.3, 0.4, 0.6])
        cancel = np.array([0.5, 0.8, 0.95, 1.2, 1.5, 2.0, 2.5, 3.5])
        # all (centre, scale) components at once: M = len(H) * len(scales)
        Hm = np.repeat(H, len(scales), axis=0)
        covm = self._native_cov((np.tile(scales, len(H)) ** 2)[:, None, None] * glob[None], par.reg)
        logF = gaussian_log_density(X, Hm, covm, ctype)  # (n, M)
        logFh = gaussian_log_density(Hm, Hm, covm, ctype).diagonal()  # f_m(h_m)
        lc1, sc1, _ = _log_c(X, w1, mu1, cov1, ctype)
        lch, sch, _ = _log_c(Hm, w1, mu1, cov1, ctype)  # c_+(h_m)
        lz1, logG1 = _log_z(w1, mu1, cov1, ctype)
        logGx = gaussian_product_log_integral(mu1, cov1, Hm, covm, ctype)  # (K-1, M)
        logGmm = gaussian_product_log_integral(Hm, covm, Hm, covm, ctype).diagonal()
        # weights w_{m,a} = -a c_+(h_m) / f_m(h_m), in units of exp(m0) to stay finite
        m0 = np.max(lc1)
        c1 = sc1 * np.exp(lc1 - m0)  # (n,)
        wma = -cancel[None, :] * (sch * np.exp(lch - m0 - logFh))[:, None]  # (M, A)
        cx = c1[:, None, None] + wma[None] * np.exp(logF)[:, :, None]  # (n, M, A)
        with np.errstate(divide="ignore"):
            ll = 2.0 * np.mean(np.log(np.abs(cx)), axis=0) + 2.0 * m0  # (M, A)
        cross = np.sum(w1[:, None] * np.exp(logGx - m0), axis=0)  # sum_i w_i G_im / e^m0
        z = np.exp(lz1 - 2 * m0) + 2.0 * wma * cross[:, None] + wma**2 * np.exp(logGmm)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            start_ll = np.where(z > 0, ll - np.log(z) - 2.0 * m0, -np.inf)
        # the best hole (a < 1) and the best sign change (a > 1)
        starts = []
        for group in (cancel < 1, cancel > 1):
            sub = np.where(group[None, :], start_ll, -np.inf)
            mi, ai = np.unravel_index(np.argmax(sub), sub.shape)
            if not np.isfinite(start_ll[mi, ai]):
                continue
            cov = np.concatenate([cov1, covm[mi : mi + 1]])
            starts.append(par.pack(np.r_[w1, wma[mi, ai] * np.exp(m0)], np.vstack([mu1, Hm[mi]]), cov))
        return starts or [self._initial(X, par, rng, "kmeans")]

    def _starts(self, X, par, rng, fun, Xarg):
        """The starting points of one restart, by ``init``."""
        if self.init == "hole":
            return self._hole_starts(X, par, rng, fun, Xarg)
        if self.init == "auto":
            return [self._initial(X, par, rng, "kmeans")] + self._hole_starts(X, par, rng, fun, Xarg)
        return [self._initial(X, par, rng)]

    def _resolve(self, X):
        """The backend for ``X`` (before validation: a torch tensor selects torch)."""
        name = self.backend if self.backend not in (None, "auto") else None
        from .._backend import _namespace_name

        if name == "cupy" or (name is None and _namespace_name([X]) == "cupy"):
            raise ValueError(
                "SquaredGaussianMixture has no CuPy path: use backend='torch' (any torch "
                "device: pass a CUDA tensor, or NumPy with config_context(device='cuda')), "
                "or 'numpy' / 'numba' on the host")
        return resolve_backend(self.backend, X, allowed=("numpy", "numba", "torch"))

    def _objective(self, X, backend):
        """(function of theta, data argument) for L-BFGS on this backend."""
        if backend.name != "torch":
            return _nll_and_grad, X
        import torch

        return _nll_torch, backend.asarray(X, dtype=torch.float64)

    def _minimise(self, fun, theta0, Xarg, par):
        """L-BFGS-B from ``theta0``: (theta, nll, n_iter, success).

        The bounds of ``par`` (from the data's extent; set here from ``Xarg``
        when it is a NumPy array and ``par`` has none) keep every trial
        point's ``exp`` finite; ``theta0`` is clipped into them.
        """
        if par.box is None and isinstance(Xarg, np.ndarray):
            par.set_box(Xarg)
        bounds = par.bounds()
        if bounds is not None:
            theta0 = np.clip(theta0, *bounds)
        if self.max_iter == 0:
            return theta0, fun(theta0, Xarg, par)[0], 0, False
        res = minimize(
            fun, theta0, args=(Xarg, par), jac=True, method="L-BFGS-B",
            bounds=None if bounds is None else Bounds(*bounds),
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": 1e-9, "maxls": 40},
        )
        if not np.isfinite(res.fun):
            return theta0, fun(theta0, Xarg, par)[0], res.nit, False
        return res.x, res.fun, res.nit, res.success

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit by maximum likelihood with L-BFGS (``n_init`` restarts).

        Parameters
        ----------
        X : array-like or torch tensor of shape (n_samples, n_features)
            A torch tensor (any device) selects ``backend='torch'`` when
            ``backend`` is None; the loss and its gradient are then computed on
            that device. Fitted attributes are NumPy arrays whatever the backend.
        y : ignored

        Returns
        -------
        self
        """
        backend = self._resolve(X)
        X_in = X
        X = validate_data(self, _to_host(X), dtype=[np.float64, np.float32], ensure_min_samples=2)
        X = np.asarray(X, dtype=np.float64)
        check_finite(X)
        check_n_components(X.shape[0], self.n_components)
        self.backend_ = backend.name
        fun, Xarg = self._objective(X_in if backend.name == "torch" and not backend.input_is_numpy else X,
                                    backend)
        rng = check_random_state(self.random_state)
        n, d = X.shape
        unit = _unit(X)  # fit in units of `unit` (a power of two: exact)
        if unit != 1.0:
            X, Xarg = X / unit, Xarg / unit
        par = _Param(self.n_components, d, self.covariance_type, self.reg_covar / unit**2, X)
        best = None
        for _ in range(self.n_init):
            for theta0 in self._starts(X, par, rng, fun, Xarg):
                res = self._minimise(fun, theta0, Xarg, par)
                if best is None or res[1] < best[1]:
                    best = res
        theta, nll, nit, ok = best
        if not np.isfinite(nll):
            raise ValueError(
                "the squared mixture's likelihood is not finite at any start: "
                "check the data scale or increase reg_covar"
            )
        self._set_params(theta, par, unit)
        self._theta, self._adam = None, None
        self.n_iter_ = int(nit)
        self.converged_ = bool(ok)
        self.lower_bound_ = -float(nll) - d * np.log(unit)
        if not ok and self.max_iter > 0:
            warnings.warn(
                "L-BFGS did not converge in max_iter iterations; increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    # ------------------------------------------------------------ inference
    def _refit_from(self, theta0, X):
        """L-BFGS on ``X`` from ``theta0`` (NumPy, closed-form gradient):
        (weights, means, covariances, success-or-finite)."""
        unit = _unit(X)
        if unit != 1.0:  # in the units fit() uses
            raw = _Param(self.n_components, X.shape[1], self.covariance_type, self.reg_covar)
            w, means, cov, _ = raw.unpack(theta0)
            X = X / unit
            par = _Param(self.n_components, X.shape[1], self.covariance_type, self.reg_covar / unit**2, X)
            theta0 = par.pack(w, means / unit, cov / unit**2)
        else:
            par = _Param(self.n_components, X.shape[1], self.covariance_type, self.reg_covar, X)
        theta, nll, _, _ = self._minimise(_nll_and_grad, theta0, X, par)
        w, means, cov, _ = par.unpack(theta)
        return w, means * unit, cov * unit**2, bool(np.isfinite(nll))

    def _inference_layout(self):
        from ._squared_gmm_inference import InferenceLayout

        K, d = self.means_.shape
        return InferenceLayout(K, d, self.covariance_type, int(np.argmax(np.abs(self.weights_))))

    def inference(self, X, *, method="observed", level=0.95, n_bootstrap=200,
                  random_state=None, n_jobs=None, derivatives="auto"):
        r"""Standard errors, z, p-values and confidence intervals of the fit.

        The weights are identified only up to scale and sign, so the
        inference is taken in the identified parameters: the :math:`K-1`
        ratios :math:`w_k / w_r` to the reference component :math:`r` (the
        largest :math:`|w_k|`), the means and the covariance entries (variances;
        for 'full' every :math:`\Sigma_{k,ab}`, :math:`a \le b`). The reported
        normalised ``weights_`` follow by the delta method (bootstrap: from
        the replicates). With ``n_components=1`` these are the Gaussian
        MLE's standard errors of :math:`\mu` and of the component covariance
        :math:`\Sigma_1` (the density's covariance is :math:`\Sigma_1/2`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data the model was fitted on.
        method : {'observed', 'sandwich', 'bootstrap', 'parametric-bootstrap'}
            'observed': inverse observed information (exact Hessian of the
            log-likelihood); 'sandwich': :math:`I^{-1} J I^{-1}` with :math:`J`
            the outer product of the per-sample scores; 'bootstrap':
            resampled rows refitted by L-BFGS from this fit, percentile
            intervals; 'parametric-bootstrap': samples drawn from the fitted
            model (:meth:`sample`) refitted the same way.
        level : float, default=0.95
        n_bootstrap : int, default=200
        random_state, n_jobs : for the bootstrap (joblib through
            :func:`mixstat.primitives._bootstrap.bootstrap_replicates`).
        derivatives : {'auto', 'autograd', 'numdiff'}, default='auto'
            How the Hessian is taken: torch autograd (exact; 'auto' when torch
            is installed) or statsmodels' central differences.

        Returns
        -------
        SquaredMixtureInference
            ``names`` ((block, term) pairs), ``params``, ``se``, ``z``,
            ``pvalue``, ``ci_low``, ``ci_high``, ``cov``, ``reference``.

        Raises
        ------
        numpy.linalg.LinAlgError
            When the observed information is not positive definite (the fit
            is not a strict local maximum or the model is not identifiable
            there: intervals are not defined).
        ValueError
            When a covariance sits at the ``reg_covar`` floor (a boundary
            maximum, where Wald intervals are not valid), or when every
            bootstrap refit fails.
        """
        from ..primitives._inference import invert_information
        from ._squared_gmm_inference import _NOT_IDENTIFIED, log_likelihood_derivatives, wald

        check_is_fitted(self)
        if method not in ("observed", "sandwich", "bootstrap", "parametric-bootstrap"):
            raise ValueError("method must be 'observed', 'sandwich', 'bootstrap' or "
                             f"'parametric-bootstrap', got {method!r}")
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level!r}")
        X = self._check_X(X)
        if X.shape[0] < 2:
            raise ValueError("inference needs the training data (at least 2 samples)")
        var = self._full_covariances()
        ev = np.linalg.eigvalsh(var)
        if np.min(ev) <= self.reg_covar * (1 + 1e-6) + 1e-12 * np.max(ev):
            raise ValueError(
                "a component's covariance sits at the reg_covar floor (smallest eigenvalue "
                f"{np.min(ev):.3g}): the maximum is on the boundary of the parameter space, "
                "where the observed information does not give valid intervals; refit with "
                "fewer components")
        if np.any(self.weights_ == 0):
            raise ValueError("a weight is exactly zero: that component is not identified")
        layout = self._inference_layout()
        phi = layout.pack(self.weights_, self.means_, self.covariances_)
        if method in ("observed", "sandwich"):
            # in fit()'s units (means / u, covariances / u^2), where the information
            # is well conditioned at any data scale; then back: cov_phi = D cov D
            u = _unit(X)
            scale = np.concatenate([np.ones(layout.K - 1), np.full(layout.K * layout.d, u),
                                    np.full(layout.K * layout.n_cov, u * u)])
            H, S = log_likelihood_derivatives(phi / scale, X / u, layout,
                                              scores=method == "sandwich", derivatives=derivatives)
            cov = invert_information(-H, hint=_NOT_IDENTIFIED)
            if method == "sandwich":
                cov = cov @ (S.T @ S) @ cov
            cov = scale[:, None] * cov * scale[None, :]
            return wald(layout, phi, cov, method, level)
        return self._bootstrap(X, layout, phi, method, level, n_bootstrap, random_state, n_jobs)

    def _bootstrap(self, X, layout, phi, method, level, n_bootstrap, random_state, n_jobs):
        import functools

        from ..primitives._bootstrap import bootstrap_replicates
        from ._squared_gmm_inference import (
            SquaredMixtureInference,
            bootstrap_statistic,
            extend,
            extended_names,
        )

        if int(n_bootstrap) < 2:
            raise ValueError(f"n_bootstrap must be at least 2, got {n_bootstrap!r}")
        par = _Param(self.n_components, X.shape[1], self.covariance_type, self.reg_covar)
        theta0 = par.pack(self.weights_, self.means_, self.covariances_)
        kind = "parametric" if method == "parametric-bootstrap" else "nonparametric"
        stat = functools.partial(bootstrap_statistic, X=X, model=self, theta0=theta0,
                                 layout=layout, kind=kind)
        reps = np.asarray(bootstrap_replicates(stat, np.zeros(X.shape[0]), int(n_bootstrap),
                                               random_state=random_state, n_jobs=n_jobs,
                                               desc="squared mixture bootstrap"))
        with np.errstate(invalid="ignore"):  # failed (NaN) replicates stay NaN
            rows = np.stack([extend(layout, r)[0] for r in reps])
        return SquaredMixtureInference.from_replicates(
            extended_names(layout), extend(layout, phi)[0], rows, method, level,
            reference=layout.ref,
            hint="refits diverged or a covariance hit the reg_covar floor: the model is too "
                 "large for the data; use fewer components")

    _summary_fitted_attribute = "weights_"

    def summary(self, X=None, *, method="observed", level=0.95, n_bootstrap=200,
                random_state=None, n_jobs=None):
        """A statsmodels-style summary (:class:`mixstat.utils.ModelSummary`).

        Without ``X``: the fitted weights, means and variances. With ``X``
        (the training data): also the log-likelihood, AIC / BIC and, per
        block (the weight ratios :math:`w_k / w_r`, each component, the
        normalised weights), the estimate, standard error, z, p-value and
        interval (see :meth:`inference` for ``method``).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When called before ``fit``.
        """
        from ..utils._summary import check_summary_fitted

        check_summary_fitted(self, self._summary_fitted_attribute)
        inf = None
        if X is not None:
            inf = self.inference(X, method=method, level=level, n_bootstrap=n_bootstrap,
                                 random_state=random_state, n_jobs=n_jobs)
        return self._summary(X, inf)

    def _summary(self, X=None, inf=None):
        K, d = self.means_.shape
        info = {
            "Model": "SquaredGaussianMixture",
            "Components": K,
            "Features": d,
            "Covariance": self.covariance_type,
            "Mean log-lik (train)": self.lower_bound_,
            "log Z": float(self.log_normalizer_),
            "Negative weights": int(np.sum(self.weights_ < 0)),
            "Iterations": self.n_iter_,
            "Converged": bool(self.converged_),
            "Backend": self.backend_,
            "Df": self._n_parameters(),
        }
        if X is not None:
            Xc = self._check_X(X)
            ll = float(np.sum(self.score_samples(Xc)))
            n = Xc.shape[0]
            info.update({"Observations": n, "Log-likelihood": ll,
                         "AIC": -2 * ll + 2 * self._n_parameters(),
                         "BIC": -2 * ll + self._n_parameters() * np.log(n),
                         "Std. errors": inf.method if inf is not None else "none"})
        names = [f"component {k}" for k in range(K)]
        if self.covariance_type == "full":
            var = np.stack([np.diag(c) for c in self.covariances_])
        elif self.covariance_type == "diag":
            var = self.covariances_
        else:
            var = np.repeat(self.covariances_[:, None], d, axis=1)
        cols = ["weight"] + [f"mean x{j}" for j in range(d)] + [f"var x{j}" for j in range(d)]
        vals = np.column_stack([self.weights_, self.means_, var])
        tables = [("Components", names, cols, vals)]
        notes = ["p(x) = c(x)^2 / Z with c(x) = sum_k w_k N(x; mu_k, Sigma_k) and "
                 "Z = w' G w (Loconte et al., ICLR 2024); weights are scaled to "
                 "sum_k |w_k| = 1, the largest positive (p is invariant to the scale and "
                 "sign of w)."]
        if inf is None:
            notes.append("No standard errors: pass the training data, summary(X) "
                         "(method='observed', 'sandwich', 'bootstrap' or "
                         "'parametric-bootstrap').")
        else:
            q = (1 - inf.level) / 2
            icols = ["coef", "std err", "z", "P>|z|", f"[{q:.3g}", f"{1 - q:.3g}]"]
            for block in dict.fromkeys(b for b, _ in inf.names):
                idx = inf.rows(block)
                rows = [inf.names[i][1] for i in idx]
                v = np.column_stack([inf.params[idx], inf.se[idx], inf.z[idx], inf.pvalue[idx],
                                     inf.ci_low[idx], inf.ci_high[idx]])
                tables.append((block, rows, icols, v))
            if K > 1:
                notes.append(f"Weights: the ratios w_k / w_{inf.reference} to the reference "
                             f"component {inf.reference} (largest |w|) fix the scale and sign "
                             "that p does not identify; the normalised weights follow by the "
                             "delta method" + (" (bootstrap: from the replicates)."
                                               if inf.cov is None else "."))
            notes.append("Covariance rows are the components' Sigma_k; the density of a "
                         "single squared Gaussian has covariance Sigma_k / 2.")
            if inf.n_failed:
                notes.append(f"{inf.n_failed} of {inf.n_bootstrap} bootstrap replicates failed "
                             "and were left out.")
            if not self.converged_:
                notes.append("L-BFGS did not report convergence: the standard errors assume "
                             "a maximum.")
        return ModelSummary("Squared subtractive Gaussian mixture", info, tables, notes)

    def _set_params(self, theta, par, unit=1.0):
        w, means, cov, _ = par.unpack(theta)
        means, cov = means * unit, cov * unit**2  # back from the fitting units
        w = w / np.sum(np.abs(w))
        if w[np.argmax(np.abs(w))] < 0:  # p is invariant to the sign: fix it
            w = -w
        self.weights_ = w
        self.means_ = means
        self.covariances_ = cov
        self.log_normalizer_, _ = _log_z(w, means, cov, self.covariance_type)

    def partial_fit(self, X, y=None):
        """One stochastic step on a mini-batch (for data that do not fit in memory).

        EM's sufficient statistics do not exist for signed weights, so this is
        stochastic maximum likelihood: one Adam step (``learning_rate``) on the
        batch's mean negative log-likelihood with the closed-form gradient. The
        first call initialises from the batch (``init``). Stream the batches
        for several epochs; :meth:`fit` is the full-batch L-BFGS alternative.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        first = getattr(self, "_theta", None) is None or not hasattr(self, "weights_")
        if first:
            self._validate_params()
            X = validate_data(self, _to_host(X), dtype=[np.float64, np.float32], ensure_min_samples=2)
            X = np.asarray(X, dtype=np.float64)
            check_finite(X)
            check_n_components(X.shape[0], self.n_components)
            self._rng = check_random_state(self.random_state)
            self._par = _Param(self.n_components, X.shape[1], self.covariance_type, self.reg_covar, X)
            if hasattr(self, "weights_") and self.weights_.shape[0] == self.n_components:
                self._theta = self._par.pack(self.weights_, self.means_, self._full_or_native())
            else:
                self._theta = self._initial(X, self._par, self._rng)
            self._theta = np.clip(self._theta, *self._par.bounds())
            self._adam = [np.zeros_like(self._theta), np.zeros_like(self._theta), 0]
            self.backend_ = "numpy"
            self.n_iter_ = 0
            self.converged_ = False
        else:
            X = self._check_X(X)
        nll, g = _nll_and_grad(self._theta, X, self._par)
        if not np.isfinite(nll):
            warnings.warn("partial_fit: non-finite likelihood on this batch; step skipped.",
                          ConvergenceWarning, stacklevel=2)
        else:
            m, v, t = self._adam
            t += 1
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g**2
            step = self.learning_rate * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            self._theta = np.clip(self._theta - step, *self._par.bounds())  # the first batch's box
            self._adam = [m, v, t]
            self.lower_bound_ = -float(nll)
        self.n_iter_ += 1
        self._set_params(self._theta, self._par)
        return self

    def _full_or_native(self):
        return self.covariances_

    # ------------------------------------------------------------- queries
    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, _to_host(X), reset=False, dtype=[np.float64, np.float32])
        X = np.asarray(X, dtype=np.float64)
        check_finite(X)
        return X

    def score_samples(self, X):
        r"""Log-density :math:`2\log|c(x)| - \log Z` of each sample."""
        X = self._check_X(X)
        lc, _, _ = _log_c(X, self.weights_, self.means_, self.covariances_, self.covariance_type)
        return 2.0 * lc - self.log_normalizer_

    def score(self, X, y=None):
        """Mean log-likelihood of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def _n_parameters(self):
        K = self.n_components
        d = self.means_.shape[1]
        n_cov = {"spherical": K, "diag": K * d, "full": K * d * (d + 1) // 2}[self.covariance_type]
        return (K - 1) + K * d + n_cov  # weights up to scale

    def bic(self, X):
        """Bayesian information criterion (lower is better)."""
        X = self._check_X(X)
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X):
        """Akaike information criterion (lower is better)."""
        X = self._check_X(X)
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

    def _full_covariances(self):
        d = self.means_.shape[1]
        if self.covariance_type == "full":
            return self.covariances_
        if self.covariance_type == "diag":
            return self.covariances_[:, :, None] * np.eye(d)
        return self.covariances_[:, None, None] * np.eye(d)

    def sample(self, n_samples=1, random_state=None):
        r"""Exact samples by rejection from the positive part of the expansion.

        :math:`c^2 = \sum_{ij} w_i w_j G_{ij}\, N(x; m_{ij}, S_{ij})` with
        :math:`S_{ij} = (\Sigma_i^{-1}+\Sigma_j^{-1})^{-1}`,
        :math:`m_{ij} = S_{ij}(\Sigma_i^{-1}\mu_i + \Sigma_j^{-1}\mu_j)`.
        Propose from the mixture of the terms with :math:`w_iw_jG_{ij} > 0`
        and accept with probability :math:`c(x)^2 / \sum_{+} w_iw_jG_{ij}N(x;
        m_{ij}, S_{ij})`; the acceptance rate is :math:`Z / \sum_+ w_iw_jG_{ij}`.
        A ``ValueError`` is raised when that rate is below 1e-6 (weights that
        nearly cancel), where sampling would not finish in useful time.

        Parameters
        ----------
        n_samples : int
        random_state : int, RandomState or None
            Defaults to the estimator's ``random_state``.

        Returns
        -------
        X : ndarray (n_samples, n_features)
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        w, mu = self.weights_, self.means_
        cov = self._full_covariances()
        K, d = mu.shape
        prec = np.linalg.inv(cov)
        logG = gaussian_product_log_integral(mu, cov, mu, cov, "full")
        coef = np.outer(w, w) * np.exp(logG - self.log_normalizer_)  # sums to 1
        pos = np.argwhere(coef > 0)
        cpos = coef[coef > 0]
        Sij = np.linalg.inv(prec[pos[:, 0]] + prec[pos[:, 1]])
        mij = np.einsum("pab,pb->pa", Sij, np.einsum("pab,pb->pa", prec[pos[:, 0]], mu[pos[:, 0]]) + np.einsum("pab,pb->pa", prec[pos[:, 1]], mu[pos[:, 1]]))
        probs = cpos / cpos.sum()
        rate = 1.0 / cpos.sum()
        if rate < _MIN_ACCEPTANCE:
            raise ValueError(
                f"exact sampling would accept {rate:.2g} of its proposals: the fitted weights "
                "nearly cancel (components of opposite sign that almost coincide), so "
                "rejection sampling would need about 1/rate proposals per sample; refit "
                "with fewer components (or, for tiny-scale data, a smaller reg_covar)")
        out = []
        got = 0
        Lc = np.linalg.cholesky(Sij)
        while got < n_samples:
            m = int(min(max(2 * (n_samples - got) / max(rate, 1e-3), 64), 10**6))
            comp = rng.choice(len(cpos), m, p=probs)
            z = rng.standard_normal((m, d))
            x = mij[comp] + np.einsum("mab,mb->ma", Lc[comp], z)
            logp = 2 * _log_c(x, w, mu, self.covariances_, self.covariance_type)[0] - self.log_normalizer_
            logq = gaussian_log_density(x, mij, Sij, "full") + np.log(cpos)[None, :]
            from ..primitives import logsumexp

            lq = logsumexp(logq, axis=1)  # log sum_+ coef N(x; m, S)
            acc = rng.uniform(size=m) < np.exp(np.minimum(logp - lq, 0.0))
            out.append(x[acc])
            got += int(acc.sum())
        return np.concatenate(out)[:n_samples]

    def marginal(self, features):
        r"""Closed-form marginal density of a subset of the features.

        .. math:: p(x_A) = \frac1Z \sum_{ij} w_i w_j f_i(x_A) f_j(x_A)\,
            N\big(m_i(x_A); m_j(x_A), S_i + S_j\big)

        with :math:`f_i(x_A)` the marginal Gaussians and :math:`m_i(x_A), S_i`
        the conditional mean and covariance of the other features. Note the
        marginal of a squared mixture is a PSD quadratic form, not a squared
        mixture of the marginals.

        Parameters
        ----------
        features : sequence of int
            Indices of the kept features.

        Returns
        -------
        SquaredMixtureMarginal
        """
        check_is_fitted(self)
        d = self.means_.shape[1]
        feats = np.atleast_1d(np.asarray(features))
        if feats.dtype == bool:
            feats = np.flatnonzero(feats)
        if feats.size == 0 or np.any(feats < 0) or np.any(feats >= d) or len(set(feats.tolist())) != feats.size:
            raise ValueError(f"features must be distinct indices in [0, {d}), got {features!r}")
        return SquaredMixtureMarginal(self, feats.astype(int))


class SquaredMixtureMarginal:
    """Marginal of a fitted :class:`SquaredGaussianMixture` over ``features``.

    Attributes
    ----------
    features : ndarray of int
    """

    def __init__(self, model, features):
        self.model = model
        self.features = features
        d = model.means_.shape[1]
        self.rest = np.setdiff1d(np.arange(d), features)
        cov = model._full_covariances()
        A, B = features, self.rest
        self.cov_A = cov[:, A][:, :, A]
        self.mu_A = model.means_[:, A]
        if B.size:
            S_BA = cov[:, B][:, :, A]
            self.gain = S_BA @ np.linalg.inv(self.cov_A)  # (K, dB, dA)
            self.S = cov[:, B][:, :, B] - self.gain @ np.transpose(S_BA, (0, 2, 1))
            self.mu_B = model.means_[:, B]

    def score_samples(self, X):
        """Marginal log-density of ``X`` (n_samples, len(features))."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"X must have {len(self.features)} columns (the marginal's features), got shape {X.shape}")
        check_finite(X)
        w = self.model.weights_
        K = len(w)
        logf = gaussian_log_density(X, self.mu_A, self.cov_A, "full")  # (n, K)
        terms = logf[:, :, None] + logf[:, None, :]
        if self.rest.size:
            m = self.mu_B[None] + np.einsum("kba,nka->nkb", self.gain, X[:, None, :] - self.mu_A[None])
            dB = self.rest.size
            zero = np.zeros((1, dB))
            for i in range(K):
                for j in range(K):
                    terms[:, i, j] += gaussian_log_density(m[:, i] - m[:, j], zero, (self.S[i] + self.S[j])[None], "full")[:, 0]
        aw = np.log(np.abs(w))
        a = (terms + aw[None, :, None] + aw[None, None, :]).reshape(X.shape[0], -1)
        s = np.outer(np.sign(w), np.sign(w)).ravel()[None, :]
        lv, _ = signed_logsumexp(a, s, axis=1)
        return lv - self.model.log_normalizer_

    def score(self, X):
        """Mean marginal log-likelihood."""
        return float(np.mean(self.score_samples(X)))
