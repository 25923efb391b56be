"""Toy-scale claims of SiD, Multi-Student Distillation, multi-CFG distillation and MagicMix.

All on CPU, with teachers the script trains itself (mixstat.nn.teachers):

* ``sid``    2-D class-conditional mixture (4 classes x 2 modes): energy
             distance (ED, 2000 samples against 2000 held-out points) of the
             teacher's DDIM sampler at 1..64 steps and of SiD students with
             1, 2 and 4 steps. Claim: one-step ED within 1.5x the teacher's
             many-step ED; few steps better than one.
* ``msd``    8 classes x 2 modes: one SiD student covering all classes
             against K = 4 students (2 classes each) of the same width, and
             K = 4 students of half the width; equal SiD steps per student.
             Claim: K students beat one at equal size; smaller students
             match one larger.
* ``cfg``    guidance-conditioned student (one call per step) against the
             CFG teacher (two calls per step): relative error of the x0
             prediction to the guided teacher and ED between their 32-step
             samples (same initial noise) at w = 0..4; pure teacher
             supervision and mixed supervision (25 % data rows).
* ``magic``  MagicMix on a trained 8x8-digits teacher: distance of the
             output's 2x2 block means (low frequencies) to the source and
             the accuracy of a logistic-regression digit classifier for the
             content class, against nu.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/bench_nn_distillation.py [--quick] [--parts sid,msd,cfg,magic]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mixstat.nn import (  # noqa: E402
    ConditionalDenoiserMLP,
    MultiStudentGenerator,
    SiDGenerator,
    denoiser_sample,
    energy_distance,
    flow_noise,
    guided_denoise,
    load_digits_8x8,
    low_pass_8x8,
    magic_mix,
    make_class_mixture_2d,
    partition_conditions,
    sid_distill,
    teacher_score_matching,
    train_denoiser,
    train_multi_cfg_student,
)

torch.set_num_threads(1)
N_EVAL = 2000


def teacher_2d(n_classes, modes, steps, seed=0, width=128):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y = make_class_mixture_2d(20000, n_classes, modes, generator=g)
    T = ConditionalDenoiserMLP(2, n_classes, width, 3, sigma_data=1.5)
    t0 = time.perf_counter()
    train_denoiser(T, x, y, steps=steps, generator=g)
    return T.eval(), time.perf_counter() - t0


def eval_set(n_classes, modes):
    return make_class_mixture_2d(
        N_EVAL, n_classes, modes, generator=torch.Generator().manual_seed(99)
    )


def student(T, times, width=None):
    net = (
        copy.deepcopy(T)
        if width is None
        else ConditionalDenoiserMLP(2, T.n_classes, width, 3, sigma_data=1.5)
    )
    return SiDGenerator(net, times, shape=(2,))


def part_sid(a):
    M = a.modes
    T, tt = teacher_2d(4, M, a.teacher_steps)
    xe, ye = eval_set(4, M)
    floor = energy_distance(
        make_class_mixture_2d(
            N_EVAL, 4, M, labels=ye, generator=torch.Generator().manual_seed(5)
        )[0],
        xe,
    )
    print(
        f"\n### SiD on the 2-D class-conditional mixture (4 classes x {M} modes)\n\nteacher: MLP 3x128, "
        f"{a.teacher_steps} DSM steps ({tt:.0f} s); data-vs-data ED floor {floor:.4f}\n"
    )
    print(
        "| sampler | network calls | ED (mean over seeds) | per seed | ratio to teacher 64-step |"
    )
    print("|---|---|---|---|---|")
    rows = {}
    for n in (1, 2, 4, 8, 64):
        eds = [
            energy_distance(
                denoiser_sample(
                    T, ye, n, shape=(2,), generator=torch.Generator().manual_seed(s)
                ),
                xe,
            )
            for s in range(a.seeds)
        ]
        rows[f"teacher DDIM {n}-step"] = (n, eds)
    ref = float(np.mean(rows["teacher DDIM 64-step"][1]))
    for times in ((1.0,), (1.0, 0.6), (1.0, 0.75, 0.5, 0.25)):
        eds, secs = [], 0.0
        for s in range(a.seeds):
            G = student(T, times)
            t0 = time.perf_counter()
            sid_distill(
                T,
                G,
                steps=a.sid_steps,
                batch_size=256,
                lr=1e-3,
                sigma_data=1.5,
                cosine_lr=True,
                seed=s,
            )
            secs += time.perf_counter() - t0
            eds.append(
                energy_distance(
                    G.sample(ye, generator=torch.Generator().manual_seed(100 + s)), xe
                )
            )
        rows[
            f"SiD {len(times)}-step ({a.sid_steps} steps, {secs / a.seeds:.0f} s each)"
        ] = (len(times), eds)
    for name, (n, eds) in rows.items():
        m = float(np.mean(eds))
        print(
            f"| {name} | {n} | {m:.4f} | {', '.join(f'{e:.4f}' for e in eds)} | {m / ref:.2f} |"
        )


def part_msd(a):
    T, tt = teacher_2d(8, 2, a.teacher_steps, width=192)
    x, y = make_class_mixture_2d(
        20000, 8, 2, generator=torch.Generator().manual_seed(0)
    )
    xe, ye = eval_set(8, 2)
    print(
        f"\n### Multi-student distillation, 2-D mixture with 8 classes x 2 modes\n\nteacher: MLP 3x192, "
        f"{a.teacher_steps} DSM steps ({tt:.0f} s); students: MLP 3 x width, teacher score matching "
        f"({a.tsm_steps} steps) then one-step SiD ({a.msd_steps} steps, lr {a.msd_lr:g}) per student, contiguous class split\n"
    )
    ref = energy_distance(
        denoiser_sample(
            T, ye, 64, shape=(2,), generator=torch.Generator().manual_seed(0)
        ),
        xe,
    )
    print(f"teacher 64-step ED {ref:.4f}\n")
    print(
        "| students | width | params per student | ED after TSM only (mean) | ED after SiD (mean) | per seed |"
    )
    print("|---|---|---|---|---|---|")
    for K, width in (
        (1, a.msd_width),
        (4, a.msd_width),
        (4, a.msd_width // 2),
        (1, 2 * a.msd_width),
    ):
        assign = partition_conditions(8, K)
        eds, eds0 = [], []
        for s in range(a.seeds):
            torch.manual_seed(1000 * s + K)
            studs, studs0 = [], []
            for k in range(K):
                cls = torch.nonzero(assign == k).reshape(-1).tolist()
                net = ConditionalDenoiserMLP(2, 8, width, 3, sigma_data=1.5)
                teacher_score_matching(
                    net, T, x, y, classes=cls, steps=a.tsm_steps, seed=s
                )
                studs0.append(SiDGenerator(copy.deepcopy(net), (1.0,), shape=(2,)))
                G = SiDGenerator(net, (1.0,), shape=(2,))
                sid_distill(
                    T,
                    G,
                    fake=copy.deepcopy(T),
                    steps=a.msd_steps,
                    batch_size=256,
                    lr=a.msd_lr,
                    sigma_data=1.5,
                    cosine_lr=True,
                    seed=s,
                    classes=cls,
                )
                studs.append(G)
            for lst, ss in ((studs0, eds0), (studs, eds)):
                msg = MultiStudentGenerator(lst, assign)
                ss.append(
                    energy_distance(
                        msg.sample(ye, generator=torch.Generator().manual_seed(7 + s)),
                        xe,
                    )
                )
        n_par = sum(p.numel() for p in studs[0].parameters())
        print(
            f"| {K} | {width} | {n_par} | {float(np.mean(eds0)):.4f} | {float(np.mean(eds)):.4f} | "
            f"{', '.join(f'{e:.4f}' for e in eds)} |",
            flush=True,
        )


class Counter(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, *args):
        self.calls += 1
        return self.net(*args)


def part_cfg(a):
    T, tt = teacher_2d(4, 2, a.teacher_steps)
    g = torch.Generator().manual_seed(0)
    x, y = make_class_mixture_2d(20000, 4, 2, generator=g)
    print(
        f"\n### Multi-CFG distillation, 2-D mixture (4 classes x 2 modes)\n\nteacher as in the SiD table "
        f"({tt:.0f} s); student MLP 3x128 with w as input, {a.cfg_steps} steps, w ~ U[0, 4]\n"
    )
    ge = torch.Generator().manual_seed(1)
    x0, c = make_class_mixture_2d(4000, 4, 2, generator=ge)
    t = 0.05 + 0.9 * torch.rand(4000, generator=ge)
    x_t = flow_noise(x0, t, torch.randn(4000, 2, generator=ge))
    c_s = torch.arange(4).repeat(500)
    students = {}
    for frac in (0.0, 0.25):
        torch.manual_seed(0)
        S = ConditionalDenoiserMLP(2, 4, 128, 3, sigma_data=1.5, guidance_input=True)
        t0 = time.perf_counter()
        train_multi_cfg_student(
            S,
            T,
            x,
            y,
            steps=a.cfg_steps,
            scale_range=(0.0, 4.0),
            data_fraction=frac,
            seed=0,
        )
        students[frac] = (S.eval(), time.perf_counter() - t0)
    print(
        "| w | supervision | rel. error of x0-prediction | ED(student 32-step, teacher CFG 32-step) |"
        " ED(teacher CFG, teacher CFG other noise) | calls student / teacher |"
    )
    print("|---|---|---|---|---|---|")
    for w in (0.0, 1.0, 2.0, 3.0, 4.0):
        with torch.no_grad():
            target = guided_denoise(T, x_t, t, c, w)
        ct = Counter(T)
        ref = denoiser_sample(
            ct,
            c_s,
            32,
            shape=(2,),
            guidance=w,
            null_class=4,
            generator=torch.Generator().manual_seed(3),
        )
        ref2 = denoiser_sample(
            T,
            c_s,
            32,
            shape=(2,),
            guidance=w,
            generator=torch.Generator().manual_seed(4),
        )
        for frac, (S, _secs) in students.items():
            with torch.no_grad():
                rel = float(
                    ((S(x_t, t, c, w) - target) ** 2).sum(-1).mean()
                    / (target**2).sum(-1).mean()
                )
            cs = Counter(S)
            out = denoiser_sample(
                lambda xx, tt_, cc, w=w, cs=cs: cs(xx, tt_, cc, w),
                c_s,
                32,
                shape=(2,),
                generator=torch.Generator().manual_seed(3),
            )
            sup = (
                "teacher only"
                if frac == 0
                else f"mixed ({int(frac * 100)} % data rows)"
            )
            print(
                f"| {w:g} | {sup} | {rel:.4f} | {energy_distance(out, ref):.4f} | "
                f"{energy_distance(ref2, ref):.4f} | {cs.calls} / {ct.calls} |"
            )


def part_magic(a):
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits_8x8()
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    T = ConditionalDenoiserMLP(64, 10, 256, 3, sigma_data=0.6)
    t0 = time.perf_counter()
    train_denoiser(T, X, y, steps=a.digits_steps, generator=g)
    T.eval()
    tt = time.perf_counter() - t0
    clf = LogisticRegression(max_iter=2000).fit(X.numpy(), y.numpy())
    src = X[:200]
    content = (y[:200] + 1 + torch.randint(0, 9, (200,), generator=g)) % 10
    print(
        f"\n### MagicMix on the 8x8 digits teacher\n\nteacher: MLP 3x256, {a.digits_steps} DSM steps "
        f"({tt:.0f} s); 200 (source, other-class content) pairs, k_max=0.7, k_min=0.4, 40 steps, CFG w=2; "
        "low-freq. distance = mean squared distance of 2x2 block means to the source's\n"
    )
    print(
        "| sampler | nu | low-freq. distance to source | content-class accuracy | source-class accuracy |"
    )
    print("|---|---|---|---|---|")

    def row(name, nu, out):
        low = float(((low_pass_8x8(out) - low_pass_8x8(src)) ** 2).sum(-1).mean())
        pred = torch.as_tensor(clf.predict(out.numpy()))
        print(
            f"| {name} | {nu} | {low:.3f} | {float((pred == content).float().mean()):.2f} | "
            f"{float((pred == y[:200]).float().mean()):.2f} |"
        )

    gen = torch.Generator().manual_seed(1)
    row(
        "plain conditional (from noise)",
        "-",
        denoiser_sample(T, content, 40, shape=(64,), guidance=2.0, generator=gen),
    )
    row(
        "SDEdit from k_max (= MagicMix nu=1)",
        "1.0",
        magic_mix(
            T,
            src,
            content,
            nu=1.0,
            k_max=0.7,
            k_min=0.4,
            n_steps=40,
            guidance=2.0,
            generator=torch.Generator().manual_seed(1),
        ),
    )
    for nu in (0.75, 0.5, 0.25):
        row(
            "MagicMix",
            f"{nu}",
            magic_mix(
                T,
                src,
                content,
                nu=nu,
                k_max=0.7,
                k_min=0.4,
                n_steps=40,
                guidance=2.0,
                generator=torch.Generator().manual_seed(1),
            ),
        )
    row("source itself", "-", src)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="sid,msd,cfg,magic")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument(
        "--modes", type=int, default=2, help="modes per class in the SiD part"
    )
    a = ap.parse_args()
    a.teacher_steps, a.sid_steps, a.cfg_steps, a.digits_steps, a.msd_width = (
        3000,
        3000,
        2000,
        4000,
        32,
    )
    a.msd_steps, a.tsm_steps, a.msd_lr = 2000, 2000, 1e-3
    if a.quick:
        a.teacher_steps, a.sid_steps, a.cfg_steps, a.digits_steps, a.seeds = (
            300,
            200,
            200,
            300,
            1,
        )
        a.msd_steps, a.tsm_steps = 100, 50
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, "
        f"{'quick' if a.quick else 'full'} run"
    )
    t0 = time.perf_counter()
    for p in a.parts.split(","):
        {"sid": part_sid, "msd": part_msd, "cfg": part_cfg, "magic": part_magic}[p](a)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
