"""Issue 20: KM near kappa = 1, the default ensemble, DEDPUL's leave-one-out
ratio, SubsamplingMPE's acceptance, validation and repr."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import (
    BestBinMPE,
    KernelMeanMPE,
    MedianMPE,
    SubsamplingMPE,
    mixture_proportion,
)
from mixstat.mpe._classifier import dedpul_density_ratio
from mixstat.mpe._kernel_mean import (
    _embedding_noise,
    mmd_width,
    pivoted_cholesky_features,
)


def test_unbiased_mmd_width_does_not_pick_the_smallest_width_for_equal_laws():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 1))
    Y = rng.normal(size=(400, 1))
    factors = (0.1, 1.0, 10.0)
    w = mmd_width(X, Y, factors, np.random.RandomState(1))
    # the biased MMD picks 0.1 x median here; the unbiased one finds no
    # positive MMD at 0.1 and never prefers the noise-only smallest width
    med = np.median(np.abs(np.subtract.outer(np.r_[X[:, 0], Y[:, 0]],
                                             np.r_[X[:, 0], Y[:, 0]]))[np.triu_indices(800, 1)])
    assert w > 0.2 * med


def test_embedding_noise_equals_biased_minus_unbiased_mmd():
    rng = np.random.RandomState(0)
    Xf, Xh = rng.normal(size=(60, 2)), rng.normal(0.5, 1, size=(40, 2))
    width = 1.3
    Z, _ = pivoted_cholesky_features(np.vstack([Xf, Xh]), width)
    mu_f, mu_h = Z[:60].mean(0), Z[60:].mean(0)
    K = np.exp(-((np.vstack([Xf, Xh])[:, None] - np.vstack([Xf, Xh])[None]) ** 2).sum(-1)
               / (2 * width ** 2))
    kff, khh, kfh = K[:60, :60], K[60:, 60:], K[:60, 60:]
    biased = kff.mean() + khh.mean() - 2 * kfh.mean()
    unbiased = ((kff.sum() - 60) / (60 * 59) + (khh.sum() - 40) / (40 * 39) - 2 * kfh.mean())
    assert _embedding_noise(mu_f, mu_h, 60, 40) ** 2 == pytest.approx(biased - unbiased, rel=1e-6)


@pytest.mark.parametrize("n", [300, 1000])
def test_km2_near_one_when_component_equals_mixture(n):
    ests = []
    for seed in range(3):
        d = make_sumpe_synthetic(1.0, scenario="irreducible", n_component=n, n_mixture=n,
                                 random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ests.append(KernelMeanMPE(random_state=seed).fit(d.X, d.y).km2_)
    assert np.mean(ests) > 0.85  # was 0.66 (n=1000) and 0.39 (n=300)


def test_noise_floor_zero_is_the_published_km2_rule():
    d = make_sumpe_synthetic(0.5, scenario="irreducible", n_component=300, n_mixture=300,
                             random_state=0)
    a = KernelMeanMPE(random_state=0, noise_floor=0.0).fit(d.X, d.y)
    nu = 0.8 * ((a.thresholds_["KM2"] - 0.2 * a.distance_) / 0.8) + 0.2 * a.distance_
    assert a.thresholds_["KM2"] == pytest.approx(nu)
    assert a.embedding_noise_ > 0


@pytest.mark.parametrize("factors", [[-1], [], [0.0], [np.nan]])
def test_width_factors_validated(factors):
    d = make_sumpe_synthetic(0.5, n_component=50, n_mixture=50, random_state=0)
    with pytest.raises(ValueError, match="width_factors"):
        KernelMeanMPE(width_factors=factors).fit(d.X, d.y)


def test_default_mixture_proportion_is_the_median_and_near_one_at_kappa_one():
    d = make_sumpe_synthetic(1.0, scenario="irreducible", n_component=1000, n_mixture=1000,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k, est = mixture_proportion(d.X[d.y == 1], d.X[d.y == 0], random_state=0,
                                    return_estimator=True)
    assert isinstance(est, MedianMPE)
    assert k == pytest.approx(np.median(list(est.estimates_.values())))
    assert k > 0.95


def test_median_mpe_of_one_member_is_that_member():
    d = make_sumpe_synthetic(0.5, n_component=200, n_mixture=200, random_state=0)
    med = MedianMPE([BestBinMPE()], random_state=3).fit(d.X, d.y)
    assert med.proportion_ == pytest.approx(med.estimators_[0].proportion_)
    with pytest.raises(ValueError):
        MedianMPE([]).fit(d.X, d.y)
    with pytest.raises(ValueError):
        MedianMPE([LogisticRegression()]).fit(d.X, d.y)


def test_dedpul_leave_one_out_ratio_has_mean_near_one_on_equal_laws():
    rng = np.random.default_rng(0)
    s_h, s_f = rng.uniform(0.2, 0.8, 150), rng.uniform(0.2, 0.8, 150)
    # E_F[h/f] = 1: the plug-in ratio (own kernel in f_F) is far below it
    r_plug = dedpul_density_ratio(s_h, s_f)
    r_loo = dedpul_density_ratio(s_h, s_f, leave_one_out=True)
    assert r_plug.mean() < 0.9
    assert abs(np.median(r_loo) - 1) < abs(np.median(r_plug) - 1)


def _data():
    return make_sumpe_synthetic(0.25, n_component=300, n_mixture=300, random_state=0)


def test_sumpe_acceptance_array_callable_classifier_agree():
    d = _data()
    Xf = d.X[d.y == 0]
    alpha = d.posterior(Xf[:, 0]) * 0.5 + 0.5
    clf = LogisticRegression().fit(d.X, d.y)
    kw = dict(base_estimator=BestBinMPE(), random_state=0)
    a = SubsamplingMPE(acceptance=alpha, **kw).fit(d.X, d.y)
    b = SubsamplingMPE(acceptance=lambda X: d.posterior(X[:, 0]) * 0.5 + 0.5, **kw).fit(d.X, d.y)
    assert a.proportion_ == pytest.approx(b.proportion_)
    c = SubsamplingMPE(acceptance=clf, **kw).fit(d.X, d.y)
    assert 0 <= c.proportion_ <= 1


def test_sumpe_zero_acceptance_drops_points_and_accept_all_warns():
    d = _data()
    n_f = int((d.y == 0).sum())
    zero_one = np.r_[np.zeros(n_f // 2), np.ones(n_f - n_f // 2)]
    est = SubsamplingMPE(BestBinMPE(), zero_one, random_state=0).fit(d.X, d.y)
    assert est.acceptance_rate_ == pytest.approx(0.5, abs=0.01)
    # the authors' convention: alpha = 0 means "always keep"
    with pytest.warns(UserWarning, match="keeps every mixture point"):
        old = SubsamplingMPE(BestBinMPE(), zero_one, lower_threshold=0.0,
                             random_state=0).fit(d.X, d.y)
    assert old.acceptance_rate_ == 1.0


def test_sumpe_repr_is_short_and_validation():
    est = SubsamplingMPE(BestBinMPE(), np.linspace(0, 1, 5000))
    assert len(repr(est)) < 200 and "(5000,)" in repr(est)
    d = _data()
    with pytest.raises(ValueError, match="acceptance"):
        SubsamplingMPE(BestBinMPE(), "abc").fit(d.X, d.y)
    with pytest.raises(ValueError):
        SubsamplingMPE(BestBinMPE(), np.ones(3)).fit(d.X, d.y)
    with pytest.raises(ValueError):
        SubsamplingMPE(BestBinMPE(), np.ones(300), mode="cubic").fit(d.X, d.y)
    with pytest.raises(ValueError):
        SubsamplingMPE(BestBinMPE(), np.ones(300), lower_threshold=2).fit(d.X, d.y)


def test_lapack_pivoted_cholesky_equals_the_loop():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    Z1, t1 = pivoted_cholesky_features(X, 1.7)
    Z2, t2 = pivoted_cholesky_features(X, 1.7, max_rank=10_000)  # the Python loop
    np.testing.assert_allclose(Z1 @ Z1.T, Z2 @ Z2.T, atol=1e-9)
    assert Z1.shape[1] == Z2.shape[1]
    assert t1 == pytest.approx(t2, abs=1e-6)


def test_km_warm_start_from_the_nearest_lambda_gives_the_same_estimates():
    from mixstat.mpe._kernel_mean import _bisect, _HullDistance

    d = make_sumpe_synthetic(0.5, scenario="irreducible", n_component=150, n_mixture=150,
                             random_state=1)
    X = np.vstack([d.X[d.y == 0], d.X[d.y == 1]])
    Z, _ = pivoted_cholesky_features(X, 1.0)
    warm = _HullDistance(Z, 150)
    assert warm(1.0) == pytest.approx(0.0, abs=1e-9)
    for nu in (0.05, 0.2):
        cold = _HullDistance(Z, 150)
        cold.states = {}  # chained from the previous QP, as before
        assert _bisect(warm, nu, 0.04, 100.0) == pytest.approx(_bisect(cold, nu, 0.04, 100.0))
    for lam in (1.3, 2.0, 7.0):
        assert warm(lam + 1e-3) == pytest.approx(cold(lam + 1e-3), abs=1e-6)  # QP tolerance


@pytest.mark.parametrize("cls", ["ROCMPE", "BestBinMPE", "ElkanNotoMPE", "DEDPULMPE"])
def test_score_bootstrap_reuses_the_classifier(cls):
    import mixstat.mpe as M

    d = make_sumpe_synthetic(0.5, n_component=200, n_mixture=200, random_state=0)
    est = getattr(M, cls)(bootstrap_refit=False, n_bootstrap=20, random_state=0).fit(d.X, d.y)
    plain = getattr(M, cls)(random_state=0).fit(d.X, d.y)
    assert est.proportion_ == pytest.approx(plain.proportion_)  # the fit itself is unchanged
    reps = est.bootstrap_proportions_
    assert reps.shape == (20,) and np.all((reps >= 0) & (reps <= 1))
    lo, hi = est.proportion_interval_
    assert lo <= hi
    # a resample equal to the original sample gives back the estimate
    from mixstat.mpe._classifier import _ScoreStatistic

    stat = _ScoreStatistic(est, est.scores_component_, est.scores_mixture_)
    assert stat(np.arange(400), 0) == pytest.approx(est.proportion_)


def test_regrouping_ranker_and_sumpe_base_validated():
    from mixstat.mpe import RegroupingMPE

    d = _data()
    with pytest.raises(ValueError, match="ranker"):
        RegroupingMPE(BestBinMPE(), ranker="logistic").fit(d.X, d.y)
    with pytest.raises(ValueError, match="base_estimator"):
        SubsamplingMPE(LogisticRegression(), np.ones(300)).fit(d.X, d.y)
