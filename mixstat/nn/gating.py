r"""Routers for mixture-of-experts layers and their auxiliary losses.

Every router maps token representations :math:`x_i \in \mathbb{R}^d` to
router logits :math:`\ell_i = W_r x_i \in \mathbb{R}^E` and returns a flat list
of *assignments* ``(token, expert, weight)``; the MoE layer
(:class:`mixstat.nn.MoELayer`) only ever sees that list, so token-choice,
expert-choice and SparseMixer routing share one dispatch.

The softmax, log-sum-exp and top-k gating are the array-API primitives of
:mod:`mixstat.primitives` applied to torch tensors (autograd flows through
them; torch tensors take their fused one-softmax + ``topk`` path); nothing
here re-implements them.

Host syncs. The dropless routers read nothing on the host: their assignment
lists have the static size :math:`Nk` (or :math:`EC`), counts come from
``index_add``/``searchsorted`` instead of ``bincount``, and ``n_dropped`` /
``n_unserved`` are 0-d tensors where they are data-dependent. With a capacity
the eager router keeps only the served choices (one ``nonzero``: the one
inherent sync); under ``torch.compile`` it keeps all :math:`Nk` pairs and
gives the dropped ones weight 0 (no sync, static shapes). The finiteness
check of the logits is a host read too: routers make it only on CPU tensors
in eager mode (``check_finite=None``), see :class:`TopKRouter`.

References
----------
Shazeer et al. (2017), "Outrageously large neural networks: the sparsely-gated
mixture-of-experts layer", ICLR.
Lepikhin et al. (2021), "GShard", ICLR (capacity, top-2 priority).
Fedus, Zoph & Shazeer (2022), "Switch Transformers", JMLR 23(120) (load
balancing loss, capacity factor).
Riquelme et al. (2021), "Scaling vision with sparse mixture of experts",
NeurIPS (batch-prioritised routing).
Zoph et al. (2022), "ST-MoE: designing stable and transferable sparse expert
models", arXiv:2202.08906 (router z-loss).
Zhou et al. (2022), "Mixture-of-experts with expert choice routing", NeurIPS.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from ..primitives import logsumexp, softmax, topk_gating

__all__ = [
    "RouterOutput",
    "ExpertChoiceRouter",
    "TopKRouter",
    "expert_capacity",
    "expert_choice_routing",
    "load_balancing_loss",
    "router_z_loss",
    "token_choice_routing",
]


@dataclass
class RouterOutput:
    """What a router hands to an MoE layer.

    Attributes
    ----------
    logits : Tensor of shape (n_tokens, n_experts)
        Router logits :math:`\\ell`.
    probs : Tensor of shape (n_tokens, n_experts)
        :math:`\\mathrm{softmax}(\\ell)`.
    token_index, expert_index : LongTensor of shape (n_assignments,)
        The kept (token, expert) pairs.
    weight : Tensor of shape (n_assignments,)
        Combine weight of each pair (differentiable w.r.t. the logits).
    capacity : int or None
        Expert capacity used (None: no capacity limit).
    n_dropped : int or Tensor (0-d)
        Number of (token, expert) choices dropped for lack of capacity (a
        0-d tensor where counting it on the host would sync). Expert choice:
        the tokens no expert took (= ``n_unserved``).
    balance_loss, z_loss : Tensor (0-d)
        Switch load-balancing loss and router z-loss of this batch.
    n_unserved : int or Tensor (0-d)
        Number of tokens that reach no expert (all their choices dropped, or
        taken by no expert under expert choice); their layer output is 0.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    token_index: torch.Tensor
    expert_index: torch.Tensor
    weight: torch.Tensor
    capacity: int | None
    n_dropped: int
    balance_loss: torch.Tensor
    z_loss: torch.Tensor
    n_unserved: int | torch.Tensor = 0


