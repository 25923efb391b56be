"""SparseMixer v1/v2: exact enumeration of the estimator's expectation over
every expert choice and coin, gradchecks of the autograd Functions."""

import itertools

import pytest
import torch
from torch.autograd import gradcheck

from mixstat.nn import (
    MoELayer,
    SparseMixerRouter,
    SparseMixerV1Function,
    SparseMixerV2Function,
    sparsemixer_v1,
    sparsemixer_v2,
    sparsity_mask,
)

D64 = torch.float64


def _setup(seed=0, n_experts=3, d=4):
    g = torch.Generator().manual_seed(seed)
    theta = (0.3 * torch.randn(1, n_experts, generator=g, dtype=D64)) + 1.0
    f = torch.randn(n_experts, d, generator=g, dtype=D64)  # expert outputs (fixed)
    c = torch.randn(d, generator=g, dtype=D64)
    return theta, f, c


def _losses(c):
    return {
        "linear": lambda y: (c * y).sum(),
        "quadratic": lambda y: 0.5 * ((y - c) ** 2).sum(),
        "cubic": lambda y: (y**3).sum() / 3 + (c * y).sum(),
    }


def _dL(L, y):
    y = y.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(L(y), y)
    return g


def _grad_pi(theta):
    """Jacobian d pi / d theta, shape (E, E): row i is grad of pi_i."""
    return torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1)[0], theta)[:, 0, :]


def _v1_expectation(theta, f, L, jitter_eps):
    E = theta.shape[1]
    probs = torch.softmax(theta.masked_fill(sparsity_mask(theta, jitter_eps), float("-inf")), -1)[0]
    total = torch.zeros_like(theta)
    for D, coin in itertools.product(range(E), (False, True)):
        p = float(probs[D]) * 0.5
        if p == 0:
            continue
        t = theta.clone().requires_grad_(True)
        gate, idx, _ = sparsemixer_v1(
            t, jitter_eps=jitter_eps, sample=torch.tensor([[D]]), first_order=torch.tensor([[coin]])
        )
        assert idx.item() == D
        (g,) = torch.autograd.grad(L(gate[0, 0] * f[D]), t)
        total += p * g
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_v1_unbiased_for_linear_loss(seed):
    theta, f, c = _setup(seed)
    L = _losses(c)["linear"]
    t = theta.clone().requires_grad_(True)
    pi = torch.softmax(t, -1)[0]
    (true,) = torch.autograd.grad(sum(pi[i] * L(pi[i] * f[i]) for i in range(3)), t)
    est = _v1_expectation(theta, f, L, jitter_eps=0.9)
    torch.testing.assert_close(est, true, atol=1e-13, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_v1_quadratic_bias_is_the_published_midpoint_term(seed):
    theta, f, c = _setup(seed)
    L = _losses(c)["quadratic"]
    t = theta.clone().requires_grad_(True)
    pi = torch.softmax(t, -1)[0]
    (true,) = torch.autograd.grad(sum(pi[i] * L(pi[i] * f[i]) for i in range(3)), t)
    est = _v1_expectation(theta, f, L, jitter_eps=0.9)
    a = int(theta.argmax())
    pa = float(torch.softmax(theta, -1)[0, a])
    y_full, y_mid = pa * f[a], 0.5 * pa * f[a]
    bias = pa * (f[a] @ (_dL(L, y_full) - _dL(L, y_mid))) * _grad_pi(theta)[a]
    torch.testing.assert_close(est - true, bias[None, :], atol=1e-13, rtol=1e-12)
    assert bias.abs().max() > 1e-3  # the bias is really there


@pytest.mark.parametrize("loss", ["quadratic", "cubic"])
def test_v2_expectation_is_third_order_rule(loss):
    """E[g] = sum_{i != a} (L(pi_i f_i) - L(0)) grad pi_i + pi_a f_a L'(pi_a f_a) grad pi_a,
    exact for losses of degree <= 3."""
    theta, f, c = _setup(3)
    L = _losses(c)[loss]
    E = theta.shape[1]
    pi = torch.softmax(theta, -1)[0]
    total = torch.zeros_like(theta)
    for D, coin in itertools.product(range(E), (False, True)):
        p = float(pi[D]) * (0.25 if coin else 0.75)
        t = theta.clone().requires_grad_(True)
        gates, idx, _ = sparsemixer_v2(
            t, 1, jitter_eps=0.9, samples=[torch.tensor([[D]])], full_points=[torch.tensor([[coin]])]
        )
        (g,) = torch.autograd.grad(L(gates[0, 0] * f[D]), t)
        total += p * g
    a = int(theta.argmax())
    J = _grad_pi(theta)
    zero = torch.zeros(f.shape[1], dtype=D64)
    ref = torch.zeros(E, dtype=D64)
    for i in range(E):
        y = pi[i] * f[i]
        coef = (L(y) - L(zero)) if i != a else pi[i] * (f[i] @ _dL(L, y))
        ref += coef * J[i]
    torch.testing.assert_close(total[0], ref, atol=1e-12, rtol=1e-10)


def test_sparsity_mask_and_sampling():
    theta = torch.tensor([[2.0, 1.9, 0.5, -3.0]], dtype=D64)
    mask = sparsity_mask(theta, 0.1)
    assert mask.tolist() == [[False, False, True, True]]  # (2-0.5)/2 = 0.75 > 0.2
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        _, idx, probs = sparsemixer_v1(theta, generator=g)
        seen.add(int(idx))
    assert seen == {0, 1}
    assert probs[0, 2:].eq(0).all()
    gate, idx, probs = sparsemixer_v1(theta, training=False)
    assert int(idx) == 0 and torch.allclose(gate, probs[:, :1])
    # frequencies follow the masked softmax
    g = torch.Generator().manual_seed(1)
    draws = torch.stack([sparsemixer_v1(theta.expand(500, 4), generator=g)[1] for _ in range(4)])
    freq0 = float((draws == 0).double().mean())
    assert abs(freq0 - float(probs[0, 0])) < 0.03


def test_v2_top2_second_expert_differs_and_eval_is_deterministic():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 5, generator=g, dtype=D64) * 0.1 + 1
    gates, idx, probs = sparsemixer_v2(logits, 2, jitter_eps=0.5, generator=g)
    assert (idx[:, 0] != idx[:, 1]).all()
    gates_e, idx_e, _ = sparsemixer_v2(logits, 2, jitter_eps=0.5, training=False)
    order = torch.argsort(logits, 1, descending=True)
    assert torch.equal(idx_e, order[:, :2])
    p1 = torch.softmax(logits.masked_fill(sparsity_mask(logits, 0.5), float("-inf")), 1)
    torch.testing.assert_close(gates_e[:, 0], p1.gather(1, idx_e[:, :1])[:, 0])


