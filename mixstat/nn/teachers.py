r"""Tiny class-conditional diffusion teachers, their samplers and toy data.

The distillation and mixing algorithms of :mod:`mixstat.nn.distillation` and
:mod:`mixstat.nn.semantic_mixing` act on a *pretrained* denoiser. This module
supplies small ones that the library builds itself, on data it ships or
generates, so that everything runs on a CPU in seconds:

* :func:`make_class_mixture_2d`: a 2-D class-conditional Gaussian mixture
  (``n_classes`` classes, each a mixture of ``modes_per_class`` isotropic
  Gaussians on a ring);
* :func:`load_digits_8x8`: scikit-learn's 8x8 digits scaled to :math:`[-1, 1]`;
* :class:`GaussianMixtureDenoiser`: the *exact* posterior mean of a
  class-conditional Gaussian mixture (a teacher with known scores, for tests);
* :class:`ConditionalDenoiserMLP`: a small MLP denoiser with a class
  embedding (and a null class for classifier-free guidance), trained by
  :func:`train_denoiser`.

Noise convention (rectified-flow / GMFlow time, as :mod:`mixstat.nn.diffusion`):

.. math::
    x_t = (1 - t)\,x_0 + t\,\epsilon,\qquad \epsilon \sim N(0, I),\quad t \in [0, 1],

so :math:`t = 1` is pure noise. Every denoiser is called as ``D(x_t, t, c)``
and returns an estimate of :math:`E[x_0 \mid x_t, c]`; class ``c = n_classes``
is the null (unconditional) class. In variance-exploding terms
:math:`x_t/(1-t) = x_0 + \sigma\epsilon` with :math:`\sigma = t/(1-t)`.

The deterministic sampler (:func:`denoiser_sample`) is DDIM in this
parametrisation: :math:`\hat\epsilon = (x_t - (1-t)\hat x_0)/t`,
:math:`x_{t'} = (1-t')\hat x_0 + t'\hat\epsilon` (equal to the Euler step of
the probability-flow ODE in :math:`t`). Classifier-free guidance
(Ho & Salimans 2022) with scale :math:`w`:
:math:`\hat x_0^{(w)} = (1+w)\,D(x_t, t, c) - w\,D(x_t, t, \varnothing)`
(:func:`guided_denoise`; linear, so the same in :math:`\epsilon`, :math:`x_0`
or velocity form).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..primitives import normal_log_density, responsibilities

__all__ = [
    "ConditionalDenoiserMLP",
    "GaussianMixtureDenoiser",
    "class_mixture_2d_means",
    "ddim_step",
    "denoiser_sample",
    "energy_distance",
    "flow_noise",
    "guided_denoise",
    "load_digits_8x8",
    "make_class_mixture_2d",
    "time_grid",
    "train_denoiser",
]


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def class_mixture_2d_means(n_classes=4, modes_per_class=2, radius=2.0):
    r"""Component means of :func:`make_class_mixture_2d`, shape (n_classes, modes_per_class, 2).

    The ``n_classes * modes_per_class`` means sit evenly on a circle of
    radius ``radius``; class :math:`c` owns angles
    :math:`2\pi(c + j\,C)/(CM)`, :math:`j = 0..M-1` (its modes are spread
    around the ring, interleaved with the other classes).
    """
    C, M = int(n_classes), int(modes_per_class)
    if C < 1 or M < 1:
        raise ValueError(
            f"n_classes and modes_per_class must be >= 1, got {n_classes}, {modes_per_class}"
        )
    idx = torch.arange(C)[:, None] + C * torch.arange(M)[None, :]
    ang = 2 * math.pi * idx.to(torch.float64) / (C * M)
    return (float(radius) * torch.stack([torch.cos(ang), torch.sin(ang)], -1)).to(
        torch.get_default_dtype()
    )


def make_class_mixture_2d(
    n_samples,
    n_classes=4,
    modes_per_class=2,
    *,
    radius=2.0,
    std=0.15,
    generator=None,
    labels=None,
):
    r"""Sample the 2-D class-conditional mixture.

    :math:`c \sim U\{0..C-1\}`, :math:`x \mid c \sim \frac1M\sum_j N(\mu_{cj}, s^2 I)`
    with the means of :func:`class_mixture_2d_means`.

    Parameters
    ----------
    n_samples : int
    n_classes, modes_per_class : int
    radius, std : float
    generator : torch.Generator, optional
    labels : LongTensor of shape (n_samples,), optional
        Classes to sample (default: uniform).

    Returns
    -------
    x : Tensor of shape (n_samples, 2)
    y : LongTensor of shape (n_samples,)
    """
    means = class_mixture_2d_means(n_classes, modes_per_class, radius)
    n = int(n_samples)
    if labels is None:
        y = torch.randint(0, n_classes, (n,), generator=generator)
    else:
        y = torch.as_tensor(labels, dtype=torch.long)
        n = y.shape[0]
    j = torch.randint(0, modes_per_class, (n,), generator=generator)
    x = means[y, j] + float(std) * torch.randn(n, 2, generator=generator)
    return x, y


def load_digits_8x8():
    """scikit-learn's 8x8 digits as (X, y): X float32 of shape (1797, 64) in [-1, 1], y in 0..9."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 8.0 - 1.0, dtype=torch.float32), torch.tensor(
        y, dtype=torch.long
    )


