import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from mixstat.primitives._kmeans import (
    kmeans_lstsq_gate,
    lstsq_gate_logits,
    match_clusters_to_experts,
    warm_kmeans,
)


def planted(n_per=15, K=4, p=3, sep=6.0, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(K, p))
    means = sep * means / np.linalg.norm(means, axis=1, keepdims=True)
    lab = np.repeat(np.arange(K), n_per)
    return means[lab] + 0.3 * rng.normal(size=(lab.size, p)), lab


@pytest.mark.parametrize("distance", ["l1-mean", "euclidean"])
@pytest.mark.parametrize("init", [None, "k-means++"])
def test_recovers_planted_clusters_and_gate_argmax(distance, init):
    if init is None:  # the reference's U(+-1e-3) start, for contexts near zero, K=2
        Z, lab = planted(K=2)
        Z = 1e-3 * Z
    else:
        Z, lab = planted()
    K = lab.max() + 1
    res = None
    for seed in range(10):  # the tiny uniform start may leave a cluster empty
        res = kmeans_lstsq_gate(Z, n_experts=K, distance=distance, init=init, max_iter=100,
                                random_state=seed, noise=1e-4 if init else 1e-7)
        if res.updated:
            break
    assert res.updated
    assert adjusted_rand_score(lab, res.labels) == 1.0
    routed = np.argmax(lstsq_gate_logits(Z, res.coef), axis=1)
    np.testing.assert_array_equal(routed, res.labels)
    # the centres are the cluster means (a Lloyd fixed point)
    for k in range(K):
        np.testing.assert_allclose(res.centers[k], Z[res.cluster_labels == k].mean(0), atol=1e-3)


def test_array_api_namespaces_agree():
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    Z, lab = planted()
    ref = kmeans_lstsq_gate(Z, n_experts=4, init="k-means++", random_state=3)
    rt = kmeans_lstsq_gate(torch.tensor(Z), n_experts=4, init="k-means++", random_state=3)
    rs = kmeans_lstsq_gate(xps.asarray(Z), n_experts=4, init="k-means++", random_state=3)
    assert isinstance(rt.coef, torch.Tensor)
    np.testing.assert_allclose(rt.coef.numpy(), ref.coef, atol=1e-8)
    np.testing.assert_allclose(np.asarray(rs.coef), ref.coef, atol=1e-8)
    np.testing.assert_array_equal(rt.labels.numpy(), ref.labels)


def test_indicator_regression_equals_lstsq_when_noise_free():
    Z, lab = planted(K=3)
    res = kmeans_lstsq_gate(Z, n_experts=3, init="k-means++", noise=0.0, random_state=0)
    X = np.c_[Z, np.ones(len(Z))]
    W, *_ = np.linalg.lstsq(X, np.eye(3)[res.labels], rcond=None)
    np.testing.assert_allclose(res.coef, W, atol=1e-8)


def test_expert_losses_relabel_clusters():
    Z, lab = planted(K=3)
    perm = np.array([2, 0, 1])  # cluster of true group g is served best by expert perm[g]
    loss = np.ones((len(Z), 3))
    loss[np.arange(len(Z)), perm[lab]] = 0.1
    for match in ["greedy", "hungarian"]:
        res = kmeans_lstsq_gate(Z, loss, init="k-means++", match=match, random_state=1)
        assert res.updated
        np.testing.assert_array_equal(res.labels, perm[lab])


def test_greedy_is_the_reference_rule_not_hungarian():
    L = np.array([[1.0, 2.0], [0.0, 10.0]])
    np.testing.assert_array_equal(match_clusters_to_experts(L, "greedy"), [0, 1])
    np.testing.assert_array_equal(match_clusters_to_experts(L, "hungarian"), [1, 0])


@given(st.integers(2, 6), st.integers(0, 2**16))
@settings(max_examples=25)
def test_matching_properties(K, seed):
    L = np.random.default_rng(seed).random((K, K))
    g = match_clusters_to_experts(L, "greedy")
    h = match_clusters_to_experts(L, "hungarian")
    assert sorted(g) == list(range(K)) and sorted(h) == list(range(K))
    assert g[0] == np.argmin(L[0])  # the first cluster takes its best expert
    assert L[np.arange(K), h].sum() <= L[np.arange(K), g].sum() + 1e-12


