"""Inference for GaussianMoERegressor: standard errors against statsmodels and
flexmix, coverage of the Wald intervals, and the bootstrap LRT for K.

1. K=1, no penalty: observed-information standard errors against statsmodels
   OLS (``bse * sqrt((n-p-1)/n)``: OLS uses RSS/(n-p-1), the MLE RSS/n) and the
   sandwich against ``HC0_se``.
2. K=2 on the Khalili design: expert standard errors against R flexmix's
   ``refit()`` (FLXMRglm experts, FLXPmultinom gates; skipped when Rscript or
   flexmix is missing), fitted from the same partition.
3. Coverage of the 95% intervals (observed information and sandwich) over
   ``--coverage`` simulated K=2 data sets (make_moe_regression, n=400, p=1).
4. McLachlan's bootstrap LRT (B=19, level 0.05, candidates 1..4) on ``--lrt``
   data sets each with 1, 2 and 3 experts (make_moe_regression, n=300).

Run:  .venv/bin/python benchmarks/bench_moe_inference.py --coverage 200 --lrt 50
(writes benchmarks/results/moe_inference.md; ``--lrt-only`` re-runs only part 4
and replaces its section of the existing file)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from mixstat.datasets import make_khalili_moe
from mixstat.datasets._moe import make_moe_regression
from mixstat.moe import GaussianMoERegressor, select_n_components
from mixstat.moe._inference import MoEState
from mixstat.primitives import match_components

HERE = os.path.dirname(os.path.abspath(__file__))

R_SCRIPT = r"""
suppressMessages(library(flexmix))
args <- commandArgs(TRUE)
d <- read.csv(args[1])
cl <- d$cluster; d$cluster <- NULL
xs <- setdiff(names(d), "y")
f <- as.formula(paste("y ~", paste(xs, collapse = "+")))
g <- as.formula(paste("~", paste(xs, collapse = "+")))
t0 <- proc.time()[["elapsed"]]
m <- flexmix(f, data = d, k = 2, cluster = cl, model = FLXMRglm(),
             concomitant = FLXPmultinom(g), control = list(tolerance = 1e-10, iter.max = 2000))
