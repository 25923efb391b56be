"""GaussianMoERegressor against R's flexmix and mixtools, on the same data, in one run.

Peers (called through ``Rscript`` on the same CSV files):

- flexmix ``FLXMRglm`` experts + ``FLXPmultinom(~x)`` gates: the unpenalised
  mixture of experts (maximum likelihood);
- flexmix ``FLXMRglmnet`` experts (Lasso experts, ``cv.glmnet`` inside every
  M-step), constant gate: its only high-dimensional option;
- mixtools ``regmixEM``: mixture of linear regressions (constant gate).

Install the peers with
``apt-get install -y --no-install-recommends r-base-core r-cran-flexmix r-cran-mixtools r-cran-glmnet``;
a missing peer is reported with that command and skipped.

Data: the Khalili (2010) design (n=300, p=6, K=2) and a sparse design with
n=200, p=500, K=2 (mixstat.datasets.make_sparse_moe). Single-threaded BLAS on
both sides, one EM run per fit (no restarts), the same data files. Each time
is the best of ``--reps`` fits on each side (R: ``system.time`` of each
``flexmix`` / ``regmixEM`` call in one R session; mixstat: wall time of each
``fit`` call, JIT compiled beforehand); FLXMRglmnet runs once.

Convergence: flexmix stops when :math:`|\Delta\ell| / (|\ell| + 0.1) < 10^{-6}`
(its default ``tolerance``), mixstat when the change of its (mean-scale)
penalised objective after a full sweep is at most ``tol * max(1, |PL|)``,
``tol = 1e-6`` (its default): at ``alpha = alpha_gate = 0`` the same relative
criterion on the log-likelihood.

Also reported: mixstat's time per EM iteration against the floor of one
E-step plus one coordinate-descent sweep per expert (the compiled E-step
kernel and the primitive's Numba CD kernel on all features, stats
precomputed).

Run:  .venv/bin/python benchmarks/bench_moe_peers.py
(prints the tables and writes benchmarks/results/moe_peers.md)
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
from threadpoolctl import threadpool_limits

from mixstat.datasets import make_khalili_moe, make_sparse_moe
from mixstat.moe import GaussianMoERegressor
from mixstat.moe._kernels import e_step_kernel, expert_means_kernel
from mixstat.primitives._lasso import _enet_cd_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
INSTALL = ("apt-get install -y --no-install-recommends r-base-core r-cran-flexmix "
           "r-cran-mixtools r-cran-glmnet")

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
csv <- args[1]; which <- args[2]; K <- as.integer(args[3]); maxit <- as.integer(args[4])
reps <- as.integer(args[5])
d <- read.csv(csv)
p <- ncol(d) - 1
xs <- paste0("x", seq_len(p))
# t: c(elapsed, cpu) of the best run (cpu = user + system time of this process)
out <- function(name, t, ll, it) cat(sprintf("RESULT %s %.6f %.6f %.6f %d\n", name, t[1], t[2],
                                             ll, it))
tm <- function(st) c(st[["elapsed"]], st[["user.self"]] + st[["sys.self"]])
if (which == "flexmix_moe") {
  suppressMessages(library(flexmix))
  f <- as.formula(paste("y ~", paste(xs, collapse = "+")))
  g <- as.formula(paste("~", paste(xs, collapse = "+")))
  best <- c(Inf, Inf)
  for (r in seq_len(reps)) {  # the same random start each time
    set.seed(1)
    t <- tm(system.time(m <- flexmix(f, data = d, k = K, model = FLXMRglm(),
                                     concomitant = FLXPmultinom(g),
                                     control = list(iter.max = maxit, minprior = 0))))
    best <- pmin(best, t)
  }
  out(which, best, as.numeric(logLik(m)), m@iter)
} else if (which == "flexmix_glmnet") {
  set.seed(1)
  suppressMessages(library(flexmix)); suppressMessages(library(glmnet))
  f <- as.formula(paste("y ~", paste(xs, collapse = "+")))
  t <- tm(system.time(m <- flexmix(f, data = d, k = K,
                                   model = FLXMRglmnet(adaptive = FALSE),
                                   control = list(iter.max = maxit, minprior = 0))))
  out(which, t, as.numeric(logLik(m)), m@iter)
} else if (which == "mixtools_regmix") {
  suppressMessages(library(mixtools))
  X <- as.matrix(d[, xs])
  best <- c(Inf, Inf)
  for (r in seq_len(reps)) {
    set.seed(1)
    t <- tm(system.time(m <- regmixEM(d$y, X, k = K, maxit = maxit, epsilon = 1e-8,
                                      verb = FALSE)))
    best <- pmin(best, t)
  }
  out(which, best, m$loglik, length(m$all.loglik) - 1)
}
"""


