"""log-sum-exp, signed log-sum-exp, softmax, top-k gating, responsibilities."""

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mixstat.primitives import (
    log_softmax,
    logsumexp,
    responsibilities,
    signed_logsumexp,
    softmax,
    topk_gating,
)

finite = st.floats(-700, 700, allow_nan=False, allow_infinity=False)
with_neg_inf = st.one_of(finite, st.just(-np.inf))


def matrices(elements=finite, max_rows=6, max_cols=6):
    return st.tuples(st.integers(1, max_rows), st.integers(1, max_cols)).flatmap(
        lambda s: arrays(np.float64, s, elements=elements)
    )


# ------------------------------------------------------------ logsumexp ---
@settings(max_examples=40)
@given(matrices(with_neg_inf))
def test_logsumexp_equals_scipy(a):
    for axis in (0, 1, -1):
        expected = scipy.special.logsumexp(a, axis=axis)
        got = logsumexp(a, axis=axis)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logsumexp(a, axis=1, keepdims=True),
                               scipy.special.logsumexp(a, axis=1, keepdims=True),
                               rtol=1e-12, atol=1e-12)


def test_logsumexp_special_values():
    a = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [1000.0, 1000.0], [-1000.0, -1000.0]])
    out = logsumexp(a, axis=1)
    assert out[0] == -np.inf
    assert out[1] == np.inf
    np.testing.assert_allclose(out[2:], [1000 + math.log(2), -1000 + math.log(2)])


def test_logsumexp_namespaces(ns, rng):
    a = rng.normal(size=(7, 4)) * 50
    a[2] = -np.inf
    a[3, 1] = -np.inf
    out = logsumexp(ns.asarray(a), axis=1)
    assert ns.is_native(out)
    np.testing.assert_allclose(ns.to_numpy(out), scipy.special.logsumexp(a, axis=1))
    out0 = logsumexp(ns.asarray(a), axis=0, keepdims=True)
    assert tuple(out0.shape) == (1, 4)
    np.testing.assert_allclose(ns.to_numpy(out0), scipy.special.logsumexp(a, axis=0, keepdims=True))


def test_logsumexp_gradient_is_softmax(rng):
    torch = pytest.importorskip("torch")
    a = rng.normal(size=(5, 3)) * 30
    a[1, 2] = -np.inf
    t = torch.tensor(a, requires_grad=True)
    logsumexp(t, axis=1).sum().backward()
    expected = scipy.special.softmax(a, axis=1)
    np.testing.assert_allclose(t.grad.numpy(), expected, atol=1e-14)
    # and the same as torch's own
    t2 = torch.tensor(a, requires_grad=True)
    torch.logsumexp(t2, dim=1).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), t2.grad.numpy(), atol=1e-14)
    # gradient of log_softmax's normaliser: d/da sum_k w_k log_softmax(a)_k
    t3 = torch.tensor(a[:, :2].copy(), requires_grad=True)
    wts = torch.tensor(rng.uniform(size=(5, 2)))
    (wts * log_softmax(t3, axis=1)).sum().backward()
    sm = scipy.special.softmax(a[:, :2], axis=1)
    expected = wts.numpy() - sm * wts.numpy().sum(axis=1, keepdims=True)
    np.testing.assert_allclose(t3.grad.numpy(), expected, atol=1e-12)


