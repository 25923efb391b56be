"""Mixture of denoisers: one-hot gates select a denoiser exactly; on a 2-D toy
two denoisers that each know one condition are beaten by their learned mixture."""

import math

import pytest
import torch
from torch import nn

from mixstat.nn.denoiser_mixture import DenoiserGate, DenoiserMixture


class _ConstGate(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x, t, conds):
        return self.logits.to(x.dtype).expand((x.shape[0],) + tuple(self.logits.shape[1:]))


class _MLPDenoiser(nn.Module):
    def __init__(self, cond_dim, hidden=64, dtype=torch.float32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 + 1 + cond_dim, hidden, dtype=dtype), nn.SiLU(),
            nn.Linear(hidden, hidden, dtype=dtype), nn.SiLU(), nn.Linear(hidden, 2, dtype=dtype),
        )

    def forward(self, x, t, cond):
        return self.net(torch.cat([x, t[:, None], cond], dim=1))


def _alpha_bar(t):
    return torch.cos(0.5 * math.pi * t) ** 2


def _data(n, gen):
    """x = (2 s_a, 2 s_b) + 0.3 noise; condition a fixes the sign of x_1, b that of x_2."""
    a = torch.randint(0, 2, (n,), generator=gen)
    b = torch.randint(0, 2, (n,), generator=gen)
    x0 = torch.stack([4.0 * a - 2.0, 4.0 * b - 2.0], 1) + 0.3 * torch.randn(n, 2, generator=gen)
    ca = nn.functional.one_hot(a, 2).float()
    cb = nn.functional.one_hot(b, 2).float()
    return x0, ca, cb


