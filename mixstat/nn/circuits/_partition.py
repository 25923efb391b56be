r"""The partition function of a squared circuit as one autograd node.

:math:`Z = \int c(x)^2 dx` propagates, from the inputs' Gram matrices up, the
:math:`K\times K` matrices of unit pairs, :math:`A \mapsto W A W^\top` per sum
layer (Loconte et al., ICLR 2024, Sec. 3). These matrices are tiny
(:math:`K = 16`: 256 entries), so evaluated as torch operations, one autograd
node each, the pass is all per-operation overhead: about half of a training
step of a squared circuit. Here the whole pass — forward and the reverse
sweep for the gradients — runs as array code in one node: NumPy for CPU
tensors (microseconds per call), the tensors' own namespace elsewhere.

Forward, per fold, with the children's log-pair matrices :math:`L_c` (and
signs :math:`s_c` for real weights): the product :math:`P = \sum_c L_c`
(CP) or the outer sum of two (Tucker), the shift :math:`m = \max P`,
:math:`E = s \odot e^{P - m}`, :math:`T = W E W^\top`, out
:math:`= \log|T| + m` (no overflow, no floor; ``-inf`` only for an exact
zero). Backward, from the gradient :math:`G` of the outputs:
:math:`R = G/T` (0 where :math:`T = 0`), :math:`\partial W = R\,W E^\top +
R^\top W E`, :math:`\partial P = (W^\top R W)\odot E`, handed to every child
(CP) or summed over the other child's indices (Tucker).
"""

from __future__ import annotations

import numpy as np
import torch

from ._inputs import GaussianInput, gaussian_log_gram

__all__ = ["log_partition_squared"]


def _namespace(t):
    if t.device.type == "cpu":
        return np, lambda a: a.detach().numpy(), torch.from_numpy
    import array_api_compat

    xp = array_api_compat.array_namespace(t)
    return xp, lambda a: a.detach(), lambda a: a


def _finite_max(P, xp):
    """Largest entry of each matrix; an all ``-inf`` matrix (an exact zero) gets the lowest float."""
    if xp is np:
        return np.maximum(P.max(axis=(-2, -1), keepdims=True), np.finfo(P.dtype).min)
    m = xp.max(xp.max(P, axis=-1, keepdims=True), axis=-2, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.full_like(m, xp.finfo(P.dtype).min))


def _ratio(g, t, xp):
    """G / T, 0 where T = 0 (an exact zero passes no gradient)."""
    if xp is np:
        return np.divide(g, t, out=np.zeros_like(g), where=t != 0)
    return xp.where(t != 0, g / xp.where(t != 0, t, xp.ones_like(t)), xp.zeros_like(g))


class _Structure:
    """What the pass needs of a TensorizedCircuit's folds (plain Python)."""

    def __init__(self, circuit):
        self.folds = []
        for gi, g in enumerate(circuit.groups):
            cp = getattr(circuit, f"_child_pos{gi}").cpu().numpy()
            self.folds.append((cp, g.block, g.is_root, circuit.layer == "tucker" and cp.shape[1] == 2))
        self.signed = circuit.weights_kind == "signed"
        self.roots_in_order = circuit._roots_in_order
        self.root_perm = None if circuit._roots_in_order else circuit._root_perm().cpu().numpy()
        # non-root folds write bank entries 1, 2, ... in fold order; root folds
        # write consecutive rows of the output
        self.entry, self.root_rows = {}, {}
        for fi, (cp, _, is_root, _) in enumerate(self.folds):
            if is_root:
                lo = sum(hi - lo_ for lo_, hi in self.root_rows.values())
                self.root_rows[fi] = (lo, lo + cp.shape[0])
            else:
                self.entry[fi] = len(self.entry) + 1


def _children(bank, fold, xp):
    """(F, a, ...) children of a fold from the bank (a list of arrays)."""
    cp, block, _, _ = fold
    F, a = cp.shape
    if block is not None:
        j, off = block
        x = bank[j][off:off + F * a]
        return xp.reshape(x, (F, a) + tuple(x.shape[1:]))
    allb = bank[0] if len(bank) == 1 else xp.concat(bank, axis=0)
    if xp is np:
        x = allb[cp.reshape(-1)]
    else:
        x = xp.take(allb, xp.asarray(cp.reshape(-1), device=allb.device), axis=0)
    return xp.reshape(x, (F, a) + tuple(x.shape[1:]))


def _forward(struct, log_gram, Ws, xp):
    bank_l, bank_s = [log_gram], [None]
    saved, outs = [], []
    for fold, W in zip(struct.folds, Ws, strict=True):
        _, _, is_root, tucker = fold
        cl = _children(bank_l, fold, xp)
        cs = None if all(s is None for s in bank_s) else _children(
            [xp.ones_like(lv) if sv is None else sv for lv, sv in zip(bank_l, bank_s, strict=True)], fold, xp)
        F, a, K = cl.shape[0], cl.shape[1], cl.shape[2]
        if tucker:
            P = xp.reshape(cl[:, 0, :, None, :, None] + cl[:, 1, None, :, None, :], (F, K * K, K * K))
            S = None if cs is None else xp.reshape(cs[:, 0, :, None, :, None] * cs[:, 1, None, :, None, :],
                                                   (F, K * K, K * K))
        else:
            P = cl[:, 0] if a == 1 else xp.sum(cl, axis=1)
            S = None if cs is None else (cs[:, 0] if a == 1 else xp.prod(cs, axis=1))
        m = _finite_max(P, xp)
        E = xp.exp(P - m)
        if S is not None:
            E = E * S
        EWt = E @ W.mT
        T = W @ EWt
        out = xp.log(xp.abs(T)) + m  # log 0 = -inf: exact cancellation (warnings off, see _LogZ)
        saved.append((E, EWt, T))
        if is_root:
            outs.append(out[:, 0, 0])
        else:
            bank_l.append(out)
            bank_s.append(xp.sign(T) if struct.signed else None)
    z = outs[0] if len(outs) == 1 else xp.concat(outs)
    if not struct.roots_in_order:
        z = z[struct.root_perm]
    return z, saved, [b.shape for b in bank_l]


