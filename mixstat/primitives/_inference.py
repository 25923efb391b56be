"""Wald inference from estimates and their covariance (array in, arrays out)."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["wald_inference"]


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
