r"""Expert parallelism for :class:`mixstat.nn.MoELayer` over ``torch.distributed``.

The :math:`E` experts are split over the :math:`P` ranks of a process group
(rank :math:`r` owns experts :math:`rE/P,\dots,(r+1)E/P-1`); the router is
replicated. Each rank routes its own tokens, then (DeepSpeed-MoE, Rajbhandari
et al. 2022; GShard, Lepikhin et al. 2021):

1. sorts its assignments :math:`(i, e, w_{ie})` by owner rank
   :math:`\lfloor e P/E \rfloor` and exchanges the counts (``all_to_all_single``);
2. sends the token vectors :math:`x_i` and the expert ids to their owners
   (``all_to_all_single`` with uneven splits);
3. each rank applies its local experts to what it received (the same
   dispatch as the single-process layer);
4. a second ``all_to_all_single`` returns :math:`\mathrm{FFN}_e(x_i)` to the
   token's rank, which forms :math:`y_i=\sum_e w_{ie}\mathrm{FFN}_e(x_i)`.

The exchanges are differentiable (the backward pass of an all-to-all is the
all-to-all with the splits swapped), so expert weights receive the gradient of
the *sum of all ranks' losses*, exactly as the single-process layer applied to
the concatenated batch. The replicated router's gradients are per-rank and
must be summed (or averaged) over ranks like any data-parallel parameter:
:meth:`ExpertParallelMoE.allreduce_replicated_grads`.

Routing (capacity, load-balancing and z-losses) is computed per rank on the
rank's own tokens, as in DeepSpeed-MoE; with a dropless token-choice router the
output equals the single-process layer's exactly.

Capacity-buffer mode (``capacity=`` or ``capacity_factor=``; GShard,
DeepSpeed-MoE, Tutel): every rank sends each expert a fixed buffer of
:math:`C` rows, :math:`(E, C, d)` in all, so both all-to-alls have equal,
known splits: no count exchange, no host read, static shapes; the
exchanges are functional collectives, so ``torch.compile(fullgraph=True)``
captures the layer (tested on gloo; CUDA-graph capture with NCCL untested). A rank's choices beyond :math:`C` for
one expert are dropped (output 0, weight 0), in the order of its own
assignment list; with :math:`C` at least the largest count nothing drops and
the output equals the dropless layer's. ``capacity_factor`` gives
:math:`C=\lceil f\,kN/E\rceil` from the rank's own :math:`N`, so every rank
must then pass the same number of tokens (the usual fixed batch).

Gradient scaling. The all-to-all backward hands each expert the gradient of
the *sum* of the ranks' losses. Data parallelism (DDP) averages the
replicated parameters' gradients instead; ``average_grads=True`` scales the
expert gradients by :math:`1/P` in the backward pass so that every parameter
receives the gradient of the *mean* of the ranks' losses, and
:meth:`ExpertParallelMoE.allreduce_replicated_grads` then averages the
router's. :func:`ddp_ignore_expert_parameters` keeps the experts out of a
``DistributedDataParallel`` wrapper (DDP would otherwise all-reduce them
across ranks that hold different experts).

Checkpoints: ``state_dict()`` of the module is this rank's shard (its experts
and the router); :meth:`ExpertParallelMoE.full_state_dict` gathers the full
:class:`mixstat.nn.MoELayer` state dict (collective) and
:meth:`ExpertParallelMoE.load_full_state_dict` takes this rank's slice of one.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from .gating import _rank_within_expert
from .moe import (
    _ACTIVATIONS,
    MoELayer,
    _check_and_route,
    _grouped_mm_supported,
    expert_ffn_dispatch,
)

__all__ = ["ExpertParallelMoE", "all_to_all_differentiable", "ddp_ignore_expert_parameters"]


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient times ``scale`` backward."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, anchor, out_splits, in_splits, group):
        ctx.out_splits, ctx.in_splits, ctx.group = out_splits, in_splits, group
        out = x.new_empty((sum(out_splits),) + tuple(x.shape[1:]))
        dist.all_to_all_single(
            out, x.contiguous(), output_split_sizes=out_splits, input_split_sizes=in_splits,
            group=group,
        )
        return out

    @staticmethod
    def backward(ctx, grad):
        g = grad.new_empty((sum(ctx.in_splits),) + tuple(grad.shape[1:]))
        dist.all_to_all_single(
            g, grad.contiguous(), output_split_sizes=ctx.in_splits,
            input_split_sizes=ctx.out_splits, group=ctx.group,
        )
        return g, None, None, None, None


def _all_to_all_equal(x, splits, group):
    """Differentiable all-to-all with equal, known splits: the functional
    collective (traceable by ``torch.compile``) where torch has it."""
    if torch.is_grad_enabled() and x.is_floating_point() and not x.requires_grad:
        x = x + x.new_zeros((), requires_grad=True)  # keep the backward exchange matched
    try:
        from torch.distributed import _functional_collectives as fc
    except ImportError:  # pragma: no cover - older torch
        return all_to_all_differentiable(x, splits, splits, group)
    return fc.all_to_all_single_autograd(
        x.contiguous(), list(splits), list(splits), group if group is not None else dist.group.WORLD
    )


def all_to_all_differentiable(x, out_splits, in_splits, group=None):
    """Differentiable ``all_to_all_single`` along dim 0 with uneven splits.

    ``in_splits[r]`` rows of ``x`` go to rank ``r``; ``out_splits[r]`` rows come
    from rank ``r``. Under autograd every rank takes part in the backward
    exchange even when it sends or receives no rows (a zero-size anchor keeps the
    node in the graph), so the collectives stay matched across ranks.
    """
    out_splits = [int(s) for s in out_splits]
    in_splits = [int(s) for s in in_splits]
    if sum(in_splits) != x.shape[0]:
        raise ValueError(f"in_splits sum to {sum(in_splits)} but x has {x.shape[0]} rows")
    anchor = None
    if torch.is_grad_enabled() and x.is_floating_point() and not x.requires_grad:
        anchor = x.new_zeros((), requires_grad=True)
        x = x + anchor
    return _AllToAll.apply(x, anchor, out_splits, in_splits, group)


class ExpertParallelMoE(nn.Module):
    r"""A :class:`mixstat.nn.MoELayer` whose experts are split over the ranks of a group.

    Parameters
    ----------
    layer : MoELayer
        The full layer, identically initialised on every rank (e.g. the same
        seed). This rank keeps only its experts' slices of ``w1, b1, w2, b2``
        (copies) and shares ``layer.router``.
    group : ProcessGroup or None, default=None
        The expert-parallel group. None means the default (world) group, which
        must be initialised (``torch.distributed.init_process_group``;
        ``gloo`` on CPU, ``nccl`` on GPU). With data parallelism across
        several expert-parallel groups, pass the group of ranks that share
        one copy of the experts (e.g. from ``dist.new_group``).
    capacity : int or None, default=None
        Capacity-buffer mode: rows each rank sends each expert (see the module
        docstring).
    capacity_factor : float or None, default=None
        Capacity-buffer mode with :math:`C=\max(1,\lceil f\,kN/E\rceil)`
        (equal token counts on every rank required).
    average_grads : bool, default=False
        Scale the expert gradients by :math:`1/P` (the gradient of the mean of
        the ranks' losses, as DDP gives the replicated parameters).

    Attributes
    ----------
    expert_offset : int
        Global id of this rank's first expert.
    n_local_experts : int
    w1, b1, w2, b2 : Parameters
        This rank's experts, shapes (E/P, d, h), (E/P, h), (E/P, h, d), (E/P, d).
    aux_loss, router_output, last_dispatch : as in :class:`MoELayer` (this rank's tokens).
    """

    def __init__(self, layer, group=None, *, capacity=None, capacity_factor=None,
                 average_grads=False):
        super().__init__()
        if capacity is not None and capacity_factor is not None:
            raise ValueError("give capacity or capacity_factor, not both")
        if capacity is not None and (isinstance(capacity, bool) or int(capacity) < 1):
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if capacity_factor is not None and not float(capacity_factor) > 0:
            raise ValueError(f"capacity_factor must be > 0, got {capacity_factor!r}")
        self.capacity = None if capacity is None else int(capacity)
        self.capacity_factor = None if capacity_factor is None else float(capacity_factor)
        self.average_grads = bool(average_grads)
        if not isinstance(layer, MoELayer):
            raise ValueError(f"layer must be a mixstat.nn.MoELayer, got {type(layer).__name__}")
        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                "torch.distributed is not initialised: call init_process_group first"
            )
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        E = layer.n_experts
        if E % self.world_size:
            raise ValueError(
                f"n_experts={E} must be divisible by the group size {self.world_size}"
            )
        self.n_experts = E
        self.n_local_experts = E // self.world_size
        self.expert_offset = self.rank * self.n_local_experts
        sl = slice(self.expert_offset, self.expert_offset + self.n_local_experts)
        self.d_model = layer.d_model
        self.router = layer.router
        self.activation = layer.activation
        self.dispatch = layer.dispatch
        self.balance_coef, self.z_coef = layer.balance_coef, layer.z_coef
        self.w1 = nn.Parameter(layer.w1.detach()[sl].clone())
        self.w2 = nn.Parameter(layer.w2.detach()[sl].clone())
        self.b1 = nn.Parameter(layer.b1.detach()[sl].clone()) if layer.b1 is not None else None
        self.b2 = nn.Parameter(layer.b2.detach()[sl].clone()) if layer.b2 is not None else None
        self.aux_loss = None
        self.router_output = None
        self.last_dispatch = None

    def forward(self, x):
        """Apply the layer to this rank's tokens ``x`` of shape (..., d_model).

        Every rank of the group must call it (collective), with any number of
        tokens (at least one, for the router).
        """
        shape, xf, route = _check_and_route(self, x)
        if self.capacity is not None or self.capacity_factor is not None:
            y = self._forward_buffer(xf, route)
            self.router_output = route
            self.aux_loss = self.balance_coef * route.balance_loss + self.z_coef * route.z_loss
            self.last_dispatch = "buffer"
            return y.reshape(shape)
        P, El = self.world_size, self.n_local_experts
        dest = torch.div(route.expert_index, El, rounding_mode="floor")
        order = torch.argsort(route.expert_index, stable=True)  # sorted by expert => by rank
        tok = route.token_index[order]
        exp = route.expert_index[order]
        wts = route.weight[order]
        send_counts = torch.zeros(P, dtype=torch.int64, device=dest.device).index_add(
            0, dest, torch.ones_like(dest)
        )
        recv_counts = torch.empty_like(send_counts)
        dist.all_to_all_single(recv_counts, send_counts, group=self.group)
        # the one host read of this mode: both split lists at once
        in_splits, out_splits = torch.stack([send_counts, recv_counts]).tolist()
        x_recv = all_to_all_differentiable(xf[tok], out_splits, in_splits, self.group)
        e_recv = torch.empty(sum(out_splits), dtype=torch.int64, device=x.device)
        dist.all_to_all_single(
            e_recv, exp.contiguous(), output_split_sizes=out_splits,
            input_split_sizes=in_splits, group=self.group,
        )
        e_local = e_recv - self.expert_offset
        n_recv = x_recv.shape[0]
        path = self._local_dispatch(x_recv)
        w1, b1, w2, b2 = self._expert_params()
        if n_recv:
            out = expert_ffn_dispatch(
                x_recv, torch.arange(n_recv, device=x.device), e_local,
                x_recv.new_ones(n_recv), w1, b1, w2, b2,
                activation=_ACTIVATIONS[self.activation], dispatch=path,
            )
        else:  # keep the (empty) result in the graph so the backward exchange runs
            out = x_recv.new_zeros(0, self.d_model) + 0 * x_recv.sum()
            for p in (w1, b1, w2, b2):
                if p is not None:
                    out = out + 0 * p.sum()  # zero (not None) expert gradients
        back = all_to_all_differentiable(out, in_splits, out_splits, self.group)
        y = xf.new_zeros(xf.shape[0], self.d_model).index_add(
            0, tok, back * wts.to(back.dtype)[:, None]
        )
        self.router_output = route
        self.aux_loss = self.balance_coef * route.balance_loss + self.z_coef * route.z_loss
        self.last_dispatch = path
        return y.reshape(shape)

    def _expert_params(self):
        ps = (self.w1, self.b1, self.w2, self.b2)
        if not self.average_grads or self.world_size == 1:
            return ps
        scale = 1.0 / self.world_size
        return tuple(None if p is None else _ScaleGrad.apply(p, scale) for p in ps)

    def buffer_capacity(self, n_tokens):
        """Rows per (rank, expert) buffer in capacity-buffer mode."""
        if self.capacity is not None:
            return self.capacity
        k = getattr(self.router, "k", None) or 1
        return max(1, math.ceil(self.capacity_factor * k * n_tokens / self.n_experts))

    def _forward_buffer(self, xf, route):
        """Fixed (E, C, d) send buffers: equal splits, no count exchange, no host read."""
        P, El, E, d = self.world_size, self.n_local_experts, self.n_experts, self.d_model
        C = self.buffer_capacity(xf.shape[0])
        exp, tok = route.expert_index, route.token_index
        slot = _rank_within_expert(exp, E)  # order of this rank's assignment list
        valid = slot < C
        trash = E * C
        flat = torch.where(valid, exp * C + slot, torch.full_like(slot, trash))
        send = xf.new_zeros(trash + 1, d).index_put((flat,), xf.index_select(0, tok))[:trash]
        splits = [El * C] * P
        recv = _all_to_all_equal(send, splits, self.group)
        # from each source rank: (El, C, d) for my experts -> (El, P*C, d)
        h_in = recv.reshape(P, El, C, d).transpose(0, 1).reshape(El, P * C, d)
        w1, b1, w2, b2 = self._expert_params()
        act = _ACTIVATIONS[self.activation]
        h = torch.bmm(h_in, w1)
        if b1 is not None:
            h = h + b1[:, None, :]
        out = torch.bmm(act(h), w2)
        if b2 is not None:
            out = out + b2[:, None, :]
        back = out.reshape(El, P, C, d).transpose(0, 1).reshape(P * El * C, d)
        ret = _all_to_all_equal(back, splits, self.group)  # (E*C, d)
        ret = torch.cat([ret, ret.new_zeros(1, d)]).index_select(0, flat)
        wts = (route.weight * valid.to(route.weight.dtype)).to(ret.dtype)
        route.n_dropped = (~valid).sum()
        return xf.new_zeros(xf.shape[0], d).index_add(0, tok, ret * wts[:, None])

    def full_state_dict(self):
        """The full :class:`mixstat.nn.MoELayer` state dict (every expert), on every
        rank (collective: ``all_gather`` of the expert shards)."""
        sd = {f"router.{k}": v.detach().clone() for k, v in self.router.state_dict().items()}
        for name in ("w1", "b1", "w2", "b2"):
            p = getattr(self, name)
            if p is None:
                continue
            parts = [torch.empty_like(p) for _ in range(self.world_size)]
            dist.all_gather(parts, p.detach().contiguous(), group=self.group)
            sd[name] = torch.cat(parts, 0)
        return sd

    def load_full_state_dict(self, state_dict):
        """Load this rank's experts (and the router) from a full MoELayer state dict."""
        sl = slice(self.expert_offset, self.expert_offset + self.n_local_experts)
        with torch.no_grad():
            for name in ("w1", "b1", "w2", "b2"):
                p = getattr(self, name)
                if p is None:
                    continue
                full = state_dict[name]
                if full.shape[0] != self.n_experts:
                    raise ValueError(
                        f"{name} has {full.shape[0]} experts, this layer {self.n_experts}"
                    )
                p.copy_(full[sl])
        self.router.load_state_dict(
            {k[len("router."):]: v for k, v in state_dict.items() if k.startswith("router.")}
        )

    def expert_parameters(self):
        """This rank's expert parameters (not replicated: keep them out of DDP)."""
        return [p for p in (self.w1, self.b1, self.w2, self.b2) if p is not None]

    def _local_dispatch(self, x):
        if self.dispatch == "dense":
            return "dense"
        if self.dispatch not in ("auto", "grouped_mm"):
            return self.dispatch
        probe = x if x.shape[0] else x.new_zeros(1, self.d_model)
        return "grouped_mm" if _grouped_mm_supported(probe, self.w1, self.w2) else "loop"

    def replicated_parameters(self):
        """Parameters held identically on every rank (the router's)."""
        return list(self.router.parameters())

    def allreduce_replicated_grads(self, average=None):
        """Sum (``average=True``: mean) the router's gradients over the group.

        Call after ``backward`` on every rank; the experts' gradients need no
        reduction (each expert lives on one rank and already received the
        gradient of every rank's loss through the all-to-all; scaled by
        :math:`1/P` with ``average_grads=True``). ``average=None`` follows
        ``average_grads``, so that router and experts are scaled alike.
        """
        if average is None:
            average = self.average_grads
        for p in self.replicated_parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, group=self.group)
            if average:
                p.grad /= self.world_size

    def extra_repr(self):
        return (
            f"n_experts={self.n_experts}, world_size={self.world_size}, rank={self.rank}, "
            f"local_experts=[{self.expert_offset}, {self.expert_offset + self.n_local_experts})"
        )


def ddp_ignore_expert_parameters(model):
    """Keep the expert parameters of every :class:`ExpertParallelMoE` in ``model``
    out of ``DistributedDataParallel`` (call before wrapping ``model``).

    Each rank holds different experts, so DDP must not all-reduce them; the
    routers (replicated) stay under DDP, which averages their gradients: build
    the layers with ``average_grads=True`` for the experts to match. Returns
    the ignored parameter names.
    """
    names = []
    for mod_name, mod in model.named_modules():
        if isinstance(mod, ExpertParallelMoE):
            for pname in ("w1", "b1", "w2", "b2"):
                if getattr(mod, pname) is not None:
                    names.append(f"{mod_name}.{pname}" if mod_name else pname)
    from torch.nn.parallel import DistributedDataParallel

    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, names)
    return names
