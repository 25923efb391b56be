import itertools

import numpy as np
import pytest

pytest.importorskip("torch")

from mixstat.circuits import SquaredCircuitDensity  # noqa: E402
from mixstat.datasets import make_circuit_dataset  # noqa: E402


def _fit(X, **kw):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    params = dict(n_units=4, max_epochs=8, batch_size=128, learning_rate=2e-2, random_state=0)
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SquaredCircuitDensity(**params).fit(X)


def test_density_in_original_units_integrates_to_one():
    X = make_circuit_dataset("banana", 800, random_state=0, standardize=False) * [3.0, 0.5] + [10, -2]
    m = _fit(X, max_epochs=5)
    gx = np.linspace(X[:, 0].min() - 10, X[:, 0].max() + 10, 301)
    gy = np.linspace(X[:, 1].min() - 3, X[:, 1].max() + 3, 301)
    XX, YY = np.meshgrid(gx, gy)
    p = np.exp(m.score_samples(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
    from scipy import integrate

    tot = integrate.simpson(integrate.simpson(p, x=gx), x=gy)
    assert abs(tot - 1) < 1e-4
    marg = m.marginal([1])
    py = np.exp(marg.score_samples(gy[:, None]))
    np.testing.assert_allclose(py, integrate.simpson(p, x=gx, axis=1), rtol=1e-4, atol=1e-7)


def test_categorical_enumeration_and_sampling():
    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 3, 400), rng.integers(0, 2, 400), rng.integers(0, 4, 400)]
    X[:, 1] = (X[:, 0] + X[:, 1]) % 2
    m = _fit(X, inputs="categorical", region_graph="linear-tree")
    grid = np.array(list(itertools.product(range(3), range(2), range(4))))
    assert abs(np.exp(m.score_samples(grid)).sum() - 1) < 1e-10
    S = m.sample(50, random_state=0)
    assert S.dtype.kind == "i" and S.shape == (50, 3)
    assert np.all(S.max(0) < m.n_categories_)


def test_sample_shape_and_moments():
    X = make_circuit_dataset("moons", 600, random_state=0, standardize=False)
    m = _fit(X, n_units=3, max_epochs=3)
    S = m.sample(200, random_state=0)
    assert S.shape == (200, 2)
    assert np.all(np.abs(S.mean(0) - X.mean(0)) < 0.5)


@pytest.mark.parametrize("kw", [dict(weights="positive", squared=False), dict(weights="positive"),
                                dict(layer="tucker"), dict(n_replicas=2), dict(region_graph="linear-tree"),
                                dict(inputs="bernstein", degree=5), dict(inputs="bspline"),
                                dict(inputs="bspline", degree=1, n_knots=8), dict(dtype="float32")])
def test_variants_fit_and_are_finite(kw):
    X = make_circuit_dataset("rings8", 400, random_state=0)[:, :4]
    m = _fit(X, max_epochs=2, **kw)
    assert np.isfinite(m.score_samples(X)).all()
    assert len(m.valid_curve_) == m.n_iter_


def test_divergence_warns_and_keeps_best():
    from sklearn.exceptions import ConvergenceWarning

    X = make_circuit_dataset("funnel", 400, random_state=0)
    # unbounded Gaussian scales: with the default bound (max_scale=2) this step size no longer diverges
    with pytest.warns(ConvergenceWarning, match="diverged|non-finite"):
        m = SquaredCircuitDensity(n_units=4, max_epochs=30, learning_rate=1e6, max_scale=None,
                                  random_state=0).fit(X)
    assert m.diverged_
    assert np.isfinite(m.score_samples(X)).all()


