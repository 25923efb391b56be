"""Per-phase profile of one device EM iteration of the Gaussian MoE, torch against CuPy.

Usage (from the repository root)::

    python benchmarks/gpu_profile.py --out $OUT/gpu_profile.md          # CUDA, ~1-2 min
    python benchmarks/gpu_profile.py --device cpu --n 20000 --n-big 3000 --p-big 600 \\
        --p-huge 0 --count                                              # dry run, torch CPU

What it measures, each on the same data for every backend:

1. **Phases** of the device EM (:func:`mixstat.moe._em_xp.run_em_xp`, Gram
   form) at n=1e6, p=100, K=4: the E-step and log-likelihood, the experts'
   weighted Gram matrices (device GEMMs and their transfer), the host
   coordinate descent, the variance step, and the gate step (its device
   products, host coordinate descent and line search), each ended by a device
   synchronisation; and the time per iteration without those
   synchronisations (warm-started runs of 1 and 1+m iterations, the
   difference divided by m).
2. **Single operations** on torch and CuPy at the same sizes: the column sums
   of an (n, K) array (``sum(axis=0)`` against a ``ones @ A`` gemv), a full
   sum against a dot product, array-api-compat's ``clip`` against a
   ``maximum``, the broadcast weighting of ``X``, a Gram GEMM, ``X @ B``, a
   row log-sum-exp, a scalar read-back, and small host<->device copies.
3. **p > 512**: the Gram form at n=2e5, p=1000 (torch and CuPy) and p=2000
   (torch), and the expert step of the FISTA form at p=1000 (its host gate
   step, a Numba kernel, is not run: its first compile on a fresh machine
   costs more than this script's budget).
4. With ``--count`` (meant for torch on the CPU): device operations (aten
   ops), scalar read-backs and host<->device transfers per EM iteration.

Every part checks a time budget (``--budget`` seconds, default 100) before it
starts and the report is rewritten after each part, so a cut-off run still
leaves what it measured. CuPy compiles each kernel on first use: every timed
run follows an untimed warm-up run.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import traceback
from dataclasses import replace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

T0 = time.perf_counter()

PHASES = ("expert_stats", "expert_solve", "variance", "gate_stats", "gate_cd", "gate_search",
          "gate", "e_step")
PHASE_LABEL = {
    "expert_stats": "experts: weighted Gram matrices on the device + transfer",
    "expert_solve": "experts: host coordinate descent (FISTA form: device FISTA steps)",
    "variance": "variances: X @ coef, weighted RSS (device) + host update",
    "gate_stats": "gate: device products (Gram, gradient, objective) + transfer",
    "gate_cd": "gate: host coordinate descent",
    "gate_search": "gate: line search (objective on the device)",
    "gate": "gate: upload (FISTA form: host gate step)",
    "e_step": "E-step + log-likelihood (device) + convergence check",
}


def elapsed():
    return time.perf_counter() - T0


class Report:
    """Markdown report, rewritten to ``path`` after every part."""

    def __init__(self, path, header):
        self.path = path
        self.lines = list(header)

    def add(self, *lines):
        self.lines += list(lines)
        text = "\n".join(lines)
        print(text, flush=True)
        if self.path:
            with open(self.path, "w") as fh:
                fh.write("\n".join(self.lines) + "\n")


class Phases:
    """The ``timer`` of :func:`run_em_xp`: synchronises, then charges the time
    since the previous mark to the phase that just ended."""

    def __init__(self, sync):
        self.sync = sync
        self.acc = {}
        self.t = None

    def __call__(self, name):
        self.sync()
        now = time.perf_counter()
        if self.t is not None and name is not None:
            self.acc[name] = self.acc.get(name, 0.0) + now - self.t
        self.t = now


class _Stop(Exception):
    pass


def _libs(device, wanted):
    """(name, backend, sync) for each backend that can run here."""
    from mixstat import config_context
    from mixstat._backend import cupy_device_available, resolve_backend

    out = []
    if "torch" in wanted:
        import torch

        with config_context(device=device):
            b = resolve_backend("torch")
        sync = torch.cuda.synchronize if b.device.type == "cuda" else (lambda: None)
        out.append(("torch", b, sync))
    if "cupy" in wanted:
        if device == "cuda" and cupy_device_available():
            import cupy

            out.append(("cupy", resolve_backend("cupy"),
                        lambda: cupy.cuda.Device().synchronize()))
        else:
            print("[gpu_profile] cupy: no CuPy with a CUDA device here, skipped", flush=True)
    return out


def _problem(n, p, K, seed=0):
    from gpu_suite import _moe_data

    from mixstat._backend import resolve_backend
    from mixstat.moe import GaussianMoERegressor
    from mixstat.moe._em import MoEState

    X, y = _moe_data(n, p, K, seed)
    sw = np.ones(n)
    cfg = GaussianMoERegressor(K)._make_config(X, y, sw, resolve_backend("numpy"))
    # a cheap start (no host initialisation): flat experts at quantiles of y,
    # small random gates
    rng = np.random.default_rng(seed)
    state = MoEState(np.zeros((K, p)), np.quantile(y, (np.arange(K) + 0.5) / K),
                     0.01 * rng.standard_normal((K, p)), np.zeros(K), np.full(K, y.var()))
    return X, y, sw, state, cfg


def _run(X, y, sw, state, cfg, backend, m, solver, timer=None):
    from mixstat.moe._em_xp import run_em_xp

    kw = {} if timer is None else {"timer": timer}
    return run_em_xp(X, y, sw, state, replace(cfg, max_iter=m, tol=0.0), backend,
                     solver=solver, **kw)


def profile_em(X, y, sw, state, cfg, backend, sync, m, solver="gram", warm=2):
    """Phase times (s per iteration) and the plain time per iteration."""
    _run(X, y, sw, state, cfg, backend, warm, solver)  # warm-up (compiles)
    ph = Phases(sync)
    ph(None)
    out = _run(X, y, sw, state, cfg, backend, m, solver, timer=ph)
    per = {k: v / m for k, v in ph.acc.items() if k != "setup"}
    plain = []
    for mm in (1, 1 + m):
        sync()
        t0 = time.perf_counter()
        _run(X, y, sw, state, cfg, backend, mm, solver)
        sync()
        plain.append(time.perf_counter() - t0)
    return per, (plain[1] - plain[0]) / m, ph.acc.get("setup", float("nan")), out


def fista_expert_step(X, y, sw, state, cfg, backend, sync):
    """Phases of the FISTA form's first iteration up to its gate step."""
    ph = Phases(sync)

    def timer(name):
        ph(name)
        if name == "variance":
            raise _Stop

    ph(None)
    try:
        _run(X, y, sw, state, cfg, backend, 1, "fista", timer=timer)
    except _Stop:
        pass
    return {k: v for k, v in ph.acc.items() if k != "setup"}


