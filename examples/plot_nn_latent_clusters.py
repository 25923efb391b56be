"""A mixture of experts finds latent clusters that a dense network misses
==========================================================================

Data of Kawata et al. (2025, ICML): four clusters :math:`x \\sim N(\\rho v_c, I)`,
each with its own single-index target :math:`f_c(w_c^\\top x)` (a third Hermite
polynomial) plus a global task :math:`s_c\\,g(w_g^\\top x)` whose signs cancel
over the clusters. An :class:`mixstat.nn.MoELayer` with one expert per cluster
and a dense network of the same size (one expert with all the hidden units)
are trained by the same SGD. We follow the test error and the adjusted Rand
index between the router's choices and the true clusters.
"""

import matplotlib.pyplot as plt
import torch
from sklearn.metrics import adjusted_rand_score

from mixstat.datasets import make_latent_cluster_regression
from mixstat.nn import MoELayer

torch.set_num_threads(1)
d, C, n = 16, 4, 20000
X, y, params = make_latent_cluster_regression(
    n + 4000, d, C, cluster_scale=3.0, noise=0.1, random_state=0, return_params=True
)
X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
Xtr, ytr, Xte, yte, labels = X[:n], y[:n], X[n:], y[n:], params["labels"][n:]


def train(n_experts, hidden, epochs=20):
    torch.manual_seed(0)
    layer = MoELayer(
        d,
        hidden,
        n_experts,
        k=1,
        activation="relu",
        balance_coef=0.1 if n_experts > 1 else 0.0,
        z_coef=0.0,
    )
    head = torch.nn.Linear(d, 1)
    opt = torch.optim.SGD(
        [*layer.parameters(), *head.parameters()], lr=0.02, momentum=0.9
    )
    mse, ari = [], []
    for _ in range(epochs):
        for idx in torch.randperm(n).split(64):
            loss = (head(layer(Xtr[idx])).squeeze(-1) - ytr[idx]).pow(
                2
            ).mean() + layer.aux_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            mse.append(float((head(layer(Xte)).squeeze(-1) - yte).pow(2).mean()))
            ari.append(
                adjusted_rand_score(labels, layer.router_output.expert_index.numpy())
            )
    return mse, ari


moe_mse, moe_ari = train(C, 32)
dense_mse, _ = train(1, 32 * C)
print(
    f"final test MSE: MoE {moe_mse[-1]:.3f}, dense {dense_mse[-1]:.3f} "
    f"(Var y = {float(yte.var()):.2f}); router ARI {moe_ari[-1]:.3f}"
)

fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
a1.plot(moe_mse, label="MoE, 4 x 32 hidden")
a1.plot(dense_mse, label="dense, 128 hidden")
a1.axhline(float(yte.var()), color="grey", ls=":", label="Var(y)")
a1.set_xlabel("epoch")
a1.set_ylabel("test MSE")
a1.legend()
a2.plot(moe_ari)
a2.set_xlabel("epoch")
a2.set_ylabel("router ARI vs true clusters")
plt.tight_layout()
plt.show()