def _check_logits(logits, check_finite=True):
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(
            "router logits must be a 2-D tensor (n_tokens, n_experts), got "
            f"{getattr(logits, 'shape', type(logits))}"
        )
    if logits.shape[0] == 0:
        raise ValueError("router logits have no tokens (n_tokens = 0)")
    if check_finite is None:  # only where it costs no device sync
        check_finite = logits.device.type == "cpu"
    if check_finite and not torch.compiler.is_compiling() and not bool(
        torch.isfinite(logits).all()
    ):
        raise ValueError(
            "router logits contain NaN or inf (check the inputs and the router weights)"
        )


def _check_k(k, n_experts):
    if isinstance(k, bool) or int(k) != k or not (1 <= int(k) <= n_experts):
        raise ValueError(f"k must be an integer with 1 <= k <= n_experts={n_experts}, got k={k}")
    return int(k)


def _check_capacity_factor(capacity_factor, allow_none=True):
    if capacity_factor is None:
        if allow_none:
            return None
        raise ValueError("capacity_factor must be a positive number, got None")
    cf = float(capacity_factor)
    if not math.isfinite(cf) or cf <= 0:
        raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}")
    return cf


def expert_capacity(n_tokens, n_experts, k, capacity_factor, min_capacity=1):
    r"""Expert capacity :math:`C = \max(c_{\min}, \lceil f\, k N / E \rceil)`.

    The Switch Transformer's "tokens per batch / number of experts × capacity
    factor" (Fedus et al. 2022, eq. 3), with the top-k count :math:`kN` of
    GShard (Lepikhin et al. 2021) for ``k > 1``.
    """
    cf = _check_capacity_factor(capacity_factor, allow_none=False)
    return max(int(min_capacity), int(math.ceil(cf * k * n_tokens / n_experts)))


def load_balancing_loss(probs, expert_index, n_experts):
    r"""Switch Transformer load-balancing loss (Fedus et al. 2022, eqs. 4-6).

    .. math:: \mathcal{L}_{\mathrm{bal}} = E \sum_{e=1}^{E} f_e P_e,\qquad
        f_e = \frac{1}{kN}\sum_{i,j} \mathbb{1}\{\mathrm{idx}_{ij} = e\},\qquad
        P_e = \frac{1}{N}\sum_i p_{ie}

    equal to 1 under perfectly uniform routing. :math:`f` (counts of the
    router's choices before any capacity drop) carries no gradient; :math:`P`
    does.

    Parameters
    ----------
    probs : Tensor of shape (n_tokens, n_experts)
    expert_index : LongTensor of shape (n_tokens, k) or (n_assignments,)
    n_experts : int
    """
    idx = expert_index.reshape(-1)
    # float32 at least: bfloat16 counts are exact only up to 256
    cdtype = torch.promote_types(probs.dtype, torch.float32)
    counts = torch.zeros(n_experts, dtype=cdtype, device=probs.device).index_add(
        0, idx, torch.ones(idx.shape, dtype=cdtype, device=probs.device)
    )
    f = (counts / counts.sum().clamp(min=1)).to(probs.dtype)
    p_mean = probs.mean(dim=0)
    return n_experts * torch.sum(f.detach() * p_mean)


def router_z_loss(logits):
    r"""Router z-loss (Zoph et al. 2022, eq. 5):
    :math:`\frac1N \sum_i \big(\log\sum_e e^{\ell_{ie}}\big)^2`.
    """
    return torch.mean(logsumexp(logits, axis=-1) ** 2)


