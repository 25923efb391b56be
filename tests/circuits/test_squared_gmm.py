import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from sklearn.mixture import GaussianMixture

from mixstat.circuits import SquaredGaussianMixture
from mixstat.circuits._squared_gmm import _nll_and_grad, _nll_torch, _Param
from mixstat.datasets import make_rings


def _set(model, w, means, cov, ctype, d):
    """A 'fitted' model with given parameters (for exact checks)."""
    from mixstat.circuits._squared_gmm import _log_z

    model.weights_ = np.asarray(w, float)
    model.means_ = np.asarray(means, float)
    model.covariances_ = np.asarray(cov, float)
    model.covariance_type = ctype
    model.n_features_in_ = d
    model.log_normalizer_, _ = _log_z(model.weights_, model.means_, model.covariances_, ctype)
    return model


def _random_model(seed, K=3, d=2, ctype="full"):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=K)
    means = rng.normal(size=(K, d))
    if ctype == "full":
        A = rng.normal(size=(K, d, d)) * 0.4
        cov = A @ np.transpose(A, (0, 2, 1)) + 0.3 * np.eye(d)
    elif ctype == "diag":
        cov = rng.uniform(0.2, 1.5, size=(K, d))
    else:
        cov = rng.uniform(0.2, 1.5, size=K)
    return _set(SquaredGaussianMixture(K, covariance_type=ctype), w, means, cov, ctype, d)


@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_normalised_2d_quadrature(ctype):
    m = _random_model(0, ctype=ctype)
    g = np.linspace(-9, 9, 601)
    XX, YY = np.meshgrid(g, g)
    p = np.exp(m.score_samples(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
    tot = integrate.simpson(integrate.simpson(p, x=g), x=g)
    assert abs(tot - 1) < 1e-6


def test_normalised_1d_quadrature():
    m = _set(SquaredGaussianMixture(3), [1.0, -0.7, 0.4], [[0.0], [0.3], [2.0]], [[[1.0]], [[0.3]], [[0.5]]], "full", 1)
    val, _ = integrate.quad(lambda x: np.exp(m.score_samples(np.array([[x]])))[0], -np.inf, np.inf, epsabs=1e-12)
    assert abs(val - 1) < 1e-6


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), scale=st.floats(-3, 3).filter(lambda s: abs(s) > 1e-2))
def test_invariant_to_weight_scaling_and_sign(seed, scale):
    m = _random_model(seed)
    X = np.random.default_rng(seed).normal(size=(20, 2))
    ref = m.score_samples(X)
    m2 = _set(SquaredGaussianMixture(3), scale * m.weights_, m.means_, m.covariances_, "full", 2)
    np.testing.assert_allclose(m2.score_samples(X), ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000))
def test_signed_log_space_equals_direct(seed):
    m = _random_model(seed, ctype="diag")
    X = np.random.default_rng(seed).normal(size=(30, 2))
    from scipy.stats import multivariate_normal

    c = sum(w * multivariate_normal(mu, np.diag(v)).pdf(X) for w, mu, v in zip(m.weights_, m.means_, m.covariances_, strict=True))
    G = np.array([[multivariate_normal(mi, np.diag(vi + vj)).pdf(mj) for mj, vj in zip(m.means_, m.covariances_, strict=True)]
                  for mi, vi in zip(m.means_, m.covariances_, strict=True)])
    Z = m.weights_ @ G @ m.weights_
    np.testing.assert_allclose(np.exp(m.score_samples(X)), c**2 / Z, rtol=1e-9)


def test_k1_is_a_gaussian():
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([1, -1], [[1.0, 0.5], [0.5, 2.0]], size=500)
    m = SquaredGaussianMixture(1, random_state=0).fit(X)
    g = GaussianMixture(1).fit(X)
    # c^2 / Z for one Gaussian is N(mu, Sigma/2): the MLE is the Gaussian MLE
    np.testing.assert_allclose(m.means_[0], X.mean(0), atol=1e-4)
    np.testing.assert_allclose(m.covariances_[0] / 2, np.cov(X.T, bias=True), atol=1e-3)
    np.testing.assert_allclose(m.score(X), g.score(X), atol=1e-5)