rf <- refit(m)
t1 <- proc.time()[["elapsed"]]
out <- NULL
for (k in 1:2) {
  s <- rf@components[[1]][[k]]
  out <- rbind(out, data.frame(comp = k, term = rownames(s), est = s[, 1], se = s[, 2]))
}
write.csv(out, args[2], row.names = FALSE)
cat(logLik(m), t1 - t0, "\n")
"""


def ols_table():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    n, p = 200, 5
    X = rng.standard_normal((n, p))
    y = 1 + X @ rng.standard_normal(p) + rng.standard_normal(n)
    m = GaussianMoERegressor(1, alpha=0, alpha_gate=0, tol=1e-14, max_iter=5000,
                             n_init=1).fit(X, y)
    obs = m.inference(X, y)
    sand = m.inference(X, y, method="sandwich")
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    r1 = obs.se[:p + 1] / (ols.bse * np.sqrt((n - p - 1) / n))
    r2 = sand.se[:p + 1] / ols.HC0_se
    return ["K=1, n=200, p=5, no penalty (mixstat / statsmodels OLS):", "",
            "| quantity | max abs(ratio - 1) |", "|---|---|",
            f"| observed-information se / (OLS bse * sqrt((n-p-1)/n)) | {np.abs(r1 - 1).max():.2e} |",
            f"| sandwich se / OLS HC0_se | {np.abs(r2 - 1).max():.2e} |", ""]


def flexmix_table():
    if shutil.which("Rscript") is None:
        return ["flexmix: skipped (Rscript not found; apt-get install r-cran-flexmix)", ""]
    X, y = make_khalili_moe(300, random_state=1)
    t0 = time.perf_counter()
    m = GaussianMoERegressor(2, alpha=0, alpha_gate=0, tol=1e-10, max_iter=2000,
                             random_state=0).fit(X, y)
    inf = m.inference(X, y)
    t_ms = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        out = os.path.join(tmp, "o.csv")
        scr = os.path.join(tmp, "r.R")
        open(scr, "w").write(R_SCRIPT)
        labels = m.predict_label(X, y) + 1
        np.savetxt(csv, np.column_stack([X, y, labels]), delimiter=",", comments="",
                   header=",".join([f"x{j}" for j in range(6)] + ["y", "cluster"]))
        r = subprocess.run(["Rscript", scr, csv, out], capture_output=True, text=True)
        if r.returncode != 0:
            return [f"flexmix: failed ({r.stderr.strip()[-200:]})", ""]
        ll_r, t_r = (float(v) for v in r.stdout.split()[:2])
        import csv as _csv

        rows = list(_csv.DictReader(open(out)))
    lines = ["K=2, Khalili design n=300 (same partition to start): expert coefficients and "
             "standard errors, mixstat observed information vs flexmix refit()",
             "", f"log-likelihood: mixstat {m.log_likelihood_:.4f}, flexmix {ll_r:.4f}; "
             f"time (fit + se): mixstat {t_ms:.2f} s, flexmix {t_r:.2f} s "
             f"(ratio {t_r / t_ms:.1f}x)", "",
             "| expert | term | mixstat coef | flexmix coef | mixstat se | flexmix se | se ratio |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        k = int(row["comp"]) - 1
        term = row["term"]
        name = "intercept" if term == "(Intercept)" else term
        i = inf.names.index((f"expert {k}", name))
        lines.append(f"| {k} | {name} | {inf.params[i]:.4f} | {float(row['est']):.4f} | "
                     f"{inf.se[i]:.4f} | {float(row['se']):.4f} | "
                     f"{inf.se[i] / float(row['se']):.3f} |")
    return lines + [""]


def coverage_table(reps):
    hits = {"observed": 0, "sandwich": 0}
    per = None
    total = 0
    names = None
    fails = 0
    t0 = time.perf_counter()
    for seed in range(reps):
        X, y, P = make_moe_regression(400, 2, random_state=seed, return_params=True)
        m = GaussianMoERegressor(2, alpha=0, alpha_gate=0, tol=1e-10, max_iter=2000,
                                 n_init=2, random_state=seed).fit(X, y)
        perm = match_components(np.column_stack([P["intercept"], P["coef"]]),
                                np.column_stack([m.intercept_, m.coef_]))
        if not np.array_equal(perm, [0, 1]):
            fails += 1
            continue
        layout = m._layout()
        truth = layout.pack(MoEState(P["coef"], P["intercept"], P["gate_coef"],
                                     P["gate_intercept"], P["noise_variance"]))
        for method in hits:
            inf = m.inference(X, y, method=method)
            cov = (inf.ci_low <= truth) & (truth <= inf.ci_high)
            hits[method] += int(cov.sum())
            if method == "observed":
                per = cov.astype(int) if per is None else per + cov
                names = inf.names
        total += truth.size
    ok = reps - fails
    t = time.perf_counter() - t0
    lines = [f"Coverage of 95% Wald intervals, K=2, n=400, p=1 (make_moe_regression), "
             f"{ok} of {reps} data sets ({fails} label mismatches skipped), {t:.0f} s", "",
             "| method | coverage (all parameters pooled) | nominal |", "|---|---|---|"]
    for method, h in hits.items():
        lines.append(f"| {method} | {h / total:.3f} | 0.95 |")
    lines += ["", "Per parameter (observed information):", "",
              "| block | term | coverage |", "|---|---|---|"]
    for (b, term), c in zip(names, per, strict=True):
        lines.append(f"| {b} | {term} | {c / ok:.3f} |")
    return lines + [""]


LRT_HEAD = "McLachlan bootstrap LRT"


def lrt_table(reps, n_bootstrap=19, n_jobs=None):
    lines = [f"{LRT_HEAD} (B={n_bootstrap}, level 0.05, candidates 1-4, "
             f"n=300, make_moe_regression), {reps} data sets per true K; BIC and ICL "
             "on the same fits", "",
             "| true K | LRT: chosen K counts (1/2/3/4) | LRT correct | BIC correct | "
             "ICL correct | failed replicates | time (s) |", "|---|---|---|---|---|---|---|"]
    for K in (1, 2, 3):
        t0 = time.perf_counter()
        counts = np.zeros(4, int)
        bic_ok = icl_ok = 0
        failed = 0
        for r in range(reps):
            X, y = make_moe_regression(300, K, random_state=1000 * K + r)
            sel = select_n_components(X, y, (1, 2, 3, 4), method="bootstrap_lrt",
                                      n_bootstrap=n_bootstrap, random_state=r, n_init=2,
                                      max_iter=300, tol=1e-6, n_jobs=n_jobs)
            counts[sel.n_components - 1] += 1
            bic_ok += int(sel.table["n_components"][np.argmin(sel.table["bic"])] == K)
            icl_ok += int(sel.table["n_components"][np.argmin(sel.table["icl"])] == K)
            failed += int(np.nansum(sel.table["n_failed"]))
            print(f"true K={K} rep={r} chosen={sel.n_components} "
                  f"p={np.round(sel.table['p_value'], 3).tolist()} "
                  f"t={time.perf_counter() - t0:.0f}s", flush=True)
        t = time.perf_counter() - t0
        lines.append(f"| {K} | {'/'.join(map(str, counts))} | {counts[K - 1] / reps:.2f} | "
                     f"{bic_ok / reps:.2f} | {icl_ok / reps:.2f} | {failed} | {t:.0f} |")
    return lines + [""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=int, default=200)
    ap.add_argument("--lrt", type=int, default=10)
    ap.add_argument("--n-jobs", type=int, default=None,
                    help="joblib workers for the bootstrap replicates of the LRT")
    ap.add_argument("--lrt-only", action="store_true",
                    help="run only the LRT and replace its section of the existing results "
                         "file, keeping the other sections (and their command) as they are")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    cmd = f"Command: `.venv/bin/python benchmarks/bench_moe_inference.py {' '.join(sys.argv[1:])}`"
    out = os.path.join(HERE, "results", "moe_inference.md")
    if args.lrt_only:
        old = open(out).read().split("\n")
        cut = next((i for i, line in enumerate(old) if line.startswith(LRT_HEAD)), len(old))
        old = old[:cut]
        while old and not old[-1].strip():
            old.pop()
        t0 = time.strftime("%Y-%m-%d", time.gmtime())
        lines = old + ["", f"The LRT section below was re-run alone on {t0} "
                       f"(the sections above come from the command at the top). {cmd}", ""]
        lines += lrt_table(args.lrt, n_jobs=args.n_jobs)
        text = "\n".join(lines)
        print(text)
        with open(out, "w") as f:
            f.write(text + "\n")
        return
    lines = ["# GaussianMoERegressor: inference", "", cmd, ""]
    for part in (ols_table, flexmix_table):
        lines += part()
        print("\n".join(lines), flush=True)
    if args.coverage:
        lines += coverage_table(args.coverage)
        print("\n".join(lines[-30:]), flush=True)
    if args.lrt:
        lines += lrt_table(args.lrt, n_jobs=args.n_jobs)
    text = "\n".join(lines)
    print(text)
    with open(out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
