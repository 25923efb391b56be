"""Fidelity of mixstat.circuits to Loconte et al. (ICLR 2024), Sec. 6.

1. The paper's 2-D densities (rings, moons, banana, cosine, funnel; 10,000
   training points, standardised): +-^2 vs +^2 vs + circuits (random binary
   tree, K Gaussian inputs, equal size), and the shallow squared Gaussian
   mixture vs scikit-learn's GaussianMixture with the same number of
   components.
2. Rings plus 6 dependent dimensions (D = 8), where depth matters.
3. Categorical inputs on scikit-learn's digits (8x8, 17 levels, quad-tree).

Test log-likelihoods in nats per point (standardised units for the
continuous data). One seed; fixed epoch budgets (sized for a shared 2-core
machine, stated in the table); best-validation checkpoint.

    .venv/bin/python benchmarks/bench_circuits_fidelity.py [--quick]

Writes benchmarks/results/circuits_fidelity.md and the density figure
benchmarks/results/circuits_fidelity_densities.png.
"""

import argparse
import os
import time
import warnings

import numpy as np
import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=Warning, module="sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from mixstat.circuits import SquaredCircuitDensity, SquaredGaussianMixture  # noqa: E402
from mixstat.datasets import make_circuit_dataset  # noqa: E402

warnings.filterwarnings("ignore", category=ConvergenceWarning)
HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"+-^2": dict(weights="signed", squared=True), "+^2": dict(weights="positive", squared=True),
            "+": dict(weights="positive", squared=False)}


def split(name, n_train, seed=0):
    X = make_circuit_dataset(name, n_train + 3000, random_state=seed, standardize=False)
    tr, te = X[:n_train + 1000], X[n_train + 1000:]
    mu, sd = tr.mean(0), tr.std(0)
    return (tr - mu) / sd, (te - mu) / sd


def fit_sgmm(tr, K, seed=0):
    """Squared GMM: best training likelihood over the two inits (model
    selection on the training data only)."""
    a = SquaredGaussianMixture(K, init="kmeans", n_init=2, random_state=seed).fit(tr)
    b = SquaredGaussianMixture(K, init="random", n_init=3, random_state=seed).fit(tr)
    return a if a.lower_bound_ >= b.lower_bound_ else b


