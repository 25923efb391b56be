"""Expert parallelism for training, with 2 and 4 gloo processes on the CPU:
capacity-buffer all-to-all (no count exchange) against the single-process
layer, DDP with the experts excluded and consistent gradient averaging, and
the gathered / sliced checkpoints."""


import pytest
import torch
import torch.distributed as dist

from mixstat.nn import MoELayer
from mixstat.nn.expert_parallel import ExpertParallelMoE, ddp_ignore_expert_parameters
from mixstat.nn.gating import _rank_within_expert
from mixstat.nn.moe import expert_ffn_dispatch

from ._gloo import spawn_gloo

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)

D, H, E, K, N = 6, 10, 4, 2, 9  # N tokens on every rank (capacity_factor needs equal N)
SMALL_C = 2


def _make(world):
    torch.manual_seed(0)
    layer = MoELayer(D, H, E, k=K, dtype=torch.float64)
    x = torch.randn(world * N, D, dtype=torch.float64)
    wout = torch.randn(world * N, D, dtype=torch.float64)
    return layer, x, wout


class _Net(torch.nn.Module):
    def __init__(self, ep):
        super().__init__()
        self.moe = ep

    def forward(self, x):
        return self.moe(x)


def _on_rank(rank, world):
    ep_group = dist.new_group(list(range(world)))  # an explicit expert-parallel group
    return _run(rank, world, ep_group)


def _run(rank, world, group):
    res = {}
    layer, x, wout = _make(world)
    sl = slice(rank * N, (rank + 1) * N)
    for name, kw in (("big", {"capacity": N * K}), ("small", {"capacity": SMALL_C}),
                     ("factor", {"capacity_factor": 0.5})):
        ep = ExpertParallelMoE(layer, group, **kw)
        xr = x[sl].clone().requires_grad_(True)
        y = ep(xr)
        (y * wout[sl]).sum().backward()
        ep.allreduce_replicated_grads()
        res[name] = dict(y=y.detach(), gx=xr.grad, gw1=ep.w1.grad, gb2=ep.b2.grad,
                         grouter=ep.router.weight.grad.clone(), dropped=int(ep.router_output.n_dropped),
                         cap=ep.buffer_capacity(N))
        layer.router.zero_grad()
    # the buffer mode compiles as one graph (functional collectives) and
    # gives the eager output and gradients
    ep = ExpertParallelMoE(layer, group, capacity=SMALL_C)
    xr = x[sl].clone().requires_grad_(True)
    y_e = ep(xr)
    g_e = torch.autograd.grad((y_e * wout[sl]).sum(), [xr, ep.w1])
    torch._dynamo.reset()
    compiled = torch.compile(ep, fullgraph=True, backend="eager")
    y_c = compiled(xr)
    g_c = torch.autograd.grad((y_c * wout[sl]).sum(), [xr, ep.w1])
    res["compiled"] = dict(dy=float((y_c - y_e).abs().max()),
                           dg=max(float((a - b).abs().max()) for a, b in zip(g_c, g_e)))
    layer.router.zero_grad()
    # DDP over the replicated router, experts excluded and averaged alike
    ep = ExpertParallelMoE(layer, group, average_grads=True)
    net = _Net(ep)
    ignored = ddp_ignore_expert_parameters(net)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    y = ddp(x[sl])
    (y * wout[sl]).sum().backward()
    res["ddp"] = dict(ignored=ignored, gw1=ep.w1.grad, gb1=ep.b1.grad,
                      grouter=ep.router.weight.grad.clone())
    # checkpoints: gather the full layer, reload a perturbed one
    full = ep.full_state_dict()
    res["full"] = {k: v.clone() for k, v in full.items()}
    full = {k: v + 1.0 for k, v in full.items()}
    ep.load_full_state_dict(full)
    res["reloaded_w2"] = ep.w2.detach().clone()
    res["reloaded_router"] = ep.router.weight.detach().clone()
    res["offset"] = ep.expert_offset
    return res


def _spawn(world, tmp_path_factory):
    return spawn_gloo(_on_rank, world, tmp_path_factory.mktemp(f"ep{world}"))