def _noisy(x0, gen):
    t = 0.02 + 0.96 * torch.rand(x0.shape[0], generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    ab = _alpha_bar(t)[:, None]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t, eps


def _train(params, loss_fn, steps, lr=3e-3):
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("j", [0, 1, 2])
def test_one_hot_gate_is_exact(dtype, j):
    torch.manual_seed(0)
    dens = [_MLPDenoiser(2, 8, dtype) for _ in range(3)]
    x = torch.randn(5, 2, dtype=dtype)
    t = torch.rand(5, dtype=dtype)
    conds = [torch.randn(5, 2, dtype=dtype) for _ in range(3)]
    ref = dens[j](x, t, conds[j])
    hard = torch.full((1, 3), -math.inf)
    hard[0, j] = 0.0
    big = torch.zeros(1, 3)
    big[0, j] = 800.0  # exp(-800) underflows to 0 in float32 and float64
    for logits in (hard, big):
        mix = DenoiserMixture(dens, _ConstGate(logits))
        out = mix(x, t, conds)
        assert torch.equal(out, ref)
    # per-position one-hot: coordinate 0 from denoiser j, coordinate 1 from denoiser (j+1)%3
    pos = torch.full((1, 3, 2), -math.inf)
    pos[0, j, 0] = 0.0
    pos[0, (j + 1) % 3, 1] = 0.0
    out = DenoiserMixture(dens, _ConstGate(pos))(x, t, conds)
    other = dens[(j + 1) % 3](x, t, conds[(j + 1) % 3])
    assert torch.equal(out[:, 0], ref[:, 0]) and torch.equal(out[:, 1], other[:, 1])


def test_uniform_gate_is_the_average_and_gate_starts_uniform():
    torch.manual_seed(1)
    dens = [_MLPDenoiser(2, 8) for _ in range(2)]
    gate = DenoiserGate(2, [2, 2], x_dim=2, use_position=True, per_position=True)
    mix = DenoiserMixture(dens, gate)
    x, t = torch.randn(4, 2), torch.rand(4)
    c = [torch.randn(4, 2), torch.randn(4, 2)]
    out = mix(x, t, c)
    torch.testing.assert_close(out, 0.5 * (dens[0](x, t, c[0]) + dens[1](x, t, c[1])))
    assert mix.last_weights.shape == (4, 2, 2)
    torch.testing.assert_close(mix.last_weights.sum(1), torch.ones(4, 2))
    assert all(not p.requires_grad for p in mix.denoisers.parameters())


def test_mixture_serves_both_conditions():
    """Denoiser A is trained with condition a only (it knows the sign of x_1),
    B with condition b only (sign of x_2). Given both conditions, a gate that
    depends on t, the conditions and the position (coordinate) must predict the
    noise better than either denoiser alone."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    den_a, den_b = _MLPDenoiser(2), _MLPDenoiser(2)

    def loss_single(den, which):
        x0, ca, cb = _data(256, gen)
        xt, t, eps = _noisy(x0, gen)
        return ((den(xt, t, ca if which == "a" else cb) - eps) ** 2).mean()

    _train(den_a.parameters(), lambda: loss_single(den_a, "a"), 400)
    _train(den_b.parameters(), lambda: loss_single(den_b, "b"), 400)
    gate = DenoiserGate(2, [2, 2], x_dim=2, per_position=True, hidden=32)
    mix = DenoiserMixture([den_a, den_b], gate)

    def loss_mix():
        x0, ca, cb = _data(256, gen)
        xt, t, eps = _noisy(x0, gen)
        return ((mix(xt, t, [ca, cb]) - eps) ** 2).mean()

    _train(gate.parameters(), loss_mix, 300)

    test_gen = torch.Generator().manual_seed(123)
    x0, ca, cb = _data(4000, test_gen)
    xt, t, eps = _noisy(x0, test_gen)
    with torch.no_grad():
        err_a = ((den_a(xt, t, ca) - eps) ** 2).mean(0)  # per coordinate
        err_b = ((den_b(xt, t, cb) - eps) ** 2).mean(0)
        err_m = ((mix(xt, t, [ca, cb]) - eps) ** 2).mean(0)
        g = mix.last_weights.mean(0)  # (K, 2)
    # each denoiser is good on "its" coordinate and poor on the other one
    assert err_a[0] < 0.8 * err_a[1] and err_b[1] < 0.8 * err_b[0]
    # the mixture serves both: better than either alone overall, close to the
    # better denoiser on each coordinate
    assert err_m.sum() < 0.85 * min(err_a.sum(), err_b.sum())
    assert err_m[0] < 1.1 * err_a[0] and err_m[1] < 1.1 * err_b[1]
    # and the gate learned which denoiser to trust where
    assert g[0, 0] > 0.6 and g[1, 1] > 0.6


def test_bad_input():
    dens = [_MLPDenoiser(2, 8) for _ in range(2)]
    gate = DenoiserGate(2, [2, 2])
    mix = DenoiserMixture(dens, gate)
    x, t, c = torch.randn(3, 2), torch.rand(3), [torch.randn(3, 2)] * 2
    with pytest.raises(ValueError, match="one condition per denoiser"):
        mix(x, t, c[:1])
    with pytest.raises(ValueError, match="NaN or inf"):
        mix(torch.full((3, 2), math.nan), t, c)
    with pytest.raises(ValueError, match="t must be"):
        mix(x, torch.rand(4), c)
    with pytest.raises(ValueError, match="logits of shape"):
        DenoiserMixture(dens, _ConstGate(torch.zeros(1, 3)))(x, t, c)
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        DenoiserMixture(dens, _ConstGate(torch.tensor([[math.nan, 0.0]])))(x, t, c)
    with pytest.raises(ValueError, match="per-position"):
        DenoiserMixture(dens, _ConstGate(torch.zeros(1, 2, 3)))(x, t, c)
    with pytest.raises(ValueError, match="non-empty"):
        DenoiserMixture([], gate)
    with pytest.raises(ValueError, match="gate must be"):
        DenoiserMixture(dens, lambda *a: None)
    with pytest.raises(ValueError, match="cond_dims"):
        DenoiserGate(2, [2])
    with pytest.raises(ValueError, match="x_dim"):
        DenoiserGate(2, [2, 2], per_position=True)
    with pytest.raises(ValueError, match="returned shape"):
        bad = [_MLPDenoiser(2, 8), nn.Module()]
        bad[1].forward = lambda x, t, c: x[:, :1]
        DenoiserMixture(bad, _ConstGate(torch.zeros(1, 2)))(x, t, c)