def test_bad_input():
    X = make_circuit_dataset("moons", 200, random_state=0)
    with pytest.raises(ValueError, match="NaN|infinity"):
        SquaredCircuitDensity(max_epochs=1).fit(np.r_[X, [[np.nan, 1.0]]])
    with pytest.raises(ValueError, match="n_units"):
        SquaredCircuitDensity(n_units=0).fit(X)
    with pytest.raises(ValueError, match="squared"):
        SquaredCircuitDensity(weights="signed", squared=False).fit(X)
    m = _fit(X, max_epochs=1)
    with pytest.raises(ValueError, match="features"):
        m.score_samples(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN|infinity"):
        m.score_samples(np.array([[np.inf, 0.0]]))
    C = np.random.default_rng(0).integers(0, 3, size=(100, 2))
    mc = _fit(C, inputs="categorical", max_epochs=1)
    with pytest.raises(ValueError, match="domain"):
        mc.score_samples(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="non-negative integers"):
        _fit(np.c_[C[:, 0], C[:, 1] + 0.5], inputs="categorical")
    with pytest.raises(ValueError, match="features must be"):
        m.marginal([2])


@pytest.mark.parametrize("max_scale", [0.5, None])
def test_max_scale_bounds_gaussian_sigmas_in_data_units(max_scale):
    # the bound is in standard deviations of the training data (inputs see standardised data);
    # the density in the original units still integrates to one
    X = make_circuit_dataset("moons", 500, random_state=0, standardize=False) * [4.0, 0.25]
    m = _fit(X, max_epochs=3, max_scale=max_scale)
    sd = m.module_.input.scale().detach().numpy()
    if max_scale is None:
        assert m.module_.input.max_scale is None
    else:
        assert m.module_.input.max_scale == max_scale and sd.max() <= max_scale
    gx = np.linspace(X[:, 0].min() - 20, X[:, 0].max() + 20, 401)
    gy = np.linspace(X[:, 1].min() - 1.5, X[:, 1].max() + 1.5, 401)
    XX, YY = np.meshgrid(gx, gy)
    p = np.exp(m.score_samples(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
    from scipy import integrate

    assert abs(integrate.simpson(integrate.simpson(p, x=gx), x=gy) - 1) < 1e-4


def test_max_scale_default_and_bad_values():
    assert SquaredCircuitDensity().max_scale == 2.0
    X = make_circuit_dataset("moons", 100, random_state=0)
    with pytest.raises(ValueError, match="max_scale"):
        SquaredCircuitDensity(max_scale=0.0, max_epochs=1).fit(X)
    with pytest.raises(ValueError, match="max_scale"):
        SquaredCircuitDensity(max_scale=1e-4, max_epochs=1).fit(X)


def test_bspline_density_normalised_in_data_units_and_marginal():
    X = make_circuit_dataset("banana", 400, random_state=0, standardize=False) * [3.0, 0.5] + [10, -2]
    m = _fit(X, inputs="bspline", n_knots=6, degree=2, max_epochs=3)
    # Gauss-Legendre with 6 nodes per knot cell is exact for the squared spline
    z, w = np.polynomial.legendre.leggauss(6)
    u = np.linspace(0, 1, 7)
    g01 = (u[:-1, None] + np.diff(u)[:, None] * (1 + z) / 2).ravel()
    w01 = np.repeat(np.diff(u), 6) * np.tile(w, 6) / 2
    gx, gy = (m.shift_[j] + m.scale_[j] * g01 for j in range(2))
    wx, wy = (m.scale_[j] * w01 for j in range(2))
    XX, YY = np.meshgrid(gx, gy, indexing="ij")
    p = np.exp(m.score_samples(np.c_[XX.ravel(), YY.ravel()])).reshape(XX.shape)
    assert abs(wx @ p @ wy - 1) < 1e-8
    np.testing.assert_allclose(np.exp(m.marginal([0]).score_samples(gx[:, None])), p @ wy, rtol=1e-8)
    assert np.isneginf(m.score_samples([[X[:, 0].max() + 10 * m.scale_[0], 0.0]])).all()  # outside the support
    S = m.sample(30, random_state=0)
    assert np.all((S >= m.shift_) & (S <= m.shift_ + m.scale_))


def test_init_data_starts_means_at_training_points_and_bad_value():
    # init='data': every unit's means are the standardised coordinates of one training point
    # (checked at max_epochs=0, i.e. the start); init='random' keeps the N(0, 1) draw
    X = make_circuit_dataset("banana", 300, random_state=0, standardize=False) * [3.0, 0.5] + [10, -2]
    assert SquaredCircuitDensity().init == "kmeans"
    for init in ("data", "random"):
        m = _fit(X, max_epochs=0, early_stopping=False, init=init)
        mu = m.module_.input.mean.detach().numpy()  # (leaves, K)
        pts = np.empty((mu.shape[1], X.shape[1]))
        pts[:, m.module_.input.variables.numpy()] = mu.T
        Xs = (X - m.shift_) / m.scale_
        hit = [np.isclose(Xs, p, rtol=0, atol=1e-12).all(axis=1).any() for p in pts]
        assert all(hit) if init == "data" else not any(hit)
    with pytest.raises(ValueError, match="init"):
        SquaredCircuitDensity(init="bogus", max_epochs=1).fit(X)


def test_init_kmeans_starts_units_at_cluster_centres():
    # init='kmeans': unit k of every leaf sits at k-means centre k of the standardised training rows (the
    # mean of the rows nearest to it); scales stay as drawn; the start is a density
    X = make_circuit_dataset("rings", 400, random_state=1, standardize=False) * [2.0, 0.5] + [3, -1]
    m = _fit(X, max_epochs=0, early_stopping=False, init="kmeans", n_units=5)
    inp = m.module_.input
    v = inp.variables.numpy()
    mu = inp.mean.detach().numpy().T  # (K, leaves)
    Xs = (X - m.shift_) / m.scale_
    C = mu[:, np.argsort(v)]  # centres in feature order
    labels = ((Xs[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)  # nearest centre
    for k in range(5):
        members = Xs[labels == k]
        np.testing.assert_allclose(mu[k], members.mean(0)[v], atol=1e-6)
    ref = _fit(X, max_epochs=0, early_stopping=False, init="data", n_units=5)
    np.testing.assert_array_equal(inp.log_scale.detach().numpy(), ref.module_.input.log_scale.detach().numpy())
    g = np.linspace(-12, 12, 601)
    XX, YY = np.meshgrid(g, g, indexing="ij")
    Xg = np.c_[XX.ravel(), YY.ravel()] * m.scale_ + m.shift_
    dens = np.exp(m.score_samples(Xg)).reshape(XX.shape)
    dx, dy = (g[1] - g[0]) * m.scale_
    assert abs(dens.sum() * dx * dy - 1) < 1e-4
    # fewer distinct rows than units: repeated centres, and no k-means warning reaches the user
    import warnings

    X3 = np.repeat(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), 10, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m3 = SquaredCircuitDensity(n_units=8, max_epochs=0, early_stopping=False, random_state=0).fit(X3)
    assert np.isfinite(m3.score(X3))


@pytest.mark.parametrize("inputs", ["gaussian", "bernstein"])
def test_summary_log_likelihoods_on_the_data_scale(inputs):
    # features with standard deviations far from 1: the internal (standardised)
    # scale and the data's scale differ by sum(log(scale_)) nats per point
    X = make_circuit_dataset("banana", 600, random_state=0, standardize=False)
    X = X * [3.0, 5.0] + [10, -2]
    m = _fit(X, inputs=inputs, max_epochs=6)
    jac = float(np.sum(np.log(m.scale_)))
    assert jac > 2.0
    s = m.summary()
    score = m.score_samples(X).mean()
    # the summary's training log-likelihood is the model's own, in the data's units
    assert s.info["Mean log-lik (train)"] == pytest.approx(score, abs=1e-6)
    assert m.train_score_ == pytest.approx(m.score(X), abs=1e-6)
    assert "data" in s.info["Log-lik scale"]
    # the curve is the recorded one (internal scale) moved by the log-Jacobian
    title, rows, cols, vals = s.tables[0]
    assert "data scale" in title and cols == ["train", "valid"]
    last = vals[-1]
    assert float(last[0]) == pytest.approx(m.train_curve_[-1] - jac, abs=1e-12)
    assert float(last[1]) == pytest.approx(m.valid_curve_[-1] - jac, abs=1e-12)
    best = max(m.valid_curve_) - jac
    assert s.info["Best valid log-lik"] == pytest.approx(best, abs=1e-12)
    # ... which puts it next to score(X), where the raw curve is jac nats away
    assert abs(float(last[0]) - score) < 0.25 * jac
    assert abs(m.train_curve_[-1] - score) > 0.75 * jac
    assert any(f"{jac:.4f}" in n for n in s.notes)


def test_summary_categorical_has_no_rescaling():
    rng = np.random.default_rng(1)
    X = np.c_[rng.integers(0, 3, 300), rng.integers(0, 2, 300)]
    m = _fit(X, inputs="categorical", region_graph="linear-tree", max_epochs=3)
    s = m.summary()
    assert s.info["Mean log-lik (train)"] == pytest.approx(m.score(X), abs=1e-10)
    assert float(s.tables[0][3][-1][0]) == pytest.approx(m.train_curve_[-1], abs=1e-12)
