r"""Inference for the shallow squared Gaussian mixture: standard errors,
intervals and the bootstrap.

Parameterisation (what the information matrix is taken with respect to)
-----------------------------------------------------------------------
:math:`p(x) = c(x)^2 / w^\top G w` is invariant to :math:`w \to \alpha w` for
every :math:`\alpha \ne 0` (scale and sign), so the :math:`K` weights carry
only :math:`K - 1` identified numbers and the information matrix in
:math:`w` is singular. The inference fixes the **reference component**
:math:`r`, the one with the largest :math:`|w_k|`, at :math:`w_r = 1` and uses
the :math:`K-1` ratios :math:`\rho_k = w_k / w_r` (:math:`k \ne r`), which are
invariant to scale and sign. The other parameters are the means and the
covariance entries themselves (variances; for ``'full'`` the entries
:math:`\Sigma_{k,ab}`, :math:`a \le b`), so that with :math:`K = 1` the
standard errors are the Gaussian MLE's. The reported ``weights_``
(:math:`\sum_k |w_k| = 1`, sign of :math:`w_r` positive) get delta-method
standard errors from the ratios (``'observed'``, ``'sandwich'``) or the
replicates (bootstrap).

The observed information :math:`I = -\nabla^2 \ell(\hat\phi)` is the exact
Hessian of the log-likelihood :math:`\ell = \sum_i \log p(x_i)` by torch
autograd (forward-over-reverse), or, without torch, the numerical Hessian of
:mod:`statsmodels.tools.numdiff`. The sandwich is :math:`I^{-1} J I^{-1}`
with :math:`J = \sum_i u_i u_i^\top`, :math:`u_i` the per-sample scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._backend import has_module
from ..primitives import (
    gaussian_log_density,
    gaussian_product_log_integral,
    match_components,
    signed_logsumexp,
)
from ..primitives._inference import InferenceResult

__all__ = ["SquaredMixtureInference", "InferenceLayout"]


class InferenceLayout:
    """The identified parameter vector :math:`\\phi` of a squared Gaussian mixture.

    ``phi = [rho (K-1), means (K*d), covariance entries]`` with ``rho_k =
    w_k / w_ref``; covariance entries: ``(K,)`` variances ('spherical'),
    ``(K, d)`` ('diag'), the upper triangles ``(K, d(d+1)/2)`` ('full').
    Every map below is linear in ``phi`` (constant matrices), so it runs in
    any array namespace (NumPy, torch with autograd).
    """

    def __init__(self, K, d, covariance_type, ref):
        self.K, self.d, self.ctype, self.ref = int(K), int(d), covariance_type, int(ref)
        self.others = [k for k in range(K) if k != ref]
        # w = e_ref + A rho
        self.A = np.zeros((K, K - 1))
        for j, k in enumerate(self.others):
            self.A[k, j] = 1.0
        self.e_ref = np.zeros(K)
        self.e_ref[ref] = 1.0
        self.triu = np.triu_indices(d)
        m = len(self.triu[0])
        # vec(Sigma) = D s, s the upper triangle (duplication matrix)
        self.D = np.zeros((d * d, m))
        for j, (a, b) in enumerate(zip(*self.triu, strict=True)):
            self.D[a * d + b, j] = 1.0
            self.D[b * d + a, j] = 1.0
        self.n_cov = {"spherical": 1, "diag": d, "full": m}[covariance_type]
        # the order of ``pack``: ratios, every mean, every covariance entry
        names = [("weights", f"w{k} / w{ref}") for k in self.others]
        for k in range(K):
            names += [(f"component {k}", f"mean x{j}") for j in range(d)]
        for k in range(K):
            if covariance_type == "spherical":
                names.append((f"component {k}", "var"))
            elif covariance_type == "diag":
                names += [(f"component {k}", f"var x{j}") for j in range(d)]
            else:
                names += [(f"component {k}", f"var x{a}" if a == b else f"cov x{a},x{b}")
                          for a, b in zip(*self.triu, strict=True)]
        self.names = names

    @property
    def size(self):
        return (self.K - 1) + self.K * self.d + self.K * self.n_cov

    def pack(self, w, means, cov):
        """``phi`` from the model's weights, means and covariances (NumPy)."""
        w = np.asarray(w, dtype=float)
        rho = w[self.others] / w[self.ref]
        if self.ctype == "full":
            c = np.asarray(cov)[:, self.triu[0], self.triu[1]]
        else:
            c = np.asarray(cov)
        return np.concatenate([rho, np.ravel(means), np.ravel(c)])

    def unpack(self, phi, xp=np):
        """(w, means, covariances) in the namespace of ``phi``."""
        K, d = self.K, self.d
        A = self._const(self.A, phi, xp)
        e = self._const(self.e_ref, phi, xp)
        rho = phi[: K - 1]
        w = e + (A @ rho if K > 1 else 0.0 * e)
        means = xp.reshape(phi[K - 1 : K - 1 + K * d], (K, d))
        c = phi[K - 1 + K * d :]
        if self.ctype == "spherical":
            return w, means, c
        if self.ctype == "diag":
            return w, means, xp.reshape(c, (K, d))
        D = self._const(self.D, phi, xp)
        cov = xp.reshape(xp.reshape(c, (K, -1)) @ D.T, (K, d, d))
        return w, means, cov

    @staticmethod
    def _const(a, like, xp):
        if xp is np:
            return a
        return xp.asarray(a, dtype=like.dtype, device=getattr(like, "device", None))

    def normalised_weights(self, phi):
        """The reported weights :math:`w / \\sum|w|` and their Jacobian in ``phi``."""
        w = self.e_ref + self.A @ phi[: self.K - 1]
        s = np.sum(np.abs(w))
        wn = w / s
        # d(w_k / s) / d w_j = delta_kj / s - w_k sign(w_j) / s^2 ; d w / d rho = A
        Jw = np.eye(self.K) / s - np.outer(w, np.sign(w)) / s**2
        J = np.zeros((self.K, self.size))
        J[:, : self.K - 1] = Jw @ self.A
        return wn, J