@given(st.integers(2, 5), st.integers(1, 3), st.integers(0, 2**16))
@settings(max_examples=25)
def test_skip_rule_empty_cluster(K, n_distinct, seed):
    # fewer distinct points than clusters: some cluster is always empty -> skip
    n_distinct = min(n_distinct, K - 1)
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n_distinct, 2))
    Z = pts[rng.integers(0, n_distinct, size=3 * K)]
    Z[:n_distinct] = pts
    for init in [None, "k-means++"]:
        res = kmeans_lstsq_gate(Z, n_experts=K, init=init, random_state=seed)
        assert not res.updated and res.reason == "empty cluster"
        assert res.coef is None and res.centers is None and res.labels is None


@given(st.integers(0, 2**16), st.sampled_from(["l1-mean", "euclidean"]))
@settings(max_examples=25)
def test_skip_rule_consistent_with_kmeans(seed, distance):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(12, 2))
    init = rng.normal(size=(3, 2))
    km = warm_kmeans(Z, 3, init=init, distance=distance, max_iter=3, tol=1e-4)
    res = kmeans_lstsq_gate(Z, rng.random((12, 3)), init=init, distance=distance, max_iter=3,
                            tol=1e-4, random_state=seed)
    assert res.updated == (km.converged and not km.empty_cluster)
    if res.updated:
        # one-to-one matching; targets are the matched experts of the clusters
        assert sorted(res.expert_of_cluster) == [0, 1, 2]
        np.testing.assert_array_equal(res.labels, res.expert_of_cluster[res.cluster_labels])
        assert np.bincount(res.cluster_labels, minlength=3).min() >= 1
    elif not km.empty_cluster:
        assert res.reason == "k-means did not converge" and km.n_iter == 3


def test_warm_start_is_a_fixed_point():
    Z, lab = planted()
    res = kmeans_lstsq_gate(Z, n_experts=4, init="k-means++", random_state=0)
    again = kmeans_lstsq_gate(Z, n_experts=4, init=res.centers, random_state=1)
    assert again.updated and again.n_iter == 1
    np.testing.assert_array_equal(again.labels, res.labels)


@given(st.integers(0, 2**16))
@settings(max_examples=15)
def test_permutation_equivariance(seed):
    Z, lab = planted(n_per=6, K=3, seed=seed % 7)
    rng = np.random.default_rng(seed)
    loss = rng.random((len(Z), 3))
    init = Z[[0, 6, 12]]
    perm = rng.permutation(len(Z))
    a = kmeans_lstsq_gate(Z, loss, init=init, noise=0.0)
    b = kmeans_lstsq_gate(Z[perm], loss[perm], init=init, noise=0.0)
    assert a.updated and b.updated
    np.testing.assert_array_equal(b.labels, a.labels[perm])
    np.testing.assert_allclose(b.coef, a.coef, atol=1e-8)


def test_bad_input():
    Z, _ = planted(K=2)
    Zn = Z.copy()
    Zn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kmeans_lstsq_gate(Zn, n_experts=2)
    with pytest.raises(ValueError, match="n_samples >= n_experts"):
        kmeans_lstsq_gate(Z[:1], n_experts=2)
    with pytest.raises(ValueError, match="expert_loss must have shape"):
        kmeans_lstsq_gate(Z, np.ones((3, 2)))
    with pytest.raises(ValueError, match="Give n_experts"):
        kmeans_lstsq_gate(Z)
    with pytest.raises(ValueError, match="distance"):
        kmeans_lstsq_gate(Z, n_experts=2, distance="cosine")
    with pytest.raises(ValueError, match="match"):
        kmeans_lstsq_gate(Z, n_experts=2, match="best")
    with pytest.raises(ValueError, match="init centres must have shape"):
        kmeans_lstsq_gate(Z, n_experts=2, init=np.zeros((3, 3)))
    loss = np.ones((len(Z), 2))
    loss[0, 0] = np.nan
    with pytest.raises(ValueError, match="expert_loss contains NaN"):
        kmeans_lstsq_gate(Z, loss)
