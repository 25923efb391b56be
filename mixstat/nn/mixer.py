r"""The MixER layer: a sparse top-1 mixture of context-conditioned vector fields.

Nzoyem, Barton & Deakin (2025), "Towards Foundational Models for Dynamical
System Reconstruction: Hierarchical Meta-Learning via Mixture of Experts",
arXiv:2502.05335.

Environment :math:`e` has a learnable context :math:`\xi_e \in \mathbb{R}^{K c}`
(zero-initialised). The gate sees the context only,

.. math::
    G(\xi) = \mathrm{softmax}(W^\top [\xi; 1]), \qquad
    k_e = \arg\max_k G(\xi_e)_k ,

and environment :math:`e` follows :math:`\dot x = f_{k_e}(x; \xi_e)`, the
routed expert's vector field **unscaled** by the gate value (the reference's
top-1 rule). With ``gate='kmeans_lstsq'`` :math:`W` is not trained by
gradient: it is replaced at intervals by
:func:`mixstat.primitives._kmeans.kmeans_lstsq_gate` on the contexts with
the per-environment losses of every expert. ``gate='softmax_gd'`` is the
gradient-trained baseline: the output is scaled by the gate value,
:math:`G(\xi_e)_{k_e} f_{k_e}`, as in Switch Transformers (Fedus et al.
2022), so that :math:`W` receives gradient. ``gate='fixed'`` is the
reference code's ``gradient_descent`` mode, where the unscaled top-1 output
gives the gate zero gradient, i.e. a frozen random gate.

Experts (K of them, stacked weight tensors; every expert of every trajectory
is evaluated in one batched matmul per layer, ``torch.baddbmm``):

- ``'coda'`` (Kirchmeyer et al. 2022): :math:`\theta_k(\xi) = \theta_k +
  H_k \xi` with a bias-free linear hypernetwork :math:`H_k` per layer;
- ``'geps'`` (Koupaï et al. 2024): each weight :math:`W + A\,
  \mathrm{diag}(\xi) B` and each bias :math:`b + C \xi`;
- ``'ncf'`` (Nzoyem et al. 2024, without the Taylor terms): an MLP on the
  concatenation of a state embedding and a context embedding.

Activations are Swish (SiLU). ``depth`` counts linear layers of the main
network. Integration is a fixed-step RK4 (:func:`rk4_odeint`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..primitives import softmax
from ..primitives._kmeans import kmeans_lstsq_gate, lstsq_gate_logits

__all__ = ["rk4_odeint", "BatchedContextExperts", "MixERLayer"]


def rk4_odeint(func, x0, t, substeps=1):
    """Fixed-step classical Runge-Kutta (RK4) integration.

    Parameters
    ----------
    func : callable
        ``func(x) -> dx/dt`` (autonomous), ``x`` of the shape of ``x0``.
    x0 : Tensor of shape (..., d)
    t : Tensor of shape (n_t,)
        Output times; ``x0`` is the state at ``t[0]``.
    substeps : int
        RK4 steps between consecutive output times.

    Returns
    -------
    Tensor of shape (..., n_t, d)
    """
    out = [x0]
    x = x0
    for i in range(t.shape[0] - 1):
        h = (t[i + 1] - t[i]) / substeps
        for _ in range(substeps):
            k1 = func(x)
            k2 = func(x + 0.5 * h * k1)
            k3 = func(x + 0.5 * h * k2)
            k4 = func(x + h * k3)
            x = x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(x)
    return torch.stack(out, dim=-2)


def _uniform_(tensor, fan_in):
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    with torch.no_grad():
        tensor.uniform_(-bound, bound)
    return tensor


class BatchedContextExperts(nn.Module):
    """K context-conditioned MLP vector fields with stacked weights.

    Parameters
    ----------
    n_experts : int
    state_dim : int
    context_dim : int
        Size of the context each expert sees.
    hidden : int, default=64
    depth : int, default=3
        Linear layers of the (main) network.
    style : {'coda', 'geps', 'ncf'}, default='coda'
    same_init : bool, default=True
        All experts start from identical weights (the reference's
        ``same_expert_init``).
    """

    def __init__(self, n_experts, state_dim, context_dim, hidden=64, depth=3, style="coda",
                 same_init=True):
        super().__init__()
        if style not in ("coda", "geps", "ncf"):
            raise ValueError(f"style must be 'coda', 'geps' or 'ncf', got {style!r}")
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.n_experts, self.state_dim, self.context_dim = n_experts, state_dim, context_dim
        self.style = style
        K, c = n_experts, context_dim
        if style == "ncf":
            h = hidden
            sizes = [2 * h] + [h] * (depth - 1) + [state_dim]
            self.state_sizes = [state_dim, h, h]
            self.ctx_sizes = [c, h, h]
        else:
            sizes = [state_dim] + [hidden] * (depth - 1) + [state_dim]
        self.sizes = sizes
        self.W = nn.ParameterList()
        self.b = nn.ParameterList()
        for i, o in zip(sizes[:-1], sizes[1:], strict=True):
            self.W.append(nn.Parameter(_uniform_(torch.empty(K, i, o), i)))
            self.b.append(nn.Parameter(_uniform_(torch.empty(K, o), i)))
        if style == "coda":
            self.Hw = nn.ParameterList(
                nn.Parameter(_uniform_(torch.empty(K, i * o, c), c))
                for i, o in zip(sizes[:-1], sizes[1:], strict=True))
            self.Hb = nn.ParameterList(
                nn.Parameter(_uniform_(torch.empty(K, o, c), c)) for o in sizes[1:])
        elif style == "geps":
            self.A = nn.ParameterList(
                nn.Parameter(_uniform_(torch.empty(K, i, c), i)) for i in sizes[:-1])
            self.B = nn.ParameterList(
                nn.Parameter(_uniform_(torch.empty(K, c, o), c)) for o in sizes[1:])
            self.C = nn.ParameterList(
                nn.Parameter(_uniform_(torch.empty(K, o, c), c)) for o in sizes[1:])
        else:
            self.Ws, self.bs, self.Wc, self.bc = (nn.ParameterList() for _ in range(4))
            for i, o in zip(self.state_sizes[:-1], self.state_sizes[1:], strict=True):
                self.Ws.append(nn.Parameter(_uniform_(torch.empty(K, i, o), i)))
                self.bs.append(nn.Parameter(_uniform_(torch.empty(K, o), i)))
            for i, o in zip(self.ctx_sizes[:-1], self.ctx_sizes[1:], strict=True):
                self.Wc.append(nn.Parameter(_uniform_(torch.empty(K, i, o), i)))
                self.bc.append(nn.Parameter(_uniform_(torch.empty(K, o), i)))
        if same_init:
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(p[:1].expand_as(p))

    @staticmethod
    def _mlp(x, Ws, bs, final_act=False):
        n = len(Ws)
        for li, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            x = torch.baddbmm(b[:, None, :], x, W)
            if li < n - 1 or final_act:
                x = torch.nn.functional.silu(x)
        return x

    def prepare(self, ctx, idx, rows=None):
        """The vector fields of a batch: expert ``idx[b]`` with context ``ctx[b]``.

        Parameters
        ----------
        ctx : Tensor of shape (B, context_dim)
        idx : LongTensor of shape (B,)
        rows : LongTensor of shape (B',), optional
            Expand the batch: row ``b'`` of ``x`` uses ``ctx[rows[b']]`` and
            expert ``idx[rows[b']]`` (the weights are built once per distinct
            (context, expert) pair and then gathered).

        Returns
        -------
        callable
            ``f(x)`` for ``x`` of shape (B, N, state_dim) (N states per batch
            row), evaluating all rows with one batched matmul per layer.
        """
        B = ctx.shape[0]
        if self.style == "ncf":
            ridx = idx if rows is None else idx[rows]
            Ws = [W[ridx] for W in self.Ws]
            bs = [b[ridx] for b in self.bs]
            emb_c = self._mlp(ctx[:, None, :], [W[idx] for W in self.Wc],
                              [b[idx] for b in self.bc], final_act=True)
            if rows is not None:
                emb_c = emb_c[rows]
            Wm = [W[ridx] for W in self.W]
            bm = [b[ridx] for b in self.b]

            def f(x):
                es = self._mlp(x, Ws, bs, final_act=True)
                z = torch.cat([es, emb_c.expand(-1, x.shape[1], -1)], dim=-1)
                return self._mlp(z, Wm, bm)

            return f
        Wl, bl = [], []
        for li, (i, o) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            W = self.W[li][idx]
            b = self.b[li][idx]
            if self.style == "coda":
                W = W + torch.bmm(self.Hw[li][idx], ctx[:, :, None]).view(B, i, o)
                b = b + torch.bmm(self.Hb[li][idx], ctx[:, :, None])[..., 0]
            else:  # geps: W + A diag(xi) B, b + C xi
                W = W + torch.bmm(self.A[li][idx] * ctx[:, None, :], self.B[li][idx])
                b = b + torch.bmm(self.C[li][idx], ctx[:, :, None])[..., 0]
            if rows is not None:
                W, b = W[rows], b[rows]
            Wl.append(W)
            bl.append(b)

        def f(x):
            return self._mlp(x, Wl, bl)

        return f


class MixERLayer(nn.Module):
    """MixER: contexts, a context-only top-1 gate and K batched vector-field experts.

    Parameters
    ----------
    n_experts : int
    n_envs : int
        Number of training environments (one zero-initialised context each).
    state_dim : int
    context_dim : int
        Context size per expert; the full context has ``n_experts * context_dim``
        entries.
    hidden, depth : int
        Width and number of linear layers of each expert.
    expert : {'coda', 'geps', 'ncf'}, default='coda'
    split_context : bool, default=True
        Expert k sees only chunk k of the context (else the whole context).
    gate : {'kmeans_lstsq', 'softmax_gd', 'fixed'}, default='kmeans_lstsq'
    same_expert_init : bool, default=True

    Attributes
    ----------
    contexts : Parameter of shape (n_envs, n_experts * context_dim)
    gate_weight : Tensor of shape (n_experts * context_dim + 1, n_experts)
        Last row: bias. A Parameter only for ``gate='softmax_gd'``.
    """

    def __init__(self, n_experts, n_envs, state_dim, context_dim, hidden=64, depth=3,
                 expert="coda", split_context=True, gate="kmeans_lstsq", same_expert_init=True):
        super().__init__()
        if gate not in ("kmeans_lstsq", "softmax_gd", "fixed"):
            raise ValueError(f"gate must be 'kmeans_lstsq', 'softmax_gd' or 'fixed', got {gate!r}")
        self.n_experts, self.n_envs = n_experts, n_envs
        self.state_dim, self.context_dim = state_dim, context_dim
        self.split_context, self.gate = split_context, gate
        p = n_experts * context_dim
        self.contexts = nn.Parameter(torch.zeros(n_envs, p))
        w = _uniform_(torch.empty(p + 1, n_experts), p + 1)
        if gate == "softmax_gd":
            self.gate_weight = nn.Parameter(w)
        else:
            self.register_buffer("gate_weight", w)
        self.experts = BatchedContextExperts(
            n_experts, state_dim, context_dim if split_context else p, hidden, depth, expert,
            same_expert_init)
        self._centers = None
        self.n_gate_updates = 0

    def gate_logits(self, ctx):
        """Logits :math:`W^T[\\xi; 1]` of shape (B, n_experts)."""
        return lstsq_gate_logits(ctx, self.gate_weight)

    def route(self, ctx):
        """Top-1 expert of each context (ties to the lower index)."""
        return torch.argmax(self.gate_logits(ctx), dim=-1)

    def _expert_context(self, ctx, idx):
        if not self.split_context:
            return ctx
        chunks = ctx.view(ctx.shape[0], self.n_experts, self.context_dim)
        return chunks[torch.arange(ctx.shape[0], device=ctx.device), idx]

    def forward(self, x0, t, env_idx=None, contexts=None, expert=None, substeps=1):
        """Integrate the routed vector field of every trajectory.

        Parameters
        ----------
        x0 : Tensor of shape (n, state_dim)
        t : Tensor of shape (n_t,)
        env_idx : LongTensor of shape (n,)
            Environment of each trajectory (row of ``contexts``).
        contexts : Tensor of shape (n_envs', K*c), optional
            Contexts to use instead of ``self.contexts`` (adaptation).
        expert : LongTensor of shape (n,), optional
            Force these experts instead of the gate's choice (no gate scaling).
        substeps : int

        Returns
        -------
        Tensor of shape (n, n_t, state_dim)
        """
        ctx_all = self.contexts if contexts is None else contexts
        if env_idx is None:
            env_idx = torch.arange(x0.shape[0], device=x0.device)
        ctx = ctx_all[env_idx]
        scale = None
        if expert is None:
            logits = self.gate_logits(ctx)
            idx = torch.argmax(logits, dim=-1)
            if self.gate == "softmax_gd":
                g = softmax(logits, axis=-1)
                scale = g[torch.arange(ctx.shape[0], device=ctx.device), idx][:, None, None]
        else:
            idx = expert
        # build the weights once per distinct (environment, expert) pair
        key = env_idx * self.n_experts + idx
        uniq, rows = torch.unique(key, return_inverse=True)
        first = torch.zeros_like(uniq).scatter_(
            0, rows, torch.arange(key.shape[0], device=key.device))
        u_ctx, u_idx = ctx[first], idx[first]
        u_ctx = self._expert_context(u_ctx, u_idx)
        counts = torch.bincount(rows, minlength=uniq.shape[0])
        if bool((counts == counts[0]).all()):
            # equal group sizes: states of one (env, expert) pair share a batch row
            perm = torch.argsort(rows, stable=True)
            U, N = uniq.shape[0], int(counts[0])
            f0 = self.experts.prepare(u_ctx, u_idx)
            if scale is not None:
                scale = scale[first]
            f = f0 if scale is None else (lambda x: scale * f0(x))
            out = rk4_odeint(f, x0[perm].view(U, N, -1), t, substeps)
            out = out.reshape(U * N, t.shape[0], -1)
            return out[torch.argsort(perm)]
        f0 = self.experts.prepare(u_ctx, u_idx, rows)
        f = f0 if scale is None else (lambda x: scale * f0(x))
        return rk4_odeint(f, x0[:, None, :], t, substeps)[:, 0]

    @torch.no_grad()
    def expert_losses(self, trajectories, t, env_idx, contexts=None, substeps=1):
        """MSE of every expert on every environment, shape (n_envs', n_experts).

        All ``n * K`` (trajectory, expert) pairs are integrated in one batch.
        """
        ctx_all = self.contexts if contexts is None else contexts
        n, K = trajectories.shape[0], self.n_experts
        idx = torch.arange(K, device=trajectories.device).repeat_interleave(n)
        envs = env_idx.repeat(K)
        pred = self.forward(trajectories[:, 0].repeat(K, 1), t, envs, ctx_all, expert=idx,
                            substeps=substeps)
        err = ((pred - trajectories.repeat(K, 1, 1)) ** 2).mean(dim=(1, 2)).view(K, n)
        E = ctx_all.shape[0]
        err = torch.nan_to_num(err, nan=1e30, posinf=1e30).clamp_max(1e30)
        tot = torch.zeros(E, K, dtype=err.dtype, device=err.device).index_add_(0, env_idx, err.T)
        cnt = torch.zeros(E, dtype=err.dtype, device=err.device).index_add_(
            0, env_idx, torch.ones(n, dtype=err.dtype, device=err.device))
        return tot / cnt.clamp_min(1)[:, None]

    @torch.no_grad()
    def gate_update(self, expert_losses, distance="l1-mean", match="greedy", noise=1e-4,
                    max_iter=20, tol=1e-4, random_state=None, init="uniform"):
        """MixER's closed-form gate update on the current contexts.

        Replaces ``gate_weight`` when K-means converged without an empty
        cluster; otherwise leaves the gate and forgets the K-means centres
        (the next call restarts from ``init``: :math:`U(\\pm 10^{-3})` for
        'uniform', the reference; 'k-means++' is our robustness option).

        Returns
        -------
        KMeansGateResult
        """
        ctx = self.contexts.detach()
        init = self._centers if self._centers is not None else init
        res = kmeans_lstsq_gate(ctx, expert_losses, distance=distance, match=match,
                                noise=noise, max_iter=max_iter, tol=tol, init=init,
                                random_state=random_state)
        if res.updated:
            self.gate_weight.copy_(res.coef)
            self._centers = res.centers
            self.n_gate_updates += 1
        else:
            self._centers = None
        return res
