"""MixERRegressor on real data: no empty expert, no NaN MSE, no spurious
feature-name warnings with pandas (issue 22, item 7)."""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score

from mixstat.mixer import MixERRegressor
from mixstat.mixer._regressor import unmask_gate
from mixstat.primitives._kmeans import lstsq_gate_logits

pd = pytest.importorskip("pandas")


def engel():
    sm = pytest.importorskip("statsmodels.api")
    d = sm.datasets.engel.load_pandas().data
    return d[["income"]], d["foodexp"]


def masked_gate(n=200, seed=0):
    """One skewed feature, three K-means-like clusters, the last one a single
    point far to the right: the least-squares gate's argmax never picks it."""
    rng = np.random.default_rng(seed)
    z = np.r_[rng.normal(0, 1, n), rng.normal(4, 0.5, n // 4), [25.0]][:, None]
    target = np.r_[np.zeros(n, int), np.ones(n // 4, int), [2]]
    D = np.column_stack([z, np.ones(z.shape[0])])
    W = np.linalg.pinv(D) @ np.eye(3)[target]
    return z, W, target


def test_unmask_gate_gives_every_cluster_its_expert():
    z, W, target = masked_gate()
    before = np.bincount(np.argmax(lstsq_gate_logits(z, W), axis=1), minlength=3)
    assert before[2] == 0  # masked by the least-squares gate
    W2, reseeded = unmask_gate(z, W, target)
    routes = np.argmax(lstsq_gate_logits(z, W2), axis=1)
    assert reseeded == [2]
    assert np.all(np.bincount(routes, minlength=3) > 0)
    # the lone far point goes to its expert, and the other columns are untouched
    assert routes[-1] == 2
    np.testing.assert_array_equal(W2[:, :2], W[:, :2])
    # it agrees with the target at least as well as before the re-seeding
    old = np.argmax(lstsq_gate_logits(z, W), axis=1)
    assert np.mean(routes == target) >= np.mean(old == target)


def test_unmask_gate_leaves_a_full_gate_alone():
    rng = np.random.default_rng(1)
    z = np.r_[rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))]
    target = np.r_[np.zeros(50, int), np.ones(50, int)]
    D = np.column_stack([z, np.ones(100)])
    W = np.linalg.pinv(D) @ np.eye(2)[target]
    W2, reseeded = unmask_gate(z, W, target)
    assert reseeded == []
    np.testing.assert_array_equal(W2, W)


@pytest.mark.parametrize("random_state", [None, 0, 1, 3])
def test_engel_three_experts_none_empty(random_state):
    # before the re-seeding: expert 1 empty, expert_mse_ nan and converged_=True
    X, y = engel()
    with warnings.catch_warnings():
        # a ConvergenceWarning is allowed, an empty expert is not
        warnings.simplefilter("ignore")
        m = MixERRegressor(n_experts=3, random_state=random_state).fit(X, y)
    assert np.all(m.expert_n_samples_ > 0)
    assert np.all(np.isfinite(m.expert_mse_))
    assert m.expert_n_samples_.sum() == X.shape[0]
    counts = np.bincount(m.labels_, minlength=3)
    np.testing.assert_array_equal(counts, m.expert_n_samples_)
    assert np.all(np.isfinite(m.predict(X)))


def test_engel_default_seed_reseeds_and_converges():
    X, y = engel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MixERRegressor(n_experts=3, random_state=0).fit(X, y)
    assert m.converged_ and m.n_unmasked_updates_ >= 1
    assert np.all(m.expert_n_samples_ > 0)
    # training MSE of the routed prediction equals the experts' weighted MSEs
    mse = np.mean((m.predict(X) - y.to_numpy()) ** 2)
    np.testing.assert_allclose(
        mse, np.sum(m.expert_mse_ * m.expert_n_samples_) / X.shape[0], rtol=1e-10
    )


def test_empty_expert_is_warned_and_not_converged(monkeypatch):
    # force every gate update to be skipped: the random initial gate then
    # decides the routing; with many experts on one feature some stay empty
    from mixstat.mixer import _regressor

    class Skipped:
        updated = False

    monkeypatch.setattr(_regressor, "kmeans_lstsq_gate", lambda *a, **k: Skipped())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 1))
    y = X[:, 0] + rng.normal(size=60)
    found = False
    for seed in range(20):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            m = MixERRegressor(n_experts=6, n_rounds=2, random_state=seed).fit(X, y)
        empty = m.expert_n_samples_ == 0
        if empty.any():
            found = True
            assert not m.converged_
            assert any("receive no training sample" in str(w.message) for w in rec)
            assert np.all(np.isnan(m.expert_mse_[empty]))
            assert np.all(np.isfinite(m.expert_mse_[~empty]))
            break
    assert found


