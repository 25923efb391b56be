r"""SparseMixer: sparse backpropagation for mixture-of-experts routing.

Liu, Gao & Chen (2023), "Sparse Backpropagation for MoE Training",
arXiv:2310.00811 (v1, top-1); Liu et al. (2024), "GRIN: GRadient-INformed MoE",
arXiv:2409.12136 (v2, top-2).

Setting (top-1). With router logits :math:`\theta`, :math:`\pi=\mathrm{softmax}(\theta)`,
a sampled expert :math:`D \sim \pi` and output :math:`y = \pi_D f_D(x)`, the
gradient of the expected loss is

.. math::
    \nabla_\theta \sum_i \pi_i L(\pi_i f_i)
    = \sum_i \big[\underbrace{L(\pi_i f_i) - L(0)}_{\approx\,\pi_i f_i L'(\pi_i f_i / 2)}
      + \pi_i f_i L'(\pi_i f_i)\big] \nabla_\theta \pi_i .

Plain backpropagation through :math:`y` (the Switch Transformer) estimates
only the second term. SparseMixer v1 approximates the first by the mid-point
rule and estimates both with one forward pass: a non-argmax expert is
evaluated at the mid-point (:math:`y = \tfrac12\pi_D f_D`) with probability
1/2 and at the full point otherwise; the argmax expert always at the full
point; the backward pass multiplies the gradient w.r.t. :math:`\pi_D` by 2
whatever the forward scale. Hence, with :math:`a` the argmax expert,

.. math::
    \mathbb{E}[\hat g] = \sum_i \pi_i f_i\big[L'(\pi_i f_i) + L'(\pi_i f_i/2)\big]
    \nabla\pi_i + \pi_a f_a\big[L'(\pi_a f_a) - L'(\pi_a f_a/2)\big]\nabla\pi_a,

unbiased for a linear loss, and for a quadratic loss biased only by the
published mid-point term (the second sum). Experts that multiplicative jitter
:math:`[1-\epsilon, 1+\epsilon]` could never make the argmax,
:math:`(\theta_{\max}-\theta_i)/\max(|\theta_i|, \theta_{\max}) > 2\epsilon`,
are masked out of the softmax (sparsity).

v2 (GRIN) replaces the mid-point rule by the third-order rule
:math:`L(a)-L(0) \approx a[\tfrac14 L'(a) + \tfrac34 L'(a/3)]`: a non-argmax
expert is evaluated at :math:`\pi_D/3` with probability 3/4, and the backward
pass is :math:`\partial\hat L/\partial\theta = g\,\pi_D(e_D - \tilde\pi)`
(:math:`g` the gradient w.r.t. the gate, :math:`\tilde\pi` the masked
softmax) whatever the scale, so that

.. math::
    \mathbb{E}[\hat g] = \sum_{i\ne a} \pi_i f_i\big[\tfrac14 L'(\pi_i f_i)
    + \tfrac34 L'(\pi_i f_i/3)\big]\nabla\pi_i + \pi_a f_a L'(\pi_a f_a)\nabla\pi_a,

where the non-argmax terms equal :math:`(L(\pi_i f_i) - L(0))\nabla\pi_i`
exactly for losses of degree up to 3. The second expert of top-2 routing is
sampled from the masked softmax with the first expert removed, with its own
sparsity mask and its own estimator.
"""

from __future__ import annotations

import torch
from torch import nn

from ..primitives import softmax
from .gating import RouterOutput, _check_logits, load_balancing_loss, router_z_loss

__all__ = [
    "SparseMixerRouter",
    "SparseMixerV1Function",
    "SparseMixerV2Function",
    "sparsemixer_v1",
    "sparsemixer_v2",
    "sparsity_mask",
]


class SparseMixerV1Function(torch.autograd.Function):
    r"""Forward :math:`s\cdot\pi_D` (scale :math:`s \in \{1/2, 1\}`); backward
    :math:`2\,\partial L/\partial(\text{output})` w.r.t. :math:`\pi_D`,
    independent of :math:`s`.

    The backward pass is the derivative of the forward pass at :math:`s = 2`
    (that is what ``gradcheck`` verifies); at :math:`s \in \{1/2, 1\}` it is
    the SparseMixer estimator, not the derivative.
    """

    @staticmethod
    def forward(ctx, gate, scale):
        return gate * scale

    @staticmethod
    def backward(ctx, grad_output):
        return 2.0 * grad_output, None


