"""Reported-at-random benchmark on scikit-learn's digits (1 vs 7).

Stand-in for the paper's UCI / MNIST experiments (not downloadable here):
each 1 in the mixture is reported with probability 0.9; reported 1s are the
component part (kappa*), unreported 1s join G. SuMPE's acceptance is the
reporting propensity, learned (logistic regression) on a separate set of 1s
with their reported flags. Mean absolute error |kappa_hat - kappa*| over
trials (the digits are re-split at random each trial).

Run: ``.venv/bin/python benchmarks/bench_mpe_rar.py [--trials 5]``
(writes benchmarks/results/mpe_rar.md).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from mixstat.datasets import load_mpe_digits
from mixstat.mpe import BestBinMPE, DEDPULMPE, KernelMeanMPE, SubsamplingMPE
from mixstat.mpe._base import default_classifier

HERE = os.path.dirname(os.path.abspath(__file__))
BASES = {"KM2": lambda: KernelMeanMPE("KM2"), "BBE": lambda: BestBinMPE(),
         "DEDPUL": lambda: DEDPULMPE()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args()
    lines = []

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    out("# Reported at random: digits 1 vs 7, each 1 reported w.p. 0.9")
    out()
    out(f"Command: `.venv/bin/python benchmarks/bench_mpe_rar.py --trials {args.trials}`. "
        "Mean absolute error |kappa_hat - kappa*| (std) over trials; m = 50 reported 1s.")
    out()
    out("| kappa* (target) | mean kappa* | mean kappa(F\\|H) | n mixture | " + " | ".join(
        f"{b} | SuMPE-{b}" for b in BASES) + " |")
    out("|---|---|---|---|" + "---|" * (2 * len(BASES)))
    for k in (0.1, 0.25, 0.5, 0.75):
        errs = {key: [] for b in BASES for key in (b, "SuMPE-" + b)}
        ks, kms, ns = [], [], []
        for s in range(args.trials):
            g = load_mpe_digits(k, random_state=s)
            prop = default_classifier(g.X.shape[1]).fit(g.X_propensity, g.y_propensity)
            ks.append(g.kappa_star)
            kms.append(g.kappa_max)
            ns.append(int((g.y == 0).sum()))
            for b, make in BASES.items():
                e = make().set_params(random_state=s).fit(g.X, g.y)
                errs[b].append(abs(e.proportion_ - g.kappa_star))
                su = SubsamplingMPE(make(), prop, random_state=s).fit(g.X, g.y)
                errs["SuMPE-" + b].append(abs(su.proportion_ - g.kappa_star))
        cells = [f"{np.mean(errs[key]):.3f} ({np.std(errs[key]):.3f})"
                 for b in BASES for key in (b, "SuMPE-" + b)]
        out(f"| {k} | {np.mean(ks):.3f} | {np.mean(kms):.3f} | {int(np.mean(ns))} | "
            + " | ".join(cells) + " |")
    out()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mpe_rar.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
