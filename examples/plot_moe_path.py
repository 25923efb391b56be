"""
Lasso mixture of experts: regularisation path, BIC and gate regions
====================================================================

A softmax-gated mixture of two linear Gaussian experts (the simulation of
Khalili 2010 / Chamroukhi & Huynh 2019) is fitted along a warm-started path of
expert penalties. The BIC with the unpenalised log-likelihood picks the
penalty; the gates of the chosen model split the (x0, x3) plane (the
design's x1, x4), the two features the true gate uses. Experts and features
are numbered from 0, as in ``coef_`` and ``summary()``.
"""

import matplotlib.pyplot as plt
import numpy as np

from mixstat.datasets import make_khalili_moe
from mixstat.moe import GaussianMoERegressor, moe_path

X, y, truth = make_khalili_moe(300, random_state=0, return_params=True)

# %% the path: alpha_max (every slope zero) down to alpha_max / 50
path = moe_path(X, y, n_components=2, n_alphas=20, eps=0.02, alpha_gate=0.01, n_init=2)
bic = -2 * path.log_likelihood + path.df * np.log(len(y))
best = int(np.argmin(bic))
print(f"alpha_max = {path.alpha_max:.3f}; BIC picks alpha = {path.alphas[best]:.4f}")

# %% refit at the chosen penalty (restarts, canonical component order)
model = GaussianMoERegressor(2, alpha=path.alphas[best], alpha_gate=0.01, n_init=3,
                             random_state=0).fit(X, y)
print("expert slopes:\n", np.round(model.coef_, 2))
print("true slopes:\n", truth["coef"])
contrast = model.gate_coef_[0] - model.gate_coef_[1]
print("gate contrast w0 - w1 (summary's gate 0 vs 1):", np.round(contrast, 2))

# %% figure
fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
for k in range(2):
    for j in range(X.shape[1]):
        axes[k].plot(path.alphas, path.coef[:, k, j], label=f"x{j}")
    axes[k].set_xscale("log")
    axes[k].invert_xaxis()
    axes[k].set_title(f"expert {k}: slopes along the path")
    axes[k].set_xlabel("alpha")
axes[0].legend(ncol=2, fontsize=7)
axes[2].plot(path.alphas, bic, "k.-")
axes[2].axvline(path.alphas[best], color="r", ls="--")
axes[2].set_xscale("log")
axes[2].invert_xaxis()
axes[2].set_title("BIC")
axes[2].set_xlabel("alpha")

g1, g4 = np.meshgrid(np.linspace(-3, 3, 150), np.linspace(-3, 3, 150))
grid = np.zeros((g1.size, X.shape[1]))
grid[:, 0], grid[:, 3] = g1.ravel(), g4.ravel()
gate1 = model.predict_gates(grid)[:, 1].reshape(g1.shape)
cs = axes[3].contourf(g1, g4, gate1, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.7)
fig.colorbar(cs, ax=axes[3], label="gate of expert 1")
labels = model.predict_label(X, y)
axes[3].scatter(X[:, 0], X[:, 3], c=labels, cmap="coolwarm", s=9, edgecolors="k",
                linewidths=0.2)
axes[3].set_xlabel("x0")
axes[3].set_ylabel("x3")
axes[3].set_title("gate regions and MAP labels")
fig.tight_layout()
fig.savefig("moe_path.png", dpi=110)
plt.show()
