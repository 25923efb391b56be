"""SuMPE and ReCPE: the identity, oracle recovery, the resampling extension."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixstat.datasets import make_sumpe_synthetic, subsampled_population_kappa
from mixstat.mpe import KernelMeanMPE, RegroupingMPE, SubsamplingMPE, mixture_proportion


@pytest.mark.parametrize("kappa", [0.1, 0.25, 0.5, 0.75])
def test_population_identity_with_exact_posterior(kappa):
    """c kappa(F~|H) = ess inf alpha f / h = kappa* for alpha = tau on x < 2."""
    d = make_sumpe_synthetic(kappa, n_component=20, n_mixture=20, random_state=0)
    alpha = lambda x: np.where(x < 2, d.posterior(x), 1.0)  # noqa: E731
    c, kt, prod = subsampled_population_kappa(d.log_f, d.log_h, alpha)
    assert prod == pytest.approx(kappa, rel=1e-6)
    assert c * kt == pytest.approx(prod)
    assert d.kappa_max > kappa  # irreducibility fails


def test_population_alpha_one_gives_kappa_max():
    d = make_sumpe_synthetic(0.25, n_component=20, n_mixture=20, random_state=0)
    c, kt, prod = subsampled_population_kappa(d.log_f, d.log_h, lambda x: np.ones_like(x))
    assert c == pytest.approx(1.0, abs=1e-6)
    assert prod == pytest.approx(d.kappa_max, rel=1e-4)


def test_sumpe_oracle_recovers_kappa_star():
    d = make_sumpe_synthetic(0.25, random_state=0)
    plain = KernelMeanMPE("KM2", random_state=0).fit(d.X, d.y).proportion_
    su = SubsamplingMPE(KernelMeanMPE("KM2"), lambda X: d.posterior(X[:, 0]),
                        region=d.region, random_state=0).fit(d.X, d.y)
    assert plain > 0.3
    assert abs(su.proportion_ - 0.25) < 0.05
    assert su.proportion_ == pytest.approx(su.acceptance_rate_ * su.base_proportion_)
    assert 0.7 < su.acceptance_rate_ < 0.95


def test_sumpe_acceptance_forms_agree():
    """A callable, the array of its values, and a classifier give the same fit."""
    d = make_sumpe_synthetic(0.5, n_component=300, n_mixture=300, random_state=1)
    f = lambda X: d.posterior(X[:, 0])  # noqa: E731

    class Clf:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            p = np.where(X[:, 0] < 2, f(X), 1.0)
            return np.c_[1 - p, p]

    Xf = d.X[d.y == 0]
    g = lambda X: np.where(X[:, 0] < 2, f(X), 1.0)  # noqa: E731
    ests = [SubsamplingMPE(KernelMeanMPE(), a, random_state=3).fit(d.X, d.y).proportion_
            for a in (g, g(Xf), Clf())]
    assert ests[0] == ests[1] == ests[2]


def test_sumpe_alpha_one_is_base():
    d = make_sumpe_synthetic(0.5, n_component=300, n_mixture=300, random_state=1)
    base = KernelMeanMPE("KM2", random_state=0)
    su = SubsamplingMPE(base, lambda X: np.ones(len(X)), random_state=0).fit(d.X, d.y)
    assert su.acceptance_rate_ == 1.0
    assert su.proportion_ == pytest.approx(
        KernelMeanMPE("KM2", random_state=0).fit(d.X, d.y).proportion_, abs=0.02)


def test_sumpe_resamples_average():
    d = make_sumpe_synthetic(0.25, n_component=300, n_mixture=300, random_state=2)
    su = SubsamplingMPE(KernelMeanMPE(), lambda X: d.posterior(X[:, 0]), region=d.region,
                        n_resamples=3, random_state=0).fit(d.X, d.y)
    assert su.resample_proportions_.shape == (3,)
    assert su.proportion_ == pytest.approx(su.resample_proportions_.mean())


def test_recpe_reduces_bias_and_copies():
    d = make_sumpe_synthetic(0.25, n_component=500, n_mixture=500, random_state=0)
    plain = KernelMeanMPE("KM2", random_state=0).fit(d.X, d.y).proportion_
    re = RegroupingMPE(KernelMeanMPE("KM2"), copy_fraction=0.1, random_state=0).fit(d.X, d.y)
    assert re.n_copied_ == 50
    assert re.base_estimator_.n_component_ == 550
    assert re.proportion_ <= plain + 0.02


@settings(max_examples=5)
@given(st.integers(0, 2**31 - 1))
def test_km_invariant_to_permuting_samples(seed):
    rng = np.random.default_rng(seed)
    d = make_sumpe_synthetic(0.5, n_component=150, n_mixture=150, random_state=0)
    p = rng.permutation(len(d.y))
    a = KernelMeanMPE("KM2").fit(d.X, d.y)
    b = KernelMeanMPE("KM2").fit(d.X[p], d.y[p])
    assert a.proportion_ == pytest.approx(b.proportion_, abs=1e-9)
    assert a.km1_ == pytest.approx(b.km1_, abs=1e-9)


@settings(max_examples=10)
@given(st.floats(0.05, 0.95), st.integers(0, 1000))
def test_estimates_always_in_unit_interval(kappa, seed):
    d = make_sumpe_synthetic(kappa, n_component=60, n_mixture=60, random_state=seed)
    Xh, Xf = d.X[d.y == 1], d.X[d.y == 0]
    for m in ("KM1", "KM2", "BBE"):
        k = mixture_proportion(Xh, Xf, m, random_state=0)
        assert 0.0 <= k <= 1.0
