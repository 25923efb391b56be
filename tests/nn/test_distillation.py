"""SiD, multi-student and multi-CFG distillation, and the tiny teachers, against
closed forms (Gaussian scores), two ways of computing the same thing and small
CPU trainings with fixed seeds."""

import pytest
import torch

from mixstat.nn import (
    ConditionalDenoiserMLP,
    GaussianMixtureDenoiser,
    MultiStudentGenerator,
    SiDGenerator,
    class_mixture_2d_means,
    ddim_step,
    denoiser_sample,
    energy_distance,
    flow_noise,
    guided_denoise,
    make_class_mixture_2d,
    multi_cfg_loss,
    partition_conditions,
    sid_distill,
    sid_fake_loss,
    sid_generator_loss,
    train_multi_cfg_student,
)
from mixstat.primitives import logsumexp, normal_log_density

D64 = torch.float64


def gauss(mean, std):
    """Single-class, single-mode teacher: N(mean, std^2 I)."""
    return GaussianMixtureDenoiser(
        torch.as_tensor(mean, dtype=D64).reshape(1, 1, -1), std
    )


# ------------------------------------------------------------------ teachers
def test_mixture_denoiser_is_tweedie_of_the_noised_density():
    means = class_mixture_2d_means(3, 2).to(D64)
    s = 0.3
    den = GaussianMixtureDenoiser(means, s)
    g = torch.Generator().manual_seed(0)
    for t in (0.2, 0.6, 0.95):
        for c in (0, 2, 3):  # 3 = null class: the marginal mixture
            x = (2 * torch.randn(16, 2, generator=g, dtype=D64)).requires_grad_(True)
            mu = means[c] if c < 3 else means.reshape(-1, 2)
            v = (1 - t) ** 2 * s**2 + t**2
            logp = logsumexp(
                normal_log_density(
                    x[:, None, :], (1 - t) * mu, torch.tensor(v, dtype=D64)
                ).sum(-1),
                axis=1,
            )
            (score,) = torch.autograd.grad(logp.sum(), x)
            d0 = den(x.detach(), t, torch.full((16,), c))
            # Tweedie: E[x0|x_t] = (x_t + t^2 score) / (1 - t)
            torch.testing.assert_close(
                d0, (x.detach() + t**2 * score) / (1 - t), atol=1e-10, rtol=1e-10
            )


def test_mlp_denoiser_is_identity_at_t0_and_ddim_step_is_exact_on_true_x0():
    torch.manual_seed(0)
    net = ConditionalDenoiserMLP(3, 2, 16, 2)
    x = torch.randn(5, 3)
    torch.testing.assert_close(net(x, 0.0, torch.zeros(5, dtype=torch.long)), x)
    x0, eps = torch.randn(5, 3), torch.randn(5, 3)
    x_t = flow_noise(x0, 0.7, eps)
    torch.testing.assert_close(ddim_step(x_t, x0, 0.7, 0.3), flow_noise(x0, 0.3, eps))
    torch.testing.assert_close(
        ddim_step(x_t, x0, 0.7, 0.3, eta=1.0, noise=eps), flow_noise(x0, 0.3, eps)
    )


def test_guided_denoise_is_linear_extrapolation():
    den = GaussianMixtureDenoiser(class_mixture_2d_means(2, 2).to(D64), 0.2)
    x = torch.randn(6, 2, dtype=D64)
    c = torch.tensor([0, 1, 0, 1, 0, 1])
    d_c, d_u = den(x, 0.5, c), den(x, 0.5, torch.full_like(c, 2))
    w = torch.linspace(0, 3, 6, dtype=D64)
    torch.testing.assert_close(
        guided_denoise(den, x, 0.5, c, w), (1 + w[:, None]) * d_c - w[:, None] * d_u
    )
    torch.testing.assert_close(guided_denoise(den, x, 0.5, c, 0.0), d_c)


