"""Classifier-based MPE estimators: ROC, BBE, Elkan-Noto, DEDPUL, TIcE.

Each trains a "non-traditional" classifier (component sample vs mixture
sample), cross-fitted so that every point is scored by a model that did not
see it, and reads the proportion from the held-out scores
``s(x) = P(component sample | x)``.
"""

from __future__ import annotations

import heapq
from numbers import Integral, Real

import numpy as np
from scipy.ndimage import median_filter
from scipy.stats import beta

from .._validation import Interval, StrOptions
from ..primitives import logsumexp, normal_log_density
from ._base import BACKEND_DOC, BOOTSTRAP_DOC, BaseMPE, cross_fit_scores

_CLF_DOC = """
    classifier : scikit-learn classifier or None
        Any classifier with ``predict_proba``; None uses a quadratic logistic
        regression (:func:`mixstat.mpe._base.default_classifier`).
    n_folds : int, default=5
        Cross-fitting folds.
    bootstrap_refit : bool, default=True
        With ``n_bootstrap > 0``: True refits the classifiers on every
        resample (the whole procedure: the honest interval); False resamples
        the held-out scores within each sample and reruns only the MPE step
        on them, reusing the fitted classifiers (hundreds of times cheaper;
        it ignores the classifier's own variability, so it covers less: BBE
        at 95 % covered kappa* in 67 % of the cells of
        ``benchmarks/results/mpe_realdata_quick.md``)."""


class _ScoreMPE(BaseMPE):
    _parameter_constraints = {
        **BaseMPE._parameter_constraints,
        "classifier": "no_validation",
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "bootstrap_refit": ["boolean"],
    }

    def _scores(self, X_h, X_f, rng):
        s_h, s_f = cross_fit_scores(self.classifier, X_h, X_f, self.n_folds, rng)
        self.scores_component_, self.scores_mixture_ = s_h, s_f
        return s_h, s_f

    def _estimate(self, X_h, X_f, rng):
        s_h, s_f = self._scores(X_h, X_f, rng)
        return self._from_scores(s_h, s_f)

    def _bootstrap(self, X_h, X_f, rng):
        if self.bootstrap_refit:
            return super()._bootstrap(X_h, X_f, rng)
        # over the MPE step only: the held-out scores are resampled within each
        # sample, the cross-fitted classifiers are kept
        import copy

        from ..primitives._bootstrap import bootstrap_replicates, percentile_interval

        stat = _ScoreStatistic(copy.copy(self), self.scores_component_, self.scores_mixture_)
        strata = np.r_[np.ones(len(X_h), int), np.zeros(len(X_f), int)]
        reps = bootstrap_replicates(stat, strata, self.n_bootstrap, random_state=rng,
                                    n_jobs=self.n_jobs, verbose=self.verbose,
                                    desc=type(self).__name__)
        self.bootstrap_proportions_ = reps
        self.n_bootstrap_failed_ = int(np.sum(~np.isfinite(reps)))
        self.proportion_interval_ = percentile_interval(reps, self.confidence)


class _ScoreStatistic:
    """Picklable ``(indices, seed) -> proportion`` on resampled held-out scores."""

    def __init__(self, est, s_h, s_f):
        self.est, self.s = est, np.r_[s_h, s_f]
        self.m = len(s_h)

    def __call__(self, idx, seed):
        ih, i_f = idx[idx < self.m], idx[idx >= self.m]
        try:
            return float(np.clip(self.est._from_scores(self.s[ih], self.s[i_f]), 0, 1))
        except ValueError:
            return np.nan


def _tail_counts(s_h, s_f):
    """For each candidate threshold t (distinct scores, descending): the
    numbers of component / mixture scores >= t."""
    t = np.unique(np.r_[s_h, s_f])[::-1]
    k_h = len(s_h) - np.searchsorted(np.sort(s_h), t, side="left")
    k_f = len(s_f) - np.searchsorted(np.sort(s_f), t, side="left")
    return t, k_h, k_f


