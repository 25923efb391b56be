r"""GaussianMoERegressor on real data sets, with flexmix / mixtools computed live beside it.

The data sets ship with R packages (flexmix: ``NPreg``; mixtools:
``tonedata``, ``NOdata``, ``CO2data``), scikit-learn (``load_diabetes``) and
statsmodels (``engel``). R's are exported by ``Rscript`` into a temporary
folder in each run; the Python ones are written there as CSV so that both
sides read the same file.

For each data set and model (a mixture of regressions, i.e. a constant gate;
or a mixture of experts whose gate depends on the named columns), the table
gives:

- the log-likelihood of the unpenalised fit (``alpha = alpha_gate = 0``) with
  mixstat's defaults (``n_init=4``, ``init='auto'``), with the previous
  default (``n_init=3``, ``init='residuals'``) and with the peer: flexmix's
  ``stepFlexmix(..., nrep=5)`` (best of 5 EM runs from random starts) and, for
  the constant gate, mixtools' ``regmixEM`` (one run, ``set.seed(100)``);
- the same over mixstat's ``random_state`` 0..9: how many of the ten default
  fits reach the best value found by either side (within 0.01);
- the number of components chosen by BIC over K = 1, 2, 3
  (:func:`mixstat.moe.select_n_components` against flexmix's
  ``getModel(stepFlexmix(k=1:3, nrep=5), 'BIC')``);
- wall times of one fit on each side (R: ``system.time`` inside one R session).

A second table is the issue's unit test on ``load_diabetes``: 5-fold CV R^2
of the default penalised K=2 fit on raw and on rescaled columns, against
ordinary least squares, with ``standardize=True`` (default) and False.

Install the peers with
``apt-get install -y --no-install-recommends r-base-core r-cran-flexmix r-cran-mixtools``;
a missing peer is reported with that command and its columns left empty.

Run:  .venv/bin/python benchmarks/bench_moe_realdata.py
(writes benchmarks/results/moe_realdata.md; ``--quick``: 3 seeds instead of 10)
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from mixstat.moe import GaussianMoERegressor, select_n_components

HERE = os.path.dirname(os.path.abspath(__file__))
INSTALL = ("apt-get install -y --no-install-recommends r-base-core r-cran-flexmix "
           "r-cran-mixtools")

# name: (csv, response, expert terms, gate terms or None for a constant gate, K)
# terms are R formula terms; the same columns are built on the Python side
CASES = [
    ("tonedata", "tonedata.csv", "tuned", ["stretchratio"], None, 2),
    ("tonedata MoE", "tonedata.csv", "tuned", ["stretchratio"], ["stretchratio"], 2),
    ("NPreg", "NPreg.csv", "yn", ["x", "I(x^2)"], None, 2),
    ("NPreg MoE", "NPreg.csv", "yn", ["x", "I(x^2)"], ["x"], 2),
    ("NPreg MoE", "NPreg.csv", "yn", ["x", "I(x^2)"], ["x", "I(x^2)"], 2),
    ("NOdata", "NOdata.csv", "NO", ["Equivalence"], None, 2),
    ("CO2data", "CO2data.csv", "CO2", ["GNP"], None, 2),
    ("engel", "engel.csv", "foodexp", ["income"], None, 2),
    ("diabetes MoE", "diabetes.csv", "y",
     ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], ["bmi", "s5"], 2),
]

R_EXPORT = """
suppressMessages({library(flexmix); library(mixtools)})
d <- commandArgs(TRUE)[1]
data(NPreg); write.csv(NPreg, file.path(d, "NPreg.csv"), row.names=FALSE)
data(tonedata); write.csv(tonedata, file.path(d, "tonedata.csv"), row.names=FALSE)
data(NOdata); write.csv(NOdata, file.path(d, "NOdata.csv"), row.names=FALSE)
data(CO2data); write.csv(CO2data, file.path(d, "CO2data.csv"), row.names=FALSE)
"""

R_FIT = """
suppressMessages({library(flexmix); library(mixtools)})
a <- commandArgs(TRUE)
dat <- read.csv(a[1]); resp <- a[2]; experts <- a[3]; gate <- a[4]; K <- as.integer(a[5])
fo <- as.formula(paste(resp, "~", experts))
conc <- if (gate == "") NULL else FLXPmultinom(as.formula(paste("~", gate)))
fit <- function(k) if (is.null(conc)) stepFlexmix(fo, data=dat, k=k, nrep=5, verbose=FALSE) else
  stepFlexmix(fo, data=dat, k=k, nrep=5, verbose=FALSE, concomitant=conc)
