"""The device EM (mixstat.moe._em_xp) on torch CPU tensors and array-api-strict:
the same iterates as the CPU EM (Gram form), the same fixed point (FISTA
form), and no array created off the input's device."""

import types
from dataclasses import replace

import numpy as np
import pytest

from mixstat._backend import resolve_backend
from mixstat.datasets import make_khalili_moe
from mixstat.moe import GaussianMoERegressor
from mixstat.moe._em import run_em, state_from_resp
from mixstat.moe._em_xp import run_em_xp
from mixstat.moe._moe import _init_resp


def _problem(shift=0.0, n=600, seed=0):
    X, y = make_khalili_moe(n, random_state=seed)
    X = np.asfortranarray(X + shift)
    sw = np.ones(n)
    est = GaussianMoERegressor(3, alpha=0.02, alpha_gate=0.01)
    cfg = replace(est._make_config(X, y, sw, resolve_backend("numpy")), use_numba=False,
                  fused=False) if hasattr(est, "_make_config") else None
    resp = _init_resp(X, y, sw, cfg, "random", np.random.default_rng(seed), 0)
    state = state_from_resp(X, y, sw, resp, cfg, float(n))
    return X, y, sw, state, cfg


def _strict_backend():
    xp = pytest.importorskip("array_api_strict")
    return types.SimpleNamespace(name="array_api_strict", xp=xp,
                                 asarray=lambda a, dtype=None: xp.asarray(np.asarray(a)))


def _backends():
    out = []
    try:
        out.append(("torch", resolve_backend("torch")))
    except ImportError:
        pass
    try:
        out.append(("array_api_strict", _strict_backend()))
    except pytest.skip.Exception:
        pass
    return out


def _assert_same_state(a, b, atol):
    np.testing.assert_allclose(a.coef, b.coef, atol=atol)
    np.testing.assert_allclose(a.intercept, b.intercept, atol=atol)
    np.testing.assert_allclose(a.gate_coef, b.gate_coef, atol=atol)
    d = a.gate_intercept - b.gate_intercept  # symmetric gates: up to a common shift
    assert np.ptp(d) < atol
    np.testing.assert_allclose(a.var, b.var, rtol=atol)


@pytest.mark.parametrize("shift", [0.0, 4.0])
@pytest.mark.parametrize("name", ["torch", "array_api_strict"])
def test_gram_form_follows_the_cpu_iterates(name, shift):
    backend = dict(_backends()).get(name)
    if backend is None:
        pytest.skip(f"{name} is not installed")
    X, y, sw, state, cfg = _problem(shift)
    for m in (1, 6, 12):  # 6 and 12 include full sweeps after active-set ones
        c = replace(cfg, max_iter=m, tol=0.0)
        a = run_em(X, y, sw, state, c)
        b = run_em_xp(X, y, sw, state, c, backend, solver="gram")
        assert b["n_iter"] == a["n_iter"] == m
        np.testing.assert_allclose(b["history"], a["history"], rtol=1e-10, atol=1e-12)
        _assert_same_state(a["state"], b["state"], 1e-8)
        np.testing.assert_allclose(b["log_resp"], a["log_resp"], atol=1e-8)


def test_both_forms_reach_the_same_fixed_point_at_the_switch(monkeypatch):
    # solver='auto' on one problem with the threshold just at p (Gram form)
    # and just below it (FISTA form): the two M-steps differ, the fixed point
    # does not (the Gram form follows the CPU iterates: tested above)
    import mixstat.moe._em_xp as em_xp

    torch_backend = dict(_backends()).get("torch")
    if torch_backend is None:
        pytest.skip("torch is not installed")
    X, y, sw, state, cfg = _problem(n=300)
    p = X.shape[1]
    c = replace(cfg, max_iter=1500, tol=1e-11)
    out = {}
    for limit, form in ((p, "gram"), (p - 1, "fista")):
        monkeypatch.setattr(em_xp, "_GRAM_MAX_FEATURES", limit)
        assert em_xp.choose_solver(*X.shape, cfg.n_components, torch_backend) == form
        out[form] = run_em_xp(X, y, sw, state, c, torch_backend, inner_steps=20)
    a, b = out["gram"], out["fista"]
    np.testing.assert_allclose(b["objective"], a["objective"], rtol=1e-8)
    np.testing.assert_allclose(b["state"].coef, a["state"].coef, atol=1e-4)
    assert np.all(np.diff(b["history"]) >= -1e-9)
    assert np.all(np.diff(a["history"]) >= -1e-9)


