"""The ``backend`` parameter of every MPE estimator (issue #7): resolved in
fit, recorded in ``backend_``; torch tensors accepted (the classifier and the
score rules run on the host) and giving the same estimate as NumPy input."""

import numpy as np
import pytest

from mixstat import config_context
from mixstat._backend import cupy_device_available, has_module, numba_available
from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    KernelMeanMPE,
    ROCMPE,
    RegroupingMPE,
    SubsamplingMPE,
    TIcEMPE,
    mixture_proportion,
)


def _estimators():
    return {
        "ROC": ROCMPE(),
        "BBE": BestBinMPE(),
        "EN": ElkanNotoMPE(),
        "DEDPUL": DEDPULMPE(),
        "TIcE": TIcEMPE(),
        "KM": KernelMeanMPE(),
        "SuMPE": SubsamplingMPE(ROCMPE(), acceptance=lambda X: np.full(len(X), 0.8)),
        "ReCPE": RegroupingMPE(BestBinMPE()),
    }


NAMES = list(_estimators())


@pytest.fixture(scope="module")
def data():
    d = make_sumpe_synthetic(0.3, n_component=150, n_mixture=150, random_state=2)
    return d.X, d.y


@pytest.mark.parametrize("name", NAMES)
def test_backend_parameter_resolved_and_recorded(name, data):
    X, y = data
    est = _estimators()[name].set_params(random_state=0)
    assert est.get_params()["backend"] is None
    est.fit(X, y)
    assert est.backend_ == ("numba" if numba_available() else "numpy")
    a = _estimators()[name].set_params(random_state=0, backend="numpy").fit(X, y)
    assert a.backend_ == "numpy"
    assert a.proportion_ == pytest.approx(est.proportion_, abs=1e-9)
    with config_context(backend="numpy"):
        b = _estimators()[name].set_params(random_state=0).fit(X, y)
    assert b.backend_ == "numpy"


@pytest.mark.parametrize("name", NAMES)
def test_bad_backend_value_raises(name, data):
    X, y = data
    with pytest.raises(ValueError, match="backend"):
        _estimators()[name].set_params(backend="jax").fit(X, y)


@pytest.mark.skipif(cupy_device_available(), reason="a CUDA device is present")
def test_cupy_without_gpu_is_a_clear_error(data):
    X, y = data
    with pytest.raises((ValueError, ImportError), match="(?i)cupy"):
        BestBinMPE(backend="cupy").fit(X, y)


@pytest.mark.skipif(not has_module("torch"), reason="torch is not installed")
@pytest.mark.parametrize("name", NAMES)
def test_torch_cpu_tensors_give_the_numpy_estimate(name, data):
    import torch

    X, y = data
    ref = _estimators()[name].set_params(random_state=0, backend="numpy").fit(X, y)
    est = _estimators()[name].set_params(random_state=0)
    est.fit(torch.as_tensor(X), torch.as_tensor(y))
    assert est.backend_ == "torch"
    assert isinstance(est.proportion_, float)
    # KM computes its kernels with torch (another summation order): not bitwise
    assert est.proportion_ == pytest.approx(ref.proportion_, abs=1e-6)


@pytest.mark.skipif(not has_module("torch"), reason="torch is not installed")
def test_meta_estimator_hands_its_backend_to_the_base(data):
    import torch

    X, y = data
    est = RegroupingMPE(KernelMeanMPE(), random_state=0).fit(torch.as_tensor(X),
                                                             torch.as_tensor(y))
    assert est.backend_ == "torch"
    assert est.base_estimator_.backend_ == "torch"
    k = mixture_proportion(torch.as_tensor(X[y == 1]), torch.as_tensor(X[y == 0]),
                           method="BBE", random_state=0, return_estimator=True)
    assert k[1].backend_ == "torch"
    assert k[0] == pytest.approx(mixture_proportion(X[y == 1], X[y == 0], method="BBE",
                                                    random_state=0))