def roc_proportion(s_h, s_f, delta=0.1, union_bound=True):
    r"""Binomial-inversion ROC estimate (Blanchard, Lee & Scott 2010; Scott 2015).

    .. math:: \hat\kappa = \min_t \frac{\bar F_\delta(t)}{\underline H_\delta(t)}

    where :math:`\bar F_\delta(t)` is the Clopper-Pearson upper bound (level
    :math:`1-\delta`) on :math:`P_F(s \ge t)` and :math:`\underline H_\delta(t)`
    the lower bound on :math:`P_H(s \ge t)`, from held-out scores. With
    ``union_bound`` each of the :math:`N` thresholds gets :math:`\delta/N`
    (so the bounds hold jointly, as the rate analysis of Scott 2015 needs);
    otherwise each gets :math:`\delta` (the reference code's choice, unstable
    in the extreme tail).
    """
    t, k_h, k_f = _tail_counts(s_h, s_f)
    if union_bound:
        delta = delta / len(t)
    m, n = len(s_h), len(s_f)
    ok = k_h > 0
    up_f = np.where(k_f < n, beta.ppf(1 - delta, k_f + 1, np.maximum(n - k_f, 1)), 1.0)
    lo_h = beta.ppf(delta, np.maximum(k_h, 1), m - k_h + 1)
    ratio = np.where(ok & (lo_h > 0), up_f / np.where(lo_h > 0, lo_h, 1.0), np.inf)
    i = int(np.argmin(ratio))
    return float(min(ratio[i], 1.0)), float(t[i])


class ROCMPE(_ScoreMPE):
    __doc__ = r"""ROC-based mixture proportion estimator with binomial inversion.

    Blanchard, Lee & Scott, "Semi-supervised novelty detection", JMLR 2010;
    Scott, "A rate of convergence for mixture proportion estimation, with
    application to learning from noisy labels", AISTATS 2015.

    On cross-fitted scores :math:`s(x)`, for every threshold :math:`t`

    .. math:: \hat\kappa = \min_t \frac{\mathrm{UCB}_\delta[\hat P_F(s\ge t)]}
              {\mathrm{LCB}_\delta[\hat P_H(s\ge t)]},

    with exact binomial (Clopper-Pearson) bounds, jointly valid over the
    :math:`N` thresholds (level :math:`\delta/N` each, ``union_bound=True``)
    or at level :math:`\delta` per threshold as in the reference code
    (``union_bound=False``; the minimum over thresholds then falls below
    :math:`\kappa(F|H)` by chance in the extreme tail).

    Parameters
    ----------
    delta : float, default=0.1
    union_bound : bool, default=True
    """ + _CLF_DOC + BACKEND_DOC + BOOTSTRAP_DOC + """

    Attributes
    ----------
    proportion_ : float
    backend_ : str
        The resolved backend (see ``backend``).
    threshold_ : float
    """

    _summary_fields = (("score threshold", "threshold_"), ("delta", "delta"), ("cross-fitting folds", "n_folds"))
    _parameter_constraints = {**_ScoreMPE._parameter_constraints,
                              "delta": [Interval(Real, 0, 1, closed="neither")],
                              "union_bound": ["boolean"]}

    def __init__(self, delta=0.1, *, union_bound=True, classifier=None, n_folds=5,
                 bootstrap_refit=True, backend=None, n_bootstrap=0, confidence=0.95, n_jobs=None, verbose=0, random_state=None):
        self.delta = delta
        self.union_bound = union_bound
        self.classifier = classifier
        self.n_folds = n_folds
        self.bootstrap_refit = bootstrap_refit
        self.backend = backend
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _from_scores(self, s_h, s_f):
        k, self.threshold_ = roc_proportion(s_h, s_f, self.delta, self.union_bound)
        return k


