"""Small Numba kernels of the MoE M-step (compiled lazily, NumPy fallbacks).

They only compute weighted column moments on a subset of columns, so that an
expert's coordinate sweep on its active set costs O(n |A|) and never copies X;
the sweep itself is the primitive's kernel
(:func:`mixstat.primitives.weighted_enet_cd`).
"""

from __future__ import annotations

import numpy as np

from .._backend import lazy_njit


@lazy_njit
def column_moments(X, w, features, xbar, h):  # pragma: no cover - jitted
    """For each ``j`` in ``features``: ``xbar[j] = sum_i w_i x_ij / sum_i w_i`` and
    ``h[j] = sum_i w_i (x_ij - xbar_j)^2`` (two passes over the column, in place).
    Columns constant to working precision get ``h[j] = 0``."""
    n = X.shape[0]
    sw = 0.0
    for i in range(n):
        sw += w[i]
    for jj in range(features.shape[0]):
        j = features[jj]
        s = 0.0
        for i in range(n):
            s += w[i] * X[i, j]
        m = s / sw
        s2 = 0.0
        raw = 0.0
        for i in range(n):
            d = X[i, j] - m
            s2 += w[i] * d * d
            raw += w[i] * X[i, j] * X[i, j]
        xbar[j] = m
        h[j] = s2 if s2 > 1e-12 * raw else 0.0


def column_moments_numpy(X, w, features, xbar, h):
    """NumPy version of :func:`column_moments` (blocks of columns, no full copy)."""
    sw = float(w.sum())
    for j0 in range(0, features.size, 256):
        f = features[j0:j0 + 256]
        blk = X[:, f]
        m = (w @ blk) / sw
        c = blk - m
        s2 = w @ (c * c)
        raw = w @ (blk * blk)
        xbar[f] = m
        h[f] = np.where(s2 > 1e-12 * raw, s2, 0.0)