def energy_distance(a, b):
    r"""Energy distance :math:`2E\|X-Y\| - E\|X-X'\| - E\|Y-Y'\|` between two samples
    (V-statistic; 0 iff the distributions agree, in the limit)."""
    a, b = a.double(), b.double()
    return float(
        2 * torch.cdist(a, b).mean()
        - torch.cdist(a, a).mean()
        - torch.cdist(b, b).mean()
    )


# --------------------------------------------------------------------------
# noise convention and samplers
# --------------------------------------------------------------------------


def _col(t, like):
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(like.shape[0])
    return t.reshape(like.shape[0], *([1] * (like.ndim - 1)))


def flow_noise(x0, t, noise):
    r""":math:`x_t = (1-t)x_0 + t\epsilon` with ``t`` a float or shape (B,)."""
    tc = _col(t, x0)
    return (1 - tc) * x0 + tc * noise


def guided_denoise(denoiser, x_t, t, cond, scale=0.0, null_class=None):
    r"""Classifier-free-guided denoiser output :math:`(1+w)D(x_t,c) - wD(x_t,\varnothing)`.

    ``scale`` :math:`w` a float or a tensor of shape (B,). With :math:`w = 0`
    one network call; otherwise two (conditional and unconditional), as a
    CFG sampler makes. ``null_class`` defaults to ``denoiser.n_classes``.
    """
    if isinstance(scale, (int, float)) and float(scale) == 0.0:
        return denoiser(x_t, t, cond)
    null = getattr(denoiser, "n_classes", None) if null_class is None else null_class
    if null is None:
        raise ValueError(
            "guided_denoise needs null_class (the denoiser has no n_classes)"
        )
    w = _col(scale, x_t)
    d_c = denoiser(x_t, t, cond)
    d_u = denoiser(x_t, t, torch.full_like(cond, int(null)))
    return (1 + w) * d_c - w * d_u


def time_grid(n_steps, t_start=1.0, t_end=0.0):
    """Uniform decreasing grid of ``n_steps + 1`` times from ``t_start`` to ``t_end``."""
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return torch.linspace(
        float(t_start), float(t_end), int(n_steps) + 1, dtype=torch.float64
    ).tolist()


def ddim_step(x_t, x0_hat, t, t_next, *, eta=0.0, noise=None):
    r"""DDIM step in flow time from :math:`t` to :math:`t' < t`.

    :math:`\hat\epsilon = (x_t - (1-t)\hat x_0)/t`;
    :math:`x_{t'} = (1-t')\hat x_0 + t'\big(\sqrt{1-\eta^2}\,\hat\epsilon + \eta\, z\big)`,
    :math:`z \sim N(0, I)` (``noise``). :math:`\eta = 0`: deterministic
    (probability-flow Euler step); :math:`\eta = 1`: full re-noising of the
    predicted :math:`x_0` (the multistep sampler of consistency models and
    few-step SiD).
    """
    if t <= 0:
        raise ValueError("ddim_step needs t > 0")
    eps_hat = (x_t - (1 - t) * x0_hat) / t
    if eta > 0:
        if noise is None:
            raise ValueError("eta > 0 needs noise")
        eps_hat = math.sqrt(max(1.0 - eta * eta, 0.0)) * eps_hat + eta * noise
    return (1 - t_next) * x0_hat + t_next * eps_hat


