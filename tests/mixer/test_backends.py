"""MixER on array-API devices: MixERRegressor with backend= (torch tensors,
array-api-strict for the least-squares experts) equals the NumPy fit;
MixERODE on an explicit torch device."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge

from mixstat import config_context
from mixstat.mixer import MixERRegressor
from mixstat.mixer._regressor import lstsq_experts


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    z = (X[:, 0] > 0).astype(int)
    y = np.where(z, 2 * X[:, 1] + 1, -X[:, 2] - 1) + 0.1 * rng.normal(size=n)
    return X, y


def _same_fit(a, b, atol=1e-9):
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.gate_coef_, b.gate_coef_, atol=atol)
    for ea, eb in zip(a.experts_, b.experts_, strict=True):
        np.testing.assert_allclose(ea.coef_, eb.coef_, atol=atol)
        np.testing.assert_allclose(ea.intercept_, eb.intercept_, atol=atol)
    assert a.n_iter_ == b.n_iter_ and a.n_gate_updates_ == b.n_gate_updates_


@pytest.mark.parametrize("ns", ["numpy", "torch", "array_api_strict"])
def test_lstsq_experts_equal_linear_regression(ns):
    X, y = _data(300)
    X[:, 2] = 2 * X[:, 1]  # rank deficient: the minimum-norm solution, as sklearn
    routes = np.random.default_rng(1).integers(0, 3, 300)
    routes[routes == 2] = 1  # expert 2 receives no row: fitted on all rows
    if ns == "numpy":
        Xa, ya = X, y
    else:
        lib = pytest.importorskip(ns)
        Xa, ya = lib.asarray(X), lib.asarray(y)
    coef, icpt = lstsq_experts(Xa, routes, ya, 3)
    for k, rows in ((0, routes == 0), (1, routes == 1), (2, np.ones(300, bool))):
        ref = LinearRegression().fit(X[rows], y[rows])
        np.testing.assert_allclose(coef[k], ref.coef_, atol=1e-8)
        np.testing.assert_allclose(icpt[k], ref.intercept_, atol=1e-8)
    prev = (np.ones((3, 3)), np.arange(3.0))
    coef2, icpt2 = lstsq_experts(Xa, routes, ya, 3, previous=prev)
    np.testing.assert_array_equal(coef2[2], prev[0][2])  # no rows: keeps its values
    assert icpt2[2] == prev[1][2]


def test_regressor_torch_backend_equals_numpy():
    torch = pytest.importorskip("torch")
    X, y = _data()
    ref = MixERRegressor(2, random_state=0, backend="numpy").fit(X, y)
    by_param = MixERRegressor(2, random_state=0, backend="torch").fit(X, y)
    by_input = MixERRegressor(2, random_state=0).fit(torch.as_tensor(X), torch.as_tensor(y))
    with config_context(backend="torch"):
        by_config = MixERRegressor(2, random_state=0).fit(X, y)
    for est in (by_param, by_input, by_config):
        assert est.backend_ == "torch"
        assert isinstance(est.gate_coef_, np.ndarray) and isinstance(est.labels_, np.ndarray)
        _same_fit(est, ref)
    pred = by_input.predict(torch.as_tensor(X))
    assert isinstance(pred, np.ndarray)
    np.testing.assert_allclose(pred, ref.predict(X), atol=1e-9)
    assert by_input.score(torch.as_tensor(X), torch.as_tensor(y)) == pytest.approx(
        ref.score(X, y), abs=1e-12)
    # fitted attributes are host objects: clone and pickle work
    back = pickle.loads(pickle.dumps(by_param))
    np.testing.assert_allclose(back.predict(X), ref.predict(X), atol=1e-9)
    assert clone(by_param).get_params()["backend"] == "torch"


def test_regressor_user_expert_on_a_device_backend():
    # a scikit-learn expert is fitted on the host; the K-means gate on the device
    pytest.importorskip("torch")
    X, y = _data()
    ref = MixERRegressor(2, expert=Ridge(1.0), random_state=0, backend="numpy").fit(X, y)
    dev = MixERRegressor(2, expert=Ridge(1.0), random_state=0, backend="torch").fit(X, y)
    assert dev.backend_ == "torch"
    _same_fit(dev, ref)


def test_regressor_host_backends_record_numpy():
    X, y = _data(200)
    for b in ("numpy", "numba", None):
        try:
            est = MixERRegressor(2, random_state=0, backend=b).fit(X, y)
        except (ImportError, ValueError):  # numba absent / disabled
            continue
        assert est.backend_ == "numpy"
    with pytest.raises(ValueError, match="backend"):
        MixERRegressor(backend="jax").fit(X, y)


def test_regressor_torch_creates_nothing_off_the_input_device():
    torch = pytest.importorskip("torch")
    X, y = _data(300)
    ref = MixERRegressor(2, random_state=0, backend="numpy").fit(X, y)
    with torch.device("meta"):
        est = MixERRegressor(2, random_state=0).fit(torch.as_tensor(X, device="cpu"),
                                                    torch.as_tensor(y, device="cpu"))
    _same_fit(est, ref)


# ------------------------------------------------------------------ MixERODE
SMALL = dict(n_experts=2, context_dim=1, hidden=8, depth=2, n_outer=3, n_inner=(2, 2),
             gate_every=1, lr=(1e-2, 1e-2), random_state=0, adapt_steps=3)


@pytest.fixture(scope="module")
def ode_data():
    from mixstat.datasets import make_ode_families

    return make_ode_families(("harmonic", "damped_double_well"), 3, 2,
                             t=np.linspace(0, 2, 6), random_state=0)


def test_ode_explicit_device_equals_default(ode_data):
    torch = pytest.importorskip("torch")
    from mixstat.mixer import MixERODE

    d = ode_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MixERODE(**SMALL).fit(d.trajectories, d.t, d.envs)
        # every tensor must be created on the model's device: with the default
        # device set to 'meta', one created without device= would fail
        with torch.device("meta"):
            dev = MixERODE(**SMALL, device="cpu").fit(d.trajectories, d.t, d.envs)
            pred = dev.predict(d.trajectories[:, 0], d.t, d.envs)
    assert ref.device_ == "cpu" and dev.device_ == "cpu"
    np.testing.assert_allclose(dev.contexts_, ref.contexts_, atol=1e-6)
    np.testing.assert_allclose(dev.env_loss_, ref.env_loss_, rtol=1e-5)
    np.testing.assert_allclose(pred, ref.predict(d.trajectories[:, 0], d.t, d.envs),
                               atol=1e-5)
    assert all(p.device.type == "cpu" for p in dev.module_.parameters())
    pickle.loads(pickle.dumps(dev))


def test_ode_bad_device(ode_data):
    pytest.importorskip("torch")
    from mixstat.mixer import MixERODE

    d = ode_data
    with pytest.raises(ValueError, match="device"):
        MixERODE(**SMALL, device="nonsense").fit(d.trajectories, d.t, d.envs)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            MixERODE(**SMALL, device="cuda").fit(d.trajectories, d.t, d.envs)
