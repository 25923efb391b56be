"""mixstat.mpe next to its PyPI peers, same data, one run.

Peers (their own venv, called as a subprocess on the same data files):

    python3 -m venv benchmarks/envs/mpe
    benchmarks/envs/mpe/bin/pip install pu-toolbox==1.11.0 pulearn==0.2.0

- pu-toolbox ``KernelMeanPriorEstimator(width_selection="mmd_grid")`` (KM1/KM2,
  the reference width rule) and ``ReCPEEstimator`` (default: KM2 base, linear
  ranker) against ``KernelMeanMPE`` and ``RegroupingMPE``;
- pulearn ``HistogramMatchPriorEstimator(...).bootstrap`` intervals against
  ``BestBinMPE(n_bootstrap=...)`` intervals (pulearn reports the MPE kappa as
  ``metadata_['hidden_positive_fraction']``).

Also: our KM at m = n = 1e5 (Nystroem), and the accuracy of the Nystroem
approximation against the exact factor.

Run: ``.venv/bin/python benchmarks/bench_mpe_peers.py`` (writes
benchmarks/results/mpe_peers.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import BestBinMPE, KernelMeanMPE, RegroupingMPE

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, "envs", "mpe", "bin", "python")
INSTALL = ("python3 -m venv benchmarks/envs/mpe && "
           "benchmarks/envs/mpe/bin/pip install pu-toolbox==1.11.0 pulearn==0.2.0")

PEER_SCRIPT = r'''
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
out = {}
d = np.load(sys.argv[1])
X, y = d["X"], d["y"]
try:
    from pu_toolbox.prior import KernelMeanPriorEstimator, ReCPEEstimator
    t = time.perf_counter()
    km = KernelMeanPriorEstimator(width_selection="mmd_grid", random_state=0).fit(X, y)
    out["km_time"] = time.perf_counter() - t
    out["km1"], out["km2"] = km.km1_estimate_, km.km2_estimate_
    out["km_width"] = km.kernel_width_
    if sys.argv[2] == "1":
        t = time.perf_counter()
        re = ReCPEEstimator(copy_fraction=0.1).fit(X, y)
        out["recpe_time"] = time.perf_counter() - t
        out["recpe"] = float(re.estimate())
except ImportError as e:
    out["pu_toolbox_error"] = str(e)
try:
    from pulearn import HistogramMatchPriorEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    clf = make_pipeline(StandardScaler(), PolynomialFeatures(2), StandardScaler(),
                        LogisticRegression(max_iter=1000))  # the same classifier as ours
    est = HistogramMatchPriorEstimator(estimator=clf)
    t = time.perf_counter()
    est.bootstrap(X, y, n_resamples=int(sys.argv[3]), random_state=0)
    out["hm_time"] = time.perf_counter() - t
    out["hm"] = float(est.metadata_["hidden_positive_fraction"])
    # pulearn's interval is on the pooled prior pi = (m + kappa n) / (m + n)
    m, n = int((y == 1).sum()), int((y == 0).sum())
    ci = est.confidence_interval_
    out["hm_lo"] = (ci.lower * (m + n) - m) / n
    out["hm_hi"] = (ci.upper * (m + n) - m) / n
except ImportError as e:
    out["pulearn_error"] = str(e)
except Exception as e:  # report, do not hide
    out["pulearn_failure"] = repr(e)[:300]
print(json.dumps(out, default=float))
'''


def run_peer(X, y, with_recpe=True, n_boot=50):
    if not os.path.exists(PEER_PY):
        return {"missing": f"peer venv not found; install with: {INSTALL}"}
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "data.npz")
        np.savez(f, X=X, y=y)
        s = os.path.join(tmp, "peer.py")
        with open(s, "w") as fh:
            fh.write(PEER_SCRIPT)
        r = subprocess.run([PEER_PY, s, f, "1" if with_recpe else "0", str(n_boot)],
                           capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        return {"missing": f"peer failed: {r.stderr[-300:]}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    lines = []

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    out("# mixstat.mpe vs pu-toolbox / pulearn")
    out()
    out("Command: `.venv/bin/python benchmarks/bench_mpe_peers.py` "
        "(2-core shared CPU; peers in benchmarks/envs/mpe).")
    out()
    # warm the Numba cache so that compile time is not counted
    d0 = make_sumpe_synthetic(0.25, n_component=100, n_mixture=100, random_state=0)
    KernelMeanMPE().fit(d0.X, d0.y)

    out("## KM1 / KM2 and ReCPE, synthetic domain-adaptation data, m = n = 1000")
    out()
    out("| kappa* | kappa(F\\|H) | ours KM1 | ours KM2 | pu-toolbox KM1 | pu-toolbox KM2 | "
        "ours ReCPE | pu-toolbox ReCPE | ours KM time (s) | pu-toolbox KM time (s) | speed-up |")
    out("|---|---|---|---|---|---|---|---|---|---|---|")
    boot_rows = []
    for i, k in enumerate([0.1, 0.25, 0.5, 0.75]):
        d = make_sumpe_synthetic(k, random_state=100 + i)
        t = time.perf_counter()
        km = KernelMeanMPE("KM2", random_state=0).fit(d.X, d.y)
        t_ours = time.perf_counter() - t
        re = RegroupingMPE(KernelMeanMPE("KM2"), random_state=0).fit(d.X, d.y)
        peer = run_peer(d.X, d.y, with_recpe=True)
        if "missing" in peer or "km1" not in peer:
            out(f"| {k} | {d.kappa_max:.3f} | {km.km1_:.3f} | {km.km2_:.3f} | "
                f"n/a | n/a | {re.proportion_:.3f} | n/a | {t_ours:.2f} | n/a | n/a |")
            out(f"\npeer missing: {peer}\n")
        else:
            out(f"| {k} | {d.kappa_max:.3f} | {km.km1_:.3f} | {km.km2_:.3f} | "
                f"{peer['km1']:.3f} | {peer['km2']:.3f} | {re.proportion_:.3f} | "
                f"{peer.get('recpe', float('nan')):.3f} | {t_ours:.2f} | "
                f"{peer['km_time']:.2f} | {peer['km_time'] / t_ours:.0f}x |")
        t = time.perf_counter()
        bb = BestBinMPE(n_bootstrap=50, random_state=0).fit(d.X, d.y)
        t_bb = time.perf_counter() - t
        boot_rows.append((k, d.kappa_max, bb, t_bb, peer))
    out()
    out("Widths: ours and pu-toolbox both pick the width by maximum MMD over "
        "{0.1, 0.316, 1, 3.16, 10} x median distance.")
    out()
    out("## Bootstrap intervals (50 resamples): BBE (ours) vs pulearn HistogramMatch")
    out()
    out("Both use the same quadratic logistic classifier; pulearn's interval on the pooled "
        "prior pi is converted to kappa = (pi (m + n) - m) / n.")
    out()
    out("| kappa* | kappa(F\\|H) | ours BBE | ours 95% interval | ours BBE DKW bound | "
        "ours time (s) | pulearn HM | pulearn 95% interval | pulearn time (s) |")
    out("|---|---|---|---|---|---|---|---|---|")
    for k, kmax, bb, t_bb, peer in boot_rows:
        lo, hi = bb.proportion_interval_
        cb = bb.confidence_bound_
        hm = peer.get("hm", float("nan"))
        hmb = (f"[{peer['hm_lo']:.3f}, {peer['hm_hi']:.3f}]" if "hm_lo" in peer
               else str(peer.get("pulearn_failure", peer.get("missing", "n/a")))[:100])
        out(f"| {k} | {kmax:.3f} | {bb.proportion_:.3f} | [{lo:.3f}, {hi:.3f}] | "
            f"[{cb[0]:.3f}, {cb[1]:.3f}] | {t_bb:.1f} | {hm:.3f} | {hmb} | "
            f"{peer.get('hm_time', float('nan')):.1f} |")
    out()

    out("## Large samples: our KM2 at m = n = 1e5 (Nystroem, 500 landmarks)")
    out()
    out("| kappa* | kappa(F\\|H) | KM1 | KM2 | abs. error KM2 vs kappa(F\\|H) | time (s) |")
    out("|---|---|---|---|---|---|")
    for k in (0.25, 0.5):
        d = make_sumpe_synthetic(k, n_component=100_000, n_mixture=100_000, random_state=7)
        t = time.perf_counter()
        km = KernelMeanMPE("KM2", random_state=0).fit(d.X, d.y)
        tt = time.perf_counter() - t
        out(f"| {k} | {d.kappa_max:.3f} | {km.km1_:.3f} | {km.km2_:.3f} | "
            f"{abs(km.km2_ - d.kappa_max):.3f} | {tt:.1f} |")
    out()
    out("pu-toolbox at 1e5 is not run: its dense 2e5 x 2e5 kernel needs 320 GB.")
    out()

    out("## Accuracy of the Nystroem approximation (m = n = 2000, 5 data sets)")
    out()
    out("| landmarks | mean abs. diff. KM1 vs exact | mean abs. diff. KM2 vs exact | "
        "max abs. diff. | mean time (s) | exact time (s) |")
    out("|---|---|---|---|---|---|")
    data = [make_sumpe_synthetic(0.25, n_component=2000, n_mixture=2000, random_state=s)
            for s in range(5)]
    exact, te = [], []
    for d in data:
        t = time.perf_counter()
        e = KernelMeanMPE(approximation="exact", random_state=0).fit(d.X, d.y)
        te.append(time.perf_counter() - t)
        exact.append((e.km1_, e.km2_))
    exact = np.array(exact)
    for r in (25, 50, 100, 300):
        res, tn = [], []
        for d in data:
            t = time.perf_counter()
            e = KernelMeanMPE(approximation="nystroem", n_landmarks=r, random_state=0).fit(d.X, d.y)
            tn.append(time.perf_counter() - t)
            res.append((e.km1_, e.km2_))
        diff = np.abs(np.array(res) - exact)
        out(f"| {r} | {diff[:, 0].mean():.4f} | {diff[:, 1].mean():.4f} | {diff.max():.4f} | "
            f"{np.mean(tn):.2f} | {np.mean(te):.2f} |")
    out()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mpe_peers.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