set.seed(0)
t <- system.time(f <- fit(K))[["elapsed"]]
cat("flexmix", as.numeric(logLik(f)), t, f@k, "\\n")
set.seed(0)
t <- system.time(s <- fit(1:3))[["elapsed"]]
cat("flexmix_bic_k", getModel(s, "BIC")@k, t, "\\n")
if (gate == "" && !grepl("\\\\+", experts)) {
  set.seed(100)
  x <- model.matrix(fo, dat)[, -1]
  t <- system.time(m <- regmixEM(dat[[resp]], x, k=K))[["elapsed"]]
  cat("regmixEM", m$loglik, t, "\\n")
}
"""


def _design(df, terms):
    cols = []
    for t in terms:
        if t.startswith("I(") and t.endswith("^2)"):
            cols.append(df[t[2:-3]].to_numpy(float) ** 2)
        else:
            cols.append(df[t].to_numpy(float))
    return np.column_stack(cols)


def _export(tmp):
    import pandas as pd
    from sklearn.datasets import load_diabetes

    d = load_diabetes(as_frame=True)
    pd.concat([d.data, d.target.rename("y")], axis=1).to_csv(
        os.path.join(tmp, "diabetes.csv"), index=False)
    try:
        import statsmodels.api as sm

        sm.datasets.engel.load_pandas().data.to_csv(os.path.join(tmp, "engel.csv"), index=False)
    except ImportError:
        print("statsmodels missing (pip install statsmodels): engel skipped", file=sys.stderr)
    if shutil.which("Rscript") is None:
        print(f"Rscript not found: install R and the peers with `{INSTALL}`", file=sys.stderr)
        return False
    script = os.path.join(tmp, "export.R")
    with open(script, "w") as fh:
        fh.write(R_EXPORT)
    r = subprocess.run(["Rscript", script, tmp], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"R export failed ({r.stderr.strip()[:200]}); install the peers: `{INSTALL}`",
              file=sys.stderr)
        return False
    return True


def _run_r(tmp, csv, resp, experts, gate, K):
    script = os.path.join(tmp, "fit.R")
    with open(script, "w") as fh:
        fh.write(R_FIT)
    r = subprocess.run(["Rscript", script, os.path.join(tmp, csv), resp, " + ".join(experts),
                        " + ".join(gate) if gate else "", str(K)],
                       capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("flexmix", "flexmix_bic_k", "regmixEM"):
            out[parts[0]] = [float(v) for v in parts[1:]]
    if r.returncode != 0:
        out["error"] = r.stderr.strip().splitlines()[-1:] or ["failed"]
    return out


def _ours(X, y, K, gate, seeds, n_exp):
    """mixstat's fits: experts on the first ``n_exp`` columns, the gate on the
    columns ``gate`` (None: a constant gate)."""
    params = dict(alpha=0.0, alpha_gate=0.0, expert_features=list(range(n_exp)))
    if gate is None:
        params["gate"] = "constant"
    else:
        params["gate_features"] = gate
    fits, times, old = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in seeds:
            t = time.perf_counter()
            fits.append(GaussianMoERegressor(K, random_state=s, **params).fit(X, y))
            times.append(time.perf_counter() - t)
            old.append(GaussianMoERegressor(K, random_state=s, init="residuals", n_init=3,
                                            **params).fit(X, y).log_likelihood_)
        t = time.perf_counter()
        sel = select_n_components(X, y, (1, 2, 3), method="bic", random_state=0, **params)
        t_sel = time.perf_counter() - t
    return ([f.log_likelihood_ for f in fits], float(np.median(times)), old, sel.n_components,
            t_sel)


def _fmt(v, d=2):
    return "" if v is None else f"{v:.{d}f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds instead of 10")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "moe_realdata.md"))
    args = ap.parse_args(argv)
    import pandas as pd

    seeds = range(3 if args.quick else 10)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        have_r = _export(tmp)
        for name, csv, resp, experts, gate, K in CASES:
            path = os.path.join(tmp, csv)
            if not os.path.exists(path):
                continue
            df = pd.read_csv(path)
            cols = experts + [g for g in (gate or []) if g not in experts]
            X = _design(df, cols)
            y = df[resp].to_numpy(float)
            gate_idx = None if gate is None else [cols.index(g) for g in gate]
            lls, t_ours, old, k_ours, t_sel = _ours(X, y, K, gate_idx, seeds, len(experts))
            peer = _run_r(tmp, csv, resp, experts, gate, K) if have_r else {}
            fx = peer.get("flexmix", [None, None, None])
            rg = peer.get("regmixEM", [None, None])
            fk = peer.get("flexmix_bic_k", [None, None])
            best = max([v for v in [max(lls), fx[0], rg[0]] if v is not None])
            rows.append({
                "data": f"{name} (n={len(y)})", "gate": "constant" if gate is None
                else "softmax(" + ", ".join(gate) + ")", "K": K,
                "ours": lls[0], "reach": sum(abs(v - best) <= 0.01 for v in lls),
                "n_seeds": len(lls), "old": old[0],
                "old_reach": sum(abs(v - best) <= 0.01 for v in old),
                "flexmix": fx[0], "regmixEM": rg[0], "t_ours": t_ours, "t_flexmix": fx[1],
                "t_regmix": rg[1], "k_ours": k_ours, "k_flexmix": fk[0],
                "t_sel": t_sel, "t_fsel": fk[1]})
            print(rows[-1], flush=True)
        cv_rows = _diabetes_cv()
        from mixstat.datasets import make_khalili_moe

        cost_sets = [("Khalili n=300 p=6", *make_khalili_moe(300, random_state=0))]
        if os.path.exists(os.path.join(tmp, "NPreg.csv")):
            d = pd.read_csv(os.path.join(tmp, "NPreg.csv"))
            cost_sets.append(("NPreg n=200 (x, x^2)", _design(d, ["x", "I(x^2)"]),
                              d["yn"].to_numpy(float)))
        cost_rows = _init_cost(cost_sets, rounds=10 if args.quick else 30)
    _write(args, rows, cv_rows, have_r, cost_rows)


def _init_cost(datasets, rounds=30):
    """CPU time of one default fit against the previous default (n_init=3,
    init='residuals', standardize=False), interleaved, median over rounds."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, X, y in datasets:
            fits = {"new": dict(), "old": dict(n_init=3, init="residuals", standardize=False)}
            for kw in fits.values():  # warm (kernels loaded)
                GaussianMoERegressor(2, random_state=0, **kw).fit(X, y)
            t = {k: [] for k in fits}
            for r in range(rounds):
                for k, kw in fits.items():
                    c = time.process_time()
                    GaussianMoERegressor(2, random_state=r, **kw).fit(X, y)
                    t[k].append(time.process_time() - c)
            new, old = np.median(t["new"]), np.median(t["old"])
            out.append({"data": name, "new": new, "old": old, "ratio": new / old})
            print(out[-1], flush=True)
    return out


