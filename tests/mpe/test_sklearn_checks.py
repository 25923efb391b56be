"""scikit-learn's estimator checks for every MPE estimator."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixstat.mpe import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    KernelMeanMPE,
    MedianMPE,
    RegroupingMPE,
    ROCMPE,
    SubsamplingMPE,
    TIcEMPE,
)

class _AcceptAll:
    """Acceptance 1 everywhere, with a stable repr: the test ids must be the
    same in every pytest-xdist worker (a function's repr holds its address)."""

    def __call__(self, X):
        return np.ones(len(X))

    def __repr__(self):
        return "accept_all"


_accept_all = _AcceptAll()


ESTIMATORS = [
    KernelMeanMPE(),
    ROCMPE(n_folds=2),
    BestBinMPE(n_folds=2),
    ElkanNotoMPE(n_folds=2),
    DEDPULMPE(n_folds=2),
    TIcEMPE(max_splits=20),
    SubsamplingMPE(KernelMeanMPE(), _accept_all),
    RegroupingMPE(KernelMeanMPE(), n_folds=2),
    MedianMPE(),
    BestBinMPE(n_folds=2, bootstrap_refit=False, n_bootstrap=3),
]

_PU = ("y must be binary (1 = component sample, 0 = mixture sample) with at least 10 "
       "points of each; the check's targets are not")


_FEW = ("the check fits on 20 points split 14 / 6 (or 5 / 5) between the classes; an MPE "
        "estimator needs at least 10 points of each sample and raises a ValueError saying so")
_LABELS = ("the check's targets are {1, 2}; y must be the sample indicator "
           "(1 = component, 0 = mixture) and other values raise a ValueError saying so")


def _expected(est):
    return {
        "check_dict_unchanged": _FEW,
        "check_dont_overwrite_parameters": _FEW,
        "check_estimators_fit_returns_self": _FEW,
        "check_estimators_nan_inf": _FEW,
        "check_estimators_overwrite_params": _FEW,
        "check_f_contiguous_array_estimator": _FEW,
        "check_fit2d_predict1d": _FEW,
        "check_methods_sample_order_invariance": _FEW,
        "check_methods_subset_invariance": _FEW,
        "check_n_features_in_after_fitting": _FEW,
        "check_readonly_memmap_input": _FEW,
        "check_estimators_dtypes": _LABELS,
        "check_fit2d_1feature": _LABELS,
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected, xfail_strict=True)
def test_sklearn_compatible(estimator, check):
    check(estimator)
