"""The E-step primitives on Dask arrays: lazy, chunk by chunk, same numbers
(the out-of-core path documented in docs/backends.md)."""

import numpy as np
import pytest

from mixstat.primitives import gaussian_log_density, logsumexp, responsibilities, softmax

da = pytest.importorskip("dask.array", reason="dask is not installed")


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full"])
def test_estep_on_dask_arrays(rng, covariance_type):
    Xn = rng.normal(size=(400, 3))
    X = da.from_array(Xn, chunks=(100, 3))
    means = rng.normal(size=(2, 3))
    cov = {"diag": rng.uniform(0.5, 2, size=(2, 3)), "spherical": rng.uniform(0.5, 2, size=2),
           "full": np.stack([np.eye(3) * 1.5, np.eye(3) + 0.3])}[covariance_type]
    log_w = np.log([0.3, 0.7])
    lp = gaussian_log_density(X, da.from_array(means), da.from_array(cov), covariance_type)
    log_resp, log_norm = responsibilities(lp, da.from_array(log_w))
    assert isinstance(log_resp, da.Array) and log_resp.chunks[0] == (100,) * 4  # still lazy
    ref_resp, ref_norm = responsibilities(gaussian_log_density(Xn, means, cov, covariance_type),
                                          log_w)
    np.testing.assert_allclose(log_resp.compute(), ref_resp, atol=1e-12)
    np.testing.assert_allclose(float(log_norm.sum().compute()), ref_norm.sum(), rtol=1e-12)
    dense = gaussian_log_density(Xn, means, cov, covariance_type)
    np.testing.assert_allclose(softmax(lp, axis=1).compute(), softmax(dense, axis=1), atol=1e-12)
    np.testing.assert_allclose(logsumexp(lp, axis=1).compute(), logsumexp(dense, axis=1),
                               atol=1e-12)