def phase_table(cols):
    """cols: list of (label, per-phase dict, plain s/iter)."""
    head = "| phase | " + " | ".join(c[0] for c in cols) + " |"
    rows = [head, "|---|" + "---:|" * len(cols)]
    for name in PHASES:
        if not any(name in c[1] for c in cols):
            continue
        vals = [f"{1e3 * c[1][name]:.2f}" if name in c[1] else "" for c in cols]
        rows.append(f"| {PHASE_LABEL[name]} | " + " | ".join(vals) + " |")
    rows.append("| **sum of phases (synchronised)** | "
                + " | ".join(f"**{1e3 * sum(c[1].values()):.2f}**" for c in cols) + " |")
    rows.append("| plain ms / iteration (no extra synchronisation) | "
                + " | ".join("" if c[2] is None else f"{1e3 * c[2]:.2f}" for c in cols) + " |")
    return rows


# ------------------------------------------------------------ single ops ---
def micro_ops(name, backend, sync, n, p, K, reps=10):
    """Milliseconds (median of ``reps``) of single operations."""
    from mixstat._backend import to_numpy
    from mixstat.primitives import logsumexp

    xp = backend.xp
    rng = np.random.default_rng(1)
    X = backend.asarray(rng.standard_normal((n, p)))
    A = backend.asarray(rng.uniform(size=(n, K)))
    B = backend.asarray(rng.standard_normal((p, K)))
    w = backend.asarray(rng.uniform(size=n))
    dev = X.device
    ones = xp.ones((n,), dtype=X.dtype, device=dev)
    floor = xp.asarray(0.3, dtype=X.dtype, device=dev)
    Y = A[:, 0:1] * X
    G = X.T @ Y
    small = rng.standard_normal((K, p))
    s0 = xp.sum(w)
    ops = [
        ("sum(A, axis=0), A (n, K)", lambda: xp.sum(A, axis=0)),
        ("ones @ A (gemv), A (n, K)", lambda: ones @ A),
        ("sum(w), w (n,)", lambda: xp.sum(w)),
        ("w @ w (dot), w (n,)", lambda: w @ w),
        ("xp.clip(A, 0.3, None) (array-api-compat)", lambda: xp.clip(A, 0.3, None)),
        ("xp.maximum(A, 0-d array)", lambda: xp.maximum(A, floor)),
        ("logsumexp(A, axis=1) (mixstat)", lambda: logsumexp(A, axis=1)),
        ("A[:, 0:1] * X (n, p)", lambda: A[:, 0:1] * X),
        ("X.T @ Y (one Gram GEMM, n p^2)", lambda: X.T @ Y),
        ("X.T @ (A[:, 0:1] * X) (weighting + GEMM)", lambda: X.T @ (A[:, 0:1] * X)),
        (f"K={K} Grams, loop: X.T @ (A[:, k:k+1] * X) for each k",
         lambda: [X.T @ (A[:, k:k + 1] * X) for k in range(K)]),
        (f"K={K} Grams, one GEMM: X.T @ (A[:, :, None] * X[:, None, :]).reshape(n, K p)",
         lambda: X.T @ xp.reshape(A[:, :, None] * X[:, None, :], (n, K * p))),
        ("X @ B, B (p, K)", lambda: X @ B),
        ("X.T @ A (p, K)", lambda: X.T @ A),
        ("float(0-d array) (read-back)", lambda: float(s0)),
        ("to_numpy((p, p) Gram) (transfer)", lambda: to_numpy(G)),
        ("asarray((K, p) host array) (upload)", lambda: backend.asarray(small)),
    ]
    res = {}
    for label, fn in ops:
        fn()
        fn()
        sync()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
        res[label] = 1e3 * statistics.median(ts)
    return res