class SparseMixerV2Function(torch.autograd.Function):
    r"""Forward :math:`s\cdot\tilde\pi_D` with :math:`\tilde\pi =
    \mathrm{softmax}(\theta \text{ masked})`; backward
    :math:`g\,\tilde\pi_D(e_D - \tilde\pi)` w.r.t. :math:`\theta`, independent
    of :math:`s` (GRIN's estimator). At :math:`s = 1` this is the exact
    derivative (verified by ``gradcheck``).

    Inputs: ``logits`` (n, E), ``mask`` (n, E) bool (True = expert removed),
    ``index`` (n, 1) long, ``scale`` (n, 1).
    """

    @staticmethod
    def forward(ctx, logits, mask, index, scale):
        probs = softmax(logits.masked_fill(mask, float("-inf")), axis=-1)
        ctx.save_for_backward(probs, index)
        return probs.gather(-1, index) * scale

    @staticmethod
    def backward(ctx, grad_output):
        probs, index = ctx.saved_tensors
        g = grad_output * probs.gather(-1, index)  # g * pi_D
        grad_logits = -probs * g
        grad_logits = grad_logits.scatter_add(-1, index, g)
        return grad_logits, None, None, None


def sparsity_mask(logits, jitter_eps, exclude=None):
    r"""Experts jitter could never make the argmax (True = removed).

    :math:`(\theta_{\max} - \theta_i) / \max(|\theta_i|, \theta_{\max}) > 2\epsilon`,
    with :math:`\theta_{\max}` the largest logit among the experts not in
    ``exclude`` (a boolean mask of experts already removed, which stay removed).
    """
    with torch.no_grad():
        cand = logits if exclude is None else logits.masked_fill(exclude, float("-inf"))
        top = cand.max(dim=-1, keepdim=True).values
        factor = torch.maximum(logits.abs(), top)
        mask = (top - logits) / factor > 2.0 * jitter_eps
        if exclude is not None:
            mask = mask | exclude
    return mask


def _gumbel_argmax(masked_logits, generator):
    e = torch.empty_like(masked_logits).exponential_(generator=generator)
    return (masked_logits - torch.log(e)).argmax(dim=-1, keepdim=True)


def _coin(shape, p_true, like, generator):
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype) < p_true


def sparsemixer_v1(
    logits, *, jitter_eps=0.1, training=True, sample=None, first_order=None, generator=None,
    check_finite=True,
):
    r"""SparseMixer v1 top-1 routing (see the module docstring).

    Parameters
    ----------
    logits : Tensor of shape (n_tokens, n_experts)
    jitter_eps : float, default=0.1
    training : bool, default=True
        False: deterministic argmax expert with gate :math:`\tilde\pi_{\arg\max}`.
    sample : LongTensor of shape (n_tokens, 1), optional
        The sampled experts (default: Gumbel-max draws from :math:`\tilde\pi`).
        Given explicitly to enumerate the estimator exactly in tests.
    first_order : BoolTensor of shape (n_tokens, 1), optional
        The coin (True: full point; default: a fair coin). Forced True for the
        argmax expert.
    generator : torch.Generator, optional
    check_finite : bool or None, default=True
        See :func:`mixstat.nn.token_choice_routing`.

    Returns
    -------
    gate : Tensor of shape (n_tokens, 1)
        :math:`s\,\tilde\pi_D`, with the SparseMixer backward.
    index : LongTensor of shape (n_tokens, 1)
    probs : Tensor of shape (n_tokens, n_experts)
        The masked softmax :math:`\tilde\pi`.
    """
    _check_logits(logits, check_finite)
    mask = sparsity_mask(logits, jitter_eps)
    probs = softmax(logits.masked_fill(mask, float("-inf")), axis=-1)
    top = logits.argmax(dim=-1, keepdim=True)
    if not training:
        return probs.gather(-1, top), top, probs
    if sample is None:
        sample = _gumbel_argmax(logits.detach().masked_fill(mask, float("-inf")), generator)
    gate = probs.gather(-1, sample)
    if first_order is None:
        first_order = _coin(gate.shape, 0.5, gate, generator)
    full = first_order | (sample == top)
    scale = torch.where(full, torch.ones_like(gate), torch.full_like(gate, 0.5))
    return SparseMixerV1Function.apply(gate, scale), sample, probs


def _v2_expert(logits, mask, training, sample, full_point, generator):
    probs = softmax(logits.detach().masked_fill(mask, float("-inf")), axis=-1)
    top = probs.argmax(dim=-1, keepdim=True)
    if not training:
        sample = top
    elif sample is None:
        sample = _gumbel_argmax(logits.detach().masked_fill(mask, float("-inf")), generator)
    if full_point is None:
        full_point = _coin(sample.shape, 0.25, probs, generator)
    full = full_point | (sample == top)
    one = torch.ones(full.shape, dtype=logits.dtype, device=logits.device)
    scale = torch.where(full, one, one / 3.0)
    gate = SparseMixerV2Function.apply(logits, mask, sample, scale)
    return gate, sample, probs


