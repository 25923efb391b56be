import pytest
import torch
from torch import nn

from mixstat.nn.conversion import (
    UnitGateRouter,
    dense_to_moe,
    moe_to_dense,
    neuron_importance,
    partition_neurons,
    svd_knowledge_gathering,
)
from mixstat.nn.moe import MoELayer

DTYPES = [torch.float32, torch.float64]
TOL = {
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float64: dict(rtol=1e-12, atol=1e-12),
}


def _ffn(d, h, act, dtype, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), act, nn.Linear(h, d)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [nn.GELU(), nn.ReLU(), nn.SiLU()])
@pytest.mark.parametrize("h,E", [(24, 4), (22, 4), (16, 1)])
@pytest.mark.parametrize("calib", [False, True])
def test_all_experts_equal_dense(dtype, act, h, E, calib):
    ffn = _ffn(8, h, act, dtype)
    x = torch.randn(5, 3, 8, dtype=dtype)
    cx = torch.randn(32, 8, dtype=dtype) if calib else None
    moe = dense_to_moe(ffn, E, cx)
    assert isinstance(moe, MoELayer) and moe.n_experts == E
    with torch.no_grad():
        torch.testing.assert_close(moe(x), ffn(x), **TOL[dtype])
        torch.testing.assert_close(moe(x, dispatch="dense"), ffn(x), **TOL[dtype])
    # the partition covers every neuron exactly once
    p = moe.expert_neurons
    assert sorted(p[p >= 0].tolist()) == list(range(h))


def test_dropped_experts_error_equals_their_contribution():
    dtype = torch.float64
    ffn = _ffn(6, 12, nn.GELU(), dtype)
    moe = dense_to_moe(ffn, 3)
    x = torch.randn(7, 6, dtype=dtype)
    n = x.shape[0]
    with torch.no_grad():
        full = ffn(x)
        import torch.nn.functional as F

        from mixstat.nn.moe import expert_ffn_dispatch

        def part(experts):
            tok = torch.arange(n).repeat_interleave(len(experts))
            exp = torch.tensor(experts).repeat(n)
            return expert_ffn_dispatch(
                x,
                tok,
                exp,
                torch.ones(len(tok), dtype=dtype),
                moe.w1,
                moe.b1,
                moe.w2,
                moe.b2,
                F.gelu,
                "loop",
            )

        torch.testing.assert_close(
            part([0, 2]) + part([1]), full, rtol=1e-12, atol=1e-12
        )


def test_taylor_importance_matches_manual_and_is_permutation_equivariant():
    dtype = torch.float64
    ffn = _ffn(5, 10, nn.Tanh(), dtype)
    x = torch.randn(20, 5, dtype=dtype)
    imp = neuron_importance(ffn, x)
    W1, b1, W2, b2 = ffn[0].weight, ffn[0].bias, ffn[2].weight, ffn[2].bias
    with torch.no_grad():
        a = torch.tanh(x @ W1.T + b1)
        out = a @ W2.T + b2
        g = out @ W2  # dL/da for L = 0.5 ||out||^2
        manual = (a * g).sum(0).abs()
    torch.testing.assert_close(imp, manual)
    perm = torch.randperm(10)
    imp_p = neuron_importance(
        (W1[perm], b1[perm], W2[:, perm], b2), x, activation="tanh"
    )
    torch.testing.assert_close(imp_p, imp[perm])
    # weight-norm fallback
    wn = neuron_importance(ffn)
    torch.testing.assert_close(wn, W1.norm(dim=1) * W2.norm(dim=0))


