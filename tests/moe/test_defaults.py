"""Defaults that give the right answer on a user's own data (issue #22):
the initialisation over several kinds of start, scale-free penalties,
constant gates and column subsets for experts and gates."""

import shutil
import subprocess
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixstat.moe import GaussianMoERegressor, moe_path


def _npreg_like(seed=0, n_per_class=100):
    """flexmix's NPreg recipe (its help page): x ~ U(0, 10), class 1
    y = 5x + e, class 2 y = 15 + 10x - x^2 + e, e ~ N(0, 3^2); experts on
    (x, x^2). A fresh draw, not the shipped data set."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, 2 * n_per_class)
    cls = np.repeat([0, 1], n_per_class)
    mean = np.where(cls == 0, 5 * x, 15 + 10 * x - x**2)
    y = mean + 3 * rng.standard_normal(x.size)
    return np.column_stack([x, x**2]), y, cls


def _best_of_many(X, y, **params):
    """The best log-likelihood over 20 random starts: the reference optimum."""
    return max(GaussianMoERegressor(2, init="random", n_init=1, random_state=s,
                                    **params).fit(X, y).log_likelihood_ for s in range(20))


def test_auto_init_reaches_the_optimum_for_every_seed():
    X, y, _ = _npreg_like()
    params = dict(alpha=0.0, alpha_gate=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = _best_of_many(X, y, **params)
        lls = [GaussianMoERegressor(2, random_state=s, **params).fit(X, y).log_likelihood_
               for s in range(10)]
    np.testing.assert_allclose(lls, best, atol=1e-3)


def test_auto_init_varies_the_kind_of_start():
    from mixstat.moe._moe import init_strategy

    assert [init_strategy("auto", r, 100, 3) for r in range(5)] == [
        "residuals", "kmeans", "random", "random", "residuals"]
    assert [init_strategy("auto", r, 50, 200) for r in range(3)] == [
        "residuals", "screen", "residuals"]
    assert init_strategy("kmeans", 1, 100, 3) == "kmeans"


def test_restarts_that_disagree_warn_and_are_recorded():
    X, y, _ = _npreg_like()
    # the residual split lands in the poor basin here, the k-means start does not
    m0 = GaussianMoERegressor(2, alpha=0, alpha_gate=0, init="residuals", n_init=1).fit(X, y)
    m1 = GaussianMoERegressor(2, alpha=0, alpha_gate=0, init="kmeans", n_init=1,
                              random_state=0).fit(X, y)
    if abs(m0.log_likelihood_ - m1.log_likelihood_) < 1.0:
        pytest.skip("both starts reach the same optimum on this draw")
    with pytest.warns(UserWarning, match="only one of the 2 restarts"):
        m = GaussianMoERegressor(2, alpha=0, alpha_gate=0, n_init=2, random_state=0).fit(X, y)
    assert m.restart_objectives_.shape == (2,)
    assert m.lower_bound_ == pytest.approx(m.restart_objectives_.max())
    # restarts that agree: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        GaussianMoERegressor(2, alpha=0, alpha_gate=0, n_init=3, init="random",
                             random_state=0).fit(X, y)


@settings(max_examples=6, deadline=None)
@given(c=st.sampled_from([1e-3, 0.01, 7.0, 1e3]), seed=st.integers(0, 50))
def test_fit_is_equivariant_to_the_units_of_x(c, seed):
    # standardize=True: the fit on c X equals the fit on X with slopes / c
    X, y, _ = _npreg_like(seed, n_per_class=60)
    params = dict(n_components=2, alpha=0.02, alpha_gate=0.01, random_state=0, n_init=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = GaussianMoERegressor(**params).fit(X, y)
        b = GaussianMoERegressor(**params).fit(c * X, y)
    np.testing.assert_allclose(b.coef_ * c, a.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.gate_coef_ * c, a.gate_coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.log_likelihood_, a.log_likelihood_, rtol=1e-9)


def test_unit_change_without_standardize_kills_slopes():
    # the defect standardize fixes: X * 0.01 under the raw penalty zeroes slopes
    X, y, _ = _npreg_like(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = GaussianMoERegressor(2, alpha=0.05, standardize=False, random_state=0)
        std = GaussianMoERegressor(2, alpha=0.05, random_state=0)
        small_raw = raw.fit(X * 1e-3, y).coef_
        small_std = std.fit(X * 1e-3, y).coef_
    assert np.count_nonzero(small_raw) < np.count_nonzero(small_std)


def test_path_alphas_are_scale_free():
    X, y, _ = _npreg_like(2, n_per_class=50)
    p1 = moe_path(X, y, n_alphas=4, n_components=2)
    p2 = moe_path(100 * X, y, n_alphas=4, n_components=2)
    np.testing.assert_allclose(p1.alphas, p2.alphas, rtol=1e-6)
    np.testing.assert_allclose(p2.coef * 100, p1.coef, rtol=1e-4, atol=1e-6)


def _regmix_em(X, y, K=2, n_iter=2000, seed=0):
    """A plain EM for a finite mixture of linear regressions (the model of
    mixtools' regmixEM), written independently here."""
    rng = np.random.default_rng(seed)
    n = len(y)
    Z = np.column_stack([np.ones(n), X])
    R = rng.dirichlet(np.ones(K), n)
    ll_old = -np.inf
    for _ in range(n_iter):
        pi = R.mean(0)
        B = np.array([np.linalg.lstsq(Z * np.sqrt(R[:, [k]]), y * np.sqrt(R[:, k]),
                                      rcond=None)[0] for k in range(K)])
        s2 = np.array([R[:, k] @ (y - Z @ B[k]) ** 2 / R[:, k].sum() for k in range(K)])
        dens = pi * np.exp(-0.5 * (y[:, None] - Z @ B.T) ** 2 / s2) / np.sqrt(2 * np.pi * s2)
        ll = np.log(dens.sum(1)).sum()
        R = dens / dens.sum(1, keepdims=True)
        if ll - ll_old < 1e-12:
            break
        ll_old = ll
    return ll


def test_constant_gate_is_a_mixture_of_regressions():
    X, y, _ = _npreg_like(3)
    X = X[:, :1]
    m = GaussianMoERegressor(2, gate="constant", alpha=0, alpha_gate=0,
                             random_state=0).fit(X, y)
    assert np.all(m.gate_coef_ == 0) and m.gate_features_.size == 0
    g = m.predict_gates(X)
    np.testing.assert_allclose(g, np.broadcast_to(g[0], g.shape))
    ref = max(_regmix_em(X, y, seed=s) for s in range(5))
    assert m.log_likelihood_ == pytest.approx(ref, abs=1e-3)
    # K-1 free mixing weights, no gate slopes
    assert m.n_parameters() == 2 * 2 + 1 + 2
    with pytest.raises(ValueError, match="gate='constant' uses no gate features"):
        GaussianMoERegressor(2, gate="constant", gate_features=[0]).fit(X, y)


def test_feature_subsets_by_name_index_and_mask():
    pd = pytest.importorskip("pandas")
    X, y, _ = _npreg_like(4)
    z = np.random.default_rng(0).standard_normal(len(y))
    df = pd.DataFrame({"x": X[:, 0], "x2": X[:, 1], "z": z})
    m = GaussianMoERegressor(2, expert_features=["x", "x2"], gate_features=["x"],
                             random_state=0).fit(df, y)
    assert np.all(m.coef_[:, 2] == 0) and np.all(m.gate_coef_[:, 1:] == 0)
    np.testing.assert_array_equal(m.expert_features_, [0, 1])
    np.testing.assert_array_equal(m.gate_features_, [0])
    m2 = GaussianMoERegressor(2, expert_features=[True, True, False], gate_features=[0],
                              random_state=0).fit(df.to_numpy(), y)
    np.testing.assert_allclose(m2.coef_, m.coef_, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="no column named"):
        GaussianMoERegressor(2, expert_features=["w"]).fit(df, y)
    with pytest.raises(ValueError, match="no feature names"):
        GaussianMoERegressor(2, expert_features=["x"]).fit(df.to_numpy(), y)
    with pytest.raises(ValueError, match="outside"):
        GaussianMoERegressor(2, gate_features=[5]).fit(df, y)


def test_partial_fit_keeps_the_first_batch_scaling():
    X, y, _ = _npreg_like(5)
    m = GaussianMoERegressor(2, alpha=0.0, alpha_gate=0.0, random_state=0)
    m.partial_fit(X[:120], y[:120])
    m.partial_fit(X[120:], y[120:])
    m2 = GaussianMoERegressor(2, alpha=0.0, alpha_gate=0.0, random_state=0,
                              standardize=False)
    m2.partial_fit(X[:120], y[:120])
    m2.partial_fit(X[120:], y[120:])
    # unpenalised: the two parameterisations give the same model
    np.testing.assert_allclose(m.predict(X), m2.predict(X), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(shutil.which("Rscript") is None,
                    reason="R not installed (apt-get install r-base-core r-cran-mixtools)")
def test_constant_gate_matches_mixtools_on_tonedata(tmp_path):
    out = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(mixtools)); data(tonedata); "
         f"write.csv(tonedata, '{tmp_path}/t.csv', row.names=FALSE)"],
        capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.skip("mixtools not installed: apt-get install r-cran-mixtools")
    d = np.genfromtxt(tmp_path / "t.csv", delimiter=",", skip_header=1)
    m = GaussianMoERegressor(2, gate="constant", alpha=0, alpha_gate=0,
                             random_state=0).fit(d[:, :1], d[:, 1])
    # regmixEM's log-likelihood on tonedata (set.seed(100), k=2): 141.198
    assert m.log_likelihood_ == pytest.approx(141.198, abs=0.01)