def bbe_proportion(s_h, s_f, delta=0.1, gamma=0.01):
    r"""Best Bin Estimation (Garg et al., NeurIPS 2021, Algorithm 1).

    .. math:: \hat c = \arg\min_c \frac{\hat q_U(c)}{\hat q_P(c)}
        + \frac{1+\gamma}{\hat q_P(c)}\Big(\sqrt{\tfrac{\log(4/\delta)}{2n_U}}
        + \sqrt{\tfrac{\log(4/\delta)}{2n_P}}\Big),\qquad
        \hat\kappa = \hat q_U(\hat c)/\hat q_P(\hat c)

    with :math:`\hat q(c)` the fraction of held-out scores :math:`\ge c`.
    Returns ``(kappa, threshold, (lower, upper))``: the DKW band at
    :math:`\hat c` (each empirical tail within
    :math:`\sqrt{\log(4/\delta)/2n}` with probability :math:`1-\delta/2`),
    a confidence interval of level :math:`1-\delta` for
    :math:`q_U(\hat c)/q_P(\hat c) \ge \kappa(F|H)`.
    """
    t, k_h, k_f = _tail_counts(s_h, s_f)
    m, n = len(s_h), len(s_f)
    q_p, q_u = k_h / m, k_f / n
    e_u = np.sqrt(np.log(4 / delta) / (2 * n))
    e_p = np.sqrt(np.log(4 / delta) / (2 * m))
    with np.errstate(divide="ignore", invalid="ignore"):
        obj = np.where(q_p > 0, (q_u + (1 + gamma) * (e_u + e_p)) / q_p, np.inf)
    i = int(np.argmin(obj))
    kappa = q_u[i] / q_p[i]
    lo = max(q_u[i] - e_u, 0.0) / min(q_p[i] + e_p, 1.0)
    hi = (q_u[i] + e_u) / (q_p[i] - e_p) if q_p[i] > e_p else 1.0
    return (float(min(kappa, 1.0)), float(t[i]),
            (float(np.clip(lo, 0, 1)), float(np.clip(hi, 0, 1))))


class BestBinMPE(_ScoreMPE):
    __doc__ = r"""Best Bin Estimation (BBE) of the mixture proportion.

    Garg, Wu, Smola, Balakrishnan & Lipton, "Mixture Proportion Estimation
    and PU Learning: A Modern Approach", NeurIPS 2021. The DKW term uses
    :math:`\log(4/\delta)` as in the paper (the reference code had
    :math:`\log(1/\delta)`, acmi-lab/PU_learning#3).

    .. math:: \hat c = \arg\min_c \frac{\hat q_U(c)}{\hat q_P(c)}
        + \frac{1+\gamma}{\hat q_P(c)}\Big(\sqrt{\tfrac{\log(4/\delta)}{2n}}
        + \sqrt{\tfrac{\log(4/\delta)}{2m}}\Big),\qquad
        \hat\kappa = \frac{\hat q_U(\hat c)}{\hat q_P(\hat c)}.

    Parameters
    ----------
    delta : float, default=0.1
    gamma : float, default=0.01
    """ + _CLF_DOC + BACKEND_DOC + BOOTSTRAP_DOC + r"""

    Attributes
    ----------
    proportion_ : float
    backend_ : str
        The resolved backend (see ``backend``).
    threshold_ : float
    confidence_bound_ : (float, float)
        DKW interval at the chosen bin, level :math:`1-\delta`.
    """

    _summary_fields = (("score threshold (best bin)", "threshold_"), ("DKW confidence bound at the bin (lower, upper)", "confidence_bound_"), ("delta", "delta"), ("gamma", "gamma"), ("cross-fitting folds", "n_folds"))
    _parameter_constraints = {**_ScoreMPE._parameter_constraints,
                              "delta": [Interval(Real, 0, 1, closed="neither")],
                              "gamma": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, delta=0.1, gamma=0.01, *, classifier=None, n_folds=5,
                 bootstrap_refit=True, backend=None, n_bootstrap=0, confidence=0.95, n_jobs=None, verbose=0, random_state=None):
        self.delta = delta
        self.gamma = gamma
        self.classifier = classifier
        self.n_folds = n_folds
        self.bootstrap_refit = bootstrap_refit
        self.backend = backend
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _from_scores(self, s_h, s_f):
        k, self.threshold_, self.confidence_bound_ = bbe_proportion(s_h, s_f, self.delta, self.gamma)
        return k


def _label_frequency_to_kappa(c, m, n):
    r"""Case-control label frequency to proportion: with m labeled component
    points and n mixture points, an anchor point has
    :math:`P(\text{labeled}|x) = c = m/(m + n\kappa)`, so
    :math:`\kappa = (m/n)(1-c)/c`."""
    c = float(np.clip(c, 1e-12, 1.0))
    return float(np.clip((m / n) * (1.0 - c) / c, 0.0, 1.0))


