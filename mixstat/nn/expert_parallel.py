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
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .moe import (
    _ACTIVATIONS,
    MoELayer,
    _check_and_route,
    _grouped_mm_supported,
    expert_ffn_dispatch,
)

__all__ = ["ExpertParallelMoE", "all_to_all_differentiable"]


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
        None means the default (world) group, which must be initialised
        (``torch.distributed.init_process_group``; ``gloo`` on CPU, ``nccl`` on GPU).

    Attributes
    ----------
    expert_offset : int
        Global id of this rank's first expert.
    n_local_experts : int
    w1, b1, w2, b2 : Parameters
        This rank's experts, shapes (E/P, d, h), (E/P, h), (E/P, h, d), (E/P, d).
    aux_loss, router_output, last_dispatch : as in :class:`MoELayer` (this rank's tokens).
    """

    def __init__(self, layer, group=None):
        super().__init__()
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
        P, El = self.world_size, self.n_local_experts
        dest = torch.div(route.expert_index, El, rounding_mode="floor")
        order = torch.argsort(route.expert_index, stable=True)  # sorted by expert => by rank
        tok = route.token_index[order]
        exp = route.expert_index[order]
        wts = route.weight[order]
        send_counts = torch.bincount(dest, minlength=P).to(torch.int64)
        recv_counts = torch.empty_like(send_counts)
        dist.all_to_all_single(recv_counts, send_counts, group=self.group)
        in_splits, out_splits = send_counts.tolist(), recv_counts.tolist()
        x_recv = all_to_all_differentiable(xf[tok], out_splits, in_splits, self.group)
        e_recv = torch.empty(sum(out_splits), dtype=torch.int64, device=x.device)
        dist.all_to_all_single(
            e_recv, exp.contiguous(), output_split_sizes=out_splits,
            input_split_sizes=in_splits, group=self.group,
        )
        e_local = e_recv - self.expert_offset
        n_recv = x_recv.shape[0]
        path = self._local_dispatch(x_recv)
        if n_recv:
            out = expert_ffn_dispatch(
                x_recv, torch.arange(n_recv, device=x.device), e_local,
                x_recv.new_ones(n_recv), self.w1, self.b1, self.w2, self.b2,
                activation=_ACTIVATIONS[self.activation], dispatch=path,
            )
        else:  # keep the (empty) result in the graph so the backward exchange runs
            out = x_recv.new_zeros(0, self.d_model) + 0 * x_recv.sum()
            for p in (self.w1, self.b1, self.w2, self.b2):
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

    def allreduce_replicated_grads(self, average=False):
        """Sum (``average=True``: mean) the router's gradients over the group.

        Call after ``backward`` on every rank; the experts' gradients need no
        reduction (each expert lives on one rank and already received the
        gradient of every rank's loss through the all-to-all).
        """
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
