"""
MixER gating on families of ODEs: closed-form gate versus gradient-trained softmax gate
=======================================================================================

Environments of two ODE families (undamped harmonic oscillator and damped
double well, four parameter settings each) are fitted by a mixture of two
CoDA neural-ODE experts. Each environment has a learned context; the gate
sees the context only and sends the whole environment to one expert.

* ``gate='kmeans_lstsq'`` (MixER): the gate is replaced at intervals by
  K-means on the contexts, cluster-to-expert matching by median loss, and a
  least-squares fit to the one-hot targets;
* ``gate='softmax_gd'``: a Switch-style softmax top-1 gate trained by
  gradient descent with the rest of the model.

The heatmaps show the gate value of every environment (rows) for every
expert (columns); white lines separate the families.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import softmax
from sklearn.metrics import adjusted_rand_score

from mixstat.datasets import make_ode_families
from mixstat.mixer import MixERODE, routing_purity


def gate_heatmap(est, family, names, ax, title):
    """Gate values softmax([xi, 1] W) of every environment (rows) for every
    expert (columns); white lines separate the families."""
    values = softmax(est.contexts_ @ est.gate_coef_[:-1] + est.gate_coef_[-1], axis=1)
    im = ax.imshow(values, aspect="auto", cmap="viridis")
    ax.set(xlabel="expert", ylabel="environment", xticks=range(values.shape[1]))
    fam = np.asarray(family)
    for edge in np.flatnonzero(np.diff(fam)) + 0.5:
        ax.axhline(edge, color="w", lw=1)
    ax.set_yticks([np.mean(np.flatnonzero(fam == f)) for f in np.unique(fam)])
    ax.set_yticklabels([names[f] for f in np.unique(fam)], fontsize=7)
    ax.figure.colorbar(im, ax=ax, label="gate value")
    ax.set_title(title, fontsize=9)


data = make_ode_families(("harmonic", "damped_double_well"), n_envs_per_family=4,
                         n_trajectories=2, t=np.arange(0, 5, 0.5), random_state=0)

fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
for ax, gate in zip(axes, ["kmeans_lstsq", "softmax_gd"], strict=True):
    est = MixERODE(n_experts=2, context_dim=2, hidden=16, gate=gate, n_outer=8,
                   n_inner=(4, 4), gate_every=2, lr=(1e-2, 3e-3), kmeans_init="k-means++",
                   random_state=0)
    est.fit(data.trajectories, data.t, data.envs)
    purity = routing_purity(est.routing_, data.env_family)
    ari = adjusted_rand_score(data.env_family, est.routing_)
    print(f"{gate:13s} purity {purity:.2f}  ARI {ari:.2f}  "
          f"train MSE {-est.score(data.trajectories, data.t, data.envs):.3f}")
    gate_heatmap(est, data.env_family, data.family_names, ax,
                 f"{gate}: purity {purity:.2f}")
fig.tight_layout()
plt.show()