class ElkanNotoMPE(_ScoreMPE):
    __doc__ = r"""Elkan & Noto (KDD 2008) estimators e1 and e3.

    A classifier :math:`g(x) = P(\text{component sample}|x)` (cross-fitted);
    the label frequency is :math:`c = \text{mean of } g` over held-out
    component points (``e1``) or :math:`\max g` over all held-out points
    (``e3``), and, in the case-control PU setting with :math:`m` component
    and :math:`n` mixture points,

    .. math:: \hat\kappa = \frac{m}{n}\,\frac{1-c}{c}

    (:math:`(1-c)/c` for balanced samples).

    Consistency. The population classifier is
    :math:`g(x) = mh(x)/(mh(x) + nf(x)) = m/(m + n f(x)/h(x))`, and
    :math:`f/h \ge \kappa(F|H)` everywhere with equality on the anchor set, so

    .. math:: g(x) \le c_0 := \frac{m}{m + n\kappa(F|H)},\qquad
              \frac mn\frac{1-c_0}{c_0} = \kappa(F|H).

    ``e3`` takes the maximum of :math:`g`, which tends to :math:`c_0`: it is
    consistent for :math:`\kappa(F|H)` (with a well-specified classifier).
    ``e1`` takes :math:`E_H[g] \le c_0`, with equality only when
    :math:`g = c_0` on all of H's support, i.e. when H lies entirely inside
    the anchor set (Elkan & Noto's assumption :math:`P(y=1|x) = 1` at every
    labelled point: H and G do not overlap). When they overlap,
    :math:`E_H[g] < c_0` and ``e1`` converges to a value *above*
    :math:`\kappa(F|H)`, whatever the classifier: in the synthetic setting of
    :func:`mixstat.datasets.make_sumpe_synthetic` at :math:`\kappa^*=0.5`,
    :math:`E_H[g] = 0.610` and the e1 limit is 0.640 against
    :math:`\kappa(F|H) = 0.545` (``benchmarks/results/mpe_convergence.md``).

    Parameters
    ----------
    variant : {'e1', 'e3'}, default='e1'
    """ + _CLF_DOC + BACKEND_DOC + BOOTSTRAP_DOC + """

    Attributes
    ----------
    proportion_ : float
    backend_ : str
        The resolved backend (see ``backend``).
    label_frequency_ : float
    """

    _summary_fields = (("label frequency c", "label_frequency_"), ("cross-fitting folds", "n_folds"))
    _parameter_constraints = {**_ScoreMPE._parameter_constraints,
                              "variant": [StrOptions({"e1", "e3"})]}

    def __init__(self, variant="e1", *, classifier=None, n_folds=5, bootstrap_refit=True, backend=None,
                 n_bootstrap=0,
                 confidence=0.95, n_jobs=None, verbose=0, random_state=None):
        self.variant = variant
        self.classifier = classifier
        self.n_folds = n_folds
        self.bootstrap_refit = bootstrap_refit
        self.backend = backend
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _from_scores(self, s_h, s_f):
        c = s_h.mean() if self.variant == "e1" else max(s_h.max(), s_f.max())
        self.label_frequency_ = float(c)
        return _label_frequency_to_kappa(c, len(s_h), len(s_f))


def _kde_log(points, data, bw, leave_one_out=False):
    """Gaussian KDE log-density of ``data`` (1-D) at ``points`` (chunked).

    ``leave_one_out=True`` requires ``points is data`` and leaves each
    point's own kernel out of its density (divided by ``n - 1``)."""
    out = np.empty(len(points))
    n = len(data)
    for a in range(0, len(points), 2048):
        ll = normal_log_density(points[a:a + 2048, None], data[None, :], bw * bw)
        if leave_one_out:
            rows = np.arange(ll.shape[0])
            ll[rows, a + rows] = -np.inf
        out[a:a + 2048] = logsumexp(ll, axis=1) - np.log(n - 1 if leave_one_out else n)
    return out


def _logit(s, eps=1e-7):
    s = np.clip(np.asarray(s, dtype=float), eps, 1.0 - eps)
    return np.log(s) - np.log1p(-s)


