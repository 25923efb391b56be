import numpy as np
import pytest

pytest.importorskip("torch")

from mixstat.datasets import make_ode_families  # noqa: E402
from mixstat.mixer import MixERODE, routing_purity  # noqa: E402

SMALL = dict(n_experts=2, context_dim=1, hidden=8, depth=2, n_outer=3, n_inner=(2, 2),
             gate_every=1, lr=(1e-2, 1e-2), adapt_steps=5, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_ode_families(("harmonic", "damped_double_well"), 3, 2,
                             t=np.linspace(0, 2, 6), random_state=0)


@pytest.fixture(scope="module")
def fitted(data):
    return MixERODE(**SMALL).fit(data.trajectories, data.t, data.envs)


def test_fit_attributes_predict_score(fitted, data):
    m = fitted
    E = 6
    assert m.contexts_.shape == (E, 2) and m.gate_coef_.shape == (3, 2)
    assert m.routing_.shape == (E,) and len(m.history_["loss"]) == 3
    np.testing.assert_array_equal(m.route(), m.routing_)
    np.testing.assert_array_equal(m.route(context=m.contexts_), m.routing_)
    pred = m.predict(data.trajectories[:, 0], data.t, data.envs)
    assert pred.shape == data.trajectories.shape
    np.testing.assert_allclose(pred[:, 0], data.trajectories[:, 0], rtol=1e-6)
    assert m.score(data.trajectories, data.t, data.envs) == pytest.approx(
        -np.mean((pred - data.trajectories) ** 2), rel=1e-6)
    assert 0.5 <= m.routing_purity(data.env_family) <= 1.0


def test_deterministic_given_random_state(fitted, data):
    m2 = MixERODE(**SMALL).fit(data.trajectories, data.t, data.envs)
    np.testing.assert_allclose(m2.contexts_, fitted.contexts_)
    np.testing.assert_allclose(m2.gate_coef_, fitted.gate_coef_)


def test_adapt_fits_only_new_contexts(data):
    m = MixERODE(**SMALL).fit(data.trajectories, data.t, data.envs)
    before = {k: v.detach().clone() for k, v in m.module_.state_dict().items()}
    new = make_ode_families(("harmonic", "damped_double_well"), 1, 1, t=data.t,
                            split="adapt", random_state=3)
    ctx = m.adapt(new.trajectories, new.t, new.envs + 100)
    assert ctx.shape == (2, 2) and np.abs(ctx).sum() > 0
    for k, v in m.module_.state_dict().items():
        assert (v == before[k]).all(), k
    out = m.predict(new.trajectories[:, 0], new.t, new.envs + 100)
    assert out.shape == new.trajectories.shape
    assert m.route(new.envs + 100).shape == (2,)
    with pytest.raises(ValueError, match="seen in fit"):
        m.adapt(data.trajectories, data.t, data.envs)


def test_gate_kinds(data):
    fixed = MixERODE(**{**SMALL, "gate": "fixed"}).fit(data.trajectories, data.t, data.envs)
    assert fixed.n_gate_updates_ == 0
    sgd = MixERODE(**{**SMALL, "gate": "softmax_gd"}).fit(data.trajectories, data.t, data.envs)
    assert sgd.n_gate_updates_ == 0
    assert not np.allclose(sgd.gate_coef_, fixed.gate_coef_)  # trained by gradient


def test_kmeans_gate_updates_happen_with_kmeanspp(data):
    m = MixERODE(**{**SMALL, "kmeans_init": "k-means++"}).fit(data.trajectories, data.t,
                                                              data.envs)
    assert m.n_gate_updates_ >= 1
    assert m.cluster_centers_.shape == (2, 2)


def test_routing_purity():
    assert routing_purity([0, 0, 1, 1], ["a", "a", "b", "b"]) == 1.0
    assert routing_purity([0, 0, 0, 0], ["a", "a", "b", "b"]) == 0.5
    assert routing_purity([1, 0, 1, 0], [0, 0, 1, 1]) == 0.5


def test_bad_input(data):
    X, t, envs = data.trajectories, data.t, data.envs
    with pytest.raises(ValueError, match="Fewer environments"):
        MixERODE(**{**SMALL, "n_experts": 4}).fit(X[envs < 3], t, envs[envs < 3])
    with pytest.raises(ValueError, match="at least 2 environments"):
        MixERODE(**SMALL).fit(X[envs == 0], t, envs[envs == 0])
    with pytest.raises(ValueError, match="same length"):
        MixERODE(**SMALL).fit([X[0], X[1][:-1]], t, [0, 1])
    with pytest.raises(ValueError, match="len\\(t\\)"):
        MixERODE(**SMALL).fit(X, t[:-1], envs)
    Xn = X.copy()
    Xn[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MixERODE(**SMALL).fit(Xn, t, envs)
    with pytest.raises(ValueError, match="one label per trajectory"):
        MixERODE(**SMALL).fit(X, t, envs[:-1])
    with pytest.raises(ValueError, match="increasing"):
        MixERODE(**SMALL).fit(X, t[::-1], envs)


def test_unknown_env_in_predict(fitted, data):
    with pytest.raises(ValueError, match="Unknown environment"):
        fitted.predict(data.trajectories[:1, 0], data.t, 999)


def test_routing_invariant_to_permuting_environments(fitted, data):
    # shuffle the trajectories and rename the environments so that their row
    # order in contexts_ is reversed: every environment keeps its expert
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(data.envs))
    names = np.array([f"env{9 - e}" for e in data.envs])
    m = MixERODE(**{**SMALL, "kmeans_init": "uniform"}).fit(
        data.trajectories[perm], data.t, names[perm])
    ref = dict(zip(fitted.envs_, fitted.routing_, strict=True))
    got = dict(zip(m.envs_, m.routing_, strict=True))
    assert all(got[f"env{9 - e}"] == ref[e] for e in ref)
    new_order = [f"env{9 - e}" for e in fitted.envs_]
    np.testing.assert_allclose(m._contexts_of(new_order), fitted.contexts_, atol=1e-5)
