r"""Warm-started K-means and the MixER closed-form gate update.

MixER (Nzoyem, Barton & Deakin 2025, arXiv:2502.05335) replaces the
gradient training of a top-1 gate by a closed-form update run at intervals:

1. K-means with :math:`K` clusters (= experts) on the gate inputs
   :math:`z_i` (in MixER the learned environment contexts), with the
   *mean absolute difference* :math:`d(z, c) = \frac1p\sum_j |z_j - c_j|`
   as distance and the mean as centre update (Lloyd). The first call draws
   the centres from :math:`U(\pm 10^{-3})`; later calls warm-start from the
   previous *successful* centres.
2. The update is **skipped** when a cluster becomes empty (at any Lloyd
   iteration) or when K-means has not converged in ``max_iter`` iterations
   (convergence: ``allclose(new, old, atol=tol, rtol=1e-5)``).
3. The loss of expert :math:`k` on cluster :math:`j` is the **median** over
   the cluster's rows of ``expert_loss[i, k]``.
4. Clusters are matched one-to-one to experts **greedily**: in cluster-index
   order each cluster takes its lowest-loss expert still free
   (``match='hungarian'`` solves the assignment problem instead; this is our
   documented option, not the reference's rule).
5. The targets are the one-hot rows :math:`Y_i = e_{\pi(j(i))}` and the gate is
   the minimum-norm least-squares solution
   :math:`W = \arg\min \|[Z + \varepsilon, 1] W - Y\|_F` with
   :math:`\varepsilon \sim N(0, \sigma^2)`, ``noise`` = :math:`\sigma`.

The gate then routes :math:`z` to :math:`\arg\max_k ([z, 1] W)_k`. Without
expert losses this is K-means followed by linear regression on an indicator
matrix (Hastie, Tibshirani & Friedman, *The Elements of Statistical
Learning*, 2nd ed., section 4.2).

The Lloyd loop and the least squares are written against the array API
(NumPy, torch, array-api-strict); the matching step (a K x K problem) runs
in NumPy.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as _device
from scipy.optimize import linear_sum_assignment

__all__ = [
    "KMeansResult",
    "KMeansGateResult",
    "warm_kmeans",
    "match_clusters_to_experts",
    "kmeans_lstsq_gate",
    "lstsq_gate_logits",
]

_DISTANCES = ("l1-mean", "euclidean")


class KMeansResult(NamedTuple):
    """Output of :func:`warm_kmeans`."""

    labels: Any  # (n,) integer array, None when a cluster emptied
    centers: Any  # (K, p) array (last centres reached)
    converged: bool
    n_iter: int
    empty_cluster: bool


class KMeansGateResult(NamedTuple):
    """Output of :func:`kmeans_lstsq_gate`.

    ``coef``, ``labels`` and ``centers`` are None when the update was
    skipped (``updated`` False; ``reason`` says why), so that passing
    ``init=result.centers`` to the next call restarts K-means from random
    centres exactly as the reference does.
    """

    coef: Any  # (p + 1, K): rows 0..p-1 slopes, row p the bias
    labels: Any  # (n,) expert index targeted for each row
    centers: Any  # (K, p) converged K-means centres
    updated: bool
    cluster_labels: Any  # (n,) K-means cluster of each row
    expert_of_cluster: Any  # (K,) NumPy int array: cluster j -> expert
    n_iter: int
    reason: str


def _to_numpy(a):
    from .._backend import to_numpy

    return np.asarray(to_numpy(a))  # NumPy, torch (any device), CuPy, array-api-strict


def _pairwise(Z, C, distance, xp):
    diff = Z[:, None, :] - C[None, :, :]
    if distance == "l1-mean":
        return xp.mean(xp.abs(diff), axis=-1)
    return xp.sum(diff * diff, axis=-1)  # squared: same argmin as Euclidean


def _check_common(Z, n_clusters, distance, max_iter, tol):
    if Z.ndim != 2:
        raise ValueError(f"Z must be 2-D (n_samples, n_features), got shape {tuple(Z.shape)}")
    xp = array_namespace(Z)
    if not bool(xp.all(xp.isfinite(Z))):
        raise ValueError("Z contains NaN or infinity.")
    if not isinstance(n_clusters, numbers.Integral) or n_clusters < 1:
        raise ValueError(f"n_experts must be an integer >= 1, got {n_clusters!r}")
    if Z.shape[0] < n_clusters:
        raise ValueError(
            f"Expected n_samples >= n_experts, got n_samples={Z.shape[0]} "
            f"and n_experts={n_clusters}."
        )
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be one of {_DISTANCES}, got {distance!r}")
    if not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")


def _initial_centers(Z, n_clusters, init, random_state, xp):
    rng = random_state if isinstance(random_state, np.random.Generator) else (
        np.random.default_rng(random_state)
        if not isinstance(random_state, np.random.RandomState)
        else random_state
    )
    dev = _device(Z)
    p = Z.shape[1]
    if init is None or (isinstance(init, str) and init == "uniform"):
        c = rng.uniform(-1e-3, 1e-3, size=(n_clusters, p))
        return xp.asarray(c, dtype=Z.dtype, device=dev)
    if isinstance(init, str) and init == "k-means++":
        from sklearn.cluster import kmeans_plusplus

        seed = int(rng.integers(2**31 - 1)) if hasattr(rng, "integers") else int(
            rng.randint(2**31 - 1)
        )
        c, _ = kmeans_plusplus(_to_numpy(Z).astype(np.float64), n_clusters, random_state=seed)
        return xp.asarray(c, dtype=Z.dtype, device=dev)
    if isinstance(init, str):
        raise ValueError(f"init must be None, 'uniform', 'k-means++' or an array, got {init!r}")
    c = init
    if array_namespace(c) is not xp:
        c = xp.asarray(_to_numpy(c), dtype=Z.dtype, device=dev)
    if tuple(c.shape) != (n_clusters, p):
        raise ValueError(
            f"init centres must have shape (n_experts, n_features)=({n_clusters}, {p}), "
            f"got {tuple(c.shape)}"
        )
    return xp.astype(c, Z.dtype)


def warm_kmeans(Z, n_clusters, *, init=None, distance="l1-mean", max_iter=20, tol=1e-4,
                random_state=None):
    r"""Lloyd's K-means with the MixER reference's rules.

    Parameters
    ----------
    Z : array of shape (n_samples, n_features)
    n_clusters : int
    init : None, 'uniform', 'k-means++' or array of shape (n_clusters, n_features)
        None / 'uniform': centres drawn from :math:`U(\pm 10^{-3})` (the
        reference); 'k-means++': scikit-learn's seeding (our robustness
        option); an array: warm start.
    distance : {'l1-mean', 'euclidean'}
        Assignment distance; the centre update is the mean for both.
    max_iter : int
    tol : float
        Convergence when ``|new - old| <= tol + 1e-5 |old|`` for every entry.
    random_state : None, int, Generator or RandomState

    Returns
    -------
    KMeansResult
        ``empty_cluster`` is True (and ``labels`` None) as soon as an
        assignment leaves a cluster empty: the loop stops there.
    """
    xp = array_namespace(Z)
    _check_common(Z, n_clusters, distance, max_iter, tol)
    C = _initial_centers(Z, n_clusters, init, random_state, xp)
    ks = xp.arange(n_clusters, device=_device(Z))
    labels = None
    for it in range(1, max_iter + 1):
        labels = xp.argmin(_pairwise(Z, C, distance, xp), axis=1)
        onehot = xp.astype(labels[:, None] == ks[None, :], Z.dtype)
        counts = xp.sum(onehot, axis=0)
        if bool(xp.any(counts == 0)):
            return KMeansResult(None, C, False, it, True)
        C_new = (onehot.T @ Z) / counts[:, None]
        done = bool(xp.all(xp.abs(C_new - C) <= tol + 1e-5 * xp.abs(C)))
        C = C_new
        if done:
            # labels of the last assignment step (as the reference: never empty)
            return KMeansResult(labels, C, True, it, False)
    return KMeansResult(labels, C, False, max_iter, False)


def match_clusters_to_experts(cluster_loss, match="greedy"):
    """One-to-one map cluster -> expert from a (K, K) loss matrix.

    ``'greedy'`` (the reference): clusters in index order each take their
    lowest-loss expert still free (ties to the lower expert index).
    ``'hungarian'``: the assignment of least total loss
    (:func:`scipy.optimize.linear_sum_assignment`).

    Returns
    -------
    ndarray of shape (K,)
        ``out[j]`` is the expert of cluster ``j``.
    """
    L = np.asarray(cluster_loss, dtype=float)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"cluster_loss must be a square (K, K) matrix, got shape {L.shape}")
    if np.isnan(L).any():
        raise ValueError("cluster_loss contains NaN.")
    K = L.shape[0]
    if match == "hungarian":
        rows, cols = linear_sum_assignment(L)
        out = np.empty(K, dtype=np.intp)
        out[rows] = cols
        return out
    if match != "greedy":
        raise ValueError(f"match must be 'greedy' or 'hungarian', got {match!r}")
    free = np.ones(K, dtype=bool)
    out = np.empty(K, dtype=np.intp)
    for j in range(K):
        order = np.argsort(L[j], kind="stable")
        k = next(int(k) for k in order if free[k])
        out[j] = k
        free[k] = False
    return out


def lstsq_gate_logits(Z, coef):
    """Gate logits ``[Z, 1] @ coef`` (argmax gives the routed expert)."""
    return Z @ coef[:-1, :] + coef[-1, :]


def kmeans_lstsq_gate(Z, expert_loss=None, *, n_experts=None, distance="l1-mean",
                      match="greedy", noise=1e-4, max_iter=20, tol=1e-4, init=None,
                      random_state=None):
    r"""MixER's closed-form gate: K-means, cluster-expert matching, least squares.

    See the module docstring for the five steps and their rules.

    Parameters
    ----------
    Z : array of shape (n_samples, n_features)
        Gate inputs (MixER: the environment contexts).
    expert_loss : array of shape (n_samples, n_experts), optional
        Loss of every expert on every row. None: cluster ``j`` is expert ``j``
        (K-means plus an indicator-regression gate).
    n_experts : int, optional
        Needed when ``expert_loss`` is None; otherwise ``expert_loss.shape[1]``.
    distance : {'l1-mean', 'euclidean'}, default='l1-mean'
    match : {'greedy', 'hungarian'}, default='greedy'
    noise : float, default=1e-4
        Standard deviation of the Gaussian jitter added to ``Z`` in the least
        squares design (the reference's ``noise_level``).
    max_iter : int, default=20
    tol : float, default=1e-4
    init : None, 'uniform', 'k-means++' or array of shape (n_experts, n_features)
        Previous centres (warm start) or an initialisation rule.
    random_state : None, int, Generator or RandomState
        Draws the uniform initial centres and the jitter.

    Returns
    -------
    KMeansGateResult
        ``coef`` of shape (n_features + 1, n_experts) (last row: bias), the
        one-hot target ``labels`` (expert index per row) and the K-means
        ``centers``; all three None when the update is skipped.

    References
    ----------
    Nzoyem, Barton & Deakin (2025), "Towards Foundational Models for Dynamical
    System Reconstruction: Hierarchical Meta-Learning via Mixture of Experts",
    arXiv:2502.05335. Hastie, Tibshirani & Friedman (2009), ESL, section 4.2.
    """
    xp = array_namespace(Z)
    if expert_loss is not None:
        L = _to_numpy(expert_loss).astype(float)
        if L.ndim != 2 or L.shape[0] != Z.shape[0]:
            raise ValueError(
                f"expert_loss must have shape (n_samples, n_experts) with n_samples="
                f"{Z.shape[0]}, got {L.shape}"
            )
        if n_experts is not None and n_experts != L.shape[1]:
            raise ValueError(
                f"n_experts={n_experts} disagrees with expert_loss.shape[1]={L.shape[1]}"
            )
        if np.isnan(L).any():
            raise ValueError("expert_loss contains NaN.")
        n_experts = L.shape[1]
    elif n_experts is None:
        raise ValueError("Give n_experts when expert_loss is None.")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if match not in ("greedy", "hungarian"):
        raise ValueError(f"match must be 'greedy' or 'hungarian', got {match!r}")
    rng = random_state if isinstance(random_state, np.random.Generator | np.random.RandomState) \
        else np.random.default_rng(random_state)
    km = warm_kmeans(Z, n_experts, init=init, distance=distance, max_iter=max_iter, tol=tol,
                     random_state=rng)
    if km.empty_cluster or not km.converged:
        reason = "empty cluster" if km.empty_cluster else "k-means did not converge"
        return KMeansGateResult(None, None, None, False, km.labels, None, km.n_iter, reason)

    clab = _to_numpy(km.labels).astype(np.intp)
    K = n_experts
    if expert_loss is None:
        assign = np.arange(K, dtype=np.intp)
    else:
        med = np.stack([np.median(L[clab == j], axis=0) for j in range(K)])
        assign = match_clusters_to_experts(med, match)
    target = assign[clab]
    dev = _device(Z)
    Y = xp.asarray(np.eye(K)[target], dtype=Z.dtype, device=dev)
    jitter = xp.asarray(rng.standard_normal(tuple(Z.shape)) * noise, dtype=Z.dtype, device=dev)
    X = xp.concat([Z + jitter, xp.ones((Z.shape[0], 1), dtype=Z.dtype, device=dev)], axis=1)
    coef = xp.linalg.pinv(X) @ Y
    labels = xp.asarray(target, device=dev)
    return KMeansGateResult(coef, labels, km.centers, True, km.labels, assign, km.n_iter, "")
