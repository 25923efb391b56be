"""MoE classifier on digits, with and without SparseMixer
=============================================================

A small network ``Linear -> MoELayer (8 experts) -> Linear`` on scikit-learn's
handwritten digits, trained three ways: softmax top-2 routing (Mixtral-style),
softmax top-1 routing (Switch) and top-1 routing with the SparseMixer gradient
estimator (Liu, Gao & Chen 2023). We report the test accuracy and the load
balance (effective number of experts, :math:`\\exp H(\\text{load})`).
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mixstat.nn import MoELayer

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
Xtr, Xte = torch.tensor(Xtr, dtype=torch.float32), torch.tensor(Xte, dtype=torch.float32)
ytr, yte = torch.tensor(ytr), torch.tensor(yte)


def train(router, k, epochs=20, seed=0):
    torch.manual_seed(seed)
    inp, out = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
    moe = MoELayer(32, 64, 8, k=k, router=router)
    params = [*inp.parameters(), *moe.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    curve = []
    for _ in range(epochs):
        moe.train()
        for idx in torch.randperm(len(Xtr)).split(128):
            h = torch.relu(inp(Xtr[idx]))
            loss = torch.nn.functional.cross_entropy(out(h + moe(h)), ytr[idx]) + moe.aux_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        moe.eval()
        with torch.no_grad():
            h = torch.relu(inp(Xte))
            curve.append(float((out(h + moe(h)).argmax(1) == yte).float().mean()))
    load = moe.expert_load().numpy()
    p = load[load > 0]
    return curve, float(np.exp(-(p * np.log(p)).sum())), load


results = {}
for name, router, k in [("top-2 softmax", "topk", 2), ("top-1 softmax (Switch)", "topk", 1),
                        ("top-1 SparseMixer", "sparsemixer", 1)]:
    t0 = time.perf_counter()
    curve, eff, load = train(router, k)
    results[name] = (curve, load)
    print(f"{name:24s} test acc {curve[-1]:.3f}  effective experts {eff:.1f}/8  "
          f"({time.perf_counter() - t0:.1f} s)")

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
for name, (curve, load) in results.items():
    a.plot(np.arange(1, len(curve) + 1), curve, label=name)
    b.plot(np.arange(8), load, marker="o", label=name)
a.set(xlabel="epoch", ylabel="test accuracy", title="digits")
b.set(xlabel="expert", ylabel="share of assignments (test set)", title="expert load")
a.legend()
plt.tight_layout()
plt.show()
