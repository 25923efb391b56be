"""One prepared script for a CUDA machine: GPU tests and GPU benchmarks in a few minutes.

Usage (from the repository root, with a CUDA build of torch)::

    python benchmarks/gpu_suite.py              # every section
    python benchmarks/gpu_suite.py --only nn    # sections whose name contains 'nn'
    python benchmarks/gpu_suite.py --list

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


class Skip(Exception):
    """Raised by a section that cannot run here (the message says why)."""


@dataclass
class Section:
    name: str
    func: object
    requires: tuple = ()
    note: str = ""


@dataclass
class Context:
    quick: bool = False
    results: dict = field(default_factory=dict)


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
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
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


SECTIONS = [
    Section("nn_dispatch", section_nn_dispatch, requires=("mixstat.nn.moe",)),
    Section("gpu_tests", section_gpu_tests, requires=("pytest",)),
    Section("nn_samplers", section_nn_samplers, requires=("mixstat.nn.diffusion",)),
]


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run the sections whose names contain these")
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-install", action="store_true", help="do not pip install cupy")
    ap.add_argument("--out", default=None, help="also write the report (Markdown) here")
    args = ap.parse_args(argv)
    if args.list:
        for s in SECTIONS:
            print(f"{s.name}: {(s.func.__doc__ or '').strip().splitlines()[0]}")
        return 0
    import torch

    if not torch.cuda.is_available():
        print(f"[gpu_suite] no CUDA device visible to torch {torch.__version__}: nothing to run")
        return 2
    header = [
        "# GPU suite",
        "",
        f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}",
    ]
    if not args.no_install:
        header.append(ensure_cupy())
    print("\n".join(header), flush=True)
    ctx = Context(quick=args.quick)
    summary = []
    report = list(header)
    for s in SECTIONS:
        if args.only and not any(o in s.name for o in args.only):
            continue
        missing = [m for m in s.requires if not _module_present(m)]
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
            torch.cuda.empty_cache()
        summary.append((s.name, status, time.perf_counter() - t0, note))
    lines = ["", "## summary", "", "| section | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {n} | {st} | {sec:.1f} | {note} |" for n, st, sec, note in summary]
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(report + lines) + "\n")
    return 1 if any(st == "FAILED" for _, st, _, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