@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_closed_form_gradient_matches_autograd_and_fd(ctype):
    pytest.importorskip("torch")  # the autograd reference
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    par = _Param(3, 3, ctype, 1e-6)
    th = rng.normal(size=sum(par.sizes)) * 0.5
    f, g = _nll_and_grad(th, X, par)
    f2, g2 = _nll_torch(th, X, par)
    assert abs(f - f2) < 1e-10
    np.testing.assert_allclose(g, g2, atol=1e-9)


@pytest.mark.parametrize("ctype", ["full", "diag"])
def test_marginal_equals_numerical_integration(ctype):
    m = _random_model(3, K=3, d=2, ctype=ctype)
    marg = m.marginal([0])
    g = np.linspace(-10, 10, 2001)
    for x0 in (-0.7, 0.4, 1.3):
        p = np.exp(m.score_samples(np.c_[np.full_like(g, x0), g]))
        num = integrate.simpson(p, x=g)
        assert abs(np.exp(marg.score_samples([[x0]]))[0] - num) < 1e-8


def test_marginal_3d_full_normalised():
    m = _random_model(5, K=2, d=3, ctype="full")
    marg = m.marginal([0, 2])
    g = np.linspace(-9, 9, 301)
    XX, YY = np.meshgrid(g, g)
    p = np.exp(marg.score_samples(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
    assert abs(integrate.simpson(integrate.simpson(p, x=g), x=g) - 1) < 1e-6


def test_sampling_moments_match_density():
    m = _random_model(7, K=3, d=2, ctype="full")
    S = m.sample(20000, random_state=0)
    g = np.linspace(-10, 10, 801)
    p0 = np.exp(m.marginal([0]).score_samples(g[:, None]))
    mean0 = integrate.simpson(p0 * g, x=g)
    sd0 = np.sqrt(integrate.simpson(p0 * (g - mean0) ** 2, x=g))
    assert abs(S[:, 0].mean() - mean0) < 4 * sd0 / np.sqrt(len(S))
    # a Kolmogorov-Smirnov check against the exact marginal CDF
    cdf = integrate.cumulative_simpson(p0, x=g, initial=0)
    emp = np.searchsorted(np.sort(S[:, 0]), g) / len(S)
    assert np.max(np.abs(emp - cdf)) < 1.63 / np.sqrt(len(S))  # 1% level


def test_beats_gmm_on_a_ring():
    X = make_rings(1500, radii=(2.0,), noise=0.3, random_state=0)
    Xt = make_rings(2000, radii=(2.0,), noise=0.3, random_state=1)
    sq = SquaredGaussianMixture(3, init="random", n_init=3, random_state=0).fit(X)
    gm = GaussianMixture(3, n_init=3, random_state=0).fit(X)
    assert sq.score(Xt) > gm.score(Xt) + 0.05
    assert np.any(sq.weights_ < 0)  # subtraction is what helps


def test_fit_attributes_and_criteria():
    X = np.random.default_rng(0).normal(size=(200, 2))
    m = SquaredGaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    assert m.weights_.shape == (2,) and np.isclose(np.abs(m.weights_).sum(), 1)
    assert m.covariances_.shape == (2, 2)
    assert np.isfinite(m.lower_bound_) and m.n_iter_ > 0
    assert np.isclose(m.lower_bound_, m.score(X), atol=1e-8)
    assert m.bic(X) > m.aic(X)


def test_torch_backend_same_fit():
    pytest.importorskip("torch")
    X = np.random.default_rng(0).normal(size=(150, 2))
    a = SquaredGaussianMixture(2, random_state=0, backend="numpy").fit(X)
    b = SquaredGaussianMixture(2, random_state=0, backend="torch").fit(X)
    assert b.backend_ == "torch"
    assert abs(a.score(X) - b.score(X)) < 1e-4


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="NaN|infinity"):
        SquaredGaussianMixture(2).fit(np.r_[X, [[np.nan, 0]]])
    with pytest.raises(ValueError, match="n_components"):
        SquaredGaussianMixture(0).fit(X)
    with pytest.raises(ValueError, match="n_samples"):
        SquaredGaussianMixture(60).fit(X)
    m = SquaredGaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.score_samples(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        m.score_samples(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="features"):
        m.marginal([5])
    with pytest.raises(ValueError, match="columns"):
        m.marginal([0]).score_samples(np.zeros((2, 2)))


def test_partial_fit_streams_towards_the_batch_fit():
    X = make_rings(4000, radii=(2.0,), noise=0.3, random_state=0)
    Xt = make_rings(2000, radii=(2.0,), noise=0.3, random_state=1)
    m = SquaredGaussianMixture(3, init="random", random_state=0, learning_rate=0.1)
    rng = np.random.default_rng(0)
    m.partial_fit(X[:200])
    start = m.score(Xt)
    for _ in range(5):
        for b in np.array_split(rng.permutation(len(X)), 20):
            m.partial_fit(X[b])
    batch = SquaredGaussianMixture(3, init="random", random_state=0).fit(X)
    assert m.score(Xt) > start + 0.3
    assert m.score(Xt) > batch.score(Xt) - 0.1
    assert abs(np.abs(m.weights_).sum() - 1) < 1e-12
    with pytest.raises(ValueError, match="features"):
        m.partial_fit(np.zeros((5, 3)))


# --- inference (issue #8) ------------------------------------------------------
def _k1_fit(X):
    return SquaredGaussianMixture(1, tol=1e-14, max_iter=2000, random_state=0, backend="numpy").fit(X)


def test_k1_standard_errors_are_the_gaussian_mle_1d():
    X = np.random.default_rng(3).normal(1.0, 1.5, size=(400, 1))
    m = _k1_fit(X)
    n, s2 = len(X), X.var()
    inf = m.inference(X)
    assert [t for _, t in inf.names] == ["mean x0", "var x0"]
    # c^2/Z = N(mu, Sigma/2): Sigma = 2 sigma^2, so se(Sigma) = 2 sigma^2 sqrt(2/n)
    np.testing.assert_allclose(inf.params, [X.mean(), 2 * s2], rtol=1e-7)
    np.testing.assert_allclose(inf.se, [np.sqrt(s2 / n), 2 * s2 * np.sqrt(2 / n)], rtol=1e-6)
    # the sandwich: the variance of the sample mean is unchanged; the sample
    # variance's is the robust (m4 - s^4) / n
    sw = m.inference(X, method="sandwich")
    m4 = np.mean((X - X.mean()) ** 4)
    np.testing.assert_allclose(sw.se, [np.sqrt(s2 / n), 2 * np.sqrt((m4 - s2**2) / n)], rtol=1e-6)
    lo, hi = inf.ci_low[0], inf.ci_high[0]
    np.testing.assert_allclose([lo, hi], X.mean() + np.array([-1, 1]) * 1.959963984540054 * np.sqrt(s2 / n))


def test_k1_full_covariance_matches_the_gaussian_information():
    X = np.random.default_rng(4).multivariate_normal([0, 1], [[1.0, 0.6], [0.6, 2.0]], size=500)
    m = _k1_fit(X)
    n, S = len(X), np.cov(X.T, bias=True)
    inf = m.inference(X)
    cov = inf.cov
    np.testing.assert_allclose(cov[:2, :2], S / n, rtol=1e-6)
    np.testing.assert_allclose(cov[:2, 2:], 0, atol=1e-9)
    # Cov(S_ab, S_cd) = (S_ac S_bd + S_ad S_bc) / n for the MLE; the component
    # covariance is 2 S
    tri = [(0, 0), (0, 1), (1, 1)]
    ref = np.array([[4 * (S[a, c] * S[b, d] + S[a, d] * S[b, c]) / n for c, d in tri] for a, b in tri])
    np.testing.assert_allclose(cov[2:, 2:], ref, rtol=1e-6)


def _two_blob_fit(ctype, seed=0):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0, 1.5, size=(300, 2)), rng.normal(2, 0.5, size=(300, 2))]
    return X, SquaredGaussianMixture(2, covariance_type=ctype, tol=1e-12, max_iter=1000,
                                     random_state=0, backend="numpy").fit(X)


