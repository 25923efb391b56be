"""MPE at real sizes: KernelMeanMPE on digits (1797 x 64) and the BBE
bootstrap, before / after, side by side in one run.

- KM: three paths, all with the exact kernel factor and the same bisection,
  all giving the same KM1 / KM2:

  * now: the QPs read inner products from the Gram matrix ``Z Z^T`` of the
    full-rank factor, a warm start's Cholesky factor comes from LAPACK, each
    QP starts from the solved lambda nearest in log(lambda);
  * previous (issue 20, item 3 before this change): inner products from the
    rows of the n x rank factor, the warm start inserted point by point, the
    start nearest in lambda;
  * first (not with ``--quick``): the Python pivoted-Cholesky loop and the
    start from the previous QP.

  "now" and "previous" are run interleaved, ``--repeats`` times each (the
  machine is shared: compare the medians).
- BBE, 50 bootstrap replicates on breast cancer (150 component, 200 mixture
  points): refitting the classifiers (``bootstrap_refit=True``) against
  resampling the held-out scores only (``bootstrap_refit=False``), with
  ``n_jobs`` None and 2.

Run: ``PYTHONPATH=. python benchmarks/bench_mpe_speed_realsize.py [--quick]``
(writes ``benchmarks/results/mpe_speed_realsize.md``; ``--quick`` skips the
slow "first" KM fit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits

from mixstat.mpe import BestBinMPE, KernelMeanMPE
from mixstat.mpe import _kernel_mean as K

HERE = os.path.dirname(os.path.abspath(__file__))


class _PreviousHullDistance(K._HullDistance):
    """The QP path before the Gram matrix (inner products from the factor's
    rows, the start inserted point by point, the start nearest in lambda)."""

    chain = False  # True: start from the previous QP (the first path)

    def __init__(self, Z, n_mixture, method="wolfe"):
        super().__init__(Z, n_mixture, method=method, gram_max=0)
        if self.chain:
            self.states = {}

    def __call__(self, lam):
        if lam in self.cache:
            return self.cache[lam]
        b = lam * self.mu_f + (1.0 - lam) * self.mu_h
        near = [s for s in self.states if s != 1.0 or lam <= 1.25]
        start = self.state
        if near:
            start = self.states[min(near, key=lambda s: abs(s - lam))]
        if start is None:
            norms2 = np.einsum("ij,ij->i", self.Z - b, self.Z - b)
            start = (np.array([int(np.argmin(norms2))], dtype=np.int64), np.ones(1))
        E = np.zeros((0, 0))
        d2, S, w, _ = K._wolfe_kernel(self.Z, b, E, start[0], start[1], E, 1e-9, 10_000)
        self.state = (S, w)
        if not self.chain:
            self.states[lam] = self.state
        self.n_qp += 1
        self.cache[lam] = float(np.sqrt(max(d2, 0.0)))
        return self.cache[lam]


class _FirstHullDistance(_PreviousHullDistance):
    chain = True


def km_fit(path):
    X, t = load_digits(return_X_y=True)
    y = (t < 5).astype(int)
    saved = K._lapack_pivoted_cholesky, K._HullDistance
    if path == "previous":
        K._HullDistance = _PreviousHullDistance
    elif path == "first":
        K._HullDistance = _FirstHullDistance
        K._lapack_pivoted_cholesky = lambda X, w, tol: K.pivoted_cholesky_features(
            X, w, tol=tol, max_rank=X.shape[0] + 1)
    try:
        t0 = time.perf_counter()
        km = KernelMeanMPE(random_state=0).fit(X, y)
        return time.perf_counter() - t0, km
    finally:
        K._lapack_pivoted_cholesky, K._HullDistance = saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    L = ["# MPE at real sizes (`benchmarks/bench_mpe_speed_realsize.py`)", "",
         "Date 2026-12-04; machine: 2-core VM, loaded (6 developers and a CI job on both "
         "cores: timings noisy, runs interleaved); command: "
         f"`PYTHONPATH=. python benchmarks/bench_mpe_speed_realsize.py {' '.join(sys.argv[1:])}`.",
         "", "## KernelMeanMPE, digits 0-4 (component) vs 5-9 (mixture), 1797 x 64, exact kernel",
         "", "| path | time (s), median (runs) | KM1 | KM2 | rank | QPs |", "|---|---|---|---|---|---|"]
    KernelMeanMPE(random_state=0).fit(np.r_[np.zeros((20, 2)), np.ones((20, 2))]
                                       + np.random.RandomState(0).normal(size=(40, 2)),
                                       np.r_[np.ones(20), np.zeros(20)])  # compile / load
    names = {"now": "Gram matrix of the factor, LAPACK start factor, start nearest in "
                    "log(lambda) (now)",
             "previous": "inner products from the factor's rows, start inserted point by "
                         "point, start nearest in lambda (previous)",
             "first": "Python pivoted-Cholesky loop + start from the previous QP (first)"}
    times = {"now": [], "previous": []}
    fits = {}
    for _ in range(args.repeats):
        for path in ("now", "previous"):
            t, fits[path] = km_fit(path)
            times[path].append(t)
    if not args.quick:
        t, fits["first"] = km_fit("first")
        times["first"] = [t]
    for path, ts in times.items():
        km = fits[path]
        L.append(f"| {names[path]} | {np.median(ts):.2f} ({', '.join(f'{x:.2f}' for x in ts)}) | "
                 f"{km.km1_:.6f} | {km.km2_:.6f} | {km.rank_} | {km.n_qp_} |")
    now = np.median(times["now"])
    L += ["", f"Ratio previous / now (medians): {np.median(times['previous']) / now:.1f}x"
          + (f"; first / now: {times['first'][0] / now:.1f}x." if "first" in times else ".")]
    d = load_breast_cancer()
    rng = np.random.RandomState(0)
    P, N = d.data[d.target == 1], d.data[d.target == 0]
    P = P[rng.permutation(len(P))]
    X = np.vstack([P[:150], P[150:250], N[:100]])
    y = np.r_[np.ones(150), np.zeros(200)]
    L += ["", "## BestBinMPE, 50 bootstrap replicates, breast cancer (kappa* = 0.5, m = 150, n = 200)",
          "", "| bootstrap | n_jobs | time (s) | estimate | 95 % interval |", "|---|---|---|---|---|"]
    for refit in (True, False):
        for nj in (None, 2):
            t0 = time.perf_counter()
            e = BestBinMPE(n_bootstrap=50, bootstrap_refit=refit, n_jobs=nj,
                           random_state=0).fit(X, y)
            lo, hi = e.proportion_interval_
            what = "refit classifiers" if refit else "scores only (classifiers reused)"
            L.append(f"| {what} | {nj} | {time.perf_counter() - t0:.2f} | {e.proportion_:.3f} | "
                     f"({lo:.3f}, {hi:.3f}) |")
    with open(os.path.join(HERE, "results", "mpe_speed_realsize.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