def test_dataframe_predict_score_route_no_feature_name_warning():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 2)), columns=["income", "age"])
    y = pd.Series(np.where(X["income"] > 0, 2.0, -1.0) * X["age"], name="spend")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MixERRegressor(n_experts=2, random_state=0).fit(X, y)
        m.predict(X)
        m.score(X, y)
        m.route(X)
        cross_val_score(MixERRegressor(n_experts=2, random_state=0), X, y, cv=3)
    np.testing.assert_array_equal(m.feature_names_in_, ["income", "age"])
    # the same predictions as on the bare array (which must still warn)
    with pytest.warns(UserWarning, match="valid feature names"):
        np.testing.assert_allclose(m.predict(X.to_numpy()), m.predict(X))


def test_dataframe_with_separate_gate_frame():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(100, 1)), columns=["dose"])
    site = np.r_[np.zeros(50), np.ones(50)] * 6 + rng.normal(size=100)
    Z = pd.DataFrame({"site": site})
    y = np.where(Z["site"] > 3, 3.0, -3.0) * X["dose"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MixERRegressor(n_experts=2, random_state=0).fit(X, y, Z=Z)
        assert m.score(X, y, Z=Z) > 0.99
        m.route(X, Z=Z)
    text = str(m.summary())
    assert "dose" in text and "site" in text


def test_summary_uses_feature_names():
    X, y = engel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MixERRegressor(n_experts=2, random_state=0).fit(X, y)
    text = str(m.summary())
    assert "income" in text and "x0" not in text and "z0" not in text
    assert "nan" not in text


def test_summary_gate_feature_subset_names():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = X["a"] * np.sign(X["c"])
    m = MixERRegressor(n_experts=2, gate_features=[2], random_state=0).fit(X, y)
    gate_table = [t for t in m._summary().tables if t[0].startswith("Gate")][0]
    assert list(gate_table[1]) == ["c", "bias"]


def test_engel_reseeding_same_on_torch_backend():
    pytest.importorskip("torch")
    X, y = engel()
    ref = MixERRegressor(n_experts=3, random_state=0).fit(X, y)
    m = MixERRegressor(n_experts=3, random_state=0, backend="torch").fit(X, y)
    assert m.backend_ == "torch"
    assert m.n_unmasked_updates_ == ref.n_unmasked_updates_ >= 1
    np.testing.assert_array_equal(m.labels_, ref.labels_)
    np.testing.assert_allclose(m.gate_coef_, ref.gate_coef_, rtol=1e-8, atol=1e-10)


def test_unmask_gate_on_random_kmeans_partitions():
    # K-means partitions of 1-3 normal or log-normal features, K = 3..5: the
    # least-squares gate often masks an expert; the re-seeding gives every
    # expert rows and never lowers the agreement with the K-means target
    from sklearn.cluster import KMeans

    n_masked = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        p, K = int(rng.integers(1, 4)), int(rng.integers(3, 6))
        n = int(rng.integers(40, 200))
        Z = rng.lognormal(size=(n, p)) if seed % 2 else rng.normal(size=(n, p))
        Z = (Z - Z.mean(0)) / Z.std(0)
        target = KMeans(K, n_init=1, random_state=seed).fit_predict(Z)
        D = np.column_stack([Z, np.ones(n)])
        W = np.linalg.pinv(D) @ np.eye(K)[target]
        before = np.argmax(D @ W, axis=1)
        W2, reseeded = unmask_gate(Z, W, target)
        after = np.argmax(D @ W2, axis=1)
        if np.unique(before).size < K:
            n_masked += 1
            assert reseeded
            assert np.unique(after).size == K, seed
            assert np.mean(after == target) >= np.mean(before == target)
        else:
            assert reseeded == []
            np.testing.assert_array_equal(W2, W)
    assert n_masked >= 10  # the case is common, not a corner
