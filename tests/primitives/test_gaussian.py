"""Gaussian log-densities and product integrals against SciPy and quadrature."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from mixstat.primitives import (
    gaussian_log_density,
    gaussian_product_log_integral,
    normal_log_density,
)


def _random_params(rng, K, d, covariance_type):
    means = rng.normal(size=(K, d)) * 2
    if covariance_type == "full":
        A = rng.normal(size=(K, d, d))
        cov = A @ np.transpose(A, (0, 2, 1)) + 0.3 * np.eye(d)
    elif covariance_type == "diag":
        cov = rng.uniform(0.2, 3.0, size=(K, d))
    else:
        cov = rng.uniform(0.2, 3.0, size=K)
    return means, cov


def _full(cov, covariance_type, d):
    if covariance_type == "full":
        return cov
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(d) for c in cov])


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from(["full", "diag", "spherical"]))
def test_gaussian_log_density_equals_scipy(seed, K, d, covariance_type):
    rng = np.random.default_rng(seed)
    means, cov = _random_params(rng, K, d, covariance_type)
    X = rng.normal(size=(9, d)) * 3
    got = gaussian_log_density(X, means, cov, covariance_type)
    full = _full(cov, covariance_type, d)
    expected = np.column_stack(
        [stats.multivariate_normal(means[k], full[k]).logpdf(X).reshape(-1) for k in range(K)]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_gaussian_log_density_namespaces(ns, rng, covariance_type):
    means, cov = _random_params(rng, 3, 2, covariance_type)
    X = rng.normal(size=(6, 2))
    out = gaussian_log_density(ns.asarray(X), ns.asarray(means), ns.asarray(cov), covariance_type)
    assert ns.is_native(out)
    np.testing.assert_allclose(ns.to_numpy(out), gaussian_log_density(X, means, cov, covariance_type),
                               rtol=1e-12)


def test_gaussian_log_density_gradient_wrt_mean():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    means, cov = _random_params(rng, 2, 3, "full")
    X = rng.normal(size=(4, 3))
    m = torch.tensor(means, requires_grad=True)
    gaussian_log_density(torch.tensor(X), m, torch.tensor(cov), "full").sum().backward()
    # d/dmu_k sum_i log N(x_i; mu_k, S_k) = S_k^{-1} sum_i (x_i - mu_k)
    expected = np.stack([np.linalg.solve(cov[k], (X - means[k]).sum(axis=0)) for k in range(2)])
    np.testing.assert_allclose(m.grad.numpy(), expected, rtol=1e-10)


def test_gaussian_errors():
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="covariance_type"):
        gaussian_log_density(X, np.zeros((1, 2)), np.ones((1, 2)), "tied")
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_log_density(X, np.zeros((1, 2)), -np.eye(2)[None], "full")
    with pytest.raises(ValueError, match="covariance_type"):
        gaussian_product_log_integral(np.zeros((1, 2)), np.ones(1), np.zeros((1, 2)),
                                      np.ones(1), "bad")


def test_normal_log_density(ns, rng):
    y = rng.normal(size=(5, 1))
    mu = rng.normal(size=(1, 3))
    var = rng.uniform(0.5, 2, size=(1, 3))
    out = normal_log_density(ns.asarray(y), ns.asarray(mu), ns.asarray(var))
    assert ns.is_native(out)
    np.testing.assert_allclose(ns.to_numpy(out), stats.norm(mu, np.sqrt(var)).logpdf(y), rtol=1e-12)


# ------------------------------------------------------ product integral ---
def _pdf1(x, m, v):
    return np.exp(-0.5 * (x - m) ** 2 / v) / np.sqrt(2 * np.pi * v)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_product_integral_1d_quadrature(rng, covariance_type):
    ma, ca = _random_params(rng, 2, 1, covariance_type)
    mb, cb = _random_params(rng, 3, 1, covariance_type)
    got = gaussian_product_log_integral(ma, ca, mb, cb, covariance_type)
    fa, fb = _full(ca, covariance_type, 1), _full(cb, covariance_type, 1)
    for i in range(2):
        for j in range(3):
            def f(x, i=i, j=j):
                return (_pdf1(x, ma[i, 0], fa[i, 0, 0]) * _pdf1(x, mb[j, 0], fb[j, 0, 0]))
            val, _ = integrate.quad(f, -40, 40, points=[ma[i, 0], mb[j, 0]],
                                    epsabs=1e-14, epsrel=1e-11, limit=200)
            np.testing.assert_allclose(np.exp(got[i, j]), val, rtol=1e-7)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_product_integral_2d_quadrature(covariance_type):
    rng = np.random.default_rng(3)
    ma, ca = _random_params(rng, 1, 2, covariance_type)
    mb, cb = _random_params(rng, 2, 2, covariance_type)
    ma[:] = 0.5
    mb *= 0.5
    got = gaussian_product_log_integral(ma, ca, mb, cb, covariance_type)
    fa, fb = _full(ca, covariance_type, 2), _full(cb, covariance_type, 2)
    # numerical quadrature: a fine rectangle rule on a wide box (spectrally
    # accurate for smooth integrands that vanish at the border)
    g = np.linspace(-14, 14, 561)
    h = g[1] - g[0]
    XX = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    pa = stats.multivariate_normal(ma[0], fa[0]).pdf(XX)
    for j in range(2):
        pb = stats.multivariate_normal(mb[j], fb[j]).pdf(XX)
        val = np.sum(pa * pb) * h * h
        np.testing.assert_allclose(np.exp(got[0, j]), val, rtol=1e-6)


def test_product_integral_closed_form_and_namespaces(ns, rng):
    ma, ca = _random_params(rng, 2, 3, "full")
    mb, cb = _random_params(rng, 2, 3, "full")
    got = gaussian_product_log_integral(ns.asarray(ma), ns.asarray(ca), ns.asarray(mb),
                                        ns.asarray(cb), "full")
    assert ns.is_native(got)
    expected = np.array([[stats.multivariate_normal(mb[j], ca[i] + cb[j]).logpdf(ma[i])
                          for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(ns.to_numpy(got), expected, rtol=1e-10)
    # symmetric: G(a, b) = G(b, a)^T
    back = gaussian_product_log_integral(mb, cb, ma, ca, "full")
    np.testing.assert_allclose(back, expected.T, rtol=1e-10)