# ------------------------------------------------------------------ SiD
def test_sid_loss_two_forms_agree():
    g = torch.Generator().manual_seed(1)
    teacher, fake = gauss([1.0, -0.5], 0.5), gauss([0.0, 0.3], 0.8)
    x_g = torch.randn(64, 2, generator=g, dtype=D64)
    t = torch.rand(64, generator=g, dtype=D64) * 0.9 + 0.05
    noise = torch.randn(64, 2, generator=g, dtype=D64)
    c = torch.zeros(64, dtype=torch.long)
    for alpha in (0.5, 1.0, 1.2):
        loss, (fr, ff, x_t) = sid_generator_loss(
            x_g,
            teacher,
            fake,
            t,
            c,
            noise=noise,
            alpha=alpha,
            normalize=False,
            return_parts=True,
        )
        d = fr - ff
        other = ((1 - alpha) * (d * d).sum(-1) + (d * (ff - x_g)).sum(-1)).mean()
        torch.testing.assert_close(loss, other)
        torch.testing.assert_close(x_t, (1 - t[:, None]) * x_g + t[:, None] * noise)
    # normalised form: divide each term by mean |x_g - f_phi|
    ln = sid_generator_loss(x_g, teacher, fake, t, c, noise=noise, alpha=1.2)
    n = (x_g - fr).abs().mean(-1)
    torch.testing.assert_close(ln, ((d * ((fr - x_g) - 1.2 * d)).sum(-1) / n).mean())


def _fisher(theta, t, mu_p, s_p, s_q):
    """E_{x_t ~ q_theta,t} ||f_p(x_t) - f_q(x_t)||^2 in closed form (Gaussians)."""
    vp, vq = (1 - t) ** 2 * s_p**2 + t**2, (1 - t) ** 2 * s_q**2 + t**2
    ap, aq = (1 - t) * s_p**2 / vp, (1 - t) * s_q**2 / vq
    mean = (
        (ap - aq) * (1 - t) * theta
        + (1 - ap * (1 - t)) * mu_p
        - (1 - aq * (1 - t)) * theta
    )
    return (mean**2).sum() + (ap - aq) ** 2 * vq * theta.numel()


def test_sid_score_identity_value_and_fisher_gradient():
    """Exact fake score: E[L] = (1 - alpha) E||f_p - f_q||^2, and for alpha = 1/2
    the generator gradient (fake frozen) is half the Fisher-divergence gradient."""
    mu_p, s_p, s_q, t = torch.tensor([1.0, -0.5], dtype=D64), 0.5, 0.8, 0.5
    theta = torch.tensor([-0.3, 0.4], dtype=D64, requires_grad=True)
    teacher, fake = gauss(mu_p, s_p), gauss(theta.detach(), s_q)
    g = torch.Generator().manual_seed(0)
    N = 400_000
    z = torch.randn(N, 2, generator=g, dtype=D64)
    noise = torch.randn(N, 2, generator=g, dtype=D64)
    x_g = theta + s_q * z
    tt = torch.full((N,), t, dtype=D64)
    c = torch.zeros(N, dtype=torch.long)
    F = _fisher(theta, t, mu_p, s_p, s_q)
    for alpha in (0.0, 1.2):
        L = sid_generator_loss(
            x_g, teacher, fake, tt, c, noise=noise, alpha=alpha, normalize=False
        )
        assert float(L.detach()) == pytest.approx(
            (1 - alpha) * float(F.detach()), rel=0.02, abs=2e-3
        )
    L = sid_generator_loss(
        x_g, teacher, fake, tt, c, noise=noise, alpha=0.5, normalize=False
    )
    (grad,) = torch.autograd.grad(L, theta)
    (gradF,) = torch.autograd.grad(F, theta)
    torch.testing.assert_close(grad, 0.5 * gradF, rtol=0.03, atol=3e-3)


def test_sid_gradient_vanishes_when_generator_matches_teacher():
    theta = torch.tensor([1.0, -0.5], dtype=D64, requires_grad=True)
    teacher, fake = gauss([1.0, -0.5], 0.5), gauss([1.0, -0.5], 0.5)
    g = torch.Generator().manual_seed(3)
    x_g = theta + 0.5 * torch.randn(32, 2, generator=g, dtype=D64)
    t = torch.rand(32, generator=g, dtype=D64)
    L = sid_generator_loss(
        x_g,
        teacher,
        fake,
        t,
        torch.zeros(32, dtype=torch.long),
        noise=torch.randn(32, 2, generator=g, dtype=D64),
    )
    (grad,) = torch.autograd.grad(L, theta)
    assert float(L.detach()) == 0.0 and torch.all(grad == 0)


