"""Wald and bootstrap inference from estimates (array in, arrays out), and the
result object the estimators' ``inference()`` methods return."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._bootstrap import percentile_interval

__all__ = ["wald_inference", "invert_information", "InferenceResult"]


def wald_inference(params, cov=None, se=None, level=0.95):
    r"""Standard errors, z statistics, two-sided p-values and Wald intervals.

    .. math:: z_j = \hat\theta_j / \mathrm{se}_j,\quad
              p_j = 2\,\Phi(-|z_j|),\quad
              \hat\theta_j \pm z_{1-\alpha/2}\,\mathrm{se}_j

    Parameters
    ----------
    params : array of shape (m,)
    cov : array of shape (m, m), optional
        Covariance of the estimates (its diagonal gives the standard errors).
    se : array of shape (m,), optional
        Standard errors (when ``cov`` is not given).
    level : float, default=0.95

    Returns
    -------
    dict with keys ``se``, ``z``, ``pvalue``, ``ci_low``, ``ci_high``.
    """
    params = np.asarray(params, dtype=float)
    if se is None:
        if cov is None:
            raise ValueError("give either cov or se")
        d = np.diag(np.asarray(cov, dtype=float)).copy()
        d[d < 0] = np.nan  # a non-PSD information inverse: no standard error
        se = np.sqrt(d)
    se = np.asarray(se, dtype=float)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = params / se
    pvalue = 2.0 * stats.norm.sf(np.abs(z))
    q = stats.norm.ppf(0.5 + level / 2.0)
    return {"se": se, "z": z, "pvalue": pvalue, "ci_low": params - q * se, "ci_high": params + q * se}


def invert_information(info, hint=""):
    r"""The covariance :math:`I^{-1}` of the estimates from an observed
    information matrix, by Cholesky.

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``info`` is not finite or not positive definite: standard errors
        and Wald intervals are then not defined. The message gives the
        eigenvalue range and ``hint`` (what usually causes it for the model).
    """
    info = np.asarray(info, dtype=float)
    if not np.all(np.isfinite(info)):
        raise np.linalg.LinAlgError(
            "the observed information is not finite at the fit: the log-likelihood is "
            "not twice differentiable there" + (f" ({hint})" if hint else ""))
    ev = np.linalg.eigvalsh(info)
    try:
        if ev.min() <= 1e-10 * max(ev.max(), 0.0):
            raise np.linalg.LinAlgError
        c = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            f"the observed information is not positive definite (eigenvalues from {ev.min():.3g} "
            f"to {ev.max():.3g}): the fit is not at a strict local maximum or the model is not "
            "identifiable there" + (f" ({hint})" if hint else "") + "; standard errors and "
            "Wald intervals are not defined: use method='bootstrap' or a smaller model") from None
    ci = np.linalg.inv(c)
    return ci.T @ ci


@dataclass
class InferenceResult:
    """Estimates with standard errors, z, p-values and intervals.

    ``names`` lists (block, term) pairs, one per row. ``cov`` is the
    covariance of the estimates (``None`` for the bootstrap, whose ``se`` is
    the replicates' standard deviation and whose intervals are percentile
    intervals). ``n_failed`` counts bootstrap replicates whose refit failed,
    out of ``n_bootstrap``; ``replicates`` holds them all (NaN rows for the
    failed ones).
    """

    names: list
    params: np.ndarray
    se: np.ndarray
    z: np.ndarray
    pvalue: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    cov: np.ndarray | None
    method: str
    level: float
    n_failed: int = 0
    n_bootstrap: int = 0
    replicates: np.ndarray | None = None

    def rows(self, block):
        """Indices of the rows of one block (an expert, a component, ...)."""
        return [i for i, (b, _) in enumerate(self.names) if b == block]

    @classmethod
    def from_cov(cls, names, params, cov, method, level, **extra):
        """Wald inference from the covariance of the estimates."""
        w = wald_inference(params, cov=cov, level=level)
        return cls(names, np.asarray(params, dtype=float), w["se"], w["z"], w["pvalue"],
                   w["ci_low"], w["ci_high"], cov, method, level, **extra)

    @classmethod
    def from_replicates(cls, names, params, replicates, method, level, *, hint="", **extra):
        """Bootstrap inference from ``replicates`` (one row each; a row with a
        non-finite entry is a failed refit): standard deviation of the
        successful ones and percentile intervals. Failed replicates are
        counted (``n_failed``) and reported by a warning; fewer than two
        successful ones raise a ``ValueError`` (with ``hint``: what to do)."""
        reps = np.asarray(replicates, dtype=float)
        ok = np.all(np.isfinite(reps), axis=1)
        n_failed, n_bootstrap = int((~ok).sum()), len(reps)
        if ok.sum() < 2:
            raise ValueError(f"the bootstrap failed in {n_failed} of {n_bootstrap} replicates"
                             + (f" ({hint})" if hint else ""))
        if n_failed:
            warnings.warn(f"{n_failed} of {n_bootstrap} bootstrap replicates failed and were "
                          "left out of the intervals", UserWarning, stacklevel=3)
        params = np.asarray(params, dtype=float)
        good = reps[ok]
        lo, hi = percentile_interval(good, level)
        se = good.std(axis=0, ddof=1)
        w = wald_inference(params, se=se, level=level)
        return cls(names, params, se, w["z"], w["pvalue"], np.asarray(lo), np.asarray(hi), None,
                   method, level, n_failed=n_failed, n_bootstrap=n_bootstrap,
                   replicates=reps, **extra)
