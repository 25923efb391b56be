"""ROC, BBE, EN, DEDPUL, TIcE: known answers on scores and data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixstat.datasets import make_sumpe_synthetic
from mixstat.mpe import (
    BestBinMPE,
    DEDPULMPE,
    ElkanNotoMPE,
    ROCMPE,
    TIcEMPE,
    bbe_proportion,
    dedpul_proportion,
    roc_proportion,
)
from mixstat.mpe._classifier import _label_frequency_to_kappa


def _anchor_scores(kappa, n, rng):
    """Scores with an anchor set: H is uniform on [0.5, 1], G uniform on
    [0, 0.5]: kappa(F|H) = kappa, the top tail has ratio exactly kappa."""
    s_h = rng.uniform(0.5, 1, n)
    n_h = int(kappa * n)
    s_f = np.r_[rng.uniform(0.5, 1, n_h), rng.uniform(0, 0.5, n - n_h)]
    return s_h, s_f


@pytest.mark.parametrize("kappa", [0.2, 0.6])
def test_score_estimators_recover_anchor_proportion(kappa):
    rng = np.random.default_rng(0)
    s_h, s_f = _anchor_scores(kappa, 20000, rng)
    assert abs(bbe_proportion(s_h, s_f)[0] - kappa) < 0.03
    k_roc = roc_proportion(s_h, s_f)[0]
    assert kappa <= k_roc < kappa + 0.05  # jointly valid bounds: above kappa
    assert abs(roc_proportion(s_h, s_f, union_bound=False)[0] - kappa) < 0.05
    assert abs(dedpul_proportion(s_h, s_f, "em")[0] - kappa) < 0.05
    assert abs(dedpul_proportion(s_h, s_f, "quantile")[0] - kappa) < 0.05


def test_bbe_confidence_bound_contains_estimate_and_uses_log4_over_delta():
    rng = np.random.default_rng(1)
    s_h, s_f = _anchor_scores(0.3, 2000, rng)
    k, t, (lo, hi) = bbe_proportion(s_h, s_f, delta=0.1)
    assert lo <= k <= hi
    # at the chosen bin, each tail is within sqrt(log(4/delta)/2n)
    q_p = (s_h >= t).mean()
    q_u = (s_f >= t).mean()
    e = np.sqrt(np.log(4 / 0.1) / (2 * 2000))
    assert hi == pytest.approx(min((q_u + e) / (q_p - e), 1.0))


@settings(max_examples=8)
@given(st.integers(0, 2**31 - 1))
def test_score_estimators_permutation_invariant(seed):
    rng = np.random.default_rng(seed)
    s_h, s_f = _anchor_scores(0.4, 300, rng)
    p, q = rng.permutation(300), rng.permutation(300)
    assert roc_proportion(s_h, s_f) == roc_proportion(s_h[p], s_f[q])
    assert bbe_proportion(s_h, s_f) == bbe_proportion(s_h[p], s_f[q])
    assert dedpul_proportion(s_h, s_f)[0] == pytest.approx(dedpul_proportion(s_h[p], s_f[q])[0])


def test_label_frequency_relation():
    # anchor: c = m / (m + n kappa)
    m, n, kappa = 300, 900, 0.35
    c = m / (m + n * kappa)
    assert _label_frequency_to_kappa(c, m, n) == pytest.approx(kappa)


# DEDPUL's quantile rule is left out: as published (KDEs of the logit scores
# with different bandwidths) its ratio is inflated at the top of the score
# range here, and it falls far below kappa(F|H) (mpe_convergence.md).
@pytest.mark.parametrize("est", [ROCMPE(), BestBinMPE(), ElkanNotoMPE("e1"),
                                 ElkanNotoMPE("e3"), DEDPULMPE()],
                         ids=["ROC", "BBE", "EN", "EN-e3", "DEDPUL"])
def test_classifier_estimators_near_kappa_max(est):
    d = make_sumpe_synthetic(0.5, n_component=800, n_mixture=800, random_state=0)
    est.set_params(random_state=0).fit(d.X, d.y)
    assert 0 <= est.proportion_ <= 1
    if isinstance(est, ROCMPE):  # jointly valid upper-type bound: conservative
        assert d.kappa_max - 0.05 < est.proportion_ < d.kappa_max + 0.2
    else:
        assert abs(est.proportion_ - d.kappa_max) < 0.15


def test_tice_unit_interval_and_separated_case():
    rng = np.random.default_rng(0)
    X = np.r_[rng.uniform(0, 1, (300, 2)), rng.uniform(0, 1, (90, 2)),
              rng.uniform(2, 3, (210, 2))]
    y = np.r_[np.ones(300, int), np.zeros(300, int)]
    est = TIcEMPE(random_state=0).fit(X, y)
    assert 0 <= est.proportion_ <= 1
    assert abs(est.proportion_ - 0.3) < 0.12


def test_elkan_noto_e1_limit_is_above_kappa_max_when_h_and_g_overlap():
    # with the exact posterior score, e1 converges to (1 - E_H[s]) / E_H[s],
    # which exceeds kappa(F|H) because s < c on most of H's support; e3
    # (the maximum of s) recovers kappa(F|H)
    d = make_sumpe_synthetic(0.5, n_component=20000, n_mixture=20000, random_state=3)
    x = d.X[:, 0]
    s = 1.0 / (1.0 + np.exp(d.log_f(x) - d.log_h(x)))
    s_h = s[d.y == 1]
    e1 = _label_frequency_to_kappa(s_h.mean(), 20000, 20000)
    e3 = _label_frequency_to_kappa(s.max(), 20000, 20000)
    assert e1 > d.kappa_max + 0.08
    assert abs(e3 - d.kappa_max) < 0.005


def test_tice_more_cuts_move_toward_kappa_max_in_1d():
    d = make_sumpe_synthetic(0.5, n_component=3000, n_mixture=3000, random_state=0)
    k3 = TIcEMPE(random_state=0).fit(d.X, d.y).proportion_
    k15 = TIcEMPE(n_splits=15, random_state=0).fit(d.X, d.y).proportion_
    assert k3 > d.kappa_max  # coarse cells: conservative
    assert abs(k15 - d.kappa_max) < abs(k3 - d.kappa_max)