def _load():
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _have_r(pkg):
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", f"suppressMessages(library({pkg}))"],
                       capture_output=True, text=True)
    return r.returncode == 0


def run_r(tmp, csv, which, K, maxit, reps=1):
    script = os.path.join(tmp, "peer.R")
    with open(script, "w") as f:
        f.write(R_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run(["Rscript", script, csv, which, str(K), str(maxit), str(reps)],
                       capture_output=True, text=True, env=env, timeout=1800)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT"):
            _, name, t, cpu, ll, it = line.split()
            return {"time": float(t), "cpu": float(cpu), "loglik": float(ll), "n_iter": int(it)}
    return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}


def fit_mixstat(X, y, reps=1, cpu=False, **kw):
    """Best wall time of ``reps`` fits (a new estimator each time); with ``cpu``
    also the best CPU time of this process."""
    best = np.inf
    best_cpu = np.inf
    for _ in range(reps):
        m = GaussianMoERegressor(**kw)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X, y)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return (m, best, best_cpu) if cpu else (m, best)


def per_iteration(X, y, m, kw, n_iter=20):
    """Time per EM iteration (difference of fits with n_iter and 0 iterations, same
    init), and the floor: one E-step + one full CD sweep per expert."""
    base = {**kw, "n_init": 1, "tol": 0.0, "random_state": 0}
    times = {}
    for it in (0, n_iter):
        best = np.inf
        for _ in range(3):
            _, _, t = fit_mixstat(X, y, cpu=True, **{**base, "max_iter": it})
            best = min(best, t)
        times[it] = best
    per_it = (times[n_iter] - times[0]) / n_iter
    # floor: the compiled E-step + one compiled CD sweep per expert
    Xf = np.asfortranarray(X)
    state = m._state()
    K, p = m.coef_.shape
    n = X.shape[0]
    sw = np.ones(n)
    mu = np.empty((n, K))
    expert_means_kernel(Xf, state.coef, state.intercept, mu)
    bufs = [np.empty((n, K)) for _ in range(3)]
    e_step_kernel(Xf, y, sw, mu, state.var, state.gate_coef, state.gate_intercept, *bufs)
    resp = bufs[1].copy()
    feats = np.arange(p, dtype=np.int64)
    stats = []
    for k in range(K):
        w = resp[:, k].copy()
        xbar = (w @ Xf) / w.sum()
        h = w @ (Xf - xbar) ** 2
        ybar = w @ y / w.sum()
        yc = y - ybar
        stats.append((w, xbar, h, yc))
    best = np.inf
    for _ in range(5):
        t0 = time.process_time()
        e_step_kernel(Xf, y, sw, mu, state.var, state.gate_coef, state.gate_intercept, *bufs)
        for k in range(K):
            w, xbar, h, yc = stats[k]
            coef = state.coef[k].copy()
            r = yc - Xf @ coef + xbar @ coef
            _enet_cd_kernel(Xf, yc, w, xbar, h, coef, r, 1.0, 0.0, feats, 1, 0.0, False)
        best = min(best, time.process_time() - t0)
    return per_it, best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maxit-highdim", type=int, default=30,
                    help="iteration cap of flexmix FLXMRglmnet at p=500 (slow)")
    ap.add_argument("--reps", type=int, default=5,
                    help="fits per side; the best time is reported (FLXMRglmnet: once)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "moe_peers.md"))
    args = ap.parse_args(argv)
    have = {pkg: _have_r(pkg) for pkg in ("flexmix", "mixtools", "glmnet")}
    missing = [k for k, v in have.items() if not v]
    lines = ["# GaussianMoERegressor against flexmix and mixtools", "",
             f"Command: `.venv/bin/python benchmarks/bench_moe_peers.py {' '.join(sys.argv[1:])}`",
             "Single-threaded BLAS on both sides; one EM run per fit (no restarts); same CSV "
             f"data; best of {args.reps} fits on each side (FLXMRglmnet: one).",
             f"Machine load when it started: {_load()}.",
             ""]
    if missing:
        lines.append(f"Missing R packages {missing}: install with `{INSTALL}`; those peers are skipped.")
    rows = []
    speed = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        # warm the JIT
        Xw, yw = make_khalili_moe(60, random_state=0)
        fit_mixstat(Xw, yw, n_components=2, n_init=1, max_iter=3)
        cases = []
        X, y = make_khalili_moe(300, random_state=0)
        cases.append(("Khalili n=300 p=6 K=2", X, y, 2,
                      [("flexmix FLXMRglm+FLXPmultinom (MLE)", "flexmix_moe", 1000,
                        dict(alpha=0.0, alpha_gate=0.0)),
                       ("mixtools regmixEM (constant gate)", "mixtools_regmix", 1000,
                        dict(alpha=0.0, alpha_gate=1e6))]))
        X2, y2 = make_sparse_moe(200, 500, 2, n_informative=(3, 5), random_state=0)
        cases.append(("sparse n=200 p=500 K=2", X2, y2, 2,
                      [("flexmix FLXMRglmnet (Lasso experts, constant gate)", "flexmix_glmnet",
                        args.maxit_highdim, dict(alpha=0.05, alpha_gate=1e6))]))
        for data_name, X, y, K, peers in cases:
            csv = os.path.join(tmp, "d.csv")
            header = "y," + ",".join(f"x{j + 1}" for j in range(X.shape[1]))
            np.savetxt(csv, np.column_stack([y, X]), delimiter=",", header=header,
                       comments="", fmt="%.17g")
            for peer_name, which, maxit, kw in peers:
                pkg = which.split("_")[0]
                params = dict(n_components=K, n_init=1, random_state=0, max_iter=1000, **kw)
                reps = 1 if which == "flexmix_glmnet" else args.reps
                m, t_ms, c_ms = fit_mixstat(X, y, reps=reps, cpu=True, **params)
                ll_ms = m.log_likelihood(X, y)
                if not have.get(pkg) or (which == "flexmix_glmnet" and not have["glmnet"]):
                    res = {"error": f"not installed ({INSTALL})"}
                else:
                    res = run_r(tmp, csv, which, K, maxit, reps)
                mix_desc = (f"mixstat alpha={kw['alpha']}, "
                            + ("constant gate" if kw["alpha_gate"] >= 1e6 else
                               f"alpha_gate={kw['alpha_gate']}"))
                if "error" in res:
                    rows.append(f"| {data_name} | {peer_name} | - | - | - | {mix_desc} | "
                                f"{t_ms:.3f} / {c_ms:.3f} | {m.n_iter_} | {ll_ms:.2f} | - | "
                                f"{res['error']} |")
                    continue
                ratio = res["time"] / t_ms
                ratio_cpu = res["cpu"] / c_ms
                speed.append((data_name, peer_name, ratio))
                rows.append(
                    f"| {data_name} | {peer_name} | {res['time']:.3f} / {res['cpu']:.3f} | "
                    f"{res['n_iter']} | {res['loglik']:.2f} | {mix_desc} | {t_ms:.3f} / {c_ms:.3f} | "
                    f"{m.n_iter_} | {ll_ms:.2f} | {ratio:.1f}x / {ratio_cpu:.1f}x | "
                    f"{'yes' if ll_ms >= res['loglik'] - 1e-3 else 'no'} |")
        lines += ["Times: wall / CPU (s), each the best of its runs; speed-up = peer / mixstat.", "",
                  "| data | peer | peer time wall / CPU (s) | peer iters | peer logLik | mixstat fit |"
                  " mixstat time wall / CPU (s) | mixstat iters | mixstat logLik | speed-up wall / CPU |"
                  " mixstat logLik >= peer |",
                  "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
        lines += ["Notes: the mixstat logLik is the unpenalised log-likelihood of its fit; at p=500 "
                  "flexmix's FLXMRglmnet re-tunes its penalty by cv.glmnet in every M-step (a "
                  "different estimator), so only time is comparable there, and it is capped at "
                  f"{args.maxit_highdim} iterations.", ""]
        # per-iteration time against the floor
        lines += ["## Time per EM iteration against the floor", "",
                  "floor = one E-step + one coordinate-descent sweep per expert over all features "
                  "(compiled kernels); CPU times, per iteration = (fit with 20 iterations - fit "
                  "with 0) / 20, best of 3; floor best of 5",
                  "",
                  "| data | K | mixstat per iteration (ms) | floor (ms) | ratio |",
                  "|---|---|---|---|---|"]
        X3, y3 = make_sparse_moe(500, 2000, 3, random_state=0)
        for name, X, y, kw in (
                ("Khalili n=300 p=6", *make_khalili_moe(300, random_state=0),
                 dict(n_components=2, alpha=0.02, alpha_gate=0.01)),
                ("sparse n=200 p=500", X2, y2, dict(n_components=2, alpha=0.05, alpha_gate=0.02)),
                ("sparse n=500 p=2000", X3, y3, dict(n_components=3, alpha=0.05, alpha_gate=0.02))):
            m, _ = fit_mixstat(X, y, **{**kw, "n_init": 1, "random_state": 0, "max_iter": 200})
            per_it, floor = per_iteration(X, y, m, kw)
            lines.append(f"| {name} | {kw['n_components']} | {per_it * 1e3:.2f} | "
                         f"{floor * 1e3:.2f} | {per_it / floor:.1f} |")
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
