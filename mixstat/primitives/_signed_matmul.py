"""Matrix products in signed log-space, against the array API.

A tensorised circuit with real (possibly negative) weights multiplies a weight
matrix by vectors whose entries are kept as ``(log|v|, sign v)``. Doing this
with :func:`mixstat.primitives.signed_logsumexp` materialises a
``(..., m, k, n)`` tensor of terms; shifting each column by its maximum turns
the product into one ordinary matrix product (BLAS) instead, the
"log-einsum-exp" trick of Peharz et al. (2020) extended to signs.
"""

from __future__ import annotations

from array_api_compat import array_namespace

__all__ = ["signed_log_matmul"]


def signed_log_matmul(a, log_b, sign_b=None):
    r"""Log-magnitude and sign of :math:`A\,(s_B \odot e^{L_B})`.

    With :math:`m_j = \max_k L_{B,kj}` (a finite value; 0 for a column that is
    all ``-inf``),

    .. math:: \log\Big|\sum_k A_{ik}\, s_{kj} e^{L_{kj}}\Big|
              = m_j + \log\Big|\sum_k A_{ik}\, s_{kj} e^{L_{kj} - m_j}\Big| ,

    the inner sum is one matrix product whose terms are at most
    :math:`|A_{ik}|` in magnitude: no overflow, and no absolute floor on the
    result (a result is ``-inf`` only when the sum cancels exactly).

    Parameters
    ----------
    a : array of shape (..., m, k)
        Real matrix in linear space (e.g. the weights of a sum layer).
    log_b : array of shape (..., k, n)
        :math:`\log|B|` (``-inf`` for zero entries).
    sign_b : array broadcastable to ``log_b``, optional
        Signs of :math:`B` (-1, 0, +1); None means all positive.

    Returns
    -------
    log_abs : array of shape (..., m, n)
    sign : array of shape (..., m, n)
        Signs (-1, 0, +1); carry no gradient.
    """
    from array_api_compat import is_torch_array

    if is_torch_array(log_b):
        return _signed_log_matmul_torch(a, log_b, sign_b)
    xp = array_namespace(a, log_b)
    amax = xp.max(log_b, axis=-2, keepdims=True)
    amax = xp.where(xp.isfinite(amax), amax, xp.zeros_like(amax))
    scaled = xp.exp(log_b - amax)
    if sign_b is not None:
        scaled = scaled * sign_b
    s = a @ scaled
    mag = xp.abs(s)
    zero = mag == 0
    # clamp before the log so that an exact zero gives a finite gradient (0)
    safe = xp.where(zero, xp.ones_like(mag), mag)
    log_abs = xp.where(zero, xp.full_like(mag, -float("inf")), xp.log(safe) + amax)
    return log_abs, xp.sign(s)


def _signed_log_matmul_torch(a, log_b, sign_b):
    r"""The same as one autograd node (this runs in every circuit layer, and
    the generic graph has a dozen small backward kernels).

    Forward: :math:`m = \max_k L_{kj}` (detached: the result does not depend
    on the shift), :math:`E = s_B e^{L - m}`, :math:`S = A E`,
    out :math:`= \log|S| + m`. Backward, with :math:`G` the output gradient:
    :math:`R = G / S` (0 where :math:`S = 0`), :math:`\partial A = R E^\top`,
    :math:`\partial L = (A^\top R) \odot E`.
    """
    return _SignedLogMatmul.apply(a, log_b, sign_b)


def _make_function():
    import torch

    class SignedLogMatmul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, log_b, sign_b):
            amax = torch.nan_to_num(log_b.amax(dim=-2, keepdim=True), nan=0.0, posinf=0.0, neginf=0.0)
            e = torch.exp(log_b - amax)
            if sign_b is not None:
                e = e * sign_b
            s = a @ e
            mag = s.abs()
            zero = mag == 0
            tiny = torch.finfo(mag.dtype).tiny
            out = torch.log(mag.clamp_min(tiny)).masked_fill_(zero, -float("inf")) + amax
            ctx.save_for_backward(a, e, s)
            return out, torch.sign(s)

        @staticmethod
        def backward(ctx, g, _g_sign):
            a, e, s = ctx.saved_tensors
            r = torch.where(s == 0, torch.zeros_like(s), g / s)
            ga = gl = None
            if ctx.needs_input_grad[0]:
                ga = r @ e.transpose(-1, -2)
                # reduce broadcast batch dimensions of a
                while ga.dim() > a.dim():
                    ga = ga.sum(0)
                for i, (n_a, n_g) in enumerate(zip(a.shape, ga.shape, strict=True)):
                    if n_a == 1 and n_g != 1:
                        ga = ga.sum(i, keepdim=True)
            if ctx.needs_input_grad[1]:
                gl = (a.transpose(-1, -2) @ r) * e
            return ga, gl, None

    return SignedLogMatmul


class _Lazy:
    fn = None


class _SignedLogMatmulProxy:
    @staticmethod
    def apply(a, log_b, sign_b):
        if _Lazy.fn is None:
            _Lazy.fn = _make_function()
        return _Lazy.fn.apply(a, log_b, sign_b)


_SignedLogMatmul = _SignedLogMatmulProxy
