"""Every function of mixstat.plotting on small fitted models (Agg backend)."""

import sys
import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402

from mixstat import plotting  # noqa: E402
from mixstat.circuits import SquaredGaussianMixture  # noqa: E402
from mixstat.datasets import make_khalili_moe, make_sumpe_synthetic  # noqa: E402
from mixstat.mixer import MixERRegressor  # noqa: E402
from mixstat.moe import GaussianMoERegressor, GaussianMoERegressorCV, moe_path  # noqa: E402
from mixstat.mpe import ROCMPE, KernelMeanMPE  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _gids(ax, prefix):
    return sorted(
        line.get_gid()
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith(prefix)
    )


# ----------------------------------------------------------------- fixtures ---
@pytest.fixture(scope="module")
def moe_data():
    X, y = make_khalili_moe(200, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def path(moe_data):
    X, y = moe_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return moe_path(
            X, y, n_components=2, n_alphas=5, eps=0.05, n_init=1, max_iter=100
        )


@pytest.fixture(scope="module")
def moe(moe_data):
    X, y = moe_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMoERegressor(
            2, alpha=0.02, n_init=1, max_iter=100, random_state=0
        ).fit(X, y)


@pytest.fixture(scope="module")
def sgm_1d():
    rng = np.random.default_rng(0)
    # a ring in 1-D: a broad bump with a hole in the middle
    X = np.r_[rng.normal(-2, 0.5, 150), rng.normal(2, 0.5, 150)][:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SquaredGaussianMixture(
            2, init="random", n_init=2, max_iter=100, random_state=0
        ).fit(X), X


@pytest.fixture(scope="module")
def sgm_3d():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)) * [1.0, 2.0, 0.5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SquaredGaussianMixture(
            2, covariance_type="diag", max_iter=50, random_state=0
        ).fit(X), X


@pytest.fixture(scope="module")
def mpe_fits():
    d = make_sumpe_synthetic(0.3, n_component=200, n_mixture=200, random_state=0)
    km = KernelMeanMPE(n_bootstrap=4, random_state=0).fit(d.X, d.y)
    roc = ROCMPE(random_state=0).fit(d.X, d.y)
    return d, km, roc


@pytest.fixture(scope="module")
def mixer():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(120, 1))
    y = np.where(X[:, 0] < 0, 1 + 2 * X[:, 0], -1 - X[:, 0]) + 0.05 * rng.normal(
        size=120
    )
    groups = np.where(X[:, 0] < 0, "left", "right")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MixERRegressor(2, random_state=0).fit(X, y), X, groups


# ----------------------------------------------------------- regularisation ---
def test_regularization_path_lines(path):
    ax = plotting.plot_regularization_path(
        path, alpha=path.alphas[2], feature_names=[f"f{j}" for j in range(6)]
    )
    K, p = path.coef.shape[1:]
    nonzero = {
        (k, j) for k in range(K) for j in range(p) if np.any(path.coef[:, k, j] != 0)
    }
    assert nonzero, "the path should open some coefficient"
    assert _gids(ax, "coef-") == sorted(f"coef-{k}-{j}" for k, j in nonzero)
    line = next(
        ln
        for ln in ax.get_lines()
        if ln.get_gid() == f"coef-{min(nonzero)[0]}-{min(nonzero)[1]}"
    )
    np.testing.assert_allclose(
        line.get_ydata(), path.coef[:, min(nonzero)[0], min(nonzero)[1]]
    )
    (sel,) = [ln for ln in ax.get_lines() if ln.get_gid() == "selected"]
    assert np.allclose(sel.get_xdata(), path.alphas[2])
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(path.alphas.max()) and hi == pytest.approx(
        path.alphas.min()
    )
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {f"f{j}" for _, j in nonzero} <= labels


def test_regularization_path_gates_and_errors(path):
    fig, ax = plt.subplots()
    out = plotting.plot_regularization_path(
        path, which="gate_coef", components=[0], ax=ax
    )
    assert out is ax
    assert all(g.startswith("gate_coef-0-") for g in _gids(ax, "gate_coef-"))
    with pytest.raises(ValueError, match="which"):
        plotting.plot_regularization_path(path, which="intercept")
    with pytest.raises(TypeError, match="MoEPath"):
        plotting.plot_regularization_path(np.zeros(3))
    with pytest.raises(ValueError, match="feature_names"):
        plotting.plot_regularization_path(path, feature_names=["a"])
    with pytest.raises(ValueError, match="component 5"):
        plotting.plot_regularization_path(path, components=[5])


