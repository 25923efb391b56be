"""Bootstrap intervals (mixstat.primitives._bootstrap and the estimators)."""

import joblib
import numpy as np
import pytest

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import BestBinMPE, KernelMeanMPE
from mixstat.primitives._bootstrap import (
    bootstrap_replicates,
    percentile_interval,
    stratified_resample_indices,
)


def test_stratified_indices_keep_sizes():
    strata = np.r_[np.zeros(7, int), np.ones(13, int)]
    idx = stratified_resample_indices(strata, np.random.default_rng(0))
    assert (strata[idx] == 0).sum() == 7 and (strata[idx] == 1).sum() == 13


def test_bootstrap_of_mean_matches_normal_theory():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    reps = bootstrap_replicates(lambda idx, seed: x[idx].mean(), np.zeros(400), 400,
                                random_state=0)
    assert reps.std() == pytest.approx(x.std() / np.sqrt(400), rel=0.15)
    lo, hi = percentile_interval(reps, 0.9)
    assert lo < x.mean() < hi


def test_bootstrap_reproducible_and_njobs_independent():
    x = np.arange(50.0)
    f = lambda idx, seed: x[idx].mean()  # noqa: E731
    a = bootstrap_replicates(f, np.zeros(50), 20, random_state=3, n_jobs=1)
    with joblib.parallel_config(backend="threading"):
        b = bootstrap_replicates(f, np.zeros(50), 20, random_state=3, n_jobs=2)
    assert np.array_equal(a, b)


def test_estimator_interval():
    d = make_sumpe_synthetic(0.5, n_component=200, n_mixture=200, random_state=0)
    est = KernelMeanMPE("KM2", n_bootstrap=12, random_state=0).fit(d.X, d.y)
    lo, hi = est.proportion_interval_
    assert 0 <= lo <= hi <= 1
    assert est.bootstrap_proportions_.shape == (12,)
    assert lo - 0.1 <= est.proportion_ <= hi + 0.1
    est2 = KernelMeanMPE("KM2", n_bootstrap=12, random_state=0).fit(d.X, d.y)
    assert est2.proportion_interval_ == est.proportion_interval_


def test_bbe_interval_with_classifier():
    d = make_sumpe_synthetic(0.5, n_component=200, n_mixture=200, random_state=0)
    est = BestBinMPE(n_bootstrap=5, random_state=0).fit(d.X, d.y)
    assert len(est.proportion_interval_) == 2


def test_sumpe_bootstrap_array_and_callable_acceptance_agree():
    from mixstat.mpe import SubsamplingMPE

    d = make_sumpe_synthetic(0.5, n_component=150, n_mixture=150, random_state=0)
    f = lambda X: np.where(X[:, 0] < 2, d.posterior(X[:, 0]), 1.0)  # noqa: E731
    a = f(d.X[d.y == 0])
    e1 = SubsamplingMPE(KernelMeanMPE(), a, n_bootstrap=3, random_state=0).fit(d.X, d.y)
    e2 = SubsamplingMPE(KernelMeanMPE(), f, n_bootstrap=3, random_state=0).fit(d.X, d.y)
    assert e1.proportion_interval_ == e2.proportion_interval_


def test_bootstrap_keeps_a_fitted_classifier_acceptance():
    # a fitted classifier passed as the acceptance must survive the bootstrap
    # clones (it used to be cloned unfitted, every replicate failing as NaN)
    from sklearn.linear_model import LogisticRegression

    from mixstat.mpe import KernelMeanMPE, SubsamplingMPE

    rng = np.random.default_rng(0)
    Xh = rng.normal(size=(150, 1))
    Xf = np.r_[rng.normal(size=(50, 1)), rng.normal(3, 1, size=(100, 1))]
    X = np.r_[Xh, Xf]
    y = np.r_[np.ones(150), np.zeros(150)]
    clf = LogisticRegression().fit(X, y)
    est = SubsamplingMPE(KernelMeanMPE(), acceptance=clf, n_bootstrap=3, random_state=0)
    est.fit(X, y)
    assert est.n_bootstrap_failed_ == 0
    assert np.all(np.isfinite(est.bootstrap_proportions_))
    lo, hi = est.proportion_interval_
    assert 0.0 <= lo <= hi <= 1.0