@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_autograd_hessian_equals_numdiff(ctype):
    pytest.importorskip("torch")
    pytest.importorskip("statsmodels")
    X, m = _two_blob_fit(ctype)
    a = m.inference(X, derivatives="autograd")
    b = m.inference(X, derivatives="numdiff")
    np.testing.assert_allclose(a.se, b.se, rtol=1e-3)
    a = m.inference(X, method="sandwich", derivatives="autograd")
    b = m.inference(X, method="sandwich", derivatives="numdiff")
    np.testing.assert_allclose(a.se, b.se, rtol=1e-3)


def test_normalised_weights_delta_method_keeps_the_constraint():
    pytest.importorskip("torch")
    X, m = _two_blob_fit("full")
    inf = m.inference(X)
    idx = inf.rows("weights (sum |w| = 1)")
    np.testing.assert_allclose(inf.params[idx], m.weights_, atol=1e-12)
    # sum_k sign(w_k) w_k = 1 exactly, so that combination has zero variance
    s = np.sign(m.weights_)
    cw = inf.cov[np.ix_(idx, idx)]
    assert abs(s @ cw @ s) < 1e-12 * np.trace(cw)
    ratio = inf.rows("weights")
    assert len(ratio) == 1 and inf.reference == int(np.argmax(np.abs(m.weights_)))
    np.testing.assert_allclose(inf.params[ratio[0]], np.min(m.weights_) / np.max(m.weights_))