def test_sid_fake_loss_minimiser_is_the_generator_posterior_mean():
    """Averaged over the noise, the DSM loss is smaller at the exact posterior mean
    of the generator's distribution than at a perturbed one."""
    g = torch.Generator().manual_seed(0)
    N = 50_000
    x_g = torch.tensor([0.2, 0.1], dtype=D64) + 0.7 * torch.randn(
        N, 2, generator=g, dtype=D64
    )
    t = torch.rand(N, generator=g, dtype=D64) * 0.9 + 0.05
    noise = torch.randn(N, 2, generator=g, dtype=D64)
    c = torch.zeros(N, dtype=torch.long)
    exact = gauss([0.2, 0.1], 0.7)
    best = sid_fake_loss(exact, x_g, t, c, noise=noise)
    for wrong in (gauss([0.4, 0.1], 0.7), gauss([0.2, 0.1], 0.6)):
        assert float(sid_fake_loss(wrong, x_g, t, c, noise=noise)) > float(best)


def test_few_step_generator_matches_manual_unrolling():
    torch.manual_seed(0)
    net = ConditionalDenoiserMLP(2, 2, 16, 2)
    G = SiDGenerator(net, (1.0, 0.6, 0.3), shape=(2,))
    z, c = torch.randn(8, 2), torch.randint(0, 2, (8,))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = G(z, c, 3, generator=g1)
    x = net(z, 1.0, c)
    x = net(0.4 * x + 0.6 * torch.randn(8, 2, generator=g2), 0.6, c)
    x = net(0.7 * x + 0.3 * torch.randn(8, 2, generator=g2), 0.3, c)
    torch.testing.assert_close(out, x)
    torch.testing.assert_close(G(z, c, 1), net(z, 1.0, c))
    with pytest.raises(ValueError):
        SiDGenerator(net, (0.5, 0.7))


def test_sid_distills_a_one_step_generator_on_a_known_mixture():
    torch.manual_seed(0)
    means = class_mixture_2d_means(2, 1, radius=1.5)
    teacher = GaussianMixtureDenoiser(means, 0.3)
    G = SiDGenerator(
        ConditionalDenoiserMLP(2, 2, 32, 2, sigma_data=1.0), (1.0,), shape=(2,)
    )
    fake = ConditionalDenoiserMLP(2, 2, 32, 2, sigma_data=1.0)
    c = torch.arange(2).repeat(500)
    x_ref, _ = make_class_mixture_2d(
        1000,
        2,
        1,
        radius=1.5,
        std=0.3,
        labels=c,
        generator=torch.Generator().manual_seed(1),
    )
    before = energy_distance(
        G.sample(c, generator=torch.Generator().manual_seed(2)), x_ref
    )
    sid_distill(teacher, G, fake=fake, steps=300, batch_size=128, lr=2e-3, seed=0)
    out = G.sample(c, generator=torch.Generator().manual_seed(2))
    after = energy_distance(out, x_ref)
    assert after < 0.2 * before
    for k in range(2):  # each class lands on its own mode
        assert float((out[c == k].mean(0) - means[k, 0]).norm()) < 0.25


# ------------------------------------------------------------------ multi-student
def test_partition_conditions():
    a = partition_conditions(10, 3)
    assert a.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    feats = torch.tensor([[0.0, 0], [5, 5], [0.1, 0], [5, 5.1], [-5, 5], [-5, 5.2]])
    lab = partition_conditions(6, 3, features=feats, method="kmeans")
    assert (
        lab[0] == lab[2]
        and lab[1] == lab[3]
        and lab[4] == lab[5]
        and len(set(lab.tolist())) == 3
    )
    with pytest.raises(ValueError):
        partition_conditions(3, 4)


class _Const(torch.nn.Module):
    def __init__(self, v):
        super().__init__()
        self.v = float(v)

    def forward(self, z, cond, *a, **k):
        return torch.full_like(z, self.v) + 0 * cond[:, None]


def test_multi_student_routes_each_condition_to_its_student():
    assign = partition_conditions(6, 3)
    msg = MultiStudentGenerator([_Const(k) for k in range(3)], assign)
    cond = torch.tensor([5, 0, 3, 2, 1, 4, 4])
    out = msg(torch.zeros(7, 2), cond)
    torch.testing.assert_close(out[:, 0], assign[cond].to(out.dtype))
    assert msg.route(cond).tolist() == assign[cond].tolist()
    # with real generators: the same as calling each student on its rows
    torch.manual_seed(0)
    students = [
        SiDGenerator(ConditionalDenoiserMLP(2, 6, 8, 1), shape=(2,)) for _ in range(3)
    ]
    msg = MultiStudentGenerator(students, assign)
    z = torch.randn(7, 2)
    out = msg(z, cond)
    for i in range(7):
        torch.testing.assert_close(
            out[i], students[int(assign[cond[i]])](z[i : i + 1], cond[i : i + 1])[0]
        )