# --------------------------------------------------------------- counting ---
def count_ops(X, y, sw, state, cfg, m=3):
    """Per EM iteration on torch CPU: aten ops, scalar read-backs, transfers."""
    import array_api_compat.torch as xpt
    import torch
    from torch.profiler import ProfilerActivity, profile

    import mixstat.moe._em_xp as em_xp
    import mixstat.primitives._gram as gram_mod
    from mixstat import _backend
    from mixstat._backend import resolve_backend

    backend = resolve_backend("torch")
    counts = {}
    orig = {"gram": gram_mod.to_numpy, "em": em_xp.to_numpy, "asarray": xpt.asarray,
            "basarray": _backend.Backend.asarray}

    def counted_to_numpy(a):
        if isinstance(a, torch.Tensor):
            counts["to_host"] = counts.get("to_host", 0) + 1
            counts["to_host_numbers"] = counts.get("to_host_numbers", 0) + a.numel()
        return orig["gram"](a)

    def counted_asarray(a, *args, **kw):
        if isinstance(a, np.ndarray):
            counts["uploads"] = counts.get("uploads", 0) + 1
        return orig["asarray"](a, *args, **kw)

    def counted_basarray(self, a, dtype=None):
        if isinstance(a, np.ndarray):
            counts["uploads"] = counts.get("uploads", 0) + 1
        return orig["basarray"](self, a, dtype)

    out = {}
    gram_mod.to_numpy = em_xp.to_numpy = counted_to_numpy
    xpt.asarray = counted_asarray
    _backend.Backend.asarray = counted_basarray
    try:
        for mm in (1, 1 + m):
            counts.clear()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                _run(X, y, sw, state, cfg, backend, mm, "gram")
            ev = prof.key_averages()
            top = [e for e in ev if e.key.startswith("aten::")]
            # ops that launch work: leaf aten ops (no aten child), i.e. kernels
            leaf = {e.key: e.count for e in top if e.key not in (
                "aten::to", "aten::_to_copy", "aten::matmul", "aten::t", "aten::transpose",
                "aten::view", "aten::as_strided", "aten::reshape", "aten::slice",
                "aten::select", "aten::unsqueeze", "aten::expand", "aten::empty",
                "aten::empty_strided", "aten::detach", "aten::lift_fresh", "aten::alias",
                "aten::result_type", "aten::resolve_conj", "aten::resolve_neg",
                "aten::_unsafe_view", "aten::squeeze", "aten::numpy_T", "aten::item",
                "aten::permute", "aten::broadcast_to", "aten::contiguous", "aten::narrow",
                "aten::concat", "aten::empty_like", "aten::zeros_like", "aten::ones_like",
                "aten::full_like", "aten::zero_", "aten::ones", "aten::zeros", "aten::full",
                )}
            out[mm] = dict(counts, kernels=sum(leaf.values()),
                           read_backs=sum(e.count for e in top
                                          if e.key == "aten::_local_scalar_dense"),
                           by_op=leaf)
    finally:
        gram_mod.to_numpy = orig["gram"]
        em_xp.to_numpy = orig["em"]
        xpt.asarray = orig["asarray"]
        _backend.Backend.asarray = orig["basarray"]
    a, b = out[1], out[1 + m]
    per = {k: (b.get(k, 0) - a.get(k, 0)) / m for k in
           ("kernels", "read_backs", "to_host", "to_host_numbers", "uploads")}
    ops = {k: (b["by_op"].get(k, 0) - a["by_op"].get(k, 0)) / m for k in b["by_op"]}
    return per, ops


