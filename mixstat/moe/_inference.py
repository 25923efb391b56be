r"""Inference for the Gaussian mixture of experts: standard errors, intervals,
bootstrap, ``summary()`` tables.

Parameterisation (what the information matrix is taken with respect to)
-----------------------------------------------------------------------
For expert :math:`k` the intercept :math:`b_{k0}`, the slopes on its support
:math:`S_k` and the variance :math:`\sigma_k^2` (one :math:`\sigma^2` when
``variance='shared'``). The softmax gates are invariant to adding the same
vector to every :math:`(w_{k0}, w_k)`, so the :math:`K` symmetric gates have a
singular information matrix; the inference uses the **reference class**
parameterisation with the last (canonical) expert as reference:
:math:`v_k = w_k - w_K` for :math:`k < K`, on the gate support :math:`G`.
The gate rows of the tables are these contrasts.

The log-likelihood :math:`\ell(\theta) = \sum_i s_i \log \sum_k g_k(x_i)
N(y_i; \mu_{ik}, \sigma_k^2)` has the per-sample score (analytic, with
:math:`\tau_{ik}` the responsibilities and :math:`r_{ik} = y_i - \mu_{ik}`)

.. math::
    \partial_{b_k} \ell_i = \tau_{ik} r_{ik} \tilde x_i / \sigma_k^2, \quad
    \partial_{\sigma_k^2} \ell_i = \tau_{ik}\Big(\frac{r_{ik}^2}{2\sigma_k^4}
        - \frac{1}{2\sigma_k^2}\Big), \quad
    \partial_{v_k} \ell_i = (\tau_{ik} - g_{ik}) \tilde x_i ,

and the observed information :math:`I = -\nabla^2 \ell` is the central-difference
Jacobian of the analytic total score
(:func:`statsmodels.tools.numdiff.approx_fprime`), symmetrised. The sandwich
covariance is :math:`I^{-1} (\sum_i s_i u_i u_i^\top) I^{-1}` with :math:`u_i` the
per-sample scores (Huber / White).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..primitives import match_components, normal_log_density, responsibilities
from ..primitives._inference import InferenceResult
from ._em import MoEState, gate_log_probs

__all__ = ["MoEInference", "ParamLayout"]


@dataclass
class ParamLayout:
    """Where each free parameter sits (expert supports, gate support, reference)."""

    K: int
    p: int
    supports: list  # K int arrays
    gate_support: np.ndarray
    shared_variance: bool
    feature_names: object = None  # the columns of a DataFrame (feature_names_in_)
    names: list = field(default_factory=list)

    def term(self, j):
        """Name of feature ``j``: its column name, else ``x{j}`` (0-based)."""
        if self.feature_names is not None:
            return str(self.feature_names[j])
        return f"x{j}"

    def __post_init__(self):
        names = []
        for k in range(self.K):
            names.append((f"expert {k}", "intercept"))
            names += [(f"expert {k}", self.term(j)) for j in self.supports[k]]
            if not self.shared_variance:
                names.append((f"expert {k}", "sigma^2"))
        if self.shared_variance:
            names.append(("noise", "sigma^2"))
        for k in range(self.K - 1):
            names.append((f"gate {k} vs {self.K - 1}", "intercept"))
            names += [(f"gate {k} vs {self.K - 1}", self.term(j)) for j in self.gate_support]
        self.names = names

    @property
    def size(self):
        return len(self.names)

    def pack(self, state):
        out = []
        for k in range(self.K):
            out.append(state.intercept[k])
            out += list(state.coef[k, self.supports[k]])
            if not self.shared_variance:
                out.append(state.var[k])
        if self.shared_variance:
            out.append(state.var[0])
        ref_w = state.gate_coef[self.K - 1]
        ref_b = state.gate_intercept[self.K - 1]
        for k in range(self.K - 1):
            out.append(state.gate_intercept[k] - ref_b)
            out += list((state.gate_coef[k] - ref_w)[self.gate_support])
        return np.asarray(out, dtype=float)

    def unpack(self, theta):
        K, p = self.K, self.p
        coef = np.zeros((K, p))
        intercept = np.zeros(K)
        var = np.zeros(K)
        gate_coef = np.zeros((K, p))
        gate_intercept = np.zeros(K)
        i = 0
        for k in range(K):
            intercept[k] = theta[i]
            i += 1
            s = self.supports[k]
            coef[k, s] = theta[i:i + s.size]
            i += s.size
            if not self.shared_variance:
                var[k] = theta[i]
                i += 1
        if self.shared_variance:
            var[:] = theta[i]
            i += 1
        g = self.gate_support
        for k in range(K - 1):
            gate_intercept[k] = theta[i]
            i += 1
            gate_coef[k, g] = theta[i:i + g.size]
            i += g.size
        return MoEState(coef, intercept, gate_coef, gate_intercept, var)


def per_sample_scores(theta, layout, X, y):
    """(n, m) analytic scores of :math:`\\log p(y_i|x_i)` and the (n,) log-densities."""
    st = layout.unpack(theta)
    if np.any(st.var <= 0):
        raise FloatingPointError("a variance is not positive")
    mu = st.intercept[None, :] + X @ st.coef.T
    log_g = gate_log_probs(X, st)
    log_resp, log_norm = responsibilities(normal_log_density(y[:, None], mu, st.var[None, :]),
                                          log_g)
    tau = np.exp(log_resp)
    g = np.exp(log_g)
    r = y[:, None] - mu
    cols = []
    var_cols = []
    for k in range(layout.K):
        a = tau[:, k] * r[:, k] / st.var[k]
        cols.append(a[:, None])
        s = layout.supports[k]
        if s.size:
            cols.append(a[:, None] * X[:, s])
        dv = tau[:, k] * (r[:, k] ** 2 / (2 * st.var[k] ** 2) - 1.0 / (2 * st.var[k]))
        if layout.shared_variance:
            var_cols.append(dv)
        else:
            cols.append(dv[:, None])
    if layout.shared_variance:
        cols.append(np.sum(var_cols, axis=0)[:, None])
    Xg = X[:, layout.gate_support]
    for k in range(layout.K - 1):
        d = tau[:, k] - g[:, k]
        cols.append(d[:, None])
        if Xg.shape[1]:
            cols.append(d[:, None] * Xg)
    return np.hstack(cols), log_norm


def total_score(theta, layout, X, y, sw):
    S, _ = per_sample_scores(theta, layout, X, y)
    return sw @ S


def log_likelihood(theta, layout, X, y, sw):
    _, ln = per_sample_scores(theta, layout, X, y)
    return float(sw @ ln)


def observed_information(theta, layout, X, y, sw):
    """:math:`-\\nabla^2 \\ell` from central differences of the analytic score."""
    try:
        from statsmodels.tools.numdiff import approx_fprime
    except ImportError:  # pragma: no cover - statsmodels is the 'stats' extra
        raise ImportError("standard errors from the observed information need statsmodels: "
                          "pip install 'mixstat[stats]' (or use method='bootstrap')") from None

    H = approx_fprime(theta, total_score, centered=True, args=(layout, X, y, sw))
    H = np.atleast_2d(H)
    return -0.5 * (H + H.T)


@dataclass
class MoEInference(InferenceResult):
    """Estimates of a Gaussian MoE with standard errors, z, p-values and
    intervals (:class:`mixstat.primitives.InferenceResult`).

    ``names`` lists (block, term) pairs: each expert's intercept, slopes on
    the support and variance, then the gate contrasts against the reference
    class. ``cov`` is ``None`` for the bootstrap (``se`` is then the bootstrap
    standard deviation). ``n_failed`` counts bootstrap replicates whose refit
    failed.
    """


_NOT_IDENTIFIED = "an empty expert, collinear columns, separable gates"


def wald(layout, theta, cov, method, level):
    """Wald inference; the variances' intervals on the log scale
    (:func:`log_scale_variance_intervals`)."""
    return log_scale_variance_intervals(
        MoEInference.from_cov(layout.names, theta, cov, method, level))


def log_scale_variance_intervals(inf):
    r"""Replace the Wald intervals of the variances (rows ``sigma^2``) by Wald
    intervals of :math:`\log\sigma^2` mapped back (in place; returns ``inf``):

    .. math:: \hat\sigma^2 \exp(\pm z_{1-\alpha/2}\,
              \mathrm{se}(\hat\sigma^2)/\hat\sigma^2),

    the delta method's :math:`\mathrm{se}(\log\hat\sigma^2) =
    \mathrm{se}(\hat\sigma^2)/\hat\sigma^2`. They are never negative, and
    they are the intervals of a parameter whose likelihood is closer to
    quadratic on the log scale (small experts have skewed variance
    distributions: :math:`n_k\hat\sigma^2/\sigma^2 \sim \chi^2_{n_k - p_k - 1}`
    for one expert)."""
    from scipy import stats

    q = stats.norm.ppf(0.5 + inf.level / 2.0)
    for i, (_, term) in enumerate(inf.names):
        v, se = inf.params[i], inf.se[i]
        if term == "sigma^2" and v > 0 and np.isfinite(se):
            inf.ci_low[i] = v * np.exp(-q * se / v)
            inf.ci_high[i] = v * np.exp(q * se / v)
    return inf


def align_to(ref_state, state):
    """Permutation of ``state``'s experts matching ``ref_state`` (Hungarian on
    intercepts and slopes)."""
    ref = np.column_stack([ref_state.intercept, ref_state.coef])
    est = np.column_stack([state.intercept, state.coef])
    return match_components(ref, est)


def refit_state(X, y, sw, state, cfg):
    """Unpenalised EM from ``state`` on the supports fixed in ``cfg``."""
    from ._em import run_em

    return run_em(X, y, sw, state.copy(), cfg)


def bootstrap_statistic(indices, seed, X, y, sw, state, cfg, layout, kind, model):
    """One bootstrap replicate of the packed parameters (NaN when the refit fails).

    ``kind='nonparametric'`` refits on the rows ``indices``; ``'parametric'``
    draws a new response at every row from the fitted model (seed ``seed``)."""
    try:
        if kind == "parametric":
            yb, _ = model.sample(X, random_state=seed)
            Xb, swb = X, sw
        else:
            Xb, yb, swb = np.asfortranarray(X[indices]), y[indices], sw[indices]
        res = refit_state(Xb, yb, swb, state, cfg)
        st = res["state"]
        if layout.K > 1:
            st = st.permute(align_to(state, st))
        theta = layout.pack(st)
        if not np.all(np.isfinite(theta)) or np.any(st.var <= cfg.var_floor * (1 + 1e-9)):
            return np.full(layout.size, np.nan)
        return theta
    except (FloatingPointError, np.linalg.LinAlgError, ValueError):
        return np.full(layout.size, np.nan)
