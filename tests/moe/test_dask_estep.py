"""The documented Dask-array E-step (docs/backends.md, 'Data that does not fit
in memory'): responsibilities and log-likelihood of a fitted Gaussian MoE and
of a squared mixture on a chunked dask array equal the NumPy results."""

import numpy as np
import pytest

from mixstat.circuits import SquaredGaussianMixture
from mixstat.datasets import make_khalili_moe
from mixstat.moe import GaussianMoERegressor
from mixstat.primitives import log_softmax, normal_log_density, responsibilities

da = pytest.importorskip("dask.array", reason="dask is not installed")


@pytest.fixture(scope="module")
def moe():
    X, y = make_khalili_moe(400, random_state=0)
    est = GaussianMoERegressor(2, n_init=1, random_state=0, max_iter=50).fit(X, y)
    return est, X, y


def test_moe_estep_with_the_primitives_on_dask_arrays(moe):
    est, Xn, yn = moe
    X = da.from_array(Xn, chunks=(100, -1))
    y = da.from_array(yn, chunks=100)
    # the snippet of docs/backends.md
    mu = est.intercept_ + X @ est.coef_.T
    var = da.from_array(est.noise_variance_)  # the primitives take one namespace
    log_dens = normal_log_density(y[:, None], mu, var[None, :])
    log_gate = log_softmax(est.gate_intercept_ + X @ est.gate_coef_.T, axis=1)
    log_resp, log_norm = responsibilities(log_dens, log_gate)
    assert isinstance(log_resp, da.Array) and log_resp.chunks[0] == (100,) * 4  # lazy
    resp = da.exp(log_resp)
    # sufficient statistics of one M-step: reductions over the chunks
    resp, ll, Nk, Sx = da.compute(resp, log_norm.sum(), resp.sum(axis=0), resp.T @ X)
    np.testing.assert_allclose(resp, est.predict_posterior(Xn, yn), atol=1e-12)
    np.testing.assert_allclose(ll, est.log_likelihood(Xn, yn), rtol=1e-12)
    post = est.predict_posterior(Xn, yn)
    np.testing.assert_allclose(Nk, post.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(Sx, post.T @ Xn, rtol=1e-10, atol=1e-10)


def test_moe_score_samples_by_map_blocks(moe):
    est, Xn, yn = moe
    Xy = da.from_array(np.c_[Xn, yn], chunks=(100, -1))
    ll = Xy.map_blocks(lambda b: est.score_samples(b[:, :-1], b[:, -1]), drop_axis=1,
                       dtype=np.float64)
    post = Xy.map_blocks(lambda b: est.predict_posterior(b[:, :-1], b[:, -1]),
                         chunks=(100, est.n_components), dtype=np.float64)
    np.testing.assert_allclose(ll.compute(), est.score_samples(Xn, yn), atol=1e-12)
    np.testing.assert_allclose(post.compute(), est.predict_posterior(Xn, yn), atol=1e-12)


def test_squared_mixture_log_density_by_map_blocks():
    rng = np.random.default_rng(0)
    Xn = np.r_[rng.normal(-2, 0.7, (150, 2)), rng.normal(2, 1.0, (150, 2))]
    est = SquaredGaussianMixture(2, random_state=0, max_iter=30).fit(Xn)
    X = da.from_array(Xn, chunks=(64, -1))
    lp = X.map_blocks(est.score_samples, drop_axis=1, dtype=np.float64)
    np.testing.assert_allclose(lp.compute(), est.score_samples(Xn), atol=1e-12)
    np.testing.assert_allclose(float(lp.mean().compute()), est.score(Xn), rtol=1e-12)
