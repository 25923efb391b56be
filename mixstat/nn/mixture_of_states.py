r"""Mixture of States: token-wise sparse routing of an understanding tower's
hidden states into the layers of a generation tower.

Liu, Liu, Zhuge, Zhou, Xie, He, Yang, Liu, Cong, Guo, Xu, Xu, Ng, Pérez,
Pérez-Rúa, Xiang, Liu, Liu & Schmidhuber (2025), "Mixture of States: routing
token-level dynamics for multimodal generation", arXiv:2511.12207 (CVPR 2026).

An understanding tower (a text model, frozen in the paper) gives hidden
states :math:`h^{(l)}_t \in \mathbb{R}^{d_u}`, :math:`l = 1..L_u`, for every
condition token :math:`t`. A small router reads each token (its last-layer
state), the denoising timestep and the noisy image, and gives logits
:math:`z_{t,j} \in \mathbb{R}^{L_u}` for every generation layer
:math:`j = 1..L_g`. Each (token, generation layer) keeps its top-k
understanding layers (:func:`mixstat.primitives.topk_gating`):

.. math::
    p_{t,j} = \mathrm{softmax}(z_{t,j}),\qquad
    (g_{t,j}, \mathcal{I}_{t,j}) = \mathrm{TopK}(p_{t,j}, k),\qquad
    s_{t,j} = \sum_{l\in\mathcal{I}_{t,j}} g_{t,j,l}\, h^{(l)}_t ,

(gates renormalised over the :math:`k` kept layers when :math:`k>1`, the raw
probability for :math:`k=1` so that the router keeps a gradient). Generation
layer :math:`j` attends jointly to its image tokens and to the projected
context :math:`W_j s_{\cdot,j}`. Training uses :math:`\epsilon`-greedy
exploration: with probability :math:`\epsilon` a (token, layer) pair takes
:math:`k` understanding layers drawn uniformly instead of its top-k (gates
from the same softmax, so gradients still reach the router). Only the
selected states enter the computation, so unselected layers get no gradient.

Reconstructed details (no public code): the router is an MLP on the token's
last-layer state plus a condition vector (timestep embedding and mean noisy
patch embedding); the context enters by joint attention in every generation
block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..primitives import softmax, topk_gating
from ._transformer import Block, cosine_alpha_bar, draw, timestep_embedding

__all__ = [
    "MixtureOfStatesDenoiser",
    "MixtureOfStatesRouter",
    "StateRouting",
    "select_states",
]


@dataclass
class StateRouting:
    """Routing of one call. Shapes use B batch, T tokens, Lg generation layers.

    Attributes
    ----------
    logits : Tensor (B, T, Lg, Lu)
    gates : Tensor (B, T, Lg, k)
    indices : LongTensor (B, T, Lg, k)
        The understanding layers used.
    explored : BoolTensor (B, T, Lg)
        Pairs that took random layers (epsilon-greedy).
    """

    logits: torch.Tensor
    gates: torch.Tensor
    indices: torch.Tensor
    explored: torch.Tensor


def select_states(states, logits, k, epsilon=0.0, generator=None):
    r"""Top-k (or :math:`\epsilon`-greedy) mixture of understanding states.

    Parameters
    ----------
    states : Tensor of shape (Lu, B, T, d)
        Hidden states of the understanding tower's layers.
    logits : Tensor of shape (B, T, Lg, Lu)
    k : int
    epsilon : float, default=0.0
        Probability that a (token, generation layer) pair uses :math:`k`
        uniformly drawn layers.
    generator : torch.Generator or None

    Returns
    -------
    mixed : Tensor of shape (Lg, B, T, d)
        :math:`s_{t,j} = \sum_{l \in \mathcal{I}_{t,j}} g_{t,j,l} h^{(l)}_t`.
    routing : StateRouting
    """
    Lu, B, T, d = states.shape
    if (
        logits.ndim != 4
        or logits.shape[0] != B
        or logits.shape[1] != T
        or logits.shape[3] != Lu
    ):
        raise ValueError(
            f"logits must have shape ({B}, {T}, Lg, {Lu}), got {tuple(logits.shape)}"
        )
    k = int(k)
    if not 1 <= k <= Lu:
        raise ValueError(f"k must satisfy 1 <= k <= n_und_layers={Lu}, got {k}")
    if not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    gates, indices = topk_gating(logits, k, renormalize=k > 1)
    explored = torch.zeros(logits.shape[:3], dtype=torch.bool, device=logits.device)
    if epsilon > 0:
        explored = (
            draw(
                torch.rand, logits.shape[:3], generator=generator, device=logits.device
            )
            < epsilon
        )
        noise = draw(
            torch.rand, logits.shape, generator=generator, device=logits.device
        )
        rand_idx = noise.argsort(-1)[..., :k]
        p = softmax(logits, axis=-1)
        rand_g = torch.take_along_dim(p, rand_idx, -1)
        if k > 1:
            rand_g = rand_g / rand_g.sum(-1, keepdim=True)
        indices = torch.where(explored[..., None], rand_idx, indices)
        gates = torch.where(explored[..., None], rand_g, gates)
    # gather states (B, T, Lu, d) at indices (B, T, Lg, k) -> (B, T, Lg, k, d)
    st = states.permute(1, 2, 0, 3)
    Lg = logits.shape[2]
    picked = torch.take_along_dim(st[:, :, None, :, :], indices[..., None], dim=3)
    mixed = (gates[..., None].to(states.dtype) * picked).sum(3)  # (B, T, Lg, d)
    assert mixed.shape == (B, T, Lg, d)
    return mixed.permute(2, 0, 1, 3), StateRouting(logits, gates, indices, explored)


class MixtureOfStatesRouter(nn.Module):
    r"""The MoS router: token-wise, condition-dependent top-k over layers.

    :math:`z_{t} = \mathrm{MLP}([h^{(L_u)}_t; c]) \in \mathbb{R}^{L_g \times L_u}`,
    then :func:`select_states`.

    Parameters
    ----------
    d_und : int
    n_und_layers, n_gen_layers : int
    k : int, default=2
    d_cond : int, default=0
        Size of the condition vector (timestep / noisy-image summary).
    d_hidden : int or None
        Hidden width of the MLP; None means ``d_und``.
    epsilon : float, default=0.0
        Exploration rate while training (0 in eval mode).
    """

    def __init__(
        self,
        d_und,
        n_und_layers,
        n_gen_layers,
        k=2,
        d_cond=0,
        d_hidden=None,
        epsilon=0.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.n_und_layers, self.n_gen_layers = int(n_und_layers), int(n_gen_layers)
        if not 1 <= int(k) <= self.n_und_layers:
            raise ValueError(
                f"k must satisfy 1 <= k <= n_und_layers={n_und_layers}, got {k}"
            )
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.k, self.d_cond, self.epsilon = int(k), int(d_cond), float(epsilon)
        h = int(d_hidden or d_und)
        self.net = nn.Sequential(
            nn.Linear(int(d_und) + self.d_cond, h, **fk),
            nn.SiLU(),
            nn.Linear(h, self.n_gen_layers * self.n_und_layers, **fk),
        )

    def forward(self, states, cond=None, generator=None):
        """``states`` (Lu, B, T, d_und), ``cond`` (B, d_cond) -> (mixed, "
        "StateRouting)."""
        Lu, B, T, _ = states.shape
        if Lu != self.n_und_layers:
            raise ValueError(
                f"expected {self.n_und_layers} understanding layers, got {Lu}"
            )
        z = states[-1]
        if self.d_cond:
            if cond is None or cond.shape != (B, self.d_cond):
                raise ValueError(f"cond must have shape ({B}, {self.d_cond})")
            z = torch.cat(
                [z, cond[:, None, :].expand(B, T, self.d_cond).to(z.dtype)], -1
            )
        logits = self.net(z).reshape(B, T, self.n_gen_layers, self.n_und_layers)
        eps = self.epsilon if self.training else 0.0
        return select_states(states, logits, self.k, eps, generator)


class MixtureOfStatesDenoiser(nn.Module):
    r"""A small two-tower MoS model: text-like tokens condition a patch denoiser.

    Understanding tower: token + position embeddings and ``n_und_layers``
    bidirectional transformer blocks (their outputs are the states).
    Generation tower: noisy patches + timestep embedding and ``n_gen_layers``
    blocks; block :math:`j` attends jointly to the patches and to
    :math:`W_j s_{\cdot,j}` from :class:`MixtureOfStatesRouter`. Predicts the
    noise :math:`\epsilon` of :math:`x_t = \sqrt{\bar\alpha_t}x_0 +
    \sqrt{1-\bar\alpha_t}\epsilon` (cosine schedule).

    Parameters
    ----------
    vocab_size, max_text_len, patch_dim, n_patches : int
    d_und, n_und_layers, d_gen, n_gen_layers, n_heads : int
    k : int, default=2
    epsilon : float, default=0.05
    freeze_understanding : bool, default=False
        Freeze the understanding tower (as the paper does with its
        pretrained LLM).
    n_timesteps : int, default=1000
    """

    def __init__(
        self,
        vocab_size,
        max_text_len,
        patch_dim,
        n_patches,
        d_und=32,
        n_und_layers=4,
        d_gen=32,
        n_gen_layers=3,
        n_heads=2,
        k=2,
        epsilon=0.05,
        freeze_understanding=False,
        n_timesteps=1000,
    ):
        super().__init__()
        self.patch_dim, self.n_patches, self.n_timesteps = (
            int(patch_dim),
            int(n_patches),
            int(n_timesteps),
        )
        self.d_gen = int(d_gen)
        self.tok_emb = nn.Embedding(vocab_size, d_und)
        self.text_pos = nn.Embedding(max_text_len, d_und)
        self.und_blocks = nn.ModuleList(
            Block(d_und, n_heads) for _ in range(n_und_layers)
        )
        self.patch_in = nn.Linear(self.patch_dim, d_gen)
        self.patch_pos = nn.Embedding(self.n_patches, d_gen)
        self.time_mlp = nn.Sequential(
            nn.Linear(d_gen, d_gen), nn.SiLU(), nn.Linear(d_gen, d_gen)
        )
        self.gen_blocks = nn.ModuleList(
            Block(d_gen, n_heads) for _ in range(n_gen_layers)
        )
        self.ctx_proj = nn.ModuleList(
            nn.Linear(d_und, d_gen) for _ in range(n_gen_layers)
        )
        self.router = MixtureOfStatesRouter(
            d_und, n_und_layers, n_gen_layers, k, d_cond=d_gen, epsilon=epsilon
        )
        self.norm = nn.LayerNorm(d_gen)
        self.out = nn.Linear(d_gen, self.patch_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.routing = None
        if freeze_understanding:
            for m in (self.tok_emb, self.text_pos, self.und_blocks):
                for p in m.parameters():
                    p.requires_grad_(False)

    def understand(self, text):
        """Hidden states (n_und_layers, B, T, d_und) of the understanding tower."""
        h = self.tok_emb(text) + self.text_pos(
            torch.arange(text.shape[1], device=text.device)
        )
        states = []
        for blk in self.und_blocks:
            h = blk(h)
            states.append(h)
        return torch.stack(states)

    def forward(self, text, x_t, t, states=None, generator=None):
        """Noise prediction (B, n_patches, patch_dim); the routing is kept in "
        "``self.routing``."""
        B, P, _ = x_t.shape
        if self.n_patches != P or x_t.shape[-1] != self.patch_dim:
            raise ValueError(
                f"x_t must have shape (B, {self.n_patches}, {self.patch_dim})"
            )
        if states is None:
            states = self.understand(text)
        t = torch.as_tensor(t, device=x_t.device).expand(B)
        temb = self.time_mlp(timestep_embedding(t, self.d_gen).to(x_t.dtype))
        hp = self.patch_in(x_t)
        mixed, self.routing = self.router(states, temb + hp.mean(1), generator)
        h = hp + self.patch_pos(torch.arange(P, device=x_t.device)) + temb[:, None]
        for j, blk in enumerate(self.gen_blocks):
            ctx = self.ctx_proj[j](mixed[j])
            h = blk(torch.cat([h, ctx], 1))[:, :P]
        return self.out(self.norm(h))

    def alpha_bar(self, t):
        return cosine_alpha_bar(torch.as_tensor(t), self.n_timesteps)

    def training_loss(self, text, x0, generator=None):
        """:math:`\\mathbb{E}\\lVert\\epsilon - \\epsilon_\\theta(x_t, t, "
        "\\text{text})\\rVert^2`, t uniform."""
        B = x0.shape[0]
        t = draw(
            torch.randint,
            0,
            self.n_timesteps,
            (B,),
            generator=generator,
            device=x0.device,
        )
        eps = draw(
            torch.randn, x0.shape, generator=generator, dtype=x0.dtype, device=x0.device
        )
        ab = self.alpha_bar(t).to(x0.dtype)[:, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        return (self(text, xt, t, generator=generator) - eps).pow(2).mean()

    @torch.no_grad()
    def sample(self, text, n_steps=50, clip=1.0, generator=None):
        """DDIM (:math:`\\eta = 0`) samples (B, n_patches, patch_dim) for the "
        "given text."""
        B = text.shape[0]
        dtype = self.out.weight.dtype
        x = draw(
            torch.randn,
            B,
            self.n_patches,
            self.patch_dim,
            generator=generator,
            dtype=dtype,
            device=text.device,
        )
        states = self.understand(text)
        ts = torch.linspace(self.n_timesteps - 1, 0, int(n_steps)).round().long()
        x0 = x
        for i, t in enumerate(ts):
            eps = self(text, x, t, states=states)
            ab = self.alpha_bar(t).to(dtype)
            ab_prev = (
                self.alpha_bar(ts[i + 1]).to(dtype)
                if i + 1 < len(ts)
                else torch.ones((), dtype=dtype)
            )
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-clip, clip)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        return x0
