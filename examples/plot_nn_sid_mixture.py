"""One-step and few-step Score identity Distillation on a 2-D class-conditional mixture
=====================================================================================

A tiny teacher (an MLP denoiser, 3 x 128) is trained on a class-conditional
mixture: 4 classes, each a mixture of two Gaussians on opposite sides of a
ring. SiD (Zhou et al., ICML 2024) then distils it *without data* into a
generator that makes a sample in one network call, and into a 4-step
generator (Zhou et al. 2025). The figure shows the data, the teacher's
64-step DDIM sampler, the teacher's own sampler at 4 steps, and the two SiD
students, coloured by class, with the energy distance (ED) to held-out data.

At this scale the one-step student is a few times the teacher's many-step ED
(see ``docs/nn.md``), but better than the teacher run with few steps. Its
failure is visible: a smooth one-step map from :math:`N(0, I)` onto *two*
separated modes of a class must pass through the space between them, and
leaves a thin bridge of samples there; the few-step student re-noises
between calls and cuts most of the bridge, at the price of slightly
narrower modes.
"""

import copy
import time

import matplotlib.pyplot as plt
import torch

from mixstat.nn import (
    ConditionalDenoiserMLP,
    SiDGenerator,
    denoiser_sample,
    energy_distance,
    make_class_mixture_2d,
    sid_distill,
    train_denoiser,
)

torch.set_num_threads(1)
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
x, y = make_class_mixture_2d(20000, 4, 2, generator=g)
teacher = ConditionalDenoiserMLP(2, 4, 128, 3, sigma_data=1.5)
t0 = time.perf_counter()
train_denoiser(teacher, x, y, steps=2000, generator=g)
print(f"teacher trained in {time.perf_counter() - t0:.0f} s")

labels = torch.arange(4).repeat(500)
data, _ = make_class_mixture_2d(
    2000, 4, 2, labels=labels, generator=torch.Generator().manual_seed(9)
)
panels = {
    "data": data,
    "teacher, 64 DDIM steps": denoiser_sample(
        teacher, labels, 64, shape=(2,), generator=g
    ),
    "teacher, 4 DDIM steps": denoiser_sample(
        teacher, labels, 4, shape=(2,), generator=g
    ),
}
for times in ((1.0,), (1.0, 0.75, 0.5, 0.25)):
    student = SiDGenerator(copy.deepcopy(teacher), times, shape=(2,))
    t0 = time.perf_counter()
    sid_distill(
        teacher, student, steps=1500, lr=1e-3, sigma_data=1.5, cosine_lr=True, seed=0
    )
    print(
        f"SiD {len(times)}-step student distilled in {time.perf_counter() - t0:.0f} s"
    )
    panels[f"SiD student, {len(times)} step{'s' if len(times) > 1 else ''}"] = (
        student.sample(labels, generator=g)
    )

fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
for ax, (name, pts) in zip(axes, panels.items(), strict=True):
    ed = energy_distance(pts, data) if name != "data" else 0.0
    ax.scatter(pts[:, 0], pts[:, 1], c=labels, cmap="tab10", vmin=0, vmax=9, s=1)
    ax.set(title=f"{name}\nED {ed:.4f}", xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    print(f"{name:28s} ED {ed:.4f}")
plt.tight_layout()
plt.show()
