r"""Distilling a pretrained diffusion teacher: SiD, multi-student, multi-CFG.

All three act on a denoiser ``D(x_t, t, c)`` that estimates :math:`E[x_0\mid x_t, c]`
under :math:`x_t = (1-t)x_0 + t\epsilon` (the convention of
:mod:`mixstat.nn.teachers`; :math:`a_t = 1-t`, :math:`\sigma_t = t`).

**Score identity Distillation** (Zhou, Zheng, Wang, Yin & Huang, "Score
identity Distillation: exponentially fast distillation of pretrained diffusion
models for one-step generation", ICML 2024, arXiv:2404.04057; few-step:
Zhou et al., "Few-step diffusion via Score identity Distillation",
arXiv:2505.12674). A generator :math:`x_g = G_\theta(z, c)` is trained
without data. Two denoisers are evaluated at :math:`x_t = a_t x_g + \sigma_t\epsilon`:
the frozen teacher :math:`f_\phi` (the score of the data) and a *fake* denoiser
:math:`f_\psi`, trained on generated samples by denoising score matching
(:func:`sid_fake_loss`). The generator minimises (:func:`sid_generator_loss`)

.. math::
    \mathcal L_\theta = \frac{\omega(t) a_t^2}{\sigma_t^4}\Big[
    (f_\phi - f_\psi)^\top (f_\phi - x_g) - \alpha\,\|f_\phi - f_\psi\|^2\Big]
    = \frac{\omega(t) a_t^2}{\sigma_t^4}\Big[(1-\alpha)\|f_\phi - f_\psi\|^2
    + (f_\phi - f_\psi)^\top (f_\psi - x_g)\Big],

with :math:`f_\cdot = f_\cdot(x_t, t, c)`, gradients flowing through
:math:`x_t` into both networks (their parameters frozen), the published
:math:`\alpha = 1.2`, and the published weight
:math:`\omega(t)a_t^2/\sigma_t^4 = 1/\overline{|x_g - f_\phi(x_t)|}` (mean
over dimensions, no gradient). *Score identity*: when :math:`f_\psi` is the
exact posterior mean of the generator's distribution,
:math:`E[(f_\phi - f_\psi)^\top(f_\psi - x_g)] = 0` (Tweedie), so
:math:`E[\mathcal L_\theta] = (1-\alpha)\,E\|f_\phi - f_\psi\|^2`, the
model-based Fisher divergence :math:`a_t^{-2}\sigma_t^4 E\|\nabla\log p_t - \nabla\log q_t\|^2`
times :math:`1-\alpha`; and the gradient w.r.t. :math:`\theta` with
:math:`\psi` held at that optimum is, for :math:`\alpha = 1/2`, exactly half
the gradient of that Fisher divergence (the :math:`\psi`-derivatives of the
two terms cancel). The few-step generator (:class:`SiDGenerator` with
several times) alternates :math:`\hat x^{(k)} = G_\theta(x^{(k)}, t_k, c)` and
re-noising :math:`x^{(k+1)} = (1-t_{k+1})\hat x^{(k)} + t_{k+1}\epsilon_k`;
each training batch applies the loss to the output of one uniformly drawn
step :math:`k`.

**Multi-Student Distillation** (Song, Lorraine, Nie, Kreis & Lucas,
"Multi-student diffusion distillation for better one-step generators",
arXiv:2410.23274). The condition space is partitioned into :math:`K` parts,
one student is distilled on each, and a condition is routed to its student at
sampling time. The routing is a hard mixture assignment: class :math:`c`
gets the one-hot gate of its part, dispatched by
:func:`mixstat.nn.token_choice_routing` (top-1), as an MoE layer dispatches
tokens (:class:`MultiStudentGenerator`, :func:`partition_conditions`).
Students smaller than the teacher are first initialised by teacher score
matching (:func:`teacher_score_matching`), then distilled (here with SiD; the
paper uses distribution matching, DMD2, and notes that the framework does not
depend on the distillation method).

**Multi-CFG distillation** (FADA: Zhong, Liang, Jiang, Lin, Yang & Zhao,
"Fast diffusion avatar synthesis with mixed-supervised multi-CFG
distillation", CVPR 2025, arXiv:2412.16915; guidance-conditioned students as
Meng et al., "On distillation of guided diffusion models", CVPR 2023). One
student :math:`s(x_t, t, c, w)` reads the guidance scale and regresses the
teacher's classifier-free-guided output

.. math::
    \hat x_0^{(w)} = (1+w)\,f_\phi(x_t, t, c) - w\,f_\phi(x_t, t, \varnothing),
    \qquad w \sim U[w_{\min}, w_{\max}],

in one network call instead of two (:func:`multi_cfg_loss`). *Mixed
supervision*: rows flagged as trusted data add the plain denoising loss of the
student at :math:`w = 0` against the clean sample,
:math:`\lambda_{\mathrm{data}}\|s(x_t, t, c, 0) - x_0\|^2`.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ..primitives import warm_kmeans
from .gating import token_choice_routing
from .teachers import flow_noise, guided_denoise

__all__ = [
    "MultiStudentGenerator",
    "SiDGenerator",
    "multi_cfg_loss",
    "partition_conditions",
    "sid_distill",
    "sid_fake_loss",
    "sid_generator_loss",
    "teacher_score_matching",
    "train_multi_cfg_student",
]


def _edm_weight(t, sigma_data):
    tc = t.reshape(-1, 1)
    v = (1 - tc) ** 2 * sigma_data**2 + tc**2
    return (v / (tc**2 * sigma_data**2)).clamp(max=100.0)


def _flat_sum(a):
    return a.reshape(a.shape[0], -1).sum(-1)


# --------------------------------------------------------------------------
# Score identity Distillation
# --------------------------------------------------------------------------


def sid_generator_loss(
    x_g,
    teacher,
    fake,
    t,
    cond,
    *,
    noise,
    alpha=1.2,
    normalize=True,
    guidance=0.0,
    null_class=None,
    return_parts=False,
):
    r"""SiD generator loss (Zhou et al. 2024, the :math:`\alpha`-weighted form).

    .. math::
        \mathcal L_\theta = \frac{1}{B}\sum_i \frac{1}{n_i}
        \big(f_\phi - f_\psi\big)^\top\big((f_\phi - x_g) - \alpha(f_\phi - f_\psi)\big),
        \qquad n_i = \overline{|x_{g,i} - f_\phi(x_{t,i})|}\ \text{(no gradient)}

    at :math:`x_t = (1-t)x_g + t\epsilon`. Gradients reach the generator
    through :math:`x_g` and through :math:`x_t` in both :math:`f_\phi` and
    :math:`f_\psi`; freeze the networks' parameters (or step only the
    generator's optimiser).

    Parameters
    ----------
    x_g : Tensor of shape (B, ...)
        Generated samples (differentiable w.r.t. the generator).
    teacher, fake : callables ``D(x_t, t, c)``
    t : Tensor of shape (B,)
    cond : LongTensor of shape (B,)
    noise : Tensor like ``x_g``
    alpha : float, default=1.2
        The published value; :math:`\alpha = 1/2` gives the exact Fisher-divergence
        gradient when ``fake`` is optimal (see the module docstring).
    normalize : bool, default=True
        Divide each sample's term by :math:`n_i` (the published
        :math:`\omega(t)`); False: unit weight.
    guidance : float, default=0.0
        Classifier-free guidance of the teacher (:func:`mixstat.nn.guided_denoise`).
    return_parts : bool
        Also return ``(f_phi, f_psi, x_t)``.
    """
    if noise.shape != x_g.shape:
        raise ValueError(
            f"noise must have x_g's shape {tuple(x_g.shape)}, got {tuple(noise.shape)}"
        )
    if not math.isfinite(float(alpha)):
        raise ValueError(f"alpha must be finite, got {alpha}")
    x_t = flow_noise(x_g, t, noise)
    f_real = guided_denoise(teacher, x_t, t, cond, guidance, null_class)
    f_fake = fake(x_t, t, cond)
    d = f_real - f_fake
    per = _flat_sum(d * ((f_real - x_g) - alpha * d))
    if normalize:
        n = (
            (x_g - f_real)
            .detach()
            .abs()
            .reshape(x_g.shape[0], -1)
            .mean(-1)
            .clamp_min(1e-5)
        )
        per = per / n
    loss = per.mean()
    return (loss, (f_real, f_fake, x_t)) if return_parts else loss


def sid_fake_loss(fake, x_g, t, cond, *, noise, sigma_data=1.0):
    r"""Denoising score matching of the fake denoiser on generated samples.

    :math:`\lambda(t)\,\|f_\psi(x_t, t, c) - x_g\|^2`, :math:`x_t = (1-t)x_g + t\epsilon`,
    ``x_g`` detached, :math:`\lambda = 1/c_{\mathrm{out}}^2` (EDM weighting,
    clipped at 100); its minimiser is :math:`E_{q_\theta}[x_g \mid x_t, c]`.
    """
    x_g = x_g.detach()
    x_t = flow_noise(x_g, t, noise)
    lam = _edm_weight(t.to(x_g.dtype), sigma_data).reshape(-1, *([1] * (x_g.ndim - 1)))
    return _flat_sum(lam * (fake(x_t, t, cond) - x_g) ** 2).mean()


class SiDGenerator(nn.Module):
    r"""One-step or few-step generator built on a denoiser-shaped network.

    :math:`x^{(1)} = t_1 z`, :math:`z \sim N(0, I)`; for :math:`k = 1..K`:
    :math:`\hat x^{(k)} = \mathrm{net}(x^{(k)}, t_k, c)` and, if
    :math:`k < K`, :math:`x^{(k+1)} = (1-t_{k+1})\hat x^{(k)} + t_{k+1}\epsilon_k`.
    With :math:`K = 1` this is SiD's :math:`G_\theta(z) = f_\theta(\sigma_{\mathrm{init}} z, \sigma_{\mathrm{init}})`
    (``t_1`` plays :math:`\sigma_{\mathrm{init}}`), which is why the network
    can start from the teacher's weights.

    Parameters
    ----------
    net : nn.Module ``net(x, t, c)``
    times : sequence of float, default=(1.0,)
        Decreasing :math:`t_1 > \dots > t_K` in (0, 1].
    shape : tuple
        Shape of one sample.
    """

    def __init__(self, net, times=(1.0,), shape=(2,)):
        super().__init__()
        times = [float(s) for s in times]
        if (
            not times
            or any(not 0 < s <= 1 for s in times)
            or any(a <= b for a, b in zip(times, times[1:], strict=False))
        ):
            raise ValueError(f"times must be decreasing values in (0, 1], got {times}")
        self.net = net
        self.times = times
        self.shape = tuple(int(s) for s in shape)

    @property
    def n_steps(self):
        return len(self.times)

    def forward(self, z, cond, n_steps=None, *, generator=None, grad_last_only=False):
        """Generate from ``z`` of shape ``(B, *shape)`` with the first ``n_steps`` times (default: all).

        ``grad_last_only``: run steps before the last without autograd (training).
        """
        K = self.n_steps if n_steps is None else int(n_steps)
        if not 1 <= K <= self.n_steps:
            raise ValueError(f"n_steps must be in 1..{self.n_steps}, got {n_steps}")
        x = self.times[0] * z
        for k in range(K):
            last = k == K - 1
            with torch.set_grad_enabled(
                torch.is_grad_enabled() and (last or not grad_last_only)
            ):
                x_hat = self.net(x, self.times[k], cond)
            if last:
                return x_hat
            tn = self.times[k + 1]
            eps = torch.randn(
                x_hat.shape, generator=generator, dtype=x_hat.dtype, device=x_hat.device
            )
            x = (1 - tn) * x_hat + tn * eps
        return x_hat

    @torch.no_grad()
    def sample(self, cond, n_steps=None, *, generator=None):
        z = torch.randn((cond.shape[0], *self.shape), generator=generator)
        return self(z, cond, n_steps, generator=generator)


def sid_distill(
    teacher,
    generator,
    *,
    fake=None,
    steps=1000,
    batch_size=256,
    lr=1e-4,
    lr_fake=None,
    alpha=1.2,
    t_range=(0.02, 0.98),
    classes=None,
    n_classes=None,
    guidance=0.0,
    sigma_data=1.0,
    cosine_lr=False,
    seed=0,
    callback=None,
):
    r"""Distil ``teacher`` into ``generator`` (:class:`SiDGenerator`) with SiD.

    Each step: draw labels (uniform over ``classes``), latents and a step
    :math:`k \sim U\{1..K\}`; generate :math:`x_g` (gradient through step
    :math:`k` only); (1) one Adam step of the fake denoiser on
    :func:`sid_fake_loss`, (2) one Adam step of the generator on
    :func:`sid_generator_loss` with fresh :math:`t \sim U[t_{\min}, t_{\max}]`
    and noise (the fake network frozen for it). Adam with
    :math:`\beta_1 = 0` as in SiD (``cosine_lr``: cosine decay of both
    learning rates, our addition for short toy runs). As in SiD, the fake denoiser
    starts as a copy of the teacher unless ``fake`` is given (needed when the
    teacher has no trainable weights, e.g. :class:`mixstat.nn.GaussianMixtureDenoiser`).

    Returns
    -------
    history : dict with lists ``"gen_loss"``, ``"fake_loss"``.
    """
    if not 0 < t_range[0] < t_range[1] <= 1:
        raise ValueError(f"t_range must satisfy 0 < t_min < t_max <= 1, got {t_range}")
    if classes is None:
        nc = n_classes if n_classes is not None else getattr(teacher, "n_classes", None)
        if nc is None:
            raise ValueError("give classes or n_classes")
        classes = list(range(int(nc)))
    classes = torch.as_tensor(list(classes), dtype=torch.long)
    if fake is None:
        fake = copy.deepcopy(teacher)
    teacher_flags = [p.requires_grad for p in teacher.parameters()]
    teacher.requires_grad_(False)
    generator.requires_grad_(True)
    fake.requires_grad_(True)
    g = torch.Generator().manual_seed(int(seed))
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.0, 0.999))
    opt_f = torch.optim.Adam(
        fake.parameters(), lr=lr if lr_fake is None else lr_fake, betas=(0.0, 0.999)
    )
    scheds = []
    if cosine_lr:
        scheds = [
            torch.optim.lr_scheduler.CosineAnnealingLR(o, int(steps))
            for o in (opt_g, opt_f)
        ]
    hist = {"gen_loss": [], "fake_loss": []}
    lo, hi = float(t_range[0]), float(t_range[1])
    for it in range(int(steps)):
        c = classes[torch.randint(0, len(classes), (batch_size,), generator=g)]
        z = torch.randn((batch_size, *generator.shape), generator=g)
        k = int(torch.randint(1, generator.n_steps + 1, (1,), generator=g))
        # (1) fake denoiser on the current generator's samples
        with torch.no_grad():
            x_g = generator(z, c, k, generator=g)
        t = lo + (hi - lo) * torch.rand(batch_size, generator=g)
        fake.requires_grad_(True)
        lf = sid_fake_loss(
            fake,
            x_g,
            t,
            c,
            noise=torch.randn(x_g.shape, generator=g),
            sigma_data=sigma_data,
        )
        opt_f.zero_grad()
        lf.backward()
        opt_f.step()
        # (2) generator
        fake.requires_grad_(False)
        x_g = generator(z, c, k, generator=g, grad_last_only=True)
        t = lo + (hi - lo) * torch.rand(batch_size, generator=g)
        lg = sid_generator_loss(
            x_g,
            teacher,
            fake,
            t,
            c,
            noise=torch.randn(x_g.shape, generator=g),
            alpha=alpha,
            guidance=guidance,
        )
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()
        for sch in scheds:
            sch.step()
        hist["gen_loss"].append(float(lg.detach()))
        hist["fake_loss"].append(float(lf.detach()))
        if callback is not None:
            callback(it, generator, fake)
    fake.requires_grad_(True)
    for p, flag in zip(teacher.parameters(), teacher_flags, strict=True):
        p.requires_grad_(flag)
    return hist


# --------------------------------------------------------------------------
# Multi-student distillation
# --------------------------------------------------------------------------


def partition_conditions(
    n_conditions, n_students, *, features=None, method="contiguous", random_state=0
):
    r"""Split conditions :math:`0..N-1` among :math:`K` students.

    ``method="contiguous"``: consecutive blocks of (nearly) equal size, as
    the paper's split of class indices; ``"kmeans"``: K-means
    (:func:`mixstat.primitives.warm_kmeans`, k-means++ seeding, Euclidean) on
    per-condition ``features`` (for instance class means), so that similar
    conditions share a student.

    Returns
    -------
    assignment : LongTensor of shape (n_conditions,), values in 0..K-1, every student used.
    """
    N, K = int(n_conditions), int(n_students)
    if not 1 <= K <= N:
        raise ValueError(
            f"need 1 <= n_students <= n_conditions, got {n_students}, {n_conditions}"
        )
    if method == "contiguous":
        out = np.empty(N, dtype=np.int64)
        for k, block in enumerate(np.array_split(np.arange(N), K)):
            out[block] = k
        return torch.as_tensor(out)
    if method != "kmeans":
        raise ValueError(f"method must be 'contiguous' or 'kmeans', got {method!r}")
    if features is None:
        raise ValueError("method='kmeans' needs features of shape (n_conditions, d)")
    Z = np.asarray(torch.as_tensor(features, dtype=torch.float64).reshape(N, -1))
    res = warm_kmeans(
        Z,
        K,
        init="k-means++",
        distance="euclidean",
        max_iter=100,
        random_state=random_state,
    )
    if res.labels is None:
        raise ValueError(
            "k-means left a student without conditions; use method='contiguous'"
        )
    return torch.as_tensor(np.asarray(res.labels), dtype=torch.long)


def teacher_score_matching(
    student,
    teacher,
    x,
    y,
    *,
    classes=None,
    steps=500,
    batch_size=256,
    lr=2e-3,
    t_min=1e-3,
    seed=0,
):
    r"""Initialise a (smaller) student denoiser by regressing the teacher's output.

    :math:`\lambda(t)\,\|s(x_t, t, c) - f_\phi(x_t, t, c)\|^2` on noised
    data :math:`x_t = (1-t)x_0 + t\epsilon` of the student's ``classes``
    (:math:`\lambda = 1/c_{\mathrm{out}}^2`). Multi-Student Distillation uses
    such a teacher-score-matching stage to initialise students that are
    smaller than the teacher (they cannot copy its weights) before the
    distribution-matching stage. Adam with cosine decay; returns the losses.
    """
    if classes is not None:
        keep = torch.isin(y, torch.as_tensor(list(classes), dtype=y.dtype))
        x, y = x[keep], y[keep]
    if x.shape[0] == 0:
        raise ValueError("no data rows for the given classes")
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(steps))
    sd = getattr(student, "sigma_data", 1.0)
    losses = []
    for _ in range(int(steps)):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g)
        t = t_min + (1 - t_min) * torch.rand(batch_size, generator=g)
        x_t = flow_noise(x[idx], t, torch.randn(x[idx].shape, generator=g))
        with torch.no_grad():
            target = teacher(x_t, t, y[idx])
        lam = _edm_weight(t.to(x.dtype), sd).reshape(-1, *([1] * (x.ndim - 1)))
        loss = _flat_sum(lam * (student(x_t, t, y[idx]) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses


class MultiStudentGenerator(nn.Module):
    r"""Route each condition to its student (Multi-Student Distillation).

    The assignment is a mixture assignment with one-hot gates: condition
    :math:`c` has router logits :math:`\ell_{c,k} = 0` for its student and
    :math:`-30` otherwise, and :func:`mixstat.nn.token_choice_routing` with
    :math:`k = 1` picks the student (the same dispatch as an MoE layer); each
    student runs once on its rows.

    Parameters
    ----------
    students : sequence of nn.Module, each called as ``student(z, cond, *args, **kwargs)``
    assignment : LongTensor of shape (n_conditions,)
        Student of each condition (:func:`partition_conditions`).
    """

    def __init__(self, students, assignment):
        super().__init__()
        students = list(students)
        assignment = torch.as_tensor(assignment, dtype=torch.long)
        if not students or assignment.ndim != 1:
            raise ValueError("need a non-empty list of students and a 1-D assignment")
        if int(assignment.min()) < 0 or int(assignment.max()) >= len(students):
            raise ValueError(f"assignment values must lie in 0..{len(students) - 1}")
        self.students = nn.ModuleList(students)
        self.register_buffer("assignment", assignment)
        self.shape = getattr(students[0], "shape", None)

    def router_logits(self, cond):
        onehot = nn.functional.one_hot(self.assignment[cond], len(self.students))
        return torch.where(onehot.bool(), 0.0, -30.0).to(torch.get_default_dtype())

    def route(self, cond):
        """Student index of each row, by top-1 routing of the one-hot gate logits."""
        _, idx, _, _ = token_choice_routing(self.router_logits(cond), 1)
        return idx[:, 0]

    def forward(self, z, cond, *args, **kwargs):
        which = self.route(cond)
        out = None
        for e, student in enumerate(self.students):
            rows = torch.nonzero(which == e).reshape(-1)
            if rows.numel() == 0:
                continue
            y = student(z[rows], cond[rows], *args, **kwargs)
            if out is None:
                out = y.new_empty((z.shape[0], *y.shape[1:]))
            out[rows] = y
        return out

    @torch.no_grad()
    def sample(self, cond, n_steps=None, *, generator=None):
        z = torch.randn((cond.shape[0], *self.shape), generator=generator)
        return self(z, cond, n_steps, generator=generator)


# --------------------------------------------------------------------------
# Multi-CFG distillation
# --------------------------------------------------------------------------


def multi_cfg_loss(
    student,
    teacher,
    x_t,
    t,
    cond,
    scale,
    *,
    x0=None,
    data_mask=None,
    data_weight=1.0,
    null_class=None,
    sigma_data=1.0,
    weighting="edm",
):
    r"""Guidance-conditioned distillation loss with optional mixed supervision.

    .. math::
        \frac1B\sum_i \lambda(t_i)\Big[\|s(x_{t,i}, t_i, c_i, w_i) - \hat x_{0,i}^{(w_i)}\|^2
        + \lambda_{\mathrm{data}}\,m_i\,\|s(x_{t,i}, t_i, c_i, 0) - x_{0,i}\|^2\Big],

    :math:`\hat x_0^{(w)} = (1+w)f_\phi(x_t,c) - wf_\phi(x_t,\varnothing)` (no
    gradient), :math:`m_i` the ``data_mask``, :math:`\lambda = 1/c_{\mathrm{out}}^2`
    (``weighting="edm"``) or 1 (``"none"``).

    Parameters
    ----------
    student : callable ``s(x_t, t, c, w)``
    teacher : callable ``D(x_t, t, c)``
    x_t : Tensor (B, ...); t : Tensor (B,); cond : LongTensor (B,); scale : Tensor (B,)
    x0 : Tensor like ``x_t``, optional
        Clean samples behind ``x_t`` (needed with ``data_mask``).
    data_mask : BoolTensor of shape (B,), optional
    """
    if weighting not in ("edm", "none"):
        raise ValueError(f"weighting must be 'edm' or 'none', got {weighting!r}")
    scale = torch.as_tensor(scale, dtype=x_t.dtype).expand(x_t.shape[0])
    with torch.no_grad():
        target = guided_denoise(teacher, x_t, t, cond, scale, null_class)
    per = _flat_sum((student(x_t, t, cond, scale) - target) ** 2)
    if data_mask is not None and bool(data_mask.any()):
        if x0 is None or x0.shape != x_t.shape:
            raise ValueError("mixed supervision needs x0 of x_t's shape")
        rows = torch.nonzero(data_mask).reshape(-1)
        pred0 = student(x_t[rows], t[rows], cond[rows], torch.zeros_like(scale[rows]))
        per = per.index_add(
            0, rows, float(data_weight) * _flat_sum((pred0 - x0[rows]) ** 2)
        )
    if weighting == "edm":
        per = per * _edm_weight(t.to(x_t.dtype), sigma_data).reshape(-1)
    return per.mean()


def train_multi_cfg_student(
    student,
    teacher,
    x,
    y,
    *,
    steps=2000,
    batch_size=256,
    lr=2e-3,
    scale_range=(0.0, 4.0),
    data_fraction=0.25,
    data_weight=1.0,
    t_min=1e-3,
    seed=0,
):
    r"""Train a guidance-conditioned student on noised data with :func:`multi_cfg_loss`.

    Per row: :math:`w \sim U[w_{\min}, w_{\max}]`, :math:`t \sim U[t_{\min}, 1]`,
    :math:`x_t = (1-t)x_0 + t\epsilon` from a data point; a fraction
    ``data_fraction`` of the rows also gets the data term (0: pure teacher
    supervision). Adam with cosine decay; returns the losses.
    """
    lo, hi = float(scale_range[0]), float(scale_range[1])
    if not lo <= hi:
        raise ValueError(f"scale_range must satisfy min <= max, got {scale_range}")
    teacher_flags = [p.requires_grad for p in teacher.parameters()]
    teacher.requires_grad_(False)
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(steps))
    sd = getattr(student, "sigma_data", 1.0)
    losses = []
    for _ in range(int(steps)):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g)
        x0, c = x[idx], y[idx]
        t = t_min + (1 - t_min) * torch.rand(batch_size, generator=g)
        w = lo + (hi - lo) * torch.rand(batch_size, generator=g)
        x_t = flow_noise(x0, t, torch.randn(x0.shape, generator=g))
        mask = torch.rand(batch_size, generator=g) < data_fraction
        loss = multi_cfg_loss(
            student,
            teacher,
            x_t,
            t,
            c,
            w,
            x0=x0,
            data_mask=mask,
            data_weight=data_weight,
            sigma_data=sd,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    for p, flag in zip(teacher.parameters(), teacher_flags, strict=True):
        p.requires_grad_(flag)
    return losses
