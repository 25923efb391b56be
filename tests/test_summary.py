"""summary() of the MPE estimators and of the MixER estimators: the text and
the HTML hold the fitted numbers; before fit it raises NotFittedError."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.tree import DecisionTreeRegressor

pytest.importorskip("statsmodels")

from mixstat.mixer import MixERRegressor  # noqa: E402
from mixstat.mpe import (  # noqa: E402
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    KernelMeanMPE,
    ROCMPE,
    RegroupingMPE,
    SubsamplingMPE,
    TIcEMPE,
)
from mixstat.utils._summary import ModelSummary, format_value  # noqa: E402


@pytest.fixture(scope="module")
def pu_data():
    rng = np.random.default_rng(0)
    X_h = rng.normal(2.0, 1.0, (150, 1))
    X_f = np.r_[rng.normal(2.0, 1.0, (45, 1)), rng.normal(-1.0, 1.0, (105, 1))]
    X = np.r_[X_h, X_f]
    y = np.r_[np.ones(150, int), np.zeros(150, int)]
    return X, y


def _has(s, value):
    """The summary's text and HTML both show ``value`` formatted as in the table."""
    txt = format_value(value)
    return txt in s.as_text() and txt in s.as_html()


ALL_MPE = [
    lambda: KernelMeanMPE(random_state=0),
    lambda: ROCMPE(random_state=0),
    lambda: BestBinMPE(random_state=0),
    lambda: ElkanNotoMPE(random_state=0),
    lambda: DEDPULMPE(random_state=0),
    lambda: TIcEMPE(random_state=0),
    lambda: SubsamplingMPE(acceptance=lambda X: np.full(len(X), 0.8), random_state=0),
    lambda: RegroupingMPE(random_state=0),
]


@pytest.mark.parametrize("make", ALL_MPE)
def test_mpe_summary_holds_estimate_and_sizes(make, pu_data):
    X, y = pu_data
    est = make()
    with pytest.raises(NotFittedError, match="summary"):
        est.summary()
    est.fit(X, y)
    s = est.summary()
    assert isinstance(s, ModelSummary)
    assert _has(s, est.proportion_)
    assert s.info["Component sample (H, y=1)"] == 150
    assert s.info["Mixture sample (F, y=0)"] == 150
    assert "kappa" in s.as_text()
    # no bootstrap: the note says how to get an interval
    assert any("n_bootstrap" in n for n in s.notes)
    assert "<table" in s._repr_html_()


def test_mpe_summary_bootstrap_interval_and_failures(pu_data):
    X, y = pu_data
    est = KernelMeanMPE(n_bootstrap=6, random_state=0).fit(X, y)
    s = est.summary()
    lo, hi = est.proportion_interval_
    assert _has(s, lo) and _has(s, hi)
    assert s.info["Bootstrap replicates"] == 6
    assert s.info["Failed replicates"] == est.n_bootstrap_failed_ == 0
    # a bootstrap where some refits fail: they are counted in the summary
    est.bootstrap_proportions_ = np.r_[est.bootstrap_proportions_[:4], np.nan, np.nan]
    s = est.summary()
    assert s.info["Failed replicates"] == 2
    assert "2 replicate(s) failed" in s.as_text()
    assert "from 4 replicates" in s.as_html()


def test_kernel_mean_summary_details(pu_data):
    X, y = pu_data
    est = KernelMeanMPE(random_state=0).fit(X, y)
    s = est.summary()
    for v in (est.km1_, est.km2_, est.kernel_width_, est.rank_):
        assert _has(s, v)
    assert "kappa(F|H)" in s.as_text()
    assert s.info["Backend"] == est.backend_


def test_bestbin_summary_confidence_bound(pu_data):
    X, y = pu_data
    est = BestBinMPE(random_state=0).fit(X, y)
    s = est.summary()
    lo, hi = est.confidence_bound_
    assert f"({format_value(lo)}, {format_value(hi)})" in s.as_text()
    assert _has(s, est.threshold_)


def test_subsampling_summary_base_figures(pu_data):
    X, y = pu_data
    est = SubsamplingMPE(acceptance=lambda X: np.full(len(X), 0.8), n_resamples=2,
                         random_state=0).fit(X, y)
    s = est.summary()
    assert _has(s, est.base_proportion_)
    assert _has(s, est.acceptance_rate_)
    np.testing.assert_allclose(est.proportion_,
                               np.mean(est.resample_proportions_))
    assert "SuMPE" in s.notes[0]


def _pw_linear(rng, n=300):
    X = rng.uniform(-2, 2, (n, 2))
    y = np.where(X[:, 0] < 0, 1.0 + 2.0 * X[:, 1], -1.0 - 3.0 * X[:, 1])
    return X, y + 0.05 * rng.normal(size=n)


