"""mixstat's tensorised squared circuits vs libcirkit 0.3.1, same data and architecture.

Both train a random-binary-tree CP circuit (cirkit ``cp-t``) with K Gaussian
input units per variable, as +-^2 (signed weights, U(0,1) init), +^2
(w = exp theta) and + (monotonic), with Adam lr 5e-3, batch 256, a fixed
number of epochs and the best-validation checkpoint (n = 10,000 train /
1,000 valid / 2,000 test, standardised). Reported: test log-likelihood
(nats per point, standardised units) and median seconds per training epoch.
cirkit runs in float32 (its default); mixstat in float64 (its default) and
float32. One torch thread each. mixstat starts its Gaussian means as
SquaredCircuitDensity does by default (``init='kmeans'``: the K k-means
centres of the training rows; ``--init data``: K random training points;
``--init random``: cirkit's N(0, 1) draw).

Run (after setting up the peer venv, see bench_circuits_cirkit_peer.py):

    .venv/bin/python benchmarks/bench_circuits_cirkit.py            # full (10 seeds at D = 2, 3 at D = 8)
    .venv/bin/python benchmarks/bench_circuits_cirkit.py --quick    # smoke
    # the recorded table (the peer's full-length runs reused from the cache; its timings re-measured):
    .venv/bin/python benchmarks/bench_circuits_cirkit.py --no-f32-ll \
        --peer-cache benchmarks/results/circuits_cirkit_peer_runs.json \
        --json benchmarks/results/circuits_cirkit_runs.json

Writes benchmarks/results/circuits_cirkit.md.
"""

import argparse
import inspect
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
from mixstat.nn.circuits import RegionGraph, TensorizedCircuit, train_density  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, "envs", "cirkit", "bin", "python")
PEER = os.path.join(HERE, "bench_circuits_cirkit_peer.py")
MODELS = {"npc2": ("signed", True, "+-^2"), "mpc2": ("positive", True, "+^2"), "mpc": ("positive", False, "+")}


def split(name, seed):
    X = make_circuit_dataset(name, 13000, random_state=seed, standardize=False)
    tr, va, te = X[:10000], X[10000:11000], X[11000:]
    mu, sd = tr.mean(0), tr.std(0)
    return [(a - mu) / sd for a in (tr, va, te)]


def tree_to_region_graph(tree, n_variables):
    """mixstat RegionGraph of the peer's tree (nested lists, leaves are
    variables): both libraries then use the very same partitions."""
    rg = RegionGraph(n_variables)

    def build(node):
        if isinstance(node, int):
            return rg.add([node]), [node]
        kids = [build(c) for c in node]
        return rg.add([v for _, sc in kids for v in sc], [i for i, _ in kids]), [v for _, sc in kids for v in sc]

    rg.root = build(tree)[0]
    return rg.validate()