def test_formula_gives_the_same_fit_as_the_columns():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("formulaic")
    from mixstat.moe import design_from_formula

    X, y, _ = _npreg_like(6)
    z = np.random.default_rng(1).standard_normal(len(y))
    df = pd.DataFrame({"x": X[:, 0], "z": z, "yn": y})
    m = GaussianMoERegressor.from_formula("yn ~ x + I(x**2) | z", df, alpha=0,
                                          alpha_gate=0, random_state=0)
    assert list(m.feature_names_in_) == ["x", "I(x ** 2)", "z"]
    assert m.formula_ == "yn ~ x + I(x**2) | z"
    ref = GaussianMoERegressor(2, alpha=0, alpha_gate=0, random_state=0, expert_features=[0, 1],
                               gate_features=[2]).fit(np.column_stack([X, z]), y)
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.gate_coef_, ref.gate_coef_, rtol=1e-8, atol=1e-10)
    # '| 1': a constant gate; new data without the response
    c = GaussianMoERegressor.from_formula("yn ~ x | 1", df, random_state=0)
    assert c.gate == "constant" and np.all(c.gate_coef_ == 0)
    Xnew, ynew, _ = design_from_formula("yn ~ x + I(x**2) | z", df.drop(columns="yn"))
    assert ynew is None
    np.testing.assert_allclose(m.predict(Xnew), ref.predict(np.column_stack([X, z])))
    for bad in ("yn x", "yn ~ x | z | x", "~ x"):
        with pytest.raises(ValueError, match="formula"):
            design_from_formula(bad, df)


