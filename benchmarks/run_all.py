"""Run every ``benchmarks/bench_*.py``, each in its own subprocess.

Usage::

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--timeout SECONDS]

``--quick`` is passed through to the scripts that define it (the others run
as they are).
Each script's output is streamed as it runs; at the end a summary lists the
scripts that passed and those that failed (non-zero exit, crash or timeout),
and the exit code is 1 when any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(only=None):
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(o in s.stem for o in only)]
    return scripts


def run_one(script, quick, timeout):
    quick = quick and '"--quick"' in script.read_text()
    cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
    print(f"\n=== {script.name} {'--quick' if quick else ''}".rstrip(), flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=HERE.parent, timeout=timeout)
        status = "ok" if proc.returncode == 0 else f"failed (exit code {proc.returncode})"
    except subprocess.TimeoutExpired:
        status = f"failed (timeout after {timeout:.0f} s)"
    except OSError as exc:
        status = f"failed ({exc})"
    return status, time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="passed to the scripts that define it")
    parser.add_argument("--only", nargs="*", help="run only scripts whose names contain these")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per script (default: no limit)")
    args = parser.parse_args(argv)
    scripts = discover(args.only)
    if not scripts:
        print("no benchmarks/bench_*.py matched", file=sys.stderr)
        return 1
    results = [(s.name, *run_one(s, args.quick, args.timeout)) for s in scripts]
    print("\n=== summary")
    width = max(len(name) for name, _, _ in results)
    for name, status, secs in results:
        print(f"{name.ljust(width)}  {secs:8.1f} s  {status}")
    failed = [name for name, status, _ in results if status != "ok"]
    if failed:
        print(f"\n{len(failed)} of {len(results)} failed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(results)} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