def circuit(variant, K, epochs, **kw):
    return SquaredCircuitDensity(n_units=K, max_epochs=epochs, batch_size=256, learning_rate=5e-3,
                                 early_stopping=True, n_iter_no_change=10_000,  # fixed budget, best-valid kept
                                 validation_fraction=1000 / 11000, random_state=0, **VARIANTS[variant], **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_train = 2000 if args.quick else 10000
    ep2, ep8, epd = (2, 2, 2) if args.quick else (25, 30, 30)
    K2, K8 = 16, 16
    K_shallow = 6
    out = []
    fits = {}
    # ---------------------------------------------------------- 2-D data
    lines = ["| data | +-^2 | +^2 | + | SquaredGaussianMixture K=%d | GaussianMixture K=%d |" % (K_shallow, K_shallow),
             "|---|---|---|---|---|---|"]
    for name in ["rings", "moons", "banana", "cosine", "funnel"]:
        tr, te = split(name, n_train)
        row = []
        for v in VARIANTS:
            t = time.perf_counter()
            m = circuit(v, K2, ep2).fit(tr)
            row.append(m.score(te))
            fits[(name, v)] = m
            print(name, v, f"{row[-1]:.3f}", f"{time.perf_counter() - t:.0f}s", flush=True)
        sq = fit_sgmm(tr, K_shallow)
        gm = GaussianMixture(K_shallow, n_init=5, random_state=0).fit(tr)
        fits[(name, "sgmm")] = sq
        fits[(name, "gmm")] = gm
        row += [sq.score(te), gm.score(te)]
        lines.append(f"| {name} | " + " | ".join(f"{r:.3f}" for r in row) + " |")
        print(lines[-1], flush=True)
    # one ring (a density with a hole): shallow squared vs additive, same K
    from mixstat.datasets import make_rings

    ring = make_rings(n_train + 2000, radii=(2.0,), noise=0.3, random_state=1)
    rtr, rte = ring[:n_train], ring[n_train:]
    rl = ["| K | SquaredGaussianMixture | GaussianMixture | difference | negative weights |", "|---|---|---|---|---|"]
    for k in (2, 3, 4, 6):
        sq = fit_sgmm(rtr, k)
        gm = GaussianMixture(k, n_init=5, random_state=0).fit(rtr)
        rl.append(f"| {k} | {sq.score(rte):.3f} | {gm.score(rte):.3f} | {sq.score(rte) - gm.score(rte):+.3f} "
                  f"| {int(np.sum(sq.weights_ < 0))} |")
        print(rl[-1], flush=True)
    fits[("ring", "sgmm")] = sq
    fits[("ring", "gmm")] = gm
    out.append(f"## Shallow: one ring (radius 2, noise 0.3; n = {n_train} train / 2,000 test, original units, "
               "full covariances; GaussianMixture n_init=5)\n")
    out.append("\n".join(rl) + "\n")
    out.append(f"## 2-D densities (n = {n_train} train / 1,000 valid / 2,000 test; circuits: random binary tree, "
               f"K = {K2} Gaussian inputs, {ep2} epochs, Adam lr 5e-3, batch 256)\n")
    out.append("\n".join(lines))

    # ------------------------------------------------------ ring8, D = 8
    tr, te = split("rings8", n_train)
    lines = ["| model | test LL | s/epoch | epochs |", "|---|---|---|---|"]
    for v in VARIANTS:
        m = circuit(v, K8, ep8).fit(tr)
        lines.append(f"| {v} | {m.score(te):.3f} | {np.median(m.epoch_times_):.2f} | {m.n_iter_} |")
        print(lines[-1], flush=True)
    for k in (K_shallow, 16):
        sq = SquaredGaussianMixture(k, init="kmeans", n_init=1, random_state=0).fit(tr)
        gm = GaussianMixture(k, n_init=1, random_state=0).fit(tr)
        lines.append(f"| SquaredGaussianMixture K={k} (full) | {sq.score(te):.3f} | | |")
        lines.append(f"| GaussianMixture K={k} (full) | {gm.score(te):.3f} | | |")
        print(lines[-2:], flush=True)
    out.append(f"\n## Rings + 6 dependent dimensions (D = 8), K = {K8}, {ep8} epochs\n")
    out.append("\n".join(lines))

    # ------------------------------------------------------------ digits
    from sklearn.datasets import load_digits

    D = load_digits().data.astype(int)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(D))
    dtr, dte = D[idx[:1500]], D[idx[1500:]]
    lines = ["| model | test LL (nats / image) |", "|---|---|"]
    for v in VARIANTS:
        m = SquaredCircuitDensity(region_graph="quad-tree", inputs="categorical", n_units=8, max_epochs=epd,
                                  batch_size=128, learning_rate=1e-2, n_iter_no_change=10_000,
                                  random_state=0, **VARIANTS[v])
        dfit = np.r_[dtr, np.arange(17)[:, None] * np.ones((1, 64), int)]  # every level seen in fit
        m.fit(dfit)
        lines.append(f"| {v} (quad-tree, K=8, categorical) | {m.score(dte):.2f} |")
        print(lines[-1], flush=True)
    out.append(f"\n## Digits (scikit-learn, 8x8, 17 levels; 1,500 train incl. 10% valid / 297 test), {epd} epochs\n")
    out.append("\n".join(lines))

    text = ("# Fidelity: squared circuits on the paper's densities\n\n"
            f"Command: `.venv/bin/python benchmarks/bench_circuits_fidelity.py{' --quick' if args.quick else ''}` "
            "(shared 2-core VM, 1 torch thread, float64, one seed). Test log-likelihood, nats per point, "
            "higher is better.\n\n" + "\n".join(out) + "\n")
    print(text)
    if not args.quick:
        with open(os.path.join(HERE, "results", "circuits_fidelity.md"), "w") as f:
            f.write(text)
        plot(fits, os.path.join(HERE, "results", "circuits_fidelity_densities.png"))


def plot(fits, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["rings", "moons", "banana", "cosine", "funnel"]
    cols = ["data", "+-^2", "+^2", "+", "sgmm", "gmm"]
    titles = {"data": "data", "+-^2": "NPC² (±²)", "+^2": "+²", "+": "+", "sgmm": "squared GMM", "gmm": "GMM"}
    fig, axes = plt.subplots(len(names), len(cols), figsize=(2.2 * len(cols), 2.2 * len(names)))
    g = np.linspace(-2.5, 2.5, 160)
    XX, YY = np.meshgrid(g, g)
    grid = np.c_[XX.ravel(), YY.ravel()]
    for i, name in enumerate(names):
        tr, _ = split(name, 3000)
        for j, c in enumerate(cols):
            ax = axes[i, j]
            if c == "data":
                ax.hist2d(tr[:, 0], tr[:, 1], bins=80, range=[[-2.5, 2.5], [-2.5, 2.5]], cmap="viridis")
            else:
                p = np.exp(fits[(name, c)].score_samples(grid)).reshape(XX.shape)
                ax.imshow(p, origin="lower", extent=[-2.5, 2.5, -2.5, 2.5], cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[c], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
