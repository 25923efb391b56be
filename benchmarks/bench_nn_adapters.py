"""Adapters and multimodal routing at CPU scale: MiLoRA, clusters, Transfusion, SVDiff.

Four sections (``--only`` picks some), each a minute or two of one CPU thread:

``milora``
    A 2-layer causal transformer pretrained on "copy", then adapters
    fine-tuned on four prompt-identified tasks (copy, reverse, +1, reverse+1
    of six digits). Latency per generated token (greedy decoding, whole
    sequence recomputed each step, no key/value cache) and exact-match
    accuracy for: the base model, LoRA, MiLoRA (prompt routing, computed once
    per prompt), MiLoRA merged into the weights (batch 1), and per-token
    routed MoE-LoRA (same experts, a router call per token and step).
``clusters``
    Kawata et al. (2025)'s clustered single-index data
    (``make_latent_cluster_regression``): an ``nn.MoELayer`` (top-1, one
    expert per cluster) against a dense network of the same size (one expert
    with all the hidden units), same SGD; test MSE and the router's adjusted
    Rand index against the true clusters over training.
``transfusion``
    A tiny Transfusion model on scikit-learn's 8x8 digits (16 patches of
    2x2): label -> image and image -> label sequences, trained for a fixed
    time budget; class accuracy of image -> label and, for label -> image,
    the share of generated digits that a logistic regression fitted on real
    digits assigns to the asked class.
``svdiff``
    A small MLP noise-prediction denoiser pretrained on all digits,
    fine-tuned on 20 images of one class with spectral shifts (SVDiff),
    LoRA and full fine-tuning at equal steps: trainable parameters,
    denoising loss on held-out images of the class and of the other classes,
    and the share of samples classified as the class.

Run::

    python benchmarks/bench_nn_adapters.py [--only milora clusters ...] [--quick]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mixstat.datasets import make_latent_cluster_regression  # noqa: E402
from mixstat.nn import (  # noqa: E402
    LoRALinear,
    MiLoRA,
    MoELayer,
    TransfusionModel,
    apply_spectral_shifts,
    pack_image_sequence,
)

LINES = []


def emit(line=""):
    print(line, flush=True)
    LINES.append(line)


# ===================================================================== MiLoRA
class CausalLM(nn.Module):
    """A small pre-norm causal transformer with q, k, v, o, up, down linears."""

    def __init__(self, vocab, d=64, n_layers=2, n_heads=4, max_len=32):
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList()
        for _ in range(n_layers):
            b = nn.Module()
            b.n1, b.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            b.q, b.k, b.v, b.o = (nn.Linear(d, d) for _ in range(4))
            b.up, b.down = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.blocks.append(b)
        self.norm, self.head, self.n_heads = (
            nn.LayerNorm(d),
            nn.Linear(d, vocab),
            n_heads,
        )

    def forward(self, ids):
        B, T = ids.shape
        h = self.emb(ids) + self.pos(torch.arange(T))
        for b in self.blocks:
            z = b.n1(h)
            q, k, v = (
                m(z).reshape(B, T, self.n_heads, -1).transpose(1, 2)
                for m in (b.q, b.k, b.v)
            )
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + b.o(a.transpose(1, 2).reshape(B, T, -1))
            h = h + b.down(F.gelu(b.up(b.n2(h))))
        return self.head(self.norm(h))


N_DIG, SEP, TASK0, L = 10, 10, 11, 6
VOCAB = TASK0 + 4
TARGETS = [
    lambda a: a,
    lambda a: a.flip(-1),
    lambda a: (a + 1) % 10,
    lambda a: ((a + 1) % 10).flip(-1),
]


def task_batch(n, tasks, g):
    task = torch.as_tensor(tasks)[torch.randint(0, len(tasks), (n,), generator=g)]
    a = torch.randint(0, N_DIG, (n, L), generator=g)
    b = torch.stack([TARGETS[int(t)](a[i]) for i, t in enumerate(task)])
    prompt = torch.cat([(TASK0 + task)[:, None], a, torch.full((n, 1), SEP)], 1)
    return prompt, b


def train_lm(model, params, tasks, steps, lr, g, wrapper=None, batch=64):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for _ in range(steps):
        prompt, b = task_batch(batch, tasks, g)
        ids = torch.cat([prompt, b], 1)
        if wrapper is not None:
            logits = wrapper(
                ids[:, :-1], prompt_lengths=torch.full((batch,), prompt.shape[1])
            )
        else:
            logits = model(ids[:, :-1])
        P = prompt.shape[1]
        loss = F.cross_entropy(
            logits[:, P - 1 :].reshape(-1, VOCAB), ids[:, P:].reshape(-1)
        )
        if wrapper is not None and wrapper.aux_loss is not None:
            loss = loss + wrapper.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def greedy(model, prompt, n_new):
    ids = prompt
    for _ in range(n_new):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], 1)
    return ids


@torch.no_grad()
def exact_match(gen_fn, tasks, n, seed):
    g = torch.Generator().manual_seed(seed)
    prompt, b = task_batch(n, tasks, g)
    out = gen_fn(prompt)[:, prompt.shape[1] :]
    return float((out == b).all(1).float().mean())


def time_per_token(gen_fn, prompt, n_new, repeats):
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        gen_fn(prompt)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / n_new


def bench_milora(quick):
    emit(
        "## MiLoRA: latency per generated token and accuracy (small causal transformer)"
    )
    emit()
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    base = CausalLM(VOCAB)
    t0 = time.perf_counter()
    train_lm(base, list(base.parameters()), [0], 300 if quick else 600, 3e-3, g)
    pre_s = time.perf_counter() - t0
    tasks = [0, 1, 2, 3]
    steps = 150 if quick else 300
    targets = ["q", "k", "v", "o", "up", "down"]
    variants = {}

    def lora_model():
        m = copy.deepcopy(base)
        for p in m.parameters():
            p.requires_grad_(False)
        for name, mod in list(m.named_modules()):
            if isinstance(mod, nn.Linear) and name.split(".")[-1] in targets:
                parent, _, child = name.rpartition(".")
                setattr(m.get_submodule(parent), child, LoRALinear(mod, rank=8))
        return m

    m = lora_model()
    variants["LoRA (rank 8)"] = (m, None)
    for label, kw in [
        (
            "MiLoRA (4 experts/linear, top-2, prompt routing, mean pooling)",
            dict(routing="prompt", pooling="mean"),
        ),
        ("MiLoRA (same, last-token pooling)", dict(routing="prompt", pooling="last")),
        (
            "MoE-LoRA (4 experts/linear, top-2, per-token routing)",
            dict(routing="token"),
        ),
    ]:
        w = MiLoRA(copy.deepcopy(base), targets, n_experts=4, rank=2, k=2, **kw)
        variants[label] = (w.model, w)
    w = MiLoRA(
        copy.deepcopy(base),
        targets,
        n_experts=1,
        rank=8,
        k=3,
        pooling="mean",
        group_by=lambda n: n.split(".")[1],
    )
    variants[
        "MiLoRA (paper layout: each module an expert, top-3 of 6 per layer, mean "
        "pooling)"
    ] = (w.model, w)
    rows = []
    base_acc = exact_match(lambda p: greedy(base, p, L), tasks, 400, 123)
    for label, (model, wrapper) in variants.items():
        params = [p for p in (wrapper or model).parameters() if p.requires_grad]
        n_params = sum(p.numel() for p in params)
        t0 = time.perf_counter()
        train_lm(
            model, params, tasks, steps, 3e-3, torch.Generator().manual_seed(1), wrapper
        )
        train_s = time.perf_counter() - t0
        gen = (
            (lambda p, w=wrapper: w.generate(p, L))
            if wrapper
            else (lambda p, m=model: greedy(m, p, L))
        )
        acc = exact_match(gen, tasks, 400, 123)
        rows.append([label, n_params, train_s, acc, model, wrapper])
    emit(
        f"Base pretrained on task 'copy' only ({pre_s:.0f} s); adapters trained "
        f"{steps} steps, "
        "batch 64, AdamW 3e-3, on copy / reverse / +1 / reverse+1 (the task is the "
        "prompt's "
        "first token). Exact match of all 6 generated digits on 400 held-out prompts."
    )
    emit()
    repeats = 3 if quick else 7
    for bsz in (1, 8):
        prompt, _ = task_batch(bsz, tasks, torch.Generator().manual_seed(5))
        t_base = time_per_token(lambda p: greedy(base, p, L), prompt, L, repeats)
        for row in rows:
            model, wrapper = row[4], row[5]
            gen = (
                (lambda p, w=wrapper: w.generate(p, L))
                if wrapper
                else (lambda p, m=model: greedy(m, p, L))
            )
            row.append(time_per_token(gen, prompt, L, repeats))
            if wrapper is not None and bsz == 1:
                if wrapper.routing == "prompt":
                    # route once from the prompt, fold the gated experts in
                    wrapper.reset_routing()
                    with torch.no_grad():
                        wrapper.model(prompt)
                    wrapper.merge()
                    row.append(
                        time_per_token(
                            lambda p, m=model: greedy(m, p, L), prompt, L, repeats
                        )
                    )
                    wrapper.unmerge()
                else:
                    row.append(None)
            elif bsz == 1:
                model_m = model
                for mod in model_m.modules():
                    if isinstance(mod, LoRALinear):
                        mod.merge()
                row.append(
                    time_per_token(
                        lambda p, m=model_m: greedy(m, p, L), prompt, L, repeats
                    )
                )
                for mod in model_m.modules():
                    if isinstance(mod, LoRALinear):
                        mod.unmerge()
        if bsz == 1:
            t_base1 = t_base
        else:
            t_base8 = t_base
    emit(
        "| method | trainable params | train s | exact match | ms/token, batch 1 | "
        "merged, batch 1 "
        "| ms/token, batch 8 | ratio to base (b1 / b8) |"
    )
    emit("|---|---|---|---|---|---|---|---|")
    emit(
        f"| base model (no adapter) | 0 | - | {base_acc:.3f} | {t_base1:.2f} | - | "
        f"{t_base8:.2f} "
        "| 1.00 / 1.00 |"
    )
    for label, n_params, train_s, acc, _, _, t1, tm, t8 in rows:
        merged = f"{tm:.2f}" if tm is not None else "n/a (per-token gates)"
        emit(
            f"| {label} | {n_params} | {train_s:.0f} | {acc:.3f} | {t1:.2f} | "
            f"{merged} | {t8:.2f} "
            f"| {t1 / t_base1:.2f} / {t8 / t_base8:.2f} |"
        )
    emit()


# ===================================================================== clusters
def bench_clusters(quick, seed=0):
    from sklearn.metrics import adjusted_rand_score

    emit(f"## MoE detects latent clusters (Kawata et al. 2025 data), seed {seed}")
    emit()
    d, C, n = 16, 4, 20000
    epochs = 20 if quick else 40
    X, y, p = make_latent_cluster_regression(
        n + 4000,
        d,
        C,
        cluster_scale=3.0,
        noise=0.1,
        random_state=seed,
        return_params=True,
    )
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    Xtr, ytr, Xte, yte, lab = X[:n], y[:n], X[n:], y[n:], p["labels"][n:]
    emit(
        f"d={d}, C={C} clusters, rho=3, He_3 links (information exponent 3) plus the "
        f"cancelling global task, noise 0.1; {n} training and 4000 test samples; "
        "Var(y) = "
        f"{float(yte.var()):.2f}. SGD (lr 0.02, momentum 0.9, batch 64), {epochs} "
        "epochs, "
        "MSE + 0.1 x Switch balance loss for the MoE."
    )
    emit()
    curves = {}
    for label, E, h in (
        ("MoE (4 experts x 32 hidden, top-1)", C, 32),
        ("dense (1 expert x 128 hidden)", 1, 128),
    ):
        torch.manual_seed(seed)
        moe = MoELayer(
            d,
            h,
            E,
            k=1,
            activation="relu",
            balance_coef=0.1 if E > 1 else 0.0,
            z_coef=0.0,
        )
        head = nn.Linear(d, 1)
        params = [*moe.parameters(), *head.parameters()]
        n_params = sum(q.numel() for q in params)
        opt = torch.optim.SGD(params, lr=0.02, momentum=0.9)
        g = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        curve = []
        for ep in range(epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, 64):
                idx = perm[i : i + 64]
                loss = (head(moe(Xtr[idx])).squeeze(-1) - ytr[idx]).pow(
                    2
                ).mean() + moe.aux_loss
                opt.zero_grad()
                loss.backward()
                opt.step()
            if (ep + 1) % 5 == 0:
                with torch.no_grad():
                    mse = float((head(moe(Xte)).squeeze(-1) - yte).pow(2).mean())
                    ari = (
                        adjusted_rand_score(lab, moe.router_output.expert_index.numpy())
                        if E > 1
                        else float("nan")
                    )
                curve.append((ep + 1, mse, ari))
        curves[label] = (n_params, time.perf_counter() - t0, curve)
    labels = list(curves)
    emit(
        "| epoch | "
        + " | ".join(f"{lb}: test MSE" for lb in labels)
        + " | MoE router ARI |"
    )
    emit("|---|" + "---|" * (len(labels) + 1))
    for i in range(len(curves[labels[0]][2])):
        ep = curves[labels[0]][2][i][0]
        cells = [f"{curves[lb][2][i][1]:.3f}" for lb in labels]
        emit(
            f"| {ep} | " + " | ".join(cells) + f" | {curves[labels[0]][2][i][2]:.3f} |"
        )
    emit()
    for lb in labels:
        emit(f"- {lb}: {curves[lb][0]} parameters, {curves[lb][1]:.0f} s")
    emit()


# ===================================================================== digits helpers
def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 8.0 - 1.0  # [-1, 1]
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def digit_classifier(Xtr, ytr):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, C=1.0).fit(Xtr, ytr)


def to_patches(X):
    """(n, 64) 8x8 images -> (n, 16, 4) 2x2 patches, row-major."""
    x = torch.as_tensor(X, dtype=torch.float32).reshape(-1, 4, 2, 4, 2)
    return x.permute(0, 1, 3, 2, 4).reshape(-1, 16, 4)


def from_patches(P):
    x = P.reshape(-1, 4, 4, 2, 2).permute(0, 1, 3, 2, 4)
    return x.reshape(-1, 64)


# ===================================================================== Transfusion
BOS, BOI, EOI, NULL = 10, 11, 12, 13


def bench_transfusion(quick, budget_s):
    emit("## Transfusion on 8x8 digits (tiny model, CPU budget)")
    emit()
    Xtr, Xte, ytr, yte = digits_split()
    clf = digit_classifier(Xtr, ytr)
    Ptr, Ytr = to_patches(Xtr), torch.as_tensor(ytr)
    torch.manual_seed(0)
    model = TransfusionModel(14, 4, 20, 16, d_model=64, n_heads=4, n_layers=3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    n_tr, bsz, steps = Ptr.shape[0], 64, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < budget_s:
        idx = torch.randint(0, n_tr, (bsz,), generator=g)
        lab = Ytr[idx].clone()
        half = bsz // 2
        lab_gen = lab[:half].clone()
        drop = torch.rand(half, generator=g) < 0.1  # condition dropout, for guidance
        lab_gen[drop] = NULL
        ones = torch.ones(half, 1, dtype=torch.long)
        tok_a, pa, ii_a = pack_image_sequence(
            torch.cat([BOS * ones, lab_gen[:, None], BOI * ones], 1),
            16,
            EOI * ones,
            Ptr[idx[:half]],
        )
        tok_b, pb, ii_b = pack_image_sequence(
            torch.cat([BOS * ones, BOI * ones], 1),
            16,
            torch.cat([EOI * ones, lab[half:, None]], 1),
            Ptr[idx[half:]],
        )
        # the two layouts have the same length (20): one batch
        tok, pat, ii = (
            torch.cat([tok_a, tok_b]),
            torch.cat([pa, pb]),
            torch.cat([ii_a, ii_b]),
        )
        t = torch.randint(0, 1000, (bsz,), generator=g)
        t[half:] = torch.randint(
            0, 500, (bsz - half,), generator=g
        )  # image before text: cap noise
        loss, lm, diff = model.training_loss(tok, pat, ii, t=t, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    train_s = time.perf_counter() - t0
    model.eval()
    # image -> label
    Pte = to_patches(Xte)
    ones = torch.ones(len(yte), 1, dtype=torch.long)
    tok, pat, ii = pack_image_sequence(
        torch.cat([BOS * ones, BOI * ones], 1), 16, EOI * ones, Pte
    )
    logits = model.next_token_logits(tok, pat, ii)[:, :10]
    acc_cls = float((logits.argmax(-1).numpy() == yte).mean())
    # label -> image, 10 per class
    n_per = 10 if quick else 20
    lab = torch.arange(10).repeat_interleave(n_per)
    ones = torch.ones(len(lab), 1, dtype=torch.long)
    tok, _, ii = pack_image_sequence(
        torch.cat([BOS * ones, lab[:, None], BOI * ones], 1),
        16,
        EOI * ones,
        patch_dim=4,
    )
    unc = tok.clone()
    unc[:, 1] = NULL
    res = {}
    for w in (0.0, 2.0):
        out = model.sample_image(
            tok,
            ii,
            n_steps=50,
            guidance_scale=w,
            uncond_tokens=unc,
            generator=torch.Generator().manual_seed(1),
        )
        imgs = from_patches(out[:, 3:19]).numpy()
        res[w] = float((clf.predict(imgs) == lab.numpy()).mean())
    real = float((clf.predict(Xte) == yte).mean())
    emit(
        f"d_model 64, 3 layers, 4 heads ({sum(p.numel() for p in model.parameters())} "
        "parameters); raw 2x2 pixel patches; batch 64 (half label->image, half "
        "image->label), "
        f"AdamW 1e-3, lambda = 5, label dropout 0.1; trained {steps} steps in "
        f"{train_s:.0f} s "
        f"(last batch: LM loss {lm.item():.3f}, diffusion loss {diff.item():.3f})."
    )
    emit()
    emit("| measure | value |")
    emit("|---|---|")
    emit(f"| image -> label accuracy (450 test digits, clean image) | {acc_cls:.3f} |")
    emit(
        "| label -> image: generated digits classified as the asked class, DDIM "
        "50 steps, "
        f"no guidance ({10 * n_per} samples) | {res[0.0]:.3f} |"
    )
    emit(f"| same with classifier-free guidance w = 2 | {res[2.0]:.3f} |")
    emit(f"| the classifier (logistic regression) on real test digits | {real:.3f} |")
    emit()


# ===================================================================== SVDiff
class MLPDenoiser(nn.Module):
    def __init__(self, d=64, h=256):
        super().__init__()
        self.t_dim = 32
        self.net = nn.Sequential(
            nn.Linear(d + self.t_dim, h),
            nn.SiLU(),
            nn.Linear(h, h),
            nn.SiLU(),
            nn.Linear(h, d),
        )

    def forward(self, x, t):
        half = self.t_dim // 2
        f = torch.exp(-math.log(1000.0) * torch.arange(half) / half)
        a = t.float()[:, None] * f
        return self.net(torch.cat([x, torch.cos(a), torch.sin(a)], -1))


def _ab(t):
    s = 0.008
    return (
        torch.cos((t.float() / 1000 + s) / (1 + s) * math.pi / 2) ** 2
        / math.cos(s / (1 + s) * math.pi / 2) ** 2
    ).clamp(1e-5, 1.0)


def _dsm_loss(model, x0, g):
    t = torch.randint(0, 1000, (x0.shape[0],), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    ab = _ab(t)[:, None]
    return (model(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t) - eps).pow(2).mean()


@torch.no_grad()
def _eval_loss(model, x0, n_rep=8):
    g = torch.Generator().manual_seed(99)
    return float(np.mean([_dsm_loss(model, x0, g).item() for _ in range(n_rep)]))


@torch.no_grad()
def _sample(model, n, steps=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 64, generator=g)
    ts = torch.linspace(999, 0, steps).round().long()
    x0 = x
    for i, t in enumerate(ts):
        tb = t.expand(n)
        eps = model(x, tb)
        ab = _ab(t)
        abp = _ab(ts[i + 1]) if i + 1 < steps else torch.tensor(1.0)
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        x = abp.sqrt() * x0 + (1 - abp).sqrt() * eps
    return x0


def bench_svdiff(quick):
    emit("## SVDiff: fine-tuning a pretrained digits denoiser on one class")
    emit()
    Xtr, Xte, ytr, yte = digits_split()
    clf = digit_classifier(Xtr, ytr)
    Xtr_t, Xte_t = (
        torch.tensor(Xtr, dtype=torch.float32),
        torch.tensor(Xte, dtype=torch.float32),
    )
    torch.manual_seed(0)
    teacher = MLPDenoiser()
    opt = torch.optim.AdamW(teacher.parameters(), lr=2e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    pre_steps = 1500 if quick else 4000
    t0 = time.perf_counter()
    for _ in range(pre_steps):
        idx = torch.randint(0, Xtr_t.shape[0], (128,), generator=g)
        loss = _dsm_loss(teacher, Xtr_t[idx], g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    pre_s = time.perf_counter() - t0
    target = 3
    few = Xtr_t[torch.as_tensor(ytr == target)][:20]
    held_in, held_out = (
        Xte_t[torch.as_tensor(yte == target)],
        Xte_t[torch.as_tensor(yte != target)],
    )
    steps = 300 if quick else 600

    def make(kind):
        m = copy.deepcopy(teacher)
        if kind == "lora":
            for p in m.parameters():
                p.requires_grad_(False)
            for i, mod in enumerate(m.net):
                if isinstance(mod, nn.Linear):
                    m.net[i] = LoRALinear(mod, rank=4)
        elif kind == "svdiff":
            apply_spectral_shifts(m)
        return m

    n_samp = 200
    rows = [
        (
            "pretrained (no fine-tuning)",
            "-",
            0,
            _eval_loss(teacher, held_in),
            _eval_loss(teacher, held_out),
            float((clf.predict(_sample(teacher, n_samp).numpy()) == target).mean()),
            0.0,
        )
    ]
    grid = {
        "svdiff": (1e-3, 1e-2, 1e-1),
        "lora": (1e-4, 1e-3, 1e-2),
        "full": (1e-5, 1e-4, 1e-3),
    }
    names = {
        "svdiff": "spectral shifts (SVDiff)",
        "lora": "LoRA rank 4",
        "full": "full fine-tuning",
    }
    for kind, lrs in grid.items():
        for lr in lrs:
            m = make(kind)
            params = [p for p in m.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
            g = torch.Generator().manual_seed(1)
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = _dsm_loss(m, few, g)
                opt.zero_grad()
                loss.backward()
                opt.step()
            secs = time.perf_counter() - t0
            share = float((clf.predict(_sample(m, n_samp).numpy()) == target).mean())
            rows.append(
                (
                    names[kind],
                    f"{lr:g}",
                    sum(p.numel() for p in params),
                    _eval_loss(m, held_in),
                    _eval_loss(m, held_out),
                    share,
                    secs,
                )
            )
    emit(
        f"Teacher: MLP 64+32 -> 256 -> 256 -> 64 (eps prediction, cosine schedule), "
        f"{sum(p.numel() for p in teacher.parameters())} parameters, pretrained "
        f"{pre_steps} steps "
        f"on all training digits ({pre_s:.0f} s). Fine-tuning: 20 training images "
        "of class "
        f"{target}, {steps} steps of batch 20, AdamW at three learning rates "
        "per method. Denoising loss = E||eps - eps_theta||^2 on held-out digits "
        f"(8 noise draws); samples: {n_samp} DDIM-50 draws, classified by a "
        "logistic regression."
    )
    emit()
    emit(
        f"| method | lr | trainable params | loss, held-out class {target} | loss, "
        "other classes "
        f"| samples classified as {target} | train s |"
    )
    emit("|---|---|---|---|---|---|---|")
    for label, lr, n_params, li, lo, share, secs in rows:
        emit(
            f"| {label} | {lr} | {n_params} | {li:.4f} | {lo:.4f} | {share:.3f} | "
            f"{secs:.1f} |"
        )
    emit()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="sections: milora clusters transfusion svdiff",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--transfusion-seconds",
        type=float,
        default=None,
        help="training budget of the Transfusion model (default 120, quick 30)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the clusters section")
    ap.add_argument("--out", default=None, help="write the tables (Markdown) here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sections = args.only or ["milora", "clusters", "transfusion", "svdiff"]
    emit(
        f"torch {torch.__version__}, {platform.machine()}, 1 thread"
        + (", --quick" if args.quick else "")
    )
    emit()
    budget = args.transfusion_seconds or (30.0 if args.quick else 120.0)
    for s in sections:
        t0 = time.perf_counter()
        if s == "milora":
            bench_milora(args.quick)
        elif s == "clusters":
            bench_clusters(args.quick, args.seed)
        elif s == "transfusion":
            bench_transfusion(args.quick, budget)
        elif s == "svdiff":
            bench_svdiff(args.quick)
        else:
            raise SystemExit(f"unknown section {s!r}")
        print(f"[{s}: {time.perf_counter() - t0:.0f} s]", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
