r"""Mixture of pretrained denoisers with a learned gate.

Given :math:`K` pretrained (frozen) denoisers :math:`\epsilon_k(x_t, t, c_k)`,
each conditioned on its own condition :math:`c_k`, the mixture predicts

.. math::
    \hat\epsilon(x_t, t, c_{1:K}) = \sum_{k=1}^K g_k\, \epsilon_k(x_t, t, c_k),
    \qquad g = \mathrm{softmax}_k\big(\ell(x_t, t, c_{1:K})\big),

where the gate logits :math:`\ell` depend on the timestep, the conditions and
optionally the position: one weight per denoiser (global), or one per denoiser
and coordinate / pixel (the *influence functions* of Collaborative Diffusion,
normalised over the models at every position). Only the gate is trained, with
the denoisers' own loss
:math:`\mathbb{E}\,\|\hat\epsilon(x_t,t,c_{1:K})-\epsilon\|^2`.

The softmax is :func:`mixstat.primitives.softmax`.

References
----------
Huang, Chan, Jiang & Liu (2023), "Collaborative Diffusion for multi-modal face
generation and editing", CVPR (dynamic diffuser, eq. 4-5: influence functions
:math:`I_{k}(x_t, t, c_k)`, softmax over the models at each pixel).
Ruiz-Ponce, Barquero, Palmero, Escalera & Garcia-Rodriguez (2025), "MixerMDM:
learnable composition of human motion diffusion models", CVPR (a mixer that
predicts global, temporal, spatial or spatio-temporal mixing weights from the
conditions and the timestep).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..primitives import softmax

__all__ = ["DenoiserGate", "DenoiserMixture"]


def _timestep_features(t, n_freq):
    """Sinusoidal features of ``t`` (shape (B,)): (B, 2 * n_freq + 1)."""
    freqs = torch.exp(
        torch.arange(n_freq, dtype=t.dtype, device=t.device) * (math.log(1000.0) / max(n_freq, 1))
    )
    a = t[:, None] * freqs
    return torch.cat([t[:, None], torch.sin(a), torch.cos(a)], dim=1)


class DenoiserGate(nn.Module):
    r"""MLP gate :math:`\ell(x_t, t, c_{1:K})` for :class:`DenoiserMixture`.

    Input features: sinusoidal features of :math:`t`, the flattened
    conditions, and (``use_position=True``) the noisy input :math:`x_t`
    itself, as the influence functions of Collaborative Diffusion see it.

    Parameters
    ----------
    n_denoisers : int
    cond_dims : sequence of int
        Flattened size of each condition (0 for a denoiser without condition).
    x_dim : int or None, default=None
        Flattened size of :math:`x_t`; needed for ``use_position`` and
        ``per_position``.
    use_position : bool, default=False
        Feed :math:`x_t` to the gate.
    per_position : bool, default=False
        Output one logit per denoiser and coordinate (shape ``(B, K, *x.shape[1:])``)
        instead of one per denoiser (shape (B, K)).
    hidden : int, default=64
    n_freq : int, default=8
    """

    def __init__(
        self, n_denoisers, cond_dims, x_dim=None, *, use_position=False, per_position=False,
        hidden=64, n_freq=8, device=None, dtype=None,
    ):
        super().__init__()
        if isinstance(n_denoisers, bool) or int(n_denoisers) != n_denoisers or n_denoisers < 1:
            raise ValueError(f"n_denoisers must be a positive integer, got {n_denoisers!r}")
        cond_dims = [int(c) for c in cond_dims]
        if len(cond_dims) != n_denoisers or any(c < 0 for c in cond_dims):
            raise ValueError(
                f"cond_dims must list {n_denoisers} non-negative sizes, got {cond_dims}"
            )
        if (use_position or per_position) and (x_dim is None or int(x_dim) < 1):
            raise ValueError("use_position / per_position need x_dim (the flattened size of x)")
        self.n_denoisers = int(n_denoisers)
        self.cond_dims = cond_dims
        self.x_dim = None if x_dim is None else int(x_dim)
        self.use_position, self.per_position = bool(use_position), bool(per_position)
        self.n_freq = int(n_freq)
        d_in = 2 * self.n_freq + 1 + sum(cond_dims) + (self.x_dim if use_position else 0)
        d_out = self.n_denoisers * (self.x_dim if per_position else 1)
        fk = {"device": device, "dtype": dtype}
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden, **fk), nn.SiLU(), nn.Linear(hidden, hidden, **fk), nn.SiLU(),
            nn.Linear(hidden, d_out, **fk),
        )
        with torch.no_grad():  # start at the uniform mixture
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()

    def forward(self, x, t, conds):
        B = x.shape[0]
        feats = [_timestep_features(t.to(x.dtype), self.n_freq)]
        for c, dim in zip(conds, self.cond_dims):
            if dim:
                feats.append(c.reshape(B, -1).to(x.dtype))
        if self.use_position:
            feats.append(x.reshape(B, -1))
        out = self.net(torch.cat(feats, dim=1))
        if self.per_position:
            return out.reshape((B, self.n_denoisers) + tuple(x.shape[1:]))
        return out


class DenoiserMixture(nn.Module):
    r"""Learned mixture of pretrained denoisers (Collaborative Diffusion, MixerMDM).

    :math:`\hat\epsilon = \sum_k \mathrm{softmax}_k(\ell)\,\epsilon_k(x_t, t, c_k)`
    (see the module docstring).

    Parameters
    ----------
    denoisers : sequence of nn.Module
        Each called as ``denoiser(x, t, cond)`` and returning a tensor of
        ``x``'s shape (noise, score, or :math:`x_0` prediction: the mixture is
        the same for all three parametrisations).
    gate : nn.Module
        Called as ``gate(x, t, conds)``; returns logits of shape (B, K) or
        ``(B, K, *x.shape[1:])`` (per position), e.g. :class:`DenoiserGate`.
    freeze : bool, default=True
        Set ``requires_grad=False`` on the denoisers' parameters (both papers
        train only the gate).

    Attributes
    ----------
    last_weights : Tensor
        The normalised gate of the last call, shape (B, K) or (B, K, ...).
    """

    def __init__(self, denoisers, gate, *, freeze=True):
        super().__init__()
        denoisers = list(denoisers)
        if len(denoisers) < 1 or not all(isinstance(d, nn.Module) for d in denoisers):
            raise ValueError("denoisers must be a non-empty sequence of nn.Module")
        if not isinstance(gate, nn.Module):
            raise ValueError(f"gate must be an nn.Module, got {type(gate).__name__}")
        self.denoisers = nn.ModuleList(denoisers)
        self.gate = gate
        if freeze:
            for d in self.denoisers:
                d.requires_grad_(False)
        self.last_weights = None

    @property
    def n_denoisers(self):
        return len(self.denoisers)

    def _conds(self, conds):
        K = self.n_denoisers
        if isinstance(conds, (list, tuple)):
            if len(conds) != K:
                raise ValueError(
                    f"conds must hold one condition per denoiser ({K}), got {len(conds)}"
                )
            return list(conds)
        return [conds] * K

    def weights(self, x, t, conds):
        """The normalised gate :math:`g = \\mathrm{softmax}_k(\\ell)`."""
        logits = self.gate(x, t, conds)
        B, K = x.shape[0], self.n_denoisers
        if logits.ndim < 2 or logits.shape[0] != B or logits.shape[1] != K:
            raise ValueError(
                f"the gate must return logits of shape ({B}, {K}) or ({B}, {K}, ...), "
                f"got {tuple(logits.shape)}"
            )
        if logits.ndim > 2 and tuple(logits.shape[2:]) != tuple(x.shape[1:]):
            raise ValueError(
                f"per-position logits must have shape ({B}, {K}, *{tuple(x.shape[1:])}), "
                f"got {tuple(logits.shape)}"
            )
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise ValueError("the gate returned NaN or +inf logits")
        return softmax(logits, axis=1)

    def forward(self, x, t, conds=None):
        """Mixture prediction for ``x`` (B, ...), timesteps ``t`` (B,) or scalar, ``conds``.

        ``conds``: a list with one condition per denoiser, or one object given
        to every denoiser.
        """
        if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
            raise ValueError("x must be a tensor with a non-empty batch dimension")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(
                f"t must be a scalar or of shape ({x.shape[0]},), got {tuple(t.shape)}"
            )
        conds = self._conds(conds)
        g = self.weights(x, t, conds)
        out = None
        for k, (den, c) in enumerate(zip(self.denoisers, conds)):
            pred = den(x, t, c)
            if pred.shape != x.shape:
                raise ValueError(
                    f"denoiser {k} returned shape {tuple(pred.shape)}, expected {tuple(x.shape)}"
                )
            gk = g[:, k]
            gk = gk.reshape(gk.shape + (1,) * (x.ndim - gk.ndim))
            term = gk * pred
            out = term if out is None else out + term
        self.last_weights = g
        return out
