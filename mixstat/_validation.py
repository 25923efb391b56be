"""Input checks shared by every estimator (floor 0).

These wrap :func:`sklearn.utils.validation.validate_data` and add the checks
mixture models need: enough samples for the number of components, finite
values with messages naming the problem, sample weights.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_random_state  # noqa: F401

__all__ = [
    "check_finite",
    "check_n_components",
    "check_sample_weight",
    "check_probability",
    "check_random_state",
    "kernel_vector",
]


def check_finite(a, name="X"):
    """Raise ``ValueError`` naming ``name`` when ``a`` holds NaN or inf."""
    arr = np.asarray(a)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"Input {name} contains NaN or infinity ({n_nan} NaN, {n_inf} inf values)."
        )
    return a


def check_n_components(n_samples, n_components, name="n_components"):
    """Raise ``ValueError`` when there are fewer samples than components."""
    if not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n_components!r}")
    if n_samples < n_components:
        raise ValueError(
            f"Expected n_samples >= {name}, but got {name}={n_components} "
            f"and n_samples={n_samples}."
        )


def check_sample_weight(sample_weight, X, dtype=np.float64):
    """Validate sample weights: 1-D, length n_samples, finite, non-negative,
    not all zero. Returns a float array (ones when None)."""
    try:
        sw = _check_sample_weight(sample_weight, X, dtype=dtype, ensure_non_negative=True)
    except ValueError as exc:
        if "shape" not in str(exc):
            raise
        from sklearn.utils.validation import _num_samples

        raise ValueError(f"sample_weight must have one entry per sample of X "
                         f"({_num_samples(X)}): {exc}") from None
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if sw.sum() <= 0:
        raise ValueError("sample_weight sums to zero: there is nothing to fit.")
    return sw


def kernel_vector(a):
    """``a`` as a C-contiguous, writeable float64 vector (a copy only when it is
    not one already): the one layout the compiled kernels are specialised for.
    An integer or read-only ``y`` would otherwise make Numba compile -- and
    cache -- another copy of every kernel it reaches (seconds each)."""
    return np.require(np.asarray(a), dtype=np.float64, requirements=["C", "W"])


def check_probability(a, name="acceptance", clip=True):
    """Check values meant to lie in [0, 1]: NaN raises; values outside are
    clipped with a ``UserWarning`` when ``clip`` (else ``ValueError``)."""
    arr = np.asarray(a, dtype=float)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN.")
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        if not clip:
            raise ValueError(f"{name} must lie in [0, 1]; {int(bad.sum())} values do not.")
        warnings.warn(
            f"{name}: {int(bad.sum())} values outside [0, 1] were clipped.",
            UserWarning,
            stacklevel=2,
        )
        arr = np.clip(arr, 0.0, 1.0)
    return arr


# scikit-learn's parameter validation (private in scikit-learn, stable since
# 1.2 and used by many contrib packages): imported here, in one place, so that
# a future change in scikit-learn is mended once.
from sklearn.base import _fit_context  # noqa: E402
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: E402
from sklearn.utils.validation import validate_data  # noqa: E402

__all__ += ["Interval", "StrOptions", "_fit_context", "validate_data"]
