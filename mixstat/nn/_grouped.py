r"""Grouped (per-expert) matrix products as custom torch ops.

:func:`grouped_linear` computes, for rows sorted by expert with cumulative
ends ``offs`` (:math:`o_{-1}=0`),

.. math:: Y[o_{e-1}:o_e] = X[o_{e-1}:o_e]\, W_e ,\qquad e = 0,\dots,E-1,

and its backward :math:`\partial X[o_{e-1}:o_e] = \partial Y[o_{e-1}:o_e] W_e^\top`,
:math:`\partial W_e = X[o_{e-1}:o_e]^\top \partial Y[o_{e-1}:o_e]`.

Each is a ``torch.library.custom_op`` with a shape-only fake kernel, so that
``torch.compile(..., fullgraph=True)`` traces through it in every dtype. The
kernel chooses at run time: ``torch.nn.functional.grouped_mm`` where it runs
(torch >= 2.9, float32 / bfloat16 / float16, 16-byte aligned sizes), else one
matrix product per expert over ``W.unbind(0)`` (views: the backward of a loop
over ``W[e]`` would allocate a full :math:`(E, d, h)` gradient per expert).
The loop reads the group sizes on the host: one device sync, only on the
fallback.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["grouped_linear", "grouped_mm_supported"]

_OK: dict = {}
_FAST_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def grouped_mm_supported(x, w):
    """Whether ``F.grouped_mm`` runs for ``x @ w[e]`` here (probed once per device/dtype)."""
    if not hasattr(F, "grouped_mm") or x.dtype not in _FAST_DTYPES or w.dtype != x.dtype:
        return False
    esize = x.element_size()
    if (w.shape[-2] * esize) % 16 or (w.shape[-1] * esize) % 16:
        return False
    key = (x.device.type, x.device.index, x.dtype)
    if key not in _OK:
        try:
            a = torch.zeros(4, 8, device=x.device, dtype=x.dtype)
            b = torch.zeros(2, 8, 8, device=x.device, dtype=x.dtype)
            F.grouped_mm(a, b, offs=torch.tensor([2, 4], device=x.device, dtype=torch.int32))
            _OK[key] = True
        except (RuntimeError, NotImplementedError, TypeError):
            _OK[key] = False
    return _OK[key]


def _bounds(offs):
    ends = offs.tolist()  # the fallback's one host read
    return zip([0, *ends[:-1]], ends, strict=True)


def _group_ids(offs, n_rows):
    """Group of each row, from the cumulative ends (no host read)."""
    counts = torch.diff(offs, prepend=offs.new_zeros(1)).long()
    ids = torch.arange(offs.shape[0], device=offs.device)
    return torch.repeat_interleave(ids, counts, output_size=n_rows)


def _use_kernel(x, w, mode):
    """'auto' (or 'grouped'): the ``grouped_mm`` kernel where it runs; 'loop': never."""
    return mode != "loop" and grouped_mm_supported(x, w)


def _forward_impl(x, w, b, offs, mode):
    if _use_kernel(x, w, mode):
        out = F.grouped_mm(x, w, offs=offs)
        if b is not None:
            out += b.index_select(0, _group_ids(offs, x.shape[0]))
        return out
    out = x.new_empty(x.shape[0], w.shape[-1])
    biases = b.unbind(0) if b is not None else [None] * w.shape[0]
    for (lo, hi), we, be in zip(_bounds(offs), w.unbind(0), biases, strict=True):
        if hi > lo:
            if be is None:
                torch.mm(x[lo:hi], we, out=out[lo:hi])
            else:
                torch.addmm(be, x[lo:hi], we, out=out[lo:hi])
    return out


def _weight_grad_impl(x, g, offs, mode):
    n_groups = offs.shape[0]
    if _use_kernel(x, x.new_empty(1, x.shape[1], g.shape[1]), mode):
        try:
            return F.grouped_mm(x.t(), g, offs=offs)
        except (RuntimeError, NotImplementedError):  # layout this build rejects
            pass
    out = x.new_zeros(n_groups, x.shape[1], g.shape[1])
    for e, (lo, hi) in enumerate(_bounds(offs)):
        if hi > lo:
            torch.mm(x[lo:hi].t(), g[lo:hi], out=out[e])
    return out


if hasattr(torch, "library") and hasattr(torch.library, "custom_op"):

    @torch.library.custom_op("mixstat::grouped_linear", mutates_args=())
    def _grouped_linear_op(
        x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor], offs: torch.Tensor,
        mode: str,
    ) -> torch.Tensor:
        return _forward_impl(x, w, b, offs, mode)

    @_grouped_linear_op.register_fake
    def _(x, w, b, offs, mode):
        return x.new_empty(x.shape[0], w.shape[-1])

    @torch.library.custom_op("mixstat::grouped_weight_grad", mutates_args=())
    def _grouped_weight_grad_op(
        x: torch.Tensor, g: torch.Tensor, offs: torch.Tensor, mode: str
    ) -> torch.Tensor:
        return _weight_grad_impl(x, g, offs, mode)

    @_grouped_weight_grad_op.register_fake
    def _(x, g, offs, mode):
        return x.new_empty(offs.shape[0], x.shape[1], g.shape[1])

    def _setup(ctx, inputs, output):
        x, w, b, offs, mode = inputs
        ctx.save_for_backward(x, w, offs)
        ctx.mode = mode

    def _backward(ctx, grad):
        x, w, offs = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _grouped_linear_op(grad, w.transpose(-2, -1), None, offs, ctx.mode)
        if ctx.needs_input_grad[1]:
            gw = _grouped_weight_grad_op(x, grad, offs, ctx.mode)
        if ctx.needs_input_grad[2]:  # per-group row sums
            gb = grad.new_zeros(offs.shape[0], grad.shape[1]).index_add(
                0, _group_ids(offs, grad.shape[0]), grad
            )
        return gx, gw, gb, None, None

    _grouped_linear_op.register_autograd(_backward, setup_context=_setup)

    def grouped_linear(x, w, offs, mode="auto", bias=None):
        r"""Per-expert affine maps :math:`X[o_{e-1}:o_e] W_e + b_e` (see the module docstring).

        Parameters
        ----------
        x : Tensor (M, d), rows sorted by group
        w : Tensor (E, d, h)
        offs : int32 Tensor (E,), cumulative group ends (``offs[-1] == M``)
        mode : {'auto', 'grouped', 'loop'}
            'auto' / 'grouped': ``grouped_mm`` where it runs, else the loop.
        bias : Tensor (E, h) or None
            Added inside the op (``addmm`` in the loop): no (M, h) gather of
            the biases in the forward pass and no scatter in the backward.
        """
        return _grouped_linear_op(x, w, bias, offs, mode)

else:  # torch < 2.4: plain autograd through the eager kernels

    def grouped_linear(x, w, offs, mode="auto", bias=None):
        if _use_kernel(x, w, mode):
            out = F.grouped_mm(x, w, offs=offs)
        else:
            pieces = [x[lo:hi] @ we for (lo, hi), we in zip(_bounds(offs), w.unbind(0), strict=True)]
            out = torch.cat(pieces, 0) if pieces else x.new_zeros(0, w.shape[-1])
        if bias is not None:
            out = out + bias.index_select(0, _group_ids(offs, x.shape[0]))
        return out
