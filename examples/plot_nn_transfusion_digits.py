"""Transfusion on 8x8 digits: one transformer that writes and reads digits
============================================================================

One small transformer (Zhou et al. 2024, "Transfusion") is trained on two
kinds of sequences of scikit-learn's 8x8 digits cut into 16 patches of 2x2
pixels:

* ``BOS, label, BOI, 16 noisy patches, EOI`` (label -> image), and
* ``BOS, BOI, 16 patches, EOI, label`` (image -> label),

with a next-token loss on the tokens and a diffusion (noise prediction) loss
on the patches, :math:`\\mathcal L = \\mathcal L_{LM} + 5\\,\\mathcal L_{DDPM}`.
Attention is causal across the sequence and bidirectional inside the image.
After about a minute of CPU training, the model classifies test digits from
the image -> label layout and draws digits of an asked class with
classifier-free guidance.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mixstat.nn import TransfusionModel, pack_image_sequence, transfusion_attention_mask

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(
    X / 8.0 - 1.0, y, test_size=0.25, random_state=0, stratify=y
)


def to_patches(A):
    x = torch.as_tensor(A, dtype=torch.float32).reshape(-1, 4, 2, 4, 2)
    return x.permute(0, 1, 3, 2, 4).reshape(-1, 16, 4)


def to_images(P):
    return P.reshape(-1, 4, 4, 2, 2).permute(0, 1, 3, 2, 4).reshape(-1, 8, 8)


BOS, BOI, EOI, NULL = 10, 11, 12, 13
Ptr, Ytr = to_patches(Xtr), torch.as_tensor(ytr)

# %%
# The attention mask of the image -> label layout: causal, except the
# 16 x 16 block of the image
_, _, ii = pack_image_sequence(
    torch.tensor([[BOS, BOI]]), 16, torch.tensor([[EOI, 3]]), patch_dim=4
)
plt.figure(figsize=(3.5, 3.5))
plt.imshow(transfusion_attention_mask(ii[0]).numpy(), cmap="Greys")
plt.title("who attends to whom")
plt.xlabel("key position")
plt.ylabel("query position")

# %%
# Training (one CPU thread, 60 s)
torch.manual_seed(0)
model = TransfusionModel(14, 4, 20, 16, d_model=64, n_heads=4, n_layers=3)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
g = torch.Generator().manual_seed(0)
t0, steps = time.perf_counter(), 0
while time.perf_counter() - t0 < 60:
    idx = torch.randint(0, len(Ptr), (64,), generator=g)
    lab = Ytr[idx]
    cond = torch.where(
        torch.rand(32, generator=g) < 0.1, NULL, lab[:32]
    )  # for guidance
    one = torch.ones(32, 1, dtype=torch.long)
    a = pack_image_sequence(
        torch.cat([BOS * one, cond[:, None], BOI * one], 1),
        16,
        EOI * one,
        Ptr[idx[:32]],
    )
    b = pack_image_sequence(
        torch.cat([BOS * one, BOI * one], 1),
        16,
        torch.cat([EOI * one, lab[32:, None]], 1),
        Ptr[idx[32:]],
    )
    tok, pat, ii = (torch.cat([u, v]) for u, v in zip(a, b, strict=False))
    t = torch.cat(
        [
            torch.randint(0, 1000, (32,), generator=g),
            torch.randint(0, 500, (32,), generator=g),
        ]
    )  # captioning: milder noise
    loss, lm, diff = model.training_loss(tok, pat, ii, t=t, generator=g)
    opt.zero_grad()
    loss.backward()
    opt.step()
    steps += 1
print(f"{steps} steps; last LM loss {lm.item():.3f}, diffusion loss {diff.item():.3f}")

# %%
# Image -> label: read the token after EOI
model.eval()
one = torch.ones(len(yte), 1, dtype=torch.long)
tok, pat, ii = pack_image_sequence(
    torch.cat([BOS * one, BOI * one], 1), 16, EOI * one, to_patches(Xte)
)
pred = model.next_token_logits(tok, pat, ii)[:, :10].argmax(-1).numpy()
print(f"image -> label accuracy: {np.mean(pred == yte):.3f}")

# %%
# Label -> image: DDIM, 50 steps, classifier-free guidance w = 2
lab = torch.arange(10).repeat_interleave(6)
one = torch.ones(len(lab), 1, dtype=torch.long)
tok, _, ii = pack_image_sequence(
    torch.cat([BOS * one, lab[:, None], BOI * one], 1), 16, EOI * one, patch_dim=4
)
unc = tok.clone()
unc[:, 1] = NULL
out = model.sample_image(
    tok,
    ii,
    n_steps=50,
    guidance_scale=2.0,
    uncond_tokens=unc,
    generator=torch.Generator().manual_seed(1),
)
imgs = to_images(out[:, 3:19]).numpy()
fig, axes = plt.subplots(6, 10, figsize=(8, 5))
for i, ax in enumerate(axes.T.reshape(-1)):
    ax.imshow(imgs[i], cmap="gray_r")
    ax.set_xticks([])
    ax.set_yticks([])
for c in range(10):
    axes[0, c].set_title(str(c))
fig.suptitle("Transfusion samples, one column per asked digit")
plt.show()