def loglik_samples(phi, X, layout, xp=np):
    r"""Per-sample :math:`\log p(x_i) = 2\log|c(x_i)| - \log Z` at ``phi``."""
    w, means, cov = layout.unpack(phi, xp)
    logf = gaussian_log_density(X, means, cov, layout.ctype)
    aw = xp.log(xp.abs(w))
    sw = xp.sign(w)
    lc, _ = signed_logsumexp(logf + aw[None, :], sw[None, :], axis=1)
    logG = gaussian_product_log_integral(means, cov, means, cov, layout.ctype)
    terms = xp.reshape(aw[:, None] + aw[None, :] + logG, (-1,))
    lz, _ = signed_logsumexp(terms, xp.reshape(sw[:, None] * sw[None, :], (-1,)), axis=0)
    return 2.0 * lc - lz


def _derivatives_autograd(phi, X, layout, scores):
    import torch

    Xt = torch.as_tensor(X, dtype=torch.float64)
    import array_api_compat.torch as xp

    def total(p):
        return torch.sum(loglik_samples(p, Xt, layout, xp))

    p0 = torch.as_tensor(phi, dtype=torch.float64)
    # forward-over-reverse: one vectorised pass per parameter
    H = torch.func.jacfwd(torch.func.jacrev(total))(p0).detach().numpy()
    S = None
    if scores:
        # forward mode: one pass per parameter gives the (n, m) per-sample scores
        S = torch.func.jacfwd(lambda p: loglik_samples(p, Xt, layout, xp))(p0).detach().numpy()
    return H, S


def _derivatives_numdiff(phi, X, layout, scores):
    if not has_module("statsmodels"):
        raise ImportError("standard errors need torch (exact autograd Hessian) or statsmodels "
                          "(numerical Hessian): pip install 'mixstat[torch]' or 'mixstat[stats]', "
                          "or use method='bootstrap'")
    from statsmodels.tools.numdiff import approx_fprime, approx_hess3

    H = approx_hess3(phi, lambda p: float(np.sum(loglik_samples(p, X, layout))))
    S = None
    if scores:
        S = np.atleast_2d(approx_fprime(phi, lambda p: loglik_samples(p, X, layout), centered=True))
    return H, S


