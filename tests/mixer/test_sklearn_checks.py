from sklearn.utils.estimator_checks import parametrize_with_checks

from mixstat.mixer import MixERRegressor

EXPECTED_FAILED = {}


@parametrize_with_checks(
    [MixERRegressor(n_experts=2, n_rounds=5, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
