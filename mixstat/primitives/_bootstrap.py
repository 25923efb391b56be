"""Stratified bootstrap replicates and percentile intervals (floor 1).

Generic machinery, usable by any family: a statistic is recomputed on
resampled index sets (resampled *within* each stratum, so that a two-sample
statistic keeps its two sample sizes), the replicates run through
:func:`mixstat.utils.parallel_map` (joblib, tqdm progress under ``verbose``),
and :func:`percentile_interval` turns them into a confidence interval.

Each replicate receives its own integer seed drawn up front from the caller's
random state, so the replicates do not depend on ``n_jobs`` or on the order
in which joblib runs them.
"""

from __future__ import annotations

import numpy as np

from ..utils import parallel_map

__all__ = ["stratified_resample_indices", "bootstrap_replicates", "percentile_interval"]


def stratified_resample_indices(strata, rng):
    """Indices of one bootstrap resample drawn with replacement within strata.

    Parameters
    ----------
    strata : array of shape (n_samples,)
        Group label of each sample (one group: pass zeros).
    rng : numpy.random.Generator or RandomState

    Returns
    -------
    ndarray of int, shape (n_samples,)
        Each stratum keeps its size; the output is sorted by stratum label.
    """
    strata = np.asarray(strata)
    out = []
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        out.append(idx[rng.integers(0, idx.size, idx.size)] if hasattr(rng, "integers")
                   else idx[rng.randint(0, idx.size, idx.size)])
    return np.concatenate(out)


def _one(args):
    statistic, strata, seed = args
    rng = np.random.default_rng(seed)
    return statistic(stratified_resample_indices(strata, rng), seed)


def bootstrap_replicates(statistic, strata, n_bootstrap, random_state=None,
                         n_jobs=None, verbose=0, desc="bootstrap"):
    """Recompute ``statistic`` on ``n_bootstrap`` stratified resamples.

    Parameters
    ----------
    statistic : callable ``(indices, seed) -> float or array``
        Computes the statistic on the samples ``indices`` (with repeats);
        ``seed`` is an integer it may use for its own randomness. It must be
        picklable for process-based joblib backends.
    strata : array of shape (n_samples,)
        Resampling is done within each stratum.
    n_bootstrap : int
    random_state : int, RandomState, Generator or None
        Source of the replicate seeds.
    n_jobs, verbose : as in :func:`mixstat.utils.parallel_map`.

    Returns
    -------
    ndarray of shape (n_bootstrap, ...)
        The replicates; failed replicates are not caught (the caller decides).
    """
    if isinstance(random_state, np.random.Generator):
        seeds = random_state.integers(0, 2**31 - 1, size=n_bootstrap)
    else:
        from sklearn.utils import check_random_state

        seeds = check_random_state(random_state).randint(0, 2**31 - 1, size=n_bootstrap)
    items = [(statistic, strata, int(s)) for s in seeds]
    reps = parallel_map(_one, items, n_jobs=n_jobs, verbose=verbose, desc=desc)
    return np.asarray(reps, dtype=float)


def percentile_interval(replicates, confidence=0.95):
    """Percentile bootstrap interval ``(q_{(1-c)/2}, q_{(1+c)/2})``.

    NaN replicates (failed refits) are ignored; all-NaN gives ``(nan, nan)``.
    """
    reps = np.asarray(replicates, dtype=float)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    reps = reps[np.isfinite(reps)] if reps.ndim == 1 else reps
    if reps.size == 0:
        return (np.nan, np.nan)
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [a, 1.0 - a], axis=0)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)