def _rank_within_expert(expert_flat, n_experts):
    """Position of each entry among the entries with the same expert, in order."""
    order = torch.argsort(expert_flat, stable=True)
    sorted_e = expert_flat[order]
    ids = torch.arange(n_experts, device=expert_flat.device, dtype=sorted_e.dtype)
    starts = torch.searchsorted(sorted_e, ids)  # first position of each expert
    rank_sorted = torch.arange(expert_flat.numel(), device=expert_flat.device) - starts[
        expert_flat[order]
    ]
    rank = torch.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def token_choice_routing(
    logits, k, capacity=None, *, renormalize=None, batch_priority=False, check_finite=True
):
    r"""Softmax top-k token-choice routing with an optional expert capacity.

    Token :math:`i` picks the :math:`k` experts with the largest
    :math:`p_{ie} = \mathrm{softmax}(\ell_i)_e` (:func:`mixstat.primitives.topk_gating`).
    With a capacity :math:`C`, each expert accepts at most :math:`C`
    (token, expert) choices; choices are served in priority order: all first
    choices before any second choice (GShard), and inside one choice rank the
    tokens in batch order, or by decreasing top-1 probability with
    ``batch_priority=True`` (Riquelme et al. 2021). Choices beyond capacity are
    *dropped*: the layer outputs zero for them (the residual connection
    carries the token).

    Parameters
    ----------
    logits : Tensor of shape (n_tokens, n_experts)
    k : int
    capacity : int or None
    renormalize : bool or None
        Divide the kept top-k gates by their sum (Mixtral). None: True when
        ``k > 1``, False for ``k = 1`` (Switch: the gate is the raw softmax
        probability, so that the router receives a gradient).
    batch_priority : bool, default=False
    check_finite : bool or None, default=True
        Raise ``ValueError`` on NaN/inf logits (a host read; None: only for
        CPU tensors; never under ``torch.compile``).

    Returns
    -------
    gates : Tensor of shape (n_tokens, k)
    indices : LongTensor of shape (n_tokens, k)
    keep : BoolTensor of shape (n_tokens, k)
        False for dropped choices.
    probs : Tensor of shape (n_tokens, n_experts)
    """
    _check_logits(logits, check_finite)
    n_tokens, n_experts = logits.shape
    k = _check_k(k, n_experts)
    if renormalize is None:
        renormalize = k > 1
    gates, indices, probs = topk_gating(logits, k, renormalize=renormalize, return_probs=True)
    if capacity is None:
        keep = torch.ones_like(indices, dtype=torch.bool)
        return gates, indices, keep, probs
    capacity = int(capacity)
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    if batch_priority:
        token_order = torch.argsort(probs.max(dim=-1).values.detach(), descending=True, stable=True)
    else:
        token_order = torch.arange(n_tokens, device=logits.device)
    # rank-major priority: (k, n_tokens) flattened
    prio_experts = indices[token_order].T.reshape(-1)
    pos = _rank_within_expert(prio_experts, n_experts)
    keep_prio = (pos < capacity).reshape(k, n_tokens).T  # rows follow token_order
    keep = torch.empty_like(keep_prio)
    keep[token_order] = keep_prio
    return gates, indices, keep, probs


def expert_choice_routing(logits, capacity, *, check_finite=True):
    r"""Expert-choice routing (Zhou et al. 2022, eq. 1).

    With :math:`S = \mathrm{softmax}(\ell) \in \mathbb{R}^{N\times E}` (softmax
    over experts), expert :math:`e` takes the :math:`C` tokens with the largest
    :math:`S_{ie}`: :math:`G, I = \mathrm{TopK}(S^\top, C)`; the combine weight
    of token :math:`I_{ec}` is :math:`G_{ec}`. A token may be taken by several
    experts or by none.

    Parameters
    ----------
    logits : Tensor of shape (n_tokens, n_experts)
    capacity : int
        Tokens per expert, ``1 <= capacity <= n_tokens``
        (the paper's :math:`k = N c / E` for capacity factor :math:`c`).
    check_finite : bool or None, default=True
        See :func:`token_choice_routing`.

    Returns
    -------
    gates : Tensor of shape (n_experts, capacity)
    token_index : LongTensor of shape (n_experts, capacity)
    probs : Tensor of shape (n_tokens, n_experts)
    """
    _check_logits(logits, check_finite)
    n_tokens = logits.shape[0]
    capacity = int(capacity)
    if not 1 <= capacity <= n_tokens:
        raise ValueError(
            f"expert-choice capacity must satisfy 1 <= capacity <= n_tokens={n_tokens}, "
            f"got {capacity}"
        )
    probs = softmax(logits, axis=-1)
    gates, token_index = torch.topk(probs.T, capacity, dim=-1, sorted=True)
    return gates, token_index, probs


