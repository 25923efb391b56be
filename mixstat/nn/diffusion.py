r"""Mixture helpers for diffusion and flow-matching training and sampling.

Three papers, each written on mixstat's primitives (log-sum-exp, softmax,
responsibilities, normal log-density, linear assignment):

**Immiscible diffusion** (Li, Ding, Cheng, Bobrow, Li & Yang, NeurIPS 2024,
arXiv:2406.12303). Before noising a batch :math:`x_1..x_B`, draw noise
:math:`\epsilon_1..\epsilon_B \sim N(0, I)` and pair them by the linear
assignment that minimises :math:`\sum_i \|0.1 x_i - 0.1 \epsilon_{\pi(i)}\|_2`
(Euclidean, not squared; distances quantised to float16 as in the reference
code). The training loss is unchanged. Because the data are exchangeable, the
noise given to a fixed slot is still exactly :math:`N(0, I)` marginally. The
*k-nearest* variant (Improved Immiscible Diffusion, arXiv:2505.18521) draws
:math:`k` candidates per sample and keeps the nearest: cheaper, but the kept
noise is **not** :math:`N(0, I)` (it is pulled toward the data and has smaller
variance).

**GMFlow** (Chen, Zhang, Tan, Xu, Luan, Guibas, Wetzstein & Bi, ICML 2025,
arXiv:2504.05304). With :math:`x_t = (1-\sigma)x_0 + \sigma\epsilon` and
velocity :math:`u = \epsilon - x_0`, the network outputs a Gaussian mixture
:math:`q(u \mid x_t) = \sum_k A_k N(u; \mu_k, s^2 I)` and is trained by
:math:`-\log q(u\mid x_t)` (for :math:`K=1` and fixed :math:`s` this is flow
matching, :math:`\|u-\mu\|^2/2s^2` + const). Samplers: GM-SDE (the DDPM
posterior of :math:`x_{t'}` given the :math:`x_0`-GM is again a GM), GM-ODE
(sub-steps without network calls: :math:`p(x_0\mid x_\tau) \propto
p(x_0\mid x_t)\,N(x_\tau; \alpha_\tau x_0, \sigma_\tau^2)/N(x_t; \alpha_t x_0,
\sigma_t^2)` is the GM reweighted by a Gaussian in closed form), and
probabilistic guidance.

**Score-of-Mixture training** (Jayashankar, Ryu & Wornell, ICML 2025,
arXiv:2502.09609). One denoiser :math:`D(x_t; \sigma, \alpha)` trained on
real and fake samples with weights :math:`\alpha, 1-\alpha` estimates the
score of the mixture :math:`\alpha p + (1-\alpha) q`; its optimum is the
responsibility-weighted average of the two posterior means.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from ..primitives import log_softmax, logsumexp, normal_log_density, responsibilities

__all__ = [
    "GMFlowHead",
    "GaussianMixture",
    "flow_matching_loss",
    "gm_log_prob",
    "gm_mean",
    "gm_mul_gaussian",
    "gm_mul_natural",
    "gm_sample",
    "gm_to_iso_gaussian",
    "gmflow_nll",
    "gmflow_ode_step",
    "gmflow_sample",
    "gmflow_sde_step",
    "immiscible_assignment",
    "immiscible_noise",
    "knn_noise",
    "mixture_posterior_mean",
    "probabilistic_guidance",
    "score_of_mixture_loss",
    "u_to_x0",
]


# --------------------------------------------------------------------------
# Immiscible diffusion
# --------------------------------------------------------------------------


def _flat(x, name):
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty tensor with a batch axis first")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x.reshape(x.shape[0], -1)


def immiscible_assignment(x, noise, *, scale=0.1, quantize=True):
    r"""Linear assignment of noise to data (Immiscible Diffusion).

    Minimises :math:`\sum_i \|s x_i - s\,\epsilon_{\pi(i)}\|_2` over permutations
    :math:`\pi` with :func:`scipy.optimize.linear_sum_assignment` (Hungarian /
    Jonker-Volgenant), the distances computed from float16-quantised inputs
    and rounded to float16 when ``quantize`` (the paper's "quantized
    assignment").

    Parameters
    ----------
    x, noise : Tensor of shape (B, ...)
        Same shape.
    scale : float, default=0.1
    quantize : bool, default=True

    Returns
    -------
    perm : LongTensor of shape (B,)
        ``noise[perm]`` is the noise paired with ``x`` (slot ``i`` gets
        ``noise[perm[i]]``).
    """
    xf, ef = _flat(x, "x"), _flat(noise, "noise")
    if xf.shape != ef.shape:
        raise ValueError(f"x and noise shapes differ: {tuple(x.shape)} vs {tuple(noise.shape)}")
    with torch.no_grad():
        a, b = scale * xf.detach(), scale * ef.detach()
        if quantize:
            a, b = a.to(torch.float16).float(), b.to(torch.float16).float()
            cost = torch.cdist(a, b).to(torch.float16)
        else:
            cost = torch.cdist(a.double(), b.double())
    cost = cost.cpu().to(torch.float64).numpy()
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty_like(cols)
    perm[rows] = cols
    return torch.as_tensor(perm, dtype=torch.long, device=x.device)


def immiscible_noise(x, *, generator=None, scale=0.1, quantize=True):
    """Draw :math:`N(0, I)` noise like ``x`` and return it assigned to ``x``."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return noise[immiscible_assignment(x, noise, scale=scale, quantize=quantize)]


def knn_noise(x, k=4, *, generator=None):
    r"""k-nearest noise (Improved Immiscible Diffusion): for each sample draw
    ``k`` candidates :math:`\epsilon \sim N(0, I)` and keep the one nearest to
    it (Euclidean). The kept noise is not :math:`N(0, I)`-distributed.
    """
    xf = _flat(x, "x")
    if isinstance(k, bool) or int(k) != k or int(k) < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    cand = torch.randn((xf.shape[0], int(k), xf.shape[1]), generator=generator, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        d2 = ((cand - xf.detach()[:, None, :]) ** 2).sum(-1)
        best = d2.argmin(dim=1)
    return cand[torch.arange(xf.shape[0], device=x.device), best].reshape(x.shape)


# --------------------------------------------------------------------------
# Gaussian mixtures (GMFlow)
# --------------------------------------------------------------------------


class GaussianMixture(NamedTuple):
    r"""A batch of isotropic Gaussian mixtures over :math:`\mathbb{R}^C`.

    ``means`` (B, K, C); ``log_weights`` (B, K), normalised
    (log-softmax); ``log_std`` (B, 1) (one standard deviation shared by the
    components, as GMFlow's head) or (B, K).
    """

    means: torch.Tensor
    log_weights: torch.Tensor
    log_std: torch.Tensor

    @property
    def var(self):
        """Component variances, shape (B, K or 1)."""
        return torch.exp(2.0 * self.log_std)


def gm_log_prob(gm, x):
    r""":math:`\log \sum_k A_k N(x; \mu_k, s_k^2 I)` for ``x`` of shape (B, C); returns (B,)."""
    var = gm.var[..., None]  # (B, K|1, 1)
    comp = normal_log_density(x[:, None, :], gm.means, var).sum(-1)  # (B, K)
    return logsumexp(gm.log_weights + comp, axis=-1)


def gmflow_nll(gm, target):
    r"""GMFlow loss: the mean over the batch of :math:`-\log q(u \mid x_t)`
    (summed over the :math:`C` dimensions), ``target`` the velocity
    :math:`u = \epsilon - x_0` of shape (B, C)."""
    if target.shape != gm.means.shape[::2]:
        raise ValueError(
            f"target must have shape (B, C)={tuple(gm.means.shape[::2])}, got {tuple(target.shape)}"
        )
    return -gm_log_prob(gm, target).mean()


def flow_matching_loss(pred_u, target):
    r"""Flow-matching loss :math:`\tfrac12 \|u - \hat u\|^2` summed over dimensions, mean over the batch."""
    return 0.5 * ((pred_u - target) ** 2).sum(-1).mean()


def gm_mean(gm):
    """Mixture mean, shape (B, C)."""
    return (torch.exp(gm.log_weights)[..., None] * gm.means).sum(1)


def gm_to_iso_gaussian(gm):
    r"""Moment-matched isotropic Gaussian: mean (B, C) and variance (B, 1),
    the total variance averaged over the :math:`C` dimensions."""
    w = torch.exp(gm.log_weights)  # (B, K)
    m = (w[..., None] * gm.means).sum(1)
    spread = (w * ((gm.means - m[:, None, :]) ** 2).mean(-1)).sum(1, keepdim=True)
    within = (w * gm.var.expand_as(w)).sum(1, keepdim=True)
    return m, spread + within


def gm_mul_natural(gm, eta, lam):
    r"""Normalised product of a GM with :math:`\exp(\eta^\top x - \tfrac12 \lambda \|x\|^2)`.

    A Gaussian in natural parameters (precision :math:`\lambda`, possibly 0 or
    negative as long as :math:`1 + \lambda s_k^2 > 0`). Component :math:`k`
    becomes :math:`N\big((\mu_k + s_k^2\eta)/(1+\lambda s_k^2),\ s_k^2/(1+\lambda s_k^2)\big)`
    with log-weight increased by
    :math:`\eta^\top\mu_k - \tfrac\lambda2\|\mu_k\|^2 + \tfrac{s_k^2}{2(1+\lambda s_k^2)}\|\eta - \lambda\mu_k\|^2
    - \tfrac C2 \log(1+\lambda s_k^2)`, then renormalised.

    Parameters
    ----------
    gm : GaussianMixture
    eta : Tensor of shape (B, C)
    lam : Tensor of shape (B, 1)
    """
    v = gm.var  # (B, K|1)
    denom = 1.0 + lam * v
    # a host read: made on CPU tensors in eager mode only, so that a GM-ODE
    # sub-step on an accelerator does not sync (there a bad product gives NaN)
    if denom.device.type == "cpu" and not torch.compiler.is_compiling() and bool(
        (denom <= 0).any()
    ):
        raise ValueError("the product is not normalisable (1 + lambda * var <= 0)")
    C = gm.means.shape[-1]
    mu = gm.means
    b2 = ((eta[:, None, :] - lam[..., None] * mu) ** 2).sum(-1)  # (B, K)
    dlogw = (
        (eta[:, None, :] * mu).sum(-1)
        - 0.5 * lam * (mu**2).sum(-1)
        + 0.5 * v * b2 / denom
        - 0.5 * C * torch.log(denom)
    )
    means = (mu + v[..., None] * eta[:, None, :]) / denom[..., None]
    log_std = gm.log_std - 0.5 * torch.log(denom)
    return GaussianMixture(means, log_softmax(gm.log_weights + dlogw, axis=-1), log_std)


def gm_mul_gaussian(gm, mean, var):
    r"""Normalised product :math:`\propto \mathrm{GM}(x)\, N(x; m, v I)`.

    Component :math:`k` becomes :math:`N\big((v\mu_k + s_k^2 m)/(v+s_k^2),\
    v s_k^2/(v+s_k^2)\big)` with weight :math:`\propto A_k N(\mu_k; m,
    (v + s_k^2) I)` (GMFlow's ``gm_mul_iso_gaussian``).

    Parameters
    ----------
    gm : GaussianMixture
    mean : Tensor of shape (B, C)
    var : Tensor of shape (B, 1)
    """
    v = gm.var  # (B, K|1)
    tot = v + var
    logn = normal_log_density(gm.means, mean[:, None, :], tot[..., None]).sum(-1)
    means = (var[..., None] * gm.means + v[..., None] * mean[:, None, :]) / tot[..., None]
    log_std = 0.5 * (torch.log(v) + torch.log(var) - torch.log(tot))
    return GaussianMixture(means, log_softmax(gm.log_weights + logn, axis=-1), log_std)


def gm_sample(gm, *, generator=None):
    """One sample per mixture, shape (B, C)."""
    B, K, C = gm.means.shape
    w = torch.exp(gm.log_weights.detach())
    comp = torch.multinomial(w, 1, generator=generator).squeeze(-1)
    ar = torch.arange(B, device=gm.means.device)
    mu = gm.means[ar, comp]
    std = torch.exp(gm.log_std.expand(B, K)[ar, comp])[:, None]
    eps = torch.randn((B, C), generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + std * eps


def u_to_x0(gm_u, x_t, sigma):
    r"""GM over the velocity :math:`u` to the GM over :math:`x_0 = x_t - \sigma u`.

    ``sigma`` of shape (B, 1) or a float in (0, 1].
    """
    sigma = _as_col(sigma, x_t)
    means = x_t[:, None, :] - sigma[..., None] * gm_u.means
    return GaussianMixture(means, gm_u.log_weights, gm_u.log_std + torch.log(sigma))


def _as_col(s, like):
    if not isinstance(s, torch.Tensor):
        s = torch.tensor(float(s), dtype=like.dtype, device=like.device)
    s = s.to(like.dtype)
    return s.reshape(-1, 1).expand(like.shape[0], 1) if s.ndim <= 1 else s


def gmflow_sde_step(gm_u, x_t, sigma, sigma_next, *, generator=None):
    r"""One GM-SDE step from noise level :math:`\sigma` to :math:`\sigma' < \sigma`.

    With :math:`\alpha = 1-\sigma`, the DDPM posterior
    :math:`q(x_{t'}\mid x_t, x_0) = N(c_1 x_t + c_2 x_0, c_3)`,
    :math:`\beta = 1 - (\sigma'\alpha/\sigma\alpha')^2`,
    :math:`c_1 = (\sigma'/\sigma)^2\alpha/\alpha'`, :math:`c_2 = \beta\alpha'`,
    :math:`c_3 = \beta\sigma'^2`, integrated against the :math:`x_0`-GM gives a
    GM over :math:`x_{t'}` (means :math:`c_1x_t + c_2\mu^{x_0}_k`, variances
    :math:`c_2^2 s_k^2 + c_3`), from which one sample is drawn.
    """
    sig = _as_col(sigma, x_t)
    sig_n = _as_col(sigma_next, x_t)
    a, a_n = 1.0 - sig, 1.0 - sig_n
    beta = 1.0 - (sig_n * a / (sig * a_n)) ** 2
    c1 = (sig_n / sig) ** 2 * a / a_n
    c2 = beta * a_n
    c3 = beta * sig_n**2
    gm0 = u_to_x0(gm_u, x_t, sig)
    means = c1[..., None] * x_t[:, None, :] + c2[..., None] * gm0.means
    var = c2**2 * gm0.var + c3
    gm_next = GaussianMixture(means, gm0.log_weights, 0.5 * torch.log(var.clamp_min(1e-30)))
    return gm_sample(gm_next, generator=generator)


def gmflow_ode_step(gm_u, x_t, sigma, sigma_next, n_substeps=1):
    r"""One GM-ODE step from :math:`\sigma` to :math:`\sigma'` with ``n_substeps``
    Euler sub-steps and no further network call.

    At each sub-step :math:`(x_\tau, \sigma_\tau)` the :math:`x_0`-posterior is
    the network's :math:`x_0`-GM times
    :math:`\exp(\eta^\top x_0 - \tfrac12\lambda\|x_0\|^2)` with
    :math:`\eta = \alpha_\tau x_\tau/\sigma_\tau^2 - \alpha_t x_t/\sigma_t^2`,
    :math:`\lambda = \alpha_\tau^2/\sigma_\tau^2 - \alpha_t^2/\sigma_t^2`
    (:func:`gm_mul_natural`), and the velocity is
    :math:`(x_\tau - E[x_0\mid x_\tau])/\sigma_\tau`. With one sub-step this
    is the flow-matching Euler step with the GM's mean velocity.
    """
    if int(n_substeps) < 1:
        raise ValueError(f"n_substeps must be >= 1, got {n_substeps}")
    sig = _as_col(sigma, x_t)
    sig_n = _as_col(sigma_next, x_t)
    gm0 = u_to_x0(gm_u, x_t, sig)
    a = 1.0 - sig
    h = (sig - sig_n) / int(n_substeps)
    x = x_t
    s = sig
    for i in range(int(n_substeps)):
        if i == 0:
            mean0 = gm_mean(gm0)
        else:
            a_s = 1.0 - s
            eta = a_s * x / s**2 - a * x_t / sig**2
            lam = a_s**2 / s**2 - a**2 / sig**2
            mean0 = gm_mean(gm_mul_natural(gm0, eta, lam))
        u = (x - mean0) / s
        x = x - h * u
        s = s - h
    return x


def gmflow_sample(
    model,
    x_init,
    n_steps=8,
    *,
    sampler="sde",
    n_substeps=1,
    guidance=None,
    generator=None,
):
    r"""Sample with a GMFlow model from :math:`\sigma = 1` to 0 in ``n_steps`` equal steps.

    Parameters
    ----------
    model : callable
        ``model(x_t, sigma)`` with ``sigma`` of shape (B, 1) returns a
        :class:`GaussianMixture` over the velocity.
    x_init : Tensor of shape (B, C)
        Noise :math:`x_1 \sim N(0, I)`.
    n_steps : int
    sampler : {'sde', 'ode'}
    n_substeps : int
        GM-ODE sub-steps per step.
    guidance : tuple (uncond_model, scale), optional
        Probabilistic guidance (:func:`probabilistic_guidance`).
    generator : torch.Generator, optional
    """
    if sampler not in ("sde", "ode"):
        raise ValueError(f"sampler must be 'sde' or 'ode', got {sampler!r}")
    x = x_init
    sig = torch.linspace(1.0, 0.0, int(n_steps) + 1, dtype=x.dtype, device=x.device)
    for i in range(int(n_steps)):
        s = sig[i].expand(x.shape[0], 1)
        s_n = sig[i + 1].expand(x.shape[0], 1)
        gm = model(x, s)
        if guidance is not None:
            uncond_model, w = guidance
            gm = probabilistic_guidance(gm, uncond_model(x, s), w)
        if sampler == "sde":
            x = gmflow_sde_step(gm, x, s, s_n, generator=generator)
        else:
            x = gmflow_ode_step(gm, x, s, s_n, n_substeps)
    return x


def probabilistic_guidance(gm_cond, gm_uncond, scale, *, orthogonal=1.0):
    r"""GMFlow's probabilistic guidance.

    With the moment-matched isotropic Gaussian :math:`N(m_c, v_c I)` of the
    conditional GM and the unconditional mean :math:`m_u`: the bias
    :math:`b = m_c - m_u`, minus ``orthogonal`` times its projection on
    :math:`m_c`, is rescaled to :math:`\|b\|^2/C = w^2 \bar v_c`; the target
    Gaussian is :math:`N(m_c + b, (1-w^2) v_c I)` and the guided GM is the
    conditional GM times :math:`N(m_c+b, (1-w^2)v_c)/N(m_c, v_c)` (a Gaussian
    reweighting, :func:`gm_mul_natural`). ``scale`` :math:`w \in [0, 1)`;
    :math:`w = 0` returns the conditional GM.
    """
    w = float(scale)
    if not 0.0 <= w < 1.0:
        raise ValueError(f"guidance scale must be in [0, 1), got {scale}")
    m_c, v_c = gm_to_iso_gaussian(gm_cond)
    m_u = gm_mean(gm_uncond)
    bias = m_c - m_u
    if orthogonal > 0:
        proj = (bias * m_c).mean(-1, keepdim=True) / (m_c * m_c).mean(-1, keepdim=True).clamp_min(1e-6)
        bias = bias - orthogonal * proj * m_c
    power = (bias * bias).mean(-1, keepdim=True).clamp_min(1e-6)
    bias = bias * torch.sqrt(v_c / power) * w
    v_g = v_c * (1.0 - w * w)
    m_g = m_c + bias
    eta = m_g / v_g - m_c / v_c
    lam = 1.0 / v_g - 1.0 / v_c
    return gm_mul_natural(gm_cond, eta, lam)


class GMFlowHead(nn.Module):
    r"""GMFlow output head: :math:`K` means, :math:`K` log-weights and one log-std.

    Maps features (B, d_in) to a :class:`GaussianMixture` over
    :math:`\mathbb{R}^C`: means by a linear layer, log-weights by a linear
    layer and log-softmax, the shared log-std by a linear layer initialised
    at zero (:math:`s = 1`), as in GMFlow's toy model. ``log_std=float``
    fixes :math:`s` instead (with :math:`K = 1` and ``log_std=0`` the loss is
    flow matching).
    """

    def __init__(self, d_in, n_features, n_components, *, log_std=None, device=None, dtype=None):
        super().__init__()
        for name, v in (("d_in", d_in), ("n_features", n_features), ("n_components", n_components)):
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        fk = {"device": device, "dtype": dtype}
        self.n_features, self.n_components = int(n_features), int(n_components)
        self.means = nn.Linear(d_in, self.n_components * self.n_features, **fk)
        self.logits = nn.Linear(d_in, self.n_components, **fk)
        self.fixed_log_std = None if log_std is None else float(log_std)
        if log_std is None:
            self.log_std = nn.Linear(d_in, 1, **fk)
            nn.init.zeros_(self.log_std.weight)
            nn.init.zeros_(self.log_std.bias)

    def forward(self, h):
        B = h.shape[0]
        means = self.means(h).reshape(B, self.n_components, self.n_features)
        logw = log_softmax(self.logits(h), axis=-1)
        if self.fixed_log_std is None:
            log_std = self.log_std(h)
        else:
            log_std = h.new_full((B, 1), self.fixed_log_std)
        return GaussianMixture(means, logw, log_std)


# --------------------------------------------------------------------------
# Score-of-Mixture training
# --------------------------------------------------------------------------


def mixture_posterior_mean(alpha, log_p_t, log_q_t, mean_p, mean_q):
    r"""Optimal mixture denoiser :math:`D^*_\alpha(x_t) = r\,E_p[x_0\mid x_t] + (1-r)\,E_q[x_0\mid x_t]`.

    :math:`r = \alpha p_t(x_t) / (\alpha p_t(x_t) + (1-\alpha) q_t(x_t))`,
    the responsibility of the data component in the mixture
    :math:`\alpha p_t + (1-\alpha) q_t` of the noised marginals
    (:func:`mixstat.primitives.responsibilities`).

    Parameters
    ----------
    alpha : float or Tensor of shape (B,)
    log_p_t, log_q_t : Tensor of shape (B,)
        Log-densities of the noised real and fake marginals at :math:`x_t`.
    mean_p, mean_q : Tensor of shape (B, C)
        Posterior means :math:`E[x_0 \mid x_t]` under each.
    """
    alpha = torch.as_tensor(alpha, dtype=log_p_t.dtype, device=log_p_t.device).expand_as(log_p_t)
    if bool(((alpha < 0) | (alpha > 1)).any()):
        raise ValueError("alpha must lie in [0, 1]")
    log_w = torch.stack([torch.log(alpha), torch.log1p(-alpha)], dim=1)
    log_resp, _ = responsibilities(torch.stack([log_p_t, log_q_t], dim=1), log_w)
    r = torch.exp(log_resp[:, :1])
    return r * mean_p + (1.0 - r) * mean_q


def score_of_mixture_loss(denoiser, x_real, x_fake, sigma, alpha, *, sigma_data=0.5, generator=None):
    r"""Score-of-Mixture denoiser loss (Jayashankar et al. 2025, amortised over :math:`\alpha`).

    .. math::
        w(\sigma)\Big[\alpha\,\|D(x + \sigma n; \sigma, \alpha) - x\|^2
        + (1-\alpha)\,\|D(\tilde x + \sigma \tilde n; \sigma, \alpha) - \tilde x\|^2\Big],
        \quad w(\sigma) = \sigma^{-2} + \sigma_{\mathrm{data}}^{-2},

    :math:`x` real, :math:`\tilde x` generated; the minimiser is the
    posterior mean under :math:`\alpha p + (1-\alpha)q`
    (:func:`mixture_posterior_mean`), i.e. the score of the mixture.

    Parameters
    ----------
    denoiser : callable ``denoiser(x_t, sigma, alpha)`` with ``sigma``, ``alpha`` of shape (B, 1)
    x_real, x_fake : Tensor of shape (B, C)
    sigma, alpha : Tensor of shape (B,) or float
    sigma_data : float, default=0.5

    Returns
    -------
    Tensor (0-d): the batch mean.
    """
    if x_real.shape != x_fake.shape or x_real.ndim != 2:
        raise ValueError(
            f"x_real and x_fake must both have shape (B, C), got {tuple(x_real.shape)}, {tuple(x_fake.shape)}"
        )
    sig = _as_col(sigma, x_real)
    a = _as_col(alpha, x_real)
    if bool(((a < 0) | (a > 1)).any()):
        raise ValueError("alpha must lie in [0, 1]")
    n_r = torch.randn(x_real.shape, generator=generator, dtype=x_real.dtype, device=x_real.device)
    n_f = torch.randn(x_fake.shape, generator=generator, dtype=x_real.dtype, device=x_real.device)
    w = sig**-2 + sigma_data**-2
    err_r = ((denoiser(x_real + sig * n_r, sig, a) - x_real) ** 2).sum(-1, keepdim=True)
    err_f = ((denoiser(x_fake + sig * n_f, sig, a) - x_fake) ** 2).sum(-1, keepdim=True)
    return (w * (a * err_r + (1.0 - a) * err_f)).mean()
