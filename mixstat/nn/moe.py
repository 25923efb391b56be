r"""Mixture-of-experts feed-forward layer with sorted grouped-matmul dispatch.

.. math::
    y_i = \sum_{(i, e) \in \mathcal{A}} w_{ie}\, \mathrm{FFN}_e(x_i),\qquad
    \mathrm{FFN}_e(x) = W^{(2)}_e\, \phi(W^{(1)}_e x + b^{(1)}_e) + b^{(2)}_e,

where the router (:mod:`mixstat.nn.gating`, :mod:`mixstat.nn.sparsemixer`)
gives the kept assignments :math:`\mathcal{A}` and their weights
:math:`w_{ie}` (Shazeer et al. 2017; Fedus et al. 2022; Zhou et al. 2022).

Dispatch (the computation of all :math:`\mathrm{FFN}_e(x_i)`,
:math:`(i,e)\in\mathcal{A}`):

``'grouped_mm'``
    sort the assignments by expert (stable argsort; ``bincount`` offsets),
    gather the tokens once and run one grouped matrix multiply per layer
    (:func:`torch.nn.functional.grouped_mm`, torch >= 2.9), then scatter-add
    the weighted outputs back (``index_add``).
``'loop'``
    the same sorted layout, one matmul per contiguous expert split (the
    fallback where ``grouped_mm`` is unavailable: older torch, float64, sizes
    not aligned to 16 bytes).
``'padded'``
    capacity-padded batched path: an :math:`(E, C, d)` buffer (Switch /
    DeepSpeed token-dropping layout) and two ``bmm``.
``'dense'``
    every expert on every token, combined with a dense :math:`(N, E)` weight
    matrix: :math:`E/k` times the FLOPs; the test oracle only.
``'auto'``
    ``'grouped_mm'`` where it runs for this device and dtype, else ``'loop'``
    (decided inside the grouped op under ``torch.compile``).

All but ``'dense'`` sort by expert with ``argsort`` and take the group ends
from ``searchsorted`` (no ``bincount``, no host read); the grouped and loop
paths run through the custom op :func:`mixstat.nn._grouped.grouped_linear`
(biases added inside it), which ``torch.compile(fullgraph=True)`` traces in
every dtype: where the kernel lacks the dtype (float64) or the alignment, it
falls back inside the op to one ``mm`` per expert over ``w.unbind(0)``
(reading the group sizes on the host: one sync, on the fallback only).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._grouped import grouped_linear, grouped_mm_supported
from .gating import ExpertChoiceRouter, RouterOutput, TopKRouter, _check_capacity_factor, _check_k

__all__ = ["MoELayer", "expert_ffn_dispatch"]

_ACTIVATIONS = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "identity": lambda h: h,
}
_DISPATCHES = ("auto", "grouped_mm", "loop", "padded", "dense")


def _grouped_mm_supported(x, w1, w2):
    """Whether ``F.grouped_mm`` runs here for both expert layers."""
    return grouped_mm_supported(x, w1) and grouped_mm_supported(x, w2)


def _sort_assignments(expert_index, n_experts):
    """Stable sort by expert: ``(order, sorted experts, cumulative group ends)``.

    The ends come from ``searchsorted`` on the sorted ids (no ``bincount``,
    whose output size is read on the host).
    """
    order = torch.argsort(expert_index, stable=True)
    exp_sorted = expert_index[order]
    ids = torch.arange(n_experts, device=expert_index.device, dtype=exp_sorted.dtype)
    ends = torch.searchsorted(exp_sorted, ids, right=True)
    return order, exp_sorted, ends


def expert_ffn_dispatch(
    x, token_index, expert_index, weight, w1, b1, w2, b2, activation=F.gelu, dispatch="loop",
    *, capacity=None,
):
    r"""Weighted sum of expert FFN outputs over a list of assignments.

    Parameters
    ----------
    x : Tensor of shape (n_tokens, d)
    token_index, expert_index : LongTensor of shape (M,)
    weight : Tensor of shape (M,)
    w1 : (E, d, h); b1 : (E, h) or None; w2 : (E, h, d_out); b2 : (E, d_out) or None
    activation : callable
    dispatch : {'grouped_mm', 'loop', 'padded', 'dense'}
        'grouped_mm' falls back to the loop inside the op where the kernel
        lacks the dtype or alignment (:func:`mixstat.nn._grouped.grouped_linear`).
    capacity : int or None
        'padded' only: rows per expert of the :math:`(E, C, d)` buffer;
        assignments past it output 0 (their weight must be 0). None: the
        largest group, read on the host (one sync), or :math:`M` under
        ``torch.compile``.

    Returns
    -------
    y : Tensor of shape (n_tokens, d_out)
        :math:`y_i = \sum_{m: t_m = i} w_m \mathrm{FFN}_{e_m}(x_i)`.

    Notes
    -----
    No path reads a tensor on the host except the loop fallback and the
    dropless 'padded' buffer size; all compile with ``fullgraph=True``.
    """
    n_tokens = x.shape[0]
    n_experts = w1.shape[0]
    d_out = w2.shape[2]
    y = x.new_zeros(n_tokens, d_out)
    if dispatch == "dense":
        h = torch.einsum("nd,edh->enh", x, w1)
        if b1 is not None:
            h = h + b1[:, None, :]
        out = torch.einsum("enh,eho->eno", activation(h), w2)
        if b2 is not None:
            out = out + b2[:, None, :]
        combine = x.new_zeros(n_tokens, n_experts).index_put(
            (token_index, expert_index), weight.to(x.dtype), accumulate=True
        )
        return torch.einsum("ne,eno->no", combine, out)
    if dispatch not in ("auto", "grouped_mm", "loop", "padded"):
        raise ValueError(f"dispatch must be one of {_DISPATCHES}, got {dispatch!r}")
    n_assign = token_index.shape[0]
    if n_assign == 0:
        return y
    order, exp_sorted, ends = _sort_assignments(expert_index, n_experts)
    tok_sorted = token_index[order]
    if dispatch == "padded":
        starts = torch.cat([ends.new_zeros(1), ends[:-1]])
        slot = torch.arange(n_assign, device=x.device) - starts[exp_sorted]
        if capacity is not None:
            cap = int(capacity)
        elif torch.compiler.is_compiling():
            cap = n_assign
        else:
            cap = int((ends - starts).max())  # dropless: the one host read of this path
        cap = max(cap, 1)
        trash = n_experts * cap
        flat = torch.where(slot < cap, exp_sorted * cap + slot, torch.full_like(slot, trash))
        buf = x.new_zeros(trash + 1, x.shape[1]).index_put((flat,), x[tok_sorted])
        h = torch.bmm(buf[:trash].view(n_experts, cap, -1), w1)
        if b1 is not None:
            h = h + b1[:, None, :]
        out = torch.bmm(activation(h), w2)
        if b2 is not None:
            out = out + b2[:, None, :]
        out = torch.cat([out.reshape(trash, d_out), out.new_zeros(1, d_out)])[flat]
    else:
        # index_select, not x[idx]: its backward is index_add (a plain
        # scatter-add), where advanced indexing backpropagates through a
        # sorting index_put(accumulate=True)
        xs = x.index_select(0, tok_sorted)
        offs = ends.to(torch.int32)
        mode = {"loop": "loop", "grouped_mm": "grouped", "auto": "auto"}[dispatch]
        h = grouped_linear(xs, w1, offs, mode, bias=b1)
        out = grouped_linear(activation(h), w2, offs, mode, bias=b2)
    w_sorted = weight.index_select(0, order).to(out.dtype)
    return y.index_add(0, tok_sorted, out * w_sorted[:, None])


def _check_and_route(layer, x):
    """Check ``x`` against a MoE layer (``d_model``, ``w1`` dtype, ``router``),
    flatten it to tokens and route them: ``(shape, tokens, RouterOutput)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[-1] != layer.d_model:
        raise ValueError(
            f"x must have last dimension d_model={layer.d_model}, got shape {tuple(x.shape)}"
        )
    if x.dtype != layer.w1.dtype:
        raise ValueError(f"x has dtype {x.dtype} but the layer has dtype {layer.w1.dtype}")
    xf = x.reshape(-1, layer.d_model)
    route = layer.router(xf)
    if not isinstance(route, RouterOutput):
        raise TypeError("the router must return a mixstat.nn.RouterOutput")
    return x.shape, xf, route