class TopKRouter(nn.Module):
    r"""Linear softmax top-k token-choice router (Switch for ``k=1``, GShard/Mixtral top-2).

    :math:`\ell = x W_r^\top` (no bias), top-k of :math:`\mathrm{softmax}(\ell)`,
    capacity :math:`C = \lceil f k N / E\rceil` when ``capacity_factor`` is set
    (see :func:`token_choice_routing`).

    Parameters
    ----------
    d_model, n_experts, k : int
    capacity_factor : float or None
        None: no capacity (dropless).
    renormalize : bool or None
        See :func:`token_choice_routing`.
    batch_priority : bool, default=False
    min_capacity : int, default=1
    jitter_eps : float, default=0.0
        Multiplicative jitter of the input, uniform in
        :math:`[1-\epsilon, 1+\epsilon]`, while training (Switch Transformer).
    check_finite : bool or None, default=None
        Raise ``ValueError`` on NaN/inf logits. None: on CPU tensors only (a
        host read there costs no device sync); True: also on accelerators
        (one sync per call); False: never. Never under ``torch.compile``.

    Notes
    -----
    Dropless (``capacity_factor=None``): no host sync, the assignment list is
    every token's k choices in token order. With a capacity, eager mode keeps
    the served choices only (one ``nonzero``, the inherent sync); under
    ``torch.compile`` all :math:`Nk` choices stay in the list and the dropped
    ones get weight 0, so that the graph has static shapes and no sync.
    """

    def __init__(
        self,
        d_model,
        n_experts,
        k=1,
        capacity_factor=None,
        *,
        renormalize=None,
        batch_priority=False,
        min_capacity=1,
        jitter_eps=0.0,
        check_finite=None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if int(n_experts) < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        self.n_experts = int(n_experts)
        self.check_finite = check_finite
        self.k = _check_k(k, self.n_experts)
        self.capacity_factor = _check_capacity_factor(capacity_factor)
        if not 0.0 <= float(jitter_eps) < 1.0:
            raise ValueError(f"jitter_eps must be in [0, 1), got {jitter_eps}")
        self.renormalize = renormalize
        self.batch_priority = bool(batch_priority)
        self.min_capacity = int(min_capacity)
        self.jitter_eps = float(jitter_eps)
        self.weight = nn.Parameter(torch.empty(self.n_experts, int(d_model), device=device, dtype=dtype))
        nn.init.normal_(self.weight, std=int(d_model) ** -0.5)

    def route_logits(self, logits):
        """Route precomputed logits (n_tokens, n_experts)."""
        n_tokens = logits.shape[0]
        capacity = None
        if self.capacity_factor is not None:
            capacity = expert_capacity(
                n_tokens, self.n_experts, self.k, self.capacity_factor, self.min_capacity
            )
        gates, indices, keep, probs = token_choice_routing(
            logits, self.k, capacity, renormalize=self.renormalize,
            batch_priority=self.batch_priority, check_finite=self.check_finite,
        )
        tok = torch.arange(n_tokens, device=logits.device)[:, None].expand_as(indices)
        tok, exp, gate = tok.reshape(-1), indices.reshape(-1), gates.reshape(-1)
        n_dropped = n_unserved = 0
        if capacity is not None:
            n_unserved = (~keep).all(dim=-1).sum()
            if torch.compiler.is_compiling():  # static shapes: dropped pairs weigh 0
                gate = gate * keep.reshape(-1).to(gate.dtype)
                n_dropped = (~keep).sum()
            else:
                kept = keep.reshape(-1).nonzero().squeeze(1)  # the one host sync
                n_dropped = exp.shape[0] - kept.shape[0]
                tok, exp, gate = tok[kept], exp[kept], gate[kept]
        return RouterOutput(
            logits=logits,
            probs=probs,
            token_index=tok,
            expert_index=exp,
            weight=gate,
            capacity=capacity,
            n_dropped=n_dropped,
            balance_loss=load_balancing_loss(probs, indices, self.n_experts),
            z_loss=router_z_loss(logits),
            n_unserved=n_unserved,
        )

    def forward(self, x):
        """Route tokens ``x`` of shape (n_tokens, d_model)."""
        if self.training and self.jitter_eps > 0:
            x = x * torch.empty_like(x).uniform_(1.0 - self.jitter_eps, 1.0 + self.jitter_eps)
        return self.route_logits(x @ self.weight.T)


class ExpertChoiceRouter(nn.Module):
    r"""Linear expert-choice router (Zhou et al. 2022).

    Each expert takes :math:`C = \lceil c N / E\rceil` tokens (capacity factor
    :math:`c`, the average number of experts per token; 2 in the paper), see
    :func:`expert_choice_routing`. No load-balancing loss is needed (every
    expert gets exactly :math:`C` tokens); the reported ``balance_loss`` is
    the Switch loss of the resulting assignment, for monitoring. Tokens that
    no expert takes output 0; their number is reported in ``n_unserved``
    (and ``n_dropped``), a 0-d tensor (no host sync).

    Parameters
    ----------
    d_model, n_experts : int
    capacity_factor : float, default=2.0
    causal : bool, default=False
        Declare that the layer sits in a causal (autoregressive) model: a
        ``UserWarning`` is emitted, because expert choice is *not causal*.
    check_finite : bool or None, default=None
        See :class:`TopKRouter`.

    Warnings
    --------
    Each expert ranks all :math:`N` tokens of the batch, so a token's output
    depends on the other tokens in the batch, future positions included:
    expert choice leaks information from later tokens in a decoder and gives
    batch-size-dependent outputs at inference (Zhou et al. 2022 use it in
    encoders; decoding needs token-choice routing or a fixed batch).
    """

    def __init__(
        self, d_model, n_experts, capacity_factor=2.0, *, causal=False, check_finite=None,
        device=None, dtype=None,
    ):
        super().__init__()
        if int(n_experts) < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}")
        if causal:
            warnings.warn(
                "expert-choice routing is not causal: each expert ranks the whole batch, so "
                "a token's output depends on other (also future) tokens; use token-choice "
                "routing ('topk') in a causal model",
                UserWarning,
                stacklevel=2,
            )
        self.causal = bool(causal)
        self.check_finite = check_finite
        self.n_experts = int(n_experts)
        self.capacity_factor = _check_capacity_factor(capacity_factor, allow_none=False)
        self.weight = nn.Parameter(torch.empty(self.n_experts, int(d_model), device=device, dtype=dtype))
        nn.init.normal_(self.weight, std=int(d_model) ** -0.5)

    def route_logits(self, logits):
        n_tokens = logits.shape[0]
        _check_logits(logits, self.check_finite)
        capacity = min(n_tokens, max(1, int(math.ceil(self.capacity_factor * n_tokens / self.n_experts))))
        gates, token_index, probs = expert_choice_routing(logits, capacity, check_finite=False)
        expert_index = torch.arange(self.n_experts, device=logits.device)[:, None].expand_as(token_index)
        served = torch.zeros(n_tokens, dtype=torch.bool, device=logits.device).index_fill(
            0, token_index.reshape(-1), True
        )
        n_unserved = n_tokens - served.sum()
        return RouterOutput(
            logits=logits,
            probs=probs,
            token_index=token_index.reshape(-1),
            expert_index=expert_index.reshape(-1),
            weight=gates.reshape(-1),
            capacity=capacity,
            n_dropped=n_unserved,
            balance_loss=load_balancing_loss(probs, expert_index, self.n_experts),
            z_loss=router_z_loss(logits),
            n_unserved=n_unserved,
        )

    def forward(self, x):
        return self.route_logits(x @ self.weight.T)
