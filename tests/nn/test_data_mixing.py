import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixstat.nn.data_mixing import (
    AioliMixer,
    exponentiated_gradient_step,
    normalize_mixing_matrix,
)


class LinearLaw:
    """Synthetic groups whose losses obey L^{t+1} = L^t - A p exactly per step."""

    def __init__(self, A, L0):
        self.A, self.L = np.asarray(A, float), np.asarray(L0, float)
        self.calls = []

    def train(self, p, n_steps):
        p = np.asarray(p, float)
        assert np.all(p >= 0) and np.isclose(p.sum(), 1.0, atol=1e-6)
        self.calls.append((p.copy(), n_steps))
        self.L = self.L - n_steps * self.A @ p

    def eval(self):
        return self.L.copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.625, 1.0])
def test_exact_linear_law_is_recovered(dtype, gamma):
    rng = np.random.default_rng(0)
    k = 4
    A = rng.uniform(-0.01, 0.05, (k, k))
    law = LinearLaw(A, rng.uniform(2, 4, k))
    mix = AioliMixer(
        k, lp_rounds=3, lp_steps=2, one_hot_factor=gamma, dtype=dtype, random_state=0
    )
    A_hat = mix.learn_params(law.train, law.eval)
    assert A_hat.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-12
    # loss drops over lp_steps steps: estimate = lp_steps * A
    np.testing.assert_allclose(A_hat, 2 * A, rtol=tol * 100, atol=tol)
    assert len(law.calls) == 3 * k
    # each round visits every group once
    for r in range(3):
        js = [int(np.argmax(p)) for p, _ in law.calls[r * k : (r + 1) * k]]
        assert sorted(js) == list(range(k))
    p = mix.update()
    assert p.dtype == dtype and np.all(p >= 0) and np.isclose(p.sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        mix.A_, normalize_mixing_matrix(2 * A), rtol=1e-4, atol=tol
    )
    # closed-form EG step from uniform
    An = normalize_mixing_matrix(2 * A)
    expect = np.exp(0.2 * An.sum(0))
    np.testing.assert_allclose(p, expect / expect.sum(), rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000), st.floats(0.01, 5.0))
def test_proportions_stay_on_simplex(k, seed, eta):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(k, k))
    law = LinearLaw(A, np.zeros(k))
    mix = AioliMixer(
        k,
        eta=eta,
        lp_rounds=1,
        lp_steps=1,
        one_hot_factor=0.9 if k == 2 else 0.6,
        random_state=seed,
    )
    for _ in range(5):
        p = mix.step(law.train, law.eval)
        assert np.all(p >= 0) and np.all(np.isfinite(p))
        assert abs(p.sum() - 1) < 1e-12


def test_converges_to_group_with_largest_column_sum():
    A = np.array([[0.3, 0.0, 0.1], [0.1, 0.5, 0.0], [0.0, 0.1, 0.2]])
    law = LinearLaw(A, np.full(3, 10.0))
    mix = AioliMixer(3, eta=1.0, lp_rounds=1, lp_steps=1, random_state=0)
    for _ in range(60):
        p = mix.step(law.train, law.eval)
    assert np.argmax(p) == 1 and p[1] > 0.99


def test_ema_and_init():
    A = np.eye(2) * 0.1
    mix = AioliMixer(2, init=[3, 1], ema=0.5, one_hot_factor=0.9)
    np.testing.assert_allclose(mix.proportions_, [0.75, 0.25])
    mix.update(A)
    mix.update(2 * A)
    # EMA of normalised matrices (both normalise to eye/2) -> step from init
    e = np.array([0.75, 0.25]) * np.exp(0.2 * np.array([0.5, 0.5]))
    np.testing.assert_allclose(mix.proportions_, e / e.sum())


def test_eg_step_torch_and_numpy_agree():
    p = np.array([0.2, 0.3, 0.5])
    s = np.array([1.0, -2.0, 0.5])
    a = exponentiated_gradient_step(p, s, 0.7)
    b = exponentiated_gradient_step(torch.tensor(p), torch.tensor(s), 0.7)
    e = p * np.exp(0.7 * s)
    np.testing.assert_allclose(a, e / e.sum())
    np.testing.assert_allclose(b.numpy(), e / e.sum())
    z = exponentiated_gradient_step(np.array([0.0, 1.0]), np.array([5.0, 0.0]), 1.0)
    np.testing.assert_allclose(z, [0.0, 1.0])


def test_bad_input():
    with pytest.raises(ValueError, match="n_groups"):
        AioliMixer(1)
    with pytest.raises(ValueError, match="eta"):
        AioliMixer(3, eta=0)
    with pytest.raises(ValueError, match="one_hot_factor"):
        AioliMixer(4, one_hot_factor=0.25)
    with pytest.raises(ValueError, match="lp_steps"):
        AioliMixer(3, lp_steps=0)
    with pytest.raises(ValueError, match="init"):
        AioliMixer(3, init=[1, np.nan, 1])
    with pytest.raises(ValueError, match="dtype"):
        AioliMixer(3, dtype=np.int64)
    mix = AioliMixer(3)
    with pytest.raises(ValueError, match="learn_params"):
        mix.update()
    with pytest.raises(ValueError, match="A must"):
        mix.update(np.full((3, 3), np.inf))
    with pytest.raises(ValueError, match="3 group losses"):
        mix.learn_params(lambda p, n: None, lambda: np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        mix.learn_params(lambda p, n: None, lambda: np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="probability"):
        exponentiated_gradient_step(np.array([0.5, 0.6]), np.zeros(2), 1.0)
