"""MPE on real data: bundled data sets turned into PU problems with known
proportions, every base estimator plain, with SuMPE and with ReCPE, beside
pu-toolbox and pulearn on the same splits.

Data (no download): scikit-learn's ``load_breast_cancer`` (benign = H),
``load_wine`` (cultivar 1 = H), ``load_digits`` (0-4 = H), ``load_diabetes``
(progression above the median = H); statsmodels' ``fair`` (an affair = H) and
``anes96`` (voted Dole = H). For each data set and repetition the positive
pool P and the negative pool N are shuffled; 20 % of each is set aside as a
labeled *source* set (it only trains the SuMPE acceptance function); the
mixture takes ``round(kappa* n)`` points of P and the rest of N; the
component sample takes ``m`` other points of P. kappa* in {0.05, 0.5, 0.95,
1.0}; two component sizes (``m`` small and large).

Estimators. One cross-fitted score (the library's default classifier,
:func:`mixstat.mpe.cross_fit_scores`) feeds ROC, BBE, Elkan-Noto e1 and
DEDPUL (:func:`roc_proportion`, :func:`bbe_proportion`,
:func:`dedpul_proportion`), as each of those estimators would compute it; one
``KernelMeanMPE`` fit gives KM1 and KM2; ``TIcEMPE``; the ensembles are the
median of three of these. SuMPE: the mixture is subsampled with the
acceptance :math:`\\alpha(x) = \\rho h/(\\rho h + (1-\\rho) g)`, :math:`\\rho =
0.95`, from a logistic regression trained on the source set (a conservative
posterior, as the SuMPE authors' ``neg_sub_prop``), the same bundle runs on the
kept points and is multiplied by the kept fraction. ReCPE: the 10 % of the
mixture with the highest cross-fitted score joins the component sample.

Uncertainty: every score-based estimator's interval is the percentile
bootstrap over the MPE step only (the held-out scores are resampled within
each sample, the classifiers are not refitted: ``bootstrap_refit=False``);
BBE's own DKW interval is reported as well. Coverage is of kappa*.

Run: ``PYTHONPATH=. python benchmarks/bench_mpe_realdata.py [--quick]
[--reps R] [--no-peers]``; writes ``benchmarks/results/mpe_realdata.md`` (or
``mpe_realdata_quick.md``). Peers run in their own venv::

    python3 -m venv benchmarks/envs/mpe
    benchmarks/envs/mpe/bin/pip install pu-toolbox==1.11.0 pulearn==0.2.0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mixstat.mpe import (
    KernelMeanMPE,
    TIcEMPE,
    bbe_proportion,
    cross_fit_scores,
    dedpul_proportion,
    roc_proportion,
)

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, "envs", "mpe", "bin", "python")
INSTALL = ("python3 -m venv benchmarks/envs/mpe && "
           "benchmarks/envs/mpe/bin/pip install pu-toolbox==1.11.0 pulearn==0.2.0")
KAPPAS = (0.05, 0.5, 0.95, 1.0)
BASES = ("KM1", "KM2", "ROC", "BBE", "EN", "DEDPUL", "TIcE")
ENSEMBLES = {"med(KM2,BBE,TIcE)": ("KM2", "BBE", "TIcE"),
             "med(KM2,BBE,DEDPUL)": ("KM2", "BBE", "DEDPUL"),
             "med(KM1,KM2,BBE)": ("KM1", "KM2", "BBE")}
N_BOOT = 50


# ------------------------------------------------------------------ data ---
def load_pools():
    """name -> (X positives, X negatives), features standardised."""
    from sklearn import datasets as skd

    out = {}
    d = skd.load_breast_cancer()
    out["breast_cancer"] = (d.data[d.target == 1], d.data[d.target == 0])
    d = skd.load_wine()
    out["wine"] = (d.data[d.target == 1], d.data[d.target != 1])
    d = skd.load_digits()
    out["digits"] = (d.data[d.target < 5], d.data[d.target >= 5])
    d = skd.load_diabetes()
    med = np.median(d.target)
    out["diabetes"] = (d.data[d.target > med], d.data[d.target <= med])
    try:
        import statsmodels.api as sm

        f = sm.datasets.fair.load_pandas().data
        X = f.drop(columns=["affairs"]).to_numpy(float)
        out["fair (statsmodels)"] = (X[f["affairs"].to_numpy() > 0], X[f["affairs"].to_numpy() == 0])
        a = sm.datasets.anes96.load_pandas().data
        X = a.drop(columns=["vote"]).to_numpy(float)
        v = a["vote"].to_numpy()
        out["anes96 (statsmodels)"] = (X[v == 1], X[v == 0])
    except ImportError:
        print("statsmodels missing: pip install statsmodels", file=sys.stderr)
    for k, (P, N) in out.items():
        Xall = np.vstack([P, N])
        mu, sd = Xall.mean(0), Xall.std(0)
        sd[sd == 0] = 1.0
        out[k] = ((P - mu) / sd, (N - mu) / sd)
    return out


def make_split(P, N, kappa, m_frac, rng, n_cap):
    """One PU problem; returns Xh, Xf, source (Xs, ys)."""
    P, N = P[rng.permutation(len(P))], N[rng.permutation(len(N))]
    ps, ns = len(P) // 5, len(N) // 5
    Xs = np.vstack([P[:ps], N[:ns]])
    ys = np.r_[np.ones(ps, int), np.zeros(ns, int)]
    P, N = P[ps:], N[ns:]
    n = int(min(n_cap, len(N), len(P) // 2))
    k = int(round(kappa * n))
    Xf = np.vstack([P[:k], N[:n - k]])
    rest = P[k:] if kappa < 1 else P[n:]
    m_max = min(len(P) - n, n_cap)
    m = max(10, int(m_frac * m_max))
    return rest[:m], Xf, (Xs, ys)


# ------------------------------------------------------------ estimators ---
def _score_rules(s_h, s_f):
    m, n = len(s_h), len(s_f)
    out = {"ROC": roc_proportion(s_h, s_f)[0]}
    k, _, dkw = bbe_proportion(s_h, s_f)
    out["BBE"] = k
    c = float(np.clip(s_h.mean(), 1e-12, 1))
    out["EN"] = float(np.clip((m / n) * (1 - c) / c, 0, 1))
    out["DEDPUL"] = dedpul_proportion(s_h, s_f)[0]
    out["DEDPUL-LOO"] = dedpul_proportion(s_h, s_f, leave_one_out=True)[0]
    return out, dkw


def bundle(Xh, Xf, seed, boot=True):
    """Every base estimate on (Xh, Xf): {name: (estimate, (lo, hi) or None, seconds)}."""
    rng = np.random.RandomState(seed)
    res = {}
    t = time.perf_counter()
    s_h, s_f = cross_fit_scores(None, Xh, Xf, 5, rng)
    est, dkw = _score_rules(s_h, s_f)
    t_scores = time.perf_counter() - t
    reps = defaultdict(list)
    t = time.perf_counter()
    if boot:
        for _ in range(N_BOOT):
            e, _ = _score_rules(s_h[rng.randint(0, len(s_h), len(s_h))],
                                s_f[rng.randint(0, len(s_f), len(s_f))])
            for k, v in e.items():
                reps[k].append(v)
    t_boot = (time.perf_counter() - t) / 5
    for k, v in est.items():
        iv = tuple(np.quantile(reps[k], [0.025, 0.975])) if boot else None
        res[k] = (float(v), iv, t_scores + t_boot)
    res["BBE-DKW"] = (est["BBE"], dkw, t_scores)
    t = time.perf_counter()
    try:
        km = KernelMeanMPE(random_state=seed).fit(np.vstack([Xh, Xf]),
                                                  np.r_[np.ones(len(Xh)), np.zeros(len(Xf))])
        k1, k2 = km.km1_, km.km2_
    except ValueError:
        k1 = k2 = np.nan
    dt = time.perf_counter() - t
    res["KM1"], res["KM2"] = (k1, None, dt), (k2, None, dt)
    t = time.perf_counter()
    ti = TIcEMPE(random_state=seed).fit(np.vstack([Xh, Xf]),
                                        np.r_[np.ones(len(Xh)), np.zeros(len(Xf))])
    res["TIcE"] = (ti.proportion_, None, time.perf_counter() - t)
    for name, members in ENSEMBLES.items():
        vals = [res[b][0] for b in members]
        res[name] = (float(np.nanmedian(vals)), None, sum(res[b][2] for b in members))
    return res


def acceptance(Xs, ys, rho=0.95):
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(Xs, ys)
    shift = np.log(rho / (1 - rho)) - np.log(ys.mean() / (1 - ys.mean()))

    def alpha(X):
        z = clf.decision_function(X) + shift
        return 1.0 / (1.0 + np.exp(-z))
    return alpha


def wrapped(kind, Xh, Xf, src, seed):
    rng = np.random.RandomState(seed + 7)
    if kind == "plain":
        return bundle(Xh, Xf, seed)
    if kind == "SuMPE":
        a = acceptance(*src)(Xf)
        keep = rng.uniform(size=len(Xf)) <= a
        if keep.sum() < 10:
            return None
        c = keep.mean()
        res = bundle(Xh, Xf[keep], seed)
        return {k: (c * v, None if iv is None else (c * iv[0], c * iv[1]), t)
                for k, (v, iv, t) in res.items()}
    _, s_f = cross_fit_scores(None, Xh, Xf, 5, rng)
    top = np.argsort(-s_f, kind="stable")[: int(0.1 * len(Xf))]
    return bundle(np.vstack([Xh, Xf[top]]), Xf, seed)


# ----------------------------------------------------------------- peers ---
PEER_SCRIPT = r'''
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
d = np.load(sys.argv[1])
out = []
for i in range(int(d["count"])):
    X, y = d[f"X{i}"], d[f"y{i}"]
    r = {}
    try:
        from pu_toolbox.prior import KernelMeanPriorEstimator, ReCPEEstimator
        t = time.perf_counter()
        km = KernelMeanPriorEstimator(width_selection="mmd_grid", random_state=0).fit(X, y)
        r["pu-toolbox KM1"] = [km.km1_estimate_, time.perf_counter() - t]
        r["pu-toolbox KM2"] = [km.km2_estimate_, time.perf_counter() - t]
        t = time.perf_counter()
        r["pu-toolbox ReCPE"] = [float(ReCPEEstimator(copy_fraction=0.1).fit(X, y).estimate()),
                                 time.perf_counter() - t]
    except Exception as e:
        r["pu_toolbox_error"] = repr(e)
    try:
        from pulearn import HistogramMatchPriorEstimator
        from sklearn.linear_model import LogisticRegression
        t = time.perf_counter()
        est = HistogramMatchPriorEstimator(estimator=LogisticRegression(max_iter=2000)).fit(X, y)
        r["pulearn HistMatch"] = [float(est.metadata_["hidden_positive_fraction"]),
                                  time.perf_counter() - t]
    except Exception as e:
        r["pulearn_error"] = repr(e)
    out.append(r)
print(json.dumps(out))
'''


def run_peers(splits):
    if not os.path.exists(PEER_PY):
        print(f"peers missing: install with `{INSTALL}`", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "d.npz")
        arrs = {"count": len(splits)}
        for i, (Xh, Xf) in enumerate(splits):
            arrs[f"X{i}"] = np.vstack([Xh, Xf])
            arrs[f"y{i}"] = np.r_[np.ones(len(Xh), int), np.zeros(len(Xf), int)]
        np.savez(f, **arrs)
        sc = os.path.join(tmp, "peer.py")
        with open(sc, "w") as fh:
            fh.write(PEER_SCRIPT)
        p = subprocess.run([PEER_PY, sc, f], capture_output=True, text=True, timeout=3000)
    if p.returncode:
        print(p.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main ---
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 repetition, one component size")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--n-cap", type=int, default=200, help="largest mixture / component size")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--datasets", default=None, help="comma-separated subset")
    ap.add_argument("--resume", action="store_true",
                    help="keep the data sets already run with these settings (rows saved "
                         "under benchmarks/_out/), run the others, tabulate all")
    args = ap.parse_args()
    reps = args.reps if args.reps is not None else (1 if args.quick else 10)
    m_fracs = (1.0,) if args.quick else (0.25, 1.0)
    warnings.filterwarnings("ignore")
    pools = load_pools()
    if args.datasets:
        pools = {k: v for k, v in pools.items() if k.split(" ")[0] in args.datasets.split(",")}
    rows = []   # (dataset, kappa, m, rep, wrapper, name, est, lo, hi, t)
    t_all = time.perf_counter()
    tag = f"q{int(args.quick)}_r{reps}_n{args.n_cap}"
    out_dir = os.path.join(HERE, "_out")
    os.makedirs(out_dir, exist_ok=True)
    all_names = list(load_pools()) if args.datasets else list(pools)
    for dname in all_names:
        f = os.path.join(out_dir, f"mpe_realdata_{tag}_{dname.split(' ')[0]}.json")
        if args.resume and dname not in pools and os.path.exists(f):
            with open(f) as fh:
                rows += [tuple(r) for r in json.load(fh)]
    for dname, (P, N) in pools.items():
        f = os.path.join(out_dir, f"mpe_realdata_{tag}_{dname.split(' ')[0]}.json")
        if args.resume and os.path.exists(f):
            with open(f) as fh:
                rows += [tuple(r) for r in json.load(fh)]
            continue
        start = len(rows)
        peer_splits, peer_keys = [], []
        for kappa in KAPPAS:
            for mf in m_fracs:
                for r in range(reps):
                    seed = 1000 * r + int(100 * kappa) + int(10 * mf)
                    rng = np.random.RandomState(seed)
                    Xh, Xf, src = make_split(P, N, kappa, mf, rng, args.n_cap)
                    for kind in ("plain", "SuMPE", "ReCPE"):
                        res = wrapped(kind, Xh, Xf, src, seed)
                        if res is None:
                            continue
                        for name, (v, iv, t) in res.items():
                            lo, hi = iv if iv is not None else (np.nan, np.nan)
                            rows.append((dname, kappa, len(Xh), r, kind, name, v, lo, hi, t))
                    peer_splits.append((Xh, Xf))
                    peer_keys.append((kappa, len(Xh), r))
        if not args.no_peers:
            pr = run_peers(peer_splits)
            if pr is not None:
                for (kappa, m, r), d in zip(peer_keys, pr, strict=True):
                    for name, val in d.items():
                        if name.endswith("_error"):
                            print(dname, name, val, file=sys.stderr)
                            continue
                        rows.append((dname, kappa, m, r, "peer", name, float(val[0]), np.nan,
                                     np.nan, float(val[1])))
        with open(f, "w") as fh:
            json.dump([[x if isinstance(x, str) else float(x) for x in r] for r in rows[start:]], fh)
        print(f"{dname}: done ({time.perf_counter() - t_all:.0f} s)", file=sys.stderr)
    write(rows, args, reps, m_fracs, time.perf_counter() - t_all)


def write(rows, args, reps, m_fracs, total):
    dt = np.dtype([("d", "U32"), ("k", float), ("m", int), ("r", int), ("w", "U8"),
                   ("e", "U32"), ("v", float), ("lo", float), ("hi", float), ("t", float)])
    R = np.array([tuple(r) for r in rows], dtype=dt)
    cmd = "PYTHONPATH=. python benchmarks/bench_mpe_realdata.py " + " ".join(sys.argv[1:])
    L = ["# MPE on real PU data (`benchmarks/bench_mpe_realdata.py`)", "",
         f"Date 2026-12-04; machine: 2-core VM, loaded (6 developers); command: `{cmd}`; "
         f"{reps} repetition(s) per cell, component sizes {'one (large)' if len(m_fracs) == 1 else 'two (small = a quarter of the large)'}, "
         f"mixture and component samples capped at {args.n_cap} points; {total:.0f} s in the last "
         "command (with `--resume`, the data sets are run over several commands).", "",
         "Data sets (H / G pools): " + ", ".join(sorted(set(R['d']))) + ".", "",
         "Cells: mean absolute error |kappa_hat - kappa*| over data sets x kappa* x sizes x "
         "repetitions; `worst` is the largest per-(data set, kappa*) mean absolute error; "
         "`bias` the mean signed error; `k=1` the mean estimate at kappa* = 1; `cover` the "
         "coverage of kappa* by the 95 % interval (score bootstrap over the MPE step, "
         "50 resamples; `BBE-DKW` the DKW bound at level 0.9); time per fit (s).", ""]
    L += ["| estimator | wrapper | MAE | worst | bias | k=1 | cover | time |",
          "|---|---|---|---|---|---|---|---|"]
    keys = sorted(set(zip(R["w"], R["e"], strict=True)), key=lambda x: (x[0] != "plain", x[0], x[1]))
    summary = []
    for w, e in keys:
        S = R[(R["w"] == w) & (R["e"] == e)]
        err = S["v"] - S["k"]
        cells = [np.nanmean(np.abs(err[(S["d"] == d) & (S["k"] == k)]))
                 for d in set(S["d"]) for k in KAPPAS if ((S["d"] == d) & (S["k"] == k)).any()]
        k1 = S["v"][S["k"] == 1.0]
        ok = np.isfinite(S["lo"])
        cov = np.mean((S["lo"][ok] <= S["k"][ok] + 1e-12) & (S["k"][ok] <= S["hi"][ok] + 1e-12)) \
            if ok.any() else np.nan
        summary.append((w, e, np.nanmean(np.abs(err)), np.nanmax(cells), np.nanmean(err),
                        np.nanmean(k1), cov, np.nanmean(S["t"])))
    for w, e, mae, worst, bias, k1, cov, t in summary:
        c = "n/a" if np.isnan(cov) else f"{cov:.2f}"
        L.append(f"| {e} | {w} | {mae:.3f} | {worst:.3f} | {bias:+.3f} | {k1:.3f} | {c} | {t:.2f} |")
    L += ["", "## Per data set (plain estimators and peers): MAE / bias", ""]
    names = [e for w, e in keys if w in ("plain", "peer")]
    ds = sorted(set(R["d"]))
    L += ["| estimator | " + " | ".join(ds) + " |", "|---|" + "---|" * len(ds)]
    for e in names:
        cells = []
        for d in ds:
            S = R[(R["e"] == e) & (R["d"] == d) & np.isin(R["w"], ["plain", "peer"])]
            err = S["v"] - S["k"]
            cells.append(f"{np.nanmean(np.abs(err)):.3f} / {np.nanmean(err):+.3f}" if len(S) else "-")
        L.append(f"| {e} | " + " | ".join(cells) + " |")
    L += ["", "## Per true proportion (plain and peers): mean estimate", ""]
    L += ["| estimator | " + " | ".join(f"kappa*={k}" for k in KAPPAS) + " |",
          "|---|" + "---|" * len(KAPPAS)]
    for e in names:
        S = R[(R["e"] == e) & np.isin(R["w"], ["plain", "peer"])]
        L.append(f"| {e} | " + " | ".join(f"{np.nanmean(S['v'][S['k'] == k]):.3f}"
                                          for k in KAPPAS) + " |")
    name = "mpe_realdata_quick.md" if args.quick else "mpe_realdata.md"
    with open(os.path.join(HERE, "results", name), "w") as fh:
        fh.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