# ---------------------------------------------------- signed logsumexp ---
@settings(max_examples=40)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            arrays(np.float64, (3, k), elements=st.floats(-30, 30)),
            arrays(np.float64, (3, k), elements=st.floats(-3, 3)),
        )
    )
)
def test_signed_logsumexp_direct_and_sign_flip(ab):
    a, w = ab
    log_abs, sign = signed_logsumexp(a, w, axis=1)
    direct = np.sum(w * np.exp(a), axis=1)
    scale = np.sum(np.abs(w) * np.exp(a), axis=1)
    nonzero = np.abs(direct) > 1e-8 * scale
    np.testing.assert_allclose(np.exp(log_abs[nonzero]) * sign[nonzero], direct[nonzero],
                               rtol=1e-7, atol=0)
    # w -> -w flips the sign and keeps the magnitude
    log_abs2, sign2 = signed_logsumexp(a, -w, axis=1)
    np.testing.assert_allclose(log_abs2, log_abs, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(sign2, -sign)


def test_signed_logsumexp_no_overflow_and_zero():
    a = np.array([[1000.0, 1000.0 + math.log(3.0)], [5.0, 5.0], [-np.inf, -np.inf]])
    s = np.array([[-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    log_abs, sign = signed_logsumexp(a, s, axis=1)
    np.testing.assert_allclose(log_abs[0], 1000 + math.log(2.0))
    assert sign[0] == 1.0
    assert log_abs[1] == -np.inf and sign[1] == 0.0
    assert log_abs[2] == -np.inf and sign[2] == 0.0


def test_signed_logsumexp_namespaces(ns, rng):
    a = rng.normal(size=(4, 5)) * 10
    s = rng.choice([-1.0, 1.0], size=(4, 5))
    la, sg = signed_logsumexp(ns.asarray(a), ns.asarray(s), axis=1)
    assert ns.is_native(la) and ns.is_native(sg)
    la0, sg0 = signed_logsumexp(a, s, axis=1)
    np.testing.assert_allclose(ns.to_numpy(la), la0)
    np.testing.assert_array_equal(ns.to_numpy(sg), sg0)


# --------------------------------------------------------- softmax / topk ---
@settings(max_examples=30)
@given(matrices(with_neg_inf))
def test_softmax_matches_scipy(a):
    ok = np.isfinite(a).any(axis=1)
    got = softmax(a[ok], axis=1)
    np.testing.assert_allclose(got, scipy.special.softmax(a[ok], axis=1), atol=1e-13)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(log_softmax(a[ok], axis=1), scipy.special.log_softmax(a[ok], axis=1),
                               atol=1e-10)


def test_softmax_namespaces(ns, rng):
    a = rng.normal(size=(6, 4)) * 20
    out = softmax(ns.asarray(a), axis=1)
    assert ns.is_native(out)
    np.testing.assert_allclose(ns.to_numpy(out), scipy.special.softmax(a, axis=1), atol=1e-14)


@settings(max_examples=30)
@given(matrices(st.floats(-50, 50), max_cols=8), st.integers(1, 8), st.booleans())
def test_topk_gating_properties(logits, k, renormalize):
    E = logits.shape[1]
    k = min(k, E)
    gates, idx = topk_gating(logits, k, renormalize=renormalize)
    probs = scipy.special.softmax(logits, axis=1)
    assert gates.shape == idx.shape == (logits.shape[0], k)
    # the k largest probabilities, in decreasing order
    np.testing.assert_allclose(np.take_along_axis(probs, idx, axis=1) / (
        np.take_along_axis(probs, idx, axis=1).sum(axis=1, keepdims=True) if renormalize else 1.0),
        gates, rtol=1e-12)
    assert np.all(np.diff(gates, axis=1) <= 1e-15)
    kth = np.sort(probs, axis=1)[:, ::-1][:, k - 1]
    assert np.all(np.take_along_axis(probs, idx, axis=1).min(axis=1) >= kth - 1e-15)
    assert all(len(set(row)) == k for row in idx.tolist())
    if renormalize:
        np.testing.assert_allclose(gates.sum(axis=1), 1.0, rtol=1e-12)
    else:
        assert np.all(gates.sum(axis=1) <= 1 + 1e-12)


def test_topk_ties_go_to_lower_index_and_bad_k(ns):
    logits = ns.asarray(np.array([[1.0, 3.0, 3.0, 0.0]]))
    gates, idx = topk_gating(logits, 2)
    assert ns.to_numpy(idx).tolist() == [[1, 2]]
    np.testing.assert_allclose(ns.to_numpy(gates), [[0.5, 0.5]])
    g1, i1 = topk_gating(logits, 1, renormalize=False)
    assert ns.to_numpy(i1).tolist() == [[1]]
    np.testing.assert_allclose(ns.to_numpy(g1), scipy.special.softmax([1, 3, 3, 0])[[1]][None])
    for k in (0, 5):
        with pytest.raises(ValueError, match="k must satisfy"):
            topk_gating(logits, k)


def test_topk_gradient_flows_to_logits():
    torch = pytest.importorskip("torch")
    logits = torch.tensor([[0.2, 1.0, -0.5]], dtype=torch.float64, requires_grad=True)
    gates, idx = topk_gating(logits, 1, renormalize=False)
    gates.sum().backward()
    p = torch.softmax(logits.detach(), dim=1)[0]
    j = int(idx[0, 0])
    expected = -p[j] * p
    expected[j] += p[j]
    np.testing.assert_allclose(logits.grad[0].numpy(), expected.numpy(), atol=1e-14)


# --------------------------------------------------------- responsibilities ---
@settings(max_examples=40)
@given(
    st.tuples(st.integers(1, 6), st.integers(1, 5)).flatmap(
        lambda s: st.tuples(
            arrays(np.float64, s, elements=st.one_of(st.floats(-1e4, 1e4), st.just(-np.inf))),
            arrays(np.float64, (s[1],), elements=st.floats(0.01, 1.0)),
        )
    )
)
def test_responsibilities_sum_to_one_and_finite(data):
    log_prob, weights = data
    log_w = np.log(weights / weights.sum())
    log_resp, log_norm = responsibilities(log_prob, log_w)
    resp = np.exp(log_resp)
    assert not np.isnan(log_resp).any() and np.all(log_resp <= 1e-12)
    assert np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(log_norm, scipy.special.logsumexp(log_prob + log_w, axis=1),
                               rtol=1e-12, atol=1e-12)
    dead = ~np.isfinite(log_norm)
    np.testing.assert_allclose(resp[dead], 1.0 / log_prob.shape[1])
    # same as including the weights in log_prob
    log_resp2, _ = responsibilities(log_prob + log_w)
    np.testing.assert_allclose(log_resp2, log_resp, atol=1e-9)


def test_responsibilities_all_minus_inf_row(ns):
    lp = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]])
    log_resp, log_norm = responsibilities(ns.asarray(lp))
    assert ns.is_native(log_resp)
    r = np.exp(ns.to_numpy(log_resp))
    np.testing.assert_allclose(r[0], 1 / 3)
    np.testing.assert_allclose(r[1], [1 / (1 + math.e), 0.0, math.e / (1 + math.e)])
    ln = ns.to_numpy(log_norm)
    assert ln[0] == -np.inf
    np.testing.assert_allclose(ln[1], math.log(1 + math.e))


def test_responsibilities_per_sample_weights(ns, rng):
    lp = rng.normal(size=(8, 3)) * 5
    lw = scipy.special.log_softmax(rng.normal(size=(8, 3)), axis=1)
    log_resp, log_norm = responsibilities(ns.asarray(lp), ns.asarray(lw))
    expected = lp + lw - scipy.special.logsumexp(lp + lw, axis=1, keepdims=True)
    np.testing.assert_allclose(ns.to_numpy(log_resp), expected, atol=1e-12)