@pytest.fixture(scope="module", params=[2, 4])
def spawned(request, tmp_path_factory):
    return request.param, _spawn(request.param, tmp_path_factory)


def _reference_buffer(world, capacity):
    """Single process: each rank's assignments beyond `capacity` per expert dropped."""
    layer, x, wout = _make(world)
    x = x.clone().requires_grad_(True)
    ys = []
    for r in range(world):
        xr = x[r * N:(r + 1) * N]
        route = layer.router(xr)
        slot = _rank_within_expert(route.expert_index, E)
        keep = slot < capacity
        ys.append(expert_ffn_dispatch(
            xr, route.token_index[keep], route.expert_index[keep], route.weight[keep],
            layer.w1, layer.b1, layer.w2, layer.b2, dispatch="dense"))
    y = torch.cat(ys)
    (y * wout).sum().backward()
    return layer, x, y.detach()


def test_capacity_buffer_matches_single_process(spawned):
    world, res = spawned
    tol = dict(rtol=1e-11, atol=1e-12)
    for name, cap in (("big", N * K), ("small", SMALL_C), ("factor", None)):
        cap = res[0][name]["cap"] if cap is None else cap
        assert all(r[name]["cap"] == cap for r in res)
        layer, x, y = _reference_buffer(world, cap)
        torch.testing.assert_close(torch.cat([r[name]["y"] for r in res]), y, **tol)
        torch.testing.assert_close(torch.cat([r[name]["gx"] for r in res]), x.grad, **tol)
        torch.testing.assert_close(torch.cat([r[name]["gw1"] for r in res]), layer.w1.grad, **tol)
        torch.testing.assert_close(torch.cat([r[name]["gb2"] for r in res]), layer.b2.grad, **tol)
        for r in res:
            torch.testing.assert_close(r[name]["grouter"], layer.router.weight.grad, **tol)
    # a large buffer drops nothing and equals the dropless layer; a small one drops
    layer, x, wout = _make(world)
    torch.testing.assert_close(torch.cat([r["big"]["y"] for r in res]),
                               layer(x, dispatch="dense").detach(), **tol)
    assert sum(r["big"]["dropped"] for r in res) == 0
    assert sum(r["small"]["dropped"] for r in res) > 0


def test_buffer_mode_compiles_fullgraph(spawned):
    _, res = spawned
    for r in res:
        assert r["compiled"]["dy"] < 1e-12 and r["compiled"]["dg"] < 1e-12


def test_ddp_excludes_experts_and_averages_consistently(spawned):
    world, res = spawned
    layer, x, wout = _make(world)
    ((layer(x, dispatch="dense") * wout).sum() / world).backward()  # mean of the ranks' losses
    tol = dict(rtol=1e-11, atol=1e-12)
    assert res[0]["ddp"]["ignored"] == ["moe.w1", "moe.b1", "moe.w2", "moe.b2"]
    torch.testing.assert_close(torch.cat([r["ddp"]["gw1"] for r in res]), layer.w1.grad, **tol)
    torch.testing.assert_close(torch.cat([r["ddp"]["gb1"] for r in res]), layer.b1.grad, **tol)
    for r in res:  # DDP averaged the router: same scale as the experts
        torch.testing.assert_close(r["ddp"]["grouter"], layer.router.weight.grad, **tol)


def test_full_state_dict_gather_and_sliced_load(spawned):
    world, res = spawned
    layer, _, _ = _make(world)
    ref = layer.state_dict()
    El = E // world
    for rank, r in enumerate(res):
        assert set(r["full"]) == set(ref)
        for k, v in ref.items():
            torch.testing.assert_close(r["full"][k], v, rtol=0, atol=0)
        lo = r["offset"]
        assert lo == rank * El
        torch.testing.assert_close(r["reloaded_w2"], ref["w2"][lo:lo + El] + 1.0, rtol=0, atol=0)
        torch.testing.assert_close(r["reloaded_router"], ref["router.weight"] + 1.0, rtol=0, atol=0)


def test_buffer_mode_bad_arguments():
    if dist.is_initialized():
        pytest.skip("a process group is already initialised")
    with pytest.raises(ValueError, match="not initialised"):
        ExpertParallelMoE(MoELayer(D, H, E, k=K), capacity=4)