def test_bootstrap_agrees_with_observed_information_and_counts_failures(monkeypatch):
    pytest.importorskip("torch")
    X = np.random.default_rng(5).normal(0.0, 1.0, size=(300, 1))
    m = _k1_fit(X)
    obs = m.inference(X)
    boot = m.inference(X, method="bootstrap", n_bootstrap=60, random_state=0, n_jobs=1)
    assert boot.cov is None and boot.n_failed == 0 and boot.replicates.shape == (60, 2)
    np.testing.assert_allclose(boot.se, obs.se, rtol=0.3)
    assert np.all(boot.ci_low < boot.params) and np.all(boot.params < boot.ci_high)
    par = m.inference(X, method="parametric-bootstrap", n_bootstrap=40, random_state=0, n_jobs=1)
    np.testing.assert_allclose(par.se, obs.se, rtol=0.35)
    # same seeds, same replicates
    again = m.inference(X, method="bootstrap", n_bootstrap=60, random_state=0, n_jobs=1)
    np.testing.assert_array_equal(again.replicates, boot.replicates)

    calls = {"n": 0}
    real = SquaredGaussianMixture._refit_from

    def flaky(self, theta0, Xb):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise FloatingPointError("diverged")
        return real(self, theta0, Xb)

    monkeypatch.setattr(SquaredGaussianMixture, "_refit_from", flaky)
    with pytest.warns(UserWarning, match="4 of 12 bootstrap replicates failed"):
        inf = m.inference(X, method="bootstrap", n_bootstrap=12, random_state=0, n_jobs=1)
    assert inf.n_failed == 4
    assert "4 of 12 bootstrap replicates failed" in str(m._summary(X, inf))
    monkeypatch.setattr(SquaredGaussianMixture, "_refit_from",
                        lambda self, t, Xb: (_ for _ in ()).throw(ValueError("no")))
    with pytest.raises(ValueError, match="failed in 5 of 5"):
        m.inference(X, method="bootstrap", n_bootstrap=5, random_state=0, n_jobs=1)


def test_inference_not_defined_says_why():
    X = np.random.default_rng(6).normal(size=(200, 1))
    # two identical components: only their sum is identified
    m = _set(SquaredGaussianMixture(2), [1.0, 0.5], [[0.0], [0.0]], [[[2.0]], [[2.0]]], "full", 1)
    m.reg_covar = 1e-6
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite.*not defined"):
        m.inference(X, derivatives="numdiff" if not _has_torch() else "auto")
    # a covariance on the reg_covar floor: a boundary maximum
    m = _set(SquaredGaussianMixture(1, reg_covar=0.5), [1.0], [[0.0]], [[[0.5]]], "full", 1)
    with pytest.raises(ValueError, match="reg_covar floor"):
        m.inference(X)
    m = _k1_fit(X)
    with pytest.raises(ValueError, match="method must be"):
        m.inference(X, method="hessian")
    with pytest.raises(ValueError, match="features"):
        m.inference(np.zeros((5, 2)))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SquaredGaussianMixture().inference(X)


