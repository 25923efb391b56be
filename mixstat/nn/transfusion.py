r"""Transfusion: one transformer, a next-token loss on discrete tokens and a
diffusion loss on continuous image patches of the same sequence.

Zhou, Yu, Babu, Tirumala, Yasunaga, Shamis, Kahn, Ma, Zettlemoyer, Levy
(2024), "Transfusion: predict the next token and diffuse images with one
multi-modal model", arXiv:2408.11039 (ICLR 2025).

A sequence mixes text tokens and images; an image is a run of patch vectors
between ``BOI`` and ``EOI`` tokens. Text tokens are embedded, patches are
projected linearly and get the embedding of their diffusion timestep
:math:`t`. Attention is causal over the sequence and bidirectional inside
each image (:func:`transfusion_attention_mask`):

.. math::
    M_{ij} = [\,j \le i\,] \lor [\,\mathrm{img}(i) = \mathrm{img}(j) \ne \varnothing\,].

Training adds noise to each image, :math:`x_t = \sqrt{\bar\alpha_t}\,x_0 +
\sqrt{1-\bar\alpha_t}\,\epsilon` (cosine schedule, :math:`T = 1000`), and
minimises (:func:`transfusion_loss`)

.. math::
    \mathcal{L} = \mathcal{L}_{\mathrm{LM}} + \lambda\,\mathcal{L}_{\mathrm{DDPM}},
    \qquad
    \mathcal{L}_{\mathrm{LM}} = -\frac1{|S|}\sum_{i\in S}\log p_\theta(y_i\mid y_{<i}),

    \mathcal{L}_{\mathrm{DDPM}} = \frac1{|P|}\sum_{i\in P}
    \frac1{p}\lVert\epsilon_i - \epsilon_\theta(x_t)_i\rVert^2,

with :math:`\lambda = 5` (the paper's value), :math:`S` the text positions
(predicted from the previous position when it is text as well; the ``EOI``
after an image is appended by the sampler, not predicted) and :math:`P` the
image positions. Generation: when the language model emits ``BOI``, the
sampler appends pure-noise patches and denoises them with the whole prefix as
context (:meth:`TransfusionModel.sample_image`, DDIM with optional
classifier-free guidance), then appends ``EOI``.

Deviations at this scale: patches are raw pixel patches (the paper encodes
images with a VAE and optional U-Net down/up blocks), positions are learned
absolute embeddings (the paper uses RoPE), one image per sequence in
:func:`pack_image_sequence` (the model and the mask handle several).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._transformer import Block, cosine_alpha_bar, draw, timestep_embedding

__all__ = [
    "TransfusionModel",
    "pack_image_sequence",
    "transfusion_attention_mask",
    "transfusion_loss",
]


def transfusion_attention_mask(image_index):
    r"""Causal-across, bidirectional-within-image attention mask.

    Parameters
    ----------
    image_index : LongTensor of shape (T,) or (B, T)
        -1 at text positions, the image's number (0, 1, ...) at its patch positions.

    Returns
    -------
    mask : BoolTensor of shape (T, T) or (B, T, T)
        ``mask[..., i, j]`` is True when position ``i`` may attend to ``j``:
        :math:`j \le i`, or ``i`` and ``j`` lie in the same image.
    """
    ii = torch.as_tensor(image_index)
    if ii.ndim not in (1, 2):
        raise ValueError(f"image_index must be 1-D or 2-D, got shape {tuple(ii.shape)}")
    T = ii.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=ii.device).tril()
    same = (ii[..., :, None] == ii[..., None, :]) & (ii[..., :, None] >= 0)
    return causal | same


def _position_in_image(image_index):
    """Index of each patch inside its image (0 at text positions)."""
    ii = image_index
    n_img = int(ii.max().item()) + 1 if ii.numel() and bool((ii >= 0).any()) else 0
    if n_img == 0:
        return torch.zeros_like(ii)
    onehot = F.one_hot(ii.clamp(min=0), n_img) * (ii >= 0)[..., None]
    pos = onehot.cumsum(-2) - onehot
    return (pos * onehot).sum(-1)


def pack_image_sequence(prefix, n_patches, suffix=None, patches=None, patch_dim=None):
    """Lay out ``prefix tokens, one image (n_patches patches), suffix tokens``.

    Parameters
    ----------
    prefix : LongTensor of shape (B, L1)
        E.g. ``[BOS, label, BOI]`` (generation) or ``[BOS, BOI]`` (captioning).
    n_patches : int
    suffix : LongTensor of shape (B, L2) or None
        E.g. ``[EOI]`` or ``[EOI, label]``.
    patches : Tensor of shape (B, n_patches, patch_dim) or None
        None: zeros of ``patch_dim``.

    Returns
    -------
    tokens : LongTensor of shape (B, T)
        -1 at the image positions.
    seq_patches : Tensor of shape (B, T, patch_dim)
        Zeros at the text positions.
    image_index : LongTensor of shape (B, T)
    """
    prefix = torch.as_tensor(prefix)
    B = prefix.shape[0]
    suffix = prefix.new_zeros(B, 0) if suffix is None else torch.as_tensor(suffix)
    if patches is None:
        if patch_dim is None:
            raise ValueError("give patches or patch_dim")
        patches = torch.zeros(B, n_patches, patch_dim, device=prefix.device)
    if patches.shape[:2] != (B, n_patches):
        raise ValueError(
            f"patches must have shape ({B}, {n_patches}, p), got {tuple(patches.shape)}"
        )
    L1, L2 = prefix.shape[1], suffix.shape[1]
    T = L1 + n_patches + L2
    tokens = torch.cat([prefix, prefix.new_full((B, n_patches), -1), suffix], 1)
    seq = patches.new_zeros(B, T, patches.shape[-1])
    seq[:, L1 : L1 + n_patches] = patches
    image_index = torch.full((B, T), -1, dtype=torch.long, device=prefix.device)
    image_index[:, L1 : L1 + n_patches] = 0
    return tokens, seq, image_index


def transfusion_loss(logits, eps_pred, tokens, image_index, eps, diffusion_weight=5.0):
    r"""Transfusion's loss :math:`\mathcal{L}_{LM} + \lambda\,\mathcal{L}_{DDPM}`.

    Parameters
    ----------
    logits : Tensor of shape (B, T, V)
    eps_pred : Tensor of shape (B, T, p)
    tokens : LongTensor of shape (B, T)
    image_index : LongTensor of shape (B, T)
    eps : Tensor of shape (B, T, p)
        The noise added to the patches (read at image positions only).
    diffusion_weight : float, default=5.0
        :math:`\lambda`.

    Returns
    -------
    loss, lm_loss, diffusion_loss : Tensor (0-d)
        A term with no position to average over is 0.
    """
    text = image_index < 0
    tgt = text[:, 1:] & text[:, :-1]
    if bool(tgt.any()):
        lm = F.cross_entropy(logits[:, :-1][tgt], tokens[:, 1:][tgt])
    else:
        lm = logits.sum() * 0.0
    img = ~text
    diff = (
        (eps_pred - eps).pow(2)[img].mean() if bool(img.any()) else eps_pred.sum() * 0.0
    )
    return lm + float(diffusion_weight) * diff, lm, diff


class TransfusionModel(nn.Module):
    r"""A small Transfusion transformer (see the module docstring).

    Parameters
    ----------
    vocab_size : int
    patch_dim : int
    max_len : int
        Longest sequence.
    max_patches : int
        Most patches in one image.
    d_model, n_heads, n_layers : int, default=64, 4, 4
    n_timesteps : int, default=1000
        :math:`T` of the cosine schedule.
    """

    def __init__(
        self,
        vocab_size,
        patch_dim,
        max_len,
        max_patches,
        d_model=64,
        n_heads=4,
        n_layers=4,
        n_timesteps=1000,
        mlp_ratio=4,
        device=None,
        dtype=None,
    ):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.vocab_size, self.patch_dim = int(vocab_size), int(patch_dim)
        self.max_len, self.max_patches = int(max_len), int(max_patches)
        self.d_model, self.n_timesteps = int(d_model), int(n_timesteps)
        self.tok_emb = nn.Embedding(self.vocab_size, d_model, **fk)
        self.pos_emb = nn.Embedding(self.max_len, d_model, **fk)
        self.patch_pos_emb = nn.Embedding(self.max_patches, d_model, **fk)
        self.patch_in = nn.Linear(self.patch_dim, d_model, **fk)
        self.time_mlp = nn.Sequential(
            nn.Linear(d_model, d_model, **fk),
            nn.SiLU(),
            nn.Linear(d_model, d_model, **fk),
        )
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, mlp_ratio, **fk) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model, **fk)
        self.lm_head = nn.Linear(d_model, self.vocab_size, **fk)
        self.patch_out = nn.Linear(d_model, self.patch_dim, **fk)
        nn.init.zeros_(self.patch_out.weight)
        nn.init.zeros_(self.patch_out.bias)

    def alpha_bar(self, t):
        return cosine_alpha_bar(torch.as_tensor(t), self.n_timesteps)

    def add_noise(self, x0, t, eps):
        r"""Noised images.

        :math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon`, ``t`` of
        shape (B,).
        """
        ab = self.alpha_bar(t).to(x0.dtype).reshape(-1, *([1] * (x0.ndim - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def forward(self, tokens, patches, image_index, t):
        """Logits (B, T, V) and noise predictions (B, T, p).

        ``t``: the diffusion timestep of each sequence's image(s), shape (B,)
        or per position (B, T); ignored at text positions.
        """
        B, T = tokens.shape
        if self.max_len < T:
            raise ValueError(f"sequence length {T} exceeds max_len={self.max_len}")
        if patches.shape != (B, T, self.patch_dim):
            raise ValueError(
                f"patches must have shape ({B}, {T}, {self.patch_dim}), got "
                f"{tuple(patches.shape)}"
            )
        is_img = image_index >= 0
        dtype = self.patch_in.weight.dtype
        t = torch.as_tensor(t, device=tokens.device)
        if t.ndim == 0:
            t = t.expand(B)
        temb = self.time_mlp(timestep_embedding(t, self.d_model).to(dtype))
        if temb.ndim == 2:
            temb = temb[:, None, :]
        pip = _position_in_image(image_index)
        if bool((pip >= self.max_patches).any()):
            raise ValueError(
                f"an image has more than max_patches={self.max_patches} patches"
            )
        h_img = self.patch_in(patches.to(dtype)) + temb + self.patch_pos_emb(pip)
        h_txt = self.tok_emb(tokens.clamp(min=0))
        h = torch.where(is_img[..., None], h_img, h_txt)
        h = h + self.pos_emb(torch.arange(T, device=tokens.device))
        mask = transfusion_attention_mask(image_index)
        for blk in self.blocks:
            h = blk(h, mask)
        h = self.norm(h)
        return self.lm_head(h), self.patch_out(h)

    def training_loss(
        self, tokens, x0, image_index, t=None, diffusion_weight=5.0, generator=None
    ):
        """Noise the images (``x0`` at image positions), run the model, return
        :func:`transfusion_loss` (loss, lm, diffusion). ``t`` None: uniform
        in ``{0..T-1}`` per sequence."""
        B = tokens.shape[0]
        if t is None:
            t = draw(
                torch.randint,
                0,
                self.n_timesteps,
                (B,),
                generator=generator,
                device=tokens.device,
            )
        eps = draw(
            torch.randn, x0.shape, generator=generator, dtype=x0.dtype, device=x0.device
        )
        xt = torch.where((image_index >= 0)[..., None], self.add_noise(x0, t, eps), x0)
        logits, eps_pred = self(tokens, xt, image_index, t)
        return transfusion_loss(
            logits, eps_pred, tokens, image_index, eps, diffusion_weight
        )

    @torch.no_grad()
    def sample_image(
        self,
        tokens,
        image_index,
        n_steps=50,
        guidance_scale=0.0,
        uncond_tokens=None,
        clip=1.0,
        generator=None,
    ):
        r"""Denoise the image positions of a packed sequence (DDIM, :math:`\eta = 0`).

        With ``guidance_scale`` :math:`w > 0` and ``uncond_tokens`` (the same
        layout with the condition dropped), classifier-free guidance
        :math:`\hat\epsilon = \epsilon_u + (1 + w)(\epsilon_c - \epsilon_u)`.

        Returns
        -------
        patches : Tensor of shape (B, T, p)
            The denoised :math:`x_0` at the image positions, zeros elsewhere.
        """
        B, T = tokens.shape
        img = (image_index >= 0)[..., None]
        dtype = self.patch_in.weight.dtype
        x = (
            draw(
                torch.randn,
                B,
                T,
                self.patch_dim,
                generator=generator,
                dtype=dtype,
                device=tokens.device,
            )
            * img
        )
        ts = torch.linspace(self.n_timesteps - 1, 0, int(n_steps)).round().long()
        x0 = x
        for i, t in enumerate(ts):
            tb = t.expand(B)
            _, eps = self(tokens, x, image_index, tb)
            if guidance_scale:
                if uncond_tokens is None:
                    raise ValueError("guidance_scale > 0 needs uncond_tokens")
                _, eps_u = self(uncond_tokens, x, image_index, tb)
                eps = eps_u + (1.0 + guidance_scale) * (eps - eps_u)
            ab = self.alpha_bar(t).to(dtype)
            ab_prev = (
                self.alpha_bar(ts[i + 1]).to(dtype)
                if i + 1 < len(ts)
                else torch.ones((), dtype=dtype)
            )
            x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            if clip is not None:
                x0 = x0.clamp(-clip, clip)
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            x = (ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps) * img
        return x0 * img

    @torch.no_grad()
    def next_token_logits(self, tokens, patches, image_index):
        """Logits of the token after the sequence, with clean images (:math:`t = 0`)."""
        logits, _ = self(
            tokens,
            patches,
            image_index,
            torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device),
        )
        return logits[:, -1]
