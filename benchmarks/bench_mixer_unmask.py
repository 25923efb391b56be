"""How often the least-squares gate masks an expert, and how often the
re-seeding of MixERRegressor (``unmask_gate``) repairs it (issue 22, item 7).

Part 1: random K-means partitions (``sklearn.cluster.KMeans``) of 1 to 3
standardised normal or log-normal features, K = 3 to 7, n = 40 to 300; the
one-hot least-squares gate of MixER is fitted to each, and we count the
partitions where its argmax leaves an expert empty, before and after
``unmask_gate``, with the change in agreement with the K-means target.

Part 2: statsmodels' ``engel`` data (food expenditure ~ income), the real
case of the issue: MixERRegressor(n_experts=3) for a few random_state.

Run::

    .venv/bin/python benchmarks/bench_mixer_unmask.py --n-partitions 300

Writes the printed tables to benchmarks/results/mixer_unmask.md.
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LinearRegression

from mixstat.mixer import MixERRegressor
from mixstat.mixer._regressor import unmask_gate


def partitions(n_partitions):
    rows = []
    for seed in range(n_partitions):
        rng = np.random.default_rng(seed)
        p, K = int(rng.integers(1, 4)), int(rng.integers(3, 8))
        n = int(rng.integers(40, 300))
        if seed % 2:
            Z = rng.lognormal(size=(n, p))
        else:
            Z = rng.normal(size=(n, p)) * rng.uniform(0.1, 5, p)
        Z = (Z - Z.mean(0)) / Z.std(0)
        target = KMeans(K, n_init=1, random_state=seed).fit_predict(Z)
        D = np.column_stack([Z, np.ones(n)])
        W = np.linalg.pinv(D) @ np.eye(K)[target]
        before = np.argmax(D @ W, axis=1)
        if np.unique(before).size == K:
            continue
        after = np.argmax(D @ unmask_gate(Z, W, target)[0], axis=1)
        rows.append(
            (
                seed,
                p,
                K,
                n,
                np.unique(after).size == K,
                np.mean(after == target) - np.mean(before == target),
            )
        )
    return rows


def engel(seeds):
    import statsmodels.api as sm

    d = sm.datasets.engel.load_pandas().data
    X, y = d[["income"]], d["foodexp"]
    out = []
    for rs in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = MixERRegressor(n_experts=3, random_state=rs).fit(X, y)
        out.append(
            (
                rs,
                m.expert_n_samples_.tolist(),
                float(np.mean((m.predict(X) - y) ** 2)),
                m.converged_,
                m.n_unmasked_updates_,
            )
        )
    ols = float(np.mean((LinearRegression().fit(X, y).predict(X) - y) ** 2))
    return out, ols


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-partitions", type=int, default=300)
    ap.add_argument("--engel-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(__file__), "results", "mixer_unmask.md"),
    )
    args = ap.parse_args(argv)
    rows = partitions(args.n_partitions)
    gains = np.array([r[5] for r in rows])
    fixed = sum(r[4] for r in rows)
    lines = [
        "# MixERRegressor: experts masked by the least-squares gate (measured here)",
        "",
        f"{args.n_partitions} random K-means partitions (1-3 features, K = 3-7, "
        "n = 40-300, normal or log-normal):",
        "",
        "| masked (an expert empty) | repaired by unmask_gate | agreement gain: "
        "min / median / max |",
        "|---|---|---|",
        f"| {len(rows)} | {fixed} | {gains.min():+.3f} / {np.median(gains):+.3f} / "
        f"{gains.max():+.3f} |",
        "",
        "Not repaired (seed, n_features, K, n):",
        "",
    ]
    lines += [f"- {r[0]}, {r[1]}, {r[2]}, {r[3]}" for r in rows if not r[4]] or [
        "- none"
    ]
    try:
        eng, ols = engel(args.engel_seeds)
    except ImportError:
        lines += ["", "engel: statsmodels is missing (pip install statsmodels)."]
    else:
        lines += [
            "",
            "statsmodels engel, foodexp ~ income, MixERRegressor(n_experts=3):",
            "",
            "| random_state | samples per expert | training MSE | converged_ | "
            "re-seeding updates |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {rs} | {' / '.join(map(str, c))} | {mse:.0f} | {cv} | {u} |"
            for rs, c, mse, cv, u in eng
        ]
        lines += ["", f"One linear regression: training MSE {ols:.0f}."]
    lines += [
        "",
        "Command: `.venv/bin/python benchmarks/bench_mixer_unmask.py "
        f"--n-partitions {args.n_partitions}` (2026-12-04, 2-core VM, loaded)",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
