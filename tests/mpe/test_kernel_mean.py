"""KM1/KM2: the QP solver, the kernel factor, the estimates."""

import numpy as np
import pytest
from scipy.optimize import minimize

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import KernelMeanMPE, simplex_nearest_point
from mixstat.mpe import _kernel_mean as KM
from mixstat.mpe._kernel_mean import (
    _start_factor,
    _wolfe_kernel,
    nystroem_features,
    pivoted_cholesky_features,
    rbf_kernel,
)


def _slsqp_distance(Z, b):
    n = len(Z)
    res = minimize(lambda u: np.sum((Z.T @ u - b) ** 2), np.full(n, 1 / n),
                   jac=lambda u: 2 * Z @ (Z.T @ u - b), method="SLSQP",
                   bounds=[(0, 1)] * n,
                   constraints=[{"type": "eq", "fun": lambda u: u.sum() - 1}],
                   options={"ftol": 1e-14, "maxiter": 500})
    return np.sqrt(res.fun)


@pytest.mark.parametrize("seed", range(4))
def test_wolfe_matches_slsqp(seed):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(40, 5))
    b = rng.normal(size=5) * 3  # mostly outside the hull
    d, (S, w), _ = simplex_nearest_point(Z, b)
    assert d == pytest.approx(_slsqp_distance(Z, b), abs=1e-6)
    assert np.all(w > 0) and w.sum() == pytest.approx(1.0)
    assert np.linalg.norm(w @ Z[S] - b) == pytest.approx(d, abs=1e-10)


def test_wolfe_inside_hull_is_zero_and_warm_start_agrees():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(60, 3))
    b = Z[:10].mean(0)
    d, state, _ = simplex_nearest_point(Z, b)
    assert d < 1e-6
    b2 = b + np.array([5.0, 0, 0])
    cold, _, _ = simplex_nearest_point(Z, b2)
    warm, _, _ = simplex_nearest_point(Z, b2, start=state)
    assert warm == pytest.approx(cold, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_nnls_solver_matches_wolfe_and_slsqp(seed):
    # the NNLS reformulation min_{v>=0} |(Z-b)^T v|^2 + (1 - 1^T v)^2 is exact:
    # v / sum(v) are the nearest point's weights
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(40, 5))
    b = rng.normal(size=5) * 3
    d, (S, w), _ = simplex_nearest_point(Z, b, method="nnls")
    assert d == pytest.approx(_slsqp_distance(Z, b), abs=1e-6)
    assert d == pytest.approx(simplex_nearest_point(Z, b)[0], abs=1e-9)
    assert np.all(w > 0) and w.sum() == pytest.approx(1.0)
    assert np.linalg.norm(w @ Z[S] - b) == pytest.approx(d, abs=1e-10)


def test_nnls_solver_inside_hull_and_high_rank():
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(80, 60))  # many points active
    b = Z[:50].mean(0)
    assert simplex_nearest_point(Z, b, method="nnls")[0] < 1e-8
    b2 = 1.5 * Z[:50].mean(0) - 0.5 * Z[50:].mean(0)
    a = simplex_nearest_point(Z, b2, method="nnls")[0]
    assert a == pytest.approx(simplex_nearest_point(Z, b2, method="wolfe")[0], abs=1e-8)
    with pytest.raises(ValueError, match="method"):
        simplex_nearest_point(Z, b2, method="cvxopt")


def test_qp_solvers_give_the_same_estimate():
    rng = np.random.default_rng(0)
    Xh = rng.normal(size=(120, 5))
    Xf = np.r_[rng.normal(size=(40, 5)), rng.normal(size=(80, 5)) + 1.5]
    X, y = np.r_[Xh, Xf], np.r_[np.ones(120, int), np.zeros(120, int)]
    w = KernelMeanMPE(qp_solver="wolfe", random_state=0).fit(X, y)
    n = KernelMeanMPE(qp_solver="nnls", random_state=0).fit(X, y)
    assert (w.qp_solver_, n.qp_solver_) == ("wolfe", "nnls")
    assert n.km1_ == pytest.approx(w.km1_, abs=1e-6)
    assert n.km2_ == pytest.approx(w.km2_, abs=1e-6)
    assert KernelMeanMPE(random_state=0).fit(X, y).qp_solver_ == "wolfe"


def test_numba_kernel_equals_python():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(30, 4))
    b = rng.normal(size=4) * 2
    S0, w0 = np.array([0], dtype=np.int64), np.ones(1)
    E = np.zeros((0, 0))
    a = _wolfe_kernel(Z, b, E, S0, w0, E, 1e-12, 1000)
    p = _wolfe_kernel.py_func(Z, b, E, S0, w0, E, 1e-12, 1000)
    assert a[0] == pytest.approx(p[0], abs=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_gram_path_equals_factor_path(seed):
    # the Gram-matrix path (inner products read from G = Z Z^T, the warm
    # start's factor by LAPACK) solves the same QP as the factor path with
    # the start's points inserted one by one
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(90, 70))  # high rank: large supports
    G = Z @ Z.T
    E = np.zeros((0, 0))
    near = 1.2 * Z[:50].mean(0) - 0.2 * Z[50:].mean(0)
    far = 8.0 * Z[:50].mean(0) - 7.0 * Z[50:].mean(0)
    d0, state, _ = simplex_nearest_point(Z, near)
    assert len(state[0]) > 20
    for b in (near, far, 0.5 * (near + far)):
        S0, w0 = state
        ref = _wolfe_kernel.py_func(Z, b, E, S0, w0, E, 1e-9, 10_000)
        R0 = _start_factor(Z, b, G, S0)
        assert R0.shape == (len(S0), len(S0))
        for fn in (_wolfe_kernel, _wolfe_kernel.py_func):
            new = fn(Z, b, G, S0, w0, R0, 1e-9, 10_000)
            assert np.sqrt(new[0]) == pytest.approx(np.sqrt(ref[0]), abs=1e-9)
        assert simplex_nearest_point(Z, b, start=state, gram=G)[0] == pytest.approx(
            np.sqrt(ref[0]), abs=1e-9)