def test_selection(moe_data):
    X, y = moe_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cv = GaussianMoERegressorCV(
            n_components=(1, 2), n_alphas=3, n_init=1, max_iter=50, random_state=0
        ).fit(X, y)
    ax = plotting.plot_selection(cv)
    assert len(_gids(ax, "criterion-")) == 2
    (star,) = [ln for ln in ax.get_lines() if ln.get_gid() == "selected"]
    assert star.get_xdata()[0] == pytest.approx(cv.alpha_)
    assert star.get_ydata()[0] == pytest.approx(cv.criterion_["bic"].min())
    assert "BIC" in ax.get_ylabel()
    with pytest.raises(NotFittedError):
        plotting.plot_selection(GaussianMoERegressorCV())


# -------------------------------------------------------------------- gates ---
def test_gates_one_feature(moe, moe_data):
    X, _ = moe_data
    ax = plotting.plot_gates(moe, X, features=0, grid_resolution=50)
    assert _gids(ax, "gate-") == ["gate-0", "gate-1"]
    ys = np.array(
        [ln.get_ydata() for ln in ax.get_lines() if ln.get_gid().startswith("gate")]
    )
    np.testing.assert_allclose(ys.sum(axis=0), 1.0, atol=1e-12)  # gates sum to one
    assert ax.get_xlim() == pytest.approx((X[:, 0].min(), X[:, 0].max()))
    assert ax.get_ylim() == pytest.approx((-0.02, 1.02))


def test_gates_two_features(moe, moe_data):
    X, _ = moe_data
    ax = plotting.plot_gates(moe, X, features=(0, 3), grid_resolution=20)
    assert len(ax.images) == 1
    img = ax.images[0].get_array()
    assert img.shape == (20, 20, 3)
    assert ax.images[0].get_extent() == pytest.approx(
        [X[:, 0].min(), X[:, 0].max(), X[:, 3].min(), X[:, 3].max()]
    )
    assert len(ax.collections) == 1  # the scatter of X
    assert len(ax.get_legend().get_patches()) == 2
    # the colour at the lower-left grid point mixes the two gate colours by g_k
    from matplotlib.colors import to_rgb

    x = X.mean(axis=0)
    x[0], x[3] = X[:, 0].min(), X[:, 3].min()
    g = moe.predict_gates(x[None])[0]
    rgb = np.array([to_rgb(c) for c in plotting._colors(2)])
    np.testing.assert_allclose(img[0, 0], g @ rgb, atol=1e-12)


def test_gates_hard_router_and_errors(mixer, moe, moe_data, sgm_1d):
    model, Xm, _ = mixer
    ax = plotting.plot_gates(model, Xm, grid_resolution=30)
    ys = np.array([ln.get_ydata() for ln in ax.get_lines()])
    assert set(np.unique(ys)) <= {0.0, 1.0}
    X, _ = moe_data
    with pytest.raises(NotFittedError):
        plotting.plot_gates(GaussianMoERegressor(), X)
    with pytest.raises(ValueError, match="one or two"):
        plotting.plot_gates(moe, X, features=(0, 1, 2))
    with pytest.raises(ValueError, match="out of range"):
        plotting.plot_gates(moe, X, features=9)
    with pytest.raises(ValueError, match="NaN"):
        plotting.plot_gates(moe, np.where(X > 2, np.nan, X))
    with pytest.raises(TypeError, match="predict_gates"):
        plotting.plot_gates(sgm_1d[0], sgm_1d[1])  # a density has no gates


