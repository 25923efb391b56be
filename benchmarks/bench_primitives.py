"""Primitives: mixstat's weighted Lasso solvers and log-sum-exp against their peers.

On the same data, in one process, single-threaded (BLAS limited to one thread):

* ``sweep``     one full coordinate-descent sweep of mixstat's Numba kernel
                (residual updates), the generalised-EM M-step of one expert;
                ``call`` is the same through ``weighted_enet_cd(max_iter=1)``,
                which also computes the weighted means and centred norms.
* ``CD cold``   ``weighted_enet_cd`` to the duality-gap stop (tol=1e-4), from 0.
* ``CD warm``   the same from the solution at 1.25 x lambda (a path step).
* ``sklearn``   ``sklearn.linear_model.Lasso(alpha=lam1 / sum(w), tol=1e-4)``
                with ``sample_weight=w``, cold, and warm (``warm_start=True``
                from the same previous solution): the mapped penalty, the same
                relative duality-gap stop.
* ``FISTA``     ``weighted_enet_fista`` (the GPU solver), on the CPU, cold,
                same stop.
* peers         ``weighted_enet_cd`` (working sets) against scikit-learn, skglm
                and celer at lambda = 0.1 and 0.01 lambda_max, tol 1e-6 on the
                duality gap, interleaved repeats, each solution's gap checked
                (see ``_peer_runners`` for the mapping of the problem); the
                full-sweep path (``working_set=False``) runs alongside.
* logsumexp     ``mixstat.primitives.logsumexp`` against
                ``scipy.special.logsumexp`` along axis 1 of an (n, K) array.

Sizes follow the performance anchor of ``shared/notes/lasso_moe.md`` section 6
(200x500, 500x2000, 2000x5000). Times are the minimum over repeats; ratios are
peer / mixstat (> 1: mixstat is faster). Every solver's solution is checked
against CD before timing (max |coef difference| is printed).

Run:  .venv/bin/python benchmarks/bench_primitives.py [--quick] [--out FILE]

skglm and celer are not dependencies of mixstat; to compare with them, run it
from a separate (git-ignored) environment::

    python3 -m venv benchmarks/envs/lasso
    benchmarks/envs/lasso/bin/pip install numpy scipy scikit-learn numba \
        array-api-compat joblib tqdm threadpoolctl skglm celer
    benchmarks/envs/lasso/bin/python benchmarks/bench_primitives.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mixstat.primitives import (  # noqa: E402
    enet_duality_gap,
    enet_lambda_max,
    logsumexp,
    weighted_enet_cd,
    weighted_enet_fista,
)
from mixstat.primitives._lasso import _enet_cd_kernel, _weighted_stats  # noqa: E402

SIZES = [(200, 500, 2), (500, 2000, 3), (2000, 5000, 3)]
TOL = 1e-4


def best_of(fn, repeats, budget_s=20.0):
    """Minimum wall time of ``fn()`` over ``repeats`` runs (fewer if slow)."""
    times = []
    t_start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget_s:
            break
    return min(times)


def make_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = np.asfortranarray(rng.standard_normal((n, p)))
    beta = np.zeros(p)
    beta[:5] = [2.0, -1.5, 1.0, 3.0, -2.0]
    y = X @ beta + rng.standard_normal(n)
    w = rng.uniform(0.05, 1.0, size=n)  # responsibility-like weights
    return X, y, w


def fmt_ms(t):
    return f"{1e3 * t:.3g}"


def bench_lasso(n, p, repeats):
    from sklearn.linear_model import Lasso

    X, y, w = make_data(n, p)
    lmax = float(enet_lambda_max(X, y, w))
    lam1 = 0.1 * lmax
    alpha = lam1 / w.sum()

    # --- one sweep: the kernel alone, and the public call
    xbar, ybar, h = _weighted_stats(X, y, w, True)
    yc = y - ybar
    feats = np.arange(p, dtype=np.int64)

    def sweep():
        coef = np.zeros(p)
        r = yc.copy()
        _enet_cd_kernel(X, yc, w, xbar, h, coef, r, lam1, 0.0, feats, 1, 0.0, False)

    sweep()  # compile (or load the cache)
    t_sweep = best_of(sweep, repeats * 3)
    t_call = best_of(lambda: weighted_enet_cd(X, y, w, lam1=lam1, max_iter=1, tol=0.0,
                                              active_set=False), repeats * 3)
    one_pass = best_of(lambda: X.T @ w, repeats * 3)

    # --- full solves
    prev = weighted_enet_cd(X, y, w, lam1=1.25 * lam1, tol=TOL, max_iter=100_000)
    cd = weighted_enet_cd(X, y, w, lam1=lam1, tol=TOL, max_iter=100_000)
    t_cold = best_of(lambda: weighted_enet_cd(X, y, w, lam1=lam1, tol=TOL, max_iter=100_000),
                     repeats)
    t_warm = best_of(lambda: weighted_enet_cd(X, y, w, lam1=lam1, coef=prev.coef, tol=TOL,
                                              max_iter=100_000), repeats)

    def sk_cold():
        return Lasso(alpha=alpha, tol=TOL, max_iter=100_000).fit(X, y, sample_weight=w)

    def sk_warm():
        est = Lasso(alpha=alpha, tol=TOL, max_iter=100_000, warm_start=True)
        est.coef_ = prev.coef.copy()
        return est.fit(X, y, sample_weight=w)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = sk_cold()
        diff_sk = np.abs(sk.coef_ - cd.coef).max()
        t_sk_cold = best_of(sk_cold, repeats)
        t_sk_warm = best_of(sk_warm, repeats)

    fi = weighted_enet_fista(X, y, w, lam1=lam1, tol=TOL, max_iter=100_000)
    diff_fi = np.abs(fi.coef - cd.coef).max()
    t_fista = best_of(lambda: weighted_enet_fista(X, y, w, lam1=lam1, tol=TOL, max_iter=100_000),
                      repeats)
    return dict(n=n, p=p, sweep=t_sweep, call=t_call, one_pass=one_pass, cold=t_cold,
                warm=t_warm, sk_cold=t_sk_cold, sk_warm=t_sk_warm, fista=t_fista,
                diff_sk=diff_sk, diff_fi=diff_fi, nnz=int(np.count_nonzero(cd.coef)),
                cd_sweeps=cd.n_iter, fista_steps=fi.n_iter)


PEER_TOL = 1e-6
PEER_FRACS = (0.1, 0.01)


def _peer_runners(X, y, w, lam1, tol):
    r"""Solvers of the same weighted Lasso, each a callable returning the slopes.

    mixstat solves the weighted problem with its intercept, as a caller does.
    The peers get it in their own form, prepared outside the timing:
    :math:`\tilde X = \sqrt{w}(X - \bar x_w)`, :math:`\tilde y = \sqrt{w}(y-\bar y_w)`,
    no intercept, ``alpha = lam1 / n``; then their objective
    :math:`\frac{1}{2n}\|\tilde y-\tilde X\beta\|^2+\alpha\|\beta\|_1` is ours
    divided by n, and sklearn's and celer's stop (duality gap below
    ``tol * |y~|^2 / n``) is ours. skglm stops on the largest violation of the
    optimality conditions instead (gradient units), so it is given the loosest
    ``tol`` (factors of 3) whose solution meets the gap; attained gaps are printed.
    """
    n = X.shape[0]
    sw = w.sum()
    xbar = (w @ X) / sw
    sq = np.sqrt(w)
    Xt = np.asfortranarray(sq[:, None] * (X - xbar))
    yt = sq * (y - float(w @ y) / sw)
    alpha = lam1 / n
    runners = {
        "mixstat": lambda: weighted_enet_cd(X, y, w, lam1=lam1, tol=tol,
                                            max_iter=100_000).coef,
        # the algorithm before working sets: full sweeps + active-set sweeps
        "full sweeps": lambda: weighted_enet_cd(X, y, w, lam1=lam1, tol=tol,
                                                max_iter=100_000,
                                                working_set=False).coef,
    }
    from sklearn.linear_model import Lasso as SkLasso

    runners["sklearn"] = lambda: SkLasso(alpha=alpha, tol=tol, max_iter=100_000,
                                         fit_intercept=False).fit(Xt, yt).coef_
    missing = {}
    try:
        from skglm import Lasso as SkglmLasso

        # skglm's tol bounds the optimality violation (gradient units of the
        # 1/n objective), not the gap: it gets the loosest tol on a grid of
        # factors of 3 whose solution has a relative gap below ``tol``
        yc = y - float(w @ y) / sw
        base = float(w @ (yc * yc))
        sk_tol = 1e3 * tol * base / n
        for _ in range(16):
            c = SkglmLasso(alpha=alpha, tol=sk_tol, max_iter=1000,
                           fit_intercept=False).fit(Xt, yt).coef_
            if float(enet_duality_gap(X, y, w, c, None, lam1)) <= tol * base:
                break
            sk_tol /= 3.0
        runners["skglm"] = lambda: SkglmLasso(alpha=alpha, tol=sk_tol, max_iter=1000,
                                              fit_intercept=False).fit(Xt, yt).coef_
    except ImportError:
        missing["skglm"] = "pip install skglm"
    try:
        from celer import Lasso as CelerLasso

        runners["celer"] = lambda: CelerLasso(alpha=alpha, tol=tol, max_iter=1000,
                                              fit_intercept=False).fit(Xt, yt).coef_
    except ImportError:
        missing["celer"] = "pip install celer"
    return runners, missing


def bench_lasso_peers(n, p, frac, repeats, tol=PEER_TOL):
    """Interleaved repeats of every solver on one (n, p, lambda) point."""
    X, y, w = make_data(n, p)
    lam1 = frac * float(enet_lambda_max(X, y, w))
    runners, missing = _peer_runners(X, y, w, lam1, tol)
    yc = y - float(w @ y) / w.sum()
    base = float(w @ (yc * yc))
    coefs, gaps = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in runners.items():  # warm-up (compilation) and the check
            coefs[name] = np.asarray(fn())
            gap = enet_duality_gap(X, y, w, coefs[name], None, lam1)
            gaps[name] = float(gap) / base
        times = {name: [] for name in runners}
        t_start = time.perf_counter()
        for _ in range(repeats):  # interleaved: every solver once per round
            for name, fn in runners.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            if time.perf_counter() - t_start > 30.0:
                break
    ref = coefs["mixstat"]
    diffs = {k: float(np.abs(c - ref).max()) for k, c in coefs.items()}
    return dict(n=n, p=p, frac=frac, times={k: min(v) for k, v in times.items()},
                gaps=gaps, diffs=diffs, nnz=int(np.count_nonzero(ref)), missing=missing)


def bench_lse(n, K, repeats):
    import scipy.special

    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, K)) * 20
    ours = logsumexp(a, axis=1)
    ref = scipy.special.logsumexp(a, axis=1)
    diff = np.abs(ours - ref).max()
    t_ours = best_of(lambda: logsumexp(a, axis=1), repeats * 5)
    t_scipy = best_of(lambda: scipy.special.logsumexp(a, axis=1), repeats * 5)
    return dict(n=n, K=K, ours=t_ours, scipy=t_scipy, diff=diff)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two small sizes, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=None,
                        help="write the tables (markdown) to this file as well")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    sizes = SIZES[:2] if args.quick else SIZES

    from threadpoolctl import threadpool_limits

    lines = []

    def emit(s=""):
        print(s, flush=True)
        lines.append(s)

    import numba
    import sklearn

    emit("# Primitives: weighted Lasso and log-sum-exp")
    emit()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    exe = sys.executable
    if os.path.abspath(exe).startswith(root + os.sep):
        exe = os.path.relpath(exe, root)
    cmd = " ".join([f"{exe} benchmarks/bench_primitives.py",
                    *(argv if argv is not None else sys.argv[1:])])
    emit(f"Date: {time.strftime('%Y-%m-%d', time.gmtime())}. Command: `{cmd}`")
    emit()
    from importlib.metadata import PackageNotFoundError, version

    peers = []
    for name in ("skglm", "celer"):
        try:
            peers.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            peers.append(f"{name} not installed")
    emit(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
         f"load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}, "
         f"scikit-learn {sklearn.__version__}, numba {numba.__version__}, "
         f"{', '.join(peers)}; one thread (threadpoolctl), minimum over "
         f"{repeats}+ repeats.")
    emit()
    with threadpool_limits(1):
        emit("## Weighted Lasso (lam1 = 0.1 lambda_max, tol = 1e-4, X Fortran-ordered)")
        emit()
        emit("Times in ms. Ratios: peer time / mixstat CD time (> 1: mixstat faster).")
        emit()
        emit("| n x p | pass over X | CD sweep (kernel) | CD sweep (call) | CD cold | CD warm "
             "| sklearn cold | sklearn warm | FISTA cold | sklearn/CD cold | sklearn/CD warm "
             "| FISTA/CD cold | sklearn warm / one sweep |")
        emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        checks = []
        for n, p, _ in sizes:
            r = bench_lasso(n, p, repeats)
            emit(f"| {n}x{p} | {fmt_ms(r['one_pass'])} | {fmt_ms(r['sweep'])} | "
                 f"{fmt_ms(r['call'])} | {fmt_ms(r['cold'])} | {fmt_ms(r['warm'])} | "
                 f"{fmt_ms(r['sk_cold'])} | {fmt_ms(r['sk_warm'])} | {fmt_ms(r['fista'])} | "
                 f"{r['sk_cold'] / r['cold']:.1f} | {r['sk_warm'] / r['warm']:.1f} | "
                 f"{r['fista'] / r['cold']:.1f} | {r['sk_warm'] / r['sweep']:.0f} |")
            checks.append(r)
        emit()
        emit("Agreement at the solution (same tol): "
             + "; ".join(f"{r['n']}x{r['p']}: max|CD - sklearn| = {r['diff_sk']:.1e}, "
                         f"max|CD - FISTA| = {r['diff_fi']:.1e}, {r['nnz']} non-zeros, "
                         f"{r['cd_sweeps']} CD sweeps, {r['fista_steps']} FISTA steps"
                         for r in checks) + ".")
        emit()
        emit(f"## Weighted Lasso against skglm, celer and scikit-learn "
             f"(tol = {PEER_TOL:g} on the duality gap)")
        emit()
        emit("Times in ms (minimum over interleaved repeats: every solver once per "
             "round). Ratios: peer time / mixstat time (> 1: mixstat faster). "
             "`mixstat` is `weighted_enet_cd` (working sets, the default); `full "
             "sweeps` is the same call with `working_set=False`, the algorithm "
             "before working sets. Gaps: the relative duality gap each solution "
             "attains on the weighted problem.")
        emit()
        emit("| n x p | lambda / lambda_max | non-zeros | mixstat | full sweeps "
             "| sklearn | skglm | celer | full sweeps / mixstat | sklearn / mixstat "
             "| skglm / mixstat | celer / mixstat | attained gaps (mixstat, sklearn, "
             "skglm, celer) |")
        emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        missing = {}
        for n, p, _ in sizes:
            for frac in PEER_FRACS:
                r = bench_lasso_peers(n, p, frac, repeats)
                t, gp = r["times"], r["gaps"]
                missing.update(r["missing"])
                peers = ["full sweeps", "sklearn", "skglm", "celer"]
                cell = [fmt_ms(t[k]) if k in t else "n/a" for k in peers]
                ratio = [f"{t[k] / t['mixstat']:.2f}" if k in t else "n/a"
                         for k in peers]
                gaps = ", ".join(f"{gp[k]:.0e}" if k in gp else "n/a"
                                 for k in ("mixstat", "sklearn", "skglm", "celer"))
                emit(f"| {n}x{p} | {frac:g} | {r['nnz']} | {fmt_ms(t['mixstat'])} | "
                     + " | ".join(cell) + " | " + " | ".join(ratio) + f" | {gaps} |")
        if missing:
            emit()
            emit("Not installed (install to compare): "
                 + "; ".join(f"{k}: `{v}`" for k, v in missing.items()) + ".")
        emit()
        emit("## log-sum-exp along axis 1 of an (n, K) array")
        emit()
        emit("| n x K | mixstat (ms) | scipy (ms) | scipy / mixstat | max abs diff |")
        emit("|---|---|---|---|---|")
        lse_sizes = [(n, K) for n, _, K in sizes] + [(100_000, 4)]
        if not args.quick:
            lse_sizes.append((1_000_000, 4))
        for n, K in lse_sizes:
            r = bench_lse(n, K, repeats)
            emit(f"| {n}x{K} | {fmt_ms(r['ours'])} | {fmt_ms(r['scipy'])} | "
                 f"{r['scipy'] / r['ours']:.2f} | {r['diff']:.1e} |")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
