"""Peer runner for bench_circuits_cirkit.py: trains a libcirkit 0.3.1 circuit.

Runs ONLY inside the peer's own venv (libcirkit is GPL-3; mixstat never imports
it). Set up with:

    python3 -m venv benchmarks/envs/cirkit
    benchmarks/envs/cirkit/bin/pip install torch==2.13.0
    benchmarks/envs/cirkit/bin/pip install libcirkit==0.3.1

Usage: bench_circuits_cirkit_peer.py DATA.npz MODEL K EPOCHS SEED OUT.json
MODEL: npc2 (+-^2, real weights U(0,1)), mpc2 (+^2, w = exp theta), mpc (+).
Protocol: Adam lr 5e-3, batch 256, float32, best-validation checkpoint; the
test log-likelihood (standardised units) of the best epoch is reported.
"""

import json
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)


def region_tree(rg):
    """The region graph as nested lists (a leaf is its variable), so that
    mixstat can be run on the very same tree."""
    def walk(region):
        parts = rg.region_inputs(region)
        if not parts:
            return int(next(iter(region.scope)))
        (part,) = parts  # a tree: one partition per region
        return [walk(r) for r in rg.partition_inputs(part)]
    (root,) = rg.outputs
    return walk(root)


def main():
    data, model, K, epochs, seed, out = sys.argv[1:7]
    K, epochs, seed = int(K), int(epochs), int(seed)
    import cirkit.symbolic.functional as SF
    from cirkit.pipeline import PipelineContext, compile
    from cirkit.symbolic.initializers import UniformInitializer
    from cirkit.symbolic.layers import GaussianLayer
    from cirkit.symbolic.parameters import ExpParameter, Parameter, TensorParameter
    from cirkit.templates.region_graph import RandomBinaryTree

    d = np.load(data)
    Xtr, Xva, Xte = (torch.as_tensor(d[k], dtype=torch.float32) for k in ("train", "valid", "test"))
    D = Xtr.shape[1]
    torch.manual_seed(seed)
    rg = RandomBinaryTree(D, seed=seed)
    if model == "npc2":
        def wf(shape):
            return Parameter.from_input(TensorParameter(*shape, initializer=UniformInitializer(0.0, 1.0)))
    else:
        def wf(shape):
            return Parameter.from_unary(ExpParameter(shape), TensorParameter(*shape, initializer=UniformInitializer(-2.0, 0.0)))
    tree = region_tree(rg)
    sc = rg.build_circuit(
        input_factory=lambda scope, n: GaussianLayer(scope, n),
        sum_product="cp-t", sum_weight_factory=wf, num_input_units=K, num_sum_units=K,
    )
    t0 = time.perf_counter()
    if model == "mpc":
        with PipelineContext(backend="torch", semiring="lse-sum", fold=True, optimize=True):
            c = compile(sc)
            logz_c = compile(SF.integrate(sc))
        mult = 1.0
    else:
        semiring = "complex-lse-sum" if model == "npc2" else "lse-sum"
        with PipelineContext(backend="torch", semiring=semiring, fold=True, optimize=True):
            c = compile(sc)
            logz_c = compile(SF.integrate(SF.multiply(sc, sc)))
        mult = 2.0
    compile_s = time.perf_counter() - t0
    params = list(c.parameters()) + [p for p in logz_c.parameters() if all(p is not q for q in c.parameters())]
    opt = torch.optim.Adam(params, lr=5e-3)

    def ll(x):
        return mult * c(x).real.reshape(-1) - logz_c().real.reshape(())

    def mean_ll(X):
        with torch.no_grad():
            return float(torch.cat([ll(X[i:i + 2048]) for i in range(0, X.shape[0], 2048)]).mean())

    g = torch.Generator().manual_seed(seed)
    best_va, best_te, times = -np.inf, np.nan, []
    n = Xtr.shape[0]
    for _ in range(epochs):
        t = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, 256):
            loss = -ll(Xtr[perm[i:i + 256]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
        va = mean_ll(Xva)
        if np.isfinite(va) and va > best_va:
            best_va, best_te = va, mean_ll(Xte)
    json.dump({"tree": tree, "test_ll": best_te, "valid_ll": best_va, "epoch_s": float(np.median(times)),
               "compile_s": compile_s}, open(out, "w"))


if __name__ == "__main__":
    main()
