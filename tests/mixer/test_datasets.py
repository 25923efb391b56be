import numpy as np
import pytest

from mixstat.datasets import make_ode_families


def test_lotka_volterra_reference_grids_and_invariant():
    d = make_ode_families("lotka_volterra", 9, 2, random_state=0)
    assert d.trajectories.shape == (18, 20, 2)
    np.testing.assert_allclose(d.t, np.arange(0, 10, 0.5))
    bd = sorted({(p["beta"], p["delta"]) for p in d.env_params})
    assert bd == sorted((b, g) for b in (0.5, 0.75, 1.0) for g in (0.5, 0.75, 1.0))
    a = make_ode_families("lotka_volterra", 4, 1, split="adapt", random_state=0)
    assert sorted({(p["beta"], p["delta"]) for p in a.env_params}) == sorted(
        (b, g) for b in (0.625, 1.125) for g in (0.625, 1.125))
    # conserved quantity V = delta x - gamma ln x + beta y - alpha ln y
    for traj, e in zip(d.trajectories, d.envs, strict=True):
        p = d.env_params[e]
        x, y = traj.T
        V = p["delta"] * x - p["gamma"] * np.log(x) + p["beta"] * y - p["alpha"] * np.log(y)
        np.testing.assert_allclose(V, V[0], rtol=1e-4)


def test_odebench_families_labels_and_energy():
    fams = ("harmonic", "damped_harmonic", "pendulum", "damped_double_well")
    d = make_ode_families(fams, 8, 3, random_state=1)
    assert d.trajectories.shape == (4 * 8 * 3, 20, 2)
    np.testing.assert_array_equal(d.env_family, np.repeat(np.arange(4), 8))
    np.testing.assert_array_equal(d.family, d.env_family[d.envs])
    assert len({tuple(sorted(p.items())) for p in d.env_params}) == 32  # distinct settings
    c0 = [p["c0"] for p in d.env_params if p["family"] == "harmonic"]
    assert min(c0) >= 0.9 * 2.1 - 1e-9 and max(c0) <= 1.1 * 2.1 + 1e-9
    for traj, e in zip(d.trajectories, d.envs, strict=True):
        p = d.env_params[e]
        if p["family"] == "harmonic":  # c0 x^2 + v^2 is conserved
            E = p["c0"] * traj[:, 0] ** 2 + traj[:, 1] ** 2
            np.testing.assert_allclose(E, E[0], rtol=1e-4)


def test_glycolytic_and_selkov_shapes():
    g = make_ode_families("glycolytic", 2, 1, random_state=0)
    assert g.trajectories.shape == (2, 20, 7)
    s = make_ode_families("selkov", 3, 1, random_state=0)
    assert s.trajectories.shape == (3, 11, 2)


def test_bad_input():
    with pytest.raises(ValueError, match="different state dimensions"):
        make_ode_families(("glycolytic", "selkov"))
    with pytest.raises(ValueError, match="Unknown families"):
        make_ode_families(("lorenz",))
    with pytest.raises(ValueError, match="increasing"):
        make_ode_families("harmonic", 1, 1, t=[0, 1, 0.5])
