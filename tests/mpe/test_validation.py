"""Bad input gives clear errors."""

import numpy as np
import pytest

from mixstat.mpe import (
    BestBinMPE,
    KernelMeanMPE,
    RegroupingMPE,
    SubsamplingMPE,
    mixture_proportion,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, 60), rng.normal(2, 1, 60)][:, None]
    y = np.r_[np.ones(60, int), np.zeros(60, int)]
    return X, y


def test_y_not_binary(data):
    X, y = data
    with pytest.raises(ValueError, match="binary"):
        KernelMeanMPE().fit(X, y * 2)


def test_one_class_absent(data):
    X, _ = data
    with pytest.raises(ValueError, match="no mixture"):
        KernelMeanMPE().fit(X, np.ones(len(X), int))
    with pytest.raises(ValueError, match="no component"):
        KernelMeanMPE().fit(X, np.zeros(len(X), int))


def test_too_few_points(data):
    X, y = data
    y = y.copy()
    y[:] = 0
    y[:5] = 1
    with pytest.raises(ValueError, match="at least 10"):
        BestBinMPE().fit(X, y)


def test_nan_rejected(data):
    X, y = data
    X = X.copy()
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KernelMeanMPE().fit(X, y)


def test_acceptance_outside_unit_interval_is_clipped(data):
    X, y = data
    alpha = np.full(60, 1.5)
    alpha[:10] = -0.2
    est = SubsamplingMPE(KernelMeanMPE(), alpha, random_state=0)
    with pytest.warns(UserWarning, match="clipped"):
        est.fit(X, y)
    assert 0 <= est.proportion_ <= 1


def test_acceptance_wrong_length(data):
    X, y = data
    with pytest.raises(ValueError, match="values for 60 mixture points"):
        SubsamplingMPE(KernelMeanMPE(), np.ones(7)).fit(X, y)


def test_acceptance_missing(data):
    X, y = data
    with pytest.raises(ValueError, match="acceptance"):
        SubsamplingMPE(KernelMeanMPE()).fit(X, y)


@pytest.mark.parametrize("meta", [SubsamplingMPE, RegroupingMPE])
def test_base_not_mpe(data, meta):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    kw = {"acceptance": np.ones(60)} if meta is SubsamplingMPE else {}
    with pytest.raises(ValueError, match="MPE estimator"):
        meta(LogisticRegression(), **kw).fit(X, y)


def test_function_bad_method_and_shapes():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="Unknown method"):
        mixture_proportion(rng.normal(size=50), rng.normal(size=50), "nope")
    with pytest.raises(ValueError, match="same number of features"):
        mixture_proportion(rng.normal(size=(50, 2)), rng.normal(size=(50, 3)))


def test_function_returns_unit_interval():
    rng = np.random.default_rng(0)
    k = mixture_proportion(rng.normal(size=100), np.r_[rng.normal(size=50),
                                                      rng.normal(3, 1, 50)], "KM2")
    assert 0 <= k <= 1