def dedpul_density_ratio(s_h, s_f, bw_mixture=0.05, bw_component=0.1, max_ratio=50.0,
                         n_grid=1025, leave_one_out=False):
    r"""DEDPUL's density ratio :math:`r(s) = f_H(s)/f_F(s)` at the mixture scores.

    As in the reference implementation (Ivanov 2020, ``estimate_diff`` with
    its defaults): Gaussian KDEs of the *logit* of the scores, each with
    bandwidth ``bw * std`` of its sample (SciPy's ``gaussian_kde`` factor),
    the ratio capped at ``max_ratio``, smoothed by a running median over
    ``2 (n // 20) + 1`` neighbouring mixture scores, then rearranged to be
    non-decreasing in the score (the largest ratio goes to the highest
    score). The reference's intermediate monotonising passes, which the final
    rearrangement overrides up to ties, are left out.

    Why the prior is biased low on small real samples (diagnosed on six
    bundled data sets, ``benchmarks/results/mpe_realdata.md``): (1) with the
    reference's narrow mixture bandwidth (0.05 standard deviations) each
    mixture score's own kernel :math:`1/(n h\sqrt{2\pi})` is a large part
    of :math:`\hat f_F` at that score, so the plug-in ratio is too small at
    every mixture point: its mean over the mixture, which is
    :math:`E_F[h/f] = 1` for the true ratio, was 0.47-0.90 at n = 28-200;
    (2) the EM clips the posterior :math:`\max(0, 1-\kappa r)`, so noise in
    :math:`r` biases :math:`1-\kappa` up (Jensen), most near
    :math:`\kappa = 1` where :math:`r \approx 1/\kappa` everywhere.
    ``leave_one_out=True`` removes (1): the mixture density at each mixture
    score leaves that score's kernel out (breast cancer, kappa* = 0.95,
    n = 143: 0.54 -> 0.85), but the ratio then explodes at isolated tail
    scores (the anchor-score check at kappa = 0.2, n = 20000 gives 0.05), so
    it is an option, not the default; (2) is the method.
    """
    t_h, t_f = _logit(s_h), _logit(s_f)
    sd_h = float(np.std(t_h, ddof=1)) if len(t_h) > 1 else 1.0
    sd_f = float(np.std(t_f, ddof=1)) if len(t_f) > 1 else 1.0
    h_h = bw_component * (sd_h if sd_h > 0 else 1.0)
    h_f = bw_mixture * (sd_f if sd_f > 0 else 1.0)
    order = np.argsort(t_f, kind="stable")
    if leave_one_out and len(t_f) > 1:
        with np.errstate(over="ignore"):
            lr = _kde_log(t_f, t_h, h_h) - _kde_log(t_f, t_f, h_f, leave_one_out=True)
            r = np.minimum(np.exp(lr[order]), max_ratio)
    else:
        lo, hi = min(t_h.min(), t_f.min()), max(t_h.max(), t_f.max())
        grid = np.linspace(lo, hi, n_grid) if hi > lo else np.array([lo - 1.0, lo + 1.0])
        lr = _kde_log(grid, t_h, h_h) - _kde_log(grid, t_f, h_f)
        r = np.minimum(np.exp(np.interp(t_f[order], grid, lr)), max_ratio)
    k = len(t_f) // 20
    if k > 0:
        r = median_filter(r, size=2 * k + 1, mode="nearest")
    out = np.empty_like(r)
    out[order] = np.sort(r)
    return out


def dedpul_proportion(s_h, s_f, prior="em", bw_mixture=0.05, bw_component=0.1,
                      quantile=0.95, tol=1e-5, max_iter=1000, leave_one_out=False):
    r"""DEDPUL prior from 1-D scores (Ivanov, ICMLA 2020).

    :math:`r` is :func:`dedpul_density_ratio` at the mixture points. With
    ``prior='em'``, the EM of the reference code, started at
    :math:`\kappa = 1`:

    .. math:: 1-\kappa \leftarrow \frac1n\sum_{x\in F}\max[0,\,1-\kappa\, r(s(x))],

    stopped when :math:`\kappa` moves by less than ``tol`` or when no
    posterior is clipped at 0 (then :math:`\kappa` is an exact fixed point);
    with ``prior='quantile'``, :math:`\kappa = 1/\max(q_{0.95}(r), 1)`.
    Returns ``(kappa, n_iter)``.
    """
    r = dedpul_density_ratio(s_h, s_f, bw_mixture, bw_component, leave_one_out=leave_one_out)
    if prior == "quantile":
        return float(1.0 / max(np.quantile(r, quantile, method="higher"), 1.0)), 0
    kappa, it = 1.0, 0
    for it in range(1, max_iter + 1):
        post = np.maximum(0.0, 1.0 - kappa * r)
        new = 1.0 - float(post.mean())
        done = abs(new - kappa) < tol or post.min() > 0
        kappa = new
        if done:
            break
    return float(np.clip(kappa, 0.0, 1.0)), it


