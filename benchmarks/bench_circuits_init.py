"""How often does SquaredGaussianMixture's fit reach the maximum-likelihood optimum?

Two problems with holes, ``--sets`` seeded data sets each:

* 1-D: c(x) = N(x; 0, 4) - 0.6 N(x; 0.5, 0.5), n = 1000, K = 2 (data drawn
  from the model); reference optimum: L-BFGS started at the truth.
* 2-D ring: ``make_rings(1000, radii=(2.0,), noise=0.3)``, K = 3 (full
  covariances); reference optimum: best of ``--ref-restarts`` random starts.

For each data set and init strategy, "reached" means a mean training
log-likelihood within 1e-3 nats/point of the best of all fits run on that
data set (the strategies and the reference). Prints a markdown table, with
wall and CPU (process) seconds per fit; progress goes to stderr. Every fit
runs with RuntimeWarning turned into an error: a count of fits that raised
one is printed (it must be 0).

Run: .venv/bin/python benchmarks/bench_circuits_init.py --sets 50
Split over processes: ``--first F --sets N --json part.json`` runs data sets
F..F+N-1 and saves the per-set results; ``--merge a.json b.json ...`` prints
the table of the union.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def _quiet(fit):
    """Run ``fit()`` with ConvergenceWarnings silenced and RuntimeWarnings as
    errors: (result, 1 if a RuntimeWarning was raised else 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return fit(), 0
        except RuntimeWarning:
            return -np.inf, 1


def run(problem, n_sets, ref_restarts, first=0, save=None):
    """Per-set records; ``save(per_set)`` is called after each data set."""
    kw = dict(covariance_type="full", tol=1e-10, max_iter=1000, backend="numpy")
    truth = _truth()
    n_warn = 0
    per_set = []
    for seed in range(first, first + n_sets):
        if problem == "1d":
            X, K = truth.sample(1000, random_state=2000 + seed), 2
        else:
            X, K = make_rings(1000, radii=(2.0,), noise=0.3, random_state=2000 + seed), 3
        rec = {"seed": seed, "ll": {}, "wall": {}, "cpu": {}}
        for s, skw in STRATEGIES.items():
            t0, c0 = time.perf_counter(), time.process_time()
            v, bad = _quiet(lambda skw=skw: SquaredGaussianMixture(K, random_state=seed, **skw, **kw).fit(X).lower_bound_)
            rec["wall"][s] = time.perf_counter() - t0
            rec["cpu"][s] = time.process_time() - c0
            rec["ll"][s] = v
            n_warn += bad
        if problem == "1d":
            v, bad = _quiet(lambda: _from_truth(X, kw))
        else:
            v, bad = _quiet(lambda: SquaredGaussianMixture(K, init="random", n_init=ref_restarts,
                                                           random_state=10_000 + seed, **kw).fit(X).lower_bound_)
        rec["ref"], rec["warn"] = v, n_warn
        per_set.append(rec)
        if save is not None:
            save(per_set)
        n_warn = 0
        print(f"[{problem}] data set {seed}: " + ", ".join(f"{rec['ll'][s]:.4f}" for s in STRATEGIES)
              + f"; ref {v:.4f}", file=sys.stderr, flush=True)
    return per_set


def table(per_set):
    """(rows, reference hits, RuntimeWarning count) over the per-set records."""
    n = len(per_set)
    ll = {s: np.array([r["ll"][s] for r in per_set]) for s in STRATEGIES}
    ref = np.array([r["ref"] for r in per_set])
    best = np.maximum(np.max([ll[s] for s in STRATEGIES], axis=0), ref)
    rows = []
    for s in STRATEGIES:
        gap = best - ll[s]
        rows.append((s, int(np.sum(gap < TOL)), float(np.median(gap)), float(np.max(gap)),
                     sum(r["wall"][s] for r in per_set) / n, sum(r["cpu"][s] for r in per_set) / n))
    return rows, int(np.sum(best - ref < TOL)), sum(r["warn"] for r in per_set)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", type=int, default=50)
    ap.add_argument("--ref-restarts", type=int, default=20)
    ap.add_argument("--problems", default="1d,ring")
    ap.add_argument("--first", type=int, default=0, help="index of the first data set")
    ap.add_argument("--json", help="save the per-set results here")
    ap.add_argument("--merge", nargs="+", help="print the table of saved per-set results")
    a = ap.parse_args(argv)
    if a.merge:
        parts = [json.load(open(f)) for f in a.merge]
        for problem in parts[0]:
            per_set = sorted((r for p in parts for r in p[problem]["sets"]), key=lambda r: r["seed"])
            _print(problem, per_set, parts[0][problem]["ref_restarts"],
                   sum(p[problem]["wall"] for p in parts))
        return
    out = {}

    def save(problem, per_set, wall):  # after every data set: a stopped run keeps its sets
        out[problem] = {"sets": per_set, "ref_restarts": a.ref_restarts, "wall": wall}
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f)

    for problem in a.problems.split(","):
        t0 = time.perf_counter()
        per_set = run(problem, a.sets, a.ref_restarts, a.first,
                      save=lambda ps, problem=problem, t0=t0: save(problem, ps, time.perf_counter() - t0))
        save(problem, per_set, time.perf_counter() - t0)
        _print(problem, per_set, a.ref_restarts, time.perf_counter() - t0)


def _print(problem, per_set, ref_restarts, wall):
    rows, ref_hit, n_warn = table(per_set)
    n = len(per_set)
    title = ("1-D N(0,4) - 0.6 N(0.5,0.5), n=1000, K=2; reference: L-BFGS from the truth"
             if problem == "1d" else
             f"2-D ring (radius 2, noise 0.3), n=1000, K=3; reference: best of {ref_restarts} random starts")
    print(f"\n### {title}\n")
    print(f"| init | reached optimum (of {n}) | median gap (nats/pt) | max gap | s per fit | CPU s per fit |")
    print("|---|---|---|---|---|---|")
    for s, hit, med, mx, sec, cs in rows:
        print(f"| {s} | {hit} | {med:.2e} | {mx:.2e} | {sec:.3f} | {cs:.3f} |")
    print(f"\nReference itself at the best: {ref_hit} of {n}. Fits that raised a "
          f"RuntimeWarning: {n_warn}. Wall {wall:.0f} s (all processes).")


if __name__ == "__main__":
    main()
