"""MoE layers for training: ``torch.compile(fullgraph=True)`` on every router,
dispatch and dtype; host syncs counted in forward + backward; the fused
router path against the array-API definition; expert-choice unserved count.

The compile tests use ``backend="eager"``: dynamo still has to capture the
whole forward in one graph (``fullgraph=True`` raises on any graph break),
but no code is generated, which keeps them to about a second per case.
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mixstat.nn import ExpertChoiceRouter, MoELayer
from mixstat.nn._grouped import grouped_linear, grouped_mm_supported
from mixstat.primitives import logsumexp, topk_gating

ROUTERS = [("topk", 2, None), ("topk", 1, 1.0), ("expert_choice", 2, 2.0),
           ("sparsemixer", 1, None), ("sparsemixer", 2, None)]
DISPATCHES = ["auto", "loop", "padded", "dense"]

# ops that read a device tensor on the host (a sync on an accelerator)
_SYNC_OPS = {"_local_scalar_dense", "item", "is_nonzero", "nonzero", "bincount",
             "masked_select", "_unique2", "unique_consecutive", "unique_dim"}


class SyncCounter(TorchDispatchMode):
    """Record the aten ops that need a host read of tensor data (and
    boolean-mask indexing, which is a ``nonzero``), plus ``Tensor.tolist`` /
    ``Tensor.numpy``, which read the data without dispatching an op (also
    inside custom ops, whose kernels run under the mode)."""

    def __init__(self):
        super().__init__()
        self.syncs = []
        self._saved = {}

    def __enter__(self):
        for name in ("tolist", "numpy"):
            orig = getattr(torch.Tensor, name)
            self._saved[name] = orig

            def wrapped(t, *a, _orig=orig, _name=name, **kw):
                self.syncs.append(_name)
                return _orig(t, *a, **kw)

            setattr(torch.Tensor, name, wrapped)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, orig in self._saved.items():
            setattr(torch.Tensor, name, orig)
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in _SYNC_OPS:
            self.syncs.append(name)
        elif name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ())
        ):
            self.syncs.append(f"{name}[bool]")
        return func(*args, **(kwargs or {}))


def _layer(router, k, cf, dtype, dispatch="auto", n_experts=4):
    torch.manual_seed(0)
    return MoELayer(32, 64, n_experts, k=k, router=router, capacity_factor=cf,
                    dtype=dtype, dispatch=dispatch)


def _check_compiled(layer, dtype):
    x = torch.randn(48, 32, dtype=dtype, requires_grad=True)
    layer.eval()  # deterministic routing (SparseMixer samples in training)
    params = [x, layer.w1, layer.b2, layer.router.weight]
    y = layer(x)
    g = torch.autograd.grad(y.float().square().sum(), params)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    yc = compiled(x)
    gc = torch.autograd.grad(yc.float().square().sum(), params)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(yc, y, atol=tol, rtol=tol)
    for a, b in zip(gc, g, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    layer.train()  # the training graph (sampling, capacity masks) compiles too
    torch.manual_seed(1)
    compiled(x).float().sum().backward()


@pytest.mark.parametrize("router,k,cf", ROUTERS)
@pytest.mark.parametrize("dispatch", DISPATCHES)
def test_fullgraph_compile_every_router_and_dispatch_float32(router, k, cf, dispatch):
    _check_compiled(_layer(router, k, cf, torch.float32, dispatch), torch.float32)


@pytest.mark.parametrize("router,k,cf", ROUTERS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_fullgraph_compile_bf16_and_float64(router, k, cf, dtype):
    # float64: grouped_mm has no float64 kernel; the op falls back inside itself
    _check_compiled(_layer(router, k, cf, dtype), dtype)


@pytest.mark.parametrize("dispatch", ["loop", "padded"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_fullgraph_compile_fallback_paths_other_dtypes(dispatch, dtype):
    _check_compiled(_layer("topk", 2, None, dtype, dispatch), dtype)


def _count_syncs(layer, dtype=torch.float32, n=64):
    x = torch.randn(n, 32, dtype=dtype, requires_grad=True)
    with SyncCounter() as c:
        y = layer(x)
        (y.sum() + layer.aux_loss).backward()
    return c.syncs


@pytest.mark.parametrize("router,k", [("topk", 1), ("topk", 2), ("sparsemixer", 1),
                                      ("sparsemixer", 2), ("expert_choice", 2)])
def test_no_host_sync_dropless_forward_backward(router, k):
    layer = _layer(router, k, None if router != "expert_choice" else 2.0, torch.float32,
                   n_experts=8)
    layer.router.check_finite = False  # what runs on an accelerator
    assert _count_syncs(layer) == []
    # CPU default: the finiteness check is the only host read (free on CPU)
    layer.router.check_finite = None
    assert _count_syncs(layer) == ["_local_scalar_dense"]


@pytest.mark.parametrize("dispatch", ["auto", "padded", "dense"])
def test_capacity_has_exactly_one_sync(dispatch):
    layer = _layer("topk", 2, 0.5, torch.float32, dispatch, n_experts=8)
    layer.router.check_finite = False
    assert _count_syncs(layer) == ["nonzero"]  # the served choices (documented)
    assert layer.router_output.n_dropped > 0


def test_loop_fallback_reads_group_sizes_once_per_grouped_product():
    # float64: grouped_mm has no kernel, the op falls back to the loop, which
    # reads the group ends on the host: 2 products forward, 2 x 2 backward
    layer = _layer("topk", 2, None, torch.float64, n_experts=8)
    layer.router.check_finite = False
    assert _count_syncs(layer, torch.float64) == ["tolist"] * 6


def test_padded_dropless_reads_the_largest_group_once():
    layer = _layer("topk", 2, None, torch.float32, "padded", n_experts=8)
    layer.router.check_finite = False
    assert _count_syncs(layer) == ["_local_scalar_dense"]


def test_grouped_linear_loop_fallback_equals_grouped_mm_and_reference():
    torch.manual_seed(3)
    counts = [5, 0, 9, 2]
    x = torch.randn(sum(counts), 16, requires_grad=True)
    w = torch.randn(4, 16, 32, requires_grad=True)
    b = torch.randn(4, 32, requires_grad=True)
    offs = torch.tensor(np.cumsum(counts), dtype=torch.int32)
    ref = torch.cat([x[o - c:o] @ w[e] + b[e]
                     for e, (c, o) in enumerate(zip(counts, offs.tolist(), strict=True))])
    g = torch.randn_like(ref)
    grads_ref = torch.autograd.grad(ref, [x, w, b], g)
    modes = ["loop"] + (["auto"] if grouped_mm_supported(x, w) else [])
    for mode in modes:
        y = grouped_linear(x, w, offs, mode, bias=b)
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
        grads = torch.autograd.grad(y, [x, w, b], g)
        for a, r in zip(grads, grads_ref, strict=True):
            torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-5)
        # the empty expert gets an exactly zero gradient
        assert grads[1][1].abs().max() == 0 and grads[2][1].abs().max() == 0
        torch.testing.assert_close(grouped_linear(x, w, offs, mode), ref - b.repeat_interleave(
            torch.tensor(counts), dim=0), atol=1e-5, rtol=1e-5)


def test_fused_topk_path_equals_array_api_definition():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 16)) * 3
    for k, renorm in ((1, False), (2, True), (4, True)):
        g_np, i_np, p_np = topk_gating(logits, k, renormalize=renorm, return_probs=True)
        g_t, i_t, p_t = topk_gating(torch.from_numpy(logits), k, renormalize=renorm,
                                    return_probs=True)
        np.testing.assert_array_equal(i_t.numpy(), i_np)
        np.testing.assert_allclose(g_t.numpy(), g_np, atol=1e-14)
        np.testing.assert_allclose(p_t.numpy(), p_np, atol=1e-14)
    np.testing.assert_allclose(logsumexp(torch.from_numpy(logits)).numpy(), logsumexp(logits),
                               atol=1e-13)
    # one softmax + one topk: a handful of aten ops, no sort
    with SyncCounter() as c, _OpLog() as ops:
        topk_gating(torch.from_numpy(logits), 2, return_probs=True)
    assert c.syncs == [] and "sort" not in ops.names and "topk" in ops.names
    assert len(ops.names) <= 6


class _OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_expert_choice_reports_unserved_tokens():
    torch.manual_seed(4)
    router = ExpertChoiceRouter(8, 4, capacity_factor=1.0, dtype=torch.float64)
    x = torch.randn(64, 8, dtype=torch.float64)
    x[:, 0] += torch.linspace(0, 6, 64, dtype=torch.float64)  # skewed: many tokens unserved
    out = router(x)
    served = set(out.token_index.tolist())
    assert int(out.n_unserved) == 64 - len(served) > 0
    assert int(out.n_dropped) == int(out.n_unserved)
    layer = MoELayer(8, 16, 4, router="expert_choice", capacity_factor=1.0, dtype=torch.float64)
    layer.router = router
    y = layer(x)
    unserved = sorted(set(range(64)) - served)
    assert torch.all(y[unserved] == 0)


def test_expert_choice_is_batch_dependent_and_warns_when_causal():
    torch.manual_seed(5)
    layer = MoELayer(8, 16, 4, router="expert_choice", capacity_factor=1.0, dtype=torch.float64)
    x = torch.randn(32, 8, dtype=torch.float64)
    first = layer(x)[:8]
    # changing only the *later* tokens changes the earlier tokens' outputs
    x2 = x.clone()
    x2[8:] = torch.randn(24, 8, dtype=torch.float64) * 3
    assert not torch.allclose(layer(x2)[:8], first)
    with pytest.warns(UserWarning, match="not causal"):
        ExpertChoiceRouter(8, 4, causal=True)


def test_topk_capacity_counts_are_tensors_and_match_keep_mask():
    layer = _layer("topk", 2, 0.5, torch.float32, n_experts=8)
    x = torch.randn(64, 32)
    layer(x)
    r = layer.router_output
    assert r.n_dropped == 64 * 2 - r.token_index.numel()
    per_token = torch.zeros(64, dtype=torch.long).index_add(
        0, r.token_index, torch.ones_like(r.token_index))
    assert int(r.n_unserved) == int((per_token == 0).sum())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("router,k,cf", [("topk", 2, None), ("sparsemixer", 2, None),
                                         ("sparsemixer", 1, None), ("expert_choice", 2, 2.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_no_cuda_sync_forward_backward(router, k, cf, dtype):
    torch.manual_seed(0)
    layer = MoELayer(64, 128, 8, k=k, router=router, capacity_factor=cf,
                     device="cuda", dtype=dtype)
    x = torch.randn(512, 64, device="cuda", dtype=dtype, requires_grad=True)
    (layer(x).float().sum() + layer.aux_loss.float()).backward()  # warm-up (kernel probe)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        y = layer(x)
        (y.float().sum() + layer.aux_loss.float()).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_gm_ode_substeps_compile_without_host_reads():
    """GM-ODE sub-steps read nothing on the host (the normalisability check is
    CPU-eager only), so the whole step compiles as one graph."""
    from mixstat.nn import GaussianMixture, gmflow_ode_step

    torch.manual_seed(6)
    B, K, C = 16, 3, 2
    gm = GaussianMixture(torch.randn(B, K, C, dtype=torch.float64),
                         torch.log_softmax(torch.randn(B, K, dtype=torch.float64), -1),
                         torch.full((B, 1), -1.0, dtype=torch.float64))
    x = torch.randn(B, C, dtype=torch.float64)
    sig = torch.full((B, 1), 0.8, dtype=torch.float64)
    sig_n = torch.full((B, 1), 0.6, dtype=torch.float64)
    ref = gmflow_ode_step(gm, x, sig, sig_n, 4)
    torch._dynamo.reset()
    step = torch.compile(gmflow_ode_step, fullgraph=True, backend="eager")
    torch.testing.assert_close(step(gm, x, sig, sig_n, 4), ref)
