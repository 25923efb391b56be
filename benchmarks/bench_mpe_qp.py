"""KernelMeanMPE's quadratic programs, before and after: the Wolfe kernel of
commit cd669a1 (the affine minimiser re-formed and re-solved at every step),
the Wolfe kernel with an updated Cholesky factor, and one SciPy NNLS per
distance (exact reformulation); same data, same kernel width.

Each row: one KernelMeanMPE fit (KM1 and KM2 from the same distances) per
solver; time, estimates, and the kernel-factor rank (the size the active set
can reach). The "before" class is loaded from ``git show <ref>:mixstat/mpe/_kernel_mean.py``.

Run: .venv/bin/python benchmarks/bench_mpe_qp.py [--quick] [--before cd669a1]
(writes benchmarks/results/mpe_qp.md)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _load_before(ref):
    """KernelMeanMPE as it was at git ``ref`` (imported as a sibling module of
    mixstat.mpe so that its relative imports resolve)."""
    import importlib.util
    import subprocess
    import tempfile

    src = subprocess.run(["git", "show", f"{ref}:mixstat/mpe/_kernel_mean.py"],
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(HERE)).stdout
    path = os.path.join(tempfile.mkdtemp(), "_kernel_mean_before.py")
    with open(path, "w") as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location("mixstat.mpe._kernel_mean_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.KernelMeanMPE


def main(argv=None):
    from bench_mpe_nystroem import _gauss

    from mixstat.datasets import make_sumpe_synthetic
    from mixstat.mpe import KernelMeanMPE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--before", default="cd669a1")
    args = ap.parse_args(argv)
    Before = _load_before(args.before)
    # compile both Numba kernels before timing anything
    rng = np.random.default_rng(0)
    Xw, yw = rng.normal(size=(60, 2)), np.r_[np.ones(30), np.zeros(30)]
    Before(random_state=0).fit(Xw, yw)
    KernelMeanMPE(random_state=0, qp_solver="wolfe").fit(Xw, yw)

    def one_d(n):
        d = make_sumpe_synthetic(0.5, n_component=n, n_mixture=n, random_state=0)
        return d.X, d.y

    cases = [("1-D synthetic, m=n=1000, exact", one_d(1000), "exact", None),
             ("10-D Gaussian, m=n=300, exact", _gauss(10, 0.3, 300, 300, 0), "exact", None),
             ("64-D Gaussian, m=n=300, exact", _gauss(64, 0.3, 300, 300, 0), "exact", None),
             ("10-D Gaussian, m=n=600, exact", _gauss(10, 0.3, 600, 600, 0), "exact", None),
             ("10-D Gaussian, m=n=1000, Nystroem 300", _gauss(10, 0.3, 1000, 1000, 0),
              "nystroem", 300),
             ("1-D synthetic, m=n=1e4, Nystroem 500", one_d(10_000), "nystroem", 500)]
    if args.quick:
        cases = cases[:3]
    lines = ["# KernelMeanMPE: QP solvers, before (cd669a1) and after", "",
             f"Command: `.venv/bin/python benchmarks/bench_mpe_qp.py {' '.join(sys.argv[1:])}`",
             "", "Same data and kernel width for every solver (width by the MMD grid on the "
             "first fit, then fixed); 'before' is the KernelMeanMPE of git cd669a1. Shared "
             "2-core CPU with other agents running (load 10-17): compare the times of a row "
             "(measured back to back), not rows across files.", "",
             "| case | rank r | QPs | before (s) | Wolfe, Cholesky updates (s) | NNLS (s) | "
             "speed-up before / best | KM1 before / Wolfe / NNLS | KM2 before / Wolfe / NNLS |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name, (X, y), approx, L in cases:
        kw = dict(approximation=approx, random_state=0)
        if L:
            kw["n_landmarks"] = L
        width = KernelMeanMPE(**kw, qp_solver="nnls").fit(X, y).kernel_width_
        res = {}
        for solver in ("before", "wolfe", "nnls"):
            t0 = time.perf_counter()
            if solver == "before":
                e = Before(**kw, kernel_width=width).fit(X, y)
            else:
                e = KernelMeanMPE(**kw, kernel_width=width, qp_solver=solver).fit(X, y)
            res[solver] = (time.perf_counter() - t0, e)
        (tb, eb), (tw, ew), (tn, en) = res["before"], res["wolfe"], res["nnls"]
        row = (f"| {name} | {ew.rank_} | {ew.n_qp_} | {tb:.2f} | {tw:.2f} | {tn:.2f} | "
               f"{tb / min(tw, tn):.1f}x | {eb.km1_:.4f} / {ew.km1_:.4f} / {en.km1_:.4f} | "
               f"{eb.km2_:.4f} / {ew.km2_:.4f} / {en.km2_:.4f} |")
        lines.append(row)
        print(row, flush=True)
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "mpe_qp.md"), "w") as fh:  # after every row
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
