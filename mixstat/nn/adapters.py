r"""Parameter-efficient adapters: LoRA, MiLoRA (a prompt-routed mixture of LoRA
experts) and SVDiff spectral shifts with Cut-Mix-Unmix.

**LoRA** (Hu et al. 2022, "LoRA: low-rank adaptation of large language
models", ICLR). A frozen linear map :math:`W_0 x + b` gets a trainable
low-rank update

.. math:: y = W_0 x + b + \frac{\alpha}{r} B A x,\qquad
    A \in \mathbb{R}^{r\times d_{in}},\ B \in \mathbb{R}^{d_{out}\times r},
    \ B_{\text{init}} = 0 .

**MiLoRA** (Zhang, Zhao, Chen, Tian, Zheng & Zhu 2024, "MiLoRA: efficient
mixture of low-rank adaptation for large language models fine-tuning",
Findings of EMNLP, pp. 17071-17084, arXiv:2410.18035). LoRA modules are the
experts of a mixture; a *prompt-aware* router computes the gates once from a
pooled representation :math:`\bar h` of the prompt, before the first new
token, and every later decoding step reuses them:

.. math::
    p = \mathrm{softmax}(W_r \bar h),\qquad
    (g, \mathcal{I}) = \mathrm{TopK}(p, k),\qquad
    y = W_0 x + b + \frac{\alpha}{r} \sum_{e \in \mathcal{I}} g_e B_e A_e x ,

for every token :math:`x` of the sequence (prompt and generated tokens). The
top-k gating is :func:`mixstat.primitives.topk_gating` (renormalised over the
:math:`k` kept experts when :math:`k>1`, the raw probability for
:math:`k=1`, as :func:`mixstat.nn.token_choice_routing`), and the Switch
load-balancing loss is :func:`mixstat.nn.load_balancing_loss` over the
batch's prompts. A *routing group* owns one router: by default every wrapped
linear layer is its own group, with ``n_experts`` LoRA experts (a mixture of
LoRA experts per linear layer); with ``group_by`` the wrapped linears of one
transformer layer share a router and each LoRA module (q, k, v, o, up, down)
is one expert, the paper's arrangement. The group's router reads the input
of the group's first module (the *anchor*, the first one called in a forward
pass). ``routing='token'`` gives the per-token routed MoE-LoRA baseline that
MiLoRA is compared with (a router call per token and per forward pass).

Reconstructed details (the paper has no public code): the pooling of the
prompt (``'last'`` token by default, or ``'mean'``) and softmax top-k gates.

**SVDiff** (Han, Li, Zhang, Milanfar, Metaxas & Yang 2023, "SVDiff: compact
parameter space for diffusion fine-tuning", ICCV, arXiv:2303.11305). A
pretrained weight, reshaped to a matrix :math:`W \in \mathbb{R}^{m \times n}`
(a convolution kernel :math:`(c_{out}, c_{in}, k_h, k_w)` as
:math:`(c_{out}, c_{in} k_h k_w)`), is factorised once,
:math:`W = U \Sigma V^\top`, and only the *spectral shift*
:math:`\delta \in \mathbb{R}^{\min(m,n)}` is trained:

.. math::
    W_\delta = U\, \mathrm{diag}\big(\mathrm{ReLU}(\sigma + \delta)\big)\, V^\top .

**Cut-Mix-Unmix** (same paper, sec. 3.2): two subjects' images are stitched
side by side (:func:`cut_mix`) with a prompt naming both, and the
*Unmix* regulariser (:func:`unmix_loss`) penalises, with a squared error, the
cross-attention of each subject's token to the other subject's region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..primitives import softmax, topk_gating
from .gating import load_balancing_loss

__all__ = [
    "LoRALinear",
    "MiLoRA",
    "MiLoRALinear",
    "PromptAwareRouter",
    "SpectralShift",
    "apply_spectral_shifts",
    "cut_mix",
    "unmix_loss",
]


def _check_positive_int(name, v):
    if isinstance(v, bool) or int(v) != v or int(v) < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _check_linear(base):
    if not isinstance(base, nn.Linear):
        raise ValueError(f"base must be a torch.nn.Linear, got {type(base).__name__}")


# ---------------------------------------------------------------- LoRA
class LoRALinear(nn.Module):
    r"""A frozen ``nn.Linear`` plus a LoRA update (Hu et al. 2022).

    :math:`y = W_0 x + b + \frac{\alpha}{r} B A x`; :math:`A` starts
    Kaiming-uniform, :math:`B` at zero, so the wrapped layer starts equal to
    the base layer.

    Parameters
    ----------
    base : nn.Linear
        Its parameters are frozen (``requires_grad=False``).
    rank : int, default=8
    alpha : float or None, default=None
        Scale numerator; None means ``rank`` (scale 1).

    Attributes
    ----------
    lora_A : Parameter of shape (rank, in_features)
    lora_B : Parameter of shape (out_features, rank)
    scaling : float
        :math:`\alpha / r`.
    merged : bool
    """

    def __init__(self, base, rank=8, alpha=None):
        super().__init__()
        _check_linear(base)
        self.rank = _check_positive_int("rank", rank)
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        fk = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(self.rank, base.in_features, **fk))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.rank, **fk))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = float(self.rank if alpha is None else alpha) / self.rank
        self.merged = False

    def delta_weight(self):
        r""":math:`\frac{\alpha}{r} B A`, shape (out_features, in_features)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x):
        y = self.base(x)
        if self.merged:
            return y
        return y + self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)

    @torch.no_grad()
    def merge(self):
        """Fold the update into the base weight (inference without the adapter cost)."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True
        return self

    @torch.no_grad()
    def unmerge(self):
        """Subtract the folded update again."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False
        return self


