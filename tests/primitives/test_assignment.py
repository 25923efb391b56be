"""Hungarian alignment of components and labels."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mixstat.primitives import match_components, match_labels


@settings(max_examples=30)
@given(st.integers(1, 7), st.integers(0, 10_000))
def test_match_components_recovers_a_permutation(K, seed):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(K, 4)) * 5
    perm = rng.permutation(K)
    est = ref[perm] + rng.normal(size=(K, 4)) * 0.01
    found = match_components(ref, est)
    np.testing.assert_allclose(est[found], ref, atol=0.1)
    np.testing.assert_array_equal(perm[found], np.arange(K))


def test_match_components_shapes():
    import pytest

    with pytest.raises(ValueError, match="shapes differ"):
        match_components(np.zeros((2, 3)), np.zeros((3, 3)))
    # K scalar parameters: pass them as a column (K, 1)
    ref = np.array([[0.0], [10.0], [-5.0]])
    np.testing.assert_array_equal(match_components(ref, ref[[2, 0, 1]]), [1, 2, 0])


@settings(max_examples=30)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_match_labels_recovers_a_permutation(K, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, size=60)
    truth[:K] = np.arange(K)  # every label present
    relabel = rng.permutation(K) + 10  # different label names
    pred = relabel[truth]
    flip = rng.random(60) < 0.05
    pred[flip] = relabel[(truth[flip] + 1) % K]
    out, mapping = match_labels(truth, pred)
    assert mapping == {int(relabel[k]): k for k in range(K)}
    np.testing.assert_array_equal(out[~flip], truth[~flip])


def test_match_labels_extra_predicted_cluster_gets_a_new_label():
    truth = np.array([0, 0, 1, 1, 1, 0])
    pred = np.array([1, 1, 2, 2, 0, 1])  # three predicted clusters for two true
    out, mapping = match_labels(truth, pred)
    assert mapping[1] == 0 and mapping[2] == 1
    assert out[4] not in (0, 1)  # not merged into a true label
    np.testing.assert_array_equal(out[[0, 1, 2, 3, 5]], [0, 0, 1, 1, 0])
    out_s, _ = match_labels(np.array(["a", "a", "b"]), np.array(["b", "b", "a"]))
    np.testing.assert_array_equal(out_s, ["a", "a", "b"])
    out_s, m = match_labels(np.array(["a", "a", "b", "b"]), np.array(["b", "b", "a", "x"]))
    assert m["b"] == "a" and m["a"] == "b" and m["x"] not in ("a", "b")
