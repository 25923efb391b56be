"""Time per EM iteration of GaussianMoERegressor as n and p grow, against the
floor of one pass over X (a matrix-vector product X @ v).

The cost of an iteration should grow as n p K: about 2 passes for the E-step
(expert means and gate scores), a few per expert for the coordinate sweep
(full sweeps every 5 iterations, active-set sweeps between) and the gate step.

Full grid: n in 1e3..1e6 (p = 10, 100) and p in 10..1e4 (n = 1e3, 1e4), K = 4,
capped at n*p <= 1e8 (800 MB of float64). ``--quick`` caps n*p at 2e6 and runs
in a few minutes on a laptop.

Run:  .venv/bin/python benchmarks/bench_moe_scaling.py --quick
(prints the table and writes benchmarks/results/moe_scaling.md)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from mixstat.datasets import make_sparse_moe
from mixstat.moe import GaussianMoERegressor

HERE = os.path.dirname(os.path.abspath(__file__))


def _best(f, reps=3):
    t = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - t0)
    return t


def per_iteration(X, y, K, n_iter):
    kw = dict(n_components=K, alpha=0.05, alpha_gate=0.02, n_init=1, tol=0.0,
              random_state=0, init="residuals")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = _best(lambda: GaussianMoERegressor(max_iter=0, **kw).fit(X, y), 2)
        t1 = _best(lambda: GaussianMoERegressor(max_iter=n_iter, **kw).fit(X, y), 2)
    return max(t1 - t0, 0.0) / n_iter


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--K", type=int, default=4)
    ap.add_argument("--cap", type=float, default=None,
                    help="largest n*p to run (default 2e6 with --quick, else 1e8)")
    args = ap.parse_args(argv)
    cap = args.cap if args.cap is not None else (2e6 if args.quick else 1e8)
    grid = []
    for p in (10, 100):
        for n in (1_000, 10_000, 100_000, 1_000_000):
            grid.append((n, p))
    for n in (1_000, 10_000):
        for p in (1_000, 10_000):
            grid.append((n, p))
    grid = [(n, p) for n, p in grid if n * p <= cap]
    lines = ["# GaussianMoERegressor: time per EM iteration against one pass over X", "",
             f"Command: `.venv/bin/python benchmarks/bench_moe_scaling.py {' '.join(sys.argv[1:])}`",
             f"K = {args.K}, single-threaded BLAS, Numba backend; per iteration = (fit with 10 "
             "iterations - fit with 0) / 10, best of 2; floor = X @ v, best of 3.", "",
             "| n | p | per iteration (ms) | one pass X @ v (ms) | ratio | per iteration / (n p K) (ns) |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    results = []
    with threadpool_limits(1):
        for n, p in grid:
            X, y = make_sparse_moe(n, p, args.K, n_informative=(min(3, p), min(5, p)),
                                   n_gate_informative=1, random_state=0)
            X = np.asfortranarray(X)
            v = np.ones(p)
            floor = _best(lambda X=X, v=v: X @ v)
            it = per_iteration(X, y, args.K, 10)
            row = (f"| {n} | {p} | {it * 1e3:.2f} | {floor * 1e3:.3f} | {it / floor:.1f} | "
                   f"{it / (n * p * args.K) * 1e9:.2f} |")
            lines.append(row)
            results.append((n, p, it, floor))
            print(row, flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "moe_scaling.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    _plot(results, os.path.join(HERE, "results", "moe_scaling.png"), args.K)


def _plot(results, path, K):
    """Log-log plot of the time per EM iteration against n p K, with the floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib absent: no plot")
        return
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for p in sorted({r[1] for r in results}):
        rows = sorted((r for r in results if r[1] == p), key=lambda r: r[0])
        npk = [r[0] * r[1] * K for r in rows]
        ax.loglog(npk, [r[2] for r in rows], "o-", label=f"EM iteration, p={p}")
        ax.loglog(npk, [r[3] for r in rows], "x:", color=ax.lines[-1].get_color(),
                  label=f"one pass X @ v, p={p}")
    ax.set_xlabel("n p K")
    ax.set_ylabel("seconds")
    ax.set_title("GaussianMoERegressor: time per EM iteration")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