# ------------------------------------------------------------------- main ---
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="torch device ('cuda' or 'cpu')")
    ap.add_argument("--backends", nargs="*", default=["torch", "cupy"])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--p", type=int, default=100)
    ap.add_argument("--K", type=int, default=4)
    ap.add_argument("--iters", type=int, default=5, help="timed EM iterations per run")
    ap.add_argument("--n-big", type=int, default=200_000)
    ap.add_argument("--p-big", type=int, default=1000, help="0 skips the p > 512 part")
    ap.add_argument("--p-huge", type=int, default=2000, help="Gram form at this p too (0: no)")
    ap.add_argument("--iters-big", type=int, default=2)
    ap.add_argument("--budget", type=float, default=100.0,
                    help="seconds: a part that would start later is skipped")
    ap.add_argument("--no-micro", action="store_true")
    ap.add_argument("--count", action="store_true",
                    help="count ops and transfers per iteration (torch CPU)")
    ap.add_argument("--out", default=None, help="write the Markdown report here")
    args = ap.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("[gpu_profile] no CUDA device: use --device cpu for a dry run")
        return 2
    cmd = "python benchmarks/gpu_profile.py " + " ".join(sys.argv[1:] if argv is None else argv)
    from gpu_suite import _versions_line

    dev_name = (torch.cuda.get_device_name(0) if args.device == "cuda"
                else f"torch CPU ({os.cpu_count()} cores)")
    rep = Report(args.out, [f"<!-- produced by: {cmd} -->", "",
                            "# Device EM of the Gaussian MoE, phase by phase", "",
                            f"device: {dev_name}", _versions_line(), ""])
    libs = _libs(args.device, args.backends)
    K, n, p, m = args.K, args.n, args.p, args.iters
    failures = 0

    def part(title, fn):
        nonlocal failures
        if elapsed() > args.budget:
            rep.add(f"## {title}", "", f"(skipped: {elapsed():.0f} s elapsed, budget "
                    f"{args.budget:.0f} s)", "")
            return
        print(f"[gpu_profile] {elapsed():.0f} s: {title}", flush=True)
        t0 = time.perf_counter()
        try:
            lines = fn()
        except Exception as exc:  # noqa: BLE001 - reported, the next part runs
            traceback.print_exc()
            failures += 1
            lines = [f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"]
        rep.add(f"## {title}", "", *lines, "", f"({time.perf_counter() - t0:.1f} s; "
                f"{elapsed():.0f} s since start)", "")

    t0 = time.perf_counter()
    X, y, sw, state, cfg = _problem(n, p, K)
    rep.add(f"data: n={n}, p={p}, K={K} ({time.perf_counter() - t0:.1f} s to make); "
            f"Gram form, {m} timed EM iterations after a 2-iteration warm-up; "
            "ms per EM iteration.", "")

    def main_phases():
        cols, notes = [], []
        for name, backend, sync in libs:
            per, plain, setup, out = profile_em(X, y, sw, state, cfg, backend, sync, m)
            cols.append((f"{name} ({backend.device or 'cuda'})", per, plain))
            notes.append(f"{name}: set-up of a run (upload of X, centring, first E-step) "
                         f"{setup:.3f} s; objective after the run {out['objective']:.10f}")
        return phase_table(cols) + [""] + notes

    part(f"Phases of one EM iteration, n={n}, p={p}, K={K}", main_phases)

    if not args.no_micro:
        def micro():
            res = {name: micro_ops(name, b, s, n, p, K) for name, b, s in libs}
            names = list(res)
            rows = ["| operation (ms, median of 10) | " + " | ".join(names) + " |",
                    "|---|" + "---:|" * len(names)]
            for label in next(iter(res.values())):
                rows.append(f"| {label} | " + " | ".join(f"{res[k][label]:.3f}" for k in names)
                            + " |")
            return rows

        part(f"Single operations, n={n}, p={p}, K={K}", micro)

    if args.count:
        def counting():
            Xs, ys, sws, sts, cfgs = _problem(min(n, 20000), p, K)
            per, ops = count_ops(Xs, ys, sws, sts, cfgs)
            rows = ["| per EM iteration (torch CPU, Gram form) | count |", "|---|---:|"]
            # kernels: leaf aten ops that launch work (views, allocations and
            # composite ops left out; approximate); read_backs: float()/item()
            # of a device scalar; to_host: to_numpy calls (each a synchronising
            # copy); uploads: host arrays copied to the device
            rows += [f"| {k} | {v:.1f} |" for k, v in per.items()]
            top = sorted(ops.items(), key=lambda kv: -kv[1])[:12]
            rows += ["", "most frequent ops per iteration: "
                     + ", ".join(f"{k[6:]} {v:.0f}" for k, v in top)]
            return rows

        part("Counts per EM iteration", counting)

    if args.p_big:
        X = y = None  # noqa: F841 - frees the first data set
        nb, pb, mb = args.n_big, max(args.p_big, args.p_huge), args.iters_big
        data = {}

        def big_data():
            # made once, when the first part that needs it starts
            if not data:
                t0 = time.perf_counter()
                data["all"] = _problem(nb, pb, K)
                data["make_s"] = time.perf_counter() - t0
            return data["all"]

        def sub(q):
            Xh, yb, swb, sth, cfgb = big_data()
            stq = copy.deepcopy(sth)
            stq.coef, stq.gate_coef = stq.coef[:, :q].copy(), stq.gate_coef[:, :q].copy()
            return np.ascontiguousarray(Xh[:, :q]), yb, swb, stq, cfgb

        def big():
            Xb, yb, swb, stb, cfgb = sub(args.p_big)
            cols, notes = [], [f"data: n={nb}, p={args.p_big} (the first columns of a "
                               f"p={pb} set made in {data['make_s']:.1f} s); {mb} timed "
                               "iterations after a 1-iteration warm-up"]
            order = [("gram", libs[0]), ("fista", libs[0])] + [("gram", lib) for lib in libs[1:]]
            for form, (name, backend, sync) in order:
                if elapsed() > args.budget:
                    notes.append(f"{name} {form}: skipped (budget)")
                    continue
                if form == "gram":
                    per, plain, setup, _ = profile_em(Xb, yb, swb, stb, cfgb, backend, sync,
                                                      mb, warm=1)
                    cols.append((f"{name} Gram", per, plain))
                else:
                    per = fista_expert_step(Xb, yb, swb, stb, cfgb, backend, sync)
                    cols.append((f"{name} FISTA, experts only (1st iteration)", per, None))
                    notes.append("FISTA column: the first iteration (20 power steps per "
                                 "expert, then 10 FISTA steps) up to its gate step, which runs "
                                 "on the host and is not run here (on the H200 at n=1e6, p=100 "
                                 "the whole FISTA-form iteration took 3.66 s, "
                                 "gpu_suite_h200.md)")
            return phase_table(cols) + [""] + notes

        part(f"p > 512: n={nb}, p={args.p_big}, K={K}", big)
        if args.p_huge:
            def huge():
                Xh, yb, swb, sth, cfgb = sub(args.p_huge)
                name, backend, sync = libs[0]
                per, plain, setup, _ = profile_em(Xh, yb, swb, sth, cfgb, backend, sync, mb,
                                                  warm=1)
                return phase_table([(f"{name} Gram", per, plain)])

            part(f"Gram form at n={nb}, p={args.p_huge}, K={K}", huge)
    rep.add(f"total {elapsed():.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