def log_likelihood_derivatives(phi, X, layout, scores=False, derivatives="auto"):
    """Hessian of :math:`\\ell` (m, m) and, with ``scores``, the per-sample scores (n, m).

    ``derivatives``: 'autograd' (torch, exact), 'numdiff' (statsmodels
    central differences) or 'auto' (autograd when torch is installed).
    """
    if derivatives == "auto":
        derivatives = "autograd" if has_module("torch") else "numdiff"
    if derivatives == "autograd":
        H, S = _derivatives_autograd(phi, X, layout, scores)
    elif derivatives == "numdiff":
        H, S = _derivatives_numdiff(phi, X, layout, scores)
    else:
        raise ValueError(f"derivatives must be 'auto', 'autograd' or 'numdiff', got {derivatives!r}")
    return 0.5 * (H + H.T), S


_NOT_IDENTIFIED = ("two components that coincide or cancel, a component with no weight, too "
                   "few samples for the parameters, a weight at zero or a degenerate covariance")


@dataclass
class SquaredMixtureInference(InferenceResult):
    """Estimates of a squared Gaussian mixture with standard errors, z,
    p-values and intervals (:class:`mixstat.primitives.InferenceResult`).

    ``names`` lists (block, term) pairs: the weight ratios
    ``w_k / w_ref`` ('weights'), each component's means and covariance
    entries, then (K > 1) the reported normalised weights (block
    ``'weights (sum |w| = 1)'``, derived by the delta method). ``reference`` is the index of
    the component whose weight is fixed at 1.
    """

    reference: int = 0


def extend(layout, phi, cov=None):
    """``phi`` followed by the normalised weights (K > 1), and the matching
    covariance by the delta method."""
    if layout.K == 1:
        return phi, cov
    wn, J = layout.normalised_weights(phi)
    full = np.concatenate([phi, wn])
    if cov is None:
        return full, None
    Jf = np.vstack([np.eye(layout.size), J])
    return full, Jf @ cov @ Jf.T


def extended_names(layout):
    names = list(layout.names)
    if layout.K > 1:
        names += [("weights (sum |w| = 1)", f"w{k}") for k in range(layout.K)]
    return names


def wald(layout, phi, cov, method, level):
    full, cov_full = extend(layout, phi, cov)
    return SquaredMixtureInference.from_cov(extended_names(layout), full, cov_full, method,
                                            level, reference=layout.ref)


def align(ref_means, ref_cov_diag, means, cov_diag):
    """Permutation of the fitted components matching the reference ones."""
    a = np.column_stack([ref_means, 0.5 * np.log(ref_cov_diag)])
    b = np.column_stack([means, 0.5 * np.log(cov_diag)])
    return match_components(a, b)


def bootstrap_statistic(indices, seed, X, model, theta0, layout, kind):
    """One bootstrap replicate of ``phi`` (NaN when the refit fails).

    ``'nonparametric'`` refits on the rows ``indices``; ``'parametric'``
    refits on ``n`` points drawn from the fitted model (seed ``seed``). The
    refit is L-BFGS started from the fit; its components are matched to the
    fit's (Hungarian) before ``phi`` is taken with the same reference.
    """
    try:
        Xb = model.sample(X.shape[0], random_state=seed) if kind == "parametric" else X[indices]
        w, means, cov, ok = model._refit_from(theta0, Xb)
        if not ok:
            return np.full(layout.size, np.nan)
        diag = _cov_diag(cov, layout.ctype, layout.d)
        perm = align(model.means_, _cov_diag(model.covariances_, layout.ctype, layout.d), means, diag)
        phi = layout.pack(w[perm], means[perm], cov[perm])
        if not np.all(np.isfinite(phi)) or np.min(diag) <= model.reg_covar * (1 + 1e-6):
            return np.full(layout.size, np.nan)
        return phi
    except (FloatingPointError, np.linalg.LinAlgError, ValueError):
        return np.full(layout.size, np.nan)


def _cov_diag(cov, ctype, d):
    cov = np.asarray(cov)
    if ctype == "full":
        return np.stack([np.diag(c) for c in cov])
    if ctype == "diag":
        return cov
    return np.repeat(cov[:, None], d, axis=1)
