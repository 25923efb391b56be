r"""Choosing the number of experts: BIC, ICL, held-out log-likelihood and the
parametric bootstrap likelihood-ratio test of McLachlan (1987).

The bootstrap LRT tests :math:`H_0: K = K_0` against :math:`H_1: K = K_0 + 1`
with :math:`\lambda = 2(\ell_{K_0+1} - \ell_{K_0})`; the usual
:math:`\chi^2` reference does not hold (the null lies on the boundary of the
alternative), so the null distribution is simulated: :math:`B` responses are
drawn from the fitted :math:`K_0` model at the observed :math:`x`, both models
are refitted on each, and the p-value is
:math:`(1 + \#\{\lambda^*_b \ge \lambda\}) / (B + 1)`. Tests run for
:math:`K_0 = K_{\min}, K_{\min}+1, \dots` and stop at the first :math:`K_0` that
is not rejected (McLachlan's sequential use; with :math:`B = 19` the test at
level 0.05 rejects when :math:`\lambda` exceeds every replicate).

G. J. McLachlan, "On bootstrapping the likelihood ratio test statistic for
the number of components in a normal mixture", Applied Statistics 36(3), 1987.
C. Biernacki, G. Celeux, G. Govaert, "Assessing a mixture model for
clustering with the integrated completed likelihood", IEEE TPAMI 22, 2000.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.model_selection import KFold

from ..utils import ModelSummary, parallel_map
from ._moe import GaussianMoERegressor

__all__ = ["ComponentSelection", "select_n_components"]


class ComponentSelection:
    """Result of :func:`select_n_components`.

    Attributes
    ----------
    n_components : int
        The chosen number of experts.
    method : str
    table : dict of ndarray
        One entry per candidate: ``n_components``, ``log_likelihood``, ``df``,
        ``bic``, ``icl``, and ``heldout_loglik`` (method 'heldout') or
        ``lrt_stat``, ``p_value``, ``n_failed`` (method 'bootstrap_lrt'; the
        test of K against K+1, NaN where it was not run).
    models : list of GaussianMoERegressor
        The fits on the full data, one per candidate.
    """

    def __init__(self, n_components, method, table, models):
        self.n_components = n_components
        self.method = method
        self.table = table
        self.models = models

    def summary(self):
        """The table of candidates as a :class:`mixstat.utils.ModelSummary`."""
        keys = [k for k in self.table if k != "n_components"]
        rows = [f"K={k}" for k in self.table["n_components"]]
        vals = np.column_stack([self.table[k] for k in keys])
        notes = []
        if self.method == "bootstrap_lrt":
            notes.append("p_value: parametric bootstrap LRT of K against K+1 (McLachlan 1987).")
        return ModelSummary("Number of experts", {"Method": self.method,
                                                  "Chosen K": self.n_components},
                            [("candidates", rows, keys, vals)], notes)

    def __repr__(self):
        return f"ComponentSelection(n_components={self.n_components}, method={self.method!r})"


def _entropy(model, X, y):
    tau = model.predict_posterior(X, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(tau > 0, tau * np.log(tau), 0.0)
    return float(-t.sum())


def _fit(params, K, X, y, seed):
    return GaussianMoERegressor(**{**params, "n_components": int(K),
                                   "random_state": int(seed)}).fit(X, y)


def _lrt_replicate(seed, null_model, params, K0, K1, X):
    """One bootstrap draw of the LR statistic under the fitted K0 model."""
    import warnings

    try:
        yb, _ = null_model.sample(X, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ll0 = _fit(params, K0, X, yb, seed).log_likelihood_
            ll1 = _fit(params, K1, X, yb, seed + 1).log_likelihood_
        return 2.0 * max(ll1 - ll0, 0.0)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return np.nan


def select_n_components(X, y, n_components=(1, 2, 3), method="bic", *, cv=5,
                        n_bootstrap=19, level=0.05, random_state=None, n_jobs=None,
                        verbose=0, **params):
    r"""Choose the number of experts of a :class:`GaussianMoERegressor`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    n_components : sequence of int, default=(1, 2, 3)
        The candidates (increasing).
    method : {'bic', 'icl', 'heldout', 'bootstrap_lrt'}, default='bic'
        'bic': :math:`-2\ell + df\log n` (smallest); 'icl': BIC plus twice the
        entropy of the responsibilities (Biernacki et al. 2000; smallest);
        'heldout': mean ``cv``-fold held-out log-likelihood (largest);
        'bootstrap_lrt': McLachlan's sequential parametric bootstrap
        likelihood-ratio test at ``level`` with ``n_bootstrap`` replicates.
    cv : int, default=5
        Folds for 'heldout'.
    n_bootstrap : int, default=19
    level : float, default=0.05
    random_state : int or None
    n_jobs : int or None
        Bootstrap replicates in parallel (joblib).
    **params
        Passed to :class:`GaussianMoERegressor` (e.g. ``alpha=0``,
        ``n_init``); 'bootstrap_lrt' needs the unpenalised fit
        (``alpha = alpha_gate = 0``, the default here).

    Returns
    -------
    ComponentSelection
    """
    if method not in ("bic", "icl", "heldout", "bootstrap_lrt"):
        raise ValueError("method must be 'bic', 'icl', 'heldout' or 'bootstrap_lrt', "
                         f"got {method!r}")
    ks = sorted(int(k) for k in n_components)
    if not ks or ks[0] < 1 or len(set(ks)) != len(ks):
        raise ValueError(f"n_components must be distinct positive integers, got {n_components}")
    params = {"alpha": 0.0, "alpha_gate": 0.0, **params}
    params.pop("n_components", None)
    params.pop("random_state", None)
    if method == "bootstrap_lrt" and (params["alpha"] > 0 or params["alpha_gate"] > 0
                                      or params.get("ridge_gate", 0) > 0):
        raise ValueError("the likelihood-ratio test compares maximum likelihoods: use "
                         "alpha=alpha_gate=ridge_gate=0 (or refit the selected supports)")
    if method == "bootstrap_lrt" and 1.0 / (n_bootstrap + 1) > level:
        raise ValueError(f"n_bootstrap={n_bootstrap} cannot reach level={level}: the smallest "
                         f"bootstrap p-value is 1/(n_bootstrap+1); use n_bootstrap >= "
                         f"{int(np.ceil(1 / level - 1))}")
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(2**31 - 1))
    models = [_fit(params, k, X, y, seed) for k in ks]
    n = X.shape[0]
    ll = np.array([m.log_likelihood_ for m in models])
    df = np.array([m.n_parameters() for m in models], dtype=float)
    bic = -2 * ll + df * np.log(n)
    icl = bic + 2 * np.array([_entropy(m, X, y) for m in models])
    table = {"n_components": np.array(ks), "log_likelihood": ll, "df": df, "bic": bic,
             "icl": icl}
    if method == "bic":
        best = ks[int(np.argmin(bic))]
    elif method == "icl":
        best = ks[int(np.argmin(icl))]
    elif method == "heldout":
        folds = KFold(cv, shuffle=True, random_state=seed).split(X)
        scores = np.zeros((cv, len(ks)))
        for f, (tr, te) in enumerate(folds):
            for j, k in enumerate(ks):
                m = _fit(params, k, X[tr], y[tr], seed)
                scores[f, j] = m.score_samples(X[te], y[te]).mean()
        table["heldout_loglik"] = scores.mean(axis=0)
        best = ks[int(np.argmax(table["heldout_loglik"]))]
    else:
        stat = np.full(len(ks), np.nan)
        pval = np.full(len(ks), np.nan)
        failed = np.zeros(len(ks))
        best = ks[-1]
        for j in range(len(ks) - 1):
            K0, K1 = ks[j], ks[j + 1]
            stat[j] = 2.0 * max(ll[j + 1] - ll[j], 0.0)
            seeds = [int(s) for s in rng.integers(2**30, size=n_bootstrap)]
            job = functools.partial(_lrt_replicate, null_model=models[j], params=params,
                                    K0=K0, K1=K1, X=X)
            reps = np.asarray(parallel_map(job, seeds, n_jobs=n_jobs, verbose=verbose,
                                           desc=f"bootstrap LRT K={K0} vs {K1}"), dtype=float)
            ok = np.isfinite(reps)
            failed[j] = (~ok).sum()
            pval[j] = (1.0 + np.sum(reps[ok] >= stat[j])) / (ok.sum() + 1.0)
            if pval[j] > level:
                best = K0
                break
        table.update(lrt_stat=stat, p_value=pval, n_failed=failed)
    return ComponentSelection(best, method, table, models)
