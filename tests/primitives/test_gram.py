"""Covariance-form (Gram) steps for device arrays: the same iterates as the
n x p computations (coordinate descent, the proximal-Newton gate step)."""

import numpy as np
import pytest

from mixstat.primitives import penalized_multinomial_update, weighted_enet_cd
from mixstat.primitives._gram import gram_enet, multinomial_step_gram, weighted_gram_stats


def _data(rng, n=300, p=8, shift=3.0):
    X = rng.normal(size=(n, p)) + shift  # off-centre: the centring must be exact
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=n)
    w = rng.uniform(0.1, 1.0, size=n)
    return X, y, w


def test_weighted_gram_stats_are_the_centred_moments(ns, rng):
    X, y, w = _data(rng)
    W = np.c_[w, 1 - w]
    st = weighted_gram_stats(ns.asarray(X), ns.asarray(W), ns.asarray(y[:, None]))
    for k in range(2):
        S = W[:, k].sum()
        xbar = W[:, k] @ X / S
        Xc = X - xbar
        ybar = W[:, k] @ y / S
        np.testing.assert_allclose(st["sw"][k], S, rtol=1e-13)
        np.testing.assert_allclose(st["xbar"][k], xbar, rtol=1e-12)
        np.testing.assert_allclose(st["gram"][k], Xc.T @ (W[:, k, None] * Xc), rtol=1e-9,
                                   atol=1e-9 * S)
        np.testing.assert_allclose(st["cross"][k], Xc.T @ (W[:, k] * (y - ybar)), rtol=1e-9,
                                   atol=1e-9 * S)
        np.testing.assert_allclose(st["ss"][k], W[:, k] @ (y - ybar) ** 2, rtol=1e-10)
        np.testing.assert_allclose(st["raw"][k], W[:, k] @ X**2, rtol=1e-12)


@pytest.mark.parametrize("max_iter, tol", [(1, 0.0), (3, 0.0), (1000, 1e-4), (5000, 1e-12)])
@pytest.mark.parametrize("use_numba", [False, None])
def test_gram_enet_equals_cd_on_the_data(rng, max_iter, tol, use_numba):
    X, y, w = _data(rng)
    coef0 = rng.normal(size=X.shape[1]) * 0.1
    ref = weighted_enet_cd(X, y, w, lam1=20.0, lam2=0.5, coef=coef0, max_iter=max_iter,
                           tol=tol, use_numba=use_numba)
    st = weighted_gram_stats(X, w[:, None], y[:, None])
    coef = gram_enet(st["gram"][0], st["cross"][0], 20.0, 0.5, coef=coef0, raw=st["raw"][0],
                     ss=st["ss"][0], max_iter=max_iter, tol=tol)
    np.testing.assert_allclose(coef, ref.coef, atol=1e-11)
    b = st["zbar"][0] - st["xbar"][0] @ coef
    np.testing.assert_allclose(b, ref.intercept, atol=1e-10)


def test_gram_enet_rank_deficient_constant_column_and_features(rng):
    # p > n (singular Gram), a constant column (its coefficient stays 0), and
    # a restriction to some coordinates
    n, p = 20, 30
    X = rng.normal(size=(n, p))
    X[:, 3] = 2.5
    y = X[:, 0] + 0.1 * rng.normal(size=n)
    w = rng.uniform(0.5, 1, n)
    coef0 = np.zeros(p)
    coef0[3] = 0.7  # must be reset to 0 (constant column), as CD does
    feats = np.arange(0, p, 2)
    ref = weighted_enet_cd(X, y, w, lam1=0.05, coef=coef0, max_iter=200, tol=0.0,
                           features=feats, use_numba=False)
    st = weighted_gram_stats(X, w[:, None], y[:, None])
    coef = gram_enet(st["gram"][0], st["cross"][0], 0.05, 0.0, coef=coef0, raw=st["raw"][0],
                     ss=st["ss"][0], max_iter=200, tol=0.0, features=feats)
    assert coef[3] == 0.0
    np.testing.assert_allclose(coef[feats], np.asarray(ref.coef)[feats], atol=1e-7)


@pytest.mark.parametrize("cd_max_iter, cd_tol", [(5, 0.0), (5, 1e-4), (300, 1e-12)])
def test_multinomial_step_gram_equals_the_numpy_gate_step(ns, rng, cd_max_iter, cd_tol):
    X, _, s = _data(rng, n=400, p=6)
    T = rng.dirichlet(np.ones(3), size=400)
    W0 = rng.normal(size=(3, 6)) * 0.1
    b0 = np.array([0.2, -0.1, 0.0])
    for gamma, rho in ((5.0, 0.0), (0.0, 2.0), (3.0, 1.0)):
        ref = penalized_multinomial_update(X, T, W0, b0, gamma=gamma, rho=rho, sample_weight=s,
                                           max_iter=1, cd_max_iter=cd_max_iter, cd_tol=cd_tol,
                                           use_numba=False)
        W, b, f = multinomial_step_gram(ns.asarray(X), ns.asarray(T), W0, b0, gamma=gamma,
                                        rho=rho, sample_weight=ns.asarray(s),
                                        cd_max_iter=cd_max_iter, cd_tol=cd_tol)
        assert isinstance(W, np.ndarray)
        np.testing.assert_allclose(W, ref.coef, atol=1e-9)
        # the symmetric parameterisation: intercepts up to a common shift
        d = b - ref.intercept
        assert np.ptp(d) < 1e-9
        np.testing.assert_allclose(f, ref.objective, rtol=1e-10)


