r"""Mixture of Tokens: continuous mixture of experts over groups of tokens.

Antoniak, Jaszczur, Krutul, Pióro, Krajewski, Ludziejewski, Ciebiera, Król,
Odrzygóźdź, Cygan & Jaszczur (2024), "Mixture of Tokens: Continuous MoE
through Cross-Example Aggregation", NeurIPS (arXiv:2310.15961).

Tokens are grouped *across examples*: a group holds the tokens at the same
position :math:`t` of :math:`G` different sequences, so that no information
flows between positions and causal language modelling stays causal. For a
group :math:`x_1,\dots,x_G` and experts :math:`e = 1..E`:

.. math::
    w_{ie} = \mathrm{softmax}_{i \in \text{group}}\big( (x_i W_c)_e / \tau \big),\quad
    m_e = \sum_i w_{ie} x_i,\quad
    o_e = \mathrm{FFN}_e(m_e),\quad
    y_i = \sum_e w_{ie}\, o_e .

Each expert is a two-layer FFN with :math:`d_{ff}/E` hidden units, so the
layer has the parameter count and FLOPs of one dense FFN with :math:`d_{ff}`
hidden units (for :math:`G = 1` it *is* that FFN). Discrete routing (the
paper's transition to sparse inference): each expert takes only the argmax
token of its group with unit weight, the :math:`\tau \to 0` limit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..primitives import softmax

__all__ = ["MixtureOfTokens"]


class MixtureOfTokens(nn.Module):
    r"""Mixture-of-Tokens feed-forward layer (see the module docstring).

    Parameters
    ----------
    d_model : int
    d_ff : int
        Total hidden width; each of the ``n_experts`` experts has
        ``d_ff // n_experts`` hidden units (``d_ff`` must be divisible).
    n_experts : int
    group_size : int, default=32
        :math:`G`, the number of sequences merged per group; the batch size
        must be a multiple of it.
    temperature : float, default=1.0
    learnable_temperature : bool, default=False
        Learn :math:`\log \tau`.
    activation : {'gelu', 'relu'}, default='relu'

    Attributes
    ----------
    discrete : bool
        Use discrete (argmax) routing; set it with :meth:`set_discrete`
        (inference after transition tuning).

    Notes
    -----
    Input shape (batch, seq_len, d_model); groups are formed along the batch
    axis (``sparsity_dim=0`` of the reference code).
    """

    def __init__(
        self,
        d_model,
        d_ff,
        n_experts,
        group_size=32,
        *,
        temperature=1.0,
        learnable_temperature=False,
        activation="relu",
        device=None,
        dtype=None,
    ):
        super().__init__()
        for name, v in (("d_model", d_model), ("d_ff", d_ff), ("n_experts", n_experts), ("group_size", group_size)):
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if d_ff % n_experts:
            raise ValueError(f"d_ff={d_ff} must be divisible by n_experts={n_experts}")
        if not (math.isfinite(float(temperature)) and float(temperature) > 0):
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.d_model, self.n_experts, self.group_size = int(d_model), int(n_experts), int(group_size)
        self.expert_size = int(d_ff) // self.n_experts
        self.activation = activation
        self.discrete = False
        fk = {"device": device, "dtype": dtype}
        E, d, h = self.n_experts, self.d_model, self.expert_size
        self.controller = nn.Parameter(torch.empty(d, E, **fk))
        self.w1 = nn.Parameter(torch.empty(E, d, h, **fk))
        self.b1 = nn.Parameter(torch.empty(E, h, **fk))
        self.w2 = nn.Parameter(torch.empty(E, h, d, **fk))
        self.b2 = nn.Parameter(torch.empty(E, d, **fk))
        log_t = torch.full((), math.log(float(temperature)), **fk)
        if learnable_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.controller, std=self.d_model**-0.5)
        for w, b, fan_in in ((self.w1, self.b1, self.d_model), (self.w2, self.b2, self.expert_size)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def set_discrete(self, discrete=True):
        """Switch to discrete (argmax) routing, or back to soft merging."""
        self.discrete = bool(discrete)
        return self

    def to_moe_layer(self, k=1, capacity_factor=None):
        """Token-choice :class:`mixstat.nn.MoELayer` initialised from this layer.

        The paper's transition tuning: the controller becomes the router
        (:math:`W_r = W_c^\top`) and the experts are copied, so that the sparse
        layer can be fine-tuned for unbatched inference. The two layers do not
        compute the same function (the softmax runs over experts instead of
        over the group).
        """
        from .moe import MoELayer

        p = self.controller
        layer = MoELayer(
            self.d_model, self.expert_size, self.n_experts, k=k, capacity_factor=capacity_factor,
            activation=self.activation, device=p.device, dtype=p.dtype,
        )
        with torch.no_grad():
            layer.router.weight.copy_(self.controller.T / torch.exp(self.log_temperature))
            for name in ("w1", "b1", "w2", "b2"):
                getattr(layer, name).copy_(getattr(self, name))
        return layer

    def merge_weights(self, x):
        r"""Merge weights :math:`w` of shape (n_groups, G, T, E) for ``x`` (B, T, d)."""
        xg = self._group(x)
        logits = xg @ self.controller / torch.exp(self.log_temperature)
        w = softmax(logits, axis=1)
        if self.discrete:
            w = F.one_hot(w.argmax(dim=1), self.group_size).to(w.dtype)  # (n, T, E, G)
            w = w.permute(0, 3, 1, 2)
        return w

    def _group(self, x):
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (batch, seq_len, d_model={self.d_model}), "
                f"got {tuple(getattr(x, 'shape', ()))}"
            )
        B = x.shape[0]
        if B % self.group_size:
            raise ValueError(f"batch size {B} must be a multiple of group_size={self.group_size}")
        return x.reshape(B // self.group_size, self.group_size, x.shape[1], self.d_model)

    def forward(self, x):
        """Apply the layer to ``x`` of shape (batch, seq_len, d_model)."""
        xg = self._group(x)  # (n, G, T, d)
        w = self.merge_weights(x)  # (n, G, T, E)
        merged = torch.einsum("ngte,ngtd->nted", w, xg)
        h = torch.einsum("nted,edh->nteh", merged, self.w1) + self.b1
        act = F.gelu if self.activation == "gelu" else F.relu
        out = torch.einsum("nteh,ehd->nted", act(h), self.w2) + self.b2
        y = torch.einsum("ngte,nted->ngtd", w, out)
        return y.reshape(x.shape)
