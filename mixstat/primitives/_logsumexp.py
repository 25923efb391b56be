"""Stable log-sum-exp, signed log-sum-exp, softmax, top-k gating and
responsibilities, written once against the array API.

Every function takes arrays of any array-API library (NumPy, CuPy, torch with
autograd, array-api-strict) and returns arrays of the same library.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from array_api_compat import array_namespace

__all__ = [
    "logsumexp",
    "signed_logsumexp",
    "log_softmax",
    "softmax",
    "topk_gating",
    "responsibilities",
]


def is_torch_array(a):
    """Whether ``a`` is a torch tensor, without importing torch (and without
    the ``lru_cache`` of ``array_api_compat``, which ``torch.compile`` warns about)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _finite_max(a, axis, xp):
    """max along ``axis`` (keepdims), with non-finite maxima replaced by 0."""
    amax = xp.max(a, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(amax), amax, xp.zeros_like(amax))


def _safe_log(s, xp):
    """log(s) for s >= 0, with log(0) = -inf and no divide-by-zero warning
    (and a finite gradient where s > 0)."""
    pos = s > 0
    out = xp.log(xp.where(pos, s, xp.ones_like(s)))
    return xp.where(pos, out, xp.full_like(out, -math.inf))


def logsumexp(a, axis=-1, keepdims=False):
    r"""Stable :math:`\log \sum_i e^{a_i}` along ``axis``.

    All ``-inf`` gives ``-inf`` (not NaN); a ``+inf`` entry gives ``+inf``.

    Parameters
    ----------
    a : array
    axis : int, default=-1
    keepdims : bool, default=False

    Returns
    -------
    array
    """
    if type(a) is np.ndarray:
        return _logsumexp_numpy(a, axis, keepdims)
    if is_torch_array(a):
        return _logsumexp_torch(a, axis, keepdims)
    xp = array_namespace(a)
    amax = _finite_max(a, axis, xp)
    s = xp.sum(xp.exp(a - amax), axis=axis, keepdims=True)
    out = _safe_log(s, xp) + amax
    if not keepdims:
        out = xp.squeeze(out, axis=axis)
    return out


def _logsumexp_torch(a, axis, keepdims):
    """The same composition with tensor methods: no namespace dispatch (which
    ``torch.compile`` would trace through an ``lru_cache``). Not
    ``torch.logsumexp``: on an all ``-inf`` row its gradient is NaN, this
    composition's is 0 (log-space circuits have such rows)."""
    amax = a.amax(dim=axis, keepdim=True)
    amax = amax.where(amax.isfinite(), amax.new_zeros(()))
    s = (a - amax).exp().sum(dim=axis, keepdim=True)
    pos = s > 0
    out = s.where(pos, s.new_ones(())).log().where(pos, s.new_full((), -math.inf)) + amax
    return out if keepdims else out.squeeze(axis)


