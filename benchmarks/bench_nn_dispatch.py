"""MoE dispatch: mixstat's sorted grouped matmul against a per-expert loop and dense computation.

Same router output, same expert weights, for each (tokens, d, hidden, experts, k):

* ``grouped_mm``  mixstat ``MoELayer`` dispatch: sort by expert + ``F.grouped_mm``
* ``sorted loop``  mixstat: sort by expert + one matmul per contiguous split
* ``padded bmm``   mixstat: capacity-padded (E, C, d) buffer + ``bmm``
* ``mask loop``    the common per-expert loop (``torch.where(indices == e)``,
                   as in the Mixtral reference / transformers' "eager" experts)
* ``dense``        every expert on every token (einsum), the test oracle

Times are the minimum over repeats, in ms, forward and forward+backward
(gradients w.r.t. the input, the gates and all expert weights); ratios are
relative to ``grouped_mm`` (> 1: slower than mixstat's default). All paths are
checked to agree before timing.

Run:  .venv/bin/python benchmarks/bench_nn_dispatch.py [--device cuda] [--quick]

``--vs-dense``: the whole ``MoELayer`` (router, aux losses, dispatch) forward +
backward against a dense MLP of the same *active* FLOPs (hidden width
:math:`k h`), in interleaved rounds (each round times every variant once, in
turn, so that load from other processes hits all of them alike); reports the
median over rounds of the per-round ratio to the dense MLP.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mixstat.nn.gating import token_choice_routing  # noqa: E402
from mixstat.nn.moe import _grouped_mm_supported, expert_ffn_dispatch  # noqa: E402

CONFIGS = [
    # tokens, d, hidden, experts, k
    (256, 256, 512, 8, 2),
    (2048, 256, 512, 8, 2),
    (2048, 256, 128, 32, 4),
    (1024, 512, 1024, 16, 2),
]
QUICK = [(256, 256, 512, 8, 2), (2048, 256, 128, 32, 4)]
GPU_CONFIGS = [
    (4096, 1024, 2048, 8, 2),
    (16384, 1024, 1024, 64, 4),
    (32768, 2048, 1024, 64, 8),
]


def mask_loop(x, token_index, expert_index, weight, w1, b1, w2, b2):
    """The per-expert masked loop most MoE code starts from."""
    y = torch.zeros(x.shape[0], w2.shape[2], dtype=x.dtype, device=x.device)
    for e in range(w1.shape[0]):
        sel = torch.where(expert_index == e)[0]
        if sel.numel() == 0:
            continue
        tok = token_index[sel]
        h = F.gelu(x[tok] @ w1[e] + b1[e]) @ w2[e] + b2[e]
        y = y.index_add(0, tok, h * weight[sel, None])
    return y


def _paths(has_gmm):
    def mix(path):
        return lambda *a: expert_ffn_dispatch(*a, activation=F.gelu, dispatch=path)

    out = {}
    if has_gmm:
        out["grouped_mm"] = mix("grouped_mm")
    out["sorted loop"] = mix("loop")
    out["padded bmm"] = mix("padded")
    out["mask loop"] = mask_loop
    out["dense"] = mix("dense")
    return out


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeats):
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def bench_config(cfg, device, dtype, repeats, skip_dense_above=None):
    n, d, h, E, k = cfg
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(n, d, generator=g).to(device, dtype)
    logits = torch.randn(n, E, generator=g).to(device, dtype)
    params = [
        (torch.randn(E, d, h, generator=g) / d**0.5),
        (torch.randn(E, h, generator=g) * 0.1),
        (torch.randn(E, h, d, generator=g) / h**0.5),
        (torch.randn(E, d, generator=g) * 0.1),
    ]
    params = [p.to(device, dtype).requires_grad_(True) for p in params]
    x.requires_grad_(True)
    gates, idx, keep, _ = token_choice_routing(logits, k)
    tok = torch.arange(n, device=device)[:, None].expand_as(idx)[keep]
    exp = idx[keep]
    gw = gates[keep].detach().requires_grad_(True)
    args = (x, tok, exp, gw, *params)
    paths = _paths(_grouped_mm_supported(x, params[0], params[2]))
    if skip_dense_above is not None and n * E > skip_dense_above:
        paths.pop("dense")
    with torch.no_grad():
        ref = paths["sorted loop"](*args)
        for name, fn in paths.items():
            err = (fn(*args) - ref).abs().max().item()
            tol = 1e-3 if dtype == torch.float32 else 5e-2
            if err > tol * max(1.0, ref.abs().max().item()):
                raise AssertionError(f"{name} disagrees with the sorted loop by {err:.2e} on {cfg}")
    gout = torch.randn(n, d, generator=g).to(device, dtype)
    row = {"cfg": cfg}
    for name, fn in paths.items():
        with torch.no_grad():
            fwd = _time(lambda fn=fn: fn(*args), device, repeats)

        def fb(fn=fn):
            y = fn(*args)
            torch.autograd.grad(y, [x, gw, *params], gout)

        row[name] = (fwd, _time(fb, device, repeats))
    return row


def format_table(rows, title):
    names = []
    for r in rows:
        for key in r:
            if key != "cfg" and key not in names:
                names.append(key)
    base = "grouped_mm" if "grouped_mm" in names else "sorted loop"
    lines = [f"### {title}", "", "ms forward / forward+backward (ratio to "
             f"`{base}`, fwd / fwd+bwd)", ""]
    head = "| tokens, d, hidden, E, k | " + " | ".join(names) + " |"
    lines += [head, "|" + "---|" * (len(names) + 1)]
    for r in rows:
        b = r[base]
        cells = []
        for nme in names:
            if nme not in r:
                cells.append("-")
                continue
            f, fb = r[nme]
            cells.append(f"{f:.2f} / {fb:.2f} ({f / b[0]:.2f}x / {fb / b[1]:.2f}x)")
        lines.append("| " + ", ".join(map(str, r["cfg"])) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(device="cpu", dtype=torch.float32, configs=None, repeats=5, threads=1, skip_dense_above=None):
    device = torch.device(device)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    configs = configs or CONFIGS
    rows = [bench_config(c, device, dtype, repeats, skip_dense_above) for c in configs]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    title = (f"MoE dispatch on {device.type} ({name}), {dtype}, torch {torch.__version__}, "
             f"{'threads=' + str(torch.get_num_threads()) if device.type == 'cpu' else ''}")
    return format_table(rows, title)


VS_DENSE_CONFIGS = [
    # tokens, d, hidden, experts, k
    (1024, 256, 512, 8, 2),
    (1024, 256, 512, 16, 2),
    (4096, 256, 512, 8, 2),
    (4096, 256, 512, 16, 2),
    (1024, 512, 1024, 8, 2),
    (1024, 512, 1024, 16, 2),
]


def bench_layer_vs_dense(cfg, device, dtype, rounds, dispatches=("auto", "loop"),
                         clock=None):
    """Interleaved rounds of MoELayer fwd+bwd (each dispatch) and the dense MLP.

    ``clock``: ``time.perf_counter`` (wall, the default on GPUs) or
    ``time.process_time`` (this process's CPU time: on a shared CPU box with
    one intra-op thread it leaves out the time the process waits for a core).
    """
    if clock is None:
        clock = time.perf_counter if device.type != "cpu" else time.process_time
    from mixstat.nn import MoELayer

    n, d, h, E, k = cfg
    torch.manual_seed(0)
    x = torch.randn(n, d, device=device, dtype=dtype, requires_grad=True)
    gout = torch.randn(n, d, device=device, dtype=dtype)
    dense = torch.nn.Sequential(
        torch.nn.Linear(d, k * h), torch.nn.GELU(), torch.nn.Linear(k * h, d)
    ).to(device, dtype)
    layer = MoELayer(d, h, E, k=k, device=device, dtype=dtype)
    layer.router.check_finite = False  # as on an accelerator

    def run_dense():
        y = dense(x)
        torch.autograd.grad(y, [x, *dense.parameters()], gout)

    variants = {"dense MLP": run_dense}
    for disp in dispatches:
        def run_moe(disp=disp):
            y = layer(x, dispatch=disp)
            torch.autograd.grad([y, layer.aux_loss], [x, *layer.parameters()],
                                [gout, torch.ones_like(layer.aux_loss)])

        variants[f"MoE {disp}"] = run_moe
    for fn in variants.values():  # warm-up (grouped_mm probe, allocator)
        fn()
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            _sync(device)
            t0 = clock()
            fn()
            _sync(device)
            times[name].append((clock() - t0) * 1e3)
    base = times["dense MLP"]
    row = {"cfg": cfg, "path": layer._resolve_dispatch(x, "auto"), "clock": clock.__name__}
    for name, ts in times.items():
        ratios = sorted(t / b for t, b in zip(ts, base, strict=True))
        row[name] = (min(ts), sorted(ts)[len(ts) // 2], ratios[len(ratios) // 2])
    return row


def format_vs_dense(rows, title):
    names = [key for key in rows[0] if key not in ("cfg", "path", "clock")]
    lines = [f"### {title}", "", f"ms fwd+bwd ({rows[0]['clock']}), min / median over rounds "
             "(median per-round ratio to the dense MLP of the same active FLOPs)", ""]
    lines += ["| tokens, d, hidden, E, k | " + " | ".join(names) + " |",
              "|" + "---|" * (len(names) + 1)]
    for r in rows:
        cells = [f"{mn:.1f} / {md:.1f} ({ra:.2f}x)" for mn, md, ra in (r[nm] for nm in names)]
        lines.append("| " + ", ".join(map(str, r["cfg"])) + " | " + " | ".join(cells) + " |")
    lines += ["", f"'MoE auto' ran `{rows[0]['path']}`."]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the table (Markdown) here")
    ap.add_argument("--vs-dense", action="store_true",
                    help="MoELayer fwd+bwd against a dense MLP of the same active FLOPs")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    if args.vs_dense:
        device = torch.device(args.device)
        if device.type == "cpu" and args.threads:
            torch.set_num_threads(args.threads)
        configs = VS_DENSE_CONFIGS[:2] if args.quick else VS_DENSE_CONFIGS
        dtype = getattr(torch, args.dtype)
        rows = [bench_layer_vs_dense(c, device, dtype, args.rounds) for c in configs]
        table = format_vs_dense(rows, f"MoELayer vs dense MLP on {device.type}, {dtype}, torch "
                                f"{torch.__version__}, threads={torch.get_num_threads()}, "
                                f"{args.rounds} interleaved rounds")
        print(table)
        if args.out:
            with open(args.out, "w") as fh:
                fh.write(f"# MoELayer against a dense MLP of the same active FLOPs\n\n"
                         f"Command: `.venv/bin/python benchmarks/bench_nn_dispatch.py "
                         f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{table}\n")
        return
    configs = QUICK if args.quick else (GPU_CONFIGS + CONFIGS if args.device.startswith("cuda") else CONFIGS)
    table = run(args.device, getattr(torch, args.dtype), configs, args.repeats, args.threads)
    print(table)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"# MoE dispatch benchmark\n\nCommand: `.venv/bin/python benchmarks/bench_nn_dispatch.py "
                     f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n{table}\n")


if __name__ == "__main__":
    main()
