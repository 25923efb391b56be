"""scikit-learn's estimator checks for the mixture-of-experts estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mixstat.moe import GaussianMoERegressor, GaussianMoERegressorCV

# As scikit-learn does for KMeans / GaussianMixture (meta-issue #16298): with
# several components, a sample weight of 2 and a repeated row are the same
# likelihood, but the initialisation (residual quantiles / random restarts)
# sees a different sample, so EM can land in another local optimum.
_SW_REASON = ("EM from a data-dependent initialisation: weight 2 and a repeated row give "
              "the same objective but not the same starting point (sklearn #16298)")


# The conditional density p(y | x) needs y: ``score_samples(X, y)`` as the
# issue specifies, while these checks call ``score_samples(X)`` (a density of X).
# ``predict``'s invariances are tested in test_moe.py.
_Y_REASON = "score_samples(X, y) is the conditional log-density and needs y"
_NEEDS_Y = ("check_methods_sample_order_invariance", "check_methods_subset_invariance")


def _expected_failed_checks(estimator):
    out = dict.fromkeys(_NEEDS_Y, _Y_REASON)
    if type(estimator) is GaussianMoERegressor:
        out["check_sample_weight_equivalence_on_dense_data"] = _SW_REASON
    return out


@parametrize_with_checks(
    [
        GaussianMoERegressor(n_components=2, n_init=1, max_iter=30, random_state=0),
        GaussianMoERegressorCV(n_components=(1, 2), n_alphas=3, n_init=1, max_iter=20,
                               random_state=0),
        GaussianMoERegressorCV(n_components=(1, 2), n_alphas=3, n_init=1, max_iter=20,
                               relax=False, criterion="bic", random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
