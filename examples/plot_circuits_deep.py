"""
Deep squared circuits: +-^2 vs +^2 vs + at equal size
=====================================================

A tensorised circuit on a random binary tree over D = 8 variables (rings
plus six dependent dimensions), K = 8 Gaussian units per region, trained as
a monotonic circuit (+), a squared monotonic one (+^2) and a squared circuit
with signed weights (+-^2, NPC^2). Same architecture, same budget; the
paper's ordering is +-^2 > +^2 > +. Then a marginal over the first two
variables (through the squared circuit) is plotted.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from mixstat.circuits import SquaredCircuitDensity
from mixstat.datasets import make_circuit_dataset

torch.set_num_threads(1)
warnings.simplefilter("ignore", ConvergenceWarning)
X = make_circuit_dataset("rings8", 4000, random_state=0)
X_test = make_circuit_dataset("rings8", 2000, random_state=1)

models = {}
for name, kw in {"+-^2": dict(weights="signed"), "+^2": dict(weights="positive"),
                 "+": dict(weights="positive", squared=False)}.items():
    models[name] = SquaredCircuitDensity(n_units=8, max_epochs=8, learning_rate=1e-2, random_state=0, **kw).fit(X)
    print(f"{name:5s} test LL {models[name].score(X_test):.3f}")

g = np.linspace(-2.2, 2.2, 120)
XX, YY = np.meshgrid(g, g)
grid = np.c_[XX.ravel(), YY.ravel()]
fig, ax = plt.subplots(1, 3, figsize=(10, 3.4))
for a, (name, m) in zip(ax, models.items()):
    a.imshow(np.exp(m.marginal([0, 1]).score_samples(grid)).reshape(XX.shape), origin="lower",
             extent=[-2.2, 2.2, -2.2, 2.2])
    a.set_title(f"{name}: p(x1, x2)")
fig.tight_layout()
plt.show()