# ---------------------------------------------------------------- MiLoRA
@dataclass
class _RouteState:
    """The cached routing of one group (for the current batch of prompts)."""

    gates: torch.Tensor  # (B, n_slots) prompt routing or (B, T, n_slots) token routing
    probs: torch.Tensor
    indices: torch.Tensor


class PromptAwareRouter(nn.Module):
    r"""Router of a MiLoRA routing group.

    ``routing='prompt'``: :math:`\bar h_b` = the hidden state of the last
    prompt token (``pooling='last'``) or the mean over the prompt
    (``'mean'``) of sequence :math:`b`; :math:`p_b = \mathrm{softmax}(W_r \bar h_b)`
    and the top-k gates are scattered into a dense (batch, n_slots) matrix
    (zeros for the experts not chosen). ``routing='token'``: the same on
    every token, (batch, seq, n_slots).

    Parameters
    ----------
    d_in : int
    n_slots : int
        Number of experts of the group.
    k : int, default=1
    routing : {'prompt', 'token'}, default='prompt'
    pooling : {'last', 'mean'}, default='last'

    Attributes
    ----------
    weight : Parameter of shape (n_slots, d_in)
    n_calls : int
        How many times the router ran (to check that MiLoRA routes once per prompt).
    """

    def __init__(
        self,
        d_in,
        n_slots,
        k=1,
        routing="prompt",
        pooling="last",
        *,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.d_in = _check_positive_int("d_in", d_in)
        self.n_slots = _check_positive_int("n_slots", n_slots)
        self.k = _check_positive_int("k", k)
        if self.k > self.n_slots:
            raise ValueError(
                f"k must satisfy 1 <= k <= n_slots={self.n_slots}, got k={k}"
            )
        if routing not in ("prompt", "token"):
            raise ValueError(f"routing must be 'prompt' or 'token', got {routing!r}")
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        self.routing, self.pooling = routing, pooling
        self.weight = nn.Parameter(
            torch.empty(self.n_slots, self.d_in, device=device, dtype=dtype)
        )
        nn.init.normal_(self.weight, std=self.d_in**-0.5)
        self.n_calls = 0

    def pool(self, h, prompt_lengths=None):
        """Pooled prompt representation (batch, d_in) of ``h`` (batch, seq, d_in)."""
        B, T, _ = h.shape
        if prompt_lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=h.device)
        else:
            lengths = (
                torch.as_tensor(prompt_lengths, device=h.device).long().reshape(-1)
            )
            if (
                lengths.shape[0] != B
                or bool((lengths < 1).any())
                or bool((lengths > T).any())
            ):
                raise ValueError(
                    f"prompt_lengths must hold {B} integers in [1, {T}], got "
                    f"{lengths.tolist()}"
                )
        if self.pooling == "last":
            return h[torch.arange(B, device=h.device), lengths - 1]
        mask = (torch.arange(T, device=h.device)[None, :] < lengths[:, None]).to(
            h.dtype
        )
        return (h * mask[..., None]).sum(1) / lengths[:, None].to(h.dtype)

    def forward(self, h, prompt_lengths=None):
        """Route ``h`` (batch, seq, d_in); returns a ``_RouteState``."""
        self.n_calls += 1
        if h.ndim == 2:
            h = h[:, None, :]
        z = self.pool(h, prompt_lengths) if self.routing == "prompt" else h
        logits = z @ self.weight.T
        probs = softmax(logits, axis=-1)
        gates, indices = topk_gating(logits, self.k, renormalize=self.k > 1)
        dense = torch.zeros_like(probs).scatter(-1, indices, gates)
        return _RouteState(gates=dense, probs=probs, indices=indices)

    def extra_repr(self):
        return (
            f"d_in={self.d_in}, n_slots={self.n_slots}, k={self.k}, "
            f"routing={self.routing!r}, pooling={self.pooling!r}"
        )