# ---------------------------------------------------------- squared mixture ---
def test_squared_mixture_1d_components_square_to_density(sgm_1d):
    model, X = sgm_1d
    ax = plotting.plot_squared_mixture(model, X, n_points=200)
    comps = [ln for ln in ax.get_lines() if ln.get_gid().startswith("component-")]
    assert len(comps) == model.n_components
    (c_line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "c"]
    (dens,) = [ln for ln in ax.get_lines() if ln.get_gid() == "density"]
    x = dens.get_xdata()
    # the drawn density is the model's, and (c / sqrt Z)^2 is the density
    np.testing.assert_allclose(
        dens.get_ydata(), np.exp(model.score_samples(x[:, None])), rtol=1e-10
    )
    np.testing.assert_allclose(
        np.asarray(c_line.get_ydata()) ** 2, dens.get_ydata(), rtol=1e-8, atol=1e-14
    )
    np.testing.assert_allclose(
        sum(np.asarray(c.get_ydata()) for c in comps),
        c_line.get_ydata(),
        rtol=1e-10,
        atol=1e-14,
    )
    # negative weights are dashed
    for k, c in enumerate(comps):
        assert (c.get_linestyle() == "--") == (model.weights_[k] < 0)
    assert len(ax.patches) == 40  # histogram bars
    assert ax.get_xlim()[0] <= X.min() and ax.get_xlim()[1] >= X.max()


def test_squared_mixture_negative_component_carves_a_hole(sgm_1d):
    import copy

    from mixstat.circuits._squared_gmm import _log_z

    model = copy.deepcopy(sgm_1d[0])
    # a broad bump minus a narrow one at the same place: a hole at 0
    model.weights_ = np.array([0.6, -0.16])  # c(0) slightly below 0
    model.means_ = np.zeros((2, 1))
    model.covariances_ = np.array([[[4.0]], [[0.25]]])
    model.log_normalizer_, _ = _log_z(
        model.weights_, model.means_, model.covariances_, "full"
    )
    ax = plotting.plot_squared_mixture(model, n_points=201)
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    assert lines["component-0"].get_linestyle() == "-"
    assert lines["component-1"].get_linestyle() == "--"
    assert np.all(lines["component-1"].get_ydata() <= 0)
    x, dens = lines["density"].get_xdata(), lines["density"].get_ydata()
    c = np.asarray(lines["c"].get_ydata())
    assert c[100] < 0 and x[100] == pytest.approx(0.0)  # c(0) < 0 ...
    np.testing.assert_allclose(c**2, dens, rtol=1e-8, atol=1e-14)  # ... squared
    assert dens[100] < 0.5 * dens.max()  # the hole
    assert np.sum(dens) * (x[1] - x[0]) == pytest.approx(1.0, abs=1e-3)


def test_squared_mixture_marginals(sgm_3d):
    model, X = sgm_3d
    ax = plotting.plot_squared_mixture(model, features=1, n_points=100)
    assert [ln.get_gid() for ln in ax.get_lines()] == ["density"]
    x = ax.get_lines()[0].get_xdata()
    y = ax.get_lines()[0].get_ydata()
    assert np.sum(y) * (x[1] - x[0]) == pytest.approx(
        1.0, abs=2e-2
    )  # integrates to one
    ax2 = plotting.plot_squared_mixture(model, X, features=(0, 2), n_points=40)
    ells = [p for p in ax2.patches if isinstance(p, Ellipse)]
    assert len(ells) == model.n_components
    assert ells[0].center == pytest.approx(tuple(model.means_[0, [0, 2]]))
    assert len(ax2.collections) >= 2  # contour levels + scatter
    with pytest.raises(NotFittedError):
        plotting.plot_squared_mixture(SquaredGaussianMixture())
    with pytest.raises(ValueError, match="distinct indices"):
        plotting.plot_squared_mixture(model, features=(0, 0))
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_squared_mixture(model, X[:, :2])


# ---------------------------------------------------------------------- MPE ---
def test_mpe_forest(mpe_fits):
    d, km, roc = mpe_fits
    ax = plotting.plot_mpe(
        {"KM2": km, "ROC": roc, "given": (0.3, (0.2, 0.4))},
        kappa_star=d.kappa_star,
        kappa_max=d.kappa_max,
    )
    est = {
        ln.get_gid(): ln
        for ln in ax.get_lines()
        if (ln.get_gid() or "").startswith("est")
    }
    assert sorted(est) == ["estimate-0", "estimate-1", "estimate-2"]
    assert est["estimate-0"].get_xdata()[0] == pytest.approx(km.proportion_)
    assert est["estimate-1"].get_xdata()[0] == pytest.approx(roc.proportion_)
    assert est["estimate-0"].get_ydata()[0] == 2  # first row on top
    iv = {
        c.get_gid(): c
        for c in ax.collections
        if (c.get_gid() or "").startswith("interval")
    }
    assert sorted(iv) == ["interval-0", "interval-2"]  # ROCMPE has no interval
    (seg,) = iv["interval-0"].get_segments()
    assert sorted(seg[:, 0]) == pytest.approx(sorted(km.proportion_interval_))
    (seg,) = iv["interval-2"].get_segments()
    assert sorted(seg[:, 0]) == pytest.approx([0.2, 0.4])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["given", "ROC", "KM2"]
    gids = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
    assert gids["kappa_star"].get_xdata()[0] == pytest.approx(d.kappa_star)
    assert gids["kappa_max"].get_xdata()[0] == pytest.approx(d.kappa_max)
    assert ax.get_xlim() == (0.0, 1.0)
    assert len(ax.get_legend().get_texts()) == 2


