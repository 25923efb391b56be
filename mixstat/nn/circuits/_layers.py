r"""Fused sum layers of tensorised circuits: one autograd node each.

A CP layer multiplies its children (adds their log-values) and applies a
weight matrix, in log-space: with :math:`P = \sum_{c} L_c` (the children's
log-values, shape (F, B, K)) and the row shift :math:`m_b = \max_k P_{bk}`,

.. math:: \log\Big|\sum_k W_{ok}\, s_{bk}\, e^{P_{bk}}\Big|
          = m_b + \log\Big|\sum_k W_{ok}\, s_{bk}\, e^{P_{bk} - m_b}\Big| ,

one matrix product whose terms are at most :math:`|W_{ok}|`: no overflow and
no floor (an output is ``-inf`` only when its sum is exactly zero; signs
:math:`s` are carried only for real weights). The partition function of a
squared circuit propagates the matrices of unit pairs,
:math:`A \mapsto W A W^\top` (Loconte et al., ICLR 2024), each matrix
shifted by its largest log-entry.

On the circuits trained here (K = 16 units, batches of 256) a training step is
bound by the number of kernels and autograd nodes rather than by arithmetic,
so each layer is one node with a hand-written backward. With :math:`G` the
output gradient, :math:`S` the inner sum and :math:`E = s\odot e^{P-m}`:
:math:`R = G/S` (0 where :math:`S = 0`), :math:`\partial W = R^\top E`,
:math:`\partial P = (R W) \odot E`, and every child receives
:math:`\partial P` (a broadcast view). For the quadratic form
:math:`T = W E W^\top`: :math:`\partial W = R\, W E^\top + R^\top W E`,
:math:`\partial P = (W^\top R W) \odot E`.
"""

from __future__ import annotations

import torch

__all__ = ["pair_sum_layer", "positive_sum_layer", "signed_sum_layer"]


def _product(cl):
    """Sum of the children's log-values over axis 1 (a product of densities)."""
    a = cl.shape[1]
    if a == 1:
        return cl[:, 0]
    if a == 2:
        return cl[:, 0] + cl[:, 1]
    return cl.sum(dim=1)


def _sign_product(cs):
    return None if cs is None else (cs[:, 0] if cs.shape[1] == 1 else cs.prod(dim=1))


def _finite(m):
    """A finite shift: an all ``-inf`` block (an exact zero) gets the lowest float."""
    return m.clamp_min(torch.finfo(m.dtype).min)


def _ratio(g, s):
    """:math:`G / S`, 0 where :math:`S = 0` (an exact zero, ``-inf`` in the
    output, passes no gradient); one kernel fewer than a ``where`` on
    ``S == 0``."""
    return torch.nan_to_num(g / s, nan=0.0, posinf=0.0, neginf=0.0)


def _to_children(gp, shape):
    return gp.unsqueeze(1).expand(shape)


def _sum_forward(ctx, w, cl, cs):
    """Shared forward of the CP layers: (E, S, m), with E, S saved for the backward."""
    p = _product(cl)  # (F, B, K)
    m = _finite(p.amax(dim=-1, keepdim=True))
    e = torch.exp(p - m)
    ps = _sign_product(cs)
    if ps is not None:
        e = e * ps
    s = e @ w.transpose(-1, -2)  # (F, B, K_out)
    ctx.save_for_backward(w, e, s)
    ctx.child_shape = cl.shape
    return s, m


def _sum_backward(ctx, g):
    """Shared backward of the CP layers: gradients of ``w`` and of the children."""
    w, e, s = ctx.saved_tensors
    r = _ratio(g, s)
    gw = r.transpose(-1, -2) @ e if ctx.needs_input_grad[0] else None
    gc = _to_children((r @ w) * e, ctx.child_shape) if ctx.needs_input_grad[1] else None
    return gw, gc


class _PositiveSumLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, cl):
        s, m = _sum_forward(ctx, w, cl, None)
        return torch.log(s) + m  # log 0 = -inf: an exact zero

    @staticmethod
    def backward(ctx, g):
        return _sum_backward(ctx, g)


class _SignedSumLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, cl, cs):
        s, m = _sum_forward(ctx, w, cl, cs)
        sign = torch.sign(s)
        ctx.mark_non_differentiable(sign)
        return torch.log(s.abs()) + m, sign

    @staticmethod
    def backward(ctx, g, _g_sign):
        return (*_sum_backward(ctx, g), None)


class _PairSumLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, cl, cs):
        p = _product(cl)  # (F, B, K, K)
        m = _finite(p.amax(dim=(-2, -1), keepdim=True))
        e = torch.exp(p - m)
        ps = _sign_product(cs)
        if ps is not None:
            e = e * ps
        wb = w[:, None]  # the same weights for every query
        ewt = e @ wb.transpose(-1, -2)
        t = wb @ ewt
        ctx.save_for_backward(w, e, ewt, t)
        ctx.child_shape = cl.shape
        sign = torch.sign(t)
        ctx.mark_non_differentiable(sign)
        return torch.log(t.abs()) + m, sign

    @staticmethod
    def backward(ctx, g, _g_sign):
        w, e, ewt, t = ctx.saved_tensors
        wb = w[:, None]
        r = _ratio(g, t)
        gw = gc = None
        if ctx.needs_input_grad[0]:
            gw = (r @ ewt.transpose(-1, -2) + r.transpose(-1, -2) @ (wb @ e)).sum(dim=1)
        if ctx.needs_input_grad[1]:
            gc = _to_children((wb.transpose(-1, -2) @ r @ wb) * e, ctx.child_shape)
        return gw, gc, None


def positive_sum_layer(w, cl):
    """Log-values (F, B, K_out) of a CP sum layer with weights ``w`` >= 0
    (F, K_out, K) over children ``cl`` (F, arity, B, K)."""
    return _PositiveSumLayer.apply(w, cl)


def signed_sum_layer(w, cl, cs=None):
    """``(log|v|, sign v)`` of a CP sum layer with real weights ``w``; ``cs``:
    the children's signs (None: all positive)."""
    return _SignedSumLayer.apply(w, cl, cs)


def pair_sum_layer(w, cl, cs=None):
    """``(log|W A W^T|, sign)`` (F, B, K_out, K_out) with :math:`A` the
    product of the children's pair matrices ``cl`` (F, arity, B, K, K): the
    pass of marginal and conditional queries (Z has its own node,
    ``_partition.py``, which this layer serves as a reference for in the
    tests)."""
    return _PairSumLayer.apply(w, cl, cs)
