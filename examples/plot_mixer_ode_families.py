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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import adjusted_rand_score

from mixstat.datasets import make_ode_families
from mixstat.mixer import MixERODE, routing_purity
from mixstat.mixer._demo import gate_values, plot_gating_heatmap

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
    plot_gating_heatmap(gate_values(est.contexts_, est.gate_coef_), data.env_family,
                        data.family_names, ax=ax, title=f"{gate}: purity {purity:.2f}")
fig.tight_layout()
plt.show()
