"""How often does SquaredGaussianMixture's fit reach the maximum-likelihood optimum?

Two problems with holes, ``--sets`` seeded data sets each:

* 1-D: c(x) = N(x; 0, 4) - 0.6 N(x; 0.5, 0.5), n = 1000, K = 2 (data drawn
  from the model); reference optimum: L-BFGS started at the truth.
* 2-D ring: ``make_rings(1000, radii=(2.0,), noise=0.3)``, K = 3 (full
  covariances); reference optimum: best of ``--ref-restarts`` random starts.

For each data set and init strategy, "reached" means a mean training
log-likelihood within 1e-3 nats/point of the best of all fits run on that
data set (the strategies and the reference). Prints a markdown table.

Run: .venv/bin/python benchmarks/bench_circuits_init.py --sets 50
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from mixstat.circuits import SquaredGaussianMixture
from mixstat.circuits._squared_gmm import _Param, _log_z
from mixstat.datasets import make_rings

TRUE_W = np.array([1.0, -0.6])
TRUE_MU = np.array([[0.0], [0.5]])
TRUE_COV = np.array([[[4.0]], [[0.5]]])
TOL = 1e-3

STRATEGIES = {  # label -> estimator keyword arguments
    "kmeans, n_init=1 (old default)": dict(init="kmeans", n_init=1),
    "random, n_init=5": dict(init="random", n_init=5),
    "auto, n_init=1 (new default)": dict(init="auto", n_init=1),
}


def _truth():
    m = SquaredGaussianMixture(2)
    w = TRUE_W / np.abs(TRUE_W).sum()
    m.weights_, m.means_, m.covariances_ = w, TRUE_MU.copy(), TRUE_COV.copy()
    m.log_normalizer_ = _log_z(w, m.means_, m.covariances_, "full")[0]
    m.n_features_in_ = 1
    return m


def _from_truth(X, kw):
    m = SquaredGaussianMixture(2, **kw)
    par = _Param(2, 1, "full", m.reg_covar)
    w, mu, cov, ok = m._refit_from(par.pack(TRUE_W, TRUE_MU, TRUE_COV), X)
    m.n_features_in_ = 1
    m._set_params(par.pack(w, mu, cov), par)
    return m.score(X) if ok else -np.inf


def run(problem, n_sets, ref_restarts):
    kw = dict(covariance_type="full", tol=1e-10, max_iter=1000, backend="numpy")
    truth = _truth()
    ll = {s: [] for s in STRATEGIES}
    secs = {s: 0.0 for s in STRATEGIES}
    ref = []
    for seed in range(n_sets):
        if problem == "1d":
            X, K = truth.sample(1000, random_state=2000 + seed), 2
        else:
            X, K = make_rings(1000, radii=(2.0,), noise=0.3, random_state=2000 + seed), 3
        for s, skw in STRATEGIES.items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = SquaredGaussianMixture(K, random_state=seed, **skw, **kw).fit(X)
            secs[s] += time.perf_counter() - t0
            ll[s].append(m.lower_bound_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if problem == "1d":
                ref.append(_from_truth(X, kw))
            else:
                ref.append(SquaredGaussianMixture(K, init="random", n_init=ref_restarts,
                                                  random_state=10_000 + seed, **kw).fit(X).lower_bound_)
    best = np.maximum(np.max([ll[s] for s in STRATEGIES], axis=0), ref)
    rows = []
    for s in STRATEGIES:
        gap = best - np.asarray(ll[s])
        rows.append((s, int(np.sum(gap < TOL)), float(np.median(gap)), float(np.max(gap)), secs[s] / n_sets))
    ref_hit = int(np.sum(best - np.asarray(ref) < TOL))
    return rows, ref_hit


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", type=int, default=50)
    ap.add_argument("--ref-restarts", type=int, default=20)
    ap.add_argument("--problems", default="1d,ring")
    a = ap.parse_args(argv)
    for problem in a.problems.split(","):
        t0 = time.perf_counter()
        rows, ref_hit = run(problem, a.sets, a.ref_restarts)
        title = ("1-D N(0,4) - 0.6 N(0.5,0.5), n=1000, K=2; reference: L-BFGS from the truth"
                 if problem == "1d" else
                 f"2-D ring (radius 2, noise 0.3), n=1000, K=3; reference: best of {a.ref_restarts} random starts")
        print(f"\n### {title}\n")
        print(f"| init | reached optimum (of {a.sets}) | median gap (nats/pt) | max gap | s per fit |")
        print("|---|---|---|---|---|")
        for s, hit, med, mx, sec in rows:
            print(f"| {s} | {hit} | {med:.2e} | {mx:.2e} | {sec:.3f} |")
        print(f"\nReference itself at the best: {ref_hit} of {a.sets}. Wall {time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()