class DEDPULMPE(_ScoreMPE):
    __doc__ = r"""DEDPUL mixture proportion estimator (Ivanov, "DEDPUL:
    Difference-of-Estimated-Densities-based Positive-Unlabeled Learning",
    ICMLA 2020).

    Cross-fitted classifier score :math:`s(x)`; density ratio
    :math:`r = f_H(s)/f_F(s)` of the scores by Gaussian KDEs of
    :math:`\operatorname{logit} s` (bandwidth factors 0.05 for the mixture and
    0.1 for the component, times each sample's standard deviation, as the
    reference code's ``gaussian_kde``), capped at 50, smoothed by a running
    median and rearranged to be non-decreasing in :math:`s`
    (:func:`dedpul_density_ratio`); the proportion comes from the
    reference's EM (``prior='em'``) or is :math:`1/q_{0.95}(r)`
    (``prior='quantile'``). Left out: the reference's "non-convergence"
    heuristic (a second-difference rule on a grid of priors, used when the EM
    stops at a trivial value) and its intermediate monotonising passes.

    Consistency: the population DEDPUL prior is :math:`1/\sup_s r(s)`,
    reached at the top of the score range, where the KDE with a bandwidth
    that does not shrink with the sample (a fixed factor of the standard
    deviation) is biased; the EM also stops (at ``tol``) before reaching the
    fixed point :math:`1/\max r`. So DEDPUL keeps a bias of a few hundredths
    with respect to :math:`\kappa(F|H)` even with the exact posterior as
    the score (``benchmarks/results/mpe_convergence.md``).

    Parameters
    ----------
    prior : {'em', 'quantile'}, default='em'
    bandwidth_mixture, bandwidth_component : float
        KDE bandwidth factors (times the standard deviation of the logit
        scores of the mixture / component sample).
    quantile : float, default=0.95
    leave_one_out : bool, default=False
        Evaluate the mixture KDE at each mixture score without its own kernel
        (see :func:`dedpul_density_ratio` for the diagnosis): the plug-in
        evaluation of the reference code (``False``) biases the ratio, and
        the prior, low at small samples; the leave-one-out ratio explodes at
        isolated tail scores, so ``prior='quantile'`` is worse with it.
    """ + _CLF_DOC + BACKEND_DOC + BOOTSTRAP_DOC + """

    Attributes
    ----------
    proportion_ : float
    backend_ : str
        The resolved backend (see ``backend``).
    n_iter_ : int
    """

    _summary_fields = (("EM iterations", "n_iter_"), ("cross-fitting folds", "n_folds"))
    _parameter_constraints = {
        **_ScoreMPE._parameter_constraints,
        "prior": [StrOptions({"em", "quantile"})],
        "bandwidth_mixture": [Interval(Real, 0, None, closed="neither")],
        "bandwidth_component": [Interval(Real, 0, None, closed="neither")],
        "quantile": [Interval(Real, 0, 1, closed="right")],
        "leave_one_out": ["boolean"],
    }

    def __init__(self, prior="em", *, bandwidth_mixture=0.05, bandwidth_component=0.1,
                 quantile=0.95, leave_one_out=False, classifier=None, n_folds=5,
                 bootstrap_refit=True, backend=None, n_bootstrap=0,
                 confidence=0.95, n_jobs=None, verbose=0, random_state=None):
        self.prior = prior
        self.bandwidth_mixture = bandwidth_mixture
        self.bandwidth_component = bandwidth_component
        self.quantile = quantile
        self.leave_one_out = leave_one_out
        self.classifier = classifier
        self.n_folds = n_folds
        self.bootstrap_refit = bootstrap_refit
        self.backend = backend
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _from_scores(self, s_h, s_f):
        k, self.n_iter_ = dedpul_proportion(s_h, s_f, self.prior, self.bandwidth_mixture,
                                            self.bandwidth_component, self.quantile,
                                            leave_one_out=self.leave_one_out)
        return k


