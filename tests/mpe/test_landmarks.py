"""Low-rank kernel factors of KernelMeanMPE: uniform Nystroem landmarks,
greedy pivoted Cholesky and randomly pivoted Cholesky."""

import numpy as np
import pytest

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import KernelMeanMPE
from mixstat.mpe._kernel_mean import (
    nystroem_features,
    pivoted_cholesky_features,
    rbf_kernel,
)

PIVOTING = ["greedy", "random"]


def _residual_trace(X, Z, width):
    return float(np.trace(rbf_kernel(X, X, width) - Z @ Z.T))


@pytest.mark.parametrize("pivoting", PIVOTING)
def test_pivoted_residual_below_uniform_when_the_spectrum_decays(pivoting):
    # 1-D data: the RBF spectrum decays fast; pivots that follow the residual
    # reach a far smaller residual trace than uniform landmarks at equal rank
    X = make_sumpe_synthetic(0.25, n_component=300, n_mixture=300, random_state=0).X
    w, r = 2.0, 8
    Zu = nystroem_features(X, w, r, np.random.RandomState(0))
    Zp, tr = pivoted_cholesky_features(X, w, max_rank=r, pivoting=pivoting, random_state=0)
    assert Zp.shape == (600, r)
    # the returned residual trace is tr(K - Z Z^T)
    assert tr == pytest.approx(_residual_trace(X, Zp, w), rel=1e-6, abs=1e-9)
    assert tr < 0.1 * _residual_trace(X, Zu, w)  # measured: 0.38 / 0.14-0.19 vs 7.2


@pytest.mark.parametrize("pivoting", PIVOTING)
def test_pivoted_factor_is_exact_at_the_rank_of_the_data(pivoting):
    # 15 distinct points, each 6 times: the kernel matrix has rank 15
    rng = np.random.default_rng(1)
    X = np.repeat(rng.normal(size=(15, 3)), 6, axis=0)
    K = rbf_kernel(X, X, 1.3)
    Z, tr = pivoted_cholesky_features(X, 1.3, max_rank=15, pivoting=pivoting, random_state=2)
    assert Z.shape == (90, 15)
    assert np.abs(K - Z @ Z.T).max() < 1e-10 and tr < 1e-8
    # asked for more, it stops at the rank (the residual diagonal is 0)
    Z2, _ = pivoted_cholesky_features(X, 1.3, max_rank=40, pivoting=pivoting, random_state=2)
    assert Z2.shape[1] == 15


@pytest.mark.parametrize("pivoting", PIVOTING)
def test_pivoted_factor_is_nystroem_on_its_pivots(pivoting):
    # Z Z^T = K_{:,S} K_{S,S}^{-1} K_{S,:} for the pivot set S; the residual is PSD
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 4))
    w, r = 1.5, 12
    Z, _ = pivoted_cholesky_features(X, w, max_rank=r, pivoting=pivoting, random_state=5)
    K = rbf_kernel(X, X, w)
    R = K - Z @ Z.T
    S = np.flatnonzero(np.abs(np.diag(R)) < 1e-10)  # the pivots' residual is 0
    assert len(S) == r
    nys = K[:, S] @ np.linalg.solve(K[np.ix_(S, S)], K[S, :])
    assert np.abs(nys - Z @ Z.T).max() < 1e-8
    assert np.linalg.eigvalsh(R).min() > -1e-9


def test_greedy_pivot_is_the_largest_residual_and_random_is_reproducible():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    Z1, _ = pivoted_cholesky_features(X, 1.0, max_rank=2)
    # first pivot: all diagonals are 1, argmax takes index 0; the second is
    # the point least correlated with it (largest 1 - k(x, x_0)^2)
    k0 = rbf_kernel(X, X[:1], 1.0)[:, 0]
    assert np.allclose(Z1[:, 0], k0)
    j = int(np.argmax(1 - k0 ** 2))
    assert Z1[j, 1] == pytest.approx(np.sqrt(1 - k0[j] ** 2))
    a, _ = pivoted_cholesky_features(X, 1.0, max_rank=5, pivoting="random", random_state=3)
    b, _ = pivoted_cholesky_features(X, 1.0, max_rank=5, pivoting="random", random_state=3)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="pivoting"):
        pivoted_cholesky_features(X, 1.0, pivoting="max")


@pytest.mark.parametrize("landmarks", ["pivoted", "rpcholesky", "uniform"])
def test_low_rank_estimates_agree_with_exact(landmarks):
    d = make_sumpe_synthetic(0.25, n_component=400, n_mixture=400, random_state=3)
    ex = KernelMeanMPE(approximation="exact", random_state=0).fit(d.X, d.y)
    lr = KernelMeanMPE(approximation="nystroem", n_landmarks=60, landmarks=landmarks,
                       kernel_width=ex.kernel_width_, random_state=0).fit(d.X, d.y)
    assert lr.approximation_ == "nystroem" and lr.rank_ <= 60
    assert lr.residual_trace_ / 800 < 1e-3
    assert abs(lr.km1_ - ex.km1_) < 0.01 and abs(lr.km2_ - ex.km2_) < 0.01


def test_low_rank_agrees_with_exact_in_several_dimensions():
    # 4-D, N = 400: a rank-250 pivoted factor leaves little kernel mass out and
    # both estimates stay close to the exact ones
    rng = np.random.default_rng(7)
    shift = np.r_[2.0, 0, 0, 0]
    Xh = rng.normal(size=(200, 4))
    Xf = np.r_[rng.normal(size=(80, 4)), rng.normal(size=(120, 4)) + shift]
    X, y = np.r_[Xh, Xf], np.r_[np.ones(200), np.zeros(200)]
    ex = KernelMeanMPE(approximation="exact", random_state=0).fit(X, y)
    for rule in ("pivoted", "rpcholesky"):
        lr = KernelMeanMPE(approximation="nystroem", n_landmarks=250, landmarks=rule,
                           kernel_width=ex.kernel_width_, random_state=0).fit(X, y)
        assert lr.residual_trace_ / 400 < 0.01
        assert abs(lr.km1_ - ex.km1_) < 0.03 and abs(lr.km2_ - ex.km2_) < 0.03


def test_bad_landmark_rule():
    d = make_sumpe_synthetic(0.25, n_component=50, n_mixture=50, random_state=0)
    with pytest.raises(ValueError, match="landmarks"):
        KernelMeanMPE(landmarks="kmeans").fit(d.X, d.y)