class MoELayer(nn.Module):
    r"""Sparse mixture-of-experts feed-forward layer.

    :math:`y_i = \sum_{(i,e)\in\mathcal{A}} w_{ie}\,\mathrm{FFN}_e(x_i)` with
    two-layer experts (see the module docstring for the dispatch paths).

    Parameters
    ----------
    d_model : int
    d_hidden : int
        Hidden width of each expert.
    n_experts : int
    k : int, default=2
        Experts per token (token-choice and SparseMixer routers).
    router : {'topk', 'expert_choice', 'sparsemixer'} or nn.Module, default='topk'
        A module must map (n_tokens, d_model) to a
        :class:`mixstat.nn.RouterOutput`.
    capacity_factor : float or None, default=None
        'topk': None means dropless, else capacity
        :math:`\lceil f k N/E\rceil` and dropped tokens (output 0 for them).
        'expert_choice': tokens per expert :math:`\lceil f N/E\rceil`
        (None means 2, the paper's default). Not used by 'sparsemixer'.
    activation : {'gelu', 'relu', 'silu', 'tanh', 'identity'}, default='gelu'
    dispatch : {'auto', 'grouped_mm', 'loop', 'padded', 'dense'}, default='auto'
    bias : bool, default=True
    balance_coef, z_coef : float
        Weights of the Switch load-balancing loss (0.01) and router z-loss
        (0.001) in :attr:`aux_loss`.
    renormalize, batch_priority : see :class:`mixstat.nn.TopKRouter`

    Attributes
    ----------
    router : nn.Module
    w1, b1, w2, b2 : Parameters of shapes (E, d, h), (E, h), (E, h, d), (E, d)
    aux_loss : Tensor
        ``balance_coef * balance_loss + z_coef * z_loss`` of the last forward
        pass; add it to the training loss.
    router_output : RouterOutput
        Of the last forward pass.
    last_dispatch : str
        The dispatch path the last forward pass ran.
    """

    def __init__(
        self,
        d_model,
        d_hidden,
        n_experts,
        k=2,
        router="topk",
        capacity_factor=None,
        *,
        activation="gelu",
        dispatch="auto",
        bias=True,
        balance_coef=0.01,
        z_coef=0.001,
        renormalize=None,
        batch_priority=False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        for name, v in (("d_model", d_model), ("d_hidden", d_hidden), ("n_experts", n_experts)):
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.d_model, self.d_hidden, self.n_experts = int(d_model), int(d_hidden), int(n_experts)
        if dispatch not in _DISPATCHES:
            raise ValueError(f"dispatch must be one of {_DISPATCHES}, got {dispatch!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.dispatch = dispatch
        self.balance_coef, self.z_coef = float(balance_coef), float(z_coef)
        fk = {"device": device, "dtype": dtype}
        if isinstance(router, nn.Module):
            self.k = k
            self.router = router
        elif router == "topk":
            self.k = _check_k(k, self.n_experts)
            self.router = TopKRouter(
                d_model, n_experts, self.k, capacity_factor,
                renormalize=renormalize, batch_priority=batch_priority, **fk,
            )
        elif router == "expert_choice":
            self.k = None
            cf = 2.0 if capacity_factor is None else _check_capacity_factor(capacity_factor)
            self.router = ExpertChoiceRouter(d_model, n_experts, cf, **fk)
        elif router == "sparsemixer":
            from .sparsemixer import SparseMixerRouter

            self.k = _check_k(k, self.n_experts)
            if capacity_factor is not None:
                raise ValueError("the 'sparsemixer' router is dropless: leave capacity_factor=None")
            self.router = SparseMixerRouter(d_model, n_experts, self.k, **fk)
        else:
            raise ValueError(
                "router must be 'topk', 'expert_choice', 'sparsemixer' or an nn.Module, "
                f"got {router!r}"
            )
        E, d, h = self.n_experts, self.d_model, self.d_hidden
        self.w1 = nn.Parameter(torch.empty(E, d, h, **fk))
        self.w2 = nn.Parameter(torch.empty(E, h, d, **fk))
        self.b1 = nn.Parameter(torch.empty(E, h, **fk)) if bias else None
        self.b2 = nn.Parameter(torch.empty(E, d, **fk)) if bias else None
        self.reset_parameters()
        self.aux_loss = None
        self.router_output = None
        self.last_dispatch = None

    def reset_parameters(self):
        """nn.Linear's initialisation, expert by expert."""
        for w, b, fan_in in ((self.w1, self.b1, self.d_model), (self.w2, self.b2, self.d_hidden)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)
            if b is not None:
                nn.init.uniform_(b, -bound, bound)

    def _resolve_dispatch(self, x, dispatch):
        dispatch = dispatch or self.dispatch
        if dispatch not in _DISPATCHES:
            raise ValueError(f"dispatch must be one of {_DISPATCHES}, got {dispatch!r}")
        if torch.compiler.is_compiling():
            # no probe while tracing: the grouped op decides inside itself
            return dispatch
        supported = _grouped_mm_supported(x, self.w1, self.w2)
        if dispatch == "auto":
            return "grouped_mm" if supported else "loop"
        if dispatch == "grouped_mm" and not supported:
            raise ValueError(
                "dispatch='grouped_mm' is not available here (needs torch >= 2.9, float32/"
                "bfloat16/float16 and d_model, d_hidden multiples of 16 bytes); use 'auto'"
            )
        return dispatch

    def forward(self, x, dispatch=None):
        """Apply the layer to ``x`` of shape (..., d_model); returns the same shape.

        ``dispatch`` overrides the layer's dispatch path for this call.
        """
        shape, xf, route = _check_and_route(self, x)
        path = self._resolve_dispatch(xf, dispatch)
        y = expert_ffn_dispatch(
            xf, route.token_index, route.expert_index, route.weight,
            self.w1, self.b1, self.w2, self.b2,
            activation=_ACTIVATIONS[self.activation], dispatch=path, capacity=route.capacity,
        )
        self.router_output = route
        self.aux_loss = self.balance_coef * route.balance_loss + self.z_coef * route.z_loss
        self.last_dispatch = path
        return y.reshape(shape)

    def expert_load(self):
        """Fraction of the last batch's kept assignments sent to each expert."""
        if self.router_output is None:
            raise RuntimeError("call the layer first")
        c = torch.bincount(self.router_output.expert_index, minlength=self.n_experts)
        return c.to(torch.float64) / max(int(c.sum()), 1)

    def extra_repr(self):
        return (
            f"d_model={self.d_model}, d_hidden={self.d_hidden}, n_experts={self.n_experts}, "
            f"k={self.k}, dispatch={self.dispatch!r}, activation={self.activation!r}"
        )
