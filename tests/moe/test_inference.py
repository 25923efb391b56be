"""Inference, model selection, penalty_power and partial_fit of the Gaussian MoE."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from mixstat.datasets import make_khalili_moe
from mixstat.datasets._moe import make_moe_regression
from mixstat.moe import GaussianMoERegressor, select_n_components
from mixstat.moe._inference import log_likelihood, observed_information, total_score
from mixstat.primitives import match_components
from mixstat.utils import ModelSummary

sm = pytest.importorskip("statsmodels.api")


def _lin(n=80, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = 1.0 + X @ np.array([2.0, 0.0, -1.0])[:p] + 0.5 * rng.standard_normal(n)
    return X, y


def _mle(K, X, y, seed=0, **kw):
    return GaussianMoERegressor(K, alpha=0.0, alpha_gate=0.0, tol=1e-12, max_iter=3000,
                                random_state=seed, **kw).fit(X, y)


# ------------------------------------------------ known answer: OLS ---
def test_k1_standard_errors_equal_statsmodels_ols():
    X, y = _lin()
    n, p = X.shape
    m = _mle(1, X, y, n_init=1)
    inf = m.inference(X, y)
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    # OLS uses s^2 = RSS/(n-p-1); the MLE information uses RSS/n
    np.testing.assert_allclose(inf.se[:p + 1], ols.bse * np.sqrt((n - p - 1) / n), rtol=1e-5)
    np.testing.assert_allclose(inf.params[:p + 1], ols.params, atol=1e-7)
    # variance: se(sigma^2_MLE) = sigma^2 sqrt(2/n)
    np.testing.assert_allclose(inf.se[p + 1], m.noise_variance_[0] * np.sqrt(2 / n), rtol=1e-4)
    sand = m.inference(X, y, method="sandwich")
    np.testing.assert_allclose(sand.se[:p + 1], ols.HC0_se, rtol=1e-5)
    assert inf.names[0] == ("expert 0", "intercept")


def test_observed_information_is_hessian_of_loglik_and_score_vanishes():
    from statsmodels.tools.numdiff import approx_hess

    X, y = make_khalili_moe(200, random_state=1)
    m = _mle(2, X, y)
    layout = m._layout()
    theta = layout.pack(m._state())
    sw = np.ones(X.shape[0])
    Xf = np.asfortranarray(X)
    info = observed_information(theta, layout, Xf, y, sw)
    H = approx_hess(theta, log_likelihood, args=(layout, Xf, y, sw))
    np.testing.assert_allclose(info, -H, rtol=1e-3, atol=1e-3 * np.abs(H).max())
    assert np.abs(total_score(theta, layout, Xf, y, sw)).max() < 1e-3
    assert np.all(np.linalg.eigvalsh(info) > 0)
    # pack / unpack round trip (reference-class gates)
    np.testing.assert_allclose(layout.pack(layout.unpack(theta)), theta)


def test_coverage_k2_near_nominal():
    # a few simulated data sets (the 200-set figure is in benchmarks/bench_moe_inference.py)
    hits, total = 0, 0
    for seed in range(25):
        X, y, P = make_moe_regression(400, 2, random_state=seed, return_params=True)
        m = _mle(2, X, y, seed=seed, n_init=2)
        perm = match_components(np.column_stack([P["intercept"], P["coef"]]),
                                np.column_stack([m.intercept_, m.coef_]))
        assert np.array_equal(perm, [0, 1])  # canonical order = truth order here
        inf = m.inference(X, y)
        from mixstat.moe._inference import MoEState

        truth = m._layout().pack(MoEState(P["coef"], P["intercept"], P["gate_coef"],
                                          P["gate_intercept"], P["noise_variance"]))
        hits += int(np.sum((inf.ci_low <= truth) & (truth <= inf.ci_high)))
        total += truth.size
    assert 0.88 <= hits / total <= 0.99


def test_bootstrap_matches_observed_roughly():
    X, y = _lin(120)
    m = _mle(1, X, y, n_init=1)
    obs = m.inference(X, y)
    for method in ("bootstrap", "parametric-bootstrap"):
        b = m.inference(X, y, method=method, n_bootstrap=60, random_state=0)
        assert b.n_failed == 0 and b.cov is None
        ratio = b.se[:4] / obs.se[:4]
        assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
        assert np.all(b.ci_low < b.params) and np.all(b.params < b.ci_high)


# ------------------------------------------------------ bad requests ---
def test_summary_before_fit_and_penalised_intervals():
    X, y = make_khalili_moe(150, random_state=0)
    with pytest.raises(NotFittedError, match="fit"):
        GaussianMoERegressor(2).summary()
    m = GaussianMoERegressor(2, alpha=0.05, alpha_gate=0.02, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="refit"):
        m.inference(X, y)
    with pytest.raises(ValueError, match="method"):
        _mle(1, *_lin()).inference(*_lin(), method="jackknife")
    s = m.summary()
    assert isinstance(s, ModelSummary)
    assert "refit" in " ".join(s.notes)
    # the refit keeps the support and gives standard errors
    r = m.refit(X, y)
    assert r.alpha == 0 and np.array_equal(r.coef_ != 0, r.support_)
    assert np.array_equal(r.support_.sum(axis=1), np.sort((m.coef_ != 0).sum(axis=1))) or \
        r.support_.sum() == (m.coef_ != 0).sum()
    text = r.summary(X, y).as_text()
    assert "std err" in text and "gate 0 vs 1" in text and "Log-likelihood" in text
    assert r.log_likelihood(X, y) >= m.log_likelihood(X, y) - 1e-6


def test_refit_k1_is_ols_on_support():
    X, y = _lin(100, 3)
    m = GaussianMoERegressor(1, alpha=0.3, n_init=1, tol=1e-12, max_iter=3000).fit(X, y)
    assert m.coef_[0, 1] == 0 and np.all(m.coef_[0, [0, 2]] != 0)
    r = m.refit(X, y)
    ols = sm.OLS(y, sm.add_constant(X[:, [0, 2]])).fit()
    np.testing.assert_allclose(r.coef_[0, [0, 2]], ols.params[1:], atol=1e-5)
    assert r.coef_[0, 1] == 0
    inf = r.inference(X, y)
    n = X.shape[0]
    np.testing.assert_allclose(inf.se[:3], ols.bse * np.sqrt((n - 3) / n), rtol=1e-4)


# --------------------------------------------------- model selection ---
def test_select_n_components_methods():
    X, y = make_moe_regression(300, 2, random_state=0)
    for method in ("bic", "icl"):
        r = select_n_components(X, y, (1, 2, 3), method=method, random_state=0, n_init=2)
        assert r.n_components == 2
    r = select_n_components(X, y, (1, 2, 3), method="bootstrap_lrt", n_bootstrap=9,
                            level=0.1, random_state=0, n_init=1)
    assert r.n_components == 2
    t = r.table
    assert t["p_value"][0] == pytest.approx(0.1)  # LR above all 9 replicates
    assert t["p_value"][1] > 0.1 and np.isnan(t["p_value"][2])
    assert "candidates" in r.summary().as_text()
    with pytest.raises(ValueError, match="method"):
        select_n_components(X, y, method="aic")
    with pytest.raises(ValueError, match="n_bootstrap"):
        select_n_components(X, y, method="bootstrap_lrt", n_bootstrap=9)
    with pytest.raises(ValueError, match="maximum likelihood"):
        select_n_components(X, y, method="bootstrap_lrt", alpha=0.1)


# --------------------------------------------------- penalty_power ---
def test_penalty_power_k1_is_invariant_and_monotone_k3():
    X, y = _lin()
    a = GaussianMoERegressor(1, alpha=0.1, n_init=1, tol=1e-12, max_iter=2000).fit(X, y)
    b = GaussianMoERegressor(1, alpha=0.1, penalty_power=1.0, n_init=1, tol=1e-12,
                             max_iter=2000).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)  # pi = 1 when K = 1
    X, y = make_khalili_moe(200, random_state=2)
    m = GaussianMoERegressor(3, alpha=0.05, alpha_gate=0.02, penalty_power=1.0, n_init=1,
                             max_iter=150, random_state=0).fit(X, y)
    d = np.diff(m.lower_bounds_)
    assert np.all(d >= -1e-9 * np.abs(m.lower_bounds_[1:]).max())


# ------------------------------------------------------- partial_fit ---
@pytest.mark.parametrize("alpha", [0.0, 0.02])
def test_partial_fit_approaches_batch(alpha):
    X, y = make_khalili_moe(3000, random_state=0)
    batch = GaussianMoERegressor(2, alpha=alpha, alpha_gate=0.0, random_state=0).fit(X, y)
    online = GaussianMoERegressor(2, alpha=alpha, alpha_gate=0.0, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        for chunk in np.array_split(rng.permutation(X.shape[0]), 15):
            online.partial_fit(X[chunk], y[chunk])
    assert online.n_samples_seen_ == 3 * X.shape[0]
    perm = match_components(np.column_stack([batch.intercept_, batch.coef_]),
                            np.column_stack([online.intercept_, online.coef_]))
    assert np.abs(online.coef_[perm] - batch.coef_).max() < 0.1
    np.testing.assert_allclose(online.noise_variance_[perm], batch.noise_variance_, rtol=0.1)
    ll_b, ll_o = batch.log_likelihood(X, y), online.log_likelihood(X, y)
    assert ll_o > ll_b - 0.005 * abs(ll_b)
    # the first batch alone is worse than the stream
    first = GaussianMoERegressor(2, alpha=alpha, alpha_gate=0.0, random_state=0)
    first.partial_fit(X[:200], y[:200])
    assert first.log_likelihood(X, y) < ll_o
    with pytest.raises(ValueError, match="features"):
        online.partial_fit(X[:10, :3], y[:10])


# ------------------------------------------------ two-stage (relaxed) ---
def test_relaxed_bic_path_recovers_support_without_variance_inflation():
    from mixstat.datasets import make_sparse_moe
    from mixstat.moe import relaxed_bic_path

    X, y, P = make_sparse_moe(200, 60, 2, n_informative=3, random_state=0, return_params=True)
    best, table, models = relaxed_bic_path(X, y, [0.1, 0.15, 0.2], 2, alpha_gate=0.02,
                                           penalty_power=1.0, inits=("screen", "random"),
                                           n_init={"random": 2}, short_iter=10, n_keep=2,
                                           max_iter=200, random_state=0)
    assert best is not None and best.alpha == 0 and best.support_ is not None
    # small-EM start: 3 starts, the 2 best after 10 iterations run on, the best of
    # those (by penalised objective) continues the path
    st = table["starts"]
    assert list(st["init"]) == ["screen", "random", "random"]
    ran = np.isfinite(st["objective"])
    assert ran.sum() == 2 and st["chosen"].sum() == 1 and ran[st["chosen"]].all()
    assert set(np.flatnonzero(ran)) == set(np.argsort(-st["short_objective"])[:2])
    assert st["objective"][st["chosen"]][0] == np.nanmax(st["objective"])
    assert models[0][0].lower_bound_ == pytest.approx(np.nanmax(st["objective"]))
    i = next(j for j, m in enumerate(models) if m[1] is best)
    assert table["admissible"][i] and table["bic"][i] == table["bic"][table["admissible"]].min()
    perm = match_components(np.column_stack([P["intercept"], P["coef"]]),
                            np.column_stack([best.intercept_, best.coef_]))
    B = best.coef_[perm]
    assert np.all(B[P["coef"] != 0] != 0)  # every true slope kept
    assert np.sum((B != 0) & (P["coef"] == 0)) <= 4
    # the refit removes the scaled penalty's variance inflation (true sigma^2 = 1)
    lasso_var = models[i][0].noise_variance_
    assert np.all(np.abs(best.noise_variance_ - 1) < 0.5)
    assert np.max(np.abs(best.noise_variance_ - 1)) < np.max(np.abs(lasso_var - 1))


def test_relaxed_bic_path_over_gate_penalties():
    """alpha_gates runs the procedure once per gate penalty and BIC of the
    refits chooses among all: the result is the single runs' best."""
    from mixstat.datasets import make_sparse_moe
    from mixstat.moe import relaxed_bic_path

    X, y = make_sparse_moe(120, 30, 2, n_informative=3, random_state=1)
    kw = dict(penalty_power=1.0, inits=("screen",), n_init=1, short_iter=10, n_keep=1,
              max_iter=100, random_state=0)
    alphas = [0.1, 0.2]
    single = [relaxed_bic_path(X, y, alphas, 2, alpha_gate=ag, **kw) for ag in (0.01, 0.2)]
    best, table, models = relaxed_bic_path(X, y, alphas, 2, alpha_gates=(0.01, 0.2), **kw)
    np.testing.assert_array_equal(table["alpha_gate"], [0.01, 0.01, 0.2, 0.2])
    np.testing.assert_allclose(table["bic"], np.concatenate([t["bic"] for _, t, _ in single]))
    assert list(table["starts"]["alpha_gate"]) == [0.01, 0.2] and len(models) == 4
    bics = [b.bic(X, y) for b, _, _ in single if b is not None]
    assert best.bic(X, y) == pytest.approx(min(bics))
    with pytest.raises(ValueError, match="not both"):
        relaxed_bic_path(X, y, alphas, 2, alpha_gates=(0.01,), alpha_gate=0.1, **kw)


def test_bootstrap_counts_failed_replicates(monkeypatch):
    import mixstat.moe._inference as inf_mod

    X, y = _lin(100)
    m = _mle(1, X, y, n_init=1)
    real = inf_mod.bootstrap_statistic
    calls = []

    def flaky(indices, seed, **kw):
        calls.append(seed)
        out = real(indices, seed, **kw)
        return out * np.nan if len(calls) % 4 == 0 else out

    monkeypatch.setattr(inf_mod, "bootstrap_statistic", flaky)
    with pytest.warns(UserWarning, match="5 of 20 bootstrap replicates failed"):
        b = m.inference(X, y, method="bootstrap", n_bootstrap=20, random_state=0)
    assert b.n_failed == 5 and np.all(np.isfinite(b.se))
    assert "5 of 20" in " ".join(m.summary(X, y, method="bootstrap", n_bootstrap=20,
                                           random_state=0).notes)
