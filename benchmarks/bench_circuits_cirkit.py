"""mixstat's tensorised squared circuits vs libcirkit 0.3.1, same data and architecture.

Both train a random-binary-tree CP circuit (cirkit ``cp-t``) with K Gaussian
input units per variable, as +-^2 (signed weights, U(0,1) init), +^2
(w = exp theta) and + (monotonic), with Adam lr 5e-3, batch 256, a fixed
number of epochs and the best-validation checkpoint (n = 10,000 train /
1,000 valid / 2,000 test, standardised). Reported: test log-likelihood
(nats per point, standardised units) and median seconds per training epoch.
cirkit runs in float32 (its default); mixstat in float64 (its default) and
float32. One torch thread each.

Run (after setting up the peer venv, see bench_circuits_cirkit_peer.py):

    .venv/bin/python benchmarks/bench_circuits_cirkit.py            # full
    .venv/bin/python benchmarks/bench_circuits_cirkit.py --quick    # smoke

Writes benchmarks/results/circuits_cirkit.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

torch.set_num_threads(1)

from mixstat.datasets import make_circuit_dataset  # noqa: E402
from mixstat.nn.circuits import TensorizedCircuit, random_binary_tree, train_density  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, "envs", "cirkit", "bin", "python")
PEER = os.path.join(HERE, "bench_circuits_cirkit_peer.py")
MODELS = {"npc2": ("signed", True, "+-^2"), "mpc2": ("positive", True, "+^2"), "mpc": ("positive", False, "+")}


def split(name, seed):
    X = make_circuit_dataset(name, 13000, random_state=seed, standardize=False)
    tr, va, te = X[:10000], X[10000:11000], X[11000:]
    mu, sd = tr.mean(0), tr.std(0)
    return [(a - mu) / sd for a in (tr, va, te)]


def run_mixstat(data, model, K, epochs, seed, dtype):
    tr, va, te = data
    w, sq, _ = MODELS[model]
    gen = torch.Generator().manual_seed(seed)
    m = TensorizedCircuit([random_binary_tree(tr.shape[1], seed)], n_units=K, weights=w, squared=sq,
                          dtype=dtype, generator=gen)
    T = [torch.as_tensor(a, dtype=dtype) for a in (tr, va, te)]
    res = train_density(m, T[0], T[1], max_epochs=epochs, batch_size=256, learning_rate=5e-3,
                        early_stopping=False, rng=np.random.default_rng(seed))
    with torch.no_grad():
        te_ll = float(m(T[2]).mean())
    return {"test_ll": te_ll, "epoch_s": float(np.median(res.epoch_times)), "diverged": res.diverged}


def run_peer(path, model, K, epochs, seed):
    if not os.path.exists(PEER_PY):
        raise SystemExit(
            "libcirkit peer missing: python3 -m venv benchmarks/envs/cirkit && "
            "benchmarks/envs/cirkit/bin/pip install torch==2.13.0 && "
            "benchmarks/envs/cirkit/bin/pip install libcirkit==0.3.1"
        )
    out = path + f".{model}.json"
    subprocess.run([PEER_PY, PEER, path, model, str(K), str(epochs), str(seed), out], check=True)
    return json.load(open(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "circuits_cirkit.md"))
    args = ap.parse_args()
    settings = [("rings", 16, 30), ("rings8", 16, 20)]
    if args.quick:
        settings = [("rings", 8, 2), ("rings8", 8, 2)]
    seed = 0
    lines = [
        "| data (D) | K | epochs | model | cirkit test LL | mixstat f64 test LL | mixstat f32 test LL "
        "| cirkit s/epoch | mixstat f64 s/epoch | mixstat f32 s/epoch | speed-up f64 | speed-up f32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, K, epochs in settings:
            data = split(name, seed)
            path = os.path.join(tmp, f"{name}.npz")
            np.savez(path, train=data[0], valid=data[1], test=data[2])
            for model in MODELS:
                t = time.perf_counter()
                p = run_peer(path, model, K, epochs, seed)
                m64 = run_mixstat(data, model, K, epochs, seed, torch.float64)
                m32 = run_mixstat(data, model, K, epochs, seed, torch.float32)
                row = (
                    f"| {name} ({data[0].shape[1]}) | {K} | {epochs} | {MODELS[model][2]} | {p['test_ll']:.3f} "
                    f"| {m64['test_ll']:.3f} | {m32['test_ll']:.3f} | {p['epoch_s']:.3f} | {m64['epoch_s']:.3f} "
                    f"| {m32['epoch_s']:.3f} | {p['epoch_s'] / m64['epoch_s']:.2f}x | {p['epoch_s'] / m32['epoch_s']:.2f}x |"
                )
                lines.append(row)
                print(row, f"  [{time.perf_counter() - t:.0f}s]", flush=True)
    table = "\n".join(lines)
    head = (
        "# mixstat vs libcirkit 0.3.1: tensorised squared circuits\n\n"
        f"Command: `.venv/bin/python benchmarks/bench_circuits_cirkit.py{' --quick' if args.quick else ''}` "
        f"(torch {torch.__version__}, 1 thread each, shared 2-core VM; one seed).\n"
        "Random binary tree, CP layers (cirkit `cp-t`), Gaussian inputs, Adam lr 5e-3, batch 256, "
        "best-validation checkpoint; n = 10,000 / 1,000 / 2,000, standardised; LL in nats per point "
        "(standardised units). Speed-up = cirkit s/epoch / mixstat s/epoch.\n\n"
    )
    if not args.quick:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(head + table + "\n")
    print(table)


if __name__ == "__main__":
    sys.exit(main())
