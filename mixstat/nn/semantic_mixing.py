r"""Semantic mixing with a pretrained conditional denoiser (MagicMix).

MagicMix (Liew, Yan, Zhou & Feng, "MagicMix: semantic mixing with diffusion
models", arXiv:2210.16056) mixes the *layout* of a source image
:math:`x^{\mathrm{src}}` with the *content* of a new condition :math:`c`
(a class here, a prompt in the paper). On a noise grid :math:`1 = t_0 > \dots > t_N = 0`
and with :math:`0 \le k_{\min} \le k_{\max} \le 1`:

1. start from the noised source :math:`x_{k_{\max}} = (1-k_{\max})x^{\mathrm{src}} + k_{\max}\epsilon`;
2. *layout phase*, for each step with target time :math:`t' \ge k_{\min}`:
   denoise with condition :math:`c`, :math:`\hat x_{t'} = \mathrm{step}(x_t, c)`, then mix
   with a freshly noised source,

   .. math::
       x_{t'} = \nu\,\hat x_{t'} + (1-\nu)\,\big((1-t')x^{\mathrm{src}} + t'\epsilon'\big);

3. *content phase*, for :math:`t' < k_{\min}`: plain conditional denoising.

:math:`\nu` is the paper's interpolation constant (the mixing factor,
:math:`\nu = 1` drops the layout guidance). With :math:`\nu = 1`, or with
:math:`k_{\min} = k_{\max}` (empty layout phase), MagicMix is plain
conditional sampling started from the noised source (SDEdit, Meng et al.
2022); with :math:`k_{\max} = 1` as well it is plain conditional sampling from
pure noise. The layout phase keeps the source's coarse structure (its low
spatial frequencies), which is what the layout is made of.

The step is DDIM in flow time (:func:`mixstat.nn.ddim_step`), optionally with
classifier-free guidance. ``layout_noise="fixed"`` re-uses the initial noise
for every noised source (the diffusers community pipeline's choice) instead of
the paper's fresh draw.

VMDiff's two-object mixing is not implemented here; where it blends two
conditions' embeddings and samples with the layout of one image, it is this
sampler with a blended condition.
"""

from __future__ import annotations

import torch

from .teachers import ddim_step, guided_denoise, time_grid

__all__ = ["low_pass_8x8", "magic_mix", "noised_source_sample"]


def _draw_noises(x_src, n, generator):
    return [
        torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype)
        for _ in range(n)
    ]


def _check(k_max, k_min, nu, n_steps):
    if not 0.0 <= float(k_min) <= float(k_max) <= 1.0:
        raise ValueError(
            f"need 0 <= k_min <= k_max <= 1, got k_min={k_min}, k_max={k_max}"
        )
    if not 0.0 <= float(nu) <= 1.0:
        raise ValueError(f"nu must lie in [0, 1], got {nu}")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")


def _start_index(n_steps, k_max):
    """Grid index whose time is k_max (grid 1 -> 0 in n_steps uniform steps)."""
    return int(round((1.0 - float(k_max)) * int(n_steps)))