# --------------------------------------------------------------- TIcE ---
def _tice_delta(T):
    return max(0.025, 1.0 / (1.0 + 0.004 * T))


def _tice_low_c(L, T, delta, c, min_T):
    """Lower bound of the label frequency from L labeled among T points."""
    if T < max(min_T, 1):
        return 0.0
    return L / T - np.sqrt(c * (1 - c) * (1 - delta) / (delta * T))


def _tice_fold(X, s, tree, est, k, max_splits, min_T, c_prior, delta, n_borders=3):
    """One fold of TIcE: grow a tree best-first on the points ``tree`` (max-bepp
    split criterion, each feature cut into n_borders+1 equal-width pieces and
    used once per path) and return the best lower bound of c over the subsets,
    counted on the points ``est``."""
    borders = np.linspace(0, 1, n_borders + 2)[1:-1]
    pieces = np.minimum(np.searchsorted(borders, X, side="right"), n_borders)
    best = _tice_low_c(s[est].sum(), est.sum(), 1.0, c_prior, min_T)
    heap = [(-_tice_low_c(s[tree].sum(), tree.sum(), delta, c_prior, 0), 0, tree, est,
             frozenset(range(X.shape[1])))]
    counter, n_split, min_lab = 1, 0, 1.0
    while heap and n_split < max_splits:
        n_split += 1
        _, _, sub_tr, sub_est, avail = heapq.heappop(heap)
        lab_count = s[sub_tr].sum()
        best_a, best_score, best_parts = -1, -1.0, None
        useless = set()
        for a in avail:
            parts = [(sub_tr & (pieces[:, a] == q), sub_est & (pieces[:, a] == q))
                     for q in range(n_borders + 1)]
            if max(s[pe].sum() for _, pe in parts) < min_lab:
                useless.add(a)
                continue
            score = max((s[pt].sum() / (pt.sum() + k)) if pt.any() else 0.0 for pt, _ in parts)
            if score > best_score:
                best_a, best_score, best_parts = a, score, parts
        if best_parts is None or best_score <= 0:
            continue
        if sum(pe.any() for _, pe in best_parts) <= 1:
            continue
        for _, pe in best_parts:
            best = max(best, _tice_low_c(s[pe].sum(), pe.sum(), delta, c_prior, min_T))
        min_lab = c_prior * (1 - c_prior) * (1 - delta) / (delta * max(1 - best, 1e-12) ** 2)
        new_avail = avail - {best_a} - useless
        for pt, pe in best_parts:
            if s[pe].sum() > min_lab and pt.sum() > min_T and 0 < lab_count < sub_tr.sum():
                heapq.heappush(heap, (-_tice_low_c(s[pt].sum(), pt.sum(), delta, c_prior, 0),
                                      counter, pt, pe, new_avail))
                counter += 1
    return best