@torch.no_grad()
def denoiser_sample(
    denoiser,
    cond,
    n_steps=32,
    *,
    x_start=None,
    t_start=1.0,
    guidance=0.0,
    null_class=None,
    eta=0.0,
    generator=None,
    shape=None,
    step_noises=None,
):
    r"""Sample with a denoiser: DDIM on the uniform grid from ``t_start`` to 0.

    Parameters
    ----------
    denoiser : callable ``D(x_t, t, c)``
    cond : LongTensor of shape (B,)
    n_steps : int
    x_start : Tensor, optional
        State at ``t_start`` (default: :math:`t_{\mathrm{start}}\,\epsilon`
        plus nothing else, i.e. pure noise when ``t_start = 1``); starting from
        a noised image :math:`(1-t)x + t\epsilon` is SDEdit.
    guidance : float
        Classifier-free guidance scale :math:`w` (2 network calls per step when
        nonzero).
    eta : float
        Stochasticity of :func:`ddim_step`.
    generator : torch.Generator, optional
    shape : tuple, optional
        Shape of one sample (needed when ``x_start`` is None).
    step_noises : list of Tensor, optional
        Noise of each step for ``eta > 0`` (drawn from ``generator`` otherwise).

    Returns
    -------
    Tensor of shape (B, ...): the sample at :math:`t = 0`.
    """
    ts = time_grid(n_steps, t_start, 0.0)
    if x_start is None:
        if shape is None:
            raise ValueError("give x_start or shape")
        x = ts[0] * torch.randn((cond.shape[0], *shape), generator=generator)
    else:
        x = x_start
    for i in range(n_steps):
        t, tn = ts[i], ts[i + 1]
        x0 = guided_denoise(denoiser, x, t, cond, guidance, null_class)
        z = None
        if eta > 0:
            z = (
                step_noises[i]
                if step_noises is not None
                else torch.randn(x.shape, generator=generator)
            )
        x = ddim_step(x, x0, t, tn, eta=eta, noise=z) if tn > 0 else x0
    return x


# --------------------------------------------------------------------------
# teachers
# --------------------------------------------------------------------------


class GaussianMixtureDenoiser(nn.Module):
    r"""Exact posterior-mean denoiser of a class-conditional isotropic Gaussian mixture.

    Data: :math:`x_0 \mid c \sim \sum_j \pi_{cj} N(\mu_{cj}, s^2 I)`; under
    :math:`x_t = (1-t)x_0 + t\epsilon` component :math:`j` gives
    :math:`x_t \sim N((1-t)\mu_{cj}, v_t I)`, :math:`v_t = (1-t)^2 s^2 + t^2`, and

    .. math::
        E[x_0 \mid x_t, c] = \sum_j r_j \Big(\mu_{cj} + \frac{(1-t)s^2}{v_t}\big(x_t - (1-t)\mu_{cj}\big)\Big),

    :math:`r_j` the responsibilities (:func:`mixstat.primitives.responsibilities`).
    The null class ``n_classes`` is the marginal mixture (classes equally likely).
    Its score is :math:`\nabla\log p_t(x_t\mid c) = ((1-t)E[x_0\mid x_t,c] - x_t)/t^2`.

    Parameters
    ----------
    means : Tensor of shape (n_classes, n_modes, d)
    std : float
    """

    def __init__(self, means, std):
        super().__init__()
        means = torch.as_tensor(means)
        if means.ndim != 3:
            raise ValueError(
                f"means must have shape (n_classes, n_modes, d), got {tuple(means.shape)}"
            )
        if not float(std) > 0:
            raise ValueError(f"std must be > 0, got {std}")
        self.register_buffer("means", means.clone())
        self.std = float(std)
        self.n_classes = means.shape[0]

    def forward(self, x_t, t, cond):
        B = x_t.shape[0]
        tc = (
            torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device)
            .expand(B)
            .reshape(B, 1)
        )
        C, M, d = self.means.shape
        all_means = self.means.reshape(1, C * M, d).to(x_t.dtype)
        cond = torch.as_tensor(cond, device=x_t.device).reshape(B)
        v = (1 - tc) ** 2 * self.std**2 + tc**2  # (B, 1)
        loc = (1 - tc)[..., None] * all_means  # (B, CM, d)
        logp = normal_log_density(x_t[:, None, :], loc, v[..., None]).sum(-1)  # (B, CM)
        owner = torch.arange(C, device=x_t.device).repeat_interleave(M)
        allowed = (owner[None, :] == cond[:, None]) | (cond[:, None] == C)
        log_w = torch.where(
            allowed, torch.zeros_like(logp), torch.full_like(logp, -math.inf)
        )
        log_r, _ = responsibilities(logp, log_w)
        r = torch.exp(log_r)
        post = all_means + ((1 - tc) * self.std**2 / v)[..., None] * (
            x_t[:, None, :] - loc
        )
        return (r[..., None] * post).sum(1)


