"""Demo of mixstat.circuits for ``mixstat demo``: a squared (subtractive)
Gaussian mixture against an additive one on a ring, and a deep squared
circuit (NPC²) against the monotonic circuit of the same size."""

from __future__ import annotations

import os
import time
import warnings


def run(out_dir=None, quick=False):
    """Fit the family's models on built-in data; return table rows."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    from ..datasets import make_circuit_dataset, make_rings
    from . import SquaredGaussianMixture

    rows = []
    n = 1000 if quick else 4000
    X = make_rings(n, radii=(2.0,), noise=0.3, random_state=0)
    Xt = make_rings(2000, radii=(2.0,), noise=0.3, random_state=1)
    t = time.perf_counter()
    sq = SquaredGaussianMixture(3, init="random", n_init=2 if quick else 3, random_state=0).fit(X)
    rows.append(dict(model="SquaredGaussianMixture(K=3)", data="ring", fit_time_s=time.perf_counter() - t,
                     metric=f"test LL={sq.score(Xt):.3f}"))
    t = time.perf_counter()
    gm = GaussianMixture(3, n_init=3, random_state=0).fit(X)
    rows.append(dict(model="GaussianMixture(K=3) [sklearn]", data="ring", fit_time_s=time.perf_counter() - t,
                     metric=f"test LL={gm.score(Xt):.3f}"))

    fits = {}
    from .._backend import has_module

    if has_module("torch"):
        import torch

        from . import SquaredCircuitDensity

        torch.set_num_threads(1)
        D = make_circuit_dataset("rings", 2000 if quick else 5000, random_state=0)
        Dt = make_circuit_dataset("rings", 2000, random_state=1)
        for name, kw in {"+-^2": dict(weights="signed"), "+": dict(weights="positive", squared=False)}.items():
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m = SquaredCircuitDensity(n_units=8, max_epochs=2 if quick else 10, learning_rate=1e-2,
                                          random_state=0, **kw).fit(D)
            fits[name] = m
            rows.append(dict(model=f"SquaredCircuitDensity {name} (K=8)", data="3 rings (std.)",
                             fit_time_s=time.perf_counter() - t, metric=f"test LL={m.score(Dt):.3f}"))

    if out_dir is not None:
        import matplotlib.pyplot as plt

        g = np.linspace(-3.2, 3.2, 200)
        XX, YY = np.meshgrid(g, g)
        grid = np.c_[XX.ravel(), YY.ravel()]
        fig, ax = plt.subplots(1, 3, figsize=(10, 3.4))
        ax[0].hist2d(X[:, 0], X[:, 1], bins=80, range=[[-3.2, 3.2], [-3.2, 3.2]])
        ax[0].set_title("data: a ring")
        for a, (m, title) in zip(ax[1:], [(sq, "squared GMM, K=3"), (gm, "GaussianMixture, K=3")], strict=True):
            a.imshow(np.exp(m.score_samples(grid)).reshape(XX.shape), origin="lower",
                     extent=[-3.2, 3.2, -3.2, 3.2])
            a.set_title(f"{title}: {m.score(Xt):.3f}")
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "circuits_ring.png"), dpi=90)
        plt.close(fig)
    return rows