class _RoutingGroup:
    """One router shared by some MiLoRA layers (a plain object, not a Module)."""

    def __init__(self, name, router, anchor):
        self.name, self.router, self.anchor = name, router, anchor
        self.state = None
        self.prompt_lengths = None

    def gates_for(self, layer, x):
        if self.router.routing == "token" and layer is self.anchor:
            self.state = None
        if self.state is None:
            if layer is not self.anchor:
                raise RuntimeError(
                    f"routing group {self.name!r}: module {layer.name!r} ran "
                    "before the group's "
                    f"anchor {self.anchor.name!r}, whose input feeds the router"
                )
            h = x if x.ndim == 3 else x.reshape(x.shape[0], -1, x.shape[-1])
            self.state = self.router(h, self.prompt_lengths)
        g = self.state.gates[
            ..., layer.slot_offset : layer.slot_offset + layer.n_experts
        ]
        if g.shape[0] != x.shape[0]:
            raise RuntimeError(
                f"routing group {self.name!r} was routed for a batch of "
                f"{g.shape[0]} prompts, "
                f"got a batch of {x.shape[0]} (call reset_routing() for new prompts)"
            )
        return g


class MiLoRALinear(nn.Module):
    r"""A frozen ``nn.Linear`` with a bank of LoRA experts gated by a routing group.

    :math:`y = W_0x + b + \frac{\alpha}{r}\sum_e g_e B_e A_e x`, with gates
    :math:`g` from the group's :class:`PromptAwareRouter` (per sequence for
    prompt routing, per token for token routing). Built by :class:`MiLoRA`.

    Parameters
    ----------
    base : nn.Linear
    n_experts : int, default=1
    rank : int, default=8
    alpha : float or None, default=None
        None means ``rank``.

    Attributes
    ----------
    lora_A : Parameter of shape (n_experts, rank, in_features)
    lora_B : Parameter of shape (n_experts, out_features, rank)
    merged : bool
    """

    def __init__(self, base, n_experts=1, rank=8, alpha=None, name=""):
        super().__init__()
        _check_linear(base)
        self.n_experts = _check_positive_int("n_experts", n_experts)
        self.rank = _check_positive_int("rank", rank)
        self.base = base
        self.name = name
        for p in base.parameters():
            p.requires_grad_(False)
        fk = {"device": base.weight.device, "dtype": base.weight.dtype}
        E, r = self.n_experts, self.rank
        self.lora_A = nn.Parameter(torch.empty(E, r, base.in_features, **fk))
        self.lora_B = nn.Parameter(torch.zeros(E, base.out_features, r, **fk))
        for e in range(E):
            nn.init.kaiming_uniform_(self.lora_A.data[e], a=math.sqrt(5))
        self.scaling = float(r if alpha is None else alpha) / r
        self.slot_offset = 0
        self.group = None
        self.merged = False
        self._merged_delta = None
        self._factor_cache = None

    def adapter_output(self, x, gates):
        r""":math:`\frac{\alpha}{r}\sum_e g_e B_e A_e x` for gates (B, E) or (B, T, E).

        The reference computation (every expert, ``einsum``); the forward pass
        of prompt routing uses the equivalent :meth:`prompt_factors`.
        """
        squeeze = x.ndim == 2
        if squeeze:
            x = x[:, None, :]
        if gates.ndim == 2:
            gates = gates[:, None, :].expand(x.shape[0], x.shape[1], gates.shape[-1])
        h = torch.einsum("btd,erd->bter", x, self.lora_A) * gates[..., None]
        out = self.scaling * torch.einsum("bter,eor->bto", h, self.lora_B)
        return out[:, 0] if squeeze else out

    def prompt_factors(self, gates):
        r"""Per-sequence low-rank factors of the gated update.

        With gates fixed per sequence (prompt routing),
        :math:`\sum_e g_{be} B_e A_e = \tilde B_b \tilde A` with
        :math:`\tilde A = [A_1; \dots; A_E]` (shared) and
        :math:`\tilde B_b = [g_{b1}B_1, \dots, g_{bE}B_E]`, so a decoding
        step costs one matmul and one batched matmul, like a LoRA of rank
        :math:`Er`; they are computed once per routing (cached while no
        gradient is recorded).

        Returns
        -------
        A : Tensor of shape (E * rank, in_features)
        B : Tensor of shape (batch, out_features, E * rank)
        active : bool
            False when every gate of this layer is 0 (the update is skipped).
        """
        E, r = self.n_experts, self.rank
        A = self.lora_A.reshape(E * r, -1)
        Bs = self.lora_B[None] * gates[:, :, None, None].to(
            self.lora_B.dtype
        )  # (B, E, o, r)
        Bs = Bs.permute(0, 2, 1, 3).reshape(gates.shape[0], -1, E * r)
        return A, Bs, bool(gates.ne(0).any())

    def forward(self, x):
        y = self.base(x)
        if self.merged:
            return y
        if self.group is None:
            raise RuntimeError(
                "this MiLoRALinear has no routing group: build it through MiLoRA"
            )
        shape = x.shape
        x3 = x if x.ndim in (2, 3) else x.reshape(shape[0], -1, shape[-1])
        g = self.group.gates_for(self, x3)
        if g.ndim == 3:  # per-token routing
            return y + self.adapter_output(x3, g).reshape(*shape[:-1], -1)
        state = self.group.state
        if (
            self._factor_cache is not None
            and self._factor_cache[0] is state
            and not torch.is_grad_enabled()
        ):
            A, Bs, active = self._factor_cache[1]
        else:
            A, Bs, active = self.prompt_factors(g)
            self._factor_cache = (
                None if torch.is_grad_enabled() else (state, (A, Bs, active))
            )
        if not active:
            return y
        xs = x3[:, None, :] if x3.ndim == 2 else x3
        out = self.scaling * torch.bmm(xs @ A.T, Bs.transpose(1, 2))
        return y + out.reshape(*shape[:-1], -1)

    def delta_weight(self, gates):
        r""":math:`\frac{\alpha}{r}\sum_e g_e B_e A_e` for one sequence's gates (E,)."""
        return self.scaling * torch.einsum(
            "e,eor,erd->od", gates, self.lora_B, self.lora_A
        )

    @torch.no_grad()
    def merge(self, gates=None):
        """Fold the gated experts into the base weight.

        ``gates`` (n_experts,) defaults to the group's cached prompt routing,
        which must be the same for every sequence of the batch.
        """
        if self.merged:
            return self
        if gates is None:
            st = self.group.state if self.group is not None else None
            if st is None or st.gates.ndim != 2:
                raise RuntimeError(
                    "merge() needs prompt routing computed first (or gates=)"
                )
            g = st.gates[:, self.slot_offset : self.slot_offset + self.n_experts]
            if not bool((g == g[:1]).all()):
                raise RuntimeError("merge() needs the same routing for every sequence")
            gates = g[0]
        self._merged_delta = self.delta_weight(gates.to(self.lora_A.dtype))
        self.base.weight += self._merged_delta
        self.merged = True
        return self

    @torch.no_grad()
    def unmerge(self):
        """Subtract the merged update again."""
        if self.merged:
            self.base.weight -= self._merged_delta
            self._merged_delta = None
            self.merged = False
        return self

    def extra_repr(self):
        return (
            f"in={self.base.in_features}, out={self.base.out_features}, "
            f"n_experts={self.n_experts}, rank={self.rank}"
        )


