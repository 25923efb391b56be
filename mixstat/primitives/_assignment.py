"""Linear assignment of components (Hungarian algorithm, via SciPy) for
label switching and metrics."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_components", "match_labels"]


def match_components(reference, estimate, metric="sqeuclidean"):
    """Permutation of the rows of ``estimate`` that best matches ``reference``.

    Parameters
    ----------
    reference, estimate : ndarray of shape (K, d)
        Component parameters (e.g. stacked intercept and slopes).
    metric : str
        Any :func:`scipy.spatial.distance.cdist` metric.

    Returns
    -------
    perm : ndarray of shape (K,)
        ``estimate[perm]`` is aligned with ``reference``.
    """
    from scipy.spatial.distance import cdist

    ref = np.atleast_2d(np.asarray(reference, dtype=float))
    est = np.atleast_2d(np.asarray(estimate, dtype=float))
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate shapes differ: {ref.shape} vs {est.shape}")
    cost = cdist(ref, est, metric=metric)
    _, cols = linear_sum_assignment(cost)
    return cols


def match_labels(labels_true, labels_pred):
    """Relabel ``labels_pred`` to agree best with ``labels_true`` (maximum overlap).

    Returns
    -------
    relabelled : ndarray of shape (n_samples,)
    mapping : dict
        predicted label -> true label. Predicted labels left over when there
        are more predicted than true clusters map to fresh labels (numbers
        after the largest label, or primed names), never to a true label.
    """
    t = np.asarray(labels_true)
    q = np.asarray(labels_pred)
    ut, it = np.unique(t, return_inverse=True)
    uq, iq = np.unique(q, return_inverse=True)
    counts = np.zeros((uq.size, ut.size))
    np.add.at(counts, (iq, it), 1)
    rows, cols = linear_sum_assignment(-counts)
    mapping = {uq[r].item(): ut[c].item() for r, c in zip(rows, cols, strict=True)}
    # predicted clusters left over (more predicted than true) get fresh labels,
    # never one of the true labels (which would merge them into a true class)
    unmatched = [v.item() for v in uq if v.item() not in mapping]
    if unmatched:
        if np.issubdtype(ut.dtype, np.number) and np.issubdtype(uq.dtype, np.number):
            start = max(ut.max(), uq.max()) + 1
            fresh = [start + i for i in range(len(unmatched))]
        else:
            taken = set(ut.tolist())
            fresh = []
            for v in unmatched:
                name = str(v)
                while name in taken:
                    name += "'"
                taken.add(name)
                fresh.append(name)
        mapping.update(zip(unmatched, fresh, strict=True))
    out = np.array([mapping[v] for v in q.tolist()])
    return out, mapping
