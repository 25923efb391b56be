"""``mixstat`` command line: ``mixstat demo`` fits every model on built-in data.

Each family contributes a ``_demo.py`` module with a function
``run(out_dir, quick) -> list[dict]``; each dict is one table row with keys
``model``, ``data``, ``fit_time_s``, ``metric`` (a short string such as
``'ARI=0.93'``). Figures go to ``out_dir`` when matplotlib is present.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

DEMOS = [
    "mixstat.moe._demo",
    "mixstat.mpe._demo",
    "mixstat.circuits._demo",
    "mixstat.mixer._demo",
    "mixstat.nn._demo",
]


def _print_table(rows, file=None):
    file = file or sys.stdout
    headers = ["model", "data", "fit time (s)", "headline metric"]
    body = [[r["model"], r["data"], f"{r['fit_time_s']:.3f}", r["metric"]] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line, file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for b in body:
        print("  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)), file=file)


def demo(out_dir="mixstat-demo", quick=False, only=None):
    """Run every family's demo; return the rows of the table."""
    from ._backend import has_module

    if has_module("matplotlib"):
        os.makedirs(out_dir, exist_ok=True)
        import matplotlib

        matplotlib.use("Agg")
    rows = []
    failures = 0
    for name in DEMOS:
        if only and not any(o in name for o in only):
            continue
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # family not built yet
                continue
            print(f"[skip] {name}: {exc}", file=sys.stderr)
            continue
        except ImportError as exc:  # optional dependency missing (torch)
            print(f"[skip] {name}: {exc}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        try:
            rows.extend(mod.run(out_dir if has_module("matplotlib") else None, quick))
        except Exception:  # noqa: BLE001 - report and carry on with the others
            failures += 1
            print(f"[error] {name} failed after {time.perf_counter() - t0:.1f}s:", file=sys.stderr)
            traceback.print_exc()
    return rows, failures


def compile_kernels(file=None):
    """Compile (or load from the cache) every Numba kernel that the estimators
    call, by fitting each on a few rows: the kernels are compiled for the
    argument types that real fits pass, since they are the same calls."""
    import warnings

    import numpy as np

    from ._backend import numba_available

    file = file or sys.stdout
    if not numba_available():
        print("Numba is not installed: nothing to compile (pip install 'mixstat[numba]')",
              file=file)
        return 0
    from .moe import GaussianMoERegressor, GaussianMoERegressorCV
    from .mpe import mixture_proportion

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = X[:, 0] * np.sign(X[:, 1]) + 0.1 * rng.standard_normal(60)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for params in ({}, {"alpha": 0.0, "alpha_gate": 0.0}, {"penalty_power": 0.5},
                       {"gate": "constant"}):
            m = GaussianMoERegressor(2, n_init=2, max_iter=20, random_state=0,
                                     backend="numba", **params).fit(X, y)
        m.refit(X, y)
        GaussianMoERegressorCV(n_components=(1, 2), n_alphas=3, n_init=1, max_iter=20,
                               random_state=0, backend="numba").fit(X, y)
        mixture_proportion(X[:30], X[30:], method="KM2")
        from .primitives import weighted_enet_cd

        for Xo in (X, np.asfortranarray(X)):  # the working-set kernel, both layouts
            weighted_enet_cd(Xo, y, lam1=1.0, tol=1e-6)
    print(f"mixstat: Numba kernels ready ({time.perf_counter() - t0:.1f} s)", file=file)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mixstat", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    p_demo = sub.add_parser("demo", help="fit every model on built-in data and print a table")
    p_demo.add_argument("--out", default="mixstat-demo", help="folder for the figures")
    p_demo.add_argument("--quick", action="store_true", help="smaller data, faster")
    p_demo.add_argument("--only", nargs="*", help="run only the families whose module names contain these")
    sub.add_parser("versions", help="print versions and the backends found")
    sub.add_parser("compile", help="compile the Numba kernels now (once per environment), "
                                   "so that no later fit pauses for it")
    args = parser.parse_args(argv)
    if args.cmd == "compile":
        return compile_kernels()
    if args.cmd == "demo":
        rows, failures = demo(args.out, args.quick, args.only)
        _print_table(rows)
        from ._backend import has_module

        if has_module("matplotlib"):
            print(f"\nfigures written to ./{args.out}/")
        return 1 if failures else 0
    if args.cmd == "versions":
        from ._backend import show_versions

        show_versions()
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