def test_mpe_errors():
    with pytest.raises(NotFittedError):
        plotting.plot_mpe(KernelMeanMPE())
    with pytest.raises(TypeError, match="fitted mixstat.mpe"):
        plotting.plot_mpe(["a"])
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_mpe([0.1, 0.2], labels=["a"])
    ax = plotting.plot_mpe(0.25)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["estimate 0"]
    ax = plotting.plot_mpe((0.25, (0.1, 0.3)))  # one (estimate, interval) pair
    (seg,) = ax.collections[0].get_segments()
    assert sorted(seg[:, 0]) == pytest.approx([0.1, 0.3])


# -------------------------------------------------------------------- MixER ---
def test_routing_regressor(mixer):
    model, X, groups = mixer
    ax = plotting.plot_routing(model, groups=groups, normalize=False)
    table = np.asarray(ax.images[0].get_array())
    assert table.shape == (2, 2)
    assert table.sum() == len(X)
    # the gate separates x < 0 from x > 0: each environment goes to one expert
    assert sorted(table.max(axis=1)) == sorted(
        np.bincount(np.unique(groups, return_inverse=True)[1])
    )
    assert [t.get_text() for t in ax.get_yticklabels()] == ["left", "right"]
    assert ax.get_xlabel() == "expert"
    assert len(ax.texts) == 4
    with pytest.raises(ValueError, match="groups="):
        plotting.plot_routing(model)
    with pytest.raises(NotFittedError):
        plotting.plot_routing(MixERRegressor(), groups=groups)


def test_routing_array():
    ax = plotting.plot_routing(np.array([0, 0, 1, 2, 2, 2]), groups=list("aabbbb"))
    table = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(table, [[1, 0, 0], [0, 0.25, 0.75]])
    assert ax.images[0].get_clim() == (0.0, 1.0)
    with pytest.raises(ValueError, match="one label per"):
        plotting.plot_routing(np.array([0, 1]), groups=["a"])
    with pytest.raises(ValueError, match="expert indices"):
        plotting.plot_routing(np.array([0.5, 1.0]))


@pytest.fixture(scope="module")
def mixer_ode():
    pytest.importorskip("torch")
    from mixstat.datasets import make_ode_families
    from mixstat.mixer import MixERODE

    data = make_ode_families(
        ("harmonic", "damped_double_well"), 2, 1, t=np.linspace(0, 2, 5), random_state=0
    )
    m = MixERODE(
        n_experts=2,
        context_dim=1,
        hidden=8,
        depth=2,
        n_outer=3,
        n_inner=(2, 2),
        gate_every=1,
        lr=(1e-2, 1e-2),
        random_state=0,
    )
    return m.fit(data.trajectories, data.t, data.envs), data


def test_routing_ode_and_training_curve(mixer_ode):
    from mixstat.mixer import MixERODE

    model, data = mixer_ode
    E = model.envs_.size
    ax = plotting.plot_routing(model)
    table = np.asarray(ax.images[0].get_array())
    assert table.shape == (E, 2)
    np.testing.assert_allclose(table[np.arange(E), model.routing_], 1.0)
    ax = plotting.plot_routing(model, groups=data.env_family)
    assert np.asarray(ax.images[0].get_array()).shape == (
        len(np.unique(data.env_family)),
        2,
    )
    ax = plotting.plot_routing(model, history=True)
    table = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
    ax = plotting.plot_training_curve(model)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), model.history_["loss"])
    assert ax.get_xlabel() == "outer step"
    with pytest.raises(NotFittedError):
        plotting.plot_routing(MixERODE())