def _time_features(t, n_freq):
    freqs = torch.exp(
        torch.arange(n_freq, dtype=t.dtype, device=t.device)
        * (math.log(200.0) / max(n_freq - 1, 1))
    )
    a = t[:, None] * freqs
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class ConditionalDenoiserMLP(nn.Module):
    r"""Small class-conditional MLP denoiser with EDM-style preconditioning.

    .. math::
        D(x_t, t, c) = c_{\mathrm{skip}}(t)\,x_t + c_{\mathrm{out}}(t)\,
        F\big(c_{\mathrm{in}}(t)\,x_t,\ \phi(t),\ e_c[,\ \psi(w)]\big),

    with :math:`v = (1-t)^2\sigma_d^2 + t^2`, :math:`c_{\mathrm{in}} = v^{-1/2}`,
    :math:`c_{\mathrm{skip}} = (1-t)\sigma_d^2/v` and
    :math:`c_{\mathrm{out}} = t\sigma_d/\sqrt v` (the optimal linear denoiser
    and the residual scale for data of variance :math:`\sigma_d^2`; Karras et
    al. 2022 in flow time, finite at :math:`t = 0` and :math:`t = 1`).
    :math:`\phi(t)` are sinusoidal features, :math:`e_c` a learned class
    embedding with one extra row, the null class ``n_classes``.
    With ``guidance_input=True`` the network also reads the guidance scale
    :math:`w` (sinusoidal features :math:`\psi(w)`), for the guidance-conditioned
    students of :mod:`mixstat.nn.distillation`.

    Parameters
    ----------
    dim, n_classes : int
    width, depth : int, default=128, 3
    sigma_data : float, default=1.0
    guidance_input : bool, default=False
    n_freq : int, default=8
    """

    def __init__(
        self,
        dim,
        n_classes,
        width=128,
        depth=3,
        *,
        sigma_data=1.0,
        guidance_input=False,
        n_freq=8,
        device=None,
        dtype=None,
    ):
        super().__init__()
        for name, v in (
            ("dim", dim),
            ("n_classes", n_classes),
            ("width", width),
            ("depth", depth),
        ):
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        fk = {"device": device, "dtype": dtype}
        self.dim, self.n_classes, self.n_freq = int(dim), int(n_classes), int(n_freq)
        self.sigma_data = float(sigma_data)
        self.guidance_input = bool(guidance_input)
        self.embed = nn.Embedding(self.n_classes + 1, int(width), **fk)
        d_in = self.dim + 2 * self.n_freq + (2 * self.n_freq if guidance_input else 0)
        self.inp = nn.Linear(d_in, int(width), **fk)
        layers = []
        for _ in range(int(depth) - 1):
            layers += [nn.SiLU(), nn.Linear(int(width), int(width), **fk)]
        self.body = nn.Sequential(*layers, nn.SiLU())
        self.out = nn.Linear(int(width), self.dim, **fk)

    def forward(self, x_t, t, cond, w=None):
        B = x_t.shape[0]
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device)
        t = t.expand(B) if t.ndim == 0 else t.reshape(B)
        tc = t[:, None]
        sd2 = self.sigma_data**2
        v = (1 - tc) ** 2 * sd2 + tc**2
        c_in, c_skip, c_out = (
            v.rsqrt(),
            (1 - tc) * sd2 / v,
            tc * self.sigma_data / v.sqrt(),
        )
        feats = [c_in * x_t, _time_features(t, self.n_freq)]
        if self.guidance_input:
            if w is None:
                w = x_t.new_zeros(B)
            w = torch.as_tensor(w, dtype=x_t.dtype, device=x_t.device)
            w = w.expand(B) if w.ndim == 0 else w.reshape(B)
            feats.append(_time_features(w / 8.0, self.n_freq))
        h = self.inp(torch.cat(feats, 1)) + self.embed(
            torch.as_tensor(cond, device=x_t.device).reshape(B)
        )
        return c_skip * x_t + c_out * self.out(self.body(h))


def train_denoiser(
    model,
    x,
    y,
    *,
    steps=2000,
    batch_size=256,
    lr=2e-3,
    p_uncond=0.1,
    generator=None,
    t_min=1e-3,
):
    r"""Train a denoiser ``model(x_t, t, c)`` by denoising score matching.

    Loss :math:`\lambda(t)\,\|D(x_t, t, c) - x_0\|^2` with
    :math:`t \sim U[t_{\min}, 1]`, :math:`\lambda = 1/c_{\mathrm{out}}(t)^2`
    (EDM's weighting, clipped at 100), and the label replaced by the null class
    with probability ``p_uncond`` (classifier-free guidance training).
    Adam with cosine decay. Returns the list of losses.
    """
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError("x must be (n, d) and y (n,)")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(steps))
    sd2 = getattr(model, "sigma_data", 1.0) ** 2
    null = model.n_classes
    losses = []
    for _ in range(int(steps)):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=generator)
        x0, c = x[idx], y[idx].clone()
        drop = torch.rand(batch_size, generator=generator) < p_uncond
        c[drop] = null
        t = t_min + (1 - t_min) * torch.rand(
            batch_size, generator=generator, dtype=x.dtype
        )
        eps = torch.randn(x0.shape, generator=generator, dtype=x.dtype)
        x_t = flow_noise(x0, t, eps)
        tc = t[:, None]
        v = (1 - tc) ** 2 * sd2 + tc**2
        lam = (v / (tc**2 * sd2)).clamp(max=100.0)
        loss = (lam * (model(x_t, t, c) - x0) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses
