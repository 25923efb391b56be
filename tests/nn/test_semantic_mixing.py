"""MagicMix: its reductions to plain conditional sampling and the layout phase
keeping the source's low spatial frequencies, on an exact digits teacher."""

import pytest
import torch

from mixstat.nn import (
    ConditionalDenoiserMLP,
    GaussianMixtureDenoiser,
    denoiser_sample,
    load_digits_8x8,
    low_pass_8x8,
    magic_mix,
    noised_source_sample,
)


@pytest.fixture(scope="module")
def digits_teacher():
    """Exact denoiser of a mixture with one narrow Gaussian on each of 20
    training digits per class (a memorising teacher: known posterior means)."""
    X, y = load_digits_8x8()
    means = torch.stack([X[y == c][:20] for c in range(10)]).double()
    return GaussianMixtureDenoiser(means, 0.05), X[200:].double(), y[200:]


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_nu_one_or_empty_layout_phase_is_plain_conditional_sampling(eta):
    torch.manual_seed(0)
    net = ConditionalDenoiserMLP(64, 10, 32, 2).double()
    x_src = torch.randn(5, 64, dtype=torch.float64)
    c = torch.tensor([1, 3, 5, 7, 9])

    def run(fn, **kw):
        return fn(
            net,
            x_src,
            c,
            n_steps=20,
            eta=eta,
            generator=torch.Generator().manual_seed(4),
            **kw,
        )

    ref = run(noised_source_sample, t_start=0.6)
    for kw in (
        {"nu": 1.0, "k_min": 0.3},
        {"nu": 1.0, "k_min": 0.0},
        {"nu": 0.3, "k_min": 0.6},
    ):
        torch.testing.assert_close(run(magic_mix, k_max=0.6, **kw), ref, rtol=0, atol=0)
    # k_max = 1 as well: plain conditional sampling from pure noise, same noise
    out = run(magic_mix, k_max=1.0, k_min=1.0, nu=0.5)
    g = torch.Generator().manual_seed(4)
    x_start = torch.randn(5, 64, generator=g, dtype=torch.float64)
    steps = [torch.randn(5, 64, generator=g, dtype=torch.float64) for _ in range(20)]
    plain = denoiser_sample(net, c, 20, x_start=x_start, eta=eta, step_noises=steps)
    torch.testing.assert_close(out, plain, rtol=0, atol=0)


def test_nu_below_one_changes_the_result():
    torch.manual_seed(0)
    net = ConditionalDenoiserMLP(64, 10, 32, 2).double()
    x_src = torch.randn(3, 64, dtype=torch.float64)
    c = torch.tensor([0, 1, 2])
    a = magic_mix(
        net, x_src, c, nu=0.5, n_steps=10, generator=torch.Generator().manual_seed(0)
    )
    b = noised_source_sample(
        net,
        x_src,
        c,
        t_start=0.6,
        n_steps=10,
        generator=torch.Generator().manual_seed(0),
    )
    assert not torch.allclose(a, b)


def test_layout_phase_keeps_the_sources_low_frequencies(digits_teacher):
    teacher, X, y = digits_teacher
    src = X[:40]
    content = (y[:40] + 3) % 10  # a different class as content
    g = torch.Generator().manual_seed(0)
    mixed, layout = magic_mix(
        teacher,
        src,
        content,
        k_max=0.7,
        k_min=0.4,
        nu=0.5,
        n_steps=30,
        generator=g,
        return_layout=True,
    )
    plain = denoiser_sample(
        teacher, content, 30, shape=(64,), generator=torch.Generator().manual_seed(0)
    )

    def lowdist(a):
        return float(((low_pass_8x8(a) - low_pass_8x8(src)) ** 2).sum(-1).mean())

    # at the end of the layout phase the state is (1 - k_min) x_src + noise-like,
    # so compare its low frequencies after undoing the signal scale
    assert lowdist(mixed) < 0.8 * lowdist(plain)  # measured 0.27 vs 0.41
    assert lowdist(layout / (1 - 0.4)) < 0.5 * lowdist(plain)  # measured 0.04
    # the content is the new class: the output sits at one of its digits
    d2 = ((mixed[:, None, :] - teacher.means.reshape(1, 200, 64)) ** 2).sum(-1)
    assert torch.equal(d2.argmin(1) // 20, content)


def test_magic_mix_validation():
    net = ConditionalDenoiserMLP(64, 10, 8, 1)
    x = torch.zeros(2, 64)
    c = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError):
        magic_mix(net, x, c, k_max=0.3, k_min=0.5)
    with pytest.raises(ValueError):
        magic_mix(net, x, c, nu=1.5)
    with pytest.raises(ValueError):
        magic_mix(net, x, c, layout_noise="other")
