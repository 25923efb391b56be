"""Penalised multinomial-logistic (softmax gate) update with soft targets."""

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from mixstat.primitives import multinomial_objective, penalized_multinomial_update


def make_gate_data(seed=0, n=120, p=3, K=3, soft=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    W = rng.normal(size=(K, p)) * 1.5
    P = scipy.special.softmax(X @ W.T + rng.normal(size=K), axis=1)
    if soft:
        T = scipy.special.softmax(np.log(P) + rng.normal(size=(n, K)), axis=1)
    else:
        T = np.eye(K)[[rng.choice(K, p=pp) for pp in P]]
    return X, T


@settings(max_examples=15)
@given(st.integers(0, 1000), st.floats(0.0, 5.0), st.floats(0.0, 3.0), st.integers(2, 4))
def test_update_never_increases_objective(seed, gamma, rho, K):
    X, T = make_gate_data(seed, n=50, K=K)
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.0, 2.0, size=50)
    coef = rng.normal(size=(K, 3))
    intercept = rng.normal(size=K)
    f = multinomial_objective(X, T, coef, intercept, gamma, rho, s)
    for _ in range(4):
        res = penalized_multinomial_update(X, T, coef, intercept, gamma=gamma, rho=rho,
                                           sample_weight=s, max_iter=1)
        assert np.isfinite(res.objective)
        assert res.objective <= f + 1e-10 * abs(f)
        np.testing.assert_allclose(
            res.objective, multinomial_objective(X, T, res.coef, res.intercept, gamma, rho, s),
            rtol=1e-12)
        coef, intercept, f = res.coef, res.intercept, res.objective


def test_unpenalised_equals_logistic_regression():
    X, T = make_gate_data(1, n=150, soft=False)
    labels = T.argmax(axis=1)
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, labels)
    res = penalized_multinomial_update(X, T, max_iter=500, tol=1e-15, cd_max_iter=1000,
                                       cd_tol=1e-12)
    P = scipy.special.softmax(X @ res.coef.T + res.intercept, axis=1)
    np.testing.assert_allclose(P, sk.predict_proba(X), atol=1e-5)
    # the objective is the multinomial NLL at that point
    nll = -np.sum(np.log(sk.predict_proba(X))[np.arange(150), labels])
    assert res.objective <= nll + 1e-6


def test_soft_targets_equal_replicated_hard_targets():
    """Soft targets T_ik = expanding each row into K weighted hard rows."""
    X, T = make_gate_data(2, n=40, K=3, soft=True)
    n, K = T.shape
    a = penalized_multinomial_update(X, T, gamma=1.0, max_iter=300, tol=1e-15, cd_max_iter=1000,
                                     cd_tol=1e-12)
    Xr = np.repeat(X, K, axis=0)
    Tr = np.tile(np.eye(K), (n, 1))
    sr = T.reshape(-1)
    b = penalized_multinomial_update(Xr, Tr, gamma=1.0, sample_weight=sr, max_iter=300,
                                     tol=1e-15, cd_max_iter=1000, cd_tol=1e-12)
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-9)
    Pa = scipy.special.softmax(X @ a.coef.T + a.intercept, axis=1)
    Pb = scipy.special.softmax(X @ b.coef.T + b.intercept, axis=1)
    np.testing.assert_allclose(Pa, Pb, atol=1e-5)


@pytest.mark.parametrize("gamma, rho", [(0.0, 0.0), (2.0, 0.0), (0.0, 1.0), (1.0, 0.5)])
def test_result_does_not_depend_on_class_order(gamma, rho):
    X, T = make_gate_data(3, n=80, K=4)
    perm = np.array([2, 0, 3, 1])
    kw = dict(gamma=gamma, rho=rho, max_iter=200, tol=1e-14, cd_max_iter=500, cd_tol=1e-12)
    a = penalized_multinomial_update(X, T, **kw)
    b = penalized_multinomial_update(X, T[:, perm], **kw)
    np.testing.assert_allclose(b.objective, a.objective, rtol=1e-9)
    Pa = scipy.special.softmax(X @ a.coef.T + a.intercept, axis=1)
    Pb = scipy.special.softmax(X @ b.coef.T + b.intercept, axis=1)
    np.testing.assert_allclose(Pb, Pa[:, perm], atol=1e-6)
    np.testing.assert_allclose(b.coef, a.coef[perm], atol=1e-5)


def test_lasso_gate_zeroes_irrelevant_features():
    rng = np.random.default_rng(4)
    n = 300
    X = rng.normal(size=(n, 5))
    logits = np.column_stack([2 * X[:, 0], -2 * X[:, 0], np.zeros(n)])
    T = scipy.special.softmax(logits, axis=1)
    res = penalized_multinomial_update(X, T, gamma=8.0, max_iter=100, tol=1e-12,
                                       cd_max_iter=500, cd_tol=1e-10)
    assert np.all(res.coef[:, 1:] == 0.0)
    assert np.abs(res.coef[:, 0]).max() > 0.5
    huge = penalized_multinomial_update(X, T, gamma=1e6, max_iter=5)
    assert np.all(huge.coef == 0.0)


