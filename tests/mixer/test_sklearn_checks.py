from sklearn.utils.estimator_checks import parametrize_with_checks

from mixstat.mixer import MixERRegressor

# MixERODE is not an (X, y) estimator (fit(trajectories, t, envs)), so
# scikit-learn's checks do not apply to it; tests/mixer/test_ode.py covers it.
EXPECTED_FAILED = {}


@parametrize_with_checks(
    [MixERRegressor(n_experts=2, n_rounds=5, random_state=0),
     MixERRegressor(n_experts=2, n_rounds=5, random_state=0, distance="euclidean",
                    match="hungarian", kmeans_init="uniform")],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
