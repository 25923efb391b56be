import numpy as np
import pytest
from scipy import integrate

from mixstat.circuits import SquaredMixture1D
from mixstat.circuits._squared_1d import _log_density, _unpack


@pytest.mark.parametrize("family,hi", [("exponential", np.inf), ("gamma", np.inf), ("beta", 1.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_normalised_with_negative_weights(family, hi, seed):
    rng = np.random.default_rng(seed)
    K = 3
    theta = np.r_[rng.normal(size=K), rng.normal(scale=0.7, size=K * (1 if family == "exponential" else 2))]
    w, p = _unpack(theta, family, K, 1)
    assert np.any(w < 0) or np.any(w > 0)
    f = lambda t: np.exp(_log_density(np.array([[t]]), w, family, p)[0][0])  # noqa: E731
    pts = [1e-3, 0.5, 0.999] if family == "beta" else None
    val, _ = integrate.quad(f, 0, hi, limit=400, epsabs=1e-11, points=pts if hi != np.inf else None)
    assert abs(val - 1) < 1e-6


def test_fit_gamma_hole_and_bad_input():
    rng = np.random.default_rng(0)
    x = np.r_[rng.gamma(2.0, 1.0, 600), rng.gamma(30.0, 0.3, 600)][:, None]
    m1 = SquaredMixture1D(1, family="gamma", random_state=0).fit(x)
    m3 = SquaredMixture1D(3, family="gamma", random_state=0).fit(x)
    assert m3.score(x) > m1.score(x) + 0.2
    assert np.isclose(np.abs(m3.weights_).sum(), 1)
    assert m3.score_samples(np.array([[-1.0]]))[0] == -np.inf
    with pytest.raises(ValueError, match="needs data in"):
        SquaredMixture1D(2, family="beta").fit(x)

    # two features: components are products; normalised on a grid
    X2 = np.c_[x[:, 0], rng.gamma(3.0, 1.0, len(x))]
    m2 = SquaredMixture1D(2, family="gamma", n_init=1, random_state=0).fit(X2)
    g = np.linspace(1e-6, 60, 3001)
    XX, YY = np.meshgrid(g, g)
    p = np.exp(m2.score_samples(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
    assert abs(integrate.simpson(integrate.simpson(p, x=g), x=g) - 1) < 1e-3


@pytest.mark.parametrize("family", ["exponential", "gamma", "beta"])
def test_summary_holds_the_fitted_numbers(family):
    pytest.importorskip("statsmodels")
    from sklearn.exceptions import NotFittedError

    from mixstat.utils._summary import ModelSummary, format_value

    rng = np.random.default_rng(1)
    X = {"exponential": rng.exponential(1.0, (300, 1)),
         "gamma": rng.gamma(3.0, 1.0, (300, 2)),
         "beta": rng.beta(2.0, 5.0, (300, 1))}[family]
    est = SquaredMixture1D(2, family=family, n_init=1, random_state=0)
    with pytest.raises(NotFittedError, match="SquaredMixture1D.*summary"):
        est.summary()
    est.fit(X)
    s = est.summary()
    assert isinstance(s, ModelSummary)
    frame = s.to_frames()["Components"]
    np.testing.assert_allclose(frame["weight"].astype(float), est.weights_)
    names = {"exponential": ["rate"], "gamma": ["shape", "rate"], "beta": ["a", "b"]}[family]
    for pname, arr in zip(names, est.params_, strict=True):
        for j in range(X.shape[1]):
            np.testing.assert_allclose(frame[f"{pname} x{j}"].astype(float), arr[:, j])
    # the reported training log-likelihood is the model's own
    assert s.info["Mean log-lik (train)"] == pytest.approx(est.score(X), abs=1e-10)
    assert s.info["Negative weights"] == int(np.sum(est.weights_ < 0))
    assert s.info["Df"] == 1 + 2 * X.shape[1] * len(names)
    text, html = str(s), s._repr_html_()
    assert family in text and "<table" in html
    assert format_value(est.log_normalizer_) in text and format_value(est.log_normalizer_) in html
    assert any("No standard errors" in n for n in s.notes)


def test_backend_resolved_and_recorded_tensors_in():
    # torch tensors are copied to the host: the same fit as NumPy, backend_ says torch
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.0, (400, 1))
    ref = SquaredMixture1D(2, family="gamma", n_init=1, random_state=0).fit(x)
    assert ref.backend_ == "numpy"
    m = SquaredMixture1D(2, family="gamma", n_init=1, random_state=0).fit(torch.from_numpy(x))
    assert m.backend_ == "torch"
    np.testing.assert_allclose(m.weights_, ref.weights_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.score_samples(torch.from_numpy(x[:5])), ref.score_samples(x[:5]))
    assert "torch" in str(m.summary())
    with pytest.raises((ImportError, ValueError), match="(?i)cupy"):  # absent or no device
        SquaredMixture1D(2, backend="cupy").fit(x)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("family", ["exponential", "gamma"])
def test_scale_families_fit_the_same_at_any_scale(family):
    """Exponential and gamma fits are scale-equivariant (rates scale by 1/s,
    the log-likelihood shifts by -log s) down to 1e-15 and up to 1e15, where
    an absolute clip of the log-rates used to bind silently."""
    rng = np.random.default_rng(0)
    x = (rng.exponential(1.0, (200, 1)) if family == "exponential" else rng.gamma(3.0, 1.0, (200, 1)))
    kw = dict(family=family, n_init=1, random_state=0)
    ref = SquaredMixture1D(2, **kw).fit(x)
    # powers of two: the fit sees bit-identical data, so the same fit exactly
    for s in (2.0**-50, 2.0**50):
        m = SquaredMixture1D(2, **kw).fit(x * s)
        assert abs(m.lower_bound_ + np.log(s) - ref.lower_bound_) < 1e-10
        np.testing.assert_allclose(m.params_[-1] * s, ref.params_[-1], rtol=1e-8)
        np.testing.assert_allclose(m.score(x * s) + np.log(s), ref.score(x), atol=1e-10)
    # 1e+-15: the data the fit sees differ by a factor < 2 from those, so L-BFGS
    # (numerical gradient, one start) may stop at a neighbouring optimum; before,
    # the rates sat on the log-rate clip and the fit was far off
    for s in (1e-15, 1e15):
        m = SquaredMixture1D(2, **kw).fit(x * s)
        assert abs(m.lower_bound_ + np.log(s) - ref.lower_bound_) < 2e-2
        assert np.all(np.abs(np.log(m.params_[-1] * s)) < 10)


def test_all_zero_exponential_data_is_a_clear_error():
    with pytest.raises(ValueError, match="identically zero"):
        SquaredMixture1D(2, family="exponential").fit(np.zeros((20, 1)))