def _zeros(shape, like, xp):
    if xp is np:
        return np.zeros(shape, dtype=like.dtype)
    return xp.zeros(shape, dtype=like.dtype, device=like.device)


def _backward(struct, g_z, Ws, saved, bank_shapes, xp):
    if not struct.roots_in_order:
        g_z = g_z[np.argsort(struct.root_perm)]
    grads = [_zeros(s, saved[0][0], xp) for s in bank_shapes]
    g_W = [None] * len(Ws)
    for fi in range(len(struct.folds) - 1, -1, -1):
        fold = struct.folds[fi]
        cp, block, is_root, tucker = fold
        E, EWt, T = saved[fi]
        W = Ws[fi]
        if is_root:
            lo, hi = struct.root_rows[fi]
            G = _zeros(T.shape, T, xp)
            G[:, 0, 0] = g_z[lo:hi]
        else:
            G = grads[struct.entry[fi]]
        R = _ratio(G, T, xp)
        g_W[fi] = R @ EWt.mT + R.mT @ (W @ E)
        gP = (W.mT @ R @ W) * E
        F, a = cp.shape
        K = bank_shapes[0][-1]
        if tucker:
            g4 = xp.reshape(gP, (F, K, K, K, K))  # (i, j, k, l): P[(i,j),(k,l)] = L0[i,k] + L1[j,l]
            child_g = xp.stack([xp.sum(g4, axis=(2, 4)), xp.sum(g4, axis=(1, 3))], axis=1)
        else:
            child_g = xp.broadcast_to(gP[:, None], (F, a) + tuple(gP.shape[1:]))
        flat = xp.reshape(child_g, (F * a,) + tuple(child_g.shape[2:]))
        if block is not None:
            j, off = block
            grads[j][off:off + F * a] += flat
        else:
            sizes = [s[0] for s in bank_shapes]
            starts = np.cumsum([0] + sizes[:-1])
            for row, pos in enumerate(cp.reshape(-1)):
                j = int(np.searchsorted(starts, pos, side="right") - 1)
                grads[j][pos - starts[j]] += flat[row]
    return grads[0], g_W


def _gaussian_log_gram_backward(G, cache):
    """Gradients of :func:`~._inputs.gaussian_log_gram` for the mean and variance."""
    s2, d = cache
    A = G * (d / s2)  # = -dL/dd * G
    B = G * (0.5 * (d * d - s2) / (s2 * s2))  # dL/ds2 * G
    g_mu = A.sum(axis=1) - A.sum(axis=2) if isinstance(A, np.ndarray) else A.sum(dim=1) - A.sum(dim=2)
    g_var = B.sum(axis=1) + B.sum(axis=2) if isinstance(B, np.ndarray) else B.sum(dim=1) + B.sum(dim=2)
    return g_mu, g_var


class _LogZ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, struct, kind, *tensors):
        n_leaf = 2 if kind == "gaussian" else 1
        xp, to_x, from_x = _namespace(tensors[0])
        leaf_x = [to_x(t) for t in tensors[:n_leaf]]
        W_x = [to_x(W) for W in tensors[n_leaf:]]
        with np.errstate(divide="ignore"):
            if kind == "gaussian":
                log_gram, ctx.gram_cache = gaussian_log_gram(leaf_x[0], leaf_x[1], xp)
            else:
                log_gram = leaf_x[0]
            z, saved, shapes = _forward(struct, log_gram, W_x, xp)
        ctx.struct, ctx.saved_pass, ctx.shapes, ctx.W_x = struct, saved, shapes, W_x
        ctx.kind, ctx.dtype = kind, tensors[0].dtype
        return from_x(z)

    @staticmethod
    def backward(ctx, g):
        xp, to_x, from_x = _namespace(g)
        g_leaf, g_W = _backward(ctx.struct, to_x(g), ctx.W_x, ctx.saved_pass, ctx.shapes, xp)
        g_in = _gaussian_log_gram_backward(g_leaf, ctx.gram_cache) if ctx.kind == "gaussian" else (g_leaf,)
        return (None, None, *[from_x(x).to(ctx.dtype) for x in g_in], *[from_x(x).to(ctx.dtype) for x in g_W])


def log_partition_squared(circuit, Ws):
    r""":math:`\log Z_r` (R,) of the squared circuit ``circuit``, given the
    sum layers' weight matrices ``Ws`` (one per fold, as the layers use
    them). Gaussian inputs pass their means and variances, and their Gram
    matrices are computed inside the same node; other inputs pass
    ``log_gram()``."""
    inp = circuit.input
    if isinstance(inp, GaussianInput):
        return _LogZ.apply(_Structure(circuit), "gaussian", inp.mean, inp.var(), *Ws)
    return _LogZ.apply(_Structure(circuit), "gram", inp.log_gram(), *Ws)