def test_bic_and_bootstrap_lrt_choose_two_experts_on_npreg_like_data():
    # issue #22: from the poor basin, BIC and the LRT chose K=3; from the
    # default starts both choose the true K=2
    from mixstat.moe import select_n_components

    X, y, _ = _npreg_like(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bic = select_n_components(X, y, (1, 2, 3), method="bic", random_state=0)
        lrt = select_n_components(X, y, (1, 2, 3), method="bootstrap_lrt", n_bootstrap=19,
                                  random_state=0)
    assert bic.n_components == 2
    assert lrt.n_components == 2


def test_torch_cpu_tensors_take_the_host_path():
    # issue #21: torch CPU tensors in, the compiled host path runs (the torch
    # path interleaved its thread pool with host coordinate descent, 15x slower)
    torch = pytest.importorskip("torch")
    X, y, _ = _npreg_like(8, n_per_class=50)
    a = GaussianMoERegressor(2, n_init=1, random_state=0).fit(X, y)
    b = GaussianMoERegressor(2, n_init=1, random_state=0).fit(torch.from_numpy(X),
                                                              torch.from_numpy(y))
    assert b.backend_ == a.backend_ and b.backend_ in ("numba", "numpy")
    np.testing.assert_allclose(b.coef_, a.coef_)
    # asked for by name, torch still runs
    c = GaussianMoERegressor(2, n_init=1, random_state=0, backend="torch").fit(
        torch.from_numpy(X), torch.from_numpy(y))
    assert c.backend_ == "torch"
