"""GMFlow (K = 64) against plain flow matching on a 2-D checkerboard
=====================================================================

Gaussian-mixture flow matching (Chen et al., ICML 2025) predicts a mixture of
:math:`K` Gaussians for the velocity :math:`u = \\epsilon - x_0` instead of its
mean. With few sampling steps the mixture keeps the multi-modal posterior that
an Euler step of plain flow matching (:math:`K = 1`) averages away. Both models
have the same MLP body and are sampled with 8 steps; we report the energy
distance between 4000 samples and 4000 data points.
"""

import time

import matplotlib.pyplot as plt
import torch

from mixstat.nn import GMFlowHead, flow_matching_loss, gmflow_nll, gmflow_sample

torch.set_num_threads(1)


def checkerboard(n, g):
    x1 = torch.rand(n, generator=g) * 4 - 2
    x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g) * 2.0
    return torch.stack([x1, x2 + torch.floor(x1) % 2], 1)


def energy_distance(a, b):
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def train(K, steps=700, batch=512, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    body = torch.nn.Sequential(torch.nn.Linear(3, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128),
                               torch.nn.SiLU(), torch.nn.Linear(128, 128), torch.nn.SiLU())
    head = GMFlowHead(128, 2, K, log_std=0.0 if K == 1 else None)
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def model(x_t, s):
        return head(body(torch.cat([x_t, s], 1)))

    for _ in range(steps):
        x0 = checkerboard(batch, g)
        eps = torch.randn(x0.shape, generator=g)
        s = torch.rand(batch, 1, generator=g)
        gm = model((1 - s) * x0 + s * eps, s)
        loss = flow_matching_loss(gm.means[:, 0], eps - x0) if K == 1 else gmflow_nll(gm, eps - x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model


g = torch.Generator().manual_seed(1)
data = checkerboard(4000, g)
samples = {}
for K in (1, 64):
    t0 = time.perf_counter()
    model = train(K)
    print(f"K={K}: trained in {time.perf_counter() - t0:.1f} s")
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        if K == 1:
            samples["flow matching (K=1), Euler"] = gmflow_sample(model, noise, 8, sampler="ode")
        else:
            samples["GMFlow K=64, GM-SDE"] = gmflow_sample(model, noise, 8, sampler="sde", generator=g)
            samples["GMFlow K=64, GM-ODE (8 substeps)"] = gmflow_sample(model, noise, 8, sampler="ode",
                                                                         n_substeps=8)
for name, s in samples.items():
    print(f"{name:34s} 8 steps: energy distance to data {energy_distance(s, data):.4f}")

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (name, pts) in zip(axes, [("data", data), *samples.items()], strict=True):
    ax.scatter(pts[:, 0], pts[:, 1], s=0.5)
    ax.set(title=name, xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal")
plt.tight_layout()
plt.show()