# ------------------------------------------------------------------ multi-CFG
class _Counter(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, *a):
        self.calls += 1
        return self.net(*a)


def test_multi_cfg_loss_zero_at_guided_teacher_and_data_term():
    teacher = GaussianMixtureDenoiser(class_mixture_2d_means(3, 2).to(D64), 0.2)

    def exact(x, t, c, w):
        return guided_denoise(teacher, x, t, c, w)

    g = torch.Generator().manual_seed(0)
    x0, c = make_class_mixture_2d(32, 3, 2, std=0.2, generator=g)
    x0 = x0.to(D64)
    t = torch.rand(32, generator=g, dtype=D64) * 0.9 + 0.05
    w = 4 * torch.rand(32, generator=g, dtype=D64)
    x_t = flow_noise(x0, t, torch.randn(32, 2, generator=g, dtype=D64))
    assert float(multi_cfg_loss(exact, teacher, x_t, t, c, w)) == 0.0
    mask = torch.arange(32) % 2 == 0
    got = multi_cfg_loss(
        exact,
        teacher,
        x_t,
        t,
        c,
        w,
        x0=x0,
        data_mask=mask,
        data_weight=0.7,
        weighting="none",
    )
    want = (0.7 * mask * ((teacher(x_t, t, c) - x0) ** 2).sum(-1)).mean()
    torch.testing.assert_close(got, want)


def test_multi_cfg_student_reproduces_guided_teacher_with_half_the_calls():
    torch.manual_seed(0)
    teacher = GaussianMixtureDenoiser(class_mixture_2d_means(3, 2), 0.2)
    x, y = make_class_mixture_2d(
        4000, 3, 2, std=0.2, generator=torch.Generator().manual_seed(0)
    )
    student = ConditionalDenoiserMLP(2, 3, 64, 3, guidance_input=True)
    train_multi_cfg_student(
        student,
        teacher,
        x,
        y,
        steps=600,
        batch_size=256,
        lr=3e-3,
        scale_range=(0.0, 3.0),
        data_fraction=0.0,
        seed=0,
    )
    g = torch.Generator().manual_seed(1)
    x0, c = make_class_mixture_2d(2000, 3, 2, std=0.2, generator=g)
    t = 0.1 + 0.8 * torch.rand(2000, generator=g)
    x_t = flow_noise(x0, t, torch.randn(2000, 2, generator=g))
    with torch.no_grad():
        for w in (0.0, 1.5, 3.0):
            target = guided_denoise(teacher, x_t, t, c, w)
            err = ((student(x_t, t, c, w) - target) ** 2).sum(-1).mean()
            ignore_w = (
                ((student(x_t, t, c, 0.0) - target) ** 2).sum(-1).mean() if w else err
            )
            spread = ((target - target.mean(0)) ** 2).sum(-1).mean()
            assert float(err) < 0.05 * float(spread)
            if w:
                assert float(err) < 0.25 * float(ignore_w)  # the student uses w
    # one call per step against two for the guided teacher
    ct, cs = _Counter(teacher), _Counter(student)
    c = torch.zeros(4, dtype=torch.long)
    denoiser_sample(ct, c, 10, shape=(2,), guidance=2.0, null_class=3)
    denoiser_sample(lambda x, t, c: cs(x, t, c, 2.0), c, 10, shape=(2,))
    assert (ct.calls, cs.calls) == (20, 10)


def test_teacher_score_matching_fits_the_teacher_on_its_classes():
    torch.manual_seed(0)
    teacher = GaussianMixtureDenoiser(class_mixture_2d_means(4, 1), 0.2)
    x, y = make_class_mixture_2d(
        2000, 4, 1, std=0.2, generator=torch.Generator().manual_seed(0)
    )
    from mixstat.nn import teacher_score_matching

    net = ConditionalDenoiserMLP(2, 4, 32, 2)
    losses = teacher_score_matching(
        net, teacher, x, y, classes=[1, 2], steps=300, seed=0
    )
    assert losses[-1] < 0.1 * losses[0]
    with pytest.raises(ValueError):
        teacher_score_matching(net, teacher, x[:0], y[:0], steps=1)
