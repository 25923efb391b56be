"""One prepared script for a CUDA machine: GPU tests and GPU benchmarks in a few minutes.

Usage (from the repository root, with a CUDA build of torch)::

    python benchmarks/gpu_suite.py              # every section
    python benchmarks/gpu_suite.py --only nn    # sections whose name contains 'nn'
    python benchmarks/gpu_suite.py --list
    python benchmarks/gpu_suite.py --cpu-only   # no GPU: the CPU halves at tiny sizes

The sections ``moe_em``, ``mpe_kernel_mean`` and ``circuit_epoch`` time the
same computation on the CPU and on the GPU in this one run and add a row to the
final table of ratios (CPU seconds / GPU seconds). ``--cpu-only`` runs only
their CPU halves, at tiny sizes, to check the script on a machine without a
GPU (the GPU-only sections are then skipped).

It installs ``cupy-cuda12x`` with pip when it is missing (and goes on without
it when that fails, e.g. offline), runs the ``gpu``-marked tests, then each
benchmark section, and prints one summary table. Exit status 0 only when every
section that ran passed (skipped sections do not fail the run).

Adding a section: write ``def section_<name>(ctx) -> str`` that returns a
Markdown table (or raises :class:`Skip` with a reason), and append
``Section(name, function, requires=("mixstat.<module>", ...))`` to
``SECTIONS``. A section whose ``requires`` modules are absent is skipped with a
message; an exception marks it FAILED and the suite carries on.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


# the device of the GPU rows (a local dry run of the GPU code paths may set "cpu")
GPU = "cuda"


class Skip(Exception):
    """Raised by a section that cannot run here (the message says why)."""


@dataclass
class Section:
    name: str
    func: object
    requires: tuple = ()
    note: str = ""
    cpu_half: bool = False  # runs its CPU half under --cpu-only


@dataclass
class Context:
    quick: bool = False
    cpu_only: bool = False
    results: dict = field(default_factory=dict)
    ratios: list = field(default_factory=list)

    def add_ratio(self, section, task, cpu_s, gpu_s, check=""):
        """One row of the final table: CPU and GPU seconds of the same task."""
        self.ratios.append((section, task, cpu_s, gpu_s, check))


def _cuda_ok():
    import torch

    return torch.cuda.is_available()


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _module_present(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------
# setup
# --------------------------------------------------------------------------


def ensure_cupy():
    """Install cupy-cuda12x when missing; return a one-line status."""
    if _module_present("cupy"):
        import cupy

        return f"cupy {cupy.__version__} present (is_available={cupy.is_available()})"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "cupy-cuda12x"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cupy missing; `{' '.join(cmd)}` failed: {exc}"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
        return f"cupy missing; pip install failed (offline?): {tail[0]}"
    importlib.invalidate_caches()
    return "cupy-cuda12x installed"


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------


def section_gpu_tests(ctx):
    """pytest -m gpu over the whole test tree (each family marks its GPU tests)."""
    cmd = [sys.executable, "-m", "pytest", "tests", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-x"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    tail = "\n".join(r.stdout.strip().splitlines()[-15:])
    print(tail)
    if r.returncode not in (0, 5):  # 5: nothing collected
        raise AssertionError(f"GPU tests failed (exit {r.returncode}):\n{tail}\n{r.stderr[-2000:]}")
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "no output"
    return f"`{' '.join(cmd[2:])}`: {last} ({time.perf_counter() - t0:.0f} s)"


def section_nn_dispatch(ctx):
    """MoE dispatch (grouped_mm vs loops vs dense) on CUDA, bf16 and float32."""
    import torch

    import bench_nn_dispatch as b

    configs = b.GPU_CONFIGS[:1] + b.QUICK if ctx.quick else b.GPU_CONFIGS + b.CONFIGS[:2]
    tables = []
    for dtype in (torch.bfloat16, torch.float32):
        tables.append(b.run("cuda", dtype, configs, repeats=5 if ctx.quick else 10,
                            skip_dense_above=2**21))
    # which path MoELayer picks on this GPU
    from mixstat.nn import MoELayer

    picks = []
    for dtype in (torch.bfloat16, torch.float32, torch.float64):
        layer = MoELayer(64, 128, 8, k=2, device="cuda", dtype=dtype)
        layer(torch.randn(32, 64, device="cuda", dtype=dtype))
        picks.append(f"{str(dtype).split('.')[-1]}: {layer.last_dispatch}")
    return "\n\n".join(tables) + "\n\nMoELayer(dispatch='auto') runs: " + ", ".join(picks)


def _nn_sync_count(layer, x, device):
    """Host syncs in one forward+backward: CUDA sync-debug warnings on a GPU,
    the dispatch-mode counter of the tests elsewhere."""
    import warnings

    import torch

    def step():
        (layer(x).float().sum() + layer.aux_loss.float()).backward()

    step()  # warm-up: kernel probes, allocator
    if device == "cuda":
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                step()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)
    sys.path.insert(0, os.path.join(ROOT, "tests", "nn"))
    from test_moe_compile import SyncCounter

    with SyncCounter() as c:
        step()
    return len(c.syncs)


def _nn_graph_breaks(layer, x):
    import torch

    torch._dynamo.reset()
    try:
        return str(torch._dynamo.explain(layer)(x).graph_break_count)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"error: {type(exc).__name__}"


def _nn_cuda_graph(layer, x):
    """Capture forward+backward in CUDA graphs (make_graphed_callables)."""
    import torch

    if x.device.type != "cuda":
        return "n/a (cpu)"
    try:
        graphed = torch.cuda.make_graphed_callables(layer, (x,))
        y = graphed(x)
        y.float().sum().backward()
        torch.cuda.synchronize()
        return "captured"
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"


def section_nn_training(ctx):
    """MoELayer fit for training: host syncs, compile graph breaks, CUDA-graph capture, fwd+bwd
    against a dense MLP of the same active FLOPs (and megablocks' grouped_gemm if installed)."""
    import torch

    import bench_nn_dispatch as b
    from mixstat.nn import MoELayer

    device = GPU
    n, d, h, E = (1024, 256, 512, 8) if ctx.quick else (8192, 1024, 1024, 16)
    rows = ["| router | dtype | syncs fwd+bwd | graph breaks | CUDA graph |",
            "|---|---|---|---|---|"]
    for router, k, cf in (("topk", 2, None), ("topk", 2, 1.25), ("sparsemixer", 2, None),
                          ("expert_choice", 2, 2.0)):
        for dtype in (torch.bfloat16, torch.float32):
            torch.manual_seed(0)
            layer = MoELayer(d, h, E, k=k, router=router, capacity_factor=cf,
                             device=device, dtype=dtype)
            x = torch.randn(n, d, device=device, dtype=dtype, requires_grad=True)
            syncs = _nn_sync_count(layer, x, device)
            breaks = _nn_graph_breaks(layer, x.detach())
            graph = _nn_cuda_graph(layer, x.detach().requires_grad_(True))
            name = router + ("" if cf is None else f" cf={cf}")
            rows.append(f"| {name} | {str(dtype).split('.')[-1]} | {syncs} | {breaks} | {graph} |")
    tables = ["\n".join(rows)]
    configs = [(n, d, h, 8, 2), (n, d, h, 16, 2)] if ctx.quick else [
        (8192, 1024, 2048, 8, 2), (8192, 1024, 1024, 16, 2), (16384, 1024, 1024, 64, 4)]
    for dtype in (torch.bfloat16,) if device == "cuda" else (torch.float32,):
        vs = [b.bench_layer_vs_dense(c, torch.device(device), dtype, 5 if ctx.quick else 15,
                                     dispatches=("auto", "padded")) for c in configs]
        tables.append(b.format_vs_dense(vs, f"MoELayer vs dense MLP on {device}, {dtype}"))
    try:
        import grouped_gemm  # noqa: F401  (megablocks' grouped GEMM)
    except ImportError:
        tables.append("megablocks `grouped_gemm`: not installed, no comparison.")
    else:
        tables.append(_nn_vs_grouped_gemm(configs, device))
    return "\n\n".join(tables)


def _nn_vs_grouped_gemm(configs, device):
    """Expert GEMMs only: mixstat's grouped op against grouped_gemm.ops.gmm (bf16)."""
    import torch
    from grouped_gemm.ops import gmm

    from mixstat.nn._grouped import grouped_linear

    lines = ["| tokens, d, hidden, E, k | mixstat fwd+bwd ms | grouped_gemm fwd+bwd ms |",
             "|---|---|---|"]
    for n, d, h, E, k in configs:
        M = n * k
        x = torch.randn(M, d, device=device, dtype=torch.bfloat16, requires_grad=True)
        w = torch.randn(E, d, h, device=device, dtype=torch.bfloat16, requires_grad=True)
        sizes = torch.full((E,), M // E, dtype=torch.int64)
        sizes[-1] += M - int(sizes.sum())
        offs = sizes.cumsum(0).to(device=device, dtype=torch.int32)

        def ours():
            grouped_linear(x, w, offs).float().sum().backward()

        def theirs():
            gmm(x, w, sizes).float().sum().backward()

        times = []
        for fn in (ours, theirs):
            fn()
            _sync()
            best = float("inf")
            for _ in range(10):
                t0 = time.perf_counter()
                fn()
                _sync()
                best = min(best, time.perf_counter() - t0)
            times.append(best * 1e3)
        lines.append(f"| {n}, {d}, {h}, {E}, {k} | {times[0]:.2f} | {times[1]:.2f} |")
    return "\n".join(lines)


def section_nn_samplers(ctx):
    """GMFlow GM-SDE/ODE sampling and immiscible assignment throughput on CUDA."""
    import torch

    from mixstat.nn import GaussianMixture, gmflow_sample, immiscible_assignment

    dev = torch.device("cuda")
    rows = ["| task | size | ms |", "|---|---|---|"]
    for B in (1024, 4096):
        x = torch.randn(B, 3 * 32 * 32, device=dev)
        noise = torch.randn_like(x)
        immiscible_assignment(x, noise)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = immiscible_assignment(x, noise)
        torch.cuda.synchronize()
        assert torch.equal(torch.sort(perm).values, torch.arange(B, device=dev))
        rows.append(f"| immiscible assignment (fp16 cdist on GPU + scipy LSA) | batch {B}, dim 3072 | "
                    f"{(time.perf_counter() - t0) * 1e3:.1f} |")
    K, C, B = 64, 2, 65536
    means = torch.randn(K, C, device=dev) * 2

    def model(x_t, s):
        logw = torch.full((x_t.shape[0], K), -math.log(K), device=dev)
        return GaussianMixture(x_t[:, None, :] - means[None], logw,
                               torch.full((x_t.shape[0], 1), -1.0, device=dev))

    for sampler in ("sde", "ode"):
        x = torch.randn(B, C, device=dev)
        gmflow_sample(model, x, 2, sampler=sampler, n_substeps=4)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = gmflow_sample(model, x, 8, sampler=sampler, n_substeps=4)
        torch.cuda.synchronize()
        assert torch.isfinite(out).all()
        rows.append(f"| GMFlow {sampler.upper()} sampler, K={K}, 8 steps | batch {B}, C={C} | "
                    f"{(time.perf_counter() - t0) * 1e3:.1f} |")
    return "\n".join(rows)


# --- GPU against CPU in the same run ---------------------------------------


def _moe_data(n, p, K, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((K, p))
    W[:, :2] = rng.normal(0, 2, (K, 2))
    B = np.zeros((K, p))
    B[:, :5] = rng.normal(0, 2, (K, 5))
    z = np.argmax(X @ W.T + rng.gumbel(size=(n, K)), axis=1)
    y = np.einsum("ij,ij->i", X, B[z]) + 0.5 * rng.standard_normal(n)
    return X, y


def _moe_warm_time(base, X, y, backend, iters, fit_args=None):
    """Seconds per EM iteration of ``backend``, from the fitted ``base``:
    warm-started fits of 1 and 1 + ``iters`` iterations (tol=0), so that the
    initialisation, the validation and the host-device copies cancel out."""
    import copy
    import warnings

    out = {}
    for m in (0, 1, 1 + iters):  # m=0: an untimed warm-up fit of one iteration
        est = copy.deepcopy(base)
        est.set_params(backend=backend, warm_start=True, max_iter=max(m, 1), tol=0.0)
        Xa, ya = (X, y) if fit_args is None else fit_args
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _sync()
            t0 = time.perf_counter()
            est.fit(Xa, ya)
            _sync()
        out[m] = (time.perf_counter() - t0, est.n_iter_, est.log_likelihood_, est.backend_)
    (ta, ia, _, _), (tb, ib, ll, name) = out[1], out[1 + iters]
    if ib - ia != iters:
        raise AssertionError(f"{backend}: {ib - ia} EM iterations ran, {iters} expected")
    return (tb - ta) / iters, ll, name


def _moe_profile(base, X, y):
    """torch.profiler table of one warm EM iteration on CUDA (top device ops)."""
    import copy
    import warnings

    import torch
    from torch.profiler import ProfilerActivity, profile

    from mixstat import config_context

    est = copy.deepcopy(base)
    est.set_params(backend="torch", warm_start=True, max_iter=2, tol=0.0)
    with warnings.catch_warnings(), config_context(device=GPU):
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            est.fit(X, y)
            torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=10, max_name_column_width=40)


def section_moe_em(ctx):
    """Gaussian MoE, EM time per iteration: GPU (torch, cupy) vs CPU (numba) at n=1e6, p=100, K=4."""
    import warnings

    from mixstat import config_context
    from mixstat._backend import cupy_device_available, numba_available
    from mixstat.moe import GaussianMoERegressor

    if ctx.cpu_only:
        n, p, iters = 3000, 10, 3
    else:
        n, p, iters = (200_000, 100, 3) if ctx.quick else (1_000_000, 100, 4)
    X, y = _moe_data(n, p, 4)
    cpu_backend = "numba" if numba_available() else "numpy"
    if numba_available():  # compile the kernels outside the timing
        Xs, ys = _moe_data(500, p, 4, seed=1)
        small = GaussianMoERegressor(4, n_init=1, init="random", max_iter=2, random_state=0,
                                     backend=cpu_backend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            small.fit(Xs, ys)
        _moe_warm_time(small, Xs, ys, cpu_backend, 1)
    # one initialisation (host), shared by every row: each row starts from it
    base = GaussianMoERegressor(4, n_init=1, init="random", max_iter=1, tol=0.0,
                                random_state=0, backend=cpu_backend)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base.fit(X, y)
    t_init = time.perf_counter() - t0
    t_cpu, ll_cpu, _ = _moe_warm_time(base, X, y, cpu_backend, iters)
    rows = ["| backend | s / EM iteration | timed iterations | log-lik / n after them |",
            "|---|---|---|---|",
            f"| {cpu_backend} (CPU) | {t_cpu:.4f} | {iters} | {ll_cpu / n:.8f} |"]
    gpu_rows = []
    if (not ctx.cpu_only and _cuda_ok()) or GPU != "cuda":
        import torch

        gpu_rows.append(("torch, NumPy in, backend='torch' (Gram form)", "torch", None, None))
        gpu_rows.append(("torch, CUDA tensors in (Gram form)", None,
                         lambda: (torch.as_tensor(X, device=GPU),
                                  torch.as_tensor(y, device=GPU)), None))
        if cupy_device_available():
            gpu_rows.append(("cupy, NumPy in, backend='cupy' (Gram form)", "cupy", None, None))
        gpu_rows.append(("torch, FISTA form (10 steps / expert, host gate)", "torch", None,
                         "fista"))
    failures = []
    from mixstat.moe import _em_xp

    # a GPU iteration costs milliseconds: more of them, so that the variation of
    # the fixed costs (validation, copies of X), divided by their number, stays small
    gpu_iters = 5 * iters
    for label, b, make_args, form in gpu_rows:
        old = _em_xp._GRAM_MAX_FEATURES
        it_row = iters if form == "fista" else gpu_iters
        try:
            if form == "fista":
                _em_xp._GRAM_MAX_FEATURES = 0
            args = make_args() if make_args is not None else None
            with config_context(device=GPU):
                t_gpu, ll_gpu, name = _moe_warm_time(base, X, y, b, it_row, args)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            traceback.print_exc()
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            rows.append(f"| {label} (GPU) | FAILED: {msg} | |")
            failures.append(label)
            continue
        finally:
            _em_xp._GRAM_MAX_FEATURES = old
        rows.append(f"| {label} (GPU, backend_={name!r}) | {t_gpu:.4f} | {it_row} | "
                    f"{ll_gpu / n:.8f} |")
        same = "" if it_row == iters else f" (after {it_row} iterations, CPU after {iters})"
        ctx.add_ratio("moe_em", f"GaussianMoE EM iteration, n={n}, p={p}, K=4, {label}",
                      t_cpu, t_gpu, f"log-lik/n diff {abs(ll_gpu - ll_cpu) / n:.1e}{same}")
    if not gpu_rows:
        ctx.add_ratio("moe_em", f"GaussianMoE EM iteration, n={n}, p={p}, K=4", t_cpu, None,
                      "CPU half only")
    out = (f"n={n}, p={p}, K=4; one host initialisation (init='random', {t_init:.1f} s), then "
           "for each row warm-started fits of 1 and 1+m EM iterations (tol=0), after an "
           "untimed warm-up fit: s / iteration = difference / m (validation, copies and "
           "initialisation cancel)\n\n" + "\n".join(rows))
    if gpu_rows and len(failures) < len(gpu_rows):
        try:
            out += ("\n\ntorch.profiler, one warm EM iteration plus the set-up of the fit "
                    "(torch, Gram form), top device ops:\n\n```\n" + _moe_profile(base, X, y)
                    + "\n```")
        except Exception as exc:  # noqa: BLE001 - the profile is optional
            out += f"\n\n(profile failed: {type(exc).__name__}: {exc})"
    if failures and len(failures) == len(gpu_rows):
        raise AssertionError("every GPU backend failed:\n" + out)
    return out


def section_moe_profile(ctx):
    """Gaussian MoE device EM phase by phase (torch vs CuPy), single ops, p > 512 (gpu_profile.py)."""
    import tempfile

    import gpu_profile

    if ctx.cpu_only:
        args = ["--device", "cpu", "--backends", "torch", "--n", "5000", "--n-big", "1500",
                "--p-big", "600", "--p-huge", "0", "--iters", "2", "--iters-big", "1",
                "--no-micro"]
    else:
        args = ["--n", "200000", "--p-huge", "0"] if ctx.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gpu_profile.md")
        rc = gpu_profile.main(args + ["--out", path])
        with open(path) as fh:
            lines = fh.read().splitlines()
    # its own header (command, device, versions) is the suite's
    start = next((i for i, line in enumerate(lines) if line.startswith("data:")), 0)
    text = f"`gpu_profile.py {' '.join(args)}`\n\n" + "\n".join(lines[start:])
    if rc:
        raise AssertionError("a part of gpu_profile.py failed:\n" + text)
    return text


def section_mpe_kernel_mean(ctx):
    """KernelMeanMPE at m=n=2e4: kernel matrices on the GPU (torch) vs CPU, same estimate."""
    import numpy as np

    from mixstat.datasets import make_sumpe_synthetic
    from mixstat.mpe import KernelMeanMPE
    from mixstat.mpe._kernel_mean import mmd_width, nystroem_features

    m = 150 if ctx.cpu_only else (5000 if ctx.quick else 20_000)
    d = make_sumpe_synthetic(0.3, n_component=m, n_mixture=m, random_state=0)
    runs = [("cpu", "numpy")]
    if not ctx.cpu_only and _cuda_ok():
        runs.append(("cuda", "torch"))
    res = {}
    factors = np.array([0.1, 10**-0.5, 1.0, 10**0.5, 10.0])
    # compile the Numba QP kernel outside the timings (both rows use it)
    warm = make_sumpe_synthetic(0.3, n_component=100, n_mixture=100, random_state=2)
    KernelMeanMPE(backend="numpy", random_state=0).fit(warm.X, warm.y)
    for dev, backend in runs:
        import torch

        from mixstat import config_context

        X = d.X if dev == "cpu" else torch.as_tensor(d.X, device=dev)
        Xh, Xf = (d.X[d.y == 1], d.X[d.y == 0]) if dev == "cpu" else \
            (X[torch.as_tensor(d.y == 1, device=dev)], X[torch.as_tensor(d.y == 0, device=dev)])
        # kernel stage alone: MMD width grid + Nystroem block K_{n,r}, r=2000
        nystroem_features(X[:100], 1.0, 50, np.random.RandomState(0))  # warm-up
        _sync()
        t0 = time.perf_counter()
        w = mmd_width(Xh, Xf, factors, np.random.RandomState(0))
        Z = nystroem_features(X, w, 2000, np.random.RandomState(0))
        _sync()
        t_kernel = time.perf_counter() - t0
        del Z
        with config_context(device=dev if backend == "torch" else None):
            est = KernelMeanMPE("KM2", backend=backend, random_state=0)
            t0 = time.perf_counter()
            est.fit(d.X, d.y)
            _sync()
            t_fit = time.perf_counter() - t0
        res[dev] = (t_kernel, t_fit, est)
    kc, fc, ec = res["cpu"]
    rows = ["| device | kernel stage s (width grid + K_{n,2000}) | full fit s | KM2 estimate | "
            "approximation |", "|---|---|---|---|---|",
            f"| cpu (numpy) | {kc:.3f} | {fc:.2f} | {ec.proportion_:.6f} | {ec.approximation_} |"]
    if "cuda" in res:
        kg, fg, eg = res["cuda"]
        rows.append(f"| cuda (torch) | {kg:.3f} | {fg:.2f} | {eg.proportion_:.6f} | "
                    f"{eg.approximation_} |")
        diff = abs(eg.proportion_ - ec.proportion_)
        ctx.add_ratio("mpe_kernel_mean", f"KernelMeanMPE kernel stage, m=n={m}", kc, kg)
        ctx.add_ratio("mpe_kernel_mean", f"KernelMeanMPE full fit, m=n={m}", fc, fg,
                      f"|kappa diff| {diff:.1e}")
        if diff > 1e-3:
            raise AssertionError(f"GPU and CPU estimates differ by {diff:.3g}")
        # device arrays in: the namespace picks torch, fitted values come back as floats
        import torch

        small = make_sumpe_synthetic(0.3, n_component=1000, n_mixture=1000, random_state=1)
        ref = KernelMeanMPE(random_state=0, backend="numpy").fit(small.X, small.y)
        dev = KernelMeanMPE(random_state=0).fit(torch.as_tensor(small.X, device="cuda"),
                                                torch.as_tensor(small.y, device="cuda"))
        if dev.backend_ != "torch" or not isinstance(dev.proportion_, float) or \
                abs(dev.proportion_ - ref.proportion_) > 1e-6:
            raise AssertionError(f"CUDA tensors in: backend_={dev.backend_}, "
                                 f"{dev.proportion_} vs NumPy {ref.proportion_}")
        rows.append(f"\nCUDA tensors in (m=n=1000): backend_={dev.backend_!r}, estimate "
                    f"{dev.proportion_:.6f} = NumPy {ref.proportion_:.6f}")
    else:
        ctx.add_ratio("mpe_kernel_mean", f"KernelMeanMPE full fit, m=n={m}", fc, None,
                      "CPU half only")
    return ("The QPs (Wolfe's algorithm) run on the host on both rows; the GPU computes "
            "the kernel matrices.\n\n" + "\n".join(rows))


def section_circuit_epoch(ctx):
    """SquaredCircuitDensity: training epochs on 2-D points, device='cuda' vs 'cpu', batch 256 and 4096."""
    import warnings

    import numpy as np

    from mixstat.circuits import SquaredCircuitDensity

    devices = ["cpu"] + (["cuda"] if not ctx.cpu_only and _cuda_ok() else [])
    rows = ["| points | batch | device | s / epoch | mean log-lik after 3 epochs |",
            "|---|---|---|---|---|"]
    for n, batch in ((1000, 256), (4000, 1024)) if ctx.cpu_only else ((10_000, 256),
                                                                      (100_000, 4096)):
        rng = np.random.default_rng(0)
        X = np.r_[rng.normal(-2, 0.7, (n // 2, 2)), rng.normal(2, 1.0, (n - n // 2, 2))]
        res = {}
        for dev in devices:
            est = SquaredCircuitDensity(max_epochs=3, early_stopping=False, device=dev,
                                        batch_size=batch, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X)
            # epoch 1 holds the warm-up (CUDA context, kernels): the later epochs are timed
            res[dev] = (float(np.median(est.epoch_times_[1:])), float(est.score(X)))
            rows.append(f"| {n} | {batch} | {dev} | {res[dev][0]:.4f} | {res[dev][1]:.4f} |")
        tc, lc = res["cpu"]
        task = f"SquaredCircuitDensity epoch, n={n}, 2-D, batch {batch}"
        if "cuda" in res:
            tg, lg = res["cuda"]
            ctx.add_ratio("circuit_epoch", task, tc, tg, f"log-lik diff {abs(lg - lc):.1e}")
        else:
            ctx.add_ratio("circuit_epoch", task, tc, None, "CPU half only")
    return "default SquaredCircuitDensity (float64)\n\n" + "\n".join(rows)


SECTIONS = [
    Section("nn_dispatch", section_nn_dispatch, requires=("mixstat.nn.moe",)),
    Section("nn_training", section_nn_training, requires=("mixstat.nn.moe",)),
    Section("nn_samplers", section_nn_samplers, requires=("mixstat.nn.diffusion",)),
    Section("moe_em", section_moe_em, requires=("mixstat.moe",), cpu_half=True),
    Section("moe_profile", section_moe_profile, requires=("mixstat.moe", "torch"),
            cpu_half=True),
    Section("mpe_kernel_mean", section_mpe_kernel_mean, requires=("mixstat.mpe", "torch"),
            cpu_half=True),
    Section("circuit_epoch", section_circuit_epoch, requires=("mixstat.circuits", "torch"),
            cpu_half=True),
    # last: the benchmarks' tables come back even if the test run is slow
    Section("gpu_tests", section_gpu_tests, requires=("pytest",)),
]


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------


def _versions_line():
    import datetime
    import platform

    parts = [datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             f"python {platform.python_version()}", f"{os.cpu_count()} CPU cores"]
    for mod in ("numpy", "numba", "cupy", "sklearn", "array_api_compat", "torch"):
        if _module_present(mod):
            m = importlib.import_module(mod)
            parts.append(f"{mod} {getattr(m, '__version__', '?')}")
        else:
            parts.append(f"{mod} absent")
    return "date and versions: " + ", ".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run the sections whose names contain these")
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="do not pip install cupy")
    ap.add_argument("--out", default=None, help="also write the report (Markdown) here")
    ap.add_argument("--cpu-only", action="store_true",
                    help="no GPU: run the CPU halves of the GPU-vs-CPU sections at tiny sizes")
    args = ap.parse_args(argv)
    if args.list:
        for s in SECTIONS:
            print(f"{s.name}: {(s.func.__doc__ or '').strip().splitlines()[0]}")
        return 0
    import torch

    if not torch.cuda.is_available() and not args.cpu_only:
        print(f"[gpu_suite] no CUDA device visible to torch {torch.__version__}: nothing to run "
              "(--cpu-only runs the CPU halves)")
        return 2
    if args.cpu_only:
        header = ["# GPU suite (--cpu-only: CPU halves at tiny sizes, no GPU timings)", "",
                  f"torch {torch.__version__}, CUDA visible: {torch.cuda.is_available()}"]
    else:
        header = [
            "# GPU suite",
            "",
            f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}",
        ]
    if not args.no_install and not args.cpu_only:
        header.append(ensure_cupy())
    header.insert(0, "<!-- produced by: python " + " ".join(
        [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:] if argv is None else
        ["benchmarks/gpu_suite.py", *argv]) + " -->")
    header.append(_versions_line())
    print("\n".join(header), flush=True)
    ctx = Context(quick=args.quick, cpu_only=args.cpu_only)
    summary = []
    report = list(header)
    for s in SECTIONS:
        if args.only and not any(o in s.name for o in args.only):
            continue
        missing = [m for m in s.requires if not _module_present(m)]
        if args.cpu_only and not s.cpu_half:
            msg = "needs CUDA (--cpu-only)"
            print(f"[skip] {s.name}: {msg}", flush=True)
            summary.append((s.name, "skipped", 0.0, msg))
            continue
        if missing:
            msg = f"module(s) absent: {', '.join(missing)}"
            print(f"[skip] {s.name}: {msg}", flush=True)
            summary.append((s.name, "skipped", 0.0, msg))
            continue
        print(f"\n== {s.name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            out = s.func(ctx)
            status, note = "ok", ""
            print(out, flush=True)
            report += ["", f"## {s.name}", "", out]
        except Skip as exc:
            status, note = "skipped", str(exc)
            print(f"[skip] {s.name}: {exc}", flush=True)
        except Exception as exc:  # noqa: BLE001 - report and continue
            status, note = "FAILED", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            traceback.print_exc()
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        summary.append((s.name, status, time.perf_counter() - t0, note))
    lines = ["", "## summary", "", "| section | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {n} | {st} | {sec:.1f} | {note} |" for n, st, sec, note in summary]
    if ctx.ratios:
        lines += ["", "## GPU vs CPU (same script, same run)", "",
                  "| section | task | CPU s | GPU s | CPU / GPU | check |", "|---|---|---|---|---|---|"]
        for sec, task, tc, tg, check in ctx.ratios:
            g = "n/a" if tg is None else f"{tg:.4f}"
            r = "n/a" if tg is None or tg <= 0 else f"{tc / tg:.1f}x"
            lines.append(f"| {sec} | {task} | {tc:.4f} | {g} | {r} | {check} |")
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(report + lines) + "\n")
    return 1 if any(st == "FAILED" for _, st, _, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
