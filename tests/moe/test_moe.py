"""Correctness of the Lasso-penalised Gaussian mixture of experts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Lasso, LinearRegression

from mixstat._backend import has_module
from mixstat.datasets import make_khalili_moe, make_sparse_moe
from mixstat.moe import GaussianMoERegressor, GaussianMoERegressorCV, moe_path
from mixstat.moe._kernels import column_moments, column_moments_numpy
from mixstat.primitives import match_components, normal_log_density, softmax


@pytest.fixture(scope="module")
def khalili():
    return make_khalili_moe(300, random_state=3, return_params=True)


def _lin_data(n=80, p=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = 1.0 + X @ np.array([2.0, 0.0, -1.0, 0.5, 0.0][:p]) + 0.5 * rng.standard_normal(n)
    return X, y


# ------------------------------------------------------------ K = 1 ---
@pytest.mark.parametrize("scale_penalty", [True, False])
def test_k1_alpha0_is_ols(scale_penalty):
    X, y = _lin_data()
    m = GaussianMoERegressor(1, alpha=0.0, scale_penalty=scale_penalty, tol=1e-14,
                             max_iter=2000, n_init=1).fit(X, y)
    ols = LinearRegression().fit(X, y)
    np.testing.assert_allclose(m.coef_[0], ols.coef_, atol=1e-6)
    np.testing.assert_allclose(m.intercept_[0], ols.intercept_, atol=1e-6)
    rss = np.mean((y - ols.predict(X)) ** 2)
    np.testing.assert_allclose(m.noise_variance_[0], rss, rtol=1e-6)
    np.testing.assert_allclose(m.predict(X), ols.predict(X), atol=1e-6)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("scale_penalty", [True, False])
@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_k1_lasso_matches_sklearn_at_mapped_penalty(scale_penalty, alpha, standardize):
    # K=1: maximising (1/n) log L - alpha |b|_1 / sigma^c over b at the fitted
    # sigma is sklearn's Lasso with alpha' = alpha * sigma^(2-c); with
    # standardize, sklearn's Lasso on StandardScaler's columns, slopes divided
    # by the columns' standard deviations
    X, y = _lin_data()
    X = X * np.array([1.0, 10.0, 0.1, 3.0, 1.0])[: X.shape[1]]  # unequal units
    m = GaussianMoERegressor(1, alpha=alpha, scale_penalty=scale_penalty, tol=1e-14,
                             max_iter=5000, n_init=1, standardize=standardize).fit(X, y)
    s2 = m.noise_variance_[0]
    mapped = alpha * (np.sqrt(s2) if scale_penalty else s2)
    sd = X.std(axis=0) if standardize else np.ones(X.shape[1])
    Xs = (X - X.mean(axis=0)) / sd if standardize else X
    ref = Lasso(alpha=mapped, tol=1e-12, max_iter=100000).fit(Xs, y)
    ref.intercept_ = ref.intercept_ - (ref.coef_ / sd) @ X.mean(axis=0) if standardize \
        else ref.intercept_
    ref.coef_ = ref.coef_ / sd
    np.testing.assert_allclose(m.coef_[0], ref.coef_, atol=1e-6)
    np.testing.assert_allclose(m.intercept_[0], ref.intercept_, atol=1e-6)
    assert np.count_nonzero(m.coef_[0]) == np.count_nonzero(ref.coef_)


# ---------------------------------------------------- monotone GEM ---
@settings(max_examples=8)
@given(seed=st.integers(0, 10_000), K=st.integers(2, 3), scale=st.booleans(),
       shared=st.booleans(), alpha=st.sampled_from([0.0, 0.02, 0.2]),
       alpha_gate=st.sampled_from([0.0, 0.05]), ridge=st.sampled_from([0.0, 0.1]))
def test_objective_never_decreases(seed, K, scale, shared, alpha, alpha_gate, ridge):
    rng = np.random.default_rng(seed)
    n, p = 60, 8
    X = rng.standard_normal((n, p))
    y = X[:, 0] * rng.choice([-2, 2], n) + rng.standard_normal(n)
    m = GaussianMoERegressor(K, alpha=alpha, alpha_gate=alpha_gate, ridge_gate=ridge,
                             scale_penalty=scale, variance="shared" if shared else "per-expert",
                             n_init=1, max_iter=60, init="random", random_state=seed)
    with _nowarn():
        m.fit(X, y)
    lb = m.lower_bounds_
    assert np.all(np.isfinite(lb))
    assert np.all(np.diff(lb) >= -1e-9 * (1 + np.abs(lb[1:]))), np.diff(lb).min()
    assert np.isclose(lb[-1], m.lower_bound_)


class _nowarn:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        return self._cm.__exit__(*a)


@pytest.mark.parametrize("standardize", [False, True])
def test_objective_equals_definition(khalili, standardize):
    # with standardize the penalties apply to the slopes of the standardised
    # columns: b_j * sd_j
    X, y, _ = khalili
    X = X * np.linspace(0.5, 4.0, X.shape[1])
    m = GaussianMoERegressor(2, alpha=0.03, alpha_gate=0.02, ridge_gate=0.1, n_init=1,
                             random_state=0, standardize=standardize).fit(X, y)
    ll = m.score_samples(X, y).mean()
    sd = X.std(axis=0) if standardize else 1.0
    b, w = m.coef_ * sd, m.gate_coef_ * sd
    pen = 0.03 * np.sum(np.abs(b).sum(1) / np.sqrt(m.noise_variance_))
    pen += 0.02 * np.abs(w).sum() + 0.05 * (w ** 2).sum()
    np.testing.assert_allclose(m.lower_bound_, ll - pen, rtol=1e-10)
    np.testing.assert_allclose(m.log_likelihood_, ll * len(y), rtol=1e-10)


# --------------------------------------------------- probabilities ---
def test_responsibilities_and_gates_sum_to_one(khalili):
    X, y, _ = khalili
    m = GaussianMoERegressor(3, n_init=1, random_state=0, max_iter=50).fit(X, y)
    np.testing.assert_allclose(m.predict_posterior(X, y).sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(m.predict_gates(X).sum(1), 1.0, atol=1e-12)


def test_score_samples_is_the_mixture_density(khalili):
    X, y, _ = khalili
    m = GaussianMoERegressor(2, n_init=1, random_state=0).fit(X, y)
    g = softmax(m.gate_intercept_ + X @ m.gate_coef_.T, axis=1)
    mu = m.intercept_ + X @ m.coef_.T
    dens = np.sum(g * np.exp(normal_log_density(y[:, None], mu, m.noise_variance_)), axis=1)
    np.testing.assert_allclose(m.score_samples(X, y), np.log(dens), rtol=1e-10)
    np.testing.assert_allclose(m.predict(X), np.sum(g * mu, axis=1), rtol=1e-10)
    n = len(y)
    np.testing.assert_allclose(m.bic(X, y), -2 * np.log(dens).sum() + m.n_parameters() * np.log(n))
    np.testing.assert_allclose(m.aic(X, y), -2 * np.log(dens).sum() + 2 * m.n_parameters())


def test_sample_follows_the_model(khalili):
    X, y, _ = khalili
    m = GaussianMoERegressor(2, n_init=1, random_state=0).fit(X, y)
    x = np.repeat(X[:1], 20000, axis=0)
    ys, labels = m.sample(x, random_state=0)
    g = m.predict_gates(X[:1])[0]
    np.testing.assert_allclose(np.bincount(labels, minlength=2) / len(labels), g, atol=0.02)
    np.testing.assert_allclose(ys.mean(), m.predict(X[:1])[0], atol=0.05)


# ----------------------------------------------------- invariances ---
def test_invariant_to_permuting_samples(khalili):
    X, y, _ = khalili
    perm = np.random.default_rng(1).permutation(len(y))
    kw = dict(alpha=0.02, n_init=2, random_state=0, tol=1e-10, max_iter=1000)
    a = GaussianMoERegressor(2, **kw).fit(X, y)
    b = GaussianMoERegressor(2, **kw).fit(X[perm], y[perm])
    for name in ("coef_", "intercept_", "gate_coef_", "gate_intercept_", "noise_variance_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(a.predict(X)[perm], a.predict(X[perm]), rtol=1e-12)


def test_backends_agree(khalili):
    pytest.importorskip("numba")
    X, y, _ = khalili
    # compared at the fixed point: the Numba and NumPy kernels of the gate
    # update (penalized_multinomial_update) currently differ per step (about
    # 1e-7 on one step, 1e-4 on the first objective values), which an
    # unconverged run carries along
    kw = dict(alpha=0.02, n_init=1, random_state=0, max_iter=3000, tol=1e-12)
    a = GaussianMoERegressor(2, backend="numba", **kw).fit(X, y)
    b = GaussianMoERegressor(2, backend="numpy", **kw).fit(X, y)
    assert a.backend_ == "numba" and b.backend_ == "numpy"
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-9)


def test_column_moments_kernel_matches_py_func_and_numpy():
    rng = np.random.default_rng(0)
    X = np.asfortranarray(rng.standard_normal((50, 7)))
    X[:, 3] = 2.5  # constant column -> h = 0
    w = rng.uniform(size=50)
    feats = np.array([0, 3, 5], dtype=np.int64)
    outs = []
    for f in (column_moments, column_moments.py_func, column_moments_numpy):
        xbar, h = np.zeros(7), np.zeros(7)
        f(X, w, feats, xbar, h)
        outs.append((xbar, h))
    ref_x = (w @ X) / w.sum()
    ref_h = w @ (X - ref_x) ** 2
    for xbar, h in outs:
        np.testing.assert_allclose(xbar[feats], ref_x[feats], rtol=1e-12)
        np.testing.assert_allclose(h[[0, 5]], ref_h[[0, 5]], rtol=1e-10)
        assert h[3] == 0.0 and xbar[1] == 0.0


# ------------------------------------------------ the fused EM loop ---
def _em_problem(n=120, p=5, K=2, seed=0, weights=False):
    from mixstat.moe._moe import _init_resp

    rng = np.random.default_rng(seed)
    X = np.asfortranarray(rng.standard_normal((n, p)))
    y = X[:, 0] * rng.choice([-2.0, 2.0], n) + 0.5 * X[:, 1] + rng.standard_normal(n)
    sw = rng.uniform(0.2, 2.0, n) if weights else np.ones(n)
    return X, y, sw, _init_resp, rng


_FUSED_CASES = {
    "mle": dict(alpha=0.0, alpha_gate=0.0),
    "lasso": dict(alpha=0.05, alpha_gate=0.02),
    "lasso-plain-scale": dict(alpha=0.05, alpha_gate=0.02, scale_penalty=False),
    "shared": dict(alpha=0.05, alpha_gate=0.0, variance="shared"),
    "ridge-gate": dict(alpha=0.02, alpha_gate=0.0, ridge_gate=0.1),
    "weights": dict(alpha=0.05, alpha_gate=0.02, weights=True),
    "K3": dict(alpha=0.03, alpha_gate=0.01, K=3),
}


@pytest.mark.parametrize("case", list(_FUSED_CASES))
def test_fused_em_equals_generic_path(case):
    """The compiled EM loop (and compiled init M-steps) give the same fit as the
    step-by-step path: same iterations, objective history and parameters."""
    from dataclasses import replace

    from mixstat.moe._em import run_em, state_from_resp

    kw = dict(_FUSED_CASES[case])
    K = kw.pop("K", 2)
    X, y, sw, init_resp, _ = _em_problem(K=K, weights=kw.pop("weights", False))
    m = GaussianMoERegressor(K, max_iter=300, tol=1e-8, **kw)
    Xv, yv, swv, backend = m._validate_fit_data(X, y, sw)
    cfg = m._make_config(Xv, yv, swv, backend)
    if not cfg.use_numba:
        pytest.skip("the fused loop runs on the Numba backend")
    assert cfg.uses_fused()
    resp = init_resp(Xv, yv, swv, cfg, "random", np.random.default_rng(1), 1)
    out = []
    for c in (cfg, replace(cfg, fused=False)):
        state = state_from_resp(Xv, yv, swv, resp, c, float(swv.sum()))
        out.append((state, run_em(Xv, yv, swv, state, c)))
    (s_a, a), (s_b, b) = out
    for name in ("coef", "intercept", "gate_coef", "gate_intercept", "var"):
        np.testing.assert_allclose(getattr(s_a, name), getattr(s_b, name), atol=1e-10)
    assert a["n_iter"] == b["n_iter"] and a["converged"] == b["converged"]
    np.testing.assert_allclose(a["history"], b["history"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a["loglik"], b["loglik"], rtol=1e-10)
    sa, sb = a["state"], b["state"]
    for name in ("coef", "intercept", "gate_coef", "gate_intercept", "var"):
        np.testing.assert_allclose(getattr(sa, name), getattr(sb, name), atol=1e-8)
    np.testing.assert_allclose(a["log_resp"], b["log_resp"], atol=1e-8)
    assert np.all(np.diff(a["history"]) >= -1e-12 * (1 + np.abs(a["history"][1:])))


def test_fused_kernels_equal_their_py_func():
    """Each compiled EM kernel equals its plain-Python version (same inputs)."""
    from mixstat.moe import _kernels as kk
    from mixstat.moe._em import state_from_resp

    X, y, sw, init_resp, _ = _em_problem(n=40, p=3, weights=True)
    m = GaussianMoERegressor(2, alpha=0.05, alpha_gate=0.02, max_iter=6, tol=0.0)
    cfg = m._make_config(X, y, sw, m._validate_fit_data(X, y, sw)[3])
    resp = init_resp(X, y, sw, cfg, "random", np.random.default_rng(0), 1)
    st0 = state_from_resp(X, y, sw, resp, cfg, float(sw.sum()))

    def params():
        return [np.array(a, order="C") for a in (st0.coef, st0.intercept, st0.gate_coef,
                                                 st0.gate_intercept, st0.var)]

    n, K = X.shape[0], 2
    mu = np.empty((n, K))
    kk.expert_means_kernel.py_func(X, st0.coef, st0.intercept, mu)
    np.testing.assert_allclose(mu, st0.intercept + X @ st0.coef.T, atol=1e-12)
    res = []
    for f in (kk.e_step_kernel, kk.e_step_kernel.py_func):
        out = [np.empty((n, K)) for _ in range(3)]
        res.append((f(X, y, sw, mu, st0.var, st0.gate_coef, st0.gate_intercept, *out), out))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-12)
    for u, v in zip(res[0][1], res[1][1]):
        np.testing.assert_allclose(u, v, atol=1e-12)
    log_resp, resp1, gate_prob = res[0][1]
    np.testing.assert_allclose(resp1.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_resp), resp1, atol=1e-12)
    outs = []
    for f in (kk.m_step_kernel, kk.m_step_kernel.py_func):
        p_ = params()
        mu_ = mu.copy()
        f(X, y, sw, resp1, *p_, mu_, float(sw.sum()) * 0.05, True, False, cfg.var_floor,
          1e-8, False, 1, True, 1, float(sw.sum()) * 0.02, 0.0, 5, res[0][0][1], gate_prob)
        outs.append(p_ + [mu_])
    for u, v in zip(*outs):
        np.testing.assert_allclose(u, v, atol=1e-10)
    outs = []
    for f in (kk.init_m_steps_kernel, kk.init_m_steps_kernel.py_func):
        p_ = params()
        mu_ = np.empty((n, K))
        f(X, y, sw, resp1, *p_, mu_, float(sw.sum()) * 0.05, True, False, cfg.var_floor,
          1e-8, 3, 20, 2, float(sw.sum()) * 0.02, 0.0, 5)
        outs.append(p_ + [mu_])
    for u, v in zip(*outs):
        np.testing.assert_allclose(u, v, atol=1e-10)
    np.testing.assert_allclose(outs[0][-1], outs[0][1] + X @ outs[0][0].T, atol=1e-12)
    outs = []
    for f in (kk.em_loop_kernel, kk.em_loop_kernel.py_func):
        p_ = params()
        hist, lr = np.empty(7), np.empty((n, K))
        r = f(X, y, sw, *p_, 0.05, 0.02, 0.0, True, False, cfg.var_floor, 6, 0.0, 5, 5, 1e-8,
              hist, lr)
        outs.append((r, p_, hist, lr))
    (ra, pa, ha, la), (rb, pb, hb, lb) = outs
    assert ra[0] == rb[0] == 6 and ra[4] and rb[4]
    np.testing.assert_allclose(ha, hb, rtol=1e-10)
    for u, v in zip(pa + [la], pb + [lb]):
        np.testing.assert_allclose(u, v, atol=1e-8)



def test_e_step_kernel_matches_numpy_e_step_at_extreme_scores():
    """The compiled E-step (which skips the exp of each row's maximum term)
    equals the NumPy E-step, also when the gate scores and the residuals are
    large and the maximum moves between components from row to row."""
    from mixstat.moe import _kernels as kk
    from mixstat.moe._em import MoEState, e_step

    rng = np.random.default_rng(3)
    n, p, K = 50, 3, 3
    X = np.asfortranarray(rng.standard_normal((n, p)) * 30.0)
    y = rng.standard_normal(n) * 40.0
    state = MoEState(rng.standard_normal((K, p)), rng.standard_normal(K) * 5,
                     rng.standard_normal((K, p)) * 20.0, rng.standard_normal(K),
                     np.array([0.5, 3.0, 40.0]))
    mu = np.ascontiguousarray(state.intercept + X @ state.coef.T)
    out = [np.empty((n, K)) for _ in range(3)]
    ll, _ = kk.e_step_kernel(X, y, np.ones(n), mu, state.var, state.gate_coef,
                             state.gate_intercept, *out)
    log_resp, log_norm, _ = e_step(X, y, state)
    np.testing.assert_allclose(out[0], log_resp, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ll, log_norm.sum(), rtol=1e-12)
    np.testing.assert_allclose(out[1].sum(axis=1), 1.0, rtol=1e-12)
    assert len(set(np.argmax(out[2], axis=1))) == K  # the maximum moves


@pytest.mark.parametrize("random_state", [0, 7, np.int64(12345), "instance", None])
def test_restart_seeds_equal_check_random_state(random_state):
    """The restart seeds come out as check_random_state(random_state).randint
    would give them (a re-seeded generator for ints, the same draws)."""
    from sklearn.utils import check_random_state

    from mixstat.moe._moe import _restart_seeds

    if random_state is None:
        s = _restart_seeds(None, 4)
        assert s.shape == (4,) and np.all((s >= 0) & (s < np.iinfo(np.int32).max))
        return
    if random_state == "instance":
        a = _restart_seeds(np.random.RandomState(5), 3)
        b = np.random.RandomState(5).randint(np.iinfo(np.int32).max, size=3)
    else:
        _restart_seeds(99, 2)  # the shared generator has been used before
        a = _restart_seeds(random_state, 3)
        b = check_random_state(random_state).randint(np.iinfo(np.int32).max, size=3)
    np.testing.assert_array_equal(a, b)

# ------------------------------------------------------ fidelity ---
def test_recovers_khalili_design(khalili):
    X, y, P = khalili
    m = GaussianMoERegressor(2, alpha=0.02, alpha_gate=0.01, random_state=0).fit(X, y)
    assert m.converged_
    perm = match_components(P["coef"], m.coef_)
    B = m.coef_[perm]
    # the true non-zeros are found (at most one shrunk to zero), no sign error
    nz = P["coef"] != 0
    assert np.count_nonzero(B[nz]) >= nz.sum() - 1
    assert np.all(B[nz] * P["coef"][nz] >= 0)
    assert np.abs(B - P["coef"]).max() < 1.05
    assert np.abs(B[~nz]).max() < 0.3
    # the gate contrast w1 - w2 recovers the true gate's support on x1
    dw = m.gate_coef_[perm[0]] - m.gate_coef_[perm[1]]
    assert abs(dw[0]) > 1.0 and np.sign(dw[0]) == 1
    np.testing.assert_allclose(m.noise_variance_, 1.0, atol=0.5)


def test_high_dimensional_no_variance_collapse():
    X, y, P = make_sparse_moe(120, 300, 2, n_informative=3, random_state=0, return_params=True)
    m = GaussianMoERegressor(2, alpha=0.15, alpha_gate=0.05, n_init=2, random_state=0,
                             max_iter=200).fit(X, y)
    floor = 1e-3 * y.var()
    assert np.all(m.noise_variance_ > 10 * floor)
    assert np.count_nonzero(m.coef_) < 60  # sparse, not 300 x 2
    for name in ("coef_", "intercept_", "gate_coef_", "noise_variance_"):
        assert np.all(np.isfinite(getattr(m, name)))


# ------------------------------------------------------ path / CV ---
def test_path_starts_at_alpha_max(khalili):
    X, y, _ = khalili
    path = moe_path(X, y, n_components=2, n_alphas=6, eps=0.05)
    assert path.alphas[0] == pytest.approx(path.alpha_max)
    assert np.all(np.diff(path.alphas) < 0)
    assert np.count_nonzero(path.coef[0]) == 0
    assert np.count_nonzero(path.coef[-1]) >= 4
    assert path.coef.shape == (6, 2, 6) and np.all(np.isfinite(path.lower_bound))
    # just below alpha_max a slope enters: alpha_max is the smallest zeroing penalty
    below = moe_path(X, y, n_components=2, alphas=[path.alpha_max * 0.9])
    above = moe_path(X, y, n_components=2, alphas=[path.alpha_max * 1.05])
    assert np.count_nonzero(above.coef) == 0
    assert np.count_nonzero(below.coef) > 0


def test_path_models_and_df(khalili):
    X, y, _ = khalili
    path = moe_path(X, y, n_components=2, n_alphas=3, return_models=True)
    for i, m in enumerate(path.models):
        np.testing.assert_allclose(m.coef_, path.coef[i])
        assert m.n_parameters() == path.df[i]
        np.testing.assert_allclose(m.log_likelihood(X, y), path.log_likelihood[i], rtol=1e-8)


def test_cv_selects_two_components_by_bic(khalili):
    X, y, _ = khalili
    cv = GaussianMoERegressorCV(n_components=(1, 2), n_alphas=6, n_init=1, random_state=0)
    cv.fit(X, y)
    assert cv.n_components_ == 2
    i = np.argmin(cv.criterion_["bic"])
    assert cv.criterion_["alpha"][i] == cv.alpha_
    np.testing.assert_allclose(cv.bic(X, y), cv.criterion_["bic"][i], rtol=1e-8)


def test_cv_bic_skips_degenerate_fits():
    """With p > n the smallest penalties interpolate (supports near N_k, the
    unpenalised likelihood soars); BIC chooses among the admissible grid points."""
    import warnings

    X, y = make_sparse_moe(60, 150, 2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = GaussianMoERegressorCV(n_components=(2,), n_alphas=8, eps=1e-3, n_init=1,
                                    max_iter=60, relax=False, criterion="bic",
                                    random_state=0).fit(X, y)
    ok = cv.criterion_["admissible"]
    assert ok.any() and not ok.all()
    i = int(np.flatnonzero(cv.criterion_["alpha"] == cv.alpha_)[0])
    assert ok[i]
    assert cv.criterion_["bic"][i] == cv.criterion_["bic"][ok].min()
    nk = cv.predict_posterior(X, y).sum(axis=0)
    assert np.all(np.count_nonzero(cv.coef_, axis=1) < 0.5 * nk)

def test_cv_relaxed_bic_selects_a_refit(khalili):
    """relax=True: the BIC of each grid point is that of the
    unpenalised refit on its support, never above the BIC of the penalised fit
    at the same point (the refit's EM starts there and does not lower the
    likelihood; the support, hence df, is the same); the chosen model is the
    refit with the smallest admissible BIC."""
    X, y, _ = khalili
    kw = dict(n_components=(2,), n_alphas=6, eps=0.02, alpha_gates=(0.01, 0.03), n_init=1,
              random_state=0)
    plain = GaussianMoERegressorCV(relax=False, criterion="bic", **kw).fit(X, y)
    relaxed = GaussianMoERegressorCV(relax=True, criterion="bic", **kw).fit(X, y)
    np.testing.assert_array_equal(plain.criterion_["alpha"], relaxed.criterion_["alpha"])
    assert np.all(relaxed.criterion_["bic"] <= plain.criterion_["bic"] + 1e-6)
    assert np.any(relaxed.criterion_["bic"] < plain.criterion_["bic"] - 1.0)
    ok = relaxed.criterion_["admissible"]
    best = relaxed.best_estimator_
    assert best.alpha == best.alpha_gate == 0.0
    np.testing.assert_array_equal(best.coef_ != 0, best.support_)
    np.testing.assert_allclose(relaxed.bic(X, y), relaxed.criterion_["bic"][ok].min(),
                               rtol=1e-10)
    np.testing.assert_allclose(relaxed.predict(X), best.predict(X))
    # with cv the refits are scored on the held-out folds and the chosen one
    # is refitted on all the data and relaxed
    cvr = GaussianMoERegressorCV(relax=True, cv=2, **kw).fit(X, y)
    assert cvr.best_estimator_.alpha == 0.0 and hasattr(cvr.best_estimator_, "support_")
    assert np.all(cvr.coef_[~cvr.best_estimator_.support_] == 0)


def test_cv_held_out_loglik(khalili):
    X, y, _ = khalili
    cv = GaussianMoERegressorCV(n_components=(2,), n_alphas=4, cv=2, n_init=1,
                                random_state=0).fit(X, y)
    assert "cv_loglik" in cv.criterion_ and cv.criterion_["cv_loglik"].shape == (4,)
    assert cv.alpha_ in cv.criterion_["alpha"]


# ------------------------------------------------------- bad input ---
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_raise(bad):
    X, y = _lin_data()
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        GaussianMoERegressor().fit(Xb, y)
    yb = y.copy()
    yb[0] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        GaussianMoERegressor().fit(X, yb)


def test_wrong_shapes_raise():
    X, y = _lin_data()
    with pytest.raises(ValueError, match="y should be a 1d array|1d"):
        GaussianMoERegressor().fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        GaussianMoERegressor().fit(X, y[:-1])
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMoERegressor(5).fit(X[:4], y[:4])
    m = GaussianMoERegressor(n_init=1, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :3])


def test_constant_feature_gets_zero_slopes():
    X, y = _lin_data()
    X[:, 1] = 3.0
    with _nowarn():
        m = GaussianMoERegressor(2, alpha=0.0, alpha_gate=0.0, n_init=1, max_iter=50,
                                 random_state=0).fit(X, y)
    assert np.all(m.coef_[:, 1] == 0) and np.all(m.gate_coef_[:, 1] == 0)
    assert np.all(np.isfinite(m.coef_)) and np.all(np.isfinite(m.noise_variance_))


def test_emptying_component_is_handled():
    # one clean line and 6 experts: some components empty; no NaN anywhere
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = X[:, 0] + 0.01 * rng.standard_normal(40)
    with _nowarn():
        m = GaussianMoERegressor(6, init="random", n_init=1, max_iter=100,
                                 random_state=0).fit(X, y)
    for name in ("coef_", "intercept_", "gate_coef_", "gate_intercept_", "noise_variance_"):
        assert np.all(np.isfinite(getattr(m, name))), name
    assert np.all(m.noise_variance_ >= 1e-3 * y.var() * (1 - 1e-12))
    assert np.isfinite(m.lower_bound_)


def test_constant_y_and_zero_weights():
    X, _ = _lin_data()
    with _nowarn():
        m = GaussianMoERegressor(2, n_init=1, max_iter=20).fit(X, np.ones(len(X)))
    assert np.all(np.isfinite(m.noise_variance_)) and np.allclose(m.predict(X), 1.0)
    X, y = _lin_data()
    sw = np.ones(len(y))
    sw[:40] = 0
    with _nowarn():
        a = GaussianMoERegressor(1, alpha=0.1, n_init=1, tol=1e-12, max_iter=500).fit(
            X, y, sample_weight=sw)
        b = GaussianMoERegressor(1, alpha=0.1, n_init=1, tol=1e-12, max_iter=500).fit(
            X[40:], y[40:])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
    with pytest.raises(ValueError, match="[Ss]ample.weight"):
        GaussianMoERegressor().fit(X, y, sample_weight=np.zeros(len(y)))


def test_warm_start_continues():
    X, y, _ = make_khalili_moe(200, random_state=0, return_params=True)
    m = GaussianMoERegressor(2, alpha=0.02, n_init=1, random_state=0).fit(X, y)
    lb = m.lower_bound_
    m.set_params(warm_start=True)
    m.fit(X, y)
    assert m.n_iter_ <= 5 and m.lower_bound_ >= lb - 1e-9


# ------------------------------------------------- device (torch) path ---
def test_torch_backend_matches_cd_path():
    torch = pytest.importorskip("torch")
    X, y = make_khalili_moe(200, random_state=1)
    kw = dict(alpha=0.02, alpha_gate=0.01, n_init=1, random_state=0, tol=1e-12, max_iter=2000)
    cpu = "numba" if has_module("numba") else "numpy"  # the CD path either way
    with _nowarn():
        a = GaussianMoERegressor(2, backend=cpu, **kw).fit(X, y)
        b = GaussianMoERegressor(2, backend="torch", **kw).fit(X, y)
        # CPU tensors in: the host path unless torch is asked for by name
        c = GaussianMoERegressor(2, **kw).fit(torch.as_tensor(X), torch.as_tensor(y))
    assert b.backend_ == "torch" and c.backend_ == cpu
    assert isinstance(b.coef_, np.ndarray)
    # same objective, same fixed point: FISTA (device) and CD (Numba) M-steps
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=1e-9)
    np.testing.assert_allclose(b.coef_, a.coef_, atol=1e-5)
    np.testing.assert_allclose(b.gate_coef_, a.gate_coef_, atol=1e-5)
    np.testing.assert_allclose(c.coef_, a.coef_, atol=1e-12)
    assert np.all(np.diff(b.lower_bounds_) >= -1e-9)


def test_cupy_without_gpu_is_a_clear_error():
    from mixstat._backend import cupy_device_available, has_module

    if cupy_device_available():
        pytest.skip("a CUDA device is present")
    X, y = _lin_data()
    err = ValueError if has_module("cupy") else ImportError
    with pytest.raises(err, match="cupy|CuPy"):
        GaussianMoERegressor(backend="cupy").fit(X, y)


def test_restart_with_variance_on_the_floor_loses(khalili):
    # the selection among restarts: a spike component (variance on the floor)
    # loses against a non-degenerate restart even with a higher objective
    from mixstat._backend import resolve_backend
    from mixstat.moe._em import e_step

    X, y, _ = khalili
    m = GaussianMoERegressor(2, n_init=1, random_state=0).fit(X, y)
    good = m._state()
    bad = m._state()
    floor = 1e-3 * y.var()
    bad.var[0] = floor
    res = []
    for st, obj in ((bad, 10.0), (good, -5.0)):
        log_resp, log_norm, _ = e_step(np.asfortranarray(X), y, st)
        res.append({"state": st, "objective": obj, "loglik": float(log_norm.sum()),
                    "n_iter": 1, "converged": True, "history": np.array([obj]),
                    "log_resp": log_resp})
    m._var_floor = floor
    m._set_result(np.asfortranarray(X), y, res, resolve_backend("numpy"))
    assert m.lower_bound_ == -5.0 and np.all(m.noise_variance_ > floor)
    with pytest.warns(UserWarning, match="floor"):
        m._set_result(np.asfortranarray(X), y, res[:1], resolve_backend("numpy"))


@pytest.mark.skipif(not has_module("numba"), reason="needs numba")
def test_integer_or_readonly_y_reuses_the_compiled_kernels():
    """An integer or read-only y is converted once at the boundary, so it runs
    the kernels compiled for a float y (each new Numba specialisation costs
    seconds of compilation, and one more entry in the on-disk cache) and gives
    the same fit."""
    import numba

    from mixstat._backend import _LazyJit
    from mixstat.moe import _kernels
    from mixstat.primitives import _lasso, _multinomial

    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: Numba compiles nothing")
    X, y = make_khalili_moe(120, random_state=1)
    y = np.round(y)

    def n_signatures():
        return sum(len(v._jitted.signatures) for mod in (_kernels, _lasso, _multinomial)
                   for v in vars(mod).values()
                   if isinstance(v, _LazyJit) and v._jitted is not None)

    def run(yy):
        est = GaussianMoERegressor(2, alpha=0.01, n_init=1, random_state=0).fit(X, yy)
        path = moe_path(X, yy, n_alphas=2, n_components=2, n_init=1)
        cv = GaussianMoERegressorCV(n_components=(2,), n_alphas=2, n_init=1,
                                    random_state=0).fit(X, yy)
        return est.coef_, est.score_samples(X, yy), path.coef, cv.coef_

    ref = run(y)
    before = n_signatures()
    y_ro = y.copy()
    y_ro.flags.writeable = False
    for yy in (y.astype(np.int64), y_ro):
        for a, b in zip(run(yy), ref):
            np.testing.assert_allclose(a, b)
    assert n_signatures() == before
    # nor does a kernel reach another with a literal constant (1, True): Numba
    # would compile a specialisation for the literal (m_step_kernel: 20 s)
    literal = [(v.__name__, str(sig)) for mod in (_kernels, _lasso, _multinomial)
               for v in vars(mod).values() if isinstance(v, _LazyJit) and v._jitted is not None
               for sig in v._jitted.signatures if "Literal" in str(sig)]
    assert not literal
