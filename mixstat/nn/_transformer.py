"""A small pre-norm transformer block shared by the sequence models of
``mixstat.nn`` (Transfusion, Mixture of States). Private."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Pre-norm block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    ``attn_mask``: boolean (B, T, T) or (T, T), True where a query may
    attend to a key (``F.scaled_dot_product_attention`` convention).
    """

    def __init__(self, d_model, n_heads, mlp_ratio=4, device=None, dtype=None):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"d_model={d_model} must be divisible by n_heads={n_heads}"
            )
        fk = {"device": device, "dtype": dtype}
        self.n_heads = int(n_heads)
        self.norm1 = nn.LayerNorm(d_model, **fk)
        self.qkv = nn.Linear(d_model, 3 * d_model, **fk)
        self.proj = nn.Linear(d_model, d_model, **fk)
        self.norm2 = nn.LayerNorm(d_model, **fk)
        self.fc1 = nn.Linear(d_model, mlp_ratio * d_model, **fk)
        self.fc2 = nn.Linear(mlp_ratio * d_model, d_model, **fk)

    def forward(self, x, attn_mask=None):
        B, T, D = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .reshape(B, T, 3, self.n_heads, D // self.n_heads)
            .unbind(2)
        )
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if attn_mask is not None and attn_mask.ndim == 3:
            attn_mask = attn_mask[:, None]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding of (possibly fractional) timesteps ``t`` (...,) -> "
    "(..., dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, device=t.device, dtype=torch.float64)
        / half
    )
    args = t.to(torch.float64)[..., None] * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[..., :1])], dim=-1)
    return emb


def cosine_alpha_bar(t, n_timesteps, s=0.008):
    r"""Cosine schedule (Nichol & Dhariwal 2021).

    :math:`\bar\alpha(t)=\cos^2\big(\frac{t/T+s}{1+s}\frac\pi2\big)
    /\cos^2\big(\frac{s}{1+s}\frac\pi2\big)`, clipped to :math:`[10^{-5}, 1]`.
    """
    f = torch.cos((t.to(torch.float64) / n_timesteps + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return (f / f0).clamp(min=1e-5, max=1.0)


def draw(fn, *args, generator=None, device=None, **kwargs):
    """``fn`` (torch.rand / randn / randint) drawn on the generator's device,
    then moved to ``device`` (a CPU generator can seed a CUDA run)."""
    gen_device = generator.device if generator is not None else device
    return fn(*args, generator=generator, device=gen_device, **kwargs).to(device)