@torch.no_grad()
def magic_mix(
    denoiser,
    x_src,
    cond,
    *,
    k_max=0.6,
    k_min=0.3,
    nu=0.5,
    n_steps=50,
    guidance=0.0,
    null_class=None,
    eta=0.0,
    layout_noise="fresh",
    generator=None,
    return_layout=False,
):
    r"""MagicMix: layout of ``x_src``, content of ``cond`` (see the module docstring).

    Parameters
    ----------
    denoiser : callable ``D(x_t, t, c)``
    x_src : Tensor of shape (B, ...)
        Layout source, one per row.
    cond : LongTensor of shape (B,)
        Content condition.
    k_max, k_min : float, 0 <= k_min <= k_max <= 1
        Noise levels that open and close the layout phase (snapped to the
        uniform ``n_steps`` grid).
    nu : float in [0, 1]
        Interpolation constant: weight of the denoised latent against the
        noised source during the layout phase.
    n_steps : int
        Steps of the full grid from 1 to 0 (only those below ``k_max`` run).
    guidance : float
        Classifier-free guidance scale of each step.
    eta : float
        DDIM stochasticity.
    layout_noise : {'fresh', 'fixed'}
    generator : torch.Generator, optional
        Noise order: the initial noise, then one step noise per step run, then
        the layout noises, so that :func:`noised_source_sample` with the same
        generator state sees the same initial and step noise.
    return_layout : bool
        Also return the state at the end of the layout phase (time ``k_min``).

    Returns
    -------
    Tensor like ``x_src`` (and the layout-phase state).
    """
    _check(k_max, k_min, nu, n_steps)
    if layout_noise not in ("fresh", "fixed"):
        raise ValueError(
            f"layout_noise must be 'fresh' or 'fixed', got {layout_noise!r}"
        )
    ts = time_grid(n_steps)
    s = _start_index(n_steps, k_max)
    e = _start_index(n_steps, k_min)
    eps0 = torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype)
    step_noises = _draw_noises(x_src, n_steps - s, generator)
    if layout_noise == "fresh":
        lay_noises = _draw_noises(x_src, e - s, generator)
    else:
        lay_noises = [eps0] * (e - s)
    x = (1 - ts[s]) * x_src + ts[s] * eps0
    layout_state = x
    for j, i in enumerate(range(s, n_steps)):
        t, tn = ts[i], ts[i + 1]
        x0 = guided_denoise(denoiser, x, t, cond, guidance, null_class)
        x = ddim_step(x, x0, t, tn, eta=eta, noise=step_noises[j]) if tn > 0 else x0
        if i + 1 <= e:  # layout phase: target time t' >= k_min
            x = nu * x + (1 - nu) * ((1 - tn) * x_src + tn * lay_noises[i - s])
            if i + 1 == e:
                layout_state = x
    return (x, layout_state) if return_layout else x


@torch.no_grad()
def noised_source_sample(
    denoiser,
    x_src,
    cond,
    *,
    t_start=0.6,
    n_steps=50,
    guidance=0.0,
    null_class=None,
    eta=0.0,
    generator=None,
):
    r"""Plain conditional sampling from the noised source (SDEdit).

    :math:`x_{t_s} = (1-t_s)x^{\mathrm{src}} + t_s\epsilon`, then DDIM to 0 on
    the grid of :func:`magic_mix` (same noise order). With ``t_start=1`` this
    is plain conditional sampling from pure noise.
    """
    return _sdedit(
        denoiser, x_src, cond, t_start, n_steps, guidance, null_class, eta, generator
    )


def _sdedit(
    denoiser, x_src, cond, t_start, n_steps, guidance, null_class, eta, generator
):
    _check(t_start, 0.0, 1.0, n_steps)
    ts = time_grid(n_steps)
    s = _start_index(n_steps, t_start)
    eps0 = torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype)
    step_noises = _draw_noises(x_src, n_steps - s, generator)
    x = (1 - ts[s]) * x_src + ts[s] * eps0
    for j, i in enumerate(range(s, n_steps)):
        t, tn = ts[i], ts[i + 1]
        x0 = guided_denoise(denoiser, x, t, cond, guidance, null_class)
        x = ddim_step(x, x0, t, tn, eta=eta, noise=step_noises[j]) if tn > 0 else x0
    return x


def low_pass_8x8(x, size=2):
    r"""Low spatial frequencies of 8x8 images: average-pool to ``size`` x ``size`` blocks.

    ``x`` of shape (B, 64) (row-major 8x8); returns (B, size*size).
    """
    if x.shape[-1] != 64 or 8 % int(size):
        raise ValueError("x must be (B, 64) and size must divide 8")
    b = 8 // int(size)
    return (
        x.reshape(-1, int(size), b, int(size), b).mean((2, 4)).reshape(x.shape[0], -1)
    )