class _PreviousHullDistance(KM._HullDistance):
    """The path before the Gram matrix: inner products from the factor, the
    warm start inserted point by point, the start nearest in lambda."""

    def __init__(self, Z, n_mixture, method="wolfe"):
        super().__init__(Z, n_mixture, method=method, gram_max=0)

    def __call__(self, lam):
        if lam in self.cache:
            return self.cache[lam]
        b = lam * self.mu_f + (1.0 - lam) * self.mu_h
        near = [s for s in self.states if s != 1.0 or lam <= 1.25]
        S0, w0 = self.states[min(near, key=lambda s: abs(s - lam))]
        E = np.zeros((0, 0))
        d2, S, w, _ = _wolfe_kernel(self.Z, b, E, S0, w0, E, 1e-9, 10_000)
        self.states[lam] = (S, w)
        self.n_qp += 1
        self.cache[lam] = float(np.sqrt(max(d2, 0.0)))
        return self.cache[lam]


@pytest.mark.parametrize("seed", range(2))
def test_fast_path_same_estimate_as_previous_exact_path(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    Xh = rng.normal(size=(150, 8))
    Xf = np.r_[rng.normal(size=(60, 8)), rng.normal(size=(90, 8)) + 1.0]
    X, y = np.r_[Xh, Xf], np.r_[np.ones(150, int), np.zeros(150, int)]
    new = KernelMeanMPE(random_state=0).fit(X, y)
    monkeypatch.setattr(KM, "_HullDistance", _PreviousHullDistance)
    old = KernelMeanMPE(random_state=0).fit(X, y)
    assert new.rank_ == old.rank_ == 300
    assert new.km1_ == pytest.approx(old.km1_, abs=1e-6)
    assert new.km2_ == pytest.approx(old.km2_, abs=1e-6)
    assert new.thresholds_["KM2"] == pytest.approx(old.thresholds_["KM2"], abs=1e-6)


def test_pivoted_cholesky_reconstructs_kernel():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    Z, resid = pivoted_cholesky_features(X, 0.7)
    K = rbf_kernel(X, X, 0.7)
    assert np.abs(K - Z @ Z.T).max() < 1e-8
    assert resid < 1e-6
    Zn = nystroem_features(X, 0.7, 200, np.random.RandomState(0))
    assert np.abs(K - Zn @ Zn.T).max() < 1e-5


@pytest.mark.parametrize("variant", ["KM1", "KM2"])
def test_km_close_to_population_kappa(variant):
    d = make_sumpe_synthetic(0.5, n_component=600, n_mixture=600, random_state=0)
    est = KernelMeanMPE(variant, random_state=0).fit(d.X, d.y)
    assert abs(est.proportion_ - d.kappa_max) < 0.1
    assert 0 <= est.km1_ <= 1 and 0 <= est.km2_ <= 1
    assert est.proportion_ == (est.km1_ if variant == "KM1" else est.km2_)


def test_km_not_capped_at_0875():
    # kappa* = 0.95, G = N(6, 1): the reference range lambda <= 8 caps the
    # estimate at 0.875; ours goes above
    rng = np.random.default_rng(0)
    Xf = np.r_[rng.normal(0, 1, 475), rng.normal(6, 1, 25)][:, None]
    Xh = rng.normal(0, 1, (500, 1))
    X, y = np.vstack([Xh, Xf]), np.r_[np.ones(500), np.zeros(500)]
    est = KernelMeanMPE("KM1").fit(X, y)
    capped = KernelMeanMPE("KM1", lambda_max=8.0).fit(X, y)
    assert capped.proportion_ <= 0.875
    assert 0.875 < est.proportion_ <= 1.0


def test_km_identical_samples_small_estimate_zero_when_disjoint():
    rng = np.random.default_rng(0)
    Xh = rng.normal(0, 1, (200, 1))
    Xf = rng.normal(8, 1, (200, 1))  # kappa = 0, fully separated
    X, y = np.vstack([Xh, Xf]), np.r_[np.ones(200), np.zeros(200)]
    est = KernelMeanMPE("KM2").fit(X, y)
    assert est.proportion_ < 0.05


def test_nystroem_close_to_exact():
    d = make_sumpe_synthetic(0.25, n_component=500, n_mixture=500, random_state=3)
    ex = KernelMeanMPE("KM2", approximation="exact", random_state=0).fit(d.X, d.y)
    ny = KernelMeanMPE("KM2", approximation="nystroem", n_landmarks=100,
                       random_state=0).fit(d.X, d.y)
    assert abs(ex.proportion_ - ny.proportion_) < 0.02