def test_gram_steps_create_arrays_on_the_input_device(rng):
    # torch's default device set to 'meta': a tensor created without device=
    # would land there and mixing it with the CPU inputs raises
    torch = pytest.importorskip("torch")
    X, y, w = _data(rng, n=200, p=5)
    T = rng.dirichlet(np.ones(2), size=200)
    with torch.device("meta"):
        Xt = torch.as_tensor(X, device="cpu")
        st = weighted_gram_stats(Xt, torch.as_tensor(w[:, None], device="cpu"),
                                 torch.as_tensor(y[:, None], device="cpu"))
        W, b, f = multinomial_step_gram(Xt, torch.as_tensor(T, device="cpu"), np.zeros((2, 5)),
                                        np.zeros(2), gamma=1.0, cd_max_iter=5)
    assert np.isfinite(st["gram"]).all() and np.isfinite(W).all() and np.isfinite(f)


def test_weighted_gram_stats_extra_columns_ride_along(ns, rng):
    # extra columns: their products with X and their sums come back with the
    # Gram statistics, and the statistics themselves are unchanged
    X, y, w = _data(rng)
    W = np.c_[w, 1 - w]
    E = rng.normal(size=(X.shape[0], 3))
    base = weighted_gram_stats(ns.asarray(X), ns.asarray(W), ns.asarray(y[:, None] + 0 * W))
    st = weighted_gram_stats(ns.asarray(X), ns.asarray(W), ns.asarray(y[:, None] + 0 * W),
                             extra=ns.asarray(E))
    np.testing.assert_allclose(st["extra_xt"], E.T @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st["extra_sum"], E.sum(axis=0), rtol=1e-12, atol=1e-12)
    for key in ("sw", "xbar", "gram", "raw", "zbar", "cross", "ss"):
        # rounding only (the products are blocked differently)
        np.testing.assert_allclose(st[key], base[key], rtol=1e-10, atol=1e-9 * len(w))
    assert "extra_xt" not in base


def test_gram_steps_synchronise_once_per_phase(rng, monkeypatch):
    # the device statistics come back in one transfer, and the gate step (its
    # statistics, gradient and objective; then its two trial points) in two
    import mixstat.primitives._gram as g

    torch = pytest.importorskip("torch")
    calls = []
    real = g.to_numpy
    monkeypatch.setattr(g, "to_numpy", lambda a: calls.append(a.shape) or real(a))
    X, y, w = _data(rng, n=200, p=5)
    Xt = torch.as_tensor(X)
    weighted_gram_stats(Xt, torch.as_tensor(np.c_[w, 1 - w]), torch.as_tensor(np.c_[y, y]))
    assert len(calls) == 1
    calls.clear()
    T = rng.dirichlet(np.ones(3), size=200)
    multinomial_step_gram(Xt, torch.as_tensor(T), np.zeros((3, 5)), np.zeros(3), gamma=1.0,
                          cd_max_iter=5)
    assert len(calls) == 2


def test_multinomial_step_gram_backtracks_like_the_numpy_step(ns, rng, monkeypatch):
    # a far-off start with a large penalty: the full step is refused and the
    # line search goes on one trial point at a time
    import mixstat.primitives._gram as g

    calls = []
    real = g.to_numpy
    monkeypatch.setattr(g, "to_numpy", lambda a: calls.append(1) or real(a))
    X, _, s = _data(rng, n=300, p=5)
    T = rng.dirichlet(np.ones(3) * 0.2, size=300)
    W0 = rng.normal(size=(3, 5)) * 3.0
    b0 = np.array([9.0, -6.0, 1.5])
    ref = penalized_multinomial_update(X, T, W0, b0, gamma=40.0, sample_weight=s, max_iter=1,
                                       cd_max_iter=5, cd_tol=0.0, use_numba=False)
    W, b, f = multinomial_step_gram(ns.asarray(X), ns.asarray(T), W0, b0, gamma=40.0,
                                    sample_weight=ns.asarray(s), cd_max_iter=5, cd_tol=0.0)
    assert len(calls) > 3  # statistics, the first two trial points, more trials
    np.testing.assert_allclose(W, ref.coef, atol=1e-9)
    assert np.ptp(b - ref.intercept) < 1e-9
    np.testing.assert_allclose(f, ref.objective, rtol=1e-10)
