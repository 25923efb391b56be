from sklearn.utils.estimator_checks import parametrize_with_checks

from mixstat._backend import has_module
from mixstat.circuits import SquaredCircuitDensity, SquaredGaussianMixture, SquaredMixture1D


def _expected(est):
    return {}


ESTIMATORS = [
    SquaredGaussianMixture(n_components=2, max_iter=20, random_state=0),
    SquaredMixture1D(n_components=2, family="exponential", n_init=1, max_iter=30, random_state=0),
]
if has_module("torch"):  # SquaredCircuitDensity is a torch model; the others run without
    ESTIMATORS.insert(
        1, SquaredCircuitDensity(n_units=2, max_epochs=2, batch_size=64, random_state=0))


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=_expected,
)
def test_sklearn_compatible(estimator, check):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