def test_gradcheck_functions():
    g = torch.Generator().manual_seed(0)
    gate = torch.rand(5, 1, generator=g, dtype=D64, requires_grad=True)
    # backward = derivative of the forward at scale 2 (the doubled path)
    assert gradcheck(lambda x: SparseMixerV1Function.apply(x, torch.full((5, 1), 2.0, dtype=D64)), (gate,))
    logits = torch.randn(5, 4, generator=g, dtype=D64, requires_grad=True)
    mask = torch.zeros(5, 4, dtype=torch.bool)
    mask[0, 3] = mask[2, 1] = True
    idx = torch.tensor([[0], [1], [2], [3], [0]])
    one = torch.ones(5, 1, dtype=D64)
    assert gradcheck(lambda t: SparseMixerV2Function.apply(t, mask, idx, one), (logits,))
    # the v2 backward does not depend on the scale
    third = torch.full((5, 1), 1 / 3, dtype=D64)
    w = torch.randn(5, 1, generator=g, dtype=D64)
    (g1,) = torch.autograd.grad((SparseMixerV2Function.apply(logits, mask, idx, one) * w).sum(), logits)
    (g3,) = torch.autograd.grad((SparseMixerV2Function.apply(logits, mask, idx, third) * w).sum(), logits)
    torch.testing.assert_close(g1, g3)
    # and v1's backward is 2x, whatever the scale
    (gv,) = torch.autograd.grad((SparseMixerV1Function.apply(gate, 0.5 * one) * w).sum(), gate)
    torch.testing.assert_close(gv, 2 * w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 2])
def test_router_in_layer(dtype, k):
    torch.manual_seed(0)
    layer = MoELayer(8, 8, 4, k=k, router="sparsemixer", dtype=dtype)
    x = torch.randn(30, 8, dtype=dtype)
    y = layer(x)
    (y.sum() + layer.aux_loss).backward()
    assert layer.router.weight.grad is not None and torch.isfinite(layer.router.weight.grad).all()
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


def test_router_errors():
    with pytest.raises(ValueError):
        SparseMixerRouter(4, 4, k=3)
    with pytest.raises(ValueError):
        SparseMixerRouter(4, 4, k=2, version="v1")
    with pytest.raises(ValueError):
        MoELayer(4, 4, 4, k=1, router="sparsemixer", capacity_factor=1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        sparsemixer_v1(torch.tensor([[0.0, float("nan")]]))
