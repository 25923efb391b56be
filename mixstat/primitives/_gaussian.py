"""Gaussian log-densities and the closed-form integrals of products of
Gaussians, against the array API.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace

__all__ = [
    "normal_log_density",
    "gaussian_log_density",
    "gaussian_product_log_integral",
]

_LOG_2PI = math.log(2.0 * math.pi)


def normal_log_density(y, mean, var):
    r"""Univariate normal log-density :math:`\log N(y; \mu, \sigma^2)`, broadcast.

    Parameters
    ----------
    y, mean, var : arrays broadcastable to one shape (``var > 0``).
    """
    xp = array_namespace(y, mean, var)
    return -0.5 * (_LOG_2PI + xp.log(var) + (y - mean) ** 2 / var)


def _batched(fn, a, xp):
    """``fn`` (a ``numpy.linalg`` function name) on a stack of matrices.

    Dask's linear algebra takes 2-D input only (and array-api-compat 1.16's
    Dask ``cholesky`` returns the upper factor): the covariance parameters
    are small, so for Dask they are computed and factorised with NumPy, then
    wrapped back as a Dask array.
    """
    if not _is_dask(a):
        return getattr(xp.linalg, fn)(a)
    import dask.array as da
    import numpy as np

    return da.from_array(getattr(np.linalg, fn)(np.asarray(a.compute())))


def _is_dask(a):
    return type(a).__module__.startswith("dask")


def _cholesky(a, xp):
    """Lower Cholesky factor, with a ValueError naming the problem when a
    covariance matrix is not positive definite."""
    try:
        return _batched("cholesky", a, xp)
    except Exception as exc:  # numpy LinAlgError, torch _LinAlgError, ...
        if "LinAlgError" in type(exc).__name__ or "positive" in str(exc).lower():
            raise ValueError(
                "covariance matrices must be symmetric positive definite "
                f"(Cholesky failed: {exc})"
            ) from exc
        raise


def _as_full(covariances, covariance_type, n_features, xp):
    """(K, d, d) covariance matrices from any of the three parameterisations."""
    if covariance_type == "full":
        return covariances
    eye = xp.eye(n_features, dtype=covariances.dtype)
    if covariance_type == "diag":
        return covariances[:, :, None] * eye
    if covariance_type == "spherical":
        return covariances[:, None, None] * eye
    raise ValueError(
        f"covariance_type must be 'full', 'diag' or 'spherical', got {covariance_type!r}"
    )


def gaussian_log_density(X, means, covariances, covariance_type="full"):
    r"""Log-density of each sample under each Gaussian component.

    .. math:: \log N(x_i; \mu_k, \Sigma_k) = -\tfrac12\big(d\log 2\pi
        + \log|\Sigma_k| + (x_i-\mu_k)^\top \Sigma_k^{-1}(x_i-\mu_k)\big)

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    means : array of shape (n_components, n_features)
    covariances : array
        (K, d, d) for 'full', (K, d) for 'diag', (K,) for 'spherical'.
    covariance_type : {'full', 'diag', 'spherical'}

    Returns
    -------
    array of shape (n_samples, n_components)
    """
    xp = array_namespace(X, means, covariances)
    d = X.shape[1]
    diff = X[:, None, :] - means[None, :, :]  # (n, K, d)
    if covariance_type == "diag":
        maha = xp.sum(diff**2 / covariances[None, :, :], axis=2)
        logdet = xp.sum(xp.log(covariances), axis=1)
    elif covariance_type == "spherical":
        maha = xp.sum(diff**2, axis=2) / covariances[None, :]
        logdet = d * xp.log(covariances)
    elif covariance_type == "full":
        chol = _cholesky(covariances, xp)  # (K, d, d), lower
        prec_chol = _batched("inv", chol, xp)  # L^{-1}
        # z = L^{-1} (x - mu), as (K, n, d) by one batched product: O(n K d) memory
        z = xp.matmul(xp.permute_dims(diff, (1, 0, 2)), xp.matrix_transpose(prec_chol))
        maha = xp.permute_dims(xp.sum(z**2, axis=2), (1, 0))
        diag = xp.stack([chol[:, j, j] for j in range(d)], axis=1)
        logdet = 2.0 * xp.sum(xp.log(diag), axis=1)
    else:
        raise ValueError(
            f"covariance_type must be 'full', 'diag' or 'spherical', got {covariance_type!r}"
        )
    return -0.5 * (d * _LOG_2PI + logdet[None, :] + maha)


def gaussian_product_log_integral(means_a, cov_a, means_b, cov_b, covariance_type="full"):
    r"""Log of the integrals of products of Gaussian densities, for every pair.

    .. math:: G_{ij} = \int N(x; a_i, A_i)\, N(x; b_j, B_j)\, dx
                     = N(a_i;\, b_j,\, A_i + B_j)

    This is the Gram matrix that normalises a squared mixture,
    :math:`Z = w^\top G w` (Loconte et al., ICLR 2024), and the normaliser of
    a product of Gaussian mixtures.

    Parameters
    ----------
    means_a : (Ka, d); cov_a : covariances of the first set (as in
        :func:`gaussian_log_density`)
    means_b : (Kb, d); cov_b : covariances of the second set
    covariance_type : {'full', 'diag', 'spherical'}

    Returns
    -------
    array of shape (Ka, Kb)
    """
    xp = array_namespace(means_a, cov_a, means_b, cov_b)
    d = means_a.shape[1]
    diff = means_a[:, None, :] - means_b[None, :, :]  # (Ka, Kb, d)
    if covariance_type == "diag":
        s = cov_a[:, None, :] + cov_b[None, :, :]
        maha = xp.sum(diff**2 / s, axis=2)
        logdet = xp.sum(xp.log(s), axis=2)
    elif covariance_type == "spherical":
        s = cov_a[:, None] + cov_b[None, :]
        maha = xp.sum(diff**2, axis=2) / s
        logdet = d * xp.log(s)
    elif covariance_type == "full":
        s = cov_a[:, None, :, :] + cov_b[None, :, :, :]  # (Ka, Kb, d, d)
        chol = _cholesky(s, xp)
        prec_chol = _batched("inv", chol, xp)
        z = xp.matmul(prec_chol, diff[:, :, :, None])[..., 0]  # (Ka, Kb, d)
        maha = xp.sum(z**2, axis=2)
        diag = xp.stack([chol[..., j, j] for j in range(d)], axis=-1)
        logdet = 2.0 * xp.sum(xp.log(diag), axis=-1)
    else:
        raise ValueError(
            f"covariance_type must be 'full', 'diag' or 'spherical', got {covariance_type!r}"
        )
    return -0.5 * (d * _LOG_2PI + logdet + maha)
