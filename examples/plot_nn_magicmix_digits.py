"""MagicMix on 8x8 digits: layout from one digit, content from another class
=========================================================================

MagicMix (Liew et al. 2022) noises a *layout* image to level
:math:`k_{\\max}`, denoises it with a *content* condition, and between
:math:`k_{\\max}` and :math:`k_{\\min}` mixes every state with the freshly
noised layout image, :math:`x_t \\leftarrow \\nu x_t + (1-\\nu)\\,\\mathrm{noised}(x^{src}, t)`;
below :math:`k_{\\min}` the content class alone finishes the sample.

The teacher is a small class-conditional MLP denoiser trained on
scikit-learn's digits. Rows: a source digit; columns: plain sampling of the
content class, SDEdit (:math:`\\nu = 1`) and MagicMix with decreasing
:math:`\\nu` (more of the source's layout kept).
"""

import time

import matplotlib.pyplot as plt
import torch

from mixstat.nn import (
    ConditionalDenoiserMLP,
    denoiser_sample,
    load_digits_8x8,
    magic_mix,
    train_denoiser,
)

torch.set_num_threads(1)
torch.manual_seed(0)
X, y = load_digits_8x8()
g = torch.Generator().manual_seed(0)
teacher = ConditionalDenoiserMLP(64, 10, 256, 3, sigma_data=0.6)
t0 = time.perf_counter()
train_denoiser(teacher, X, y, steps=3000, generator=g)
print(f"digits teacher trained in {time.perf_counter() - t0:.0f} s")

src_idx = [0, 1, 3, 7]  # a 0, a 1, a 3, a 7
src = X[src_idx]
content = torch.tensor([8, 4, 9, 2])
kw = dict(k_max=0.7, k_min=0.4, n_steps=40, guidance=2.0)
cols = {
    "source": src,
    "plain, content class": denoiser_sample(
        teacher,
        content,
        40,
        shape=(64,),
        guidance=2.0,
        generator=torch.Generator().manual_seed(1),
    ),
}
for nu in (1.0, 0.75, 0.5, 0.25):
    cols[f"nu = {nu}"] = magic_mix(
        teacher, src, content, nu=nu, generator=torch.Generator().manual_seed(1), **kw
    )

fig, axes = plt.subplots(
    len(src_idx), len(cols), figsize=(1.6 * len(cols), 1.7 * len(src_idx))
)
for j, (name, imgs) in enumerate(cols.items()):
    for i in range(len(src_idx)):
        ax = axes[i, j]
        ax.imshow(imgs[i].reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(name, fontsize=8)
        if j == 0:
            ax.set_ylabel(f"{int(y[src_idx[i]])} -> {int(content[i])}")
plt.tight_layout()
plt.show()