def test_partition_orders_by_importance():
    imp = torch.tensor([0.1, 5.0, 3.0, 0.0, 4.0, 2.0])
    p = partition_neurons(imp, 3)
    assert p.tolist() == [[1, 4], [2, 5], [0, 3]]
    p = partition_neurons(imp, 4)
    assert p.tolist() == [[1, 4], [2, 5], [0, 3], [-1, -1]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_svd_merge_error_is_eckart_young_tail(dtype):
    torch.manual_seed(1)
    W = torch.randn(4, 9, 6, dtype=dtype)
    S = torch.linalg.svdvals(W)
    for r in (1, 3, 6):
        merged, tail = svd_knowledge_gathering(W, r)
        torch.testing.assert_close(tail, S[:, r:].pow(2).sum(1), **TOL[dtype])
        assert torch.linalg.matrix_rank(merged) <= min(4 * r, 6)
    # full rank = plain average
    merged, tail = svd_knowledge_gathering(W, None)
    torch.testing.assert_close(merged, W.mean(0), **TOL[dtype])
    # identical experts: merged error equals the tail of the shared matrix
    Wi = W[:1].expand(3, 9, 6).clone()
    merged, tail = svd_knowledge_gathering(Wi, 2)
    err = (Wi[0] - merged).pow(2).sum()
    torch.testing.assert_close(err, S[0, 2:].pow(2).sum(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_moe_to_dense_identical_experts_recovers_ffn(dtype):
    torch.manual_seed(0)
    moe = MoELayer(8, 6, 4, k=2, dtype=dtype)
    with torch.no_grad():
        for p in (moe.w1, moe.b1, moe.w2, moe.b2):
            p.copy_(p[:1].expand_as(p))
    x = torch.randn(10, 8, dtype=dtype)
    for method, rank in (("average", None), ("svd", None), ("svd", 6)):
        dense = moe_to_dense(moe, method, rank)
        with torch.no_grad():
            # renormalised top-k gates sum to 1, identical experts -> the expert itself
            torch.testing.assert_close(dense(x), moe(x), **TOL[dtype])
    dense = moe_to_dense(moe, "svd", 2)
    S1 = torch.linalg.svdvals(moe.w1[0].detach())
    torch.testing.assert_close(
        dense.merge_tail["w1"], S1[2:].pow(2).sum().expand(4), **TOL[dtype]
    )


def test_moe_to_dense_average_weights():
    moe = MoELayer(4, 3, 2, k=1, dtype=torch.float64)
    dense = moe_to_dense(moe)
    torch.testing.assert_close(dense[0].weight, moe.w1.detach().mean(0).T)
    torch.testing.assert_close(dense[2].bias, moe.b2.detach().mean(0))


def test_unit_router_and_topk_router():
    ffn = _ffn(8, 16, nn.GELU(), torch.float32)
    moe = dense_to_moe(ffn, 4, router="topk", k=2)
    assert moe.k == 2 and moe(torch.randn(3, 8)).shape == (3, 8)
    out = UnitGateRouter(3)(torch.randn(2, 5))
    assert out.token_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert out.expert_index.tolist() == [0, 1, 2, 0, 1, 2]


def test_bad_input():
    ffn = _ffn(8, 16, nn.GELU(), torch.float32)
    with pytest.raises(ValueError, match="n_experts"):
        dense_to_moe(ffn, 0)
    with pytest.raises(ValueError, match="n_experts"):
        dense_to_moe(ffn, 17)
    with pytest.raises(ValueError, match="calib_x"):
        dense_to_moe(ffn, 2, torch.randn(4, 7))
    with pytest.raises(ValueError, match="NaN"):
        dense_to_moe(ffn, 2, torch.full((4, 8), float("nan")))
    with pytest.raises(ValueError, match="activation"):
        dense_to_moe(nn.Sequential(nn.Linear(8, 4), nn.Softplus(), nn.Linear(4, 8)), 2)
    with pytest.raises(ValueError, match="W2"):
        dense_to_moe((torch.randn(4, 8), None, torch.randn(8, 5), None), 2)
    with pytest.raises(ValueError, match="router"):
        dense_to_moe(ffn, 2, router="bogus")
    moe = MoELayer(4, 3, 2, k=1)
    with pytest.raises(ValueError, match="method"):
        moe_to_dense(moe, "sum")
    with pytest.raises(ValueError, match="rank"):
        moe_to_dense(moe, "svd", rank=4)
    with pytest.raises(ValueError, match="MoELayer"):
        moe_to_dense(ffn)
    with pytest.raises(ValueError, match="NaN"):
        svd_knowledge_gathering(torch.full((2, 3, 3), float("inf")))
