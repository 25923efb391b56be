"""MoE layer and routers: dispatch paths against the dense oracle, capacity
semantics against a brute-force loop, losses against their formulas."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixstat.nn import (
    ExpertChoiceRouter,
    MoELayer,
    TopKRouter,
    expert_choice_routing,
    load_balancing_loss,
    router_z_loss,
    token_choice_routing,
)

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 2e-5, torch.float64: 1e-12}


def _grads(layer, x, dispatch, seed=0):
    torch.manual_seed(seed)
    x = x.clone().requires_grad_(True)
    y = layer(x, dispatch=dispatch)
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
    loss = (y * w).sum() + layer.aux_loss
    params = [p for p in layer.parameters()]
    grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
    return y.detach(), grads


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "router,k,cf",
    [("topk", 1, None), ("topk", 2, None), ("topk", 2, 0.75), ("topk", 3, 1.0),
     ("expert_choice", None, 1.5), ("sparsemixer", 1, None), ("sparsemixer", 2, None)],
)
def test_dispatch_paths_agree_with_dense_oracle(dtype, router, k, cf):
    torch.manual_seed(0)
    layer = MoELayer(16, 24, 5, k=k or 2, router=router, capacity_factor=cf, dtype=dtype)
    x = torch.randn(4, 7, 16, dtype=dtype)
    ref_y, ref_g = _grads(layer, x, "dense")
    paths = ["loop", "padded", "auto"]
    for path in paths:
        y, g = _grads(layer, x, path)
        torch.testing.assert_close(y, ref_y, atol=TOL[dtype], rtol=TOL[dtype])
        for a, b in zip(g, ref_g, strict=True):
            if b is None:
                assert a is None
            else:
                torch.testing.assert_close(a, b, atol=TOL[dtype] * 10, rtol=TOL[dtype] * 10)
    assert y.shape == x.shape and y.dtype == dtype


def test_grouped_mm_path_matches_loop_float32():
    if not hasattr(torch.nn.functional, "grouped_mm"):
        pytest.skip("torch without grouped_mm")
    torch.manual_seed(1)
    layer = MoELayer(16, 32, 4, k=2, dtype=torch.float32)
    x = torch.randn(50, 16)
    y_auto, g_auto = _grads(layer, x, "auto")
    assert layer.last_dispatch == "grouped_mm"
    y_loop, g_loop = _grads(layer, x, "loop")
    torch.testing.assert_close(y_auto, y_loop, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_auto, g_loop, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # float64 and unaligned sizes fall back to the loop
    layer64 = MoELayer(6, 10, 3, k=1, dtype=torch.float64)
    layer64(torch.randn(5, 6, dtype=torch.float64))
    assert layer64.last_dispatch == "loop"


def test_dense_oracle_is_the_definition():
    """y_i = sum_e w_ie FFN_e(x_i) computed token by token."""
    torch.manual_seed(2)
    layer = MoELayer(6, 8, 4, k=2, capacity_factor=0.6, dtype=torch.float64, activation="tanh")
    x = torch.randn(9, 6, dtype=torch.float64)
    y = layer(x, dispatch="dense")
    r = layer.router_output
    ref = torch.zeros_like(x)
    for t, e, w in zip(r.token_index.tolist(), r.expert_index.tolist(), r.weight.tolist(), strict=True):
        h = torch.tanh(x[t] @ layer.w1[e] + layer.b1[e])
        ref[t] += w * (h @ layer.w2[e] + layer.b2[e])
    torch.testing.assert_close(y, ref)
    assert r.n_dropped > 0  # the capacity actually dropped something here


def _brute_capacity(indices, capacity, n_experts, order):
    n, k = indices.shape
    keep = np.zeros((n, k), bool)
    used = np.zeros(n_experts, int)
    for j in range(k):
        for i in order:
            e = indices[i, j]
            if used[e] < capacity:
                keep[i, j] = True
                used[e] += 1
    return keep


@settings(max_examples=25)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 30),
    e=st.integers(1, 6),
    data=st.data(),
)
def test_capacity_priority_matches_brute_force(seed, n, e, data):
    k = data.draw(st.integers(1, e))
    capacity = data.draw(st.integers(0, n))
    bpr = data.draw(st.booleans())
    logits = torch.randn(n, e, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    gates, idx, keep, probs = token_choice_routing(logits, k, capacity, batch_priority=bpr)
    order = np.argsort(-probs.max(1).values.numpy(), kind="stable") if bpr else np.arange(n)
    ref = _brute_capacity(idx.numpy(), capacity, e, order)
    np.testing.assert_array_equal(keep.numpy(), ref)
    # top-k choices are the k largest probabilities; gates renormalised for k > 1
    np.testing.assert_allclose(
        np.sort(probs.numpy(), 1)[:, ::-1][:, :k].sum(1) if k == 1 else gates.sum(1).numpy(),
        gates.sum(1).numpy() if k == 1 else 1.0,
    )
    per_expert = np.bincount(idx.numpy()[ref], minlength=e)
    assert per_expert.max(initial=0) <= capacity


def test_switch_capacity_formula_and_dropped_tokens_output_zero():
    torch.manual_seed(3)
    router = TopKRouter(4, 2, k=1, capacity_factor=1.0)
    with torch.no_grad():
        router.weight.copy_(torch.tensor([[10.0, 0, 0, 0], [0, 0, 0, 0]]))
    x = torch.zeros(8, 4)
    x[:, 0] = 1.0  # every token prefers expert 0
    out = router(x)
    assert out.capacity == math.ceil(1.0 * 1 * 8 / 2) == 4
    assert out.n_dropped == 4 and out.token_index.tolist() == [0, 1, 2, 3]
    layer = MoELayer(4, 8, 2, k=1, capacity_factor=1.0, dtype=torch.float32)
    layer.router = router
    y = layer(x)
    assert torch.all(y[4:] == 0) and torch.all(y[:4].abs().sum(1) > 0)


def test_k1_gate_is_raw_probability_and_router_learns():
    torch.manual_seed(4)
    layer = MoELayer(8, 16, 4, k=1, dtype=torch.float64)
    x = torch.randn(20, 8, dtype=torch.float64)
    layer(x).sum().backward()
    r = layer.router_output
    torch.testing.assert_close(r.weight, r.probs.max(1).values)
    assert layer.router.weight.grad.abs().sum() > 0


def test_expert_choice_takes_top_tokens_per_expert():
    torch.manual_seed(5)
    logits = torch.randn(12, 3, dtype=torch.float64)
    gates, tok, probs = expert_choice_routing(logits, 5)
    for e in range(3):
        assert set(tok[e].tolist()) == set(torch.argsort(probs[:, e], descending=True)[:5].tolist())
        torch.testing.assert_close(gates[e], probs[tok[e], e])
    router = ExpertChoiceRouter(4, 3, capacity_factor=2.0, dtype=torch.float64)
    out = router(torch.randn(9, 4, dtype=torch.float64))
    assert out.capacity == 6
    assert torch.bincount(out.expert_index, minlength=3).tolist() == [6, 6, 6]


def test_balance_and_z_loss_formulas():
    n_experts = 4
    uniform = torch.full((8, n_experts), 0.25, dtype=torch.float64)
    idx = torch.arange(8)[:, None] % n_experts
    assert float(load_balancing_loss(uniform, idx, n_experts)) == pytest.approx(1.0)
    torch.manual_seed(6)
    logits = torch.randn(10, n_experts, dtype=torch.float64, requires_grad=True)
    probs = torch.softmax(logits, 1)
    idx = torch.topk(probs, 2, dim=1).indices
    f = np.bincount(idx.numpy().ravel(), minlength=n_experts) / idx.numel()
    ref = n_experts * float((torch.tensor(f) * probs.detach().mean(0)).sum())
    assert load_balancing_loss(probs, idx, n_experts).item() == pytest.approx(ref)
    z = router_z_loss(logits)
    assert z.item() == pytest.approx((torch.logsumexp(logits, 1) ** 2).mean().item())
    z.backward()
    assert torch.isfinite(logits.grad).all()
    # all tokens on one expert: balance loss = E * P_0 > 1 when P_0 > 1/E
    skew = torch.tensor([[0.7, 0.1, 0.1, 0.1]] * 4, dtype=torch.float64)
    assert float(load_balancing_loss(skew, torch.zeros(4, 1, dtype=torch.long), 4)) == pytest.approx(2.8)


@settings(max_examples=10)
@given(seed=st.integers(0, 1000))
def test_token_permutation_equivariance(seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layer = MoELayer(8, 8, 3, k=2, dtype=torch.float64)
    x = torch.randn(11, 8, generator=g, dtype=torch.float64)
    perm = torch.randperm(11, generator=g)
    torch.testing.assert_close(layer(x)[perm], layer(x[perm]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_moe_trains_on_cpu(dtype):
    torch.manual_seed(7)
    layer = MoELayer(4, 16, 4, k=2, dtype=dtype)
    x = torch.randn(64, 4, dtype=dtype)
    target = torch.sin(x)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = ((layer(x) - target) ** 2).mean() + layer.aux_loss
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


def test_bad_input_errors():
    with pytest.raises(ValueError, match="k must"):
        MoELayer(4, 4, 3, k=4)
    with pytest.raises(ValueError, match="capacity_factor"):
        MoELayer(4, 4, 3, k=1, capacity_factor=0.0)
    with pytest.raises(ValueError, match="capacity_factor"):
        MoELayer(4, 4, 3, k=1, capacity_factor=-1.0)
    with pytest.raises(ValueError, match="capacity_factor"):
        MoELayer(4, 4, 3, router="expert_choice", capacity_factor=0)
    with pytest.raises(ValueError, match="dispatch"):
        MoELayer(4, 4, 3, dispatch="fast")
    with pytest.raises(ValueError, match="router"):
        MoELayer(4, 4, 3, router="hash")
    layer = MoELayer(4, 4, 3, k=1)
    with pytest.raises(ValueError, match="d_model=4"):
        layer(torch.randn(5, 3))
    with pytest.raises(ValueError, match="dtype"):
        layer(torch.randn(5, 4, dtype=torch.float64))
    x = torch.randn(5, 4)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        layer(x)
    with pytest.raises(ValueError, match="NaN or inf"):
        token_choice_routing(torch.tensor([[0.0, float("inf")]]), 1)
    with pytest.raises(ValueError, match="k must"):
        token_choice_routing(torch.zeros(3, 2), 3)
    with pytest.raises(ValueError, match="2-D"):
        token_choice_routing(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="capacity"):
        expert_choice_routing(torch.zeros(3, 2), 4)


def test_router_jitter_only_in_training():
    torch.manual_seed(8)
    router = TopKRouter(6, 4, k=2, jitter_eps=0.2, dtype=torch.float64)
    x = torch.randn(10, 6, dtype=torch.float64)
    router.eval()
    torch.testing.assert_close(router(x).logits, x @ router.weight.T)
    router.train()
    jittered = router(x).logits
    assert not torch.allclose(jittered, x @ router.weight.T)
    # input factors in [0.8, 1.2]: |jittered - clean| <= 0.2 |x| |W|^T
    bound = 0.2 * (x.abs() @ router.weight.abs().T)
    assert torch.all((jittered - x @ router.weight.T).abs() <= bound + 1e-12)
    with pytest.raises(ValueError, match="jitter_eps"):
        TopKRouter(6, 4, jitter_eps=1.5)