def _has_torch():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def test_summary_holds_the_standard_errors():
    pytest.importorskip("statsmodels")
    pytest.importorskip("torch")
    X, m = _two_blob_fit("diag")
    inf = m.inference(X)
    s = m.summary(X)
    frames = s.to_frames()
    assert set(frames) == {"Components", "weights", "component 0", "component 1",
                           "weights (sum |w| = 1)"}
    for block in ("weights", "component 0", "component 1", "weights (sum |w| = 1)"):
        idx = inf.rows(block)
        np.testing.assert_allclose(frames[block]["std err"].astype(float), inf.se[idx])
        np.testing.assert_allclose(frames[block]["coef"].astype(float), inf.params[idx])
    assert s.info["Std. errors"] == "observed"
    assert s.info["Log-likelihood"] == pytest.approx(m.score(X) * len(X))
    assert s.info["BIC"] == pytest.approx(m.bic(X))
    assert "std err" in str(s) and "<table" in s._repr_html_()
    # without data: estimates only, and a note that says how to get errors
    s0 = m.summary()
    assert set(s0.to_frames()) == {"Components"}
    assert any("summary(X)" in n for n in s0.notes)


# --- torch path (issue #7) -----------------------------------------------------
@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_torch_tensor_in_same_optimum_numpy_out(ctype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1.5, size=(200, 2)), rng.normal(2, 0.5, size=(200, 2))]
    kw = dict(covariance_type=ctype, random_state=0, tol=1e-14, max_iter=3000)
    a = SquaredGaussianMixture(2, backend="numpy", **kw).fit(X)
    b = SquaredGaussianMixture(2, **kw).fit(torch.as_tensor(X))
    assert b.backend_ == "torch"
    for attr in ("weights_", "means_", "covariances_"):
        assert type(getattr(b, attr)) is np.ndarray
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), atol=1e-5)
    assert abs(a.lower_bound_ - b.lower_bound_) < 1e-9
    np.testing.assert_allclose(b.score_samples(torch.as_tensor(X)), a.score_samples(X), atol=1e-6)
    import pickle

    from sklearn.base import clone

    assert pickle.loads(pickle.dumps(b)).score(X) == pytest.approx(b.score(X))
    assert clone(b).get_params() == b.get_params()
    # float32 tensors are computed in float64 (as NumPy float32 input is)
    c = SquaredGaussianMixture(2, **kw).fit(torch.as_tensor(X, dtype=torch.float32))
    d = SquaredGaussianMixture(2, backend="numpy", **kw).fit(X.astype(np.float32))
    assert abs(c.lower_bound_ - d.lower_bound_) < 1e-9


def test_torch_backend_follows_the_config_device():
    pytest.importorskip("torch")
    from mixstat import config_context

    X = np.random.default_rng(1).normal(size=(100, 2))
    with config_context(device="cpu"):
        m = SquaredGaussianMixture(2, backend="torch", random_state=0).fit(X)
    assert m.backend_ == "torch"
    ref = SquaredGaussianMixture(2, backend="numpy", random_state=0).fit(X)
    assert abs(m.score(X) - ref.score(X)) < 1e-6


def test_cupy_is_a_clear_error():
    X = np.random.default_rng(1).normal(size=(30, 2))
    with pytest.raises(ValueError, match="no CuPy path.*torch"):
        SquaredGaussianMixture(2, backend="cupy").fit(X)


def _hole_data():
    """n=1000 from c(x) = N(x; 0, 4) - 0.6 N(x; 0.5, 0.5) (c changes sign:
    two zeros of the density around a small central bump)."""
    from mixstat.circuits._squared_gmm import _log_z

    w, mu, cov = np.array([1.0, -0.6]), np.array([[0.0], [0.5]]), np.array([[[4.0]], [[0.5]]])
    truth = SquaredGaussianMixture(2)
    truth.weights_, truth.means_, truth.covariances_ = w / 1.6, mu, cov
    truth.log_normalizer_ = _log_z(truth.weights_, mu, cov, "full")[0]
    truth.n_features_in_ = 1
    X = truth.sample(1000, random_state=2000)
    par = _Param(2, 1, "full", 1e-6)
    ll_truth_start = -SquaredGaussianMixture(2, tol=1e-10, max_iter=1000)._minimise(
        _nll_and_grad, par.pack(w, mu, cov), X, par)[1]
    return X, ll_truth_start


