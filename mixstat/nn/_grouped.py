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


def _forward_impl(x, w, offs, mode):
    if mode != "loop" and grouped_mm_supported(x, w):
        return F.grouped_mm(x, w, offs=offs)
    out = x.new_empty(x.shape[0], w.shape[-1])
    for (lo, hi), we in zip(_bounds(offs), w.unbind(0), strict=True):
        if hi > lo:
            torch.mm(x[lo:hi], we, out=out[lo:hi])
    return out


def _weight_grad_impl(x, g, offs, mode):
    n_groups = offs.shape[0]
    if mode != "loop" and grouped_mm_supported(x, x.new_empty(1, x.shape[1], g.shape[1])):
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
        x: torch.Tensor, w: torch.Tensor, offs: torch.Tensor, mode: str
    ) -> torch.Tensor:
        return _forward_impl(x, w, offs, mode)

    @_grouped_linear_op.register_fake
    def _(x, w, offs, mode):
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
        x, w, offs, mode = inputs
        ctx.save_for_backward(x, w, offs)
        ctx.mode = mode

    def _backward(ctx, grad):
        x, w, offs = ctx.saved_tensors
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = _grouped_linear_op(grad, w.transpose(-2, -1), offs, ctx.mode)
        if ctx.needs_input_grad[1]:
            gw = _grouped_weight_grad_op(x, grad, offs, ctx.mode)
        return gx, gw, None, None

    _grouped_linear_op.register_autograd(_backward, setup_context=_setup)

    def grouped_linear(x, w, offs, mode="auto"):
        r"""Per-expert products :math:`X[o_{e-1}:o_e] W_e` (see the module docstring).

        Parameters
        ----------
        x : Tensor (M, d), rows sorted by group
        w : Tensor (E, d, h)
        offs : int32 Tensor (E,), cumulative group ends (``offs[-1] == M``)
        mode : {'auto', 'loop'}
            'auto': ``grouped_mm`` where it runs, else the loop.
        """
        return _grouped_linear_op(x, w, offs, mode)

else:  # torch < 2.4: plain autograd through the eager kernels

    def grouped_linear(x, w, offs, mode="auto"):
        if mode != "loop" and grouped_mm_supported(x, w):
            return F.grouped_mm(x, w, offs=offs)
        pieces = [x[lo:hi] @ we for (lo, hi), we in zip(_bounds(offs), w.unbind(0), strict=True)]
        return torch.cat(pieces, 0) if pieces else x.new_zeros(0, w.shape[-1])
