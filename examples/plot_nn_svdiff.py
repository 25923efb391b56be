"""SVDiff: fine-tuning only the singular values of a pretrained denoiser
==========================================================================

SVDiff (Han et al. 2023) rewrites each pretrained weight as
:math:`W = U\\Sigma V^\\top` and fine-tunes only a shift of its singular
values, :math:`W_\\delta = U\\,\\mathrm{diag}(\\mathrm{ReLU}(\\sigma+\\delta))V^\\top`.
A small noise-prediction MLP is pretrained on all 8x8 digits, then adapted to
20 images of the digit 3 with :func:`mixstat.nn.apply_spectral_shifts` and, for
comparison, with LoRA. We also show Cut-Mix, the paper's augmentation for
several subjects (two images stitched side by side, with region masks for the
Unmix regulariser).
"""

import copy
import math

import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from torch import nn

from mixstat.nn import LoRALinear, SpectralShift, apply_spectral_shifts, cut_mix

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 8.0 - 1.0, dtype=torch.float32)


class Denoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(96, 256),
            nn.SiLU(),
            nn.Linear(256, 256),
            nn.SiLU(),
            nn.Linear(256, 64),
        )

    def forward(self, x, t):
        f = torch.exp(-math.log(1000.0) * torch.arange(16) / 16)
        a = t.float()[:, None] * f
        return self.net(torch.cat([x, torch.cos(a), torch.sin(a)], -1))


def alpha_bar(t):
    return torch.cos((t.float() / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2


def loss_fn(model, x0, g):
    t = torch.randint(0, 1000, (x0.shape[0],), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    ab = alpha_bar(t).clamp(1e-5, 1)[:, None]
    return (model(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t) - eps).pow(2).mean()


def fit(model, data, steps, lr, g, batch=128):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for _ in range(steps):
        x0 = data[torch.randint(0, len(data), (min(batch, len(data)),), generator=g)]
        loss = loss_fn(model, x0, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return sum(p.numel() for p in params)


@torch.no_grad()
def sample(model, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 64, generator=g)
    ts = torch.linspace(999, 0, 50).round().long()
    for i, t in enumerate(ts):
        ab = alpha_bar(t).clamp(1e-5, 1)
        abp = alpha_bar(ts[i + 1]).clamp(1e-5, 1) if i + 1 < 50 else torch.tensor(1.0)
        eps = model(x, t.expand(n))
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        x = abp.sqrt() * x0 + (1 - abp).sqrt() * (x - ab.sqrt() * x0) / (1 - ab).sqrt()
    return x0.reshape(n, 8, 8)


torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
teacher = Denoiser()
fit(teacher, X, 3000, 2e-3, g)

threes = X[torch.as_tensor(y == 3)][:20]
svd = apply_spectral_shifts(copy.deepcopy(teacher))
n_svd = fit(svd, threes, 600, 1e-2, g)
lora = copy.deepcopy(teacher)
for p in lora.parameters():
    p.requires_grad_(False)
for i in (0, 2, 4):
    lora.net[i] = LoRALinear(lora.net[i], rank=4)
n_lora = fit(lora, threes, 600, 1e-3, g)
print(
    f"trainable parameters: spectral shifts {n_svd}, LoRA {n_lora}, "
    f"full {sum(p.numel() for p in teacher.parameters())}"
)

# %%
# Samples before and after, and the learned shifts of the middle layer
rows = [
    ("pretrained", teacher),
    (f"spectral shifts ({n_svd})", svd),
    (f"LoRA ({n_lora})", lora),
]
fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
for r, (name, m) in enumerate(rows):
    imgs = sample(m, 8, seed=r)
    for c in range(8):
        axes[r, c].imshow(imgs[c], cmap="gray_r")
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name, fontsize=7)
plt.tight_layout()

mid = svd.net[2]
assert isinstance(mid, SpectralShift)
plt.figure(figsize=(5, 3))
plt.plot(mid.S.numpy(), label=r"pretrained $\sigma$")
plt.plot(torch.relu(mid.S + mid.delta).detach().numpy(), label=r"ReLU($\sigma+\delta$)")
plt.xlabel("singular value index")
plt.legend()

# %%
# Cut-Mix of a 0 and a 7, and the regions used by the Unmix regulariser
a, b = X[y == 0][:1].reshape(1, 1, 8, 8), X[y == 7][:1].reshape(1, 1, 8, 8)
mixed, mask_a, mask_b = cut_mix(a, b)
fig, axes = plt.subplots(1, 3, figsize=(6, 2.2))
for ax, im, title in zip(
    axes,
    (mixed[0, 0], mask_a.float(), mask_b.float()),
    ("cut-mix", "region of subject a", "region of subject b"),
    strict=False,
):
    ax.imshow(im, cmap="gray_r")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
plt.show()
