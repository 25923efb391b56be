"""
Walkthrough: an MoE layer in a small PyTorch model
==================================================

:class:`mixstat.nn.MoELayer` is a plain ``torch.nn.Module``: drop it where a
feed-forward block would go, add its ``aux_loss`` (load balancing and router
z-loss) to the training loss, and read the router's decisions afterwards.
Here a small classifier of scikit-learn's handwritten digits (1797 images of
8 x 8 pixels) gets a top-2 MoE block of 4 experts, trained beside the same
network with one dense block of the same width, and we look at which digits
each expert serves. Experts are numbered from 0. Needs torch
(``pip install 'mixstat[torch]'``).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mixstat.nn import MoELayer
from mixstat.plotting import plot_routing

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3,
                                      random_state=0, stratify=y)
Xtr, Xte = (torch.tensor(a, dtype=torch.float32) for a in (Xtr, Xte))
ytr, yte = torch.tensor(ytr), torch.tensor(yte)


class Net(torch.nn.Module):
    """Linear -> ReLU -> (MoE or dense) block with a residual -> Linear."""

    def __init__(self, moe):
        super().__init__()
        self.inp, self.out = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
        if moe:
            self.block = MoELayer(32, 64, n_experts=4, k=2)
        else:
            self.block = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(),
                                             torch.nn.Linear(64, 32))

    def forward(self, x):
        h = torch.relu(self.inp(x))
        return self.out(h + self.block(h))


def train(moe, epochs=15, seed=0):
    torch.manual_seed(seed)
    net = Net(moe)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(Xtr)).split(128):
            loss = torch.nn.functional.cross_entropy(net(Xtr[idx]), ytr[idx])
            if moe:
                loss = loss + net.block.aux_loss   # keeps the experts in use
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(Xte).argmax(1) == yte).float().mean())
    return net, acc


# %%
# Each token (here each image) is served by 2 of the 4 experts, so the MoE
# network computes about half of its expert parameters per image.
moe_net, acc_moe = train(moe=True)
dense_net, acc_dense = train(moe=False)
n_moe = sum(p.numel() for p in moe_net.block.parameters())
n_dense = sum(p.numel() for p in dense_net.block.parameters())
print(f"dense block: {n_dense} parameters, test accuracy {acc_dense:.3f}")
print(f"MoE block:   {n_moe} parameters (about {n_moe // 2} active per image), "
      f"test accuracy {acc_moe:.3f}")
print("share of assignments per expert (test set):",
      np.round(moe_net.block.expert_load().numpy(), 3))

# %%
# Which digits go where? After a forward pass the layer keeps the router's
# output (``router_output``: logits, probabilities and the kept
# assignments). The first choice of every test image, tabulated against its
# digit: in this run most digits send most of their images to one expert (a
# row with one bright cell), so the router has split the classes between the
# experts without being told the labels. An expert that is rarely a first
# choice still serves as a second choice (compare with ``expert_load()``).
with torch.no_grad():
    moe_net(Xte)
first_choice = moe_net.block.router_output.probs.argmax(1).numpy()
fig, ax = plt.subplots(figsize=(5, 5))
plot_routing(first_choice, groups=yte.numpy(), ax=ax)
ax.set_ylabel("digit")
ax.set_title("share of each digit's test images per first-choice expert",
             fontsize="medium")
fig.tight_layout()
plt.show()

# %%
# For more: ``docs/nn.md`` (routers, capacity, the dispatch paths and their
# measured speed, Expert Choice, SparseMixer) and the example on SparseMixer
# routing of the same data.