def test_mixer_regressor_summary():
    X, y = _pw_linear(np.random.default_rng(1))
    est = MixERRegressor(n_experts=2, random_state=0)
    with pytest.raises(NotFittedError, match="MixERRegressor.*summary"):
        est.summary()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    s = est.summary()
    # routed counts and per-expert MSE agree with a recomputation
    counts = np.bincount(est.labels_, minlength=2)
    np.testing.assert_array_equal(est.expert_n_samples_, counts)
    assert counts.sum() == len(X)
    for k, e in enumerate(est.experts_):
        idx = est.labels_ == k
        mse = np.mean((e.predict(X[idx]) - y[idx]) ** 2)
        np.testing.assert_allclose(est.expert_mse_[k], mse)
        assert _has(s, est.expert_mse_[k])
        for c in np.r_[e.coef_, e.intercept_]:
            assert _has(s, c)
    for c in est.gate_coef_.ravel():
        assert _has(s, c)
    assert s.info["Gate updates"] == est.n_gate_updates_
    assert s.info["Backend"] == "numpy"
    assert "Expert coefficients" in s.as_text()
    assert "<table" in s._repr_html_()


def test_mixer_regressor_summary_nonlinear_experts():
    X, y = _pw_linear(np.random.default_rng(2), 200)
    est = MixERRegressor(n_experts=2, expert=DecisionTreeRegressor(max_depth=2),
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    s = est.summary()
    assert "Expert coefficients" not in s.as_text()
    assert "DecisionTreeRegressor" in s.as_text()
    assert any("not linear" in n for n in s.notes)


def test_mixer_ode_summary():
    pytest.importorskip("torch")
    from mixstat.datasets import make_ode_families
    from mixstat.mixer import MixERODE

    data = make_ode_families(("harmonic", "damped_double_well"), 3, 2,
                             t=np.linspace(0, 2, 6), random_state=0)
    est = MixERODE(n_experts=2, context_dim=1, hidden=8, depth=2, n_outer=3, n_inner=(2, 2),
                   gate_every=1, lr=(1e-2, 1e-2), random_state=0)
    with pytest.raises(NotFittedError, match="MixERODE"):
        est.summary()
    est.fit(data.trajectories, data.t, data.envs)
    s = est.summary()
    E = est.envs_.size
    assert s.info["Environments"] == E
    load = np.bincount(est.routing_, minlength=2)
    assert load.sum() == E
    text = s.as_text()
    for k in range(2):
        assert f"expert {k}" in text
    assert _has(s, est.history_["loss"][-1])
    for v in est.env_loss_:
        assert _has(s, v)
    assert np.all(np.isfinite(est.env_loss_)) and np.all(est.env_loss_ >= 0)
    assert "<table" in s._repr_html_()


# --- squared mixtures and circuits -------------------------------------------
def _ring(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(t), np.sin(t)] * 2 + rng.normal(scale=0.2, size=(n, 2))


def test_squared_gaussian_mixture_summary():
    from mixstat.circuits import SquaredGaussianMixture

    with pytest.raises(NotFittedError, match="summary"):
        SquaredGaussianMixture().summary()
    m = SquaredGaussianMixture(n_components=3, random_state=0).fit(_ring())
    s = m.summary()
    text, html = str(s), s._repr_html_()
    assert "Squared subtractive Gaussian mixture" in text and "<table" in html
    frame = s.to_frames()["Components"]
    np.testing.assert_allclose(frame["weight"].astype(float), m.weights_)
    np.testing.assert_allclose(frame["mean x1"].astype(float), m.means_[:, 1])
    assert s.info["Negative weights"] == int(np.sum(m.weights_ < 0))
    assert s.info["Mean log-lik (train)"] == pytest.approx(m.lower_bound_)


def test_squared_circuit_density_summary():
    pytest.importorskip("torch")
    from mixstat.circuits import SquaredCircuitDensity

    with pytest.raises(NotFittedError, match="summary"):
        SquaredCircuitDensity().summary()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = SquaredCircuitDensity(max_epochs=2, n_units=4, random_state=0).fit(_ring(300))
    s = c.summary()
    assert s.info["Epochs"] == c.n_iter_
    assert s.info["Parameters"] == sum(p.numel() for p in c.module_.parameters())
    # the table is on the data's scale: the internal curve minus log|Jacobian|
    curve = s.to_frames()["Training curve (mean log-likelihood per point, data scale, nats)"]
    assert float(curve["train"].iloc[-1]) == pytest.approx(
        c.train_curve_[-1] - float(np.sum(np.log(c.scale_))))
    assert "+-^2" in str(s)