def test_choose_solver_by_features_and_device_memory(monkeypatch):
    import mixstat.moe._em_xp as em_xp

    cpu = resolve_backend("numpy")
    assert em_xp.choose_solver(10**6, 100, 4, cpu) == "gram"
    assert em_xp.choose_solver(10**5, 2048, 4, cpu) == "gram"
    assert em_xp.choose_solver(10**5, 2049, 4, cpu) == "fista"
    assert em_xp.choose_solver(300, 512, 4, cpu) == "gram"  # p > n, small p
    assert em_xp.choose_solver(1000, 1500, 4, cpu) == "fista"  # p > n above 512
    # a device that reports its free memory: the Gram form needs about
    # 8 (2 n p + 2 K p^2 + 12 n K) bytes
    need = 8 * (2 * 10**6 * 100 + 2 * 4 * 100**2 + 12 * 10**6 * 4)
    monkeypatch.setattr(em_xp, "_free_device_bytes", lambda backend: int(need / 0.8) + 1)
    assert em_xp.choose_solver(10**6, 100, 4, cpu) == "gram"
    monkeypatch.setattr(em_xp, "_free_device_bytes", lambda backend: int(need / 0.8) - 1)
    assert em_xp.choose_solver(10**6, 100, 4, cpu) == "fista"


@pytest.mark.parametrize("solver", ["gram", "fista"])
def test_phase_timer_sees_every_phase_and_changes_nothing(solver):
    torch = pytest.importorskip("torch")  # noqa: F841
    X, y, sw, state, cfg = _problem(n=200)
    backend = resolve_backend("torch")
    c = replace(cfg, max_iter=3, tol=0.0)
    seen = []
    ref = run_em_xp(X, y, sw, state, c, backend, solver=solver)
    out = run_em_xp(X, y, sw, state, c, backend, solver=solver, timer=seen.append)
    np.testing.assert_array_equal(out["history"], ref["history"])
    per_iter = ["expert_stats", "expert_solve", "variance"]
    per_iter += ["gate_stats", "gate_cd", "gate_search", "gate"] if solver == "gram" else ["gate"]
    assert seen == ["setup"] + (per_iter + ["e_step"]) * 3


def test_unknown_solver_is_an_error():
    X, y, sw, state, cfg = _problem(n=100)
    with pytest.raises(ValueError, match="solver"):
        run_em_xp(X, y, sw, state, cfg, resolve_backend("numpy"), solver="newton")


@pytest.mark.parametrize("solver", ["gram", "fista"])
def test_device_em_creates_nothing_off_the_input_device(solver):
    # the failure of the first GPU run (a tensor created without device= next to
    # CUDA tensors), reproduced on a CPU: torch's default device is 'meta' while
    # the data live on the CPU, so any tensor created without device= is on
    # 'meta' and mixing it with the data raises
    torch = pytest.importorskip("torch")
    X, y, sw, state, cfg = _problem(n=200)
    backend = resolve_backend("torch")
    c = replace(cfg, max_iter=7, tol=0.0)
    ref = run_em_xp(X, y, sw, state, c, backend, solver=solver)
    assert str(backend.device) == "cpu"
    with torch.device("meta"):
        out = run_em_xp(X, y, sw, state, c, backend, solver=solver)
    np.testing.assert_allclose(out["history"], ref["history"], rtol=1e-12)


def test_estimator_on_torch_tensors_under_a_meta_default_device():
    # the whole fit (validation, initialisation, EM, predict) with CPU tensors in
    # and the torch path asked for (by default CPU tensors take the host path)
    torch = pytest.importorskip("torch")
    X, y = make_khalili_moe(200, random_state=2)
    kw = dict(alpha=0.02, n_init=1, random_state=0, max_iter=30, backend="torch")
    ref = GaussianMoERegressor(2, **kw).fit(X, y)
    with torch.device("meta"):
        est = GaussianMoERegressor(2, **kw).fit(torch.as_tensor(X, device="cpu"),
                                                torch.as_tensor(y, device="cpu"))
        pred = est.predict(torch.as_tensor(X, device="cpu"))
    assert est.backend_ == "torch"
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-12)
    np.testing.assert_allclose(np.asarray(pred), ref.predict(X), atol=1e-10)
