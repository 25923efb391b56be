"""
MixERRegressor: a mixture of linear regressions routed by K-means on gate features
==================================================================================

Four regimes live on two gate features ``z``; in each regime the response is
a different linear function of three features ``x``. MixERRegressor clusters
``z`` (warm-started K-means), matches each cluster to the expert with the
lowest median squared error on it, and fits the gate by least squares to the
one-hot targets. One linear regression cannot fit the data.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score

from mixstat.mixer import MixERRegressor


def make_regimes(n, rng):
    """x (3 features), z (2 gate features) and y with 4 regimes clustered in z."""
    centers = np.array([[-3, -3], [3, -3], [-3, 3], [3, 3.0]])
    B = 2.0 * np.array([[2, 0, -1], [-2, 1, 0], [0, -2, 2], [1, 1, 1.0]])
    g = rng.integers(0, 4, n)
    z = centers[g] + rng.normal(size=(n, 2))
    x = rng.normal(size=(n, 3))
    y = (x * B[g]).sum(1) + 0.3 * rng.normal(size=n)
    return x, z, y, g


rng = np.random.default_rng(0)
x, z, y, g = make_regimes(800, rng)
xt, zt, yt, gt = make_regimes(800, rng)

est = MixERRegressor(n_experts=4, random_state=0).fit(x, y, Z=z)
routes = est.route(xt, Z=zt)
print("MixER test MSE", np.mean((est.predict(xt, Z=zt) - yt) ** 2),
      "routing ARI", adjusted_rand_score(gt, routes))
lin = LinearRegression().fit(np.c_[x, z], y)
print("single linear regression test MSE", np.mean((lin.predict(np.c_[xt, zt]) - yt) ** 2))

# the gate's decision regions on z
u, v = np.meshgrid(np.linspace(-6, 6, 200), np.linspace(-6, 6, 200))
grid = np.c_[u.ravel(), v.ravel()]
region = np.argmax(grid @ est.gate_coef_[:-1] + est.gate_coef_[-1], axis=1)
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.contourf(u, v, region.reshape(u.shape), levels=np.arange(-0.5, 4), alpha=0.25, cmap="tab10")
ax.scatter(zt[:, 0], zt[:, 1], c=routes, s=6, cmap="tab10", vmin=0, vmax=9)
ax.plot(*est.cluster_centers_.T, "k*", ms=12, label="K-means centres")
ax.set_xlabel("z1")
ax.set_ylabel("z2")
ax.legend(loc="upper center")
ax.set_title("MixER gate regions and routed test points")
fig.tight_layout()
plt.show()