def test_edge_cases(ns):
    X, T = make_gate_data(5, n=30, K=3)
    one = penalized_multinomial_update(X, T[:, :1])
    assert np.all(ns.to_numpy(one.coef) == 0) and one.objective == 0.0
    s = np.ones(30)
    s[:10] = 0.0  # zero weights are allowed (no NaN from the working response)
    res = penalized_multinomial_update(X, T, sample_weight=s, gamma=0.5, max_iter=50)
    ref = penalized_multinomial_update(X[10:], T[10:], gamma=0.5, max_iter=50)
    assert np.all(np.isfinite(res.coef))
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-8)
    with pytest.raises(ValueError, match="targets"):
        penalized_multinomial_update(X, T[:-1])
    # other namespaces: converted, and returned in the input's namespace
    out = penalized_multinomial_update(ns.asarray(X), ns.asarray(T), gamma=0.5, max_iter=3)
    assert ns.is_native(out.coef) and ns.is_native(out.intercept)
    ref = penalized_multinomial_update(X, T, gamma=0.5, max_iter=3)
    np.testing.assert_allclose(ns.to_numpy(out.coef), ref.coef, atol=1e-12)


# --- the fused Numba kernel (added with the kernel) ---------------------------
from mixstat.primitives import softmax  # noqa: E402
from mixstat.primitives._multinomial import _prox_newton_kernel  # noqa: E402


@pytest.mark.parametrize("gamma,rho", [(0.0, 0.0), (3.0, 0.0), (2.0, 0.5), (0.0, 1.0)])
def test_kernel_equals_numpy_path_and_py_func(gamma, rho):
    rng = np.random.default_rng(3)
    n, p, K = 80, 5, 3
    X = rng.normal(size=(n, p))
    T = softmax(X @ rng.normal(size=(p, K)))
    s = rng.uniform(0.2, 2.0, size=n)
    kw = dict(gamma=gamma, rho=rho, sample_weight=s, max_iter=300, tol=1e-14)
    a = penalized_multinomial_update(X, T, use_numba=True, **kw)
    b = penalized_multinomial_update(X, T, use_numba=False, **kw)
    assert a.objective == pytest.approx(b.objective, rel=1e-7)
    assert a.objective == pytest.approx(
        multinomial_objective(X, T, a.coef, a.intercept, gamma, rho, s), rel=1e-12)
    # the jitted kernel and its Python function agree step for step
    W1, b1 = np.zeros((K, p)), np.zeros(K)
    W2, b2 = np.zeros((K, p)), np.zeros(K)
    feats = np.arange(p, dtype=np.int64)
    unknown = (0.0, np.empty((0, K)))  # the NLL and probabilities at the start: not given
    f1, i1 = _prox_newton_kernel(X, T, s, W1, b1, gamma, rho, feats, 3, 0.0, 20, 1e-6, *unknown)
    f2, i2 = _prox_newton_kernel.py_func(X, T, s, W2, b2, gamma, rho, feats, 3, 0.0, 20, 1e-6,
                                         *unknown)
    assert i1 == i2
    np.testing.assert_allclose(W1, W2, atol=1e-10)
    np.testing.assert_allclose(b1, b2, atol=1e-10)
    assert f1 == pytest.approx(f2, rel=1e-12)
    # given them (at W = 0, b = 0 the probabilities are 1/K), the same steps
    W3, b3 = np.zeros((K, p)), np.zeros(K)
    P0 = np.full((n, K), 1.0 / K)
    nll0 = float(s @ T.sum(axis=1)) * np.log(K)
    f3, i3 = _prox_newton_kernel(X, T, s, W3, b3, gamma, rho, feats, 3, 0.0, 20, 1e-6, nll0, P0)
    assert i3 == i1
    np.testing.assert_allclose(W3, W1, atol=1e-10)
    assert f3 == pytest.approx(f1, rel=1e-12)


@pytest.mark.parametrize("use_numba", [True, False])
def test_features_restricts_the_moving_slopes(use_numba):
    rng = np.random.default_rng(4)
    n, p, K = 100, 6, 3
    X = rng.normal(size=(n, p))
    T = softmax(X @ rng.normal(size=(p, K)))
    W0 = rng.normal(size=(K, p)) * 0.1
    feats = np.array([0, 2, 5])
    res = penalized_multinomial_update(X, T, coef=W0, gamma=0.5, rho=0.1, max_iter=5,
                                       features=feats, use_numba=use_numba)
    frozen = np.setdiff1d(np.arange(p), feats)
    np.testing.assert_array_equal(res.coef[:, frozen], W0[:, frozen])
    assert res.objective <= multinomial_objective(X, T, W0, np.zeros(K), 0.5, 0.1) + 1e-12


def test_kernel_parts_equal_the_objective():
    # the NLL and penalty kernels of the fused step against multinomial_objective
    from mixstat.primitives._multinomial import _l1_ridge_penalty_kernel, _softmax_nll_kernel

    rng = np.random.default_rng(5)
    n, p, K = 50, 4, 3
    X = rng.normal(size=(n, p))
    T = softmax(rng.normal(size=(n, K)))
    s = rng.uniform(0.5, 2.0, size=n)
    W, b = rng.normal(size=(K, p)), rng.normal(size=K)
    eta = X @ W.T + b
    P = np.empty((n, K))
    nll = _softmax_nll_kernel(eta, T, s, P)
    np.testing.assert_allclose(P, softmax(eta), rtol=1e-12)
    assert nll == pytest.approx(multinomial_objective(X, T, W, b, 0.0, 0.0, s), rel=1e-12)
    pen = _l1_ridge_penalty_kernel(W, 0.7, 0.3)
    assert nll + pen == pytest.approx(multinomial_objective(X, T, W, b, 0.7, 0.3, s), rel=1e-12)