def _match_targets(model, target_modules):
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or not name:
            continue
        if callable(target_modules):
            ok = target_modules(name, mod)
        else:
            ok = any(name == t or name.endswith("." + t) for t in target_modules)
        if ok:
            names.append(name)
    return names


def _set_submodule(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


class MiLoRA(nn.Module):
    r"""Turn chosen ``nn.Linear`` layers of any model into MiLoRA layers.

    Every base parameter of ``model`` is frozen; only the LoRA experts and the
    routers are trainable. See the module docstring for the equations.

    Parameters
    ----------
    model : nn.Module
        Modified in place (its chosen linears are replaced).
    target_modules : sequence of str or callable
        Names (or name suffixes after a dot, e.g. ``'q'``) of the linears to
        wrap, or ``callable(name, module) -> bool``.
    n_experts : int, default=1
        LoRA experts per wrapped linear.
    rank : int, default=8
    alpha : float or None, default=None
    k : int, default=1
        Experts kept per group.
    routing : {'prompt', 'token'}, default='prompt'
        ``'prompt'``: MiLoRA (routing computed once per prompt and reused);
        ``'token'``: per-token routed MoE-LoRA (the baseline).
    pooling : {'last', 'mean'}, default='last'
    group_by : callable or None, default=None
        ``group_by(name) -> key``: wrapped linears with the same key share a
        router whose slots are all their experts (the paper: one group per
        transformer layer, each LoRA module an expert). None: one group per
        linear.
    balance_coef : float, default=0.01
        Weight of the Switch balance loss in :attr:`aux_loss`.

    Attributes
    ----------
    layers : dict of str to MiLoRALinear
    routers : nn.ModuleDict
        One :class:`PromptAwareRouter` per group.
    aux_loss : Tensor or None
        Load-balancing loss of the last routing (sum over groups, times
        ``balance_coef``).
    """

    def __init__(
        self,
        model,
        target_modules,
        n_experts=1,
        rank=8,
        alpha=None,
        k=1,
        routing="prompt",
        pooling="last",
        group_by=None,
        balance_coef=0.01,
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        names = _match_targets(model, target_modules)
        if not names:
            raise ValueError(
                f"no nn.Linear of the model matches target_modules={target_modules!r}"
            )
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.routing = routing
        self.balance_coef = float(balance_coef)
        self.layers = {}
        grouped = {}
        for name in names:
            base = model.get_submodule(name)
            layer = MiLoRALinear(base, n_experts, rank, alpha, name=name)
            _set_submodule(model, name, layer)
            self.layers[name] = layer
            key = name if group_by is None else str(group_by(name))
            grouped.setdefault(key, []).append(layer)
        self.routers = nn.ModuleDict()
        self._groups = []
        for key, members in grouped.items():
            offset = 0
            for layer in members:
                layer.slot_offset = offset
                offset += layer.n_experts
            anchor = members[0]
            w = anchor.base.weight
            router = PromptAwareRouter(
                anchor.base.in_features,
                offset,
                k,
                routing,
                pooling,
                device=w.device,
                dtype=w.dtype,
            )
            self.routers[key.replace(".", "_")] = router
            grp = _RoutingGroup(key, router, anchor)
            for layer in members:
                layer.group = grp
            self._groups.append(grp)
        self.aux_loss = None

    # -- routing state
    def reset_routing(self, prompt_lengths=None):
        """Forget the cached routing; the next forward pass routes again.

        ``prompt_lengths`` (batch,) marks where each sequence's prompt ends
        (for pooling); None means the whole input of the next pass.
        """
        for g in self._groups:
            g.state = None
            g.prompt_lengths = prompt_lengths

    def _collect_aux(self):
        losses = []
        for g in self._groups:
            st = g.state
            if st is None:
                continue
            probs = st.probs.reshape(-1, st.probs.shape[-1])
            losses.append(
                load_balancing_loss(probs, st.indices.reshape(-1), probs.shape[-1])
            )
        self.aux_loss = self.balance_coef * sum(losses) if losses else None

    def forward(self, *args, prompt_lengths=None, **kwargs):
        """Route afresh from this call's inputs, then run the model.

        For training: each sequence's gates come from its prompt
        (``prompt_lengths``; None means the whole sequence).
        """
        self.reset_routing(prompt_lengths)
        out = self.model(*args, **kwargs)
        self._collect_aux()
        return out

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens, prompt_lengths=None):
        """Greedy decoding; the routing is computed once from the prompt.

        ``model(ids)`` must return logits (batch, seq, vocab) (or an object
        with ``.logits``). Every step re-runs the model on the whole sequence
        (no key/value cache is assumed), with the cached gates for
        ``routing='prompt'`` and fresh per-token gates for ``'token'``.
        """
        ids = input_ids
        self.reset_routing(prompt_lengths)
        for _ in range(int(max_new_tokens)):
            out = self.model(ids)
            logits = getattr(out, "logits", out)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
        return ids

    def merge(self):
        """Merge every layer with the cached prompt routing (one routing for the "
        "batch)."""
        for layer in self.layers.values():
            layer.merge()
        return self

    def unmerge(self):
        for layer in self.layers.values():
            layer.unmerge()
        return self

    def router_calls(self):
        """Total number of router calls over all groups."""
        return sum(r.n_calls for r in self.routers.values())


# ---------------------------------------------------------------- SVDiff
class SpectralShift(nn.Module):
    r"""SVDiff spectral-shift parameterisation of a linear or convolution layer.

    :math:`W_\delta = U\,\mathrm{diag}(\mathrm{ReLU}(\sigma+\delta))\,V^\top`
    with :math:`W = U\Sigma V^\top` the thin SVD of the base weight (a
    convolution kernel reshaped to :math:`(c_{out}, c_{in}k_hk_w/\text{groups})`);
    only :math:`\delta` (zeros at start) is trainable, the bias stays frozen.
    Han et al. (2023), ICCV, arXiv:2303.11305.

    Parameters
    ----------
    base : nn.Linear or nn.Conv1d / nn.Conv2d / nn.Conv3d

    Attributes
    ----------
    delta : Parameter of shape (min(m, n),)
    U, S, Vh : buffers of the SVD (computed in float64, stored in the weight's dtype)
    """

    def __init__(self, base):
        super().__init__()
        if not isinstance(base, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            raise ValueError(
                f"base must be nn.Linear or nn.Conv1d/2d/3d, got {type(base).__name__}"
            )
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight.detach()
        self.weight_shape = tuple(w.shape)
        U, S, Vh = torch.linalg.svd(
            w.reshape(w.shape[0], -1).double(), full_matrices=False
        )
        self.register_buffer("U", U.to(w.dtype))
        self.register_buffer("S", S.to(w.dtype))
        self.register_buffer("Vh", Vh.to(w.dtype))
        self.delta = nn.Parameter(torch.zeros_like(self.S))

    def weight(self):
        """The shifted weight, in the base layer's shape."""
        s = F.relu(self.S + self.delta)
        return ((self.U * s) @ self.Vh).reshape(self.weight_shape)

    def forward(self, x):
        w = self.weight()
        if isinstance(self.base, nn.Linear):
            return F.linear(x, w, self.base.bias)
        return self.base._conv_forward(x, w, self.base.bias)

    def extra_repr(self):
        return f"weight_shape={self.weight_shape}, n_params={self.delta.numel()}"


def apply_spectral_shifts(model, module_types=(nn.Linear, nn.Conv2d), include=None):
    """Replace layers of ``model`` by :class:`SpectralShift` and freeze the rest.

    Parameters
    ----------
    model : nn.Module
        Modified in place.
    module_types : tuple of types, default=(nn.Linear, nn.Conv2d)
    include : callable or None
        ``include(name, module) -> bool`` to choose among those layers.

    Returns
    -------
    model : nn.Module
        Its only trainable parameters are the spectral shifts.
    """
    names = [
        n
        for n, m in model.named_modules()
        if n and isinstance(m, module_types) and (include is None or include(n, m))
    ]
    if not names:
        raise ValueError("no layer of the model matches module_types / include")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in names:
        _set_submodule(model, name, SpectralShift(model.get_submodule(name)))
    return model


def cut_mix(x_a, x_b, ratio=0.5, dim=-1):
    r"""Cut-Mix (SVDiff, sec. 3.2): stitch two subjects' images side by side.

    The first :math:`\lfloor \text{ratio}\cdot W\rfloor` columns (along
    ``dim``) come from ``x_a``, the rest from ``x_b``; pair it with a prompt
    naming both subjects ("[V1] and [V2] side by side").

    Parameters
    ----------
    x_a, x_b : Tensor of shape (batch, channels, height, width)
    ratio : float in (0, 1), default=0.5
    dim : int, default=-1
        Spatial axis of the cut (-1: left/right, -2: top/bottom).

    Returns
    -------
    mixed : Tensor, same shape
    mask_a, mask_b : BoolTensor of shape (height, width)
        The region of each subject (complements of each other).
    """
    if x_a.shape != x_b.shape or x_a.ndim != 4:
        raise ValueError(
            f"x_a and x_b must be 4-D tensors of one shape, got {tuple(x_a.shape)}, "
            f"{tuple(x_b.shape)}"
        )
    if not 0.0 < float(ratio) < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    if dim not in (-1, -2):
        raise ValueError(f"dim must be -1 (width) or -2 (height), got {dim}")
    H, W = x_a.shape[-2:]
    n = x_a.shape[dim]
    cut = max(1, min(n - 1, int(math.floor(ratio * n))))
    pos = torch.arange(n, device=x_a.device) < cut
    mask_a = pos[None, :].expand(H, W) if dim == -1 else pos[:, None].expand(H, W)
    mixed = torch.where(mask_a, x_a, x_b)
    return mixed, mask_a, ~mask_a


def unmix_loss(attn, token_a, token_b, mask_a, mask_b):
    r"""Unmix regulariser (SVDiff, sec. 3.2).

    .. math:: \mathcal{L}_{\text{unmix}} = \frac{1}{|M_b|}\sum_{p\in M_b} A_{p,a}^2
        + \frac{1}{|M_a|}\sum_{p\in M_a} A_{p,b}^2

    averaged over batch and heads: the cross-attention of subject token
    :math:`a` inside subject :math:`b`'s region :math:`M_b`, and vice versa,
    is pushed to zero (squared error against 0).

    Parameters
    ----------
    attn : Tensor of shape (..., height * width, n_text_tokens)
        Cross-attention probabilities (pixels attend to text tokens).
    token_a, token_b : int
        Positions of the two subjects' tokens in the prompt.
    mask_a, mask_b : BoolTensor of shape (height, width)
    """
    ma, mb = mask_a.reshape(-1), mask_b.reshape(-1)
    if attn.shape[-2] != ma.numel():
        raise ValueError(
            f"attn has {attn.shape[-2]} query positions but the masks have "
            f"{ma.numel()} pixels"
        )
    a_in_b = attn[..., mb, token_a]
    b_in_a = attn[..., ma, token_b]
    return a_in_b.pow(2).mean() + b_in_a.pow(2).mean()