def run_mixstat(data, model, K, epochs, seed, dtype, tree, max_scale="default", init="data"):
    tr, va, te = data
    w, sq, _ = MODELS[model]
    gen = torch.Generator().manual_seed(seed)
    kw = {} if max_scale == "default" else {"max_scale": max_scale}
    m = TensorizedCircuit([tree_to_region_graph(tree, tr.shape[1])], n_units=K, weights=w, squared=sq,
                          dtype=dtype, generator=gen, **kw)
    T = [torch.as_tensor(a, dtype=dtype) for a in (tr, va, te)]
    if init in ("data", "kmeans"):  # SquaredCircuitDensity(init=...): Gaussian means at training points / centres
        m.init_from_data(T[0], generator=gen, method="points" if init == "data" else "kmeans")
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
    out = path + f".{model}.{epochs}.json"
    subprocess.run([PEER_PY, PEER, path, model, str(K), str(epochs), str(seed), out], check=True)
    return json.load(open(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seeds-2d", type=int, nargs="+", default=list(range(10)),
                    help="seeds of the D = 2 rows (default 0..9: there a run's test LL depends on the local optimum "
                         "its random start reaches, and 3 seeds cannot settle differences of a few hundredths)")
    ap.add_argument("--no-f32-ll", action="store_true", help="time float32 but skip its full-length runs")
    ap.add_argument("--timing-epochs", type=int, default=3,
                    help="epochs of the paired timing runs (cirkit, mixstat f64, f32 back to back)")
    ap.add_argument("--peer-cache", default=None,
                    help="JSON of earlier full-length peer runs {'data/seed/model': result} to reuse for "
                         "the peer's test LL (deterministic: fixed seed, one thread); timings are always re-measured")
    ap.add_argument("--max-scale", default="default",
                    help="bound on the Gaussian inputs' sigma (data sds): a number, 'none' (unbounded) "
                         "or 'default' (TensorizedCircuit's default)")
    ap.add_argument("--init", choices=["default", "data", "kmeans", "random"], default="default",
                    help="mixstat's start of the Gaussian means (default: SquaredCircuitDensity's default)")
    ap.add_argument("--only", choices=["rings", "rings8"], default=None, help="run one data set only")
    ap.add_argument("--json", default=None, help="also save the per-run results (and full peer runs) here")
    ap.add_argument("--timing-only", action="store_true",
                    help="only the paired timing runs; the test LLs come from --ll-from (mixstat) and "
                         "--peer-cache (cirkit), which must hold every (data, seed, model)")
    ap.add_argument("--ll-from", nargs="+", default=None,
                    help="--json files of earlier full runs whose mixstat LLs --timing-only reuses")
    ap.add_argument("--render", nargs="+", default=None,
                    help="no runs: write the tables from these --json files (merged)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "circuits_cirkit.md"))
    args = ap.parse_args()
    max_scale = {"default": "default", "none": None}.get(args.max_scale.lower(), None)
    if args.max_scale.lower() not in ("default", "none"):
        max_scale = float(args.max_scale)
    settings = [("rings", 16, 60), ("rings8", 16, 30)]
    if args.quick:
        settings = [("rings", 8, 2), ("rings8", 8, 2)]
        args.seeds = args.seeds[:1]
        args.seeds_2d = args.seeds_2d[:1]
    seeds_of = {"rings": args.seeds_2d, "rings8": args.seeds}
    cache = json.load(open(args.peer_cache)) if args.peer_cache else {}
    ll_from = {}
    for fn in args.ll_from or []:
        ll_from.update(json.load(open(fn))["runs"])
    if args.timing_only and not (args.peer_cache and ll_from):
        raise SystemExit("--timing-only needs --peer-cache and --ll-from")
    res = {}
    if args.render:
        for fn in args.render:
            res.update(json.load(open(fn))["runs"])
        seeds_of = {name: sorted({int(k.split("/")[1]) for k in res if k.startswith(name + "/")}) for name, _, _ in settings}
        settings = [st for st in settings if seeds_of[st[0]]]
    elif args.only:
        settings = [st for st in settings if st[0] == args.only]
    peer_full = {}
    from mixstat.circuits import SquaredCircuitDensity

    init = (inspect.signature(SquaredCircuitDensity).parameters["init"].default
            if args.init == "default" else args.init)
    eff_scale = (inspect.signature(TensorizedCircuit).parameters["max_scale"].default
                 if max_scale == "default" else max_scale)
    with tempfile.TemporaryDirectory() as tmp:
        for name, K, epochs in ([] if args.render else settings):
            for seed in seeds_of[name]:
                data = split(name, seed)
                path = os.path.join(tmp, f"{name}{seed}.npz")
                np.savez(path, train=data[0], valid=data[1], test=data[2])
                for model in MODELS:
                    t = time.perf_counter()
                    key = f"{name}/{seed}/{model}"
                    p = cache.get(key) or run_peer(path, model, K, epochs, seed)
                    peer_full[key] = p
                    tree = p["tree"]
                    # paired timing: the three runs back to back, same epochs
                    pt = run_peer(path, model, K, args.timing_epochs, seed)["epoch_s"]
                    t64 = run_mixstat(data, model, K, args.timing_epochs, seed, torch.float64, tree, max_scale, init)["epoch_s"]
                    t32 = run_mixstat(data, model, K, args.timing_epochs, seed, torch.float32, tree, max_scale, init)["epoch_s"]
                    if args.timing_only:
                        m64 = {"test_ll": ll_from[key]["m64"]}
                    else:
                        m64 = run_mixstat(data, model, K, epochs, seed, torch.float64, tree, max_scale, init)
                    m32 = ({"test_ll": ll_from.get(key, {}).get("m32", float("nan"))} if args.no_f32_ll or args.timing_only
                           else run_mixstat(data, model, K, epochs, seed, torch.float32, tree, max_scale, init))
                    res[key] = dict(peer=p["test_ll"], m64=m64["test_ll"], m32=m32["test_ll"],
                                    tp=pt, t64=t64, t32=t32, tree=tree, D=data[0].shape[1], K=K, epochs=epochs,
                                    cached=key in cache, max_scale=eff_scale, init=init, timing_epochs=args.timing_epochs)
                    print(key, res[key], f"[{time.perf_counter() - t:.0f}s]", flush=True)
                    if args.json:
                        with open(args.json, "w") as f:
                            json.dump({"argv": sys.argv[1:], "runs": res, "peer_full": peer_full}, f, indent=1)
    lines = [
        "| data (D) | K | epochs | model | cirkit test LL | mixstat f64 test LL | mixstat f32 test LL "
        "| f64 >= cirkit (seeds) | cirkit s/epoch | mixstat f64 s/epoch | mixstat f32 s/epoch "
        "| speed-up f64 | speed-up f32 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    per_seed = ["| data | seed | tree (cirkit's RandomBinaryTree) | model | cirkit | mixstat f64 | mixstat f32 |",
                "|---|---|---|---|---|---|---|"]
    def f3(v):
        return "not run" if v != v else f"{v:.3f}"

    for name, K, epochs in settings:
        for model in MODELS:
            rs = [res[f"{name}/{s}/{model}"] for s in seeds_of[name]]
            mean = {k: float(np.mean([r[k] for r in rs])) for k in ("peer", "m64", "m32", "tp", "t64", "t32")}
            wins = sum(r["m64"] >= r["peer"] for r in rs)
            lines.append(
                f"| {name} ({rs[0]['D']}) | {K} | {epochs} | {MODELS[model][2]} | {mean['peer']:.3f} | {mean['m64']:.3f} "
                f"| {f3(mean['m32'])} | {wins}/{len(rs)} | {mean['tp']:.3f} | {mean['t64']:.3f} | {mean['t32']:.3f} "
                f"| {mean['tp'] / mean['t64']:.2f}x | {mean['tp'] / mean['t32']:.2f}x |"
            )
            for s, r in zip(seeds_of[name], rs):
                per_seed.append(f"| {name} | {s} | `{r['tree']}` | {MODELS[model][2]} | {r['peer']:.3f} | {r['m64']:.3f} | {f3(r['m32'])} |")
    seeds_all = sorted({s for name, _, _ in settings for s in seeds_of[name]})
    diffs = ["| data | model | " + " | ".join(f"seed {s}" for s in seeds_all) + " | mean | sd |",
             "|---|---|" + "---|" * (len(seeds_all) + 2)]
    for name, _, _ in settings:
        for model in MODELS:
            d = {s: res[f"{name}/{s}/{model}"]["m64"] - res[f"{name}/{s}/{model}"]["peer"] for s in seeds_of[name]}
            v = np.array(list(d.values()))
            diffs.append(f"| {name} ({res[f'{name}/{seeds_of[name][0]}/{model}']['D']}) | {MODELS[model][2]} | "
                         + " | ".join(f"{d[s]:+.3f}" if s in d else "" for s in seeds_all)
                         + f" | {v.mean():+.3f} | {v.std(ddof=1) if len(v) > 1 else float('nan'):.3f} |")
    cmd = " ".join(["benchmarks/bench_circuits_cirkit.py", *sys.argv[1:]])
    head = (
        "# mixstat vs libcirkit 0.3.1: tensorised squared circuits\n\n"
        f"Command: `.venv/bin/python {cmd}` (torch {torch.__version__}, 1 thread each, shared 2-core VM).\n"
        "Same data files (mixstat's generators, n = 10,000 / 1,000 / 2,000, standardised), the same region "
        "graph (cirkit's `RandomBinaryTree(D, seed)`, rebuilt in mixstat from the partitions the peer reports), "
        "CP layers (cirkit `cp-t`), K Gaussian input units per variable, Adam lr 5e-3, batch 256, the same "
        "number of epochs, best-validation checkpoint. mixstat's Gaussian-input scale bound max_scale = "
        + ", ".join(sorted({str(r.get("max_scale", "?")) for r in res.values()}))
        + " (data standard deviations; None = unbounded); start of mixstat's Gaussian means: init = "
        + ", ".join(sorted({str(r.get("init", "random")) for r in res.values()}))
        + " ('data': random training points, 'random': N(0, 1) as cirkit). LL: mean test log-likelihood over the seeds in nats per "
        "point (standardised units); the 'f64 >= cirkit' column counts the seeds where mixstat float64 is at "
        "least as good. Seconds per epoch: median training-epoch time of paired runs of "
        + ", ".join(sorted({str(r.get("timing_epochs", args.timing_epochs)) for r in res.values()}))
        + " epochs (cirkit, mixstat f64, mixstat f32 back to back, same data and tree), "
        "averaged over the seeds; speed-up = cirkit s/epoch / mixstat s/epoch. "
        + ("cirkit test LLs come from the full-length peer runs in `" + os.path.relpath(args.peer_cache, HERE)
           + "` (same script, same data and seeds; cirkit is deterministic here: fixed seed, one thread). "
           if args.peer_cache else "")
        + "\n\n"
    )
    body = (head + "\n".join(lines) + "\n\nPer seed (test LL):\n\n" + "\n".join(per_seed)
            + "\n\nPaired per-seed differences, mixstat f64 - cirkit (nats/point; same data, tree and seed):\n\n"
            + "\n".join(diffs) + "\n")
    if not args.quick:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(body)
    print(body)


if __name__ == "__main__":
    sys.exit(main())
