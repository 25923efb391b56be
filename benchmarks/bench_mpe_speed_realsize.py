"""MPE at real sizes: KernelMeanMPE on digits (1797 x 64) and the BBE
bootstrap, before / after, side by side in one run.

- KM: the exact kernel factor by the Python pivoted-Cholesky loop and a cold
  QP start at each bisection (before) against LAPACK ``dpstrf`` and the warm
  start from the solution at the nearest lambda solved (mu_F at lambda = 1)
  (now); both give the same KM1 / KM2.
- BBE, 50 bootstrap replicates on breast cancer (150 component, 200 mixture
  points): refitting the classifiers (``bootstrap_refit=True``) against
  resampling the held-out scores only (``bootstrap_refit=False``), with
  ``n_jobs`` None and 2.

Run: ``PYTHONPATH=. python benchmarks/bench_mpe_speed_realsize.py [--quick]``
(writes ``benchmarks/results/mpe_speed_realsize.md``; ``--quick`` skips the
slow "before" KM fit).
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


def km_fit(before):
    X, t = load_digits(return_X_y=True)
    y = (t < 5).astype(int)
    saved = K._lapack_pivoted_cholesky, K._HullDistance.__init__
    if before:
        K._lapack_pivoted_cholesky = lambda X, w, tol: K.pivoted_cholesky_features(
            X, w, tol=tol, max_rank=X.shape[0] + 1)
        init = saved[1]

        def cold(self, *a, **k):
            init(self, *a, **k)
            self.state, self.states = None, {}
        K._HullDistance.__init__ = cold
    try:
        t0 = time.perf_counter()
        km = KernelMeanMPE(random_state=0).fit(X, y)
        return time.perf_counter() - t0, km
    finally:
        K._lapack_pivoted_cholesky, K._HullDistance.__init__ = saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    L = ["# MPE at real sizes (`benchmarks/bench_mpe_speed_realsize.py`)", "",
         "Date 2026-12-04; machine: 2-core VM, loaded (6 developers); command: "
         f"`PYTHONPATH=. python benchmarks/bench_mpe_speed_realsize.py {' '.join(sys.argv[1:])}`.",
         "", "## KernelMeanMPE, digits 0-4 (component) vs 5-9 (mixture), 1797 x 64, exact kernel",
         "", "| path | time (s) | KM1 | KM2 | rank | QPs |", "|---|---|---|---|---|---|"]
    runs = [("LAPACK dpstrf factor + warm start at the nearest lambda (now)", False)]
    if not args.quick:
        runs.append(("Python pivoted-Cholesky loop + start from the previous QP (before)", True))
    times = []
    for name, before in runs:
        t, km = km_fit(before)
        times.append(t)
        L.append(f"| {name} | {t:.1f} | {km.km1_:.6f} | {km.km2_:.6f} | {km.rank_} | {km.n_qp_} |")
    if len(times) == 2:
        L += ["", f"Ratio before / now: {times[1] / times[0]:.1f}x."]
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
