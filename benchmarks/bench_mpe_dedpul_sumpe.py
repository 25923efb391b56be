"""Why is SuMPE-DEDPUL worse than plain DEDPUL at large kappa* (mpe_fidelity.md)?

The synthetic domain-adaptation setting of ``bench_mpe_fidelity.py`` (H = N(0, 1),
G = 0.8 N(3, 2^2) + 0.2 N(4, 1), m = n = 1000). To get a known target, the
acceptance is the *exact* posterior alpha = tau = kappa* h / f on the region
x < 2 (1 elsewhere): then kappa(F~|H) = kappa* / c exactly, with c = E_F[alpha],
and the base estimate on the kept points can be compared with kappa* / c_hat
(c_hat = kept fraction). One rejection pass per trial; every variant below sees
the same kept points:

- plain DEDPUL on all the data, bias against kappa(F|H);
- size control: plain DEDPUL on a uniform random subsample of the mixture of
  the kept size, bias against kappa(F|H) (is it the smaller sample?);
- DEDPUL on the kept points with its default cross-fitted classifier
  (quadratic logistic regression), bias against kappa* / c_hat;
- the same with a flexible classifier (cubic B-spline features, 8 knots, and
  logistic regression), bias against kappa* / c_hat;
- DEDPUL's density-ratio and EM steps on the *exact* score of the subsampled
  problem, s = m h / (m h + n~ f~), bias against kappa* / c_hat (is it the
  density-ratio / EM steps or the classifier?).

Run: .venv/bin/python benchmarks/bench_mpe_dedpul_sumpe.py [--trials 10]
(writes benchmarks/results/mpe_dedpul_sumpe.md)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import DEDPULMPE
from mixstat.mpe._classifier import dedpul_proportion

HERE = os.path.dirname(os.path.abspath(__file__))
KAPPAS = (0.1, 0.25, 0.5, 0.75)


def _fit(X_h, X_f, classifier, seed):
    X = np.r_[X_h, X_f]
    y = np.r_[np.ones(len(X_h)), np.zeros(len(X_f))]
    return DEDPULMPE(classifier=classifier, random_state=seed).fit(X, y).proportion_


def one_trial(kappa, seed, spline):
    d = make_sumpe_synthetic(kappa, random_state=seed)
    rng = np.random.default_rng(seed)
    X_h, X_f = d.X[d.y == 1], d.X[d.y == 0]
    m, n = len(X_h), len(X_f)
    x = X_f[:, 0]
    alpha = np.where(x < 2, d.posterior(x), 1.0)
    keep = rng.uniform(size=n) <= alpha
    X_k = X_f[keep]
    c_hat = keep.mean()
    target = kappa / c_hat
    ctl = X_f[rng.choice(n, len(X_k), replace=False)]

    # the exact score of the subsampled problem: f~ = alpha f / c
    grid = np.linspace(-20, 30, 50001)
    a_grid = np.where(grid < 2, d.posterior(grid), 1.0)
    c_pop = float(np.trapezoid(a_grid * np.exp(d.log_f(grid)), grid))

    def score(Z):
        z = Z[:, 0]
        a = np.where(z < 2, d.posterior(z), 1.0)
        lh = np.log(m) + d.log_h(z)
        lf = np.log(len(X_k)) + np.log(np.maximum(a, 1e-300)) + d.log_f(z) - np.log(c_pop)
        return np.exp(lh - np.logaddexp(lh, lf))

    exact_score, _ = dedpul_proportion(score(X_h), score(X_k))
    plain = _fit(X_h, X_f, None, seed)
    kept = _fit(X_h, X_k, None, seed)
    return {
        "kappa_max": d.kappa_max, "c_hat": c_hat,
        "plain": plain - d.kappa_max,
        "size control": _fit(X_h, ctl, None, seed) - d.kappa_max,
        "kept, quadratic logistic": kept - target,
        "kept, spline logistic": _fit(X_h, X_k, spline, seed) - target,
        "kept, exact score": exact_score - target,
        "plain abs. error": abs(plain - kappa),
        "SuMPE abs. error": abs(c_hat * kept - kappa),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args(argv)
    spline = make_pipeline(SplineTransformer(n_knots=8, degree=3),
                           LogisticRegression(C=10.0, max_iter=2000))
    cols = ["plain", "size control", "kept, quadratic logistic", "kept, spline logistic",
            "kept, exact score", "plain abs. error", "SuMPE abs. error"]
    lines = ["# SuMPE-DEDPUL against plain DEDPUL: where the error comes from", "",
             f"Command: `.venv/bin/python benchmarks/bench_mpe_dedpul_sumpe.py "
             f"{' '.join(sys.argv[1:])}`", "",
             f"Synthetic domain adaptation, m = n = 1000, {args.trials} trials per kappa*; "
             "acceptance = the exact posterior on x < 2 (so kappa(F~|H) = kappa*/c). Mean "
             "signed error (std) of DEDPUL against its own target: kappa(F|H) for 'plain' and "
             "'size control' (plain DEDPUL on a uniform subsample of the kept size), "
             "kappa*/c_hat for the three runs on the kept points (default quadratic logistic "
             "classifier, a spline logistic classifier, the exact score); then the mean "
             "absolute error against kappa* of plain DEDPUL and of SuMPE-DEDPUL (default "
             "classifier).", "",
             "| kappa* | kappa(F\\|H) | c_hat | " + " | ".join(cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    print("\n".join(lines), flush=True)
    t0 = time.perf_counter()
    for kappa in KAPPAS:
        rows = [one_trial(kappa, 1000 * int(kappa * 100) + s, spline)
                for s in range(args.trials)]
        cells = []
        for c in cols:
            v = np.array([r[c] for r in rows])
            cells.append(f"{v.mean():.3f} ({v.std():.3f})" if "abs" in c
                         else f"{v.mean():+.3f} ({v.std():.3f})")
        row = (f"| {kappa} | {rows[0]['kappa_max']:.3f} | "
               f"{np.mean([r['c_hat'] for r in rows]):.3f} | " + " | ".join(cells) + " |")
        lines.append(row)
        print(row, flush=True)
    lines += ["", f"Total time {time.perf_counter() - t0:.0f} s (shared, loaded 2-core CPU)."]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mpe_dedpul_sumpe.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
