"""CUDA checks of the device paths of the estimators (run by
benchmarks/gpu_suite.py; skipped without CUDA): the Gaussian MoE EM (Gram and
FISTA forms) on torch and CuPy, FISTA on CUDA tensors, MixER on CUDA."""

import warnings
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _moe_problem(n=2000, p=12, seed=0):
    from mixstat.datasets import make_khalili_moe

    rng = np.random.default_rng(seed)
    X, y = make_khalili_moe(n, random_state=seed)
    X = np.c_[X, rng.normal(size=(n, p - X.shape[1]))] + 1.5
    return np.asfortranarray(X), y


def _cupy_or_skip():
    from mixstat._backend import cupy_device_available

    if not cupy_device_available():
        pytest.skip("CuPy with a CUDA device is not available")


def _cuda_backend(name):
    """The resolved 'cupy' backend, or 'torch' on the CUDA device."""
    from mixstat import config_context
    from mixstat._backend import resolve_backend

    if name == "cupy":
        _cupy_or_skip()
        return resolve_backend("cupy")
    with config_context(device="cuda"):
        backend = resolve_backend("torch")
    assert backend.device.type == "cuda"
    return backend


@pytest.mark.parametrize("how", ["torch-tensors", "torch-param", "cupy"])
def test_moe_device_fit_follows_the_numpy_iterates(how):
    from mixstat import config_context
    from mixstat.moe import GaussianMoERegressor

    X, y = _moe_problem()
    kw = dict(alpha=0.02, n_init=1, init="random", random_state=0, max_iter=8, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GaussianMoERegressor(3, backend="numpy", **kw).fit(X, y)
        if how == "torch-tensors":
            est = GaussianMoERegressor(3, **kw).fit(torch.as_tensor(X, device="cuda"),
                                                    torch.as_tensor(y, device="cuda"))
        elif how == "torch-param":
            with config_context(device="cuda"):
                est = GaussianMoERegressor(3, backend="torch", **kw).fit(X, y)
        else:
            _cupy_or_skip()
            import cupy

            est = GaussianMoERegressor(3, **kw).fit(cupy.asarray(X), cupy.asarray(y))
    assert est.backend_ == ("cupy" if how == "cupy" else "torch")
    assert isinstance(est.coef_, np.ndarray)
    np.testing.assert_allclose(est.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(est.gate_coef_, ref.gate_coef_, atol=1e-7)


@pytest.mark.parametrize("name", ["torch", "cupy"])
def test_moe_fista_form_on_cuda(name):
    from mixstat._backend import resolve_backend
    from mixstat.moe import GaussianMoERegressor
    from mixstat.moe._em import run_em, state_from_resp
    from mixstat.moe._em_xp import run_em_xp
    from mixstat.moe._moe import _init_resp

    backend = _cuda_backend(name)
    X, y = _moe_problem(600)
    sw = np.ones(len(y))
    cfg = GaussianMoERegressor(3, alpha=0.02)._make_config(X, y, sw, resolve_backend("numpy"))
    resp = _init_resp(X, y, sw, cfg, "random", np.random.default_rng(0), 0)
    state = state_from_resp(X, y, sw, resp, cfg, float(len(y)))
    c = replace(cfg, max_iter=2000, tol=1e-11)
    a = run_em(X, y, sw, state, c)
    b = run_em_xp(X, y, sw, state, c, backend, solver="fista", inner_steps=20)
    np.testing.assert_allclose(b["objective"], a["objective"], rtol=1e-7)


def test_fista_on_cuda_tensors_equals_cd():
    from mixstat.primitives import weighted_enet_cd, weighted_enet_fista

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=300)
    w = rng.uniform(0.2, 1, 300)
    cd = weighted_enet_cd(X, y, w, lam1=5.0, tol=1e-12, max_iter=10_000)
    t = [torch.as_tensor(a, device="cuda") for a in (X, y, w)]
    fi = weighted_enet_fista(*t, lam1=5.0, tol=1e-12, max_iter=50_000)
    assert fi.coef.device.type == "cuda"
    np.testing.assert_allclose(fi.coef.cpu().numpy(), cd.coef, atol=1e-6)


def test_gram_steps_on_cuda():
    from mixstat.primitives import penalized_multinomial_update
    from mixstat.primitives._gram import multinomial_step_gram

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 6)) + 2.0
    T = rng.dirichlet(np.ones(3), size=500)
    W0 = rng.normal(size=(3, 6)) * 0.1
    ref = penalized_multinomial_update(X, T, W0, np.zeros(3), gamma=3.0, max_iter=1,
                                       cd_max_iter=5, cd_tol=0.0, use_numba=False)
    W, b, f = multinomial_step_gram(torch.as_tensor(X, device="cuda"),
                                    torch.as_tensor(T, device="cuda"), W0, np.zeros(3),
                                    gamma=3.0, cd_max_iter=5, cd_tol=0.0)
    np.testing.assert_allclose(W, ref.coef, atol=1e-9)
    np.testing.assert_allclose(f, ref.objective, rtol=1e-10)


@pytest.mark.parametrize("name", ["torch", "cupy"])
def test_mixer_regressor_on_cuda_equals_numpy(name):
    from mixstat.mixer import MixERRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 3))
    y = np.where(X[:, 0] > 0, 2 * X[:, 1] + 1, -X[:, 2] - 1) + 0.1 * rng.normal(size=800)
    ref = MixERRegressor(2, random_state=0, backend="numpy").fit(X, y)
    if name == "cupy":
        _cupy_or_skip()
        import cupy

        est = MixERRegressor(2, random_state=0).fit(cupy.asarray(X), cupy.asarray(y))
    else:
        est = MixERRegressor(2, random_state=0).fit(torch.as_tensor(X, device="cuda"),
                                                    torch.as_tensor(y, device="cuda"))
    assert est.backend_ == name
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    np.testing.assert_allclose(est.gate_coef_, ref.gate_coef_, atol=1e-8)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), atol=1e-8)


def test_mixer_ode_on_cuda():
    from mixstat.datasets import make_ode_families
    from mixstat.mixer import MixERODE

    d = make_ode_families(("harmonic", "damped_double_well"), 3, 2, t=np.linspace(0, 2, 6),
                          random_state=0)
    kw = dict(n_experts=2, context_dim=1, hidden=8, depth=2, n_outer=3, n_inner=(2, 2),
              gate_every=1, lr=(1e-2, 1e-2), random_state=0, adapt_steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = MixERODE(**kw, device="cpu").fit(d.trajectories, d.t, d.envs)
        gpu = MixERODE(**kw, device="cuda").fit(d.trajectories, d.t, d.envs)
    assert gpu.device_.startswith("cuda")
    assert all(p.device.type == "cpu" for p in gpu.module_.parameters())
    # float32 on two devices: close, not bit-equal
    np.testing.assert_allclose(gpu.env_loss_, cpu.env_loss_, rtol=1e-2, atol=1e-4)
    pred = gpu.predict(d.trajectories[:, 0], d.t, d.envs)
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("name", ["torch", "cupy"])
def test_choose_solver_reads_the_device_memory(name):
    from mixstat.moe import _em_xp

    backend = _cuda_backend(name)
    free = _em_xp._free_device_bytes(backend)
    assert free is not None and free > 0
    assert _em_xp.choose_solver(10**6, 100, 4, backend) == "gram"
    # more than the device holds: the matrix-free form
    n = int(free // (8 * 2 * 1000)) + 1
    assert _em_xp.choose_solver(n, 1000, 4, backend) == "fista"
