"""Mixture of States: a text tower conditions a digit denoiser, layer by layer
=============================================================================

Mixture of States (Liu et al. 2025) connects two towers: an understanding
tower reads the condition tokens, and a generation tower denoises the image.
For every condition token and every generation layer, a small router picks
the top-k hidden states among the understanding tower's layers (with
epsilon-greedy exploration while training), and the generation layer attends
to their mixture. Here the condition is a two-token "prompt" naming a digit
and the generation tower denoises 8x8 digits cut into 16 patches. We train
for about a minute on a CPU, draw digits, and show which understanding layers
the router chose, early and late in the denoising.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits

from mixstat.nn import MixtureOfStatesDenoiser

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
P = torch.tensor(X / 8.0 - 1.0, dtype=torch.float32).reshape(-1, 4, 2, 4, 2)
P = P.permute(0, 1, 3, 2, 4).reshape(-1, 16, 4)
Y = torch.as_tensor(y)
BOS = 10

torch.manual_seed(0)
model = MixtureOfStatesDenoiser(
    vocab_size=11,
    max_text_len=2,
    patch_dim=4,
    n_patches=16,
    d_und=32,
    n_und_layers=4,
    d_gen=48,
    n_gen_layers=3,
    n_heads=4,
    k=2,
    epsilon=0.05,
)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
g = torch.Generator().manual_seed(0)
t0, steps = time.perf_counter(), 0
while time.perf_counter() - t0 < 60:
    idx = torch.randint(0, len(P), (64,), generator=g)
    text = torch.stack([torch.full((64,), BOS), Y[idx]], 1)
    loss = model.training_loss(text, P[idx], generator=g)
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += 1
print(f"{steps} steps, last loss {loss.item():.3f}")

# %%
# Samples, one column per digit
model.eval()
lab = torch.arange(10).repeat(4)
text = torch.stack([torch.full_like(lab, BOS), lab], 1)
imgs = model.sample(text, n_steps=50, generator=torch.Generator().manual_seed(1))
imgs = imgs.reshape(-1, 4, 4, 2, 2).permute(0, 1, 3, 2, 4).reshape(-1, 8, 8)
fig, axes = plt.subplots(4, 10, figsize=(8, 3.4))
for i, ax in enumerate(axes.reshape(-1)):
    ax.imshow(imgs[i], cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])

# %%
# Which understanding layers feed each generation layer (the digit token),
# at a noisy step (t = 900) and a nearly clean one (t = 50)
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
text = torch.stack([torch.full((200,), BOS), Y[:200]], 1)
for ax, t in zip(axes, (900, 50), strict=False):
    ab = model.alpha_bar(torch.tensor(t))
    xt = ab.sqrt() * P[:200] + (1 - ab).sqrt() * torch.randn(200, 16, 4, generator=g)
    with torch.no_grad():
        model(text, xt, torch.tensor(t))
    idx = model.routing.indices[:, 1]  # (200, n_gen_layers, k) for the digit token
    freq = np.stack(
        [
            np.bincount(idx[:, j].reshape(-1).numpy(), minlength=4) / idx[:, j].numel()
            for j in range(idx.shape[1])
        ]
    )
    ax.imshow(freq, vmin=0, vmax=1, cmap="viridis")
    ax.set_xlabel("understanding layer")
    ax.set_ylabel("generation layer")
    ax.set_title(f"t = {t}: share of top-2 picks")
plt.tight_layout()
plt.show()
