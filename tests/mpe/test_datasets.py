"""The data generators and their population quantities."""

import numpy as np
import pytest
from scipy import stats

from mixstat.datasets import load_mpe_digits, make_sumpe_synthetic, population_kappa


@pytest.mark.parametrize("kappa,expected", [(0.1, 0.180), (0.25, 0.317), (0.5, 0.545),
                                            (0.75, 0.772)])
def test_kappa_max_normal(kappa, expected):
    d = make_sumpe_synthetic(kappa, n_component=10, n_mixture=10, random_state=0)
    assert d.kappa_max == pytest.approx(expected, abs=1e-3)
    # kappa(F|H) = kappa* + (1 - kappa*) kappa(G|H)
    kgh, _ = population_kappa(d.log_g, d.log_h)
    assert d.kappa_max == pytest.approx(kappa + (1 - kappa) * kgh, rel=1e-6)


def test_kappa_gh_closed_form():
    # kappa(N(3, 2^2) | N(0, 1)) = min_x N(x; 3, 4) / N(x; 0, 1), attained at x = -1
    log_g = lambda x: stats.norm.logpdf(x, 3, 2)  # noqa: E731
    log_h = lambda x: stats.norm.logpdf(x, 0, 1)  # noqa: E731
    k, at = population_kappa(log_g, log_h)
    assert at == pytest.approx(-1.0, abs=1e-4)
    assert k == pytest.approx(np.exp(log_g(-1.0) - log_h(-1.0)), rel=1e-8)


def test_irreducible_and_laplace():
    d = make_sumpe_synthetic(0.3, n_component=10, n_mixture=10, scenario="irreducible")
    assert d.kappa_max == pytest.approx(0.3, abs=1e-6)
    lap = make_sumpe_synthetic(0.3, n_component=10, n_mixture=10, distribution="laplace")
    assert 0.3 < lap.kappa_max < 1


def test_sample_sizes_and_source_truncation():
    d = make_sumpe_synthetic(0.25, random_state=0)
    assert (d.y == 1).sum() == 1000 and (d.y == 0).sum() == 1000
    assert d.is_component[d.y == 0].sum() == 250
    assert d.X_source.max() < 2
    src = d.source_posterior(np.array([-1.0]))
    assert src[0] >= d.posterior(np.array([-1.0]))[0]  # conservative source posterior


def test_digits():
    d = load_mpe_digits(0.25, random_state=0)
    assert d.X.shape[1] == 64
    assert 0.15 < d.kappa_star < 0.35
    assert d.kappa_max >= d.kappa_star
    with pytest.raises(ValueError):
        load_mpe_digits(0.95)
