"""Expert parallelism: two gloo processes on the CPU give the single-process
layer's output and gradients (router gradients after the all-reduce)."""


import pytest
import torch
import torch.distributed as dist

from mixstat.nn import MoELayer
from mixstat.nn.expert_parallel import ExpertParallelMoE, all_to_all_differentiable

from ._gloo import spawn_gloo

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)

D, H, E, K = 6, 10, 4, 2
N_PER_RANK = (7, 5)  # uneven token counts per rank


def _make(dtype, skew):
    torch.manual_seed(0)
    layer = MoELayer(D, H, E, k=K, dtype=dtype)
    x = torch.randn(sum(N_PER_RANK), D, dtype=dtype)
    wout = torch.randn(sum(N_PER_RANK), D, dtype=dtype)
    if skew:  # every token to experts 0 and 1: rank 1 receives nothing
        x[:, 0] = 3.0
        with torch.no_grad():
            layer.router.weight.mul_(0.01)
            layer.router.weight[:, 0] = torch.tensor([5.0, 4.0, -5.0, -5.0], dtype=dtype)
    return layer, x, wout


CONFIGS = [(torch.float64, False), (torch.float32, False), (torch.float64, True)]


def _all_configs(rank, world):
    """Every configuration on one rank (one process group runs them all)."""
    return [_one(rank, dtype, skew) for dtype, skew in CONFIGS]


def _one(rank, dtype, skew):
    res = {}
    try:
        ExpertParallelMoE(MoELayer(D, H, 3, k=1))
    except ValueError as exc:
        res["bad_E"] = str(exc)
    layer, x, wout = _make(dtype, skew)
    lo = sum(N_PER_RANK[:rank])
    sl = slice(lo, lo + N_PER_RANK[rank])
    ep = ExpertParallelMoE(layer)
    try:  # checked before any collective, so one rank may fail alone
        ep(torch.randn(3, D + 1, dtype=dtype))
    except ValueError as exc:
        res["bad_x"] = str(exc)
    xr = x[sl].clone().requires_grad_(True)
    y = ep(xr)
    (y * wout[sl]).sum().backward()
    ep.allreduce_replicated_grads()
    res.update(
        rank=rank, y=y.detach(), gx=xr.grad, offset=ep.expert_offset,
        gw1=ep.w1.grad, gb1=ep.b1.grad, gw2=ep.w2.grad, gb2=ep.b2.grad,
        grouter=[p.grad for p in ep.router.parameters()],
    )
    # no-grad forward on parameters only (x without grad): still matched collectives
    ep.zero_grad()
    y2 = ep(x[sl])
    y2.sum().backward()
    ep.allreduce_replicated_grads()
    res["gw1_nox"] = ep.w1.grad
    # the differentiable all_to_all alone: splits swapped in backward
    a = torch.arange(6, dtype=dtype).reshape(3, 2).add(10 * rank).requires_grad_(True)
    ins = [1, 2] if rank == 0 else [2, 1]
    outs = [1, 2] if rank == 0 else [2, 1]
    b = all_to_all_differentiable(a, outs, ins)
    (b * (1 + rank)).sum().backward()
    res["a2a"] = (b.detach(), a.grad)
    return res


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    """One pair of gloo processes runs every configuration (spawning costs seconds)."""
    per_rank = spawn_gloo(_all_configs, 2, tmp_path_factory.mktemp("ep"), timeout_s=20)
    return [[per_rank[r][i] for r in range(2)] for i in range(len(CONFIGS))]


@pytest.mark.parametrize("cfg", range(len(CONFIGS)))
def test_matches_single_process(spawned, cfg):
    dtype, skew = CONFIGS[cfg]
    res = spawned[cfg]
    layer, x, wout = _make(dtype, skew)
    x = x.clone().requires_grad_(True)
    y = layer(x, dispatch="dense")
    (y * wout).sum().backward()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(torch.cat([r["y"] for r in res]), y.detach(), **tol)
    torch.testing.assert_close(torch.cat([r["gx"] for r in res]), x.grad, **tol)
    for name in ("w1", "b1", "w2", "b2"):
        g = torch.cat([r["g" + name] for r in res])
        torch.testing.assert_close(g, getattr(layer, name).grad, **tol)
    for r in res:
        for g, p in zip(r["grouter"], layer.router.parameters()):
            torch.testing.assert_close(g, p.grad, **tol)
        assert "divisible" in r["bad_E"] and "d_model" in r["bad_x"]
    assert [r["offset"] for r in res] == [0, 2]
    # parameter-only backward: expert gradient = d(sum y)/dw1 of the full layer
    layer.zero_grad()
    layer(x.detach(), dispatch="dense").sum().backward()
    torch.testing.assert_close(torch.cat([r["gw1_nox"] for r in res]), layer.w1.grad, **tol)
    if skew:  # everything went to rank 0's experts
        assert float(res[1]["gw1"].abs().sum()) == 0.0
        assert float(res[0]["gw1"].abs().sum()) > 0.0
    # all_to_all: rank0 sends row0 -> r0, rows1-2 -> r1; rank1 sends rows0-1 -> r0, row2 -> r1
    b0, ga0 = res[0]["a2a"]
    b1, ga1 = res[1]["a2a"]
    assert b0[:, 0].tolist() == [0.0, 10.0, 12.0] and b1[:, 0].tolist() == [2.0, 4.0, 14.0]
    assert ga0[:, 0].tolist() == [1.0, 2.0, 2.0] and ga1[:, 0].tolist() == [1.0, 1.0, 2.0]


def test_bad_input():
    with pytest.raises(ValueError, match="MoELayer"):
        ExpertParallelMoE(torch.nn.Linear(2, 2))
    if not dist.is_initialized():
        with pytest.raises(ValueError, match="not initialised"):
            ExpertParallelMoE(MoELayer(D, H, E, k=K))
