"""KernelMeanMPE's kernel matrices through the array API: torch CPU tensors
give the same estimate as NumPy; asking for CuPy without a GPU fails clearly."""

import numpy as np
import pytest

from mixstat import config_context
from mixstat._backend import cupy_device_available
from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import KernelMeanMPE
from mixstat.mpe._kernel_mean import (
    median_distance,
    mmd_width,
    nystroem_features,
    pivoted_cholesky_features,
    rbf_kernel,
)

try:
    import torch
except ImportError:  # the torch cases skip; the CuPy and name checks still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

FIELDS = ("proportion_", "km1_", "km2_", "kernel_width_", "lambda_", "rank_", "n_qp_",
          "distance_")


@pytest.fixture(scope="module")
def data():
    return make_sumpe_synthetic(0.3, n_component=150, n_mixture=150, random_state=1)


def _same_fit(a, b, rtol=1e-7):
    for f in FIELDS:
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=1e-9,
                                   err_msg=f)


@needs_torch
def test_kernel_helpers_torch_equal_numpy():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(40, 3)), rng.normal(size=(25, 3))
    At, Bt = torch.as_tensor(A), torch.as_tensor(B)
    K = rbf_kernel(A, B, 0.7)
    Kt = rbf_kernel(At, Bt, 0.7)
    assert isinstance(Kt, torch.Tensor) and Kt.dtype == torch.float64
    np.testing.assert_allclose(Kt.numpy(), K, rtol=1e-10, atol=1e-12)
    Z, tr = pivoted_cholesky_features(A, 0.7)
    Zt, trt = pivoted_cholesky_features(At, 0.7)
    assert Zt.shape == Z.shape
    np.testing.assert_allclose(Zt.numpy(), Z, atol=1e-8)
    np.testing.assert_allclose(trt, tr, atol=1e-10)
    # the Nystroem factor reproduces the same Gram matrix
    N = nystroem_features(A, 0.7, 10, np.random.RandomState(3))
    Nt = nystroem_features(At, 0.7, 10, np.random.RandomState(3))
    np.testing.assert_allclose(Nt.numpy() @ Nt.numpy().T, N @ N.T, atol=1e-8)
    f = np.array([0.3, 1.0, 3.0])
    assert mmd_width(A, B, f, np.random.RandomState(1)) == pytest.approx(
        mmd_width(At, Bt, f, np.random.RandomState(1)), rel=1e-12)
    assert median_distance(A, np.random.RandomState(2)) == pytest.approx(
        median_distance(At, np.random.RandomState(2)), rel=1e-12)


@needs_torch
@pytest.mark.parametrize("variant", ["KM1", "KM2"])
def test_torch_tensors_give_the_numpy_estimate(data, variant):
    ref = KernelMeanMPE(variant, random_state=0).fit(data.X, data.y)
    Xt, yt = torch.as_tensor(data.X), torch.as_tensor(data.y)
    est = KernelMeanMPE(variant, random_state=0).fit(Xt, yt)  # namespace -> torch
    assert est.backend_ == "torch"
    assert ref.backend_ in ("numpy", "numba")
    _same_fit(ref, est)
    assert isinstance(est.proportion_, float)
    # NumPy in, backend='torch': computed with torch, stored as host values
    est2 = KernelMeanMPE(variant, backend="torch", random_state=0).fit(data.X, data.y)
    assert est2.backend_ == "torch"
    _same_fit(ref, est2)


@needs_torch
def test_torch_nystroem_and_bootstrap_agree(data):
    kw = dict(approximation="nystroem", n_landmarks=60, n_bootstrap=4, random_state=0)
    ref = KernelMeanMPE(backend="numpy", **kw).fit(data.X, data.y)
    est = KernelMeanMPE(backend="torch", **kw).fit(data.X, data.y)
    assert ref.backend_ == "numpy" and est.backend_ == "torch"
    _same_fit(ref, est, rtol=1e-6)
    np.testing.assert_allclose(est.bootstrap_proportions_, ref.bootstrap_proportions_,
                               rtol=1e-6, atol=1e-9)
    assert isinstance(est.bootstrap_proportions_, np.ndarray)


@needs_torch
def test_config_context_selects_torch(data):
    with config_context(backend="torch", device="cpu"):
        est = KernelMeanMPE(random_state=0).fit(data.X, data.y)
    assert est.backend_ == "torch"


@needs_torch
def test_pickle_and_clone_after_torch_fit(data):
    import pickle

    from sklearn.base import clone

    est = KernelMeanMPE(backend="torch", random_state=0).fit(data.X, data.y)
    back = pickle.loads(pickle.dumps(est))
    assert back.proportion_ == est.proportion_ and back.backend_ == "torch"
    assert clone(est).get_params()["backend"] == "torch"


@pytest.mark.skipif(cupy_device_available(), reason="a CUDA device is present")
def test_cupy_without_gpu_is_a_clear_error(data):
    with pytest.raises((ImportError, ValueError), match="cupy|CuPy"):
        KernelMeanMPE(backend="cupy").fit(data.X, data.y)


def test_bad_backend_name(data):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="backend"):
        KernelMeanMPE(backend="jax").fit(data.X, data.y)