def test_default_init_reaches_the_optimum_where_random_restarts_do_not():
    X, ll_opt = _hole_data()
    kw = dict(tol=1e-10, max_iter=1000, random_state=0)
    new = SquaredGaussianMixture(2, **kw).fit(X)  # init='auto'
    old = SquaredGaussianMixture(2, init="random", n_init=5, **kw).fit(X)
    km = SquaredGaussianMixture(2, init="kmeans", **kw).fit(X)
    assert new.lower_bound_ > ll_opt - 1e-4  # the optimum L-BFGS finds from the truth
    assert old.lower_bound_ < ll_opt - 1e-2 and km.lower_bound_ < ll_opt - 1e-2
    assert np.any(new.weights_ < 0)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # CI once logged exp overflow here
@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_hole_starts_are_no_worse_than_kmeans_on_a_ring(ctype):
    from mixstat.circuits._squared_gmm import _nll_and_grad as f

    X = make_rings(600, radii=(2.0,), noise=0.3, random_state=3)
    kw = dict(covariance_type=ctype, random_state=0, max_iter=500)
    auto = SquaredGaussianMixture(3, **kw).fit(X)
    km = SquaredGaussianMixture(3, init="kmeans", **kw).fit(X)
    assert auto.lower_bound_ >= km.lower_bound_ - 1e-8  # 'auto' includes the k-means start
    m = SquaredGaussianMixture(3, init="hole", **kw)
    par = _Param(3, 2, ctype, m.reg_covar)
    starts = m._hole_starts(X, par, np.random.RandomState(0), f, X)
    assert 1 <= len(starts) <= 2
    for t in starts:  # a signed component inserted, finite starting likelihood
        assert np.sum(par.unpack(t)[0] < 0) >= 1 and np.isfinite(f(t, X, par)[0])