def _diabetes_cv():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_score

    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, scale in (("raw columns", 1.0), ("columns x 0.01", 0.01),
                             ("columns x 100", 100.0)):
            row = {"X": label}
            for std in (True, False):
                est = GaussianMoERegressor(2, standardize=std, random_state=0)
                row[std] = cross_val_score(est, X * scale, y, cv=cv, scoring="r2").mean()
            row["ols"] = cross_val_score(LinearRegression(), X * scale, y, cv=cv,
                                         scoring="r2").mean()
            out.append(row)
            print(row, flush=True)
    return out


def _write(args, rows, cv_rows, have_r, cost_rows):
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    cmd = "benchmarks/bench_moe_realdata.py" + (" --quick" if args.quick else "")
    lines = [
        "# GaussianMoERegressor on real data, flexmix and mixtools beside it",
        "",
        f"Measured {now} with `.venv/bin/python {cmd}` on the 2-core VM "
        f"(load average at the end: {load}). "
        + ("R peers ran live through Rscript." if have_r else
           f"R peers missing (install: `{INSTALL}`)."),
        "",
        "Unpenalised fits (alpha = alpha_gate = 0). `ours` is the default fit "
        "(n_init=4, init='auto') at random_state=0; `reach` counts the random_state "
        f"values 0..{rows[0]['n_seeds'] - 1 if rows else 0} whose default fit reaches the best "
        "log-likelihood either side found (within 0.01); `old init` is n_init=3, init='residuals', "
        "the default before issue #22. flexmix: stepFlexmix(nrep=5), best of 5 random "
        "starts; regmixEM: one run, set.seed(100). K by BIC over 1..3 (flexmix: "
        "getModel(..., 'BIC')). Times are wall seconds of one fit (ours: median over "
        "seeds; flexmix: the 5 runs of stepFlexmix together).",
        "",
        "| data | gate | K | ours logLik | reach | old init logLik | old reach | flexmix "
        "| regmixEM | ours s | flexmix s | regmixEM s | K by BIC ours / flexmix |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['gate']} | {r['K']} | {_fmt(r['ours'])} | "
            f"{r['reach']}/{r['n_seeds']} | {_fmt(r['old'])} | {r['old_reach']}/{r['n_seeds']}"
            f" | {_fmt(r['flexmix'])} | {_fmt(r['regmixEM'], 3)} | {_fmt(r['t_ours'], 3)} | "
            f"{_fmt(r['t_flexmix'], 3)} | {_fmt(r['t_regmix'], 3)} | {r['k_ours']} / "
            f"{'' if r['k_flexmix'] is None else int(r['k_flexmix'])} |")
    lines += [
        "",
        "## Units: load_diabetes, 5-fold CV R^2 of the default penalised K=2 fit",
        "",
        "GaussianMoERegressor(2) with its default penalties (alpha = alpha_gate = 0.01); "
        "the same folds (KFold(5, shuffle=True, random_state=0)) for every column.",
        "",
        "| X | standardize=True (default) | standardize=False | OLS |",
        "|---|---|---|---|",
    ]
    for r in cv_rows:
        lines.append(f"| {r['X']} | {r[True]:.3f} | {r[False]:.3f} | {r['ols']:.3f} |")
    lines += [
        "",
        "## Cost of the default initialisation",
        "",
        "CPU seconds of one GaussianMoERegressor(2) fit with its default penalties: the "
        "default (n_init=4, init='auto', standardize=True) against the previous default "
        "(n_init=3, init='residuals', standardize=False); the two interleaved, median over "
        f"{10 if args.quick else 30} rounds (random_state = round).",
        "",
        "| data | default (s) | previous default (s) | ratio |",
        "|---|---|---|---|",
    ]
    for r in cost_rows:
        lines.append(f"| {r['data']} | {r['new']:.4f} | {r['old']:.4f} | {r['ratio']:.2f} |")
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
