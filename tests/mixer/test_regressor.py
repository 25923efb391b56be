import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.tree import DecisionTreeRegressor

from mixstat.mixer import MixERRegressor


def regimes(n=400, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[-3, -3], [3, -3], [-3, 3], [3, 3.0]])
    g = rng.integers(0, 4, n)
    Z = centers[g] + rng.normal(size=(n, 2))
    X = rng.normal(size=(n, 3))
    B = np.array([[2, 0, -1], [-2, 1, 0], [0, -2, 2], [1, 1, 1.0]]) * 2
    y = (X * B[g]).sum(1) + 0.1 * rng.normal(size=n)
    return X, y, Z, g


@pytest.mark.parametrize("expert", [LinearRegression(), DecisionTreeRegressor(random_state=0)])
def test_one_expert_equals_that_expert(expert):
    X, y, Z, _ = regimes(150)
    m = MixERRegressor(n_experts=1, expert=expert, random_state=0).fit(X, y)
    ref = expert.fit(X, y)
    np.testing.assert_allclose(m.predict(X), ref.predict(X), rtol=1e-10, atol=1e-10)
    assert np.all(m.labels_ == 0) and m.converged_


def test_recovers_regimes_with_separate_gate_features():
    X, y, Z, g = regimes()
    m = MixERRegressor(n_experts=4, random_state=0).fit(X, y, Z=Z)
    assert m.converged_ and m.n_gate_updates_ >= 1
    assert adjusted_rand_score(g, m.labels_) > 0.95
    Xt, yt, Zt, gt = regimes(seed=1)
    assert m.score(Xt, yt, Z=Zt) > 0.95
    assert adjusted_rand_score(gt, m.route(Xt, Z=Zt)) > 0.95
    # each expert's coefficients are one planted regime's
    single = LinearRegression().fit(X, y).score(Xt, yt)
    assert single < 0.5
    # gate_coef_ is in raw units and reproduces the routing
    logits = Zt @ m.gate_coef_[:-1] + m.gate_coef_[-1]
    np.testing.assert_array_equal(np.argmax(logits, 1), m.route(Xt, Z=Zt))
    assert m.cluster_centers_.shape == (4, 2)


def test_gate_features_columns():
    X, y, Z, g = regimes()
    XZ = np.c_[X, Z]
    m = MixERRegressor(n_experts=4, gate_features=[3, 4], random_state=0).fit(XZ, y)
    assert adjusted_rand_score(g, m.labels_) > 0.95
    assert m.gate_coef_.shape == (3, 4)


def test_routing_invariant_to_permuting_samples():
    X, y, Z, g = regimes()
    perm = np.random.default_rng(5).permutation(len(y))
    a = MixERRegressor(n_experts=4, random_state=0, kmeans_max_iter=100).fit(X, y, Z=Z)
    b = MixERRegressor(n_experts=4, random_state=0, kmeans_max_iter=100).fit(
        X[perm], y[perm], Z=Z[perm])
    assert adjusted_rand_score(a.labels_[perm], b.labels_) == 1.0
    np.testing.assert_allclose(a.predict(X, Z=Z), b.predict(X, Z=Z), atol=1e-8)


def test_n_jobs_and_hungarian_agree_with_serial():
    X, y, Z, g = regimes(200)
    a = MixERRegressor(n_experts=4, random_state=0).fit(X, y, Z=Z)
    b = MixERRegressor(n_experts=4, random_state=0, n_jobs=2).fit(X, y, Z=Z)
    np.testing.assert_allclose(a.predict(X, Z=Z), b.predict(X, Z=Z))
    c = MixERRegressor(n_experts=4, random_state=0, match="hungarian").fit(X, y, Z=Z)
    assert adjusted_rand_score(a.labels_, c.labels_) == 1.0


def test_bad_input():
    X, y, Z, g = regimes(50)
    with pytest.raises(ValueError, match="n_samples"):
        MixERRegressor(n_experts=4).fit(X[:3], y[:3])
    with pytest.raises(ValueError, match="either gate_features or Z"):
        MixERRegressor(gate_features=[0]).fit(X, y, Z=Z)
    with pytest.raises(ValueError, match="rows"):
        MixERRegressor().fit(X, y, Z=Z[:10])
    Zn = Z.copy()
    Zn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MixERRegressor().fit(X, y, Z=Zn)
    Xn = X.copy()
    Xn[0, 0] = np.inf
    with pytest.raises(ValueError):
        MixERRegressor().fit(Xn, y)
    with pytest.raises(ValueError, match="column indices"):
        MixERRegressor(gate_features=[7]).fit(X, y)
    m = MixERRegressor(random_state=0).fit(X, y, Z=Z)
    with pytest.raises(ValueError, match="pass Z"):
        m.predict(X)
    with pytest.raises(ValueError, match="columns"):
        m.predict(X, Z=np.c_[Z, Z])
    m2 = MixERRegressor(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="without Z"):
        m2.predict(X, Z=Z)


def test_convergence_warning_when_rounds_too_few():
    from sklearn.exceptions import ConvergenceWarning

    X, y, Z, g = regimes(200)
    # two rounds with one gate update (round 1): the routing changes, so no check
    # of stability is possible -> ConvergenceWarning
    with pytest.warns(ConvergenceWarning, match="n_rounds=2"):
        m = MixERRegressor(n_experts=4, n_rounds=2, gate_every=5, random_state=0).fit(X, y, Z=Z)
    assert not m.converged_ and m.n_iter_ == 2 and m.n_gate_updates_ == 1