class TIcEMPE(BaseMPE):
    __doc__ = r"""Tree Induction for c Estimation (TIcE; Bekker & Davis, "Estimating
    the class prior in positive and unlabeled data through decision tree
    induction", AAAI 2018).

    Features are min-max scaled to [0, 1]. For each fold, a tree is grown
    best-first on that fold (each feature cut into ``n_splits + 1`` equal
    pieces of [0, 1], at 0.25, 0.5, 0.75 by default, and used once per path;
    split criterion max-bepp :math:`\max_{\text{child}} L/(T+k)`)
    and every subset :math:`S` it visits gives, counted on the *other*
    folds, a lower bound of the label frequency

    .. math:: c \ge \frac{L_S}{T_S} - \sqrt{\frac{c(1-c)(1-\delta)}{\delta T_S}},
              \qquad \delta = \max(0.025, 1/(1+0.004\,T)),

    (:math:`T` the size of the estimation part). :math:`\hat c` is the mean
    over folds of the best bound; two passes (prior :math:`c=0.5`, then the
    first estimate). The proportion follows from the case-control relation
    :math:`\hat\kappa = (m/n)(1-\hat c)/\hat c`. This is the published
    algorithm (Bekker & Davis's code cuts each feature into the same four
    pieces).

    Consistency: TIcE estimates a *lower confidence bound* of :math:`c`,
    hence an upper bound of :math:`\kappa(F|H)`, and converges slowly:

    - the correction :math:`\sqrt{c(1-c)(1-\delta)/(\delta T_S)}` with
      :math:`\delta` floored at 0.025 (so :math:`(1-\delta)/\delta = 39`
      once :math:`T \ge 9750`) shrinks only as :math:`T_S^{-1/2}`; through
      :math:`\kappa = (m/n)(1-c)/c` a deficit :math:`\Delta c` becomes
      :math:`\Delta c/c^2` in :math:`\hat\kappa`. In 1-D at
      :math:`m = n = 10^4` this term alone is about +0.1;
    - the subsets are intersections of the fixed cells, so in low dimension
      the best one cannot shrink onto the anchor region where :math:`h/f` is
      smallest: its population label frequency
      :math:`mH(S)/(mH(S) + nF(S))` stays below
      :math:`c = m/(m + n\kappa(F|H))`. More cuts (``n_splits``) reduce this.

    Both push :math:`\hat\kappa` above :math:`\kappa(F|H)`; with
    ``delta=0.5`` and ``n_splits=15`` the bias is near zero at
    :math:`n = 10^4` in 1-D (``benchmarks/results/mpe_convergence.md``).

    Parameters
    ----------
    k : int, default=5
    max_splits : int, default=500
    min_T : int, default=10
    n_folds : int, default=5
    delta : float or None
        None uses the formula above (the SuMPE runs used 0.2 with k = 10).
    n_iterations : int, default=2
    n_splits : int, default=3
        Cuts per feature (equal-width pieces of [0, 1]); 3 as published.
    """ + BACKEND_DOC + BOOTSTRAP_DOC + """

    Attributes
    ----------
    proportion_ : float
    backend_ : str
        The resolved backend (see ``backend``).
    label_frequency_ : float
    """

    _summary_fields = (("label frequency c", "label_frequency_"), ("folds", "n_folds"))
    _parameter_constraints = {
        **BaseMPE._parameter_constraints,
        "delta": [None, Interval(Real, 0, 1, closed="neither")],
        "n_iterations": [Interval(Integral, 1, None, closed="left")],
        "k": [Interval(Integral, 0, None, closed="left")],
        "max_splits": [Interval(Integral, 1, None, closed="left")],
        "min_T": [Interval(Integral, 1, None, closed="left")],
        "n_folds": [Interval(Integral, 2, None, closed="left")],
        "n_splits": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, k=5, *, max_splits=500, min_T=10, n_folds=5, delta=None,
                 n_iterations=2, n_splits=3, backend=None, n_bootstrap=0, confidence=0.95, n_jobs=None, verbose=0,
                 random_state=None):
        self.k = k
        self.delta = delta
        self.n_iterations = n_iterations
        self.n_splits = n_splits
        self.max_splits = max_splits
        self.min_T = min_T
        self.n_folds = n_folds
        self.backend = backend
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _estimate(self, X_h, X_f, rng):
        X = np.vstack([X_h, X_f])
        s = np.r_[np.ones(len(X_h)), np.zeros(len(X_f))]
        lo, hi = X.min(0), X.max(0)
        X = (X - lo) / np.where(hi > lo, hi - lo, 1.0)
        folds = rng.permutation(len(X)) % self.n_folds
        c = 0.5
        for _ in range(self.n_iterations):
            cs = []
            for f in range(self.n_folds):
                tree = folds == f
                est = ~tree
                delta = self.delta if self.delta is not None else _tice_delta(est.sum())
                cs.append(_tice_fold(X, s, tree, est, self.k, self.max_splits, self.min_T,
                                     c, delta, n_borders=self.n_splits))
            c = float(np.clip(np.mean(cs), 1e-6, 1.0 - 1e-9))
        self.label_frequency_ = c
        return _label_frequency_to_kappa(c, len(X_h), len(X_f))
