"""MixERRegressor on tabular data with regimes (issue 5, "What it must show" 3).

Compared with a single LinearRegression and with the soft, EM-fitted Gaussian
MoE of the foundation issue (``mixstat.moe.GaussianMoERegressor``), on the
same data: test MSE, routing ARI against the true regimes, fit time (ratios
against MixERRegressor).

Two generators (4 regimes, 3 expert features x, 2 gate features z, all
methods see the columns [x, z]):

* ``blobs``: the regime is a Gaussian cluster in z (centres at (+-3, +-3));
* ``softmax``: z ~ U[-3, 3]^2 and the regime is drawn from a softmax gate
  linear in z (the generative model of the Gaussian MoE).

Run::

    .venv/bin/python benchmarks/bench_mixer_tabular.py --seeds 0 1 2

Writes the printed table to benchmarks/results/mixer_tabular.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.metrics import adjusted_rand_score, mean_squared_error

from mixstat.mixer import MixERRegressor

B = 2.0 * np.array([[2, 0, -1], [-2, 1, 0], [0, -2, 2], [1, 1, 1.0]])


def make(kind, n, rng):
    if kind == "blobs":
        centers = np.array([[-3, -3], [3, -3], [-3, 3], [3, 3.0]])
        g = rng.integers(0, 4, n)
        z = centers[g] + rng.normal(size=(n, 2))
    else:
        z = rng.uniform(-3, 3, size=(n, 2))
        W = 3.0 * np.array([[-1, -1], [1, -1], [-1, 1], [1, 1.0]])
        logits = z @ W.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = np.array([rng.choice(4, p=pi) for pi in p])
    x = rng.normal(size=(n, 3))
    y = (x * B[g]).sum(1) + 0.3 * rng.normal(size=n)
    return np.c_[x, z], y, g


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "mixer_tabular.md"))
    args = ap.parse_args(argv)
    try:
        from mixstat.moe import GaussianMoERegressor
    except ImportError as exc:  # the foundation issue's estimator
        GaussianMoERegressor = None
        print(f"[peer missing] mixstat.moe.GaussianMoERegressor: {exc}", file=sys.stderr)

    models = {
        "MixERRegressor (gate on z)": lambda s: MixERRegressor(
            4, gate_features=[3, 4], random_state=s),
        "MixERRegressor (gate on x, z)": lambda s: MixERRegressor(4, random_state=s),
        "LinearRegression (single)": lambda s: LinearRegression(),
    }
    if GaussianMoERegressor is not None:
        models["GaussianMoERegressor (EM, soft gate on x, z)"] = lambda s: GaussianMoERegressor(
            4, alpha=1e-4, alpha_gate=1e-4, random_state=s)

    res = {}
    for kind in ("blobs", "softmax"):
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            X, y, g = make(kind, args.n, rng)
            Xt, yt, gt = make(kind, args.n, rng)
            for name, mk in models.items():
                est = mk(seed)
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X, y)
                ft = time.perf_counter() - t0
                mse = mean_squared_error(yt, est.predict(Xt))
                if hasattr(est, "route"):
                    ari = adjusted_rand_score(gt, est.route(Xt))
                elif hasattr(est, "predict_gates"):
                    ari = adjusted_rand_score(gt, np.argmax(est.predict_gates(Xt), 1))
                else:
                    ari = np.nan
                res.setdefault((kind, name), []).append((mse, ari, ft))
    lines = [f"n = {args.n} train / {args.n} test, 4 regimes, noise sd 0.3 "
             f"(Bayes MSE 0.09), seeds {args.seeds}; mean ± sd over seeds.", "",
             "| data | model | test MSE | routing ARI | fit time (s) | time / MixER(z) |",
             "|---|---|---|---|---|---|"]
    for kind in ("blobs", "softmax"):
        ref = np.mean([r[2] for r in res[(kind, "MixERRegressor (gate on z)")]])
        for name in models:
            a = np.array(res[(kind, name)])
            ari = "n/a" if np.isnan(a[:, 1]).all() else \
                f"{a[:, 1].mean():.3f} ± {a[:, 1].std():.3f}"
            lines.append(f"| {kind} | {name} | {a[:, 0].mean():.3f} ± {a[:, 0].std():.3f} | "
                         f"{ari} | {a[:, 2].mean():.3f} | {a[:, 2].mean() / ref:.2f} |")
    if GaussianMoERegressor is None:
        lines.append("")
        lines.append("GaussianMoERegressor missing (mixstat.moe not importable): rerun "
                     "once the foundation issue's estimator is in the tree.")
    lines.append("")
    lines.append("Command: `.venv/bin/python benchmarks/bench_mixer_tabular.py "
                 + " ".join(sys.argv[1:] if argv is None else argv) + "` (2 shared CPU cores)")
    text = "\n".join(lines)
    print(text)
    with open(args.out, "w") as fh:
        fh.write("# MixERRegressor vs a single regressor and the Gaussian MoE "
                 "(measured here)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
