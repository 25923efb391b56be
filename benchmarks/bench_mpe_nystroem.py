"""Accuracy of KernelMeanMPE's low-rank kernel factor in more than one dimension.

The 1-D check in ``bench_mpe_peers.py`` cannot see the approximation error (the
1-D RBF kernel has numerical rank 20-30). Here: H = N(0, I_d), G = N(1.5 e, I_d)
with e = (1, ..., 1) / sqrt(d), F = kappa H + (1 - kappa) G, d in {10, 64};
KM1 / KM2 with a rank-r factor against the exact kernel, same data and same
kernel width, for the two landmark rules of ``KernelMeanMPE(landmarks=...)``:

- 'uniform': Nystroem on r landmarks drawn uniformly at random;
- 'pivoted': greedy pivoted (incomplete) Cholesky stopped at rank r (the
  Nystroem approximation on the pivots, each the point of largest residual
  diagonal; Fine & Scheinberg 2001, Bach & Jordan 2005);
- 'rpcholesky': randomly pivoted Cholesky (pivot drawn with probability
  proportional to the residual diagonal; Chen, Epperly, Tropp & Webber 2025).

"residual trace / N" is tr(K - Z Z^T) / N of the factor (``residual_trace_ / N``),
which a user can read off a fit.

``--sensitivity [DIM ...]`` also measures how much KM1 / KM2 move on the *exact* kernel
when the data or the width are perturbed slightly (width x 0.98 / 1.02; 1 % of
each sample left out, 3 draws), to tell the approximation error from the
estimator's own sensitivity. ``--feature-timing N`` times the two factor
constructions alone at N points (10-D, rank 500).

Run: .venv/bin/python benchmarks/bench_mpe_nystroem.py [--quick] [--n 600] [--seeds 0 1 2]
[--landmarks 50 100 300 1000] [--dims 64 10] [--rules uniform pivoted rpcholesky]
[--sensitivity [DIM ...]]
[--feature-timing 20000] [--out mpe_nystroem.md]
(prints the tables and writes benchmarks/results/<out>)
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


def _timed(f):
    t0, c0 = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _residual_only(args, n, seeds, landmarks, lines, save):
    from mixstat.mpe._kernel_mean import (
        mmd_width,
        nystroem_features,
        pivoted_cholesky_features,
        rbf_kernel,
    )

    factors = np.array([0.1, 10 ** -0.5, 1.0, 10 ** 0.5, 10.0])
    del lines[-2:]
    lines += ["No KM fits here (`--residual-only`): the residual trace / N of each factor, "
              "mean over the data sets, and the best possible at that rank (eigenvalue tail).",
              "", "| data | landmarks (rank) | best rank-r | " + " | ".join(args.rules)
              + " | factor CPU (s), " + " / ".join(args.rules) + " |",
              "|---|---|---|" + "---|" * len(args.rules) + "---|"]
    print("\n".join(lines[-4:]), flush=True)
    for d in args.dims:
        data = [_gauss(d, 0.3, n, n, s) for s in seeds]
        widths, spectra = [], []
        for X, y in data:
            w = mmd_width(X[y == 1], X[y == 0], factors, np.random.RandomState(0))
            widths.append(w)
            spectra.append(np.linalg.eigvalsh(rbf_kernel(X, X, w))[::-1])
        for L in landmarks:
            res = {r: [] for r in args.rules}
            cpu = {r: [] for r in args.rules}
            for (X, _), w in zip(data, widths, strict=True):
                for rule in args.rules:
                    if rule == "uniform":
                        f = lambda X=X, w=w: nystroem_features(X, w, L, np.random.RandomState(0))
                    else:
                        f = lambda X=X, w=w, rule=rule: pivoted_cholesky_features(
                            X, w, max_rank=L,
                            pivoting="greedy" if rule == "pivoted" else "random",
                            random_state=0)[0]
                    Z, _, c = _timed(f)
                    res[rule].append((len(X) - float(np.einsum("ij,ij->", Z, Z))) / len(X))
                    cpu[rule].append(c)
            best = np.mean([max(float(ev[L:].sum()), 0.0) / len(ev) for ev in spectra])
            row = (f"| Gaussian d={d}, kappa=0.3 | {L} | {best:.4f} | "
                   + " | ".join(f"{np.mean(res[r]):.4f}" for r in args.rules) + " | "
                   + " / ".join(f"{np.mean(cpu[r]):.2f}" for r in args.rules) + " |")
            lines.append(row)
            print(row, flush=True)
            save()


def _large(args, lines, save):
    from mixstat.datasets import make_sumpe_synthetic
    from mixstat.mpe import KernelMeanMPE

    M = int(args.large)
    d = make_sumpe_synthetic(0.25, n_component=M, n_mixture=M, random_state=0)
    del lines[-2:]
    lines += [f"1-D synthetic data, kappa* = 0.25 (kappa(F|H) = {d.kappa_max:.3f}), m = n = {M}, "
              "`approximation='nystroem'`, `n_landmarks=500`, one data set; the width by the "
              "MMD rule in each fit (same draws, so the same width).", "",
              "| rule | rank | residual trace / N | KM1 | KM2 | time (s) | CPU (s) |",
              "|---|---|---|---|---|---|---|"]
    print("\n".join(lines[-4:]), flush=True)
    small = make_sumpe_synthetic(0.25, n_component=100, n_mixture=100, random_state=0)
    KernelMeanMPE(approximation="nystroem", n_landmarks=20).fit(small.X, small.y)  # warm-up
    for rule in args.rules:
        a, t, c = _timed(lambda rule=rule: KernelMeanMPE(
            approximation="nystroem", n_landmarks=500, landmarks=rule,
            random_state=0).fit(d.X, d.y))
        lines.append(f"| {rule} | {a.rank_} | {a.residual_trace_ / len(d.X):.2e} | "
                     f"{a.km1_:.4f} | {a.km2_:.4f} | {t:.1f} | {c:.1f} |")
        print(lines[-1], flush=True)
        save()


def main(argv=None):
    from mixstat.mpe import KernelMeanMPE
    from mixstat.mpe._kernel_mean import rbf_kernel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--landmarks", type=int, nargs="+", default=[50, 100, 300, 1000])
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 64])
    ap.add_argument("--rules", nargs="+", default=["uniform", "pivoted", "rpcholesky"],
                    choices=["uniform", "pivoted", "rpcholesky"])
    ap.add_argument("--sensitivity", type=int, nargs="*", default=None, metavar="DIM",
                    help="run the sensitivity check for these dimensions (all if none given)")
    ap.add_argument("--feature-timing", type=int, default=0)
    ap.add_argument("--residual-only", action="store_true",
                    help="no KM fits: only the residual traces of the factors (width by "
                         "the MMD rule, as a fit would choose it)")
    ap.add_argument("--large", type=int, default=0, metavar="M",
                    help="only: KM at m = n = M on the 1-D synthetic data (kappa* = 0.25), "
                         "n_landmarks=500, each landmark rule")
    ap.add_argument("--out", default="mpe_nystroem.md")
    args = ap.parse_args(argv)
    n = 300 if args.quick else args.n
    seeds = [0] if args.quick else args.seeds
    landmarks = [50, 200] if args.quick else args.landmarks
    lines = ["# KernelMeanMPE: low-rank kernel factors against the exact kernel in 10-D and 64-D",
             "",
             f"Command: `.venv/bin/python benchmarks/bench_mpe_nystroem.py {' '.join(sys.argv[1:])}`",
             "",
             f"m = n = {n}, data sets (seeds) {seeds}; the kernel width is chosen once on the "
             "exact fit and reused, so only the factor differs. 'best rank-r residual' is the "
             "tail sum of the kernel matrix's eigenvalues, the smallest residual trace any "
             "rank-r factor can have. Rules: 'uniform' = Nystroem on "
             "uniformly drawn landmarks, 'pivoted' = greedy pivoted Cholesky stopped at the same "
             "rank, 'rpcholesky' = randomly pivoted Cholesky (pivots drawn proportionally to "
             "the residual diagonal). Shared 2-core CPU with other agents running: wall times are inflated; CPU "
             "times (process time) are less sensitive to the load; compare within a row.", "",
             "| data | landmarks (rank) | rule | residual trace / N | best rank-r residual / N "
             "| mean abs. diff. KM1 "
             "| mean abs. diff. KM2 | max abs. diff. | time (s) | CPU (s) | exact time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)

    def save():
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", args.out), "w") as f:
            f.write("\n".join(lines) + "\n")

    if args.large:
        _large(args, lines, save)
        return
    if args.residual_only:
        _residual_only(args, n, seeds, landmarks, lines, save)
        return
    sens_rows = []
    for d in args.dims:
        name = f"Gaussian d={d}, kappa=0.3"
        exact, t_exact, spectra = [], [], []
        data = [_gauss(d, 0.3, n, n, s) for s in seeds]
        for X, y in data:
            e, t, _ = _timed(lambda X=X, y=y: KernelMeanMPE(approximation="exact",
                                                            random_state=0).fit(X, y))
            t_exact.append(t)
            exact.append((e.km1_, e.km2_, e.kernel_width_))
            # eigenvalues, descending: the best rank-r residual trace is the tail sum
            spectra.append(np.linalg.eigvalsh(rbf_kernel(X, X, e.kernel_width_))[::-1])
        for L in landmarks:
            for rule in args.rules:
                d1, d2, tt, cc, rt = [], [], [], [], []
                for (X, y), (k1, k2, w) in zip(data, exact, strict=True):
                    a, t, c = _timed(lambda X=X, y=y, w=w: KernelMeanMPE(
                        approximation="nystroem", n_landmarks=L, landmarks=rule,
                        kernel_width=w, random_state=0).fit(X, y))
                    tt.append(t)
                    cc.append(c)
                    rt.append(a.residual_trace_ / len(X))
                    d1.append(abs(a.km1_ - k1))
                    d2.append(abs(a.km2_ - k2))
                best = np.mean([max(float(ev[L:].sum()), 0.0) / len(ev) for ev in spectra])
                row = (f"| {name} | {L} | {rule} | {np.mean(rt):.4f} | {best:.4f} | "
                       f"{np.mean(d1):.4f} | "
                       f"{np.mean(d2):.4f} | {max(max(d1), max(d2)):.4f} | {np.mean(tt):.2f} | "
                       f"{np.mean(cc):.2f} | {np.mean(t_exact):.2f} |")
                lines.append(row)
                print(row, flush=True)
                save()
        if args.sensitivity is not None and (not args.sensitivity or d in args.sensitivity):
            for (X, y), (k1, k2, w), s in zip(data, exact, seeds, strict=True):
                pert = {}
                for f in (0.98, 1.02):
                    a = KernelMeanMPE(approximation="exact", kernel_width=w * f,
                                      random_state=0).fit(X, y)
                    pert[f"width x {f}"] = (a.km1_ - k1, a.km2_ - k2)
                rng = np.random.default_rng(100 + s)
                for j in range(3):
                    keep = np.ones(len(y), bool)
                    for lab in (0, 1):
                        idx = np.flatnonzero(y == lab)
                        keep[rng.choice(idx, max(1, len(idx) // 100), replace=False)] = False
                    a = KernelMeanMPE(approximation="exact", kernel_width=w,
                                      random_state=0).fit(X[keep], y[keep])
                    pert[f"1% left out ({j + 1})"] = (a.km1_ - k1, a.km2_ - k2)
                for k, (e1, e2) in pert.items():
                    sens_rows.append(f"| {name} | {s} | {k} | {k1:.4f} | {k2:.4f} | "
                                     f"{e1:+.4f} | {e2:+.4f} |")
                    print(sens_rows[-1], flush=True)
    if sens_rows:
        lines += ["", "## Sensitivity of KM1 / KM2 on the exact kernel", "",
                  "Change of the exact-kernel estimates when the width is moved by 2 % or 1 % "
                  "of each sample is left out (same width).", "",
                  "| data | seed | perturbation | exact KM1 | exact KM2 | change KM1 | change KM2 |",
                  "|---|---|---|---|---|---|---|"] + sens_rows
        save()
    if args.feature_timing:
        from mixstat.mpe._kernel_mean import nystroem_features, pivoted_cholesky_features

        N = int(args.feature_timing)
        X, _ = _gauss(10, 0.3, N // 2, N - N // 2, 0)
        w = 2.0
        (_, tu, cu) = _timed(lambda: nystroem_features(X, w, 500, np.random.RandomState(0)))
        (_, tp, cp) = _timed(lambda: pivoted_cholesky_features(X, w, max_rank=500))
        (_, tr, cr) = _timed(lambda: pivoted_cholesky_features(X, w, max_rank=500,
                                                               pivoting="random", random_state=0))
        lines += ["", f"## Building the factor alone (N = {N}, d = 10, rank 500, width 2)", "",
                  "| rule | time (s) | CPU (s) |", "|---|---|---|",
                  f"| uniform (Nystroem) | {tu:.2f} | {cu:.2f} |",
                  f"| pivoted Cholesky (greedy) | {tp:.2f} | {cp:.2f} |",
                  f"| randomly pivoted Cholesky | {tr:.2f} | {cr:.2f} |"]
        print("\n".join(lines[-7:]), flush=True)
    save()


if __name__ == "__main__":
    main()
