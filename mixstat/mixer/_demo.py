"""``mixstat demo`` rows for MixER (see docs/contributing.md).

* :class:`~mixstat.mixer.MixERRegressor` on tabular data with 4 regimes
  living on two gate features: test MSE and routing ARI, against one
  linear regression;
* :class:`~mixstat.mixer.MixERODE` (needs torch) on two ODE families
  (harmonic and damped double well, 4 environments each, K = 2 CoDA
  experts): routing purity and ARI of environment -> expert against the
  families, with the gating heatmap (environment x expert) as a figure.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["run", "gate_values", "plot_gating_heatmap", "make_regimes"]


def make_regimes(n, rng):
    """x (3 features), z (2 gate features) and y with 4 regimes clustered in z."""
    centers = np.array([[-3, -3], [3, -3], [-3, 3], [3, 3.0]])
    B = 2.0 * np.array([[2, 0, -1], [-2, 1, 0], [0, -2, 2], [1, 1, 1.0]])
    g = rng.integers(0, 4, n)
    z = centers[g] + rng.normal(size=(n, 2))
    x = rng.normal(size=(n, 3))
    y = (x * B[g]).sum(1) + 0.3 * rng.normal(size=n)
    return x, z, y, g


def gate_values(contexts, gate_coef):
    """Softmax gate values ``softmax([xi, 1] W)`` of every environment (E x K)."""
    from ..primitives import softmax

    logits = np.asarray(contexts) @ gate_coef[:-1] + gate_coef[-1]
    return softmax(logits, axis=1)


def plot_gating_heatmap(values, env_family=None, family_names=None, ax=None, title=None):
    """Heatmap of gate values, environments (rows) x experts (columns)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 0.18 * values.shape[0] + 1.2))
    im = ax.imshow(values, aspect="auto", cmap="viridis")
    ax.set_xlabel("expert")
    ax.set_ylabel("environment")
    ax.set_xticks(range(values.shape[1]))
    if env_family is not None:
        fam = np.asarray(env_family)
        edges = np.flatnonzero(np.diff(fam)) + 0.5
        for e in edges:
            ax.axhline(e, color="w", lw=1)
        if family_names is not None:
            mids = [np.mean(np.flatnonzero(fam == f)) for f in np.unique(fam)]
            ax.set_yticks(mids)
            ax.set_yticklabels([family_names[f] for f in np.unique(fam)], fontsize=7)
    ax.figure.colorbar(im, ax=ax, label="gate value")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def run(out_dir=None, quick=False):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import adjusted_rand_score

    from . import MixERRegressor

    rows = []
    rng = np.random.default_rng(0)
    n = 400 if quick else 1000
    x, z, y, g = make_regimes(n, rng)
    xt, zt, yt, gt = make_regimes(n, rng)
    t0 = time.perf_counter()
    reg = MixERRegressor(n_experts=4, random_state=0).fit(x, y, Z=z)
    ft = time.perf_counter() - t0
    mse = np.mean((reg.predict(xt, Z=zt) - yt) ** 2)
    ari = adjusted_rand_score(gt, reg.route(xt, Z=zt))
    single = np.mean((LinearRegression().fit(np.c_[x, z], y).predict(np.c_[xt, zt]) - yt) ** 2)
    rows.append(dict(model="MixERRegressor (K=4)", data=f"4 regimes on z, n={n}",
                     fit_time_s=ft, metric=f"MSE={mse:.2f} (1 linreg {single:.1f}), ARI={ari:.2f}"))

    from .._backend import has_module

    if not has_module("torch"):
        return rows
    from ..datasets import make_ode_families
    from . import MixERODE, routing_purity

    d = make_ode_families(("harmonic", "damped_double_well"), 4, 2,
                          t=np.arange(0, 5, 0.5), random_state=0)
    est = MixERODE(n_experts=2, context_dim=2, hidden=16, n_outer=3 if quick else 10,
                   n_inner=(4, 4), gate_every=2, lr=(1e-2, 3e-3), kmeans_init="k-means++",
                   random_state=0)
    t0 = time.perf_counter()
    est.fit(d.trajectories, d.t, d.envs)
    ft = time.perf_counter() - t0
    pur = routing_purity(est.routing_, d.env_family)
    ari = adjusted_rand_score(d.env_family, est.routing_)
    mse = -est.score(d.trajectories, d.t, d.envs)
    rows.append(dict(model="MixERODE (K=2, CoDA)", data="2 ODE families x 4 envs",
                     fit_time_s=ft, metric=f"purity={pur:.2f}, ARI={ari:.2f}, MSE={mse:.3f}"))
    if out_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        vals = gate_values(est.contexts_, est.gate_coef_)
        ax = plot_gating_heatmap(vals, d.env_family, d.family_names,
                                 title="MixER gate (env x expert)")
        ax.figure.tight_layout()
        ax.figure.savefig(os.path.join(out_dir, "mixer_gating_heatmap.png"), dpi=110)
        plt.close(ax.figure)
    return rows
