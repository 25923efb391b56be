"""CUDA checks of the nn modules (run by benchmarks/gpu_suite.py; skipped without CUDA)."""

import pytest
import torch

from mixstat.nn import GaussianMixture, MixtureOfTokens, MoELayer, gmflow_sample, immiscible_noise

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("router,k", [("topk", 2), ("expert_choice", 2), ("sparsemixer", 2)])
def test_moe_paths_agree_on_cuda(dtype, router, k):
    torch.manual_seed(0)
    layer = MoELayer(64, 128, 8, k=k, router=router, device="cuda", dtype=dtype)
    layer.eval()
    x = torch.randn(257, 64, device="cuda", dtype=dtype)
    ref = layer(x, dispatch="dense").float()
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    for path in ("auto", "loop", "padded"):
        torch.testing.assert_close(layer(x, dispatch=path).float(), ref, atol=tol, rtol=tol)
    layer.train()
    torch.manual_seed(1)
    y = layer(x)
    (y.float().sum() + layer.aux_loss.float()).backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_cuda_matches_cpu_float32():
    torch.manual_seed(0)
    cpu = MoELayer(32, 64, 4, k=2, capacity_factor=1.0)
    gpu = MoELayer(32, 64, 4, k=2, capacity_factor=1.0, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(100, 32)
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), atol=1e-4, rtol=1e-4)


def test_mot_and_diffusion_on_cuda():
    mot = MixtureOfTokens(16, 32, 4, group_size=4, device="cuda")
    assert mot(torch.randn(8, 5, 16, device="cuda")).device.type == "cuda"
    x = torch.randn(64, 12, device="cuda")
    noise = immiscible_noise(x)
    assert noise.device.type == "cuda" and noise.shape == x.shape
    means = torch.randn(4, 2, device="cuda")

    def model(x_t, s):
        B = x_t.shape[0]
        return GaussianMixture(x_t[:, None] - means, torch.full((B, 4), -1.3862943611198906, device="cuda"),
                               torch.zeros(B, 1, device="cuda") - 1)

    for sampler in ("sde", "ode"):
        out = gmflow_sample(model, torch.randn(128, 2, device="cuda"), 4, sampler=sampler, n_substeps=2)
        assert out.device.type == "cuda" and torch.isfinite(out).all()
