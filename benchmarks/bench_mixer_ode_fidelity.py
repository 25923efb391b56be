"""Fidelity of MixER gating on families of ODEs (issue 5, "What it must show" 2).

MixERODE with the closed-form K-means + least-squares gate against the same
model with a gradient-trained softmax top-1 gate (Switch-style), on ODEBench
2-D families (4 families x 8 environments, K = 4 experts), several seeds.
Reports routing purity and ARI (environment -> expert against the family
labels), experts used, train and test MSE (new initial conditions in the
training environments) and adaptation MSE on held-out environments (contexts
only; new parameter values, quarter-step off the training grid).

Run (2 CPU cores; ~2-3 min per fit at the default scale)::

    .venv/bin/python benchmarks/bench_mixer_ode_fidelity.py --seeds 0 1 2 --n-outer 40 --jobs 3

The printed table is written to benchmarks/results/mixer_ode_fidelity.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from mixstat.datasets import make_ode_families
from mixstat.mixer import MixERODE, routing_purity
from mixstat.utils import parallel_map

FAMILIES = ("harmonic", "damped_harmonic", "pendulum", "damped_double_well")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--gates", nargs="+",
                    default=["kmeans_lstsq", "kmeans_lstsq++", "softmax_gd"],
                    help="kmeans_lstsq++ = MixER gate with k-means++ K-means starts")
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--traj", type=int, default=4)
    ap.add_argument("--n-outer", type=int, default=40)
    ap.add_argument("--n-inner", type=int, nargs=2, default=[6, 6])
    ap.add_argument("--gate-every", type=int, default=5)
    ap.add_argument("--lr", type=float, nargs=2, default=[1e-2, 3e-3])
    ap.add_argument("--proximal", type=float, nargs=2, default=[10.0, 10.0])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--context-dim", type=int, default=2)
    ap.add_argument("--expert", default="coda")
    ap.add_argument("--adapt-steps", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=1, help="fits run in parallel (joblib)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "mixer_ode_fidelity.md"))
    args = ap.parse_args(argv)

    train = make_ode_families(FAMILIES, args.envs, args.traj, random_state=0)
    test = make_ode_families(FAMILIES, args.envs, 8, random_state=1)
    ad_tr = make_ode_families(FAMILIES, 2, 1, split="adapt", random_state=2)
    ad_te = make_ode_families(FAMILIES, 2, 8, split="adapt", random_state=3)
    E = train.env_family.size

    def one(job):
        seed, gate = job
        est = MixERODE(n_experts=len(FAMILIES), context_dim=args.context_dim,
                       expert=args.expert, hidden=args.hidden, gate=gate.rstrip("+"),
                       kmeans_init="k-means++" if gate.endswith("++") else "uniform",
                       n_outer=args.n_outer, n_inner=tuple(args.n_inner),
                       proximal=tuple(args.proximal),
                       gate_every=args.gate_every, lr=tuple(args.lr),
                       adapt_steps=args.adapt_steps, adapt_lr=1e-2, random_state=seed)
        t0 = time.perf_counter()
        est.fit(train.trajectories, train.t, train.envs)
        fit_time = time.perf_counter() - t0
        r = est.routing_
        pur = routing_purity(r, train.env_family)
        ari = adjusted_rand_score(train.env_family, r)
        tr_mse = -est.score(train.trajectories, train.t, train.envs)
        te_mse = -est.score(test.trajectories, test.t, test.envs)
        est.adapt(ad_tr.trajectories, ad_tr.t, ad_tr.envs + 1000)
        ad_mse = -est.score(ad_te.trajectories, ad_te.t, ad_te.envs + 1000)
        # adapted env routed to the majority expert of its family?
        ad_route = est.route(np.unique(ad_tr.envs) + 1000)
        major = np.array([np.bincount(r[train.env_family == f]).argmax()
                          for f in range(len(FAMILIES))])
        ad_acc = float(np.mean(ad_route == major[ad_tr.env_family]))
        row = dict(seed=seed, gate=gate, used=np.unique(r).size, purity=pur, ari=ari,
                   train=tr_mse, test=te_mse, adapt=ad_mse, ad_acc=ad_acc,
                   updates=est.n_gate_updates_, time=fit_time)
        print(row, flush=True)
        return row

    jobs = [(seed, gate) for seed in args.seeds for gate in args.gates]
    rows = parallel_map(one, jobs, n_jobs=args.jobs)

    lines = []
    lines.append(f"Data: ODEBench 2-D families {', '.join(FAMILIES)}; {args.envs} environments "
                 f"per family ({E} in all), {args.traj} training trajectories each, 20 points "
                 "on t = 0..9.5; test: 8 new initial conditions per environment; adaptation: "
                 f"{ad_tr.env_family.size} held-out environments (1 trajectory each, 8 test).")
    lines.append(f"Model: K = {len(FAMILIES)} {args.expert} experts, width {args.hidden}, "
                 f"depth 3, context {args.context_dim}/expert; {args.n_outer} outer steps x "
                 f"({args.n_inner[0]} + {args.n_inner[1]}) inner Adam steps, lr (contexts, model) "
                 f"{tuple(args.lr)}, gate every {args.gate_every} inner steps, proximal betas "
                 f"{tuple(args.proximal)} (on mean squared differences, as the reference); "
                 f"adaptation {args.adapt_steps} Adam steps (lr 1e-2) on contexts only.")
    lines.append("")
    hdr = ("| gate | seed | experts used | purity | ARI | gate updates | train MSE | test MSE "
           "| adapt MSE | adapted routed to family expert | fit time (s) |")
    lines.append(hdr)
    lines.append("|" + "---|" * 11)
    for r in rows:
        lines.append(f"| {r['gate']} | {r['seed']} | {r['used']} | {r['purity']:.2f} | "
                     f"{r['ari']:.2f} | {r['updates']} | {r['train']:.3g} | {r['test']:.3g} | "
                     f"{r['adapt']:.3g} | {r['ad_acc']:.2f} | {r['time']:.0f} |")
    lines.append("")
    lines.append("| gate | purity (mean ± sd) | ARI | test MSE | adapt MSE |")
    lines.append("|---|---|---|---|---|")
    for gate in args.gates:
        sel = [r for r in rows if r["gate"] == gate]

        def ms(key, fmt, sel=sel):
            v = np.array([r[key] for r in sel])
            return f"{v.mean():{fmt}} ± {v.std():{fmt}}"

        lines.append(f"| {gate} | {ms('purity', '.2f')} | {ms('ari', '.2f')} | "
                     f"{ms('test', '.3g')} | {ms('adapt', '.3g')} |")
    if "softmax_gd" in args.gates:
        b = np.mean([r["purity"] for r in rows if r["gate"] == "softmax_gd"])
        lines.append("")
        for g in args.gates:
            if g.startswith("kmeans_lstsq"):
                a = np.mean([r["purity"] for r in rows if r["gate"] == g])
                lines.append(f"Purity ratio {g} / softmax_gd: {a / b:.2f}  ")
    lines.append("")
    lines.append("Command: `.venv/bin/python benchmarks/bench_mixer_ode_fidelity.py "
                 + " ".join(sys.argv[1:] if argv is None else argv) + "`")
    text = "\n".join(lines)
    print(text)
    with open(args.out, "w") as fh:
        fh.write("# MixER fidelity on ODE families (measured here, 2 shared CPU cores)\n\n")
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
