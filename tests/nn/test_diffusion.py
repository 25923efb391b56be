"""Immiscible assignment, GMFlow and Score-of-Mixture against brute force,
closed forms and exact samplers."""

import itertools
import math

import numpy as np
import pytest
import torch

from mixstat.nn import (
    GaussianMixture,
    GMFlowHead,
    flow_matching_loss,
    gm_log_prob,
    gm_mul_gaussian,
    gm_mul_natural,
    gm_to_iso_gaussian,
    gmflow_nll,
    gmflow_ode_step,
    gmflow_sample,
    immiscible_assignment,
    immiscible_noise,
    knn_noise,
    mixture_posterior_mean,
    probabilistic_guidance,
    score_of_mixture_loss,
)

D64 = torch.float64


# ----------------------------------------------------------------- immiscible
@pytest.mark.parametrize("quantize", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_assignment_equals_brute_force(quantize, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 5, generator=g, dtype=D64) * 3 + 1
    noise = torch.randn(7, 5, generator=g, dtype=D64)
    perm = immiscible_assignment(x, noise, quantize=quantize).numpy()
    a, b = 0.1 * x, 0.1 * noise
    if quantize:
        a, b = a.half().float(), b.half().float()
        cost = torch.cdist(a, b).half().double().numpy()
    else:
        cost = torch.cdist(a, b).numpy()
    best = min(cost[np.arange(7), list(p)].sum() for p in itertools.permutations(range(7)))
    assert sorted(perm.tolist()) == list(range(7))
    assert cost[np.arange(7), perm].sum() == pytest.approx(best, abs=1e-12)
    assert cost[np.arange(7), perm].sum() <= np.trace(cost) + 1e-12


def test_assigned_noise_keeps_gaussian_marginal_knn_does_not():
    g = torch.Generator().manual_seed(0)
    slot_la, slot_knn = [], []
    for _ in range(300):
        x = 1.0 + 0.5 * torch.randn(16, 4, generator=g, dtype=D64)
        noise = immiscible_noise(x, generator=g)
        slot_la.append(noise[0])
        slot_knn.append(knn_noise(x, k=4, generator=g)[0])
    la = torch.stack(slot_la).numpy().ravel()
    kn = torch.stack(slot_knn).numpy().ravel()
    se = 1 / math.sqrt(la.size)
    assert abs(la.mean()) < 4 * se and abs(la.var() - 1) < 4 * math.sqrt(2) * se
    assert kn.mean() > 10 * se  # pulled toward the data (mean 1)
    from scipy.stats import kstest

    assert kstest(la, "norm").pvalue > 1e-3
    assert kstest(kn, "norm").pvalue < 1e-6


def test_immiscible_batch_is_a_permutation_and_errors():
    x = torch.randn(10, 3)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(10, 3, generator=g)
    perm = immiscible_assignment(x, noise)
    assert torch.equal(torch.sort(noise[perm], 0).values, torch.sort(noise, 0).values)
    with pytest.raises(ValueError, match="shapes differ"):
        immiscible_assignment(x, noise[:9])
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        immiscible_assignment(bad, noise)
    with pytest.raises(ValueError, match="k must"):
        knn_noise(x, 0)


# ----------------------------------------------------------------- GMFlow
def _data_gm(B):
    means = torch.tensor([[-2.0], [1.5]], dtype=D64).expand(B, 2, 1)
    logw = torch.log(torch.tensor([0.3, 0.7], dtype=D64)).expand(B, 2)
    logstd = torch.log(torch.tensor([0.3, 0.5], dtype=D64)).expand(B, 2)
    return GaussianMixture(means, logw, logstd)


def _exact_u_model(x_t, sigma):
    """Exact GM posterior of u = eps - x0 given x_t for the 1-D data mixture."""
    prior = _data_gm(x_t.shape[0])
    a = 1.0 - sigma
    post = gm_mul_natural(prior, a * x_t / sigma**2, a**2 / sigma**2)
    means = (x_t[:, None, :] - post.means) / sigma[..., None]
    return GaussianMixture(means, post.log_weights, post.log_std - torch.log(sigma))


def _check_data_distribution(x):
    x = x.numpy().ravel()
    se = 1 / math.sqrt(x.size)
    assert abs((x > 0).mean() - 0.7) < 4 * 0.46 * se
    assert abs(x.mean() - 0.45) < 4 * 1.67 * se
    assert abs(x.var() - 2.775) < 0.15


def test_gm_sde_and_ode_with_exact_posterior_reproduce_data():
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(4000, 1, generator=g, dtype=D64)
    _check_data_distribution(gmflow_sample(_exact_u_model, x1, 2, sampler="sde", generator=g))
    # one network call, 512 analytic sub-steps
    ode = gmflow_ode_step(_exact_u_model(x1, torch.ones(4000, 1, dtype=D64)), x1, 1.0, 0.0, 512)
    _check_data_distribution(ode)
    # a moment-matched single Gaussian posterior gets the mass wrong
    def iso_model(x_t, s):
        m, v = gm_to_iso_gaussian(_exact_u_model(x_t, s))
        return GaussianMixture(m[:, None, :], torch.zeros(x_t.shape[0], 1, dtype=D64), 0.5 * torch.log(v))

    ones = torch.ones(4000, 1, dtype=D64)
    single = gmflow_ode_step(iso_model(x1, ones), x1, 1.0, 0.0, 512).numpy()
    assert abs((single > 0).mean() - 0.7) > 0.05


def test_k1_fixed_variance_is_flow_matching():
    torch.manual_seed(0)
    B, C = 6, 3
    mu = torch.randn(B, 1, C, dtype=D64, requires_grad=True)
    gm = GaussianMixture(mu, torch.zeros(B, 1, dtype=D64), torch.zeros(B, 1, dtype=D64))
    u = torch.randn(B, C, dtype=D64)
    nll = gmflow_nll(gm, u)
    fm = flow_matching_loss(mu[:, 0], u)
    assert float(nll.detach()) == pytest.approx(float(fm.detach()) + 0.5 * C * math.log(2 * math.pi))
    (g1,) = torch.autograd.grad(nll, mu)
    (g2,) = torch.autograd.grad(fm, mu)
    torch.testing.assert_close(g1, g2)
    x_t = torch.randn(B, C, dtype=D64)
    step = gmflow_ode_step(gm, x_t, 0.8, 0.5, n_substeps=1)
    torch.testing.assert_close(step, x_t - 0.3 * mu[:, 0].detach())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gm_products_equal_grid_normalised(seed):
    g = torch.Generator().manual_seed(seed)
    K = 3
    gm = GaussianMixture(
        torch.randn(1, K, 1, generator=g, dtype=D64) * 2,
        torch.log_softmax(torch.randn(1, K, generator=g, dtype=D64), -1),
        torch.randn(1, K, generator=g, dtype=D64) * 0.3 - 0.3,
    )
    grid = torch.linspace(-15, 15, 20001, dtype=D64)[:, None]
    dx = float(grid[1] - grid[0])

    def density(m):
        rep = GaussianMixture(m.means.expand(grid.shape[0], -1, -1), m.log_weights.expand(grid.shape[0], -1),
                              m.log_std.expand(grid.shape[0], -1))
        return torch.exp(gm_log_prob(rep, grid))

    base = density(gm)
    m, v = torch.randn(1, 1, generator=g, dtype=D64), torch.rand(1, 1, generator=g, dtype=D64) + 0.2
    prod = gm_mul_gaussian(gm, m, v)
    ref = base * torch.exp(-0.5 * (grid[:, 0] - m[0, 0]) ** 2 / v[0, 0])
    torch.testing.assert_close(density(prod), ref / (ref.sum() * dx), atol=1e-8, rtol=1e-6)
    eta, lam = torch.randn(1, 1, generator=g, dtype=D64), torch.zeros(1, 1, dtype=D64)
    tilt = gm_mul_natural(gm, eta, lam)
    ref = base * torch.exp(eta[0, 0] * grid[:, 0])
    torch.testing.assert_close(density(tilt), ref / (ref.sum() * dx), atol=1e-8, rtol=1e-6)
    # natural and standard forms agree
    same = gm_mul_natural(gm, m / v, 1 / v)
    for a, b in zip(same, prod, strict=True):
        torch.testing.assert_close(a, b)


def test_probabilistic_guidance():
    torch.manual_seed(0)
    B, K, C = 4, 5, 3
    cond = GaussianMixture(torch.randn(B, K, C, dtype=D64), torch.log_softmax(torch.randn(B, K, dtype=D64), -1),
                           torch.zeros(B, 1, dtype=D64) - 0.5)
    uncond = GaussianMixture(torch.randn(B, K, C, dtype=D64), cond.log_weights, cond.log_std)
    same = probabilistic_guidance(cond, uncond, 0.0)
    for a, b in zip(same, cond, strict=True):
        torch.testing.assert_close(a, b)
    # K = 1: the guided Gaussian is exactly N(m_c + b, (1 - w^2) v_c) with |b|^2 / C = w^2 v_c
    c1 = GaussianMixture(cond.means[:, :1], torch.zeros(B, 1, dtype=D64), cond.log_std)
    w = 0.6
    out = probabilistic_guidance(c1, uncond, w)
    m_c, v_c = gm_to_iso_gaussian(c1)
    m_g, v_g = gm_to_iso_gaussian(out)
    torch.testing.assert_close(v_g, v_c * (1 - w**2))
    bias = m_g - m_c
    torch.testing.assert_close((bias**2).mean(-1, keepdim=True), w**2 * v_c)
    torch.testing.assert_close((bias * m_c).sum(-1), torch.zeros(B, dtype=D64), atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="guidance scale"):
        probabilistic_guidance(cond, uncond, 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gmflow_head_trains(dtype):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 32, dtype=dtype), torch.nn.SiLU())
    head = GMFlowHead(32, 2, 4, dtype=dtype)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    x0 = torch.randn(256, 2, dtype=dtype).sign() * 2 + 0.1 * torch.randn(256, 2, dtype=dtype)
    losses = []
    for _ in range(40):
        eps = torch.randn_like(x0)
        s = torch.rand(256, 1, dtype=dtype)
        x_t = (1 - s) * x0 + s * eps
        loss = gmflow_nll(head(net(torch.cat([x_t, s], 1))), eps - x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3
    gm = head(net(torch.randn(7, 3, dtype=dtype)))
    assert gm.means.shape == (7, 4, 2) and gm.means.dtype == dtype
    torch.testing.assert_close(torch.logsumexp(gm.log_weights, -1), torch.zeros(7, dtype=dtype))
    with pytest.raises(ValueError, match="target"):
        gmflow_nll(gm, torch.zeros(7, 3, dtype=dtype))


# ----------------------------------------------------------------- Score-of-Mixture
def _gauss_posterior(x_t, sigma, m, s):
    mean = (s**2 * x_t + sigma**2 * m) / (s**2 + sigma**2)
    logp = -0.5 * (math.log(2 * math.pi) + torch.log(s**2 + sigma**2) + (x_t - m) ** 2 / (s**2 + sigma**2))
    return mean, logp


def test_mixture_denoiser_is_responsibility_weighted_tweedie():
    x_t = torch.linspace(-4, 4, 41, dtype=D64)
    sigma, alpha = torch.tensor(0.8, dtype=D64), 0.3
    mp, sp, mq, sq = 1.0, torch.tensor(0.5, dtype=D64), -1.5, torch.tensor(0.9, dtype=D64)
    ep, lp = _gauss_posterior(x_t, sigma, mp, sp)
    eq, lq = _gauss_posterior(x_t, sigma, mq, sq)
    d = mixture_posterior_mean(alpha, lp, lq, ep[:, None], eq[:, None])[:, 0]
    # quadrature: E[x0 | x_t] under alpha p + (1 - alpha) q
    x0 = torch.linspace(-12, 12, 40001, dtype=D64)
    prior = alpha * torch.exp(-0.5 * (x0 - mp) ** 2 / sp**2) / sp + (1 - alpha) * torch.exp(
        -0.5 * (x0 - mq) ** 2 / sq**2
    ) / sq
    lik = torch.exp(-0.5 * (x_t[:, None] - x0[None, :]) ** 2 / sigma**2)
    ref = (prior * lik * x0).sum(1) / (prior * lik).sum(1)
    torch.testing.assert_close(d, ref, atol=1e-9, rtol=1e-9)


def test_score_of_mixture_loss_is_minimised_by_the_mixture_denoiser():
    mp, sp, mq, sq = 1.0, 0.5, -1.5, 0.9
    sigma, alpha = 0.8, 0.3

    def d_star(x_t, s, a):
        ep, lp = _gauss_posterior(x_t, s, mp, torch.tensor(sp, dtype=D64))
        eq, lq = _gauss_posterior(x_t, s, mq, torch.tensor(sq, dtype=D64))
        return mixture_posterior_mean(a[:, 0], lp[:, 0], lq[:, 0], ep, eq)

    n = 40000
    g = torch.Generator().manual_seed(0)
    x_real = mp + sp * torch.randn(n, 1, generator=g, dtype=D64)
    x_fake = mq + sq * torch.randn(n, 1, generator=g, dtype=D64)

    def loss(delta):
        gen = torch.Generator().manual_seed(1)  # common random numbers
        den = lambda x, s, a: d_star(x, s, a) + delta * torch.tanh(x)  # noqa: E731
        return float(score_of_mixture_loss(den, x_real, x_fake, sigma, alpha, generator=gen))

    base = loss(0.0)
    assert loss(0.2) > base and loss(-0.2) > base
    # the responsibility-free (single-distribution) denoisers are worse
    gen = torch.Generator().manual_seed(1)
    only_p = lambda x, s, a: _gauss_posterior(x, s, mp, torch.tensor(sp, dtype=D64))[0]  # noqa: E731
    assert float(score_of_mixture_loss(only_p, x_real, x_fake, sigma, alpha, generator=gen)) > base
    with pytest.raises(ValueError, match="alpha"):
        score_of_mixture_loss(only_p, x_real, x_fake, sigma, 1.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_samplers_and_guidance_run_in_both_dtypes(dtype, sampler):
    g = torch.Generator().manual_seed(0)
    means = torch.randn(3, 2, generator=g).to(dtype)

    def model(x_t, s, shift=0.0):
        B = x_t.shape[0]
        return GaussianMixture(x_t[:, None, :] - means - shift, torch.full((B, 3), -math.log(3), dtype=dtype),
                               torch.full((B, 1), -1.0, dtype=dtype))

    x = torch.randn(50, 2, generator=g).to(dtype)
    out = gmflow_sample(model, x, 4, sampler=sampler, n_substeps=3, generator=g,
                        guidance=(lambda x_t, s: model(x_t, s, 0.5), 0.3))
    assert out.dtype == dtype and out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="sampler"):
        gmflow_sample(model, x, 4, sampler="heun")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_score_of_mixture_loss_dtypes(dtype):
    den = torch.nn.Linear(1, 1, dtype=dtype)
    x = torch.randn(8, 1, dtype=dtype)
    loss = score_of_mixture_loss(lambda x_t, s, a: den(x_t), x, x + 1, torch.rand(8, dtype=dtype) + 0.1,
                                 torch.rand(8, dtype=dtype))
    loss.backward()
    assert loss.dtype == dtype and den.weight.grad is not None