def _logsumexp_numpy(a, axis, keepdims):
    """The same computation in plain NumPy: no namespace dispatch, one
    temporary (the hot path of every CPU E-step)."""
    amax = np.max(a, axis=axis, keepdims=True)
    if not np.isfinite(amax).all():
        amax = np.where(np.isfinite(amax), amax, 0.0)
    tmp = np.subtract(a, amax)
    np.exp(tmp, out=tmp)
    s = np.sum(tmp, axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        out = np.log(s)
    out += amax
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return out


def signed_logsumexp(a, signs, axis=-1, keepdims=False):
    r"""Log-magnitude and sign of :math:`\sum_i s_i e^{a_i}` for real signs.

    With ``a = log|w| + b`` and ``signs = sign(w)`` this evaluates
    :math:`\log |\sum_i w_i e^{b_i}|` without overflow, the operation a
    subtractive (signed) mixture needs.

    Parameters
    ----------
    a : array
        Log-magnitudes of the terms (``-inf`` for a zero term).
    signs : array
        Real multipliers broadcastable to ``a`` (usually -1, 0 or +1; any real
        values are allowed and multiply the terms).
    axis : int, default=-1
    keepdims : bool, default=False

    Returns
    -------
    log_abs : array
        :math:`\log |\sum_i s_i e^{a_i}|` (``-inf`` when the sum is 0).
    sign : array
        The sign of the sum (-1, 0 or +1), same dtype as ``a``.
    """
    xp = array_namespace(a, signs)
    amax = _finite_max(a, axis, xp)
    s = xp.sum(signs * xp.exp(a - amax), axis=axis, keepdims=True)
    log_abs = _safe_log(xp.abs(s), xp) + amax
    sign = xp.sign(s)
    if not keepdims:
        log_abs = xp.squeeze(log_abs, axis=axis)
        sign = xp.squeeze(sign, axis=axis)
    return log_abs, sign


def log_softmax(a, axis=-1):
    """Stable log-softmax along ``axis``."""
    return a - logsumexp(a, axis=axis, keepdims=True)


def softmax(a, axis=-1):
    """Stable softmax along ``axis`` (rows sum to one).

    Torch tensors use ``torch.softmax`` (one fused op; same values and
    gradients, except that a row with a ``+inf`` entry is all NaN there).
    """
    if is_torch_array(a):
        return a.softmax(dim=axis)
    xp = array_namespace(a)
    return xp.exp(log_softmax(a, axis=axis))


def topk_gating(logits, k, renormalize=True, *, return_probs=False):
    r"""Top-k softmax gating (Shazeer et al. 2017; Fedus et al. 2022).

    The gate of token :math:`i` is :math:`g_i = \mathrm{softmax}(\ell_i)`; the
    :math:`k` largest entries are kept. With ``renormalize`` the kept gates are
    divided by their sum (Mixtral); without it they are the raw softmax
    probabilities (Switch Transformer, k=1).

    Parameters
    ----------
    logits : array of shape (..., n_experts)
    k : int
        Number of experts kept, ``1 <= k <= n_experts``.
    renormalize : bool, default=True
    return_probs : bool, default=False
        Also return the full softmax :math:`g_i` (computed once here, so that
        a router needs no second softmax).

    Returns
    -------
    gates : array of shape (..., k)
        Gate values, in decreasing order.
    indices : integer array of shape (..., k)
        Chosen experts (ties go to the lower index; for torch tensors with
        ``k > 1`` a tie at the k-th place goes where ``torch.topk`` puts it).
    probs : array of shape (..., n_experts)
        Only with ``return_probs``.

    Notes
    -----
    Torch tensors take a fused path: one ``softmax`` and one ``topk``
    (``max`` for ``k = 1``) instead of the array-API composition and a full
    sort of every row; same values and gradients.
    """
    n_experts = logits.shape[-1]
    if not (1 <= int(k) <= n_experts):
        raise ValueError(f"k must satisfy 1 <= k <= n_experts={n_experts}, got k={k}")
    if is_torch_array(logits):
        probs = logits.softmax(dim=-1)
        if int(k) == 1:
            gates, indices = probs.max(dim=-1, keepdim=True)  # first maximum on ties
        else:
            gates, indices = probs.topk(int(k), dim=-1, sorted=True)
        if renormalize:
            gates = gates / gates.sum(dim=-1, keepdim=True)
        return (gates, indices, probs) if return_probs else (gates, indices)
    xp = array_namespace(logits)
    probs = softmax(logits, axis=-1)
    order = xp.argsort(probs, axis=-1, descending=True, stable=True)
    indices = order[..., :k]
    gates = xp.take_along_axis(probs, indices, axis=-1)
    if renormalize:
        gates = gates / xp.sum(gates, axis=-1, keepdims=True)
    return (gates, indices, probs) if return_probs else (gates, indices)


def responsibilities(log_prob, log_weights=None):
    r"""E-step: posterior component probabilities from per-component log-likelihoods.

    .. math::
        \log \tau_{ik} = \log \pi_{ik} + \log f_k(x_i)
                         - \log \sum_l \pi_{il} f_l(x_i)

    Parameters
    ----------
    log_prob : array of shape (n_samples, n_components)
        :math:`\log f_k(x_i)`.
    log_weights : array of shape (n_components,) or (n_samples, n_components), optional
        Log mixing weights (or log gate values); None means they are already
        included in ``log_prob``.

    Returns
    -------
    log_resp : array of shape (n_samples, n_components)
        Rows sum to one after ``exp``. A row whose likelihood is zero under every
        component gets uniform responsibilities (not NaN).
    log_norm : array of shape (n_samples,)
        :math:`\log \sum_l \pi_{il} f_l(x_i)`, the per-sample log-likelihood.
    """
    weighted = log_prob if log_weights is None else log_prob + log_weights
    log_norm = logsumexp(weighted, axis=1)
    if type(weighted) is np.ndarray:
        ok = np.isfinite(log_norm)
        if ok.all():
            return weighted - log_norm[:, None], log_norm
    xp = array_namespace(log_prob)
    ok = xp.isfinite(log_norm)[:, None]
    # subtract a finite stand-in on dead rows (no -inf - -inf = NaN, no warning)
    safe_norm = xp.where(ok, log_norm[:, None], xp.zeros_like(log_norm[:, None]))
    log_resp = weighted - safe_norm
    n_components = weighted.shape[1]
    uniform = xp.full_like(log_resp, -math.log(n_components))
    log_resp = xp.where(ok, log_resp, uniform)
    return log_resp, log_norm