# --------------------------------------------------------- training curves ---
def test_training_curves(moe):
    ax = plotting.plot_training_curve(moe)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), moe.lower_bounds_)
    assert np.all(np.diff(line.get_ydata()) >= -1e-10)  # EM never decreases it
    ax = plotting.plot_training_curve(
        {"a": [3.0, 2.0, 1.0], "b": [2.0, 1.5]}, logy=True
    )
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    ax = plotting.plot_training_curve([1.0, 0.5], ylabel="nll")
    assert ax.get_ylabel() == "nll" and ax.get_legend() is None
    with pytest.raises(ValueError, match="positive"):
        plotting.plot_training_curve([1.0, -1.0], logy=True)
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_training_curve([])
    with pytest.raises(NotFittedError):
        plotting.plot_training_curve(GaussianMoERegressor())


def test_training_curve_circuit():
    pytest.importorskip("torch")
    from mixstat.circuits import SquaredCircuitDensity

    X = np.random.default_rng(0).normal(size=(200, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = SquaredCircuitDensity(
            n_units=2, max_epochs=3, batch_size=64, random_state=0
        ).fit(X)
    ax = plotting.plot_training_curve(m)
    lines = ax.get_lines()
    assert len(lines) == 1 + bool(len(m.valid_curve_))
    np.testing.assert_allclose(lines[0].get_ydata(), m.train_curve_)
    assert ax.get_xlabel() == "epoch"


def test_training_curve_missing(sgm_1d):
    model, _ = sgm_1d
    with pytest.raises(TypeError, match="records no training curve"):
        plotting.plot_training_curve(model)


# -------------------------------------------------------------- no matplotlib ---
def test_import_error_names_the_plot_extra(monkeypatch, path):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"mixstat\[plot\]"):
        plotting.plot_regularization_path(path)


def test_returns_given_axes_and_never_shows(monkeypatch, path, mpe_fits):
    def boom(*a, **k):  # pragma: no cover - would mean a bug
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", boom)
    fig, axes = plt.subplots(1, 2)
    assert plotting.plot_regularization_path(path, ax=axes[0]) is axes[0]
    assert plotting.plot_mpe(mpe_fits[1], ax=axes[1]) is axes[1]


def test_import_does_not_import_matplotlib():
    import subprocess

    code = (
        "import sys, mixstat.plotting; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------- pandas and the MoE fit ---
@pytest.fixture(scope="module")
def moe_frame():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n = 200
    x = rng.uniform(-2, 2, n)
    z = rng.normal(size=n)
    y = np.where(x > 0, 1 + 2 * x, -1 - x) + 0.5 * z + 0.2 * rng.normal(size=n)
    X = pd.DataFrame({"dose": x, "age": z})
    ys = pd.Series(y, name="response")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = GaussianMoERegressor(n_components=2, random_state=0).fit(X, ys)
    return m, X, ys


def test_plot_moe_fit_lines_labels_and_colours(moe_frame):
    m, X, y = moe_frame
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        ax = plotting.plot_moe_fit(m, X, y, feature="dose", n_points=50)
    assert [ln.get_gid() for ln in ax.get_lines()] == ["expert-0", "expert-1", "mean"]
    assert ax.get_xlabel() == "dose" and ax.get_ylabel() == "response"
    # the lines are the model's predictions on the grid, age at its mean
    pd = pytest.importorskip("pandas")
    grid = np.linspace(X["dose"].min(), X["dose"].max(), 50)
    Xg = pd.DataFrame({"dose": grid, "age": np.full(50, X["age"].mean())})
    for k in range(2):
        ln = ax.get_lines()[k]
        np.testing.assert_allclose(ln.get_xdata(), grid)
        np.testing.assert_allclose(ln.get_ydata(), m.predict_experts(Xg)[:, k])
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), m.predict(Xg))
    # the points: (dose, y), coloured by the posterior's mix of expert colours
    (pts,) = [c for c in ax.collections if c.get_gid() == "data"]
    np.testing.assert_allclose(pts.get_offsets(), np.c_[X["dose"], y])
    from matplotlib.colors import to_rgb

    rgb = np.array([to_rgb(c) for c in plotting._colors(2)])
    np.testing.assert_allclose(
        pts.get_facecolors()[:, :3], np.clip(m.predict_posterior(X, y) @ rgb, 0, 1),
        atol=1e-12,
    )


