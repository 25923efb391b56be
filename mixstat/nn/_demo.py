"""``mixstat demo`` rows for the neural modules (see docs/contributing.md).

Three small CPU runs:

* an MoE classifier on scikit-learn's digits, trained with plain top-2 routing
  and with SparseMixer (top-1): test accuracy and expert load balance;
* GMFlow (K = 64, GM-SDE and GM-ODE) against plain flow matching (K = 1,
  Euler) on a 2-D checkerboard at 8 sampling steps: energy distance to data;
* immiscible noise assignment on the same toy: training steps until the
  8-step samples reach a target energy distance, with and without it.

The helpers here are shared by the examples' logic but the examples stay
self-contained scripts.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["run"]


def checkerboard(n, generator):
    """FFJORD's 2-D checkerboard on [-2, 2]^2 (8 squares)."""
    import torch

    x1 = torch.rand(n, generator=generator) * 4 - 2
    x2 = torch.rand(n, generator=generator) - torch.randint(0, 2, (n,), generator=generator) * 2.0
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], 1) * 1.0


def energy_distance(a, b):
    """:func:`mixstat.nn.teachers.energy_distance` (imported when called)."""
    from .teachers import energy_distance as ed

    return ed(a, b)


# ------------------------------------------------------------------ MoE digits
def train_moe_digits(router="topk", k=2, epochs=60, seed=0):
    """Train an MoE classifier on digits; return (accuracy, max/min expert load, seconds)."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import MoELayer

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=seed, stratify=y)
    Xtr, Xte = torch.tensor(Xtr, dtype=torch.float32), torch.tensor(Xte, dtype=torch.float32)
    ytr, yte = torch.tensor(ytr), torch.tensor(yte)
    torch.manual_seed(seed)
    inp = torch.nn.Linear(64, 32)
    moe = MoELayer(32, 64, 8, k=k, router=router)
    out = torch.nn.Linear(32, 10)
    params = [*inp.parameters(), *moe.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        moe.train()
        for idx in torch.randperm(len(Xtr), generator=g).split(128):
            h = torch.relu(inp(Xtr[idx]))
            logits = out(h + moe(h))
            loss = torch.nn.functional.cross_entropy(logits, ytr[idx]) + moe.aux_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    fit_time = time.perf_counter() - t0
    moe.eval()
    with torch.no_grad():
        h = torch.relu(inp(Xte))
        acc = float((out(h + moe(h)).argmax(1) == yte).float().mean())
        load = moe.expert_load().numpy()
    return acc, load, fit_time


# ------------------------------------------------------------------ GMFlow toy
def _mlp(d_out_head, n_components, width=128, depth=3):
    import torch

    from . import GMFlowHead

    layers, d = [], 3
    for _ in range(depth):
        layers += [torch.nn.Linear(d, width), torch.nn.SiLU()]
        d = width
    body = torch.nn.Sequential(*layers)
    head = GMFlowHead(width, d_out_head, n_components, log_std=0.0 if n_components == 1 else None)
    return body, head


def train_flow(n_components, steps, *, immiscible=False, seed=0, batch=512, eval_every=None, eval_fn=None):
    """Train a GMFlow (K > 1) or flow-matching (K = 1) toy model on the checkerboard.

    Returns (model, seconds, evals) where model(x_t, sigma) gives the u-GM and
    evals is a list of (step, eval_fn(model)).
    """
    import torch

    from . import flow_matching_loss, gmflow_nll, immiscible_noise

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    body, head = _mlp(2, n_components)

    def model(x_t, s):
        return head(body(torch.cat([x_t, s], 1)))

    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    evals, fit = [], 0.0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        x0 = checkerboard(batch, g)
        eps = immiscible_noise(x0, generator=g) if immiscible else torch.randn(x0.shape, generator=g)
        s = torch.rand(batch, 1, generator=g)
        x_t = (1 - s) * x0 + s * eps
        gm = model(x_t, s)
        u = eps - x0
        loss = flow_matching_loss(gm.means[:, 0], u) if n_components == 1 else gmflow_nll(gm, u)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        fit += time.perf_counter() - t0
        if eval_every and step % eval_every == 0:
            with torch.no_grad():
                evals.append((step, eval_fn(model)))
    return model, fit, evals


def sample_flow(model, n, n_steps=8, sampler="ode", n_substeps=1, seed=123):
    import torch

    from . import gmflow_sample

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return gmflow_sample(model, torch.randn(n, 2, generator=g), n_steps, sampler=sampler,
                             n_substeps=n_substeps, generator=g)


def _balance(load):
    """Effective number of experts exp(H(load)) out of E."""
    p = load[load > 0]
    return f"eff. experts={float(np.exp(-(p * np.log(p)).sum())):.1f}/{load.size}"


def _savefig(fig, out_dir, name):
    if out_dir is not None:
        fig.savefig(os.path.join(out_dir, name), dpi=90, bbox_inches="tight")


def run(out_dir=None, quick=False):
    """Rows of the ``mixstat demo`` table for the neural modules."""
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out_dir, quick, torch)
    finally:
        torch.set_num_threads(n_threads)


def _run(out_dir, quick, torch):
    rows = []
    epochs = 4 if quick else 20
    for name, router, k in (("MoE top-2 (softmax)", "topk", 2), ("MoE top-1 SparseMixer", "sparsemixer", 1)):
        acc, load, t = train_moe_digits(router, k, epochs=epochs)
        rows.append({"model": f"nn.MoELayer {name}", "data": "digits (30% test)", "fit_time_s": t,
                     "metric": f"acc={acc:.3f} {_balance(load)}"})

    steps = 100 if quick else 500
    g = torch.Generator().manual_seed(7)
    data = checkerboard(2000, g)
    fm, t_fm, _ = train_flow(1, steps)
    gmf, t_gm, _ = train_flow(64, steps)
    s_fm = sample_flow(fm, 2000, 8, "ode")
    s_sde = sample_flow(gmf, 2000, 8, "sde")
    s_ode = sample_flow(gmf, 2000, 8, "ode", n_substeps=8)
    ed = {k: energy_distance(v, data) for k, v in (("fm", s_fm), ("sde", s_sde), ("ode", s_ode))}
    rows.append({"model": "flow matching (K=1), Euler 8 steps", "data": "2-D checkerboard", "fit_time_s": t_fm,
                 "metric": f"energy dist={ed['fm']:.4f}"})
    rows.append({"model": "GMFlow K=64, GM-SDE 8 steps", "data": "2-D checkerboard", "fit_time_s": t_gm,
                 "metric": f"energy dist={ed['sde']:.4f}"})
    rows.append({"model": "GMFlow K=64, GM-ODE 8x8 substeps", "data": "2-D checkerboard", "fit_time_s": t_gm,
                 "metric": f"energy dist={ed['ode']:.4f}"})
    if out_dir is not None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
        for ax, (title, pts) in zip(axes, (("data", data), ("FM K=1, 8 steps", s_fm),
                                           ("GMFlow K=64 SDE, 8 steps", s_sde),
                                           ("GMFlow K=64 ODE, 8 steps", s_ode)), strict=True):
            ax.scatter(pts[:, 0], pts[:, 1], s=1)
            ax.set(title=title, xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal")
        _savefig(fig, out_dir, "nn_gmflow_checkerboard.png")
        plt.close(fig)

    # immiscible: steps to reach a target energy distance (FM K=1, 8 Euler steps)
    isteps = 60 if quick else 250
    every = 20 if quick else 50

    def ev(model):
        return energy_distance(sample_flow(model, 1000, 8, "ode", seed=5), data[:1000])

    for label, imm in (("independent noise", False), ("immiscible (LSA)", True)):
        t0 = time.perf_counter()
        _, _, evals = train_flow(1, isteps, immiscible=imm, seed=3, batch=256, eval_every=every, eval_fn=ev)
        rows.append({"model": f"flow matching K=1, {label}", "data": "2-D checkerboard",
                     "fit_time_s": time.perf_counter() - t0,
                     "metric": "energy dist@step " + ",".join(f"{s}:{e:.3f}" for s, e in evals[:: max(1, len(evals) // 4)])})
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run(None, quick=True):
        print(r)
