"""Inference and the torch path of the shallow squared Gaussian mixture.

1. Coverage (issue #8): ``--coverage N`` data sets drawn from a K=2 1-D
   squared mixture with a negative weight (a dip carved into a broad bump),
   n = ``--n`` points each; each is fitted (``init='random'``, ``n_init=5``;
   the fit is replaced by L-BFGS from the true parameters when that reaches a
   higher likelihood, so that the estimate is the MLE: counted in the table),
   and the nominal 95% intervals (observed information and sandwich) are
   checked against the truth, per parameter. ``--boot-sets M`` adds the
   bootstrap percentile intervals (``--n-bootstrap`` replicates) on the
   first M data sets.
2. Backends (issue #7): ``--device DEV`` times ``fit`` with the closed-form
   NumPy gradient on the host against ``backend='torch'`` on ``DEV`` (the
   same L-BFGS steps: ``tol=0``, fixed ``max_iter``, same start) for n up to
   ``--max-n``, and checks a fit from a tensor on ``DEV`` against the NumPy fit.

Run:  .venv/bin/python benchmarks/bench_circuits_inference.py --coverage 200 --boot-sets 20
      (writes benchmarks/results/circuits_inference.md)
      python3 benchmarks/bench_circuits_inference.py --device cuda --out FILE.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from mixstat.circuits import SquaredGaussianMixture  # noqa: E402
from mixstat.circuits._squared_gmm import _Param  # noqa: E402
from mixstat.circuits._squared_gmm_inference import InferenceLayout, extend  # noqa: E402

# the truth: c(x) = N(x; 0, 4) - 0.6 N(x; 0.5, 0.5) (component covariances)
TRUE_W = np.array([1.0, -0.6])
TRUE_MU = np.array([[0.0], [0.5]])
TRUE_COV = np.array([[[4.0]], [[0.5]]])


def _truth_model():
    from mixstat.circuits._squared_gmm import _log_z

    m = SquaredGaussianMixture(2, covariance_type="full")
    w = TRUE_W / np.abs(TRUE_W).sum()
    m.weights_, m.means_, m.covariances_ = w, TRUE_MU.copy(), TRUE_COV.copy()
    m.log_normalizer_ = _log_z(w, m.means_, m.covariances_, "full")[0]
    m.n_features_in_ = 1
    return m


def _aligned(model):
    """Component order matching the truth (by mean and log sd)."""
    from mixstat.primitives import match_components

    a = np.c_[TRUE_MU[:, 0], 0.5 * np.log(TRUE_COV[:, 0, 0])]
    b = np.c_[model.means_[:, 0], 0.5 * np.log(model.covariances_[:, 0, 0])]
    return match_components(a, b)


def _fit_mle(X, seed):
    kw = dict(covariance_type="full", tol=1e-10, max_iter=2000, backend="numpy")
    m = SquaredGaussianMixture(2, init="random", n_init=5, random_state=seed, **kw).fit(X)
    # L-BFGS from the truth: keep it when it is a better maximum
    par = _Param(2, 1, "full", m.reg_covar)
    th = par.pack(TRUE_W, TRUE_MU, TRUE_COV)
    w, mu, cov, ok = m._refit_from(th, X)
    m2 = SquaredGaussianMixture(2, init="random", random_state=seed, **kw)
    m2.__dict__.update({k: v for k, v in m.__dict__.items() if k.endswith("_")})
    m2._set_params(par.pack(w, mu, cov), par)
    replaced = ok and m2.score(X) > m.score(X) + 1e-9
    if replaced:
        m2.lower_bound_ = m2.score(X)
        m = m2
    return m, replaced


def coverage(n_sets, n, boot_sets, n_bootstrap, level=0.95):
    truth = _truth_model()
    t0 = time.time()
    methods = ["observed", "sandwich"] + (["bootstrap"] if boot_sets else [])
    hits = {k: [] for k in methods}
    failures = {k: 0 for k in methods}
    replaced = 0
    names = None
    boot_failed = 0
    for s in range(n_sets):
        X = truth.sample(n, random_state=1000 + s)
        m, rep = _fit_mle(X, s)
        replaced += rep
        perm = _aligned(m)
        ref = int(np.argmax(np.abs(m.weights_)))
        layout = InferenceLayout(2, 1, "full", ref)
        # the truth in the fitted model's component order and reference
        inv = np.argsort(perm)
        tw, tmu, tcov = TRUE_W[inv], TRUE_MU[inv], TRUE_COV[inv]
        tw = tw / np.abs(tw).sum() * np.sign(tw[ref])
        true_phi = extend(layout, layout.pack(tw, tmu, tcov))[0]
        order = None
        for meth in methods:
            if meth == "bootstrap" and s >= boot_sets:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    inf = m.inference(X, method=meth, level=level, n_bootstrap=n_bootstrap,
                                      random_state=s, n_jobs=1)
            except (ValueError, np.linalg.LinAlgError):
                failures[meth] += 1
                continue
            if meth == "bootstrap":
                boot_failed += inf.n_failed
            # rows named by the truth's component order: component perm[j] is true j
            lab = {f"component {perm[j]}": f"component {j}" for j in range(2)}
            keys = []
            for b, t in inf.names:
                if b in lab:
                    keys.append(f"{lab[b]}: {t}")
                elif b == "weights":
                    keys.append("ratio w_other / w_ref")
                else:
                    keys.append(f"normalised w{int(np.flatnonzero(perm == int(t[1:]))[0])}")
            if order is None:
                order = keys
            idx = [keys.index(k) for k in order]
            cover = (inf.ci_low[idx] <= true_phi[idx]) & (true_phi[idx] <= inf.ci_high[idx])
            hits[meth].append(cover)
            names = order
        if (s + 1) % 10 == 0:
            print(f"  {s + 1}/{n_sets} data sets, {time.time() - t0:.0f} s", file=sys.stderr,
                  flush=True)
    secs = time.time() - t0
    rows = []
    for i, nm in enumerate(names):
        rows.append([nm] + [f"{np.mean([h[i] for h in hits[k]]):.3f}" for k in methods])
    overall = {k: float(np.mean(np.concatenate(hits[k]))) for k in methods}
    return dict(rows=rows, methods=methods, overall=overall, failures=failures, replaced=replaced,
                secs=secs, counts={k: len(hits[k]) for k in methods}, boot_failed=boot_failed)


def device_check(device, max_n):
    import torch

    rng = np.random.default_rng(0)
    lines = [f"device: {device}"
             + (f" ({torch.cuda.get_device_name(0)})" if device.startswith("cuda") else "")
             + f", torch {torch.__version__}", ""]
    # 1. a tensor on the device in, NumPy attributes out, the NumPy optimum
    X = np.r_[rng.normal(0, 1.5, size=(2000, 2)), rng.normal(2, 0.5, size=(2000, 2))]
    kw = dict(covariance_type="full", random_state=0, tol=1e-14, max_iter=3000)
    a = SquaredGaussianMixture(2, backend="numpy", **kw).fit(X)
    b = SquaredGaussianMixture(2, **kw).fit(torch.as_tensor(X, device=device))
    diff = max(np.abs(getattr(a, k) - getattr(b, k)).max()
               for k in ("weights_", "means_", "covariances_"))
    lines += [f"tensor on {device} in: backend_={b.backend_!r}, weights_ is "
              f"{type(b.weights_).__name__}; max |param diff| vs NumPy fit {diff:.2e}, "
              f"mean log-lik {b.lower_bound_:.10f} vs {a.lower_bound_:.10f}", ""]
    # 2. one loss-and-gradient evaluation (what each L-BFGS step costs)
    from mixstat.circuits._squared_gmm import _nll_and_grad, _nll_torch

    K, d = 8, 2
    lines += [f"One loss-and-gradient evaluation (K={K}, d={d}, full covariances, the same "
              "theta on both): the closed-form NumPy gradient on the host against torch "
              f"autograd on {device} (median of 5 after a warm-up; the torch time includes "
              "moving theta in and the loss and gradient out)", "",
              f"| n | numpy (host) s | torch {device} s | ratio host/torch | |loss diff| | "
              "max |grad diff| |", "|---|---|---|---|---|---|"]
    par = _Param(K, d, "full", 1e-6)
    n = 10_000
    while n <= max_n:
        Xn = np.r_[rng.normal(0, 1.5, size=(n // 2, d)), rng.normal(2, 0.5, size=(n - n // 2, d))]
        th = SquaredGaussianMixture(K, init="random")._initial(Xn, par, np.random.RandomState(0))
        Xd = torch.as_tensor(Xn, device=device)
        times = {}
        out = {}
        for name, fun, arg in (("numpy", _nll_and_grad, Xn), ("torch", _nll_torch, Xd)):
            out[name] = fun(th, arg, par)
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                fun(th, arg, par)
                ts.append(time.perf_counter() - t)
            times[name] = float(np.median(ts))
        lines.append(f"| {n} | {times['numpy']:.4f} | {times['torch']:.4f} | "
                     f"{times['numpy'] / times['torch']:.2f} | "
                     f"{abs(out['numpy'][0] - out['torch'][0]):.1e} | "
                     f"{np.max(np.abs(out['numpy'][1] - out['torch'][1])):.1e} |")
        n *= 10
    # 3. a whole fit, same start
    nf = min(max_n, 100_000)
    Xn = np.r_[rng.normal(0, 1.5, size=(nf // 2, d)), rng.normal(2, 0.5, size=(nf // 2, d))]
    kw = dict(covariance_type="full", random_state=0, tol=1e-12, max_iter=500)
    res = {}
    for name in ("numpy", "torch"):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = SquaredGaussianMixture(2, backend=name, **kw).fit(
                Xn if name == "numpy" else torch.as_tensor(Xn, device=device))
        res[name] = (time.perf_counter() - t, est.n_iter_, est.lower_bound_)
    lines += ["", f"Whole fit to convergence at n={nf} (K=2, init='kmeans', tol=1e-12; the init "
              "runs on the host in both): "
              + "; ".join(f"{k}: {v[0]:.1f} s, {v[1]} iterations, mean log-lik {v[2]:.6f}"
                          for k, v in res.items())]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=int, default=0, help="number of simulated data sets")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--boot-sets", type=int, default=0)
    ap.add_argument("--n-bootstrap", type=int, default=100)
    ap.add_argument("--device", default=None, help="torch device for the backend check")
    ap.add_argument("--max-n", type=int, default=1_000_000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads (1 on a shared machine)")
    args = ap.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    cmd = "python benchmarks/bench_circuits_inference.py " + " ".join(sys.argv[1:] if argv is None else argv)
    parts = [f"<!-- produced by: {cmd} -->", "", "# SquaredGaussianMixture: inference and backends", ""]
    if args.coverage:
        r = coverage(args.coverage, args.n, args.boot_sets, args.n_bootstrap)
        parts += [
            f"## Coverage of nominal 95% intervals ({args.coverage} data sets, n={args.n})", "",
            "Truth: c(x) = N(x; 0, 4) - 0.6 N(x; 0.5, 0.5) (component covariances; the "
            "density is c^2/Z). Fit: init='random', n_init=5, tol=1e-10; replaced by L-BFGS "
            f"from the truth when that found a higher likelihood: {r['replaced']} of "
            f"{args.coverage} data sets.", "",
            f"Data sets with intervals: " + ", ".join(f"{k} {r['counts'][k]}" for k in r["methods"])
            + "; refused (information not positive definite / bootstrap failed): "
            + ", ".join(f"{k} {r['failures'][k]}" for k in r["methods"])
            + (f"; failed bootstrap replicates in all: {r['boot_failed']} "
               f"(of {args.boot_sets * args.n_bootstrap})" if args.boot_sets else "")
            + ".", "",
            "| parameter | " + " | ".join(r["methods"]) + " |",
            "|---|" + "---|" * len(r["methods"])]
        parts += ["| " + " | ".join(row) + " |" for row in r["rows"]]
        parts += ["| **all parameters** | " + " | ".join(f"**{r['overall'][k]:.3f}**"
                                                       for k in r["methods"]) + " |", "",
                  f"Monte Carlo standard error of one coverage figure at 0.95 over "
                  f"{args.coverage} sets: {np.sqrt(0.95 * 0.05 / args.coverage):.3f}. "
                  f"Wall time {r['secs']:.0f} s (2-core machine shared with other jobs: times "
                  "are indicative).", ""]
    if args.device:
        parts += [f"## torch backend on {args.device}", "", device_check(args.device, args.max_n), ""]
    text = "\n".join(parts)
    print(text)
    out = args.out or os.path.join(HERE, "results", "circuits_inference.md")
    if args.coverage or args.out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