def sparsemixer_v2(
    logits, k=2, *, jitter_eps=0.1, training=True, samples=None, full_points=None, generator=None,
    check_finite=True,
):
    r"""SparseMixer v2 (GRIN) top-1 or top-2 routing (see the module docstring).

    Parameters
    ----------
    logits : Tensor of shape (n_tokens, n_experts)
    k : {1, 2}
    jitter_eps : float, default=0.1
    training : bool, default=True
    samples : list of LongTensor (n_tokens, 1), optional
        The sampled expert of each of the k rounds (for exact enumeration).
    full_points : list of BoolTensor (n_tokens, 1), optional
        The coins (True: full point, probability 1/4; else the 1/3 point).
    generator : torch.Generator, optional
    check_finite : bool or None, default=True
        See :func:`mixstat.nn.token_choice_routing`.

    Returns
    -------
    gates : Tensor of shape (n_tokens, k)
    indices : LongTensor of shape (n_tokens, k)
    probs : Tensor of shape (n_tokens, n_experts)
        The unmasked softmax of the logits (for the balance loss).
    """
    _check_logits(logits, check_finite)
    if k not in (1, 2):
        raise ValueError(f"SparseMixer v2 supports k in (1, 2), got k={k}")
    if k == 2 and logits.shape[1] < 2:
        raise ValueError("top-2 routing needs n_experts >= 2")
    samples = samples or [None] * k
    full_points = full_points or [None] * k
    mask = sparsity_mask(logits, jitter_eps)
    gate1, idx1, _ = _v2_expert(logits, mask, training, samples[0], full_points[0], generator)
    gates, idx = [gate1], [idx1]
    if k == 2:
        first = torch.zeros_like(mask).scatter(-1, idx1, True)
        mask2 = sparsity_mask(logits, jitter_eps, exclude=first)
        gate2, idx2, _ = _v2_expert(logits, mask2, training, samples[1], full_points[1], generator)
        gates.append(gate2)
        idx.append(idx2)
    return torch.cat(gates, dim=-1), torch.cat(idx, dim=-1), softmax(logits, axis=-1)


class SparseMixerRouter(nn.Module):
    r"""Linear router trained with SparseMixer (v1 for ``k=1``, v2/GRIN for ``k=2``).

    Parameters
    ----------
    d_model, n_experts : int
    k : {1, 2}, default=1
    version : {'v1', 'v2'} or None
        None: 'v1' for k=1, 'v2' for k=2 (v1 is top-1 only).
    jitter_eps : float, default=0.1
    check_finite : bool or None, default=None
        See :class:`mixstat.nn.TopKRouter`.

    Notes
    -----
    No host sync in the forward or backward pass (dropless, static shapes).
    The reference v1 module also multiplies the gate by a learnable
    per-channel scale :math:`\omega` (init 1); here that scale is left to the
    surrounding network. No capacity limit: SparseMixer routing is dropless.
    """

    def __init__(
        self, d_model, n_experts, k=1, *, version=None, jitter_eps=0.1, check_finite=None,
        device=None, dtype=None,
    ):
        super().__init__()
        self.check_finite = check_finite
        if int(n_experts) < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        if k not in (1, 2) or k > n_experts:
            raise ValueError(f"SparseMixer routes to k in (1, 2) <= n_experts experts, got k={k}")
        version = version or ("v1" if k == 1 else "v2")
        if version not in ("v1", "v2") or (version == "v1" and k != 1):
            raise ValueError(f"version must be 'v1' (k=1) or 'v2', got {version!r} with k={k}")
        if not 0.0 <= float(jitter_eps) < 1.0:
            raise ValueError(f"jitter_eps must be in [0, 1), got {jitter_eps}")
        self.n_experts, self.k, self.version, self.jitter_eps = int(n_experts), int(k), version, float(jitter_eps)
        self.weight = nn.Parameter(torch.empty(self.n_experts, int(d_model), device=device, dtype=dtype))
        nn.init.normal_(self.weight, std=int(d_model) ** -0.5)

    def route_logits(self, logits):
        if self.version == "v1":
            gates, indices, _ = sparsemixer_v1(
                logits, jitter_eps=self.jitter_eps, training=self.training,
                check_finite=self.check_finite,
            )
            probs = softmax(logits, axis=-1)
        else:
            gates, indices, probs = sparsemixer_v2(
                logits, self.k, jitter_eps=self.jitter_eps, training=self.training,
                check_finite=self.check_finite,
            )
        n_tokens = logits.shape[0]
        tok = torch.arange(n_tokens, device=logits.device)[:, None].expand_as(indices)
        return RouterOutput(
            logits=logits,
            probs=probs,
            token_index=tok.reshape(-1),
            expert_index=indices.reshape(-1),
            weight=gates.reshape(-1),
            capacity=None,
            n_dropped=0,
            balance_loss=load_balancing_loss(probs, indices, self.n_experts),
            z_loss=router_z_loss(logits),
        )

    def forward(self, x):
        return self.route_logits(x @ self.weight.T)