def test_plot_moe_fit_single_feature_array_and_label_colour():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (150, 1))
    y = np.where(x[:, 0] < 0, 1 + 2 * x[:, 0], -1 - x[:, 0])
    y = y + 0.05 * rng.normal(size=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = GaussianMoERegressor(n_components=2, random_state=0).fit(x, y)
    ax = plotting.plot_moe_fit(m, x, y, colour="label")  # feature optional with one
    assert _gids(ax, "expert-") == ["expert-0", "expert-1"]
    assert _gids(ax, "mean") == ["mean"]
    assert ax.get_xlabel() == "x0" and ax.get_ylabel() == "y"
    (pts,) = [c for c in ax.collections if c.get_gid() == "data"]
    assert len({tuple(c) for c in np.round(pts.get_facecolors(), 6)}) <= 2


def test_plot_moe_fit_hard_router_and_errors(mixer, moe_frame):
    model, Xm, _ = mixer
    rng = np.random.default_rng(0)
    ym = model.predict(Xm) + 0.01 * rng.normal(size=Xm.shape[0])
    ax = plotting.plot_moe_fit(model, Xm, ym)
    assert _gids(ax, "expert-") == ["expert-0", "expert-1"]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(
        line.get_ydata(), model.experts_[0].predict(line.get_xdata()[:, None])
    )
    m, X, y = moe_frame
    with pytest.raises(ValueError, match="choose"):
        plotting.plot_moe_fit(m, X, y)
    with pytest.raises(ValueError, match="not a column name"):
        plotting.plot_moe_fit(m, X, y, feature="weight")
    with pytest.raises(ValueError, match="out of range"):
        plotting.plot_moe_fit(m, X, y, feature=5)
    with pytest.raises(ValueError, match="colour"):
        plotting.plot_moe_fit(m, X, y, feature=0, colour="red")
    with pytest.raises(ValueError, match="values for"):
        plotting.plot_moe_fit(m, X, y[:10], feature=0)
    with pytest.raises(ValueError, match="lacks the column"):
        plotting.plot_moe_fit(m, X[["dose"]], y, feature=0)
    with pytest.raises(NotFittedError):
        plotting.plot_moe_fit(GaussianMoERegressor(), X, y, feature=0)


def test_plot_moe_fit_median_and_reordered_columns(moe_frame):
    m, X, y = moe_frame
    ax = plotting.plot_moe_fit(m, X[["age", "dose"]], y, feature="dose", fixed="median")
    pd = pytest.importorskip("pandas")
    grid = ax.get_lines()[2].get_xdata()
    Xg = pd.DataFrame({"dose": grid, "age": np.full(grid.size, X["age"].median())})
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), m.predict(Xg))
    assert "median" in ax.get_title()


def test_plot_gates_dataframe_no_feature_name_warning(moe_frame, mixer):
    pd = pytest.importorskip("pandas")
    m, X, _ = moe_frame
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plotting.plot_gates(m, X, features="dose", grid_resolution=20)
        assert ax.get_xlabel() == "dose"
        ax = plotting.plot_gates(m, X, features=("dose", "age"), grid_resolution=10)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("dose", "age")
        model, Xm, _ = mixer
        Xf = pd.DataFrame(Xm, columns=["u"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mf = MixERRegressor(2, random_state=0).fit(Xf, model.predict(Xm))
        ax = plotting.plot_gates(mf, Xf, grid_resolution=20)
        assert ax.get_xlabel() == "u"


def test_squared_mixture_dataframe_names_no_warning():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(150, 2)), columns=["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = SquaredGaussianMixture(2, max_iter=20, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plotting.plot_squared_mixture(m, X, n_points=20)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("a", "b")
        ax = plotting.plot_squared_mixture(m, X, features=[1], n_points=20)
        assert ax.get_xlabel() == "b"


def test_regularization_path_takes_names_from_the_path(path):
    from types import SimpleNamespace

    p = path.coef.shape[2]
    named = SimpleNamespace(
        alphas=path.alphas, coef=path.coef, feature_names=[f"v{j}" for j in range(p)]
    )
    ax = plotting.plot_regularization_path(named)
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert labels and all(t.startswith("v") for t in labels)
