"""Convergence of every MPE base estimator to kappa(F|H) as the samples grow.

Synthetic setting of Zhu et al. (ICML 2023) at kappa* = 0.5: H = N(0, 1),
G = 0.8 N(3, 2^2) + 0.2 N(4, 1), kappa(F|H) = 0.545 (numerical). For
m = n = 1e3 and 1e4 (several data sets each), the signed and absolute error
of each base estimator with its defaults (cross-fitted quadratic logistic
classifier where one is needed), and, to separate the classifier from the
rest of each method, the score-based rules run on the *exact* posterior score
s(x) = m h / (m h + n f) ("oracle score"). Population limits computed by
numerical integration: Elkan-Noto e1 -> (m/n)(1 - E_H[s]) / E_H[s].

Run: .venv/bin/python benchmarks/bench_mpe_convergence.py [--seeds-small 5] [--seeds-large 3]
(writes benchmarks/results/mpe_convergence.md)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy.integrate import quad

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    KernelMeanMPE,
    ROCMPE,
    TIcEMPE,
    bbe_proportion,
    dedpul_proportion,
    roc_proportion,
)
from mixstat.mpe._classifier import _label_frequency_to_kappa

HERE = os.path.dirname(os.path.abspath(__file__))
KAPPA = 0.5

ESTIMATORS = {
    "KM1": None,  # from the KM2 fit
    "KM2": lambda: KernelMeanMPE("KM2"),
    "ROC": lambda: ROCMPE(),
    "BBE": lambda: BestBinMPE(),
    "EN e1": lambda: ElkanNotoMPE("e1"),
    "EN e3": lambda: ElkanNotoMPE("e3"),
    "DEDPUL (EM)": lambda: DEDPULMPE("em"),
    "DEDPUL (quantile)": lambda: DEDPULMPE("quantile"),
    "TIcE (3 cuts, published)": lambda: TIcEMPE(),
    "TIcE (15 cuts)": lambda: TIcEMPE(n_splits=15),
    "TIcE (15 cuts, delta=0.5)": lambda: TIcEMPE(n_splits=15, delta=0.5),
}

ORACLE = {
    "ROC": lambda sh, sf: roc_proportion(sh, sf)[0],
    "BBE": lambda sh, sf: bbe_proportion(sh, sf)[0],
    "EN e1": lambda sh, sf: _label_frequency_to_kappa(sh.mean(), len(sh), len(sf)),
    "EN e3": lambda sh, sf: _label_frequency_to_kappa(max(sh.max(), sf.max()), len(sh), len(sf)),
    "DEDPUL (EM)": lambda sh, sf: dedpul_proportion(sh, sf, "em")[0],
    "DEDPUL (quantile)": lambda sh, sf: dedpul_proportion(sh, sf, "quantile")[0],
}


def population_e1(d):
    """Population limit of EN e1 for m = n: (1 - E_H[s]) / E_H[s]."""
    def integrand(t):
        x = np.array([t])
        return float(np.exp(d.log_h(x)[0]) / (1.0 + np.exp(d.log_f(x)[0] - d.log_h(x)[0])))

    c = quad(integrand, -12, 14, limit=200)[0]
    return c, (1 - c) / c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds-small", type=int, default=5)
    ap.add_argument("--seeds-large", type=int, default=3)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    sizes = {1000: args.seeds_small, 10_000: args.seeds_large}
    est_err, orc_err, times = {}, {}, {}
    kmax = None
    for n, n_seeds in sizes.items():
        for s in range(n_seeds):
            d = make_sumpe_synthetic(KAPPA, n_component=n, n_mixture=n, random_state=900 + s)
            kmax = d.kappa_max
            for name, make in ESTIMATORS.items():
                if make is None:
                    continue
                t0 = time.perf_counter()
                e = make().set_params(random_state=s).fit(d.X, d.y)
                times.setdefault((name, n), []).append(time.perf_counter() - t0)
                if name == "KM2":
                    est_err.setdefault(("KM1", n), []).append(e.km1_ - kmax)
                    times.setdefault(("KM1", n), []).append(times[(name, n)][-1])
                est_err.setdefault((name, n), []).append(e.proportion_ - kmax)
            x = d.X[:, 0]
            score = 1.0 / (1.0 + np.exp(d.log_f(x) - d.log_h(x)))  # m = n
            sh, sf = score[d.y == 1], score[d.y == 0]
            for name, rule in ORACLE.items():
                orc_err.setdefault((name, n), []).append(float(np.clip(rule(sh, sf), 0, 1)) - kmax)
            print(f"n={n} seed={s} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    c_e1, k_e1 = population_e1(make_sumpe_synthetic(KAPPA, n_component=10, n_mixture=10,
                                                    random_state=0))
    lines = ["# MPE base estimators: convergence to kappa(F|H)", "",
             f"Command: `.venv/bin/python benchmarks/bench_mpe_convergence.py {' '.join(sys.argv[1:])}`",
             "",
             f"Synthetic domain-adaptation mixture (Zhu et al. 2023) at kappa* = {KAPPA}, "
             f"kappa(F|H) = {kmax:.4f}; m = n; {args.seeds_small} data sets at n = 1e3, "
             f"{args.seeds_large} at n = 1e4 (`make_sumpe_synthetic(random_state=900+s)`, "
             "estimator `random_state=s`). Error = estimate - kappa(F|H): mean (signed), "
             "mean absolute, and the spread (std) over data sets. Times on the shared 2-core "
             "CPU (other agents running), for orientation only.", "",
             "## Estimators with their defaults (cross-fitted quadratic logistic classifier)", "",
             "| estimator | mean error n=1e3 | abs. error n=1e3 (std) | mean error n=1e4 | "
             "abs. error n=1e4 (std) | time n=1e4 (s) |",
             "|---|---|---|---|---|---|"]
    for name in ESTIMATORS:
        a, b = np.array(est_err[(name, 1000)]), np.array(est_err[(name, 10_000)])
        lines.append(f"| {name} | {a.mean():+.3f} | {np.abs(a).mean():.3f} ({a.std():.3f}) | "
                     f"{b.mean():+.3f} | {np.abs(b).mean():.3f} ({b.std():.3f}) | "
                     f"{np.mean(times[(name, 10_000)]):.1f} |")
    lines += ["", "## The same rules on the exact posterior score (no classifier)", "",
              "| rule | mean error n=1e3 | abs. error n=1e3 | mean error n=1e4 | abs. error n=1e4 |",
              "|---|---|---|---|---|"]
    for name in ORACLE:
        a, b = np.array(orc_err[(name, 1000)]), np.array(orc_err[(name, 10_000)])
        lines.append(f"| {name} | {a.mean():+.3f} | {np.abs(a).mean():.3f} | "
                     f"{b.mean():+.3f} | {np.abs(b).mean():.3f} |")
    lines += ["", "## Population limits", "",
              f"- EN e1: E_H[s] = {c_e1:.4f}, limit (1 - E_H[s]) / E_H[s] = {k_e1:.4f}, "
              f"i.e. {k_e1 - kmax:+.4f} from kappa(F|H) (e1 assumes s = c on all of H's "
              "support, i.e. H and G do not overlap).",
              f"- EN e3 and the ROC / BBE / KM rules: kappa(F|H) = {kmax:.4f}.", "",
              f"Total time {time.perf_counter() - t_start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mpe_convergence.md"), "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
