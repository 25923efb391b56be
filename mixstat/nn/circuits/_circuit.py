r"""Tensorised (squared) circuits in signed log-space.

A circuit on a region-graph tree (one partition per region) has an input
layer of :math:`K` densities per leaf and, per internal region, a product
layer over its children followed by a sum layer with weights :math:`W`:

- CP (``layer='cp'``, cirkit's ``cp-t``): :math:`c_r = W_r\,(c_{r_1} \odot
  \dots \odot c_{r_a})`, :math:`W_r \in \mathbb{R}^{K\times K}`;
- Tucker (``layer='tucker'``, binary partitions):
  :math:`c_r = W_r\,(c_{r_1} \otimes c_{r_2})`, :math:`W_r\in\mathbb{R}^{K\times K^2}`.

The root has one unit, :math:`c(x)`. Three models share the architecture
(Loconte et al., "Subtractive Mixture Models via Squaring", ICLR 2024):

- ``+``   (``weights='positive', squared=False``): :math:`p = c / Z`;
- ``+^2`` (``weights='positive', squared=True``): :math:`p = c^2 / Z`;
- ``+-^2`` (``weights='signed', squared=True``, NPC²): real weights,
  :math:`p = c^2/Z`.

With ``n_replicas = R`` the model is the positive mixture
:math:`p(x) = \sum_r \pi_r\, c_r(x)^2 / Z_r` of ``R`` circuits on different
trees (squared-npcs' replicas). Every unit is kept as
``(log|v|, sign v)``; the partition function of a squared circuit propagates
the :math:`K\times K` matrices of unit pairs, :math:`A \mapsto W A W^\top`
(two matrix products, never :math:`W\otimes W`), from the Gram matrices of
the inputs. Marginals replace an integrated leaf's pairs
:math:`f_i(x)f_j(x)` by :math:`G_{ij}`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...primitives import log_softmax, logsumexp, softmax
from ._layers import pair_sum_layer, positive_sum_layer, signed_sum_layer
from ._partition import log_partition_squared
from ._inputs import CDF, INTEGRATED, OBSERVED, BernsteinInput, BSplineInput, CategoricalInput, GaussianInput
from ._region_graph import RegionGraph

__all__ = ["TensorizedCircuit"]


class _Group:
    """A fold: internal regions of one height and arity (roots apart)."""

    def __init__(self, nodes, child_pos, arity, is_root):
        self.nodes = nodes
        self.child_pos = child_pos  # (F, arity) positions in the bank
        self.arity = arity
        self.is_root = is_root


class TensorizedCircuit(nn.Module):
    r"""A (squared) tensorised circuit, or a positive mixture of several.

    Parameters
    ----------
    region_graphs : list of RegionGraph
        One tree per replica (same ``n_variables``).
    n_units : int
        :math:`K`, units per region (inputs and sum layers).
    inputs : {'gaussian', 'categorical', 'bernstein', 'bspline'}
    layer : {'cp', 'tucker'}
    weights : {'signed', 'positive'}
        Real weights (initialised :math:`U(0,1)`, free to turn negative, as the
        paper's configs) or :math:`W = e^\theta` with :math:`\theta \sim U(-2, 0)`.
    squared : bool
    n_categories : array of int, optional
        Domain sizes per variable (categorical inputs).
    degree : int, optional
        Bernstein degree (default 12) or B-spline degree (default 3).
    n_knots : int, default=32
        Knot intervals of B-spline inputs on [0, 1].
    max_scale : float or None, default=2.0
        Upper bound on the standard deviations of Gaussian inputs, in units
        of the (standardised) data (sigmoid parameterisation, as cirkit's,
        which uses 1.0); None: unbounded :math:`\sigma = e^s + 10^{-3}`.
        See :class:`GaussianInput`.
    dtype : torch.dtype, default float64
    generator : torch.Generator, optional
    """

    def __init__(
        self,
        region_graphs,
        n_units=16,
        inputs="gaussian",
        layer="cp",
        weights="signed",
        squared=True,
        n_categories=None,
        degree=None,
        dtype=torch.float64,
        n_knots=32,
        generator=None,
        max_scale=2.0,
    ):
        super().__init__()
        if isinstance(region_graphs, RegionGraph):
            region_graphs = [region_graphs]
        if n_units < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        if weights not in ("signed", "positive"):
            raise ValueError(f"weights must be 'signed' or 'positive', got {weights!r}")
        if weights == "signed" and not squared:
            raise ValueError("signed weights need squared=True (a signed circuit is not a density)")
        if layer not in ("cp", "tucker"):
            raise ValueError(f"layer must be 'cp' or 'tucker', got {layer!r}")
        self.n_variables = region_graphs[0].n_variables
        self.n_units = K = int(n_units)
        self.n_replicas = len(region_graphs)
        self.weights_kind = weights
        self.squared = bool(squared)
        self.layer = layer
        self.input_kind = inputs
        self.dtype_ = dtype

        # ---- flatten the trees: leaves first, then folds by (height, arity, root).
        # Regions are ranked breadth-first from each root (replica by replica)
        # and every fold lists its nodes in that order, so that in a balanced
        # tree the children of a fold are one contiguous, node-major block of
        # the fold below: a view, no gather (and no scatter in the backward).
        rank = {}
        for r, rg in enumerate(region_graphs):
            if rg.n_variables != self.n_variables:
                raise ValueError("all region graphs must have the same number of variables")
            level = [rg.root]
            while level:
                for i in level:
                    rank.setdefault((r, i), len(rank))
                level = [c for i in level for c in rg.children[i]]
            for i in range(len(rg.children)):  # regions the root does not reach
                rank.setdefault((r, i), len(rank))
        leaf_vars, pos = [], {}
        for r, i in sorted(((r, i) for r, rg in enumerate(region_graphs) for i in rg.leaves), key=rank.get):
            pos[(r, i)] = len(leaf_vars)
            leaf_vars.append(region_graphs[r].scopes[i][0])
        buckets = {}
        for r, rg in enumerate(region_graphs):
            if not rg.children[rg.root]:  # one variable: a single sum layer on the inputs
                buckets.setdefault((1, 1, True), []).append((r, rg.root))
            for i, ch in enumerate(rg.children):
                if ch:
                    if layer == "tucker" and len(ch) != 2:
                        raise ValueError("Tucker layers need binary partitions (use layer='cp' for quad-trees)")
                    key = (rg.height(i), len(ch), i == rg.root)
                    buckets.setdefault(key, []).append((r, i))
        n_bank = len(leaf_vars)
        segments = [(0, n_bank)]  # (start, stop) of each bank entry: leaves, then non-root folds
        self.groups = []
        fold_of = {}  # (replica, region) -> (fold, row of its weights)
        roots = []
        for key in sorted(buckets):
            h, arity, is_root = key
            nodes = sorted(buckets[key], key=rank.get)
            child_pos = [[pos[(r, c)] for c in (region_graphs[r].children[i] or (i,))] for r, i in nodes]
            g = _Group(nodes, torch.as_tensor(child_pos, dtype=torch.long), arity, is_root)
            flat = [c for cp in child_pos for c in cp]
            g.block = None  # (bank entry, offset) when the children are one contiguous block
            if flat == list(range(flat[0], flat[0] + len(flat))):
                for j, (lo, hi) in enumerate(segments):
                    if lo <= flat[0] and flat[-1] < hi:
                        g.block = (j, flat[0] - lo)
            for j, node in enumerate(nodes):
                fold_of[node] = (len(self.groups), j)
            self.groups.append(g)
            if is_root:
                roots.extend(r for r, _ in nodes)
            else:
                for j, (r, i) in enumerate(nodes):
                    pos[(r, i)] = n_bank + j
                segments.append((n_bank, n_bank + len(nodes)))
                n_bank += len(nodes)
        self.root_replica_order = roots  # replica of each root output, in order
        self._roots_in_order = roots == sorted(roots)
        self._positions = pos  # (replica, region) -> bank position (non-root regions)
        self._fold_of = fold_of
        for gi, g in enumerate(self.groups):
            self.register_buffer(f"_child_pos{gi}", g.child_pos)

        # ---- parameters
        if inputs == "gaussian":
            self.input = GaussianInput(leaf_vars, K, generator=generator, dtype=dtype, max_scale=max_scale)
        elif inputs == "categorical":
            if n_categories is None:
                raise ValueError("categorical inputs need n_categories")
            ncat = torch.as_tensor(n_categories, dtype=torch.long)[torch.as_tensor(leaf_vars)]
            self.input = CategoricalInput(leaf_vars, K, ncat, generator=generator, dtype=dtype)
        elif inputs == "bernstein":
            self.input = BernsteinInput(leaf_vars, K, degree=12 if degree is None else degree,
                                        generator=generator, dtype=dtype)
        elif inputs == "bspline":
            self.input = BSplineInput(leaf_vars, K, n_knots=n_knots, degree=3 if degree is None else degree,
                                      generator=generator, dtype=dtype)
        else:
            raise ValueError(f"inputs must be 'gaussian', 'categorical', 'bernstein' or 'bspline', got {inputs!r}")
        self.sum_weights = nn.ParameterList()
        for g in self.groups:
            k_out = 1 if g.is_root else K
            k_in = K if (layer == "cp" or g.arity == 1) else K**g.arity
            u = torch.rand(len(g.nodes), k_out, k_in, generator=generator, dtype=dtype)
            if weights == "signed":
                w0 = u.clamp(min=1e-3)
            else:
                # theta ~ U(-2, 0): w = e^theta in [0.14, 1], no near-dead units
                # (d/dtheta = w d/dw is tiny for w near 0, which log U(0, 1) gives)
                w0 = 2.0 * u - 2.0
            self.sum_weights.append(nn.Parameter(w0))
        self.mixing_logits = nn.Parameter(torch.zeros(self.n_replicas, dtype=dtype))

    @torch.no_grad()
    def init_from_data(self, X, generator=None, method="points"):
        """Data-dependent initialisation of the input layer, where it has one
        (Gaussian inputs: means at randomly drawn training rows, see
        :meth:`GaussianInput.init_from_data`); other inputs are left as drawn.

        Parameters
        ----------
        X : tensor (n, D)
            Training data, in the units the circuit sees (standardised).
        generator : torch.Generator, optional
        method : {'points', 'kmeans'}, default='points'
            See :meth:`GaussianInput.init_from_data`.

        Returns
        -------
        self
        """
        if hasattr(self.input, "init_from_data"):
            self.input.init_from_data(X, generator=generator, method=method)
        return self

    # ------------------------------------------------------------ helpers --
    def _w(self, gi):
        w = self.sum_weights[gi]
        return w if self.weights_kind == "signed" else torch.exp(w)

    def _log_pi(self):
        return log_softmax(self.mixing_logits, axis=0)

    def _root_perm(self):
        # outputs come out in fold order; map to replica order
        order = torch.as_tensor(self.root_replica_order)
        return torch.argsort(order)

    def _children(self, gi, g, bank_l, bank_s):
        """Log-values and signs (None: all positive) of the children of fold
        ``gi``, shape (F, arity, ...): a view of one bank entry when they form
        a contiguous block, else a gather from the whole bank."""
        cp = getattr(self, f"_child_pos{gi}")
        F, a = cp.shape
        if g.block is not None:
            j, off = g.block
            lj, sj = bank_l[j], bank_s[j]
            if off != 0 or lj.shape[0] != F * a:  # (a narrow's backward is a zero-filled copy)
                lj = lj.narrow(0, off, F * a)
                sj = None if sj is None else sj.narrow(0, off, F * a)
            return lj.unflatten(0, (F, a)), None if sj is None else sj.unflatten(0, (F, a))
        flat = cp.reshape(-1)
        L = torch.cat(bank_l) if len(bank_l) > 1 else bank_l[0]
        cl = L.index_select(0, flat).unflatten(0, (F, a))
        if all(t is None for t in bank_s):
            return cl, None
        parts = [torch.ones_like(lv) if sv is None else sv for lv, sv in zip(bank_l, bank_s, strict=True)]
        S = torch.cat(parts) if len(parts) > 1 else parts[0]
        return cl, S.index_select(0, flat).unflatten(0, (F, a))

    def _roots(self, outs):
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out if self._roots_in_order else out[self._root_perm()]

    # ----------------------------------------------------- the circuit c --
    def _eval(self, leaf_log, Ws=None):
        """:meth:`log_circuit` with ``sign`` None for a monotonic circuit;
        ``Ws``: the weight matrices when the caller has them already."""
        signed = self.weights_kind == "signed"
        bank_l, bank_s = [leaf_log], [None]  # None: all positive (inputs are densities)
        outs_l, outs_s = [], []
        for gi, g in enumerate(self.groups):
            cl, cs = self._children(gi, g, bank_l, bank_s)  # (F, a, B, K)
            F, a, B, K = cl.shape
            if self.layer == "tucker" and a == 2:  # the outer product of the two children
                cl = (cl[:, 0, :, :, None] + cl[:, 1, :, None, :]).reshape(F, 1, B, K * K)
                if cs is not None:
                    cs = (cs[:, 0, :, :, None] * cs[:, 1, :, None, :]).reshape(F, 1, B, K * K)
            w = self._w(gi) if Ws is None else Ws[gi]
            if signed:
                ol, os_ = signed_sum_layer(w, cl, cs)  # (F, B, K_out)
            else:
                ol, os_ = positive_sum_layer(w, cl), None
            if g.is_root:  # squeeze: a view in the backward too (a select's is a zero-filled copy)
                outs_l.append(ol.squeeze(-1))
                outs_s.append(None if os_ is None else os_.squeeze(-1))
            else:
                bank_l.append(ol)
                bank_s.append(os_)
        return self._roots(outs_l), (self._roots(outs_s) if signed else None)

    def log_circuit(self, leaf_log):
        """Evaluate :math:`(\\log|c_r(x)|, \\mathrm{sign}\\,c_r(x))` per replica.

        Parameters
        ----------
        leaf_log : tensor (F_leaf, B, K)
            Log-values of the (positive) input units.

        Returns
        -------
        log_abs, sign : tensors (R, B)
        """
        lc, sc = self._eval(leaf_log)
        return lc, (torch.ones_like(lc) if sc is None else sc)

    def log_pair_circuit(self, leaf_log):
        """Evaluate the squared circuit :math:`c_r^2` on unit pairs.

        Each sum layer maps the matrix of unit pairs :math:`A` to
        :math:`W A W^\\top` (one fused node, see ``_layers.py``).

        Parameters
        ----------
        leaf_log : tensor (F_leaf, B, K, K)
            Log of the positive pair values of the inputs (products
            :math:`f_i f_j`, Gram entries, or partial integrals).

        Returns
        -------
        log_abs : tensor (R, B)
            Log of the (non-negative) squared-circuit value per replica.
        """
        signed = self.weights_kind == "signed"
        bank_l, bank_s = [leaf_log], [None]
        outs = []
        for gi, g in enumerate(self.groups):
            cl, cs = self._children(gi, g, bank_l, bank_s)  # (F, a, B, K, K)
            F, a, B, K = cl.shape[:4]
            if self.layer == "tucker" and a == 2:  # pairs of (i, j) index pairs: kron(A_left, A_right)
                cl = (cl[:, 0, :, :, None, :, None] + cl[:, 1, :, None, :, None, :]).reshape(F, 1, B, K * K, K * K)
                if cs is not None:
                    cs = (cs[:, 0, :, :, None, :, None] * cs[:, 1, :, None, :, None, :]).reshape(
                        F, 1, B, K * K, K * K)
            ol, os_ = pair_sum_layer(self._w(gi), cl, cs)  # W A W^T: (F, B, K_out, K_out)
            if g.is_root:
                # the root value is a square: sign must be +1 up to round-off
                outs.append(ol.squeeze(-1).squeeze(-1))
            else:
                bank_l.append(ol)
                bank_s.append(os_ if signed else None)
        return self._roots(outs)

    # -------------------------------------------------------- partition --
    def log_partition(self, Ws=None):
        """:math:`\\log Z_r` per replica, shape (R,). ``Ws``: the sum layers'
        weight matrices when the caller has them already."""
        if self.squared:  # the whole W A W^T pass as one node (_partition.py)
            return log_partition_squared(self, [self._w(gi) for gi in range(len(self.groups))] if Ws is None else Ws)
        ones = torch.zeros(self.input.n_leaves, 1, self.n_units, dtype=self.dtype_, device=self.mixing_logits.device)
        return self.log_circuit(ones)[0][:, 0]

    def forward(self, x):
        """Log-density :math:`\\log p(x)`, shape (B,)."""
        leaf = self.input.log_unit(x)  # (F, B, K)
        if self.squared:
            Ws = [self._w(gi) for gi in range(len(self.groups))]  # once for both passes
            log_z = self.log_partition(Ws)
            lc, _ = self._eval(leaf, Ws)  # (R, B)
            per = 2.0 * lc - log_z[:, None]
        else:
            # Z of a monotonic circuit is c at integrated (log 0) inputs: one
            # more column of the same pass
            lc, _ = self._eval(torch.cat([leaf, leaf.new_zeros(leaf.shape[0], 1, leaf.shape[2])], dim=1))
            lc, log_z = torch.split(lc, [lc.shape[1] - 1, 1], dim=1)
            per = lc - log_z
        if self.n_replicas == 1:
            return per.squeeze(0)
        return logsumexp(self._log_pi()[:, None] + per, axis=0)

    log_density = forward

    def log_query(self, x, mode):
        """Log of :math:`\\int c^2` (or :math:`\\int c`) with each variable
        observed (mode 0), integrated out (1) or integrated up to ``x`` (2),
        normalised: e.g. a marginal log-density. ``mode``: (B, D) ints."""
        mode_leaf = mode[:, self.input.variables]
        log_z = self.log_partition()
        if self.squared:
            val = self.log_pair_circuit(self.input.log_pair(x, mode_leaf))
        else:
            val = self.log_circuit(self.input.log_unit(x, mode_leaf))[0]
        return logsumexp(self._log_pi()[:, None] + val - log_z[:, None], axis=0)

    def log_marginal(self, x, observed):
        """Marginal log-density of the observed variables.

        Parameters
        ----------
        x : tensor (B, D); entries of unobserved variables are ignored.
        observed : bool tensor (D,) or (B, D)
        """
        observed = torch.as_tensor(observed, device=x.device)
        if observed.dim() == 1:
            observed = observed[None, :].expand(x.shape[0], -1)
        mode = torch.where(observed, OBSERVED, INTEGRATED)
        return self.log_query(torch.nan_to_num(x), mode)

    def log_conditional(self, x, target, given):
        r"""Conditional log-density :math:`\log p(x_T \mid x_G)` as the ratio of
        two marginals of the (squared) circuit.

        Parameters
        ----------
        x : tensor (B, D)
        target, given : bool tensors (D,), disjoint
        """
        target = torch.as_tensor(target, device=x.device)
        given = torch.as_tensor(given, device=x.device)
        if bool((target & given).any()):
            raise ValueError("target and given variables must be disjoint")
        return self.log_marginal(x, target | given) - self.log_marginal(x, given)

    # ----------------------------------------------------------- sample --
    @torch.no_grad()
    def sample(self, n, generator=None, n_bisect=50, order=None):
        """Exact autoregressive sampling: each variable from its conditional
        given the previous ones, by inverse CDF (bisection on the closed-form
        CDF) for continuous inputs and by enumeration for categorical ones."""
        D = self.n_variables
        dev = self.mixing_logits.device
        x = torch.zeros(n, D, dtype=self.dtype_, device=dev)
        order = range(D) if order is None else order
        mode = torch.full((n, D), INTEGRATED, dtype=torch.long, device=dev)
        log_prev = torch.zeros(n, dtype=self.dtype_, device=dev)
        for d in order:
            if isinstance(self.input, CategoricalInput):
                V = int(self.input.n_categories[self.input.variables == d][0])
                xs = x.repeat_interleave(V, dim=0)
                xs[:, d] = torch.arange(V, dtype=self.dtype_, device=dev).repeat(n)
                ms = mode.repeat_interleave(V, dim=0)
                ms[:, d] = OBSERVED
                lp = self.log_query(xs, ms).reshape(n, V)
                prob = softmax(lp, axis=1)
                u = torch.multinomial(prob, 1, generator=generator)[:, 0]
                x[:, d] = u.to(self.dtype_)
            else:
                lo_all, hi_all = self.input.bounds()
                sel = self.input.variables == d
                lo = torch.full((n,), float(lo_all[sel].min()), dtype=self.dtype_, device=dev)
                hi = torch.full((n,), float(hi_all[sel].max()), dtype=self.dtype_, device=dev)
                u = torch.rand(n, generator=generator, dtype=self.dtype_, device=dev)
                mq = mode.clone()
                mq[:, d] = CDF
                for _ in range(n_bisect):
                    mid = 0.5 * (lo + hi)
                    x[:, d] = mid
                    lf = self.log_query(x, mq) - log_prev
                    below = lf < torch.log(u)
                    lo = torch.where(below, mid, lo)
                    hi = torch.where(below, hi, mid)
                x[:, d] = 0.5 * (lo + hi)
            mode[:, d] = OBSERVED
            log_prev = self.log_query(x, mode)
        return x
