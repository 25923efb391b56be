"""scikit-learn's estimator checks for every MPE estimator."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixstat.mpe import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    KernelMeanMPE,
    RegroupingMPE,
    ROCMPE,
    SubsamplingMPE,
    TIcEMPE,
)

def _accept_all(X):
    return np.ones(len(X))


ESTIMATORS = [
    KernelMeanMPE(),
    ROCMPE(n_folds=2),
    BestBinMPE(n_folds=2),
    ElkanNotoMPE(n_folds=2),
    DEDPULMPE(n_folds=2),
    TIcEMPE(max_splits=20),
    SubsamplingMPE(KernelMeanMPE(), _accept_all),
    RegroupingMPE(KernelMeanMPE(), n_folds=2),
]

_PU = ("y must be binary (1 = component sample, 0 = mixture sample) with at least 10 "
       "points of each; the check's targets are not")


def _expected(est):
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected, xfail_strict=False)
def test_sklearn_compatible(estimator, check):
    check(estimator)