# ------------------------------------------------ numerical robustness ---
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("ctype", ["full", "spherical"])
@pytest.mark.parametrize("scale", [1e6, 1e-6])
def test_extreme_scale_fits_without_overflow(scale, ctype):
    """Rings scaled by 1e6 / 1e-6, the default init (k-means and hole starts):
    no RuntimeWarning (overflow in exp, NaN) anywhere, finite fitted values.
    At 1e-6 the default reg_covar (1e-6, absolute as in GaussianMixture) is a
    floor far above the data's variance; the fit is poor but finite."""
    X = make_rings(300, radii=(2.0,), noise=0.3, random_state=0) * scale
    m = SquaredGaussianMixture(3, covariance_type=ctype, random_state=0, max_iter=200).fit(X)
    assert np.isfinite(m.lower_bound_) and np.isfinite(m.log_normalizer_)
    for a in (m.weights_, m.means_, m.covariances_):
        assert np.all(np.isfinite(a))
    # lower_bound_ comes from fit()'s units, score from the fitted (data-unit)
    # parameters; at 1e-6 the reg_covar floor makes the components near-cancelling
    # (ill-conditioned c), so the two agree to ~1e-8 rather than 1e-12
    np.testing.assert_allclose(m.score(X), m.lower_bound_, rtol=1e-6)
    if scale > 1:  # the ring's scale, not the floor, sets the fit: same density up to units
        assert m.lower_bound_ + 2 * np.log(scale) > -3.3
        assert np.all(np.isfinite(m.sample(20, random_state=0)))


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_k1_known_answer_at_any_scale(scale):
    """K = 1 is the Gaussian MLE (covariance / 2) whatever the data's units
    (reg_covar scaled with them)."""
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([1, -1], [[1.0, 0.5], [0.5, 2.0]], size=400) * scale
    m = SquaredGaussianMixture(1, reg_covar=1e-6 * scale**2, tol=1e-12, max_iter=500,
                               random_state=0).fit(X)
    np.testing.assert_allclose(m.means_[0], X.mean(0), atol=1e-4 * scale)
    np.testing.assert_allclose(m.covariances_[0] / 2, np.cov(X.T, bias=True), atol=1e-4 * scale**2)
    g = GaussianMixture(1, reg_covar=1e-12 * scale**2).fit(X)
    np.testing.assert_allclose(m.lower_bound_, g.score(X), atol=1e-5)
    # standard errors scale with the units (the information is taken in fit()'s units;
    # in raw units at 1e6 its eigenvalues spanned 1e-23..1e-10 and it was refused)
    X1 = X / scale
    m1 = SquaredGaussianMixture(1, tol=1e-12, max_iter=500, random_state=0).fit(X1)
    units = np.r_[scale, scale, scale**2, scale**2, scale**2]
    for method in ("observed", "sandwich"):
        np.testing.assert_allclose(m.inference(X, method=method).se / units,
                                   m1.inference(X1, method=method).se, rtol=1e-4)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_objective_is_inf_not_overflow_outside_the_box(ctype):
    """A log-variance of 800 (where exp overflows) is outside the L-BFGS-B box:
    both objectives return +inf and a zero gradient, silently; inside the box
    they agree."""
    pytest.importorskip("torch")  # compared with the autograd objective
    X = make_rings(100, radii=(2.0,), noise=0.3, random_state=0)
    par = _Param(2, 2, ctype, 1e-6, X)
    lo, hi = par.bounds()
    rng = np.random.default_rng(0)
    th = np.clip(rng.normal(size=sum(par.sizes)) * 0.5, lo, hi)
    f, g = _nll_and_grad(th, X, par)
    f2, g2 = _nll_torch(th, X, par)
    assert np.isfinite(f) and abs(f - f2) < 1e-10
    np.testing.assert_allclose(g, g2, atol=1e-9)
    assert np.all(np.isfinite(lo[2:])) and np.all(np.isfinite(hi[2:]))  # means, covariances bounded
    th[-1] = 800.0
    for fun in (_nll_and_grad, _nll_torch):
        f, g = fun(th, X, par)
        assert f == np.inf and not np.any(g)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_cancelling_components_give_inf_not_nan():
    """w = (1, -1) on two identical components: c = 0 and Z = 0 everywhere;
    the objective is +inf (a line-search rejection), never NaN."""
    pytest.importorskip("torch")  # compared with the autograd objective
    X = np.random.default_rng(0).normal(size=(50, 2))
    par = _Param(2, 2, "diag", 1e-6, X)
    th = par.pack(np.array([1.0, -1.0]), np.zeros((2, 2)), np.ones((2, 2)))
    for fun in (_nll_and_grad, _nll_torch):
        f, g = fun(th, X, par)
        assert f == np.inf and not np.any(g)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_torch_backend_same_protection_at_extreme_scale():
    """The autograd path runs inside the same box: same fit as NumPy on data
    scaled by 1e6, no warnings."""
    pytest.importorskip("torch")
    X = make_rings(300, radii=(2.0,), noise=0.3, random_state=0) * 1e6
    kw = dict(covariance_type="spherical", init="kmeans", random_state=0, max_iter=200)
    a = SquaredGaussianMixture(3, backend="numpy", **kw).fit(X)
    b = SquaredGaussianMixture(3, backend="torch", **kw).fit(X)
    assert b.backend_ == "torch" and np.isfinite(b.lower_bound_)
    assert abs(a.lower_bound_ - b.lower_bound_) < 1e-4


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_partial_fit_stays_in_the_box():
    """Adam steps are clipped to the first batch's box: large learning rates
    cannot push a log-variance to overflow."""
    X = make_rings(400, radii=(2.0,), noise=0.3, random_state=0)
    m = SquaredGaussianMixture(2, covariance_type="spherical", init="kmeans", random_state=0,
                               learning_rate=50.0)
    for b in np.array_split(X, 20):
        m.partial_fit(b)
    lo, hi = m._par.bounds()
    assert np.all(m._theta >= lo) and np.all(m._theta <= hi)
    assert np.all(np.isfinite(m.score_samples(X)))


def test_sampling_refuses_nearly_cancelling_weights():
    """Opposite-sign components that almost coincide: Z is tiny against the
    positive terms, the acceptance rate ~1e-10; sample() says so instead of
    running for hours (an extreme-scale fit with the reg_covar floor did this)."""
    m = _set(SquaredGaussianMixture(2, covariance_type="spherical"), [1.0, -(1 - 1e-5)],
             [[0.0, 0.0], [1e-4, 0.0]], [1.0, 1.0], "spherical", 2)
    with pytest.raises(ValueError, match="nearly cancel"):
        m.sample(5, random_state=0)
