r"""Aioli: online data-mixture proportions from a linear dynamic mixing law.

Training on mixture proportions :math:`p \in \Delta^{k-1}` over :math:`k`
data groups changes the per-group validation losses by the linear dynamic
mixing law (Chen et al. 2025, eq. for Aioli)

.. math:: L_i^{t+1}(p) = L_i^t - \sum_{j=1}^{k} A^t_{ij}\, p_j .

``LearnParams`` estimates :math:`A^t` online: ``lp_rounds`` sweeps over the
groups in random order; for group :math:`j` the model is trained
``lp_steps`` steps on the smoothed one-hot mixture :math:`w_j`
(:math:`w_{jj} = \gamma` = ``one_hot_factor``, the others
:math:`(1-\gamma)/(k-1)`), and the loss drop :math:`L^{\text{before}} -
L^{\text{after}}` is added to column :math:`j` of :math:`G`. After averaging
over rounds, :math:`G = A W` with :math:`W = [w_1,\dots,w_k]`, so
:math:`A = G W^{-1}` (one :math:`k\times k` solve). :math:`A` is normalised
(shifted by its minimum when that is negative, then divided by its sum) and
the proportions take an exponentiated-gradient step

.. math:: p^{t+1} \propto p^t \odot \exp\Big(\eta \sum_i A_{ij}\Big),

computed as :math:`\mathrm{softmax}(\log p^t + \eta\,\mathbf 1^\top A)` with
the softmax primitive, so :math:`p` stays on the simplex.

References
----------
Chen, Hu, Lourie, Cho & Ré (2025), "Aioli: a unified optimization framework
for language model data mixing", ICLR, arXiv:2411.05735 (reference code
HazyResearch/aioli, defaults :math:`\eta = 0.2`, 4 rounds of 4 steps,
:math:`\gamma = 0.625`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..primitives import softmax

__all__ = ["AioliMixer", "exponentiated_gradient_step", "normalize_mixing_matrix"]


def exponentiated_gradient_step(p, score, eta):
    r"""One exponentiated-gradient step on the simplex,
    :math:`p' = \mathrm{softmax}(\log p + \eta\, s)`.

    Zero proportions stay zero. Works on NumPy arrays and torch tensors.
    """
    if not math.isfinite(float(eta)):
        raise ValueError(f"eta must be finite, got {eta!r}")
    if isinstance(p, torch.Tensor):
        s = torch.as_tensor(score, dtype=p.dtype, device=p.device)
        pn = p.detach().cpu().double().numpy()
        sn = s.detach().cpu().double().numpy()
    else:
        p = np.asarray(p)
        if not np.issubdtype(p.dtype, np.floating):
            p = p.astype(np.float64)
        s = np.asarray(score, dtype=p.dtype)
        pn, sn = p, s
    if p.ndim != 1 or s.shape != p.shape:
        raise ValueError(
            f"p and score must be 1-D of the same length, got {p.shape} and {s.shape}"
        )
    if (
        not np.all(np.isfinite(pn))
        or np.any(pn < 0)
        or not math.isclose(float(pn.sum()), 1.0, rel_tol=1e-4)
    ):
        raise ValueError("p must be a probability vector (finite, >= 0, summing to 1)")
    if not np.all(np.isfinite(sn)):
        raise ValueError("score contains NaN or inf")
    if isinstance(p, torch.Tensor):
        return softmax(torch.log(p) + eta * s)
    with np.errstate(divide="ignore"):
        return softmax(np.log(p) + eta * s).astype(p.dtype, copy=False)


def normalize_mixing_matrix(A):
    """Aioli's normalisation: shift by the minimum entry when it is negative,
    then divide by the sum (left unchanged if the sum is 0)."""
    A = np.array(A, copy=True)
    m = A.min()
    if m < 0:
        A -= m
    s = A.sum()
    return A / s if s > 0 else A


class AioliMixer:
    """Online data-mixture proportions by Aioli (Chen et al. 2025).

    Parameters
    ----------
    n_groups : int
        Number of data groups :math:`k` (>= 2).
    eta : float, default=0.2
        Exponentiated-gradient step size.
    lp_rounds : int, default=4
        Sweeps over the groups in one ``LearnParams``.
    lp_steps : int, default=4
        Training steps per smoothed one-hot mixture (passed to ``train_fn``).
    one_hot_factor : float, default=0.625
        Weight :math:`\\gamma` of the swept group; 1 means pure one-hot.
    normalize : bool, default=True
        Apply :func:`normalize_mixing_matrix` before the update.
    ema : float or None, default=None
        If set, the update uses the running average
        :math:`\\bar A \\leftarrow (1-\\mathrm{ema}) A + \\mathrm{ema}\\,\\bar A`
        and (as in the reference code) :math:`p \\propto p_0 \\exp(\\eta
        \\mathbf 1^\\top \\bar A)` from the initial proportions.
    init : array of shape (k,), optional
        Initial proportions (default uniform).
    dtype : numpy float dtype, default=np.float64
    random_state : int, Generator or None
        Order of the sweeps.

    Attributes
    ----------
    proportions_ : ndarray (k,)
    A_raw_ : ndarray (k, k)
        Last estimate of the mixing-law matrix :math:`A` (before normalising).
    A_ : ndarray (k, k)
        Matrix used in the last update (normalised / EMA).
    loss_drops_ : ndarray (k, k)
        Round-averaged loss drops :math:`G`.
    n_updates_ : int
    """

    def __init__(
        self,
        n_groups,
        eta=0.2,
        lp_rounds=4,
        lp_steps=4,
        one_hot_factor=0.625,
        normalize=True,
        ema=None,
        init=None,
        dtype=np.float64,
        random_state=None,
    ):
        if isinstance(n_groups, bool) or int(n_groups) != n_groups or int(n_groups) < 2:
            raise ValueError(f"n_groups must be an integer >= 2, got {n_groups!r}")
        self.n_groups = k = int(n_groups)
        if not math.isfinite(float(eta)) or eta <= 0:
            raise ValueError(f"eta must be a positive finite number, got {eta!r}")
        for nm, v in (("lp_rounds", lp_rounds), ("lp_steps", lp_steps)):
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ValueError(f"{nm} must be a positive integer, got {v!r}")
        g = float(one_hot_factor)
        if not 0 < g <= 1 or math.isclose(g, 1.0 / k):
            raise ValueError(
                f"one_hot_factor must be in (0, 1] and differ from 1/k = {1 / k:.4g} "
                f"(else the mixtures are singular), got {one_hot_factor!r}"
            )
        if ema is not None and not 0 <= float(ema) < 1:
            raise ValueError(f"ema must be in [0, 1) or None, got {ema!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.eta, self.lp_rounds, self.lp_steps = (
            float(eta),
            int(lp_rounds),
            int(lp_steps),
        )
        self.one_hot_factor, self.normalize, self.ema = g, bool(normalize), ema
        if init is None:
            p0 = np.full(k, 1.0 / k)
        else:
            p0 = np.asarray(init, dtype=np.float64)
            if (
                p0.shape != (k,)
                or not np.all(np.isfinite(p0))
                or np.any(p0 < 0)
                or p0.sum() <= 0
            ):
                raise ValueError(
                    f"init must be {k} finite non-negative numbers with a positive sum"
                )
            p0 = p0 / p0.sum()
        self.init_ = p0.astype(self.dtype)
        self.proportions_ = self.init_.copy()
        self._rng = np.random.default_rng(random_state)
        self._ema_A = None
        self.A_raw_ = self.A_ = self.loss_drops_ = None
        self.n_updates_ = 0

    def mixture_matrix(self):
        """Mixtures :math:`W`; column :math:`j` is the smoothed one-hot of group j."""
        k, g = self.n_groups, self.one_hot_factor
        W = np.full((k, k), (1 - g) / (k - 1))
        np.fill_diagonal(W, g)
        return W

    def _losses(self, eval_fn):
        L = np.asarray(eval_fn(), dtype=np.float64)
        if L.shape != (self.n_groups,):
            raise ValueError(
                f"eval_fn must return {self.n_groups} group losses, got shape {L.shape}"
            )
        if not np.all(np.isfinite(L)):
            raise ValueError("eval_fn returned NaN or inf losses")
        return L

    def estimate_from_loss_drops(self, G):
        """:math:`A = G W^{-1}` from round-averaged loss drops ``G`` (k, k)."""
        G = np.asarray(G, dtype=np.float64)
        if G.shape != (self.n_groups, self.n_groups) or not np.all(np.isfinite(G)):
            raise ValueError(
                f"G must be a finite ({self.n_groups}, {self.n_groups}) array"
            )
        return np.linalg.solve(self.mixture_matrix().T, G.T).T

    def learn_params(self, train_fn, eval_fn):
        """Estimate :math:`A` (LearnParams).

        ``train_fn(proportions, n_steps)`` trains the model; ``eval_fn()``
        returns the k validation losses. Returns ``A_raw_``.
        """
        W = self.mixture_matrix()
        G = np.zeros((self.n_groups, self.n_groups))
        prev = self._losses(eval_fn)
        order = np.concatenate(
            [self._rng.permutation(self.n_groups) for _ in range(self.lp_rounds)]
        )
        for j in order:
            train_fn(W[:, j].astype(self.dtype), self.lp_steps)
            new = self._losses(eval_fn)
            G[:, j] += prev - new
            prev = new
        G /= self.lp_rounds
        self.loss_drops_ = G.astype(self.dtype)
        self.A_raw_ = self.estimate_from_loss_drops(G).astype(self.dtype)
        return self.A_raw_

    def update(self, A=None):
        """Exponentiated-gradient step of the proportions with ``A`` (default
        ``A_raw_``); returns ``proportions_``."""
        A = self.A_raw_ if A is None else np.asarray(A, dtype=np.float64)
        if A is None:
            raise ValueError("no mixing matrix: call learn_params first or pass A")
        A = np.asarray(A, dtype=np.float64)
        if A.shape != (self.n_groups, self.n_groups) or not np.all(np.isfinite(A)):
            raise ValueError(
                f"A must be a finite ({self.n_groups}, {self.n_groups}) array"
            )
        if self.normalize:
            A = normalize_mixing_matrix(A)
        if self.ema is not None:
            self._ema_A = (
                A
                if self._ema_A is None
                else (1 - self.ema) * A + self.ema * self._ema_A
            )
            A = self._ema_A
            base = self.init_.astype(np.float64)
        else:
            base = self.proportions_.astype(np.float64)
        self.A_ = A.astype(self.dtype)
        p = exponentiated_gradient_step(base, A.sum(axis=0), self.eta)
        self.proportions_ = (p / p.sum()).astype(self.dtype)
        self.n_updates_ += 1
        return self.proportions_

    def step(self, train_fn, eval_fn):
        """``learn_params`` then ``update``; returns the new proportions."""
        self.learn_params(train_fn, eval_fn)
        return self.update()
