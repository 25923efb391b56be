"""Accuracy of KernelMeanMPE's Nystroem approximation in more than one dimension.

The 1-D check in ``bench_mpe_peers.py`` cannot see the approximation error (the
1-D RBF kernel has numerical rank 20-30). Here: H = N(0, I_d), G = N(1.5 e, I_d)
with e = (1, ..., 1) / sqrt(d), F = kappa H + (1 - kappa) G, d in {10, 64};
KM1 / KM2 with Nystroem landmarks against the exact kernel, same data and same
kernel width, and the relative residual trace tr(K - Z Z^T) / N of the
Nystroem factor (``residual_trace_ / N``), which a user can read off a fit.

Run: .venv/bin/python benchmarks/bench_mpe_nystroem.py [--quick] [--n 1000] [--seeds 0 1 2]
[--landmarks 50 100 300 1000]
(prints the table and writes benchmarks/results/mpe_nystroem.md)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _gauss(d, kappa, m, n, seed):
    rng = np.random.default_rng(seed)
    shift = 1.5 * np.ones(d) / np.sqrt(d)
    Xh = rng.normal(size=(m, d))
    nh = rng.binomial(n, kappa)
    Xf = np.r_[rng.normal(size=(nh, d)), rng.normal(size=(n - nh, d)) + shift]
    return np.r_[Xh, Xf], np.r_[np.ones(m), np.zeros(n)]


def main(argv=None):
    from mixstat.mpe import KernelMeanMPE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--landmarks", type=int, nargs="+", default=[50, 100, 300, 1000])
    args = ap.parse_args(argv)
    n = 600 if args.quick else args.n
    seeds = [0] if args.quick else args.seeds
    landmarks = [50, 200] if args.quick else args.landmarks
    settings = [(f"Gaussian d={d}, kappa=0.3", d) for d in (10, 64)]
    lines = ["# KernelMeanMPE: Nystroem against the exact kernel in 10-D and 64-D", "",
             f"Command: `.venv/bin/python benchmarks/bench_mpe_nystroem.py {' '.join(sys.argv[1:])}`",
             f"m = n = {n}, data sets (seeds) {seeds}; the kernel width is chosen once on the exact "
             "fit and reused, so only the approximation differs.", "",
             "Shared 2-core CPU with other agents running: times are inflated; compare "
             "within a row.", "",
             "| data | landmarks | residual trace / N | mean abs. diff. KM1 | mean abs. diff. KM2 "
             "| max abs. diff. | time (s) | exact time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, d in settings:
        exact, t_exact = [], []
        data = [_gauss(d, 0.3, n, n, s) for s in seeds]
        for X, y in data:
            t0 = time.perf_counter()
            e = KernelMeanMPE(approximation="exact", random_state=0).fit(X, y)
            t_exact.append(time.perf_counter() - t0)
            exact.append((e.km1_, e.km2_, e.kernel_width_))
        for L in landmarks:
            d1, d2, tt, rt = [], [], [], []
            for (X, y), (k1, k2, w) in zip(data, exact, strict=True):
                t0 = time.perf_counter()
                a = KernelMeanMPE(approximation="nystroem", n_landmarks=L, kernel_width=w,
                                  random_state=0).fit(X, y)
                tt.append(time.perf_counter() - t0)
                rt.append(a.residual_trace_ / len(X))
                d1.append(abs(a.km1_ - k1))
                d2.append(abs(a.km2_ - k2))
            row = (f"| {name} | {L} | {np.mean(rt):.4f} | {np.mean(d1):.4f} | {np.mean(d2):.4f} | "
                   f"{max(max(d1), max(d2)):.4f} | {np.mean(tt):.2f} | {np.mean(t_exact):.2f} |")
            lines.append(row)
            print(row, flush=True)
            os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
            with open(os.path.join(HERE, "results", "mpe_nystroem.md"), "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
