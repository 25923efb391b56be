"""Input layers of tensorised circuits, folded over the leaves.

Every input layer holds ``n_units`` normalised univariate densities
:math:`f_{l,k}` per leaf :math:`l` and answers four queries, each in log-space:

- ``log_unit(x, mode)``: ``(F, B, K)``, :math:`\\log f_k(x)` (mode 0,
  observed), 0 (mode 1, integrated out) or :math:`\\log F_k(x)` (mode 2,
  cumulative distribution, for inverse-CDF sampling);
- ``log_pair(x, mode)``: ``(F, B, K, K)``, the same for the products
  :math:`f_i f_j` that a squared circuit needs: :math:`\\log f_i(x) + \\log
  f_j(x)`, the Gram entries :math:`G_{ij}=\\int f_i f_j`, or
  :math:`\\int_{-\\infty}^x f_i f_j`;
- ``log_gram()``: ``(F, K, K)``.

All Gram matrices are closed-form (Loconte et al., ICLR 2024, App. B): the
Gaussian one is :math:`N(\\mu_i; \\mu_j, \\sigma_i^2 + \\sigma_j^2)`; the
Bernstein and B-spline ones are :math:`\\alpha B \\alpha^\\top` with the
exact Gram matrix :math:`B` of the basis.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...primitives import log_softmax, logsumexp, softmax

__all__ = ["GaussianInput", "CategoricalInput", "BernsteinInput", "BSplineInput"]

OBSERVED, INTEGRATED, CDF = 0, 1, 2
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _select(mode, obs, integ, cdf=None):
    """Pick per (leaf, sample) among the three query results. ``mode`` is
    (B, F); results are (F, B, ...)."""
    m = mode.T.reshape(mode.shape[1], mode.shape[0], *([1] * (obs.dim() - 2)))
    out = torch.where(m == INTEGRATED, integ.expand_as(obs), obs)
    if cdf is not None:
        out = torch.where(m == CDF, cdf, out)
    return out


def gaussian_log_gram(mu, var, xp):
    r"""Log-Gram matrices of Gaussian units, :math:`\log\int f_i f_j =
    \log N(\mu_i; \mu_j, v_i + v_j)`, shape (F, K, K), from ``mu``, ``var``
    (F, K); ``xp``: the arrays' namespace (torch, NumPy, ...). Also returns
    the pair variances and mean differences, for a hand-written backward."""
    s2 = var[:, :, None] + var[:, None, :]
    d = mu[:, :, None] - mu[:, None, :]
    return -0.5 * (xp.log(s2) + d * d / s2) - _HALF_LOG_2PI, (s2, d)


class _GaussianLogUnitFn:
    fn = None


def _gaussian_log_unit(xv, mu, sd):
    r""":math:`\log N(x_{lb}; \mu_{lk}, \sigma_{lk}^2)`, shape (F, B, K), from
    ``xv`` (F, B, 1) and ``mu``, ``sd`` (F, K), as one autograd node.

    This runs at every training step on the whole (F, B, K) block. With
    :math:`z = (x - \mu)/\sigma`, forward is :math:`-z^2/2 - \log\sigma -
    \log(2\pi)/2` (three passes over the block) and backward, with
    :math:`G` the output gradient, :math:`\partial\mu = \sum_b G z / \sigma`,
    :math:`\partial\sigma = \sum_b G (z^2 - 1) / \sigma`,
    :math:`\partial x = -\sum_k G z / \sigma` (the generic
    graph of the same expression has twice the kernels)."""
    if _GaussianLogUnitFn.fn is None:

        class GaussianLogUnit(torch.autograd.Function):
            @staticmethod
            def forward(ctx, xv, mu, sd):
                inv = 1.0 / sd
                z = (xv - mu[:, None, :]) * inv[:, None, :]
                out = torch.addcmul((-torch.log(sd) - _HALF_LOG_2PI)[:, None, :], z, z, value=-0.5)
                ctx.save_for_backward(z, inv)
                return out

            @staticmethod
            def backward(ctx, g):
                z, inv = ctx.saved_tensors
                gz = g * z
                g_mu = gz.sum(dim=1) * inv
                g_sd = ((gz * z).sum(dim=1) - g.sum(dim=1)) * inv
                g_x = -(gz * inv[:, None, :]).sum(dim=2, keepdim=True) if ctx.needs_input_grad[0] else None
                return g_x, g_mu, g_sd

        _GaussianLogUnitFn.fn = GaussianLogUnit
    return _GaussianLogUnitFn.fn.apply(xv, mu, sd)


class _Input(nn.Module):
    def __init__(self, variables, n_units):
        super().__init__()
        self.register_buffer("variables", torch.as_tensor(variables, dtype=torch.long))
        self.n_leaves = len(variables)
        self.n_units = int(n_units)

    def _x(self, x):
        return x.index_select(1, self.variables)  # (B, F)


class GaussianInput(_Input):
    r"""Univariate Gaussian units :math:`N(x_v; \mu_{lk}, \sigma_{lk}^2)`.

    Data are expected standardised (unit variance per variable), so scales
    are in data standard deviations. By default :math:`\sigma` is bounded,
    :math:`\sigma = \sigma_{\min} + (\sigma_{\max} - \sigma_{\min})\,
    \mathrm{sigmoid}(s)` with :math:`\sigma_{\max} = 2` (cirkit's
    parameterisation, which uses :math:`\sigma_{\max} = 1`): the data have
    unit variance, so units much broader than that are of no use, and
    squaring narrows a Gaussian by :math:`\sqrt2`, so a bound of 2 still
    lets one squared unit cover a whole standardised marginal
    (:math:`2/\sqrt2 > 1`). The unbounded
    :math:`\sigma = e^{s} + \sigma_{\min}` (``max_scale=None``) made
    training of deep signed circuits jumpy in our runs. Initial values are
    drawn the same way in both: :math:`\mu\sim N(0,1)` and
    :math:`\sigma = \mathrm{sigmoid}(N(0,1))` in (0, 1) (as cirkit's
    default; plus :math:`\sigma_{\min}` when unbounded).
    :meth:`init_from_data` then moves the means to training points
    (what :class:`~mixstat.circuits.SquaredCircuitDensity` does by default).

    Parameters
    ----------
    variables : sequence of int
        Variable of each leaf.
    n_units : int
    generator : torch.Generator, optional
    min_scale : float, default=1e-3
    dtype : torch.dtype, default float64
    max_scale : float or None, default=2.0
        Upper bound on :math:`\sigma` (must exceed ``min_scale``); None:
        unbounded.
    """

    def __init__(self, variables, n_units, generator=None, min_scale=1e-3, dtype=torch.float64, max_scale=2.0):
        super().__init__(variables, n_units)
        F, K = self.n_leaves, self.n_units
        self.mean = nn.Parameter(torch.randn(F, K, generator=generator, dtype=dtype))
        s0 = torch.sigmoid(torch.randn(F, K, generator=generator, dtype=dtype))  # in (0, 1), median 0.5
        self.min_scale = float(min_scale)
        self.max_scale = None if max_scale is None else float(max_scale)
        if self.max_scale is None:
            self.log_scale = nn.Parameter(torch.log(s0))
        else:
            if self.max_scale <= self.min_scale:
                raise ValueError(f"max_scale must exceed min_scale={min_scale}, got {max_scale}")
            frac = ((s0 - self.min_scale) / (self.max_scale - self.min_scale)).clamp(1e-6, 1 - 1e-6)
            self.log_scale = nn.Parameter(torch.logit(frac))  # the raw parameter s

    @torch.no_grad()
    def init_from_data(self, X, generator=None, method="points"):
        r"""Place the means at data points: unit :math:`k` of every leaf gets
        the coordinate of the same point :math:`x_{(k)}`, so that the
        products of sibling units start centred on data, as a Gaussian
        mixture started from data. Scales are left as drawn.

        Parameters
        ----------
        X : tensor (n, D)
            (Standardised) training data.
        generator : torch.Generator, optional
        method : {'points', 'kmeans'}, default='points'
            'points': :math:`K` randomly drawn training rows (distinct when
            there are at least :math:`K`); 'kmeans': the :math:`K` centres of
            k-means (scikit-learn's ``KMeans``, k-means++ seeding, one run) on
            the training rows (at most 100,000 of them, drawn at random;
            fewer rows than :math:`K`: as 'points'). Scales
            are left as drawn either way (setting them to the clusters'
            standard deviations did worse for the monotonic circuit in 2-D,
            ``docs/circuits.md``).

        Returns
        -------
        self
        """
        n, K = X.shape[0], self.n_units
        if method not in ("points", "kmeans"):
            raise ValueError(f"method must be 'points' or 'kmeans', got {method!r}")
        if method == "kmeans" and n >= K:
            import warnings

            import numpy as np
            from sklearn.cluster import KMeans
            from sklearn.exceptions import ConvergenceWarning

            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            if n > 100_000:  # centres of a large sample are those of a 1e5 subsample, to sampling error
                X = X.index_select(0, torch.randperm(n, generator=generator)[:100_000].to(X.device))
            Xn = np.asarray(X.detach().cpu().to(torch.float64).numpy())
            with warnings.catch_warnings():
                # fewer distinct rows than K: k-means repeats centres, which is
                # all a start needs (units at the same point separate in training)
                warnings.simplefilter("ignore", ConvergenceWarning)
                C = KMeans(n_clusters=K, n_init=1, random_state=seed).fit(Xn).cluster_centers_  # (K, D)
            C = torch.as_tensor(C, dtype=self.mean.dtype, device=self.mean.device)
            self.mean.copy_(C.index_select(1, self.variables.to(C.device)).T)
            return self
        if n >= K:
            idx = torch.randperm(n, generator=generator)[:K]
        else:
            idx = torch.randint(n, (K,), generator=generator)
        pts = X.index_select(0, idx.to(X.device)).index_select(1, self.variables.to(X.device))  # (K, F)
        self.mean.copy_(pts.T.to(self.mean))
        return self

    def scale(self):
        r"""Standard deviations :math:`\sigma`, shape (F, K)."""
        if self.max_scale is None:
            return torch.exp(self.log_scale) + self.min_scale
        return self.min_scale + (self.max_scale - self.min_scale) * torch.sigmoid(self.log_scale)

    def var(self):
        return self.scale() ** 2

    def log_unit(self, x, mode=None):
        xv = self._x(x).T[:, :, None]  # (F, B, 1)
        sd = self.scale()
        obs = _gaussian_log_unit(xv, self.mean, sd)
        if mode is None:
            return obs
        cdf = torch.special.log_ndtr((xv - self.mean[:, None, :]) / sd[:, None, :])
        return _select(mode, obs, torch.zeros_like(obs[:, :1]), cdf)

    def log_gram(self):
        return gaussian_log_gram(self.mean, self.var(), torch)[0]

    def log_pair(self, x, mode=None):
        lf = self.log_unit(x)  # (F, B, K)
        obs = lf[:, :, :, None] + lf[:, :, None, :]
        if mode is None:
            return obs
        log_g = self.log_gram()[:, None]  # (F, 1, K, K)
        mu, var = self.mean, self.var()
        s2 = var[:, :, None] + var[:, None, :]
        m = (mu[:, :, None] * var[:, None, :] + mu[:, None, :] * var[:, :, None]) / s2
        sd = torch.sqrt(var[:, :, None] * var[:, None, :] / s2)
        xv = self._x(x).T[:, :, None, None]
        cdf = log_g + torch.special.log_ndtr((xv - m[:, None]) / sd[:, None])
        return _select(mode, obs, log_g, cdf)

    def bounds(self):
        """Per-leaf interval holding essentially all the mass (for bisection)."""
        sd = torch.sqrt(self.var())
        return (self.mean - 12 * sd).min(dim=1).values, (self.mean + 12 * sd).max(dim=1).values


class CategoricalInput(_Input):
    r"""Categorical units :math:`p_{lk}(x_v = c) = \mathrm{softmax}(\theta_{lk})_c`.

    ``n_categories`` gives each leaf's domain size; the Gram matrix is
    :math:`G_{ij} = \sum_c p_{ic} p_{jc}`.
    """

    def __init__(self, variables, n_units, n_categories, generator=None, dtype=torch.float64):
        super().__init__(variables, n_units)
        ncat = torch.as_tensor(n_categories, dtype=torch.long)
        V = int(ncat.max())
        self.n_max = V
        self.register_buffer("n_categories", ncat)
        mask = torch.arange(V)[None, :] >= ncat[:, None]  # (F, V) invalid
        self.register_buffer("invalid", mask)
        self.logits = nn.Parameter(0.5 * torch.randn(self.n_leaves, n_units, V, generator=generator, dtype=dtype))

    def log_probs(self):
        z = self.logits.masked_fill(self.invalid[:, None, :], -math.inf)
        return log_softmax(z, axis=-1)  # (F, K, V)

    def log_unit(self, x, mode=None):
        xv = self._x(x).long().clamp(min=0)  # (B, F)
        xv = torch.minimum(xv, self.n_categories[None, :] - 1)
        lp = self.log_probs()  # (F, K, V)
        idx = xv.T[:, None, :].expand(-1, self.n_units, -1)  # (F, K, B)
        obs = torch.gather(lp, 2, idx).transpose(1, 2)  # (F, B, K)
        if mode is None:
            return obs
        return _select(mode, obs, torch.zeros_like(obs[:, :1]))

    def log_gram(self):
        lp = self.log_probs()
        return logsumexp(lp[:, :, None, :] + lp[:, None, :, :], axis=-1)

    def log_pair(self, x, mode=None):
        lf = self.log_unit(x)
        obs = lf[:, :, :, None] + lf[:, :, None, :]
        if mode is None:
            return obs
        return _select(mode, obs, self.log_gram()[:, None])


def _log_binom(n, k):
    return torch.lgamma(n + 1.0) - torch.lgamma(k + 1.0) - torch.lgamma(n - k + 1.0)


class BernsteinInput(_Input):
    r"""Bernstein-polynomial units on [0, 1] (bounded data, scaled beforehand).

    :math:`f_k(x) = \sum_{m=0}^{n} \alpha_{km} \beta_m(x)` with
    :math:`\beta_m = \mathrm{Beta}(m+1, n-m+1)` and
    :math:`\alpha_k = \mathrm{softmax}(\theta_k)`: a normalised density. Gram
    matrix :math:`G = \alpha B \alpha^\top` with
    :math:`B_{mm'} = (n+1)^2 \binom{n}{m}\binom{n}{m'} / ((2n+1)\binom{2n}{m+m'})`.
    """

    def __init__(self, variables, n_units, degree=12, generator=None, dtype=torch.float64):
        super().__init__(variables, n_units)
        n = int(degree)
        self.degree = n
        self.theta = nn.Parameter(0.5 * torch.randn(self.n_leaves, n_units, n + 1, generator=generator, dtype=dtype))
        m = torch.arange(n + 1, dtype=dtype)
        nn_ = torch.tensor(float(n), dtype=dtype)
        self.register_buffer("m", m)
        self.register_buffer("log_c", _log_binom(nn_, m))
        a = m[:, None] + m[None, :]
        log_b = (
            2 * math.log(n + 1) + self.log_c[:, None] + self.log_c[None, :]
            - math.log(2 * n + 1) - _log_binom(torch.tensor(2.0 * n, dtype=dtype), a)
        )
        self.register_buffer("log_bmat", log_b)

    def _log_alpha(self):
        return log_softmax(self.theta, axis=-1)  # (F, K, M)

    def _log_basis(self, xv):
        # xv (F, B) in [0, 1]; returns (F, B, M) log Beta(m+1, n-m+1) densities
        n = self.degree
        x = xv[..., None]
        inside = (x >= 0) & (x <= 1)
        xc = x.clamp(0.0, 1.0)
        out = (
            math.log(n + 1) + self.log_c
            + torch.special.xlogy(self.m, xc) + torch.special.xlogy(n - self.m, 1 - xc)
        )
        return torch.where(inside, out, torch.full_like(out, -math.inf))

    def _log_tail(self, xv, total):
        # log sum_{j > a} C(total, j) t^j (1-t)^(total-j), for a = -1..total-1:
        # returns (F, B, total+1) indexed by a+1 -> regularised incomplete beta
        x = xv[..., None].clamp(0.0, 1.0)
        j = torch.arange(total + 1, dtype=x.dtype, device=x.device)
        u = _log_binom(torch.tensor(float(total), dtype=x.dtype), j) + torch.special.xlogy(j, x) + torch.special.xlogy(total - j, 1 - x)
        rev = torch.logcumsumexp(torch.flip(u, dims=[-1]), dim=-1)
        return torch.flip(rev, dims=[-1])  # entry a' = log sum_{j >= a'}

    def log_unit(self, x, mode=None):
        xv = self._x(x).T  # (F, B)
        la = self._log_alpha()  # (F, K, M)
        lb = self._log_basis(xv)  # (F, B, M)
        obs = logsumexp(la[:, None] + lb[:, :, None, :], axis=-1)
        if mode is None:
            return obs
        n = self.degree
        tail = self._log_tail(xv, n + 1)  # CDF of Beta(m+1, n-m+1) = sum_{j>=m+1}
        lcdf = tail[..., 1:]  # (F, B, M)
        cdf = logsumexp(la[:, None] + lcdf[:, :, None, :], axis=-1)
        return _select(mode, obs, torch.zeros_like(obs[:, :1]), cdf)

    def log_gram(self):
        la = self._log_alpha()  # (F, K, M)
        y = logsumexp(la[:, None, :, None, :] + self.log_bmat, axis=-1)  # (F,1,K,M) over m'
        # y[f, 0, j, m] = log sum_m' alpha_jm' B_mm'
        return logsumexp(la[:, :, None, :] + y, axis=-1)  # (F, K, K)

    def log_pair(self, x, mode=None):
        lf = self.log_unit(x)
        obs = lf[:, :, :, None] + lf[:, :, None, :]
        if mode is None:
            return obs
        n = self.degree
        xv = self._x(x).T
        tail = self._log_tail(xv, 2 * n + 1)  # (F, B, 2n+2)
        a = (self.m[:, None] + self.m[None, :]).long()  # (M, M)
        lcdf = self.log_bmat + tail[..., a + 1]  # (F, B, M, M)
        la = self._log_alpha()
        y = logsumexp(la[:, None, :, None, :] + lcdf[:, :, None], axis=-1)  # (F, B, K_j, M)
        cdf = logsumexp(la[:, None, :, None, :] + y[:, :, None], axis=-1)  # (F, B, K_i, K_j)
        return _select(mode, obs, self.log_gram()[:, None], cdf)

    def bounds(self):
        z = torch.zeros(self.n_leaves, dtype=self.theta.dtype, device=self.theta.device)
        return z, z + 1.0


class BSplineInput(_Input):
    r"""B-spline units on [0, 1] (bounded data, scaled beforehand).

    Clamped knots :math:`t` (``degree + 1`` copies of 0 and 1, ``n_knots - 1``
    uniform interior knots) give :math:`M = n_{\text{knots}} + \text{degree}`
    B-splines :math:`N_m`; each is normalised to a density,
    :math:`b_m = N_m\,(k+1)/(t_{m+k+1} - t_m)` (:math:`k` the degree), and a
    unit is the mixture :math:`f_u(x) = \sum_m \alpha_{um} b_m(x)` with
    :math:`\alpha_u = \mathrm{softmax}(\theta_u)`: a normalised density
    supported on [0, 1]. The basis is evaluated in torch by the Cox-de Boor
    recursion. The integrals that squaring needs are exact: the Gram matrix of
    the basis :math:`B_{mn} = \int b_m b_n` and its partial sums over the
    knot intervals are computed once (Gauss-Legendre with ``degree + 1``
    nodes per interval, exact for the products of two splines, on
    ``scipy.interpolate.BSpline`` basis values); a unit Gram matrix is
    :math:`\alpha B \alpha^\top`, and the integral up to :math:`x` adds the
    same quadrature on the partial interval.

    Parameters
    ----------
    variables : sequence of int
    n_units : int
    n_knots : int, default=32
        Number of knot intervals on [0, 1].
    degree : int, default=3
        Spline degree (3: cubic).
    generator : torch.Generator, optional
    dtype : torch.dtype
    """

    def __init__(self, variables, n_units, n_knots=32, degree=3, generator=None, dtype=torch.float64):
        super().__init__(variables, n_units)
        import numpy as np
        from scipy.interpolate import BSpline

        k, n = int(degree), int(n_knots)
        if k < 0 or n < 1:
            raise ValueError(f"B-spline inputs need degree >= 0 and n_knots >= 1, got {degree}, {n_knots}")
        self.degree, self.n_knots = k, n
        u = np.linspace(0.0, 1.0, n + 1)
        t = np.r_[np.zeros(k), u, np.ones(k)]
        M = n + k
        self.n_basis = M
        scale = (k + 1) / (t[k + 1 :] - t[: M])  # (M,) normalisation to unit integral
        # Gauss-Legendre with k + 1 nodes is exact for polynomials of degree 2k + 1
        z, w = np.polynomial.legendre.leggauss(k + 1)
        h = np.diff(u)
        nodes = u[:-1, None] + h[:, None] * (1 + z[None, :]) / 2  # (n, Q)
        wts = h[:, None] * w[None, :] / 2
        Bq = BSpline.design_matrix(nodes.ravel(), t, k).toarray().reshape(n, k + 1, M) * scale
        unit_int = np.einsum("jq,jqm->jm", wts, Bq)  # (n, M) integral of b_m over interval j
        gram_int = np.einsum("jq,jqm,jqp->jmp", wts, Bq, Bq)  # (n, M, M)
        cum_unit = np.concatenate([np.zeros((1, M)), np.cumsum(unit_int, axis=0)])  # (n+1, M)
        cum_gram = np.concatenate([np.zeros((1, M, M)), np.cumsum(gram_int, axis=0)])
        self.register_buffer("knots", torch.as_tensor(t, dtype=dtype))
        self.register_buffer("basis_scale", torch.as_tensor(scale, dtype=dtype))
        self.register_buffer("gl_nodes", torch.as_tensor((1 + z) / 2, dtype=dtype))
        self.register_buffer("gl_weights", torch.as_tensor(w / 2, dtype=dtype))
        self.register_buffer("cum_unit", torch.as_tensor(cum_unit, dtype=dtype))
        self.register_buffer("cum_gram", torch.as_tensor(cum_gram, dtype=dtype))
        self.theta = nn.Parameter(0.5 * torch.randn(self.n_leaves, n_units, M, generator=generator, dtype=dtype))

    def _alpha(self):
        return softmax(self.theta, axis=-1)  # (F, K, M)

    def basis(self, x):
        """Normalised basis :math:`b_m(x)`, shape ``x.shape + (M,)``; zero
        outside [0, 1] (Cox-de Boor recursion)."""
        t, k = self.knots, self.degree
        x = x[..., None]
        lo, hi = t[:-1], t[1:]
        last = torch.zeros_like(lo, dtype=torch.bool)
        last[k + self.n_knots - 1] = True  # the last non-empty interval is closed on the right
        b = ((x >= lo) & ((x < hi) | (last & (x <= hi)))).to(t.dtype)  # degree 0, (..., n + 2k)
        for d in range(1, k + 1):
            n_b = b.shape[-1] - 1
            t0, t1, t2, t3 = t[:n_b], t[d : d + n_b], t[1 : n_b + 1], t[d + 1 : d + 1 + n_b]
            den_l, den_r = t1 - t0, t3 - t2
            left = torch.where(den_l > 0, (x - t0) / torch.where(den_l > 0, den_l, 1), 0) * b[..., :-1]
            right = torch.where(den_r > 0, (t3 - x) / torch.where(den_r > 0, den_r, 1), 0) * b[..., 1:]
            b = left + right
        return b * self.basis_scale

    def _partial(self, xv):
        """Interval index and Gauss-Legendre nodes / weights on
        :math:`[u_j, x]` for x clamped to [0, 1]."""
        n = self.n_knots
        xc = xv.clamp(0.0, 1.0)
        j = torch.clamp(torch.floor(xc * n), 0, n - 1).long()
        start = j.to(xc.dtype) / n
        span = xc - start
        y = start[..., None] + span[..., None] * self.gl_nodes  # (F, B, Q)
        return j, self.basis(y), span[..., None] * self.gl_weights  # (F, B, Q, M), (F, B, Q)

    def log_unit(self, x, mode=None):
        xv = self._x(x).T  # (F, B)
        al = self._alpha()
        obs = torch.log(torch.einsum("fbm,fkm->fbk", self.basis(xv), al))
        if mode is None:
            return obs
        j, by, wy = self._partial(xv)
        cum = self.cum_unit[j] + torch.einsum("fbq,fbqm->fbm", wy, by)  # int_0^x b_m
        cdf = torch.log(torch.einsum("fbm,fkm->fbk", cum, al))
        return _select(mode, obs, torch.zeros_like(obs[:, :1]), cdf)

    def log_gram(self):
        al = self._alpha()
        return torch.log(torch.einsum("fim,mp,fjp->fij", al, self.cum_gram[-1], al))

    def log_pair(self, x, mode=None):
        lf = self.log_unit(x)
        obs = lf[:, :, :, None] + lf[:, :, None, :]
        if mode is None:
            return obs
        al = self._alpha()
        xv = self._x(x).T
        j, by, wy = self._partial(xv)
        cg = torch.einsum("fim,jmp,fkp->fjik", al, self.cum_gram, al)  # (F, n+1, K, K)
        head = torch.gather(cg, 1, j[:, :, None, None].expand(-1, -1, *cg.shape[2:]))
        a = torch.einsum("fbqm,fkm->fbqk", by, al)  # (F, B, Q, K)
        cdf = torch.log(head + torch.einsum("fbq,fbqi,fbqk->fbik", wy, a, a))
        return _select(mode, obs, self.log_gram()[:, None], cdf)

    def bounds(self):
        z = torch.zeros(self.n_leaves, dtype=self.theta.dtype, device=self.theta.device)
        return z, z + 1.0
