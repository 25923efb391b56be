"""Weighted Lasso / elastic net: CD (Numba kernel, its py_func, NumPy), FISTA,
duality gap, lambda_max, against scikit-learn."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression

from mixstat._backend import has_module
from mixstat.primitives import (
    enet_duality_gap,
    enet_lambda_max,
    soft_threshold,
    weighted_enet_cd,
    weighted_enet_fista,
)
from mixstat.primitives._lasso import _enet_cd_kernel, _enet_cd_numpy, _weighted_stats

needs_numba = pytest.mark.skipif(not has_module("numba"), reason="numba is not installed")


def make_problem(seed=0, n=60, p=15, n_informative=4, constant=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 1] += 0.7 * X[:, 0]  # correlated columns
    beta = np.zeros(p)
    beta[:n_informative] = rng.choice([-2.0, 1.5, 3.0], size=n_informative)
    y = 1.3 + X @ beta + rng.normal(size=n)
    if constant is not None:
        X[:, constant] = 2.5
    w = rng.uniform(0.1, 2.0, size=n)
    return X, y, w


def primal(X, y, w, coef, intercept, lam1, lam2):
    r = y - intercept - X @ coef
    return 0.5 * np.sum(w * r * r) + lam1 * np.abs(coef).sum() + 0.5 * lam2 * coef @ coef


def sk_fit(est, X, y, w):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, sample_weight=w)


# -------------------------------------------------- agreement with sklearn ---
@settings(max_examples=12)
@given(st.integers(0, 1000), st.floats(0.005, 0.5), st.booleans())
def test_cd_equals_sklearn_lasso(seed, alpha, fit_intercept):
    X, y, w = make_problem(seed)
    sk = sk_fit(Lasso(alpha=alpha, tol=1e-12, max_iter=100_000, fit_intercept=fit_intercept),
                X, y, w)
    res = weighted_enet_cd(X, y, w, lam1=alpha * w.sum(), tol=1e-12, max_iter=100_000,
                           fit_intercept=fit_intercept)
    np.testing.assert_allclose(res.coef, sk.coef_, atol=1e-8)
    np.testing.assert_allclose(res.intercept, sk.intercept_, atol=1e-8)


@pytest.mark.parametrize("l1_ratio", [0.2, 0.7])
@pytest.mark.parametrize("use_numba", [True, False])
def test_cd_equals_sklearn_elasticnet(l1_ratio, use_numba):
    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = make_problem(3)
    alpha = 0.08
    sk = sk_fit(ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000), X, y, w)
    res = weighted_enet_cd(X, y, w, lam1=alpha * l1_ratio * w.sum(),
                           lam2=alpha * (1 - l1_ratio) * w.sum(), tol=1e-12, max_iter=100_000,
                           use_numba=use_numba)
    np.testing.assert_allclose(res.coef, sk.coef_, atol=1e-8)
    np.testing.assert_allclose(res.intercept, sk.intercept_, atol=1e-8)


def test_unpenalised_is_weighted_least_squares():
    X, y, w = make_problem(4, n=80, p=6)
    ols = LinearRegression().fit(X, y, sample_weight=w)
    res = weighted_enet_cd(X, y, w, tol=1e-14, max_iter=100_000)
    np.testing.assert_allclose(res.coef, ols.coef_, atol=1e-7)
    np.testing.assert_allclose(res.intercept, ols.intercept_, atol=1e-7)


# ------------------------------------------- kernel == py_func == NumPy ---
def _kernel_inputs(X, y, w, lam1, lam2, coef0, fit_intercept=True, features=None):
    xbar, ybar, h = _weighted_stats(X, y, w, fit_intercept)
    yc = y - ybar
    r = yc - X @ coef0 + xbar @ coef0
    feats = np.arange(X.shape[1]) if features is None else np.asarray(features, dtype=np.int64)
    return [X, yc, w, xbar, h, coef0.copy(), r.copy(), lam1, lam2, feats]


@needs_numba
@pytest.mark.parametrize("tol, active_set, max_sweeps", [(1e-8, True, 500), (0.0, False, 3),
                                                         (1e-6, False, 500)])
def test_numba_kernel_equals_py_func_and_numpy(tol, active_set, max_sweeps):
    X, y, w = make_problem(5, n=40, p=12, constant=7)
    X = np.asfortranarray(X)
    coef0 = np.random.default_rng(0).normal(size=12) * 0.1
    outs = []
    for fn in (_enet_cd_kernel.jitted, _enet_cd_kernel.py_func, _enet_cd_numpy):
        args = _kernel_inputs(X, y, w, 3.0, 0.5, coef0)
        n_sweeps, gap = fn(*args, max_sweeps, tol, active_set)
        outs.append((n_sweeps, gap, args[5], args[6]))
    (n0, g0, c0, r0), (n1, g1, c1, r1), (n2, g2, c2, r2) = outs
    assert n0 == n1
    np.testing.assert_allclose(c0, c1, rtol=0, atol=1e-13)
    np.testing.assert_allclose(r0, r1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g0, g1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c0, c2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r0, r2, rtol=0, atol=1e-9)
    assert c0[7] == 0.0  # constant feature
    if tol == 0:
        assert g0 == -1.0 and n0 == max_sweeps


def test_numba_and_numpy_paths_agree():
    X, y, w = make_problem(6)
    a = weighted_enet_cd(X, y, w, lam1=2.0, lam2=0.3, tol=1e-10, use_numba=True)
    b = weighted_enet_cd(X, y, w, lam1=2.0, lam2=0.3, tol=1e-10, use_numba=False)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-9)
    np.testing.assert_allclose(a.intercept, b.intercept, atol=1e-9)


# --------------------------------------------------------- FISTA vs CD ---
@pytest.mark.parametrize("lam2", [0.0, 1.5])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fista_equals_cd(lam2, fit_intercept):
    X, y, w = make_problem(7, n=50, p=20)
    lam1 = 0.1 * enet_lambda_max(X, y, w, fit_intercept=fit_intercept)
    cd = weighted_enet_cd(X, y, w, lam1=lam1, lam2=lam2, tol=1e-14, max_iter=100_000,
                          fit_intercept=fit_intercept)
    fi = weighted_enet_fista(X, y, w, lam1=lam1, lam2=lam2, tol=1e-14, max_iter=50_000,
                             fit_intercept=fit_intercept)
    np.testing.assert_allclose(fi.coef, cd.coef, atol=1e-6)
    np.testing.assert_allclose(fi.intercept, cd.intercept, atol=1e-6)
    assert 0 <= fi.gap <= 1e-10 * np.sum(w * y * y)


def test_fista_survives_a_bad_step_size_estimate(monkeypatch):
    """A Lipschitz estimate far too low (no power iteration, and data whose top
    direction is orthogonal to the starting vector) is fixed by backtracking."""
    import mixstat.primitives._lasso as lasso_mod

    rng = np.random.default_rng(8)
    n, p = 40, 10
    z = rng.normal(size=(n, 1))
    X = z * (-1.0) ** np.arange(p) * 3 + 0.3 * rng.normal(size=(n, p))
    y = X[:, 0] + rng.normal(size=n)
    w = rng.uniform(0.5, 1.5, size=n)
    Xc = X - w @ X / w.sum()
    top = np.linalg.eigvalsh(Xc.T @ (w[:, None] * Xc))[-1]
    v = np.ones(p) / np.sqrt(p)
    assert v @ Xc.T @ (w * (Xc @ v)) < 0.05 * top  # the starting estimate is far too low
    monkeypatch.setattr(lasso_mod, "_POWER_ITERATIONS", 0)
    cd = weighted_enet_cd(X, y, w, lam1=2.0, tol=1e-14, max_iter=100_000)
    fi = weighted_enet_fista(X, y, w, lam1=2.0, tol=1e-14, max_iter=20_000)
    assert np.all(np.isfinite(fi.coef))
    np.testing.assert_allclose(fi.coef, cd.coef, atol=1e-6)


def test_solvers_on_namespaces(ns):
    X, y, w = make_problem(9, n=40, p=8)
    lam1 = 3.0
    ref = weighted_enet_cd(X, y, w, lam1=lam1, lam2=0.2, tol=1e-14, max_iter=100_000)
    Xn, yn, wn = ns.asarray(X), ns.asarray(y), ns.asarray(w)
    cd = weighted_enet_cd(Xn, yn, wn, lam1=lam1, lam2=0.2, tol=1e-14, max_iter=100_000)
    assert ns.is_native(cd.coef)
    np.testing.assert_allclose(ns.to_numpy(cd.coef), ref.coef, atol=1e-12)
    fi = weighted_enet_fista(Xn, yn, wn, lam1=lam1, lam2=0.2, tol=1e-14, max_iter=50_000)
    assert ns.is_native(fi.coef)
    np.testing.assert_allclose(ns.to_numpy(fi.coef), ref.coef, atol=1e-6)
    np.testing.assert_allclose(fi.intercept, ref.intercept, atol=1e-6)
    gap = enet_duality_gap(Xn, yn, wn, ns.asarray(ref.coef), None, lam1, 0.2)
    assert ns.is_native(gap)
    assert 0 <= float(ns.to_numpy(gap)) < 1e-9
    lmax = enet_lambda_max(Xn, yn, wn)
    np.testing.assert_allclose(float(ns.to_numpy(lmax)), enet_lambda_max(X, y, w))
    st_ = soft_threshold(ns.asarray(np.array([-3.0, -0.5, 0.0, 0.4, 2.0])), 1.0)
    np.testing.assert_array_equal(ns.to_numpy(st_), [-2.0, 0.0, 0.0, 0.0, 1.0])


# ------------------------------------------------------------ duality gap ---
@settings(max_examples=20)
@given(st.integers(0, 1000), st.floats(0.0, 1.0), st.floats(0.0, 2.0), st.booleans())
def test_duality_gap_bounds_suboptimality(seed, frac, lam2, fit_intercept):
    X, y, w = make_problem(seed % 7, n=30, p=10)
    lam1 = max(frac, 1e-3) * enet_lambda_max(X, y, w, fit_intercept=fit_intercept)
    opt = weighted_enet_cd(X, y, w, lam1=lam1, lam2=lam2, tol=1e-14, max_iter=100_000,
                           fit_intercept=fit_intercept)
    gap_opt = float(enet_duality_gap(X, y, w, opt.coef, None, lam1, lam2,
                                     fit_intercept=fit_intercept))
    scale = np.sum(w * y * y)
    assert -1e-10 * scale <= gap_opt <= 1e-9 * scale
    rng = np.random.default_rng(seed)
    coef = opt.coef + rng.normal(size=opt.coef.shape) * rng.uniform(0, 1)
    gap = float(enet_duality_gap(X, y, w, coef, None, lam1, lam2, fit_intercept=fit_intercept))

    def profiled(c):  # primal with the optimal intercept given c
        if fit_intercept:
            b0 = np.sum(w * (y - X @ c)) / w.sum()
        else:
            b0 = 0.0
        return primal(X, y, w, c, b0, lam1, lam2)

    subopt = profiled(coef) - profiled(opt.coef)
    assert gap >= -1e-10 * scale
    assert gap >= subopt - 1e-8 * scale


def test_cd_reports_its_gap():
    X, y, w = make_problem(10)
    res = weighted_enet_cd(X, y, w, lam1=4.0, tol=1e-6)
    ref = float(enet_duality_gap(X, y, w, res.coef, res.intercept, 4.0))
    np.testing.assert_allclose(res.gap, ref, rtol=1e-6, atol=1e-12)
    yc = y - np.sum(w * y) / w.sum()
    assert res.gap <= 1e-6 * np.sum(w * yc * yc)
    res0 = weighted_enet_cd(X, y, w, lam1=4.0, tol=0.0, max_iter=1)
    assert res0.gap == -1.0 and res0.n_iter == 1


# ------------------------------------------------ warm starts, features ---
def test_warm_start_from_solution_and_along_a_path():
    X, y, w = make_problem(11)
    lmax = enet_lambda_max(X, y, w)
    cold = weighted_enet_cd(X, y, w, lam1=0.05 * lmax, tol=1e-12, max_iter=100_000)
    again = weighted_enet_cd(X, y, w, lam1=0.05 * lmax, coef=cold.coef, tol=1e-12)
    assert again.n_iter == 1
    np.testing.assert_allclose(again.coef, cold.coef, atol=1e-12)
    coef = None
    total = 0
    for frac in (0.8, 0.4, 0.2, 0.1, 0.05):
        res = weighted_enet_cd(X, y, w, lam1=frac * lmax, coef=coef, tol=1e-12, max_iter=100_000)
        coef, total = res.coef, total + res.n_iter
    np.testing.assert_allclose(coef, cold.coef, atol=1e-8)
    # the warm start is copied, not modified
    start = cold.coef * 0.5
    keep = start.copy()
    weighted_enet_cd(X, y, w, lam1=lmax * 0.05, coef=start)
    np.testing.assert_array_equal(start, keep)


@pytest.mark.parametrize("use_numba", [True, False])
def test_features_restriction(use_numba):
    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = make_problem(12, p=10)
    rng = np.random.default_rng(0)
    coef0 = rng.normal(size=10)
    feats = np.array([0, 2, 3, 8])
    res = weighted_enet_cd(X, y, w, lam1=2.0, coef=coef0, features=feats, tol=1e-13,
                           max_iter=100_000, use_numba=use_numba)
    frozen = np.setdiff1d(np.arange(10), feats)
    np.testing.assert_array_equal(res.coef[frozen], coef0[frozen])
    # the gap stop works on the restricted problem (it converges, not max_iter)
    assert res.n_iter < 1000 and 0 <= res.gap <= 1e-13 * np.sum(w * (y - y.mean()) ** 2) * 10
    # = the reduced problem on the free columns with the frozen part as an offset
    y_off = y - X[:, frozen] @ coef0[frozen]
    red = weighted_enet_cd(X[:, feats], y_off, w, lam1=2.0, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(res.coef[feats], red.coef, atol=1e-9)
    np.testing.assert_allclose(res.intercept, red.intercept, atol=1e-9)
    with pytest.raises(ValueError, match="features"):
        weighted_enet_cd(X, y, w, features=[0, 10])


@pytest.mark.parametrize("lam1", [0.0, 1.0])
@pytest.mark.parametrize("use_numba", [True, False])
def test_constant_features_get_zero(lam1, use_numba):
    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = make_problem(13, p=8)
    X[:, 2] = 0.1  # constant, not exactly representable
    X[:, 5] = 0.0
    coef0 = np.ones(8)  # a warm start that puts weight on them
    res = weighted_enet_cd(X, y, w, lam1=lam1, coef=coef0, tol=1e-12, max_iter=100_000,
                           use_numba=use_numba)
    assert res.coef[2] == 0.0 and res.coef[5] == 0.0
    assert np.all(np.isfinite(res.coef))
    fi = weighted_enet_fista(X, y, w, lam1=max(lam1, 1e-3), tol=1e-12)
    assert abs(fi.coef[2]) < 1e-8 and abs(fi.coef[5]) < 1e-8


def test_lambda_max_is_the_smallest_zeroing_penalty():
    X, y, w = make_problem(14)
    lmax = float(enet_lambda_max(X, y, w))
    at = weighted_enet_cd(X, y, w, lam1=lmax * (1 + 1e-9), tol=1e-12)
    assert np.all(at.coef == 0)
    below = weighted_enet_cd(X, y, w, lam1=lmax * 0.99, tol=1e-12)
    assert np.count_nonzero(below.coef) >= 1
    sk_alpha_max = lmax / w.sum()
    sk = sk_fit(Lasso(alpha=sk_alpha_max * 0.99, tol=1e-12), X, y, w)
    np.testing.assert_array_equal(np.flatnonzero(sk.coef_), np.flatnonzero(below.coef))


def test_zero_weights_and_shapes():
    X, y, w = make_problem(15)
    coef0 = np.arange(X.shape[1], dtype=float)
    res = weighted_enet_cd(X, y, np.zeros_like(w), lam1=1.0, coef=coef0)
    np.testing.assert_array_equal(res.coef, coef0)
    assert res.n_iter == 0 and np.isfinite(res.intercept)
    fi = weighted_enet_fista(X, y, np.zeros_like(w), lam1=1.0)
    assert np.all(fi.coef == 0)
    # zero weight on some samples = dropping them
    w2 = w.copy()
    w2[:10] = 0
    a = weighted_enet_cd(X, y, w2, lam1=1.0, tol=1e-13, max_iter=100_000)
    b = weighted_enet_cd(X[10:], y[10:], w[10:], lam1=1.0, tol=1e-13, max_iter=100_000)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-10)
    with pytest.raises(ValueError, match="samples"):
        weighted_enet_cd(X, y[:-1])
    with pytest.raises(ValueError, match="features"):
        weighted_enet_cd(X, y, coef=np.zeros(3))


@needs_numba
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_column_stats_kernel_equals_py_func_and_numpy(fit_intercept):
    from mixstat.primitives._lasso import _col_stats_kernel

    X, y, w = make_problem(16, n=30, p=9, constant=4)
    X[:, 6] = 1e4 + 1e-1 * X[:, 6]  # cancellation: the two-pass branch
    outs = []
    for fn in (_col_stats_kernel.jitted, _col_stats_kernel.py_func):
        bufs = [np.empty(9), np.empty(9), np.empty(9)]
        fn(X, w, float(w.sum()), fit_intercept, *bufs)
        outs.append(bufs)
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    xbar, ybar, h = _weighted_stats(X, y, w, fit_intercept, use_numba=True)
    xbar2, ybar2, h2 = _weighted_stats(X, y, w, fit_intercept, use_numba=False)
    np.testing.assert_allclose(xbar, xbar2, atol=1e-14)
    np.testing.assert_allclose(h, h2, rtol=1e-12)
    assert ybar == ybar2
    if fit_intercept:
        assert h[4] == 0.0 and h2[4] == 0.0
        np.testing.assert_allclose(h, np.sum(w[:, None] * (X - xbar) ** 2, axis=0), rtol=1e-12)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_infinite_penalty_gap_is_zero_not_nan():
    # lam1 = inf (the MoE path's intercept-only start): every slope stays 0 and
    # the duality gap is 0, not inf * 0 = NaN (which ran every sweep and warned)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = X[:, 0] + rng.normal(size=40)
    for use_numba in (False, True):  # True: the Numba kernel (NumPy when Numba is absent)
        res = weighted_enet_cd(X, y, lam1=np.inf, use_numba=use_numba)
        assert not res.coef.any() and res.gap == 0.0 and res.n_iter == 1
        assert res.intercept == pytest.approx(y.mean())


# ------------------------------------------------------ working sets ---
def _wide_problem(seed=21, n=200, p=500):
    rng = np.random.default_rng(seed)
    X = np.asfortranarray(rng.normal(size=(n, p)))
    X[:, 1] += 0.8 * X[:, 0]  # correlated columns
    X[:, 9] = -1.5  # a constant column
    beta = np.zeros(p)
    beta[:8] = rng.choice([-2.0, 1.5, 3.0], size=8)
    y = 0.7 + X @ beta + rng.normal(size=n)
    w = rng.uniform(0.1, 2.0, size=n)
    return X, y, w


@pytest.mark.parametrize("use_numba", [True, False])
def test_working_set_equals_sklearn_at_small_lambda(use_numba):
    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = _wide_problem()
    lam1 = 0.01 * float(enet_lambda_max(X, y, w))
    sk = sk_fit(Lasso(alpha=lam1 / w.sum(), tol=1e-13, max_iter=1_000_000), X, y, w)
    res = weighted_enet_cd(X, y, w, lam1=lam1, tol=1e-13, max_iter=100_000,
                           use_numba=use_numba)
    assert np.count_nonzero(res.coef) > 50  # a hard point: many non-zeros, p > n
    assert res.coef[9] == 0.0
    np.testing.assert_allclose(res.coef, sk.coef_, atol=1e-6)
    np.testing.assert_allclose(res.intercept, sk.intercept_, atol=1e-6)


@pytest.mark.parametrize("use_numba", [True, False])
@pytest.mark.parametrize("lam2", [0.0, 3.0])
@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-9])
def test_working_set_returns_a_gap_below_tol(use_numba, lam2, tol):
    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = _wide_problem(22)
    lam1 = 0.02 * float(enet_lambda_max(X, y, w))
    res = weighted_enet_cd(X, y, w, lam1=lam1, lam2=lam2, tol=tol, max_iter=100_000,
                           use_numba=use_numba)
    gap = float(enet_duality_gap(X, y, w, res.coef, None, lam1, lam2))
    yc = y - np.sum(w * y) / w.sum()
    assert 0 <= gap <= tol * np.sum(w * yc * yc)
    np.testing.assert_allclose(res.gap, gap, rtol=1e-6, atol=1e-9 * np.sum(w * yc * yc))


@pytest.mark.parametrize("use_numba", [True, False])
@pytest.mark.parametrize("lam2, fit_intercept, with_features, warm",
                         [(0.0, True, False, False), (2.0, True, False, True),
                          (0.0, False, True, False), (0.5, True, True, True)])
def test_working_set_equals_full_sweeps(use_numba, lam2, fit_intercept, with_features,
                                        warm):
    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = _wide_problem(23, n=80, p=160)
    lam1 = 0.03 * float(enet_lambda_max(X, y, w, fit_intercept=fit_intercept))
    rng = np.random.default_rng(1)
    coef0 = rng.normal(size=160) * (rng.uniform(size=160) < 0.1) if warm else None
    feats = np.sort(rng.choice(160, size=80, replace=False)) if with_features else None
    kw = dict(lam1=lam1, lam2=lam2, coef=coef0, fit_intercept=fit_intercept,
              features=feats, tol=1e-13, max_iter=100_000, use_numba=use_numba)
    ws = weighted_enet_cd(X, y, w, working_set=True, **kw)
    full = weighted_enet_cd(X, y, w, working_set=False, **kw)
    np.testing.assert_allclose(ws.coef, full.coef, atol=1e-8)
    np.testing.assert_allclose(ws.intercept, full.intercept, atol=1e-8)
    if feats is not None:  # the frozen coordinates keep the warm start
        frozen = np.setdiff1d(np.arange(160), feats)
        start = np.zeros(160) if coef0 is None else coef0
        np.testing.assert_array_equal(ws.coef[frozen], start[frozen])


def test_working_set_leaves_single_sweeps_and_tol_zero_alone():
    """max_iter=1 (the GEM M-step) and tol=0 run the plain sweeps, bit for bit."""
    X, y, w = _wide_problem(24, n=80, p=100)
    coef0 = np.random.default_rng(2).normal(size=100) * 0.1
    for kw in (dict(max_iter=1, tol=1e-4), dict(max_iter=4, tol=0.0)):
        a = weighted_enet_cd(X, y, w, lam1=5.0, coef=coef0, **kw)
        b = weighted_enet_cd(X, y, w, lam1=5.0, coef=coef0, working_set=False, **kw)
        np.testing.assert_array_equal(a.coef, b.coef)
        assert a.n_iter == b.n_iter == kw["max_iter"] and a.gap == b.gap


@pytest.mark.parametrize("use_numba", [True, False])
def test_anderson_extrapolation_keeps_the_solution(use_numba):
    from mixstat.primitives._lasso import _enet_ws_solve

    if use_numba and not has_module("numba"):
        pytest.skip("numba is not installed")
    X, y, w = _wide_problem(25, n=100, p=200)
    lam1 = 0.02 * float(enet_lambda_max(X, y, w))
    outs = []
    for anderson in (0, 5):
        args = _kernel_inputs(X, y, w, lam1, 0.0, np.zeros(200))
        args[-1] = args[-1].astype(np.int64)
        _, gap = _enet_ws_solve(*args, 100_000, 1e-12, use_numba, anderson=anderson)
        yc = args[1]
        assert 0 <= gap <= 1e-12 * np.sum(w * yc * yc)
        outs.append(args[5])
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-8)


@needs_numba
@pytest.mark.parametrize("anderson, max_epochs, tol_abs", [(5, 60, 1e-10), (0, 7, 0.0),
                                                           (3, 500, 1e-3)])
def test_working_set_kernel_equals_py_func_and_numpy(anderson, max_epochs, tol_abs):
    from mixstat.primitives._lasso import _enet_ws_inner_kernel, _enet_ws_inner_numpy

    X, y, w = _wide_problem(26, n=50, p=40)
    ws = np.array([0, 1, 2, 3, 5, 7, 9, 11, 20, 33], dtype=np.int64)
    coef0 = np.zeros(40)
    coef0[[1, 9, 20, 38]] = [0.5, 1.0, -0.2, 0.3]  # 38: outside ws, stays; 9: constant
    outs = []
    for fn in (_enet_ws_inner_kernel.jitted, _enet_ws_inner_kernel.py_func,
               _enet_ws_inner_numpy):
        args = _kernel_inputs(X, y, w, 4.0, 0.5, coef0)
        X_, _, w_, xbar, h, coef, r, lam1, lam2, _ = args
        epochs, gap = fn(X_, w_, xbar, h, coef, r, lam1, lam2, ws, max_epochs,
                         tol_abs * np.sum(w * y * y), anderson)
        outs.append((epochs, gap, coef, r))
    (e0, g0, c0, r0), *rest = outs
    assert c0[9] == 0.0 and c0[38] == 0.3
    for e, g, c, r in rest:
        assert e == e0
        np.testing.assert_allclose(c, c0, rtol=0, atol=1e-10)
        np.testing.assert_allclose(r, r0, rtol=0, atol=1e-10)
        np.testing.assert_allclose(g, g0, rtol=1e-6, atol=1e-10)
    if tol_abs == 0.0:
        assert e0 == max_epochs


@needs_numba
def test_anderson_weights_solver():
    from mixstat.primitives._lasso import _solve_spd_ones

    rng = np.random.default_rng(3)
    U = rng.normal(size=(4, 12))
    C = U @ U.T
    for fn in (_solve_spd_ones.jitted, _solve_spd_ones.py_func):
        z = np.empty(4)
        assert fn(C, z)
        ref = np.linalg.solve(C, np.ones(4))
        np.testing.assert_allclose(z, ref / ref.sum(), rtol=1e-7)
        assert not fn(np.zeros((4, 4)), z)  # singular: no extrapolation
