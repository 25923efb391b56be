"""Fidelity: the synthetic domain-adaptation experiment of Zhu et al. (ICML 2023).

H = N(0, 1), G = 0.8 N(3, 2^2) + 0.2 N(4, 1), m = n = 1000, 10 trials per
kappa* in {0.1, 0.25, 0.5, 0.75}. Each base estimator (defaults; EN both
e1 and e3; TIcE also with the settings of the authors' script, "TIcE k10")
runs plain, with ReCPE
(copy fraction 0.1, quadratic logistic ranker) and with SuMPE (acceptance =
the posterior of a quadratic logistic regression trained on the labeled source
sample, G's N(4, 1) part replaced by N(5, 1) and truncated to x < 2; region
x < 2; lower threshold 1e-5, as in ``experiments_synth_SuMPE.py``).
Mean absolute error |kappa_hat - kappa*| (std over trials).

Then: does averaging several rejection passes (``n_resamples``, our
extension) lower the variance? (The convergence of each base estimator to
kappa(F|H) is in ``bench_mpe_convergence.py``.)

Run: ``.venv/bin/python benchmarks/bench_mpe_fidelity.py [--trials 10]``
(writes benchmarks/results/mpe_fidelity.md).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    KernelMeanMPE,
    RegroupingMPE,
    ROCMPE,
    SubsamplingMPE,
    TIcEMPE,
)
from mixstat.mpe._base import default_classifier

HERE = os.path.dirname(os.path.abspath(__file__))
KAPPAS = (0.1, 0.25, 0.5, 0.75)
BASES = {
    "DEDPUL": lambda: DEDPULMPE(),
    "EN e1": lambda: ElkanNotoMPE("e1"),
    "EN e3": lambda: ElkanNotoMPE("e3"),
    "KM1": None,  # KM1 and KM2 come from one KernelMeanMPE fit
    "KM2": lambda: KernelMeanMPE("KM2"),
    "TIcE": lambda: TIcEMPE(),
    # the settings of the authors' experiments_synth_SuMPE.py (tice_wrapper(k=10,
    # n_folds=10, delta=0.2, n_splits=40))
    "TIcE k10": lambda: TIcEMPE(10, n_folds=10, delta=0.2, n_splits=40),
    "BBE": lambda: BestBinMPE(),
    "ROC": lambda: ROCMPE(),
}


def _km_pair(est):
    """(KM1, KM2) from a fitted KernelMeanMPE or a meta-estimator wrapping one."""
    base = getattr(est, "base_estimator_", None)
    if base is None and hasattr(est, "base_estimators_"):
        base = est.base_estimators_[0]
        c = est.acceptance_rate_
        return c * base.km1_, c * base.km2_
    base = base if base is not None else est
    return base.km1_, base.km2_


def one_trial(kappa, seed):
    d = make_sumpe_synthetic(kappa, random_state=seed)
    clf = default_classifier().fit(d.X_source, d.y_source)
    res = {}
    for name, make in BASES.items():
        if make is None:
            continue
        for mode in ("plain", "ReCPE", "SuMPE"):
            base = make().set_params(random_state=seed)
            if mode == "plain":
                est = base
            elif mode == "ReCPE":
                est = RegroupingMPE(base, copy_fraction=0.1, random_state=seed)
            else:
                est = SubsamplingMPE(base, clf, region=d.region, lower_threshold=1e-5,
                                     random_state=seed)
            est.fit(d.X, d.y)
            if name == "KM2":
                k1, k2 = _km_pair(est)
                res[("KM1", mode)] = k1
                res[("KM2", mode)] = k2
            else:
                res[(name, mode)] = est.proportion_
            if mode == "SuMPE":
                res[("c", name)] = est.acceptance_rate_
    return d.kappa_max, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    lines = []

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    t0 = time.perf_counter()
    out("# Fidelity: synthetic domain adaptation (Zhu et al., ICML 2023)")
    out()
    out(f"Command: `.venv/bin/python benchmarks/bench_mpe_fidelity.py --trials {args.trials}`; "
        f"{args.trials} trials per kappa*, m = n = 1000. Mean absolute error "
        "|kappa_hat - kappa*| (standard deviation).")
    out()
    names = [n for n in BASES]
    out("| kappa* | kappa(F\\|H) | " + " | ".join(
        f"{n} | ReCPE-{n} | SuMPE-{n}" for n in names) + " | c_hat |")
    out("|---|---|" + "---|" * (3 * len(names) + 1))
    summary = {}
    for kappa in KAPPAS:
        trials = [one_trial(kappa, 1000 * int(kappa * 100) + s) for s in range(args.trials)]
        kmax = trials[0][0]
        cells = []
        for n in names:
            for mode in ("plain", "ReCPE", "SuMPE"):
                err = np.array([abs(r[(n, mode)] - kappa) for _, r in trials])
                summary[(kappa, n, mode)] = err.mean()
                cells.append(f"{err.mean():.3f} ({err.std():.3f})")
        c = np.mean([r[("c", "KM2")] for _, r in trials])
        out(f"| {kappa} | {kmax:.3f} | " + " | ".join(cells) + f" | {c:.2f} |")
    out()
    wins = sum(summary[(k, n, "SuMPE")] < summary[(k, n, "plain")] for k in KAPPAS for n in names)
    out(f"SuMPE has a lower mean error than the plain estimator in {wins} of "
        f"{len(KAPPAS) * len(names)} (kappa*, estimator) cells.")
    out()

    # ---- our extension: averaging rejection passes
    out("## Averaging several rejection passes (our extension), SuMPE-KM2, kappa* = 0.25")
    out()
    out("| n_resamples | mean estimate | std over trials | MAE |")
    out("|---|---|---|---|")
    for r in (1, 5):
        est = []
        for s in range(args.trials):
            d = make_sumpe_synthetic(0.25, random_state=500 + s)
            clf = default_classifier().fit(d.X_source, d.y_source)
            e = SubsamplingMPE(KernelMeanMPE("KM2"), clf, region=d.region,
                               lower_threshold=1e-5, n_resamples=r, random_state=s).fit(d.X, d.y)
            est.append(e.proportion_)
        est = np.array(est)
        out(f"| {r} | {est.mean():.3f} | {est.std():.4f} | {np.abs(est - 0.25).mean():.3f} |")
    out()

    out("The convergence of each base estimator to kappa(F|H) (n = 1e3 and 1e4) is in "
        "`mpe_convergence.md` (`benchmarks/bench_mpe_convergence.py`).")
    out()
    out(f"Total time {time.perf_counter() - t0:.0f} s.")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mpe_fidelity.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
