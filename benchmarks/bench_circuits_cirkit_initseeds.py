"""Init-seed spread of the D = 2 rows of bench_circuits_cirkit.py (diagnosis for issue #4).

On ONE data split (``rings``, data seed DSEED, n = 10,000 / 1,000 / 2,000, standardised), train
the same circuit (K = 16, CP on the 2-variable tree, 60 epochs, Adam 5e-3, batch 256, best
validation checkpoint) from several initialisation seeds, with libcirkit (``peer``: the peer
runner of bench_circuits_cirkit_peer.py, whose seed argument sets torch's initialisation and
batch order; the data file is fixed) or with mixstat under a VARIANT of its start:

- ``'{}'``: TensorizedCircuit's own draw (means N(0, 1), sigma = sigmoid(N(0, 1)), as cirkit);
- ``'{"hook": pts_s}'``: means at K random training points drawn with a generator seeded by
  seed + 777 (what ``SquaredCircuitDensity(init='data')`` does, with the circuit's generator);
- ``'{"hook": pts}'``: the same with one fixed draw of points (seed 1234) for every init seed;
- ``'{"hook": km}'``: k-means centres and within-cluster sds; ``'{"hook": lambda m,t,s: pts(m,t,sfac=0.5)}'``:
  fixed points and halved scales;
- ``'{"max_scale": 1.0, "min_scale": 1e-5}'``: cirkit's exact sigma bounds.

Usage (prints one line per run: variant, model, data seed, init seed, test LL, best valid LL):

    .venv/bin/python benchmarks/bench_circuits_cirkit_initseeds.py peer mpc 0 0,1,2,3,4
    .venv/bin/python benchmarks/bench_circuits_cirkit_initseeds.py '{}' mpc 0 0,1,2,3,4
    .venv/bin/python benchmarks/bench_circuits_cirkit_initseeds.py '{"hook": pts_s}' mpc 2 0,1,2,3,4

Peer results are cached as JSON under $INITSEEDS_DIR (default /tmp/circuits_initseeds).
"""
import sys, json, os, subprocess, time
import numpy as np, torch
torch.set_num_threads(1)
OUT = os.environ.get("INITSEEDS_DIR", "/tmp/circuits_initseeds")
os.makedirs(OUT, exist_ok=True)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_circuits_cirkit as B
from mixstat.nn.circuits import TensorizedCircuit, train_density


def run_m(data, model, K, epochs, seed, tree, variant, dtype=torch.float64):
    tr, va, te = data
    w, sq, _ = B.MODELS[model]
    gen = torch.Generator().manual_seed(seed)
    kw = {}
    if variant.get("max_scale", "d") != "d":
        kw["max_scale"] = variant["max_scale"]
    m = TensorizedCircuit([B.tree_to_region_graph(tree, tr.shape[1])], n_units=K, weights=w, squared=sq, dtype=dtype, generator=gen, **kw)
    if "min_scale" in variant:
        inp = m.input
        s0 = inp.scale().detach()
        inp.min_scale = variant["min_scale"]
        with torch.no_grad():
            frac = ((s0 - inp.min_scale) / (inp.max_scale - inp.min_scale)).clamp(1e-6, 1 - 1e-6)
            inp.log_scale.copy_(torch.logit(frac))
    if "hook" in variant:
        variant["hook"](m, tr, seed)
    T = [torch.as_tensor(a, dtype=dtype) for a in (tr, va, te)]
    res = train_density(m, T[0], T[1], max_epochs=epochs, batch_size=256, learning_rate=5e-3, early_stopping=False, rng=np.random.default_rng(seed))
    with torch.no_grad():
        return float(m(T[2]).mean()), float(max(res.valid_curve))


def pts(m, tr, seed=None, sfac=None):
    # one fixed draw of points (seed 1234) whatever the init seed
    g = torch.Generator().manual_seed(1234)
    X = torch.as_tensor(tr, dtype=m.input.mean.dtype)
    idx = torch.randperm(X.shape[0], generator=g)[: m.n_units]
    with torch.no_grad():
        m.input.mean.copy_(X[idx][:, m.input.variables].T)
        if sfac is not None:
            inp = m.input
            s0 = inp.scale().detach() * sfac
            frac = ((s0 - inp.min_scale) / (inp.max_scale - inp.min_scale)).clamp(1e-6, 1 - 1e-6)
            inp.log_scale.copy_(torch.logit(frac))

def km(m, tr, seed=0, sfac=1.0, floor=0.05):
    from sklearn.cluster import KMeans
    K = m.n_units
    lab = KMeans(K, n_init=1, random_state=seed).fit(tr)
    C = lab.cluster_centers_
    S = np.stack([tr[lab.labels_ == k].std(0) if (lab.labels_ == k).sum() > 1 else np.ones(tr.shape[1]) for k in range(K)])
    inp = m.input
    v = inp.variables.numpy()
    with torch.no_grad():
        inp.mean.copy_(torch.as_tensor(C[:, v].T))
        s0 = torch.as_tensor(np.clip(sfac * S[:, v].T, floor, 0.9 * inp.max_scale))
        frac = ((s0 - inp.min_scale) / (inp.max_scale - inp.min_scale)).clamp(1e-6, 1 - 1e-6)
        inp.log_scale.copy_(torch.logit(frac))

def set_scale(inp, s0):
    with torch.no_grad():
        frac = ((s0 - inp.min_scale) / (inp.max_scale - inp.min_scale)).clamp(1e-6, 1 - 1e-6)
        inp.log_scale.copy_(torch.logit(frac))


def pts_s(m, tr, seed, sfac=None):
    g = torch.Generator().manual_seed(seed + 777)
    X = torch.as_tensor(tr, dtype=m.input.mean.dtype)
    idx = torch.randperm(X.shape[0], generator=g)[: m.n_units]
    with torch.no_grad():
        m.input.mean.copy_(X[idx][:, m.input.variables].T)
    if sfac is not None:
        set_scale(m.input, m.input.scale().detach() * sfac)


if __name__ == "__main__":
    which = sys.argv[1]; model = sys.argv[2]; dseed = int(sys.argv[3]); seeds = [int(s) for s in sys.argv[4].split(",")]
    name = sys.argv[5] if len(sys.argv) > 5 else "rings"
    K, epochs = 16, (60 if name == "rings" else 30)
    data = B.split(name, dseed)
    path = f"{OUT}/{name}{dseed}.npz"
    np.savez(path, train=data[0], valid=data[1], test=data[2])
    tree = [1, 0]
    for s in seeds:
        t = time.time()
        if which == "peer":
            out = f"{OUT}/peer_{name}_{dseed}_{model}_{s}.json"
            if not os.path.exists(out):
                subprocess.run([B.PEER_PY, B.PEER, path, model, str(K), str(epochs), str(s), out], check=True)
            r = json.load(open(out)); print(which, model, dseed, s, round(r["test_ll"], 4), round(r["valid_ll"], 4), r["tree"], f"{time.time()-t:.0f}s", flush=True)
        else:
            variant = eval(which)
            if name != "rings":
                tree = json.load(open(f"{OUT}/peer_{name}_{dseed}_{model}_{s}.json"))["tree"] if os.path.exists(f"{OUT}/peer_{name}_{dseed}_{model}_{s}.json") else None
            te, va = run_m(data, model, K, epochs, s, tree, variant)
            print(which, model, dseed, s, round(te, 4), round(va, 4), f"{time.time()-t:.0f}s", flush=True)
